//! Money owed that no obligation tracks: the rule behind the one-time sweep of an existing
//! table, and behind reconciliation's check of every session it loads.
//!
//! Since obligations exist, every state change that creates a debt writes its obligation in the
//! same commit. Records written before then (or by a version with a gap) have none, so nothing
//! would ever drive them to an end. [`untracked`] names them, from a session's records alone:
//!
//! | found | owed | becomes |
//! |---|---|---|
//! | a PENDING payment with no obligation | its outcome | CHECK_PAYMENT |
//! | a FAILED payment younger than 48 h (from acceptance) with no obligation | a late success | RECHECK_FAILED_PAYMENT |
//! | a SUCCESS payment the session did not take (not its `paid_by`), something left to refund, no automatic refund of it | the money back | an automatic refund + AUTOMATIC_REFUND |
//! | the same, but its automatic refund is FAILED (tried once before obligations) | the money back | AUTOMATIC_REFUND needing a person |
//! | a PENDING refund with no obligation (PhonePe may never have seen it) | the refund | SEE_REFUND_THROUGH (AUTOMATIC_REFUND if parkpay started it) |
//!
//! Only targets with **no obligation record at all** are named: an obligation that exists, in
//! any state, is already the record of what was decided about its target.

use crate::ids::{PaymentId, RefundId};
use crate::obligation::{Obligation, RECHECK_WINDOW_SECS, SYSTEM_USER};
use crate::payment::{Payment, PaymentStatus};
use crate::refund::{Refund, RefundStatus, refundable};
use crate::session::ParkingSession;
use crate::time::Timestamp;

/// One piece of money owed with no obligation to drive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untracked {
    /// A PENDING payment: check it (PhonePe's schedule, then the timeout).
    PendingPayment(PaymentId),
    /// A FAILED payment within its 48 hours: watch it for a late success.
    FailedPayment(PaymentId),
    /// A success the session did not take, not refunded: refund it automatically.
    StraySuccess(PaymentId),
    /// A success the session did not take whose automatic refund is FAILED: a person decides
    /// (re-sending it could pay twice if PhonePe took it after all).
    StrayRefundFailed { payment: PaymentId, refund: RefundId },
    /// A PENDING refund: see it through (re-sent if PhonePe never saw it).
    PendingRefund(RefundId),
}

impl Untracked {
    /// The obligation kind it becomes, as stored (`AUTOMATIC_REFUND`, …), for reports.
    pub fn becomes(&self) -> &'static str {
        match self {
            Untracked::PendingPayment(_) => "CHECK_PAYMENT",
            Untracked::FailedPayment(_) => "RECHECK_FAILED_PAYMENT",
            Untracked::StraySuccess(_) | Untracked::StrayRefundFailed { .. } => "AUTOMATIC_REFUND",
            Untracked::PendingRefund(_) => "SEE_REFUND_THROUGH",
        }
    }
}

/// Whether parkpay itself started `refund` (an automatic refund).
pub fn is_automatic(refund: &Refund) -> bool {
    refund.requested_by().as_str() == SYSTEM_USER
}

/// What of `session`'s money is owed with no obligation, at `now` (see the module docs).
/// `payments`, `refunds` and `obligations` are the session's own.
pub fn untracked(
    session: &ParkingSession,
    payments: &[Payment],
    refunds: &[Refund],
    obligations: &[Obligation],
    now: Timestamp,
) -> Vec<Untracked> {
    let tracked = |id: &str| obligations.iter().any(|o| o.target_id() == id);
    let mut found = Vec::new();
    for p in payments {
        match p.status() {
            PaymentStatus::Pending if !tracked(p.id().as_str()) => {
                found.push(Untracked::PendingPayment(p.id().clone()))
            }
            PaymentStatus::Failed if !tracked(p.id().as_str()) => {
                if now.unix_millis() - p.created_at().unix_millis() < RECHECK_WINDOW_SECS * 1000 {
                    found.push(Untracked::FailedPayment(p.id().clone()));
                }
            }
            PaymentStatus::Success if !session.took(p.id()) => {
                let automatic: Vec<&Refund> =
                    refunds.iter().filter(|r| r.payment_id() == p.id() && is_automatic(r)).collect();
                if refundable(p, refunds).get() == 0 {
                    continue;
                }
                if automatic.is_empty() {
                    found.push(Untracked::StraySuccess(p.id().clone()));
                } else if let Some(failed) = automatic
                    .iter()
                    .find(|r| r.status() == RefundStatus::Failed && !tracked(r.id().as_str()))
                    .filter(|_| automatic.iter().all(|r| r.status() == RefundStatus::Failed))
                {
                    found.push(Untracked::StrayRefundFailed { payment: p.id().clone(), refund: failed.id().clone() });
                }
            }
            _ => {}
        }
    }
    for r in refunds {
        if r.status() == RefundStatus::Pending && !tracked(r.id().as_str()) {
            found.push(Untracked::PendingRefund(r.id().clone()));
        }
    }
    found
}

/// The obligation for an untracked PENDING payment, FAILED payment or PENDING refund (the
/// others need a refund record first; see the API's sweep). `None` if `what` names none of
/// these records.
pub fn obligation_for(
    what: &Untracked,
    payments: &[Payment],
    refunds: &[Refund],
    now: Timestamp,
) -> Option<Obligation> {
    let payment = |id: &PaymentId| payments.iter().find(|p| p.id() == id);
    match what {
        Untracked::PendingPayment(id) => payment(id).map(|p| Obligation::check_payment(p, now)),
        Untracked::FailedPayment(id) => payment(id).map(|p| {
            let mut o = Obligation::check_payment(p, now);
            let _ = o.payment_failed(now);
            o
        }),
        Untracked::PendingRefund(id) => {
            refunds.iter().find(|r| r.id() == id).map(|r| Obligation::see_refund_through(r, is_automatic(r), now))
        }
        Untracked::StrayRefundFailed { refund, .. } => refunds.iter().find(|r| r.id() == refund).map(|r| {
            let mut o = Obligation::see_refund_through(r, true, now);
            let _ = o.needs_person(
                "automatic refund of a stray success was refused or failed before obligations existed: \
                 check it with PhonePe and refund by hand",
                now,
            );
            o
        }),
        Untracked::StraySuccess(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;
    use crate::obligation::{ObligationKind, ObligationState};
    use crate::payment::{PaymentInstrument, SuccessReport};
    use crate::refund::RefundRequest;
    use crate::session::tests::{at, booked};
    use crate::{Paise, Transition};

    fn pid(n: u8) -> PaymentId {
        PaymentId::from_random([n; 16])
    }

    fn rid(n: u8) -> RefundId {
        RefundId::from_random([n + 100; 16])
    }

    fn report(amount: u64) -> SuccessReport {
        SuccessReport { amount: Paise::new(amount), provider_txn_id: Some("T1".into()), utr: None }
    }

    fn refund(p: &Payment, n: u8, by: &str, refunds: &[Refund], t: i64) -> Refund {
        let req =
            RefundRequest { amount: None, reason: None, requested_by: UserId::parse(by).unwrap(), by_operator: true };
        Refund::request(rid(n), p, refunds, req, at(t)).unwrap()
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn pending_and_failed_payments_without_obligations() {
        let s = booked();
        let pending = Payment::start(pid(1), &s, &[], PaymentInstrument::PayPage, at(2_000)).unwrap();
        let mut failed = Payment::start(pid(2), &s, &[], PaymentInstrument::PayPage, at(2_000)).unwrap();
        assert_eq!(failed.fail(at(3_000)), Ok(Transition::Applied));
        let payments = vec![pending.clone(), failed.clone()];
        let now = at(2_000 + 47 * HOUR);
        let found = untracked(&s, &payments, &[], &[], now);
        assert_eq!(found, vec![Untracked::PendingPayment(pid(1)), Untracked::FailedPayment(pid(2))]);

        let o = obligation_for(&found[0], &payments, &[], now).unwrap();
        assert_eq!((o.kind(), o.target_id()), (ObligationKind::CheckPayment, pid(1).as_str()));
        let o = obligation_for(&found[1], &payments, &[], now).unwrap();
        assert_eq!((o.kind(), o.state()), (ObligationKind::RecheckFailedPayment, ObligationState::Open));
        assert!(o.next_attempt_at() > now);

        // Past 48 hours from acceptance: nothing to watch.
        assert_eq!(untracked(&s, &payments, &[], &[], at(2_000 + 48 * HOUR)), vec![Untracked::PendingPayment(pid(1))]);
        // An obligation in any state means it is tracked.
        let mut done = Obligation::check_payment(&pending, now);
        let _ = done.done("paid", now);
        let tracked = vec![done, Obligation::check_payment(&failed, now)];
        assert_eq!(untracked(&s, &payments, &[], &tracked, now), vec![]);
    }

    #[test]
    fn stray_successes_and_their_refunds() {
        let mut s = booked();
        let mut taken = Payment::start(pid(1), &s, &[], PaymentInstrument::PayPage, at(2_000)).unwrap();
        assert_eq!(taken.succeed(report(10_000), at(3_000)), Ok(Transition::Applied));
        assert_eq!(s.mark_paid(taken.id(), Paise::new(10_000), at(3_000)), Ok(Transition::Applied));
        let mut stray = Payment::start(pid(2), &booked(), &[], PaymentInstrument::PayPage, at(2_000)).unwrap();
        assert_eq!(stray.succeed(report(10_000), at(3_500)), Ok(Transition::Applied));
        let payments = vec![taken.clone(), stray.clone()];
        let now = at(10_000);

        // The payment the session took is not stray; the other is, while something is left.
        assert_eq!(untracked(&s, &payments, &[], &[], now), vec![Untracked::StraySuccess(pid(2))]);
        assert_eq!(obligation_for(&Untracked::StraySuccess(pid(2)), &payments, &[], now), None);

        // Its automatic refund PENDING without an obligation: see it through, as automatic.
        let mut auto = refund(&stray, 1, SYSTEM_USER, &[], 4_000);
        let found = untracked(&s, &payments, std::slice::from_ref(&auto), &[], now);
        assert_eq!(found, vec![Untracked::PendingRefund(rid(1))]);
        let o = obligation_for(&found[0], &payments, std::slice::from_ref(&auto), now).unwrap();
        assert_eq!(
            (o.kind(), o.target_id(), o.amount()),
            (ObligationKind::AutomaticRefund, rid(1).as_str(), Paise::new(10_000))
        );

        // Refused before obligations existed: a person decides.
        assert_eq!(auto.fail(at(5_000)), Ok(Transition::Applied));
        let found = untracked(&s, &payments, std::slice::from_ref(&auto), &[], now);
        assert_eq!(found, vec![Untracked::StrayRefundFailed { payment: pid(2), refund: rid(1) }]);
        let o = obligation_for(&found[0], &payments, std::slice::from_ref(&auto), now).unwrap();
        assert_eq!((o.kind(), o.state()), (ObligationKind::AutomaticRefund, ObligationState::NeedsPerson));
        assert_eq!(untracked(&s, &payments, std::slice::from_ref(&auto), std::slice::from_ref(&o), now), vec![]);

        // Refunded in full by an operator: nothing owed.
        let by_hand = refund(&stray, 2, "operator-1", &[], 4_000);
        let mut by_hand_done = by_hand.clone();
        assert_eq!(by_hand_done.succeed(at(6_000)), Ok(Transition::Applied));
        let mut stray_refunded = stray.clone();
        stray_refunded.record_refund(Paise::new(10_000), at(6_000)).unwrap();
        let payments = vec![taken, stray_refunded];
        assert_eq!(untracked(&s, &payments, &[by_hand_done], &[], now), vec![]);
    }

    #[test]
    fn driver_refunds_pending_without_obligation() {
        let mut s = booked();
        let mut p = Payment::start(pid(1), &s, &[], PaymentInstrument::PayPage, at(2_000)).unwrap();
        assert_eq!(p.succeed(report(10_000), at(3_000)), Ok(Transition::Applied));
        assert_eq!(s.mark_paid(p.id(), Paise::new(10_000), at(3_000)), Ok(Transition::Applied));
        let r = refund(&p, 1, "driver-1", &[], 4_000);
        let payments = vec![p];
        let found = untracked(&s, &payments, std::slice::from_ref(&r), &[], at(9_000));
        assert_eq!(found, vec![Untracked::PendingRefund(rid(1))]);
        let o = obligation_for(&found[0], &payments, &[r], at(9_000)).unwrap();
        assert_eq!(o.kind(), ObligationKind::SeeRefundThrough);
        assert_eq!(o.last_sent_at(), Some(at(4_000)), "the grace period counts from the refund's creation");
    }
}
