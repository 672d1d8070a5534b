//! Soak (issue 9): many payments and refunds through the local server at once, with random
//! faults from the PhonePe simulator (timeouts, 5xx before and after, garbage, rate limits,
//! refusals, dropped, duplicated and delayed callbacks, late successes, payments stuck PENDING,
//! failing refunds), parkpay's clock jumping ahead under load (`POST /_dev/clock/advance`) and a
//! second reconciler ticking beside it; then every fault is cleared and reconciliation runs until
//! quiet (no obligation open). Then, for every session: what we hold as paid and refunded equals
//! what the simulator holds, every payment and refund agrees with PhonePe's state, and money we
//! hold beyond what the session keeps is exactly what is still owed (an automatic refund in
//! flight or needing a person, an excess refund needing a person). Prints a table.
//!
//! Size and seed from the environment (defaults: the CI size, well under a minute in a debug
//! build on two cores):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `PARKPAY_SOAK_PAYMENTS` | create-payment requests with a new key (first attempts and new attempts after a failure) | 200 (embedded), 60 (DynamoDB Local) |
//! | `PARKPAY_SOAK_REFUNDS` | refund requests | 50 (embedded), 15 (DynamoDB Local) |
//! | `PARKPAY_SOAK_SEED` | the seed of every random choice (printed; set it to replay a run's choices) | random |
//! | `PARKPAY_SOAK_CONCURRENCY` | sessions driven at once | 32 |
//! | `PARKPAY_SOAK_STORES` | `embedded`, `dynamodb` or both, comma separated | both |
//!
//! DynamoDB Local is used as the other suites use it (`PARKPAY_DYNAMODB_ENDPOINT`; without it
//! the run fails unless `PARKPAY_SKIP_DYNAMODB=1`). The full run is `bash scripts/soak.sh`
//! (release build, 2,000 payments and 500 refunds on both stores).
//!
//! Replaying a seed replays every choice the harness makes (which faults, which outcomes, which
//! amounts, when the clock jumps); the interleaving of concurrent requests is the machine's.

#[allow(unused_macros)]
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Env, paise};
use parkpay_api::Clock;
use parkpay_api::reconcile::Reconciler;
use parkpay_domain::{ObligationKind, ObligationState, SYSTEM_USER, SessionId};
use parkpay_simulator::{
    CallbackFaults, DeliveryResult, Faults, ForcedAnswer, Operation, ServerError, SimState, Transaction, TxnKind,
};
use serde_json::{Value, json};

/// PhonePe client read timeout on the soak's server; a `hang` fault sleeps longer than this.
const READ_TIMEOUT_MS: u64 = 1_000;
/// How long the simulator keeps a refund PENDING (a per-refund fault set right after the refund
/// request answers still lands before it settles).
const REFUND_SETTLE_MS: u64 = 150;
/// Reconciling until quiet gives up after this many passes (and fails the run).
const MAX_DRAIN_PASSES: usize = 50_000;
/// … or this much simulated time (the longest obligation, a FAILED payment's watch for a late
/// success, lasts 48 hours).
const MAX_DRAIN_SIMULATED: Duration = Duration::from_secs(7 * 24 * 3600);
/// Reconciling until quiet ticks at least once every five simulated minutes while something is
/// due, and skips empty stretches. (The schedule's ticks in between would find PhonePe as
/// settled as this one: every fault is cleared by then.)
const DRAIN_STEP: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------------------------------------
// Seeded randomness (SplitMix64): every choice of the harness, reproducible from the seed.

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    /// Stream `stream` of `seed`: each session, the fault weather and the clock have their own,
    /// so a choice does not depend on how requests interleave.
    fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// An index into `weights`, with those odds.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let mut x = self.next() % weights.iter().sum::<u64>();
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    fn ops(&mut self) -> Vec<Operation> {
        let all = [Operation::Pay, Operation::Status, Operation::Refund];
        let mask = self.range(1, 7);
        all.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, o)| *o).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Embedded,
    DynamoDb,
}

impl StoreKind {
    fn label(self) -> &'static str {
        match self {
            StoreKind::Embedded => "embedded (redb)",
            StoreKind::DynamoDb => "DynamoDB Local",
        }
    }
}

#[derive(Debug, Clone)]
struct Config {
    seed: u64,
    payments: Option<usize>,
    refunds: Option<usize>,
    concurrency: usize,
    stores: Vec<StoreKind>,
}

fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok().filter(|v| !v.trim().is_empty())?;
    Some(v.trim().parse().unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}")))
}

impl Config {
    fn from_env() -> Self {
        let seed = env_number("PARKPAY_SOAK_SEED").unwrap_or_else(|| {
            let mut b = [0u8; 8];
            getrandom::fill(&mut b).unwrap();
            u64::from_le_bytes(b) >> 12
        });
        let stores = match std::env::var("PARKPAY_SOAK_STORES") {
            Ok(s) if !s.trim().is_empty() => s
                .split(',')
                .map(|s| match s.trim() {
                    "embedded" => StoreKind::Embedded,
                    "dynamodb" => StoreKind::DynamoDb,
                    other => panic!("PARKPAY_SOAK_STORES: unknown store {other:?} (embedded, dynamodb)"),
                })
                .collect(),
            _ => vec![StoreKind::Embedded, StoreKind::DynamoDb],
        };
        Config {
            seed,
            payments: env_number("PARKPAY_SOAK_PAYMENTS").map(|n| n as usize),
            refunds: env_number("PARKPAY_SOAK_REFUNDS").map(|n| n as usize),
            concurrency: env_number("PARKPAY_SOAK_CONCURRENCY").map_or(32, |n| n.max(1) as usize),
            stores,
        }
    }

    /// The CI size unless the environment names one: smaller on DynamoDB Local, whose every
    /// call is a round trip to a Java process.
    fn size(&self, store: StoreKind) -> (usize, usize) {
        let (p, r) = match store {
            StoreKind::Embedded => (200, 50),
            StoreKind::DynamoDb => (60, 15),
        };
        (self.payments.unwrap_or(p), self.refunds.unwrap_or(r))
    }
}

fn settings() -> Vec<(&'static str, String)> {
    vec![
        ("PHONEPE_READ_TIMEOUT_MS", READ_TIMEOUT_MS.to_string()),
        ("PARKPAY_SIM_REFUND_SETTLE_MS", REFUND_SETTLE_MS.to_string()),
        // Reconciliation is driven by the soak: clock advances through the dev endpoint, a
        // second reconciler, then reconciling until quiet.
        ("PARKPAY_RECONCILE_EVERY_MS", "0".into()),
    ]
}

async fn start(store: StoreKind) -> Option<Env> {
    let extra = settings();
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    match store {
        StoreKind::Embedded => Some(common::start_with_env(dir, None, &extra).await),
        StoreKind::DynamoDb => {
            let stores = common::dynamodb_stores().await?;
            Some(common::start_with_env(dir, Some(stores), &extra).await)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The load

struct Paid {
    token: String,
    txn: String,
    amount: u64,
    index: usize,
}

struct Soak {
    env: Env,
    seed: u64,
    started: Instant,
    payments_left: AtomicI64,
    refunds_left: AtomicI64,
    /// Chance that a paid session asks for a first refund during the load.
    refund_chance: f64,
    next_session: AtomicUsize,
    sessions: Mutex<Vec<String>>,
    paid: Mutex<Vec<Paid>>,
    lots: Vec<String>,
    operator: String,
    /// "endpoint status code" → count.
    answers: Mutex<BTreeMap<String, u64>>,
    unexpected: Mutex<Vec<String>>,
    payment_requests: AtomicU64,
    refund_requests: AtomicU64,
    faults_set: Mutex<BTreeMap<&'static str, u64>>,
    /// Milliseconds since `started` after which no fault timer of the simulator (late success,
    /// delayed callback) is still running.
    timers_until_ms: AtomicU64,
    stop: AtomicBool,
}

/// An answer no client of ours should ever get: a transport failure, a 5xx other than the
/// documented gateway ones, or 400, 401, 403, 404, 422 (every request is well formed and about
/// the caller's own session).
fn never_expected(status: u16, code: &str) -> bool {
    let documented_5xx =
        matches!(code, "GATEWAY_REJECTED" | "GATEWAY_UNAVAILABLE" | "GATEWAY_OUTCOME_UNKNOWN" | "GATEWAY_BUSY");
    status == 0 || (status >= 500 && !documented_5xx) || matches!(status, 400 | 401 | 403 | 404 | 422)
}

enum PayEnd {
    Paid(String),
    Failed,
    Open,
}

impl Soak {
    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn timer(&self, ms: u64) {
        self.timers_until_ms.fetch_max(self.elapsed_ms() + ms, Ordering::SeqCst);
    }

    fn take(counter: &AtomicI64) -> bool {
        counter.fetch_sub(1, Ordering::SeqCst) > 0
    }

    fn fault(&self, name: &'static str) {
        *self.faults_set.lock().unwrap().entry(name).or_default() += 1;
    }

    fn unexpected(&self, what: String) {
        eprintln!("soak: unexpected: {what}");
        self.unexpected.lock().unwrap().push(what);
    }

    /// One API request; records the answer's status and code, and as unexpected a transport
    /// error or an answer [`never_expected`].
    async fn req(
        &self,
        endpoint: &str,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .env
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.env.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let (status, v) = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                match serde_json::from_str::<Value>(&text) {
                    Ok(v) => (status, v),
                    Err(_) => {
                        self.unexpected(format!("{endpoint}: {status} answer is not JSON: {text:.200}"));
                        return (status, Value::Null);
                    }
                }
            }
            Err(e) => {
                self.unexpected(format!("{endpoint}: request failed: {e}"));
                return (0, Value::Null);
            }
        };
        let code = v["error"]["code"].as_str().unwrap_or("").to_owned();
        *self
            .answers
            .lock()
            .unwrap()
            .entry(format!("{endpoint} {status} {code}").trim_end().to_owned())
            .or_default() += 1;
        if never_expected(status, &code) {
            self.unexpected(format!("{endpoint} {path}: {status} {v}"));
        }
        (status, v)
    }

    async fn session_view(&self, sid: &str) -> Option<Value> {
        let (s, v) =
            self.req("get-session", "GET", &format!("/api/sessions/{sid}/"), &self.operator, Value::Null, None).await;
        (s == 200).then_some(v)
    }

    /// One session: book, pay (again after a failure, sometimes), maybe refund.
    async fn session(self: &Arc<Self>, i: usize) {
        let mut rng = Rng::new(self.seed, 1_000 + i as u64);
        let user = format!("soak-driver-{}", i % 97);
        let token = self.env.token(&user);
        let lot = &self.lots[rng.range(0, self.lots.len() as u64 - 1) as usize];
        let body = json!({
            "lot_id": lot,
            "vehicle_number": format!("ka{:02}ab{:04}", rng.range(1, 99), rng.range(1, 9_999)),
            "hours": rng.range(1, 4),
        });
        let (s, v) = self.req("book", "POST", "/api/sessions/", &token, body, None).await;
        if s != 201 {
            if !never_expected(s, v["error"]["code"].as_str().unwrap_or("")) {
                self.unexpected(format!("book: {s} {v}"));
            }
            return;
        }
        let sid = v["session_id"].as_str().unwrap().to_owned();
        let amount = paise(&v["amount"]) as u64;
        self.sessions.lock().unwrap().push(sid.clone());
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.pay(&mut rng, &token, &sid, amount, i, attempt).await {
                PayEnd::Paid(txn) => {
                    let paid = Paid { token, txn, amount, index: i };
                    if rng.chance(self.refund_chance) {
                        self.refunds(&mut rng, &paid).await;
                    }
                    self.paid.lock().unwrap().push(paid);
                    return;
                }
                PayEnd::Failed if rng.chance(0.75) && Self::take(&self.payments_left) => continue,
                _ => return,
            }
        }
    }

    /// One payment attempt (one new key), the payer's choice, and what the app does after.
    async fn pay(&self, rng: &mut Rng, token: &str, sid: &str, amount: u64, i: usize, attempt: usize) -> PayEnd {
        let key = rng.chance(0.75).then(|| format!("soak-{}-{i}-{attempt}", self.seed));
        let body = if rng.chance(0.5) {
            json!({"session_id": sid, "amount": format!("{}.{:02}", amount / 100, amount % 100)})
        } else {
            json!({"session_id": sid})
        };
        let mut created = None;
        for _try in 0..4 {
            self.payment_requests.fetch_add(1, Ordering::SeqCst);
            let (s, v) = self
                .req("create-payment", "POST", "/api/payment/phonepe/create/", token, body.clone(), key.as_deref())
                .await;
            let code = v["error"]["code"].as_str().unwrap_or("");
            match (s, code) {
                (201, _) => {
                    let txn = v["merchant_txn_id"].as_str().unwrap().to_owned();
                    created = Some((txn, v["redirect_url"].as_str().map(str::to_owned)));
                    break;
                }
                (503, "GATEWAY_BUSY") if rng.chance(0.8) => {}
                (503, "GATEWAY_OUTCOME_UNKNOWN") if key.is_some() && rng.chance(0.6) => {}
                (503, "GATEWAY_OUTCOME_UNKNOWN") => return self.unknown_payment(rng, token, sid).await,
                (502, _) | (503, "GATEWAY_UNAVAILABLE") => return PayEnd::Failed,
                (409, "PAYMENT_FAILED") => return PayEnd::Failed,
                (409, "SESSION_ALREADY_PAID") => return self.settled(sid).await,
                _ => return PayEnd::Open,
            }
            tokio::time::sleep(Duration::from_millis(rng.range(20, 200))).await;
        }
        let Some((txn, url)) = created else { return PayEnd::Open };

        // Faults for this payment alone (they replace the global weather for it).
        let mut outcome = *[
            "success", "success", "success", "success", "success", "success", "success", "failure", "declined",
            "abandon",
        ]
        .get(rng.range(0, 9) as usize)
        .unwrap();
        // A late success or a delayed callback runs from when the payer decides.
        let mut timer_ms = 0;
        let faults = match rng.weighted(&[48, 12, 10, 6, 10, 4, 6, 4]) {
            0 => None,
            1 => Some(("callbacks dropped", Faults::callbacks_dropped())),
            2 => Some(("callbacks duplicated", Faults::callbacks_duplicated(rng.range(1, 3) as u32))),
            3 => {
                let ms = rng.range(100, 800);
                timer_ms = ms;
                Some(("callback delayed", Faults::callbacks_delayed(ms)))
            }
            4 => {
                outcome = if rng.chance(0.5) { "failure" } else { "declined" };
                let ms = rng.range(100, 1_500);
                timer_ms = ms;
                let callback = CallbackFaults {
                    drop: rng.chance(0.3),
                    out_of_order: rng.chance(0.5),
                    duplicates: rng.range(0, 1) as u32,
                    ..CallbackFaults::default()
                };
                Some(("late success", Faults { late_success_ms: Some(ms), callback, ..Faults::default() }))
            }
            5 => Some(("stuck pending", Faults::stuck_pending())),
            6 => {
                let mut f = match rng.range(0, 3) {
                    0 => Faults::server_error_before(),
                    1 => Faults::server_error_after(),
                    2 => Faults::hang(READ_TIMEOUT_MS + 300),
                    _ => Faults::garbage(),
                };
                f.operations = vec![Operation::Status];
                f.callback.drop = rng.chance(0.5);
                Some(("status API failing for the payment", f))
            }
            _ => Some((
                "slow answers",
                Faults { latency_ms: rng.range(50, 400), latency_jitter_ms: 200, ..Faults::default() },
            )),
        };
        if let Some((name, f)) = faults {
            self.env.server.simulator.set_faults(&txn, f).unwrap();
            self.fault(name);
        }
        tokio::time::sleep(Duration::from_millis(rng.range(0, 150))).await;
        if outcome == "abandon" || url.is_none() {
            return PayEnd::Open;
        }
        match self.env.http.post(url.unwrap()).form(&[("outcome", outcome)]).send().await {
            Ok(r) if r.status().as_u16() == 303 => {}
            Ok(r) => self.unexpected(format!("pay page: {}", r.status())),
            Err(e) => self.unexpected(format!("pay page: {e}")),
        }
        self.timer(timer_ms + 500);
        if rng.chance(0.35) {
            tokio::time::sleep(Duration::from_millis(rng.range(0, 100))).await;
            self.verify(token, &txn).await;
        }
        self.settled(sid).await
    }

    /// After an answer that says PhonePe may or may not have the payment: the app verifies,
    /// and sometimes the payer completes it anyway (PhonePe's page was open, or a UPI app).
    async fn unknown_payment(&self, rng: &mut Rng, token: &str, sid: &str) -> PayEnd {
        let Some(view) = self.session_view(sid).await else { return PayEnd::Open };
        let pending: Vec<String> = view["payments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["status"] == "PENDING")
            .map(|p| p["merchant_txn_id"].as_str().unwrap().to_owned())
            .collect();
        for txn in pending {
            if rng.chance(0.4) && self.env.server.simulator.transaction(&txn).is_some() {
                let outcome = if rng.chance(0.8) { "success" } else { "failure" };
                let url = format!("{}/_phonepe/_sim/payments/{txn}/complete", self.env.base);
                match self.env.http.post(url).json(&json!({"outcome": outcome})).send().await {
                    Ok(r) if r.status().is_success() || r.status().as_u16() == 409 => {}
                    Ok(r) => self.unexpected(format!("simulator complete: {}", r.status())),
                    Err(e) => self.unexpected(format!("simulator complete: {e}")),
                }
                self.timer(500);
            }
            if rng.chance(0.5) {
                self.verify(token, &txn).await;
            }
        }
        self.settled(sid).await
    }

    async fn verify(&self, token: &str, txn: &str) {
        self.req("verify", "POST", "/api/payment/phonepe/verify/", token, json!({"merchant_txn_id": txn}), None).await;
    }

    /// Where the session stands now, as the app would read it (and which payment paid it).
    async fn settled(&self, sid: &str) -> PayEnd {
        let Some(view) = self.session_view(sid).await else { return PayEnd::Open };
        let id = SessionId::parse(sid).unwrap();
        let paid_by = match self.env.server.state.store.load_session(&id).await {
            Ok(Some(b)) => b.session.paid_by().map(|p| p.as_str().to_owned()),
            _ => None,
        };
        if let Some(txn) = paid_by {
            return PayEnd::Paid(txn);
        }
        let payments = view["payments"].as_array().unwrap();
        if view["status"] == "PENDING_PAYMENT" && payments.iter().all(|p| p["status"] == "FAILED") {
            return PayEnd::Failed;
        }
        PayEnd::Open
    }

    async fn refunds(&self, rng: &mut Rng, paid: &Paid) {
        let mut n = 0;
        while Self::take(&self.refunds_left) {
            n += 1;
            if rng.chance(0.15) && Self::take(&self.refunds_left) {
                // Two at once (the driver's app and an operator, say).
                let mut other = Rng::new(rng.next(), 7);
                n += 1;
                tokio::join!(self.refund(rng, paid, n - 1), self.refund(&mut other, paid, n));
            } else {
                self.refund(rng, paid, n).await;
            }
            if n >= 3 || !rng.chance(0.3) {
                break;
            }
        }
    }

    async fn refund(&self, rng: &mut Rng, paid: &Paid, n: usize) {
        let token = if rng.chance(0.1) { self.operator.clone() } else { paid.token.clone() };
        let body = if rng.chance(0.4) {
            json!({"merchant_txn_id": paid.txn, "reason": "soak: the rest"})
        } else {
            let a = rng.range(1, paid.amount.div_ceil(100).max(1)) * 100;
            let a = a.min(paid.amount);
            json!({"merchant_txn_id": paid.txn, "amount": format!("{}.{:02}", a / 100, a % 100)})
        };
        let key = rng.chance(0.6).then(|| format!("soak-refund-{}-{}-{n}", self.seed, paid.index));
        for _try in 0..3 {
            self.refund_requests.fetch_add(1, Ordering::SeqCst);
            let (s, v) =
                self.req("refund", "POST", "/api/payment/phonepe/refund/", &token, body.clone(), key.as_deref()).await;
            match s {
                200 | 202 => {
                    if v["status"] == "PENDING" && rng.chance(0.4) {
                        let id = v["refund_id"].as_str().unwrap();
                        let (name, f) = match rng.range(0, 3) {
                            0 | 1 => ("refund fails", Faults::refund_fails()),
                            2 => ("refund callback dropped", Faults::callbacks_dropped()),
                            _ => ("refund callback duplicated", Faults::callbacks_duplicated(1)),
                        };
                        self.env.server.simulator.set_faults(id, f).unwrap();
                        self.fault(name);
                    }
                    return;
                }
                503 if key.is_some() && rng.chance(0.7) => {
                    tokio::time::sleep(Duration::from_millis(rng.range(20, 200))).await;
                }
                _ => return,
            }
        }
    }

    /// The global faults: a new "weather" every 100–600 ms, calm about half the time. Global
    /// faults apply to every id without faults of its own.
    async fn weather(self: Arc<Self>) -> u64 {
        let mut rng = Rng::new(self.seed, 1);
        let mut changes = 0;
        while !self.stop.load(Ordering::SeqCst) {
            let lasts = rng.range(100, 600);
            let (name, f) = match rng.weighted(&[45, 8, 8, 7, 5, 5, 6, 3, 4, 4, 4, 3, 2]) {
                0 => ("weather: calm", Faults::default()),
                1 => (
                    "weather: latency",
                    Faults { latency_ms: rng.range(0, 100), latency_jitter_ms: 150, ..Faults::default() },
                ),
                2 => (
                    "weather: 5xx before",
                    Faults { server_error: Some(ServerError::Before), operations: rng.ops(), ..Faults::default() },
                ),
                3 => (
                    "weather: 5xx after",
                    Faults { server_error: Some(ServerError::After), operations: rng.ops(), ..Faults::default() },
                ),
                4 => (
                    "weather: timeouts",
                    Faults { hang_ms: READ_TIMEOUT_MS + 300, operations: rng.ops(), ..Faults::default() },
                ),
                5 => ("weather: garbage answers", Faults { garbage: true, operations: rng.ops(), ..Faults::default() }),
                6 => (
                    "weather: rate limited",
                    Faults {
                        force: Some(ForcedAnswer::code("TOO_MANY_REQUESTS")),
                        operations: rng.ops(),
                        ..Faults::default()
                    },
                ),
                7 => ("weather: refunds refused", Faults::force("EXCESS_REFUND_AMOUNT").only(&[Operation::Refund])),
                8 => ("weather: refunds fail", Faults::refund_fails()),
                9 => ("weather: callbacks dropped", Faults::callbacks_dropped()),
                10 => ("weather: callbacks duplicated", Faults::callbacks_duplicated(2)),
                11 => {
                    self.timer(lasts + 800);
                    ("weather: callbacks delayed", Faults::callbacks_delayed(300))
                }
                _ => {
                    self.timer(lasts + 800);
                    ("weather: late successes", Faults::late_success(200))
                }
            };
            self.env.server.simulator.set_global_faults(f).unwrap();
            self.fault(name);
            changes += 1;
            tokio::time::sleep(Duration::from_millis(lasts)).await;
        }
        self.env.server.simulator.clear_global_faults();
        changes
    }

    /// parkpay's clock jumps ahead under load: mostly a few seconds through
    /// `POST /_dev/clock/advance` (which runs the reconciliation passes due meanwhile, one per
    /// simulated second where PhonePe's schedule is that dense); sometimes minutes, rarely past
    /// PhonePe's 20-minute timeout, with no pass in between, as if reconciliation had been down
    /// that long (the next passes find a backlog).
    async fn clock(self: Arc<Self>) -> ClockMoves {
        let mut rng = Rng::new(self.seed, 2);
        let mut moves = ClockMoves::default();
        while !self.stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(rng.range(100, 400))).await;
            let (secs, through_endpoint) = match rng.weighted(&[80, 14, 6]) {
                0 => (rng.range(1, 12), true),
                1 => (rng.range(30, 180), false),
                _ => (rng.range(1_200, 1_500), false),
            };
            moves.seconds += secs;
            if !through_endpoint {
                self.env.server.clock.advance(Duration::from_secs(secs));
                moves.jumps += 1;
                continue;
            }
            let resp = self
                .env
                .http
                .post(format!("{}/_dev/clock/advance", self.env.base))
                .json(&json!({"seconds": secs}))
                .send()
                .await;
            match resp {
                Ok(r) if r.status().is_success() => {
                    let v: Value = r.json().await.unwrap_or_default();
                    moves.advances += 1;
                    moves.passes += v["passes"].as_u64().unwrap_or(0);
                }
                Ok(r) => self.unexpected(format!("clock advance: {}", r.status())),
                Err(e) => self.unexpected(format!("clock advance: {e}")),
            }
        }
        moves
    }

    /// A second reconciler on the same state, ticking in real time beside the clock advances
    /// (two scheduled invocations overlapping).
    async fn second_reconciler(self: Arc<Self>) -> u64 {
        let rec = Reconciler::new(self.env.server.state.clone());
        let mut ticks = 0;
        while !self.stop.load(Ordering::SeqCst) {
            rec.tick().await;
            ticks += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        ticks
    }
}

// ---------------------------------------------------------------------------------------------
// After the load

/// Wait until the simulator has nothing left to do by itself: no fault timer running (late
/// successes, delayed callbacks), no refund waiting to settle, no callback waiting for a retry.
/// False if that takes longer than `limit`.
async fn simulator_idle(soak: &Soak, limit: Duration) -> bool {
    let until = Duration::from_millis(soak.timers_until_ms.load(Ordering::SeqCst));
    if let Some(wait) = until.checked_sub(soak.started.elapsed()) {
        tokio::time::sleep(wait).await;
    }
    let deadline = Instant::now() + limit;
    let mut quiet_since: Option<Instant> = None;
    loop {
        let sim = &soak.env.server.simulator;
        let refunds_pending =
            sim.transactions().iter().any(|t| t.kind == TxnKind::Refund && t.state == SimState::Pending);
        // Each (transaction, code, copy) is one chain of attempts; one still being retried ends
        // with a failed attempt below the last (3 retries: 4 attempts).
        let mut last: HashMap<(String, String, u32), (DeliveryResult, u32)> = HashMap::new();
        for c in sim.callbacks() {
            last.insert((c.merchant_transaction_id.clone(), c.code.clone(), c.copy), (c.result, c.attempt));
        }
        let retrying =
            last.values().any(|(r, a)| matches!(r, DeliveryResult::HttpError | DeliveryResult::Failed) && *a < 4);
        if !refunds_pending && !retrying {
            // Copies of a duplicated callback follow one another: give them a moment.
            match quiet_since {
                Some(t) if t.elapsed() >= Duration::from_millis(300) => return true,
                Some(_) => {}
                None => quiet_since = Some(Instant::now()),
            }
        } else {
            quiet_since = None;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct ClockMoves {
    /// `POST /_dev/clock/advance` calls, and the passes they ran.
    advances: u64,
    passes: u64,
    /// Moves with no pass in between.
    jumps: u64,
    seconds: u64,
}

struct Drain {
    passes: usize,
    simulated: Duration,
    quiet: bool,
}

/// Reconcile until no obligation is open: tick; while something is due now, tick again; else
/// move parkpay's clock to the next due time (at least [`DRAIN_STEP`] on).
async fn reconcile_until_quiet(env: &Env, passes_before: usize) -> Drain {
    let rec = Reconciler::new(env.server.state.clone());
    let clock = &env.server.clock;
    let from = clock.offset();
    let mut passes = passes_before;
    loop {
        rec.tick().await;
        passes += 1;
        let simulated = clock.offset() - from;
        let Some(due) = rec.next_due().await else {
            return Drain { passes, simulated, quiet: true };
        };
        if passes >= MAX_DRAIN_PASSES || simulated >= MAX_DRAIN_SIMULATED {
            return Drain { passes, simulated, quiet: false };
        }
        let now = clock.now().unix_millis();
        if due.unix_millis() > now {
            let step = Duration::from_millis((due.unix_millis() - now) as u64).max(DRAIN_STEP);
            clock.advance(step);
        } else {
            // More is due than one tick takes; a moment for callbacks in flight.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn rupees(p: i64) -> String {
    let sign = if p < 0 { "-" } else { "" };
    let p = p.unsigned_abs();
    let r = (p / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in r.chars().enumerate() {
        if i > 0 && (r.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", p % 100)
}

#[derive(Default)]
struct Report {
    store: &'static str,
    asked: (usize, usize),
    concurrency: usize,
    sessions: usize,
    payment_requests: u64,
    refund_requests: u64,
    payments: BTreeMap<&'static str, usize>,
    refunds: BTreeMap<&'static str, usize>,
    automatic: BTreeMap<&'static str, usize>,
    obligations: BTreeMap<(&'static str, &'static str), usize>,
    ours: (i64, i64),
    sim: (i64, i64),
    needs_person: i64,
    excess: i64,
    /// Everything that disagrees (sessions, PhonePe transactions we do not know, not quiet).
    mismatches: Vec<String>,
    bad_sessions: usize,
    unknown_at_phonepe: usize,
    unexpected: Vec<String>,
    answers: BTreeMap<String, u64>,
    faults: BTreeMap<&'static str, u64>,
    callbacks: BTreeMap<&'static str, u64>,
    weather_changes: u64,
    clock: ClockMoves,
    second_ticks: u64,
    drain: (usize, Duration, bool),
    simulator_idle: bool,
    times: [Duration; 4],
}

/// For every session: our paid − refunded equals the simulator's (`obligations.rs`'s
/// `assert_money`, returning what disagrees instead of stopping at the first); every payment and
/// refund we hold SUCCESS is COMPLETED at PhonePe and the other way round; nothing is left
/// PENDING or open; and what we hold beyond what the session keeps is exactly what is owed.
async fn check(soak: &Soak, sessions: &[String], sim: &[Transaction], report: &mut Report) {
    let mut ours_ids: HashSet<String> = HashSet::new();
    for sid in sessions {
        let Some(s) = soak.session_view(sid).await else {
            report.mismatches.push(format!("session {sid}: cannot be read"));
            continue;
        };
        let bundle = soak
            .env
            .server
            .state
            .store
            .load_session(&SessionId::parse(sid).unwrap())
            .await
            .unwrap()
            .expect("the session is stored");
        let mut why = Vec::new();
        // The check of `common::assert_money`:
        let ((ours_paid, ours_refunded), (sim_paid, sim_refunded)) = common::money_of(&s, sim);
        if (ours_paid, ours_refunded) != (sim_paid, sim_refunded) {
            why.push(format!(
                "ours (paid, refunded) ({ours_paid}, {ours_refunded}) vs PhonePe's ({sim_paid}, {sim_refunded})"
            ));
        }
        let kept = paise(&s["paid"]) - paise(&s["refunded"]);
        if kept > ours_paid - ours_refunded {
            why.push(format!("the session keeps {kept}, more than we hold ({})", ours_paid - ours_refunded));
        }
        report.ours.0 += ours_paid;
        report.ours.1 += ours_refunded;
        report.sim.0 += sim_paid;
        report.sim.1 += sim_refunded;

        // Each transaction against PhonePe's state.
        let at_phonepe = |id: &str| sim.iter().find(|t| t.merchant_transaction_id == id).map(|t| t.state);
        for p in &bundle.payments {
            let status = p.status().as_str();
            *report.payments.entry(status).or_default() += 1;
            ours_ids.insert(p.id().as_str().to_owned());
            let theirs = at_phonepe(p.id().as_str());
            let agree = match status {
                "SUCCESS" => theirs == Some(SimState::Completed),
                "FAILED" => theirs != Some(SimState::Completed),
                _ => false,
            };
            if !agree {
                why.push(format!("payment {} is {status} here, {theirs:?} at PhonePe", p.id()));
            }
        }
        for r in &bundle.refunds {
            let status = r.status().as_str();
            *report.refunds.entry(status).or_default() += 1;
            if r.requested_by().as_str() == SYSTEM_USER {
                *report.automatic.entry(status).or_default() += 1;
            }
            ours_ids.insert(r.id().as_str().to_owned());
            let theirs = at_phonepe(r.id().as_str());
            let agree = match status {
                "SUCCESS" => theirs == Some(SimState::Completed),
                "FAILED" => theirs != Some(SimState::Completed),
                _ => false,
            };
            if !agree {
                why.push(format!("refund {} is {status} here, {theirs:?} at PhonePe", r.id()));
            }
        }

        // Owed: money we hold beyond what the session keeps is an automatic refund still open or
        // needing a person; money refunded beyond what was paid is an excess needing a person.
        let mut owed = 0i64;
        for o in &bundle.obligations {
            *report.obligations.entry((o.kind().as_str(), o.state().as_str())).or_default() += 1;
            let amount = o.amount().get() as i64;
            match (o.kind(), o.state()) {
                (_, ObligationState::Open) => {
                    why.push(format!("obligation {} about {} still open", o.kind().as_str(), o.target_id()));
                    if o.kind() == ObligationKind::AutomaticRefund {
                        owed += amount;
                    }
                }
                (ObligationKind::AutomaticRefund, ObligationState::NeedsPerson) => {
                    owed += amount;
                    report.needs_person += amount;
                }
                (ObligationKind::ExcessRefund, ObligationState::NeedsPerson) => {
                    owed -= amount;
                    report.excess += amount;
                }
                (kind, ObligationState::NeedsPerson) => {
                    why.push(format!("obligation {} about {} needs a person", kind.as_str(), o.target_id()));
                }
                _ => {}
            }
        }
        let held = ours_paid - ours_refunded;
        if held - kept != owed {
            why.push(format!("we hold {held}, the session keeps {kept}, but what is owed is {owed}"));
        }
        if !why.is_empty() {
            report.bad_sessions += 1;
            report.mismatches.push(format!("session {sid}: {}; {s}", why.join("; ")));
        }
    }
    // Money PhonePe holds that we know nothing of.
    for t in sim {
        if !ours_ids.contains(&t.merchant_transaction_id) && t.state != SimState::Failed {
            report.unknown_at_phonepe += 1;
            report.mismatches.push(format!(
                "PhonePe has {:?} {} ({:?}, {} paise) that no session of ours records",
                t.kind, t.merchant_transaction_id, t.state, t.amount
            ));
            if t.kind == TxnKind::Payment && t.state == SimState::Completed {
                report.sim.0 += t.amount as i64;
            }
        }
    }
}

async fn run(store: StoreKind, cfg: &Config) -> Option<Report> {
    let env = start(store).await?;
    let (payments, refunds) = cfg.size(store);
    let started = Instant::now();
    let (s, lots) = env.call("GET", "/api/lots/", None, None).await;
    assert_eq!(s, 200, "{lots}");
    let lots = lots["lots"].as_array().unwrap().iter().map(|l| l["lot_id"].as_str().unwrap().to_owned()).collect();
    let operator = env.server.token("soak-operator", true);
    // About 60 % of sessions end up paid during the load; refunds left over are spent on paid
    // sessions afterwards.
    let refund_chance = (refunds as f64 / (payments as f64 * 0.6).max(1.0)).min(0.9);
    let soak = Arc::new(Soak {
        env,
        seed: cfg.seed ^ (store as u64).wrapping_mul(0x5851_F42D_4C95_7F2D),
        started,
        payments_left: AtomicI64::new(payments as i64),
        refunds_left: AtomicI64::new(refunds as i64),
        refund_chance,
        next_session: AtomicUsize::new(0),
        sessions: Mutex::new(Vec::new()),
        paid: Mutex::new(Vec::new()),
        lots,
        operator,
        answers: Mutex::default(),
        unexpected: Mutex::default(),
        payment_requests: AtomicU64::new(0),
        refund_requests: AtomicU64::new(0),
        faults_set: Mutex::default(),
        timers_until_ms: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });

    // 1. Load: `concurrency` sessions at once, with the weather, the clock and a second reconciler.
    let weather = tokio::spawn(soak.clone().weather());
    let clock = tokio::spawn(soak.clone().clock());
    let second = tokio::spawn(soak.clone().second_reconciler());
    let workers: Vec<_> = (0..cfg.concurrency)
        .map(|_| {
            let soak = soak.clone();
            tokio::spawn(async move {
                while Soak::take(&soak.payments_left) {
                    let i = soak.next_session.fetch_add(1, Ordering::SeqCst);
                    soak.session(i).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("a session flow panicked");
    }
    // Refund requests not made during the load: on paid sessions, chosen by the seed.
    let leftover = soak.refunds_left.load(Ordering::SeqCst).max(0) as usize;
    if leftover > 0 {
        let mut rng = Rng::new(soak.seed, 3);
        let paid = std::mem::take(&mut *soak.paid.lock().unwrap());
        if !paid.is_empty() {
            let paid = Arc::new(paid);
            let next = Arc::new(AtomicUsize::new(0));
            let picks: Vec<usize> = (0..leftover).map(|_| rng.range(0, paid.len() as u64 - 1) as usize).collect();
            let picks = Arc::new(picks);
            let tasks: Vec<_> = (0..cfg.concurrency)
                .map(|w| {
                    let (soak, paid, next, picks) = (soak.clone(), paid.clone(), next.clone(), picks.clone());
                    tokio::spawn(async move {
                        let mut rng = Rng::new(soak.seed, 10 + w as u64);
                        loop {
                            let k = next.fetch_add(1, Ordering::SeqCst);
                            let Some(&pick) = picks.get(k) else { return };
                            if !Soak::take(&soak.refunds_left) {
                                return;
                            }
                            soak.refund(&mut rng, &paid[pick], 10 + k).await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("a refund flow panicked");
            }
        }
    }
    soak.stop.store(true, Ordering::SeqCst);
    let weather_changes = weather.await.unwrap();
    let clock = clock.await.unwrap();
    let second_ticks = second.await.unwrap();
    let load_time = started.elapsed();

    // 2. Every fault cleared; what PhonePe still does by itself (late successes, delayed
    //    callbacks, retries, refunds settling) finishes.
    soak.env.server.simulator.clear_all_faults();
    let t = Instant::now();
    let mut idle = simulator_idle(&soak, Duration::from_secs(30)).await;
    let settle_time = t.elapsed();

    // 3. Reconcile until quiet (twice if the simulator did something meanwhile).
    let t = Instant::now();
    let mut drain = reconcile_until_quiet(&soak.env, 0).await;
    for _ in 0..3 {
        if !drain.quiet {
            break;
        }
        let before = soak.env.server.simulator.callbacks().len();
        idle &= simulator_idle(&soak, Duration::from_secs(15)).await;
        let due = Reconciler::new(soak.env.server.state.clone()).next_due().await;
        if due.is_none() && soak.env.server.simulator.callbacks().len() == before {
            break;
        }
        let more = reconcile_until_quiet(&soak.env, drain.passes).await;
        drain = Drain { passes: more.passes, simulated: drain.simulated + more.simulated, quiet: more.quiet };
    }
    let drain_time = t.elapsed();

    // 4. The money.
    let t = Instant::now();
    let sessions = soak.sessions.lock().unwrap().clone();
    let sim = soak.env.server.simulator.transactions();
    let mut report = Report {
        store: store.label(),
        asked: (payments, refunds),
        concurrency: cfg.concurrency,
        sessions: sessions.len(),
        payment_requests: soak.payment_requests.load(Ordering::SeqCst),
        refund_requests: soak.refund_requests.load(Ordering::SeqCst),
        weather_changes,
        clock,
        second_ticks,
        drain: (drain.passes, drain.simulated, drain.quiet),
        simulator_idle: idle,
        ..Report::default()
    };
    check(&soak, &sessions, &sim, &mut report).await;
    if !drain.quiet {
        report.mismatches.push(format!("not quiet after {} passes and {:?} simulated", drain.passes, drain.simulated));
    }
    for c in soak.env.server.simulator.callbacks() {
        let what = match (c.result, c.copy) {
            (DeliveryResult::Dropped, _) => "dropped",
            (DeliveryResult::Delivered, 0) if c.attempt == 1 => "delivered at once",
            (DeliveryResult::Delivered, 0) => "delivered on a retry",
            (DeliveryResult::Delivered, _) => "duplicate copies delivered",
            (DeliveryResult::HttpError, _) => "answered non-2xx (retried)",
            (DeliveryResult::Failed, _) => "not delivered (retried)",
        };
        *report.callbacks.entry(what).or_default() += 1;
    }
    report.answers = std::mem::take(&mut *soak.answers.lock().unwrap());
    report.faults = std::mem::take(&mut *soak.faults_set.lock().unwrap());
    report.unexpected = std::mem::take(&mut *soak.unexpected.lock().unwrap());
    report.times = [load_time, settle_time, drain_time, t.elapsed()];
    Some(report)
}

fn table(cfg: &Config, reports: &[Report]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row =
        |name: &str, f: &dyn Fn(&Report) -> String| rows.push((name.to_owned(), reports.iter().map(f).collect()));
    let by = |m: &BTreeMap<&'static str, usize>| {
        let all: usize = m.values().sum();
        let parts: Vec<String> = ["SUCCESS", "FAILED", "PENDING"]
            .iter()
            .map(|k| format!("{} {k}", m.get(k).copied().unwrap_or(0)))
            .collect();
        format!("{all}: {}", parts.join(", "))
    };
    row("payments / refunds asked for (concurrency)", &|r| {
        format!("{} / {} ({} at once)", r.asked.0, r.asked.1, r.concurrency)
    });
    row("sessions", &|r| r.sessions.to_string());
    row("create-payment / refund requests (with retries)", &|r| {
        format!("{} / {}", r.payment_requests, r.refund_requests)
    });
    row("payments by final state", &|r| by(&r.payments));
    row("refunds by final state", &|r| by(&r.refunds));
    row("of which automatic refunds", &|r| by(&r.automatic));
    row("obligations left open", &|r| {
        r.obligations.iter().filter(|((_, s), _)| *s == "OPEN").map(|(_, n)| n).sum::<usize>().to_string()
    });
    row("obligations needing a person", &|r| {
        let parts: Vec<String> = r
            .obligations
            .iter()
            .filter(|((_, s), _)| *s == "NEEDS_PERSON")
            .map(|((k, _), n)| format!("{n} {k}"))
            .collect();
        if parts.is_empty() { "0".into() } else { parts.join(", ") }
    });
    row("obligations done", &|r| {
        r.obligations.iter().filter(|((_, s), _)| *s == "DONE").map(|(_, n)| n).sum::<usize>().to_string()
    });
    row("paid, ours / PhonePe's (₹)", &|r| format!("{} / {}", rupees(r.ours.0), rupees(r.sim.0)));
    row("refunded, ours / PhonePe's (₹)", &|r| format!("{} / {}", rupees(r.ours.1), rupees(r.sim.1)));
    row("held, ours / PhonePe's (₹)", &|r| {
        format!("{} / {}", rupees(r.ours.0 - r.ours.1), rupees(r.sim.0 - r.sim.1))
    });
    row("owed, needing a person (₹): automatic refunds refused / excess refunds", &|r| {
        format!("{} / {}", rupees(r.needs_person), rupees(r.excess))
    });
    row("**sessions where paid, refunded or owed disagree with PhonePe**", &|r| format!("**{}**", r.bad_sessions));
    row("PhonePe transactions (not FAILED) that no session records", &|r| r.unknown_at_phonepe.to_string());
    row("unexpected answers (5xx other than PhonePe's, 4xx for our own sessions)", &|r| r.unexpected.len().to_string());
    row("parkpay's clock under load: advances (their passes) + jumps = simulated", &|r| {
        format!("{} ({} passes) + {} = {} min", r.clock.advances, r.clock.passes, r.clock.jumps, r.clock.seconds / 60)
    });
    row("reconciling until quiet: passes, simulated", &|r| {
        format!(
            "{}, {:.1} h{}",
            r.drain.0,
            r.drain.1.as_secs_f64() / 3600.0,
            if r.drain.2 { "" } else { " (NOT QUIET)" }
        )
    });
    row("wall time: load + settle + reconcile + check", &|r| {
        let [a, b, c, d] = r.times;
        format!(
            "{:.1} + {:.1} + {:.1} + {:.1} = {:.1} s",
            a.as_secs_f64(),
            b.as_secs_f64(),
            c.as_secs_f64(),
            d.as_secs_f64(),
            (a + b + c + d).as_secs_f64()
        )
    });
    let mut out = String::new();
    out.push_str(&format!(
        "\nSoak, seed {} (PARKPAY_SOAK_SEED={} replays its choices), {} build\n\n",
        cfg.seed,
        cfg.seed,
        if cfg!(debug_assertions) { "debug" } else { "release" }
    ));
    out.push_str(&format!(
        "| | {} |\n|---|{}\n",
        reports.iter().map(|r| r.store).collect::<Vec<_>>().join(" | "),
        "---|".repeat(reports.len())
    ));
    for (name, cells) in rows {
        out.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
    }
    for r in reports {
        out.push_str(&format!(
            "\n{}: faults set: {}\n",
            r.store,
            r.faults.iter().map(|(k, v)| format!("{k} ×{v}")).collect::<Vec<_>>().join(", ")
        ));
        out.push_str(&format!(
            "{}: callbacks: {}\n",
            r.store,
            r.callbacks.iter().map(|(k, v)| format!("{k} ×{v}")).collect::<Vec<_>>().join(", ")
        ));
        out.push_str(&format!(
            "{}: answers: {}\n",
            r.store,
            r.answers.iter().map(|(k, v)| format!("{k} ×{v}")).collect::<Vec<_>>().join(", ")
        ));
        out.push_str(&format!(
            "{}: weather changes {}, second reconciler ticks {}, simulator idle before the check: {}\n",
            r.store, r.weather_changes, r.second_ticks, r.simulator_idle
        ));
        for m in r.mismatches.iter().take(10) {
            out.push_str(&format!("{}: MISMATCH {m}\n", r.store));
        }
        for u in r.unexpected.iter().take(10) {
            out.push_str(&format!("{}: UNEXPECTED {u}\n", r.store));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak() {
    let cfg = Config::from_env();
    eprintln!("soak: seed {} (PARKPAY_SOAK_SEED={} replays its choices)", cfg.seed, cfg.seed);
    let mut reports = Vec::new();
    for store in cfg.stores.clone() {
        if let Some(r) = run(store, &cfg).await {
            reports.push(r);
        }
    }
    let text = table(&cfg, &reports);
    // Straight to stderr, past the test harness's capture: the table is the point of the run.
    let _ = std::io::stderr().write_all(text.as_bytes());
    for r in &reports {
        assert!(r.sessions > 0, "{}: no session was booked", r.store);
        assert!(r.payments.values().sum::<usize>() > 0, "{}: no payment was created", r.store);
        assert!(
            r.mismatches.is_empty(),
            "{}: {} sessions disagree with PhonePe (seed {}): {:#?}",
            r.store,
            r.mismatches.len(),
            cfg.seed,
            r.mismatches.iter().take(10).collect::<Vec<_>>()
        );
        assert!(
            r.unexpected.is_empty(),
            "{}: {} unexpected answers (seed {}): {:#?}",
            r.store,
            r.unexpected.len(),
            cfg.seed,
            r.unexpected.iter().take(10).collect::<Vec<_>>()
        );
    }
}
