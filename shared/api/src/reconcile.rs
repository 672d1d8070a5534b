//! Reconciliation of PENDING payments and refunds (mandatory per PhonePe): poll the status API on
//! PhonePe's schedule (`phonepe-api.md` §1) until a final state or the timeout, and apply what it
//! says through the same code path as the callback ([`apply_payment_report`],
//! [`apply_refund_report`]).
//!
//! - A payment still PENDING (or unknown to PhonePe) at the timeout (20 minutes) is marked FAILED
//!   and its session, if still unpaid, is CANCELLED: the booking is released.
//! - A success that arrives after that (or for a session already paid by another payment) is
//!   refunded automatically (see `service::apply_payment_report`).
//! - Refunds are polled on the same schedule and, after it, every 10 minutes until final: money
//!   may have moved, so they never expire.
//!
//! The schedule is a pure function of a transaction's age, so tests drive it with a compressed
//! clock; the Lambda runs [`Reconciler::tick`] once a second for most of a minute, on an
//! EventBridge schedule of one minute.

use std::collections::HashMap;
use std::sync::Mutex;

use parkpay_domain::Timestamp;
use parkpay_gateway::{MerchantTxnId, StatusReport, TxnState};
use parkpay_store::{PendingTxn, TxnRef};

use crate::service::{ReportSource, apply_payment_report, apply_refund_report, expire_payment};
use crate::state::AppState;

/// First status check: 20 s after the payment started.
pub const FIRST_CHECK_SECS: i64 = 20;
/// PhonePe's payment timeout (15 or 20 minutes by doc revision; we take 20).
pub const TIMEOUT_SECS: i64 = 20 * 60;
/// After the schedule, a PENDING refund is checked this often.
pub const LATE_REFUND_EVERY_SECS: i64 = 10 * 60;
/// At most this many pending transactions are looked at per tick.
pub const BATCH: usize = 200;

/// The ages (seconds after creation) at which PhonePe's schedule checks a PENDING transaction:
/// at 20 s, then every 3 s for 30 s, every 6 s for 60 s, every 10 s for 60 s, every 30 s for
/// 60 s, then every 60 s until the timeout.
pub fn schedule() -> Vec<i64> {
    let mut at = vec![FIRST_CHECK_SECS];
    let mut t = FIRST_CHECK_SECS;
    for (every, during) in [(3, 30), (6, 60), (10, 60), (30, 60)] {
        let end = t + during;
        while t + every <= end {
            t += every;
            at.push(t);
        }
    }
    while t + 60 <= TIMEOUT_SECS {
        t += 60;
        at.push(t);
    }
    if at.last() != Some(&TIMEOUT_SECS) {
        at.push(TIMEOUT_SECS);
    }
    at
}

/// Whether a check is due for a transaction of `age_ms` last checked at age `last_ms`: some
/// scheduled age lies in `(last, age]` (or, never checked, the first one has passed).
pub fn due(schedule: &[i64], age_ms: i64, last_ms: Option<i64>) -> bool {
    let last = last_ms.unwrap_or(i64::MIN);
    schedule.iter().map(|s| s * 1000).any(|s| s > last && s <= age_ms)
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub pending: usize,
    pub checked: usize,
    pub applied: usize,
    pub expired: usize,
    pub errors: usize,
}

/// Remembers when each transaction was last checked (per process: a new Lambda environment
/// starts by checking everything due once).
pub struct Reconciler {
    state: AppState,
    schedule: Vec<i64>,
    last_checked: Mutex<HashMap<String, i64>>,
}

impl Reconciler {
    pub fn new(state: AppState) -> Self {
        Self { state, schedule: schedule(), last_checked: Mutex::new(HashMap::new()) }
    }

    /// One scheduled invocation: tick once a second until shortly before `deadline_ms` (Unix
    /// milliseconds, the invocation's deadline), at most 55 s, so PhonePe's 3-second schedule is
    /// kept with a one-minute EventBridge rule. At least one tick always runs. The totals of every
    /// tick, with `pending` as the last tick saw it.
    pub async fn run_invocation(&self, deadline_ms: u64) -> TickReport {
        let now_ms = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        };
        let stop_at = now_ms() + 55_000.min(deadline_ms.saturating_sub(now_ms()).saturating_sub(5_000));
        let mut total = TickReport::default();
        loop {
            let r = self.tick().await;
            total.checked += r.checked;
            total.applied += r.applied;
            total.expired += r.expired;
            total.errors += r.errors;
            total.pending = r.pending;
            if now_ms() + 1_000 >= stop_at {
                return total;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// The earliest time something is due (an obligation's next attempt), if any is known.
    /// Placeholder until reconciliation works from obligations: `None`.
    pub async fn next_due(&self) -> Option<Timestamp> {
        None
    }

    /// Check every PENDING transaction that is due, apply what PhonePe says, expire payments
    /// past the timeout.
    pub async fn tick(&self) -> TickReport {
        let now = self.state.clock.now();
        let mut report = TickReport::default();
        let before = Timestamp::from_unix_millis(now.unix_millis() - FIRST_CHECK_SECS * 1000).unwrap_or(now);
        let pending = match self.state.pending.list_pending(before, BATCH).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "reconciliation could not list pending transactions");
                report.errors += 1;
                return report;
            }
        };
        report.pending = pending.len();
        for item in pending {
            match self.one(&item, now).await {
                Ok(Outcome::Skipped) => {}
                Ok(Outcome::Checked { applied }) => {
                    report.checked += 1;
                    report.applied += usize::from(applied);
                }
                Ok(Outcome::Expired) => {
                    report.checked += 1;
                    report.expired += 1;
                }
                Err(e) => {
                    report.errors += 1;
                    tracing::warn!(txn = ?item.txn, error = %e, "reconciliation of one transaction failed");
                }
            }
        }
        if report.checked > 0 || report.errors > 0 {
            tracing::info!(?report, "reconciliation tick");
        }
        report
    }

    async fn one(&self, item: &PendingTxn, now: Timestamp) -> Result<Outcome, String> {
        let age_ms = now.unix_millis() - item.created_at.unix_millis();
        let (id, is_payment) = match &item.txn {
            TxnRef::Payment { payment_id, .. } => (payment_id.as_str().to_owned(), true),
            TxnRef::Refund { refund_id, .. } => (refund_id.as_str().to_owned(), false),
        };
        let last = self.last_checked.lock().map(|m| m.get(&id).copied()).unwrap_or(None);
        let past_timeout = age_ms >= TIMEOUT_SECS * 1000;
        let is_due = due(&self.schedule, age_ms, last)
            || (!is_payment && past_timeout && last.is_none_or(|l| age_ms - l >= LATE_REFUND_EVERY_SECS * 1000));
        if !is_due {
            return Ok(Outcome::Skipped);
        }
        if let Ok(mut m) = self.last_checked.lock() {
            m.insert(id.clone(), age_ms);
        }
        let txn = MerchantTxnId::parse(&id).map_err(|e| e.to_string())?;
        let status: Result<StatusReport, String> = self.state.gateway.status(&txn).await.map_err(|e| e.to_string());
        match &item.txn {
            TxnRef::Payment { session_id, payment_id } => {
                let report = match status {
                    Ok(r) => Some(r),
                    Err(e) if past_timeout => {
                        tracing::warn!(payment = %payment_id, error = %e, "status unavailable at the timeout");
                        None
                    }
                    Err(e) => return Err(e),
                };
                let final_report = report.as_ref().filter(|r| matches!(r.state, TxnState::Success | TxnState::Failed));
                if let Some(r) = final_report {
                    let (_, applied) =
                        apply_payment_report(&self.state, session_id, payment_id, r, ReportSource::Reconciliation)
                            .await
                            .map_err(|e| e.message)?;
                    return Ok(Outcome::Checked { applied });
                }
                if past_timeout {
                    // Still PENDING (or never seen by PhonePe) at the timeout. If PhonePe did not
                    // answer at all we keep trying: only a real answer lets us give up on it.
                    if report.is_none() {
                        return Err("status unavailable; will retry".into());
                    }
                    expire_payment(&self.state, session_id, payment_id).await.map_err(|e| e.message)?;
                    return Ok(Outcome::Expired);
                }
                Ok(Outcome::Checked { applied: false })
            }
            TxnRef::Refund { session_id, refund_id } => {
                let r = status?;
                let (_, applied) =
                    apply_refund_report(&self.state, session_id, refund_id, r.state, ReportSource::Reconciliation)
                        .await
                        .map_err(|e| e.message)?;
                Ok(Outcome::Checked { applied })
            }
        }
    }
}

enum Outcome {
    Skipped,
    Checked { applied: bool },
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_phonepes() {
        let s = schedule();
        assert_eq!(&s[..12], &[20, 23, 26, 29, 32, 35, 38, 41, 44, 47, 50, 56]);
        // every 6 s for 60 s after 50, every 10 s for 60 s after 110, every 30 s for 60 s after 170
        assert!(s.contains(&110) && s.contains(&120) && s.contains(&170) && s.contains(&200) && s.contains(&230));
        assert!(!s.contains(&180));
        // then every minute until 20 minutes
        assert!(s.contains(&290) && s.contains(&350) && s.contains(&1190));
        assert_eq!(*s.last().unwrap(), 1200);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s.len(), 1 + 10 + 10 + 6 + 2 + 16 + 1);
    }

    #[test]
    fn due_rules() {
        let s = schedule();
        assert!(!due(&s, 19_999, None));
        assert!(due(&s, 20_000, None));
        assert!(!due(&s, 22_000, Some(20_000)));
        assert!(due(&s, 23_000, Some(20_000)));
        // a long gap: one check catches up, not one per missed slot
        assert!(due(&s, 600_000, Some(23_000)));
        assert!(!due(&s, 600_500, Some(600_000)));
    }
}
