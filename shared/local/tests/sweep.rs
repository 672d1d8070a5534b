//! Money already owed is found too (issue 9): records written before obligations existed
//! (no obligation at all) are turned into obligations by the one-time sweep, and by
//! reconciliation for every session it loads; then reconciliation drives them to an end, and the
//! money agrees with PhonePe's simulator. Both stores.

#[macro_use]
mod common;

use common::{Env, Rec, assert_money, operator, paid_session, wait_session};
use parkpay_api::Stores;
use parkpay_api::sweep::sweep_all;
use parkpay_domain::{
    Payment, PaymentId, PaymentInstrument, PaymentStatus, Refund, RefundId, RefundRequest, SessionId, SuccessReport,
    Transition, UserId,
};
use parkpay_gateway::{Instrument, MerchantTxnId, PayRequest};
use parkpay_simulator::{Faults, Operation, Outcome};
use parkpay_store::{Record, SessionBundle, Write};
use reqwest::StatusCode;

fn id16() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b
}

async fn bundle(stores: &Stores, sid: &str) -> SessionBundle {
    stores.store.load_session(&SessionId::parse(sid).unwrap()).await.unwrap().unwrap()
}

/// The payment `id` of 100.00 at PhonePe, completed (or not) with its callback dropped: only
/// PhonePe's status API knows.
async fn at_phonepe(env: &Env, id: &PaymentId, complete: bool) {
    env.server.simulator.set_faults(id.as_str(), Faults::callbacks_dropped()).unwrap();
    env.server
        .state
        .gateways
        .current()
        .pay(&PayRequest {
            merchant_txn_id: MerchantTxnId::parse(id.as_str()).unwrap(),
            merchant_user_id: "ULEGACY".into(),
            amount: parkpay_domain::Paise::new(10_000),
            instrument: Instrument::PayPage,
            redirect_url: "https://app.parkpay.example/payment-complete/".into(),
            mobile_number: None,
        })
        .await
        .unwrap();
    if complete {
        env.server.simulator.complete(id.as_str(), Outcome::Success).await.unwrap();
    }
}

fn success(p: &Payment) -> SuccessReport {
    SuccessReport { amount: p.amount(), provider_txn_id: Some("TLEGACY".into()), utr: None }
}

/// Legacy records, one session each, written as an earlier version did (no obligations):
/// - A: a PENDING payment PhonePe completed (callback lost);
/// - B: a payment we hold FAILED that PhonePe completed later (a late success);
/// - C: paid, plus a second payment that also succeeded and was never refunded (stray);
/// - D: paid, with a driver's refund recorded PENDING that never reached PhonePe.
async fn legacy(env: &Env, stores: &Stores, t: &str) -> [String; 4] {
    let now = env.server.state.clock.now();
    let store = &*stores.store;

    let a = env.book(t).await;
    let ba = bundle(stores, &a).await;
    let pa = Payment::start(PaymentId::from_random(id16()), &ba.session, &[], PaymentInstrument::PayPage, now).unwrap();
    store.commit(vec![Write::Insert(Record::Payment(pa.clone()))]).await.unwrap();
    at_phonepe(env, pa.id(), true).await;

    let b = env.book(t).await;
    let bb = bundle(stores, &b).await;
    let mut pb =
        Payment::start(PaymentId::from_random(id16()), &bb.session, &[], PaymentInstrument::PayPage, now).unwrap();
    assert_eq!(pb.fail(now), Ok(Transition::Applied));
    store.commit(vec![Write::Insert(Record::Payment(pb.clone()))]).await.unwrap();
    at_phonepe(env, pb.id(), true).await;

    let c = env.book(t).await;
    let bc = bundle(stores, &c).await;
    let mut session = bc.session.clone();
    let mut pc1 =
        Payment::start(PaymentId::from_random(id16()), &session, &[], PaymentInstrument::PayPage, now).unwrap();
    let mut pc2 =
        Payment::start(PaymentId::from_random(id16()), &session, &[], PaymentInstrument::PayPage, now).unwrap();
    assert_eq!(pc1.succeed(success(&pc1), now), Ok(Transition::Applied));
    assert_eq!(pc2.succeed(success(&pc2), now), Ok(Transition::Applied));
    assert_eq!(session.mark_paid(pc1.id(), pc1.amount(), now), Ok(Transition::Applied));
    store
        .commit(vec![
            Write::Update { record: Record::Session(session), expected_version: bc.session.version() },
            Write::Insert(Record::Payment(pc1.clone())),
            Write::Insert(Record::Payment(pc2.clone())),
        ])
        .await
        .unwrap();
    at_phonepe(env, pc1.id(), true).await;
    at_phonepe(env, pc2.id(), true).await;

    let (d, p) = paid_session(env, t).await;
    let bd = bundle(stores, &d).await;
    let mut payment = bd.payments[0].clone();
    assert_eq!(payment.id().as_str(), p["merchant_txn_id"].as_str().unwrap());
    let request = RefundRequest {
        amount: None,
        reason: Some("legacy".into()),
        requested_by: UserId::parse(bd.session.user_id().as_str()).unwrap(),
        by_operator: false,
    };
    let refund = Refund::request(RefundId::from_random(id16()), &payment, &[], request, now).unwrap();
    let version = payment.version();
    payment.note_refund_requested(now);
    store
        .commit(vec![
            Write::Insert(Record::Refund(refund)),
            Write::Update { record: Record::Payment(payment), expected_version: version },
        ])
        .await
        .unwrap();
    [a, b, c, d]
}

/// The sweep command's rule over a whole store: each kind of legacy debt becomes its obligation
/// (once, however often the sweep runs), and reconciliation then settles every one.
async fn sweep_turns_legacy_debts_into_obligations(env: Env, stores: Stores) {
    let t = env.token("sw-1");
    let sessions = legacy(&env, &stores, &t).await;
    let [a, b, c, d] = &sessions;
    for sid in &sessions {
        let bundle = bundle(&stores, sid).await;
        let legacy_targets = bundle.payments.len() + bundle.refunds.len();
        assert!(bundle.obligations.len() < legacy_targets, "{sid}: something is untracked before the sweep");
    }

    let clock = parkpay_api::SystemClock;
    let report = sweep_all(&*stores.store, &*stores.scan, &clock, 7).await.unwrap();
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.sessions, 4, "{report:?}");
    let turned: Vec<(&str, usize)> = report.turned.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(
        turned,
        vec![("AUTOMATIC_REFUND", 1), ("CHECK_PAYMENT", 1), ("RECHECK_FAILED_PAYMENT", 1), ("SEE_REFUND_THROUGH", 1)],
        "{report:?}"
    );
    assert!(report.pages > 1, "small pages: {report:?}");
    // Every payment not yet SUCCESS and every refund now has its obligation; the stray
    // success has its automatic refund (and that its obligation).
    for sid in &sessions {
        let bundle = bundle(&stores, sid).await;
        let unsettled =
            bundle.payments.iter().filter(|p| p.status() != PaymentStatus::Success).map(|p| p.id().as_str());
        for id in unsettled.chain(bundle.refunds.iter().map(|r| r.id().as_str())) {
            assert!(bundle.obligation(id).is_some(), "{sid}: {id} has no obligation");
        }
    }
    assert_eq!(bundle(&stores, c).await.refunds.len(), 1, "the stray success is being refunded");
    // A second sweep finds nothing: it is safe to repeat.
    let again = sweep_all(&*stores.store, &*stores.scan, &clock, 1000).await.unwrap();
    assert_eq!((again.total(), again.errors, again.sessions), (0, 0, 4), "{again:?}");

    // Reconciliation drives each to an end on its schedule.
    let rec = Rec::new(&env);
    for secs in [21, 61, 62, 1_801, 1_802] {
        let r = rec.at(secs).await;
        assert_eq!(r.errors, 0, "at {secs}: {r:?}");
    }
    wait_session(&env, a, "A paid", |s| s["status"] == "PAID").await;
    wait_session(&env, b, "B's late success applied", |s| s["status"] == "PAID").await;
    let sc = wait_session(&env, c, "C's stray success refunded", |s| s["refunds"][0]["status"] == "SUCCESS").await;
    assert_eq!((sc["status"].as_str(), sc["refunds"][0]["amount"].as_str()), (Some("PAID"), Some("100.00")), "{sc}");
    let sd = wait_session(&env, d, "D's refund through", |s| s["refunds"][0]["status"] == "SUCCESS").await;
    assert_eq!(sd["status"], "REFUNDED", "{sd}");
    let refund_d = sd["refunds"][0]["refund_id"].as_str().unwrap();
    assert_eq!(env.server.simulator.calls(Operation::Refund, refund_d), 1, "sent once, after the grace period");
    assert_money(&env, &sessions).await;

    // Nothing is left for a person, nothing is overdue.
    let op = operator(&env);
    for state in ["overdue", "needs_person"] {
        let (code, v) = env.call("GET", &format!("/api/obligations/?state={state}"), Some(&op), None).await;
        assert_eq!(code, StatusCode::OK, "{v}");
        assert_eq!(v["obligations"], serde_json::json!([]), "{state}: {v}");
    }
}

/// The same rule in reconciliation: a session it loads for one obligation has its other
/// untracked debts turned too, without the sweep command.
async fn reconciliation_tracks_what_it_finds(env: Env, stores: Stores) {
    let t = env.token("sw-2");
    let (sid, p) = paid_session(&env, &t).await;
    // A legacy PENDING refund of 10.00 that PhonePe never saw …
    let now = env.server.state.clock.now();
    let b = bundle(&stores, &sid).await;
    let mut payment = b.payments[0].clone();
    let request = RefundRequest {
        amount: Some(parkpay_domain::Paise::new(1_000)),
        reason: None,
        requested_by: UserId::parse(b.session.user_id().as_str()).unwrap(),
        by_operator: false,
    };
    let legacy = Refund::request(RefundId::from_random(id16()), &payment, &[], request, now).unwrap();
    let version = payment.version();
    payment.note_refund_requested(now);
    stores
        .store
        .commit(vec![
            Write::Insert(Record::Refund(legacy.clone())),
            Write::Update { record: Record::Payment(payment), expected_version: version },
        ])
        .await
        .unwrap();
    // … and a new refund of 20.00 through the API that meets a 5xx before PhonePe records it,
    // so that its obligation is due for reconciliation (which then loads this session).
    env.server.simulator.set_global_faults(Faults::server_error_before().only(&[Operation::Refund])).unwrap();
    let body = serde_json::json!({"merchant_txn_id": p["merchant_txn_id"], "amount": "20.00"});
    let (code, v) = env.post_keyed("/api/payment/phonepe/refund/", &t, Some("new"), &body).await.into_status_json();
    env.server.simulator.clear_global_faults();
    assert_eq!((code, v["status"].as_str()), (StatusCode::ACCEPTED, Some("PENDING")), "{v}");
    assert!(bundle(&stores, &sid).await.obligation(legacy.id().as_str()).is_none());

    let rec = Rec::new(&env);
    rec.at(21).await;
    let after = bundle(&stores, &sid).await;
    let o = after.obligation(legacy.id().as_str()).expect("reconciliation tracked the legacy refund");
    assert_eq!(o.kind().as_str(), "SEE_REFUND_THROUGH");
    rec.at(62).await;
    rec.at(63).await;
    let s = wait_session(&env, &sid, "both refunds through", |s| {
        s["refunds"].as_array().unwrap().iter().all(|r| r["status"] == "SUCCESS")
    })
    .await;
    assert_eq!(s["refunded"], "30.00", "{s}");
    assert_money(&env, &[sid]).await;
}

trait StatusJson {
    fn into_status_json(self) -> (StatusCode, serde_json::Value);
}

impl StatusJson for (StatusCode, reqwest::header::HeaderMap, serde_json::Value) {
    fn into_status_json(self) -> (StatusCode, serde_json::Value) {
        (self.0, self.2)
    }
}

on_both_stores_with_stores!(sweep_turns_legacy_debts_into_obligations, reconciliation_tracks_what_it_finds);
