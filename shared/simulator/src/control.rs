//! The control API under `/_sim/`: faults, inspection, completing payments, the callback log.
//! JSON in and out; errors are `{"error": {"code", "message"}}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::Simulator;
use crate::engine::Inner;
use crate::faults::Faults;
use crate::model::{CompleteError, Outcome};

pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": message.into() } }))).into_response()
}

pub(crate) fn sim(inner: Arc<Inner>) -> Simulator {
    Simulator { inner }
}

/// A `Faults` body, or the status and message refusing it.
fn parse_faults(body: &[u8]) -> Result<Faults, (StatusCode, String)> {
    let faults: Faults =
        serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, format!("faults JSON: {e}")))?;
    faults.validate().map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok(faults)
}

pub(crate) async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub(crate) async fn get_faults(State(inner): State<Arc<Inner>>) -> Response {
    Json(sim(inner).faults()).into_response()
}

pub(crate) async fn put_global(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    match parse_faults(&body) {
        Ok(f) => {
            inner.lock().faults.global = f.clone();
            Json(f).into_response()
        }
        Err((status, message)) => error(status, "BAD_FAULTS", message),
    }
}

pub(crate) async fn delete_global(State(inner): State<Arc<Inner>>) -> Response {
    inner.lock().faults.global = Faults::default();
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn put_txn(State(inner): State<Arc<Inner>>, Path(txn): Path<String>, body: Bytes) -> Response {
    match parse_faults(&body) {
        Ok(f) => {
            inner.lock().faults.transactions.insert(txn, f.clone());
            Json(f).into_response()
        }
        Err((status, message)) => error(status, "BAD_FAULTS", message),
    }
}

pub(crate) async fn delete_txn(State(inner): State<Arc<Inner>>, Path(txn): Path<String>) -> Response {
    inner.lock().faults.transactions.remove(&txn);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn delete_all(State(inner): State<Arc<Inner>>) -> Response {
    sim(inner).clear_all_faults();
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn list_payments(State(inner): State<Arc<Inner>>) -> Response {
    Json(json!({ "transactions": sim(inner).transactions() })).into_response()
}

pub(crate) async fn get_payment(State(inner): State<Arc<Inner>>, Path(txn): Path<String>) -> Response {
    match sim(inner).transaction(&txn) {
        Some(t) => Json(t).into_response(),
        None => error(StatusCode::NOT_FOUND, "TRANSACTION_NOT_FOUND", format!("no transaction {txn}")),
    }
}

#[derive(Deserialize)]
struct CompleteBody {
    outcome: String,
}

pub(crate) async fn complete(State(inner): State<Arc<Inner>>, Path(txn): Path<String>, body: Bytes) -> Response {
    let outcome = serde_json::from_slice::<CompleteBody>(&body).ok().and_then(|b| b.outcome.parse::<Outcome>().ok());
    let Some(outcome) = outcome else {
        return error(
            StatusCode::BAD_REQUEST,
            "BAD_OUTCOME",
            "body must be {\"outcome\": \"success\" | \"failure\" | \"declined\"}",
        );
    };
    match sim(inner).complete(&txn, outcome).await {
        Ok(t) => Json(t).into_response(),
        Err(e @ (CompleteError::NotFound(_) | CompleteError::NotAPayment(_))) => {
            error(StatusCode::NOT_FOUND, "TRANSACTION_NOT_FOUND", e.to_string())
        }
        Err(e @ CompleteError::AlreadyDecided { .. }) => error(StatusCode::CONFLICT, "ALREADY_DECIDED", e.to_string()),
    }
}

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    txn: Option<String>,
}

pub(crate) async fn callbacks(State(inner): State<Arc<Inner>>, Query(q): Query<CallbackQuery>) -> Response {
    let s = sim(inner);
    let list = match q.txn {
        Some(t) => s.callbacks_for(&t),
        None => s.callbacks(),
    };
    Json(json!({ "callbacks": list })).into_response()
}

pub(crate) async fn clear_callbacks(State(inner): State<Arc<Inner>>) -> Response {
    sim(inner).clear_callbacks();
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn reset(State(inner): State<Arc<Inner>>) -> Response {
    sim(inner).reset();
    StatusCode::NO_CONTENT.into_response()
}
