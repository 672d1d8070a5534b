//! `Idempotency-Key` on the POSTs that create something (create-payment, refund), with AWS
//! Lambda Powertools' semantics: one conditional write takes the record; the same key with the
//! same body replays the first answer byte for byte; with a different body it is 422; while the
//! first is still running, 409; expiry is judged from stored timestamps.
//!
//! The key also fixes the id of what is created ([`derived_id`]): the PhonePe
//! `merchantTransactionId` of a payment or refund derives from the caller, the key and the body,
//! so a retry — even one that runs again after a crash or a timeout — can never create a second
//! charge or refund at PhonePe.
//!
//! Which answers are kept: 2xx and 4xx answers are stored and replayed (the request was
//! decided). 5xx, 409 and 429 answers release the record so that a retry runs again: they
//! describe a transient state (PhonePe or the store unavailable, a race), and a retry resumes
//! the same derived payment or refund rather than creating another.

use std::future::Future;

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use parkpay_store::{Acquire, IdempotencyRecord, IdempotencyStatus, StoredResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::http::{ApiError, body_bytes, json_response};
use crate::identity::Caller;
use crate::state::{AppState, random_id_bytes};

pub const HEADER: &str = "idempotency-key";
pub const MAX_KEY_CHARS: usize = 255;
/// How long a first request may run before a retry may take over (a crashed Lambda).
pub const IN_PROGRESS_MS: i64 = 60_000;
/// How long answers are replayed.
pub const EXPIRY_MS: i64 = 24 * 3600 * 1000;

/// The header's value: absent → `None`; 1–255 printable ASCII characters; else 422.
pub fn key_from(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers().get(HEADER) else { return Ok(None) };
    let v = v.to_str().ok().filter(|s| {
        !s.is_empty() && s.chars().count() <= MAX_KEY_CHARS && s.bytes().all(|b| (0x20..0x7f).contains(&b))
    });
    match v {
        Some(v) => Ok(Some(v.to_owned())),
        None => Err(ApiError::unprocessable(
            "INVALID_IDEMPOTENCY_KEY",
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
        )),
    }
}

/// A hash of the request body as JSON (key order and whitespace do not matter).
pub fn payload_hash(body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_else(|_| body.to_vec());
    hex(&Sha256::digest(&canonical))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The record key: caller, endpoint and the client's key (length-prefixed, so no user id can
/// collide with another's key).
pub fn record_key(caller: &Caller, scope: &str, key: &str) -> String {
    let user = caller.user_id.as_str();
    format!("{}:{user}#{scope}#{key}", user.len())
}

/// 16 bytes that fix the id of what this request creates.
pub fn derived_id(record_key: &str, payload_hash: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(record_key.as_bytes());
    h.update([0]);
    h.update(payload_hash.as_bytes());
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

fn keeps(status: StatusCode) -> bool {
    !(status.is_server_error() || status == StatusCode::CONFLICT || status == StatusCode::TOO_MANY_REQUESTS)
}

/// Run `work` under the request's `Idempotency-Key` (if any). `work` gets the derived id bytes
/// (random when there is no key) and answers `ok_status` with its value.
pub async fn run<T, F, Fut>(
    state: &AppState,
    caller: &Caller,
    scope: &str,
    req: &Request,
    ok_status: StatusCode,
    work: F,
) -> Result<Response<Body>, ApiError>
where
    T: Serialize,
    F: FnOnce([u8; 16]) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    // Errors name the request (`crate::routes::handle` put its ids in the extensions). A stored
    // answer keeps the id of the request that made it: a replay is that answer byte for byte,
    // and its own id is in its `x-request-id` header.
    let request_id = req.extensions().get::<crate::telemetry::RequestIds>().map(|ids| ids.request_id.clone());
    let answer = |r: Result<T, ApiError>| match r {
        Ok(v) => json_response(ok_status, &v),
        Err(e) => e.into_response_for(request_id.as_deref()),
    };
    let Some(key) = key_from(req)? else {
        return Ok(answer(work(random_id_bytes()).await));
    };
    let hash = payload_hash(body_bytes(req));
    let rkey = record_key(caller, scope, &key);
    let now = state.clock.now();
    let at = |ms: i64| parkpay_domain::Timestamp::from_unix_millis(now.unix_millis() + ms).map_err(ApiError::internal);
    let token = hex(&random_id_bytes());
    let record =
        IdempotencyRecord::in_progress(rkey.clone(), hash.clone(), token.clone(), at(IN_PROGRESS_MS)?, at(EXPIRY_MS)?);
    match state.idempotency.acquire(&record, now).await? {
        Acquire::Existing(existing) if existing.payload_hash != hash => Err(ApiError::unprocessable(
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was used with a different request body",
        )),
        Acquire::Existing(existing) => match (existing.status, existing.response) {
            (IdempotencyStatus::Completed, Some(stored)) => Ok(replay(stored)),
            _ => Err(ApiError::new(
                StatusCode::CONFLICT,
                "REQUEST_IN_PROGRESS",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )),
        },
        Acquire::Acquired => {
            let response = answer(work(derived_id(&rkey, &hash)).await);
            let text = match response.body() {
                Body::Text(t) => t.clone(),
                Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            };
            let outcome = if keeps(response.status()) {
                let stored = StoredResponse { status: response.status().as_u16(), body: text };
                state.idempotency.complete(&rkey, &token, &stored, at(EXPIRY_MS)?).await
            } else {
                state.idempotency.release(&rkey, &token).await
            };
            if let Err(e) = outcome {
                // The answer stands; at worst a retry runs again, on the same derived id.
                tracing::warn!(error = %e, scope, "idempotency record not updated");
            }
            Ok(response)
        }
    }
}

fn replay(stored: StoredResponse) -> Response<Body> {
    let mut resp = Response::new(Body::Text(stored.body));
    *resp.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_ignore_key_order_and_spacing() {
        assert_eq!(payload_hash(br#"{"a":1,"b":"x"}"#), payload_hash(b"{ \"b\" : \"x\", \"a\" : 1 }"));
        assert_ne!(payload_hash(br#"{"a":1}"#), payload_hash(br#"{"a":2}"#));
    }

    #[test]
    fn derived_ids_depend_on_everything() {
        let a = derived_id("k", "h");
        assert_eq!(a, derived_id("k", "h"));
        assert_ne!(a, derived_id("k", "h2"));
        assert_ne!(a, derived_id("k2", "h"));
    }

    #[test]
    fn kept_answers() {
        assert!(keeps(StatusCode::CREATED) && keeps(StatusCode::UNPROCESSABLE_ENTITY) && keeps(StatusCode::NOT_FOUND));
        assert!(
            !keeps(StatusCode::CONFLICT) && !keeps(StatusCode::SERVICE_UNAVAILABLE) && !keeps(StatusCode::BAD_GATEWAY)
        );
    }
}
