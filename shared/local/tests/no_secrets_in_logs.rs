//! Secrets never reach the logs (issue 4, item 5): everything logged during a whole flow over HTTP
//! against the local server — book, create a payment, pay on the simulator's page (PhonePe's
//! callback), verify, a partial refund and its callback, a forged callback, bad tokens — is
//! captured at TRACE for every target (tracing, and the `log` facade that reqwest uses), and
//! none of the secrets in play appears in it: the JWT secret, the PhonePe salt key (also
//! base64-encoded, at any alignment, and hex-encoded), and the bearer tokens used.
//!
//! One test in this binary: it installs the process-wide subscriber.

// `common` defines a macro that other suites use and this one does not.
#![allow(unused_macros)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

/// Distinctive, non-default values, so that any appearance in the logs is ours.
const JWT_SECRET: &str = "jwt-secret-Zq8vN3xLr7Kp2TwY-do-not-log";
const SALT_KEY: &str = "salt-key-Hm4Rb9QeUc6JdVs1-do-not-log";

// ---------------------------------------------------------------------------------------------
// Capture.

use common::capture::Capture;

fn install_capture() -> Capture {
    common::capture::install(true)
}

// ---------------------------------------------------------------------------------------------
// What must not appear.

/// The base64 forms of `secret` wherever it sits in a longer base64 text: for each of the three
/// alignments, the characters that depend on the secret's bytes alone.
fn base64_forms(secret: &[u8]) -> Vec<String> {
    let mut forms = Vec::new();
    for engine in [&STANDARD, &URL_SAFE_NO_PAD] {
        for offset in 0..3 {
            let mut padded = vec![0u8; offset];
            padded.extend_from_slice(secret);
            let encoded = engine.encode(&padded);
            let skip = if offset == 0 { 0 } else { 4 };
            // the last group may mix in what follows the secret
            let keep = encoded.trim_end_matches('=').len().saturating_sub(4);
            if keep > skip + 8 {
                forms.push(encoded[skip..keep].to_owned());
            }
        }
    }
    forms
}

fn forbidden(tokens: &[(&str, String)]) -> Vec<(String, String)> {
    let mut out = vec![
        ("PARKPAY_JWT_SECRET".to_owned(), JWT_SECRET.to_owned()),
        ("PHONEPE_SALT_KEY".to_owned(), SALT_KEY.to_owned()),
        ("PHONEPE_SALT_KEY (hex)".to_owned(), hex::encode(SALT_KEY)),
    ];
    for (i, form) in base64_forms(SALT_KEY.as_bytes()).into_iter().enumerate() {
        out.push((format!("PHONEPE_SALT_KEY (base64 form {i})"), form));
    }
    for (i, form) in base64_forms(JWT_SECRET.as_bytes()).into_iter().enumerate() {
        out.push((format!("PARKPAY_JWT_SECRET (base64 form {i})"), form));
    }
    for (name, token) in tokens {
        out.push((format!("bearer token {name}"), token.clone()));
        // The signature alone is what makes a token usable.
        if let Some(sig) = token.rsplit('.').next().filter(|s| s.len() >= 16) {
            out.push((format!("signature of bearer token {name}"), sig.to_owned()));
        }
    }
    out
}

/// The first line of `log` holding `secret`, with every secret masked (for the failure message).
fn line_with(log: &str, secret: &str, all: &[(String, String)]) -> Option<String> {
    let line = log.lines().find(|l| l.contains(secret))?;
    Some(all.iter().fold(line.to_owned(), |l, (_, s)| l.replace(s.as_str(), "<SECRET>")))
}

// ---------------------------------------------------------------------------------------------

async fn post(env: &common::Env, path: &str, token: &str, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut req = env
        .http
        .post(format!("{}{path}", env.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_flow_logs_no_secret() {
    let capture = install_capture();
    let env = common::start_with_env(
        tempfile::tempdir().unwrap(),
        None,
        &[("PARKPAY_JWT_SECRET", JWT_SECRET), ("PHONEPE_SALT_KEY", SALT_KEY)],
    )
    .await;

    let driver = env.token("driver-logs");
    let operator = env.server.token("ops-logs", true);
    // A token from the dev endpoint, as the README has users get one.
    let resp = env.http.get(format!("{}/_dev/token?sub=driver-dev", env.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let dev_token = resp.text().await.unwrap();
    let (s, _) = env.call("GET", "/api/lots/", Some(&dev_token), None).await;
    assert_eq!(s, StatusCode::OK);

    // Book, pay (the simulator's page sends PhonePe's signed callback), verify.
    let sid = env.book(&driver).await;
    let (s, payment) = post(
        &env,
        "/api/payment/phonepe/create/",
        &driver,
        Some("logs-create-1"),
        &json!({"session_id": sid, "amount": "100.00"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{payment}");
    let txn = payment["merchant_txn_id"].as_str().unwrap().to_owned();
    env.pay(&payment, "success").await;
    let (s, v) = post(&env, "/api/payment/phonepe/verify/", &driver, None, &json!({"merchant_txn_id": txn})).await;
    assert_eq!((s, v["status"].clone()), (StatusCode::OK, json!("SUCCESS")), "{v}");

    // A partial refund by the driver and one by an operator; both settle by callback.
    let (s, v) = post(
        &env,
        "/api/payment/phonepe/refund/",
        &driver,
        Some("logs-refund-1"),
        &json!({"merchant_txn_id": txn, "amount": "30.00", "reason": "left early"}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    env.wait_for_status(&driver, &sid, "PARTIALLY_REFUNDED").await;
    let (s, v) = post(
        &env,
        "/api/payment/phonepe/refund/",
        &operator,
        None,
        &json!({"merchant_txn_id": txn, "amount": "20.00"}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");

    // A forged callback (signed with another salt), a garbage signature and none at all.
    let (body, forged) = common::signed_callback("not-our-salt-key", &txn, "PAYMENT_SUCCESS", "COMPLETED", 10_000);
    for x_verify in [Some(forged.as_str()), Some("garbage###1"), None] {
        let (s, v) = env.post_callback(&body, x_verify).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }
    // An authentic replay of PhonePe's callback: acknowledged, nothing applied twice.
    let (body, ours) = common::signed_callback(SALT_KEY, &txn, "PAYMENT_SUCCESS", "COMPLETED", 10_000);
    let (s, v) = env.post_callback(&body, Some(&ours)).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Bad tokens: signed with another secret, tampered, not a JWT.
    let foreign = parkpay_local::jwt::JwtKeys::new(SecretString::from("another-secret-0123456789".to_owned()))
        .mint("driver-logs", true, 3600)
        .unwrap();
    // one character of the signature changed (not the last: its low bits may be padding)
    let mut tampered: Vec<char> = driver.chars().collect();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    for bad in [foreign.as_str(), tampered.as_str(), "not-a-token"] {
        let (s, v) = env.call("GET", &format!("/api/sessions/{sid}/"), Some(bad), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }
    let s = env.wait_for_status(&driver, &sid, "PARTIALLY_REFUNDED").await;
    for _ in 0..200 {
        if env.session(&driver, &sid).await["refunded"] == "50.00" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(env.session(&driver, &sid).await["refunded"], "50.00", "{s}");
    env.server.stop().await;

    let log = capture.text();
    // The capture works, and covers the flow: otherwise this test could not fail.
    assert!(log.len() > 1_000, "almost nothing was captured: {log}");
    for expected in [
        "session booked",
        "payment started",
        "payment outcome applied",
        "refund requested",
        "refund outcome applied",
        "callback with a bad or missing checksum rejected",
    ] {
        assert!(log.contains(expected), "the captured logs lack {expected:?}");
    }
    assert!(log.contains("TRACE"), "nothing at TRACE was captured");

    let tokens =
        [("driver", driver), ("operator", operator), ("dev", dev_token), ("foreign", foreign), ("tampered", tampered)];
    let all = forbidden(&tokens);
    let mut leaks = Vec::new();
    for (what, secret) in &all {
        if let Some(line) = line_with(&log, secret, &all) {
            leaks.push(format!("{what} appears in the logs: {line}"));
        }
    }
    assert!(leaks.is_empty(), "{} secret(s) logged ({} bytes captured):\n{}", leaks.len(), log.len(), leaks.join("\n"));
}
