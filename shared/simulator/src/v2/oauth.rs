//! PG v2 OAuth: `POST /v1/oauth/token` (form-encoded client credentials) issues `O-Bearer`
//! access tokens; every v2 PG call must carry a valid, unexpired, unrevoked one. Token faults
//! make the token endpoint fail or PG calls answer 401 whatever token they carry.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Reply, codes};
use crate::engine::Inner;
use crate::faults::FaultError;
use crate::util::{new_token, now_ms};

/// Most tokens kept; past this, expired and revoked ones are forgotten on the next issue.
const MAX_TOKENS: usize = 10_000;
/// Largest count a token fault may ask for.
pub const MAX_TOKEN_FAULT_COUNT: u32 = 10_000;

/// Faults of the OAuth side. Every field defaults to "no fault", so `{}` is a no-op.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenFaults {
    /// Answer the next this-many v2 PG calls (pay, SDK order, status, refund, refund status)
    /// with 401 `AUTHORIZATION_FAILED`, whatever token they carry: a token PhonePe stopped
    /// accepting before its `expires_at`, as the client sees it.
    pub reject_next_calls: u32,
    /// Answer the next this-many token requests with HTTP 500 `INTERNAL_SERVER_ERROR` (counted
    /// as requests; no token issued).
    pub fail_next_token_requests: u32,
}

impl TokenFaults {
    pub fn validate(&self) -> Result<(), FaultError> {
        if self.reject_next_calls > MAX_TOKEN_FAULT_COUNT || self.fail_next_token_requests > MAX_TOKEN_FAULT_COUNT {
            return Err(FaultError(format!("token fault counts must be at most {MAX_TOKEN_FAULT_COUNT}")));
        }
        Ok(())
    }
}

struct Issued {
    expires_at_ms: u64,
    revoked: bool,
}

/// Issued tokens, counters and token faults (inside the simulator's state lock).
#[derive(Default)]
pub(crate) struct TokenStore {
    tokens: HashMap<String, Issued>,
    /// Token endpoint requests, whatever their answer.
    pub requests: u64,
    /// Tokens issued.
    pub issued: u64,
    pub faults: TokenFaults,
}

impl TokenStore {
    /// Tokens that would be accepted now.
    pub fn active(&self) -> usize {
        let now = now_ms();
        self.tokens.values().filter(|t| !t.revoked && now < t.expires_at_ms).count()
    }

    /// Every issued token expires now.
    pub fn expire_all(&mut self) {
        let now = now_ms();
        for t in self.tokens.values_mut() {
            t.expires_at_ms = t.expires_at_ms.min(now);
        }
    }

    /// Every issued token is revoked (refused from now on, whatever its expiry).
    pub fn revoke_all(&mut self) {
        for t in self.tokens.values_mut() {
            t.revoked = true;
        }
    }

    fn issue(&mut self, lifetime_s: u64) -> (String, u64, u64) {
        let now = now_ms();
        if self.tokens.len() >= MAX_TOKENS {
            self.tokens.retain(|_, t| !t.revoked && now < t.expires_at_ms);
        }
        let token = format!("{}{}", new_token(), new_token());
        let issued_at = now / 1000;
        let expires_at = issued_at.saturating_add(lifetime_s);
        self.tokens.insert(token.clone(), Issued { expires_at_ms: expires_at.saturating_mul(1000), revoked: false });
        self.issued += 1;
        (token, issued_at, expires_at)
    }
}

fn unauthorized(message: &str) -> Reply {
    Reply::error(codes::AUTHORIZATION_FAILED, message)
}

/// Check a v2 PG call's `Authorization: O-Bearer <token>` (a `reject_next_calls` fault refuses
/// it whatever it carries).
pub(crate) fn authorize(inner: &Inner, headers: &HeaderMap) -> Result<(), Reply> {
    let mut st = inner.lock();
    let store = &mut st.oauth;
    if store.faults.reject_next_calls > 0 {
        store.faults.reject_next_calls -= 1;
        tracing::info!("v2 call refused with 401 whatever its token (fault)");
        return Err(unauthorized("the access token is not valid"));
    }
    let raw = headers.get(header::AUTHORIZATION).ok_or_else(|| unauthorized("Authorization header is missing"))?;
    let text = raw.to_str().map_err(|_| unauthorized("Authorization header is malformed"))?;
    let token = text
        .strip_prefix("O-Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("Authorization must be `O-Bearer <access token>`"))?;
    match store.tokens.get(token) {
        None => Err(unauthorized("the access token is not known")),
        Some(t) if t.revoked => Err(unauthorized("the access token was revoked")),
        Some(t) if now_ms() >= t.expires_at_ms => Err(unauthorized("the access token has expired")),
        Some(_) => Ok(()),
    }
}

/// `POST /v1/oauth/token`.
pub(crate) async fn token(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    process_token(&inner, &body).into_response()
}

fn process_token(inner: &Inner, body: &[u8]) -> Reply {
    {
        let mut st = inner.lock();
        st.oauth.requests += 1;
        if st.oauth.faults.fail_next_token_requests > 0 {
            st.oauth.faults.fail_next_token_requests -= 1;
            tracing::info!("token request answered 500 (fault)");
            return Reply::error(codes::INTERNAL_SERVER_ERROR, "the token could not be issued, try again");
        }
    }
    let mut form: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        form.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    let field = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    match field("grant_type") {
        Some("client_credentials") => {}
        Some(_) => return super::bad_request("grant_type must be client_credentials"),
        None => return super::bad_request("grant_type is required (form-encoded, client_credentials)"),
    }
    let (Some(id), Some(secret), Some(version)) = (field("client_id"), field("client_secret"), field("client_version"))
    else {
        return super::bad_request("client_id, client_version and client_secret are required (form-encoded)");
    };
    let v2 = &inner.cfg.v2;
    let known = id == v2.client_id
        && version.parse::<u32>().ok() == Some(v2.client_version)
        && secret == secrecy::ExposeSecret::expose_secret(&v2.client_secret);
    if !known {
        tracing::info!(client_id = %id, "token refused: unknown client credentials");
        return Reply::error(codes::INVALID_CLIENT, "the client id, version or secret is not valid");
    }
    let lifetime = v2.token_lifetime.as_secs().max(1);
    let (token, issued_at, expires_at) = inner.lock().oauth.issue(lifetime);
    tracing::info!(issued_at, expires_at, "access token issued");
    Reply::ok(json!({
        "access_token": token,
        "encrypted_access_token": token,
        "expires_in": null,
        "issued_at": issued_at,
        "expires_at": expires_at,
        "session_expires_at": expires_at,
        "token_type": "O-Bearer",
    }))
}
