//! parkpay's clock on the local server: the system clock plus an offset that only grows, so that
//! `POST /_dev/clock/advance` (and tests) can move parkpay's time forward without waiting, and
//! never back: every timestamp parkpay has already written stays in the past.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use parkpay_api::{Clock, SystemClock};
use parkpay_domain::Timestamp;

/// System time plus a forward-only offset (milliseconds).
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: AtomicI64,
}

impl OffsetClock {
    /// The system clock, not yet moved.
    pub fn new() -> Self {
        Self::default()
    }

    /// How far ahead of the system clock parkpay's time is.
    pub fn offset(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(Ordering::SeqCst).unsigned_abs())
    }

    /// Move parkpay's time forward by `by` (saturating; time never goes back).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let _ = self.offset_ms.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| Some(o.saturating_add(ms)));
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        let ms = SystemClock.now().unix_millis().saturating_add(self.offset_ms.load(Ordering::SeqCst));
        Timestamp::from_unix_millis(ms.min(Timestamp::MAX.unix_millis())).unwrap_or(Timestamp::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_system_time_and_only_moves_forward() {
        let clock = OffsetClock::new();
        let before = SystemClock.now().unix_millis();
        let now = clock.now().unix_millis();
        assert!(now >= before && now - before < 1_000);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.offset(), Duration::from_secs(90));
        let later = clock.now().unix_millis();
        assert!(later - SystemClock.now().unix_millis() > 89_000);
        clock.advance(Duration::from_secs(u64::MAX));
        assert_eq!(clock.now(), Timestamp::MAX);
    }
}
