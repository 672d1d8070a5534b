//! PhonePe PG v2 through the built function binaries, as on AWS for a deployment with PG v2
//! only (`world::Apis::V2Only`: `PhonePeApiVersion` v2, the client secret and the webhook
//! password in SSM, no salt key parameter): each function starts with the environment
//! template.yaml gives it there, its secrets' parameter names included, against an SSM stand-in
//! holding them (`AWS_ENDPOINT_URL_SSM`), on DynamoDB Local through the recording proxy, its
//! logs at TRACE. No token is stored when the functions start (a new deployment's table).
//!
//! - create-payment: no SSM or DynamoDB call during init, nor for a request that ends before
//!   PhonePe is needed; on the first payment, one `GetParameter` (decrypted) of each of its two
//!   secrets, one token request for the deployment (stored in the table: `GetItem` and the
//!   conditional `UpdateItem`s of the `TOKEN#…` item), the payment made with PG v2 (an order at
//!   the simulator, the record's API v2); the next payment reads no secret and asks no token.
//! - phonepe-callback: `events/phonepe-callback.v2-webhook.json` (a v2 webhook for fixture 10's
//!   v2 payment) is confirmed by a v2 status read and applied; a webhook without its
//!   `Authorization` is refused before any secret is read; a forged one is refused.
//! - Both: every DynamoDB call is allowed by the function's policy in that deployment, and the
//!   `TOKEN#` grants are needed: without the statements of the `HasV2Client` condition (the
//!   template's defaults) the token's `UpdateItem` would be refused. Neither the client secret
//!   nor the access token appears in the TRACE logs.
//!
//! Like the other built-binary tests, these need DynamoDB Local (`PARKPAY_DYNAMODB_ENDPOINT`)
//! and skip with `PARKPAY_SKIP_DYNAMODB=1`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parkpay_domain::GatewayApi;
use parkpay_lambda_harness::dynamo_proxy::{Call as DynamoCall, DynamoProxy};
use parkpay_lambda_harness::events::{self, EventFile};
use parkpay_lambda_harness::process::{self, HttpAnswer, Running};
use parkpay_lambda_harness::ssm_standin::{Call, GET_PARAMETER, SsmStandIn};
use parkpay_lambda_harness::template::{Function, Template};
use parkpay_lambda_harness::world::{self, Apis, Offline, Secrets, World};
use parkpay_lambda_harness::{fixtures, workspace};
use parkpay_simulator::{SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_WEBHOOK_PASSWORD, SimulatorConfig};

const CREATE_PAYMENT: &str = "create-payment";
const CALLBACK: &str = "phonepe-callback";
const TIMEOUT: Duration = Duration::from_secs(30);
const CLIENT_SECRET_VARIABLE: &str = "PHONEPE_CLIENT_SECRET_SSM_PARAMETER";
const WEBHOOK_PASSWORD_VARIABLE: &str = "PHONEPE_WEBHOOK_PASSWORD_SSM_PARAMETER";
const WEBHOOK_FILE: &str = "phonepe-callback.v2-webhook.json";

struct Setup {
    template: Template,
    world: World,
    bin_dir: PathBuf,
    ssm: SsmStandIn,
    proxy: DynamoProxy,
    /// The world's offline values, DynamoDB reached through `proxy`.
    offline: Offline,
    /// The SSM parameter names the deployment gives: client secret, webhook password.
    names: (String, String),
    /// Token requests the simulator had before the function started (seeding's).
    tokens_before: u64,
}

async fn setup(prefix: &str) -> Option<Setup> {
    let Some(endpoint) = world::dynamodb_endpoint().unwrap_or_else(|e| panic!("{e}")) else {
        eprintln!("SKIPPED: {prefix}: PG v2 through the built binaries (PARKPAY_SKIP_DYNAMODB=1)");
        return None;
    };
    let bin_dir = bin_dir();
    let template = Template::load(&workspace::template_path()).unwrap_or_else(|e| panic!("{e}"));
    let sim = SimulatorConfig::sandbox().with_fast_timings();
    let world =
        World::dynamodb_with(&endpoint, &template, prefix, Apis::V2Only, sim).await.unwrap_or_else(|e| panic!("{e}"));
    let d = &world.offline.deployment;
    let name = |var: &str| {
        let names: BTreeSet<String> = [CREATE_PAYMENT, CALLBACK]
            .iter()
            .map(|f| world::ssm_parameter_name(d, function(&template, f), var).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert_eq!(names.len(), 1, "{var}: every PhonePe function reads the same parameter: {names:?}");
        names.into_iter().next().unwrap_or_default()
    };
    let names = (name(CLIENT_SECRET_VARIABLE), name(WEBHOOK_PASSWORD_VARIABLE));
    assert!(names.0.starts_with('/') && names.1.starts_with('/'), "SSM parameter names: {names:?}");
    assert_eq!(name("PHONEPE_SALT_KEY_SSM_PARAMETER"), "", "PG v2 only: no salt key parameter");
    let ssm =
        SsmStandIn::start([(names.0.clone(), SANDBOX_CLIENT_SECRET), (names.1.clone(), SANDBOX_WEBHOOK_PASSWORD)])
            .unwrap();
    let proxy = DynamoProxy::start(&endpoint).await.unwrap();
    let offline = Offline { dynamodb_endpoint: Some(proxy.url.clone()), ..world.offline.clone() };
    let tokens_before = world.simulator.simulator.token_requests();
    Some(Setup { template, world, bin_dir, ssm, proxy, offline, names, tokens_before })
}

fn bin_dir() -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| workspace::built_binaries(&[parkpay_api::ROUTES_BINARY]))
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn function<'t>(t: &'t Template, name: &str) -> &'t Function {
    t.function_named(name).unwrap_or_else(|| panic!("template.yaml has no function named {name}"))
}

/// Start `binary` with its template environment in the v2-only deployment, its secrets' names
/// read from the SSM stand-in, its logs at TRACE; no SSM or DynamoDB call by its first `/next`
/// nor while it has no request.
async fn start(s: &Setup, binary: &str) -> Running {
    let f = function(&s.template, binary);
    let secrets = Secrets::Ssm { endpoint: s.ssm.url() };
    let mut env = world::function_env_with(f, &s.offline, &secrets).unwrap_or_else(|e| panic!("{e}"));
    let get = |k: &str| env.iter().find(|(name, _)| name == k).map(|(_, v)| v.as_str());
    assert_eq!(get("PHONEPE_API_VERSION"), Some("v2"), "{env:?}");
    assert_eq!(get("PHONEPE_CLIENT_ID"), Some(SANDBOX_CLIENT_ID), "{env:?}");
    assert_eq!(get(CLIENT_SECRET_VARIABLE), Some(s.names.0.as_str()), "{env:?}");
    assert_eq!(get(WEBHOOK_PASSWORD_VARIABLE), Some(s.names.1.as_str()), "{env:?}");
    for inline in ["PHONEPE_CLIENT_SECRET", "PHONEPE_WEBHOOK_PASSWORD", "PHONEPE_SALT_KEY"] {
        assert!(get(inline).is_none(), "{binary} must get SSM names, never a secret ({inline}): {env:?}");
    }
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into()));
    env.push(("RUST_LOG".into(), "trace".into()));
    let exe = s.bin_dir.join(f.binary.as_deref().unwrap_or_else(|| panic!("{binary}: no BuildProperties.Binary")));
    let launch = process::Launch { exe, function_name: f.logical_id.clone(), env };
    let running = process::start(&launch, TIMEOUT).await.unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.ssm.calls().is_empty(), "{binary} called SSM at init: {:?}", s.ssm.calls());
    let at_init = s.proxy.take();
    assert!(at_init.is_empty(), "{binary} called DynamoDB at init: {at_init:?}");
    running
}

async fn invoke(running: &Running, event: &str, what: &str) -> HttpAnswer {
    let answer = running.invoke(event, TIMEOUT).await.unwrap_or_else(|e| panic!("{what}: {e}\n{}", running.logs()));
    assert!(answer.ok, "{what}: the function returned an error to the runtime: {}", answer.body_text());
    process::http_answer(&answer.body).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn event_file(name: &str) -> EventFile {
    events::load_dir(&workspace::events_dir())
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no events/{name}"))
}

async fn invoke_file(running: &Running, name: &str) -> HttpAnswer {
    let a = invoke(running, &event_file(name).text, name).await;
    let expect = events::expectation(name).unwrap_or_else(|| panic!("no expectation for {name}"));
    if let Err(e) = events::check(expect, a.status, a.content_type.as_deref(), &a.body) {
        panic!("{e}\n{}", running.logs());
    }
    a
}

/// `events/create-payment.json` for fixture session `session`, with `Idempotency-Key: key`.
fn create_payment_event(session: u64, key: &str) -> String {
    let mut event: serde_json::Value = event_file("create-payment.json").json().unwrap_or_else(|e| panic!("{e}"));
    let mut body: serde_json::Value =
        serde_json::from_str(event["body"].as_str().expect("a text body")).expect("a JSON body");
    body["session_id"] = fixtures::session_id(session).as_str().into();
    let body = body.to_string();
    event["headers"]["content-length"] = body.len().to_string().into();
    event["headers"]["idempotency-key"] = key.into();
    event["body"] = body.into();
    event.to_string()
}

/// The webhook event with its `authorization` header replaced (`None`: removed).
fn webhook_with_authorization(authorization: Option<&str>) -> String {
    let mut event: serde_json::Value = event_file(WEBHOOK_FILE).json().unwrap_or_else(|e| panic!("{e}"));
    let headers = event["headers"].as_object_mut().expect("headers");
    match authorization {
        Some(a) => headers.insert("authorization".into(), a.into()),
        None => headers.remove("authorization"),
    };
    event.to_string()
}

/// Two `GetParameter`s, one of each v2 secret, decrypted, answered 200.
fn assert_secrets_read_once(s: &Setup, calls: &[Call]) {
    let names: BTreeSet<&str> = calls.iter().filter_map(|c| c.name.as_deref()).collect();
    let want: BTreeSet<&str> = [s.names.0.as_str(), s.names.1.as_str()].into();
    assert_eq!(calls.len(), 2, "one GetParameter of each v2 secret: {calls:?}");
    assert_eq!(names, want, "{calls:?}");
    for c in calls {
        assert_eq!(c.target, GET_PARAMETER, "{c:?}");
        assert_eq!(c.with_decryption, Some(true), "a SecureString is read decrypted: {c:?}");
        assert_eq!(c.status, 200, "{c:?}");
    }
}

/// Every DynamoDB call is allowed by `binary`'s policy in the v2-only deployment; the calls on
/// the token's item are there (`GetItem`, and `UpdateItem` when `refreshed`), and the
/// `UpdateItem` would be refused without the PG v2 statements (the template's defaults).
fn assert_calls_allowed(s: &Setup, binary: &str, calls: &BTreeSet<DynamoCall>, refreshed: bool) {
    let f = function(&s.template, binary);
    let v2_only = f.under(&s.offline.deployment);
    let v1_only = f.under(&Apis::V1Only.deployment(&s.template).unwrap_or_else(|e| panic!("{e}")));
    eprintln!("{binary} (PG v2 only): DynamoDB calls {calls:?}");
    for c in calls {
        assert!(
            v2_only.grants.iter().any(|g| g.allows(&c.action, c.leading_key.as_deref())),
            "{binary}: {c:?} is not allowed by its policy with PG v2 only"
        );
    }
    let token = |action: &str| calls.iter().find(|c| c.action == action && c.leading_key.as_deref() == Some("TOKEN#"));
    assert!(token("dynamodb:GetItem").is_some(), "{binary} read no token item: {calls:?}");
    if refreshed {
        let update = token("dynamodb:UpdateItem").unwrap_or_else(|| panic!("{binary} stored no token: {calls:?}"));
        assert!(
            !v1_only.grants.iter().any(|g| g.allows(&update.action, update.leading_key.as_deref())),
            "{binary}: the token's UpdateItem is allowed even without PG v2's statements"
        );
    }
}

/// Neither the client secret (nor any 12-character piece of it that is not also a piece of a
/// parameter's name, which may be logged) nor `token` appears in the logs, which really are at
/// TRACE.
fn assert_logs_keep_secrets(s: &Setup, binary: &str, logs: &str, token: &str) {
    assert!(logs.contains("\"level\":\"TRACE\""), "{binary}: no TRACE line in its logs:\n{logs}");
    let chars: Vec<char> = SANDBOX_CLIENT_SECRET.chars().collect();
    let mut pieces: Vec<String> = chars
        .windows(12)
        .map(|w| w.iter().collect::<String>())
        .filter(|p| !s.names.0.contains(p.as_str()) && !s.names.1.contains(p.as_str()))
        .collect();
    assert!(pieces.len() >= 10, "too few pieces of the secret to look for: {pieces:?}");
    pieces.push(token.to_owned());
    for piece in pieces {
        assert!(!piece.is_empty() && !logs.contains(&piece), "{binary} logged (part of) a secret: {piece:?}");
    }
}

/// The deployment's token as stored in the table.
async fn stored_token(s: &Setup) -> String {
    let name = format!("phonepe-v2#{SANDBOX_CLIENT_ID}");
    let state = s.world.stores.tokens.load_token(&name).await.unwrap_or_else(|e| panic!("{e}"));
    state.token.map(|t| t.access_token).unwrap_or_else(|| panic!("no token {name} stored"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_payment_with_pg_v2_only() {
    let started = Instant::now();
    let Some(s) = setup("v2-create").await else { return };
    let running = start(&s, CREATE_PAYMENT).await;
    let sim = &s.world.simulator.simulator;

    // A request that ends before PhonePe is needed: no secret read, no token.
    invoke_file(&running, "create-payment.other-user.json").await;
    assert!(s.ssm.calls().is_empty(), "SSM read before PhonePe was needed: {:?}", s.ssm.calls());

    // The first payment: both secrets read once, one token for the deployment, a v2 order.
    let a = invoke(&running, &create_payment_event(fixtures::PAYABLE, "v2-first"), "first v2 payment").await;
    assert_eq!(a.status, 201, "{}\n{}", a.body, running.logs());
    assert!(a.body["redirect_url"].as_str().is_some_and(|u| !u.is_empty()), "{}", a.body);
    assert_secrets_read_once(&s, &s.ssm.calls());
    assert_eq!(sim.token_requests() - s.tokens_before, 1, "one token request");
    let txn = a.body["merchant_txn_id"].as_str().expect("merchant_txn_id").to_owned();
    assert!(sim.v2_order(&txn).is_some(), "the payment is an order at PhonePe's v2 API");
    let bundle = s.world.stores.store.load_session(&fixtures::session_id(fixtures::PAYABLE)).await.unwrap().unwrap();
    assert_eq!(bundle.payments.iter().find(|p| p.id().as_str() == txn).map(|p| p.gateway()), Some(GatewayApi::V2));

    // The next payment: secrets and token in memory.
    let b = invoke(&running, &create_payment_event(fixtures::BOOKED, "v2-second"), "second v2 payment").await;
    assert_eq!(b.status, 201, "{}\n{}", b.body, running.logs());
    assert_eq!(s.ssm.calls().len(), 2, "secrets read once per execution environment: {:?}", s.ssm.calls());
    assert_eq!(sim.token_requests() - s.tokens_before, 1, "the token is reused");

    let token = stored_token(&s).await;
    let logs = running.logs();
    running.stop();
    assert_calls_allowed(&s, CREATE_PAYMENT, &s.proxy.take(), true);
    assert_logs_keep_secrets(&s, CREATE_PAYMENT, &logs, &token);
    eprintln!("create-payment, PG v2 only: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phonepe_callback_with_pg_v2_only() {
    let started = Instant::now();
    let Some(s) = setup("v2-callback").await else { return };
    let running = start(&s, CALLBACK).await;
    let sim = &s.world.simulator.simulator;
    let payment = fixtures::payment_id(fixtures::V2_WEBHOOK);

    // No Authorization: refused before the secrets are read.
    let a = invoke(&running, &webhook_with_authorization(None), "v2 webhook without Authorization").await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (401, Some("INVALID_SIGNATURE")), "{}", a.body);
    assert!(s.ssm.calls().is_empty(), "SSM read for an unauthenticated webhook: {:?}", s.ssm.calls());

    // The webhook: authenticated with the password from SSM, confirmed by a v2 status read
    // (with the deployment's first token), applied.
    let status_reads = sim.calls(parkpay_simulator::Operation::Status, payment.as_str());
    invoke_file(&running, WEBHOOK_FILE).await;
    assert_secrets_read_once(&s, &s.ssm.calls());
    assert!(
        sim.calls(parkpay_simulator::Operation::Status, payment.as_str()) > status_reads,
        "the webhook was confirmed by a status read"
    );
    assert_eq!(sim.token_requests() - s.tokens_before, 1, "one token request");
    let bundle = s.world.stores.store.load_session(&fixtures::session_id(fixtures::V2_WEBHOOK)).await.unwrap().unwrap();
    assert_eq!(bundle.session.status().as_str(), "PAID");

    // A forged one (another Authorization): refused, nothing read again.
    let forged = "0".repeat(64);
    let f = invoke(&running, &webhook_with_authorization(Some(&forged)), "forged v2 webhook").await;
    assert_eq!((f.status, f.body["error"]["code"].as_str()), (401, Some("INVALID_SIGNATURE")), "{}", f.body);
    assert_eq!(s.ssm.calls().len(), 2, "{:?}", s.ssm.calls());

    let token = stored_token(&s).await;
    let logs = running.logs();
    running.stop();
    assert_calls_allowed(&s, CALLBACK, &s.proxy.take(), true);
    assert_logs_keep_secrets(&s, CALLBACK, &logs, &token);
    eprintln!("phonepe-callback, PG v2 only: {:?}", started.elapsed());
}
