//! PhonePe PG v1 (salt key + `X-VERIFY`) over HTTP.
//!
//! The mapping from PhonePe's answers to ours is conservative: only `PAYMENT_SUCCESS` with a
//! `COMPLETED` (or absent) state is [`TxnState::Success`]; anything contradictory or unknown is
//! [`TxnState::Pending`]; a pay or refund call whose fate is unclear is
//! [`GatewayError::OutcomeUnknown`], never a failure.

pub mod wire;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use parkpay_checksum::{Message, SaltKeys, XVerify};
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    CallbackError, ConfigError, DeviceOs, GatewayError, Instrument, MerchantTxnId, Notice, NoticeKind, Paise,
    PayRequest, PayStarted, PaymentGateway, PhonePeV1Config, RefundRequest, RefundStarted, StatusReport, TxnState,
};
use wire::codes;

/// Name of the checksum header (HTTP header names are case-insensitive).
pub const X_VERIFY: &str = "x-verify";
pub const X_MERCHANT_ID: &str = "x-merchant-id";

/// Answers larger than this are not PhonePe's: treated as unreadable.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Base64-encode a payload and sign it for `path`: what every v1 POST sends.
/// Returns the JSON body and the `X-VERIFY` value, computed over the same base64 text.
pub fn sign_request<T: Serialize>(keys: &SaltKeys, path: &str, payload: &T) -> (Vec<u8>, XVerify) {
    let json = serde_json::to_vec(payload).expect("wire payloads always serialise");
    let b64 = B64.encode(json);
    let x_verify = keys.sign(Message::Body { base64: &b64, path });
    let body = serde_json::to_vec(&wire::RequestBody { request: b64 }).expect("serialises");
    (body, x_verify)
}

/// Build a signed v1 callback (`{"response": base64}` + `X-VERIFY`) for a status envelope.
/// The simulator sends these; tests use it to forge and to replay.
pub fn sign_callback(keys: &SaltKeys, envelope: &wire::Envelope<wire::StatusData>) -> (Vec<u8>, XVerify) {
    let response = B64.encode(serde_json::to_vec(envelope).expect("serialises"));
    let x_verify = keys.sign(Message::Callback { response: &response });
    let body = serde_json::to_vec(&wire::CallbackBody { response }).expect("serialises");
    (body, x_verify)
}

/// Our state for a status code plus `data.state`.
pub fn map_state(code: &str, state: Option<&str>) -> TxnState {
    match (code, state) {
        (codes::PAYMENT_SUCCESS, None | Some(codes::STATE_COMPLETED)) => TxnState::Success,
        (codes::PAYMENT_ERROR | codes::PAYMENT_DECLINED, None | Some(codes::STATE_FAILED)) => TxnState::Failed,
        (codes::TRANSACTION_NOT_FOUND, _) => TxnState::NotFound,
        // PAYMENT_PENDING, TIMED_OUT, INTERNAL_SERVER_ERROR, codes we don't know, and a code that
        // contradicts its state: not final.
        _ => TxnState::Pending,
    }
}

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

/// Turn a status envelope (from the status API or a callback) into a report for `expected`.
fn report_from(
    envelope: wire::Envelope<wire::StatusData>,
    expected: Option<&MerchantTxnId>,
) -> Result<StatusReport, String> {
    let code = envelope.code;
    let data = envelope.data;
    let id_in_data = data.as_ref().map(|d| d.merchant_transaction_id.as_str()).filter(|s| !s.is_empty());
    let merchant_txn_id = match (expected, id_in_data) {
        (Some(e), Some(got)) if got != e.as_str() => {
            return Err(format!("answer is about transaction {got:?}, not {e}"));
        }
        (Some(e), _) => e.clone(),
        (None, Some(got)) => MerchantTxnId::parse(got).map_err(|e| e.to_string())?,
        (None, None) => return Err("no merchantTransactionId".into()),
    };
    let state = map_state(&code, data.as_ref().and_then(|d| d.state.as_deref()));
    Ok(StatusReport {
        merchant_id: data.as_ref().map(|d| d.merchant_id.clone()).filter(|s| !s.is_empty()),
        merchant_txn_id,
        state,
        code,
        amount: data.as_ref().and_then(|d| d.amount).map(Paise::new),
        provider_txn_id: data.as_ref().and_then(|d| d.transaction_id.clone()),
        utr: data.and_then(|d| d.payment_instrument).and_then(|i| i.utr),
    })
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
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            // A whole exchange never takes longer than connecting plus reading.
            .timeout(cfg.connect_timeout + cfg.read_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .user_agent(concat!("parkpay/", env!("CARGO_PKG_VERSION")))
            .tls_backend_preconfigured(crate::tls::client_config().map_err(ConfigError::Client)?)
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
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

fn classify(e: reqwest::Error) -> GatewayError {
    if e.is_connect() {
        GatewayError::Unreachable { reason: e.to_string() }
    } else {
        // Timed out or cut off after the request may have been written: we cannot know.
        GatewayError::OutcomeUnknown { reason: e.to_string() }
    }
}

fn rejected<D>(env: &wire::Envelope<D>) -> GatewayError {
    GatewayError::Rejected { code: env.code.clone(), message: env.message.clone() }
}

fn instrument(i: &Instrument) -> wire::PaymentInstrument {
    match i {
        Instrument::PayPage => wire::PaymentInstrument::PayPage,
        Instrument::UpiQr => wire::PaymentInstrument::UpiQr,
        Instrument::UpiCollect { vpa } => wire::PaymentInstrument::UpiCollect { vpa: vpa.clone() },
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
    }
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
            payment_instrument: instrument(&req.instrument),
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
                merchant_txn_id: req.merchant_txn_id.clone(),
                redirect_url: ir.as_ref().and_then(|i| i.redirect_info.as_ref()).map(|r| r.url.clone()),
                upi_intent_url: ir.as_ref().and_then(|i| i.intent_url.clone()),
                qr_data: ir.and_then(|i| i.qr_data),
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

/// Authenticate and decode a v1 callback: the `X-VERIFY` header is checked over the `response`
/// string exactly as received, with the salt its index names, before anything is decoded.
pub fn verify_callback(keys: &SaltKeys, headers: &http::HeaderMap, body: &[u8]) -> Result<Notice, CallbackError> {
    let header = headers.get(X_VERIFY).ok_or(CallbackError::MissingSignature)?;
    let header = header.to_str().map_err(|_| CallbackError::BadSignature("header is not ASCII".into()))?;
    let parsed: wire::CallbackBody =
        serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(format!("body: {e}")))?;
    keys.verify(header, Message::Callback { response: &parsed.response })
        .map_err(|e| CallbackError::BadSignature(e.to_string()))?;
    let decoded = B64
        .decode(parsed.response.as_bytes())
        .map_err(|e| CallbackError::Malformed(format!("response is not base64: {e}")))?;
    let envelope: wire::Envelope<wire::StatusData> =
        serde_json::from_slice(&decoded).map_err(|e| CallbackError::Malformed(format!("response JSON: {e}")))?;
    if envelope.code.is_empty() {
        return Err(CallbackError::Malformed("response has no code".into()));
    }
    let report = report_from(envelope, None).map_err(CallbackError::Malformed)?;
    Ok(Notice { kind: NoticeKind::Unspecified, report })
}

#[cfg(test)]
mod tests {
    use super::*;
    use parkpay_checksum::{SaltIndex, SaltKey};

    #[test]
    fn state_mapping_is_conservative() {
        use TxnState::*;
        assert_eq!(map_state("PAYMENT_SUCCESS", Some("COMPLETED")), Success);
        assert_eq!(map_state("PAYMENT_SUCCESS", None), Success);
        assert_eq!(map_state("PAYMENT_SUCCESS", Some("PENDING")), Pending);
        assert_eq!(map_state("PAYMENT_SUCCESS", Some("FAILED")), Pending);
        assert_eq!(map_state("PAYMENT_SUCCESS", Some("SOMETHING_NEW")), Pending);
        assert_eq!(map_state("PAYMENT_ERROR", Some("FAILED")), Failed);
        assert_eq!(map_state("PAYMENT_DECLINED", None), Failed);
        assert_eq!(map_state("PAYMENT_DECLINED", Some("COMPLETED")), Pending);
        assert_eq!(map_state("PAYMENT_PENDING", Some("PENDING")), Pending);
        assert_eq!(map_state("TIMED_OUT", None), Pending);
        assert_eq!(map_state("INTERNAL_SERVER_ERROR", None), Pending);
        assert_eq!(map_state("TRANSACTION_NOT_FOUND", None), NotFound);
        assert_eq!(map_state("PAYMENT_SUCCESSFUL", Some("COMPLETED")), Pending);
        assert_eq!(map_state("", Some("COMPLETED")), Pending);
        assert_eq!(map_state("payment_success", Some("COMPLETED")), Pending);
    }

    fn keys() -> SaltKeys {
        SaltKeys::single(SaltIndex::new(1), SaltKey::new("salt").unwrap())
    }

    fn envelope(code: &str, state: &str) -> wire::Envelope<wire::StatusData> {
        wire::Envelope {
            success: code == "PAYMENT_SUCCESS",
            code: code.into(),
            message: "m".into(),
            data: Some(wire::StatusData {
                merchant_id: "M".into(),
                merchant_transaction_id: "T1".into(),
                transaction_id: Some("P1".into()),
                amount: Some(10_000),
                state: Some(state.into()),
                response_code: None,
                payment_instrument: Some(wire::PaidInstrument { kind: "UPI".into(), utr: Some("U".into()) }),
            }),
        }
    }

    fn headers(x: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("X-VERIFY", x.parse().unwrap());
        h
    }

    #[test]
    fn callback_round_trip() {
        let (body, x) = sign_callback(&keys(), &envelope("PAYMENT_SUCCESS", "COMPLETED"));
        let n = verify_callback(&keys(), &headers(&x.to_string()), &body).unwrap();
        assert_eq!(n.report.state, TxnState::Success);
        assert_eq!(n.report.merchant_txn_id.as_str(), "T1");
        assert_eq!(n.report.amount, Some(Paise::new(10_000)));
        assert_eq!(n.report.utr.as_deref(), Some("U"));
    }

    #[test]
    fn callback_rejections() {
        let (body, x) = sign_callback(&keys(), &envelope("PAYMENT_SUCCESS", "COMPLETED"));
        assert_eq!(verify_callback(&keys(), &http::HeaderMap::new(), &body), Err(CallbackError::MissingSignature));
        let other = SaltKeys::single(SaltIndex::new(1), SaltKey::new("other").unwrap());
        assert!(matches!(
            verify_callback(&other, &headers(&x.to_string()), &body),
            Err(CallbackError::BadSignature(_))
        ));
        assert!(matches!(verify_callback(&keys(), &headers("garbage"), &body), Err(CallbackError::BadSignature(_))));
        // the response swapped for another (validly encoded) one: signature no longer matches
        let (body2, _) = sign_callback(&keys(), &envelope("PAYMENT_ERROR", "FAILED"));
        assert!(matches!(
            verify_callback(&keys(), &headers(&x.to_string()), &body2),
            Err(CallbackError::BadSignature(_))
        ));
        assert!(matches!(
            verify_callback(&keys(), &headers(&x.to_string()), b"not json"),
            Err(CallbackError::Malformed(_))
        ));
        // signed garbage: authentic, but unreadable
        let response = "%%%not-base64";
        let sig = keys().sign(Message::Callback { response }).to_string();
        let body = serde_json::to_vec(&serde_json::json!({ "response": response })).unwrap();
        assert!(matches!(verify_callback(&keys(), &headers(&sig), &body), Err(CallbackError::Malformed(_))));
    }
}
