//! Refunds of a successful payment, in full or in part, never more than was paid.
//!
//! ```text
//!   request ──► PENDING ──succeed──► SUCCESS
//!                  └─────fail────► FAILED ──record_late_refund_success──► SUCCESS
//! ```
//! - What is still refundable ([`refundable`]) is `amount − (pending + succeeded refunds)`: a
//!   pending refund holds its amount until it fails. The store must serialise requests for one
//!   payment (e.g. a conditional write on the payment's version together with the new refund),
//!   so that concurrent requests cannot both see the same remainder.
//! - [`Refund::request`]: no amount means the rest; zero is `INVALID_AMOUNT`; more than the rest
//!   is `REFUND_EXCEEDS_REMAINING`; nothing left is `NOTHING_TO_REFUND`; only a `SUCCESS` payment
//!   (`PAYMENT_NOT_REFUNDABLE`); a driver only their own payment (`PAYMENT_NOT_FOUND`, as if it
//!   did not exist), an operator any.
//! - `succeed` / `fail`: only from `PENDING`; the same outcome again is `AlreadyApplied`; the
//!   other final outcome is `INVALID_TRANSITION`.
//! - [`record_refund_success`] applies a success to refund, payment and session together.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{PaymentId, RefundId, SessionId, UserId};
use crate::money::{MoneyError, Paise};
use crate::payment::{GatewayApi, Payment, PaymentStatus};
use crate::session::ParkingSession;
use crate::time::Timestamp;
use crate::{Edge, StateMachine, Transition, check_edge, touch};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    Pending,
    Success,
    Failed,
}

impl RefundStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "PENDING",
            RefundStatus::Success => "SUCCESS",
            RefundStatus::Failed => "FAILED",
        }
    }
}

impl StateMachine for RefundStatus {
    const NAME: &'static str = "refund";
    const STATES: &'static [Self] = &[RefundStatus::Pending, RefundStatus::Success, RefundStatus::Failed];
    const INITIAL: Self = RefundStatus::Pending;
    const CREATED_BY: &'static str = "request";
    const TRANSITIONS: &'static [Edge<Self>] = &[
        Edge::new(RefundStatus::Pending, RefundStatus::Success, "succeed"),
        Edge::new(RefundStatus::Pending, RefundStatus::Failed, "fail"),
        // PhonePe reports SUCCESS for a refund it had refused (record_late_refund_success).
        Edge::new(RefundStatus::Failed, RefundStatus::Success, "record_late_refund_success"),
    ];

    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl std::fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a driver or operator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// `None`: whatever is left.
    pub amount: Option<Paise>,
    /// Trimmed; blank is `None`; at most [`Refund::MAX_REASON_CHARS`], no control characters.
    pub reason: Option<String>,
    pub requested_by: UserId,
    /// The requester is an operator (may refund any payment).
    pub by_operator: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    id: RefundId,
    payment_id: PaymentId,
    session_id: SessionId,
    amount: Paise,
    reason: Option<String>,
    requested_by: UserId,
    by_operator: bool,
    status: RefundStatus,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: u64,
    /// The API of its payment, which the refund goes through; absent (v1) in records written
    /// before v2.
    #[serde(default, skip_serializing_if = "GatewayApi::is_v1")]
    gateway: GatewayApi,
}

/// What is still refundable of `payment` given its `refunds` (others are ignored):
/// `amount − (pending + succeeded)`, zero unless the payment is `SUCCESS`. Succeeded refunds
/// count as the larger of their sum and the payment's own `refunded`, so a missing refund record
/// can never free money twice.
pub fn refundable(payment: &Payment, refunds: &[Refund]) -> Paise {
    if payment.status() != PaymentStatus::Success {
        return Paise::ZERO;
    }
    let sum = |status| {
        refunds
            .iter()
            .filter(|r| &r.payment_id == payment.id() && r.status == status)
            .fold(0u128, |acc, r| acc + u128::from(r.amount.get()))
    };
    let held = sum(RefundStatus::Success).max(u128::from(payment.refunded().get())) + sum(RefundStatus::Pending);
    let left = u128::from(payment.amount().get()).saturating_sub(held);
    Paise::new(u64::try_from(left).unwrap_or(0))
}

impl Refund {
    pub const MAX_REASON_CHARS: usize = 255;

    /// A new `PENDING` refund of `payment`, checked against its existing `refunds`.
    pub fn request(
        id: RefundId,
        payment: &Payment,
        refunds: &[Refund],
        request: RefundRequest,
        now: Timestamp,
    ) -> Result<Refund, DomainError> {
        if !request.by_operator && &request.requested_by != payment.user_id() {
            return Err(DomainError::PaymentNotFound);
        }
        let reason = match request.reason.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(r) if r.chars().count() > Self::MAX_REASON_CHARS || r.chars().any(char::is_control) => {
                return Err(DomainError::InvalidRefundReason { max: Self::MAX_REASON_CHARS });
            }
            Some(r) => Some(r.to_owned()),
        };
        if payment.status() != PaymentStatus::Success {
            return Err(DomainError::PaymentNotRefundable { status: payment.status().as_str() });
        }
        if request.amount == Some(Paise::ZERO) {
            return Err(DomainError::InvalidAmount(MoneyError::Zero));
        }
        let remaining = refundable(payment, refunds);
        if remaining == Paise::ZERO {
            return Err(DomainError::NothingToRefund);
        }
        let amount = request.amount.unwrap_or(remaining);
        if amount > remaining {
            return Err(DomainError::RefundExceedsRemaining { requested: amount, remaining });
        }
        Ok(Refund {
            id,
            payment_id: payment.id().clone(),
            session_id: payment.session_id().clone(),
            amount,
            reason,
            requested_by: request.requested_by,
            by_operator: request.by_operator,
            status: RefundStatus::Pending,
            created_at: now,
            updated_at: now,
            version: 1,
            gateway: payment.gateway(),
        })
    }

    pub fn id(&self) -> &RefundId {
        &self.id
    }
    pub fn payment_id(&self) -> &PaymentId {
        &self.payment_id
    }
    pub fn session_id(&self) -> &SessionId {
        &self.session_id
    }
    pub fn amount(&self) -> Paise {
        self.amount
    }
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
    /// The API this refund goes through: its payment's.
    pub fn gateway(&self) -> GatewayApi {
        self.gateway
    }
    pub fn requested_by(&self) -> &UserId {
        &self.requested_by
    }
    pub fn by_operator(&self) -> bool {
        self.by_operator
    }
    pub fn status(&self) -> RefundStatus {
        self.status
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

    fn settle(&mut self, to: RefundStatus, action: &'static str, now: Timestamp) -> Result<Transition, DomainError> {
        match self.status {
            RefundStatus::Pending => {
                check_edge(self.status, to, action);
                self.status = to;
                touch(&mut self.updated_at, &mut self.version, now);
                Ok(Transition::Applied)
            }
            s if s == to => Ok(Transition::AlreadyApplied),
            s => Err(DomainError::InvalidTransition { entity: "refund", from: s.as_str(), action }),
        }
    }

    /// PhonePe reports the refund done: `PENDING → SUCCESS`. Prefer
    /// [`record_refund_success`], which also moves the money on payment and session.
    pub fn succeed(&mut self, now: Timestamp) -> Result<Transition, DomainError> {
        self.settle(RefundStatus::Success, "succeed", now)
    }

    /// PhonePe reports the refund failed: `PENDING → FAILED`; its amount is refundable again.
    pub fn fail(&mut self, now: Timestamp) -> Result<Transition, DomainError> {
        self.settle(RefundStatus::Failed, "fail", now)
    }
}

/// A refund succeeded: mark it `SUCCESS`, add its amount to the payment's `refunded` and, when
/// that payment is the one that paid the session, to the session's (which becomes
/// `PARTIALLY_REFUNDED` or `REFUNDED`). All three change or none does. A repeated success is
/// `AlreadyApplied` and changes nothing, so money moves exactly once however often PhonePe tells.
pub fn record_refund_success(
    refund: &mut Refund,
    payment: &mut Payment,
    session: &mut ParkingSession,
    now: Timestamp,
) -> Result<Transition, DomainError> {
    if &refund.payment_id != payment.id() || payment.session_id() != session.id() || &refund.session_id != session.id()
    {
        return Err(DomainError::PaymentNotForSession);
    }
    let (mut r, mut p, mut s) = (refund.clone(), payment.clone(), session.clone());
    if r.succeed(now)? == Transition::AlreadyApplied {
        return Ok(Transition::AlreadyApplied);
    }
    p.record_refund(r.amount, now)?;
    if s.took(p.id()) {
        s.record_refund(p.id(), r.amount, now)?;
    }
    (*refund, *payment, *session) = (r, p, s);
    Ok(Transition::Applied)
}

/// A driver may make at most `max` refund requests for one payment, FAILED ones included;
/// operators' requests and parkpay's automatic refunds are not counted, and are never limited.
pub fn check_refund_limit(
    payment: &Payment,
    refunds: &[Refund],
    request: &RefundRequest,
    max: u32,
) -> Result<(), DomainError> {
    if request.by_operator {
        return Ok(());
    }
    let made = refunds.iter().filter(|r| &r.payment_id == payment.id() && !r.by_operator).count();
    if made >= max as usize { Err(DomainError::RefundLimitReached { max }) } else { Ok(()) }
}

/// The cancellation rule ([`crate::visit::CancellationRule`]): may the driver refund `payment`
/// of `session` now? Operators' requests (and parkpay's automatic refunds) are never limited by
/// it. The window counts from when `payment` succeeded (an extension has its own), or for a record
/// written before that was kept, from the session's `paid_at` or the payment's last change.
pub fn check_cancellation(
    session: &ParkingSession,
    payment: &Payment,
    request: &RefundRequest,
    rule: crate::visit::CancellationRule,
    now: Timestamp,
) -> Result<(), DomainError> {
    if request.by_operator {
        return Ok(());
    }
    let paid_at = payment.succeeded_at().or(session.paid_at()).unwrap_or(payment.updated_at());
    rule.allows_driver_refund(session.visit(), paid_at, now)
}

/// PhonePe reports SUCCESS for a refund. Recorded as PhonePe says, whatever we held:
/// - from `PENDING`: [`record_refund_success`];
/// - from `FAILED` (refused, then done after all): the refund becomes `SUCCESS`, and its money
///   moves on payment and session as far as what is left allows. The part that exceeds it is
///   returned, never hidden: a person must reconcile it with PhonePe.
///
/// Returns the transition and the excess (zero unless refunds now exceed what was paid).
pub fn record_late_refund_success(
    refund: &mut Refund,
    payment: &mut Payment,
    session: &mut ParkingSession,
    now: Timestamp,
) -> Result<(Transition, Paise), DomainError> {
    if refund.status != RefundStatus::Failed {
        return record_refund_success(refund, payment, session, now).map(|t| (t, Paise::ZERO));
    }
    if &refund.payment_id != payment.id() || payment.session_id() != session.id() || &refund.session_id != session.id()
    {
        return Err(DomainError::PaymentNotForSession);
    }
    let (mut r, mut p, mut s) = (refund.clone(), payment.clone(), session.clone());
    check_edge(r.status, RefundStatus::Success, "record_late_refund_success");
    r.status = RefundStatus::Success;
    touch(&mut r.updated_at, &mut r.version, now);
    let moved = r.amount.min(p.net_paid());
    if moved > Paise::ZERO {
        p.record_refund(moved, now)?;
        let on_session = moved.min(s.net_paid());
        if s.took(p.id()) && on_session > Paise::ZERO {
            s.record_refund(p.id(), on_session, now)?;
        }
    }
    let excess = r.amount.checked_sub(moved).unwrap_or(Paise::ZERO);
    (*refund, *payment, *session) = (r, p, s);
    Ok((Transition::Applied, excess))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment::PaymentInstrument;
    use crate::payment::tests::{pending, report, succeeded};
    use crate::session::SessionStatus;
    use crate::session::tests::{at, booked, paid, pid};
    use proptest::prelude::*;

    fn driver() -> UserId {
        UserId::parse("driver-1").unwrap()
    }

    fn ask(amount: Option<u64>) -> RefundRequest {
        RefundRequest { amount: amount.map(Paise::new), reason: None, requested_by: driver(), by_operator: false }
    }

    fn rid(n: u8) -> RefundId {
        RefundId::from_random([n; 16])
    }

    #[test]
    fn drivers_refund_requests_are_limited_operators_are_not() {
        let p = succeeded();
        let mut refunds = vec![];
        for n in 0..3u8 {
            check_refund_limit(&p, &refunds, &ask(Some(100)), 3).unwrap();
            let mut r = Refund::request(rid(n), &p, &refunds, ask(Some(100)), at(3_000)).unwrap();
            let _ = r.fail(at(3_001)).unwrap();
            refunds.push(r);
        }
        assert_eq!(
            check_refund_limit(&p, &refunds, &ask(Some(100)), 3),
            Err(DomainError::RefundLimitReached { max: 3 })
        );
        assert_eq!(DomainError::RefundLimitReached { max: 3 }.http_status(), 409);
        let operator = RefundRequest { by_operator: true, ..ask(Some(100)) };
        check_refund_limit(&p, &refunds, &operator, 3).unwrap();
    }

    #[test]
    fn a_failed_refund_reported_successful_is_recorded_and_any_excess_returned() {
        let mut p = succeeded();
        let mut s = paid();
        // 60.00 refunded and failed; then 100.00 refunded successfully; then PhonePe says the
        // first one succeeded after all: 60.00 beyond what was paid.
        let mut first = Refund::request(rid(1), &p, &[], ask(Some(6_000)), at(3_000)).unwrap();
        let _ = first.fail(at(3_100)).unwrap();
        let mut second = Refund::request(rid(2), &p, std::slice::from_ref(&first), ask(None), at(3_200)).unwrap();
        assert_eq!(second.amount(), Paise::new(10_000));
        let _ = record_refund_success(&mut second, &mut p, &mut s, at(3_300)).unwrap();
        let (t, excess) = record_late_refund_success(&mut first, &mut p, &mut s, at(3_400)).unwrap();
        assert_eq!((t, excess), (Transition::Applied, Paise::new(6_000)));
        assert_eq!(first.status(), RefundStatus::Success);
        assert_eq!((p.refunded(), s.refunded()), (Paise::new(10_000), Paise::new(10_000)));
        // again: nothing more moves
        let (t, excess) = record_late_refund_success(&mut first, &mut p, &mut s, at(3_500)).unwrap();
        assert_eq!((t, excess), (Transition::AlreadyApplied, Paise::ZERO));
        // within what is left: no excess
        let mut p = succeeded();
        let mut s = paid();
        let mut r = Refund::request(rid(3), &p, &[], ask(Some(4_000)), at(3_000)).unwrap();
        let _ = r.fail(at(3_100)).unwrap();
        let (_, excess) = record_late_refund_success(&mut r, &mut p, &mut s, at(3_200)).unwrap();
        assert_eq!(excess, Paise::ZERO);
        assert_eq!(
            (p.refunded(), s.refunded(), s.status()),
            (Paise::new(4_000), Paise::new(4_000), SessionStatus::PartiallyRefunded)
        );
    }

    #[test]
    fn refundable_counts_pending_and_succeeded() {
        let p = succeeded();
        assert_eq!(refundable(&p, &[]), Paise::new(10_000));
        assert_eq!(refundable(&pending(), &[]), Paise::ZERO);
        let a = Refund::request(rid(1), &p, &[], ask(Some(3_000)), at(3_000)).unwrap();
        let mut b = Refund::request(rid(2), &p, std::slice::from_ref(&a), ask(Some(2_000)), at(3_000)).unwrap();
        let mut c = Refund::request(rid(3), &p, &[a.clone(), b.clone()], ask(Some(1_000)), at(3_000)).unwrap();
        assert_eq!(b.succeed(at(4_000)), Ok(Transition::Applied));
        assert_eq!(c.fail(at(4_000)), Ok(Transition::Applied));
        assert_eq!(refundable(&p, &[a.clone(), b.clone(), c.clone()]), Paise::new(5_000));
        // A payment's own `refunded` is never undercut by a missing refund record.
        let mut p2 = p.clone();
        p2.record_refund(Paise::new(6_000), at(4_000)).unwrap();
        assert_eq!(refundable(&p2, &[a, b, c]), Paise::new(1_000));
    }

    #[test]
    fn request_rules() {
        let p = succeeded();
        let full = Refund::request(rid(1), &p, &[], ask(None), at(3_000)).unwrap();
        assert_eq!((full.amount(), full.status(), full.version()), (Paise::new(10_000), RefundStatus::Pending, 1));
        assert_eq!((full.payment_id(), full.session_id()), (p.id(), p.session_id()));
        assert_eq!(
            Refund::request(rid(2), &p, std::slice::from_ref(&full), ask(None), at(3_000)),
            Err(DomainError::NothingToRefund)
        );
        assert_eq!(Refund::request(rid(2), &p, &[], ask(Some(0)), at(3_000)).unwrap_err().code(), "INVALID_AMOUNT");
        assert_eq!(
            Refund::request(rid(2), &p, &[], ask(Some(10_001)), at(3_000)),
            Err(DomainError::RefundExceedsRemaining { requested: Paise::new(10_001), remaining: Paise::new(10_000) })
        );
        assert_eq!(
            Refund::request(rid(2), &pending(), &[], ask(None), at(3_000)),
            Err(DomainError::PaymentNotRefundable { status: "PENDING" })
        );
    }

    #[test]
    fn who_may_refund() {
        let p = succeeded();
        let stranger = RefundRequest { requested_by: UserId::parse("someone-else").unwrap(), ..ask(None) };
        assert_eq!(Refund::request(rid(1), &p, &[], stranger.clone(), at(3_000)), Err(DomainError::PaymentNotFound));
        let operator = RefundRequest { by_operator: true, ..stranger };
        let r = Refund::request(rid(1), &p, &[], operator, at(3_000)).unwrap();
        assert!(r.by_operator());
        assert_eq!(r.requested_by().as_str(), "someone-else");
    }

    #[test]
    fn reasons() {
        let p = succeeded();
        let with = |reason: &str| {
            Refund::request(rid(1), &p, &[], RefundRequest { reason: Some(reason.into()), ..ask(None) }, at(3_000))
        };
        assert_eq!(with("  plans changed ").unwrap().reason(), Some("plans changed"));
        assert_eq!(with("   ").unwrap().reason(), None);
        assert_eq!(with(&"é".repeat(255)).unwrap().reason().map(|r| r.chars().count()), Some(255));
        assert_eq!(with(&"x".repeat(256)), Err(DomainError::InvalidRefundReason { max: 255 }));
        assert_eq!(with("a\u{0}b").unwrap_err().code(), "INVALID_REFUND_REASON");
    }

    #[test]
    fn settle_transitions() {
        let p = succeeded();
        let mut r = Refund::request(rid(1), &p, &[], ask(None), at(3_000)).unwrap();
        assert_eq!(r.succeed(at(4_000)), Ok(Transition::Applied));
        assert_eq!(r.succeed(at(5_000)), Ok(Transition::AlreadyApplied));
        assert_eq!((r.version(), r.updated_at()), (2, at(4_000)));
        assert_eq!(r.fail(at(5_000)).unwrap_err().code(), "INVALID_TRANSITION");

        let mut f = Refund::request(rid(2), &p, &[], ask(None), at(3_000)).unwrap();
        assert_eq!(f.fail(at(4_000)), Ok(Transition::Applied));
        assert_eq!(f.fail(at(5_000)), Ok(Transition::AlreadyApplied));
        assert_eq!(f.succeed(at(5_000)).unwrap_err().code(), "INVALID_TRANSITION");
        assert_eq!(refundable(&p, &[f]), Paise::new(10_000), "a failed refund frees its amount");
    }

    #[test]
    fn record_success_moves_money_once() {
        let (mut p, mut s) = (succeeded(), paid());
        let mut r = Refund::request(rid(1), &p, &[], ask(Some(4_000)), at(3_000)).unwrap();
        assert_eq!(record_refund_success(&mut r, &mut p, &mut s, at(4_000)), Ok(Transition::Applied));
        assert_eq!(
            (r.status(), p.refunded(), s.refunded(), s.status()),
            (RefundStatus::Success, Paise::new(4_000), Paise::new(4_000), SessionStatus::PartiallyRefunded)
        );
        let snapshot = (r.clone(), p.clone(), s.clone());
        assert_eq!(record_refund_success(&mut r, &mut p, &mut s, at(5_000)), Ok(Transition::AlreadyApplied));
        assert_eq!((r.clone(), p.clone(), s.clone()), snapshot);

        let mut rest = Refund::request(rid(2), &p, &[r.clone()], ask(None), at(5_000)).unwrap();
        assert_eq!(rest.amount(), Paise::new(6_000));
        assert_eq!(record_refund_success(&mut rest, &mut p, &mut s, at(6_000)), Ok(Transition::Applied));
        assert_eq!((s.status(), s.can_enter(), p.net_paid()), (SessionStatus::Refunded, false, Paise::ZERO));
    }

    #[test]
    fn record_success_is_all_or_nothing() {
        // A payment whose `refunded` already covers everything (records out of step): the refund
        // cannot be applied, and nothing changes.
        let (mut p, mut s) = (succeeded(), paid());
        let mut r = Refund::request(rid(1), &p, &[], ask(None), at(3_000)).unwrap();
        p.record_refund(Paise::new(10_000), at(3_500)).unwrap();
        let snapshot = (r.clone(), p.clone(), s.clone());
        assert_eq!(
            record_refund_success(&mut r, &mut p, &mut s, at(4_000)).unwrap_err().code(),
            "REFUND_EXCEEDS_REMAINING"
        );
        assert_eq!((r, p, s), snapshot);
    }

    #[test]
    fn refund_of_a_stray_payment_leaves_the_session_alone() {
        // PP1 paid the session; PP7 succeeded late and is refunded in full.
        let mut s = paid();
        let mut stray = Payment::start(pid("PP7"), &booked(), &[], PaymentInstrument::PayPage, at(1_500)).unwrap();
        assert_eq!(stray.fail(at(1_600)), Ok(Transition::Applied));
        assert_eq!(stray.late_success(report(10_000), at(2_500)), Ok(Transition::Applied));
        let mut r = Refund::request(rid(1), &stray, &[], ask(None), at(3_000)).unwrap();
        assert_eq!(record_refund_success(&mut r, &mut stray, &mut s, at(4_000)), Ok(Transition::Applied));
        assert_eq!((s.status(), s.refunded(), s.can_enter()), (SessionStatus::Paid, Paise::ZERO, true));
        assert_eq!(stray.refunded(), Paise::new(10_000));
    }

    #[test]
    fn record_success_checks_the_pairing() {
        let (mut p, mut s) = (succeeded(), paid());
        let mut other = Payment::start(pid("PP8"), &booked(), &[], PaymentInstrument::PayPage, at(1_500)).unwrap();
        assert_eq!(other.succeed(report(10_000), at(2_000)), Ok(Transition::Applied));
        let mut r = Refund::request(rid(1), &other, &[], ask(None), at(3_000)).unwrap();
        assert_eq!(record_refund_success(&mut r, &mut p, &mut s, at(4_000)), Err(DomainError::PaymentNotForSession));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Request(Option<u64>),
        Succeed(usize),
        Fail(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            proptest::option::of(0u64..=12_000).prop_map(Step::Request),
            any::<usize>().prop_map(Step::Succeed),
            any::<usize>().prop_map(Step::Fail),
        ]
    }

    proptest! {
        /// Whatever is requested, succeeds or fails, in any order and repeated: refunds never
        /// exceed what was paid, on the payment and on the session, and the books agree.
        #[test]
        fn refunds_never_exceed_paid(steps in proptest::collection::vec(step(), 0..40)) {
            let (mut p, mut s) = (succeeded(), paid());
            let mut refunds: Vec<Refund> = Vec::new();
            for (i, st) in steps.into_iter().enumerate() {
                let now = at(3_000 + i as i64);
                match st {
                    Step::Request(a) => {
                        let before = refundable(&p, &refunds);
                        match Refund::request(rid(i as u8), &p, &refunds, ask(a), now) {
                            Ok(r) => {
                                prop_assert!(r.amount() <= before && r.amount() > Paise::ZERO);
                                refunds.push(r);
                            }
                            Err(e) => prop_assert!(matches!(e.code(), "NOTHING_TO_REFUND" | "REFUND_EXCEEDS_REMAINING" | "INVALID_AMOUNT")),
                        }
                    }
                    Step::Succeed(k) if !refunds.is_empty() => {
                        let k = k % refunds.len();
                        let _ = record_refund_success(&mut refunds[k], &mut p, &mut s, now);
                    }
                    Step::Fail(k) if !refunds.is_empty() => {
                        let k = k % refunds.len();
                        let _ = refunds[k].fail(now);
                    }
                    _ => {}
                }
                let sum = |st| refunds.iter().filter(|r| r.status() == st).map(|r| r.amount().get()).sum::<u64>();
                let (succeeded, pending) = (sum(RefundStatus::Success), sum(RefundStatus::Pending));
                prop_assert!(succeeded + pending <= p.amount().get());
                prop_assert_eq!(p.refunded().get(), succeeded);
                prop_assert_eq!(s.refunded(), p.refunded());
                prop_assert!(s.refunded() <= s.paid());
                prop_assert_eq!(refundable(&p, &refunds).get(), p.amount().get() - succeeded - pending);
                prop_assert_eq!(s.can_enter(), s.refunded() < s.paid());
            }
        }
    }
}
