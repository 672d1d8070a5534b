//! Money safety over HTTP, on both stores (embedded and a real DynamoDB Local): idempotency
//! keys, and exactly-once state changes under 50 concurrent requests, with money conservation
//! checked after every race.

#[macro_use]
mod common;

use common::Env;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

const N: usize = 50;

/// `paid − refunded ≥ 0`, and every figure agrees with the records it sums.
fn assert_conserved(session: &Value) {
    let paise = |v: &Value| -> i64 {
        let s = v.as_str().unwrap_or_else(|| panic!("amount string: {v}"));
        let (r, p) = s.split_once('.').unwrap();
        r.parse::<i64>().unwrap() * 100 + p.parse::<i64>().unwrap()
    };
    let paid = paise(&session["paid"]);
    let refunded = paise(&session["refunded"]);
    assert!(paid - refunded >= 0, "{session}");
    let payments = session["payments"].as_array().unwrap();
    let succeeded: Vec<&Value> = payments.iter().filter(|p| p["status"] == "SUCCESS").collect();
    let paid_by_records: i64 = succeeded.iter().map(|p| paise(&p["amount"])).sum();
    if session["status"] != "PENDING_PAYMENT" && session["status"] != "CANCELLED" {
        assert_eq!(succeeded.len(), 1, "one successful payment pays a session: {session}");
        assert_eq!(paid, paid_by_records, "{session}");
    }
    let refunds = session["refunds"].as_array().unwrap();
    let refunded_by_records: i64 =
        refunds.iter().filter(|r| r["status"] == "SUCCESS").map(|r| paise(&r["amount"])).sum();
    let held: i64 = refunds.iter().filter(|r| r["status"] != "FAILED").map(|r| paise(&r["amount"])).sum();
    assert_eq!(refunded, refunded_by_records, "{session}");
    let payment_refunded: i64 = payments.iter().map(|p| paise(&p["refunded"])).sum();
    assert_eq!(refunded, payment_refunded, "{session}");
    assert!(held <= paid_by_records, "pending + succeeded refunds exceed what was paid: {session}");
}

async fn raw_post(env: &Env, path: &str, token: &str, key: Option<&str>, body: &str) -> (StatusCode, String) {
    let mut req = env
        .http
        .post(format!("{}{path}", env.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn paid_session(env: &Env, user: &str) -> (String, String, String) {
    let t = env.token(user);
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    env.pay(&p, "success").await;
    (t, sid, p["merchant_txn_id"].as_str().unwrap().to_owned())
}

async fn idempotency_keys(env: Env) {
    let t = env.token("idem-1");
    let sid = env.book(&t).await;
    let body = json!({"session_id": sid, "amount": "100.00"}).to_string();
    let path = "/api/payment/phonepe/create/";
    let (s1, first) = raw_post(&env, path, &t, Some("key-1"), &body).await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    // Same key, same body (even re-spaced): the first answer, byte for byte.
    let respaced = json!({"amount": "100.00", "session_id": sid}).to_string();
    for b in [&body, &respaced] {
        let (s, again) = raw_post(&env, path, &t, Some("key-1"), b).await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(again, first);
    }
    // Same key, another body: 422.
    let other = json!({"session_id": sid, "payment_instrument": "UPI_QR"}).to_string();
    let (s, v) = raw_post(&env, path, &t, Some("key-1"), &other).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.contains("IDEMPOTENCY_KEY_REUSED"));
    // The same key used by another user is another record.
    let t2 = env.token("idem-2");
    let (s, v) = raw_post(&env, path, &t2, Some("key-1"), &body).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    // One payment at our side and one at PhonePe's.
    let session = env.session(&t, &sid).await;
    assert_eq!(session["payments"].as_array().unwrap().len(), 1, "{session}");
    let txn: Value = serde_json::from_str(&first).unwrap();
    assert!(env.server.simulator.transaction(txn["merchant_txn_id"].as_str().unwrap()).is_some());
    assert_eq!(env.server.simulator.transactions().len(), 1, "one payment at PhonePe");
    // A bad key is a 422.
    let (s, _) = raw_post(&env, path, &t, Some(&"k".repeat(256)), &body).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn idempotency_in_flight(env: Env) {
    let t = env.token("idem-3");
    let sid = env.book(&t).await;
    env.server.simulator.set_global_faults(parkpay_simulator::Faults::latency(1500)).unwrap();
    let body = json!({"session_id": sid}).to_string();
    let path = "/api/payment/phonepe/create/";
    let first = raw_post(&env, path, &t, Some("slow"), &body);
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        raw_post(&env, path, &t, Some("slow"), &body).await
    };
    let ((s1, b1), (s2, b2)) = tokio::join!(first, second);
    assert_eq!(s1, StatusCode::CREATED, "{b1}");
    assert_eq!(s2, StatusCode::CONFLICT, "{b2}");
    assert!(b2.contains("REQUEST_IN_PROGRESS"));
    env.server.simulator.clear_global_faults();
    let (s3, b3) = raw_post(&env, path, &t, Some("slow"), &body).await;
    assert_eq!((s3, b3), (StatusCode::CREATED, b1));
}

async fn concurrent_callbacks_and_verifies(env: Env) {
    let t = env.token("race-1");
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    let txn = p["merchant_txn_id"].as_str().unwrap().to_owned();
    // PhonePe's callback is dropped; the status API knows the payment succeeded.
    env.server.simulator.set_faults(&txn, parkpay_simulator::Faults::callbacks_dropped()).unwrap();
    env.pay(&p, "success").await;
    assert_eq!(env.session(&t, &sid).await["status"], "PENDING_PAYMENT");
    // The genuine callback (v2: webhook), as PhonePe would send it, 50 times at once, and 50
    // verifies.
    let (header, body) = env.genuine_success_notice(&txn);
    let callbacks = (0..N).map(|_| env.post_notice(&header, &body));
    let verify_body = json!({"merchant_txn_id": txn}).to_string();
    let verifies = (0..N).map(|_| raw_post(&env, "/api/payment/phonepe/verify/", &t, None, &verify_body));
    let (cb, vf) = tokio::join!(join_all(callbacks), join_all(verifies));
    let applied = cb.iter().filter(|(s, v)| *s == StatusCode::OK && v["applied"] == true).count();
    assert!(cb.iter().all(|(s, _)| *s == StatusCode::OK), "{cb:?}");
    // Every verify answers 200. One that lost the claim to ask PhonePe (another verify asked a
    // moment ago) answers from the record it read, which may still be PENDING while the outcome
    // is being applied; never anything else.
    assert!(
        vf.iter().all(|(s, b)| *s == StatusCode::OK && (b.contains("\"SUCCESS\"") || b.contains("\"PENDING\""))),
        "{vf:?}"
    );
    let successes = vf.iter().filter(|(_, b)| b.contains("\"SUCCESS\"")).count();
    assert!(successes > 0, "no verify saw the payment succeed: {vf:?}");
    // Exactly one of the 100 requests changed anything (a verify may be the one).
    assert!(applied <= 1, "{applied} callbacks applied the outcome");
    let s = env.session(&t, &sid).await;
    assert_eq!(s["status"], "PAID", "{s}");
    assert_eq!(s["paid"], "100.00");
    assert_conserved(&s);
    let (st, after) = raw_post(&env, "/api/payment/phonepe/verify/", &t, None, &verify_body).await;
    assert_eq!(st, StatusCode::OK);
    assert!(after.contains("\"SUCCESS\""), "a verify after the race: {after}");
}

async fn concurrent_refunds(env: Env) {
    let (t, sid, txn) = paid_session(&env, "race-2").await;
    let op = env.server.token("ops-race", true);
    let body = json!({"merchant_txn_id": txn, "amount": "7.00"}).to_string();
    let requests = (0..N).map(|i| {
        let token = if i % 2 == 0 { t.clone() } else { op.clone() };
        let body = body.clone();
        let env = &env;
        async move { raw_post(env, "/api/payment/phonepe/refund/", &token, None, &body).await }
    });
    let answers = join_all(requests).await;
    let accepted = answers.iter().filter(|(s, _)| *s == StatusCode::ACCEPTED).count();
    let refused = answers.iter().filter(|(s, _)| *s == StatusCode::CONFLICT).count();
    assert_eq!(accepted + refused, N, "every answer is 202 or 409: {answers:?}");
    // 7.00 fits 14 times into 100.00.
    assert!(accepted <= 14, "{accepted} refunds of 7.00 accepted on a 100.00 payment");
    assert!(accepted >= 1);
    // Once PhonePe settles them:
    let mut s = env.session(&t, &sid).await;
    for _ in 0..200 {
        if s["refunds"].as_array().unwrap().iter().all(|r| r["status"] != "PENDING") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        s = env.session(&t, &sid).await;
    }
    assert_eq!(s["refunds"].as_array().unwrap().len(), accepted, "{s}");
    assert_eq!(s["refunded"], format!("{}.00", accepted * 7), "{s}");
    assert_conserved(&s);
    // What is left can still be refunded, and no more.
    let left = 100 - accepted * 7;
    let (st, b) = raw_post(
        &env,
        "/api/payment/phonepe/refund/",
        &t,
        None,
        &json!({"merchant_txn_id": txn, "amount": format!("{}.01", left)}).to_string(),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
}

async fn concurrent_create_payment(env: Env) {
    let t = env.token("race-3");
    let sid = env.book(&t).await;
    let body = json!({"session_id": sid}).to_string();
    let answers = join_all((0..N).map(|_| raw_post(&env, "/api/payment/phonepe/create/", &t, None, &body))).await;
    let created: Vec<&(StatusCode, String)> = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).collect();
    assert_eq!(created.len(), 1, "one live payment per session: {answers:?}");
    assert!(
        answers.iter().all(|(s, b)| *s == StatusCode::CREATED
            || (*s == StatusCode::CONFLICT && (b.contains("PAYMENT_IN_PROGRESS") || b.contains("CONCURRENT_UPDATE")))),
        "{answers:?}"
    );
    let s = env.session(&t, &sid).await;
    assert_eq!(s["payments"].as_array().unwrap().len(), 1, "{s}");
    // The same with one Idempotency-Key on another session: one payment, identical answers.
    let sid2 = env.book(&t).await;
    let body2 = json!({"session_id": sid2}).to_string();
    let answers =
        join_all((0..N).map(|_| raw_post(&env, "/api/payment/phonepe/create/", &t, Some("same-key"), &body2))).await;
    let bodies: std::collections::HashSet<&String> =
        answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).map(|(_, b)| b).collect();
    assert_eq!(bodies.len(), 1, "{answers:?}");
    assert!(
        answers.iter().all(
            |(s, b)| *s == StatusCode::CREATED || (*s == StatusCode::CONFLICT && b.contains("REQUEST_IN_PROGRESS"))
        ),
        "{answers:?}"
    );
    assert_eq!(env.session(&t, &sid2).await["payments"].as_array().unwrap().len(), 1);
    // Pay it and check the books.
    let created: Value = serde_json::from_str(bodies.into_iter().next().unwrap()).unwrap();
    env.pay(&created, "success").await;
    assert_conserved(&env.session(&t, &sid2).await);
}

on_both_stores_and_apis!(
    idempotency_keys,
    idempotency_in_flight,
    concurrent_callbacks_and_verifies,
    concurrent_refunds,
    concurrent_create_payment,
);
