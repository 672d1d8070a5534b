//! The PhonePe PG v2 client: JSON calls with an `O-Bearer` token over reqwest + rustls, one
//! retry with a fresh token after a 401, answers classified into what PhonePe did, did not do,
//! or might have done.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::token::{AccessToken, TokenProvider};
use super::{
    OAuthTokenProvider, classify_answer, error_body, not_found_report, order_report, refund_report, verify_webhook,
    wire,
};
use crate::{
    CallbackError, ConfigError, GatewayError, INSTRUMENT_NOT_AVAILABLE, Instrument, MerchantTxnId, Notice, Paise,
    PayRequest, PayStarted, PaymentGateway, PhonePeV2Config, RefundRequest, RefundStarted, StatusReport, V2ConfigError,
};

/// Answers larger than this are not PhonePe's: treated as unreadable.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The PhonePe PG v2 client. Cheap to clone (the token provider is shared); build it once per
/// process (cold start). `Debug` never shows secrets.
#[derive(Clone)]
pub struct PhonePeV2 {
    http: reqwest::Client,
    cfg: Arc<PhonePeV2Config>,
    pg_base: String,
    tokens: Arc<dyn TokenProvider>,
}

impl fmt::Debug for PhonePeV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhonePeV2").field("cfg", &self.cfg).field("pg_base", &self.pg_base).finish_non_exhaustive()
    }
}

/// One answer: HTTP status and body.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

impl PhonePeV2 {
    /// The client with an in-process token provider ([`OAuthTokenProvider`]) sharing its
    /// HTTP client.
    pub fn new(cfg: PhonePeV2Config) -> Result<Self, V2ConfigError> {
        cfg.validate()?;
        let http = http_client(&cfg)?;
        let tokens = Arc::new(OAuthTokenProvider::new(http.clone(), &cfg));
        Ok(Self::assemble(cfg, http, tokens))
    }

    /// The client with another token provider (e.g. a deployment-wide token kept in a
    /// database).
    pub fn with_token_provider(cfg: PhonePeV2Config, tokens: Arc<dyn TokenProvider>) -> Result<Self, V2ConfigError> {
        cfg.validate()?;
        let http = http_client(&cfg)?;
        Ok(Self::assemble(cfg, http, tokens))
    }

    /// The client with a token provider built on the client's own token endpoint provider
    /// (same HTTP client): `share` wraps it, e.g. into a token shared through a database.
    pub fn with_shared_tokens(
        cfg: PhonePeV2Config,
        share: impl FnOnce(Arc<OAuthTokenProvider>) -> Arc<dyn TokenProvider>,
    ) -> Result<Self, V2ConfigError> {
        cfg.validate()?;
        let http = http_client(&cfg)?;
        let tokens = share(Arc::new(OAuthTokenProvider::new(http.clone(), &cfg)));
        Ok(Self::assemble(cfg, http, tokens))
    }

    fn assemble(cfg: PhonePeV2Config, http: reqwest::Client, tokens: Arc<dyn TokenProvider>) -> Self {
        let pg_base = cfg.environment.v2_pg_base_url().as_str().trim_end_matches('/').to_owned();
        Self { http, cfg: Arc::new(cfg), pg_base, tokens }
    }

    pub fn config(&self) -> &PhonePeV2Config {
        &self.cfg
    }

    pub fn token_provider(&self) -> &Arc<dyn TokenProvider> {
        &self.tokens
    }

    /// One PG call with the current token. On HTTP 401 (PhonePe refused the token before doing
    /// anything) the token is replaced and the call sent once more; a second 401 is the answer.
    async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Answer, GatewayError> {
        let token = self.tokens.current().await?;
        let first = self.exchange(method.clone(), path, body.clone(), &token).await?;
        if first.status != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        tracing::info!(path, "PhonePe refused the access token (HTTP 401); replacing it and trying once more");
        let fresh = self.tokens.refresh(&token).await?;
        self.exchange(method, path, body, &fresh).await
    }

    /// Send and read one answer. A failure to connect is [`GatewayError::Unreachable`];
    /// anything after that is [`GatewayError::OutcomeUnknown`]. Headers are never logged.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        token: &AccessToken,
    ) -> Result<Answer, GatewayError> {
        let mut auth = HeaderValue::from_str(&format!("{} {}", wire::TOKEN_TYPE, token.secret()))
            .map_err(|_| GatewayError::Unreachable { reason: "the access token is not a valid header value".into() })?;
        auth.set_sensitive(true);
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.pg_base))
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(b);
        }
        let resp = req.send().await.map_err(classify)?;
        let status = resp.status();
        if resp.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
            return Err(GatewayError::OutcomeUnknown { reason: format!("HTTP {status}: answer too large") });
        }
        let body = resp.bytes().await.map_err(classify)?;
        if body.len() > MAX_ANSWER_BYTES {
            return Err(GatewayError::OutcomeUnknown { reason: format!("HTTP {status}: answer too large") });
        }
        Ok(Answer { status, body: body.to_vec() })
    }

    /// The expected success body of a 2xx answer, or what the answer means otherwise.
    fn read<T: DeserializeOwned>(answer: &Answer) -> Result<T, GatewayError> {
        if !answer.status.is_success() {
            return Err(classify_answer(answer.status.as_u16(), &answer.body));
        }
        serde_json::from_slice(&answer.body).map_err(|e| GatewayError::OutcomeUnknown {
            reason: format!("HTTP {}: unreadable answer: {e}", answer.status),
        })
    }

    /// A status call (order or refund): 404 is "no such id", other answers as [`Self::read`].
    async fn status_call<T: DeserializeOwned>(
        &self,
        path: &str,
        id: &MerchantTxnId,
        default_code: &str,
        report: impl FnOnce(T, &MerchantTxnId, Option<&str>) -> Result<StatusReport, String>,
    ) -> Result<StatusReport, GatewayError> {
        let answer = self.call(Method::GET, path, None).await?;
        let merchant = self.cfg.merchant_id.as_deref();
        if answer.status == StatusCode::NOT_FOUND {
            let code = error_body(&answer.body).code;
            let code = if code.is_empty() { default_code } else { code.as_str() };
            return Ok(not_found_report(id, code, merchant));
        }
        let body = Self::read::<T>(&answer)?;
        let r = report(body, id, merchant).map_err(|reason| GatewayError::OutcomeUnknown { reason })?;
        tracing::debug!(txn = %id, code = %r.code, http_status = %answer.status, "phonepe v2 status answered");
        Ok(r)
    }
}

fn http_client(cfg: &PhonePeV2Config) -> Result<reqwest::Client, ConfigError> {
    crate::transport::client(cfg.connect_timeout, cfg.read_timeout).map_err(ConfigError::Client)
}

use crate::transport::transport_error as classify;

#[async_trait]
impl PaymentGateway for PhonePeV2 {
    /// [`Instrument::PayPage`] creates a checkout order (answered with the pay page URL),
    /// [`Instrument::AppSdk`] an SDK order (answered with the SDK token); PG v2's Standard
    /// Checkout offers no UPI intent, QR or collect of its own: those are refused with
    /// `INSTRUMENT_NOT_AVAILABLE` before anything is sent.
    async fn pay(&self, req: &PayRequest) -> Result<PayStarted, GatewayError> {
        let sdk = match &req.instrument {
            Instrument::PayPage => false,
            Instrument::AppSdk => true,
            other => {
                return Err(GatewayError::Rejected {
                    code: INSTRUMENT_NOT_AVAILABLE.into(),
                    message: format!(
                        "{} is not available with PhonePe PG v2 (Standard Checkout): use PAY_PAGE or APP_SDK",
                        other.name()
                    ),
                });
            }
        };
        let body = wire::CreateOrder {
            merchant_order_id: req.merchant_txn_id.as_str().to_owned(),
            amount: req.amount.get(),
            expire_after: self.cfg.payment_timeout.as_secs(),
            meta_info: None,
            payment_flow: wire::PaymentFlow {
                kind: wire::PG_CHECKOUT.into(),
                merchant_urls: Some(wire::MerchantUrls { redirect_url: req.redirect_url.clone() }),
            },
        };
        let path = if sdk { wire::SDK_ORDER_PATH } else { wire::PAY_PATH };
        let json = serde_json::to_vec(&body).map_err(|e| GatewayError::Unreachable { reason: e.to_string() })?;
        let answer = self.call(Method::POST, path, Some(json)).await?;
        tracing::debug!(txn = %req.merchant_txn_id, http_status = %answer.status, "phonepe v2 order answered");
        let created: wire::OrderCreated = Self::read(&answer)?;
        let unknown = |reason: String| GatewayError::OutcomeUnknown { reason };
        if created.order_id.is_empty() {
            return Err(unknown("order answer has no orderId".into()));
        }
        match created.state.as_str() {
            wire::states::PENDING => {}
            wire::states::FAILED => {
                return Err(GatewayError::Rejected {
                    code: wire::states::FAILED.into(),
                    message: "PhonePe created the order FAILED".into(),
                });
            }
            other => return Err(unknown(format!("order answer has state {other:?}"))),
        }
        let mut started = PayStarted::new(req.merchant_txn_id.clone());
        started.order_id = Some(created.order_id);
        if sdk {
            started.sdk_token = Some(
                created
                    .token
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| unknown("SDK order answer has no token".into()))?,
            );
        } else {
            started.redirect_url = Some(
                created
                    .redirect_url
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| unknown("order answer has no redirectUrl".into()))?,
            );
        }
        Ok(started)
    }

    async fn status(&self, txn: &MerchantTxnId) -> Result<StatusReport, GatewayError> {
        self.status_call(&wire::order_status_path(txn.as_str()), txn, super::ORDER_NOT_FOUND, order_report).await
    }

    async fn refund_status(&self, refund: &MerchantTxnId) -> Result<StatusReport, GatewayError> {
        self.status_call(&wire::refund_status_path(refund.as_str()), refund, super::REFUND_NOT_FOUND, refund_report)
            .await
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStarted, GatewayError> {
        let body = wire::RefundBody {
            merchant_refund_id: req.refund_txn_id.as_str().to_owned(),
            original_merchant_order_id: req.original_txn_id.as_str().to_owned(),
            amount: req.amount.get(),
        };
        let json = serde_json::to_vec(&body).map_err(|e| GatewayError::Unreachable { reason: e.to_string() })?;
        let answer = self.call(Method::POST, wire::REFUND_PATH, Some(json)).await?;
        tracing::debug!(refund = %req.refund_txn_id, http_status = %answer.status, "phonepe v2 refund answered");
        let accepted: wire::RefundAccepted = Self::read(&answer)?;
        if accepted.state.is_empty() {
            return Err(GatewayError::OutcomeUnknown { reason: "refund answer has no state".into() });
        }
        Ok(RefundStarted {
            refund_txn_id: req.refund_txn_id.clone(),
            state: super::map_refund_state(&accepted.state),
            code: accepted.state,
            provider_txn_id: Some(accepted.refund_id).filter(|r| !r.is_empty()),
            amount: accepted.amount.map(Paise::new),
        })
    }

    /// Checks the webhook `Authorization` in constant time and maps the body; see
    /// [`super::verify_webhook`]: confirm with a status call before acting on it. A payload
    /// without `merchantId` gets the configured one.
    async fn verify_notice(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<Notice, CallbackError> {
        let mut notice = verify_webhook(&self.cfg.webhook, headers, body)?;
        if notice.report.merchant_id.is_none() {
            notice.report.merchant_id = self.cfg.merchant_id.clone();
        }
        Ok(notice)
    }
}
