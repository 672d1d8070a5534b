//! What handlers share: clients built once per process (cold start), settings, the clock.

use std::sync::Arc;

use parkpay_domain::{LotCatalog, Paise, Timestamp};
use parkpay_store::{AttentionIndex, IdempotencyStore, PendingIndex, SessionScan, Store, TokenStore};
use url::Url;

/// The time source. Production reads the system clock; tests can compress or freeze time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp::from_unix_millis(ms).unwrap_or_else(|_| Timestamp::from_unix_millis(0).expect("epoch is valid"))
    }
}

/// 16 random bytes for a new id. OS randomness; on the (practically impossible) failure of the
/// OS source we fall back to time-and-counter bytes rather than panic, since ids must only be
/// unique, not secret (the store refuses a duplicate id anyway).
pub fn random_id_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        bytes[..8].copy_from_slice(&(t as u64).to_le_bytes());
        bytes[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    }
    bytes
}

/// The narrow store traits, usually served by one database.
#[derive(Clone)]
pub struct Stores {
    pub store: Arc<dyn Store>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub pending: Arc<dyn PendingIndex>,
    pub attention: Arc<dyn AttentionIndex>,
    /// Reading every session (the one-time sweep; never on a request path).
    pub scan: Arc<dyn SessionScan>,
    /// The deployment's PhonePe PG v2 access token.
    pub tokens: Arc<dyn TokenStore>,
}

impl Stores {
    pub fn new<D: Store + IdempotencyStore + PendingIndex + AttentionIndex + SessionScan + TokenStore + 'static>(
        db: D,
    ) -> Self {
        let db = Arc::new(db);
        Stores {
            store: db.clone(),
            idempotency: db.clone(),
            pending: db.clone(),
            attention: db.clone(),
            scan: db.clone(),
            tokens: db,
        }
    }
}

/// The shared state of one process: one Lambda execution environment, or the local server.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Idempotency records (the same database as `store`).
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Open obligations by their next attempt, for reconciliation (the same database as
    /// `store`).
    pub pending: Arc<dyn PendingIndex>,
    /// Obligations overdue or needing a person, for operators (the same database as `store`).
    pub attention: Arc<dyn AttentionIndex>,
    /// PhonePe: the API new payments use, and the client of each API configured (a record's
    /// own API serves its status reads, refunds and callbacks).
    pub gateways: crate::gateways::Gateways,
    pub lots: Arc<LotCatalog>,
    pub clock: Arc<dyn Clock>,
    /// Our PhonePe merchant id: notifications for another merchant are never applied. Empty
    /// when not configured (PG v2 alone: the OAuth client names the merchant).
    pub merchant_id: String,
    /// Where the payer's browser returns after the pay page.
    pub redirect_url: Url,
    /// Limits that keep one client from spilling over onto others.
    pub policy: Policy,
    /// The entry pass keys (`crate::passes`).
    #[cfg(feature = "passes")]
    pub passes: Arc<dyn crate::passes::PassKeySource>,
}

/// Limits read from the environment ([`Policy::from_lookup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `PARKPAY_MAX_REFUNDS_PER_PAYMENT` (default 10): refund requests a driver may make for one
    /// payment, FAILED ones included; then 409 `REFUND_LIMIT_REACHED`. Operators and automatic
    /// refunds are not counted.
    pub max_refunds_per_payment: u32,
    /// `PARKPAY_CANCELLATION_RULE` (`before_entry`, the default, or `any_time`) with
    /// `PARKPAY_CANCEL_WINDOW_MINUTES` (default 15): when a driver may refund their own payment
    /// (then 409 `REFUND_NOT_ALLOWED`). Operators always may.
    pub cancellation: parkpay_domain::CancellationRule,
    /// `PARKPAY_PASS_GRACE_MINUTES` (default 15): how long an entry pass stays valid after the
    /// booked time ends.
    pub pass_grace_minutes: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_refunds_per_payment: 10,
            cancellation: parkpay_domain::CancellationRule::default(),
            pass_grace_minutes: 15,
        }
    }
}

impl Policy {
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, crate::ConfigError> {
        let mut policy = Policy::default();
        if let Some(v) = env("PARKPAY_MAX_REFUNDS_PER_PAYMENT").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            policy.max_refunds_per_payment = v.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                crate::ConfigError::new("PARKPAY_MAX_REFUNDS_PER_PAYMENT", "must be a whole number from 1 to 1000")
            })?;
        }
        let get = |k: &str| env(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let window = match get("PARKPAY_CANCEL_WINDOW_MINUTES") {
            Some(v) => v.parse::<i64>().ok().filter(|n| (1..=7 * 24 * 60).contains(n)).ok_or_else(|| {
                crate::ConfigError::new(
                    "PARKPAY_CANCEL_WINDOW_MINUTES",
                    "must be a whole number of minutes from 1 to 10080",
                )
            })?,
            None => parkpay_domain::CancellationRule::DEFAULT_WINDOW_MINUTES,
        };
        if let Some(name) = get("PARKPAY_CANCELLATION_RULE") {
            policy.cancellation = parkpay_domain::CancellationRule::parse(&name.to_ascii_lowercase(), window)
                .ok_or_else(|| {
                    crate::ConfigError::new("PARKPAY_CANCELLATION_RULE", "must be before_entry or any_time")
                })?;
        } else {
            policy.cancellation = parkpay_domain::CancellationRule::BeforeEntry { window_ms: window * 60_000 };
        }
        if let Some(v) = get("PARKPAY_PASS_GRACE_MINUTES") {
            policy.pass_grace_minutes =
                v.parse::<i64>().ok().filter(|n| (0..=24 * 60).contains(n)).ok_or_else(|| {
                    crate::ConfigError::new(
                        "PARKPAY_PASS_GRACE_MINUTES",
                        "must be a whole number of minutes from 0 to 1440",
                    )
                })?;
        }
        Ok(policy)
    }
}

impl AppState {
    /// The largest amount a client may name (refunds, create-payment's optional amount).
    pub fn max_amount(&self) -> Paise {
        self.lots.limits().max_amount
    }
}
