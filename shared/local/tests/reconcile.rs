//! Reconciliation with a compressed clock, on both stores: the reconciler's clock jumps ahead
//! while PhonePe (the simulator) and the API run in real time. Gateway faults leave payments
//! PENDING and nothing lost; the reconciler settles them through the callback's code path.

#[macro_use]
mod common;

use common::{Env, Rec};
use parkpay_api::reconcile::TIMEOUT_SECS;
use parkpay_simulator::Faults;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn payment(env: &Env, token: &str) -> (String, Value) {
    let sid = env.book(token).await;
    let p = env.create_payment(token, &sid).await;
    (sid, p)
}

fn txn(p: &Value) -> String {
    p["merchant_txn_id"].as_str().unwrap().to_owned()
}

async fn dropped_callback_is_reconciled(env: Env) {
    let t = env.token("rec-1");
    let (sid, p) = payment(&env, &t).await;
    env.server.simulator.set_faults(&txn(&p), Faults::callbacks_dropped()).unwrap();
    env.pay(&p, "success").await;
    assert_eq!(env.session(&t, &sid).await["status"], "PENDING_PAYMENT");
    let rec = Rec::new(&env);
    // Not due before 20 s.
    let r = rec.at(10).await;
    assert_eq!((r.checked, r.applied), (0, 0), "{r:?}");
    let r = rec.at(21).await;
    assert_eq!((r.checked, r.applied), (1, 1), "{r:?}");
    let s = env.session(&t, &sid).await;
    assert_eq!(s["status"], "PAID");
    assert_eq!(s["can_enter"], true);
    // Nothing left to do.
    assert_eq!(rec.at(30).await.pending, 0);
}

async fn stuck_payment_expires_and_releases_the_session(env: Env) {
    let t = env.token("rec-2");
    let (sid, p) = payment(&env, &t).await;
    env.server.simulator.set_faults(&txn(&p), Faults::stuck_pending()).unwrap();
    env.pay(&p, "success").await;
    let rec = Rec::new(&env);
    let mut checks = 0;
    for secs in [21, 24, 60, 300, 900] {
        let r = rec.at(secs).await;
        checks += r.checked;
        assert_eq!((r.applied, r.expired), (0, 0), "{r:?}");
    }
    assert_eq!(checks, 5, "one status check per due tick");
    assert_eq!(env.session(&t, &sid).await["status"], "PENDING_PAYMENT");
    let r = rec.at(TIMEOUT_SECS + 1).await;
    assert_eq!(r.expired, 1, "{r:?}");
    let s = env.session(&t, &sid).await;
    assert_eq!(s["status"], "CANCELLED", "{s}");
    assert_eq!(s["payments"][0]["status"], "FAILED");
    assert_eq!(s["can_enter"], false);
    assert_eq!(rec.at(TIMEOUT_SECS + 100).await.pending, 0);
}

async fn late_success_after_decline_is_refunded(env: Env) {
    let t = env.token("rec-3");
    let (sid, first) = payment(&env, &t).await;
    // Declined now; PhonePe reports success 1.5 s later (a late bank answer).
    env.server.simulator.set_faults(&txn(&first), Faults::late_success(1500)).unwrap();
    env.pay(&first, "failure").await;
    assert_eq!(env.session(&t, &sid).await["payments"][0]["status"], "FAILED");
    // The driver pays again, successfully.
    let second = env.create_payment(&t, &sid).await;
    env.pay(&second, "success").await;
    assert_eq!(env.session(&t, &sid).await["status"], "PAID");
    // The late success arrives by callback: recorded, and refunded automatically.
    let mut s = env.session(&t, &sid).await;
    for _ in 0..400 {
        let first_view = s["payments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["merchant_txn_id"] == first["merchant_txn_id"])
            .cloned()
            .unwrap();
        if first_view["refunded"] == "100.00" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        s = env.session(&t, &sid).await;
    }
    let payments = s["payments"].as_array().unwrap();
    let p1 = payments.iter().find(|p| p["merchant_txn_id"] == first["merchant_txn_id"]).unwrap();
    let p2 = payments.iter().find(|p| p["merchant_txn_id"] == second["merchant_txn_id"]).unwrap();
    assert_eq!((p1["status"].clone(), p1["refunded"].clone()), (json!("SUCCESS"), json!("100.00")), "{s}");
    assert_eq!((p2["status"].clone(), p2["refunded"].clone()), (json!("SUCCESS"), json!("0.00")), "{s}");
    // The driver's session is untouched: paid once, may enter.
    assert_eq!(
        (s["status"].clone(), s["paid"].clone(), s["refunded"].clone()),
        (json!("PAID"), json!("100.00"), json!("0.00"))
    );
    assert_eq!(s["can_enter"], true);
    let refunds = s["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 1, "exactly one automatic refund: {s}");
    assert_eq!(refunds[0]["merchant_txn_id"], first["merchant_txn_id"]);
    // A replay of the late success changes nothing.
    let r = Rec::new(&env).at(30).await;
    assert_eq!(r.applied, 0, "{r:?}");
    assert_eq!(env.session(&t, &sid).await["refunds"].as_array().unwrap().len(), 1);
}

async fn pending_refund_is_reconciled(env: Env) {
    let t = env.token("rec-4");
    let (sid, p) = payment(&env, &t).await;
    env.pay(&p, "success").await;
    // PhonePe settles the refund but its callback is lost.
    env.server.simulator.set_global_faults(Faults::callbacks_dropped()).unwrap();
    let (code, v) = env
        .call(
            "POST",
            "/api/payment/phonepe/refund/",
            Some(&t),
            Some(&json!({"merchant_txn_id": txn(&p), "amount": "40.00"}).to_string()),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    let refund_id = v["refund_id"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        if env.server.simulator.transaction(&refund_id).is_some_and(|r| r.code == "PAYMENT_SUCCESS") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(env.session(&t, &sid).await["refunds"][0]["status"], "PENDING");
    let rec = Rec::new(&env);
    let r = rec.at(21).await;
    assert_eq!((r.checked, r.applied), (1, 1), "{r:?}");
    let s = env.session(&t, &sid).await;
    assert_eq!(s["refunds"][0]["status"], "SUCCESS", "{s}");
    assert_eq!(s["status"], "PARTIALLY_REFUNDED");
    assert_eq!(s["refunded"], "40.00");
}

async fn gateway_timeout_leaves_pending_then_reconciles(env: Env) {
    let t = env.token("rec-5");
    let sid = env.book(&t).await;
    // PhonePe takes the payment, then does not answer in time (3 s hang; we wait 2.5 s).
    env.server.simulator.set_global_faults(Faults::hang(3000).only(&[parkpay_simulator::Operation::Pay])).unwrap();
    let (code, v) =
        env.call("POST", "/api/payment/phonepe/create/", Some(&t), Some(&json!({"session_id": sid}).to_string())).await;
    env.server.simulator.clear_global_faults();
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "GATEWAY_OUTCOME_UNKNOWN");
    let s = env.session(&t, &sid).await;
    assert_eq!(s["payments"][0]["status"], "PENDING", "kept PENDING, not failed: {s}");
    let id = s["payments"][0]["merchant_txn_id"].as_str().unwrap().to_owned();
    // A new attempt is refused while that one is unresolved.
    let (code, _) =
        env.call("POST", "/api/payment/phonepe/create/", Some(&t), Some(&json!({"session_id": sid}).to_string())).await;
    assert_eq!(code, StatusCode::CONFLICT);
    // The payer completes it at PhonePe; the callback is lost.
    env.server.simulator.set_faults(&id, Faults::callbacks_dropped()).unwrap();
    env.server.simulator.complete(&id, parkpay_simulator::Outcome::Success).await.unwrap();
    let r = Rec::new(&env).at(21).await;
    assert_eq!(r.applied, 1, "{r:?}");
    let s = env.session(&t, &sid).await;
    assert_eq!(s["status"], "PAID", "{s}");
}

on_both_stores_and_apis!(
    dropped_callback_is_reconciled,
    stuck_payment_expires_and_releases_the_session,
    late_success_after_decline_is_refunded,
    pending_refund_is_reconciled,
    gateway_timeout_leaves_pending_then_reconciles,
);
