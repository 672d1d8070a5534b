//! The v2 control routes (under `/_sim/`) and the matching [`Simulator`] methods: tokens and
//! token faults, settling refunds by hand, webhooks, and v2 views of orders and refunds.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::{TokenFaults, order_json, refund_json};
use crate::Simulator;
use crate::control::{error, sim};
use crate::engine::Inner;
use crate::faults::FaultError;
use crate::model::{Outcome, SettleError, Transaction, TxnKind};

impl Simulator {
    /// Requests the token endpoint received, whatever it answered.
    pub fn token_requests(&self) -> u64 {
        self.inner.lock().oauth.requests
    }

    /// Access tokens issued.
    pub fn tokens_issued(&self) -> u64 {
        self.inner.lock().oauth.issued
    }

    /// Every access token issued so far expires now (v2 PG calls carrying one get 401).
    pub fn expire_tokens(&self) {
        self.inner.lock().oauth.expire_all();
    }

    /// Every access token issued so far is revoked (v2 PG calls carrying one get 401).
    pub fn revoke_tokens(&self) {
        self.inner.lock().oauth.revoke_all();
    }

    pub fn set_token_faults(&self, faults: TokenFaults) -> Result<(), FaultError> {
        faults.validate()?;
        self.inner.lock().oauth.faults = faults;
        Ok(())
    }

    /// The token faults still pending (their counts go down as they are used).
    pub fn token_faults(&self) -> TokenFaults {
        self.inner.lock().oauth.faults.clone()
    }

    /// Answer the next `n` v2 PG calls with 401 whatever token they carry.
    pub fn reject_next_v2_calls(&self, n: u32) {
        self.inner.lock().oauth.faults.reject_next_calls = n.min(super::oauth::MAX_TOKEN_FAULT_COUNT);
    }

    /// Settle a PENDING (or, v2, CONFIRMED) refund now, as the bank would: COMPLETED for
    /// [`Outcome::Success`], FAILED otherwise, whatever its faults; its notification follows.
    /// Works for v1 and v2 refunds.
    pub fn settle_refund(&self, refund_id: &str, outcome: Outcome) -> Result<Transaction, SettleError> {
        self.inner.settle_refund(refund_id, Some(outcome))
    }

    /// Send v2 webhooks to `url` from now on (`None`: send none).
    pub fn set_webhook_url(&self, url: Option<Url>) {
        *self.inner.webhook_url.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = url.map(|u| u.to_string());
    }

    /// The `Authorization` value every v2 webhook carries: lowercase hex
    /// `sha256("username:password")` of the configured webhook credentials.
    pub fn webhook_authorization(&self) -> String {
        self.inner.cfg.v2.webhook.authorization()
    }

    /// A v2 order as its status API answers it, by merchantOrderId.
    pub fn v2_order(&self, merchant_order_id: &str) -> Option<Value> {
        let st = self.inner.lock();
        st.txns.get(merchant_order_id).filter(|r| r.v2.is_some() && r.view.kind == TxnKind::Payment).map(order_json)
    }

    /// A v2 refund as its status API answers it, by merchantRefundId.
    pub fn v2_refund(&self, merchant_refund_id: &str) -> Option<Value> {
        let st = self.inner.lock();
        st.txns.get(merchant_refund_id).filter(|r| r.v2.is_some() && r.view.kind == TxnKind::Refund).map(refund_json)
    }
}

#[derive(Deserialize)]
struct SettleBody {
    outcome: String,
}

/// `POST /_sim/refunds/{id}/settle` `{"outcome": "success" | "failure"}`.
pub(crate) async fn settle(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> Response {
    let outcome = serde_json::from_slice::<SettleBody>(&body).ok().and_then(|b| b.outcome.parse::<Outcome>().ok());
    let Some(outcome) = outcome.filter(|o| *o != Outcome::Declined) else {
        return error(StatusCode::BAD_REQUEST, "BAD_OUTCOME", "body must be {\"outcome\": \"success\" | \"failure\"}");
    };
    match sim(inner).settle_refund(&id, outcome) {
        Ok(t) => Json(t).into_response(),
        Err(e @ (SettleError::NotFound(_) | SettleError::NotARefund(_))) => {
            error(StatusCode::NOT_FOUND, "REFUND_NOT_FOUND", e.to_string())
        }
        Err(e @ SettleError::AlreadySettled { .. }) => error(StatusCode::CONFLICT, "ALREADY_SETTLED", e.to_string()),
    }
}

/// `GET /_sim/v2/orders/{merchantOrderId}`.
pub(crate) async fn get_order(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    match sim(inner).v2_order(&id) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", format!("no v2 order {id}")),
    }
}

/// `GET /_sim/v2/refunds/{merchantRefundId}`.
pub(crate) async fn get_refund(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    match sim(inner).v2_refund(&id) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, "REFUND_NOT_FOUND", format!("no v2 refund {id}")),
    }
}

/// `GET /_sim/v2/tokens`.
pub(crate) async fn tokens(State(inner): State<Arc<Inner>>) -> Response {
    let st = inner.lock();
    let o = &st.oauth;
    Json(json!({ "requests": o.requests, "issued": o.issued, "active": o.active(), "faults": o.faults }))
        .into_response()
}

/// `POST /_sim/v2/tokens/expire`.
pub(crate) async fn expire(State(inner): State<Arc<Inner>>) -> Response {
    sim(inner).expire_tokens();
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_sim/v2/tokens/revoke`.
pub(crate) async fn revoke(State(inner): State<Arc<Inner>>) -> Response {
    sim(inner).revoke_tokens();
    StatusCode::NO_CONTENT.into_response()
}

/// `PUT /_sim/v2/tokens/faults` with a [`TokenFaults`] body.
pub(crate) async fn put_token_faults(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let faults = match serde_json::from_slice::<TokenFaults>(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, "BAD_FAULTS", format!("token faults JSON: {e}")),
    };
    match sim(inner).set_token_faults(faults.clone()) {
        Ok(()) => Json(faults).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, "BAD_FAULTS", e.to_string()),
    }
}

/// `DELETE /_sim/v2/tokens/faults`.
pub(crate) async fn delete_token_faults(State(inner): State<Arc<Inner>>) -> Response {
    inner.lock().oauth.faults = TokenFaults::default();
    StatusCode::NO_CONTENT.into_response()
}
