//! The PhonePe PG v1 client: signed requests over reqwest + rustls, answers classified into
//! what PhonePe did, did not do, or might have done.

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::{self, codes};
use parkpay_checksum::Message;

use super::{X_MERCHANT_ID, X_VERIFY, report_from, sign_request, verify_callback};
use crate::INSTRUMENT_NOT_AVAILABLE;
use crate::{
    CallbackError, ConfigError, DeviceOs, GatewayError, Instrument, MerchantTxnId, Notice, PayRequest, PayStarted,
    PaymentGateway, PhonePeV1Config, RefundRequest, RefundStarted, StatusReport,
};

/// Answers larger than this are not PhonePe's: treated as unreadable.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Codes that describe the request, not the transaction: PhonePe did nothing.
fn is_request_rejection(code: &str) -> bool {
    matches!(
        code,
        codes::BAD_REQUEST
            | codes::AUTHORIZATION_FAILED
            | codes::KEY_NOT_CONFIGURED
            | codes::TOO_MANY_REQUESTS
            | codes::EXCESS_REFUND_AMOUNT
            | codes::REVERSAL_WINDOW_EXCEEDED
    )
}

/// The PhonePe PG v1 client. Cheap to clone; build it once per process (cold start).
#[derive(Debug, Clone)]
pub struct PhonePeV1 {
    http: reqwest::Client,
    cfg: std::sync::Arc<PhonePeV1Config>,
    base: String,
}

impl PhonePeV1 {
    pub fn new(cfg: PhonePeV1Config) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let http = crate::transport::client(cfg.connect_timeout, cfg.read_timeout).map_err(ConfigError::Client)?;
        let base = cfg.environment.v1_base_url().as_str().trim_end_matches('/').to_owned();
        Ok(Self { http, cfg: std::sync::Arc::new(cfg), base })
    }

    pub fn config(&self) -> &PhonePeV1Config {
        &self.cfg
    }

    async fn post_signed<T: Serialize, D: DeserializeOwned>(
        &self,
        path: &str,
        payload: &T,
    ) -> Result<(StatusCode, wire::Envelope<D>), GatewayError> {
        let (body, x_verify) = sign_request(&self.cfg.salt_keys, path, payload);
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(X_VERIFY, x_verify.to_string())
            .body(body);
        self.exchange(req).await
    }

    /// Send and read one answer. Transport failures are classified here: a failure to connect is
    /// [`GatewayError::Unreachable`]; anything after that is [`GatewayError::OutcomeUnknown`].
    async fn exchange<D: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, wire::Envelope<D>), GatewayError> {
        let resp = req.send().await.map_err(classify)?;
        let status = resp.status();
        if resp.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
            return Err(GatewayError::OutcomeUnknown { reason: format!("HTTP {status}: answer too large") });
        }
        let bytes = resp.bytes().await.map_err(classify)?;
        if bytes.len() > MAX_ANSWER_BYTES {
            return Err(GatewayError::OutcomeUnknown { reason: format!("HTTP {status}: answer too large") });
        }
        match serde_json::from_slice::<wire::Envelope<D>>(&bytes) {
            Ok(env) if !env.code.is_empty() => Ok((status, env)),
            Ok(_) => Err(GatewayError::OutcomeUnknown { reason: format!("HTTP {status}: answer has no code") }),
            Err(e) => Err(GatewayError::OutcomeUnknown { reason: format!("HTTP {status}: unreadable answer: {e}") }),
        }
    }
}

use crate::transport::transport_error as classify;

fn rejected<D>(env: &wire::Envelope<D>) -> GatewayError {
    GatewayError::Rejected { code: env.code.clone(), message: env.message.clone() }
}

/// The v1 instrument; the app SDK exists only in PG v2: refused before anything is sent.
fn instrument(i: &Instrument) -> Result<wire::PaymentInstrument, GatewayError> {
    Ok(match i {
        Instrument::PayPage => wire::PaymentInstrument::PayPage,
        Instrument::UpiQr => wire::PaymentInstrument::UpiQr,
        Instrument::UpiCollect { vpa } => wire::PaymentInstrument::UpiCollect { vpa: vpa.clone() },
        Instrument::AppSdk => {
            return Err(GatewayError::Rejected {
                code: INSTRUMENT_NOT_AVAILABLE.into(),
                message: "APP_SDK (PhonePe's mobile SDK) is not available with PhonePe PG v1: it needs PG v2".into(),
            });
        }
        Instrument::UpiIntent { target_app, device_os } => wire::PaymentInstrument::UpiIntent {
            target_app: target_app.clone(),
            device_context: Some(wire::DeviceContext {
                device_os: match device_os {
                    DeviceOs::Android => "ANDROID",
                    DeviceOs::Ios => "IOS",
                }
                .into(),
            }),
        },
    })
}

#[async_trait]
impl PaymentGateway for PhonePeV1 {
    async fn pay(&self, req: &PayRequest) -> Result<PayStarted, GatewayError> {
        let payload = wire::PayPayload {
            merchant_id: self.cfg.merchant_id.clone(),
            merchant_transaction_id: req.merchant_txn_id.as_str().to_owned(),
            merchant_user_id: Some(req.merchant_user_id.clone()),
            amount: req.amount.get(),
            redirect_url: req.redirect_url.clone(),
            redirect_mode: wire::RedirectMode::Redirect,
            callback_url: self.cfg.callback_url.to_string(),
            mobile_number: req.mobile_number.clone(),
            payment_instrument: instrument(&req.instrument)?,
        };
        let (http_status, env) = self.post_signed::<_, wire::PayData>(wire::PAY_PATH, &payload).await?;
        tracing::debug!(txn = %req.merchant_txn_id, code = %env.code, %http_status, "phonepe pay answered");
        if env.success && env.code == codes::PAYMENT_INITIATED {
            let data = env
                .data
                .ok_or_else(|| GatewayError::OutcomeUnknown { reason: "PAYMENT_INITIATED without data".into() })?;
            if !data.merchant_transaction_id.is_empty() && data.merchant_transaction_id != req.merchant_txn_id.as_str()
            {
                return Err(GatewayError::OutcomeUnknown {
                    reason: format!("pay answer is about {:?}", data.merchant_transaction_id),
                });
            }
            let ir = data.instrument_response;
            return Ok(PayStarted {
                redirect_url: ir.as_ref().and_then(|i| i.redirect_info.as_ref()).map(|r| r.url.clone()),
                upi_intent_url: ir.as_ref().and_then(|i| i.intent_url.clone()),
                qr_data: ir.and_then(|i| i.qr_data),
                ..PayStarted::new(req.merchant_txn_id.clone())
            });
        }
        match env.code.as_str() {
            c if is_request_rejection(c) => Err(rejected(&env)),
            // A payment that failed at once is a definite "no".
            codes::PAYMENT_ERROR | codes::PAYMENT_DECLINED => Err(rejected(&env)),
            // PAYMENT_PENDING, TIMED_OUT, INTERNAL_SERVER_ERROR, success:true with another code,
            // and every unknown code: it may have started.
            other => Err(GatewayError::OutcomeUnknown { reason: format!("pay answered {other} (HTTP {http_status})") }),
        }
    }

    async fn status(&self, txn: &MerchantTxnId) -> Result<StatusReport, GatewayError> {
        let path = wire::status_path(&self.cfg.merchant_id, txn.as_str());
        let x_verify = self.cfg.salt_keys.sign(Message::Path { path: &path });
        let req = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(X_VERIFY, x_verify.to_string())
            .header(X_MERCHANT_ID, &self.cfg.merchant_id);
        let (http_status, env) = self.exchange::<wire::StatusData>(req).await?;
        tracing::debug!(%txn, code = %env.code, %http_status, "phonepe status answered");
        if is_request_rejection(&env.code) {
            return Err(rejected(&env));
        }
        report_from(env, Some(txn)).map_err(|reason| GatewayError::OutcomeUnknown { reason })
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStarted, GatewayError> {
        let payload = wire::RefundPayload {
            merchant_id: self.cfg.merchant_id.clone(),
            merchant_user_id: req.merchant_user_id.clone(),
            original_transaction_id: req.original_txn_id.as_str().to_owned(),
            merchant_transaction_id: req.refund_txn_id.as_str().to_owned(),
            amount: req.amount.get(),
            callback_url: self.cfg.callback_url.to_string(),
        };
        let (http_status, env) = self.post_signed::<_, wire::StatusData>(wire::REFUND_PATH, &payload).await?;
        tracing::debug!(refund = %req.refund_txn_id, code = %env.code, %http_status, "phonepe refund answered");
        if is_request_rejection(&env.code) || env.code == codes::TRANSACTION_NOT_FOUND {
            return Err(rejected(&env));
        }
        if !env.success {
            // PAYMENT_PENDING / TIMED_OUT / INTERNAL_SERVER_ERROR / unknown with success:false:
            // the refund may have started; ask its status before any retry.
            return Err(GatewayError::OutcomeUnknown {
                reason: format!("refund answered {} (HTTP {http_status})", env.code),
            });
        }
        let report =
            report_from(env, Some(&req.refund_txn_id)).map_err(|reason| GatewayError::OutcomeUnknown { reason })?;
        Ok(RefundStarted {
            refund_txn_id: report.merchant_txn_id,
            state: report.state,
            code: report.code,
            provider_txn_id: report.provider_txn_id,
            amount: report.amount,
        })
    }

    async fn verify_notice(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<Notice, CallbackError> {
        verify_callback(&self.cfg.salt_keys, headers, body)
    }
}
