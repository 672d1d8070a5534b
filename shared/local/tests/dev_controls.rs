//! The local server's `/_dev/` controls and background reconciliation: tokens and the clock
//! control only on loopback and never with PhonePe PRODUCTION; `POST /_dev/clock/advance` moves
//! parkpay's clock and reconciles as the schedule would have meanwhile; the background loop
//! settles what PhonePe never called back about by itself.

#![allow(unused_macros)]

mod common;

use std::time::Duration;

use common::{Env, start_with_env};
use parkpay_api::{Clock, SystemClock};
use parkpay_domain::Timestamp;
use parkpay_simulator::Faults;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Background reconciliation off: these tests reconcile only through the clock control.
const QUIET: (&str, &str) = ("PARKPAY_RECONCILE_EVERY_MS", "0");

async fn start(extra: &[(&str, &str)]) -> Env {
    start_with_env(tempfile::tempdir().unwrap(), None, extra).await
}

async fn status_of(env: &Env, method: &str, path: &str, body: Option<&str>) -> StatusCode {
    let req = env.http.request(method.parse().unwrap(), format!("{}{path}", env.base));
    let req = match body {
        Some(b) => req.header("content-type", "application/json").body(b.to_owned()),
        None => req,
    };
    req.send().await.unwrap().status()
}

async fn advance(env: &Env, seconds: u64) -> Value {
    let (s, v) = env.call("POST", "/_dev/clock/advance", None, Some(&json!({ "seconds": seconds }).to_string())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["advanced_seconds"], seconds, "{v}");
    v
}

/// A booked session and its payment, paid on the pay page with `faults` on the transaction.
async fn paid_with(env: &Env, token: &str, faults: Faults) -> String {
    let sid = env.book(token).await;
    let p = env.create_payment(token, &sid).await;
    env.server.simulator.set_faults(p["merchant_txn_id"].as_str().unwrap(), faults).unwrap();
    env.pay(&p, "success").await;
    assert_eq!(env.session(token, &sid).await["status"], "PENDING_PAYMENT");
    sid
}

fn millis(rfc3339: &Value) -> i64 {
    Timestamp::parse_rfc3339(rfc3339.as_str().expect("now is a string")).unwrap().unix_millis()
}

// ---------------------------------------------------------------------------------------------
// Where /_dev/ is served.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_served_on_loopback() {
    let env = start(&[QUIET]).await;
    let resp = env.http.get(format!("{}/_dev/token?sub=dev-1", env.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let token = resp.text().await.unwrap();
    assert_eq!(env.session(&token, &env.book(&token).await).await["status"], "PENDING_PAYMENT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_under_dev_on_all_interfaces() {
    let env = start(&[QUIET, ("PARKPAY_ADDR", "0.0.0.0:0")]).await;
    assert!(!env.server.dev.token && !env.server.dev.clock);
    let (s, v) = env.call("GET", "/_dev/token?sub=dev-1&operator=true", None, None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("ROUTE_NOT_FOUND")), "{v}");
    assert_eq!(status_of(&env, "POST", "/_dev/clock/advance", Some(r#"{"seconds": 30}"#)).await, StatusCode::NOT_FOUND);
    assert_eq!(env.server.clock.offset(), Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_under_dev_when_phonepe_env_is_production() {
    // Even in simulation mode (which ignores PHONEPE_ENV otherwise).
    let env = start(&[QUIET, ("PHONEPE_ENV", "PRODUCTION")]).await;
    assert_eq!(status_of(&env, "GET", "/_dev/token?sub=dev-1", None).await, StatusCode::NOT_FOUND);
    assert_eq!(status_of(&env, "POST", "/_dev/clock/advance", Some(r#"{"seconds": 30}"#)).await, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_under_dev_against_real_phonepe_production() {
    let env = start(&[
        QUIET,
        ("PHONEPE_SIMULATION_MODE", "false"),
        ("PHONEPE_ENV", "PRODUCTION"),
        ("PHONEPE_MERCHANT_ID", "M-DEV-CONTROLS"),
        ("PHONEPE_SALT_KEY", "not-a-real-salt-key"),
        ("PHONEPE_CALLBACK_URL", "https://api.example/api/payment/callback/phonepe/"),
        ("PARKPAY_REDIRECT_URL", "https://app.example/paid"),
    ])
    .await;
    assert_eq!(status_of(&env, "GET", "/_dev/token?sub=dev-1&operator=true", None).await, StatusCode::NOT_FOUND);
    assert_eq!(status_of(&env, "POST", "/_dev/clock/advance", Some(r#"{"seconds": 30}"#)).await, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_control_only_in_simulation_mode() {
    let env = start(&[
        QUIET,
        ("PHONEPE_SIMULATION_MODE", "false"),
        ("PHONEPE_ENV", "SANDBOX"),
        ("PHONEPE_MERCHANT_ID", "M-DEV-CONTROLS"),
        ("PHONEPE_SALT_KEY", "not-a-real-salt-key"),
    ])
    .await;
    assert_eq!(status_of(&env, "GET", "/_dev/token?sub=dev-1", None).await, StatusCode::OK);
    assert_eq!(status_of(&env, "POST", "/_dev/clock/advance", Some(r#"{"seconds": 30}"#)).await, StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------------
// POST /_dev/clock/advance

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advancing_reconciles_a_dropped_callback() {
    let env = start(&[QUIET]).await;
    let t = env.token("dev-clock-1");
    let sid = paid_with(&env, &t, Faults::callbacks_dropped()).await;
    let v = advance(&env, 30).await;
    assert!(v["passes"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["applied"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    let s = env.session(&t, &sid).await;
    assert_eq!((s["status"].as_str(), s["can_enter"].as_bool()), (Some("PAID"), Some(true)), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advancing_expires_a_stuck_payment() {
    // Depends on reconciliation's timeout semantics (20 minutes, then FAILED and CANCELLED).
    let env = start(&[QUIET]).await;
    let t = env.token("dev-clock-2");
    let sid = paid_with(&env, &t, Faults::stuck_pending()).await;
    let v = advance(&env, 21 * 60).await;
    assert!(v["expired"].as_u64().unwrap() >= 1, "{v}");
    let s = env.session(&t, &sid).await;
    assert_eq!(s["status"], "CANCELLED", "{s}");
    assert_eq!(s["payments"][0]["status"], "FAILED", "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advancing_keeps_phonepes_denser_schedule() {
    // A payment PhonePe keeps PENDING is checked at 20 s, then every 3 s: a minute of simulated
    // time is many passes, not one.
    let env = start(&[QUIET]).await;
    let t = env.token("dev-clock-3");
    paid_with(&env, &t, Faults::stuck_pending()).await;
    let v = advance(&env, 60).await;
    assert!(v["passes"].as_u64().unwrap() >= 5, "{v}");
    assert!(v["checked"].as_u64().unwrap() >= 5, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_is_at_least_one_pass_a_minute() {
    let env = start(&[QUIET]).await;
    let v = advance(&env, 3600).await;
    assert!(v["passes"].as_u64().unwrap() >= 60, "{v}");
    assert_eq!(env.server.clock.offset(), Duration::from_secs(3600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_only_moves_forward_by_what_was_asked() {
    let env = start(&[QUIET]).await;
    let first = advance(&env, 120).await;
    let ahead = millis(&first["now"]) - SystemClock.now().unix_millis();
    assert!((115_000..=120_500).contains(&ahead), "now is {ahead} ms ahead of wall time: {first}");
    assert_eq!(env.server.clock.offset(), Duration::from_secs(120));

    let second = advance(&env, 60).await;
    let moved = millis(&second["now"]) - millis(&first["now"]);
    assert!((60_000..=65_000).contains(&moved), "moved {moved} ms: {first} then {second}");
    assert_eq!(env.server.clock.offset(), Duration::from_secs(180));
    assert!(env.server.state.clock.now().unix_millis() >= millis(&second["now"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advance_refuses_bad_bodies() {
    let env = start(&[QUIET]).await;
    for body in [r#"{"seconds": 0}"#, r#"{"seconds": 2592001}"#, r#"{"seconds": -5}"#, r#"{"seconds": "30"}"#, "{}"] {
        let (s, v) = env.call("POST", "/_dev/clock/advance", None, Some(body)).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("INVALID_SECONDS")),
            "{body}"
        );
    }
    let (s, v) = env.call("POST", "/_dev/clock/advance", None, Some(r#"{"seconds": 3"#)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("INVALID_JSON")), "{v}");
    assert_eq!(env.server.clock.offset(), Duration::ZERO);
}

// ---------------------------------------------------------------------------------------------
// Background reconciliation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_reconciliation_applies_a_dropped_callback() {
    let env = start(&[("PARKPAY_RECONCILE_EVERY_MS", "100")]).await;
    let t = env.token("dev-bg-1");
    let sid = paid_with(&env, &t, Faults::callbacks_dropped()).await;
    // Nobody ticks: only the background loop sees that 25 s have passed.
    env.server.clock.advance(Duration::from_secs(25));
    let s = env.wait_for_status(&t, &sid, "PAID").await;
    assert_eq!(s["can_enter"], true, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_ends_background_reconciliation_and_releases_the_store() {
    let env = start(&[("PARKPAY_RECONCILE_EVERY_MS", "10")]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let Env { server, _dir, .. } = env;
    tokio::time::timeout(Duration::from_secs(10), server.stop()).await.expect("the server stops");
    // The embedded database opens again: nothing holds it any more.
    let again = start_with_env(_dir, None, &[QUIET]).await;
    assert_eq!(again.call("GET", "/api/lots/", None, None).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_reconcile_period_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut map = common::settings(dir.path());
    map.insert("PARKPAY_RECONCILE_EVERY_MS".into(), "soon".into());
    match parkpay_local::start(&|k| map.get(k).cloned()).await {
        Ok(_) => panic!("started with PARKPAY_RECONCILE_EVERY_MS=soon"),
        Err(e) => assert!(e.to_string().contains("PARKPAY_RECONCILE_EVERY_MS"), "{e}"),
    }
}
