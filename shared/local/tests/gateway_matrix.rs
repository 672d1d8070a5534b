//! The gateway-failure matrix (issue 9), through the HTTP API, on both stores: every way
//! PhonePe can fail a call — a refusal, nothing listening (connection refused), a 5xx before or
//! after PhonePe recorded the request, an unreadable answer, rate limiting — on create-payment
//! and on refund. Each row says what the client is answered (status and error code), what we
//! record (FAILED or PENDING), whether the session can be paid again / whether the refund's
//! amount is free again, and what a retry with the same `Idempotency-Key` does once PhonePe is
//! well: always the same merchantTransactionId, and never more than one transaction with it at
//! PhonePe. Every scenario ends with the money check (ours = the simulator's, per session).
//!
//! The expectations are the documented rules (README "Payment rules", docs/guarantees.md M6,
//! M7, O2, O7; docs/http-api.md). "Nothing listening" is played by a twin server on the same
//! store whose PhonePe base URL is a closed port; the retry then goes to the healthy server.

// This suite uses `on_both_stores_and_apis_with_stores!`, not common's `on_both_stores!`.
#![allow(unused_macros)]

#[macro_use]
mod common;

use common::{Env, Rec, assert_money, operator, paid_session, unreachable_twin_on, wait_session, wait_until};
use parkpay_api::Stores;
use parkpay_simulator::{Faults, Operation, Outcome, SimState, TxnKind};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CREATE: &str = "/api/payment/phonepe/create/";
const REFUND: &str = "/api/payment/phonepe/refund/";

/// How PhonePe fails the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// PhonePe answers `BAD_REQUEST` (HTTP 400): a definite "no", nothing recorded.
    Refused,
    /// Nothing listens on PhonePe's port: the request never leaves.
    ConnectionRefused,
    /// HTTP 500 `INTERNAL_SERVER_ERROR` before PhonePe recorded anything.
    ServerErrorBefore,
    /// HTTP 500 after PhonePe recorded the payment / refund.
    ServerErrorAfter,
    /// HTTP 200 with an HTML body, after PhonePe recorded the payment / refund.
    Garbage,
    /// HTTP 429 `TOO_MANY_REQUESTS`: nothing recorded.
    TooManyRequests,
}

impl Fault {
    /// The simulator's fault for `op`; `None` for ConnectionRefused (played by a twin server).
    fn faults(self, op: Operation) -> Option<Faults> {
        let f = match self {
            Fault::Refused => Faults::force("BAD_REQUEST"),
            Fault::ConnectionRefused => return None,
            Fault::ServerErrorBefore => Faults::server_error_before(),
            Fault::ServerErrorAfter => Faults::server_error_after(),
            Fault::Garbage => Faults::garbage(),
            Fault::TooManyRequests => Faults::force("TOO_MANY_REQUESTS"),
        };
        Some(f.only(&[op]))
    }

    /// PhonePe recorded the request although its answer was a failure.
    fn recorded_by_phonepe(self) -> bool {
        matches!(self, Fault::ServerErrorAfter | Fault::Garbage)
    }
}

use Fault::*;

// ---- create-payment -------------------------------------------------------------------------

/// What a create-payment for the same session with *another* key gets once PhonePe is well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// 201 and a new payment: the session can be paid again.
    NewPayment,
    /// 201 and the same payment, sent to PhonePe now: the session can be paid (with it).
    SamePayment,
    /// 409 `PAYMENT_IN_PROGRESS`: the session waits for the payment PhonePe may have.
    InProgress,
}

struct PayRow {
    fault: Fault,
    /// The client's answer: HTTP status, error code, `Retry-After`.
    answer: (u16, &'static str, Option<&'static str>),
    /// The payment as recorded right after.
    record: &'static str,
    /// Whether the session can be paid again.
    next: Next,
    /// The retry with the same `Idempotency-Key`: 201 (`None`), or the 409 code; either way
    /// about the same merchantTransactionId.
    retry: (u16, Option<&'static str>),
    /// Transactions with that id at PhonePe after the retry (never more than one).
    at_phonepe: usize,
    /// Pay requests PhonePe received for that id, the failed one included.
    pay_calls: u64,
}

/// One row per fault on create-payment.
#[rustfmt::skip]
const PAY_MATRIX: &[PayRow] = &[
    //       fault                     answer (HTTP, error code, Retry-After)          record             payable again?           retry with the same key                    at PhonePe     pay calls
    PayRow { fault: Refused,           answer: (502, "GATEWAY_REJECTED", None),        record: "FAILED",  next: Next::NewPayment,  retry: (409, Some("PAYMENT_FAILED")),      at_phonepe: 0, pay_calls: 1 },
    PayRow { fault: ConnectionRefused, answer: (503, "GATEWAY_UNAVAILABLE", None),     record: "PENDING", next: Next::SamePayment, retry: (201, None),                        at_phonepe: 1, pay_calls: 1 },
    PayRow { fault: ServerErrorBefore, answer: (503, "GATEWAY_OUTCOME_UNKNOWN", None), record: "PENDING", next: Next::InProgress,  retry: (201, None),                        at_phonepe: 1, pay_calls: 2 },
    PayRow { fault: ServerErrorAfter,  answer: (503, "GATEWAY_OUTCOME_UNKNOWN", None), record: "PENDING", next: Next::InProgress,  retry: (409, Some("PAYMENT_IN_PROGRESS")), at_phonepe: 1, pay_calls: 1 },
    PayRow { fault: Garbage,           answer: (503, "GATEWAY_OUTCOME_UNKNOWN", None), record: "PENDING", next: Next::InProgress,  retry: (409, Some("PAYMENT_IN_PROGRESS")), at_phonepe: 1, pay_calls: 1 },
    PayRow { fault: TooManyRequests,   answer: (503, "GATEWAY_BUSY", Some("5")),       record: "PENDING", next: Next::SamePayment, retry: (201, None),                        at_phonepe: 1, pay_calls: 2 },
];

fn sim_count(env: &Env, kind: TxnKind, id: &str) -> usize {
    env.server.simulator.transactions().iter().filter(|t| t.kind == kind && t.merchant_transaction_id == id).count()
}

/// Create-payment for `sid` with `key` while PhonePe fails as `fault` (through `faulty`, the
/// twin, for ConnectionRefused); the answer is checked against the row, the fault is then
/// lifted. Returns the id of the payment recorded for it.
async fn failing_create(env: &Env, faulty: &Env, row: &PayRow, token: &str, sid: &str, key: &str) -> String {
    if let Some(f) = row.fault.faults(Operation::Pay) {
        env.server.simulator.set_global_faults(f).unwrap();
    }
    let (code, headers, v) = faulty.post_keyed(CREATE, token, Some(key), &json!({"session_id": sid})).await;
    env.server.simulator.clear_global_faults();
    let (status, error, retry_after) = row.answer;
    let what = format!("{:?}: {v}", row.fault);
    assert_eq!((code.as_u16(), v["error"]["code"].as_str()), (status, Some(error)), "answer, {what}");
    assert_eq!(headers.get("retry-after").and_then(|h| h.to_str().ok()), retry_after, "Retry-After, {what}");
    let s = env.session(token, sid).await;
    let payments = s["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1, "{what}: {s}");
    assert_eq!(payments[0]["status"], row.record, "record, {what}: {s}");
    assert_eq!(s["status"], "PENDING_PAYMENT", "{what}: {s}");
    let id = payments[0]["merchant_txn_id"].as_str().unwrap().to_owned();
    // The client is told which payment to verify when PhonePe may have it.
    if row.record == "PENDING" && error == "GATEWAY_OUTCOME_UNKNOWN" {
        assert!(v["error"]["message"].as_str().unwrap().contains(&id), "the answer names the payment: {what}");
    }
    id
}

/// The payment `id` is live at PhonePe: the payer pays (through the pay page when we have its
/// link, else as PhonePe would), and the session becomes PAID.
async fn payer_pays(env: &Env, token: &str, sid: &str, id: &str, created: Option<&Value>) {
    match created {
        Some(v) => env.pay(v, "success").await,
        None => {
            env.server.simulator.complete(id, Outcome::Success).await.unwrap();
        }
    }
    env.wait_for_status(token, sid, "PAID").await;
}

async fn pay_row(env: Env, stores: Stores, fault: Fault) {
    let row = PAY_MATRIX.iter().find(|r| r.fault == fault).expect("a row for every fault");
    let twin = if fault == ConnectionRefused { Some(unreachable_twin_on(&stores, env.api()).await) } else { None };
    let faulty = twin.as_ref().unwrap_or(&env);
    let t = env.token(&format!("gm-pay-{fault:?}"));
    let mut sessions = Vec::new();

    // The failure, then a retry with the same Idempotency-Key once PhonePe is well.
    let sid = env.book(&t).await;
    let id = failing_create(&env, faulty, row, &t, &sid, "pay-1").await;
    let (code, headers, v) = env.post_keyed(CREATE, &t, Some("pay-1"), &json!({"session_id": sid})).await;
    assert!(
        headers.get("idempotent-replayed").is_none(),
        "a {} answer is not kept: the retry runs again",
        row.answer.0
    );
    match row.retry {
        (201, None) => {
            assert_eq!(code, StatusCode::CREATED, "{fault:?}: {v}");
            assert_eq!(v["merchant_txn_id"], id.as_str(), "{fault:?}: the same payment");
        }
        (status, Some(error)) => {
            assert_eq!((code.as_u16(), v["error"]["code"].as_str()), (status, Some(error)), "retry, {fault:?}: {v}");
            assert!(v["error"]["message"].as_str().unwrap().contains(&id), "{fault:?}: names the same payment: {v}");
        }
        other => unreachable!("{other:?}"),
    }
    assert_eq!(env.session(&t, &sid).await["payments"].as_array().unwrap().len(), 1, "{fault:?}: no second payment");
    assert_eq!(sim_count(&env, TxnKind::Payment, &id), row.at_phonepe, "{fault:?}: transactions at PhonePe");
    assert_eq!(env.server.simulator.calls(Operation::Pay, &id), row.pay_calls, "{fault:?}: pay calls");
    if row.at_phonepe == 1 {
        payer_pays(&env, &t, &sid, &id, (code == StatusCode::CREATED).then_some(&v)).await;
        assert_eq!(sim_count(&env, TxnKind::Payment, &id), 1, "{fault:?}: still one transaction");
    }
    sessions.push(sid);

    // The same failure on another session, then a create-payment with another key: can the
    // session be paid again?
    let sid = env.book(&t).await;
    let id = failing_create(&env, faulty, row, &t, &sid, "pay-2").await;
    let (code, _, v) = env.post_keyed(CREATE, &t, Some("pay-3"), &json!({"session_id": sid})).await;
    match row.next {
        Next::NewPayment => {
            assert_eq!(code, StatusCode::CREATED, "{fault:?}: {v}");
            let new = v["merchant_txn_id"].as_str().unwrap().to_owned();
            assert_ne!(new, id, "{fault:?}: a new payment");
            payer_pays(&env, &t, &sid, &new, Some(&v)).await;
            assert_eq!(sim_count(&env, TxnKind::Payment, &id), 0, "{fault:?}: the failed one never reached PhonePe");
        }
        Next::SamePayment => {
            assert_eq!(code, StatusCode::CREATED, "{fault:?}: {v}");
            assert_eq!(v["merchant_txn_id"], id.as_str(), "{fault:?}: the same payment, sent now");
            payer_pays(&env, &t, &sid, &id, Some(&v)).await;
        }
        Next::InProgress => {
            assert_eq!((code, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("PAYMENT_IN_PROGRESS")), "{v}");
            if fault.recorded_by_phonepe() {
                payer_pays(&env, &t, &sid, &id, None).await;
            }
        }
    }
    let s = env.session(&t, &sid).await;
    let expected_payments = if row.next == Next::NewPayment { 2 } else { 1 };
    assert_eq!(s["payments"].as_array().unwrap().len(), expected_payments, "{fault:?}: {s}");
    assert!(sim_count(&env, TxnKind::Payment, &id) <= 1);
    sessions.push(sid);

    assert_money(&env, &sessions).await;
}

async fn pay_refused(env: Env, stores: Stores) {
    pay_row(env, stores, Refused).await;
}
async fn pay_connection_refused(env: Env, stores: Stores) {
    pay_row(env, stores, ConnectionRefused).await;
}
async fn pay_server_error_before(env: Env, stores: Stores) {
    pay_row(env, stores, ServerErrorBefore).await;
}
async fn pay_server_error_after(env: Env, stores: Stores) {
    pay_row(env, stores, ServerErrorAfter).await;
}
async fn pay_garbage(env: Env, stores: Stores) {
    pay_row(env, stores, Garbage).await;
}
async fn pay_too_many_requests(env: Env, stores: Stores) {
    pay_row(env, stores, TooManyRequests).await;
}

// ---- refund ---------------------------------------------------------------------------------

struct RefundRow {
    fault: Fault,
    /// The client's answer to a refund of 30.00 of a paid 100.00: HTTP status and error code
    /// (`None`: 202 with the refund).
    answer: (u16, Option<&'static str>),
    /// The refund as recorded right after.
    record: &'static str,
    /// Whether its 30.00 is free again: a refund of all 100.00 with another key is accepted
    /// (else 409 `REFUND_EXCEEDS_REMAINING`).
    amount_free: bool,
    /// The retry with the same `Idempotency-Key`: HTTP status, the refund's status in the
    /// answer (same refund_id) or, for an error, its code (the message names the refund), and
    /// whether it is the first answer replayed.
    retry: (u16, &'static str, bool),
    /// Refund requests PhonePe received with that id, reconciliation's included.
    refund_calls: u64,
    /// Transactions with that id at PhonePe in the end (never more than one).
    at_phonepe: usize,
    /// What the session has refunded in the end, after reconciliation.
    refunded: &'static str,
}

/// One row per fault on refund.
#[rustfmt::skip]
const REFUND_MATRIX: &[RefundRow] = &[
    //          fault                     answer (HTTP, error code)                record             amount free?        retry, same key (HTTP, record, replayed) refund calls at PhonePe refunded in the end
    RefundRow { fault: Refused,           answer: (502, Some("GATEWAY_REJECTED")), record: "FAILED",  amount_free: true,  retry: (502, "GATEWAY_REJECTED", false), refund_calls: 1, at_phonepe: 0, refunded: "100.00" },
    RefundRow { fault: ConnectionRefused, answer: (202, None),                     record: "PENDING", amount_free: false, retry: (202, "PENDING", true),  refund_calls: 1, at_phonepe: 1, refunded: "30.00" },
    RefundRow { fault: ServerErrorBefore, answer: (202, None),                     record: "PENDING", amount_free: false, retry: (202, "PENDING", true),  refund_calls: 2, at_phonepe: 1, refunded: "30.00" },
    RefundRow { fault: ServerErrorAfter,  answer: (202, None),                     record: "PENDING", amount_free: false, retry: (202, "PENDING", true),  refund_calls: 1, at_phonepe: 1, refunded: "30.00" },
    RefundRow { fault: Garbage,           answer: (202, None),                     record: "PENDING", amount_free: false, retry: (202, "PENDING", true),  refund_calls: 1, at_phonepe: 1, refunded: "30.00" },
    RefundRow { fault: TooManyRequests,   answer: (202, None),                     record: "PENDING", amount_free: false, retry: (202, "PENDING", true),  refund_calls: 2, at_phonepe: 1, refunded: "30.00" },
];

async fn refund_row(env: Env, stores: Stores, fault: Fault) {
    let row = REFUND_MATRIX.iter().find(|r| r.fault == fault).expect("a row for every fault");
    let twin = if fault == ConnectionRefused { Some(unreachable_twin_on(&stores, env.api()).await) } else { None };
    let faulty = twin.as_ref().unwrap_or(&env);
    let t = env.token(&format!("gm-refund-{fault:?}"));
    let (sid, p) = paid_session(&env, &t).await;
    let txn = p["merchant_txn_id"].as_str().unwrap().to_owned();
    let body = json!({"merchant_txn_id": txn, "amount": "30.00"});

    // The failure. Where PhonePe recorded the refund, its callback is dropped, so our record
    // stays what the answer made it until reconciliation asks PhonePe.
    if let Some(mut f) = fault.faults(Operation::Refund) {
        f.callback.drop = fault.recorded_by_phonepe();
        env.server.simulator.set_global_faults(f).unwrap();
    }
    let (code, _, v) = faulty.post_keyed(REFUND, &t, Some("refund-1"), &body).await;
    assert_eq!((code.as_u16(), v["error"]["code"].as_str()), row.answer, "answer, {fault:?}: {v}");
    let s = env.session(&t, &sid).await;
    let refunds = s["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 1, "{fault:?}: {s}");
    assert_eq!(refunds[0]["status"], row.record, "record, {fault:?}: {s}");
    let refund_id = refunds[0]["refund_id"].as_str().unwrap().to_owned();
    if code == StatusCode::ACCEPTED {
        assert_eq!((v["refund_id"].as_str(), v["status"].as_str()), (Some(refund_id.as_str()), Some(row.record)));
    }
    if fault.recorded_by_phonepe() {
        let sim = env.server.simulator.clone();
        wait_until("PhonePe settles the refund", || {
            sim.transaction(&refund_id).is_some_and(|x| x.state == SimState::Completed)
        })
        .await;
    }
    env.server.simulator.clear_global_faults();
    assert_eq!(env.session(&t, &sid).await["refunds"][0]["status"], row.record, "{fault:?}: unchanged until asked");

    // A retry with the same Idempotency-Key: the same refund.
    let (code, headers, v) = env.post_keyed(REFUND, &t, Some("refund-1"), &body).await;
    let replayed = headers.get("idempotent-replayed").is_some_and(|h| h == "true");
    if row.retry.0 == 202 {
        assert_eq!(
            (code.as_u16(), v["refund_id"].as_str(), v["status"].as_str(), replayed),
            (row.retry.0, Some(refund_id.as_str()), Some(row.retry.1), row.retry.2),
            "retry, {fault:?}: {v}"
        );
    } else {
        assert_eq!(
            (code.as_u16(), v["error"]["code"].as_str(), replayed),
            (row.retry.0, Some(row.retry.1), row.retry.2),
            "retry, {fault:?}: {v}"
        );
        assert!(v["error"]["message"].as_str().unwrap().contains(&refund_id), "names the refund: {v}");
    }
    assert_eq!(env.session(&t, &sid).await["refunds"].as_array().unwrap().len(), 1, "{fault:?}: no second refund");

    // Is the amount free again? Ask for everything with another key.
    let (code, _, v) =
        env.post_keyed(REFUND, &t, Some("refund-2"), &json!({"merchant_txn_id": txn, "amount": "100.00"})).await;
    if row.amount_free {
        assert_eq!(code, StatusCode::ACCEPTED, "{fault:?}: the failed refund's amount is free: {v}");
    } else {
        assert_eq!(
            (code, v["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("REFUND_EXCEEDS_REMAINING")),
            "{fault:?}: the amount is held: {v}"
        );
    }

    // Reconciliation sees the held refund through: it asks PhonePe (20 s), and sends one
    // PhonePe has never seen again, with the same id, after the 60 s grace period.
    let rec = Rec::new(&env);
    rec.at(21).await;
    rec.at(61).await;
    let s = wait_session(&env, &sid, "every refund final", |s| {
        s["refunded"] == row.refunded && s["refunds"].as_array().unwrap().iter().all(|r| r["status"] != "PENDING")
    })
    .await;
    assert_eq!(s["refunds"][0]["status"], if row.at_phonepe == 1 { "SUCCESS" } else { "FAILED" }, "{s}");
    assert_eq!(sim_count(&env, TxnKind::Refund, &refund_id), row.at_phonepe, "{fault:?}: transactions at PhonePe");
    assert_eq!(env.server.simulator.calls(Operation::Refund, &refund_id), row.refund_calls, "{fault:?}: refund calls");
    // Later passes change nothing.
    rec.at(700).await;
    assert_eq!(env.server.simulator.calls(Operation::Refund, &refund_id), row.refund_calls, "{fault:?}: sent once");
    let op = operator(&env);
    assert_eq!(env.session(&op, &sid).await["refunded"], row.refunded);
    assert_money(&env, &[sid]).await;
}

async fn refund_refused(env: Env, stores: Stores) {
    refund_row(env, stores, Refused).await;
}
async fn refund_connection_refused(env: Env, stores: Stores) {
    refund_row(env, stores, ConnectionRefused).await;
}
async fn refund_server_error_before(env: Env, stores: Stores) {
    refund_row(env, stores, ServerErrorBefore).await;
}
async fn refund_server_error_after(env: Env, stores: Stores) {
    refund_row(env, stores, ServerErrorAfter).await;
}
async fn refund_garbage(env: Env, stores: Stores) {
    refund_row(env, stores, Garbage).await;
}
async fn refund_too_many_requests(env: Env, stores: Stores) {
    refund_row(env, stores, TooManyRequests).await;
}

on_both_stores_and_apis_with_stores!(
    pay_refused,
    pay_connection_refused,
    pay_server_error_before,
    pay_server_error_after,
    pay_garbage,
    pay_too_many_requests,
    refund_refused,
    refund_connection_refused,
    refund_server_error_before,
    refund_server_error_after,
    refund_garbage,
    refund_too_many_requests,
);
