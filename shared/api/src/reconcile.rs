//! Reconciliation: drive every open obligation (`parkpay_domain::obligation`) to an end.
//!
//! Each tick reads what is due next from the due index (the earliest `next_attempt_at` of each
//! of its shards, merged), and works through it earliest first, a few at a time, until the
//! tick's time budget is spent. An attempt is claimed with a conditional write that already
//! moves the obligation to its next slot, so overlapping reconcilers do not repeat each other's
//! work and an attempt that dies is retried at that slot. Because attempts push obligations
//! into the future, the due index is a queue that no set of long-lived obligations can starve:
//! whatever is due earliest goes first.
//!
//! What one attempt does, by kind:
//! - CHECK_PAYMENT: ask PhonePe's status; apply SUCCESS / FAILED through the callback's code
//!   path; at the timeout (20 minutes after PhonePe accepted the payment) with no success,
//!   expire it (FAILED, the unpaid session CANCELLED) and start watching for a late success.
//! - RECHECK_FAILED_PAYMENT: ask again on a slow schedule for 48 hours; a success found is
//!   applied, and refunded automatically when the session cannot take it.
//! - SEE_REFUND_THROUGH / AUTOMATIC_REFUND: ask the refund's status; apply a final one; if
//!   PhonePe has never seen it and the last send is older than the grace period, send it again
//!   with the same id.
//!
//! Every session loaded for an attempt is also checked against the sweep's rule
//! ([`crate::sweep`]): its records owed with no obligation become obligations first.
//!
//! An error (PhonePe or the store unreachable, rate limited) backs the obligation off
//! exponentially; nothing is ever given up because PhonePe could not be asked.
//!
//! The schedules are pure functions of time, so tests drive ticks with a compressed clock; the
//! Lambda runs [`Reconciler::run_invocation`] on an EventBridge schedule of one minute.

use std::time::{Duration, Instant};

use parkpay_domain::{GatewayApi, ObligationKind, PaymentStatus, RefundStatus, Timestamp};
use parkpay_gateway::{StatusReport, TxnState};
use parkpay_store::{AttentionList, DueEntry, Record, SessionBundle, StoreError, Write};
use tracing::Instrument;

pub use parkpay_domain::obligation::{PAYMENT_TIMEOUT_SECS as TIMEOUT_SECS, REFUND_RESEND_GRACE_SECS};

use crate::service::{
    ReportSource, apply_payment_report_from, apply_refund_report_from, error_code, expire_payment, finish_check_from,
    send_refund_from, txn_id, with_obligation, with_obligation_from,
};
use crate::state::AppState;
use crate::telemetry;

/// From each due-index shard, at most this many entries per tick.
pub const PER_SHARD: usize = 32;
/// Obligations worked on at the same time.
pub const CONCURRENCY: usize = 8;
/// Longest a tick keeps starting attempts (an invocation's remaining time bounds it further).
pub const TICK_BUDGET: Duration = Duration::from_secs(20);

/// What one tick (or an invocation's ticks) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Obligations due when the tick looked.
    pub pending: usize,
    /// Attempts made (claimed and acted on).
    pub checked: usize,
    /// Attempts that changed a payment or refund.
    pub applied: usize,
    /// Payments expired at the timeout.
    pub expired: usize,
    /// Refunds (re)sent to PhonePe.
    pub sent: usize,
    /// Attempts that failed (they are retried with backoff).
    pub errors: usize,
    /// Due obligations left for the next tick (the budget ran out).
    pub deferred: usize,
    /// How long the longest-waiting due obligation had waited past its attempt time when the
    /// tick looked (zero when none was due).
    pub oldest_wait: Duration,
}

impl TickReport {
    fn add(&mut self, other: &TickReport) {
        self.checked += other.checked;
        self.applied += other.applied;
        self.expired += other.expired;
        self.sent += other.sent;
        self.errors += other.errors;
        self.deferred = other.deferred;
        self.pending = other.pending;
        self.oldest_wait = other.oldest_wait;
    }
}

pub struct Reconciler {
    state: AppState,
}

enum Outcome {
    /// Not due any more, or another reconciler took it.
    Skipped,
    Checked {
        applied: bool,
    },
    Expired,
    Sent,
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Reconciler {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// One scheduled invocation: tick once a second until shortly before `deadline_ms` (Unix
    /// milliseconds, the invocation's deadline), at most 55 s, so PhonePe's 3-second schedule is
    /// kept with a one-minute EventBridge rule. At least one tick always runs; each tick is
    /// bounded by the time left. The totals of every tick, with `pending` and `deferred` as the
    /// last tick saw them.
    pub async fn run_invocation(&self, deadline_ms: u64) -> TickReport {
        let start = wall_ms();
        let stop_at = start + 55_000.min(deadline_ms.saturating_sub(start).saturating_sub(5_000));
        self.observe_attention().await;
        let mut total = TickReport::default();
        let (mut most_pending, mut longest_wait) = (0, Duration::ZERO);
        loop {
            let left = Duration::from_millis(stop_at.saturating_sub(wall_ms()).max(1_000));
            let r = self.tick_within(left.min(TICK_BUDGET)).await;
            total.add(&r);
            most_pending = most_pending.max(r.pending);
            longest_wait = longest_wait.max(r.oldest_wait);
            if wall_ms() + 1_000 >= stop_at {
                telemetry::reconcile_run(most_pending, longest_wait, total.errors);
                return total;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The attention lists' sizes as metrics (each counted up to
    /// [`telemetry::ATTENTION_COUNT_CAP`]): what the alarms on overdue obligations and obligations
    /// needing a person read.
    async fn observe_attention(&self) {
        let now = self.state.clock.now();
        let cap = telemetry::ATTENTION_COUNT_CAP;
        let (overdue, needs_person) = futures::join!(
            self.state.attention.list_attention(AttentionList::Overdue, now, None, cap),
            self.state.attention.list_attention(AttentionList::NeedsPerson, now, None, cap),
        );
        match (overdue, needs_person) {
            (Ok(overdue), Ok(needs_person)) => telemetry::attention(overdue.len(), needs_person.len()),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(alert = "RECONCILIATION_ERROR", error = %e, "reconciliation could not read the attention lists");
                telemetry::reconcile_error();
            }
        }
    }

    /// The earliest time an open obligation is due, if any.
    pub async fn next_due(&self) -> Option<Timestamp> {
        match self.state.pending.list_due(Timestamp::MAX, 1).await {
            Ok(due) => due.first().map(|d| d.due_at),
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation could not read the due index");
                None
            }
        }
    }

    /// Work through what is due now, within [`TICK_BUDGET`].
    pub async fn tick(&self) -> TickReport {
        self.tick_within(TICK_BUDGET).await
    }

    /// Work through what is due now, earliest first, starting no attempt after `budget`.
    pub async fn tick_within(&self, budget: Duration) -> TickReport {
        let started = Instant::now();
        let now = self.state.clock.now();
        let mut report = TickReport::default();
        let due_before = Timestamp::from_unix_millis(now.unix_millis() + 1).unwrap_or(now);
        let due = match self.state.pending.list_due(due_before, PER_SHARD).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(alert = "RECONCILIATION_ERROR", error = %e, "reconciliation could not list due obligations");
                report.errors += 1;
                return report;
            }
        };
        report.pending = due.len();
        report.oldest_wait = due.iter().map(|d| now.saturating_since(d.due_at)).max().unwrap_or_default();
        let mut rest = due.as_slice();
        while !rest.is_empty() {
            if started.elapsed() >= budget {
                report.deferred = rest.len();
                break;
            }
            let (batch, tail) = rest.split_at(rest.len().min(CONCURRENCY));
            rest = tail;
            let results = futures::future::join_all(batch.iter().map(|entry| {
                // Every line about this obligation names its session and transaction.
                self.one(entry, now).instrument(telemetry::obligation_span(&entry.session_id, &entry.target_id))
            }))
            .await;
            for (entry, result) in batch.iter().zip(results) {
                match result {
                    Ok(Outcome::Skipped) => {}
                    Ok(Outcome::Checked { applied }) => {
                        report.checked += 1;
                        report.applied += usize::from(applied);
                    }
                    Ok(Outcome::Expired) => {
                        report.checked += 1;
                        report.expired += 1;
                    }
                    Ok(Outcome::Sent) => {
                        report.checked += 1;
                        report.sent += 1;
                    }
                    Err(e) => {
                        report.errors += 1;
                        tracing::warn!(session = %entry.session_id, target = %entry.target_id, error = %e,
                            "reconciliation of one obligation failed; retried later");
                    }
                }
            }
        }
        if report.checked > 0 || report.errors > 0 || report.deferred > 0 {
            tracing::info!(?report, "reconciliation tick");
        }
        report
    }

    /// Claim the obligation `entry` names, if it is still due, and act on it.
    async fn one(&self, entry: &DueEntry, now: Timestamp) -> Result<Outcome, String> {
        let store = &self.state.store;
        let bundle = store.load_session(&entry.session_id).await.map_err(|e| e.to_string())?;
        let Some(mut bundle) = bundle else { return Ok(Outcome::Skipped) };
        // The sweep's rule on every session loaded: money of this session owed with no
        // obligation (records from before obligations) becomes obligations now.
        match crate::sweep::sweep_bundle(&**store, &*self.state.clock, &bundle).await {
            Ok(found) if !found.is_empty() => match store.load_session(&entry.session_id).await {
                Ok(Some(b)) => bundle = b,
                Ok(None) => return Ok(Outcome::Skipped),
                Err(e) => return Err(e.to_string()),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(session = %entry.session_id, error = %e.message, "sweep of a session failed"),
        }
        let Some(current) = bundle.obligation(&entry.target_id) else { return Ok(Outcome::Skipped) };
        let mut claimed = current.clone();
        if !claimed.claim(now).is_applied() {
            return Ok(Outcome::Skipped);
        }
        let write = Write::Update { record: Record::Obligation(claimed.clone()), expected_version: current.version() };
        match store.commit(vec![write]).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Ok(Outcome::Skipped),
            Err(e) => return Err(e.to_string()),
        }
        // The session as now stored: what the attempt's answer is applied to, with no second read
        // (a concurrent change meanwhile makes that write conflict, and it reloads).
        if let Some(o) = bundle.obligations.iter_mut().find(|o| o.target_id() == claimed.target_id()) {
            *o = claimed.clone();
        }
        if now >= claimed.due_by() {
            tracing::error!(alert = "OBLIGATION_OVERDUE", kind = claimed.kind().as_str(), session = %entry.session_id,
                target = %entry.target_id, amount = %claimed.amount(), attempts = claimed.attempts(),
                last_code = claimed.last_code().unwrap_or(""), "an obligation is past its deadline");
        }
        let result = match claimed.kind() {
            ObligationKind::CheckPayment | ObligationKind::RecheckFailedPayment => {
                self.check_payment(&bundle, &claimed, now).await
            }
            ObligationKind::SeeRefundThrough | ObligationKind::AutomaticRefund => {
                self.see_refund_through(&bundle, &claimed, now).await
            }
            ObligationKind::ExcessRefund => Ok(Outcome::Skipped),
        };
        if let Err(why) = &result {
            let why = why.clone();
            let _ = with_obligation(&self.state, &entry.session_id, &entry.target_id, |o, now| {
                o.note_error(&why, now);
            })
            .await;
        }
        result
    }

    /// End an obligation whose target is already settled.
    async fn end(&self, session_id: &parkpay_domain::SessionId, target: &str, note: &str) -> Result<Outcome, String> {
        with_obligation(&self.state, session_id, target, |o, now| {
            let _ = o.done(note, now);
        })
        .await
        .map_err(|e| e.message)?;
        Ok(Outcome::Checked { applied: false })
    }

    /// A payment's status, from the API that made it.
    async fn status(&self, api: GatewayApi, target: &str) -> Result<StatusReport, String> {
        let txn = txn_id(target).map_err(|e| e.message)?;
        self.state.gateways.of(api).status(&txn).await.map_err(|e| error_code(&e))
    }

    /// A refund's status, from the API that made it (PG v2 asks a refund endpoint of its own;
    /// v1 the same one).
    async fn refund_status(&self, api: GatewayApi, target: &str) -> Result<StatusReport, String> {
        let txn = txn_id(target).map_err(|e| e.message)?;
        self.state.gateways.of(api).refund_status(&txn).await.map_err(|e| error_code(&e))
    }

    async fn check_payment(
        &self,
        bundle: &SessionBundle,
        o: &parkpay_domain::Obligation,
        now: Timestamp,
    ) -> Result<Outcome, String> {
        let session_id = bundle.session.id();
        let payment_id = o.payment_id();
        let Some(payment) = bundle.payments.iter().find(|p| p.id() == payment_id) else {
            return Err("payment missing".into());
        };
        if payment.status() == PaymentStatus::Success {
            // Applied elsewhere; nothing to watch.
            return self.end(session_id, o.target_id(), "paid").await;
        }
        let report = self.status(payment.gateway(), payment_id.as_str()).await?;
        match report.state {
            TxnState::Success | TxnState::Failed => {
                let loaded = Some(bundle.clone());
                let source = ReportSource::Reconciliation;
                let (after, applied) =
                    apply_payment_report_from(&self.state, loaded, session_id, payment_id, &report, source)
                        .await
                        .map_err(|e| e.message)?;
                if !applied {
                    // e.g. FAILED again for a payment we hold FAILED, or another amount.
                    let still_open = after.obligation(o.target_id()).is_some_and(|x| x.is_open());
                    if still_open {
                        finish_check_from(&self.state, Some(after), session_id, o.target_id(), &report.code)
                            .await
                            .map_err(|e| e.message)?;
                    }
                }
                Ok(Outcome::Checked { applied })
            }
            TxnState::Pending | TxnState::NotFound => {
                if o.kind() == ObligationKind::CheckPayment && o.past_payment_timeout(now) {
                    expire_payment(&self.state, session_id, payment_id).await.map_err(|e| e.message)?;
                    return Ok(Outcome::Expired);
                }
                finish_check_from(&self.state, Some(bundle.clone()), session_id, o.target_id(), &report.code)
                    .await
                    .map_err(|e| e.message)?;
                Ok(Outcome::Checked { applied: false })
            }
        }
    }

    async fn see_refund_through(
        &self,
        bundle: &SessionBundle,
        o: &parkpay_domain::Obligation,
        now: Timestamp,
    ) -> Result<Outcome, String> {
        let session_id = bundle.session.id();
        let Some(refund_id) = o.refund_id() else { return Err("refund obligation without a refund".into()) };
        let Some(refund) = bundle.refunds.iter().find(|r| r.id() == refund_id) else {
            return Err("refund missing".into());
        };
        if refund.status() != RefundStatus::Pending {
            // Final already (the obligation should have ended with it): end it now.
            return self.end(session_id, o.target_id(), "refund already final").await;
        }
        let report = self.refund_status(refund.gateway(), refund_id.as_str()).await?;
        match report.state {
            TxnState::Success | TxnState::Failed => {
                let (_, applied) = apply_refund_report_from(
                    &self.state,
                    Some(bundle.clone()),
                    session_id,
                    refund_id,
                    report.state,
                    &report.code,
                    ReportSource::Reconciliation,
                )
                .await
                .map_err(|e| e.message)?;
                Ok(Outcome::Checked { applied })
            }
            TxnState::NotFound => {
                let last_sent = o.last_sent_at().unwrap_or(refund.created_at());
                let grace = Duration::from_secs(REFUND_RESEND_GRACE_SECS as u64);
                if now.saturating_since(last_sent) < grace {
                    finish_check_from(&self.state, Some(bundle.clone()), session_id, o.target_id(), &report.code)
                        .await
                        .map_err(|e| e.message)?;
                    return Ok(Outcome::Checked { applied: false });
                }
                // PhonePe never saw it: send it again, same id.
                tracing::info!(refund = %refund_id, attempts = o.attempts(), "refund unknown to PhonePe; sending it again");
                let sent =
                    with_obligation_from(&self.state, Some(bundle.clone()), session_id, o.target_id(), |o, now| {
                        o.note_sent(now)
                    })
                    .await
                    .map_err(|e| e.message)?;
                let mut after = bundle.clone();
                if let Some(sent) = sent
                    && let Some(o) = after.obligations.iter_mut().find(|o| o.target_id() == sent.target_id())
                {
                    *o = sent;
                }
                send_refund_from(&self.state, Some(after), bundle.session.user_id(), refund)
                    .await
                    .map_err(|e| e.message)?;
                Ok(Outcome::Sent)
            }
            TxnState::Pending => {
                finish_check_from(&self.state, Some(bundle.clone()), session_id, o.target_id(), &report.code)
                    .await
                    .map_err(|e| e.message)?;
                Ok(Outcome::Checked { applied: false })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_totals() {
        let mut t = TickReport::default();
        let wait = Duration::from_secs(7);
        t.add(&TickReport {
            pending: 5,
            checked: 2,
            applied: 1,
            expired: 1,
            sent: 1,
            errors: 1,
            deferred: 3,
            oldest_wait: wait,
        });
        t.add(&TickReport { pending: 2, checked: 1, ..TickReport::default() });
        let want =
            TickReport { pending: 2, checked: 3, applied: 1, expired: 1, sent: 1, errors: 1, ..TickReport::default() };
        assert_eq!(t, want);
    }
}
