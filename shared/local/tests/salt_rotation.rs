//! A salt-key rotation on the local server, over HTTP (`docs/phonepe.md` §6): the server is
//! restarted on the same data directory with each step's settings, as a deploy would, while
//! payments started in one step get their callbacks in the next.
//!
//! 0. `PHONEPE_SALT_KEY` (the original form, index 1): requests signed with index 1.
//! 1. `PHONEPE_SALT_KEYS=1:old,2:new`, `PHONEPE_SALT_INDEX=1`: both keys verify. PhonePe (the
//!    simulator) switches its callbacks to index 2 before we switch: accepted. Requests still
//!    signed with index 1.
//! 2. `PHONEPE_SALT_INDEX=2`: requests (pay, status, refund) signed with index 2; a payment
//!    started before the switch gets its callback signed with index 1 after it: accepted.
//! 3. The old key removed (`PHONEPE_SALT_KEY=new`, `PHONEPE_SALT_INDEX=2`): a callback signed
//!    with index 1 is 401 `INVALID_SIGNATURE` and changes nothing; index 2 is applied.
//!
//! Every log line of the run (TRACE, every target, and the `log` facade) is captured: neither
//! key appears in it, as written, hex-encoded or base64-encoded. One test in this binary: it
//! installs the process-wide subscriber.

#![allow(unused_macros)]

mod common;

use base64::Engine;
use common::Env;
use parkpay_checksum::{SaltIndex, SaltKey, SaltKeys};
use parkpay_gateway::phonepe_v1::{sign_callback, wire};
use parkpay_simulator::Operation;
use reqwest::StatusCode;
use serde_json::{Value, json};

const OLD: &str = "old-salt-Pj5Kw2Xe8Rm4-do-not-log";
const NEW: &str = "new-salt-Gb3Ty7Nq1Fz9-do-not-log";
/// The simulation's merchant (the local server's default).
const MERCHANT: &str = "PGTESTPAYUAT";

fn install_capture() -> common::capture::Capture {
    common::capture::install(false)
}

/// Start (or restart) the server on `dir` with a step's salt settings.
async fn start(dir: tempfile::TempDir, salt: &[(&str, &str)]) -> Env {
    common::start_with_env(dir, None, salt).await
}

async fn restart(env: Env, salt: &[(&str, &str)]) -> Env {
    let Env { server, http, _dir, .. } = env;
    drop(http);
    server.stop().await;
    start(_dir, salt).await
}

/// A PhonePe SUCCESS callback for `txn` (100.00) signed with `key` under `index`.
fn callback(txn: &str, index: u32, key: &str) -> (Vec<u8>, String) {
    let envelope: wire::Envelope<wire::StatusData> = serde_json::from_value(json!({
        "success": true, "code": "PAYMENT_SUCCESS", "message": "m",
        "data": {"merchantId": MERCHANT, "merchantTransactionId": txn, "transactionId": format!("T-{txn}"),
                 "amount": 10_000, "state": "COMPLETED", "responseCode": "SUCCESS"}
    }))
    .unwrap();
    let keys = SaltKeys::single(SaltIndex::new(index), SaltKey::new(key).unwrap());
    let (body, x_verify) = sign_callback(&keys, &envelope);
    (body, x_verify.to_string())
}

fn txn_of(payment: &Value) -> String {
    payment["merchant_txn_id"].as_str().expect("merchant_txn_id").to_owned()
}

/// The index PhonePe saw `op` for `txn` signed with.
fn signed_with(env: &Env, op: Operation, txn: &str) -> u32 {
    env.server.simulator.salt_index_of(op, txn).unwrap_or_else(|| panic!("PhonePe accepted no {op:?} of {txn}")).get()
}

/// A new session and a PENDING payment for it; the payment was signed with `index`.
async fn book_and_start(env: &Env, token: &str, index: u32) -> (String, Value) {
    let sid = env.book(token).await;
    let payment = env.create_payment(token, &sid).await;
    assert_eq!(signed_with(env, Operation::Pay, &txn_of(&payment)), index, "pay request of {sid}");
    (sid, payment)
}

/// Deliver a callback signed with `index`/`key` for `payment`; it must be applied (200) and the
/// session PAID.
async fn accepted(env: &Env, token: &str, sid: &str, payment: &Value, index: u32, key: &str) {
    let (body, x) = callback(&txn_of(payment), index, key);
    let (status, v) = env.post_callback(&body, Some(&x)).await;
    assert_eq!((status, &v["applied"]), (StatusCode::OK, &json!(true)), "callback signed with index {index}: {v}");
    assert_eq!(env.session(token, sid).await["status"], "PAID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_salt_key_refuses_no_callback() {
    let capture = install_capture();
    let keys_1_2 = format!("1:{OLD},2:{NEW}");

    // 0. The original single-key settings.
    let env = start(tempfile::tempdir().unwrap(), &[("PHONEPE_SALT_KEY", OLD)]).await;
    let token = env.token("driver-rotation");
    let (sid, p) = book_and_start(&env, &token, 1).await;
    env.pay(&p, "success").await;
    assert_eq!(env.session(&token, &sid).await["status"], "PAID");
    assert_eq!(env.server.simulator.callbacks_for(&txn_of(&p))[0].salt_index, 1);

    // 1. The new key beside the old; still signing with index 1.
    let env = restart(env, &[("PHONEPE_SALT_KEYS", &keys_1_2), ("PHONEPE_SALT_INDEX", "1")]).await;
    let (sid, p) = book_and_start(&env, &token, 1).await;
    // PhonePe signs its callbacks with the new index before we switch: accepted.
    env.server.simulator.sign_callbacks_with(MERCHANT, Some(SaltIndex::new(2))).unwrap();
    env.pay(&p, "success").await;
    let delivered = env.server.simulator.callbacks_for(&txn_of(&p));
    assert_eq!((delivered[0].salt_index, delivered[0].http_status), (2, Some(200)), "{delivered:?}");
    assert_eq!(env.session(&token, &sid).await["status"], "PAID");
    // ... and with the old one.
    let (sid, p) = book_and_start(&env, &token, 1).await;
    accepted(&env, &token, &sid, &p, 1, OLD).await;
    // A payment whose callback will arrive after the switch.
    let (sid_across, p_across) = book_and_start(&env, &token, 1).await;

    // 2. The switch: requests signed with index 2.
    let env = restart(env, &[("PHONEPE_SALT_KEYS", &keys_1_2), ("PHONEPE_SALT_INDEX", "2")]).await;
    // The payment started before the switch; its callback still signed with the old index.
    accepted(&env, &token, &sid_across, &p_across, 1, OLD).await;
    let (sid, p) = book_and_start(&env, &token, 2).await;
    env.pay(&p, "success").await;
    let delivered = env.server.simulator.callbacks_for(&txn_of(&p));
    assert_eq!((delivered[0].salt_index, delivered[0].http_status), (2, Some(200)), "{delivered:?}");
    assert_eq!(env.session(&token, &sid).await["status"], "PAID");
    // Refund and status requests too.
    let (s, refund) = env
        .call(
            "POST",
            "/api/payment/phonepe/refund/",
            Some(&token),
            Some(&json!({"merchant_txn_id": txn_of(&p), "amount": "10.00"}).to_string()),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{refund}");
    let refund_txn = env
        .server
        .simulator
        .transactions()
        .into_iter()
        .find(|t| t.original_transaction_id.as_deref() == Some(txn_of(&p).as_str()))
        .expect("PhonePe holds the refund")
        .merchant_transaction_id;
    assert_eq!(signed_with(&env, Operation::Refund, &refund_txn), 2);
    let (sid_last, p_last) = book_and_start(&env, &token, 2).await;
    let (s, v) = env
        .call(
            "POST",
            "/api/payment/phonepe/verify/",
            Some(&token),
            Some(&json!({"merchant_txn_id": txn_of(&p_last)}).to_string()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(signed_with(&env, Operation::Status, &txn_of(&p_last)), 2);

    // 3. The old key removed: back to the single-key form, with the new key and index.
    let env = restart(env, &[("PHONEPE_SALT_KEY", NEW), ("PHONEPE_SALT_INDEX", "2")]).await;
    let (body, x) = callback(&txn_of(&p_last), 1, OLD);
    let (status, v) = env.post_callback(&body, Some(&x)).await;
    assert_eq!((status, &v["error"]["code"]), (StatusCode::UNAUTHORIZED, &json!("INVALID_SIGNATURE")), "{v}");
    assert_eq!(env.session(&token, &sid_last).await["status"], "PENDING_PAYMENT", "a refused callback changes nothing");
    accepted(&env, &token, &sid_last, &p_last, 2, NEW).await;
    book_and_start(&env, &token, 2).await;

    let Env { server, .. } = env;
    server.stop().await;
    let logs = capture.text();
    assert!(logs.contains("TRACE"), "the capture saw nothing at TRACE");
    for key in [OLD, NEW] {
        let mut forms = vec![key.to_owned(), hex::encode(key)];
        // base64 at each alignment, without the characters that mix in neighbouring bytes
        for offset in 0..3 {
            let mut padded = vec![0u8; offset];
            padded.extend_from_slice(key.as_bytes());
            let encoded = base64::engine::general_purpose::STANDARD.encode(&padded);
            let skip = if offset == 0 { 0 } else { 4 };
            forms.push(encoded[skip..encoded.trim_end_matches('=').len() - 4].to_owned());
        }
        for form in forms {
            assert!(!logs.contains(&form), "a salt key ({form:?}) reached the logs");
        }
    }
}
