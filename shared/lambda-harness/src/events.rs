//! The files in `events/`: one API Gateway HTTP API (payload 2.0) event per function, plus
//! negative cases, and the answer each must get.
//!
//! A file is named `<function>.json` (the function's main case) or `<function>.<case>.json`, where
//! `<function>` is the function's short name (`name` in `parkpay_api::ROUTES` / `SCHEDULED`: a
//! route function's `PARKPAY_ENDPOINT` in `template.yaml`). `sam local invoke <LogicalId> -e events/<file>` and the tests use the
//! same files; the tests run each once, in name order, on a store seeded with
//! [`crate::fixtures`].

use std::path::{Path, PathBuf};

use parkpay_api::{Endpoint, ROUTES, Route};
use serde_json::Value;

/// One file of `events/`.
#[derive(Debug, Clone)]
pub struct EventFile {
    /// File name, e.g. `create-session.malformed.json`.
    pub name: String,
    /// The function it drives, by its short name (`Route::name`, `ScheduledFunction::name`),
    /// e.g. `create-session`.
    pub function: String,
    /// The case after the function's name, e.g. `malformed` (`None` for the main event).
    pub case: Option<String>,
    pub path: PathBuf,
    /// The file's text, exactly as Lambda would receive it.
    pub text: String,
}

impl EventFile {
    /// The route (and so endpoint) of the function this file drives, if it is an HTTP one.
    pub fn route(&self) -> Option<&'static Route> {
        ROUTES.iter().find(|r| r.name == self.function)
    }

    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_str(&self.text).map_err(|e| format!("{}: not JSON: {e}", self.name))
    }
}

/// `<function>[.<case>].json` → (function, case).
pub fn parse_name(name: &str) -> Option<(String, Option<String>)> {
    let stem = name.strip_suffix(".json")?;
    let (function, case) = match stem.split_once('.') {
        Some((b, c)) => (b, Some(c.to_owned())),
        None => (stem, None),
    };
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (ok(function) && case.as_deref().is_none_or(ok)).then(|| (function.to_owned(), case))
}

/// Every file in `dir`, in name order. A file whose name does not follow the rule is an error.
pub fn load_dir(dir: &Path) -> Result<Vec<EventFile>, String> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let (function, case) = parse_name(&name)
            .ok_or_else(|| format!("events/{name}: name it <function>.json or <function>.<case>.json (lower case)"))?;
        let text = std::fs::read_to_string(entry.path()).map_err(|e| format!("events/{name}: {e}"))?;
        files.push(EventFile { name, function, case, path: entry.path(), text });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// What a check wants at a JSON pointer of the answer body.
#[derive(Debug, Clone, Copy)]
pub enum Want {
    /// Exactly this JSON (text form, e.g. `"\"PAID\""`, `true`, `[]`).
    Json(&'static str),
    /// A non-empty string.
    Text,
}

/// The answer `file` must get.
#[derive(Debug, Clone, Copy)]
pub struct Expectation {
    pub file: &'static str,
    pub status: u16,
    pub checks: &'static [(&'static str, Want)],
}

const fn expect(file: &'static str, status: u16, checks: &'static [(&'static str, Want)]) -> Expectation {
    Expectation { file, status, checks }
}

use Want::{Json, Text};

/// Every file in `events/` and its answer. The events test fails for a file without an entry
/// and for an entry without a file.
pub const EXPECTATIONS: &[Expectation] = &[
    // The scheduled reconciliation (no HTTP: `status` 0, the body is its JSON summary). Run
    // first: it finds fixture 8's payment due, asks the simulator, and applies its success.
    expect(
        "reconcile-payments.json",
        0,
        &[("/checked", Json("1")), ("/applied", Json("1")), ("/expired", Json("0")), ("/errors", Json("0"))],
    ),
    expect(
        "list-lots.json",
        200,
        &[
            ("/lots/0/lot_id", Json(r#""MG-ROAD-1""#)),
            ("/lots/0/hourly_rate", Json(r#""50.00""#)),
            ("/lots/0/currency", Json(r#""INR""#)),
        ],
    ),
    expect(
        "create-session.json",
        201,
        &[
            ("/session_id", Text),
            ("/lot_id", Json(r#""MG-ROAD-1""#)),
            ("/vehicle_number", Json(r#""KA-01-AB-1234""#)),
            ("/hours", Json("2")),
            ("/amount", Json(r#""100.00""#)),
            ("/currency", Json(r#""INR""#)),
            ("/status", Json(r#""PENDING_PAYMENT""#)),
            ("/can_enter", Json("false")),
        ],
    ),
    expect("create-session.malformed.json", 400, &[("/error/code", Json(r#""MALFORMED_JSON""#))]),
    expect("create-session.no-token.json", 401, &[("/error/code", Json(r#""UNAUTHENTICATED""#))]),
    expect("create-session.unknown-lot.json", 422, &[("/error/code", Json(r#""UNKNOWN_LOT""#))]),
    expect(
        "get-session.json",
        200,
        &[
            ("/session_id", Json(r#""ps_01jdfx8r2m0000000000000001""#)),
            ("/status", Json(r#""PENDING_PAYMENT""#)),
            ("/amount", Json(r#""100.00""#)),
            ("/can_enter", Json("false")),
            ("/payments", Json("[]")),
        ],
    ),
    expect("get-session.no-claims.json", 401, &[("/error/code", Json(r#""UNAUTHENTICATED""#))]),
    expect("get-session.operator.json", 200, &[("/session_id", Json(r#""ps_01jdfx8r2m0000000000000001""#))]),
    expect("get-session.other-user.json", 404, &[("/error/code", Json(r#""SESSION_NOT_FOUND""#))]),
    expect(
        "create-payment.json",
        201,
        &[
            ("/session_id", Json(r#""ps_01jdfx8r2m0000000000000002""#)),
            ("/merchant_txn_id", Text),
            ("/amount", Json(r#""100.00""#)),
            ("/status", Json(r#""PENDING""#)),
            ("/redirect_url", Text),
            ("/expires_at", Text),
        ],
    ),
    expect("create-payment.already-paid.json", 409, &[("/error/code", Json(r#""SESSION_ALREADY_PAID""#))]),
    expect("create-payment.amount-mismatch.json", 422, &[("/error/code", Json(r#""AMOUNT_MISMATCH""#))]),
    expect("create-payment.other-user.json", 404, &[("/error/code", Json(r#""SESSION_NOT_FOUND""#))]),
    expect(
        "verify-payment.json",
        200,
        &[
            ("/merchant_txn_id", Json(r#""PP01JDFX8R2M0000000000000004""#)),
            ("/verified", Json("true")),
            ("/status", Json(r#""SUCCESS""#)),
            ("/amount", Json(r#""100.00""#)),
            ("/session_status", Json(r#""PAID""#)),
        ],
    ),
    expect("verify-payment.malformed.json", 400, &[("/error/code", Json(r#""INVALID_FIELD_TYPE""#))]),
    expect("verify-payment.other-user.json", 404, &[("/error/code", Json(r#""PAYMENT_NOT_FOUND""#))]),
    expect(
        "refund-payment.json",
        202,
        &[
            ("/refund_id", Text),
            ("/merchant_txn_id", Json(r#""PP01JDFX8R2M0000000000000005""#)),
            ("/amount", Json(r#""20.00""#)),
            ("/status", Json(r#""PENDING""#)),
        ],
    ),
    expect(
        "refund-payment.operator.json",
        202,
        &[("/merchant_txn_id", Json(r#""PP01JDFX8R2M0000000000000005""#)), ("/amount", Json(r#""10.00""#))],
    ),
    expect("refund-payment.other-user.json", 404, &[("/error/code", Json(r#""PAYMENT_NOT_FOUND""#))]),
    expect("phonepe-callback.json", 200, &[("/success", Json("true")), ("/applied", Json("true"))]),
    expect("phonepe-callback.forged.json", 401, &[("/error/code", Json(r#""INVALID_SIGNATURE""#))]),
    // A PG v2 webhook (`Authorization: sha256("username:password")`, the simulator's default
    // credentials) for fixture 10's v2 payment: confirmed by a v2 status read, then applied.
    expect("phonepe-callback.v2-webhook.json", 200, &[("/success", Json("true")), ("/applied", Json("true"))]),
    expect("phonepe-callback.missing-checksum.json", 401, &[("/error/code", Json(r#""INVALID_SIGNATURE""#))]),
    expect(
        "list-obligations.json",
        200,
        &[
            ("/obligations/0/kind", Json(r#""AUTOMATIC_REFUND""#)),
            ("/obligations/0/state", Json(r#""NEEDS_PERSON""#)),
            ("/obligations/0/session_id", Json(r#""ps_01jdfx8r2m0000000000000009""#)),
            ("/obligations/0/payment_id", Json(r#""PP01JDFX8R2M0000000000000009""#)),
            ("/obligations/0/refund_id", Json(r#""RF01JDFX8R2M0000000000000009""#)),
            ("/obligations/0/amount", Json(r#""100.00""#)),
            ("/obligations/0/next_attempt_at", Json("null")),
            ("/next_cursor", Json("null")),
        ],
    ),
    expect("list-obligations.driver.json", 403, &[("/error/code", Json(r#""OPERATOR_ONLY""#))]),
    expect("list-obligations.bad-state.json", 422, &[("/error/code", Json(r#""INVALID_QUERY""#))]),
    // Nothing is overdue in the fixtures: the answer is empty, and the function's reads (the
    // OVERDUE entries on GSI1, late attempts on GSI2) are checked against its policy.
    expect("list-obligations.overdue.json", 200, &[("/obligations", Json("[]")), ("/next_cursor", Json("null"))]),
];

pub fn expectation(file: &str) -> Option<&'static Expectation> {
    EXPECTATIONS.iter().find(|e| e.file == file)
}

/// Check an answer against `expect`: status, JSON content type, every pointer; errors always
/// carry a code and a message. `Err` lists every mismatch.
pub fn check(expect: &Expectation, status: u16, content_type: Option<&str>, body: &Value) -> Result<(), String> {
    let mut problems = Vec::new();
    if status != expect.status {
        problems.push(format!("status {status}, want {}", expect.status));
    }
    if content_type != Some("application/json") {
        problems.push(format!("content-type {content_type:?}, want application/json"));
    }
    for (pointer, want) in expect.checks {
        let got = body.pointer(pointer);
        let ok = match want {
            Want::Json(text) => got == Some(&serde_json::from_str::<Value>(text).expect("expectations are valid JSON")),
            Want::Text => got.and_then(Value::as_str).is_some_and(|s| !s.is_empty()),
        };
        if !ok {
            problems.push(format!("{pointer} = {}, want {want:?}", got.map_or("(absent)".into(), Value::to_string)));
        }
    }
    if expect.status >= 400 && body["error"]["message"].as_str().is_none_or(str::is_empty) {
        problems.push("an error answer without error.message".into());
    }
    if problems.is_empty() { Ok(()) } else { Err(format!("{}: {} — body {body}", expect.file, problems.join("; "))) }
}

/// The scheduled function an event file drives, if it is one.
pub fn scheduled_of(file: &EventFile) -> Option<&'static parkpay_api::ScheduledFunction> {
    parkpay_api::SCHEDULED.iter().find(|s| s.name == file.function)
}

/// An EventBridge scheduled event as the rule delivers it.
pub fn check_scheduled_shape(file: &EventFile) -> Result<(), String> {
    let v = file.json()?;
    let mut problems = Vec::new();
    for (at, want) in [("/detail-type", "Scheduled Event"), ("/source", "aws.events"), ("/version", "0")] {
        if v.pointer(at).and_then(Value::as_str) != Some(want) {
            problems.push(format!("{at} is not {want:?}"));
        }
    }
    if !v["resources"][0].as_str().is_some_and(|r| r.starts_with("arn:aws:events:")) {
        problems.push("resources[0] is not an EventBridge rule ARN".to_owned());
    }
    if !v["detail"].is_object() {
        problems.push("detail is not an object".to_owned());
    }
    if problems.is_empty() { Ok(()) } else { Err(format!("events/{}: {}", file.name, problems.join("; "))) }
}

/// The endpoint an event file's function serves.
pub fn endpoint_of(file: &EventFile) -> Result<Endpoint, String> {
    file.route().map(|r| r.endpoint).ok_or_else(|| {
        format!("events/{}: `{}` is not the name of any route in parkpay_api::ROUTES", file.name, file.function)
    })
}

/// Turn an event into the request `lambda_http` hands the handler (exactly what the runtime does
/// with the payload), and check it reaches the right route.
pub fn to_request(file: &EventFile) -> Result<lambda_http::Request, String> {
    lambda_http::request::from_str(&file.text)
        .map_err(|e| format!("events/{}: lambda_http cannot read it: {e}", file.name))
}

/// Consistency of one file with its function's route: version 2.0, route key, the raw path
/// matches the route (so path parameters are real), and claims present only on routes that
/// have the JWT authorizer (API Gateway gives none on the others).
pub fn check_shape(file: &EventFile) -> Result<(), String> {
    let v = file.json()?;
    let route = file.route().ok_or_else(|| format!("events/{}: no route named {}", file.name, file.function))?;
    let key = format!("{} {}", route.method, route.path);
    let mut problems = Vec::new();
    if v["version"] != "2.0" {
        problems.push("version is not \"2.0\" (HTTP API payload format 2.0)".to_owned());
    }
    for at in ["/routeKey", "/requestContext/routeKey"] {
        if v.pointer(at).and_then(Value::as_str) != Some(key.as_str()) {
            problems.push(format!("{at} is not {key:?}"));
        }
    }
    let raw_path = v["rawPath"].as_str().unwrap_or_default();
    match parkpay_api::match_route(route.method, raw_path) {
        parkpay_api::RouteMatch::Found { route: found, params } => {
            if found.endpoint != route.endpoint {
                problems.push(format!("rawPath {raw_path} is another route's"));
            }
            for (name, value) in params {
                if v["pathParameters"][&name].as_str() != Some(value.as_str()) {
                    problems.push(format!("pathParameters.{name} is not {value:?}"));
                }
            }
        }
        _ => problems.push(format!("rawPath {raw_path} does not match {}", route.path)),
    }
    if v.pointer("/requestContext/http/method").and_then(Value::as_str) != Some(route.method) {
        problems.push(format!("requestContext.http.method is not {}", route.method));
    }
    let has_authorizer = v.pointer("/requestContext/authorizer").is_some();
    if has_authorizer && !route.requires_token {
        problems.push("claims on a route without the JWT authorizer".into());
    }
    if problems.is_empty() { Ok(()) } else { Err(format!("events/{}: {}", file.name, problems.join("; "))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_name("list-lots.json"), Some(("list-lots".into(), None)));
        assert_eq!(
            parse_name("create-session.no-token.json"),
            Some(("create-session".into(), Some("no-token".into())))
        );
        assert_eq!(parse_name("Create.json"), None);
        assert_eq!(parse_name("x.yaml"), None);
        assert_eq!(parse_name(".json"), None);
    }

    #[test]
    fn expectations_are_unique_and_parse() {
        for (i, e) in EXPECTATIONS.iter().enumerate() {
            assert!(EXPECTATIONS[..i].iter().all(|o| o.file != e.file), "{} twice", e.file);
            assert!(parse_name(e.file).is_some(), "{}", e.file);
            for (_, want) in e.checks {
                if let Want::Json(t) = want {
                    serde_json::from_str::<Value>(t).unwrap_or_else(|err| panic!("{}: {t}: {err}", e.file));
                }
            }
        }
    }
}
