//! The contradicting-callback matrix (issue 9), through the HTTP API, on both stores: validly
//! signed PhonePe callbacks that contradict our record — another merchant, FAILED after
//! SUCCESS, another amount, a late success while PhonePe's status API is down, a late success
//! replayed or delivered many times at once. Each row says what the callback is answered, the
//! record afterwards, how many status calls reached PhonePe (`Simulator::calls`), and how many
//! automatic refunds there are (ours and PhonePe's: exactly one where money arrived for a
//! session that cannot take it, none where nothing is owed). Every scenario ends with the money
//! check (ours = the simulator's, per session).
//!
//! The rules (README "Payment rules", docs/guarantees.md M3, M10, M11): a callback for another
//! merchant is acknowledged and not applied, without asking anyone; one that contradicts our
//! record is checked with the status API and what that says is applied; if the status API
//! cannot be asked, the callback gets 503 so that PhonePe sends it again; a valid replay is 200
//! with no second effect.

#[macro_use]
mod common;

use common::{Env, assert_money, operator, signed_callback_from, wait_session, wait_until};
use parkpay_simulator::{Faults, ForcedAnswer, Operation, SimState, TxnKind};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SALT: &str = parkpay_api::config::SIM_SALT_KEY;
const OURS: &str = "PGTESTPAYUAT";

/// Where the payment stands before the callback arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// The payer has not paid: PENDING at PhonePe and with us.
    Pending,
    /// Paid through the pay page: SUCCESS at PhonePe and with us, the session PAID.
    Paid,
    /// PhonePe completed it but its callback was lost: SUCCESS at PhonePe, PENDING with us.
    PaidCallbackLost,
    /// A late success: declined (FAILED with us, after PhonePe's FAILED callback), the session
    /// then paid by a second payment, and PhonePe completes the first one afterwards; its
    /// SUCCESS callback has not arrived yet. The money cannot be taken: it is owed back.
    LateSuccess,
}

impl Setup {
    /// (payment, session) status before the callback.
    fn before(self) -> (&'static str, &'static str) {
        match self {
            Setup::Pending | Setup::PaidCallbackLost => ("PENDING", "PENDING_PAYMENT"),
            Setup::Paid => ("SUCCESS", "PAID"),
            Setup::LateSuccess => ("FAILED", "PAID"),
        }
    }
}

/// PhonePe's status API while a delivery is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusApi {
    Up,
    /// HTTP 503 with PhonePe's `INTERNAL_SERVER_ERROR` envelope.
    Down503,
    /// HTTP 200 with an HTML body.
    Unreadable,
}

/// What a delivery is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ack {
    /// 200 `{"success": true, "applied": …}`, every copy.
    Applied(bool),
    /// Copies delivered at once: 200 each, exactly one `"applied": true`.
    OneApplied,
    /// Not acknowledged (HTTP status, error code): PhonePe sends it again; nothing changed.
    Refused(u16, &'static str),
}

struct Delivery {
    api: StatusApi,
    copies: usize,
    at_once: bool,
    ack: Ack,
}

const fn once(api: StatusApi, ack: Ack) -> Delivery {
    Delivery { api, copies: 1, at_once: false, ack }
}

/// The signed callback: merchant, code, state, amount (paise). The payment is 100.00.
type Callback = (&'static str, &'static str, &'static str, u64);

const SUCCESS: Callback = (OURS, "PAYMENT_SUCCESS", "COMPLETED", 10_000);

/// Status calls PhonePe received for the payment, all told: at least, at most.
type Calls = (u64, u64);

struct Row {
    name: &'static str,
    setup: Setup,
    callback: Callback,
    deliveries: &'static [Delivery],
    /// (payment, session) status in the end.
    record: (&'static str, &'static str),
    status_calls: Calls,
    /// Automatic refunds of the payment, ours and PhonePe's alike.
    automatic_refunds: usize,
}

use Ack::*;
use Setup::*;
use StatusApi::*;

#[rustfmt::skip]
const MATRIX: &[Row] = &[
    //    row                                                       before                   callback (merchant, code, state, paise)                              deliveries: (status API, answer)                                                  (payment, session) in the end           status calls          automatic refunds
    Row { name: "another merchant",                                 setup: Pending,          callback: ("OTHERMERCHANT", "PAYMENT_SUCCESS", "COMPLETED", 10_000), deliveries: &[once(Up, Applied(false))],                                          record: ("PENDING", "PENDING_PAYMENT"), status_calls: (0, 0), automatic_refunds: 0 },
    Row { name: "FAILED after SUCCESS",                             setup: Paid,             callback: (OURS, "PAYMENT_ERROR", "FAILED", 10_000),                  deliveries: &[once(Up, Applied(false))],                                          record: ("SUCCESS", "PAID"),            status_calls: (1, 1), automatic_refunds: 0 },
    Row { name: "FAILED after SUCCESS, status API down (503)",      setup: Paid,             callback: (OURS, "PAYMENT_ERROR", "FAILED", 10_000),                  deliveries: &[once(Down503, Refused(503, "GATEWAY_UNAVAILABLE")), once(Up, Applied(false))], record: ("SUCCESS", "PAID"), status_calls: (2, 2), automatic_refunds: 0 },
    Row { name: "another amount, PhonePe: PENDING",                 setup: Pending,          callback: (OURS, "PAYMENT_SUCCESS", "COMPLETED", 1_000),              deliveries: &[once(Up, Applied(false))],                                          record: ("PENDING", "PENDING_PAYMENT"), status_calls: (1, 1), automatic_refunds: 0 },
    Row { name: "another amount, PhonePe: SUCCESS of ours",         setup: PaidCallbackLost, callback: (OURS, "PAYMENT_SUCCESS", "COMPLETED", 1_000),              deliveries: &[once(Up, Applied(true))],                                           record: ("SUCCESS", "PAID"),            status_calls: (1, 1), automatic_refunds: 0 },
    Row { name: "late success, status API down (503)",              setup: LateSuccess,      callback: SUCCESS,                                                    deliveries: &[once(Down503, Refused(503, "GATEWAY_UNAVAILABLE")), once(Up, Applied(true))], record: ("SUCCESS", "PAID"), status_calls: (2, 2), automatic_refunds: 1 },
    Row { name: "late success, status API unreadable",              setup: LateSuccess,      callback: SUCCESS,                                                    deliveries: &[once(Unreadable, Refused(503, "GATEWAY_OUTCOME_UNKNOWN")), once(Up, Applied(true))], record: ("SUCCESS", "PAID"), status_calls: (2, 2), automatic_refunds: 1 },
    Row { name: "late success, replayed",                           setup: LateSuccess,      callback: SUCCESS,                                                    deliveries: &[once(Up, Applied(true)), Delivery { api: Up, copies: 5, at_once: false, ack: Applied(false) }], record: ("SUCCESS", "PAID"), status_calls: (1, 1), automatic_refunds: 1 },
    Row { name: "late success, 5 copies at once, then replayed",    setup: LateSuccess,      callback: SUCCESS,                                                    deliveries: &[Delivery { api: Up, copies: 5, at_once: true, ack: OneApplied }, Delivery { api: Up, copies: 3, at_once: false, ack: Applied(false) }], record: ("SUCCESS", "PAID"), status_calls: (1, 5), automatic_refunds: 1 },
];

fn txn(p: &Value) -> String {
    p["merchant_txn_id"].as_str().unwrap().to_owned()
}

/// The session and the payment the callbacks are about, as `setup` says.
async fn prepare(env: &Env, token: &str, setup: Setup) -> (String, String) {
    let sim = &env.server.simulator;
    let sid = env.book(token).await;
    let p = env.create_payment(token, &sid).await;
    let id = txn(&p);
    match setup {
        Pending => {}
        Paid => {
            env.pay(&p, "success").await;
            env.wait_for_status(token, &sid, "PAID").await;
        }
        PaidCallbackLost => {
            sim.set_faults(&id, Faults::callbacks_dropped()).unwrap();
            env.pay(&p, "success").await;
            assert_eq!(sim.transaction(&id).map(|t| t.state), Some(SimState::Completed));
        }
        LateSuccess => {
            // Declined, completed 50 ms later; PhonePe's callbacks are delivered by hand here.
            sim.set_faults(&id, Faults { late_success_ms: Some(50), ..Faults::callbacks_dropped() }).unwrap();
            env.pay(&p, "failure").await;
            let (body, x) = signed_callback_from(SALT, OURS, &id, "PAYMENT_ERROR", "FAILED", 10_000);
            let (code, v) = env.post_callback(&body, Some(&x)).await;
            assert_eq!((code, v["applied"].clone()), (StatusCode::OK, json!(true)), "the decline: {v}");
            let second = env.create_payment(token, &sid).await;
            env.pay(&second, "success").await;
            env.wait_for_status(token, &sid, "PAID").await;
            let s = sim.clone();
            wait_until("PhonePe completes the declined payment", || {
                s.transaction(&id).is_some_and(|t| t.state == SimState::Completed)
            })
            .await;
        }
    }
    (sid, id)
}

/// (payment `id`'s status, the session's status), as an operator sees them.
async fn record(env: &Env, sid: &str, id: &str) -> (String, String) {
    let s = env.session(&operator(env), sid).await;
    let p = s["payments"].as_array().unwrap().iter().find(|p| p["merchant_txn_id"] == id).unwrap().clone();
    (p["status"].as_str().unwrap().to_owned(), s["status"].as_str().unwrap().to_owned())
}

fn status_api_faults(api: StatusApi) -> Option<Faults> {
    match api {
        Up => None,
        Down503 => Some(Faults {
            force: Some(ForcedAnswer { http_status: Some(503), ..ForcedAnswer::code("INTERNAL_SERVER_ERROR") }),
            ..Faults::default()
        }),
        Unreadable => Some(Faults::garbage()),
    }
    .map(|f| f.only(&[Operation::Status]))
}

async fn run(env: Env, name: &str) {
    let row = MATRIX.iter().find(|r| r.name == name).expect("a row of the matrix");
    let sim = env.server.simulator.clone();
    let t = env.token("cb-matrix");
    let (sid, id) = prepare(&env, &t, row.setup).await;
    let before = record(&env, &sid, &id).await;
    assert_eq!((before.0.as_str(), before.1.as_str()), row.setup.before(), "{name}");
    assert_eq!(sim.calls(Operation::Status, &id), 0, "{name}: no status call before the callback");

    let (merchant, code, state, amount) = row.callback;
    let (body, x) = signed_callback_from(SALT, merchant, &id, code, state, amount);
    for d in row.deliveries {
        // Per-payment faults replace the setup's whole (its late success has happened).
        match status_api_faults(d.api) {
            Some(f) => sim.set_faults(&id, f).unwrap(),
            None => sim.clear_faults(&id),
        }
        let answers: Vec<(StatusCode, Value)> = if d.at_once {
            futures::future::join_all((0..d.copies).map(|_| env.post_callback(&body, Some(&x)))).await
        } else {
            let mut all = Vec::new();
            for _ in 0..d.copies {
                all.push(env.post_callback(&body, Some(&x)).await);
            }
            all
        };
        sim.clear_faults(&id);
        match d.ack {
            Applied(applied) => {
                for (code, v) in &answers {
                    assert_eq!((*code, v), (StatusCode::OK, &json!({"success": true, "applied": applied})), "{name}");
                }
            }
            OneApplied => {
                assert!(
                    answers.iter().all(|(c, v)| *c == StatusCode::OK && v["success"] == true),
                    "{name}: {answers:?}"
                );
                let applied = answers.iter().filter(|(_, v)| v["applied"] == true).count();
                assert_eq!(applied, 1, "{name}: applied once: {answers:?}");
            }
            Refused(status, error) => {
                for (code, v) in &answers {
                    assert_eq!((code.as_u16(), v["error"]["code"].as_str()), (status, Some(error)), "{name}: {v}");
                }
                assert_eq!(record(&env, &sid, &id).await, before, "{name}: nothing changed");
                let s = env.session(&operator(&env), &sid).await;
                assert!(s["refunds"].as_array().unwrap().is_empty(), "{name}: {s}");
            }
        }
    }

    let after = record(&env, &sid, &id).await;
    assert_eq!((after.0.as_str(), after.1.as_str()), row.record, "{name}: the record");
    let calls = sim.calls(Operation::Status, &id);
    assert!(row.status_calls.0 <= calls && calls <= row.status_calls.1, "{name}: {calls} status calls");

    // Automatic refunds: ours, settled, and PhonePe's, each sent once.
    let s = wait_session(&env, &sid, "refunds settled", |s| {
        let refunds = s["refunds"].as_array().unwrap();
        refunds.len() == row.automatic_refunds && refunds.iter().all(|r| r["status"] == "SUCCESS")
    })
    .await;
    let at_phonepe: Vec<_> = sim
        .transactions()
        .into_iter()
        .filter(|t| t.kind == TxnKind::Refund && t.original_transaction_id.as_deref() == Some(id.as_str()))
        .collect();
    assert_eq!(at_phonepe.len(), row.automatic_refunds, "{name}: refunds at PhonePe");
    for r in s["refunds"].as_array().unwrap() {
        assert_eq!(r["merchant_txn_id"], id.as_str(), "{name}: {s}");
        assert_eq!(sim.calls(Operation::Refund, r["refund_id"].as_str().unwrap()), 1, "{name}: sent once");
    }
    if row.automatic_refunds == 1 {
        // The driver paid once in the end: the session keeps the second payment.
        assert_eq!((s["paid"].as_str(), s["refunded"].as_str()), (Some("100.00"), Some("0.00")), "{name}: {s}");
        let p = s["payments"].as_array().unwrap().iter().find(|p| p["merchant_txn_id"] == id.as_str()).unwrap();
        assert_eq!(p["refunded"], "100.00", "{name}: {s}");
    }

    // A payment still open gets its real outcome afterwards, as usual, without a status call.
    if after.0 == "PENDING" {
        let p = json!({"redirect_url": sim.transaction(&id).unwrap().pay_page_url.unwrap()});
        env.pay(&p, "success").await;
        env.wait_for_status(&t, &sid, "PAID").await;
        assert_eq!(sim.calls(Operation::Status, &id), calls, "{name}");
    }
    assert_money(&env, &[sid]).await;
}

async fn another_merchant(env: Env) {
    run(env, "another merchant").await;
}
async fn failed_after_success(env: Env) {
    run(env, "FAILED after SUCCESS").await;
}
async fn failed_after_success_status_api_down(env: Env) {
    run(env, "FAILED after SUCCESS, status API down (503)").await;
}
async fn another_amount_phonepe_pending(env: Env) {
    run(env, "another amount, PhonePe: PENDING").await;
}
async fn another_amount_phonepe_success(env: Env) {
    run(env, "another amount, PhonePe: SUCCESS of ours").await;
}
async fn late_success_status_api_down(env: Env) {
    run(env, "late success, status API down (503)").await;
}
async fn late_success_status_api_unreadable(env: Env) {
    run(env, "late success, status API unreadable").await;
}
async fn late_success_replayed(env: Env) {
    run(env, "late success, replayed").await;
}
async fn late_success_delivered_at_once(env: Env) {
    run(env, "late success, 5 copies at once, then replayed").await;
}

on_both_stores!(
    another_merchant,
    failed_after_success,
    failed_after_success_status_api_down,
    another_amount_phonepe_pending,
    another_amount_phonepe_success,
    late_success_status_api_down,
    late_success_status_api_unreadable,
    late_success_replayed,
    late_success_delivered_at_once,
);
