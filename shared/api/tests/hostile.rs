//! Hostile input over every endpoint (issue 4, item 6): whatever a client sends — wrong JSON
//! types, huge numbers, deep nesting, 1 MB bodies, invalid UTF-8, look-alike vehicle numbers,
//! odd amounts, nulls, duplicate keys, odd headers, odd path parameters, odd JWT claims — every
//! endpoint answers below 500 with the contract's error body, and nothing panics.
//!
//! Requests are API Gateway HTTP API (payload 2.0) events parsed by `lambda_http` itself, so
//! path parameters and authorizer claims reach `parkpay_api::handle` exactly as on AWS. Each test
//! builds one world: an embedded store in a temp dir, the PhonePe simulator on a free port and a
//! PhonePe client pointed at it, seeded with real sessions, payments and a refund so that some
//! generated bodies name ids that exist.
//!
//! `PROPTEST_CASES` overrides the number of cases per property (default 256).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use http::StatusCode;
use lambda_http::{Body, Response};
use parkpay_api::{AppState, Endpoint, ROUTES, Route, Stores, SystemClock};
use parkpay_checksum::{Message, SaltIndex, SaltKey, SaltKeys};
use parkpay_domain::{GatewayApi, LotCatalog};
use parkpay_gateway::phonepe_v1::PhonePeV1;
use parkpay_gateway::{Environment, PhonePeV1Config};
use parkpay_simulator::{Outcome, RunningSimulator, SANDBOX_MERCHANT_ID, SANDBOX_SALT_KEY, Simulator, SimulatorConfig};
use parkpay_store::EmbeddedStore;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use url::Url;

const OWNER: &str = "driver-hostile";
const STRANGER: &str = "driver-stranger";
const OPERATOR: &str = "ops-hostile";
const MAX_BODY: usize = parkpay_api::http::MAX_BODY_BYTES;

// =============================================================================================
// The world: state, simulator, seeded records.

#[derive(Default)]
struct Seeds {
    paid_session: String,
    paid_txn: String,
    refund_id: String,
    pending_session: String,
    pending_txn: String,
    unpaid_session: String,
    strangers_session: String,
    strangers_txn: String,
}

struct World {
    /// How often each route answered each status (to show, and check, what the generators reach).
    seen: std::sync::Mutex<BTreeMap<(&'static str, u16), u32>>,
    rt: tokio::runtime::Runtime,
    state: AppState,
    sim: RunningSimulator,
    keys: SaltKeys,
    seeds: Seeds,
    _dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        // On tmpfs where there is one: the store syncs every commit, and durability is not what
        // this file tests.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
        let keys = SaltKeys::single(SaltIndex::new(1), SaltKey::new(SANDBOX_SALT_KEY).unwrap());
        let (state, sim) = rt.block_on(async {
            let sim = Simulator::spawn(SimulatorConfig::sandbox().with_fast_timings(), "127.0.0.1:0".parse().unwrap())
                .await
                .expect("simulator starts");
            let cfg = PhonePeV1Config::new(
                Environment::Simulation { base_url: sim.base_url.clone() },
                SANDBOX_MERCHANT_ID,
                keys.clone(),
                // Nothing listens there: the simulator's own callbacks are lost, outcomes are
                // applied through verify (and the generated callbacks below).
                Url::parse("http://127.0.0.1:9/api/payment/callback/phonepe/").unwrap(),
                Url::parse("https://app.parkpay.example/payment-complete/").unwrap(),
            )
            .with_timeouts(Duration::from_secs(2), Duration::from_secs(5));
            let stores = Stores::new(EmbeddedStore::open(dir.path().join("hostile.redb")).unwrap());
            let state = AppState {
                store: stores.store,
                idempotency: stores.idempotency,
                pending: stores.pending,
                attention: stores.attention,
                gateways: parkpay_api::Gateways::only(GatewayApi::V1, Arc::new(PhonePeV1::new(cfg).unwrap())),
                lots: Arc::new(LotCatalog::default_local()),
                clock: Arc::new(SystemClock),
                merchant_id: SANDBOX_MERCHANT_ID.to_owned(),
                redirect_url: Url::parse("https://app.parkpay.example/payment-complete/").unwrap(),
                policy: parkpay_api::Policy::default(),
                passes: Arc::new(parkpay_api::passes::FixedPassKeys(Arc::new(
                    parkpay_passes::PassKeys::generate().unwrap(),
                ))),
            };
            (state, sim)
        });
        let mut world = World { seen: Default::default(), rt, state, sim, keys, seeds: Seeds::default(), _dir: dir };
        world.seed();
        world
    }

    /// One well-formed call, for seeding.
    fn ok(&self, endpoint: Endpoint, sub: &str, body: Value, want: StatusCode) -> Value {
        let req = Hostile {
            body: Some(body.to_string().into_bytes()),
            force_base64: false,
            headers: vec![("content-type".into(), "application/json".into())],
            claims: Some(BTreeMap::from([("sub".to_owned(), sub.to_owned())])),
            session_param: None,
        };
        let (status, text) = self.call(endpoint.route(), &req);
        assert_eq!(status, want, "seeding {endpoint:?}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    fn book(&self, sub: &str) -> String {
        let v = self.ok(
            Endpoint::CreateSession,
            sub,
            json!({"lot_id": "MG-ROAD-1", "vehicle_number": "KA-01-AB-1234", "hours": 2}),
            StatusCode::CREATED,
        );
        v["session_id"].as_str().unwrap().to_owned()
    }

    fn pay(&self, sub: &str, session: &str) -> String {
        let v = self.ok(Endpoint::CreatePayment, sub, json!({"session_id": session}), StatusCode::CREATED);
        v["merchant_txn_id"].as_str().unwrap().to_owned()
    }

    fn seed(&mut self) {
        let paid_session = self.book(OWNER);
        let paid_txn = self.pay(OWNER, &paid_session);
        self.rt.block_on(self.sim.simulator.complete(&paid_txn, Outcome::Success)).expect("simulated payment");
        let v = self.ok(Endpoint::VerifyPayment, OWNER, json!({"merchant_txn_id": paid_txn}), StatusCode::OK);
        assert_eq!(v["session_status"], "PAID", "{v}");
        let v = self.ok(
            Endpoint::Refund,
            OWNER,
            json!({"merchant_txn_id": paid_txn, "amount": "10.00"}),
            StatusCode::ACCEPTED,
        );
        let refund_id = v["refund_id"].as_str().unwrap().to_owned();
        let pending_session = self.book(OWNER);
        let pending_txn = self.pay(OWNER, &pending_session);
        let unpaid_session = self.book(OWNER);
        let strangers_session = self.book(STRANGER);
        let strangers_txn = self.pay(STRANGER, &strangers_session);
        self.seeds = Seeds {
            paid_session,
            paid_txn,
            refund_id,
            pending_session,
            pending_txn,
            unpaid_session,
            strangers_session,
            strangers_txn,
        };
    }

    /// Ids, users and lots that exist, so that generated bodies sometimes name real records.
    fn known_values(&self) -> Vec<String> {
        let s = &self.seeds;
        let mut v: Vec<String> = [
            &s.paid_session,
            &s.paid_txn,
            &s.refund_id,
            &s.pending_session,
            &s.pending_txn,
            &s.unpaid_session,
            &s.strangers_session,
            &s.strangers_txn,
        ]
        .into_iter()
        .cloned()
        .collect();
        v.extend([s.paid_session.to_uppercase(), format!(" {}", s.pending_txn), format!("{}\u{0}", s.unpaid_session)]);
        v.extend(
            [OWNER, STRANGER, OPERATOR, "MG-ROAD-1", "mg-road-1", "AIRPORT-P1", "KORAMANGALA-2"].map(String::from),
        );
        v.extend(
            ["PAY_PAGE", "UPI_INTENT", "UPI_QR", "UPI_COLLECT", "pay_page", "ANDROID", "IOS", "driver@okhdfc"]
                .map(String::from),
        );
        v.extend(["100.00", "10.00", "0.01", "90.00", "200.00"].map(String::from));
        v
    }

    /// Send `req` to `route` in process; the status and body text. A panic fails the test.
    fn call(&self, route: &'static Route, req: &Hostile) -> (StatusCode, String) {
        let event = event_json(route, req);
        let request = lambda_http::request::from_str(&event)
            .unwrap_or_else(|e| panic!("the generator made an event lambda_http cannot read ({e}): {req:?}"));
        let resp = self.rt.block_on(parkpay_api::handle(&self.state, route.endpoint, request));
        let status = resp.status();
        *self.seen.lock().unwrap().entry((route.path, status.as_u16())).or_default() += 1;
        (status, body_text(&resp))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.sim.shutdown();
    }
}

fn body_text(resp: &Response<Body>) -> String {
    match resp.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

// =============================================================================================
// Requests as API Gateway delivers them.

/// One hostile request (the endpoint is chosen separately).
#[derive(Clone)]
struct Hostile {
    /// `None`: no body at all.
    body: Option<Vec<u8>>,
    /// Send even a UTF-8 body base64-encoded (API Gateway does so for binary content types).
    force_base64: bool,
    /// Lower-case names, as API Gateway hands them over; repeated names are joined with commas.
    headers: Vec<(String, String)>,
    /// The JWT authorizer's claims; `None`: no authorizer context at all.
    claims: Option<BTreeMap<String, String>>,
    /// The route's path parameter (`{session_id}`, `{merchant_txn_id}`); `None`: none.
    session_param: Option<String>,
}

fn clip(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        format!("{s:?}")
    } else {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{:?}…({} bytes)", &s[..end], s.len())
    }
}

impl fmt::Debug for Hostile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = self.body.as_ref().map(|b| clip(&String::from_utf8_lossy(b)));
        let headers: Vec<(String, String)> = self.headers.iter().map(|(k, v)| (k.clone(), clip(v))).collect();
        let claims: Option<BTreeMap<&String, String>> =
            self.claims.as_ref().map(|c| c.iter().map(|(k, v)| (k, clip(v))).collect());
        f.debug_struct("Hostile")
            .field("body", &body)
            .field("body_is_utf8", &self.body.as_ref().map(|b| std::str::from_utf8(b).is_ok()))
            .field("force_base64", &self.force_base64)
            .field("headers", &headers)
            .field("claims", &claims)
            .field("session_param", &self.session_param.as_deref().map(clip))
            .finish()
    }
}

/// The API Gateway HTTP API (payload format 2.0) event for `req` on `route`, as AWS builds it:
/// Host and X-Forwarded-Proto are API Gateway's own, the raw path is percent-encoded and the
/// path parameter decoded, a body that is not UTF-8 is base64 with `isBase64Encoded`.
fn event_json(route: &Route, req: &Hostile) -> String {
    // The route's one path parameter (`{session_id}`, or the payment QR's `{merchant_txn_id}`).
    let param = route.path.split('/').find_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')));
    let raw_path = match (&req.session_param, param) {
        (Some(p), Some(name)) => {
            let mut u = Url::parse("https://h/").unwrap();
            let segments: Vec<&str> = route
                .path
                .split('/')
                .skip(1)
                .map(|s| if s == format!("{{{name}}}") { p.as_str() } else { s })
                .collect();
            u.path_segments_mut().unwrap().clear().extend(segments);
            u.path().to_owned()
        }
        _ => route.path.to_owned(),
    };
    let mut headers = serde_json::Map::new();
    for (k, v) in &req.headers {
        match headers.get_mut(k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(v);
            }
            _ => {
                headers.insert(k.clone(), Value::String(v.clone()));
            }
        }
    }
    headers.insert("host".into(), json!("api.parkpay.example"));
    headers.insert("x-forwarded-proto".into(), json!("https"));
    let route_key = format!("{} {}", route.method, route.path);
    let mut ctx = json!({
        "accountId": "123456789012",
        "apiId": "hostile",
        "domainName": "api.parkpay.example",
        "domainPrefix": "api",
        "http": {"method": route.method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9",
                 "userAgent": "hostile"},
        "requestId": "hostile-1",
        "routeKey": route_key,
        "stage": "$default",
        "time": "01/Jan/2025:00:00:00 +0000",
        "timeEpoch": 1_735_689_600_000_i64,
    });
    if let Some(claims) = &req.claims {
        ctx["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": ctx,
        "isBase64Encoded": false,
    });
    if let (Some(p), Some(name)) = (&req.session_param, param) {
        event["pathParameters"] = json!({ name: p });
    }
    if let Some(body) = &req.body {
        match std::str::from_utf8(body) {
            Ok(text) if !req.force_base64 => event["body"] = json!(text),
            _ => {
                event["body"] = json!(B64.encode(body));
                event["isBase64Encoded"] = json!(true);
            }
        }
    }
    event.to_string()
}

// =============================================================================================
// What every answer must look like.

fn screaming_snake(code: &str) -> bool {
    let b = code.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_uppercase()
        && b.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
        && !code.ends_with('_')
        && !code.contains("__")
}

fn check_answer(route: &Route, status: StatusCode, text: &str, req: &Hostile) -> Result<(), TestCaseError> {
    let what = || format!("{} {}: {status} {}\nrequest: {req:?}", route.method, route.path, clip(text));
    prop_assert!(status.as_u16() < 500, "5xx: {}", what());
    // The answers that are not JSON by design: images, and the receipt as a page for a browser.
    let image = matches!(route.endpoint, Endpoint::GetPassQr | Endpoint::PaymentQr);
    if status.is_success() && (image || text.starts_with("<!doctype html>")) {
        prop_assert!(!text.is_empty(), "an empty answer: {}", what());
        return Ok(());
    }
    let v: Value =
        serde_json::from_str(text).map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {}", what())))?;
    if status.as_u16() >= 400 {
        let code = v["error"]["code"].as_str().unwrap_or_default();
        let message = v["error"]["message"].as_str().unwrap_or_default();
        prop_assert!(screaming_snake(code), "error code is not SCREAMING_SNAKE: {}", what());
        prop_assert!(!message.trim().is_empty(), "empty error message: {}", what());
        prop_assert!(v.as_object().is_some_and(|o| o.len() == 1), "more than `error` in an error body: {}", what());
    } else {
        prop_assert!(v.is_object(), "a success that is not a JSON object: {}", what());
    }
    Ok(())
}

impl World {
    fn check(&self, route: &'static Route, req: &Hostile) -> Result<(), TestCaseError> {
        let (status, text) = self.call(route, req);
        check_answer(route, status, &text, req)
    }

    /// `reqs[i]` to `ROUTES[i]`.
    fn check_routes(&self, reqs: &[Hostile]) -> Result<(), TestCaseError> {
        for (route, req) in ROUTES.iter().zip(reqs) {
            self.check(route, req)?;
        }
        Ok(())
    }

    /// Print what was answered, and fail if the generators never got past the first checks: each
    /// route must have answered one of the given statuses at least once. (Only outcomes expected
    /// dozens of times in 256 cases are required, so that this never fails by chance.)
    fn assert_reached(&self, wanted: &[(Endpoint, &[u16])]) {
        let seen = self.seen.lock().unwrap();
        for (endpoint, statuses) in wanted {
            let path = endpoint.route().path;
            assert!(
                statuses.iter().any(|s| seen.contains_key(&(path, *s))),
                "{path} never answered any of {statuses:?}: the generators are too weak. Answers (route, status) \
                 -> count: {seen:?}"
            );
        }
    }

    /// After the storm: the seeded sessions still load, and money adds up — for every payment,
    /// what its refunds took back (and what it records as refunded) is at most what it took, and
    /// the session's refunded total is at most its paid total.
    fn assert_books_balance(&self) {
        let s = &self.seeds;
        for (sid, owner) in [
            (&s.paid_session, OWNER),
            (&s.pending_session, OWNER),
            (&s.unpaid_session, OWNER),
            (&s.strangers_session, STRANGER),
        ] {
            let req = Hostile {
                body: None,
                force_base64: false,
                headers: vec![],
                claims: Some(BTreeMap::from([("sub".to_owned(), owner.to_owned())])),
                session_param: Some(sid.clone()),
            };
            let (status, text) = self.call(Endpoint::GetSession.route(), &req);
            assert_eq!(status, StatusCode::OK, "{text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            let paise = |m: &Value| -> u64 {
                let s = m.as_str().unwrap_or_else(|| panic!("not an amount: {m} in {v}"));
                let (r, p) = s.split_once('.').unwrap_or_else(|| panic!("not an amount: {s} in {v}"));
                r.parse::<u64>().unwrap() * 100 + p.parse::<u64>().unwrap()
            };
            assert!(paise(&v["refunded"]) <= paise(&v["paid"]), "refunded more than paid: {v}");
            for p in v["payments"].as_array().unwrap() {
                let taken = if p["status"] == "SUCCESS" { paise(&p["amount"]) } else { 0 };
                let refunded: u64 = v["refunds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| r["merchant_txn_id"] == p["merchant_txn_id"] && r["status"] == "SUCCESS")
                    .map(|r| paise(&r["amount"]))
                    .sum();
                assert!(
                    refunded <= taken && paise(&p["refunded"]) <= taken,
                    "payment refunded beyond what it took: {v}"
                );
            }
        }
    }
}

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    TestRunner::new(Config { cases, failure_persistence: None, max_shrink_iters: 512, ..Config::default() })
}

fn run<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: fmt::Debug,
{
    if let Err(e) = runner().run(&strategy, test) {
        panic!("{e}");
    }
}

// =============================================================================================
// Generators.

/// JSON texts that are hostile as a field value.
const LITERALS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "0.0",
    "1e400",
    "-1e400",
    "1E+400",
    "1e-400",
    "18446744073709551616",
    "18446744073709551615",
    "-9223372036854775809",
    "-9223372036854775808",
    "9223372036854775807",
    "9223372036854775808",
    "340282366920938463463374607431768211456",
    "2",
    "-1",
    "1.5",
    "2.0",
    "1e3",
    "1E2",
    "0.00",
    "0.01",
    "0.001",
    "100",
    "100.0",
    "100.00",
    "100.001",
    "100.0000000000000000000000000001",
    "-100.00",
    "-0.01",
    "99999999999999999999.99",
    "[]",
    "{}",
    "[null]",
    "[\"100.00\"]",
    "{\"\":null}",
    "{\"amount\":\"100.00\"}",
    "\"\"",
    "\" \"",
    "\"null\"",
    "\"100.00\"",
    "\"100\"",
    "\"-1.00\"",
    "\"-0.00\"",
    "\"0\"",
    "\"1e2\"",
    "\"1E400\"",
    "\" 100.00\"",
    "\"100.00 \"",
    "\"100,00\"",
    "\"1_000.00\"",
    "\"+100.00\"",
    "\".50\"",
    "\"5.\"",
    "\"0x10\"",
    "\"NaN\"",
    "\"Infinity\"",
    "\"-Infinity\"",
    "\"١٠٠.٠٠\"",
    "\"１００.００\"",
    "\"१००.००\"",
    "\"100.00\\u0000\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\udfff\\ud800\"",
    "\"\\\"\"",
    "\"\\\\\"",
    "\"<script>alert(1)</script>\"",
    "\"' OR 1=1 --\"",
    "\"../../etc/passwd\"",
    "\"%00\"",
    "\"\\u202eAB-10-AK\"",
];

/// Vehicle numbers: valid forms, look-alikes, and rubbish.
const VEHICLES: &[&str] = &[
    "KA-01-AB-1234",
    "ka01ab1234",
    "ka 1 ab 1234",
    "DL-01-1234",
    "DL 1 123",
    "DL011234",
    "22BH1234AB",
    "22 bh 1234 a",
    "КА-01-АВ-1234",
    "ΚΑ-01-ΑΒ-1234",
    "ＫＡ０１ＡＢ１２３４",
    "KA-०१-AB-१२३४",
    "KA-٠١-AB-١٢٣٤",
    "KA\u{200B}01AB1234",
    "KA\u{00AD}01AB1234",
    "K\u{0301}A01AB1234",
    "\u{202E}4321-BA-10-AK",
    "ka01ab1234\u{0}",
    "kı01ab1234",
    "KA-00-AB-0000",
    "KA-01-AB-12345",
    "KA-01-ABCD-1234",
    "KA--01--AB--1234",
    "...KA01AB1234...",
    "KA01AB1234KA01AB1234KA01AB1234KA",
    "KA01AB1234KA01AB1234KA01AB1234KA1",
    "",
    " ",
    "-",
    "🚗",
    "KA_01_AB_1234",
    "KA\t01AB1234",
    "KA\n01AB1234",
];

/// A decimal number's text, built to probe amount parsing: sign, digits, decimals, exponent.
fn number_text() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["", "-", "+"]),
        "[0-9]{1,25}",
        prop::option::of("[0-9]{0,25}"),
        prop::option::of(("[eE]", prop::sample::select(vec!["", "+", "-"]), "[0-9]{1,4}")),
    )
        .prop_map(|(sign, int, frac, exp)| {
            let mut s = format!("{sign}{int}");
            if let Some(f) = frac {
                s.push('.');
                s.push_str(&f);
            }
            if let Some((e, es, ed)) = exp {
                s.push_str(&format!("{e}{es}{ed}"));
            }
            s
        })
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// `n` levels of nesting: arrays, objects, or both.
fn nested(n: usize, kind: u8) -> String {
    match kind % 3 {
        0 => format!("{}{}", "[".repeat(n), "]".repeat(n)),
        1 => format!("{}null{}", "{\"a\":".repeat(n), "}".repeat(n)),
        _ => format!("{}1{}", "[{\"a\":".repeat(n / 2), "}]".repeat(n / 2)),
    }
}

/// One field value (JSON text).
fn value(known: Vec<String>) -> BoxedStrategy<String> {
    prop_oneof![
        6 => prop::sample::select(LITERALS).prop_map(String::from),
        3 => prop::sample::select(known).prop_map(|s| json_string(&s)),
        3 => prop::sample::select(VEHICLES).prop_map(json_string),
        2 => number_text(),
        2 => number_text().prop_map(|s| json_string(&s)),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        2 => any::<String>().prop_map(|s| json_string(&s)),
        1 => "[A-Za-z0-9 .\\-КАВ०-९]{0,40}".prop_map(|s| json_string(&s)),
        1 => (prop::sample::select(vec![2usize, 64, 127, 128, 129, 1000, 10_000]), any::<u8>())
            .prop_map(|(n, k)| nested(n, k)),
        // Long strings around the body limit (1 MiB bodies are a case of their own in `body`).
        1 => prop::sample::select(vec![256usize, 4096, MAX_BODY - 20, MAX_BODY + 1])
            .prop_map(|n| json_string(&"x".repeat(n))),
    ]
    .boxed()
}

/// Field names: every body field of the contract (and the callback's), and some that are not.
const FIELDS: &[&str] = &[
    "lot_id",
    "vehicle_number",
    "hours",
    "session_id",
    "amount",
    "payment_instrument",
    "vpa",
    "user_id",
    "device_os",
    "merchant_txn_id",
    "reason",
    "response",
    "gate",
    "scanned_at",
];

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(FIELDS).prop_map(String::from),
        1 => prop::sample::select(vec!["", "LOT_ID", "amount ", "__proto__", "constructor", "\u{0}", "ａｍｏｕｎｔ"])
            .prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// A JSON object of hostile fields (names may repeat: duplicate keys).
fn object(known: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec((field_name(), value(known)), 0..8), any::<bool>()).prop_map(|(fields, spaced)| {
        let sep = if spaced { " , " } else { "," };
        let inner: Vec<String> = fields.iter().map(|(k, v)| format!("{}:{v}", json_string(k))).collect();
        format!("{{{}}}", inner.join(sep)).into_bytes()
    })
}

/// Valid bodies of `endpoint` (for endpoints without a body: all of them), naming seeded records.
fn valid_bodies(endpoint: Endpoint, seeds: &Seeds) -> Vec<Value> {
    let session = vec![json!({"lot_id": "MG-ROAD-1", "vehicle_number": "KA-01-AB-1234", "hours": 2})];
    let payment = vec![
        json!({"session_id": seeds.unpaid_session, "amount": "100.00", "payment_instrument": "PAY_PAGE"}),
        json!({"session_id": seeds.unpaid_session, "payment_instrument": "UPI_COLLECT", "vpa": "driver@okhdfc"}),
        json!({"session_id": seeds.pending_session, "payment_instrument": "UPI_INTENT", "device_os": "IOS",
               "user_id": OWNER}),
        json!({"session_id": seeds.paid_session, "amount": 100.00}),
    ];
    let verify = vec![json!({"merchant_txn_id": seeds.paid_txn}), json!({"merchant_txn_id": seeds.pending_txn})];
    let refund = vec![
        json!({"merchant_txn_id": seeds.paid_txn, "amount": "0.01", "reason": "left early"}),
        json!({"merchant_txn_id": seeds.paid_txn, "amount": 0.02}),
        json!({"merchant_txn_id": seeds.pending_txn}),
    ];
    let scan = vec![
        json!({"gate": "north-1"}),
        json!({"gate": "north-1", "scanned_at": "2026-12-01T10:00:00Z"}),
        json!({"gate": "g.2_b", "scanned_at": "2026-12-01T15:30:00.123+05:30"}),
    ];
    match endpoint {
        Endpoint::CreateSession => session,
        Endpoint::CreatePayment => payment,
        Endpoint::VerifyPayment => verify,
        Endpoint::Refund => refund,
        Endpoint::RecordEntry | Endpoint::RecordExit => scan,
        Endpoint::ExtendSession => vec![
            json!({"hours": 1}),
            json!({"hours": 2, "payment_instrument": "UPI_INTENT", "amount": "100.00"}),
            json!({"hours": 1, "payment_instrument": "UPI_COLLECT", "vpa": "driver@okhdfc"}),
        ],
        Endpoint::ListLots
        | Endpoint::Console
        | Endpoint::GetSession
        | Endpoint::PhonePeCallback
        | Endpoint::ListObligations
        | Endpoint::ListSessions
        | Endpoint::GetPass
        | Endpoint::GetPassQr
        | Endpoint::PassKeys
        | Endpoint::RevokedPasses
        | Endpoint::GetReceipt
        | Endpoint::PaymentQr
        | Endpoint::SearchSessions
        | Endpoint::SettlementReport => [session, payment, verify, refund, scan].concat(),
    }
}

/// A valid body of `endpoint` with one field replaced by (or added as) a hostile value.
fn near_valid(known: Vec<String>, bases: Vec<Value>) -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(bases), prop::sample::select(FIELDS), value(known)).prop_map(|(base, field, hostile)| {
        let mut text = String::from("{");
        let obj = base.as_object().unwrap();
        let mut replaced = false;
        for (k, v) in obj {
            if text.len() > 1 {
                text.push(',');
            }
            if k == field {
                text.push_str(&format!("{}:{hostile}", json_string(k)));
                replaced = true;
            } else {
                text.push_str(&format!("{}:{v}", json_string(k)));
            }
        }
        if !replaced {
            if text.len() > 1 {
                text.push(',');
            }
            text.push_str(&format!("{}:{hostile}", json_string(field)));
        }
        text.push('}');
        text.into_bytes()
    })
}

const RAW_BODIES: &[&str] = &[
    "",
    " ",
    "\n\t",
    "{",
    "}",
    "{}",
    "{}{}",
    "{} x",
    "[]",
    "[{}]",
    "1",
    "null",
    "\"{}\"",
    "\u{FEFF}{}",
    "{\"lot_id\":\"MG-ROAD-1\",}",
    "{'lot_id':'MG-ROAD-1'}",
    "{lot_id:1}",
    "{\"lot_id\" \"MG-ROAD-1\"}",
    "{\"hours\":2 /* comment */}",
    "{\"hours\":NaN}",
    "{\"hours\":Infinity}",
    "{\"hours\":0x10}",
    "{\"hours\":01}",
    "{\"hours\":2}\u{0}",
    "{\"response\":\"\"}",
    "{\"response\":null}",
    "{\"response\":\"e30=\"}",
    "lot_id=MG-ROAD-1&hours=2",
    "<?xml version=\"1.0\"?><a/>",
];

/// A body for `endpoint`: rubbish, hostile objects, its valid bodies with one field spoilt, and
/// its valid bodies as they are (so that hostile headers and claims meet the happy path too).
fn body(known: Vec<String>, endpoint: Endpoint, seeds: &Seeds) -> BoxedStrategy<Option<Vec<u8>>> {
    let bases = valid_bodies(endpoint, seeds);
    // Otherwise valid JSON around the limit, up to 1 MiB. (Big events are slow to build and
    // parse in a debug build: 1 MiB is one size in seven here, and every endpoint gets it in
    // `named_hostile_cases_against_every_endpoint`.)
    let sizes = [MAX_BODY - 100, MAX_BODY + 1, MAX_BODY + 1, 2 * MAX_BODY, 2 * MAX_BODY, 4 * MAX_BODY, 1 << 20];
    let huge = prop::sample::select(sizes.to_vec()).prop_map(|n| {
        let pad = "x".repeat(n - 60);
        Some(format!(r#"{{"lot_id":"MG-ROAD-1","hours":2,"vehicle_number":"{pad}"}}"#).into_bytes())
    });
    prop_oneof![
        1 => Just(None),
        2 => prop::sample::select(RAW_BODIES).prop_map(|s| Some(s.as_bytes().to_vec())),
        2 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Some),
        1 => (prop::collection::vec(any::<u8>(), 1..8), any::<bool>()).prop_map(|(bad, valid_json)| {
            // invalid UTF-8 inside an otherwise valid JSON string
            let mut b = br#"{"vehicle_number":""#.to_vec();
            b.extend_from_slice(&[0xff, 0xfe]);
            b.extend(bad);
            b.extend_from_slice(if valid_json { br#"","hours":2}"# } else { b"" });
            Some(b)
        }),
        1 => huge,
        1 => (prop::sample::select(vec![128usize, 129, 10_000]), any::<u8>())
            .prop_map(|(n, k)| Some(format!(r#"{{"lot_id":"MG-ROAD-1","x":{}}}"#, nested(n, k)).into_bytes())),
        1 => prop::sample::select(vec![129usize, 10_000]).prop_map(|n| Some(nested(n, 1).into_bytes())),
        8 => object(known.clone()).prop_map(Some),
        6 => near_valid(known, bases.clone()).prop_map(Some),
        3 => prop::sample::select(bases).prop_map(|b| Some(b.to_string().into_bytes())),
    ]
    .boxed()
}

/// Header values HTTP can carry (no control characters but tab): ASCII and UTF-8 (obs-text).
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[ -~]{0,40}",
        1 => "[ -~]{254,257}",
        1 => any::<String>().prop_map(|s| s.chars().filter(|c| !c.is_control() || *c == '\t').collect()),
        1 => Just(String::new()),
        1 => Just("\t \t".to_owned()),
        1 => Just("ключ-идемпотентности".to_owned()),
        1 => Just("x".repeat(16 * 1024)),
    ]
}

fn header() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        3 => header_value().prop_map(|v| ("idempotency-key".to_owned(), v)),
        1 => "[0-9a-f]{64}###[0-9]{1,20}".prop_map(|v| ("idempotency-key".to_owned(), v)),
        3 => prop_oneof![
            "[0-9a-f]{64}###[0-9]{1,3}",
            "[0-9A-F]{64}###1",
            "[0-9a-f]{0,70}(###)?[0-9]{0,3}",
            Just("###".to_owned()),
            Just("###1".to_owned()),
            Just(format!("{}###18446744073709551616", "0".repeat(64))),
            Just(format!("{}###-1", "a".repeat(64))),
            Just(format!("{}###1###1", "a".repeat(64))),
            header_value(),
        ]
        .prop_map(|v| ("x-verify".to_owned(), v)),
        2 => prop::sample::select(vec![
            "application/json",
            "application/json; charset=utf-16",
            "text/plain",
            "text/html",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "application/octet-stream",
            "",
            ";;;",
        ])
        .prop_map(|v| ("content-type".to_owned(), v.to_owned())),
        1 => prop::sample::select(vec!["content-length", "content-encoding", "transfer-encoding", "authorization",
                                       "cookie", "accept", "x-forwarded-for", "user-agent", "x-amzn-trace-id"])
            .prop_flat_map(|n| header_value().prop_map(move |v| (n.to_owned(), v))),
        1 => ("[a-z][a-z0-9-]{0,20}", header_value()),
    ]
}

/// Group claim values: API Gateway's flattened `[a b]`, JSON text, and worse.
fn groups_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[operator]".to_owned()),
        Just("[\"operator\"]".to_owned()),
        Just("[operators]".to_owned()),
        Just("[OPERATOR]".to_owned()),
        Just("operator,".to_owned()),
        Just("[[[[operator".to_owned()),
        Just("[\"operator\"".to_owned()),
        Just("[null, 1, {}]".to_owned()),
        Just(format!("[{} operator]", "g ".repeat(20_000))),
        Just(format!("[{}]", "\"operator\",".repeat(5_000))),
        Just(nested(10_000, 0)),
        any::<String>(),
    ]
}

fn claims() -> impl Strategy<Value = Option<BTreeMap<String, String>>> {
    let sub = prop_oneof![
        40 => Just(OWNER.to_owned()),
        1 => Just(STRANGER.to_owned()),
        1 => Just(String::new()),
        1 => Just("driver 1".to_owned()),
        1 => Just(" driver-hostile".to_owned()),
        1 => Just("водитель".to_owned()),
        1 => Just("x".repeat(129)),
        1 => Just("x".repeat(100_000)),
        1 => Just("a\u{0}b".to_owned()),
        1 => any::<String>(),
        1 => "[!-~]{1,128}",
    ];
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(BTreeMap::new())),
        12 => (
            prop::option::weighted(0.95, sub),
            prop::option::of(groups_value()),
            prop::option::of(groups_value()),
            prop::collection::btree_map("[a-z:_]{1,12}", any::<String>(), 0..3),
        )
            .prop_map(|(sub, groups, cognito, mut extra)| {
                if let Some(s) = sub {
                    extra.insert("sub".into(), s);
                }
                if let Some(g) = groups {
                    extra.insert("groups".into(), g);
                }
                if let Some(g) = cognito {
                    extra.insert("cognito:groups".into(), g);
                }
                Some(extra)
            }),
    ]
}

fn session_param(known: Vec<String>, seeds: &Seeds) -> impl Strategy<Value = Option<String>> + use<> {
    let sessions = vec![
        seeds.paid_session.clone(),
        seeds.pending_session.clone(),
        seeds.unpaid_session.clone(),
        seeds.strangers_session.clone(),
    ];
    prop_oneof![
        1 => Just(None),
        4 => prop::sample::select(sessions).prop_map(Some),
        3 => prop::sample::select(known).prop_map(Some),
        2 => "ps_[0-9a-hjkmnp-tv-z]{26}".prop_map(Some),
        1 => "PS_[0-9A-Z]{26}".prop_map(Some),
        2 => any::<String>().prop_map(Some),
        1 => prop::sample::select(vec!["", ".", "..", "%2F", "a/b", "ps_\u{0}", "ps_ä", " ", "null", "\u{202E}"])
            .prop_map(|s| Some(s.to_owned())),
        1 => Just(Some("ps_".repeat(5_000))),
    ]
}

/// One request per route: the same headers, claims and path parameter, a body for each.
fn hostile(world: &World) -> impl Strategy<Value = Vec<Hostile>> + use<> {
    let known = world.known_values();
    let bodies: Vec<BoxedStrategy<Option<Vec<u8>>>> =
        ROUTES.iter().map(|r| body(known.clone(), r.endpoint, &world.seeds)).collect();
    (
        bodies,
        prop::bool::weighted(0.1),
        prop::collection::vec(header(), 0..5),
        claims(),
        session_param(known, &world.seeds),
    )
        .prop_map(|(bodies, force_base64, headers, claims, session_param)| {
            bodies
                .into_iter()
                .map(|body| Hostile {
                    body,
                    force_base64,
                    headers: headers.clone(),
                    claims: claims.clone(),
                    session_param: session_param.clone(),
                })
                .collect()
        })
}

// =============================================================================================
// Signed callbacks: past the checksum, into decoding and applying.

/// The decoded `response` of a callback: a well-typed envelope (about our payments and refund,
/// or unknown ones; any outcome; right or wrong amount and merchant) with at most one field made
/// hostile — or something that is not an envelope at all.
fn callback_payload(world: &World) -> impl Strategy<Value = Vec<u8>> + use<> {
    let s = &world.seeds;
    let strs = |v: &[&str]| v.iter().map(|s| json_string(s)).collect::<Vec<_>>();
    let mut txns = strs(&[&s.paid_txn, &s.pending_txn, &s.strangers_txn, &s.refund_id]);
    txns.push(json_string("T_UNKNOWN_1"));
    // (field, well-typed values)
    let fields: Vec<(&'static str, Vec<String>)> = vec![
        ("success", vec!["true".into(), "false".into()]),
        ("code", strs(&["PAYMENT_SUCCESS", "PAYMENT_ERROR", "PAYMENT_DECLINED", "PAYMENT_PENDING", "TIMED_OUT"])),
        ("message", strs(&["m", ""])),
        ("merchantId", strs(&[SANDBOX_MERCHANT_ID, SANDBOX_MERCHANT_ID, "SOMEONEELSE"])),
        ("merchantTransactionId", txns),
        ("transactionId", strs(&["T1", "T2"])),
        (
            "amount",
            ["10000", "1000", "9000", "9999", "10001", "1", "18446744073709551615", "null"].map(String::from).to_vec(),
        ),
        ("state", strs(&["COMPLETED", "FAILED", "PENDING", "completed"])),
        ("paymentInstrument", vec![r#"{"type":"UPI","utr":"U1"}"#.into(), r#"{"type":"CARD"}"#.into(), "null".into()]),
    ];
    let n = fields.len();
    let picks: Vec<BoxedStrategy<String>> =
        fields.iter().map(|(_, v)| prop::sample::select(v.clone()).boxed()).collect();
    let names: Vec<&'static str> = fields.iter().map(|(k, _)| *k).collect();
    let envelope = (picks, 0..n * 2, value(world.known_values())).prop_map(move |(mut vals, spoil, hostile)| {
        if spoil < n {
            vals[spoil] = hostile;
        }
        let data: Vec<String> = (3..n).map(|i| format!("{}:{}", json_string(names[i]), vals[i])).collect();
        format!(r#"{{"success":{},"code":{},"message":{},"data":{{{}}}}}"#, vals[0], vals[1], vals[2], data.join(","))
            .into_bytes()
    });
    prop_oneof![
        12 => envelope,
        1 => Just(br#"{"success":true,"code":"PAYMENT_SUCCESS","message":"m","data":null}"#.to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..100),
        1 => object(world.known_values()),
        1 => prop::sample::select(vec![129usize, 10_000]).prop_map(|n| nested(n, 1).into_bytes()),
    ]
}

#[derive(Debug, Clone)]
struct SignedCallback {
    body: Vec<u8>,
    x_verify: String,
}

fn signed_callback(world: &World) -> impl Strategy<Value = SignedCallback> + use<> {
    let keys = world.keys.clone();
    (callback_payload(world), 0u8..10, 0u8..10).prop_map(move |(payload, encoding, framing)| {
        let response = match encoding {
            0 => B64URL.encode(&payload),
            1 => format!("{}!!", B64.encode(&payload)),
            2 => String::from_utf8_lossy(&payload).into_owned(), // not base64 at all
            _ => B64.encode(&payload),                           // 70 %
        };
        let x_verify = keys.sign(Message::Callback { response: &response }).to_string();
        let body = match framing {
            0 => json!({"response": response, "extra": [1, 2, 3]}).to_string(),
            1 => format!(r#"{{"response":"e30=","response":{}}}"#, json_string(&response)),
            _ => json!({"response": response}).to_string(), // 80 %
        };
        SignedCallback { body: body.into_bytes(), x_verify }
    })
}

// =============================================================================================
// The properties.

/// Any request (body, headers, claims, path parameter) to every endpoint.
#[test]
fn every_endpoint_answers_hostile_requests_with_a_4xx_error_body() {
    let world = World::new();
    run(hostile(&world), |reqs| world.check_routes(&reqs));
    world.assert_books_balance();
    // Past parsing and identity into the store and PhonePe (a success or a store-level refusal),
    // and each kind of refusal before that.
    const REACHED: &[u16] = &[200, 201, 202, 403, 404, 409];
    use Endpoint::*;
    world.assert_reached(&[
        (ListLots, &[200]),
        (CreateSession, &[201]),
        (GetSession, &[200]),
        (GetSession, &[404]),
        (CreatePayment, REACHED),
        (VerifyPayment, &[200]),
        (Refund, REACHED),
        (PhonePeCallback, &[400]),
        (PhonePeCallback, &[401]),
    ]);
    for route in ROUTES.iter().filter(|r| r.requires_token) {
        world.assert_reached(&[(route.endpoint, &[401])]);
        if route.method == "POST" {
            world.assert_reached(&[(route.endpoint, &[400]), (route.endpoint, &[413]), (route.endpoint, &[422])]);
        }
    }
}

/// Callbacks signed with our key, carrying hostile payloads.
#[test]
fn signed_callbacks_with_hostile_payloads_never_fail_on_our_side() {
    let world = World::new();
    let route = Endpoint::PhonePeCallback.route();
    run(signed_callback(&world), |cb| {
        let req = Hostile {
            body: Some(cb.body.clone()),
            force_base64: false,
            headers: vec![("content-type".into(), "application/json".into()), ("x-verify".into(), cb.x_verify.clone())],
            claims: None,
            session_param: None,
        };
        world.check(route, &req)
    });
    world.assert_books_balance();
    world.assert_reached(&[(Endpoint::PhonePeCallback, &[200]), (Endpoint::PhonePeCallback, &[400])]);
}

// =============================================================================================
// The named cases of the issue, every one against every endpoint, plus what the contract says
// their status is where it says so.

fn owner_request(body: Vec<u8>) -> Hostile {
    Hostile {
        body: Some(body),
        force_base64: false,
        headers: vec![("content-type".into(), "application/json".into())],
        claims: Some(BTreeMap::from([("sub".to_owned(), OWNER.to_owned())])),
        session_param: None,
    }
}

#[test]
fn named_hostile_cases_against_every_endpoint() {
    let world = World::new();
    let s = &world.seeds;
    let mut bodies: Vec<(String, Vec<u8>)> = vec![
        ("1 MiB".into(), {
            let pad = "x".repeat(1 << 20);
            format!(r#"{{"lot_id":"{pad}"}}"#).into_bytes()
        }),
        ("10 000 levels".into(), format!(r#"{{"lot_id":{}}}"#, nested(10_000, 0)).into_bytes()),
        ("invalid UTF-8".into(), vec![b'{', b'"', 0xc3, 0x28, b'"', b':', b'1', b'}']),
        ("lone continuation byte".into(), b"{\"a\":\"\x80\"}".to_vec()),
        ("overlong NUL".into(), b"{\"a\":\"\xc0\x80\"}".to_vec()),
        ("UTF-16".into(), "{\"a\":1}".encode_utf16().flat_map(|u| u.to_le_bytes()).collect()),
    ];
    // Every field of every endpoint with every literal, inside an otherwise valid body.
    let templates: Vec<Value> = vec![
        json!({"lot_id": "MG-ROAD-1", "vehicle_number": "KA-01-AB-1234", "hours": 2}),
        json!({"session_id": s.unpaid_session, "amount": "100.00", "payment_instrument": "UPI_COLLECT",
               "vpa": "driver@okhdfc", "user_id": OWNER, "device_os": "ANDROID"}),
        json!({"merchant_txn_id": s.paid_txn, "amount": "0.01", "reason": "r"}),
        json!({"response": "e30="}),
    ];
    let literals: Vec<String> =
        LITERALS.iter().map(|l| (*l).to_owned()).chain(VEHICLES.iter().map(|v| json_string(v))).collect();
    for t in &templates {
        for field in t.as_object().unwrap().keys() {
            for lit in &literals {
                let mut text = String::from("{");
                for (k, v) in t.as_object().unwrap() {
                    if text.len() > 1 {
                        text.push(',');
                    }
                    let v = if k == field { lit.clone() } else { v.to_string() };
                    text.push_str(&format!("{}:{v}", json_string(k)));
                }
                text.push('}');
                bodies.push((format!("{field}={lit}"), text.into_bytes()));
            }
            // duplicate key: valid first, hostile second, and the other way round
            for dup in [
                format!(r#"{{"{field}":{},"{field}":null}}"#, t[field]),
                format!(r#"{{"{field}":[],"{field}":{}}}"#, t[field]),
            ] {
                bodies.push((format!("duplicate {field}"), dup.into_bytes()));
            }
        }
    }
    for (name, body) in &bodies {
        let req = owner_request(body.clone());
        for route in ROUTES {
            world.check(route, &req).unwrap_or_else(|e| panic!("case {name}: {e}"));
        }
    }
    world.assert_books_balance();
}

#[test]
fn contract_statuses_for_hostile_bodies() {
    let world = World::new();
    let s = &world.seeds;
    let session = |extra: &str| format!(r#"{{"lot_id":"MG-ROAD-1","vehicle_number":"KA-01-AB-1234",{extra}}}"#);
    let refund = |amount: &str| format!(r#"{{"merchant_txn_id":"{}","amount":{amount}}}"#, s.paid_txn);
    let pay = |amount: &str| format!(r#"{{"session_id":"{}","amount":{amount}}}"#, s.unpaid_session);
    let big = format!(r#"{{"lot_id":"{}"}}"#, "x".repeat(1 << 20));
    let cases: Vec<(Endpoint, Vec<u8>, u16)> = vec![
        // malformed or wrong type: 400
        (Endpoint::CreateSession, b"{\"lot_id\":\"\xff\"}".to_vec(), 400),
        (Endpoint::CreateSession, format!(r#"{{"lot_id":{}}}"#, nested(10_000, 0)).into_bytes(), 400),
        (Endpoint::CreateSession, session(r#""hours":"2""#).into_bytes(), 400),
        (Endpoint::CreateSession, session(r#""hours":2.5"#).into_bytes(), 400),
        (Endpoint::CreateSession, session(r#""hours":1e400"#).into_bytes(), 400),
        (Endpoint::CreateSession, session(r#""hours":18446744073709551616"#).into_bytes(), 400),
        (Endpoint::CreateSession, session(r#""hours":-9223372036854775809"#).into_bytes(), 400),
        (Endpoint::CreateSession, session(r#""hours":[2]"#).into_bytes(), 400),
        (Endpoint::VerifyPayment, br#"{"merchant_txn_id":12}"#.to_vec(), 400),
        (Endpoint::Refund, refund("true").into_bytes(), 400),
        (Endpoint::Refund, refund("{}").into_bytes(), 400),
        // too large: 413
        (Endpoint::CreateSession, big.clone().into_bytes(), 413),
        (Endpoint::PhonePeCallback, big.into_bytes(), 413),
        // validation: 422
        (Endpoint::CreateSession, session(r#""hours":-1"#).into_bytes(), 422),
        (Endpoint::CreateSession, session(r#""hours":0"#).into_bytes(), 422),
        (Endpoint::CreateSession, session(r#""hours":9223372036854775807"#).into_bytes(), 422),
        (Endpoint::CreateSession, session(r#""hours":null"#).into_bytes(), 422),
        (
            Endpoint::CreateSession,
            r#"{"lot_id":"MG-ROAD-1","vehicle_number":"КА-01-АВ-1234","hours":2}"#.as_bytes().to_vec(),
            422,
        ),
        (
            Endpoint::CreateSession,
            r#"{"lot_id":"MG-ROAD-1","vehicle_number":"ＫＡ０１ＡＢ１２３４","hours":2}"#.as_bytes().to_vec(),
            422,
        ),
        (Endpoint::CreatePayment, pay("\"-100.00\"").into_bytes(), 422),
        (Endpoint::CreatePayment, pay("-100.00").into_bytes(), 422),
        (Endpoint::CreatePayment, pay("\"100.001\"").into_bytes(), 422),
        (Endpoint::CreatePayment, pay("1e2").into_bytes(), 422),
        (Endpoint::CreatePayment, pay("1e400").into_bytes(), 422),
        (Endpoint::CreatePayment, pay("18446744073709551616").into_bytes(), 422),
        (Endpoint::Refund, refund("\"-1.00\"").into_bytes(), 422),
        (Endpoint::Refund, refund("0.001").into_bytes(), 422),
        (Endpoint::Refund, refund("\"0.00\"").into_bytes(), 422),
        (Endpoint::Refund, refund("\"1e2\"").into_bytes(), 422),
        (Endpoint::Refund, refund("\"NaN\"").into_bytes(), 422),
        (Endpoint::Refund, refund("\"١٠.٠٠\"").into_bytes(), 422),
        (Endpoint::Refund, refund("99999999999999999999.99").into_bytes(), 422),
    ];
    for (endpoint, body, want) in cases {
        let req = owner_request(body);
        let route = endpoint.route();
        let (status, text) = world.call(route, &req);
        check_answer(route, status, &text, &req).unwrap();
        assert_eq!(status.as_u16(), want, "{endpoint:?} {req:?}: {text}");
    }
    // A base64 event body that is not UTF-8 (API Gateway's binary bodies).
    let mut req = owner_request(vec![0xff, 0xfe, b'{', b'}']);
    req.force_base64 = true;
    let (status, text) = world.call(Endpoint::CreateSession.route(), &req);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    // No claims at all, or a subject that is not a user id: 401 on every route that needs one.
    for claims in [
        None,
        Some(BTreeMap::new()),
        Some(BTreeMap::from([("sub".to_owned(), "driver 1".to_owned())])),
        Some(BTreeMap::from([("sub".to_owned(), "x".repeat(129))])),
    ] {
        let mut req = owner_request(br#"{"lot_id":"MG-ROAD-1","vehicle_number":"KA-01-AB-1234","hours":2}"#.to_vec());
        req.claims = claims;
        req.session_param = Some(s.unpaid_session.clone());
        for route in ROUTES.iter().filter(|r| r.requires_token) {
            let (status, text) = world.call(route, &req);
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {req:?}: {text}", route.path);
        }
    }
    // Odd Idempotency-Keys: 422 before anything is created.
    for key in [String::new(), "x".repeat(256), "ключ".to_owned(), "a\tb".to_owned()] {
        let mut req = owner_request(pay("\"100.00\"").into_bytes());
        req.headers.push(("idempotency-key".into(), key.clone()));
        let (status, text) = world.call(Endpoint::CreatePayment.route(), &req);
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{key:?}: {text}");
    }
}
