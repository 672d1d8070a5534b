//! End-to-end over HTTP against the local server (the same handlers as the Lambda functions),
//! with the PhonePe simulator in process, on both stores: the embedded one and a real DynamoDB
//! Local (endpoint in `PARKPAY_DYNAMODB_ENDPOINT`; `scripts/test.sh` starts one).

#[macro_use]
mod common;

use common::{Env, start_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Scenarios, each run on both stores.

async fn pay_flow(env: Env) {
    let t = env.token("driver-1");
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    env.pay(&p, "success").await;
    // The callback was delivered before the pay page answered.
    let s = env.session(&t, &sid).await;
    assert_eq!(s["status"], "PAID", "{s}");
    assert_eq!(s["can_enter"], true);
    assert_eq!(s["paid"], "100.00");
    assert_eq!(s["payments"][0]["status"], "SUCCESS");
    let (code, v) = env
        .call(
            "POST",
            "/api/payment/phonepe/verify/",
            Some(&t),
            Some(&json!({"merchant_txn_id": p["merchant_txn_id"]}).to_string()),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["verified"], true);
    assert_eq!(v["status"], "SUCCESS");
    assert_eq!(v["amount"], "100.00");
    assert_eq!(v["session_status"], "PAID");
    // Paying again is refused.
    let (code, v) =
        env.call("POST", "/api/payment/phonepe/create/", Some(&t), Some(&json!({"session_id": sid}).to_string())).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "SESSION_ALREADY_PAID");
}

async fn decline_then_pay_again(env: Env) {
    let t = env.token("driver-2");
    let sid = env.book(&t).await;
    let first = env.create_payment(&t, &sid).await;
    env.pay(&first, "failure").await;
    let s = env.session(&t, &sid).await;
    assert_eq!(s["status"], "PENDING_PAYMENT", "{s}");
    assert_eq!(s["payments"][0]["status"], "FAILED");
    assert_eq!(s["can_enter"], false);
    let (code, v) = env
        .call(
            "POST",
            "/api/payment/phonepe/verify/",
            Some(&t),
            Some(&json!({"merchant_txn_id": first["merchant_txn_id"]}).to_string()),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!((v["verified"].clone(), v["status"].clone()), (json!(false), json!("FAILED")));
    let second = env.create_payment(&t, &sid).await;
    assert_ne!(second["merchant_txn_id"], first["merchant_txn_id"]);
    env.pay(&second, "success").await;
    let s = env.session(&t, &sid).await;
    assert_eq!(s["status"], "PAID");
    assert_eq!(s["payments"].as_array().unwrap().len(), 2);
}

async fn refunds(env: Env) {
    let t = env.token("driver-3");
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    env.pay(&p, "success").await;
    let txn = p["merchant_txn_id"].as_str().unwrap();
    let refund = |amount: Option<&str>| {
        let mut body = json!({"merchant_txn_id": txn, "reason": "left early"});
        if let Some(a) = amount {
            body["amount"] = json!(a);
        }
        body.to_string()
    };
    let (code, v) = env.call("POST", "/api/payment/phonepe/refund/", Some(&t), Some(&refund(Some("30.00")))).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["amount"], "30.00");
    assert_eq!(v["status"], "PENDING");
    let s = env.wait_for_status(&t, &sid, "PARTIALLY_REFUNDED").await;
    assert_eq!(s["refunded"], "30.00");
    assert_eq!(s["can_enter"], true);
    // More than what is left: 409, nothing recorded.
    let (code, v) = env.call("POST", "/api/payment/phonepe/refund/", Some(&t), Some(&refund(Some("70.01")))).await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "REFUND_EXCEEDS_REMAINING");
    // The rest (no amount).
    let (code, v) = env.call("POST", "/api/payment/phonepe/refund/", Some(&t), Some(&refund(None))).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["amount"], "70.00");
    let s = env.wait_for_status(&t, &sid, "REFUNDED").await;
    assert_eq!(s["refunded"], "100.00");
    assert_eq!(s["can_enter"], false);
    assert_eq!(s["refunds"].as_array().unwrap().len(), 2);
    // Nothing left.
    let (code, v) = env.call("POST", "/api/payment/phonepe/refund/", Some(&t), Some(&refund(Some("1.00")))).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "NOTHING_TO_REFUND");
}

async fn isolation(env: Env) {
    let owner = env.token("driver-4");
    let stranger = env.token("driver-5");
    let sid = env.book(&owner).await;
    let p = env.create_payment(&owner, &sid).await;
    env.pay(&p, "success").await;
    let txn = json!({"merchant_txn_id": p["merchant_txn_id"]}).to_string();
    let (code, v) = env.call("GET", &format!("/api/sessions/{sid}/"), Some(&stranger), None).await;
    assert_eq!((code, v["error"]["code"].clone()), (StatusCode::NOT_FOUND, json!("SESSION_NOT_FOUND")));
    let (code, _) = env
        .call("POST", "/api/payment/phonepe/create/", Some(&stranger), Some(&json!({"session_id": sid}).to_string()))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = env.call("POST", "/api/payment/phonepe/verify/", Some(&stranger), Some(&txn)).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, v) = env.call("POST", "/api/payment/phonepe/refund/", Some(&stranger), Some(&txn)).await;
    assert_eq!((code, v["error"]["code"].clone()), (StatusCode::NOT_FOUND, json!("PAYMENT_NOT_FOUND")));
    // An operator may look and refund.
    let operator = env.server.token("ops-1", true);
    let (code, _) = env.call("GET", &format!("/api/sessions/{sid}/"), Some(&operator), None).await;
    assert_eq!(code, StatusCode::OK);
    let (code, v) = env.call("POST", "/api/payment/phonepe/refund/", Some(&operator), Some(&txn)).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    // Still nothing changed for the stranger's view: the session is the owner's.
    assert_eq!(env.session(&owner, &sid).await["refunds"].as_array().unwrap().len(), 1);
}

async fn forged_callback(env: Env) {
    let t = env.token("driver-6");
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    let txn = p["merchant_txn_id"].as_str().unwrap();
    // A success callback signed with a key that is not ours, with no signature, with garbage.
    let (body, forged) = common::signed_callback("not-our-salt", txn, "PAYMENT_SUCCESS", "COMPLETED", 10_000);
    for header in [Some(forged.as_str()), None, Some("garbage")] {
        let (status, v) = env.post_callback(&body, header).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(v["error"]["code"], "INVALID_SIGNATURE");
    }
    let s = env.session(&t, &sid).await;
    assert_eq!(s["status"], "PENDING_PAYMENT");
    assert_eq!(s["payments"][0]["status"], "PENDING");
    assert_eq!(s["can_enter"], false);
    // The same callback signed with our key is applied once, however often it arrives.
    let (body, ours) =
        common::signed_callback(parkpay_api::config::SIM_SALT_KEY, txn, "PAYMENT_SUCCESS", "COMPLETED", 10_000);
    let mut applied = 0;
    for _ in 0..3 {
        let (status, v) = env.post_callback(&body, Some(&ours)).await;
        assert_eq!(status, StatusCode::OK);
        applied += usize::from(v["applied"] == true);
    }
    assert_eq!(applied, 1);
    let s = env.session(&t, &sid).await;
    assert_eq!(s["status"], "PAID");
    assert_eq!(s["paid"], "100.00");
}

/// Authentic callbacks that contradict our record are checked with the status API first.
async fn disagreeing_callback_is_cross_checked(env: Env) {
    let salt = parkpay_api::config::SIM_SALT_KEY;
    let t = env.token("driver-9");
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    let txn = p["merchant_txn_id"].as_str().unwrap();
    // Another amount than ours: PhonePe's status says PENDING, nothing is applied.
    let (body, x) = common::signed_callback(salt, txn, "PAYMENT_SUCCESS", "COMPLETED", 1_000);
    let (status, v) = env.post_callback(&body, Some(&x)).await;
    assert_eq!((status, v["applied"].clone()), (StatusCode::OK, json!(false)), "{v}");
    assert_eq!(env.session(&t, &sid).await["payments"][0]["status"], "PENDING");
    // Declined at PhonePe; then a "success" for it: the status API says FAILED, nothing changes.
    env.pay(&p, "failure").await;
    let (body, x) = common::signed_callback(salt, txn, "PAYMENT_SUCCESS", "COMPLETED", 10_000);
    let (status, v) = env.post_callback(&body, Some(&x)).await;
    assert_eq!((status, v["applied"].clone()), (StatusCode::OK, json!(false)), "{v}");
    let s = env.session(&t, &sid).await;
    assert_eq!((s["status"].clone(), s["payments"][0]["status"].clone()), (json!("PENDING_PAYMENT"), json!("FAILED")));
    // A callback for a transaction we never made is acknowledged and changes nothing.
    let (body, x) = common::signed_callback(salt, "PPNOTOURS", "PAYMENT_SUCCESS", "COMPLETED", 10_000);
    let (status, v) = env.post_callback(&body, Some(&x)).await;
    assert_eq!((status, v["applied"].clone()), (StatusCode::OK, json!(false)), "{v}");
}

async fn malformed_requests(env: Env) {
    let t = env.token("driver-7");
    let sid = env.book(&t).await;
    let big = format!(r#"{{"lot_id":"{}"}}"#, "x".repeat(1024 * 1024));
    // PG v2 has no collect request: it is refused as unavailable before its fields are read.
    let collect = |code| if env.api() == "v1" { code } else { "INSTRUMENT_NOT_AVAILABLE" };
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, String, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("POST", "/api/sessions/", Some(&t), "".into(), 400, "MALFORMED_JSON"),
        ("POST", "/api/sessions/", Some(&t), "{".into(), 400, "MALFORMED_JSON"),
        ("POST", "/api/sessions/", Some(&t), "[]".into(), 400, "MALFORMED_JSON"),
        ("POST", "/api/sessions/", Some(&t), "null".into(), 400, "MALFORMED_JSON"),
        (
            "POST",
            "/api/sessions/",
            Some(&t),
            r#"{"lot_id":1,"vehicle_number":"KA01AB1234","hours":2}"#.into(),
            400,
            "INVALID_FIELD_TYPE",
        ),
        (
            "POST",
            "/api/sessions/",
            Some(&t),
            r#"{"lot_id":"MG-ROAD-1","vehicle_number":"KA01AB1234","hours":"2"}"#.into(),
            400,
            "INVALID_FIELD_TYPE",
        ),
        (
            "POST",
            "/api/sessions/",
            Some(&t),
            r#"{"lot_id":"MG-ROAD-1","vehicle_number":"KA01AB1234","hours":2.5}"#.into(),
            400,
            "INVALID_FIELD_TYPE",
        ),
        (
            "POST",
            "/api/sessions/",
            Some(&t),
            r#"{"lot_id":"MG-ROAD-1","vehicle_number":"KA01AB1234","hours":1e400}"#.into(),
            400,
            "MALFORMED_JSON",
        ),
        (
            "POST",
            "/api/sessions/",
            Some(&t),
            r#"{"vehicle_number":"KA01AB1234","hours":2}"#.into(),
            422,
            "MISSING_FIELD",
        ),
        (
            "POST",
            "/api/sessions/",
            Some(&t),
            r#"{"lot_id":"NOWHERE","vehicle_number":"KA01AB1234","hours":2}"#.into(),
            422,
            "UNKNOWN_LOT",
        ),
        (
            "POST",
            "/api/sessions/",
            Some(&t),
            r#"{"lot_id":"MG-ROAD-1","vehicle_number":"KA01AB12345","hours":2}"#.into(),
            422,
            "INVALID_VEHICLE_NUMBER",
        ),
        (
            "POST",
            "/api/sessions/",
            Some(&t),
            r#"{"lot_id":"MG-ROAD-1","vehicle_number":"ＫＡ01AB1234","hours":2}"#.into(),
            422,
            "INVALID_VEHICLE_NUMBER",
        ),
        (
            "POST",
            "/api/sessions/",
            Some(&t),
            r#"{"lot_id":"MG-ROAD-1","vehicle_number":"KA01AB1234","hours":0}"#.into(),
            422,
            "INVALID_HOURS",
        ),
        (
            "POST",
            "/api/sessions/",
            Some(&t),
            r#"{"lot_id":"MG-ROAD-1","vehicle_number":"KA01AB1234","hours":-3}"#.into(),
            422,
            "INVALID_HOURS",
        ),
        (
            "POST",
            "/api/sessions/",
            Some(&t),
            r#"{"lot_id":"MG-ROAD-1","vehicle_number":"KA01AB1234","hours":25}"#.into(),
            422,
            "INVALID_HOURS",
        ),
        ("POST", "/api/sessions/", Some(&t), big, 413, "BODY_TOO_LARGE"),
        (
            "POST",
            "/api/sessions/",
            None,
            r#"{"lot_id":"MG-ROAD-1","vehicle_number":"KA01AB1234","hours":2}"#.into(),
            401,
            "UNAUTHENTICATED",
        ),
        ("POST", "/api/sessions/", Some("not-a-token"), "{}".into(), 401, "UNAUTHENTICATED"),
        ("GET", "/api/sessions/not-a-session/", Some(&t), "".into(), 404, "SESSION_NOT_FOUND"),
        ("GET", "/api/sessions/ps_00000000000000000000000000/", Some(&t), "".into(), 404, "SESSION_NOT_FOUND"),
        ("POST", "/api/payment/phonepe/create/", Some(&t), "{}".into(), 422, "MISSING_FIELD"),
        (
            "POST",
            "/api/payment/phonepe/create/",
            Some(&t),
            json!({"session_id": sid, "amount": "99.00"}).to_string(),
            422,
            "AMOUNT_MISMATCH",
        ),
        (
            "POST",
            "/api/payment/phonepe/create/",
            Some(&t),
            json!({"session_id": sid, "amount": "abc"}).to_string(),
            422,
            "INVALID_AMOUNT",
        ),
        (
            "POST",
            "/api/payment/phonepe/create/",
            Some(&t),
            json!({"session_id": sid, "amount": -100}).to_string(),
            422,
            "INVALID_AMOUNT",
        ),
        (
            "POST",
            "/api/payment/phonepe/create/",
            Some(&t),
            format!(r#"{{"session_id":"{sid}","amount":100.001}}"#),
            422,
            "INVALID_AMOUNT",
        ),
        (
            "POST",
            "/api/payment/phonepe/create/",
            Some(&t),
            format!(r#"{{"session_id":"{sid}","amount":true}}"#),
            400,
            "INVALID_FIELD_TYPE",
        ),
        (
            "POST",
            "/api/payment/phonepe/create/",
            Some(&t),
            json!({"session_id": sid, "amount": "1e2"}).to_string(),
            422,
            "INVALID_AMOUNT",
        ),
        (
            "POST",
            "/api/payment/phonepe/create/",
            Some(&t),
            json!({"session_id": sid, "payment_instrument": "CASH"}).to_string(),
            422,
            "INVALID_PAYMENT_INSTRUMENT",
        ),
        (
            "POST",
            "/api/payment/phonepe/create/",
            Some(&t),
            json!({"session_id": sid, "payment_instrument": "UPI_COLLECT"}).to_string(),
            422,
            collect("MISSING_FIELD"),
        ),
        (
            "POST",
            "/api/payment/phonepe/create/",
            Some(&t),
            json!({"session_id": sid, "payment_instrument": "UPI_COLLECT", "vpa": "no-at-sign"}).to_string(),
            422,
            collect("INVALID_VPA"),
        ),
        (
            "POST",
            "/api/payment/phonepe/create/",
            Some(&t),
            json!({"session_id": sid, "user_id": "someone-else"}).to_string(),
            403,
            "USER_MISMATCH",
        ),
        (
            "POST",
            "/api/payment/phonepe/create/",
            Some(&t),
            json!({"session_id": 5}).to_string(),
            400,
            "INVALID_FIELD_TYPE",
        ),
        ("POST", "/api/payment/phonepe/verify/", Some(&t), "{}".into(), 422, "MISSING_FIELD"),
        (
            "POST",
            "/api/payment/phonepe/verify/",
            Some(&t),
            r#"{"merchant_txn_id":5}"#.into(),
            400,
            "INVALID_FIELD_TYPE",
        ),
        (
            "POST",
            "/api/payment/phonepe/verify/",
            Some(&t),
            r#"{"merchant_txn_id":"PPUNKNOWN"}"#.into(),
            404,
            "PAYMENT_NOT_FOUND",
        ),
        (
            "POST",
            "/api/payment/phonepe/verify/",
            Some(&t),
            r#"{"merchant_txn_id":"../../etc"}"#.into(),
            404,
            "PAYMENT_NOT_FOUND",
        ),
        ("POST", "/api/payment/phonepe/refund/", Some(&t), "{}".into(), 422, "MISSING_FIELD"),
        (
            "POST",
            "/api/payment/phonepe/refund/",
            Some(&t),
            r#"{"merchant_txn_id":"PPUNKNOWN","amount":"0"}"#.into(),
            422,
            "INVALID_AMOUNT",
        ),
        (
            "POST",
            "/api/payment/phonepe/refund/",
            Some(&t),
            r#"{"merchant_txn_id":"PPUNKNOWN"}"#.into(),
            404,
            "PAYMENT_NOT_FOUND",
        ),
        ("POST", "/api/payment/callback/phonepe/", None, "{}".into(), 401, "INVALID_SIGNATURE"),
        ("POST", "/api/payment/callback/phonepe/", None, "not json".into(), 401, "INVALID_SIGNATURE"),
        ("DELETE", "/api/sessions/", Some(&t), "".into(), 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/api/nothing-here/", None, "".into(), 404, "ROUTE_NOT_FOUND"),
    ];
    for (method, path, token, body, status, code) in cases {
        let shown: String = body.chars().take(80).collect();
        let (got, v) = env.call(method, path, token, if body.is_empty() { None } else { Some(&body) }).await;
        assert_eq!(got.as_u16(), status, "{method} {path} {shown}: {v}");
        assert_eq!(v["error"]["code"], code, "{method} {path} {shown}: {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Invalid UTF-8 in a body.
    let resp = env
        .http
        .post(format!("{}/api/sessions/", env.base))
        .bearer_auth(&t)
        .body(vec![b'{', 0xff, 0xfe, b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // A callback with X-VERIFY but an unreadable body.
    let resp = env
        .http
        .post(format!("{}/api/payment/callback/phonepe/", env.base))
        .header("X-VERIFY", "abc###1")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "MALFORMED_CALLBACK");
    // Nothing above changed the session.
    let s = env.session(&t, &sid).await;
    assert_eq!(s["status"], "PENDING_PAYMENT");
    assert!(s["payments"].as_array().unwrap().is_empty());
}

/// Each API offers its own instruments: what it lacks is 422 `INSTRUMENT_NOT_AVAILABLE` naming
/// the version, with nothing recorded; what it has answers its own links.
async fn instruments_by_api(env: Env) {
    let t = env.token("driver-instruments");
    let api = env.api();
    let (missing, present): (&[&str], &[&str]) = match api {
        "v1" => (&["APP_SDK"], &["PAY_PAGE", "UPI_INTENT", "UPI_QR"]),
        _ => (&["UPI_INTENT", "UPI_QR", "UPI_COLLECT"], &["PAY_PAGE", "APP_SDK"]),
    };
    for name in missing {
        let sid = env.book(&t).await;
        let body = json!({"session_id": sid, "payment_instrument": name, "vpa": "driver@ybl"}).to_string();
        let (s, v) = env.call("POST", "/api/payment/phonepe/create/", Some(&t), Some(&body)).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("INSTRUMENT_NOT_AVAILABLE")),
            "{v}"
        );
        assert!(v["error"]["message"].as_str().unwrap().contains(&format!("PG {api}")), "{v}");
        let session = env.session(&t, &sid).await;
        assert!(session["payments"].as_array().unwrap().is_empty(), "nothing recorded: {session}");
    }
    for name in present {
        let sid = env.book(&t).await;
        let body = json!({"session_id": sid, "payment_instrument": name}).to_string();
        let (s, v) = env.call("POST", "/api/payment/phonepe/create/", Some(&t), Some(&body)).await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(v["payment_instrument"], *name);
        let link = match *name {
            "PAY_PAGE" => "redirect_url",
            "UPI_INTENT" => "upi_intent_url",
            "UPI_QR" => "qr_data",
            _ => "sdk_token",
        };
        assert!(v[link].as_str().is_some_and(|l| !l.is_empty()), "{name} answers {link}: {v}");
        // PhonePe's order id comes with every v2 order, never with v1.
        assert_eq!(v["order_id"].is_string(), api == "v2", "{v}");
        let txn = v["merchant_txn_id"].as_str().unwrap();
        assert_eq!(env.server.simulator.v2_order(txn).is_some(), api == "v2", "made with PG {api}");
    }
}

on_both_stores_and_apis!(instruments_by_api, pay_flow, decline_then_pay_again, refunds, isolation, malformed_requests);

mod v1_only {
    use super::*;
    on_both_stores!(forged_callback, disagreeing_callback_is_cross_checked);
}

/// A PG v2 webhook's `Authorization` does not depend on its body: a webhook with the right
/// header and a made-up body changes nothing, because what is applied is what PhonePe's status
/// API says. A wrong or missing header is 401.
async fn forged_webhook(env: Env) {
    let t = env.token("driver-webhook");
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    let txn = p["merchant_txn_id"].as_str().unwrap();
    let hook = |event: &str, state: &str| {
        json!({"event": event, "payload": {
            "merchantId": parkpay_api::config::SIM_MERCHANT_ID, "merchantOrderId": txn,
            "orderId": "OMO-FORGED", "state": state, "amount": 10_000,
            "paymentDetails": [{"transactionId": "OM-FORGED", "paymentMode": "UPI_QR", "state": state, "amount": 10_000}]
        }})
        .to_string()
    };
    let post = |auth: Option<String>, body: String| {
        let mut req = env
            .http
            .post(format!("{}/api/payment/callback/phonepe/", env.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let good = env.server.simulator.webhook_authorization();
    // Not authenticated: refused, whatever the body says.
    for auth in [None, Some("0".repeat(64)), Some(good.replace('a', "b")), Some("not hex".to_owned())] {
        let (s, v) = post(auth.clone(), hook("checkout.order.completed", "COMPLETED")).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("INVALID_SIGNATURE")),
            "{auth:?}: {v}"
        );
    }
    // Authenticated header, forged body: PhonePe says the order is still PENDING.
    let (s, v) = post(Some(good.clone()), hook("checkout.order.completed", "COMPLETED")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["applied"], false, "{v}");
    let session = env.session(&t, &sid).await;
    assert_eq!(
        (session["status"].as_str(), session["payments"][0]["status"].as_str()),
        (Some("PENDING_PAYMENT"), Some("PENDING")),
        "{session}"
    );
    // A webhook naming another merchant is not applied.
    let other =
        hook("checkout.order.completed", "COMPLETED").replace(parkpay_api::config::SIM_MERCHANT_ID, "OTHERMERCHANT");
    let (s, v) = post(Some(good.clone()), other).await;
    assert_eq!((s, v["applied"].as_bool()), (StatusCode::OK, Some(false)), "{v}");
    // Paid for real, its webhook not delivered; the genuine webhook arrives while PhonePe's status
    // API fails: 503, so that PhonePe sends it again; then it is applied.
    use parkpay_simulator::{Faults, Operation, Outcome};
    let sim = &env.server.simulator;
    sim.set_faults(txn, Faults::callbacks_dropped()).unwrap();
    sim.complete(txn, Outcome::Success).await.unwrap();
    sim.set_faults(txn, Faults::server_error_before().only(&[Operation::Status])).unwrap();
    let (header, body) = env.genuine_success_notice(txn);
    let (s, v) = env.post_notice(&header, &body).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(env.session(&t, &sid).await["status"], "PENDING_PAYMENT");
    sim.set_faults(txn, Faults::default()).unwrap();
    let (s, v) = env.post_notice(&header, &body).await;
    assert_eq!((s, v["applied"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    let paid = env.wait_for_status(&t, &sid, "PAID").await;
    // Then a forged "failed" webhook changes nothing either.
    assert_eq!(paid["paid"], "100.00");
    let (s, v) = post(Some(good), hook("checkout.order.failed", "FAILED")).await;
    assert_eq!((s, v["applied"].as_bool()), (StatusCode::OK, Some(false)), "{v}");
    assert_eq!(env.session(&t, &sid).await["status"], "PAID");
}

mod v2_only {
    mod embedded_store {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn forged_webhook() {
            super::super::forged_webhook(crate::common::embedded_v2().await).await;
        }
    }

    mod dynamodb_local {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn forged_webhook() {
            if let Some(env) = crate::common::dynamodb_v2().await {
                super::super::forged_webhook(env).await;
            }
        }
    }
}

/// Switching a live deployment from PG v1 to PG v2 (`README.md`, "Switching from PG v1 to PG
/// v2"): a v1 deployment and the switched one run side by side on the same table, as functions
/// do during a deploy, against the same PhonePe. What v1 made keeps going through v1 on the
/// switched deployment (a late outcome found by verify, a refund, reconciliation of that
/// refund); what it makes is v2's.
async fn switching_from_v1_to_v2(old: Env, stores: parkpay_api::Stores) {
    assert_eq!(old.api(), "v1");
    let sim = &old.server.simulator;
    let new = common::start_with_env(
        tempfile::tempdir().unwrap(),
        Some(stores),
        &[
            ("PHONEPE_API_VERSION", "v2"),
            ("PHONEPE_SIMULATOR_URL", &format!("{}/_phonepe/", old.base)),
            ("PARKPAY_JWT_SECRET", "e2e-test-secret-0123456789"),
        ],
    )
    .await;
    assert_eq!(new.api(), "v2");
    let t = old.token("driver-switch");
    // Before the switch: one v1 payment paid, one v1 payment whose outcome is not known yet.
    let paid_sid = old.book(&t).await;
    let paid = old.create_payment(&t, &paid_sid).await;
    old.pay(&paid, "success").await;
    old.wait_for_status(&t, &paid_sid, "PAID").await;
    let late_sid = old.book(&t).await;
    let late = old.create_payment(&t, &late_sid).await;
    let late_txn = late["merchant_txn_id"].as_str().unwrap();
    sim.set_faults(late_txn, parkpay_simulator::Faults::callbacks_dropped()).unwrap();
    sim.complete(late_txn, parkpay_simulator::Outcome::Success).await.unwrap();

    // After: the switched deployment verifies the v1 payment through v1.
    let (s, v) = new
        .call("POST", "/api/payment/phonepe/verify/", Some(&t), Some(&json!({"merchant_txn_id": late_txn}).to_string()))
        .await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("SUCCESS")), "{v}");
    // It refunds the v1 payment through v1: PhonePe has a v1 refund, no v2 one.
    sim.set_global_faults(parkpay_simulator::Faults::callbacks_dropped()).unwrap();
    let body =
        json!({"merchant_txn_id": paid["merchant_txn_id"], "amount": "40.00", "reason": "switch test"}).to_string();
    let (s, r) = new.call("POST", "/api/payment/phonepe/refund/", Some(&t), Some(&body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let refund_id = r["refund_id"].as_str().expect("refund id").to_owned();
    assert!(sim.v2_refund(&refund_id).is_none(), "the v1 payment's refund went through v1");
    assert!(sim.transactions().iter().any(|x| x.merchant_transaction_id == refund_id), "PhonePe has the refund");
    sim.clear_global_faults();
    // The refund settles with its callback dropped; reconciliation on the switched deployment
    // asks v1 and applies it.
    sim.set_faults(&refund_id, parkpay_simulator::Faults::callbacks_dropped()).unwrap();
    sim.settle_refund(&refund_id, parkpay_simulator::Outcome::Success).unwrap();
    let rec = common::Rec::new(&new);
    let mut refunded = Value::Null;
    for secs in [60, 120, 300, 900, 1800] {
        rec.at(secs).await;
        refunded = new.session(&t, &paid_sid).await;
        if refunded["refunded"] == "40.00" {
            break;
        }
    }
    assert_eq!(refunded["refunded"], "40.00", "{refunded}");
    // New payments are v2's, with their own refunds through v2.
    let sid = new.book(&t).await;
    let p = new.create_payment(&t, &sid).await;
    let txn = p["merchant_txn_id"].as_str().unwrap().to_owned();
    assert!(p["order_id"].is_string() && sim.v2_order(&txn).is_some(), "{p}");
    new.pay(&p, "success").await;
    new.wait_for_status(&t, &sid, "PAID").await;
    let body = json!({"merchant_txn_id": txn, "reason": "switch test"}).to_string();
    let (s, r) = new.call("POST", "/api/payment/phonepe/refund/", Some(&t), Some(&body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let refund_id = r["refund_id"].as_str().unwrap().to_owned();
    assert!(sim.v2_refund(&refund_id).is_some(), "a v2 payment's refund goes through v2");
    new.wait_for_status(&t, &sid, "REFUNDED").await;
    // PhonePe is the old deployment's simulator: the money is checked against it.
    common::assert_money(&old, &[paid_sid, late_sid, sid]).await;
}

mod switching {
    use super::*;
    on_both_stores_with_stores!(switching_from_v1_to_v2);
}

/// The embedded store keeps its data across a restart of the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_data_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let env = start_with(dir, None).await;
    let t = env.token("driver-8");
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    env.pay(&p, "success").await;
    let Env { server, http, _dir, .. } = env;
    drop(http);
    server.stop().await;
    // same data directory, new process state
    let env = start_with(_dir, None).await;
    assert_eq!(env._dir.path(), path);
    let s = env.session(&t, &sid).await;
    assert_eq!(s["status"], "PAID");
    assert_eq!(s["can_enter"], true);
}
