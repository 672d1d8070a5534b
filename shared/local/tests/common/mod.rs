//! Shared by the HTTP-level test suites: a local server on either store, a client, helpers.
#![allow(dead_code)]

pub mod capture;

use std::collections::HashMap;
use std::time::Duration;

use parkpay_local::LocalServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub struct Env {
    pub server: LocalServer,
    pub http: reqwest::Client,
    pub base: String,
    pub _dir: tempfile::TempDir,
}

pub fn settings(dir: &std::path::Path) -> HashMap<String, String> {
    HashMap::from([
        ("PARKPAY_ADDR".into(), "127.0.0.1:0".into()),
        ("PARKPAY_DATA_DIR".into(), dir.display().to_string()),
        ("PARKPAY_JWT_SECRET".into(), "e2e-test-secret-0123456789".into()),
        ("PARKPAY_SIM_REFUND_SETTLE_MS".into(), "50".into()),
        // Short enough for the fault tests (a 3 s hang is a timeout), long enough for the rest.
        ("PHONEPE_READ_TIMEOUT_MS".into(), "2500".into()),
        // Tests drive reconciliation themselves, with a compressed clock.
        ("PARKPAY_RECONCILE_EVERY_MS".into(), "0".into()),
    ])
}

pub async fn start_with(dir: tempfile::TempDir, store: Option<parkpay_api::Stores>) -> Env {
    start_with_env(dir, store, &[]).await
}

/// [`start_with`], with extra settings (e.g. shorter PhonePe timeouts).
pub async fn start_with_env(dir: tempfile::TempDir, store: Option<parkpay_api::Stores>, extra: &[(&str, &str)]) -> Env {
    let mut map = settings(dir.path());
    for (k, v) in extra {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    let server = parkpay_local::start_with_store(&|k| map.get(k).cloned(), store).await.expect("local server starts");
    let base = server.base_url.as_str().trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Env { server, http, base, _dir: dir }
}

pub async fn embedded() -> Env {
    start_with(tempfile::tempdir().unwrap(), None).await
}

pub async fn dynamodb() -> Option<Env> {
    dynamodb_with_stores().await.map(|(env, _)| env)
}

/// The settings of a deployment on PhonePe's PG v2 (`PHONEPE_API_VERSION=v2`; the simulator's
/// v2 client and webhook credentials by default, webhooks sent to our callback route).
pub const V2: &[(&str, &str)] = &[("PHONEPE_API_VERSION", "v2")];

/// [`embedded`] on PG v2.
pub async fn embedded_v2() -> Env {
    start_with_env(tempfile::tempdir().unwrap(), None, V2).await
}

/// [`dynamodb`] on PG v2.
pub async fn dynamodb_v2() -> Option<Env> {
    let stores = dynamodb_stores().await?;
    Some(start_with_env(tempfile::tempdir().unwrap(), Some(stores), V2).await)
}

pub fn hex_id() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Env {
    /// The PhonePe API new payments use: `v1` or `v2`.
    pub fn api(&self) -> &'static str {
        self.server.state.gateways.api().as_str()
    }

    pub fn token(&self, sub: &str) -> String {
        self.server.token(sub, false)
    }

    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.parse().unwrap(), url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_owned());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text:?}"));
        (status, value)
    }

    pub async fn book(&self, token: &str) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/api/sessions/",
                Some(token),
                Some(r#"{"lot_id":"MG-ROAD-1","vehicle_number":"ka01ab1234","hours":2}"#),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["amount"], "100.00");
        assert_eq!(v["vehicle_number"], "KA-01-AB-1234");
        assert_eq!(v["status"], "PENDING_PAYMENT");
        v["session_id"].as_str().unwrap().to_owned()
    }

    pub async fn create_payment(&self, token: &str, sid: &str) -> Value {
        let (s, v) = self
            .call(
                "POST",
                "/api/payment/phonepe/create/",
                Some(token),
                Some(&json!({"session_id": sid, "amount": 100.00}).to_string()),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["status"], "PENDING");
        v
    }

    /// What a person does on the simulator's pay page; PhonePe then calls our callback.
    pub async fn pay(&self, payment: &Value, outcome: &str) {
        let url = payment["redirect_url"].as_str().expect("redirect_url");
        let resp = self.http.post(url).form(&[("outcome", outcome)]).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    }

    pub async fn session(&self, token: &str, sid: &str) -> Value {
        let (s, v) = self.call("GET", &format!("/api/sessions/{sid}/"), Some(token), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    pub async fn wait_for_status(&self, token: &str, sid: &str, status: &str) -> Value {
        for _ in 0..200 {
            let v = self.session(token, sid).await;
            if v["status"] == status {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("session {sid} never became {status}: {}", self.session(token, sid).await);
    }
}

/// A PhonePe v1 callback for `txn` signed with `salt` (the simulator's, i.e. ours, unless forging):
/// the JSON body and the `X-VERIFY` value.
pub fn signed_callback(salt: &str, txn: &str, code: &str, state: &str, amount: u64) -> (Vec<u8>, String) {
    let keys = parkpay_checksum::SaltKeys::single(
        parkpay_checksum::SaltIndex::new(1),
        parkpay_checksum::SaltKey::new(salt).unwrap(),
    );
    let envelope: parkpay_gateway::phonepe_v1::wire::Envelope<parkpay_gateway::phonepe_v1::wire::StatusData> =
        serde_json::from_value(json!({"success": code == "PAYMENT_SUCCESS", "code": code, "message": "m", "data": {
            "merchantId": "PGTESTPAYUAT", "merchantTransactionId": txn, "transactionId": "T-1",
            "amount": amount, "state": state, "responseCode": "SUCCESS"}}))
        .unwrap();
    let (body, x_verify) = parkpay_gateway::phonepe_v1::sign_callback(&keys, &envelope);
    (body, x_verify.to_string())
}

impl Env {
    /// POST a callback; the status and the JSON answer.
    pub async fn post_callback(&self, body: &[u8], x_verify: Option<&str>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}/api/payment/callback/phonepe/", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(x) = x_verify {
            req = req.header("X-VERIFY", x);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    /// The genuine notice PhonePe sends when payment `txn` of 100.00 succeeds, on this
    /// deployment's API: a v1 callback signed with the salt key (`X-VERIFY`), or a v2
    /// `checkout.order.completed` webhook with the webhook `Authorization`. Its header name and
    /// value, and its body.
    pub fn genuine_success_notice(&self, txn: &str) -> ((&'static str, String), Vec<u8>) {
        if self.api() == "v1" {
            let (body, x) =
                signed_callback(parkpay_api::config::SIM_SALT_KEY, txn, "PAYMENT_SUCCESS", "COMPLETED", 10_000);
            (("X-VERIFY", x), body)
        } else {
            let body = json!({"event": "checkout.order.completed", "payload": {
                "merchantId": parkpay_api::config::SIM_MERCHANT_ID, "merchantOrderId": txn, "orderId": format!("OMO{txn}"),
                "state": "COMPLETED", "amount": 10_000,
                "paymentDetails": [{"transactionId": format!("OM{txn}"), "paymentMode": "UPI_QR", "state": "COMPLETED", "amount": 10_000}]
            }});
            (("Authorization", self.server.simulator.webhook_authorization()), serde_json::to_vec(&body).unwrap())
        }
    }

    /// POST a notice to the callback route with its authentication header.
    pub async fn post_notice(&self, header: &(&str, String), body: &[u8]) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/api/payment/callback/phonepe/", self.base))
            .header("content-type", "application/json")
            .header(header.0, header.1.as_str())
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }
}

/// A clock that starts now and moves only when told.
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl parkpay_api::Clock for ManualClock {
    fn now(&self) -> parkpay_domain::Timestamp {
        parkpay_domain::Timestamp::from_unix_millis(self.0.load(std::sync::atomic::Ordering::SeqCst)).unwrap()
    }
}

/// A reconciler on the server's state whose clock starts now and jumps when told, while the API
/// and PhonePe (the simulator) run in real time.
pub struct Rec {
    clock: std::sync::Arc<ManualClock>,
    start: i64,
    pub reconciler: parkpay_api::reconcile::Reconciler,
}

impl Rec {
    pub fn new(env: &Env) -> Self {
        use parkpay_api::Clock;
        let start = parkpay_api::SystemClock.now().unix_millis();
        let clock = std::sync::Arc::new(ManualClock(std::sync::atomic::AtomicI64::new(start)));
        let mut state = env.server.state.clone();
        state.clock = clock.clone();
        Rec { clock, start, reconciler: parkpay_api::reconcile::Reconciler::new(state) }
    }

    /// Set the reconciler's clock to `secs` after it was made, and tick.
    pub async fn at(&self, secs: i64) -> parkpay_api::reconcile::TickReport {
        self.clock.0.store(self.start + secs * 1000, std::sync::atomic::Ordering::SeqCst);
        self.reconciler.tick().await
    }
}

/// Generate one test per scenario, store and PhonePe API: `embedded_store::NAME`,
/// `dynamodb_local::NAME` (PG v1), `embedded_store_v2::NAME` and `dynamodb_local_v2::NAME` (PG
/// v2), for scenarios that hold on either API.
#[allow(unused_macros)]
macro_rules! on_both_stores_and_apis {
    ($($name:ident),* $(,)?) => {
        on_both_stores!($($name),*);
        mod embedded_store_v2 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::embedded_v2().await).await; })*
        }
        mod dynamodb_local_v2 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { if let Some(env) = $crate::common::dynamodb_v2().await { super::$name(env).await; } })*
        }
    };
}

/// Generate one test per scenario and store: `embedded_store::NAME` and `dynamodb_local::NAME`.
#[allow(unused_macros)]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::embedded().await).await; })*
        }
        mod dynamodb_local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { if let Some(env) = $crate::common::dynamodb().await { super::$name(env).await; } })*
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Shared by the gateway-failure and contradicting-callback matrices (and any suite that wants
// them): an operator, POSTs with an Idempotency-Key, waiting, the money check, a callback from
// another merchant, and a twin server whose PhonePe is a port where nothing listens.

/// An operator's token (sees every session).
pub fn operator(env: &Env) -> String {
    env.server.token("operator-1", true)
}

impl Env {
    /// POST `body` as JSON with an optional `Idempotency-Key`: the status, the headers and the
    /// JSON answer.
    pub async fn post_keyed(
        &self,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: &Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await.expect("request");
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("POST {path}: not JSON: {text:?}"));
        (status, headers, value)
    }
}

/// A session of `token`'s driver, paid through the simulator's pay page: its id and payment.
pub async fn paid_session(env: &Env, token: &str) -> (String, Value) {
    let sid = env.book(token).await;
    let p = env.create_payment(token, &sid).await;
    env.pay(&p, "success").await;
    env.wait_for_status(token, &sid, "PAID").await;
    (sid, p)
}

/// Wait (up to 10 s) until `check` holds for the session, as an operator sees it.
pub async fn wait_session(env: &Env, sid: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let op = operator(env);
    for _ in 0..400 {
        let s = env.session(&op, sid).await;
        if check(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("session {sid} never reached: {what}: {}", env.session(&op, sid).await);
}

/// Wait (up to 10 s) until `check` holds.
pub async fn wait_until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..1000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

/// `"12.34"` as paise.
pub fn paise(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or("0.00");
    let (r, p) = s.split_once('.').unwrap();
    r.parse::<i64>().unwrap() * 100 + p.parse::<i64>().unwrap()
}

/// For one session as the API shows it: `(ours, PhonePe's)`, each `(paid, refunded)` in paise:
/// ours from the payments and refunds we hold SUCCESS, PhonePe's from the simulator's completed
/// payments of the session and completed refunds of them.
pub fn money_of(s: &Value, sim: &[parkpay_simulator::Transaction]) -> ((i64, i64), (i64, i64)) {
    use parkpay_simulator::{SimState, TxnKind};
    let sum = |list: &str| -> i64 {
        s[list].as_array().unwrap().iter().filter(|x| x["status"] == "SUCCESS").map(|x| paise(&x["amount"])).sum()
    };
    let ids: Vec<String> =
        s["payments"].as_array().unwrap().iter().map(|p| p["merchant_txn_id"].as_str().unwrap().to_owned()).collect();
    let sim_paid: i64 = sim
        .iter()
        .filter(|t| t.kind == TxnKind::Payment && ids.contains(&t.merchant_transaction_id))
        .filter(|t| t.state == SimState::Completed)
        .map(|t| t.amount as i64)
        .sum();
    let sim_refunded: i64 = sim
        .iter()
        .filter(|t| t.kind == TxnKind::Refund && t.state == SimState::Completed)
        .filter(|t| t.original_transaction_id.as_ref().is_some_and(|o| ids.contains(o)))
        .map(|t| t.amount as i64)
        .sum();
    ((sum("payments"), sum("refunds")), (sim_paid, sim_refunded))
}

/// For every session: our paid − refunded (from the payments and refunds we hold SUCCESS)
/// equals the simulator's completed payments − completed refunds of those payments; and our
/// session's own `paid − refunded` never exceeds it.
pub async fn assert_money(env: &Env, sessions: &[String]) {
    let op = operator(env);
    let sim = env.server.simulator.transactions();
    for sid in sessions {
        let s = env.session(&op, sid).await;
        let (ours, phonepe) = money_of(&s, &sim);
        assert_eq!(ours, phonepe, "session {sid}: ours (paid, refunded) vs PhonePe's: {s}");
        assert!(paise(&s["paid"]) - paise(&s["refunded"]) <= ours.0 - ours.1, "{s}");
    }
}

/// [`signed_callback`] naming merchant `merchant` (validly signed with `salt` all the same).
pub fn signed_callback_from(
    salt: &str,
    merchant: &str,
    txn: &str,
    code: &str,
    state: &str,
    amount: u64,
) -> (Vec<u8>, String) {
    let keys = parkpay_checksum::SaltKeys::single(
        parkpay_checksum::SaltIndex::new(1),
        parkpay_checksum::SaltKey::new(salt).unwrap(),
    );
    let envelope: parkpay_gateway::phonepe_v1::wire::Envelope<parkpay_gateway::phonepe_v1::wire::StatusData> =
        serde_json::from_value(json!({"success": code == "PAYMENT_SUCCESS", "code": code, "message": "m", "data": {
            "merchantId": merchant, "merchantTransactionId": txn, "transactionId": "T-1",
            "amount": amount, "state": state, "responseCode": "SUCCESS"}}))
        .unwrap();
    let (body, x_verify) = parkpay_gateway::phonepe_v1::sign_callback(&keys, &envelope);
    (body, x_verify.to_string())
}

/// `http://127.0.0.1:PORT/` where nothing listens: a port below Linux's ephemeral range (32768
/// and up), so that no server of a concurrent test (they all bind port 0) can take it meanwhile,
/// and where a connection is refused now.
pub fn closed_port_url() -> String {
    let mut seed = [0u8; 2];
    getrandom::fill(&mut seed).unwrap();
    let start = 20_000 + u16::from_le_bytes(seed) % 10_000;
    for port in (start..30_000).chain(20_000..start) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return format!("http://127.0.0.1:{port}/");
            }
            _ => continue,
        }
    }
    panic!("no closed port found in 20000-29999");
}

/// A server on a fresh embedded store, and the store's handles (for a twin server on it).
pub async fn embedded_with_stores() -> (Env, parkpay_api::Stores) {
    let dir = tempfile::tempdir().unwrap();
    let db = parkpay_store::embedded::EmbeddedStore::open(&dir.path().join("parkpay.redb")).expect("embedded store");
    let stores = parkpay_api::Stores::new(db);
    (start_with(dir, Some(stores.clone())).await, stores)
}

/// Stores on a fresh table of the DynamoDB Local at `PARKPAY_DYNAMODB_ENDPOINT`; `None` (and a
/// note) with `PARKPAY_SKIP_DYNAMODB=1`, a panic without either.
pub async fn dynamodb_stores() -> Option<parkpay_api::Stores> {
    let Ok(endpoint) = std::env::var("PARKPAY_DYNAMODB_ENDPOINT") else {
        if std::env::var("PARKPAY_SKIP_DYNAMODB").as_deref() == Ok("1") {
            eprintln!("SKIPPED: DynamoDB end-to-end test (PARKPAY_SKIP_DYNAMODB=1)");
            return None;
        }
        panic!("PARKPAY_DYNAMODB_ENDPOINT is not set: run scripts/test.sh, which starts DynamoDB Local");
    };
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(aws_sdk_dynamodb::config::Region::new("ap-south-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("e2e", "e2e", None, None, "e2e"))
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    let table = format!("e2e-{}", hex_id());
    parkpay_store::dynamo::create_table(&client, &table).await.expect("create table in DynamoDB Local");
    Some(parkpay_api::Stores::new(parkpay_store::dynamo::DynamoStore::new(client, table)))
}

/// [`dynamodb`], keeping the store's handles (for a twin server on the same table).
pub async fn dynamodb_with_stores() -> Option<(Env, parkpay_api::Stores)> {
    let stores = dynamodb_stores().await?;
    Some((start_with(tempfile::tempdir().unwrap(), Some(stores.clone())).await, stores))
}

/// A second server on `stores` (the same tables, and the same JWT secret, so the same tokens
/// and Idempotency-Keys work on both), whose PhonePe is a port where nothing listens: every
/// PhonePe call it makes is refused before anything is sent ("connection refused").
pub async fn unreachable_twin(stores: &parkpay_api::Stores) -> Env {
    unreachable_twin_on(stores, "v1").await
}

/// [`unreachable_twin`] on PhonePe API `api` (`v1` or `v2`).
pub async fn unreachable_twin_on(stores: &parkpay_api::Stores, api: &str) -> Env {
    let url = closed_port_url();
    let extra = [("PHONEPE_SIMULATOR_URL", url.as_str()), ("PHONEPE_API_VERSION", api)];
    start_with_env(tempfile::tempdir().unwrap(), Some(stores.clone()), &extra).await
}

/// [`embedded_with_stores`] on PG v2.
pub async fn embedded_with_stores_v2() -> (Env, parkpay_api::Stores) {
    let dir = tempfile::tempdir().unwrap();
    let db = parkpay_store::embedded::EmbeddedStore::open(&dir.path().join("parkpay.redb")).expect("embedded store");
    let stores = parkpay_api::Stores::new(db);
    (start_with_env(dir, Some(stores.clone()), V2).await, stores)
}

/// [`dynamodb_with_stores`] on PG v2.
pub async fn dynamodb_with_stores_v2() -> Option<(Env, parkpay_api::Stores)> {
    let stores = dynamodb_stores().await?;
    Some((start_with_env(tempfile::tempdir().unwrap(), Some(stores.clone()), V2).await, stores))
}

/// [`on_both_stores_with_stores`] on both PhonePe APIs (modules as [`on_both_stores_and_apis`]).
#[allow(unused_macros)]
macro_rules! on_both_stores_and_apis_with_stores {
    ($($name:ident),* $(,)?) => {
        on_both_stores_with_stores!($($name),*);
        mod embedded_store_v2 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (env, stores) = $crate::common::embedded_with_stores_v2().await;
                super::$name(env, stores).await;
            })*
        }
        mod dynamodb_local_v2 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some((env, stores)) = $crate::common::dynamodb_with_stores_v2().await {
                    super::$name(env, stores).await;
                }
            })*
        }
    };
}

/// [`on_both_stores`] for scenarios that also need the store's handles:
/// `async fn NAME(env: Env, stores: parkpay_api::Stores)`.
#[allow(unused_macros)]
macro_rules! on_both_stores_with_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (env, stores) = $crate::common::embedded_with_stores().await;
                super::$name(env, stores).await;
            })*
        }
        mod dynamodb_local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some((env, stores)) = $crate::common::dynamodb_with_stores().await {
                    super::$name(env, stores).await;
                }
            })*
        }
    };
}
