//! The answer faults, shared by the v1 and v2 APIs: latency, forced answers, injected 500s,
//! hangs and garbage around the real work.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::engine::Inner;
use crate::faults::{ForcedAnswer, Operation, ServerError};
use crate::util::random_u64;

/// What a garbage-fault answer looks like: a proxy's error page with HTTP 200.
pub(crate) const GARBAGE_BODY: &str =
    "<html><head><title>Gateway</title></head><body>upstream answered something unexpected</body></html>";

/// Count the call, then apply the faults of `txn` (or the global ones) for `op` around `work`,
/// in the documented order: latency, `force` (answered by `forced`, nothing recorded),
/// `server_error: before` (answered by `internal_error`, nothing recorded), the work itself,
/// `server_error: after`, `hang_ms`, `garbage`.
pub(crate) async fn with_faults(
    inner: &Arc<Inner>,
    op: Operation,
    txn: Option<&str>,
    forced: impl FnOnce(&ForcedAnswer) -> Response,
    internal_error: impl Fn() -> Response,
    work: impl FnOnce() -> Response,
) -> Response {
    if let Some(txn) = txn {
        *inner.lock().calls.entry((op, txn.to_owned())).or_insert(0) += 1;
    }
    let faults = inner.faults_for(txn);
    if !faults.applies_to(op) {
        return work();
    }
    let jitter = match faults.latency_jitter_ms {
        0 => 0,
        j => random_u64() % (j + 1),
    };
    let latency = faults.latency_ms.saturating_add(jitter);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some(f) = &faults.force {
        tracing::info!(?op, ?txn, code = %f.code, "forced answer (fault)");
        return forced(f);
    }
    if faults.server_error == Some(ServerError::Before) {
        tracing::info!(?op, ?txn, "HTTP 500 before processing (fault)");
        return internal_error();
    }
    let mut answer = work();
    if faults.server_error == Some(ServerError::After) {
        tracing::info!(?op, ?txn, "HTTP 500 after processing (fault)");
        answer = internal_error();
    }
    if faults.hang_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.hang_ms)).await;
    }
    if faults.garbage {
        tracing::info!(?op, ?txn, "garbage answer (fault)");
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], GARBAGE_BODY).into_response();
    }
    answer
}
