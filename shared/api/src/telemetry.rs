//! Observability in one place: the ids that tie an answer to its log lines, the request span,
//! the metrics (names, units, labels), and how a Lambda function writes logs and metrics.
//!
//! **Correlation.** Every answer of [`crate::handle`] carries [`REQUEST_ID_HEADER`]
//! (`x-request-id`): API Gateway's request id, `requestContext.requestId` of the payload 2.0
//! event (the value API Gateway also sends the client as `apigw-requestid`). The local server
//! makes a fresh one per request ([`new_request_id`]) and puts it into the event it builds, so the
//! shared handler does the same thing in both places. Error bodies repeat it as
//! `{"error": {…, "request_id"}}`. Every log line of a request is inside the span
//! [`request_span`], whose fields are `request_id` (API Gateway's), `lambda_request_id` (the
//! invocation's, from `lambda_runtime`'s context; absent on the local server, which has no
//! invocation), `route`, and, once the handler knows them, `session_id` and `merchant_txn_id`
//! ([`note_session`], [`note_txn`]). Reconciliation runs in a span with `lambda_request_id`, each
//! obligation it works on in a child span with `session_id` and `merchant_txn_id`.
//!
//! **Metrics** go through the `metrics` facade where the events happen (use cases, the PhonePe
//! client's call sites through [`MeteredGateway`], reconciliation). On Lambda, [`init_lambda`]
//! installs `metrics_cloudwatch_embedded`'s recorder: CloudWatch embedded metric format (EMF)
//! lines on stdout, namespace [`NAMESPACE`], dimension [`SERVICE_DIMENSION`] (the stack name,
//! from [`SERVICE_VARIABLE`]) plus the labels each metric names in [`METRICS`], flushed at the
//! end of every invocation ([`end_invocation`]). Elsewhere (the local server, tests) no recorder
//! is installed and the facade drops them.
//!
//! **Logs on Lambda** ([`init_lambda`]): JSON lines (with `LoggingConfig.LogFormat: JSON`)
//! carrying the fields of every span the line is in (`spans`) and of the innermost (`span`), so
//! each line of an invocation names its ids.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use http::HeaderValue;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use metrics::Unit;
use parkpay_domain::Paise;
use parkpay_gateway::phonepe_v1::wire::codes;
use parkpay_gateway::{
    CallbackError, GatewayError, MerchantTxnId, Notice, PayRequest, PayStarted, PaymentGateway, RefundRequest,
    RefundStarted, StatusReport,
};

use crate::routes::Route;

/// The answer header naming the request (API Gateway's request id).
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "parkpay";
/// The one dimension every metric has (labels add their own).
pub const SERVICE_DIMENSION: &str = "Service";
/// The variable that names the service (template.yaml: the stack name).
pub const SERVICE_VARIABLE: &str = "PARKPAY_SERVICE";
/// The service name when [`SERVICE_VARIABLE`] is not set.
pub const DEFAULT_SERVICE: &str = "parkpay";

// ---------------------------------------------------------------------------------------------
// Metric names

pub const PAYMENTS_CREATED: &str = "PaymentsCreated";
pub const PAYMENTS_SUCCEEDED: &str = "PaymentsSucceeded";
pub const PAYMENTS_FAILED: &str = "PaymentsFailed";
pub const PAYMENTS_EXPIRED: &str = "PaymentsExpired";
pub const AMOUNT_PAID: &str = "AmountPaidPaise";
pub const REFUNDS_REQUESTED: &str = "RefundsRequested";
pub const REFUNDS_SETTLED: &str = "RefundsSettled";
pub const AMOUNT_REFUNDED: &str = "AmountRefundedPaise";
pub const CALLBACKS_REJECTED: &str = "CallbacksRejected";
pub const SECURITY_EVENTS: &str = "SecurityEvents";
pub const PHONEPE_CALLS: &str = "PhonePeCalls";
pub const PHONEPE_LATENCY: &str = "PhonePeLatency";
pub const HTTP_5XX: &str = "Http5xx";
pub const RECONCILE_PENDING: &str = "ReconcilePending";
pub const RECONCILE_OLDEST_PENDING_AGE: &str = "ReconcileOldestPendingAge";
pub const RECONCILE_ERRORS: &str = "ReconcileErrors";
pub const OBLIGATIONS_OVERDUE: &str = "ObligationsOverdue";
pub const OBLIGATIONS_NEEDING_PERSON: &str = "ObligationsNeedingPerson";

/// One metric: its name, CloudWatch unit (`None`: CloudWatch's `None`), labels (dimensions
/// besides [`SERVICE_DIMENSION`]) and meaning.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Option<Unit>,
    pub labels: &'static [&'static str],
    pub meaning: &'static str,
}

/// Every metric parkpay emits. The README's table is this one.
pub const METRICS: &[Metric] = &[
    Metric {
        name: PAYMENTS_CREATED,
        unit: Some(Unit::Count),
        labels: &[],
        meaning: "payments PhonePe accepted (create-payment answered 201)",
    },
    Metric {
        name: PAYMENTS_SUCCEEDED,
        unit: Some(Unit::Count),
        labels: &[],
        meaning: "payments recorded SUCCESS (callback, verify or reconciliation)",
    },
    Metric {
        name: PAYMENTS_FAILED,
        unit: Some(Unit::Count),
        labels: &[],
        meaning: "payments recorded FAILED (declined, or refused by PhonePe at create)",
    },
    Metric {
        name: PAYMENTS_EXPIRED,
        unit: Some(Unit::Count),
        labels: &[],
        meaning: "payments still PENDING at the 20-minute timeout, expired by reconciliation",
    },
    Metric { name: AMOUNT_PAID, unit: None, labels: &[], meaning: "paise of the payments recorded SUCCESS" },
    Metric {
        name: REFUNDS_REQUESTED,
        unit: Some(Unit::Count),
        labels: &[],
        meaning: "refunds recorded (drivers', operators' and automatic ones)",
    },
    Metric {
        name: REFUNDS_SETTLED,
        unit: Some(Unit::Count),
        labels: &["Outcome"],
        meaning: "refunds that reached a final state, by Outcome (SUCCESS, FAILED)",
    },
    Metric { name: AMOUNT_REFUNDED, unit: None, labels: &[], meaning: "paise of the refunds recorded SUCCESS" },
    Metric {
        name: CALLBACKS_REJECTED,
        unit: Some(Unit::Count),
        labels: &["Reason"],
        meaning: "PhonePe callbacks not applied, by Reason (MISSING_SIGNATURE, INVALID_SIGNATURE, MALFORMED, \
                  TOO_LARGE, OTHER_MERCHANT, UNKNOWN_TRANSACTION)",
    },
    Metric {
        name: SECURITY_EVENTS,
        unit: Some(Unit::Count),
        labels: &[],
        meaning: "unsigned or forged callbacks, callbacks for another merchant or with another amount, \
                  USER_MISMATCH and OPERATOR_ONLY refusals (each also a log line with security=true)",
    },
    Metric {
        name: PHONEPE_CALLS,
        unit: Some(Unit::Count),
        labels: &["Operation", "Code"],
        meaning: "calls to PhonePe by Operation (pay, status, refund) and Code (PhonePe's code, or \
                  OUTCOME_UNKNOWN, UNREACHABLE, OTHER)",
    },
    Metric {
        name: PHONEPE_LATENCY,
        unit: Some(Unit::Milliseconds),
        labels: &["Operation"],
        meaning: "time of each call to PhonePe, by Operation",
    },
    Metric {
        name: HTTP_5XX,
        unit: Some(Unit::Count),
        labels: &["Code"],
        meaning: "5xx answers of our handlers, by error Code",
    },
    Metric {
        name: RECONCILE_PENDING,
        unit: Some(Unit::Count),
        labels: &[],
        meaning: "obligations due, the most a tick of the run saw (one value per reconciliation run)",
    },
    Metric {
        name: RECONCILE_OLDEST_PENDING_AGE,
        unit: Some(Unit::Seconds),
        labels: &[],
        meaning: "how long the longest-waiting due obligation had waited past its attempt time, the most \
                  a tick of the run saw (one value per run)",
    },
    Metric {
        name: RECONCILE_ERRORS,
        unit: Some(Unit::Count),
        labels: &[],
        meaning: "reconciliation attempts that failed (retried with backoff), and failures to read the due \
                  index",
    },
    Metric {
        name: OBLIGATIONS_OVERDUE,
        unit: Some(Unit::Count),
        labels: &[],
        meaning: "open obligations past their deadline or late, at the start of each reconciliation run \
                  (counted up to 25)",
    },
    Metric {
        name: OBLIGATIONS_NEEDING_PERSON,
        unit: Some(Unit::Count),
        labels: &[],
        meaning: "obligations that need a person, at the start of each reconciliation run (counted up to 25)",
    },
];

/// Most entries of an attention list counted for [`OBLIGATIONS_OVERDUE`] and
/// [`OBLIGATIONS_NEEDING_PERSON`]: the alarms only ask whether there are any.
pub const ATTENTION_COUNT_CAP: usize = 25;

// ---------------------------------------------------------------------------------------------
// Correlation

/// The ids of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestIds {
    /// API Gateway's request id (`requestContext.requestId`; on the local server, the fresh id it
    /// put there). Without one (an event API Gateway did not send), the Lambda request id, else a
    /// fresh one.
    pub request_id: String,
    /// The Lambda invocation's request id; `None` off Lambda.
    pub lambda_request_id: Option<String>,
}

impl RequestIds {
    pub fn of(req: &Request) -> Self {
        let apigw = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
            _ => None,
        };
        let lambda_request_id = req.lambda_context_ref().map(|c| c.request_id.clone()).filter(|id| !id.is_empty());
        let request_id =
            apigw.filter(|id| !id.is_empty()).or_else(|| lambda_request_id.clone()).unwrap_or_else(new_request_id);
        RequestIds { request_id, lambda_request_id }
    }
}

/// A fresh request id for a request that did not come through API Gateway (the local server):
/// `local-` and 20 hex digits of OS randomness.
pub fn new_request_id() -> String {
    let bytes = crate::state::random_id_bytes();
    let mut id = String::from("local-");
    for b in &bytes[..10] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The span every log line of a request is in.
pub fn request_span(route: &Route, ids: &RequestIds) -> tracing::Span {
    tracing::info_span!(
        "request",
        request_id = %ids.request_id,
        lambda_request_id = ids.lambda_request_id.as_deref(),
        route = %format_args!("{} {}", route.method, route.path),
        session_id = tracing::field::Empty,
        merchant_txn_id = tracing::field::Empty,
    )
}

/// The span of one reconciliation invocation.
pub fn invocation_span(lambda_request_id: &str) -> tracing::Span {
    tracing::info_span!("reconcile", lambda_request_id = %lambda_request_id)
}

/// The span of one obligation reconciliation works on.
pub fn obligation_span(session_id: &dyn std::fmt::Display, merchant_txn_id: &dyn std::fmt::Display) -> tracing::Span {
    tracing::info_span!("obligation", session_id = %session_id, merchant_txn_id = %merchant_txn_id)
}

/// The request's session, once known: on every later log line of the request.
pub fn note_session(session_id: &dyn std::fmt::Display) {
    tracing::Span::current().record("session_id", tracing::field::display(session_id));
}

/// The merchant transaction id the request names (or creates), once known.
pub fn note_txn(merchant_txn_id: &dyn std::fmt::Display) {
    tracing::Span::current().record("merchant_txn_id", tracing::field::display(merchant_txn_id));
}

/// Stamp an answer with the request's id and count it if it is a 5xx.
pub fn finish(resp: &mut Response<Body>, ids: &RequestIds) {
    if let Ok(v) = HeaderValue::from_str(&ids.request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    if resp.status().is_server_error() {
        let code = match resp.body() {
            Body::Text(t) => serde_json::from_str::<serde_json::Value>(t)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned)),
            _ => None,
        };
        http_5xx(code.unwrap_or_else(|| "UNKNOWN".to_owned()));
    }
}

// ---------------------------------------------------------------------------------------------
// Emitting

fn count(name: &'static str) {
    metrics::counter!(name).increment(1);
}

pub fn payment_created() {
    count(PAYMENTS_CREATED);
}

pub fn payment_succeeded(amount: Paise) {
    count(PAYMENTS_SUCCEEDED);
    metrics::counter!(AMOUNT_PAID).increment(amount.get());
}

pub fn payment_failed() {
    count(PAYMENTS_FAILED);
}

pub fn payment_expired() {
    count(PAYMENTS_EXPIRED);
}

pub fn refund_requested() {
    count(REFUNDS_REQUESTED);
}

/// A refund reached its final state: `success`, or FAILED.
pub fn refund_settled(success: bool, amount: Paise) {
    let outcome = if success { "SUCCESS" } else { "FAILED" };
    metrics::counter!(REFUNDS_SETTLED, "Outcome" => outcome).increment(1);
    if success {
        metrics::counter!(AMOUNT_REFUNDED).increment(amount.get());
    }
}

/// A callback not applied (one of the reasons [`CALLBACKS_REJECTED`] lists).
pub fn callback_rejected(reason: &'static str) {
    metrics::counter!(CALLBACKS_REJECTED, "Reason" => reason).increment(1);
}

/// A security event (the caller logs it with `security = true`).
pub fn security_event() {
    count(SECURITY_EVENTS);
}

pub fn http_5xx(code: String) {
    metrics::counter!(HTTP_5XX, "Code" => code).increment(1);
}

/// One call to PhonePe: its operation, the code it came to and how long it took.
pub fn phonepe_call(operation: &'static str, code: &'static str, took: Duration) {
    metrics::counter!(PHONEPE_CALLS, "Operation" => operation, "Code" => code).increment(1);
    metrics::histogram!(PHONEPE_LATENCY, "Operation" => operation).record(took.as_secs_f64() * 1000.0);
    sampled();
}

/// One reconciliation run: the most obligations a tick found due, the longest wait past an
/// attempt time it saw, and the attempts that failed.
pub fn reconcile_run(pending: usize, oldest_pending_age: Duration, errors: usize) {
    metrics::histogram!(RECONCILE_PENDING).record(pending as f64);
    metrics::histogram!(RECONCILE_OLDEST_PENDING_AGE).record(oldest_pending_age.as_secs_f64());
    if errors > 0 {
        metrics::counter!(RECONCILE_ERRORS).increment(errors as u64);
    }
    sampled();
}

/// The attention lists' sizes (each counted up to [`ATTENTION_COUNT_CAP`]).
pub fn attention(overdue: usize, needs_person: usize) {
    metrics::histogram!(OBLIGATIONS_OVERDUE).record(overdue as f64);
    metrics::histogram!(OBLIGATIONS_NEEDING_PERSON).record(needs_person as f64);
    sampled();
}

/// A reconciliation error outside an invocation's totals (the attention lists unreadable).
pub fn reconcile_error() {
    count(RECONCILE_ERRORS);
}

/// PhonePe's `code` if it is one PhonePe documents, else `OTHER`: a label's values must stay few.
pub fn known_code(code: &str) -> &'static str {
    codes::ALL.iter().copied().find(|c| *c == code).unwrap_or("OTHER")
}

fn error_label(e: &GatewayError) -> &'static str {
    match e {
        GatewayError::Rejected { code, .. } => known_code(code),
        GatewayError::OutcomeUnknown { .. } => "OUTCOME_UNKNOWN",
        GatewayError::Unreachable { .. } => "UNREACHABLE",
    }
}

/// The PhonePe client with every call counted by operation and code, and timed
/// ([`PHONEPE_CALLS`], [`PHONEPE_LATENCY`]). Notifications are not calls (no network).
pub struct MeteredGateway(pub Arc<dyn PaymentGateway>);

impl MeteredGateway {
    pub fn wrap(inner: Arc<dyn PaymentGateway>) -> Arc<dyn PaymentGateway> {
        Arc::new(MeteredGateway(inner))
    }
}

#[async_trait]
impl PaymentGateway for MeteredGateway {
    async fn pay(&self, req: &PayRequest) -> Result<PayStarted, GatewayError> {
        let start = Instant::now();
        let r = self.0.pay(req).await;
        let code = match &r {
            Ok(_) => codes::PAYMENT_INITIATED,
            Err(e) => error_label(e),
        };
        phonepe_call("pay", code, start.elapsed());
        r
    }

    async fn status(&self, txn: &MerchantTxnId) -> Result<StatusReport, GatewayError> {
        let start = Instant::now();
        let r = self.0.status(txn).await;
        let code = match &r {
            Ok(report) => known_code(&report.code),
            Err(e) => error_label(e),
        };
        phonepe_call("status", code, start.elapsed());
        r
    }

    async fn refund_status(&self, txn: &MerchantTxnId) -> Result<StatusReport, GatewayError> {
        let start = Instant::now();
        let r = self.0.refund_status(txn).await;
        let code = match &r {
            Ok(report) => known_code(&report.code),
            Err(e) => error_label(e),
        };
        phonepe_call("refund_status", code, start.elapsed());
        r
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStarted, GatewayError> {
        let start = Instant::now();
        let r = self.0.refund(req).await;
        let code = match &r {
            Ok(started) => known_code(&started.code),
            Err(e) => error_label(e),
        };
        phonepe_call("refund", code, start.elapsed());
        r
    }

    async fn verify_notice(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<Notice, CallbackError> {
        self.0.verify_notice(headers, body).await
    }
}

// ---------------------------------------------------------------------------------------------
// Lambda: logs and the EMF recorder

static COLLECTOR: OnceLock<&'static metrics_cloudwatch_embedded::Collector> = OnceLock::new();
/// Histogram samples recorded since the last flush (the EMF recorder keeps at most 100 per
/// metric between flushes).
static SAMPLES: AtomicUsize = AtomicUsize::new(0);
/// Flush early once this many samples wait (well under the recorder's 100 per metric).
const FLUSH_AFTER_SAMPLES: usize = 64;

/// A Lambda function's logging and metrics, once per execution environment (at cold start):
///
/// - logs: `tracing` lines on stdout at `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, else INFO),
///   JSON when `AWS_LAMBDA_LOG_FORMAT` is `JSON` (template.yaml's `LoggingConfig`), with the
///   fields of the spans each line is in (`span`: the innermost; `spans`: all, outermost first)
///   and the event's fields at the top level;
/// - metrics: the EMF recorder ([`NAMESPACE`], dimension [`SERVICE_DIMENSION`] =
///   `$PARKPAY_SERVICE`, else [`DEFAULT_SERVICE`]), with every metric's unit.
///
/// Calling it again does nothing.
pub fn init_lambda() {
    init_lambda_logs();
    if COLLECTOR.get().is_some() {
        return;
    }
    let service = std::env::var(SERVICE_VARIABLE).ok().filter(|s| !s.is_empty());
    let service = service.unwrap_or_else(|| DEFAULT_SERVICE.to_owned());
    match metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .with_dimension(SERVICE_DIMENSION, service)
        .init()
    {
        Ok(collector) => {
            let _ = COLLECTOR.set(collector);
            describe();
        }
        Err(e) => tracing::warn!(error = %e, "metrics recorder not installed; metrics are dropped"),
    }
}

fn init_lambda_logs() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::filter::LevelFilter;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG"));
    let level = level.ok().and_then(|l| l.parse::<LevelFilter>().ok()).unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    let builder = tracing_subscriber::fmt().with_target(false).without_time().with_env_filter(filter);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // try_init: a second call (or a subscriber already set) keeps the first.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Give every metric its unit (the recorder must be installed). The EMF recorder keeps units by
/// metric name whatever the kind, so `describe_counter!` serves the histograms too.
pub fn describe() {
    for m in METRICS {
        match m.unit {
            Some(unit) => metrics::describe_counter!(m.name, unit, m.meaning),
            None => metrics::describe_counter!(m.name, m.meaning),
        }
    }
}

/// An invocation begins: the EMF lines written until the next one carry its ids (properties
/// `request_id` and `lambda_request_id`).
pub fn begin_invocation(request_id: Option<&str>, lambda_request_id: Option<&str>) {
    let Some(collector) = COLLECTOR.get() else { return };
    for (name, value) in [("request_id", request_id), ("lambda_request_id", lambda_request_id)] {
        match value {
            Some(v) => {
                collector.set_property(name, v.to_owned());
            }
            None => {
                collector.remove_property(name);
            }
        }
    }
}

/// An invocation ends: write what it recorded.
pub fn end_invocation() {
    flush();
}

/// Write the metrics recorded since the last flush as EMF lines on stdout (one line per label
/// set), holding stdout's lock so that no log line lands inside one.
pub fn flush() {
    let Some(collector) = COLLECTOR.get() else { return };
    SAMPLES.store(0, Ordering::Relaxed);
    let out = std::io::stdout();
    let mut lock = out.lock();
    if let Err(e) = collector.flush(&mut lock) {
        drop(lock);
        tracing::warn!(error = %e, "metrics not written");
    }
}

/// A histogram sample was recorded: flush early before the recorder's per-flush limit.
fn sampled() {
    if COLLECTOR.get().is_some() && SAMPLES.fetch_add(1, Ordering::Relaxed) + 1 >= FLUSH_AFTER_SAMPLES {
        flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_table_is_consistent() {
        for (i, m) in METRICS.iter().enumerate() {
            assert!(m.name.chars().all(|c| c.is_ascii_alphanumeric()), "{}", m.name);
            assert!(!METRICS[..i].iter().any(|o| o.name == m.name), "{} twice", m.name);
            assert!(m.labels.iter().all(|l| *l != SERVICE_DIMENSION));
        }
    }

    #[test]
    fn codes_are_bounded() {
        assert_eq!(known_code("PAYMENT_SUCCESS"), "PAYMENT_SUCCESS");
        assert_eq!(known_code("TOO_MANY_REQUESTS"), "TOO_MANY_REQUESTS");
        assert_eq!(known_code("<script>"), "OTHER");
        assert_eq!(known_code(""), "OTHER");
    }

    #[test]
    fn fresh_ids_differ() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        assert!(a.starts_with("local-") && a.len() == 26, "{a}");
    }

    /// What the code under test recorded: counters and histogram samples by `Name{k=v,…}`.
    #[derive(Default)]
    struct Recorded {
        counters: std::sync::Mutex<std::collections::BTreeMap<String, Arc<std::sync::atomic::AtomicU64>>>,
        histograms: std::sync::Mutex<std::collections::BTreeMap<String, Arc<Samples>>>,
    }

    #[derive(Default)]
    struct Samples(std::sync::Mutex<Vec<f64>>);

    impl metrics::HistogramFn for Samples {
        fn record(&self, value: f64) {
            self.0.lock().unwrap().push(value);
        }
    }

    fn key_text(key: &metrics::Key) -> String {
        let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }

    impl metrics::Recorder for Recorded {
        fn describe_counter(&self, _: metrics::KeyName, _: Option<Unit>, _: metrics::SharedString) {}
        fn describe_gauge(&self, _: metrics::KeyName, _: Option<Unit>, _: metrics::SharedString) {}
        fn describe_histogram(&self, _: metrics::KeyName, _: Option<Unit>, _: metrics::SharedString) {}
        fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
            metrics::Counter::from_arc(self.counters.lock().unwrap().entry(key_text(key)).or_default().clone())
        }
        fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
            metrics::Gauge::noop()
        }
        fn register_histogram(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
            metrics::Histogram::from_arc(self.histograms.lock().unwrap().entry(key_text(key)).or_default().clone())
        }
    }

    impl Recorded {
        fn counter(&self, key: &str) -> u64 {
            self.counters.lock().unwrap().get(key).map_or(0, |c| c.load(Ordering::Relaxed))
        }
        fn samples(&self, key: &str) -> usize {
            self.histograms.lock().unwrap().get(key).map_or(0, |h| h.0.lock().unwrap().len())
        }
    }

    /// A gateway whose status succeeds, refund times out and pay is refused with an odd code.
    struct Stub;

    #[async_trait]
    impl PaymentGateway for Stub {
        async fn pay(&self, _: &PayRequest) -> Result<PayStarted, GatewayError> {
            Err(GatewayError::Rejected { code: "SOMETHING_NEW".into(), message: String::new() })
        }
        async fn status(&self, txn: &MerchantTxnId) -> Result<StatusReport, GatewayError> {
            Ok(StatusReport {
                merchant_id: None,
                merchant_txn_id: txn.clone(),
                state: parkpay_gateway::TxnState::Success,
                code: "PAYMENT_SUCCESS".into(),
                amount: Some(Paise::new(100)),
                provider_txn_id: None,
                utr: None,
            })
        }
        async fn refund(&self, _: &RefundRequest) -> Result<RefundStarted, GatewayError> {
            Err(GatewayError::OutcomeUnknown { reason: "timeout".into() })
        }
        async fn verify_notice(&self, _: &http::HeaderMap, _: &[u8]) -> Result<Notice, CallbackError> {
            Err(CallbackError::MissingSignature)
        }
    }

    #[test]
    fn phonepe_calls_are_counted_by_operation_and_bounded_code() {
        let rec = Recorded::default();
        let _guard = metrics::set_default_local_recorder(&rec);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let gateway = MeteredGateway::wrap(Arc::new(Stub));
        let txn = MerchantTxnId::parse("PP01JDFX8R2M0000000000000004").unwrap();
        rt.block_on(async {
            assert!(gateway.status(&txn).await.is_ok());
            assert!(gateway.status(&txn).await.is_ok());
            let refund = RefundRequest {
                refund_txn_id: txn.clone(),
                original_txn_id: txn.clone(),
                amount: Paise::new(100),
                merchant_user_id: None,
            };
            assert!(gateway.refund(&refund).await.is_err());
            let pay = PayRequest {
                merchant_txn_id: txn.clone(),
                merchant_user_id: "U1".into(),
                amount: Paise::new(100),
                instrument: parkpay_gateway::Instrument::PayPage,
                redirect_url: "https://example.com/".into(),
                mobile_number: None,
            };
            assert!(gateway.pay(&pay).await.is_err());
            assert!(gateway.verify_notice(&http::HeaderMap::new(), b"").await.is_err());
        });
        assert_eq!(rec.counter("PhonePeCalls{Operation=status,Code=PAYMENT_SUCCESS}"), 2);
        assert_eq!(rec.counter("PhonePeCalls{Operation=refund,Code=OUTCOME_UNKNOWN}"), 1);
        assert_eq!(rec.counter("PhonePeCalls{Operation=pay,Code=OTHER}"), 1);
        assert_eq!(rec.samples("PhonePeLatency{Operation=status}"), 2);
        assert_eq!(rec.samples("PhonePeLatency{Operation=pay}"), 1);
        // notifications are not calls
        assert_eq!(rec.counters.lock().unwrap().len(), 3);
    }

    #[test]
    fn answers_carry_the_request_id_and_5xx_are_counted() {
        let rec = Recorded::default();
        let _guard = metrics::set_default_local_recorder(&rec);
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "GET /api/lots/", "rawPath": "/api/lots/", "rawQueryString": "",
            "headers": {"host": "example.com"}, "isBase64Encoded": false,
            "requestContext": {"accountId": "1", "apiId": "a", "domainName": "example.com", "domainPrefix": "x",
                "http": {"method": "GET", "path": "/api/lots/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                    "userAgent": ""},
                "requestId": "CvQ1aE3yBcwEJ10=", "routeKey": "GET /api/lots/", "stage": "$default", "time": "",
                "timeEpoch": 0},
        });
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let ids = RequestIds::of(&req);
        assert_eq!(ids, RequestIds { request_id: "CvQ1aE3yBcwEJ10=".into(), lambda_request_id: None });

        let e = crate::http::ApiError::new(http::StatusCode::SERVICE_UNAVAILABLE, "GATEWAY_BUSY", "busy");
        let mut resp = e.into_response_for(Some(&ids.request_id));
        finish(&mut resp, &ids);
        assert_eq!(resp.headers()[REQUEST_ID_HEADER], "CvQ1aE3yBcwEJ10=");
        let Body::Text(t) = resp.body() else { panic!("text body") };
        assert_eq!(serde_json::from_str::<serde_json::Value>(t).unwrap()["error"]["request_id"], "CvQ1aE3yBcwEJ10=");
        let mut ok = crate::http::json_response(http::StatusCode::OK, &serde_json::json!({}));
        finish(&mut ok, &ids);
        assert_eq!(ok.headers()[REQUEST_ID_HEADER], "CvQ1aE3yBcwEJ10=");
        assert_eq!(rec.counter("Http5xx{Code=GATEWAY_BUSY}"), 1);
        assert_eq!(rec.counters.lock().unwrap().len(), 1);
    }
}
