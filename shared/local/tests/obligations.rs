//! Money owed is never forgotten (issue 9), on both stores, through HTTP and the simulator's
//! faults, with reconciliation on a compressed clock. Each test ends by checking the money:
//! for every session, what we hold as paid − refunded equals what the simulator holds.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Env, Rec, assert_money, operator, paid_session, wait_session};
use parkpay_api::reconcile::TIMEOUT_SECS;
use parkpay_simulator::{Faults, ForcedAnswer, Operation, Outcome, SimState, TxnKind};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn txn(p: &Value) -> String {
    p["merchant_txn_id"].as_str().unwrap().to_owned()
}

async fn post_refund(env: &Env, token: &str, txn: &str, amount: Option<&str>) -> (StatusCode, Value) {
    let body = match amount {
        Some(a) => json!({"merchant_txn_id": txn, "amount": a}),
        None => json!({"merchant_txn_id": txn}),
    };
    env.call("POST", "/api/payment/phonepe/refund/", Some(token), Some(&body.to_string())).await
}

/// Why 1: a refund that met a 5xx before PhonePe recorded it is answered 202 PENDING and then
/// sent again by reconciliation (same id, after the grace period): the driver is paid back, and
/// the held amount is not lost.
async fn refund_never_seen_by_phonepe_is_sent_again(env: Env) {
    let t = env.token("ob-1");
    let (sid, p) = paid_session(&env, &t).await;
    env.server.simulator.set_global_faults(Faults::server_error_before().only(&[Operation::Refund])).unwrap();
    let (code, v) = post_refund(&env, &t, &txn(&p), Some("30.00")).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "PENDING");
    let refund_id = v["refund_id"].as_str().unwrap().to_owned();
    assert!(env.server.simulator.transaction(&refund_id).is_none(), "PhonePe never saw it");
    env.server.simulator.clear_global_faults();

    let rec = Rec::new(&env);
    // Checked on the schedule: unknown to PhonePe, but the grace period has not passed.
    let r = rec.at(21).await;
    assert_eq!((r.checked, r.sent), (1, 0), "{r:?}");
    // After the grace period it is sent again, with the same id; PhonePe settles it.
    let r = rec.at(61).await;
    assert_eq!((r.checked, r.sent), (1, 1), "{r:?}");
    assert_eq!(env.server.simulator.transaction(&refund_id).map(|t| t.amount), Some(3_000));
    let s = wait_session(&env, &sid, "refund SUCCESS", |s| s["refunds"][0]["status"] == "SUCCESS").await;
    assert_eq!(s["refunded"], "30.00");
    assert_eq!(s["status"], "PARTIALLY_REFUNDED");
    // The rest is refundable, and nothing more than that.
    let (code, v) = post_refund(&env, &t, &txn(&p), None).await;
    assert!(code == StatusCode::OK || code == StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["amount"], "70.00");
    let (code, v) = post_refund(&env, &t, &txn(&p), Some("1.00")).await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");
    wait_session(&env, &sid, "all refunded", |s| s["refunded"] == "100.00").await;
    assert_eq!(env.server.simulator.calls(Operation::Refund, &refund_id), 2, "sent twice: the 5xx and the re-send");
    assert_money(&env, &[sid]).await;
}

/// Why 1 and item 1: TOO_MANY_REQUESTS and an unreachable PhonePe on refund are not refusals:
/// 202 PENDING, the amount stays held, and reconciliation sends it; a definite refusal is
/// FAILED and frees the amount.
async fn refund_rate_limited_or_unreachable_is_pending_not_failed(env: Env) {
    let t = env.token("ob-2");
    let (sid, p) = paid_session(&env, &t).await;
    let busy = Faults { force: Some(ForcedAnswer::code("TOO_MANY_REQUESTS")), ..Faults::default() };
    env.server.simulator.set_global_faults(busy.only(&[Operation::Refund])).unwrap();
    let (code, v) = post_refund(&env, &t, &txn(&p), Some("40.00")).await;
    assert_eq!((code, v["status"].clone()), (StatusCode::ACCEPTED, json!("PENDING")), "{v}");
    // Held: only 60.00 is left to refund.
    let refused = Faults { force: Some(ForcedAnswer::code("EXCESS_REFUND_AMOUNT")), ..Faults::default() };
    env.server.simulator.set_global_faults(refused.only(&[Operation::Refund])).unwrap();
    let (code, v) = post_refund(&env, &t, &txn(&p), Some("60.01")).await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");
    let (code, v) = post_refund(&env, &t, &txn(&p), Some("10.00")).await;
    assert_eq!((code, v["error"]["code"].clone()), (StatusCode::BAD_GATEWAY, json!("GATEWAY_REJECTED")), "{v}");
    let s = env.session(&t, &sid).await;
    let statuses: Vec<&str> = s["refunds"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["PENDING", "FAILED"], "{s}");
    env.server.simulator.clear_global_faults();
    let rec = Rec::new(&env);
    let r = rec.at(61).await;
    assert_eq!(r.sent, 1, "{r:?}");
    wait_session(&env, &sid, "40.00 refunded", |s| s["refunded"] == "40.00").await;
    assert_money(&env, &[sid]).await;
}

/// Why 2: the automatic refund of a stray success is recorded in the same commit as the
/// success, so PhonePe refusing it for now (TOO_MANY_REQUESTS) does not lose it: reconciliation
/// sends it, once.
async fn automatic_refund_survives_phonepe_being_busy(env: Env) {
    let t = env.token("ob-3");
    let sid = env.book(&t).await;
    let first = env.create_payment(&t, &sid).await;
    env.server.simulator.set_faults(&txn(&first), Faults::late_success(800)).unwrap();
    env.pay(&first, "failure").await;
    let second = env.create_payment(&t, &sid).await;
    env.pay(&second, "success").await;
    env.wait_for_status(&t, &sid, "PAID").await;
    // Refunds are rate limited when the late success arrives.
    let busy = Faults { force: Some(ForcedAnswer::code("TOO_MANY_REQUESTS")), ..Faults::default() };
    env.server.simulator.set_global_faults(busy.only(&[Operation::Refund])).unwrap();
    let s = wait_session(&env, &sid, "stray success and its refund recorded", |s| {
        s["payments"][0]["status"] == "SUCCESS" && s["refunds"].as_array().unwrap().len() == 1
    })
    .await;
    assert_eq!(s["refunds"][0]["status"], "PENDING", "{s}");
    assert_eq!(s["refunds"][0]["merchant_txn_id"], first["merchant_txn_id"]);
    // The refund is recorded before it is sent: wait for PhonePe's refusal of the send.
    let refund_id = s["refunds"][0]["refund_id"].as_str().unwrap().to_owned();
    for _ in 0..400 {
        if env.server.simulator.calls(Operation::Refund, &refund_id) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(env.server.simulator.calls(Operation::Refund, &refund_id), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    env.server.simulator.clear_global_faults();
    let rec = Rec::new(&env);
    rec.at(21).await;
    let r = rec.at(65).await;
    assert_eq!(r.sent, 1, "{r:?}");
    let s = wait_session(&env, &sid, "automatic refund done", |s| s["refunds"][0]["status"] == "SUCCESS").await;
    assert_eq!(
        (s["status"].clone(), s["paid"].clone(), s["refunded"].clone()),
        (json!("PAID"), json!("100.00"), json!("0.00"))
    );
    // Replays change nothing: one automatic refund.
    for secs in [120, 600, 3_600] {
        rec.at(secs).await;
    }
    assert_eq!(env.session(&t, &sid).await["refunds"].as_array().unwrap().len(), 1);
    assert_money(&env, &[sid]).await;
}

/// Why 3: a payment that expired (the session CANCELLED) and that PhonePe completes afterwards,
/// with its callback lost, is found by the slow re-check and refunded automatically, once.
async fn late_success_after_expiry_is_caught(env: Env) {
    let t = env.token("ob-4");
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    let id = txn(&p);
    // The payer has not paid by the timeout; every callback of this payment is lost.
    env.server.simulator.set_faults(&id, Faults::callbacks_dropped()).unwrap();
    let rec = Rec::new(&env);
    let r = rec.at(TIMEOUT_SECS + 1).await;
    assert_eq!(r.expired, 1, "{r:?}");
    assert_eq!(env.session(&t, &sid).await["status"], "CANCELLED");
    // PhonePe completes it later.
    env.server.simulator.complete(&id, Outcome::Success).await.unwrap();
    // Not before the slow schedule's next slot (30 minutes after acceptance).
    let r = rec.at(25 * 60).await;
    assert_eq!(r.checked, 0, "{r:?}");
    let r = rec.at(30 * 60 + 1).await;
    assert_eq!((r.checked, r.applied), (1, 1), "{r:?}");
    let s = wait_session(&env, &sid, "refunded", |s| s["refunds"][0]["status"] == "SUCCESS").await;
    assert_eq!(s["payments"][0]["status"], "SUCCESS");
    assert_eq!(s["payments"][0]["refunded"], "100.00");
    assert_eq!(s["status"], "CANCELLED");
    for secs in [3_600, 7_200, 48 * 3_600] {
        rec.at(secs).await;
    }
    assert_eq!(env.session(&t, &sid).await["refunds"].as_array().unwrap().len(), 1, "refunded once");
    assert_money(&env, &[sid]).await;
}

/// Why 3: a payment recorded FAILED that PhonePe completes later, with no callback, while the
/// driver paid again: the re-check finds the late success and refunds it, once; the driver has
/// paid once in the end.
async fn late_success_after_a_failure_is_caught(env: Env) {
    let t = env.token("ob-5");
    let sid = env.book(&t).await;
    let first = env.create_payment(&t, &sid).await;
    // Declined now, completed 300 ms later; every callback of it is lost.
    let faults = Faults { late_success_ms: Some(300), ..Faults::callbacks_dropped() };
    env.server.simulator.set_faults(&txn(&first), faults).unwrap();
    env.pay(&first, "failure").await;
    // The app verifies: FAILED is recorded.
    let body = json!({"merchant_txn_id": txn(&first)}).to_string();
    let (code, v) = env.call("POST", "/api/payment/phonepe/verify/", Some(&t), Some(&body)).await;
    assert_eq!((code, v["status"].clone()), (StatusCode::OK, json!("FAILED")), "{v}");
    let second = env.create_payment(&t, &sid).await;
    env.pay(&second, "success").await;
    env.wait_for_status(&t, &sid, "PAID").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(env.server.simulator.transaction(&txn(&first)).map(|x| x.state), Some(SimState::Completed));
    assert_eq!(env.session(&t, &sid).await["payments"][0]["status"], "FAILED", "the late success is not known yet");
    let rec = Rec::new(&env);
    let r = rec.at(30 * 60 + 1).await;
    assert_eq!((r.checked, r.applied), (1, 1), "{r:?}");
    let s = wait_session(&env, &sid, "the late success refunded", |s| {
        s["refunds"].as_array().unwrap().len() == 1 && s["refunds"][0]["status"] == "SUCCESS"
    })
    .await;
    assert_eq!(
        (s["status"].clone(), s["paid"].clone(), s["refunded"].clone()),
        (json!("PAID"), json!("100.00"), json!("0.00"))
    );
    for secs in [3_600, 48 * 3_600] {
        rec.at(secs).await;
    }
    assert_eq!(env.session(&t, &sid).await["refunds"].as_array().unwrap().len(), 1);
    assert_money(&env, &[sid]).await;
}

/// Why 4: 210 refunds that never settle (PhonePe keeps failing before recording them) do not
/// starve a new payment whose callback was lost: it is applied at its first due check.
async fn reconciliation_cannot_starve(env: Env) {
    let t = env.token("ob-6");
    env.server.simulator.set_global_faults(Faults::server_error_before().only(&[Operation::Refund])).unwrap();
    let mut sessions = Vec::new();
    for _ in 0..210 {
        let (sid, p) = paid_session(&env, &t).await;
        let (code, v) = post_refund(&env, &t, &txn(&p), Some("1.00")).await;
        assert_eq!(code, StatusCode::ACCEPTED, "{v}");
        sessions.push(sid);
    }
    let rec = Rec::new(&env);
    // Every long-lived refund has been tried several times.
    for secs in [21, 61, 125] {
        let r = rec.at(secs).await;
        assert!(r.checked >= 210, "{r:?}");
    }
    // A new payment, callback lost.
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    env.server.simulator.set_faults(&txn(&p), Faults::callbacks_dropped()).unwrap();
    env.pay(&p, "success").await;
    assert_eq!(env.session(&t, &sid).await["status"], "PENDING_PAYMENT");
    // 150 s after the test began the new payment is 20+ s old: its first check is due, along
    // with the refunds' next ones; one tick handles them all.
    let r = rec.at(150).await;
    assert_eq!(r.deferred, 0, "{r:?}");
    assert_eq!(env.session(&t, &sid).await["status"], "PAID", "{r:?}");
    env.server.simulator.clear_global_faults();
    sessions.push(sid);
    assert_money(&env, &sessions).await;
}

/// Why 5: verify asks PhonePe at most once per payment every 10 seconds.
async fn verify_is_rate_limited_per_payment(env: Env) {
    let t = env.token("ob-7");
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    let id = txn(&p);
    let body = json!({"merchant_txn_id": id}).to_string();
    // At most one status call per started 10 s (a slow machine may take longer than 10 s).
    let started = std::time::Instant::now();
    let allowed = || 1 + started.elapsed().as_secs() / 10;
    let mut answers = Vec::new();
    for _ in 0..20 {
        let (code, v) = env.call("POST", "/api/payment/phonepe/verify/", Some(&t), Some(&body)).await;
        answers.push((code, v["status"].clone()));
    }
    assert!(answers.iter().all(|(c, s)| *c == StatusCode::OK && s == "PENDING"), "{answers:?}");
    let calls = env.server.simulator.calls(Operation::Status, &id);
    assert!(calls >= 1 && calls <= allowed(), "{calls} status calls for 20 verifies");
    // 50 at once: no more.
    let many = (0..50).map(|_| env.call("POST", "/api/payment/phonepe/verify/", Some(&t), Some(&body)));
    for (code, _) in futures::future::join_all(many).await {
        assert_eq!(code, StatusCode::OK);
    }
    let calls = env.server.simulator.calls(Operation::Status, &id);
    assert!(calls <= allowed(), "{calls} status calls for 70 verifies in {:?}", started.elapsed());
    assert_money(&env, &[sid]).await;
}

/// Why 5: a driver may make at most 10 refund requests per payment, FAILED ones included;
/// operators are not limited.
async fn driver_refund_requests_are_limited(env: Env) {
    let t = env.token("ob-8");
    let (sid, p) = paid_session(&env, &t).await;
    let refused = Faults { force: Some(ForcedAnswer::code("EXCESS_REFUND_AMOUNT")), ..Faults::default() };
    env.server.simulator.set_global_faults(refused.only(&[Operation::Refund])).unwrap();
    for _ in 0..10 {
        let (code, v) = post_refund(&env, &t, &txn(&p), Some("1.00")).await;
        assert_eq!(code, StatusCode::BAD_GATEWAY, "{v}");
    }
    let (code, v) = post_refund(&env, &t, &txn(&p), Some("1.00")).await;
    assert_eq!((code, v["error"]["code"].clone()), (StatusCode::CONFLICT, json!("REFUND_LIMIT_REACHED")), "{v}");
    env.server.simulator.clear_global_faults();
    let (code, v) = post_refund(&env, &t, &txn(&p), Some("1.00")).await;
    assert_eq!(code, StatusCode::CONFLICT, "still limited: {v}");
    let (code, v) = post_refund(&env, &operator(&env), &txn(&p), Some("1.00")).await;
    assert!(code == StatusCode::OK || code == StatusCode::ACCEPTED, "operators are not limited: {v}");
    wait_session(&env, &sid, "operator refund done", |s| s["refunded"] == "1.00").await;
    assert_money(&env, &[sid]).await;
}

/// Why 5: TOO_MANY_REQUESTS on create-payment is 503 GATEWAY_BUSY with Retry-After; nothing is
/// FAILED; the retry with the same key resumes the same payment, and exactly one transaction
/// reaches PhonePe.
async fn rate_limited_create_payment_is_resumed(env: Env) {
    let t = env.token("ob-9");
    let sid = env.book(&t).await;
    let busy = Faults { force: Some(ForcedAnswer::code("TOO_MANY_REQUESTS")), ..Faults::default() };
    env.server.simulator.set_global_faults(busy.only(&[Operation::Pay])).unwrap();
    let body = json!({"session_id": sid}).to_string();
    let send = || {
        env.http
            .post(format!("{}/api/payment/phonepe/create/", env.base))
            .bearer_auth(&t)
            .header("Idempotency-Key", "pay-ob-9")
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };
    let resp = send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("5"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "GATEWAY_BUSY");
    let s = env.session(&t, &sid).await;
    assert_eq!(s["payments"][0]["status"], "PENDING", "not FAILED: {s}");
    let id = s["payments"][0]["merchant_txn_id"].as_str().unwrap().to_owned();
    env.server.simulator.clear_global_faults();
    let resp = send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["merchant_txn_id"], id.as_str(), "the same payment");
    let at_phonepe: Vec<_> =
        env.server.simulator.transactions().into_iter().filter(|x| x.kind == TxnKind::Payment).collect();
    assert_eq!(at_phonepe.iter().filter(|x| x.merchant_transaction_id == id).count(), 1);
    env.pay(&v, "success").await;
    env.wait_for_status(&t, &sid, "PAID").await;
    assert_eq!(env.session(&t, &sid).await["payments"].as_array().unwrap().len(), 1);
    assert_money(&env, &[sid]).await;
}

/// A payment that met a 5xx before PhonePe recorded it, and whose client never retried with
/// the same key: once reconciliation has heard PhonePe say it has never seen it, the next
/// create-payment for the session (another key) sends that same payment instead of answering
/// PAYMENT_IN_PROGRESS until the 20-minute expiry; and also after a 429 reconciliation has
/// checked in the meantime.
async fn payment_phonepe_never_saw_is_resumed_after_reconciliation(env: Env) {
    let t = env.token("ob-10");
    let rec = Rec::new(&env);
    let mut sessions = Vec::new();
    for (n, faults) in [
        Faults::server_error_before().only(&[Operation::Pay]),
        Faults { force: Some(ForcedAnswer::code("TOO_MANY_REQUESTS")), ..Faults::default() }.only(&[Operation::Pay]),
    ]
    .into_iter()
    .enumerate()
    {
        let sid = env.book(&t).await;
        env.server.simulator.set_global_faults(faults).unwrap();
        let (code, _, v) = env
            .post_keyed("/api/payment/phonepe/create/", &t, Some(&format!("first-{n}")), &json!({"session_id": sid}))
            .await;
        env.server.simulator.clear_global_faults();
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        let id = env.session(&t, &sid).await["payments"][0]["merchant_txn_id"].as_str().unwrap().to_owned();
        assert!(env.server.simulator.transaction(&id).is_none(), "PhonePe never saw it");
        // Reconciliation asks PhonePe: not found (its first check, 20 s after acceptance).
        let r = rec.at(21 + 100 * n as i64).await;
        assert_eq!((r.checked, r.errors), (1, 0), "{r:?}");
        let (code, _, v) = env
            .post_keyed("/api/payment/phonepe/create/", &t, Some(&format!("second-{n}")), &json!({"session_id": sid}))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{v}");
        assert_eq!(v["merchant_txn_id"], id.as_str(), "the same payment, sent now");
        env.pay(&v, "success").await;
        env.wait_for_status(&t, &sid, "PAID").await;
        assert_eq!(env.session(&t, &sid).await["payments"].as_array().unwrap().len(), 1);
        sessions.push(sid);
    }
    assert_money(&env, &sessions).await;
}

on_both_stores_and_apis!(
    payment_phonepe_never_saw_is_resumed_after_reconciliation,
    refund_never_seen_by_phonepe_is_sent_again,
    refund_rate_limited_or_unreachable_is_pending_not_failed,
    automatic_refund_survives_phonepe_being_busy,
    late_success_after_expiry_is_caught,
    late_success_after_a_failure_is_caught,
    reconciliation_cannot_starve,
    verify_is_rate_limited_per_payment,
    driver_refund_requests_are_limited,
    rate_limited_create_payment_is_resumed,
);
