//! Obligations: what parkpay still owes someone, written down so that it is driven to an end
//! however often processes die, PhonePe is slow or the store refuses a write.
//!
//! An obligation is created **in the same commit** as the state change that creates the debt
//! (a payment started, a refund requested, a stray success recorded, a payment declined), and it
//! names one payment or refund, its **target**: one obligation per target (the target's id is
//! its key), whose [`ObligationKind`] may change as the target does:
//!
//! ```text
//!  payment started ──► CHECK_PAYMENT ──SUCCESS (session paid)──────────────────► done
//!                          │ FAILED / expired at the timeout
//!                          ▼
//!                     RECHECK_FAILED_PAYMENT ──still FAILED 48 h after acceptance──► done
//!                          │ late SUCCESS (the session cannot take it)
//!                          ▼
//!         (payment done; an AUTOMATIC_REFUND obligation for a new refund, same commit)
//!
//!  refund requested ──► SEE_REFUND_THROUGH ──SUCCESS / definite refusal──► done
//!  stray success    ──► AUTOMATIC_REFUND   ──SUCCESS──► done
//!                                          └─definite refusal──► needs a person
//!  refund held FAILED, later SUCCESS and more refunded than paid ──► EXCESS_REFUND (needs a person)
//! ```
//!
//! While [`ObligationState::Open`], an obligation has a `next_attempt_at`; reconciliation works
//! from the obligations due soonest (the store indexes them by that time), so no set of
//! long-lived obligations can starve a new one. Each attempt is claimed with a conditional write
//! ([`Obligation::claim`]) that already moves `next_attempt_at` to the next slot of the
//! schedule, so an attempt whose process dies is simply tried again then.
//!
//! The schedules are pure functions of time (tests compress the clock):
//! - payments PENDING: PhonePe's reconciliation schedule ([`phonepe_schedule`]) from the moment
//!   PhonePe accepted the payment, until [`PAYMENT_TIMEOUT_SECS`];
//! - payments FAILED: [`RECHECK_SCHEDULE_SECS`], slowly, until [`RECHECK_WINDOW_SECS`] (48 h);
//! - refunds: PhonePe's schedule, then every [`LATE_REFUND_EVERY_SECS`];
//! - after an error (PhonePe or the store unreachable): exponential backoff from
//!   [`ERROR_BACKOFF_BASE_SECS`] to [`ERROR_BACKOFF_MAX_SECS`].

use serde::{Deserialize, Serialize};

use crate::ids::{PaymentId, RefundId, SessionId};
use crate::money::Paise;
use crate::payment::Payment;
use crate::refund::Refund;
use crate::time::Timestamp;
use crate::{Transition, touch};

/// First status check: 20 s after the payment (or refund) started.
pub const FIRST_CHECK_SECS: i64 = 20;
/// PhonePe's payment timeout (15 or 20 minutes by doc revision; we take 20), counted from when
/// PhonePe accepted the payment.
pub const PAYMENT_TIMEOUT_SECS: i64 = 20 * 60;
/// A FAILED or expired payment is re-checked for a late success this long after acceptance.
pub const RECHECK_WINDOW_SECS: i64 = 48 * 3600;
/// Ages (seconds after acceptance) of the slow re-checks of a FAILED payment.
pub const RECHECK_SCHEDULE_SECS: [i64; 10] =
    [30 * 60, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600, 18 * 3600, 24 * 3600, 36 * 3600, RECHECK_WINDOW_SECS];
/// After PhonePe's schedule, a PENDING refund is checked this often.
pub const LATE_REFUND_EVERY_SECS: i64 = 10 * 60;
/// A refund that PhonePe has never seen is sent again once this long has passed since it was
/// last sent (a request in flight may still arrive; PhonePe: check the status before any retry).
pub const REFUND_RESEND_GRACE_SECS: i64 = 60;
/// First wait after an error; doubled per consecutive error up to [`ERROR_BACKOFF_MAX_SECS`].
pub const ERROR_BACKOFF_BASE_SECS: i64 = 5;
pub const ERROR_BACKOFF_MAX_SECS: i64 = 10 * 60;
/// A refund not final this long after it was requested is overdue (a person should look).
pub const REFUND_OVERDUE_SECS: i64 = 24 * 3600;
/// A payment check still open this long after the payment timeout is overdue.
pub const PAYMENT_OVERDUE_GRACE_SECS: i64 = 10 * 60;
/// An open obligation whose attempt is this late is overdue (reconciliation is not keeping up).
pub const LATE_ATTEMPT_OVERDUE_SECS: i64 = 5 * 60;
/// The longest `last_code` / `note` kept (PhonePe's codes are short; notes are ours).
const MAX_TEXT: usize = 200;

/// The ages (seconds after acceptance) at which PhonePe's schedule checks a PENDING
/// transaction: at 20 s, then every 3 s for 30 s, every 6 s for 60 s, every 10 s for 60 s,
/// every 30 s for 60 s, then every 60 s until the timeout.
pub fn phonepe_schedule() -> Vec<i64> {
    let mut at = vec![FIRST_CHECK_SECS];
    let mut t = FIRST_CHECK_SECS;
    for (every, during) in [(3, 30), (6, 60), (10, 60), (30, 60)] {
        let end = t + during;
        while t + every <= end {
            t += every;
            at.push(t);
        }
    }
    while t + 60 <= PAYMENT_TIMEOUT_SECS {
        t += 60;
        at.push(t);
    }
    if at.last() != Some(&PAYMENT_TIMEOUT_SECS) {
        at.push(PAYMENT_TIMEOUT_SECS);
    }
    at
}

/// The first scheduled age strictly after `age_secs` (seconds, may be fractional in ms).
fn next_slot(schedule: &[i64], age_ms: i64) -> Option<i64> {
    schedule.iter().copied().find(|s| s * 1000 > age_ms)
}

fn plus_secs(t: Timestamp, secs: i64) -> Timestamp {
    plus_ms(t, secs.saturating_mul(1000))
}

fn plus_ms(t: Timestamp, ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(t.unix_millis().saturating_add(ms).clamp(0, Timestamp::MAX.unix_millis()))
        .unwrap_or(Timestamp::MAX)
}

fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(MAX_TEXT).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ObligationKind {
    /// A payment PENDING at PhonePe: ask its status on PhonePe's schedule; expire it at the
    /// timeout.
    CheckPayment,
    /// A payment held FAILED (declined or expired): ask again, slowly, for 48 hours after
    /// acceptance, in case PhonePe completes it late.
    RecheckFailedPayment,
    /// A refund a driver or operator asked for: see it to SUCCESS or a definite refusal, sending
    /// it again (same id) if PhonePe never saw it.
    SeeRefundThrough,
    /// A refund parkpay started itself, of money a session cannot take (a success after the
    /// session was cancelled, timed out or paid by another payment).
    AutomaticRefund,
    /// PhonePe reported SUCCESS for a refund we held FAILED, and refunds now exceed what was
    /// paid: a person must reconcile it with PhonePe.
    ExcessRefund,
}

impl ObligationKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ObligationKind::CheckPayment => "CHECK_PAYMENT",
            ObligationKind::RecheckFailedPayment => "RECHECK_FAILED_PAYMENT",
            ObligationKind::SeeRefundThrough => "SEE_REFUND_THROUGH",
            ObligationKind::AutomaticRefund => "AUTOMATIC_REFUND",
            ObligationKind::ExcessRefund => "EXCESS_REFUND",
        }
    }

    /// Whether the target is a refund (else a payment).
    pub const fn targets_refund(self) -> bool {
        matches!(
            self,
            ObligationKind::SeeRefundThrough | ObligationKind::AutomaticRefund | ObligationKind::ExcessRefund
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ObligationState {
    /// Reconciliation drives it; `next_attempt_at` says when.
    Open,
    /// Reconciliation cannot end it: a person must (the `note` says why).
    NeedsPerson,
    /// Ended. Kept as a record of what was done.
    Done,
}

impl ObligationState {
    pub const fn as_str(self) -> &'static str {
        match self {
            ObligationState::Open => "OPEN",
            ObligationState::NeedsPerson => "NEEDS_PERSON",
            ObligationState::Done => "DONE",
        }
    }
}

/// The target of an obligation, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObligationTarget {
    Payment(PaymentId),
    Refund(RefundId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Obligation {
    session_id: SessionId,
    /// The payment, or the payment of the refund.
    payment_id: PaymentId,
    /// Set when the target is a refund.
    refund_id: Option<RefundId>,
    kind: ObligationKind,
    state: ObligationState,
    /// What is at stake: the payment's or the refund's amount (the excess for EXCESS_REFUND).
    amount: Paise,
    /// Attempts made (status checks and sends), all kinds together.
    attempts: u32,
    /// Consecutive attempts that ended in an error (drives the backoff); 0 after an answer.
    errors: u32,
    /// PhonePe's last code (or our error's short name) for the target.
    last_code: Option<String>,
    /// When reconciliation should next act (meaningful while open).
    next_attempt_at: Timestamp,
    /// When the schedule counts from: PhonePe accepted the payment, or the refund was requested.
    base_at: Timestamp,
    /// Refunds: when the refund was last sent to PhonePe.
    last_sent_at: Option<Timestamp>,
    /// When PhonePe's status was last asked about the target (verify's rate limit reads it).
    last_status_at: Option<Timestamp>,
    /// Open past this time: overdue.
    due_by: Timestamp,
    /// Why a person is needed, or how it ended.
    note: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: u64,
}

impl Obligation {
    fn new(
        kind: ObligationKind,
        session_id: SessionId,
        payment_id: PaymentId,
        refund_id: Option<RefundId>,
        amount: Paise,
        base_at: Timestamp,
        now: Timestamp,
    ) -> Obligation {
        let mut o = Obligation {
            session_id,
            payment_id,
            refund_id,
            kind,
            state: ObligationState::Open,
            amount,
            attempts: 0,
            errors: 0,
            last_code: None,
            next_attempt_at: now,
            base_at,
            last_sent_at: None,
            last_status_at: None,
            due_by: now,
            note: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        o.due_by = o.deadline();
        o.next_attempt_at = o.next_by_schedule(now).unwrap_or(now);
        o
    }

    /// A payment was recorded PENDING (before PhonePe hears of it): check it on PhonePe's
    /// schedule.
    pub fn check_payment(payment: &Payment, now: Timestamp) -> Obligation {
        Obligation::new(
            ObligationKind::CheckPayment,
            payment.session_id().clone(),
            payment.id().clone(),
            None,
            payment.amount(),
            payment.created_at(),
            now,
        )
    }

    /// A refund was recorded PENDING; `automatic` when parkpay started it itself.
    pub fn see_refund_through(refund: &Refund, automatic: bool, now: Timestamp) -> Obligation {
        let kind = if automatic { ObligationKind::AutomaticRefund } else { ObligationKind::SeeRefundThrough };
        let mut o = Obligation::new(
            kind,
            refund.session_id().clone(),
            refund.payment_id().clone(),
            Some(refund.id().clone()),
            refund.amount(),
            refund.created_at(),
            now,
        );
        o.last_sent_at = Some(refund.created_at());
        o
    }

    pub fn session_id(&self) -> &SessionId {
        &self.session_id
    }
    pub fn payment_id(&self) -> &PaymentId {
        &self.payment_id
    }
    pub fn refund_id(&self) -> Option<&RefundId> {
        self.refund_id.as_ref()
    }
    /// The payment or refund this obligation is about; its id is the obligation's key.
    pub fn target(&self) -> ObligationTarget {
        match &self.refund_id {
            Some(r) => ObligationTarget::Refund(r.clone()),
            None => ObligationTarget::Payment(self.payment_id.clone()),
        }
    }
    /// The target's id (a PhonePe merchant transaction id).
    pub fn target_id(&self) -> &str {
        match &self.refund_id {
            Some(r) => r.as_str(),
            None => self.payment_id.as_str(),
        }
    }
    pub fn kind(&self) -> ObligationKind {
        self.kind
    }
    pub fn state(&self) -> ObligationState {
        self.state
    }
    pub fn is_open(&self) -> bool {
        self.state == ObligationState::Open
    }
    pub fn amount(&self) -> Paise {
        self.amount
    }
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
    pub fn errors(&self) -> u32 {
        self.errors
    }
    pub fn last_code(&self) -> Option<&str> {
        self.last_code.as_deref()
    }
    pub fn next_attempt_at(&self) -> Timestamp {
        self.next_attempt_at
    }
    pub fn base_at(&self) -> Timestamp {
        self.base_at
    }
    pub fn last_sent_at(&self) -> Option<Timestamp> {
        self.last_sent_at
    }
    pub fn last_status_at(&self) -> Option<Timestamp> {
        self.last_status_at
    }
    pub fn due_by(&self) -> Timestamp {
        self.due_by
    }
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Due for an attempt at `now`.
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.is_open() && self.next_attempt_at <= now
    }

    /// Open and late: past its deadline, or its attempt is [`LATE_ATTEMPT_OVERDUE_SECS`] late.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        self.is_open() && now >= self.overdue_from()
    }

    /// From when it is overdue as it stands (unless it moves on first): the earlier of its
    /// deadline and its next attempt plus [`LATE_ATTEMPT_OVERDUE_SECS`].
    pub fn overdue_from(&self) -> Timestamp {
        self.due_by.min(plus_secs(self.next_attempt_at, LATE_ATTEMPT_OVERDUE_SECS))
    }

    /// The payment's age (ms since acceptance) at `now`.
    pub fn age_ms(&self, now: Timestamp) -> i64 {
        now.unix_millis() - self.base_at.unix_millis()
    }

    /// Whether a PENDING payment has reached PhonePe's timeout at `now`.
    pub fn past_payment_timeout(&self, now: Timestamp) -> bool {
        self.age_ms(now) >= PAYMENT_TIMEOUT_SECS * 1000
    }

    /// Whether a FAILED payment's re-check window has ended at `now`.
    pub fn past_recheck_window(&self, now: Timestamp) -> bool {
        self.age_ms(now) >= RECHECK_WINDOW_SECS * 1000
    }

    fn deadline(&self) -> Timestamp {
        match self.kind {
            ObligationKind::CheckPayment => plus_secs(self.base_at, PAYMENT_TIMEOUT_SECS + PAYMENT_OVERDUE_GRACE_SECS),
            ObligationKind::RecheckFailedPayment => plus_secs(self.base_at, RECHECK_WINDOW_SECS + 3600),
            ObligationKind::SeeRefundThrough | ObligationKind::AutomaticRefund => {
                plus_secs(self.base_at, REFUND_OVERDUE_SECS)
            }
            ObligationKind::ExcessRefund => self.created_at,
        }
    }

    /// The next time the schedule of this kind asks for an attempt after `now` (no error).
    /// `None` when the schedule has ended (a FAILED payment past its 48 hours).
    pub fn next_by_schedule(&self, now: Timestamp) -> Option<Timestamp> {
        let age = self.age_ms(now);
        match self.kind {
            ObligationKind::CheckPayment => {
                // At and after the timeout: the expiry attempt itself (retried with backoff).
                Some(match next_slot(&phonepe_schedule(), age) {
                    Some(s) => plus_secs(self.base_at, s),
                    None => plus_secs(now, ERROR_BACKOFF_BASE_SECS),
                })
            }
            ObligationKind::RecheckFailedPayment => {
                next_slot(&RECHECK_SCHEDULE_SECS, age).map(|s| plus_secs(self.base_at, s))
            }
            ObligationKind::SeeRefundThrough | ObligationKind::AutomaticRefund => {
                Some(match next_slot(&phonepe_schedule(), age) {
                    Some(s) => plus_secs(self.base_at, s),
                    None => plus_secs(now, LATE_REFUND_EVERY_SECS),
                })
            }
            ObligationKind::ExcessRefund => None,
        }
    }

    fn backoff(&self, now: Timestamp) -> Timestamp {
        let exp = self.errors.saturating_sub(1).min(16);
        let secs = (ERROR_BACKOFF_BASE_SECS << exp).min(ERROR_BACKOFF_MAX_SECS);
        plus_secs(now, secs)
    }

    /// Take the attempt due at `now`: count it and move `next_attempt_at` to the next slot, so
    /// that if this attempt dies it is retried then. Persist with a conditional write before
    /// acting: of two reconcilers that read the same version, one wins and acts.
    /// `AlreadyApplied` (persist nothing, do nothing) when not due.
    pub fn claim(&mut self, now: Timestamp) -> Transition {
        if !self.is_due(now) {
            return Transition::AlreadyApplied;
        }
        self.attempts = self.attempts.saturating_add(1);
        // Every schedule's next slot is after `now`; past its end, a short retry.
        self.next_attempt_at = self.next_by_schedule(now).unwrap_or_else(|| plus_secs(now, ERROR_BACKOFF_BASE_SECS));
        touch(&mut self.updated_at, &mut self.version, now);
        Transition::Applied
    }

    /// PhonePe's status was asked at `now` (verify, reconciliation): recorded for the rate limit
    /// of `min_interval_secs`. `AlreadyApplied` when it was asked less than that ago: answer from
    /// the record instead of asking again.
    pub fn note_status_asked(&mut self, now: Timestamp, min_interval_secs: i64) -> Transition {
        if let Some(last) = self.last_status_at
            && now < plus_secs(last, min_interval_secs)
            && now >= last
        {
            return Transition::AlreadyApplied;
        }
        self.last_status_at = Some(now);
        touch(&mut self.updated_at, &mut self.version, now);
        Transition::Applied
    }

    /// The attempt got an answer from PhonePe (`code`) that leaves the obligation open: the
    /// claim already set the next slot; errors are reset.
    pub fn note_answer(&mut self, code: &str, now: Timestamp) {
        self.errors = 0;
        self.last_code = Some(clip(code));
        touch(&mut self.updated_at, &mut self.version, now);
    }

    /// The attempt failed (`why`: PhonePe or the store unreachable, rate limited): back off.
    pub fn note_error(&mut self, why: &str, now: Timestamp) {
        self.errors = self.errors.saturating_add(1);
        self.last_code = Some(clip(why));
        self.next_attempt_at = self.backoff(now);
        touch(&mut self.updated_at, &mut self.version, now);
    }

    /// The refund was (re)sent to PhonePe at `now`.
    pub fn note_sent(&mut self, now: Timestamp) {
        self.last_sent_at = Some(now);
        touch(&mut self.updated_at, &mut self.version, now);
    }

    /// A retried create-payment sends the payment to PhonePe only now: PhonePe's timeout counts
    /// from here.
    pub fn restart_clock(&mut self, now: Timestamp) {
        self.base_at = now;
        self.errors = 0;
        self.last_code = None;
        self.due_by = self.deadline();
        self.next_attempt_at = self.next_by_schedule(now).unwrap_or(now);
        touch(&mut self.updated_at, &mut self.version, now);
    }

    /// The obligation is met. `AlreadyApplied` if it had ended already.
    pub fn done(&mut self, note: &str, now: Timestamp) -> Transition {
        if self.state == ObligationState::Done {
            return Transition::AlreadyApplied;
        }
        self.state = ObligationState::Done;
        self.note = Some(clip(note));
        touch(&mut self.updated_at, &mut self.version, now);
        Transition::Applied
    }

    /// Reconciliation cannot end it: a person must (`why`).
    pub fn needs_person(&mut self, why: &str, now: Timestamp) -> Transition {
        if self.state == ObligationState::NeedsPerson {
            return Transition::AlreadyApplied;
        }
        self.state = ObligationState::NeedsPerson;
        self.note = Some(clip(why));
        touch(&mut self.updated_at, &mut self.version, now);
        Transition::Applied
    }

    /// A payment check's payment is now FAILED (declined, or expired at the timeout): watch for a
    /// late success on the slow schedule; done if its 48 hours have already passed.
    pub fn payment_failed(&mut self, now: Timestamp) -> Transition {
        if self.kind != ObligationKind::CheckPayment || !self.is_open() {
            return Transition::AlreadyApplied;
        }
        self.kind = ObligationKind::RecheckFailedPayment;
        self.due_by = self.deadline();
        self.errors = 0;
        match self.next_by_schedule(now) {
            Some(next) => {
                self.next_attempt_at = next;
                touch(&mut self.updated_at, &mut self.version, now);
                Transition::Applied
            }
            None => self.done("payment FAILED; no late success within 48 hours", now),
        }
    }

    /// PhonePe reported SUCCESS for a refund we held FAILED and refunds now exceed what was paid
    /// by `excess`: this refund's obligation becomes a task for a person.
    pub fn excess_refund(&mut self, excess: Paise, now: Timestamp) -> Transition {
        self.kind = ObligationKind::ExcessRefund;
        self.amount = excess;
        self.due_by = now;
        self.state = ObligationState::Open;
        self.needs_person(&format!("refunds exceed what was paid by {excess}: reconcile with PhonePe"), now)
    }
}

/// The identity parkpay uses for refunds it starts itself.
pub const SYSTEM_USER: &str = "parkpay-system";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment::tests::{pending, succeeded};
    use crate::session::tests::at;

    #[test]
    fn schedule_is_phonepes() {
        let s = phonepe_schedule();
        assert_eq!(&s[..12], &[20, 23, 26, 29, 32, 35, 38, 41, 44, 47, 50, 56]);
        assert!(s.contains(&110) && s.contains(&120) && s.contains(&170) && s.contains(&200) && s.contains(&230));
        assert!(!s.contains(&180));
        assert!(s.contains(&290) && s.contains(&350) && s.contains(&1190));
        assert_eq!(*s.last().unwrap(), 1200);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s.len(), 1 + 10 + 10 + 6 + 2 + 16 + 1);
    }

    #[test]
    fn payment_check_follows_the_schedule_and_claims_move_it() {
        let p = pending();
        let base = p.created_at();
        let mut o = Obligation::check_payment(&p, base);
        assert_eq!(o.next_attempt_at(), plus_secs(base, 20));
        assert!(!o.is_due(plus_secs(base, 19)));
        let t = plus_secs(base, 21);
        assert_eq!(o.claim(t), Transition::Applied);
        assert_eq!(o.next_attempt_at(), plus_secs(base, 23));
        assert_eq!(o.attempts(), 1);
        assert_eq!(o.claim(t), Transition::AlreadyApplied, "not due again until the next slot");
        // a long gap: one attempt catches up, the next slot is after now
        let late = plus_secs(base, 601);
        assert_eq!(o.claim(late), Transition::Applied);
        assert_eq!(o.next_attempt_at(), plus_secs(base, 650));
        // at the timeout: the expiry attempt, then a short retry if it did not end it
        let end = plus_secs(base, PAYMENT_TIMEOUT_SECS);
        assert!(o.past_payment_timeout(end));
        assert_eq!(o.claim(end), Transition::Applied);
        assert_eq!(o.next_attempt_at(), plus_secs(end, ERROR_BACKOFF_BASE_SECS));
    }

    #[test]
    fn failed_payments_are_rechecked_for_48_hours_from_acceptance() {
        let p = pending();
        let base = p.created_at();
        let mut o = Obligation::check_payment(&p, base);
        let declined = plus_secs(base, 30);
        assert_eq!(o.payment_failed(declined), Transition::Applied);
        assert_eq!(o.kind(), ObligationKind::RecheckFailedPayment);
        assert_eq!(o.next_attempt_at(), plus_secs(base, 30 * 60));
        let mut checks = 0;
        let mut now = o.next_attempt_at();
        while o.claim(now).is_applied() {
            checks += 1;
            now = o.next_attempt_at();
            if o.past_recheck_window(now) {
                break;
            }
        }
        assert_eq!(checks, RECHECK_SCHEDULE_SECS.len() - 1);
        assert_eq!(o.next_attempt_at(), plus_secs(base, RECHECK_WINDOW_SECS));
        // a payment that failed after its window needs no watch
        let mut old = Obligation::check_payment(&p, base);
        assert_eq!(old.payment_failed(plus_secs(base, RECHECK_WINDOW_SECS + 1)), Transition::Applied);
        assert_eq!(old.state(), ObligationState::Done);
    }

    #[test]
    fn restart_clock_counts_the_timeout_from_acceptance() {
        let p = pending();
        let base = p.created_at();
        let mut o = Obligation::check_payment(&p, base);
        let sent = plus_secs(base, 900);
        o.restart_clock(sent);
        assert_eq!(o.next_attempt_at(), plus_secs(sent, 20));
        assert!(!o.past_payment_timeout(plus_secs(base, PAYMENT_TIMEOUT_SECS + 1)));
        assert!(o.past_payment_timeout(plus_secs(sent, PAYMENT_TIMEOUT_SECS)));
    }

    #[test]
    fn errors_back_off_exponentially_and_answers_reset() {
        let p = succeeded();
        let r = crate::refund::Refund::request(
            RefundId::from_random([7; 16]),
            &p,
            &[],
            crate::refund::RefundRequest {
                amount: None,
                reason: None,
                requested_by: p.user_id().clone(),
                by_operator: false,
            },
            at(5_000),
        )
        .unwrap();
        let mut o = Obligation::see_refund_through(&r, false, at(5_000));
        let now = at(100_000);
        let mut waits = vec![];
        for _ in 0..10 {
            o.note_error("UNREACHABLE", now);
            waits.push((o.next_attempt_at().unix_millis() - now.unix_millis()) / 1000);
        }
        assert_eq!(waits, vec![5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        o.note_answer("PAYMENT_PENDING", now);
        assert_eq!(o.errors(), 0);
        assert_eq!(o.last_code(), Some("PAYMENT_PENDING"));
        // refunds keep being checked after PhonePe's schedule, every 10 minutes
        let late = plus_secs(r.created_at(), 2 * 3600);
        assert_eq!(o.next_by_schedule(late), Some(plus_secs(late, LATE_REFUND_EVERY_SECS)));
        assert!(o.is_overdue(plus_secs(r.created_at(), REFUND_OVERDUE_SECS)));
    }

    #[test]
    fn status_rate_limit() {
        let p = pending();
        let mut o = Obligation::check_payment(&p, p.created_at());
        let t = at(50_000);
        assert_eq!(o.note_status_asked(t, 10), Transition::Applied);
        assert_eq!(o.note_status_asked(plus_secs(t, 9), 10), Transition::AlreadyApplied);
        assert_eq!(o.note_status_asked(plus_secs(t, 10), 10), Transition::Applied);
    }

    #[test]
    fn ends_are_final_and_idempotent() {
        let p = pending();
        let mut o = Obligation::check_payment(&p, p.created_at());
        assert_eq!(o.done("paid", at(9_000)), Transition::Applied);
        assert_eq!(o.done("paid", at(9_000)), Transition::AlreadyApplied);
        assert!(!o.is_due(Timestamp::MAX));
        assert_eq!(o.claim(Timestamp::MAX), Transition::AlreadyApplied);
        assert!(!o.is_overdue(Timestamp::MAX));
        let mut e = Obligation::check_payment(&p, p.created_at());
        assert_eq!(e.excess_refund(Paise::new(500), at(9_000)), Transition::Applied);
        assert_eq!(
            (e.state(), e.kind(), e.amount()),
            (ObligationState::NeedsPerson, ObligationKind::ExcessRefund, Paise::new(500))
        );
    }

    #[test]
    fn serde_round_trip() {
        let p = pending();
        let o = Obligation::check_payment(&p, p.created_at());
        let json = serde_json::to_string(&o).unwrap();
        assert!(json.contains("\"kind\":\"CHECK_PAYMENT\"") && json.contains("\"state\":\"OPEN\""), "{json}");
        assert_eq!(serde_json::from_str::<Obligation>(&json).unwrap(), o);
    }
}
