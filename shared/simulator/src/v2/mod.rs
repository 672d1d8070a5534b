//! PhonePe PG v2 (Standard Checkout with OAuth) beside v1, on the same base URL and at
//! PhonePe's own paths (its sandbox serves PG and OAuth from one host): the token endpoint
//! ([`oauth`]), orders, SDK orders, order status, refunds and refund status ([`api`]), webhooks
//! (built here, sent by the engine like v1 callbacks) and the v2 control routes ([`control`]).
//!
//! A v2 order or refund is recorded like a v1 transaction (one id namespace, the same faults,
//! pay page, outcomes, late success and refund settlement), with [`V2Info`] added; each API
//! sees only its own records.

pub(crate) mod api;
pub(crate) mod control;
pub(crate) mod oauth;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::config::V2Settings;
use crate::engine::{Notification, Record, message_for};
use crate::faults::ForcedAnswer;
use crate::model::{SimState, TxnKind};

pub use oauth::TokenFaults;
pub(crate) use oauth::TokenStore;

/// Webhook events (the `event` field of a webhook body).
pub const EVENT_ORDER_COMPLETED: &str = "checkout.order.completed";
pub const EVENT_ORDER_FAILED: &str = "checkout.order.failed";
pub const EVENT_REFUND_ACCEPTED: &str = "pg.refund.accepted";
pub const EVENT_REFUND_COMPLETED: &str = "pg.refund.completed";
pub const EVENT_REFUND_FAILED: &str = "pg.refund.failed";

/// The error codes the v2 API answers with (in `{"success": false, "code", "message"}`).
pub(crate) mod codes {
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    /// A PG call without a valid, unexpired, unrevoked `O-Bearer` token (HTTP 401).
    pub const AUTHORIZATION_FAILED: &str = "AUTHORIZATION_FAILED";
    /// The token endpoint: wrong client id, version or secret (HTTP 401).
    pub const INVALID_CLIENT: &str = "INVALID_CLIENT";
    pub const ORDER_NOT_FOUND: &str = "ORDER_NOT_FOUND";
    pub const REFUND_NOT_FOUND: &str = "REFUND_NOT_FOUND";
    pub const EXCESS_REFUND_AMOUNT: &str = "EXCESS_REFUND_AMOUNT";
    pub const REVERSAL_WINDOW_EXCEEDED: &str = "REVERSAL_WINDOW_EXCEEDED";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
}

/// What a v2 order or refund adds to its record.
#[derive(Debug, Clone)]
pub(crate) struct V2Info {
    /// PhonePe's own id: `orderId` (`OMO…`) of an order, `refundId` (`OMR…`) of a refund.
    pub phonepe_id: String,
    /// Orders: when the order expires, epoch ms (reported; orders do not expire by themselves).
    pub expire_at_ms: u64,
    /// Orders: the `metaInfo` object as received.
    pub meta_info: Option<Value>,
    /// Refunds: PhonePe accepted it (state CONFIRMED until it settles). False only while a
    /// `stuck_pending` fault holds it PENDING.
    pub confirmed: bool,
}

/// One v2 answer: HTTP status and JSON body.
pub(crate) struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self { status: StatusCode::OK, body }
    }

    /// `{"success": false, "code", "message"}` with the code's HTTP status.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self { status: http_status(code), body: json!({ "success": false, "code": code, "message": message.into() }) }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

pub(crate) fn bad_request(message: impl Into<String>) -> Reply {
    Reply::error(codes::BAD_REQUEST, message)
}

pub(crate) fn internal_error() -> Response {
    Reply::error(codes::INTERNAL_SERVER_ERROR, message_for(codes::INTERNAL_SERVER_ERROR)).into_response()
}

/// The HTTP status of a v2 error code (v1's table for the codes both share; 200 for codes
/// neither knows, as v1 does for forced answers).
pub(crate) fn http_status(code: &str) -> StatusCode {
    match code {
        codes::INVALID_CLIENT => StatusCode::UNAUTHORIZED,
        codes::ORDER_NOT_FOUND | codes::REFUND_NOT_FOUND => StatusCode::NOT_FOUND,
        other => crate::api::default_http_status(other),
    }
}

/// A forced answer (fault) on a v2 path: `{"success", "code", "message"}` plus `state` when
/// the fault names one; HTTP status as the fault says or by code.
pub(crate) fn forced(f: &ForcedAnswer) -> Response {
    let status = f.http_status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or_else(|| http_status(&f.code));
    let message = f.message.clone().unwrap_or_else(|| message_for(&f.code).to_owned());
    let mut body = json!({ "success": f.success.unwrap_or(false), "code": f.code, "message": message });
    if let (Some(state), Some(map)) = (&f.state, body.as_object_mut()) {
        map.insert("state".into(), Value::String(state.clone()));
    }
    (status, Json(body)).into_response()
}

/// PhonePe's v2 state of a record: `PENDING`, `COMPLETED`, `FAILED`, and for a refund that
/// PhonePe accepted but that has not settled, `CONFIRMED`.
pub(crate) fn state_text(rec: &Record) -> &'static str {
    let confirmed = rec.v2.as_ref().is_some_and(|v| v.confirmed);
    match rec.view.state {
        SimState::Pending if rec.view.kind == TxnKind::Refund && confirmed => "CONFIRMED",
        s => s.as_str(),
    }
}

/// The payment attempt of an order or the transfer of a refund, once there is one.
fn payment_details(rec: &Record) -> Vec<Value> {
    let v = &rec.view;
    if v.kind == TxnKind::Payment && v.outcome.is_none() && v.state == SimState::Pending {
        return Vec::new();
    }
    if v.kind == TxnKind::Refund && v.state == SimState::Pending {
        return Vec::new();
    }
    let mut d = Map::new();
    d.insert("paymentMode".into(), json!("UPI_INTENT"));
    d.insert("transactionId".into(), json!(v.provider_transaction_id));
    d.insert("timestamp".into(), json!(v.updated_at_ms));
    d.insert("amount".into(), json!(v.amount));
    d.insert("state".into(), json!(v.state.as_str()));
    if let Some(utr) = &v.utr {
        d.insert("rail".into(), json!({ "type": "UPI", "utr": utr, "upiTransactionId": format!("YBL{utr}") }));
    }
    if v.state == SimState::Failed {
        d.insert("errorCode".into(), json!(v.code));
    }
    vec![Value::Object(d)]
}

/// What the order status API answers for an order.
pub(crate) fn order_json(rec: &Record) -> Value {
    let v = &rec.view;
    let info = rec.v2.as_ref();
    let mut o = Map::new();
    o.insert("orderId".into(), json!(info.map(|i| i.phonepe_id.as_str())));
    o.insert("state".into(), json!(state_text(rec)));
    o.insert("amount".into(), json!(v.amount));
    o.insert("expireAt".into(), json!(info.map(|i| i.expire_at_ms)));
    if let Some(meta) = info.and_then(|i| i.meta_info.clone()) {
        o.insert("metaInfo".into(), meta);
    }
    if v.state == SimState::Failed {
        o.insert("errorCode".into(), json!(v.code));
        o.insert("detailedErrorCode".into(), json!(v.code));
    }
    o.insert("paymentDetails".into(), Value::Array(payment_details(rec)));
    Value::Object(o)
}

/// What the refund status API answers for a refund.
pub(crate) fn refund_json(rec: &Record) -> Value {
    let v = &rec.view;
    let mut o = Map::new();
    o.insert("merchantRefundId".into(), json!(v.merchant_transaction_id));
    o.insert("originalMerchantOrderId".into(), json!(v.original_transaction_id));
    o.insert("refundId".into(), json!(rec.v2.as_ref().map(|i| i.phonepe_id.as_str())));
    o.insert("amount".into(), json!(v.amount));
    o.insert("state".into(), json!(state_text(rec)));
    o.insert("timestamp".into(), json!(v.updated_at_ms));
    if v.state == SimState::Failed {
        o.insert("errorCode".into(), json!(v.code));
    }
    o.insert("paymentDetails".into(), Value::Array(payment_details(rec)));
    Value::Object(o)
}

/// The webhook a v2 record's current state calls for (none for a PENDING order), as PhonePe
/// sends it: plain JSON `{event, payload}` with `Authorization: hex(sha256("username:password"))`.
/// The payload is what the status API answers, plus `merchantId` and our id.
pub(crate) fn webhook(settings: &V2Settings, rec: &Record, url: String) -> Option<Notification> {
    let v = &rec.view;
    let (event, mut payload, id_key) = match (v.kind, v.state) {
        (TxnKind::Payment, SimState::Pending) => return None,
        (TxnKind::Payment, SimState::Completed) => (EVENT_ORDER_COMPLETED, order_json(rec), "merchantOrderId"),
        (TxnKind::Payment, SimState::Failed) => (EVENT_ORDER_FAILED, order_json(rec), "merchantOrderId"),
        (TxnKind::Refund, SimState::Pending) => (EVENT_REFUND_ACCEPTED, refund_json(rec), "merchantRefundId"),
        (TxnKind::Refund, SimState::Completed) => (EVENT_REFUND_COMPLETED, refund_json(rec), "merchantRefundId"),
        (TxnKind::Refund, SimState::Failed) => (EVENT_REFUND_FAILED, refund_json(rec), "merchantRefundId"),
    };
    if let Some(map) = payload.as_object_mut() {
        map.insert("merchantId".into(), json!(settings.merchant_id));
        map.insert(id_key.into(), json!(v.merchant_transaction_id));
    }
    let body = serde_json::to_vec(&json!({ "event": event, "payload": payload })).ok()?;
    Some(Notification {
        txn: v.merchant_transaction_id.clone(),
        url,
        code: event.to_owned(),
        state: state_text(rec).to_owned(),
        body,
        header: ("authorization", settings.webhook.authorization()),
        salt_index: 0,
    })
}
