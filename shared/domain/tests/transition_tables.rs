//! The transition tables ([`StateMachine::TRANSITIONS`]) cannot lie: driven through the real
//! transition methods, in any order and with any arguments, every status change they make is
//! listed (property tests), and every listed change is made by some sequence (scripted). The
//! diagrams in `docs/architecture.md` are compared with these tables (`state_diagrams.rs`).

use std::collections::HashSet;

use parkpay_domain::{
    BookingRequest, Edge, Hours, LotCatalog, LotId, Paise, ParkingSession, Payment, PaymentId, PaymentInstrument,
    PaymentStatus, Refund, RefundId, RefundRequest, RefundStatus, SessionId, SessionStatus, StateMachine,
    SuccessReport, Timestamp, UserId, VehicleNumber, record_late_refund_success, record_refund_success,
};
use proptest::prelude::*;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms).unwrap()
}

fn pid(s: &str) -> PaymentId {
    PaymentId::parse(s).unwrap()
}

/// A 100.00 session (MG-ROAD-1, 2 hours).
fn booked() -> ParkingSession {
    let request = BookingRequest {
        user_id: UserId::parse("driver-1").unwrap(),
        lot_id: LotId::parse("MG-ROAD-1").unwrap(),
        vehicle: VehicleNumber::parse("KA01AB1234").unwrap(),
        hours: Hours::new(2, 24).unwrap(),
    };
    ParkingSession::book(&LotCatalog::default_local(), SessionId::from_random([1; 16]), request, at(1_000)).unwrap()
}

fn report(paise: u64) -> SuccessReport {
    SuccessReport { amount: Paise::new(paise), provider_txn_id: Some("T1".into()), utr: None }
}

fn ask(amount: Option<u64>) -> RefundRequest {
    RefundRequest {
        amount: amount.map(Paise::new),
        reason: None,
        requested_by: UserId::parse("driver-1").unwrap(),
        by_operator: false,
    }
}

/// The change from `from` to `to`, if the status changed; it must be in the table.
fn observe<S: StateMachine>(seen: &mut HashSet<(S, S)>, from: S, to: S) -> Result<(), String> {
    if from != to {
        if !S::allows(from, to) {
            return Err(format!("{} {} -> {} happened but is not listed", S::NAME, from.name(), to.name()));
        }
        seen.insert((from, to));
    }
    Ok(())
}

fn listed<S: StateMachine>() -> HashSet<(S, S)> {
    S::TRANSITIONS.iter().map(|e| (e.from, e.to)).collect()
}

#[derive(Debug, Clone)]
enum SessionStep {
    MarkPaid { by_first: bool, right_amount: bool },
    Cancel,
    Refund { by_first: bool, paise: u64 },
}

fn session_step() -> impl Strategy<Value = SessionStep> {
    prop_oneof![
        (any::<bool>(), any::<bool>())
            .prop_map(|(by_first, right_amount)| SessionStep::MarkPaid { by_first, right_amount }),
        Just(SessionStep::Cancel),
        (any::<bool>(), 0u64..=12_000).prop_map(|(by_first, paise)| SessionStep::Refund { by_first, paise }),
    ]
}

/// Run `steps` on a fresh session; the changes seen, or the first one not listed.
fn run_session(steps: &[SessionStep]) -> Result<HashSet<(SessionStatus, SessionStatus)>, String> {
    let mut s = booked();
    let mut seen = HashSet::new();
    assert_eq!(s.status(), SessionStatus::INITIAL);
    for (i, step) in steps.iter().enumerate() {
        let now = at(2_000 + i as i64);
        let from = s.status();
        let payment = |first: bool| pid(if first { "PP1" } else { "PP2" });
        let _ = match step {
            SessionStep::MarkPaid { by_first, right_amount } => {
                let amount = if *right_amount { s.amount() } else { Paise::new(1) };
                s.mark_paid(&payment(*by_first), amount, now).map(|_| ())
            }
            SessionStep::Cancel => s.cancel(now).map(|_| ()),
            SessionStep::Refund { by_first, paise } => s.record_refund(&payment(*by_first), Paise::new(*paise), now),
        };
        observe(&mut seen, from, s.status())?;
    }
    Ok(seen)
}

#[derive(Debug, Clone)]
enum PaymentStep {
    Succeed { right_amount: bool },
    Fail,
    LateSuccess { right_amount: bool },
}

fn payment_step() -> impl Strategy<Value = PaymentStep> {
    prop_oneof![
        any::<bool>().prop_map(|right_amount| PaymentStep::Succeed { right_amount }),
        Just(PaymentStep::Fail),
        any::<bool>().prop_map(|right_amount| PaymentStep::LateSuccess { right_amount }),
    ]
}

fn run_payment(steps: &[PaymentStep]) -> Result<HashSet<(PaymentStatus, PaymentStatus)>, String> {
    let mut p = Payment::start(pid("PP1"), &booked(), &[], PaymentInstrument::PayPage, at(1_500)).unwrap();
    let mut seen = HashSet::new();
    assert_eq!(p.status(), PaymentStatus::INITIAL);
    for (i, step) in steps.iter().enumerate() {
        let now = at(2_000 + i as i64);
        let from = p.status();
        let amount = |right: bool| if right { 10_000 } else { 9_999 };
        let _ = match step {
            PaymentStep::Succeed { right_amount } => p.succeed(report(amount(*right_amount)), now),
            PaymentStep::Fail => p.fail(now),
            PaymentStep::LateSuccess { right_amount } => p.late_success(report(amount(*right_amount)), now),
        };
        observe(&mut seen, from, p.status())?;
    }
    Ok(seen)
}

#[derive(Debug, Clone)]
enum RefundStep {
    Succeed,
    Fail,
    RecordSuccess,
    RecordLateSuccess,
}

fn refund_step() -> impl Strategy<Value = RefundStep> {
    prop_oneof![
        Just(RefundStep::Succeed),
        Just(RefundStep::Fail),
        Just(RefundStep::RecordSuccess),
        Just(RefundStep::RecordLateSuccess),
    ]
}

/// A refund of `paise` (all when `None`) of a paid session's payment, through `steps`.
fn run_refund(paise: Option<u64>, steps: &[RefundStep]) -> Result<HashSet<(RefundStatus, RefundStatus)>, String> {
    let mut s = booked();
    let mut p = Payment::start(pid("PP1"), &s, &[], PaymentInstrument::PayPage, at(1_500)).unwrap();
    let _ = p.succeed(report(10_000), at(1_600)).unwrap();
    let _ = s.mark_paid(p.id(), p.amount(), at(1_600)).unwrap();
    let mut r = Refund::request(RefundId::from_random([2; 16]), &p, &[], ask(paise), at(1_700)).unwrap();
    let mut seen = HashSet::new();
    assert_eq!(r.status(), RefundStatus::INITIAL);
    for (i, step) in steps.iter().enumerate() {
        let now = at(2_000 + i as i64);
        let from = r.status();
        let _ = match step {
            RefundStep::Succeed => r.succeed(now).map(|_| ()),
            RefundStep::Fail => r.fail(now).map(|_| ()),
            RefundStep::RecordSuccess => record_refund_success(&mut r, &mut p, &mut s, now).map(|_| ()),
            RefundStep::RecordLateSuccess => record_late_refund_success(&mut r, &mut p, &mut s, now).map(|_| ()),
        };
        observe(&mut seen, from, r.status())?;
    }
    Ok(seen)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_session_change_is_listed(steps in proptest::collection::vec(session_step(), 0..12)) {
        run_session(&steps).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn every_payment_change_is_listed(steps in proptest::collection::vec(payment_step(), 0..8)) {
        run_payment(&steps).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn every_refund_change_is_listed(paise in proptest::option::of(1u64..=10_000), steps in proptest::collection::vec(refund_step(), 0..8)) {
        run_refund(paise, &steps).map_err(TestCaseError::fail)?;
    }
}

#[test]
fn every_listed_change_happens() {
    use SessionStep::*;
    let mut session = HashSet::new();
    for steps in [
        vec![MarkPaid { by_first: true, right_amount: true }, Refund { by_first: true, paise: 4_000 }],
        vec![
            MarkPaid { by_first: true, right_amount: true },
            Refund { by_first: true, paise: 4_000 },
            Refund { by_first: true, paise: 6_000 },
        ],
        vec![MarkPaid { by_first: true, right_amount: true }, Refund { by_first: true, paise: 10_000 }],
        vec![Cancel],
    ] {
        session.extend(run_session(&steps).unwrap());
    }
    assert_eq!(session, listed::<SessionStatus>());

    let mut payment = HashSet::new();
    for steps in [
        vec![PaymentStep::Succeed { right_amount: true }],
        vec![PaymentStep::Fail, PaymentStep::LateSuccess { right_amount: true }],
    ] {
        payment.extend(run_payment(&steps).unwrap());
    }
    assert_eq!(payment, listed::<PaymentStatus>());

    let mut refund = HashSet::new();
    for steps in [vec![RefundStep::RecordSuccess], vec![RefundStep::Fail, RefundStep::RecordLateSuccess]] {
        refund.extend(run_refund(Some(4_000), &steps).unwrap());
    }
    assert_eq!(refund, listed::<RefundStatus>());
}

/// The tables themselves: every status appears in [`StateMachine::STATES`] once, the edges use
/// only those, none is listed twice, and every status is reachable from the initial one.
#[test]
fn tables_are_well_formed() {
    fn check<S: StateMachine>() {
        let states: HashSet<S> = S::STATES.iter().copied().collect();
        assert_eq!(states.len(), S::STATES.len(), "{}: a state listed twice", S::NAME);
        assert!(states.contains(&S::INITIAL), "{}", S::NAME);
        let edges: HashSet<Edge<S>> = S::TRANSITIONS.iter().copied().collect();
        assert_eq!(edges.len(), S::TRANSITIONS.len(), "{}: an edge listed twice", S::NAME);
        for e in S::TRANSITIONS {
            assert!(states.contains(&e.from) && states.contains(&e.to), "{}: {e:?}", S::NAME);
            assert_ne!(e.from, e.to, "{}: staying put is not an edge: {e:?}", S::NAME);
        }
        let mut reached = HashSet::from([S::INITIAL]);
        loop {
            let more: Vec<S> = S::TRANSITIONS.iter().filter(|e| reached.contains(&e.from)).map(|e| e.to).collect();
            let before = reached.len();
            reached.extend(more);
            if reached.len() == before {
                break;
            }
        }
        assert_eq!(reached, states, "{}: every status is reachable", S::NAME);
        let names: HashSet<&str> = S::STATES.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), S::STATES.len(), "{}: names are distinct", S::NAME);
    }
    check::<SessionStatus>();
    check::<PaymentStatus>();
    check::<RefundStatus>();
    // What the rest of the code relies on.
    assert!(SessionStatus::Refunded.is_final() && SessionStatus::Cancelled.is_final());
    assert!(PaymentStatus::Success.is_final() && !PaymentStatus::Failed.is_final());
    assert!(!PaymentStatus::allows(PaymentStatus::Success, PaymentStatus::Failed), "money that moved stays moved");
    assert!(RefundStatus::Success.is_final());
}
