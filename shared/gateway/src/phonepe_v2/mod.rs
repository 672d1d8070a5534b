//! PhonePe PG v2 (Standard Checkout with OAuth) over HTTP.
//!
//! How v2 differs from v1: no salt key and no checksum on requests; every PG call carries
//! `Authorization: O-Bearer <access token>`, a token fetched from PhonePe's OAuth endpoint with
//! the client id, version and secret and reused until its half-life ([`token`]). Requests and
//! answers are plain JSON with HTTP statuses carrying the outcome: orders
//! (`/checkout/v2/pay` for the hosted page, `/checkout/v2/sdk/order` for the mobile SDK),
//! `/checkout/v2/order/{merchantOrderId}/status`, refunds (`/payments/v2/refund`) with their own
//! status API (`/payments/v2/refund/{merchantRefundId}/status`). Webhooks are plain JSON
//! `{event, payload}` with `Authorization: <lowercase hex sha256("username:password")>` of the
//! webhook credentials set on PhonePe's dashboard.
//!
//! The mapping to our terms is conservative, as for v1: only an order or refund `COMPLETED` is
//! [`TxnState::Success`]; `FAILED` is [`TxnState::Failed`]; `PENDING`, a refund's `CONFIRMED`
//! (accepted, not settled) and every state we do not know are [`TxnState::Pending`]; an unknown
//! id (HTTP 404 on a status call) is [`TxnState::NotFound`]. Errors: an HTTP 4xx answer is
//! [`GatewayError::Rejected`] with PhonePe's code (429 is `TOO_MANY_REQUESTS`, retryable); a
//! 5xx, a 408, a timeout after sending or an unreadable answer is
//! [`GatewayError::OutcomeUnknown`]; a failure to connect (or to get a token) is
//! [`GatewayError::Unreachable`].
//!
//! This module is pure (no I/O): wire formats, the mapping, the webhook check. The HTTP client
//! ([`PhonePeV2`], [`OAuthTokenProvider`]) is behind the `client` feature, like v1's.

pub mod token;
pub mod wire;

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod oauth;
#[cfg(feature = "client")]
pub use client::PhonePeV2;
#[cfg(feature = "client")]
pub use oauth::OAuthTokenProvider;

pub use token::{AccessToken, TokenError, TokenProvider};

use parkpay_checksum::WebhookCredentials;

use crate::{
    CallbackError, GatewayError, MerchantTxnId, Notice, NoticeKind, Paise, StatusReport, TOO_MANY_REQUESTS, TxnState,
};
use wire::{events, states};

/// Our code for a status call PhonePe answered 404: no such order (yet).
pub const ORDER_NOT_FOUND: &str = "ORDER_NOT_FOUND";
/// ... no such refund (yet).
pub const REFUND_NOT_FOUND: &str = "REFUND_NOT_FOUND";

/// Name of the webhook authentication header (HTTP header names are case-insensitive).
pub const AUTHORIZATION: &str = "authorization";

/// Our state for an order's `state`.
pub fn map_order_state(state: &str) -> TxnState {
    match state {
        states::COMPLETED => TxnState::Success,
        states::FAILED => TxnState::Failed,
        // PENDING, and states we don't know: not final.
        _ => TxnState::Pending,
    }
}

/// Our state for a refund's `state`: `CONFIRMED` (accepted, not settled) is still pending.
pub fn map_refund_state(state: &str) -> TxnState {
    match state {
        states::COMPLETED => TxnState::Success,
        states::FAILED => TxnState::Failed,
        // PENDING, CONFIRMED, and states we don't know: not final.
        _ => TxnState::Pending,
    }
}

/// The report's `code`: the state as received, or for a failure PhonePe's `errorCode` when it
/// gives one (why it failed is what an audit wants).
fn code_of(state: &str, error_code: Option<&str>) -> String {
    match error_code.filter(|c| !c.is_empty()) {
        Some(c) if state == states::FAILED => c.to_owned(),
        _ => state.to_owned(),
    }
}

/// The attempt that tells how an order was paid: the completed one, else the latest.
fn paid_attempt(details: &[wire::PaymentDetail]) -> Option<&wire::PaymentDetail> {
    details.iter().find(|d| d.state == states::COMPLETED).or(details.last())
}

/// The report for an order status answer about `id`. `merchant_id`: ours, as configured (the
/// answer names none).
pub fn order_report(
    status: wire::OrderStatus,
    id: &MerchantTxnId,
    merchant_id: Option<&str>,
) -> Result<StatusReport, String> {
    if status.state.is_empty() {
        return Err("order status answer has no state".into());
    }
    let attempt = paid_attempt(&status.payment_details);
    Ok(StatusReport {
        merchant_id: merchant_id.map(str::to_owned),
        merchant_txn_id: id.clone(),
        state: map_order_state(&status.state),
        code: code_of(&status.state, status.error_code.as_deref()),
        amount: status.amount.map(Paise::new),
        provider_txn_id: attempt.and_then(|a| a.transaction_id.clone()),
        utr: attempt.filter(|a| a.state == states::COMPLETED).and_then(|a| a.rail.as_ref()).and_then(|r| r.utr.clone()),
    })
}

/// The report for a refund status answer about `id`; the provider id is PhonePe's `refundId`.
pub fn refund_report(
    status: wire::RefundStatus,
    id: &MerchantTxnId,
    merchant_id: Option<&str>,
) -> Result<StatusReport, String> {
    if status.state.is_empty() {
        return Err("refund status answer has no state".into());
    }
    let attempt = paid_attempt(&status.payment_details);
    Ok(StatusReport {
        merchant_id: merchant_id.map(str::to_owned),
        merchant_txn_id: id.clone(),
        state: map_refund_state(&status.state),
        code: code_of(&status.state, status.error_code.as_deref()),
        amount: status.amount.map(Paise::new),
        provider_txn_id: status.refund_id.filter(|r| !r.is_empty()),
        utr: attempt.and_then(|a| a.rail.as_ref()).and_then(|r| r.utr.clone()),
    })
}

/// The report for a status call PhonePe answered 404: it has no such order or refund (yet).
pub fn not_found_report(id: &MerchantTxnId, code: &str, merchant_id: Option<&str>) -> StatusReport {
    StatusReport {
        merchant_id: merchant_id.map(str::to_owned),
        merchant_txn_id: id.clone(),
        state: TxnState::NotFound,
        code: code.to_owned(),
        amount: None,
        provider_txn_id: None,
        utr: None,
    }
}

/// PhonePe's error code and message from an error answer (empty when unreadable).
pub fn error_body(body: &[u8]) -> wire::ErrorBody {
    serde_json::from_slice(body).unwrap_or_default()
}

/// What an HTTP answer other than the expected success means for a PG call: 429 is
/// `TOO_MANY_REQUESTS` (retryable); any other 4xx but 408 is a refusal with PhonePe's code
/// (or `HTTP_<status>` when it gives none), nothing happened; 408, 5xx and anything else: we
/// cannot know what PhonePe did.
pub fn classify_answer(status: u16, body: &[u8]) -> GatewayError {
    let err = error_body(body);
    let message = if err.message.is_empty() { format!("HTTP {status}") } else { err.message };
    match status {
        429 => GatewayError::Rejected { code: TOO_MANY_REQUESTS.to_owned(), message },
        408 => GatewayError::OutcomeUnknown { reason: format!("HTTP 408: {message}") },
        400..=499 => {
            let code = if err.code.is_empty() { format!("HTTP_{status}") } else { err.code };
            GatewayError::Rejected { code, message }
        }
        _ => {
            let code = if err.code.is_empty() { String::new() } else { format!(" {}", err.code) };
            GatewayError::OutcomeUnknown { reason: format!("HTTP {status}{code}: {message}") }
        }
    }
}

/// Authenticate and decode a PG v2 webhook.
///
/// The `Authorization` header must be the lowercase (or uppercase) hex
/// `sha256("username:password")` of our webhook credentials, compared in constant time,
/// before the body is read. That header does not depend on the body: whoever saw one webhook
/// can send any body with it. So a verified notice is a hint, not a fact: the caller must read
/// the order's or refund's status (and compare amounts) before applying it.
///
/// `checkout.order.*` events give [`NoticeKind::Payment`] reports about `merchantOrderId`,
/// `pg.refund.*` events [`NoticeKind::Refund`] reports about `merchantRefundId`. A state that
/// contradicts its event (`checkout.order.completed` with a state other than `COMPLETED`, …)
/// and `pg.refund.accepted` are pending.
pub fn verify_webhook(
    creds: &WebhookCredentials,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Notice, CallbackError> {
    let header = headers.get(AUTHORIZATION).ok_or(CallbackError::MissingSignature)?;
    let header = header.to_str().map_err(|_| CallbackError::BadSignature("header is not ASCII".into()))?;
    creds.verify(header.trim()).map_err(|e| CallbackError::BadSignature(e.to_string()))?;
    let hook: wire::Webhook =
        serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(format!("webhook JSON: {e}")))?;
    let p = hook.payload;
    let event = hook.event.as_str();
    let (kind, id, state) = if event.starts_with(events::ORDER_PREFIX) {
        let state = match (event, map_order_state(&p.state)) {
            (events::ORDER_COMPLETED, s @ TxnState::Success) | (events::ORDER_FAILED, s @ TxnState::Failed) => s,
            _ => TxnState::Pending,
        };
        (NoticeKind::Payment, p.merchant_order_id.as_deref(), state)
    } else if event.starts_with(events::REFUND_PREFIX) {
        let state = match (event, map_refund_state(&p.state)) {
            (events::REFUND_COMPLETED, s @ TxnState::Success) | (events::REFUND_FAILED, s @ TxnState::Failed) => s,
            _ => TxnState::Pending,
        };
        (NoticeKind::Refund, p.merchant_refund_id.as_deref(), state)
    } else {
        return Err(CallbackError::Malformed(format!("event {event:?} is not about an order or a refund")));
    };
    let id = id.filter(|i| !i.is_empty()).ok_or_else(|| {
        CallbackError::Malformed(format!(
            "{event} webhook names no merchant{} id",
            if kind == NoticeKind::Payment { "Order" } else { "Refund" }
        ))
    })?;
    let merchant_txn_id = MerchantTxnId::parse(id).map_err(|e| CallbackError::Malformed(e.to_string()))?;
    if p.state.is_empty() {
        return Err(CallbackError::Malformed(format!("{event} webhook has no state")));
    }
    let attempt = paid_attempt(&p.payment_details);
    let provider_txn_id = match kind {
        NoticeKind::Refund => p.refund_id.clone(),
        _ => attempt.and_then(|a| a.transaction_id.clone()),
    };
    let utr =
        attempt.filter(|a| a.state == states::COMPLETED).and_then(|a| a.rail.as_ref()).and_then(|r| r.utr.clone());
    let report = StatusReport {
        merchant_id: p.merchant_id.filter(|m| !m.is_empty()),
        merchant_txn_id,
        state,
        code: code_of(&p.state, p.error_code.as_deref()),
        amount: p.amount.map(Paise::new),
        provider_txn_id,
        utr,
    };
    Ok(Notice { kind, report })
}

#[cfg(test)]
mod tests {
    use super::*;
    use parkpay_checksum::conformance::{WEBHOOK_AUTHORIZATION, WEBHOOK_EMPTY_AUTHORIZATION};
    use secrecy::SecretString;
    use serde_json::json;

    fn creds(user: &str, pass: &str) -> WebhookCredentials {
        WebhookCredentials::new(user, SecretString::from(pass.to_owned()))
    }

    fn headers(auth: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("Authorization", auth.parse().unwrap());
        h
    }

    fn id(s: &str) -> MerchantTxnId {
        MerchantTxnId::parse(s).unwrap()
    }

    #[test]
    fn published_webhook_vectors() {
        // PhonePe's own SDK test vector, and the empty pair
        assert_eq!(creds("username", "password").authorization(), WEBHOOK_AUTHORIZATION);
        assert_eq!(WEBHOOK_AUTHORIZATION, "bc842c31a9e54efe320d30d948be61291f3ceee4766e36ab25fa65243cd76e0e");
        assert_eq!(creds("", "").authorization(), WEBHOOK_EMPTY_AUTHORIZATION);
        assert_eq!(WEBHOOK_EMPTY_AUTHORIZATION, "e7ac0786668e0ff0f02b62bd04f45ff636fd82db63b1104601c975dc005f3a67");
    }

    #[test]
    fn states_map_conservatively() {
        use TxnState::*;
        for (s, order, refund) in [
            ("COMPLETED", Success, Success),
            ("FAILED", Failed, Failed),
            ("PENDING", Pending, Pending),
            ("CONFIRMED", Pending, Pending),
            ("completed", Pending, Pending),
            ("SUCCESS", Pending, Pending),
            ("", Pending, Pending),
        ] {
            assert_eq!((map_order_state(s), map_refund_state(s)), (order, refund), "{s:?}");
        }
    }

    #[test]
    fn order_and_refund_reports() {
        let status: wire::OrderStatus = serde_json::from_value(json!({
            "orderId": "OMO1", "state": "COMPLETED", "amount": 10000, "expireAt": 1,
            "paymentDetails": [
                {"transactionId": "OM-A", "state": "FAILED", "amount": 10000, "errorCode": "X"},
                {"transactionId": "OM-B", "state": "COMPLETED", "amount": 10000, "rail": {"type": "UPI", "utr": "U1"}}
            ]
        }))
        .unwrap();
        let r = order_report(status, &id("ORD-1"), Some("M1")).unwrap();
        assert_eq!((r.state, r.code.as_str(), r.amount), (TxnState::Success, "COMPLETED", Some(Paise::new(10_000))));
        assert_eq!((r.provider_txn_id.as_deref(), r.utr.as_deref()), (Some("OM-B"), Some("U1")));
        assert_eq!((r.merchant_id.as_deref(), r.merchant_txn_id.as_str()), (Some("M1"), "ORD-1"));

        let failed: wire::OrderStatus =
            serde_json::from_value(json!({"state": "FAILED", "amount": 100, "errorCode": "PAYMENT_DECLINED"})).unwrap();
        let r = order_report(failed, &id("ORD-2"), None).unwrap();
        assert_eq!((r.state, r.code.as_str(), r.utr), (TxnState::Failed, "PAYMENT_DECLINED", None));
        assert!(order_report(serde_json::from_value(json!({"amount": 1})).unwrap(), &id("X"), None).is_err());

        let refund: wire::RefundStatus =
            serde_json::from_value(json!({"refundId": "OMR1", "state": "CONFIRMED", "amount": 500})).unwrap();
        let r = refund_report(refund, &id("R-1"), None).unwrap();
        assert_eq!(
            (r.state, r.code.as_str(), r.provider_txn_id.as_deref()),
            (TxnState::Pending, "CONFIRMED", Some("OMR1"))
        );
        let nf = not_found_report(&id("R-2"), "REFUND_NOT_FOUND", None);
        assert_eq!((nf.state, nf.code.as_str()), (TxnState::NotFound, "REFUND_NOT_FOUND"));
    }

    #[test]
    fn answers_are_classified() {
        let e = classify_answer(429, b"{}");
        assert_eq!(e.code(), Some("TOO_MANY_REQUESTS"));
        assert!(e.retryable() && !e.outcome_unknown());
        let e = classify_answer(400, br#"{"code":"BAD_REQUEST","message":"amount must be a number"}"#);
        assert_eq!(e, GatewayError::Rejected { code: "BAD_REQUEST".into(), message: "amount must be a number".into() });
        assert_eq!(classify_answer(409, b"<html>").code(), Some("HTTP_409"));
        for status in [500, 502, 503, 504, 408, 302] {
            assert!(classify_answer(status, br#"{"code":"INTERNAL_SERVER_ERROR"}"#).outcome_unknown(), "{status}");
        }
    }

    fn hook(event: &str, payload: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({ "event": event, "payload": payload })).unwrap()
    }

    #[test]
    fn webhooks_verify_and_map() {
        let c = creds("username", "password");
        let body = hook(
            "checkout.order.completed",
            json!({"merchantId": "M1", "merchantOrderId": "ORD-1", "orderId": "OMO1", "state": "COMPLETED",
                   "amount": 10000, "paymentDetails": [{"transactionId": "OM1", "state": "COMPLETED",
                   "rail": {"type": "UPI", "utr": "U1"}}]}),
        );
        let n = verify_webhook(&c, &headers(WEBHOOK_AUTHORIZATION), &body).unwrap();
        assert_eq!(n.kind, NoticeKind::Payment);
        let r = &n.report;
        assert_eq!(
            (r.merchant_txn_id.as_str(), r.state, r.amount),
            ("ORD-1", TxnState::Success, Some(Paise::new(10_000)))
        );
        assert_eq!(
            (r.merchant_id.as_deref(), r.provider_txn_id.as_deref(), r.utr.as_deref()),
            (Some("M1"), Some("OM1"), Some("U1"))
        );
        // upper-case hex is the same digest
        assert!(verify_webhook(&c, &headers(&WEBHOOK_AUTHORIZATION.to_uppercase()), &body).is_ok());

        for (event, state, kind, expected) in [
            ("checkout.order.failed", "FAILED", NoticeKind::Payment, TxnState::Failed),
            ("checkout.order.completed", "FAILED", NoticeKind::Payment, TxnState::Pending),
            ("checkout.order.failed", "COMPLETED", NoticeKind::Payment, TxnState::Pending),
            ("pg.refund.accepted", "CONFIRMED", NoticeKind::Refund, TxnState::Pending),
            ("pg.refund.accepted", "COMPLETED", NoticeKind::Refund, TxnState::Pending),
            ("pg.refund.completed", "COMPLETED", NoticeKind::Refund, TxnState::Success),
            ("pg.refund.failed", "FAILED", NoticeKind::Refund, TxnState::Failed),
        ] {
            let body = hook(
                event,
                json!({"merchantOrderId": "ORD-1", "merchantRefundId": "R-1", "refundId": "OMR1", "state": state, "amount": 100}),
            );
            let n = verify_webhook(&c, &headers(WEBHOOK_AUTHORIZATION), &body).unwrap();
            assert_eq!((n.kind, n.report.state), (kind, expected), "{event} {state}");
            let id = if kind == NoticeKind::Refund { "R-1" } else { "ORD-1" };
            assert_eq!(n.report.merchant_txn_id.as_str(), id);
        }
    }

    #[test]
    fn webhook_rejections() {
        let c = creds("username", "password");
        let body = hook("checkout.order.completed", json!({"merchantOrderId": "ORD-1", "state": "COMPLETED"}));
        assert_eq!(verify_webhook(&c, &http::HeaderMap::new(), &body), Err(CallbackError::MissingSignature));
        for bad in [WEBHOOK_EMPTY_AUTHORIZATION, "not-hex", "", &format!("SHA256 {WEBHOOK_AUTHORIZATION}")] {
            let r = verify_webhook(&c, &headers(bad), &body);
            assert!(matches!(r, Err(CallbackError::BadSignature(_))), "{bad:?}: {r:?}");
        }
        let other = creds("username", "other");
        assert!(matches!(
            verify_webhook(&other, &headers(WEBHOOK_AUTHORIZATION), &body),
            Err(CallbackError::BadSignature(_))
        ));
        // authentic header, unreadable or unusable bodies
        for body in [
            b"not json".to_vec(),
            hook("subscription.notify", json!({"state": "COMPLETED"})),
            hook("checkout.order.completed", json!({"state": "COMPLETED"})),
            hook("checkout.order.completed", json!({"merchantOrderId": "has space", "state": "COMPLETED"})),
            hook("pg.refund.completed", json!({"merchantOrderId": "ORD-1", "state": "COMPLETED"})),
            hook("checkout.order.completed", json!({"merchantOrderId": "ORD-1"})),
            hook(
                "checkout.order.completed",
                json!({"merchantOrderId": "ORD-1", "state": "COMPLETED", "amount": "100"}),
            ),
        ] {
            let r = verify_webhook(&c, &headers(WEBHOOK_AUTHORIZATION), &body);
            assert!(matches!(r, Err(CallbackError::Malformed(_))), "{r:?}");
        }
    }
}
