//! One PhonePe PG v2 access token for the whole deployment.
//!
//! PhonePe's SDKs keep a token per process; on Lambda that is a token per cold start per
//! function. [`SharedToken`] keeps it in the store instead ([`TokenStore`]): every instance reads
//! the stored token, and when it reaches its half-life (or PhonePe refuses it) one instance, the
//! one whose conditional write takes the refresh lock for the generation it read, asks PhonePe's
//! token endpoint for a new one and stores it. The others keep using the token they have while it
//! is valid, or wait briefly for the new one. So the token endpoint is called about once per
//! half-life for the whole deployment, whatever the number of instances.
//!
//! Each instance also keeps the token in memory until its half-life, so a warm instance reads the
//! store only when the token is due.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parkpay_domain::Timestamp;
use parkpay_gateway::phonepe_v2::OAuthTokenProvider;
use parkpay_gateway::phonepe_v2::token::{AccessToken, TokenError, TokenProvider, now_epoch_s};
use parkpay_store::{StoredToken, TokenStore};

/// How long a refresher holds the lock: longer than a token request can take (its read timeout),
/// short enough that a crashed refresher holds nobody up for long.
pub const REFRESH_LOCK: Duration = Duration::from_secs(15);
/// How long an instance with no usable token waits for another's refresh before giving up:
/// longer than a token request may take (the PhonePe client's 10 s read timeout), so a slow
/// token endpoint delays cold instances rather than failing them (a failed refresh frees the
/// lock at once, and a waiter then tries itself).
pub const WAIT_FOR_REFRESH: Duration = Duration::from_secs(12);
const POLL: Duration = Duration::from_millis(50);

/// The deployment's token, shared through the store (see the module docs).
pub struct SharedToken {
    store: Arc<dyn TokenStore>,
    endpoint: Arc<OAuthTokenProvider>,
    /// The token's name in the store (one per PhonePe client id).
    name: String,
    /// This instance, as a lock holder.
    holder: String,
    /// The token in hand, and the generation it was stored as.
    local: tokio::sync::Mutex<Option<(AccessToken, u64)>>,
}

impl std::fmt::Debug for SharedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedToken").field("name", &self.name).field("holder", &self.holder).finish_non_exhaustive()
    }
}

fn to_stored(t: &AccessToken) -> Option<StoredToken> {
    let ms = |s: u64| {
        i64::try_from(s).ok().and_then(|s| s.checked_mul(1000)).and_then(|ms| Timestamp::from_unix_millis(ms).ok())
    };
    Some(StoredToken {
        access_token: t.secret().to_owned(),
        issued_at: ms(t.issued_at())?,
        expires_at: ms(t.expires_at())?,
    })
}

fn from_stored(t: &StoredToken) -> AccessToken {
    let s = |ts: Timestamp| u64::try_from(ts.unix_millis() / 1000).unwrap_or(0);
    AccessToken::new(t.access_token.clone(), s(t.issued_at), s(t.expires_at))
}

fn unavailable(reason: impl Into<String>) -> TokenError {
    TokenError::Unavailable { reason: reason.into() }
}

fn millis_now() -> Timestamp {
    Timestamp::from_unix_millis(i64::try_from(now_epoch_s()).unwrap_or(0).saturating_mul(1000))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

impl SharedToken {
    /// `name` identifies the token in the store: use one per PhonePe client id (e.g.
    /// `phonepe-v2#{client_id}`), so that two deployments sharing a table never mix tokens.
    pub fn new(store: Arc<dyn TokenStore>, endpoint: Arc<OAuthTokenProvider>, name: impl Into<String>) -> Self {
        let mut bytes = [0u8; 16];
        // Without randomness the holder is still unique enough per process for a lock.
        let _ = getrandom::fill(&mut bytes);
        let holder = format!("{}-{}", std::process::id(), bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        SharedToken { store, endpoint, name: name.into(), holder, local: tokio::sync::Mutex::new(None) }
    }

    /// A token no older than its half-life, unless `rejected` names the one to replace: the stored
    /// one if it qualifies, else one this instance fetches under the lock, else (someone else
    /// holds the lock) a still valid one, or the one the refresher stores within
    /// [`WAIT_FOR_REFRESH`].
    async fn obtain(&self, rejected: Option<&AccessToken>) -> Result<(AccessToken, u64), TokenError> {
        let started = tokio::time::Instant::now();
        loop {
            let state = self.store.load_token(&self.name).await.map_err(|e| unavailable(e.to_string()))?;
            let now = now_epoch_s();
            let stored = state.token.as_ref().map(from_stored);
            let usable = |t: &AccessToken| !t.is_expired(now) && rejected.is_none_or(|r| !t.same_as(r));
            if let Some(t) = stored.as_ref().filter(|t| usable(t) && !t.needs_refresh(now)) {
                return Ok((t.clone(), state.generation));
            }
            let until = Timestamp::from_unix_millis(millis_now().unix_millis() + REFRESH_LOCK.as_millis() as i64)
                .map_err(|_| unavailable("clock out of range"))?;
            let locked = self
                .store
                .begin_refresh(&self.name, state.generation, &self.holder, millis_now(), until)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            if locked {
                return match self.endpoint.fetch().await {
                    Ok(fresh) => {
                        let generation = state.generation + 1;
                        match to_stored(&fresh) {
                            Some(record) => match self.store.finish_refresh(&self.name, &self.holder, &record).await {
                                Ok(true) => {}
                                Ok(false) => tracing::warn!(
                                    "PhonePe token refreshed after this instance's lock ran out; kept in memory only"
                                ),
                                Err(e) => {
                                    tracing::warn!(error = %e, "PhonePe token could not be stored; kept in memory only")
                                }
                            },
                            None => tracing::warn!("PhonePe token times out of range; kept in memory only"),
                        }
                        Ok((fresh, generation))
                    }
                    // The refresh failed: the lock is released at once, so that the next caller (of
                    // any instance) may try again rather than wait for the lock to run out; the
                    // stored token, if still valid, serves until it expires.
                    Err(e) => {
                        if let Err(release) = self.store.abandon_refresh(&self.name, &self.holder).await {
                            tracing::warn!(error = %release, "PhonePe token refresh lock not released; it runs out by itself");
                        }
                        match stored.filter(|t| usable(t)) {
                            Some(old) => {
                                tracing::warn!(error = %e, "PhonePe token refresh failed; the current token is used until it expires");
                                Ok((old, state.generation))
                            }
                            None => Err(e),
                        }
                    }
                };
            }
            // Someone else refreshes (or just did): a still valid token serves meanwhile.
            if let Some(t) = stored.filter(|t| usable(t)) {
                return Ok((t, state.generation));
            }
            if started.elapsed() >= WAIT_FOR_REFRESH {
                return Err(unavailable("another instance is refreshing the PhonePe token"));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[async_trait]
impl TokenProvider for SharedToken {
    async fn current(&self) -> Result<AccessToken, TokenError> {
        let mut local = self.local.lock().await;
        if let Some((t, _)) = local.as_ref().filter(|(t, _)| !t.needs_refresh(now_epoch_s())) {
            return Ok(t.clone());
        }
        let (token, generation) = self.obtain(None).await?;
        *local = Some((token.clone(), generation));
        Ok(token)
    }

    async fn refresh(&self, rejected: &AccessToken) -> Result<AccessToken, TokenError> {
        let mut local = self.local.lock().await;
        if let Some((t, _)) = local.as_ref().filter(|(t, _)| !t.same_as(rejected) && !t.needs_refresh(now_epoch_s())) {
            return Ok(t.clone());
        }
        match self.obtain(Some(rejected)).await {
            Ok((token, generation)) => {
                *local = Some((token.clone(), generation));
                Ok(token)
            }
            Err(e) => {
                *local = None;
                Err(e)
            }
        }
    }
}
