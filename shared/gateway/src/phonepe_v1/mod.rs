//! PhonePe PG v1 (salt key + `X-VERIFY`) over HTTP.
//!
//! The mapping from PhonePe's answers to ours is conservative: only `PAYMENT_SUCCESS` with a
//! `COMPLETED` (or absent) state is [`TxnState::Success`]; anything contradictory or unknown is
//! [`TxnState::Pending`]; a pay or refund call whose fate is unclear is
//! [`GatewayError::OutcomeUnknown`], never a failure.

pub mod wire;

/// The HTTP client (reqwest + rustls): everything that talks to PhonePe. Behind the `client`
/// feature so that code needing only the checksums and the callback decoding (the fuzz targets)
/// builds without a TLS stack.
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
pub use client::PhonePeV1;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use parkpay_checksum::{Message, SaltKeys, XVerify};
use serde::Serialize;

use crate::{CallbackError, MerchantTxnId, Notice, NoticeKind, Paise, StatusReport, TxnState};
use wire::codes;

/// Name of the checksum header (HTTP header names are case-insensitive).
pub const X_VERIFY: &str = "x-verify";
pub const X_MERCHANT_ID: &str = "x-merchant-id";

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

/// Turn a status envelope (from the status API or a callback) into a report for `expected`.
pub(crate) fn report_from(
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
