//! The in-process [`TokenProvider`]: one cached access token per process, fetched from
//! PhonePe's OAuth endpoint with the client credentials, refreshed at its half-life, replaced
//! when PhonePe rejects it, and fetched by one caller at a time (the others wait for that fetch
//! and share its token).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::token::{AccessToken, TokenError, TokenProvider, now_epoch_s};
use super::wire;
use crate::{GatewayError, PhonePeV2Config};

/// Token answers larger than this are not PhonePe's.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Fetches and caches PG v2 access tokens for this process. `Debug` never shows the secret or
/// the token.
pub struct OAuthTokenProvider {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_version: u32,
    client_secret: SecretString,
    /// The token in hand. The lock is held across a fetch: that is the single flight.
    cached: Mutex<Option<AccessToken>>,
    fetches: AtomicU64,
}

impl fmt::Debug for OAuthTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthTokenProvider")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_version", &self.client_version)
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

impl OAuthTokenProvider {
    /// A provider for `cfg`'s client at its environment's OAuth host, over `http` (the PG
    /// client's, so both share TLS settings, timeouts and the connection pool).
    pub fn new(http: reqwest::Client, cfg: &PhonePeV2Config) -> Self {
        let base = cfg.environment.v2_oauth_base_url().as_str().trim_end_matches('/').to_owned();
        Self {
            http,
            token_url: format!("{base}{}", wire::TOKEN_PATH),
            client_id: cfg.client_id.clone(),
            client_version: cfg.client_version,
            client_secret: cfg.client_secret.clone(),
            cached: Mutex::new(None),
            fetches: AtomicU64::new(0),
        }
    }

    /// Token requests sent so far (for metrics and tests).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// One token request, not cached here (a provider that shares tokens between processes
    /// stores what it returns). Never logs the form, the answer body or the token.
    pub async fn fetch(&self) -> Result<AccessToken, TokenError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let version = self.client_version.to_string();
        let form = [
            ("client_id", self.client_id.as_str()),
            ("client_version", version.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("grant_type", wire::GRANT_TYPE),
        ];
        let unavailable = |reason: String| TokenError::Unavailable { reason };
        let resp = self.http.post(&self.token_url).form(&form).send().await.map_err(|e| unavailable(e.to_string()))?;
        let status = resp.status();
        if resp.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
            return Err(unavailable(format!("token answer HTTP {status} too large")));
        }
        let bytes = resp.bytes().await.map_err(|e| unavailable(e.to_string()))?;
        if bytes.len() > MAX_ANSWER_BYTES {
            return Err(unavailable(format!("token answer HTTP {status} too large")));
        }
        if !status.is_success() {
            tracing::warn!(http_status = %status, "PhonePe token request refused");
            return Err(match super::classify_answer(status.as_u16(), &bytes) {
                GatewayError::Rejected { code, message } => TokenError::Refused { code, message },
                other => unavailable(other.to_string()),
            });
        }
        let answer: wire::TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|e| unavailable(format!("token answer HTTP {status} unreadable: {e}")))?;
        if answer.access_token.is_empty() {
            return Err(unavailable("token answer has no access_token".into()));
        }
        if answer.token_type.as_deref().is_some_and(|t| t != wire::TOKEN_TYPE) {
            return Err(unavailable("token answer is not an O-Bearer token".into()));
        }
        let expires_at = answer.expires_at.ok_or_else(|| unavailable("token answer has no expires_at".into()))?;
        // Without issued_at, count the lifetime from now.
        let issued_at = answer.issued_at.unwrap_or_else(now_epoch_s);
        let token = AccessToken::new(answer.access_token, issued_at, expires_at);
        tracing::debug!(issued_at = token.issued_at(), expires_at = token.expires_at(), "PhonePe access token fetched");
        Ok(token)
    }
}

#[async_trait]
impl TokenProvider for OAuthTokenProvider {
    async fn current(&self) -> Result<AccessToken, TokenError> {
        let mut cached = self.cached.lock().await;
        let now = now_epoch_s();
        if let Some(t) = cached.as_ref().filter(|t| !t.needs_refresh(now)) {
            return Ok(t.clone());
        }
        match self.fetch().await {
            Ok(t) => {
                *cached = Some(t.clone());
                Ok(t)
            }
            // Past its half-life but not expired: the old token still works; try again next time.
            Err(e) => match cached.as_ref().filter(|t| !t.is_expired(now_epoch_s())) {
                Some(old) => {
                    tracing::warn!(error = %e, "PhonePe token refresh failed; the current token is used until it expires");
                    Ok(old.clone())
                }
                None => Err(e),
            },
        }
    }

    async fn refresh(&self, rejected: &AccessToken) -> Result<AccessToken, TokenError> {
        let mut cached = self.cached.lock().await;
        let now = now_epoch_s();
        // Someone else already replaced the rejected token while we waited: use theirs.
        if let Some(t) = cached.as_ref().filter(|t| !t.same_as(rejected) && !t.needs_refresh(now)) {
            return Ok(t.clone());
        }
        match self.fetch().await {
            Ok(t) => {
                *cached = Some(t.clone());
                Ok(t)
            }
            Err(e) => {
                // Never hand out the rejected token again.
                if cached.as_ref().is_some_and(|t| t.same_as(rejected)) {
                    *cached = None;
                }
                Err(e)
            }
        }
    }
}
