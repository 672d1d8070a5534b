//! One OAuth access token for the whole deployment ([`TokenStore`]): every function instance and
//! cold start reads the token from the store instead of asking the gateway's identity endpoint for
//! its own, and one caller at a time refreshes it, holding a lock taken with a conditional write.
//!
//! What both backends share: the stored form, argument checks, and the decisions
//! ([`may_begin`], [`may_finish`]) that DynamoDB expresses as condition expressions and the
//! embedded store evaluates inside its write transaction.
//!
//! The stored item (`PK` = `TOKEN#{name}`, `SK` = `#TOKEN`, `entity` = `TOKEN`): `access_token`
//! (S; a bearer credential: encrypted at rest like the rest of the table, never logged: its
//! `Debug` is redacted), `issued_at`, `expires_at` (N, Unix ms), `generation` (N, +1 per token
//! stored), and while someone refreshes it `refresh_holder` (S) and `refresh_until` (N, Unix ms).

use std::fmt;

use async_trait::async_trait;
use parkpay_domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::keys::ItemKey;

/// Longest token name or lock holder, in bytes.
pub const MAX_TOKEN_NAME_BYTES: usize = 256;
/// Longest access token, in bytes (PhonePe's are JWTs of well under 2 KB).
pub const MAX_ACCESS_TOKEN_BYTES: usize = 8 * 1024;

pub(crate) const TOKEN_PREFIX: &str = "TOKEN#";
pub(crate) const TOKEN_SK: &str = "#TOKEN";
// Attribute names for DynamoDB's expressions (the embedded store writes the whole item).
#[cfg_attr(not(feature = "dynamodb"), allow(dead_code))]
pub(crate) const ACCESS_TOKEN: &str = "access_token";
#[cfg_attr(not(feature = "dynamodb"), allow(dead_code))]
pub(crate) const ISSUED_AT: &str = "issued_at";
#[cfg_attr(not(feature = "dynamodb"), allow(dead_code))]
pub(crate) const EXPIRES_AT: &str = "expires_at";
#[cfg_attr(not(feature = "dynamodb"), allow(dead_code))]
pub(crate) const GENERATION: &str = "generation";
#[cfg_attr(not(feature = "dynamodb"), allow(dead_code))]
pub(crate) const REFRESH_HOLDER: &str = "refresh_holder";
#[cfg_attr(not(feature = "dynamodb"), allow(dead_code))]
pub(crate) const REFRESH_UNTIL: &str = "refresh_until";

/// The item of the token `name`.
pub(crate) fn token_key(name: &str) -> ItemKey {
    ItemKey { pk: format!("{TOKEN_PREFIX}{name}"), sk: TOKEN_SK.to_owned() }
}

/// An access token and its lifetime, as the identity endpoint gave them.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub access_token: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredToken")
            .field("access_token", &"[redacted]")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The token `name` as stored: the token (if any was ever stored), its generation (0 before the
/// first), and the refresh lock.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenState {
    pub token: Option<StoredToken>,
    pub generation: u64,
    pub refresh_holder: Option<String>,
    pub refresh_until: Option<Timestamp>,
}

/// One shared token per name, refreshed by one caller at a time.
///
/// A caller reads the token ([`load_token`](TokenStore::load_token)); when it is due for refresh
/// (or the gateway refused it), the caller takes the lock for the generation it read
/// ([`begin_refresh`](TokenStore::begin_refresh)), fetches a new token, and stores it
/// ([`finish_refresh`](TokenStore::finish_refresh)). Everyone else keeps using the token they
/// have, or waits briefly and reads again. Because the lock is taken only for the generation the
/// caller read, a caller that read a token someone has since replaced does not refresh it again.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// The token `name`, strongly consistent; the default [`TokenState`] when none is stored.
    async fn load_token(&self, name: &str) -> Result<TokenState, StoreError>;

    /// Takes the refresh lock of `name` for `holder` until `until`, if the stored generation is
    /// still `seen_generation` and no one holds the lock (or its holder's time ran out at `now`).
    /// `Ok(false)`: someone else refreshes, or has refreshed, it.
    async fn begin_refresh(
        &self,
        name: &str,
        seen_generation: u64,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Stores `token` as the next generation and releases the lock, if `holder` still holds it.
    /// `Ok(false)`: the lock was taken over (its time ran out); nothing is stored.
    async fn finish_refresh(&self, name: &str, holder: &str, token: &StoredToken) -> Result<bool, StoreError>;

    /// Releases the lock of `name` without storing a token, if `holder` still holds it: the
    /// refresh failed, and the next caller may try at once rather than after the lock's time.
    /// `Ok(false)`: `holder` did not hold it (any more).
    async fn abandon_refresh(&self, name: &str, holder: &str) -> Result<bool, StoreError>;
}

/// The stored form, as both backends keep it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct TokenItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    pub generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_holder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_until: Option<Timestamp>,
}

impl TokenItem {
    pub(crate) fn into_state(self) -> TokenState {
        let token = match (self.access_token, self.issued_at, self.expires_at) {
            (Some(access_token), Some(issued_at), Some(expires_at)) => {
                Some(StoredToken { access_token, issued_at, expires_at })
            }
            _ => None,
        };
        TokenState {
            token,
            generation: self.generation,
            refresh_holder: self.refresh_holder,
            refresh_until: self.refresh_until,
        }
    }
}

/// Whether `holder` may take the lock of `stored` (see [`TokenStore::begin_refresh`]).
#[cfg_attr(not(feature = "embedded"), allow(dead_code))]
pub(crate) fn may_begin(stored: &TokenItem, seen_generation: u64, now: Timestamp) -> bool {
    stored.generation == seen_generation
        && match (&stored.refresh_holder, stored.refresh_until) {
            (None, _) => true,
            (Some(_), Some(until)) => until <= now,
            (Some(_), None) => true,
        }
}

/// Whether `holder` holds the lock of `stored`.
#[cfg_attr(not(feature = "embedded"), allow(dead_code))]
pub(crate) fn may_finish(stored: &TokenItem, holder: &str) -> bool {
    stored.refresh_holder.as_deref() == Some(holder)
}

pub(crate) fn check_name(what: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() || value.len() > MAX_TOKEN_NAME_BYTES {
        return Err(StoreError::Invalid(format!("{what} must be 1 to {MAX_TOKEN_NAME_BYTES} bytes")));
    }
    Ok(())
}

pub(crate) fn check_token(token: &StoredToken) -> Result<(), StoreError> {
    if token.access_token.is_empty() || token.access_token.len() > MAX_ACCESS_TOKEN_BYTES {
        return Err(StoreError::Invalid(format!("an access token must be 1 to {MAX_ACCESS_TOKEN_BYTES} bytes")));
    }
    if token.expires_at <= token.issued_at {
        return Err(StoreError::Invalid("a token must expire after it is issued".into()));
    }
    Ok(())
}

pub(crate) fn check_finish(name: &str, holder: &str, token: &StoredToken) -> Result<(), StoreError> {
    check_name("a token name", name)?;
    check_name("a lock holder", holder)?;
    check_token(token)
}

pub(crate) fn check_begin(name: &str, holder: &str, now: Timestamp, until: Timestamp) -> Result<(), StoreError> {
    check_name("a token name", name)?;
    check_name("a lock holder", holder)?;
    if until <= now {
        return Err(StoreError::Invalid("a refresh lock must last past now".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms).unwrap()
    }

    #[test]
    fn lock_rules() {
        let free = TokenItem { generation: 2, ..TokenItem::default() };
        assert!(may_begin(&free, 2, at(0)));
        assert!(!may_begin(&free, 1, at(0)), "a generation since replaced");
        let held = TokenItem { refresh_holder: Some("a".into()), refresh_until: Some(at(100)), ..free };
        assert!(!may_begin(&held, 2, at(99)));
        assert!(may_begin(&held, 2, at(100)), "the holder's time ran out");
        assert!(may_finish(&held, "a") && !may_finish(&held, "b"));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let t = StoredToken { access_token: "eyJsecret".into(), issued_at: at(0), expires_at: at(1) };
        assert!(!format!("{t:?}").contains("eyJsecret"));
        let s = TokenState { token: Some(t), ..TokenState::default() };
        assert!(!format!("{s:?}").contains("eyJsecret"));
    }

    #[test]
    fn arguments_are_checked() {
        let t = |a: &str, i, e| StoredToken { access_token: a.into(), issued_at: at(i), expires_at: at(e) };
        assert!(check_token(&t("x", 0, 1)).is_ok());
        assert!(check_token(&t("", 0, 1)).is_err());
        assert!(check_token(&t("x", 1, 1)).is_err());
        assert!(check_token(&t(&"x".repeat(MAX_ACCESS_TOKEN_BYTES + 1), 0, 1)).is_err());
        assert!(check_begin("n", "h", at(0), at(1)).is_ok());
        assert!(check_begin("", "h", at(0), at(1)).is_err());
        assert!(check_begin("n", "", at(0), at(1)).is_err());
        assert!(check_begin("n", "h", at(1), at(1)).is_err());
    }
}
