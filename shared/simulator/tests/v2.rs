//! PG v2 over real HTTP on 127.0.0.1: OAuth tokens (issue, expiry, revocation, token faults),
//! orders through the pay page and the control API, statuses, webhooks and their
//! `Authorization` (PhonePe's published vector), refunds, validation, and the v1 faults applied
//! to v2 ids.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use parkpay_checksum::conformance::{WEBHOOK_AUTHORIZATION, WEBHOOK_EMPTY_AUTHORIZATION};
use parkpay_simulator::{
    DeliveryResult, Faults, ForcedAnswer, Operation, Outcome, RunningSimulator, SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET, Simulator, SimulatorConfig, TokenFaults,
};
use serde_json::{Value, json};
use url::Url;

/// One webhook as the receiver got it.
#[derive(Debug, Clone)]
struct Hook {
    authorization: Option<String>,
    body: Value,
}

type Hooks = Arc<Mutex<Vec<Hook>>>;

async fn on_hook(State(got): State<Hooks>, headers: HeaderMap, body: Bytes) -> &'static str {
    let authorization = headers.get("authorization").and_then(|h| h.to_str().ok()).map(str::to_owned);
    got.lock().unwrap().push(Hook { authorization, body: serde_json::from_slice(&body).unwrap_or(Value::Null) });
    "ok"
}

struct Rig {
    sim: RunningSimulator,
    hooks: Hooks,
    http: reqwest::Client,
}

impl Rig {
    async fn start() -> Self {
        Self::with(|c| c).await
    }

    async fn with(tune: impl FnOnce(SimulatorConfig) -> SimulatorConfig) -> Self {
        let hooks: Hooks = Arc::default();
        let app = Router::new().route("/hook", post(on_hook)).with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let cfg = SimulatorConfig::sandbox().with_fast_timings().with_v2_webhook(Some(url), "username", "password");
        let sim = Simulator::spawn(tune(cfg), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { sim, hooks, http }
    }

    fn sim(&self) -> &Simulator {
        &self.sim.simulator
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url.as_str().trim_end_matches('/'))
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let resp = self.http.post(self.url("/v1/oauth/token")).form(form).send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    async fn token(&self) -> String {
        let (status, body) = self
            .token_request(&[
                ("client_id", SANDBOX_CLIENT_ID),
                ("client_version", "1"),
                ("client_secret", SANDBOX_CLIENT_SECRET),
                ("grant_type", "client_credentials"),
            ])
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .header("authorization", format!("O-Bearer {token}"))
            .json(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let resp =
            self.http.get(self.url(path)).header("authorization", format!("O-Bearer {token}")).send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    async fn order_status(&self, token: &str, id: &str) -> (u16, Value) {
        self.get(&format!("/checkout/v2/order/{id}/status"), token).await
    }

    async fn refund_status(&self, token: &str, id: &str) -> (u16, Value) {
        self.get(&format!("/payments/v2/refund/{id}/status"), token).await
    }

    fn hooks_for(&self, id: &str) -> Vec<Hook> {
        let got = self.hooks.lock().unwrap().clone();
        got.into_iter()
            .filter(|h| {
                let p = &h.body["payload"];
                p["merchantOrderId"] == id || p["merchantRefundId"] == id
            })
            .collect()
    }

    async fn wait_hooks(&self, id: &str, n: usize) -> Vec<Hook> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.hooks_for(id);
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {n} webhooks about {id}: {got:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// An order through `/checkout/v2/pay`, paid through the library; returns its orderId.
    async fn paid(&self, token: &str, id: &str) -> String {
        let (status, body) = self.post("/checkout/v2/pay", token, &order(id, 10_000)).await;
        assert_eq!(status, 200, "{body}");
        self.sim().complete(id, Outcome::Success).await.unwrap();
        self.wait_hooks(id, 1).await;
        body["orderId"].as_str().unwrap().to_owned()
    }
}

fn order(id: &str, amount: u64) -> Value {
    json!({
        "merchantOrderId": id,
        "amount": amount,
        "expireAfter": 900,
        "metaInfo": {"udf1": "bay-7"},
        "paymentFlow": {"type": "PG_CHECKOUT", "merchantUrls": {"redirectUrl": "https://merchant.example/return"}}
    })
}

fn refund(id: &str, original: &str, amount: u64) -> Value {
    json!({ "merchantRefundId": id, "originalMerchantOrderId": original, "amount": amount })
}

// ---- tokens -------------------------------------------------------------------------------

#[tokio::test]
async fn tokens_are_issued_to_the_configured_client_only() {
    let rig = Rig::start().await;
    let good = [
        ("client_id", SANDBOX_CLIENT_ID),
        ("client_version", "1"),
        ("client_secret", SANDBOX_CLIENT_SECRET),
        ("grant_type", "client_credentials"),
    ];
    for (i, (k, v)) in [("client_secret", "wrong"), ("client_id", "OTHER"), ("client_version", "2")].iter().enumerate()
    {
        let form: Vec<(&str, &str)> =
            good.iter().map(|(gk, gv)| if gk == k { (*gk, *v) } else { (*gk, *gv) }).collect();
        let (status, body) = rig.token_request(&form).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("INVALID_CLIENT")), "case {i}: {body}");
        assert!(!body.to_string().contains("wrong"), "the answer never echoes a secret");
    }
    let (status, body) = rig.token_request(&good[..3]).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_REQUEST")), "no grant_type: {body}");
    let (status, _) = rig.token_request(&[("grant_type", "password")]).await;
    assert_eq!(status, 400);

    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (status, body) = rig.token_request(&good).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "O-Bearer");
    let (issued, expires) = (body["issued_at"].as_u64().unwrap(), body["expires_at"].as_u64().unwrap());
    assert!(issued >= before && issued <= before + 2, "issued_at is epoch seconds: {issued}");
    assert_eq!(expires - issued, 3600);
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(rig.sim().token_requests(), 6);
    assert_eq!(rig.sim().tokens_issued(), 1);

    // every PG call needs the token
    let unauthorised = [None, Some("Bearer x".to_owned()), Some("O-Bearer not-a-token".to_owned())];
    for auth in unauthorised {
        let mut req = rig.http.get(rig.url("/checkout/v2/order/ORD-X/status"));
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{auth:?}");
        assert_eq!(resp.json::<Value>().await.unwrap()["code"], "AUTHORIZATION_FAILED");
    }
    let (status, body) = rig.post("/checkout/v2/pay", "nope", &order("ORD-X", 10_000)).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("AUTHORIZATION_FAILED")));
    assert!(rig.sim().transaction("ORD-X").is_none());
    let (status, body) = rig.order_status(&token, "ORD-X").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("ORDER_NOT_FOUND")));
}

#[tokio::test]
async fn tokens_expire_are_revoked_and_fault() {
    let rig = Rig::with(|c| c.with_token_lifetime(Duration::from_secs(1))).await;
    let token = rig.token().await;
    assert_eq!(rig.order_status(&token, "NONE").await.0, 404, "valid: the order is simply unknown");
    // expires_at is the next whole second at the latest
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = rig.order_status(&token, "NONE").await;
    assert_eq!(status, 401);
    assert!(body["message"].as_str().unwrap().contains("expired"), "{body}");

    let token = rig.token().await;
    rig.sim().revoke_tokens();
    let (status, body) = rig.order_status(&token, "NONE").await;
    assert_eq!(status, 401);
    assert!(body["message"].as_str().unwrap().contains("revoked"), "{body}");

    let rig = Rig::start().await;
    let token = rig.token().await;
    rig.sim().expire_tokens();
    assert_eq!(rig.order_status(&token, "NONE").await.0, 401);
    let token = rig.token().await;
    rig.sim().reject_next_v2_calls(2);
    assert_eq!(rig.order_status(&token, "NONE").await.0, 401);
    assert_eq!(rig.post("/checkout/v2/pay", &token, &order("ORD-R", 10_000)).await.0, 401);
    assert_eq!(rig.order_status(&token, "NONE").await.0, 404, "the same token is fine again");
    assert!(rig.sim().transaction("ORD-R").is_none());

    // token faults through the control API
    let resp = rig
        .http
        .put(rig.url("/_sim/v2/tokens/faults"))
        .json(&json!({"fail_next_token_requests": 1, "reject_next_calls": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (status, body) = rig
        .token_request(&[
            ("client_id", SANDBOX_CLIENT_ID),
            ("client_version", "1"),
            ("client_secret", SANDBOX_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
        ])
        .await;
    assert_eq!((status, body["code"].as_str()), (500, Some("INTERNAL_SERVER_ERROR")));
    assert_eq!(rig.sim().token_faults(), TokenFaults { reject_next_calls: 1, fail_next_token_requests: 0 });
    let token = rig.token().await;
    assert_eq!(rig.order_status(&token, "NONE").await.0, 401);
    assert_eq!(rig.order_status(&token, "NONE").await.0, 404);
    let stats: Value = rig.http.get(rig.url("/_sim/v2/tokens")).send().await.unwrap().json().await.unwrap();
    assert_eq!((stats["requests"].as_u64(), stats["issued"].as_u64()), (Some(4), Some(3)), "{stats}");
    assert_eq!(stats["active"], 2, "the first token expired; two are valid");
    let bad = rig.http.put(rig.url("/_sim/v2/tokens/faults")).body(r#"{"reject_next":1}"#).send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    for path in ["/_sim/v2/tokens/revoke", "/_sim/v2/tokens/expire"] {
        assert_eq!(rig.http.post(rig.url(path)).send().await.unwrap().status().as_u16(), 204);
    }
    assert_eq!(rig.order_status(&token, "NONE").await.0, 401);
}

// ---- orders and webhooks ------------------------------------------------------------------

#[tokio::test]
async fn pay_page_success_status_and_webhook() {
    let rig = Rig::start().await;
    // PhonePe's published vector: the default webhook credentials are username / password
    assert_eq!(rig.sim().webhook_authorization(), WEBHOOK_AUTHORIZATION);
    assert_eq!(WEBHOOK_AUTHORIZATION, "bc842c31a9e54efe320d30d948be61291f3ceee4766e36ab25fa65243cd76e0e");
    let empty = Simulator::new(SimulatorConfig::sandbox().with_v2_webhook(None, "", "")).unwrap();
    assert_eq!(empty.webhook_authorization(), WEBHOOK_EMPTY_AUTHORIZATION);

    let token = rig.token().await;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let (status, body) = rig.post("/checkout/v2/pay", &token, &order("ORD-1", 12_345)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "PENDING");
    let order_id = body["orderId"].as_str().unwrap().to_owned();
    assert!(order_id.starts_with("OMO"), "{order_id}");
    let expire_at = body["expireAt"].as_u64().unwrap();
    assert!(expire_at >= now_ms + 899_000 && expire_at <= now_ms + 905_000, "{expire_at}");
    let page = body["redirectUrl"].as_str().unwrap().to_owned();
    assert!(page.starts_with(&rig.url("/pay/")), "{page}");

    let (status, st) = rig.order_status(&token, "ORD-1").await;
    assert_eq!(status, 200);
    assert_eq!((st["orderId"].as_str(), st["state"].as_str()), (Some(order_id.as_str()), Some("PENDING")));
    assert_eq!((st["amount"].as_u64(), st["expireAt"].as_u64()), (Some(12_345), Some(expire_at)));
    assert_eq!(st["metaInfo"]["udf1"], "bay-7");
    assert_eq!(st["paymentDetails"], json!([]));

    let html = rig.http.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("₹123.45") && html.contains("ORD-1"), "{html}");
    let resp = rig.http.post(&page).form(&[("outcome", "success")]).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "https://merchant.example/return");

    let hooks = rig.hooks_for("ORD-1");
    assert_eq!(hooks.len(), 1, "the first attempt is awaited before the redirect");
    assert_eq!(hooks[0].authorization.as_deref(), Some(WEBHOOK_AUTHORIZATION));
    let (event, payload) = (&hooks[0].body["event"], &hooks[0].body["payload"]);
    assert_eq!(event, "checkout.order.completed");
    assert_eq!((payload["merchantId"].as_str(), payload["state"].as_str()), (Some("PGTESTPAYUAT"), Some("COMPLETED")));
    assert_eq!((payload["orderId"].as_str(), payload["amount"].as_u64()), (Some(order_id.as_str()), Some(12_345)));
    let utr = payload["paymentDetails"][0]["rail"]["utr"].as_str().unwrap().to_owned();
    assert_eq!(utr.len(), 12);

    let (_, st) = rig.order_status(&token, "ORD-1").await;
    assert_eq!(st["state"], "COMPLETED");
    let attempt = &st["paymentDetails"][0];
    assert_eq!((attempt["state"].as_str(), attempt["amount"].as_u64()), (Some("COMPLETED"), Some(12_345)));
    assert!(attempt["transactionId"].as_str().unwrap().starts_with("OM"));
    assert_eq!(attempt["rail"]["utr"].as_str(), Some(utr.as_str()));
    assert_eq!(st.get("errorCode"), None);
    assert_eq!(rig.sim().v2_order("ORD-1").unwrap(), st);

    // the same merchantOrderId again
    let (status, body) = rig.post("/checkout/v2/pay", &token, &order("ORD-1", 100)).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_REQUEST")));
    assert!(body["message"].as_str().unwrap().contains("duplicate"), "{body}");
    let log = rig.sim().callbacks_for("ORD-1");
    assert_eq!(
        (log.len(), log[0].code.as_str(), log[0].result),
        (1, "checkout.order.completed", DeliveryResult::Delivered)
    );
}

#[tokio::test]
async fn sdk_order_declined_through_the_control_api() {
    let rig = Rig::start().await;
    let token = rig.token().await;
    let mut body = order("SDK-1", 10_000);
    body["paymentFlow"] = json!({"type": "PG_CHECKOUT"});
    let (status, answer) = rig.post("/checkout/v2/sdk/order", &token, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["state"], "PENDING");
    let sdk_token = answer["token"].as_str().unwrap();
    assert!(answer["orderId"].as_str().unwrap().starts_with("OMO"));
    assert_eq!(rig.sim().transaction("SDK-1").unwrap().pay_page_url.unwrap(), rig.url(&format!("/pay/{sdk_token}")));

    let resp =
        rig.http.post(rig.url("/_sim/payments/SDK-1/complete")).json(&json!({"outcome": "declined"})).send().await;
    assert_eq!(resp.unwrap().status().as_u16(), 200);
    let hooks = rig.wait_hooks("SDK-1", 1).await;
    assert_eq!(hooks[0].body["event"], "checkout.order.failed");
    assert_eq!(hooks[0].body["payload"]["state"], "FAILED");
    let (_, st) = rig.order_status(&token, "SDK-1").await;
    assert_eq!((st["state"].as_str(), st["errorCode"].as_str()), (Some("FAILED"), Some("PAYMENT_DECLINED")));
    assert_eq!(st["paymentDetails"][0]["state"], "FAILED");
    assert_eq!(st["paymentDetails"][0].get("rail"), None);
    // a failed order is not refundable
    let (status, body) = rig.post("/payments/v2/refund", &token, &refund("SDK-1-R", "SDK-1", 100)).await;
    assert_eq!(status, 400, "{body}");
}

// ---- refunds ------------------------------------------------------------------------------

#[tokio::test]
async fn refunds_confirm_settle_and_never_exceed_the_payment() {
    let rig = Rig::with(|mut c| {
        c.refund_settle_delay = Duration::from_secs(60);
        c
    })
    .await;
    let token = rig.token().await;
    let (status, body) = rig.post("/payments/v2/refund", &token, &refund("R-0", "NO-ORDER", 100)).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("ORDER_NOT_FOUND")));
    rig.post("/checkout/v2/pay", &token, &order("RF-PENDING", 10_000)).await;
    let (status, body) = rig.post("/payments/v2/refund", &token, &refund("R-1", "RF-PENDING", 100)).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("COMPLETED"), "{body}");

    rig.paid(&token, "RF-1").await;
    let (status, body) = rig.post("/payments/v2/refund", &token, &refund("RF-1-R1", "RF-1", 4_000)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["amount"].as_u64(), body["state"].as_str()), (Some(4_000), Some("PENDING")));
    let refund_id = body["refundId"].as_str().unwrap().to_owned();
    assert!(refund_id.starts_with("OMR"));
    let hooks = rig.wait_hooks("RF-1-R1", 1).await;
    assert_eq!(hooks[0].body["event"], "pg.refund.accepted");
    assert_eq!(hooks[0].authorization.as_deref(), Some(WEBHOOK_AUTHORIZATION));
    let (status, st) = rig.refund_status(&token, "RF-1-R1").await;
    assert_eq!(status, 200);
    assert_eq!((st["state"].as_str(), st["refundId"].as_str()), (Some("CONFIRMED"), Some(refund_id.as_str())));
    assert_eq!((st["originalMerchantOrderId"].as_str(), st["amount"].as_u64()), (Some("RF-1"), Some(4_000)));

    // more than what is left, a reused id, an amount as a string
    let (status, body) = rig.post("/payments/v2/refund", &token, &refund("RF-1-R2", "RF-1", 6_001)).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("EXCESS_REFUND_AMOUNT")));
    assert!(body["message"].as_str().unwrap().contains("6000 paise left"), "{body}");
    let (status, body) = rig.post("/payments/v2/refund", &token, &refund("RF-1-R1", "RF-1", 100)).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("duplicate"));
    let mut stringly = refund("RF-1-R3", "RF-1", 100);
    stringly["amount"] = json!("100");
    assert_eq!(rig.post("/payments/v2/refund", &token, &stringly).await.0, 400);

    // settled by hand, through the control API
    let resp = rig.http.post(rig.url("/_sim/refunds/RF-1-R1/settle")).json(&json!({"outcome": "success"})).send();
    assert_eq!(resp.await.unwrap().status().as_u16(), 200);
    let hooks = rig.wait_hooks("RF-1-R1", 2).await;
    assert_eq!(hooks[1].body["event"], "pg.refund.completed");
    assert_eq!(hooks[1].body["payload"]["merchantId"], "PGTESTPAYUAT");
    assert_eq!(rig.refund_status(&token, "RF-1-R1").await.1["state"], "COMPLETED");
    let again = rig.http.post(rig.url("/_sim/refunds/RF-1-R1/settle")).json(&json!({"outcome": "success"})).send();
    assert_eq!(again.await.unwrap().status().as_u16(), 409);

    // a failed refund frees its amount
    let (status, _) = rig.post("/payments/v2/refund", &token, &refund("RF-1-R4", "RF-1", 6_000)).await;
    assert_eq!(status, 200);
    rig.sim().settle_refund("RF-1-R4", Outcome::Failure).unwrap();
    let hooks = rig.wait_hooks("RF-1-R4", 2).await;
    assert_eq!(hooks[1].body["event"], "pg.refund.failed");
    let (_, st) = rig.refund_status(&token, "RF-1-R4").await;
    assert_eq!((st["state"].as_str(), st["errorCode"].as_str()), (Some("FAILED"), Some("PAYMENT_ERROR")));
    let (status, _) = rig.post("/payments/v2/refund", &token, &refund("RF-1-R5", "RF-1", 6_000)).await;
    assert_eq!(status, 200);
    assert_eq!(rig.sim().transaction("RF-1").unwrap().refunded_amount, 10_000);

    let (status, body) = rig.refund_status(&token, "RF-1").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("REFUND_NOT_FOUND")), "an order is not a refund");
    assert_eq!(rig.order_status(&token, "RF-1-R1").await.0, 404, "a refund is not an order");
}

#[tokio::test]
async fn refunds_settle_by_themselves() {
    let rig = Rig::start().await;
    let token = rig.token().await;
    rig.paid(&token, "AUTO-1").await;
    rig.post("/payments/v2/refund", &token, &refund("AUTO-1-R", "AUTO-1", 10_000)).await;
    let hooks = rig.wait_hooks("AUTO-1-R", 2).await;
    let events: Vec<&str> = hooks.iter().map(|h| h.body["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["pg.refund.accepted", "pg.refund.completed"]);
    let (_, st) = rig.refund_status(&token, "AUTO-1-R").await;
    assert_eq!(st["state"], "COMPLETED");
    assert_eq!(st["paymentDetails"][0]["state"], "COMPLETED");
}

// ---- validation ---------------------------------------------------------------------------

#[tokio::test]
async fn malformed_orders_are_bad_requests() {
    let rig = Rig::start().await;
    let token = rig.token().await;
    let spoil = |f: &dyn Fn(&mut Value)| {
        let mut v = order("BAD-1", 10_000);
        f(&mut v);
        v
    };
    for (body, why) in [
        (spoil(&|v| v["amount"] = json!("10000")), "not a string"),
        (spoil(&|v| v["amount"] = json!(99)), "at least 100"),
        (spoil(&|v| v["amount"] = json!(100.5)), "whole number"),
        (spoil(&|v| v["expireAfter"] = json!(120)), "expireAfter"),
        (spoil(&|v| v["merchantOrderId"] = json!("x".repeat(64))), "merchantOrderId"),
        (spoil(&|v| v["paymentFlow"]["type"] = json!("PAY_PAGE")), "PG_CHECKOUT"),
        (spoil(&|v| drop(v.as_object_mut().unwrap().remove("paymentFlow"))), "paymentFlow"),
        (json!([1, 2]), "JSON object"),
    ] {
        let (status, answer) = rig.post("/checkout/v2/pay", &token, &body).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some("BAD_REQUEST")), "{why}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(why), "{why:?} not in {answer}");
    }
    let resp = rig
        .http
        .post(rig.url("/checkout/v2/pay"))
        .header("authorization", format!("O-Bearer {token}"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(rig.order_status(&token, "bad.id").await.0, 400);
    assert!(rig.sim().transactions().is_empty(), "nothing was recorded");
}

// ---- faults -------------------------------------------------------------------------------

#[tokio::test]
async fn v1_faults_apply_to_v2_ids() {
    let rig = Rig::start().await;
    let sim = rig.sim();
    let token = rig.token().await;

    sim.set_faults("F-429", Faults::force("TOO_MANY_REQUESTS")).unwrap();
    let (status, body) = rig.post("/checkout/v2/pay", &token, &order("F-429", 10_000)).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("TOO_MANY_REQUESTS")));
    assert!(sim.transaction("F-429").is_none(), "a forced answer records nothing");

    sim.set_faults("F-500B", Faults::server_error_before()).unwrap();
    assert_eq!(rig.post("/checkout/v2/pay", &token, &order("F-500B", 10_000)).await.0, 500);
    assert!(sim.transaction("F-500B").is_none());
    sim.set_faults("F-500A", Faults::server_error_after().only(&[Operation::Pay])).unwrap();
    assert_eq!(rig.post("/checkout/v2/pay", &token, &order("F-500A", 10_000)).await.0, 500);
    assert!(sim.transaction("F-500A").is_some(), "done, then 500");
    assert_eq!(rig.order_status(&token, "F-500A").await.0, 200, "the fault was for pay only");

    sim.set_faults("F-GARBAGE", Faults::garbage().only(&[Operation::Status])).unwrap();
    rig.post("/checkout/v2/pay", &token, &order("F-GARBAGE", 10_000)).await;
    let resp = rig.http.get(rig.url("/checkout/v2/order/F-GARBAGE/status")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().starts_with("<html>"));
    assert_eq!(sim.calls(Operation::Status, "F-GARBAGE"), 1);

    let mut forced = Faults::force("INTERNAL_SERVER_ERROR").only(&[Operation::Status]);
    forced.force = Some(ForcedAnswer { http_status: Some(503), ..ForcedAnswer::code("INTERNAL_SERVER_ERROR") });
    sim.set_faults("F-503", forced).unwrap();
    assert_eq!(rig.order_status(&token, "F-503").await.0, 503);

    // callbacks: dropped, duplicated, late success
    sim.set_faults("F-DROP", Faults::callbacks_dropped()).unwrap();
    rig.post("/checkout/v2/pay", &token, &order("F-DROP", 10_000)).await;
    sim.complete("F-DROP", Outcome::Success).await.unwrap();
    let log = sim.callbacks_for("F-DROP");
    assert_eq!((log.len(), log[0].result), (1, DeliveryResult::Dropped));
    assert_eq!(rig.order_status(&token, "F-DROP").await.1["state"], "COMPLETED");

    sim.set_faults("F-DUP", Faults::callbacks_duplicated(1)).unwrap();
    rig.post("/checkout/v2/pay", &token, &order("F-DUP", 10_000)).await;
    sim.complete("F-DUP", Outcome::Success).await.unwrap();
    let hooks = rig.wait_hooks("F-DUP", 2).await;
    assert_eq!(hooks[0].body, hooks[1].body);

    sim.set_faults("F-LATE", Faults::late_success(50)).unwrap();
    rig.post("/checkout/v2/pay", &token, &order("F-LATE", 10_000)).await;
    sim.complete("F-LATE", Outcome::Declined).await.unwrap();
    let hooks = rig.wait_hooks("F-LATE", 2).await;
    let events: Vec<&str> = hooks.iter().map(|h| h.body["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["checkout.order.failed", "checkout.order.completed"]);
    assert_eq!(rig.order_status(&token, "F-LATE").await.1["state"], "COMPLETED");

    // a refund stuck in PENDING: never accepted, never settled
    rig.paid(&token, "F-PAID").await;
    sim.set_faults("F-STUCK", Faults::stuck_pending()).unwrap();
    assert_eq!(rig.post("/payments/v2/refund", &token, &refund("F-STUCK", "F-PAID", 100)).await.0, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rig.refund_status(&token, "F-STUCK").await.1["state"], "PENDING");
    assert!(rig.hooks_for("F-STUCK").is_empty());
}

#[tokio::test]
async fn v1_and_v2_keep_to_their_own_records() {
    let rig = Rig::start().await;
    let token = rig.token().await;
    rig.paid(&token, "SHARED-1").await;
    // v1 status of a v2 order: not found
    let path = parkpay_gateway::phonepe_v1::wire::status_path("PGTESTPAYUAT", "SHARED-1");
    let keys = parkpay_checksum::SaltKeys::single(
        parkpay_checksum::SaltIndex::new(1),
        parkpay_checksum::SaltKey::new(parkpay_simulator::SANDBOX_SALT_KEY).unwrap(),
    );
    let xv = keys.sign(parkpay_checksum::Message::Path { path: &path }).to_string();
    let resp = rig.http.get(rig.url(&path)).header("x-verify", xv).header("x-merchant-id", "PGTESTPAYUAT").send();
    assert_eq!(resp.await.unwrap().status().as_u16(), 404);
    // the control API reaches v2 ids
    let t: Value = rig.http.get(rig.url("/_sim/payments/SHARED-1")).send().await.unwrap().json().await.unwrap();
    assert_eq!((t["state"].as_str(), t["instrument"].as_str()), (Some("COMPLETED"), Some("PG_CHECKOUT")));
    let v: Value = rig.http.get(rig.url("/_sim/v2/orders/SHARED-1")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["state"], "COMPLETED");
    assert_eq!(rig.http.get(rig.url("/_sim/v2/refunds/SHARED-1")).send().await.unwrap().status().as_u16(), 404);
    // reset forgets tokens
    rig.sim().reset();
    assert_eq!(rig.order_status(&token, "SHARED-1").await.0, 401);
    assert_eq!(rig.sim().token_requests(), 0);
}

#[test]
fn binary_reads_the_v2_settings() {
    let out = Command::new(env!("CARGO_BIN_EXE_parkpay-simulator"))
        .env("PHONEPE_CLIENT_VERSION", "one")
        .env("PHONEPE_CLIENT_SECRET", "do-not-print-me")
        .env("PHONEPE_WEBHOOK_PASSWORD", "do-not-print-me-either")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().filter(|l| !l.trim().is_empty()).count(), 1, "{err}");
    assert!(err.contains("PHONEPE_CLIENT_VERSION"), "{err}");
    assert!(!err.contains("do-not-print-me"));

    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_parkpay-simulator"))
        .env("PARKPAY_SIM_ADDR", "127.0.0.1:0")
        .env("PHONEPE_CLIENT_ID", "TEST-CLIENT-9")
        .env("PHONEPE_CLIENT_SECRET", "do-not-print-me")
        .env("PHONEPE_WEBHOOK_URL", "http://127.0.0.1:9/hook")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    child.kill().ok();
    child.wait().ok();
    read.unwrap();
    assert!(line.contains("v2 client TEST-CLIENT-9") && line.contains("http://127.0.0.1:9/hook"), "{line}");
    assert!(!line.contains("do-not-print-me"));
}
