//! Entry passes and QR images through the built function binaries, as on AWS: the pass
//! functions (`Route::uses_pass_keys`: get-pass, get-pass-qr, pass-keys) start with the
//! environment template.yaml gives them, `PARKPAY_PASS_KEYS_SSM_PARAMETER` = the template's
//! `PassKeysParameterName` default, against an SSM stand-in holding the fixtures' pass keys
//! (`fixtures::PASS_KEYS`), their logs at TRACE. The tests check:
//!
//! - no SSM call during init, nor while idle; one `GetParameter` (that name, decrypted, signed
//!   for SSM in the region) on each function's first request that needs the keys, none after;
//! - the pass get-pass signs verifies against the JWKS pass-keys publishes (`parkpay_passes::
//!   verify`, what a gate does offline) and names its session;
//! - get-pass-qr's PNG comes back base64-encoded (`isBase64Encoded`), and decodes (PNG, then QR)
//!   to that same pass; payment-qr's PNG decodes to the pending payment's UPI link;
//! - while SSM fails (refused, throttled) the pass routes answer 503 `PASS_KEYS_UNAVAILABLE`, and
//!   the first request after it recovers succeeds with one more call;
//! - the signing key (or any 12-character piece of its stored form) appears in no log line.
//!
//! Like the other built-binary tests, these need DynamoDB Local (`PARKPAY_DYNAMODB_ENDPOINT`) and
//! skip with `PARKPAY_SKIP_DYNAMODB=1`.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use parkpay_api::{Endpoint, ROUTES};
use parkpay_lambda_harness::events::{self, EventFile};
use parkpay_lambda_harness::process::{self, HttpAnswer, Running};
use parkpay_lambda_harness::ssm_standin::{Call, Failure, GET_PARAMETER, SsmStandIn};
use parkpay_lambda_harness::template::Template;
use parkpay_lambda_harness::world::{self, Secrets, World};
use parkpay_lambda_harness::{fixtures, workspace};

const TIMEOUT: Duration = Duration::from_secs(30);
const KEYS_VARIABLE: &str = "PARKPAY_PASS_KEYS_SSM_PARAMETER";
/// The most attempts the AWS SDK's standard retry mode makes for one call.
const SDK_MAX_ATTEMPTS: usize = 3;

struct Setup {
    template: Template,
    world: World,
    bin_dir: PathBuf,
    /// The SSM parameter name template.yaml gives the pass functions.
    parameter: String,
}

async fn setup(prefix: &str) -> Option<Setup> {
    let Some(endpoint) = world::dynamodb_endpoint().unwrap_or_else(|e| panic!("{e}")) else {
        eprintln!("SKIPPED: {prefix}: the pass functions against an SSM stand-in (PARKPAY_SKIP_DYNAMODB=1)");
        return None;
    };
    let bin_dir = bin_dir();
    let template = Template::load(&workspace::template_path()).unwrap_or_else(|e| panic!("{e}"));
    let world = World::dynamodb(&endpoint, &template, prefix).await.unwrap_or_else(|e| panic!("{e}"));
    let pass_functions: Vec<_> = ROUTES.iter().filter(|r| r.uses_pass_keys).collect();
    assert_eq!(pass_functions.len(), 3, "get-pass, get-pass-qr and pass-keys use the pass keys");
    let names: Vec<String> = pass_functions
        .iter()
        .map(|r| {
            world::ssm_parameter_name(&world.offline.deployment, &template.functions[r.function], KEYS_VARIABLE)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let parameter = names[0].clone();
    assert!(names.iter().all(|n| *n == parameter), "every pass function reads the same parameter: {names:?}");
    assert_eq!(parameter, "/parkpay/passes/keys", "the template's default PassKeysParameterName");
    Some(Setup { template, world, bin_dir, parameter })
}

fn bin_dir() -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| workspace::built_binaries(&[parkpay_api::ROUTES_BINARY]))
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Start `name`'s function with its template environment, the pass keys from `ssm` (by name,
/// never the keys themselves), and its logs at TRACE.
async fn start(s: &Setup, name: &str, ssm: &SsmStandIn) -> Running {
    let f = s.template.function_named(name).unwrap_or_else(|| panic!("template.yaml has no function {name}"));
    let secrets = Secrets::Ssm { endpoint: ssm.url() };
    let mut env = world::function_env_with(f, &s.world.offline, &secrets).unwrap_or_else(|e| panic!("{e}"));
    let route = ROUTES.iter().find(|r| r.name == name).expect("a route");
    if route.uses_pass_keys {
        assert!(
            env.iter().any(|(k, v)| k == KEYS_VARIABLE && *v == s.parameter)
                && !env.iter().any(|(k, _)| k == "PARKPAY_PASS_KEYS"),
            "{name} must get the SSM parameter's name, never the keys: {env:?}"
        );
    }
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into()));
    env.push(("RUST_LOG".into(), "trace".into()));
    let exe = s.bin_dir.join(f.binary.as_deref().expect("a binary"));
    let launch = process::Launch { exe, function_name: f.logical_id.clone(), env };
    process::start(&launch, TIMEOUT).await.unwrap_or_else(|e| panic!("{e}"))
}

fn event_file(name: &str) -> EventFile {
    events::load_dir(&workspace::events_dir())
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no events/{name}"))
}

async fn invoke(running: &Running, event: &str, what: &str) -> HttpAnswer {
    let answer = running.invoke(event, TIMEOUT).await.unwrap_or_else(|e| panic!("{what}: {e}\n{}", running.logs()));
    assert!(answer.ok, "{what}: the function returned an error to the runtime: {}", answer.body_text());
    process::http_answer(&answer.body).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Invoke with `events/{name}` and check the answer EXPECTATIONS gives it.
async fn invoke_file(running: &Running, name: &str) -> HttpAnswer {
    let a = invoke(running, &event_file(name).text, name).await;
    let expect = events::expectation(name).unwrap_or_else(|| panic!("no expectation for {name}"));
    if let Err(e) = events::check_answer(expect, &a) {
        panic!("{e}\n{}", running.logs());
    }
    a
}

async fn assert_no_call_at_init(name: &str, ssm: &SsmStandIn, running: &Running) {
    assert!(ssm.calls().is_empty(), "{name} called SSM during init: {:?}\n{}", ssm.calls(), running.logs());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(ssm.calls().is_empty(), "{name} called SSM after init with no request: {:?}", ssm.calls());
}

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

/// The logs are at TRACE, and hold no piece of the signing seed (as stored: base64url).
fn assert_logs_keep_the_keys(name: &str, logs: &str) {
    assert!(logs.contains("\"level\":\"TRACE\""), "{name}: no TRACE line, so the log level is not TRACE:\n{logs}");
    let stored: serde_json::Value = serde_json::from_str(fixtures::PASS_KEYS).expect("the fixture keys are JSON");
    let seed: Vec<char> = stored["signing"].as_str().expect("a signing seed").chars().collect();
    for piece in seed.windows(12).map(|w| w.iter().collect::<String>()) {
        if let Some(at) = logs.find(&piece) {
            let start = logs[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = logs[at..].find('\n').map_or(logs.len(), |i| at + i);
            panic!("{name} logged (part of) the signing key, {piece:?}, in:\n{}", &logs[start..end]);
        }
    }
}

/// The text of the one QR code in a PNG image.
fn read_qr_png(bytes: &[u8]) -> String {
    assert!(bytes.starts_with(&events::PNG_SIGNATURE), "not a PNG");
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a buffer size")];
    let info = reader.next_frame(&mut pixels).expect("a PNG frame");
    assert_eq!(info.color_type, png::ColorType::Grayscale, "greyscale, expanded to 8 bits");
    let (w, h) = (info.width as usize, info.height as usize);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("a readable QR code").1
}

fn now_epoch_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_signed_with_keys_from_ssm_verify_against_the_published_keys() {
    let Some(s) = setup("passes").await else { return };
    let ssm = SsmStandIn::start([(s.parameter.clone(), fixtures::PASS_KEYS)]).unwrap();

    // The JWKS, as a gate fetches it (no token): one GetParameter on its first request.
    let keys_fn = start(&s, "pass-keys", &ssm).await;
    assert_no_call_at_init("pass-keys", &ssm, &keys_fn).await;
    let jwks = invoke_file(&keys_fn, "pass-keys.json").await.body;
    invoke_file(&keys_fn, "pass-keys.json").await;
    let calls = ssm.calls();
    assert_eq!(calls.len(), 1, "pass-keys reads the keys once: {calls:?}");
    assert_get_parameter(&calls[0], &s.parameter, 200);
    let logs = keys_fn.logs();
    keys_fn.stop();
    assert_logs_keep_the_keys("pass-keys", &logs);

    // The pass: read keys once (a request refused before the keys are needed reads none).
    let pass_fn = start(&s, "get-pass", &ssm).await;
    assert_no_call_at_init_after(&ssm, 1, "get-pass").await;
    invoke_file(&pass_fn, "get-pass.revoked.json").await;
    assert_eq!(ssm.calls().len(), 1, "no keys needed to refuse a revoked pass: {:?}", ssm.calls());
    let pass = invoke_file(&pass_fn, "get-pass.json").await.body;
    let again = invoke_file(&pass_fn, "get-pass.json").await.body;
    let calls = ssm.calls();
    assert_eq!(calls.len(), 2, "get-pass reads the keys once: {calls:?}");
    assert_get_parameter(&calls[1], &s.parameter, 200);
    let token = pass["pass"].as_str().expect("a pass");
    assert_eq!(again["pass"], pass["pass"], "the same session's pass is the same token");
    // What a gate does offline: the pass verifies against the published JWKS.
    let claims = parkpay_passes::verify(token, &jwks, now_epoch_s(), 60).unwrap_or_else(|e| panic!("{e}: {token}"));
    assert_eq!(claims.sid, fixtures::session_id(fixtures::PASS).as_str());
    let logs = pass_fn.logs();
    pass_fn.stop();
    assert_logs_keep_the_keys("get-pass", &logs);

    // The pass as a QR image: base64 for API Gateway, a PNG whose QR code is that very pass.
    let qr_fn = start(&s, "get-pass-qr", &ssm).await;
    assert_no_call_at_init_after(&ssm, 2, "get-pass-qr").await;
    let png = invoke_file(&qr_fn, "get-pass-qr.json").await;
    assert!(png.base64_encoded, "a PNG reaches API Gateway base64-encoded");
    assert_eq!(read_qr_png(&png.bytes), token, "the QR code carries the pass");
    let svg = invoke_file(&qr_fn, "get-pass-qr.svg.json").await;
    assert!(!svg.base64_encoded && String::from_utf8_lossy(&svg.bytes).contains("<svg "));
    let calls = ssm.calls();
    assert_eq!(calls.len(), 3, "get-pass-qr reads the keys once: {calls:?}");
    assert_get_parameter(&calls[2], &s.parameter, 200);
    let logs = qr_fn.logs();
    qr_fn.stop();
    assert_logs_keep_the_keys("get-pass-qr", &logs);

    // A pending UPI payment's link as a QR image (no pass keys, no SSM).
    let upi_fn = start(&s, "payment-qr", &ssm).await;
    let png = invoke_file(&upi_fn, "payment-qr.json").await;
    assert!(png.base64_encoded);
    assert_eq!(read_qr_png(&png.bytes), fixtures::UPI_LINK, "the QR code carries the UPI link");
    upi_fn.stop();
    assert_eq!(ssm.calls().len(), 3, "payment-qr never reads the pass keys: {:?}", ssm.calls());
    assert!(!ROUTES.iter().any(|r| r.endpoint == Endpoint::PaymentQr && r.uses_pass_keys));
}

/// No call beyond the `before` earlier ones during `name`'s init or while it is idle.
async fn assert_no_call_at_init_after(ssm: &SsmStandIn, before: usize, name: &str) {
    assert_eq!(ssm.calls().len(), before, "{name} called SSM during init: {:?}", ssm.calls());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ssm.calls().len(), before, "{name} called SSM with no request: {:?}", ssm.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_routes_answer_503_while_ssm_fails_then_recover() {
    let Some(s) = setup("passes-ssm-fail").await else { return };
    let ssm = SsmStandIn::refusing([(s.parameter.clone(), fixtures::PASS_KEYS)]).unwrap();
    let running = start(&s, "get-pass", &ssm).await;
    let event = event_file("get-pass.json");
    let unavailable = |a: &HttpAnswer, what: &str| {
        assert_eq!(a.status, 503, "{what}: {}", a.body);
        assert_eq!(a.body["error"]["code"], "PASS_KEYS_UNAVAILABLE", "{what}: {}", a.body);
    };

    // SSM unreachable: 503, nothing kept.
    unavailable(&invoke(&running, &event.text, "SSM refusing").await, "SSM refusing");
    assert!(ssm.calls().is_empty());

    // SSM throttling: the SDK retries, then 503 again (no failure is kept either).
    ssm.listen().unwrap();
    ssm.fail_with(Some(Failure::Throttling));
    unavailable(&invoke(&running, &event.text, "SSM throttling").await, "SSM throttling");
    let throttled = ssm.calls();
    assert!((1..=SDK_MAX_ATTEMPTS).contains(&throttled.len()), "one GetParameter with retries: {throttled:?}");
    for call in &throttled {
        assert_get_parameter(call, &s.parameter, 400);
    }

    // Recovered: one more call, the pass, and the keys kept from then on.
    ssm.fail_with(None);
    invoke_file(&running, "get-pass.json").await;
    invoke_file(&running, "get-pass.json").await;
    let calls = ssm.calls();
    assert_eq!(calls.len(), throttled.len() + 1, "one GetParameter after SSM recovered: {calls:?}");
    assert_get_parameter(calls.last().unwrap(), &s.parameter, 200);
    let logs = running.logs();
    running.stop();
    assert_logs_keep_the_keys("get-pass", &logs);
}
