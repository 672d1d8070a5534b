//! The parking around the payment: when the vehicle came in and went out (as gates scanned its
//! pass), how long the pass is valid, and when a driver may still cancel and get everything back.
//!
//! - A gate may be offline: it queues its scans and sends them later, each with the time the
//!   pass was scanned. So a scan is recorded by that time, not by when it arrives, and for each
//!   of entry and exit **the earliest scan wins**: a later scan of the same kind changes nothing
//!   ([`Transition::AlreadyApplied`]), an earlier one replaces it.
//! - [`CancellationRule::BeforeEntry`] (the default) lets the driver refund their own payment
//!   only while no entry is recorded and within a window after paying, which bounds what an
//!   offline gate can miss; [`CancellationRule::AnyTime`] keeps the original rule (a driver could
//!   refund at any time). Operators may always refund.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Transition;
use crate::error::DomainError;
use crate::time::Timestamp;

/// How far in the future a gate's clock may be: a scan later than `now` by more is refused.
pub const MAX_CLOCK_AHEAD_MS: i64 = 5 * 60 * 1000;

/// A gate's id as it names itself: 1 to 64 characters of `A-Z a-z 0-9 - _ .`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GateId(String);

impl GateId {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok { Ok(GateId(s.to_owned())) } else { Err(DomainError::InvalidGateId) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GateId {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        GateId::parse(&s)
    }
}

impl From<GateId> for String {
    fn from(g: GateId) -> String {
        g.0
    }
}

impl fmt::Display for GateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Entry or exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanKind {
    Entry,
    Exit,
}

impl ScanKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ScanKind::Entry => "entry",
            ScanKind::Exit => "exit",
        }
    }
}

/// One scan of the session's pass at a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    pub gate: GateId,
    /// When the gate scanned the pass (its clock).
    pub scanned_at: Timestamp,
    /// When we learned of it.
    pub recorded_at: Timestamp,
}

/// What the gates reported about a session: its entry and its exit, each the earliest scan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Visit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<Scan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<Scan>,
}

impl Visit {
    pub fn is_empty(&self) -> bool {
        self.entry.is_none() && self.exit.is_none()
    }

    pub fn scan(&self, kind: ScanKind) -> Option<&Scan> {
        match kind {
            ScanKind::Entry => self.entry.as_ref(),
            ScanKind::Exit => self.exit.as_ref(),
        }
    }

    /// Record a scan of `kind` at `gate`, scanned at `scanned_at`, learned `now`. The earliest
    /// scan of each kind wins. Refused (`INVALID_SCAN_TIME`): a scan before `not_before` (the
    /// booking), more than [`MAX_CLOCK_AHEAD_MS`] after `now`, or an exit before the entry (or an
    /// entry after the exit).
    pub fn record(
        &mut self,
        kind: ScanKind,
        gate: GateId,
        scanned_at: Timestamp,
        not_before: Timestamp,
        now: Timestamp,
    ) -> Result<Transition, DomainError> {
        if scanned_at < not_before || scanned_at.unix_millis() > now.unix_millis().saturating_add(MAX_CLOCK_AHEAD_MS) {
            return Err(DomainError::InvalidScanTime { reason: "outside the session's time" });
        }
        let out_of_order = match kind {
            ScanKind::Entry => self.exit.as_ref().is_some_and(|x| scanned_at > x.scanned_at),
            ScanKind::Exit => self.entry.as_ref().is_some_and(|e| scanned_at < e.scanned_at),
        };
        if out_of_order {
            return Err(DomainError::InvalidScanTime { reason: "an exit must not come before the entry" });
        }
        let slot = match kind {
            ScanKind::Entry => &mut self.entry,
            ScanKind::Exit => &mut self.exit,
        };
        match slot {
            Some(held) if held.scanned_at <= scanned_at => Ok(Transition::AlreadyApplied),
            _ => {
                *slot = Some(Scan { gate, scanned_at, recorded_at: now });
                Ok(Transition::Applied)
            }
        }
    }
}

/// When a driver may refund their own payment (`PARKPAY_CANCELLATION_RULE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancellationRule {
    /// Only while no entry is recorded and within `window_ms` of paying.
    BeforeEntry { window_ms: i64 },
    /// At any time (the original rule).
    AnyTime,
}

impl CancellationRule {
    /// 15 minutes (`PARKPAY_CANCEL_WINDOW_MINUTES`' default).
    pub const DEFAULT_WINDOW_MINUTES: i64 = 15;

    /// `before_entry` (with `window_minutes`) or `any_time`.
    pub fn parse(name: &str, window_minutes: i64) -> Option<Self> {
        match name {
            "before_entry" if (1..=7 * 24 * 60).contains(&window_minutes) => {
                Some(CancellationRule::BeforeEntry { window_ms: window_minutes * 60_000 })
            }
            "any_time" => Some(CancellationRule::AnyTime),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            CancellationRule::BeforeEntry { .. } => "before_entry",
            CancellationRule::AnyTime => "any_time",
        }
    }

    /// May the driver refund their own payment now? `paid_at`: when the session was paid.
    /// `REFUND_NOT_ALLOWED` (409) says why not.
    pub fn allows_driver_refund(self, visit: &Visit, paid_at: Timestamp, now: Timestamp) -> Result<(), DomainError> {
        match self {
            CancellationRule::AnyTime => Ok(()),
            CancellationRule::BeforeEntry { window_ms } => {
                if visit.entry.is_some() {
                    return Err(DomainError::RefundNotAllowed { reason: "the vehicle has entered the lot" });
                }
                if now.unix_millis() > paid_at.unix_millis().saturating_add(window_ms) {
                    return Err(DomainError::RefundNotAllowed {
                        reason: "the cancellation window after paying has passed",
                    });
                }
                Ok(())
            }
        }
    }
}

impl Default for CancellationRule {
    fn default() -> Self {
        CancellationRule::BeforeEntry { window_ms: Self::DEFAULT_WINDOW_MINUTES * 60_000 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms).unwrap()
    }

    fn gate(s: &str) -> GateId {
        GateId::parse(s).unwrap()
    }

    #[test]
    fn gate_ids() {
        assert!(GateId::parse("north-1").is_ok() && GateId::parse("G.2_b").is_ok());
        for bad in ["", "a b", "é", &"x".repeat(65)] {
            assert_eq!(GateId::parse(bad), Err(DomainError::InvalidGateId), "{bad:?}");
        }
    }

    #[test]
    fn the_earliest_scan_wins_and_repeats_change_nothing() {
        let mut v = Visit::default();
        let now = at(1_000_000);
        assert_eq!(v.record(ScanKind::Entry, gate("g1"), at(500_000), at(0), now), Ok(Transition::Applied));
        // the same scan again, and a later one: nothing changes
        assert_eq!(v.record(ScanKind::Entry, gate("g1"), at(500_000), at(0), now), Ok(Transition::AlreadyApplied));
        assert_eq!(v.record(ScanKind::Entry, gate("g2"), at(600_000), at(0), now), Ok(Transition::AlreadyApplied));
        assert_eq!(v.entry.as_ref().unwrap().gate, gate("g1"));
        // an offline gate's earlier scan arrives later: it wins
        assert_eq!(v.record(ScanKind::Entry, gate("g3"), at(400_000), at(0), at(2_000_000)), Ok(Transition::Applied));
        let e = v.entry.clone().unwrap();
        assert_eq!((e.gate, e.scanned_at, e.recorded_at), (gate("g3"), at(400_000), at(2_000_000)));
        // exits: not before the entry
        assert!(matches!(
            v.record(ScanKind::Exit, gate("g1"), at(300_000), at(0), now),
            Err(DomainError::InvalidScanTime { .. })
        ));
        assert_eq!(v.record(ScanKind::Exit, gate("g1"), at(900_000), at(0), now), Ok(Transition::Applied));
        // and an entry after the exit is refused too
        assert!(v.record(ScanKind::Entry, gate("g1"), at(950_000), at(0), now).is_err());
    }

    #[test]
    fn scans_outside_the_session_are_refused() {
        let mut v = Visit::default();
        let now = at(10_000_000);
        assert!(v.record(ScanKind::Entry, gate("g"), at(999), at(1_000), now).is_err(), "before booking");
        let ahead = at(10_000_000 + MAX_CLOCK_AHEAD_MS + 1);
        assert!(v.record(ScanKind::Entry, gate("g"), ahead, at(1_000), now).is_err(), "in the future");
        let slightly = at(10_000_000 + MAX_CLOCK_AHEAD_MS);
        assert!(v.record(ScanKind::Entry, gate("g"), slightly, at(1_000), now).is_ok(), "a gate clock a bit ahead");
    }

    #[test]
    fn cancellation_rules() {
        let rule = CancellationRule::default();
        let paid = at(1_000_000);
        let empty = Visit::default();
        assert_eq!(rule.allows_driver_refund(&empty, paid, at(1_000_000 + 15 * 60_000)), Ok(()));
        let late = rule.allows_driver_refund(&empty, paid, at(1_000_000 + 15 * 60_000 + 1)).unwrap_err();
        assert_eq!(late.code(), "REFUND_NOT_ALLOWED");
        let mut entered = Visit::default();
        let _ = entered.record(ScanKind::Entry, gate("g"), at(1_000_001), at(0), at(1_000_002)).unwrap();
        assert!(rule.allows_driver_refund(&entered, paid, at(1_000_003)).is_err(), "entered");
        assert_eq!(CancellationRule::AnyTime.allows_driver_refund(&entered, paid, at(9_000_000_000)), Ok(()));
        assert_eq!(
            CancellationRule::parse("before_entry", 30),
            Some(CancellationRule::BeforeEntry { window_ms: 1_800_000 })
        );
        assert_eq!(CancellationRule::parse("any_time", 0), Some(CancellationRule::AnyTime));
        for (name, minutes) in [("before_entry", 0), ("before_entry", 100_000), ("sometimes", 15), ("BEFORE_ENTRY", 15)]
        {
            assert_eq!(CancellationRule::parse(name, minutes), None, "{name} {minutes}");
        }
    }

    proptest! {
        /// Whatever order scans arrive in, the entry held is the earliest valid one.
        #[test]
        fn order_of_arrival_does_not_matter(times in proptest::collection::vec(1_000i64..100_000, 1..12)) {
            let now = at(1_000_000);
            let mut v = Visit::default();
            for t in &times {
                let _ = v.record(ScanKind::Entry, gate("g"), at(*t), at(0), now).unwrap();
            }
            prop_assert_eq!(v.entry.unwrap().scanned_at, at(*times.iter().min().unwrap()));
        }
    }
}
