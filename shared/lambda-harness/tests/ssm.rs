//! The salt key read from SSM by the built function binaries, as on AWS: each function starts
//! with the environment template.yaml gives it with its default parameters (PG v1 only),
//! `PHONEPE_SALT_KEY_SSM_PARAMETER` included (the name in the template's parameter default),
//! against an SSM stand-in
//! (`lambda_harness::ssm_standin`, reached through `AWS_ENDPOINT_URL_SSM`) that holds the
//! simulator's salt key, with its log level at TRACE. The tests check, for create-payment and
//! phonepe-callback:
//!
//! - no SSM call during init (by the first `/next`) nor while no request needs PhonePe;
//! - exactly one `GetParameter` (of the template's name, decrypted) on the first request that
//!   needs PhonePe, and none after: the key is kept;
//! - while SSM fails (connection refused, `ThrottlingException`, `500`), a request answers 503
//!   with a stable error code, and the first one after SSM recovers succeeds, with one more call;
//! - the salt key, or any 12-character piece of it, appears nowhere in the function's TRACE logs.
//!
//! Like the other built-binary tests, these need DynamoDB Local (`PARKPAY_DYNAMODB_ENDPOINT`)
//! and skip with `PARKPAY_SKIP_DYNAMODB=1`.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parkpay_api::config::SIM_SALT_KEY;
use parkpay_lambda_harness::events::{self, EventFile};
use parkpay_lambda_harness::process::{self, HttpAnswer, Running};
use parkpay_lambda_harness::ssm_standin::{Call, Failure, GET_PARAMETER, SsmStandIn};
use parkpay_lambda_harness::template::Template;
use parkpay_lambda_harness::world::{self, Apis, Secrets, World};
use parkpay_lambda_harness::{fixtures, workspace};

const CREATE_PAYMENT: &str = "create-payment";
const CALLBACK: &str = "phonepe-callback";
const TIMEOUT: Duration = Duration::from_secs(30);
const SALT_VARIABLE: &str = "PHONEPE_SALT_KEY_SSM_PARAMETER";
/// The most attempts the AWS SDK's standard retry mode makes for one call.
const SDK_MAX_ATTEMPTS: usize = 3;

struct Setup {
    template: Template,
    world: World,
    bin_dir: PathBuf,
    /// The SSM parameter name template.yaml passes as `PHONEPE_SALT_KEY_SSM_PARAMETER`.
    parameter: String,
}

/// The world of one test, or `None` (skip) where the other built-binary tests skip.
async fn setup(prefix: &str) -> Option<Setup> {
    let Some(endpoint) = world::dynamodb_endpoint().unwrap_or_else(|e| panic!("{e}")) else {
        eprintln!("SKIPPED: {prefix}: the built binaries against an SSM stand-in (PARKPAY_SKIP_DYNAMODB=1)");
        return None;
    };
    let bin_dir = bin_dir();
    let template = Template::load(&workspace::template_path()).unwrap_or_else(|e| panic!("{e}"));
    // The template's defaults: PG v1 only, its salt key in the default parameter.
    let sim = parkpay_simulator::SimulatorConfig::sandbox().with_fast_timings();
    let world =
        World::dynamodb_with(&endpoint, &template, prefix, Apis::V1Only, sim).await.unwrap_or_else(|e| panic!("{e}"));
    let salt_name = |binary: &str| {
        world::ssm_parameter_name(&world.offline.deployment, function(&template, binary), SALT_VARIABLE)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let parameter = salt_name(CREATE_PAYMENT);
    for binary in [CREATE_PAYMENT, CALLBACK] {
        assert_eq!(salt_name(binary), parameter, "{binary}: every PhonePe function reads the same salt parameter");
    }
    assert!(parameter.starts_with('/'), "template.yaml's salt parameter name {parameter:?} is not an SSM path");
    Some(Setup { template, world, bin_dir, parameter })
}

/// The built binaries (one build for the whole test binary).
fn bin_dir() -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| workspace::built_binaries(&[parkpay_api::ROUTES_BINARY]))
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn function<'t>(t: &'t Template, name: &str) -> &'t parkpay_lambda_harness::template::Function {
    t.function_named(name).unwrap_or_else(|| panic!("template.yaml has no function named {name}"))
}

/// Start `binary` with its template environment, the salt from `ssm`, and its logs at TRACE.
async fn start(s: &Setup, binary: &str, ssm: &SsmStandIn) -> Running {
    let f = function(&s.template, binary);
    let secrets = Secrets::Ssm { endpoint: ssm.url() };
    let mut env = world::function_env_with(f, &s.world.offline, &secrets).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        env.iter().any(|(k, v)| k == "PHONEPE_SALT_KEY_SSM_PARAMETER" && *v == s.parameter)
            && !env.iter().any(|(k, _)| k == "PHONEPE_SALT_KEY" || k == "PHONEPE_API_KEY"),
        "{binary} must get the SSM parameter's name, never the key: {env:?}"
    );
    // Lambda's advanced logging control (LoggingConfig.ApplicationLogLevel) turned up to TRACE;
    // RUST_LOG too, for a subscriber that reads only that.
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into()));
    env.push(("RUST_LOG".into(), "trace".into()));
    let exe = s.bin_dir.join(f.binary.as_deref().unwrap_or_else(|| panic!("{binary}: no BuildProperties.Binary")));
    let launch = process::Launch { exe, function_name: f.logical_id.clone(), env };
    process::start(&launch, TIMEOUT).await.unwrap_or_else(|e| panic!("{e}"))
}

/// The function reached its first `/next` without calling SSM, and makes no call on its own
/// afterwards (a fetch started in the background at init would show here).
async fn assert_no_call_at_init(binary: &str, ssm: &SsmStandIn, running: &Running) {
    let at_first_next = ssm.calls();
    assert!(
        at_first_next.is_empty(),
        "{binary} called SSM during init (before its first /next): {at_first_next:?}\n{}",
        running.logs()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = ssm.calls();
    assert!(idle.is_empty(), "{binary} called SSM after init with no request: {idle:?}\n{}", running.logs());
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

/// Invoke with `events/{name}` and check the answer EXPECTATIONS gives it.
async fn invoke_file(running: &Running, name: &str) -> HttpAnswer {
    let file = event_file(name);
    let a = invoke(running, &file.text, name).await;
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

/// Invoke create-payment for `session` and want `status` (and `code`, for an error).
async fn create_payment(running: &Running, session: u64, key: &str, status: u16, code: Option<&str>) -> HttpAnswer {
    let what = format!("create-payment for fixture session {session} (Idempotency-Key {key})");
    let a = invoke(running, &create_payment_event(session, key), &what).await;
    assert_eq!(a.status, status, "{what}: {}\n{}", a.body, running.logs());
    if let Some(code) = code {
        assert_eq!(a.body["error"]["code"], code, "{what}: {}", a.body);
    }
    if status == 201 {
        assert_eq!(a.body["session_id"], fixtures::session_id(session).as_str(), "{what}: {}", a.body);
        assert!(a.body["redirect_url"].as_str().is_some_and(|u| !u.is_empty()), "{what}: {}", a.body);
    }
    a
}

/// A `GetParameter` of the template's parameter, decrypted, signed for SSM in the function's
/// region, answered `status`.
fn assert_get_parameter(call: &Call, parameter: &str, status: u16) {
    assert_eq!(call.target, GET_PARAMETER, "{call:?}");
    assert_eq!(call.name.as_deref(), Some(parameter), "the template's parameter name: {call:?}");
    assert_eq!(call.with_decryption, Some(true), "a SecureString must be read decrypted: {call:?}");
    assert!(
        call.credential_scope.as_deref().is_some_and(|s| s.ends_with(&format!("/{}/ssm/aws4_request", world::REGION))),
        "SigV4-signed for ssm in {}: {call:?}",
        world::REGION
    );
    assert_eq!(call.status, status, "{call:?}");
}

/// The calls made since `before` (a count of earlier calls).
fn new_calls(ssm: &SsmStandIn, before: usize) -> Vec<Call> {
    ssm.calls().into_iter().skip(before).collect()
}

/// The salt key and every 12-character piece of it, as written and without its hyphens (lower
/// case: the logs are compared in lower case).
fn salt_pieces(salt: &str) -> Vec<String> {
    let salt = salt.to_ascii_lowercase();
    let bare: String = salt.chars().filter(|c| *c != '-').collect();
    let mut pieces = vec![salt.clone(), bare.clone()];
    for s in [&salt, &bare] {
        let chars: Vec<char> = s.chars().collect();
        for w in chars.windows(12) {
            pieces.push(w.iter().collect());
        }
    }
    pieces.sort();
    pieces.dedup();
    pieces
}

/// The logs really are at TRACE (else this proves nothing), and hold no piece of the salt key.
fn assert_logs_keep_the_salt(binary: &str, logs: &str) {
    assert!(
        logs.contains("\"level\":\"TRACE\""),
        "{binary}: no TRACE line in its logs, so the log level is not TRACE:\n{logs}"
    );
    let lower = logs.to_ascii_lowercase();
    for piece in salt_pieces(SIM_SALT_KEY) {
        if let Some(at) = lower.find(&piece) {
            let line_start = logs[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = logs[at..].find('\n').map_or(logs.len(), |i| at + i);
            panic!("{binary} logged (part of) the salt key, {piece:?}, in:\n{}", &logs[line_start..line_end]);
        }
    }
}

#[test]
fn salt_pieces_cover_the_key() {
    let pieces = salt_pieces("099eb0cd-02cf-4e2a-8aca-3e6c6aff0399");
    assert!(pieces.contains(&"099eb0cd-02cf-4e2a-8aca-3e6c6aff0399".to_owned()));
    assert!(pieces.contains(&"099eb0cd02cf4e2a8aca3e6c6aff0399".to_owned()));
    assert!(pieces.contains(&"3e6c6aff0399".to_owned()));
    assert!(pieces.iter().all(|p| p.len() >= 12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_payment_reads_the_salt_from_ssm_once_on_first_use() {
    let started = Instant::now();
    let Some(s) = setup("ssm-once").await else { return };
    let ssm = SsmStandIn::start([(s.parameter.clone(), SIM_SALT_KEY)]).unwrap();
    let running = start(&s, CREATE_PAYMENT, &ssm).await;
    assert_no_call_at_init(CREATE_PAYMENT, &ssm, &running).await;

    // A request that ends before PhonePe is needed (another driver's session): still no call.
    invoke_file(&running, "create-payment.other-user.json").await;
    assert!(ssm.calls().is_empty(), "SSM read before any request needed PhonePe: {:?}", ssm.calls());

    // The first payment: one GetParameter, and the simulator took our checksum (201), so the
    // key is the one SSM holds, decrypted.
    invoke_file(&running, "create-payment.json").await;
    let calls = ssm.calls();
    assert_eq!(calls.len(), 1, "one GetParameter on first use: {calls:?}\n{}", running.logs());
    assert_get_parameter(&calls[0], &s.parameter, 200);

    // The next payment (another session) signs with the key in memory: no call.
    create_payment(&running, fixtures::BOOKED, "ssm-once-second", 201, None).await;
    let calls = ssm.calls();
    assert_eq!(calls.len(), 1, "the salt key is fetched once per execution environment: {calls:?}");

    let logs = running.logs();
    running.stop();
    assert_logs_keep_the_salt(CREATE_PAYMENT, &logs);
    eprintln!("create-payment, SSM once on first use: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_payment_answers_503_while_ssm_fails_then_recovers() {
    let started = Instant::now();
    let Some(s) = setup("ssm-fail").await else { return };
    let ssm = SsmStandIn::refusing([(s.parameter.clone(), SIM_SALT_KEY)]).unwrap();
    let running = start(&s, CREATE_PAYMENT, &ssm).await;

    // SSM unreachable (connection refused): 503, and nothing cached.
    create_payment(&running, fixtures::PAYABLE, "ssm-fail-refused", 503, Some("GATEWAY_UNAVAILABLE")).await;
    assert!(ssm.calls().is_empty());

    // SSM throttling: the SDK retries, then 503 again; the function tried again (no cached failure).
    ssm.listen().unwrap();
    ssm.fail_with(Some(Failure::Throttling));
    create_payment(&running, fixtures::PAYABLE, "ssm-fail-throttled", 503, Some("GATEWAY_UNAVAILABLE")).await;
    let throttled = ssm.calls();
    assert!(
        (1..=SDK_MAX_ATTEMPTS).contains(&throttled.len()),
        "one GetParameter (with the SDK's retries) for the request: {throttled:?}"
    );
    for call in &throttled {
        assert_get_parameter(call, &s.parameter, 400);
    }

    // SSM answers again: the retry with the first request's Idempotency-Key loads the key with
    // one call and succeeds (the payment was kept PENDING, never FAILED, while nothing could be
    // sent).
    ssm.fail_with(None);
    create_payment(&running, fixtures::PAYABLE, "ssm-fail-refused", 201, None).await;
    let recovered = new_calls(&ssm, throttled.len());
    assert_eq!(recovered.len(), 1, "one more GetParameter after SSM recovered: {recovered:?}\n{}", running.logs());
    assert_get_parameter(&recovered[0], &s.parameter, 200);

    // And keeps it.
    create_payment(&running, fixtures::BOOKED, "ssm-fail-after", 201, None).await;
    assert_eq!(ssm.calls().len(), throttled.len() + 1, "no call once the key is loaded: {:?}", ssm.calls());

    let logs = running.logs();
    running.stop();
    assert_logs_keep_the_salt(CREATE_PAYMENT, &logs);
    eprintln!(
        "create-payment, 503 while SSM fails then recovery: {:?} ({} throttled attempts)",
        started.elapsed(),
        throttled.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phonepe_callback_reads_the_salt_from_ssm_on_first_use_and_after_a_failure() {
    let started = Instant::now();
    let Some(s) = setup("ssm-callback").await else { return };
    let ssm = SsmStandIn::start([(s.parameter.clone(), SIM_SALT_KEY)]).unwrap();
    ssm.fail_with(Some(Failure::InternalError));
    let running = start(&s, CALLBACK, &ssm).await;
    assert_no_call_at_init(CALLBACK, &ssm, &running).await;

    // SSM failing: PhonePe's callback cannot be checked yet; 503 so that PhonePe sends it again.
    let callback = event_file("phonepe-callback.json");
    let a = invoke(&running, &callback.text, "phonepe-callback.json while SSM fails").await;
    assert_eq!(a.status, 503, "{}\n{}", a.body, running.logs());
    assert_eq!(a.body["error"]["code"], "KEYS_UNAVAILABLE", "{}", a.body);
    let failed = ssm.calls();
    assert!((1..=SDK_MAX_ATTEMPTS).contains(&failed.len()), "one GetParameter (with retries): {failed:?}");
    for call in &failed {
        assert_get_parameter(call, &s.parameter, 500);
    }

    // SSM recovered: PhonePe's retry of the same callback is verified and applied, one call.
    ssm.fail_with(None);
    invoke_file(&running, "phonepe-callback.json").await;
    let recovered = new_calls(&ssm, failed.len());
    assert_eq!(recovered.len(), 1, "one more GetParameter after SSM recovered: {recovered:?}\n{}", running.logs());
    assert_get_parameter(&recovered[0], &s.parameter, 200);

    // A forged callback is refused with the key in memory: no call.
    invoke_file(&running, "phonepe-callback.forged.json").await;
    assert_eq!(ssm.calls().len(), failed.len() + 1, "no call once the key is loaded: {:?}", ssm.calls());

    let logs = running.logs();
    running.stop();
    assert_logs_keep_the_salt(CALLBACK, &logs);
    eprintln!("phonepe-callback, SSM failure then recovery: {:?}", started.elapsed());
}
