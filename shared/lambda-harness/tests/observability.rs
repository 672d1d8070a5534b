//! Correlation ids and metrics, as the built function binaries write them (README,
//! "Observability"; `parkpay_api::telemetry`):
//!
//! - `ids_and_metrics_through_built_binaries` drives a payment through the real executables,
//!   each started against the Lambda Runtime API stand-in with its template environment, on
//!   DynamoDB Local and the simulator: create-payment (201), the payer pays at the simulator,
//!   verify-payment (SUCCESS), a request for another driver's session (404), a forged callback
//!   (401), and one reconciliation invocation. For each invocation, EVERY line the process
//!   printed meanwhile is JSON and carries API Gateway's request id (`requestContext.requestId`
//!   of the event) and the Lambda request id (the stand-in's `Lambda-Runtime-Aws-Request-Id`):
//!   log lines in their spans' fields, EMF lines as properties; the answer's `x-request-id` is
//!   API Gateway's id, and so is an error body's `request_id`; the EMF lines (CloudWatch's
//!   `_aws.CloudWatchMetrics`) name the metrics the invocation emitted, in namespace `parkpay`
//!   with the `Service` dimension, with their units and labels.
//! - `every_event_answers_with_its_request_id`: every HTTP file in `events/` through
//!   `parkpay_api::handle` in process: `x-request-id` is its `requestContext.requestId`, and an
//!   error body repeats it.
//!
//! The built-binary test needs DynamoDB Local (`PARKPAY_DYNAMODB_ENDPOINT`) and skips with
//! `PARKPAY_SKIP_DYNAMODB=1`, like the other built-binary tests.
//! `OBS_DUMP=1` prints every line each invocation printed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use parkpay_api::telemetry::{self, REQUEST_ID_HEADER};
use parkpay_api::{Endpoint, ROUTES, SCHEDULED};
use parkpay_lambda_harness::events::{self, EventFile};
use parkpay_lambda_harness::process::{self, Running};
use parkpay_lambda_harness::template::{Function, Template};
use parkpay_lambda_harness::world::{self, Apis, Offline, World};
use parkpay_lambda_harness::{fixtures, workspace};
use parkpay_simulator::Outcome;
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

fn template() -> Template {
    Template::load(&workspace::template_path()).unwrap_or_else(|e| panic!("{e}"))
}

fn event_files() -> Vec<EventFile> {
    events::load_dir(&workspace::events_dir()).unwrap_or_else(|e| panic!("{e}"))
}

fn event(name: &str) -> Value {
    let file = event_files().into_iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no events/{name}"));
    file.json().unwrap_or_else(|e| panic!("{e}"))
}

/// `event` as API Gateway would send it for request `request_id`.
fn with_request_id(mut event: Value, request_id: &str) -> Value {
    event["requestContext"]["requestId"] = request_id.into();
    event
}

/// One metric of an EMF line.
#[derive(Debug, Clone)]
struct Emitted {
    unit: Option<String>,
    /// Dimensions besides `Service`.
    labels: BTreeMap<String, String>,
    value: Value,
}

/// What one invocation printed and answered.
struct Observed {
    what: String,
    lambda_request_id: String,
    /// The function's answer (the API Gateway response, or the scheduled function's value).
    answer: Value,
    /// Every line printed during the invocation, parsed.
    lines: Vec<Value>,
}

impl Observed {
    fn emf(&self) -> Vec<&Value> {
        self.lines.iter().filter(|l| l.get("_aws").is_some()).collect()
    }

    /// The metrics of the EMF lines, by name (checking each line's shape on the way).
    fn metrics(&self) -> BTreeMap<String, Vec<Emitted>> {
        let mut out: BTreeMap<String, Vec<Emitted>> = BTreeMap::new();
        for line in self.emf() {
            let what = &self.what;
            let aws = &line["_aws"];
            assert!(aws["Timestamp"].is_u64(), "{what}: EMF line without a Timestamp: {line}");
            let [ns] = aws["CloudWatchMetrics"].as_array().map(Vec::as_slice).unwrap_or_default() else {
                panic!("{what}: EMF line with other than one CloudWatchMetrics entry: {line}")
            };
            assert_eq!(ns["Namespace"], telemetry::NAMESPACE, "{what}: {line}");
            let dims: Vec<&str> =
                ns["Dimensions"][0].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            assert!(dims.contains(&telemetry::SERVICE_DIMENSION), "{what}: no Service dimension: {line}");
            assert_eq!(
                line[telemetry::SERVICE_DIMENSION],
                world::SERVICE,
                "{what}: Service is PARKPAY_SERVICE: {line}"
            );
            let labels: BTreeMap<String, String> = dims
                .iter()
                .filter(|d| **d != telemetry::SERVICE_DIMENSION)
                .map(|d| (d.to_string(), line[*d].as_str().unwrap_or_default().to_owned()))
                .collect();
            for m in ns["Metrics"].as_array().into_iter().flatten() {
                let name = m["Name"].as_str().unwrap_or_default().to_owned();
                let value = line[name.as_str()].clone();
                assert!(!value.is_null(), "{what}: metric {name} has no value: {line}");
                let unit = m["Unit"].as_str().map(str::to_owned);
                out.entry(name).or_default().push(Emitted { unit, labels: labels.clone(), value });
            }
        }
        out
    }

    /// The metric `name` with exactly `labels`, and its value; fails naming what was emitted.
    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Emitted {
        let all = self.metrics();
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        all.get(name)
            .and_then(|list| list.iter().find(|e| e.labels == want).cloned())
            .unwrap_or_else(|| panic!("{}: no EMF metric {name} {want:?}; emitted: {all:#?}", self.what))
    }

    /// The fields of every span a log line is in (outermost first, inner ones override).
    fn span_fields(line: &Value) -> serde_json::Map<String, Value> {
        let mut fields = serde_json::Map::new();
        for span in line["spans"].as_array().into_iter().flatten().chain(line.get("span")) {
            if let Some(obj) = span.as_object() {
                fields.extend(obj.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        fields
    }

    /// Every line carries `request_id` (API Gateway's; `None` for the scheduled function) and
    /// the invocation's Lambda request id.
    fn assert_ids_everywhere(&self, request_id: Option<&str>) {
        assert!(!self.lines.is_empty(), "{}: the invocation printed nothing", self.what);
        for line in &self.lines {
            let fields = if line.get("_aws").is_some() {
                line.as_object().cloned().unwrap_or_default()
            } else {
                Self::span_fields(line)
            };
            assert_eq!(
                fields.get("lambda_request_id").and_then(Value::as_str),
                Some(self.lambda_request_id.as_str()),
                "{}: a line without the Lambda request id: {line}",
                self.what
            );
            if let Some(id) = request_id {
                assert_eq!(
                    fields.get("request_id").and_then(Value::as_str),
                    Some(id),
                    "{}: a line without API Gateway's request id: {line}",
                    self.what
                );
            }
        }
    }

    /// Some log line names `session_id` and `merchant_txn_id` in its spans.
    fn assert_some_line_names(&self, session_id: &str, merchant_txn_id: &str) {
        let named = self.lines.iter().filter(|l| l.get("_aws").is_none()).map(Self::span_fields).any(|f| {
            f.get("session_id").and_then(Value::as_str) == Some(session_id)
                && f.get("merchant_txn_id").and_then(Value::as_str) == Some(merchant_txn_id)
        });
        assert!(
            named,
            "{}: no line names session {session_id} and txn {merchant_txn_id}:\n{:#?}",
            self.what, self.lines
        );
    }

    /// The HTTP answer: status, `x-request-id`, parsed body.
    fn http(&self) -> (u16, Option<String>, Value) {
        let status = self.answer["statusCode"].as_u64().unwrap_or_default() as u16;
        let header = self.answer["headers"][REQUEST_ID_HEADER].as_str().map(str::to_owned);
        let body = self.answer["body"].as_str().map(|b| serde_json::from_str(b).unwrap_or(Value::Null));
        (status, header, body.unwrap_or(Value::Null))
    }
}

/// Invoke `running` with `event` and collect every line it printed meanwhile.
async fn invoke(running: &Running, event: &Value, what: &str) -> Observed {
    invoke_within(running, event, what, TIMEOUT).await
}

/// [`invoke`], with the function timeout `timeout`.
async fn invoke_within(running: &Running, event: &Value, what: &str, timeout: Duration) -> Observed {
    let before = running.logs().len();
    let answer =
        running.invoke(&event.to_string(), timeout).await.unwrap_or_else(|e| panic!("{what}: {e}\n{}", running.logs()));
    assert!(answer.ok, "{what}: the function returned an error to the runtime: {}", answer.body_text());
    // Everything is written before the answer is sent; the pipes are read by other threads.
    let mut seen = running.logs().len();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = running.logs().len();
        if now == seen && now > before {
            break;
        }
        seen = now;
    }
    let logs = running.logs();
    let lines = logs[before..]
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: a line that is not JSON ({e}): {l}")))
        .collect();
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or_else(|e| panic!("{what}: answer not JSON: {e}"));
    let lines: Vec<Value> = lines;
    let emf = lines.iter().filter(|l| l.get("_aws").is_some()).count();
    eprintln!("{what}: {} lines printed ({emf} EMF)", lines.len());
    if std::env::var_os("OBS_DUMP").is_some() {
        for l in &lines {
            eprintln!("  {l}");
        }
    }
    Observed { what: what.to_owned(), lambda_request_id: answer.request_id, answer: body, lines }
}

fn function<'t>(t: &'t Template, logical_id: &str) -> &'t Function {
    t.functions.get(logical_id).unwrap_or_else(|| panic!("template.yaml has no {logical_id}"))
}

async fn start(f: &Function, bin_dir: &std::path::Path, offline: &Offline) -> Running {
    let env = world::function_env(f, offline).unwrap_or_else(|e| panic!("{e}"));
    let binary = f.binary.as_deref().unwrap_or_else(|| panic!("{}: no BuildProperties.Binary", f.logical_id));
    let launch = process::Launch { exe: bin_dir.join(binary), function_name: f.logical_id.clone(), env };
    process::start(&launch, TIMEOUT).await.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_metrics_through_built_binaries() {
    let Some(endpoint) = world::dynamodb_endpoint().unwrap_or_else(|e| panic!("{e}")) else {
        eprintln!("SKIPPED: ids and metrics through the built binaries (PARKPAY_SKIP_DYNAMODB=1)");
        return;
    };
    let t = template();
    let create = function(&t, Endpoint::CreatePayment.route().function);
    let verify = function(&t, Endpoint::VerifyPayment.route().function);
    let callback = function(&t, Endpoint::PhonePeCallback.route().function);
    let reconcile = function(&t, SCHEDULED[0].function);
    let binaries: Vec<&str> =
        [create, verify, callback, reconcile].iter().filter_map(|f| f.binary.as_deref()).collect();
    let bin_dir = workspace::built_binaries(&binaries).unwrap_or_else(|e| panic!("{e}"));
    let world = World::dynamodb(&endpoint, &t, "observability").await.unwrap_or_else(|e| panic!("{e}"));
    let session = fixtures::session_id(fixtures::PAYABLE).as_str().to_owned();

    // create-payment: 201, and an error for another driver's session.
    let running = start(create, &bin_dir, &world.offline).await;
    let created = invoke(&running, &with_request_id(event("create-payment.json"), "obs-create-1="), "create").await;
    let (status, header, body) = created.http();
    assert_eq!(status, 201, "create: {body}");
    assert_eq!(header.as_deref(), Some("obs-create-1="), "create: x-request-id");
    let txn = body["merchant_txn_id"].as_str().expect("a merchant_txn_id").to_owned();
    created.assert_ids_everywhere(Some("obs-create-1="));
    created.assert_some_line_names(&session, &txn);
    assert_eq!(created.metric(telemetry::PAYMENTS_CREATED, &[]).value, 1);
    assert_eq!(
        created.metric(telemetry::PHONEPE_CALLS, &[("Code", "PAYMENT_INITIATED"), ("Operation", "pay")]).value,
        1
    );
    let latency = created.metric(telemetry::PHONEPE_LATENCY, &[("Operation", "pay")]);
    assert_eq!(latency.unit.as_deref(), Some("Milliseconds"));
    assert!(latency.value.as_array().is_some_and(|v| v.len() == 1 && v[0].as_f64().is_some()), "{latency:?}");
    assert_eq!(created.metrics()[telemetry::PAYMENTS_CREATED][0].unit.as_deref(), Some("Count"));
    for line in created.emf() {
        assert_eq!(line["request_id"], "obs-create-1=", "EMF lines name the request: {line}");
    }

    let refused =
        invoke(&running, &with_request_id(event("create-payment.other-user.json"), "obs-error-1="), "other user").await;
    let (status, header, body) = refused.http();
    assert_eq!(status, 404, "other user: {body}");
    assert_eq!(header.as_deref(), Some("obs-error-1="), "other user: x-request-id");
    assert_eq!(body["error"]["request_id"], "obs-error-1=", "the error body repeats the request id: {body}");
    assert_eq!(body["error"]["code"], "SESSION_NOT_FOUND");
    for line in &refused.lines {
        // nothing of the first invocation leaks into this one
        assert_ne!(line["request_id"], "obs-create-1=", "{line}");
    }
    if !refused.lines.is_empty() {
        refused.assert_ids_everywhere(Some("obs-error-1="));
    }
    running.stop();

    // The payer pays; its callback is lost (the functions' callback URL is a closed port).
    world.simulator.simulator.complete(&txn, Outcome::Success).await.unwrap_or_else(|e| panic!("pay {txn}: {e}"));

    // verify-payment: PhonePe's status says SUCCESS, recorded.
    let running = start(verify, &bin_dir, &world.offline).await;
    let mut verify_event = with_request_id(event("verify-payment.json"), "obs-verify-1=");
    let verify_body = serde_json::json!({ "merchant_txn_id": txn }).to_string();
    verify_event["headers"]["content-length"] = verify_body.len().to_string().into();
    verify_event["body"] = verify_body.into();
    let verified = invoke(&running, &verify_event, "verify").await;
    let (status, header, body) = verified.http();
    assert_eq!((status, &body["verified"]), (200, &Value::Bool(true)), "verify: {body}");
    assert_eq!(header.as_deref(), Some("obs-verify-1="));
    verified.assert_ids_everywhere(Some("obs-verify-1="));
    verified.assert_some_line_names(&session, &txn);
    assert_eq!(verified.metric(telemetry::PAYMENTS_SUCCEEDED, &[]).value, 1);
    assert_eq!(verified.metric(telemetry::AMOUNT_PAID, &[]).value, 10_000, "paise of 100.00");
    assert_eq!(verified.metric(telemetry::AMOUNT_PAID, &[]).unit, None, "paise have no CloudWatch unit");
    let status_call = [("Code", "PAYMENT_SUCCESS"), ("Operation", "status")];
    assert_eq!(verified.metric(telemetry::PHONEPE_CALLS, &status_call).value, 1);
    running.stop();

    // A forged callback: 401, a security event.
    let running = start(callback, &bin_dir, &world.offline).await;
    let forged =
        invoke(&running, &with_request_id(event("phonepe-callback.forged.json"), "obs-forged-1="), "forged").await;
    let (status, header, body) = forged.http();
    assert_eq!(status, 401, "forged: {body}");
    assert_eq!(header.as_deref(), Some("obs-forged-1="));
    assert_eq!(body["error"]["request_id"], "obs-forged-1=", "{body}");
    forged.assert_ids_everywhere(Some("obs-forged-1="));
    assert_eq!(forged.metric(telemetry::SECURITY_EVENTS, &[]).value, 1);
    assert_eq!(forged.metric(telemetry::CALLBACKS_REJECTED, &[("Reason", "INVALID_SIGNATURE")]).value, 1);
    assert!(
        forged.lines.iter().any(|l| l["security"] == true),
        "the security event is a log line with security=true: {:#?}",
        forged.lines
    );
    running.stop();

    // One reconciliation run (an 8 s deadline: about 3 s of ticks).
    let running = start(reconcile, &bin_dir, &world.offline).await;
    let file = event_files().into_iter().find(|f| events::scheduled_of(f).is_some()).expect("a scheduled event");
    let scheduled = file.json().unwrap_or_else(|e| panic!("{e}"));
    let reconciled = invoke_within(&running, &scheduled, "reconcile", Duration::from_secs(8)).await;
    assert!(reconciled.answer["checked"].as_u64() >= Some(1), "reconcile: {}", reconciled.answer);
    reconciled.assert_ids_everywhere(None);
    // fixture 8's payment was due: its lines name it
    let due = fixtures::payment_id(fixtures::RECONCILE);
    reconciled.assert_some_line_names(fixtures::session_id(fixtures::RECONCILE).as_str(), due.as_str());
    // fixture 9 needs a person (a refused automatic refund)
    let needs_person = reconciled.metric(telemetry::OBLIGATIONS_NEEDING_PERSON, &[]);
    assert!(
        needs_person.value.as_array().is_some_and(|v| v.iter().any(|x| x.as_f64() >= Some(1.0))),
        "{needs_person:?}"
    );
    reconciled.metric(telemetry::OBLIGATIONS_OVERDUE, &[]);
    reconciled.metric(telemetry::RECONCILE_PENDING, &[]);
    assert_eq!(reconciled.metric(telemetry::RECONCILE_OLDEST_PENDING_AGE, &[]).unit.as_deref(), Some("Seconds"));
    assert!(reconciled.metrics()[telemetry::PHONEPE_CALLS].iter().any(|m| m.labels["Operation"] == "status"));
    for line in reconciled.emf() {
        assert!(line.get("request_id").is_none(), "a scheduled run has no API Gateway request: {line}");
    }
    running.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_answers_with_its_request_id() {
    let t = template();
    let dir = tempfile::tempdir().unwrap();
    let stores = parkpay_api::state::Stores::new(
        parkpay_store::embedded::EmbeddedStore::open(dir.path().join("ids.redb")).unwrap(),
    );
    let sim = world::spawn_simulator().await.unwrap();
    let offline = Offline {
        table: "unused".into(),
        simulator_url: sim.base_url.to_string(),
        dynamodb_endpoint: None,
        deployment: Apis::Both.deployment(&t).unwrap_or_else(|e| panic!("{e}")),
    };
    let mut states = HashMap::new();
    for r in ROUTES {
        let env = world::function_env(function(&t, r.function), &offline).unwrap_or_else(|e| panic!("{e}"));
        states.insert(r.endpoint, world::app_state(&stores, &env, r.uses_phonepe).unwrap_or_else(|e| panic!("{e}")));
    }
    world::seed(&states[&Endpoint::CreatePayment], &sim.simulator).await.unwrap_or_else(|e| panic!("{e}"));
    let mut errors = 0;
    for file in event_files().iter().filter(|f| events::scheduled_of(f).is_none()) {
        let endpoint = events::endpoint_of(file).unwrap_or_else(|e| panic!("{e}"));
        let id = file.json().unwrap()["requestContext"]["requestId"].as_str().expect("a requestId").to_owned();
        let request = events::to_request(file).unwrap_or_else(|e| panic!("{e}"));
        let resp = parkpay_api::handle(&states[&endpoint], endpoint, request).await;
        assert_eq!(resp.headers()[REQUEST_ID_HEADER], id.as_str(), "{}", file.name);
        if resp.status().as_u16() >= 400 {
            let lambda_http::Body::Text(text) = resp.body() else { panic!("{}: a text body", file.name) };
            let body: Value = serde_json::from_str(text).unwrap();
            assert_eq!(body["error"]["request_id"], id.as_str(), "{}: {body}", file.name);
            errors += 1;
        }
    }
    assert!(errors > 5, "the events include error cases");
    sim.shutdown();
}
