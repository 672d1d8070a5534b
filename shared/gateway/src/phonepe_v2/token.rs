//! PG v2 OAuth access tokens: what a token is, when to refresh it, and the [`TokenProvider`]
//! seam that hands one to the client.
//!
//! PhonePe's token endpoint takes the client id, version and secret (form-encoded, grant
//! `client_credentials`) and answers a token with `issued_at` and `expires_at` (epoch seconds).
//! A token must not be fetched per request: it is reused until its half-life,
//! `issued_at + (expires_at - issued_at) / 2`, as PhonePe's own SDKs do, and replaced at once
//! when PhonePe answers 401 to a call carrying it.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::GatewayError;

/// An access token for PG calls. `Debug` shows its times, never its value.
#[derive(Clone)]
pub struct AccessToken {
    value: SecretString,
    issued_at: u64,
    expires_at: u64,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"[REDACTED]")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl AccessToken {
    /// `issued_at` and `expires_at` in epoch seconds, as PhonePe answered them. An `issued_at`
    /// after `expires_at` is taken as `expires_at` (the token is then due for refresh at once).
    pub fn new(value: impl Into<String>, issued_at: u64, expires_at: u64) -> Self {
        Self { value: SecretString::from(value.into()), issued_at: issued_at.min(expires_at), expires_at }
    }

    /// The token itself, for the `Authorization` header only.
    pub fn secret(&self) -> &str {
        self.value.expose_secret()
    }

    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }

    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The half-life, `issued_at + (expires_at - issued_at) / 2` (epoch seconds): from then on
    /// the token is replaced before use.
    pub fn refresh_at(&self) -> u64 {
        self.issued_at + (self.expires_at - self.issued_at) / 2
    }

    /// True from the half-life on (`now` in epoch seconds).
    pub fn needs_refresh(&self, now: u64) -> bool {
        now >= self.refresh_at()
    }

    /// True from `expires_at` on: PhonePe no longer accepts it.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// Whether two tokens are the same token.
    pub fn same_as(&self, other: &AccessToken) -> bool {
        self.secret() == other.secret()
    }
}

/// The current time, epoch seconds (0 if the clock is before 1970).
pub fn now_epoch_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Why no token could be had. Either way the PG call it was for was never sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// PhonePe answered and refused (wrong client credentials: a configuration problem; or
    /// `TOO_MANY_REQUESTS`).
    #[error("PhonePe refused the token request: {code}: {message}")]
    Refused { code: String, message: String },
    /// No usable answer: no connection, a timeout, a 5xx, an unreadable answer.
    #[error("no access token: {reason}")]
    Unavailable { reason: String },
}

impl From<TokenError> for GatewayError {
    /// The PG call never left: a refusal stays a refusal (with PhonePe's code), anything else is
    /// [`GatewayError::Unreachable`] (safe to retry).
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Refused { code, message } => {
                GatewayError::Rejected { code, message: format!("access token refused: {message}") }
            }
            TokenError::Unavailable { reason } => {
                GatewayError::Unreachable { reason: format!("no access token: {reason}") }
            }
        }
    }
}

/// Where the PG v2 client gets its access token.
///
/// The in-process implementation ([`super::OAuthTokenProvider`], feature `client`) caches one
/// token per process, refreshes it at its half-life with a single fetch however many callers
/// wait, and replaces it when PhonePe rejects it. The two methods are shaped so that a
/// deployment-wide token kept in a database can implement the same trait later: `current`
/// reads the stored token and fetches (and stores) a new one only when it is due, and
/// `refresh` replaces the stored token only if it is still the rejected one (a conditional
/// write: when another process already replaced it, its replacement is returned instead of
/// fetching again).
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// A token to use now: the one in hand while before its half-life, else a new one.
    async fn current(&self) -> Result<AccessToken, TokenError>;

    /// PhonePe answered 401 to a call carrying `rejected`: a token to retry with, newer than
    /// `rejected` (already replaced by someone else, or fetched now).
    async fn refresh(&self, rejected: &AccessToken) -> Result<AccessToken, TokenError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_life() {
        let t = AccessToken::new("tok", 1_000, 4_600);
        assert_eq!(t.refresh_at(), 2_800);
        assert!(!t.needs_refresh(2_799) && t.needs_refresh(2_800));
        assert!(!t.is_expired(4_599) && t.is_expired(4_600));
        // odd lifetimes round down; a zero or inverted lifetime is due at once
        assert_eq!(AccessToken::new("t", 10, 13).refresh_at(), 11);
        assert!(AccessToken::new("t", 50, 50).needs_refresh(50));
        let inverted = AccessToken::new("t", 90, 60);
        assert_eq!((inverted.issued_at(), inverted.refresh_at()), (60, 60));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = AccessToken::new("very-secret-token", 1, 2);
        let shown = format!("{t:?}");
        assert!(!shown.contains("very-secret-token") && shown.contains("expires_at"), "{shown}");
        assert!(t.same_as(&t.clone()) && !t.same_as(&AccessToken::new("other", 1, 2)));
    }

    #[test]
    fn token_errors_become_gateway_errors() {
        let e: GatewayError = TokenError::Unavailable { reason: "HTTP 503".into() }.into();
        assert!(matches!(e, GatewayError::Unreachable { .. }) && e.retryable() && !e.outcome_unknown());
        let e: GatewayError = TokenError::Refused { code: "INVALID_CLIENT".into(), message: "no".into() }.into();
        assert_eq!(e.code(), Some("INVALID_CLIENT"));
        assert!(!e.retryable());
    }
}
