//! `docs/openapi.yaml` against the code. Fails when they drift apart:
//!
//! - the document's operations are exactly the route table's (`parkpay_api::ROUTES`): method,
//!   path, path parameters, and a bearer token required exactly where the route requires one;
//! - every example in the document validates against its schema, and every answer object is
//!   strict (`additionalProperties: false`, `required`), so a new or renamed field of a view
//!   fails below;
//! - real answers of the local server, driven through every route (successes, replays, the
//!   errors a client can cause, PhonePe refusing, rate-limiting, timing out and being
//!   unreachable, the obligations lists), each validate against the document's schema for their
//!   route and status (error bodies included, whose `code` each operation lists per status),
//!   with the documented content type and headers (`X-Request-Id` on every answer,
//!   `Retry-After` with `GATEWAY_BUSY`, `Idempotent-Replayed` on replays); the few successes
//!   that are not JSON (QR images, the HTML receipt, the settlement CSV) are what their content
//!   type says; the operators' search and settlement report find what they should;
//! - every error code the sources can answer is in the document (or is exempt below with its
//!   reason), nothing the document lists is unknown to the sources, and the README's "The HTTP
//!   API" section and `docs/http-api.md` name every one.
//!
//! Embedded store only: the answers' shapes do not depend on the store (the other suites run
//! every scenario on both).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{Env, signed_callback, start_with_env};
use parkpay_api::ROUTES;
use parkpay_simulator::{Faults, Operation};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

/// The route table's API routes: all but the operators' console page, which is no operation of
/// the API (`parkpay_api::console`).
fn api_routes() -> impl Iterator<Item = &'static parkpay_api::Route> {
    ROUTES.iter().filter(|r| parkpay_api::console::is_api_route(r))
}

fn doc() -> Value {
    serde_json::from_str(parkpay_local::openapi::json().expect("docs/openapi.yaml parses")).unwrap()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// `value` at a local `$ref` (`#/a/b`), or `value` itself.
fn deref<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => deref(doc, doc.pointer(r.strip_prefix('#').expect("local $ref")).unwrap_or_else(|| panic!("{r}"))),
        None => value,
    }
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    doc["paths"]
        .get(path)
        .and_then(|p| p.get(method.to_ascii_lowercase()))
        .unwrap_or_else(|| panic!("the document has no {method} {path}"))
}

/// A validator for `schema`, a schema inside the document (its `#/components/…` references
/// resolve against the document's components).
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": doc["components"],
    });
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema:#}"))
}

/// The media types a success may have besides JSON: the QR routes' images, the HTML receipt,
/// the settlement report's CSV.
const OTHER_SUCCESS_MEDIA: &[&str] = &["image/png", "image/svg+xml", "text/html", "text/csv"];

/// `bytes` are what `media` (one of [`OTHER_SUCCESS_MEDIA`]) says they are.
fn assert_media(media: &str, bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    let ok = match media {
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/svg+xml" => {
            text.trim_start().starts_with("<?xml") && text.contains("<svg") && text.trim_end().ends_with("</svg>")
        }
        "text/html" => text.to_ascii_lowercase().starts_with("<!doctype html") && text.trim_end().ends_with("</html>"),
        "text/csv" => text.starts_with(&format!("{SETTLEMENT_HEADER}\r\n")) && text.ends_with("\r\n"),
        _ => false,
    };
    assert!(ok, "{what}: not {media}: {:?}", &text[..text.len().min(200)]);
}

fn assert_valid(doc: &Value, schema: &Value, instance: &Value, what: &str) {
    let v = validator(doc, schema);
    let errors: Vec<String> = v.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what}: does not match the document:\n  {}\n{instance:#}", errors.join("\n  "));
}

// ---------------------------------------------------------------------------------------------
// The document against the route table.

#[test]
fn operations_are_the_route_table() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(m).is_some() {
                documented.insert((m.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    let routed: BTreeSet<(String, String)> = api_routes().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    assert_eq!(documented, routed, "the document's operations (left) are not the route table's (right)");

    for r in api_routes() {
        let item = &doc["paths"][r.path];
        let op = operation(&doc, r.method, r.path);
        // Path parameters: exactly the route's `{name}`s.
        let wanted: BTreeSet<&str> =
            r.path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        let params: Vec<&Value> = [item.get("parameters"), op.get("parameters")]
            .into_iter()
            .flatten()
            .flat_map(|p| p.as_array().unwrap())
            .map(|p| deref(&doc, p))
            .collect();
        let in_path: BTreeSet<&str> =
            params.iter().filter(|p| p["in"] == "path").map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(in_path, wanted, "{} {}: path parameters", r.method, r.path);
        assert!(params.iter().filter(|p| p["in"] == "path").all(|p| p["required"] == true));

        // Security: a bearer token exactly where the route needs one.
        let security = op.get("security").or_else(|| doc.get("security")).expect("security stated");
        let schemes: Vec<Vec<&str>> = security
            .as_array()
            .unwrap()
            .iter()
            .map(|req| req.as_object().unwrap().keys().map(String::as_str).collect())
            .collect();
        if r.requires_token {
            assert_eq!(schemes, vec![vec!["BearerAuth"]], "{} {} needs a token", r.method, r.path);
            assert!(op["responses"].get("401").is_some(), "{} {}: 401 documented", r.method, r.path);
        } else {
            assert!(schemes.iter().flatten().all(|s| *s != "BearerAuth"), "{} {} needs no token", r.method, r.path);
        }
        // What API Gateway or a bug can answer on any route.
        for status in ["429", "500"] {
            assert!(op["responses"].get(status).is_some(), "{} {}: {status} documented", r.method, r.path);
        }
        // Only documented statuses with JSON bodies; a success may instead (or also) be one of
        // the few other media types the code answers.
        for (status, response) in op["responses"].as_object().unwrap() {
            assert!(status.len() == 3 && status.parse::<u16>().is_ok(), "{} {}: status {status}", r.method, r.path);
            let response = deref(&doc, response);
            let content = response["content"].as_object().unwrap();
            let media: Vec<&str> = content.keys().map(String::as_str).collect();
            if status.starts_with('2') {
                assert!(
                    !media.is_empty()
                        && media.iter().all(|m| *m == "application/json" || OTHER_SUCCESS_MEDIA.contains(m)),
                    "{} {} {status}: {media:?}",
                    r.method,
                    r.path
                );
            } else {
                assert_eq!(media, vec!["application/json"], "{} {} {status}", r.method, r.path);
            }
            let headers = response["headers"].as_object().map(|h| h.keys().cloned().collect::<Vec<_>>());
            assert!(
                headers.is_some_and(|h| h.iter().any(|n| n == "X-Request-Id")),
                "{} {} {status}: X-Request-Id documented",
                r.method,
                r.path
            );
        }
    }
    assert_eq!(doc["components"]["securitySchemes"]["BearerAuth"]["scheme"], "bearer");
    assert_eq!(doc["components"]["securitySchemes"]["BearerAuth"]["bearerFormat"], "JWT");
}

/// Every example (media-type `examples`, referenced ones included) matches its schema.
#[test]
fn examples_match_their_schemas() {
    let doc = doc();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let mut contents = vec![(format!("{method} {path} request"), op.get("requestBody"))];
            for (status, response) in op["responses"].as_object().unwrap() {
                contents.push((format!("{method} {path} {status}"), Some(response)));
            }
            for (what, holder) in contents {
                let Some(holder) = holder else { continue };
                let holder = deref(&doc, holder);
                for (media, m) in holder["content"].as_object().into_iter().flatten() {
                    let schema = &m["schema"];
                    if let Some(example) = m.get("example") {
                        assert_valid(&doc, schema, example, &format!("{what} {media} example"));
                        checked += 1;
                    }
                    for (name, example) in m.get("examples").and_then(Value::as_object).into_iter().flatten() {
                        let example = deref(&doc, example);
                        assert_valid(&doc, schema, &example["value"], &format!("{what} {media} example {name}"));
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked >= 30, "only {checked} examples");
}

/// Every object an answer can contain is closed and says what it requires, so a field added to,
/// renamed in or dropped from a view fails the live test below.
#[test]
fn answer_objects_are_strict() {
    let doc = doc();
    let mut seen = BTreeSet::new();
    fn walk(doc: &Value, schema: &Value, at: &str, seen: &mut BTreeSet<String>) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            if seen.insert(r.to_owned()) {
                walk(doc, deref(doc, schema), r, seen);
            }
            return;
        }
        match schema {
            Value::Object(m) => {
                if m.get("type") == Some(&json!("object")) {
                    assert_eq!(m.get("additionalProperties"), Some(&json!(false)), "{at}: additionalProperties: false");
                    let props: BTreeSet<&String> = m["properties"].as_object().expect("properties").keys().collect();
                    let required: BTreeSet<&String> = m["required"]
                        .as_array()
                        .unwrap_or_else(|| panic!("{at}: required"))
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => s,
                            _ => panic!("{at}: required"),
                        })
                        .collect();
                    assert!(required.is_subset(&props), "{at}: requires what it does not describe");
                }
                for (k, v) in m {
                    walk(doc, v, &format!("{at}/{k}"), seen);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(doc, v, at, seen)),
            _ => {}
        }
    }
    for r in api_routes() {
        for (status, response) in operation(&doc, r.method, r.path)["responses"].as_object().unwrap() {
            let response = deref(&doc, response);
            walk(&doc, &response["content"], &format!("{} {} {status}", r.method, r.path), &mut seen);
        }
    }
    for name in ["LotList", "Lot", "Session", "Payment", "Refund", "PaymentCreated", "Verification", "CallbackAck"] {
        assert!(seen.contains(&format!("#/components/schemas/{name}")), "{name} is an answer");
    }
    for name in ["ObligationList", "Obligation", "SessionSearch", "Error", "ApiGatewayMessage"] {
        assert!(seen.contains(&format!("#/components/schemas/{name}")), "{name} is an answer");
    }
}

// ---------------------------------------------------------------------------------------------
// Error codes: the sources, the document, the README and docs/http-api.md.

/// Codes the sources contain that never reach an API answer, and why.
const NOT_API_ANSWERS: &[(&str, &str)] = &[
    ("INVALID_USER_ID", "a bad token subject is UNAUTHENTICATED; only /_dev/token answers it"),
    ("INVALID_SESSION_ID", "an unparsable session id is SESSION_NOT_FOUND"),
    ("INVALID_LOT_ID", "an unparsable lot id is UNKNOWN_LOT"),
    ("INVALID_PAYMENT_ID", "an unparsable payment id is PAYMENT_NOT_FOUND"),
    ("INVALID_REFUND_ID", "refund ids are never read from a request"),
    ("INVALID_TIMESTAMP", "timestamps are never read from a request"),
    ("INVALID_LOT_CONFIG", "configuration, checked at start-up"),
    ("PAYMENT_NOT_FOR_SESSION", "applying reports: logged, never answered"),
    ("LATE_SUCCESS", "applying reports: handled, never answered"),
    ("INVALID_TRANSITION", "applying reports: logged, never answered"),
    ("SWEEP_CONTENDED", "the one-time sweep command (`parkpay-local sweep`), not a route"),
    ("INVALID_JSON", "/_dev/clock/advance only"),
    ("INVALID_SECONDS", "/_dev/clock/advance only"),
];

/// The error codes in the sources: the first string literal after each `ApiError` constructor
/// (`ApiError::new(status, "CODE", …)` or `Self::new(…)` inside it, `unprocessable("CODE", …)`,
/// `bad_request("CODE", …)`)
/// in the API and the local server, and every `DomainError` code.
fn codes_in_sources() -> BTreeSet<String> {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in ["shared/api/src", "shared/local/src"] {
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "rs") {
                    files.push(p);
                }
            }
        }
    }
    let mut codes = BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // Tests are not answers.
        let text = text.split("#[cfg(test)]").next().unwrap();
        for ctor in ["ApiError::new(", "Self::new(", "unprocessable(", "bad_request("] {
            for (at, _) in text.match_indices(ctor) {
                let rest = &text[at + ctor.len()..];
                let Some(open) = rest.find('"') else { continue };
                // The literal belongs to this call only if no `)` closes it first.
                if rest[..open].contains(')') {
                    continue;
                }
                let lit = &rest[open + 1..];
                let code = &lit[..lit.find('"').unwrap()];
                if !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                    codes.insert(code.to_owned());
                }
            }
        }
    }
    let domain = std::fs::read_to_string(root.join("shared/domain/src/error.rs")).unwrap();
    let code_fn = &domain[domain.find("pub const fn code(").unwrap()..];
    let code_fn = &code_fn[..code_fn.find("\n    }\n").unwrap()];
    for line in code_fn.lines() {
        if let Some((_, lit)) = line.split_once("=> \"") {
            codes.insert(lit.trim_end_matches("\",").to_owned());
        }
    }
    assert!(codes.len() > 40, "found only {codes:?}");
    codes
}

/// Every `code` enum under an error body's `error.code`, anywhere in the document.
fn documented_codes(doc: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(codes) = v.pointer("/properties/error/properties/code/enum").and_then(Value::as_array) {
                    out.extend(codes.iter().map(|c| c.as_str().unwrap().to_owned()));
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(doc, &mut out);
    out
}

/// Codes the local server answers outside any operation (no route, another method, a request
/// it cannot turn into an event), which the document's description names.
const OUTSIDE_OPERATIONS: &[&str] = &["ROUTE_NOT_FOUND", "METHOD_NOT_ALLOWED", "MALFORMED_REQUEST"];

#[test]
fn every_error_code_is_documented() {
    let doc = doc();
    let in_sources = codes_in_sources();
    let exempt: BTreeSet<String> = NOT_API_ANSWERS.iter().map(|(c, _)| (*c).to_owned()).collect();
    let documented = documented_codes(&doc);
    let description = doc["info"]["description"].as_str().unwrap();
    let answered: BTreeSet<String> = in_sources.difference(&exempt).cloned().collect();
    for code in &answered {
        let named = documented.contains(code)
            || (OUTSIDE_OPERATIONS.contains(&code.as_str()) && description.contains(&format!("`{code}`")));
        assert!(named, "{code} can be answered but docs/openapi.yaml does not list it");
    }
    for code in &documented {
        assert!(in_sources.contains(code), "docs/openapi.yaml lists {code}, which no source answers");
        assert!(!exempt.contains(code), "{code} is exempt as never answered, but docs/openapi.yaml lists it");
    }
    for code in exempt.iter() {
        assert!(in_sources.contains(code), "exempt {code} is no longer in the sources: drop it from NOT_API_ANSWERS");
    }
    // The human-readable contracts name every code too.
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme.find("\n## The HTTP API").expect("README has \"The HTTP API\"");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map(|e| e + 3).unwrap_or(section.len())];
    let http_api = std::fs::read_to_string(repo_root().join("docs/http-api.md")).unwrap();
    for code in &answered {
        assert!(section.contains(&format!("`{code}`")), "README \"The HTTP API\" does not name {code}");
        assert!(http_api.contains(&format!("`{code}`")), "docs/http-api.md does not name {code}");
    }
}

// ---------------------------------------------------------------------------------------------
// Real answers.

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    /// The JSON body (`Null` for an answer that is not JSON: see `bytes`).
    body: Value,
    bytes: Vec<u8>,
}

struct Checker {
    doc: Value,
    env: Env,
    /// (operation, status) → error codes seen (`-` for a success).
    seen: BTreeMap<(String, u16), BTreeSet<String>>,
}

impl Checker {
    /// Send a request to `path` (whose route is `route`, the document's path template) and check
    /// the answer against the document.
    async fn call(
        &mut self,
        method: &str,
        route: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, HeaderValue)],
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut req = self.env.http.request(method.parse().unwrap(), format!("{}{path}", self.env.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(*name, value.clone());
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let hdrs = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap().to_vec();
        eprintln!("{method} {path} → {status}");
        let what = format!("{method} {path} → {status}");
        let content_type = hdrs.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        // JSON is exactly `application/json`; HTML may name its charset (UTF-8).
        let essence = match content_type.split_once(';') {
            Some((m, params))
                if matches!(m, "text/html" | "text/csv") && params.trim().eq_ignore_ascii_case("charset=utf-8") =>
            {
                m
            }
            _ => content_type,
        };
        let body: Value = if essence == "application/json" {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{what}: not JSON: {:?}", String::from_utf8_lossy(&bytes)))
        } else {
            Value::Null
        };

        let op = operation(&self.doc, method, route);
        let response = op["responses"]
            .get(status.as_str())
            .unwrap_or_else(|| panic!("{what}: status not documented for {method} {route}: {body}"));
        let response = deref(&self.doc, response).clone();
        let media = response["content"]
            .get(essence)
            .unwrap_or_else(|| panic!("{what}: content type {content_type:?} not documented"));
        if essence == "application/json" {
            assert_valid(&self.doc, &media["schema"], &body, &what);
        } else {
            assert!(status.is_success(), "{what}: an error that is not JSON");
            assert_media(essence, &bytes, &what);
            if matches!(essence, "text/html" | "text/csv") {
                let text = Value::String(String::from_utf8(bytes.clone()).expect("text is UTF-8"));
                assert_valid(&self.doc, &media["schema"], &text, &what);
            }
        }
        for (name, h) in response["headers"].as_object().into_iter().flatten() {
            let h = deref(&self.doc, h);
            let value = hdrs.get(name.as_str()).map(|v| v.to_str().unwrap().to_owned());
            // Every answer here is the local server's own: it always names the request.
            if h["required"] == true || name == "X-Request-Id" {
                assert!(value.is_some(), "{what}: header {name} missing");
            }
            if let Some(value) = value {
                let value = match h["schema"]["type"].as_str() {
                    Some("integer") => value.parse::<i64>().map(Value::from).unwrap_or(Value::String(value)),
                    _ => Value::String(value),
                };
                assert_valid(&self.doc, &h["schema"], &value, &format!("{what}: header {name}"));
            }
        }
        assert!(
            !hdrs.keys().any(|k| !is_documented_header(&response, k.as_str())),
            "{what}: undocumented headers {:?}",
            hdrs.keys().filter(|k| !is_documented_header(&response, k.as_str())).collect::<Vec<_>>()
        );
        let code = body.pointer("/error/code").and_then(Value::as_str).unwrap_or("-").to_owned();
        if let Some(id) = body.pointer("/error/request_id") {
            assert_eq!(
                Some(id.as_str().unwrap()),
                hdrs.get("x-request-id").and_then(|v| v.to_str().ok()),
                "{what}: request_id is the header's"
            );
        }
        if code == "GATEWAY_BUSY" {
            assert!(hdrs.contains_key("retry-after"), "{what}: GATEWAY_BUSY without Retry-After");
        }
        let code = if essence == "application/json" { code } else { essence.to_owned() };
        self.seen.entry((format!("{method} {route}"), status.as_u16())).or_default().insert(code);
        Answer { status, headers: hdrs, body, bytes }
    }

    async fn post(&mut self, route: &str, token: Option<&str>, body: Value) -> Answer {
        self.call("POST", route, route, token, &[], Some(body.to_string().into_bytes())).await
    }

    /// POST `body` to `path`, a path of `route`.
    async fn post_to(&mut self, route: &str, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.call("POST", route, path, token, &[], Some(body.to_string().into_bytes())).await
    }

    async fn post_keyed(&mut self, route: &str, token: &str, key: &str, body: Value) -> Answer {
        let key = HeaderValue::from_str(key).unwrap();
        self.call("POST", route, route, Some(token), &[("Idempotency-Key", key)], Some(body.to_string().into_bytes()))
            .await
    }

    async fn book(&mut self, token: &str) -> String {
        let a = self
            .post(SESSIONS, Some(token), json!({"lot_id": "MG-ROAD-1", "vehicle_number": "ka01ab1234", "hours": 2}))
            .await;
        assert_eq!(a.status, StatusCode::CREATED);
        a.body["session_id"].as_str().unwrap().to_owned()
    }

    async fn session(&mut self, token: &str, sid: &str) -> Value {
        let a = self.call("GET", SESSION, &format!("/api/sessions/{sid}/"), Some(token), &[], None).await;
        assert_eq!(a.status, StatusCode::OK);
        a.body
    }
}

/// `a` is `status`, with error `code` (`-`: not an error).
fn expect(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status.as_u16(), status, "{}", a.body);
    if code != "-" {
        assert_eq!(a.body["error"]["code"], code, "{}", a.body);
    }
}

/// Headers every answer carries that no operation needs to document.
fn is_documented_header(response: &Value, name: &str) -> bool {
    matches!(name, "content-type" | "content-length" | "date" | "connection" | "transfer-encoding" | "vary")
        || response["headers"].as_object().is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case(name)))
}

const LOTS: &str = "/api/lots/";
const SESSIONS: &str = "/api/sessions/";
const SESSION: &str = "/api/sessions/{session_id}/";
const CREATE: &str = "/api/payment/phonepe/create/";
const VERIFY: &str = "/api/payment/phonepe/verify/";
const REFUND: &str = "/api/payment/phonepe/refund/";
const CALLBACK: &str = "/api/payment/callback/phonepe/";
const OBLIGATIONS: &str = "/api/obligations/";
const PASS: &str = "/api/sessions/{session_id}/pass/";
const PASS_QR: &str = "/api/sessions/{session_id}/pass/qr/";
const PASS_KEYS: &str = "/api/passes/keys/";
const REVOKED: &str = "/api/passes/revoked/";
const ENTRY: &str = "/api/sessions/{session_id}/entry/";
const EXIT: &str = "/api/sessions/{session_id}/exit/";
const RECEIPT: &str = "/api/sessions/{session_id}/receipt/";
const PAY_QR: &str = "/api/payment/phonepe/qr/{merchant_txn_id}/";
const EXTEND: &str = "/api/sessions/{session_id}/extend/";
const SEARCH: &str = "/api/search/";
const SETTLEMENT: &str = "/api/reports/settlement/";
/// The settlement CSV's header line.
const SETTLEMENT_HEADER: &str = "kind,merchant_txn_id,phonepe_transaction_id,utr,session_id,amount,state,final_at";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_match_the_document() {
    // One lot, a low maximum amount (for AMOUNT_TOO_LARGE) and a refund limit of 3.
    let lots = r#"{"max_hours": 24, "max_amount": "1000.00", "lots": [{"lot_id": "MG-ROAD-1", "name": "MG Road Multilevel", "hourly_rate": "50.00"}]}"#;
    let dir = tempfile::tempdir().unwrap();
    let db = parkpay_store::embedded::EmbeddedStore::open(dir.path().join("parkpay.redb")).expect("embedded store");
    let stores = parkpay_api::Stores::new(db);
    let settings = [("PARKPAY_LOTS_JSON", lots), ("PARKPAY_MAX_REFUNDS_PER_PAYMENT", "3")];
    let env = start_with_env(dir, Some(stores.clone()), &settings).await;
    let sim = env.server.simulator.clone();
    let (d1, d2, op) = (env.token("driver-1"), env.token("driver-2"), env.server.token("ops-1", true));
    let mut c = Checker { doc: doc(), env, seen: BTreeMap::new() };

    // The document itself, as served.
    let resp = c.env.http.get(format!("{}/openapi.json", c.env.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.json::<Value>().await.unwrap(), c.doc);
    let resp = c.env.http.get(format!("{}/docs/", c.env.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = resp.text().await.unwrap();
    for r in api_routes() {
        assert!(page.contains(&format!("<code>{}</code>", parkpay_local::openapi::esc(r.path))), "{}", r.path);
    }

    // Lots.
    let a = c.call("GET", LOTS, LOTS, None, &[], None).await;
    expect(&a, 200, "-");
    // A route's path with another method: 405 naming the path's methods (the description says
    // so; API Gateway answers 404 `Not Found` instead).
    let resp = c.env.http.delete(format!("{}{SESSIONS}", c.env.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST, GET");
    assert!(resp.headers().contains_key("x-request-id"));
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "METHOD_NOT_ALLOWED");

    // Booking, and every way to get it wrong.
    let sid = c.book(&d1).await;
    for (vehicle, canonical) in [("22BH1234AB", "22-BH-1234-AB"), ("dl 1 1234", "DL-01-1234")] {
        let a =
            c.post(SESSIONS, Some(&d1), json!({"lot_id": "MG-ROAD-1", "vehicle_number": vehicle, "hours": 1})).await;
        expect(&a, 201, "-");
        assert_eq!(a.body["vehicle_number"], canonical);
    }
    let good = json!({"lot_id": "MG-ROAD-1", "vehicle_number": "KA01AB1234", "hours": 2});
    let a = c.post(SESSIONS, None, good.clone()).await;
    expect(&a, 401, "UNAUTHENTICATED");
    let a = c.post(SESSIONS, Some("not-a-token"), good.clone()).await;
    expect(&a, 401, "UNAUTHENTICATED");
    let a = c.call("POST", SESSIONS, SESSIONS, Some(&d1), &[], Some(b"{".to_vec())).await;
    expect(&a, 400, "MALFORMED_JSON");
    let a =
        c.post(SESSIONS, Some(&d1), json!({"lot_id": "MG-ROAD-1", "vehicle_number": "KA01AB1234", "hours": "2"})).await;
    expect(&a, 400, "INVALID_FIELD_TYPE");
    for (body, code) in [
        (json!({"vehicle_number": "KA01AB1234", "hours": 2}), "MISSING_FIELD"),
        (json!({"lot_id": "NOWHERE", "vehicle_number": "KA01AB1234", "hours": 2}), "UNKNOWN_LOT"),
        (json!({"lot_id": "MG-ROAD-1", "vehicle_number": "KA01AB12345", "hours": 2}), "INVALID_VEHICLE_NUMBER"),
        (json!({"lot_id": "MG-ROAD-1", "vehicle_number": "KA01AB1234", "hours": 25}), "INVALID_HOURS"),
        (json!({"lot_id": "MG-ROAD-1", "vehicle_number": "KA01AB1234", "hours": 24}), "AMOUNT_TOO_LARGE"),
    ] {
        let a = c.post(SESSIONS, Some(&d1), body).await;
        expect(&a, 422, code);
    }
    let big = format!(r#"{{"lot_id":"{}"}}"#, "x".repeat(70 * 1024)).into_bytes();
    let a = c.call("POST", SESSIONS, SESSIONS, Some(&d1), &[], Some(big.clone())).await;
    expect(&a, 413, "BODY_TOO_LARGE");

    // Reading it back.
    let s = c.session(&d1, &sid).await;
    assert_eq!(s["status"], "PENDING_PAYMENT");
    c.session(&op, &sid).await;
    let a = c.call("GET", SESSION, &format!("/api/sessions/{sid}/"), Some(&d2), &[], None).await;
    expect(&a, 404, "SESSION_NOT_FOUND");
    let a = c.call("GET", SESSION, "/api/sessions/not-a-session/", Some(&d1), &[], None).await;
    expect(&a, 404, "SESSION_NOT_FOUND");
    let a = c.call("GET", SESSION, "/api/sessions//", Some(&d1), &[], None).await;
    expect(&a, 404, "ROUTE_NOT_FOUND");
    let a = c.call("GET", SESSION, &format!("/api/sessions/{sid}/"), None, &[], None).await;
    expect(&a, 401, "UNAUTHENTICATED");

    // Create-payment: the client's mistakes.
    for (body, status, code) in [
        (json!({"session_id": sid, "user_id": "someone-else"}), 403, "USER_MISMATCH"),
        (json!({"session_id": "ps_00000000000000000000000000"}), 404, "SESSION_NOT_FOUND"),
        (json!({}), 422, "MISSING_FIELD"),
        (json!({"session_id": sid, "payment_instrument": "CASH"}), 422, "INVALID_PAYMENT_INSTRUMENT"),
        (
            json!({"session_id": sid, "payment_instrument": "UPI_INTENT", "device_os": "SYMBIAN"}),
            422,
            "INVALID_DEVICE_OS",
        ),
        (json!({"session_id": sid, "payment_instrument": "UPI_COLLECT"}), 422, "MISSING_FIELD"),
        (json!({"session_id": sid, "payment_instrument": "UPI_COLLECT", "vpa": "no-at-sign"}), 422, "INVALID_VPA"),
        (json!({"session_id": sid, "amount": "1e2"}), 422, "INVALID_AMOUNT"),
        (json!({"session_id": sid, "amount": "5000.00"}), 422, "AMOUNT_TOO_LARGE"),
        (json!({"session_id": sid, "amount": "99.00"}), 422, "AMOUNT_MISMATCH"),
        (json!({"session_id": sid, "amount": true}), 400, "INVALID_FIELD_TYPE"),
    ] {
        let a = c.post(CREATE, Some(&d1), body).await;
        expect(&a, status, code);
    }
    let bad_key = HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap();
    let body = json!({"session_id": sid}).to_string().into_bytes();
    let a = c.call("POST", CREATE, CREATE, Some(&d1), &[("Idempotency-Key", bad_key)], Some(body)).await;
    expect(&a, 422, "INVALID_IDEMPOTENCY_KEY");
    let a = c.call("POST", CREATE, CREATE, Some(&d1), &[], Some(b"[]".to_vec())).await;
    expect(&a, 400, "MALFORMED_JSON");
    let a = c.call("POST", CREATE, CREATE, Some(&d1), &[], Some(big.clone())).await;
    expect(&a, 413, "BODY_TOO_LARGE");

    // Paying: a key, its replay, the key with another body, a second payment while it runs.
    let key = format!("pay-{sid}");
    let body = json!({"session_id": sid, "amount": 100.00, "payment_instrument": "PAY_PAGE"});
    let first = c.post_keyed(CREATE, &d1, &key, body.clone()).await;
    expect(&first, 201, "-");
    assert!(first.body["redirect_url"].is_string());
    let replay = c.post_keyed(CREATE, &d1, &key, body).await;
    expect(&replay, 201, "-");
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.body, first.body);
    let a = c.post_keyed(CREATE, &d1, &key, json!({"session_id": sid, "amount": "100.00"})).await;
    expect(&a, 422, "IDEMPOTENCY_KEY_REUSED");
    let a = c.post(CREATE, Some(&d1), json!({"session_id": sid})).await;
    expect(&a, 409, "PAYMENT_IN_PROGRESS");
    let txn = first.body["merchant_txn_id"].as_str().unwrap().to_owned();
    // Refunding it before it is paid.
    let a = c.post(REFUND, Some(&d1), json!({"merchant_txn_id": txn})).await;
    expect(&a, 409, "PAYMENT_NOT_REFUNDABLE");
    c.env.pay(&first.body, "success").await;
    let s = c.session(&d1, &sid).await;
    assert_eq!((s["status"].clone(), s["payments"][0]["status"].clone()), (json!("PAID"), json!("SUCCESS")));
    let a = c.post(CREATE, Some(&d1), json!({"session_id": sid})).await;
    expect(&a, 409, "SESSION_ALREADY_PAID");

    // The other instruments.
    for (body, link) in [
        (json!({"payment_instrument": "UPI_INTENT", "device_os": "ios", "amount": "100"}), Some("upi_intent_url")),
        (json!({"payment_instrument": "UPI_INTENT"}), Some("upi_intent_url")),
        (json!({"payment_instrument": "UPI_QR"}), Some("qr_data")),
        (json!({"payment_instrument": "UPI_COLLECT", "vpa": "driver.1@okhdfc", "user_id": "driver-1"}), None),
    ] {
        let other = c.book(&d1).await;
        let mut body = body;
        body["session_id"] = json!(other);
        let a = c.post(CREATE, Some(&d1), body).await;
        expect(&a, 201, "-");
        for field in ["redirect_url", "upi_intent_url", "qr_data"] {
            assert_eq!(a.body.get(field).is_some(), Some(field) == link, "{field}: {}", a.body);
        }
    }

    // PhonePe busy, refusing, timing out, unreachable.
    let busy = c.book(&d1).await;
    sim.set_global_faults(Faults::force("TOO_MANY_REQUESTS").only(&[Operation::Pay])).unwrap();
    let a = c.post(CREATE, Some(&d1), json!({"session_id": busy})).await;
    expect(&a, 503, "GATEWAY_BUSY");
    assert_eq!(a.headers["retry-after"], "5");
    sim.set_global_faults(Faults::force("BAD_REQUEST").only(&[Operation::Pay])).unwrap();
    let refused = c.book(&d1).await;
    let a = c.post_keyed(CREATE, &d1, "refused", json!({"session_id": refused})).await;
    expect(&a, 502, "GATEWAY_REJECTED");
    let a = c.post_keyed(CREATE, &d1, "refused", json!({"session_id": refused})).await;
    expect(&a, 409, "PAYMENT_FAILED");
    sim.set_global_faults(Faults::server_error_after().only(&[Operation::Pay])).unwrap();
    let unknown = c.book(&d1).await;
    let a = c.post(CREATE, Some(&d1), json!({"session_id": unknown})).await;
    expect(&a, 503, "GATEWAY_OUTCOME_UNKNOWN");
    sim.clear_all_faults();
    {
        // A twin on the same store whose PhonePe is a closed port.
        let twin = common::unreachable_twin(&stores).await;
        let unreachable = c.book(&d1).await;
        let saved = std::mem::replace(&mut c.env, twin);
        let a = c.post(CREATE, Some(&d1), json!({"session_id": unreachable})).await;
        expect(&a, 503, "GATEWAY_UNAVAILABLE");
        let twin = std::mem::replace(&mut c.env, saved);
        twin.server.stop().await;
    }

    // Verify.
    let a = c.post(VERIFY, Some(&d1), json!({"merchant_txn_id": txn})).await;
    expect(&a, 200, "-");
    assert_eq!((a.body["verified"].clone(), a.body["can_enter"].clone()), (json!(true), json!(true)));
    expect(&c.post(VERIFY, Some(&op), json!({"merchant_txn_id": txn})).await, 200, "-");
    for (token, body, status, code) in [
        (&d2, json!({"merchant_txn_id": txn}), 404, "PAYMENT_NOT_FOUND"),
        (&d1, json!({"merchant_txn_id": "PPUNKNOWN"}), 404, "PAYMENT_NOT_FOUND"),
        (&d1, json!({}), 422, "MISSING_FIELD"),
        (&d1, json!({"merchant_txn_id": 5}), 400, "INVALID_FIELD_TYPE"),
    ] {
        let a = c.post(VERIFY, Some(token), body).await;
        expect(&a, status, code);
    }

    // Refunds: with a key and its replay, the mistakes, PhonePe refusing, the limit, the rest.
    let body = json!({"merchant_txn_id": txn, "amount": "30.00", "reason": "left early"});
    let first = c.post_keyed(REFUND, &d1, "refund-1", body.clone()).await;
    expect(&first, 202, "-");
    let replay = c.post_keyed(REFUND, &d1, "refund-1", body).await;
    expect(&replay, 202, "-");
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    let a = c.post_keyed(REFUND, &d1, "refund-1", json!({"merchant_txn_id": txn})).await;
    expect(&a, 422, "IDEMPOTENCY_KEY_REUSED");
    for (token, body, status, code) in [
        (&d1, json!({"merchant_txn_id": txn, "amount": "80.00"}), 409, "REFUND_EXCEEDS_REMAINING"),
        (&d1, json!({"merchant_txn_id": txn, "amount": "0"}), 422, "INVALID_AMOUNT"),
        (&d1, json!({"merchant_txn_id": txn, "amount": "5000.00"}), 422, "AMOUNT_TOO_LARGE"),
        (&d1, json!({"merchant_txn_id": txn, "reason": "a\u{7}b"}), 422, "INVALID_REFUND_REASON"),
        (&d1, json!({"amount": "1.00"}), 422, "MISSING_FIELD"),
        (&d1, json!({"merchant_txn_id": txn, "amount": false}), 400, "INVALID_FIELD_TYPE"),
        (&d2, json!({"merchant_txn_id": txn}), 404, "PAYMENT_NOT_FOUND"),
    ] {
        let a = c.post(REFUND, Some(token), body).await;
        expect(&a, status, code);
    }
    sim.set_global_faults(Faults::force("EXCESS_REFUND_AMOUNT").only(&[Operation::Refund])).unwrap();
    let a = c.post(REFUND, Some(&d1), json!({"merchant_txn_id": txn, "amount": "1.00"})).await;
    expect(&a, 502, "GATEWAY_REJECTED");
    sim.clear_all_faults();
    // Three requests per payment for a driver (the refused one counts): the fourth is refused.
    let a = c.post(REFUND, Some(&d1), json!({"merchant_txn_id": txn, "amount": 1})).await;
    expect(&a, 202, "-");
    let a = c.post(REFUND, Some(&d1), json!({"merchant_txn_id": txn, "amount": "1.00"})).await;
    expect(&a, 409, "REFUND_LIMIT_REACHED");
    // An operator is not limited, and without an amount takes whatever is left.
    let rest = c.post(REFUND, Some(&op), json!({"merchant_txn_id": txn})).await;
    expect(&rest, 202, "-");
    assert_eq!(rest.body["amount"], "69.00");
    let a = c.post(REFUND, Some(&op), json!({"merchant_txn_id": txn})).await;
    expect(&a, 409, "NOTHING_TO_REFUND");
    common::wait_session(&c.env, &sid, "refunded", |s| s["status"] == "REFUNDED").await;
    let s = c.session(&d1, &sid).await;
    assert_eq!(s["refunds"].as_array().unwrap().len(), 4, "{s}");

    // Operators find a session by each key: the paid and refunded one above.
    let receipt = c.call("GET", RECEIPT, &format!("/api/sessions/{sid}/receipt/"), Some(&d1), &[], None).await;
    expect(&receipt, 200, "-");
    let paid = &receipt.body["payments"][0];
    let (phonepe_id, utr) = (paid["phonepe_transaction_id"].as_str().unwrap(), paid["utr"].as_str().unwrap());
    let (phonepe_id, utr) = (phonepe_id.to_owned(), utr.to_owned());
    let refund_id = s["refunds"][0]["refund_id"].as_str().unwrap().to_owned();
    let search = |q: &str| format!("{SEARCH}?{q}");
    for q in [
        format!("merchant_txn_id={txn}"),
        format!("merchant_txn_id={refund_id}"),
        format!("phonepe_transaction_id={phonepe_id}"),
        format!("utr={utr}"),
        // Spaces around the value are ignored, a parameter given empty counts as absent.
        format!("utr=%20{utr}%20&vehicle_number="),
    ] {
        let a = c.call("GET", SEARCH, &search(&q), Some(&op), &[], None).await;
        expect(&a, 200, "-");
        let found = a.body["sessions"].as_array().unwrap();
        assert_eq!(found.len(), 1, "{q}: {}", a.body);
        assert_eq!(found[0]["session_id"], sid.as_str(), "{q}");
        assert_eq!(found[0]["refunds"].as_array().unwrap().len(), 4, "{q}: with its payments and refunds");
    }
    // By vehicle: the vehicle's sessions, newest first.
    let a = c.call("GET", SEARCH, &search("vehicle_number=ka%2001%20ab%201234"), Some(&op), &[], None).await;
    expect(&a, 200, "-");
    let found = a.body["sessions"].as_array().unwrap();
    assert!(found.iter().any(|f| f["session_id"] == sid.as_str()), "{}", a.body);
    assert!(found.iter().all(|f| f["vehicle_number"] == "KA-01-AB-1234"), "{}", a.body);
    let booked: Vec<&str> = found.iter().map(|f| f["created_at"].as_str().unwrap()).collect();
    assert!(booked.windows(2).all(|w| w[0] >= w[1]), "newest first: {booked:?}");
    // At most 20: the newest.
    let (mut fleet, d3) = (Vec::new(), c.env.token("driver-3"));
    for _ in 0..21 {
        let body = json!({"lot_id": "MG-ROAD-1", "vehicle_number": "MH12AB0001", "hours": 1});
        let a = c.post(SESSIONS, Some(&d3), body).await;
        expect(&a, 201, "-");
        fleet.push(a.body["session_id"].as_str().unwrap().to_owned());
    }
    let a = c.call("GET", SEARCH, &search("vehicle_number=MH-12-AB-0001"), Some(&op), &[], None).await;
    expect(&a, 200, "-");
    let found: Vec<&str> =
        a.body["sessions"].as_array().unwrap().iter().map(|f| f["session_id"].as_str().unwrap()).collect();
    let newest: Vec<&str> = fleet.iter().rev().take(20).map(String::as_str).collect();
    assert_eq!(found, newest, "the 20 newest, newest first");
    let a = c.call("GET", SEARCH, &search("utr=nothing-like-it"), Some(&op), &[], None).await;
    expect(&a, 200, "-");
    assert_eq!(a.body, json!({"sessions": []}));
    let a = c.call("GET", SEARCH, &search(&format!("merchant_txn_id={}", "P".repeat(64))), Some(&op), &[], None).await;
    expect(&a, 200, "-");
    let desk_gate = c.env.server.gate_token("gate-desk");
    for (token, q, status, code) in [
        (Some(&d1), format!("utr={utr}"), 403, "OPERATOR_ONLY"),
        (Some(&desk_gate), format!("utr={utr}"), 403, "OPERATOR_ONLY"),
        (None, format!("utr={utr}"), 401, "UNAUTHENTICATED"),
        (Some(&op), String::new(), 422, "INVALID_QUERY"),
        (Some(&op), "utr=".to_owned(), 422, "INVALID_QUERY"),
        (Some(&op), "utr=%20%20".to_owned(), 422, "INVALID_QUERY"),
        (Some(&op), format!("utr={utr}&merchant_txn_id={txn}"), 422, "INVALID_QUERY"),
        (Some(&op), format!("merchant_txn_id={}", "P".repeat(65)), 422, "INVALID_QUERY"),
        (Some(&op), "vehicle_number=KA01AB12345".to_owned(), 422, "INVALID_VEHICLE_NUMBER"),
    ] {
        let a = c.call("GET", SEARCH, &search(&q), token.map(String::as_str), &[], None).await;
        expect(&a, status, code);
    }

    // The settlement report of the day (in India) they became final: the payment, its four
    // refunds (one refused: FAILED) and the payment PhonePe refused (FAILED).
    let refused_payment = c.session(&d1, &refused).await["payments"][0].clone();
    assert_eq!(refused_payment["status"], "FAILED");
    let times = [
        &s["payments"][0]["created_at"],
        &s["updated_at"],
        &refused_payment["created_at"],
        &refused_payment["updated_at"],
    ];
    let rows = settlement_rows(&mut c, &op, &times).await;
    let row = |id: &str| rows.iter().find(|r| r[1] == id).unwrap_or_else(|| panic!("no row of {id}: {rows:?}"));
    assert_eq!(row(&txn)[..7], ["PAYMENT", &txn, &phonepe_id, &utr, &sid, "100.00", "SUCCESS"]);
    for r in s["refunds"].as_array().unwrap() {
        let (id, amount, state) =
            (r["refund_id"].as_str().unwrap(), r["amount"].as_str().unwrap(), r["status"].as_str().unwrap());
        assert_eq!(row(id)[..7], ["REFUND", id, "", "", &sid, amount, state]);
    }
    let refused_txn = refused_payment["merchant_txn_id"].as_str().unwrap();
    assert_eq!((row(refused_txn)[0].as_str(), row(refused_txn)[6].as_str()), ("PAYMENT", "FAILED"));
    let a = c.call("GET", SETTLEMENT, &format!("{SETTLEMENT}?date=2020-01-01"), Some(&op), &[], None).await;
    expect(&a, 200, "-");
    assert_eq!(a.bytes, format!("{SETTLEMENT_HEADER}\r\n").into_bytes(), "a day without any: the header alone");
    let day = india_date(&s["updated_at"]);
    for (token, q, status, code) in [
        (Some(&d1), format!("date={day}"), 403, "OPERATOR_ONLY"),
        (Some(&desk_gate), format!("date={day}"), 403, "OPERATOR_ONLY"),
        (None, format!("date={day}"), 401, "UNAUTHENTICATED"),
        (Some(&op), String::new(), 422, "INVALID_DATE"),
        (Some(&op), "date=".to_owned(), 422, "INVALID_DATE"),
        (Some(&op), "date=2026-02-30".to_owned(), 422, "INVALID_DATE"),
        (Some(&op), "date=2026-2-3".to_owned(), 422, "INVALID_DATE"),
        (Some(&op), "date=27-11-2026".to_owned(), 422, "INVALID_DATE"),
        (Some(&op), "date=2026-11-27T00:00:00Z".to_owned(), 422, "INVALID_DATE"),
    ] {
        let a = c.call("GET", SETTLEMENT, &format!("{SETTLEMENT}?{q}"), token.map(String::as_str), &[], None).await;
        expect(&a, status, code);
    }

    // Entry passes, gates, receipts, the history, payment QR images.
    let gate = c.env.server.gate_token("gate-north");
    let keys = c.call("GET", PASS_KEYS, PASS_KEYS, None, &[], None).await;
    expect(&keys, 200, "-");
    let jwks = keys.body.clone();
    // A paid session: its pass, verified as a gate does, and its QR image.
    let visit = c.book(&d1).await;
    let p = c.post(CREATE, Some(&d1), json!({"session_id": visit})).await;
    expect(&p, 201, "-");
    c.env.pay(&p.body, "success").await;
    common::wait_session(&c.env, &visit, "paid", |s| s["status"] == "PAID").await;
    let visit_txn = p.body["merchant_txn_id"].as_str().unwrap().to_owned();
    let pass_path = format!("/api/sessions/{visit}/pass/");
    let pass = c.call("GET", PASS, &pass_path, Some(&d1), &[], None).await;
    expect(&pass, 200, "-");
    assert_eq!(pass.body["kid"], jwks["keys"][0]["kid"], "signed with the current key");
    let from = pass.body["valid_from"].as_str().unwrap();
    let from = parkpay_domain::Timestamp::parse_rfc3339(from).unwrap().unix_millis() / 1000;
    let claims = parkpay_passes::verify(pass.body["pass"].as_str().unwrap(), &jwks, from + 1, 0).expect("a valid pass");
    assert_eq!((claims.sid.as_str(), claims.iss.as_str()), (visit.as_str(), "parkpay"));
    expect(&c.call("GET", PASS, &pass_path, Some(&op), &[], None).await, 200, "-");
    for (token, path, status, code) in [
        (Some(&d2), pass_path.clone(), 404, "SESSION_NOT_FOUND"),
        (Some(&d1), "/api/sessions/not-a-session/pass/".to_owned(), 404, "SESSION_NOT_FOUND"),
        (None, pass_path.clone(), 401, "UNAUTHENTICATED"),
        (Some(&d1), format!("/api/sessions/{sid}/pass/"), 409, "PASS_REVOKED"),
    ] {
        let a = c.call("GET", PASS, &path, token.map(String::as_str), &[], None).await;
        expect(&a, status, code);
    }
    let unpaid = c.book(&d1).await;
    let a = c.call("GET", PASS, &format!("/api/sessions/{unpaid}/pass/"), Some(&d1), &[], None).await;
    expect(&a, 409, "SESSION_NOT_PAID");
    for (q, media) in [("", "image/png"), ("?format=svg", "image/svg+xml"), ("?format=PNG", "image/png")] {
        let a = c.call("GET", PASS_QR, &format!("/api/sessions/{visit}/pass/qr/{q}"), Some(&d1), &[], None).await;
        expect(&a, 200, "-");
        assert_eq!(a.headers["content-type"], media);
        assert!(!a.bytes.is_empty());
    }
    for (token, path, status, code) in [
        (Some(&d1), format!("/api/sessions/{visit}/pass/qr/?format=gif"), 422, "INVALID_FORMAT"),
        (Some(&d2), format!("/api/sessions/{visit}/pass/qr/"), 404, "SESSION_NOT_FOUND"),
        (Some(&d1), format!("/api/sessions/{unpaid}/pass/qr/"), 409, "SESSION_NOT_PAID"),
        (None, format!("/api/sessions/{visit}/pass/qr/"), 401, "UNAUTHENTICATED"),
    ] {
        let a = c.call("GET", PASS_QR, &path, token.map(String::as_str), &[], None).await;
        expect(&a, status, code);
    }

    // Entry and exit: a gate's scans, their mistakes, repeats.
    let (entry, exit) = (format!("/api/sessions/{visit}/entry/"), format!("/api/sessions/{visit}/exit/"));
    let (unpaid_entry, nobody_exit) =
        (format!("/api/sessions/{unpaid}/entry/"), "/api/sessions/ps_00000000000000000000000000/exit/".to_owned());
    let at = |t: &str| json!({"gate": "north-1", "scanned_at": t});
    for (path, token, body, status, code) in [
        (&entry, Some(&d1), json!({"gate": "north-1"}), 403, "GATE_ONLY"),
        (&entry, None, json!({"gate": "north-1"}), 401, "UNAUTHENTICATED"),
        (&entry, Some(&gate), json!({}), 422, "MISSING_FIELD"),
        (&entry, Some(&gate), json!({"gate": "north 1"}), 422, "INVALID_GATE_ID"),
        (&entry, Some(&gate), json!({"gate": 5}), 400, "INVALID_FIELD_TYPE"),
        (&entry, Some(&gate), at("today"), 422, "INVALID_SCAN_TIME"),
        (&entry, Some(&gate), at("2026-11-27X10:00:00Z"), 422, "INVALID_SCAN_TIME"),
        (&entry, Some(&gate), at("2099-01-01T00:00:00Z"), 422, "INVALID_SCAN_TIME"),
        (&entry, Some(&gate), at("2001-01-01T00:00:00Z"), 422, "INVALID_SCAN_TIME"),
        (&unpaid_entry, Some(&gate), json!({"gate": "north-1"}), 409, "SESSION_NOT_PAID"),
        (&nobody_exit, Some(&gate), json!({"gate": "g"}), 404, "SESSION_NOT_FOUND"),
    ] {
        let route = if path.ends_with("/exit/") { EXIT } else { ENTRY };
        let a = c.post_to(route, path, token.map(String::as_str), body).await;
        expect(&a, status, code);
    }
    let first = c.post_to(ENTRY, &entry, Some(&gate), json!({"gate": "north-1"})).await;
    expect(&first, 200, "-");
    assert_eq!((first.body["recorded"].clone(), first.body.get("exit")), (json!(true), None));
    let again = c.post_to(ENTRY, &entry, Some(&op), json!({"gate": "north-2"})).await;
    expect(&again, 200, "-");
    assert_eq!(again.body["recorded"], false, "a later entry changes nothing");
    assert_eq!(again.body["entry"], first.body["entry"]);
    let before = json!({"gate": "south-2", "scanned_at": "2001-01-01T00:00:00Z"});
    expect(&c.post_to(EXIT, &exit, Some(&gate), before).await, 422, "INVALID_SCAN_TIME");
    let left = c.post_to(EXIT, &exit, Some(&gate), json!({"gate": "south-2"})).await;
    expect(&left, 200, "-");
    assert_eq!((left.body["recorded"].clone(), left.body["exit"]["gate"].clone()), (json!(true), json!("south-2")));

    // The cancellation rule: once the vehicle has entered, its driver may not refund (an
    // operator may).
    let a = c.post(REFUND, Some(&d1), json!({"merchant_txn_id": visit_txn})).await;
    expect(&a, 409, "REFUND_NOT_ALLOWED");

    // The receipt: JSON, or HTML when asked.
    let receipt = format!("/api/sessions/{visit}/receipt/");
    let a = c.call("GET", RECEIPT, &receipt, Some(&d1), &[], None).await;
    expect(&a, 200, "-");
    assert_eq!((a.body["net_paid"].clone(), a.body["entry"]["gate"].clone()), (json!("100.00"), json!("north-1")));
    assert_eq!((a.body["extra_hours"].clone(), a.body["payments"][0]["purpose"].clone()), (json!(0), json!("BOOKING")));
    assert_eq!(a.headers["vary"], "Accept", "one URL, two representations");
    let html = [("Accept", HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"))];
    let a = c.call("GET", RECEIPT, &receipt, Some(&d1), &html, None).await;
    expect(&a, 200, "-");
    assert!(a.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(a.headers["vary"], "Accept");
    assert!(String::from_utf8_lossy(&a.bytes).contains(&visit));
    expect(&c.call("GET", RECEIPT, &receipt, Some(&op), &[], None).await, 200, "-");
    expect(&c.call("GET", RECEIPT, &format!("/api/sessions/{unpaid}/receipt/"), Some(&d1), &[], None).await, 200, "-");
    let a = c.call("GET", RECEIPT, &receipt, Some(&d2), &[], None).await;
    expect(&a, 404, "SESSION_NOT_FOUND");
    let a = c.call("GET", RECEIPT, &receipt, None, &[], None).await;
    expect(&a, 401, "UNAUTHENTICATED");

    // A full refund revokes the pass; gates read the revoked passes.
    let a = c.post(REFUND, Some(&op), json!({"merchant_txn_id": visit_txn})).await;
    expect(&a, 202, "-");
    common::wait_session(&c.env, &visit, "refunded", |s| s["status"] == "REFUNDED").await;
    let get = |q: &str| format!("{REVOKED}?{q}");
    let all = c.call("GET", REVOKED, &get(""), Some(&gate), &[], None).await;
    expect(&all, 200, "-");
    let revoked = all.body["revoked"].as_array().unwrap();
    assert_eq!(revoked.len(), 2, "{}", all.body);
    let entry_of = revoked.iter().find(|r| r["session_id"] == visit.as_str()).expect("the refunded visit");
    assert_eq!(entry_of["jti"], claims.jti.as_str(), "named by the pass's jti");
    let page = c.call("GET", REVOKED, &get("limit=1&since=2000-01-01T00:00:00Z"), Some(&op), &[], None).await;
    expect(&page, 200, "-");
    assert_eq!(page.body["revoked"].as_array().unwrap().len(), 1, "{}", page.body);
    let revoked_cursor = page.body["next_cursor"].as_str().expect("a second page").to_owned();
    let q = format!("limit=1&since=2000-01-01T00:00:00Z&cursor={revoked_cursor}");
    let rest = c.call("GET", REVOKED, &get(&q), Some(&gate), &[], None).await;
    expect(&rest, 200, "-");
    assert_eq!(rest.body["revoked"][0], all.body["revoked"][1], "{}", rest.body);
    let late = c.call("GET", REVOKED, &get("since=2999-01-01T00:00:00%2B05:30"), Some(&gate), &[], None).await;
    expect(&late, 200, "-");
    assert_eq!(late.body, json!({"revoked": [], "next_cursor": null}));
    // RFC 3339 allows a space between date and time.
    let spaced = c.call("GET", REVOKED, &get("since=2000-01-01%2000:00:00Z"), Some(&gate), &[], None).await;
    expect(&spaced, 200, "-");
    assert_eq!(spaced.body, all.body);
    for (token, q, status, code) in [
        (Some(&d1), "", 403, "GATE_ONLY"),
        (None, "", 401, "UNAUTHENTICATED"),
        (Some(&gate), "since=yesterday", 422, "INVALID_SINCE"),
        (Some(&gate), "since=2000-01-01X00:00:00Z", 422, "INVALID_SINCE"),
        (Some(&gate), "limit=0", 422, "INVALID_LIMIT"),
        (Some(&gate), "limit=%2B5", 422, "INVALID_LIMIT"),
        (Some(&gate), "limit=101", 422, "INVALID_LIMIT"),
        (Some(&gate), "cursor=YWJj", 422, "INVALID_CURSOR"),
    ] {
        let a = c.call("GET", REVOKED, &get(q), token.map(String::as_str), &[], None).await;
        expect(&a, status, code);
    }

    // The history: the caller's own sessions, newest first, a page at a time.
    let history = |q: &str| format!("{SESSIONS}?{q}");
    let a = c.call("GET", SESSIONS, SESSIONS, Some(&d1), &[], None).await;
    expect(&a, 200, "-");
    assert_eq!(a.body["sessions"][0]["session_id"], unpaid.as_str(), "newest first");
    let first = c.call("GET", SESSIONS, &history("limit=2"), Some(&d1), &[], None).await;
    expect(&first, 200, "-");
    let sessions_cursor = first.body["next_cursor"].as_str().expect("a second page").to_owned();
    let next = history(&format!("limit=2&cursor={sessions_cursor}"));
    let second = c.call("GET", SESSIONS, &next, Some(&d1), &[], None).await;
    expect(&second, 200, "-");
    assert_ne!(second.body["sessions"][0], first.body["sessions"][0]);
    let theirs = c.call("GET", SESSIONS, SESSIONS, Some(&d2), &[], None).await;
    expect(&theirs, 200, "-");
    assert_eq!(theirs.body, json!({"sessions": [], "next_cursor": null}), "only the caller's own");
    for (token, q, status, code) in [
        (None, String::new(), 401, "UNAUTHENTICATED"),
        (Some(&d1), "limit=0".to_owned(), 422, "INVALID_LIMIT"),
        (Some(&d1), "limit=101".to_owned(), 422, "INVALID_LIMIT"),
        (Some(&d1), "limit=ten".to_owned(), 422, "INVALID_LIMIT"),
        (Some(&d1), "limit=%2B2".to_owned(), 422, "INVALID_LIMIT"),
        (Some(&d1), "limit=%202".to_owned(), 422, "INVALID_LIMIT"),
        (Some(&d1), "limit=2.0".to_owned(), 422, "INVALID_LIMIT"),
        (Some(&d1), "cursor=YWJj".to_owned(), 422, "INVALID_CURSOR"),
        (Some(&d1), format!("cursor={revoked_cursor}"), 422, "INVALID_CURSOR"),
    ] {
        let a = c.call("GET", SESSIONS, &history(&q), token.map(String::as_str), &[], None).await;
        expect(&a, status, code);
    }

    // Extending a paid session: a payment for more hours, answered like create-payment.
    let longer = c.book(&d1).await;
    let ext = format!("/api/sessions/{longer}/extend/");
    let a = c.post_to(EXTEND, &ext, Some(&d1), json!({"hours": 1})).await;
    expect(&a, 409, "SESSION_NOT_EXTENDABLE");
    let p = c.post(CREATE, Some(&d1), json!({"session_id": longer})).await;
    expect(&p, 201, "-");
    let longer_txn = p.body["merchant_txn_id"].as_str().unwrap().to_owned();
    c.env.pay(&p.body, "success").await;
    common::wait_session(&c.env, &longer, "paid", |s| s["status"] == "PAID").await;
    let (refunded_ext, nobody_ext) =
        (format!("/api/sessions/{sid}/extend/"), "/api/sessions/ps_00000000000000000000000000/extend/".to_owned());
    let h1 = json!({"hours": 1});
    for (token, path, body, status, code) in [
        (None, &ext, h1.clone(), 401, "UNAUTHENTICATED"),
        (Some(&d2), &ext, h1.clone(), 404, "SESSION_NOT_FOUND"),
        (Some(&op), &ext, h1.clone(), 404, "SESSION_NOT_FOUND"),
        (Some(&d1), &nobody_ext, h1.clone(), 404, "SESSION_NOT_FOUND"),
        (Some(&d1), &refunded_ext, h1.clone(), 409, "SESSION_NOT_EXTENDABLE"),
        (Some(&d1), &ext, json!({}), 422, "MISSING_FIELD"),
        (Some(&d1), &ext, json!({"hours": 0}), 422, "INVALID_HOURS"),
        (Some(&d1), &ext, json!({"hours": 25}), 422, "INVALID_HOURS"),
        (Some(&d1), &ext, json!({"hours": "1"}), 400, "INVALID_FIELD_TYPE"),
        (Some(&d1), &ext, json!({"hours": 1.5}), 400, "INVALID_FIELD_TYPE"),
        (Some(&d1), &ext, json!({"hours": 1, "amount": "99.00"}), 422, "AMOUNT_MISMATCH"),
        (Some(&d1), &ext, json!({"hours": 1, "amount": "1e2"}), 422, "INVALID_AMOUNT"),
        (Some(&d1), &ext, json!({"hours": 21}), 422, "AMOUNT_TOO_LARGE"),
        (Some(&d1), &ext, json!({"hours": 1, "payment_instrument": "CASH"}), 422, "INVALID_PAYMENT_INSTRUMENT"),
        (Some(&d1), &ext, json!({"hours": 1, "payment_instrument": "APP_SDK"}), 422, "INSTRUMENT_NOT_AVAILABLE"),
        (
            Some(&d1),
            &ext,
            json!({"hours": 1, "payment_instrument": "UPI_INTENT", "device_os": "SYMBIAN"}),
            422,
            "INVALID_DEVICE_OS",
        ),
        (Some(&d1), &ext, json!({"hours": 1, "payment_instrument": "UPI_COLLECT"}), 422, "MISSING_FIELD"),
        (Some(&d1), &ext, json!({"hours": 1, "payment_instrument": "UPI_COLLECT", "vpa": "x"}), 422, "INVALID_VPA"),
    ] {
        let a = c.post_to(EXTEND, path, token.map(String::as_str), body).await;
        expect(&a, status, code);
    }
    let keyed = |key: &'static str| [("Idempotency-Key", HeaderValue::from_static(key))];
    let bytes = |v: Value| Some(v.to_string().into_bytes());
    let bad_key = [("Idempotency-Key", HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap())];
    let a = c.call("POST", EXTEND, &ext, Some(&d1), &bad_key, bytes(h1.clone())).await;
    expect(&a, 422, "INVALID_IDEMPOTENCY_KEY");
    expect(&c.call("POST", EXTEND, &ext, Some(&d1), &[], Some(b"{".to_vec())).await, 400, "MALFORMED_JSON");
    expect(&c.call("POST", EXTEND, &ext, Some(&d1), &[], Some(big.clone())).await, 413, "BODY_TOO_LARGE");
    // PhonePe refusing (then the key's retry is PAYMENT_FAILED), and rate-limiting us.
    sim.set_global_faults(Faults::force("BAD_REQUEST").only(&[Operation::Pay])).unwrap();
    let a = c.call("POST", EXTEND, &ext, Some(&d1), &keyed("ext-refused"), bytes(h1.clone())).await;
    expect(&a, 502, "GATEWAY_REJECTED");
    let a = c.call("POST", EXTEND, &ext, Some(&d1), &keyed("ext-refused"), bytes(h1.clone())).await;
    expect(&a, 409, "PAYMENT_FAILED");
    sim.set_global_faults(Faults::force("TOO_MANY_REQUESTS").only(&[Operation::Pay])).unwrap();
    let three = json!({"hours": 3, "amount": "150.00"});
    let a = c.post_to(EXTEND, &ext, Some(&d1), three.clone()).await;
    expect(&a, 503, "GATEWAY_BUSY");
    assert_eq!(a.headers["retry-after"], "5");
    sim.clear_all_faults();
    // The retry sends the payment PhonePe did not take; its key replays it; one at a time.
    let first = c.call("POST", EXTEND, &ext, Some(&d1), &keyed("ext-1"), bytes(three.clone())).await;
    expect(&first, 201, "-");
    assert_eq!((first.body["amount"].clone(), first.body["session_id"].clone()), (json!("150.00"), json!(longer)));
    let replay = c.call("POST", EXTEND, &ext, Some(&d1), &keyed("ext-1"), bytes(three.clone())).await;
    expect(&replay, 201, "-");
    assert_eq!(
        (replay.headers["idempotent-replayed"].clone(), &replay.body),
        (HeaderValue::from_static("true"), &first.body)
    );
    let a = c.call("POST", EXTEND, &ext, Some(&d1), &keyed("ext-1"), bytes(json!({"hours": 3}))).await;
    expect(&a, 422, "IDEMPOTENCY_KEY_REUSED");
    expect(&c.post_to(EXTEND, &ext, Some(&d1), h1.clone()).await, 409, "PAYMENT_IN_PROGRESS");
    let ext_txn = first.body["merchant_txn_id"].as_str().unwrap().to_owned();
    c.env.pay(&first.body, "success").await;
    let s = common::wait_session(&c.env, &longer, "extended", |s| s["paid"] == "250.00").await;
    assert_eq!(
        (s["status"].clone(), s["hours"].clone(), s["amount"].clone()),
        (json!("PAID"), json!(2), json!("100.00"))
    );
    // 2 booked + 3 extended + 20 is more than the 24 hours allowed in all.
    let a = c.post_to(EXTEND, &ext, Some(&d1), json!({"hours": 20})).await;
    expect(&a, 422, "INVALID_HOURS");
    assert!(a.body["error"]["message"].as_str().unwrap().contains("1 to 19"), "{}", a.body);
    // The receipt and the pass show the later end; the driver may refund the extension.
    let a = c.call("GET", RECEIPT, &format!("/api/sessions/{longer}/receipt/"), Some(&d1), &[], None).await;
    expect(&a, 200, "-");
    let r = a.body;
    assert_eq!(
        (r["hours"].clone(), r["extra_hours"].clone(), r["paid"].clone()),
        (json!(2), json!(3), json!("250.00"))
    );
    let purposes: Vec<&Value> = r["payments"].as_array().unwrap().iter().map(|p| &p["purpose"]).collect();
    assert_eq!(purposes, [&json!("BOOKING"), &json!("EXTENSION")], "{r}");
    assert_eq!(r["payments"][1]["merchant_txn_id"], ext_txn.as_str());
    let ms = |v: &Value| parkpay_domain::Timestamp::parse_rfc3339(v.as_str().unwrap()).unwrap().unix_millis();
    assert_eq!(ms(&r["booked_until"]) - ms(&r["booked_at"]), 5 * 3_600_000, "{r}");
    let pass = c.call("GET", PASS, &format!("/api/sessions/{longer}/pass/"), Some(&d1), &[], None).await;
    expect(&pass, 200, "-");
    assert_eq!(ms(&pass.body["valid_until"]) / 1000, (ms(&r["booked_until"]) + 15 * 60_000) / 1000, "{}", pass.body);
    let a = c.post(REFUND, Some(&d1), json!({"merchant_txn_id": ext_txn, "amount": "50.00"})).await;
    expect(&a, 202, "-");
    let a = c.post(REFUND, Some(&d1), json!({"merchant_txn_id": ext_txn, "amount": "150.00"})).await;
    expect(&a, 409, "REFUND_EXCEEDS_REMAINING");
    expect(&c.post(VERIFY, Some(&d1), json!({"merchant_txn_id": longer_txn})).await, 200, "-");

    // A pending UPI payment's link as a QR image; gone once paid.
    let kiosk = c.book(&d1).await;
    let upi = c.post(CREATE, Some(&d1), json!({"session_id": kiosk, "payment_instrument": "UPI_QR"})).await;
    expect(&upi, 201, "-");
    let upi_txn = upi.body["merchant_txn_id"].as_str().unwrap().to_owned();
    let qr = format!("/api/payment/phonepe/qr/{upi_txn}/");
    for (q, token, media) in [("", &d1, "image/png"), ("?format=svg", &op, "image/svg+xml")] {
        let a = c.call("GET", PAY_QR, &format!("{qr}{q}"), Some(token), &[], None).await;
        expect(&a, 200, "-");
        assert_eq!(a.headers["content-type"], media);
    }
    for (token, path, status, code) in [
        (Some(&d1), format!("{qr}?format=jpeg"), 422, "INVALID_FORMAT"),
        (Some(&d2), qr.clone(), 404, "PAYMENT_NOT_FOUND"),
        (Some(&d1), format!("/api/payment/phonepe/qr/{visit_txn}/"), 404, "PAYMENT_NOT_FOUND"),
        (Some(&d1), "/api/payment/phonepe/qr/PPUNKNOWN/".to_owned(), 404, "PAYMENT_NOT_FOUND"),
        (None, qr.clone(), 401, "UNAUTHENTICATED"),
    ] {
        let a = c.call("GET", PAY_QR, &path, token.map(String::as_str), &[], None).await;
        expect(&a, status, code);
    }
    sim.complete(&upi_txn, parkpay_simulator::Outcome::Success).await.expect("paid");
    common::wait_session(&c.env, &kiosk, "paid", |s| s["status"] == "PAID").await;
    let a = c.call("GET", PAY_QR, &qr, Some(&d1), &[], None).await;
    expect(&a, 409, "PAYMENT_NOT_PENDING");

    // The callback.
    let salt = "099eb0cd-02cf-4e2a-8aca-3e6c6aff0399";
    let (body, x_verify) = signed_callback(salt, "PPNOTOURS0001", "PAYMENT_SUCCESS", "COMPLETED", 10_000);
    let verify = |v: &str| vec![("X-VERIFY", HeaderValue::from_str(v).unwrap())];
    let a = c.call("POST", CALLBACK, CALLBACK, None, &verify(&x_verify), Some(body.clone())).await;
    expect(&a, 200, "-");
    assert_eq!(a.body, json!({"success": true, "applied": false}));
    let a = c.call("POST", CALLBACK, CALLBACK, None, &[], Some(body.clone())).await;
    expect(&a, 401, "INVALID_SIGNATURE");
    let (_, forged) = signed_callback("not-our-salt-key-at-all", "PPNOTOURS0001", "PAYMENT_SUCCESS", "COMPLETED", 1);
    let a = c.call("POST", CALLBACK, CALLBACK, None, &verify(&forged), Some(body)).await;
    expect(&a, 401, "INVALID_SIGNATURE");
    let a = c.call("POST", CALLBACK, CALLBACK, None, &verify("abc###1"), Some(b"not json".to_vec())).await;
    expect(&a, 400, "MALFORMED_CALLBACK");
    let a = c.call("POST", CALLBACK, CALLBACK, None, &verify("abc###1"), Some(big)).await;
    expect(&a, 413, "BODY_TOO_LARGE");

    // Obligations: one that needs a person (a payment that succeeds after its session was
    // cancelled, whose automatic refund PhonePe refuses) and open ones gone overdue.
    let late = c.book(&d1).await;
    let p = c.post(CREATE, Some(&d1), json!({"session_id": late})).await;
    expect(&p, 201, "-");
    let late_txn = p.body["merchant_txn_id"].as_str().unwrap().to_owned();
    let cancelled = c.book(&d1).await;
    expect(&c.post(CREATE, Some(&d1), json!({"session_id": cancelled})).await, 201, "-");
    // 21 minutes on: both payments expire and their sessions are cancelled.
    advance(&c.env, 21 * 60).await;
    let a = c.post(CREATE, Some(&d1), json!({"session_id": cancelled})).await;
    expect(&a, 409, "SESSION_NOT_PAYABLE");
    sim.set_global_faults(Faults::force("EXCESS_REFUND_AMOUNT").only(&[Operation::Refund])).unwrap();
    sim.complete(&late_txn, parkpay_simulator::Outcome::Success).await.expect("late success");
    common::wait_session(&c.env, &late, "the automatic refund refused", |s| s["refunds"][0]["status"] == "FAILED")
        .await;
    // Its settlement rows: FAILED when it expired, SUCCESS when PhonePe reported it after all (a
    // late success), and the automatic refund PhonePe refused.
    let l = c.session(&op, &late).await;
    let times = [
        &l["payments"][0]["created_at"],
        &l["payments"][0]["updated_at"],
        &l["refunds"][0]["created_at"],
        &l["updated_at"],
    ];
    let rows = settlement_rows(&mut c, &op, &times).await;
    let states: BTreeSet<(&str, &str)> =
        rows.iter().filter(|r| r[4] == late).map(|r| (r[0].as_str(), r[6].as_str())).collect();
    let want = BTreeSet::from([("PAYMENT", "FAILED"), ("PAYMENT", "SUCCESS"), ("REFUND", "FAILED")]);
    assert_eq!(states, want, "{rows:?}");
    // Two payments whose status PhonePe cannot tell (garbage answers): 31 minutes on, their
    // checks are overdue.
    for _ in 0..2 {
        let stuck = c.book(&d1).await;
        expect(&c.post(CREATE, Some(&d1), json!({"session_id": stuck})).await, 201, "-");
    }
    sim.set_global_faults(Faults::garbage().only(&[Operation::Status])).unwrap();
    advance(&c.env, 31 * 60).await;
    let get = |q: &str| format!("{OBLIGATIONS}?{q}");
    let needs = c.call("GET", OBLIGATIONS, &get("state=needs_person"), Some(&op), &[], None).await;
    expect(&needs, 200, "-");
    assert!(!needs.body["obligations"].as_array().unwrap().is_empty(), "{}", needs.body);
    let page = c.call("GET", OBLIGATIONS, &get("state=overdue&limit=1"), Some(&op), &[], None).await;
    expect(&page, 200, "-");
    assert_eq!(page.body["obligations"].as_array().unwrap().len(), 1, "{}", page.body);
    let cursor = page.body["next_cursor"].as_str().expect("a second page").to_owned();
    let a = c.call("GET", OBLIGATIONS, &get(&format!("state=overdue&cursor={cursor}")), Some(&op), &[], None).await;
    expect(&a, 200, "-");
    for (token, q, status, code) in [
        (Some(&d1), "state=overdue", 403, "OPERATOR_ONLY"),
        (None, "state=overdue", 401, "UNAUTHENTICATED"),
        (Some(&op), "", 422, "INVALID_QUERY"),
        (Some(&op), "state=overdue&limit=0", 422, "INVALID_QUERY"),
        (Some(&op), "state=overdue&cursor=YWJj", 422, "INVALID_CURSOR"),
    ] {
        let a = c.call("GET", OBLIGATIONS, &get(q), token.map(String::as_str), &[], None).await;
        expect(&a, status, code);
    }
    sim.clear_all_faults();

    // Hours on, past the booked end and the grace period: the kiosk session's pass has expired.
    advance(&c.env, 3 * 3600).await;
    let a = c.call("GET", PASS, &format!("/api/sessions/{kiosk}/pass/"), Some(&d1), &[], None).await;
    expect(&a, 409, "PASS_EXPIRED");

    // Every operation answered its success at least once.
    for (route, status) in [
        (format!("GET {LOTS}"), 200),
        (format!("POST {SESSIONS}"), 201),
        (format!("GET {SESSION}"), 200),
        (format!("POST {CREATE}"), 201),
        (format!("POST {VERIFY}"), 200),
        (format!("POST {REFUND}"), 202),
        (format!("POST {CALLBACK}"), 200),
        (format!("GET {OBLIGATIONS}"), 200),
        (format!("GET {SESSIONS}"), 200),
        (format!("GET {PASS}"), 200),
        (format!("GET {PASS_QR}"), 200),
        (format!("GET {PASS_KEYS}"), 200),
        (format!("GET {REVOKED}"), 200),
        (format!("POST {ENTRY}"), 200),
        (format!("POST {EXIT}"), 200),
        (format!("GET {RECEIPT}"), 200),
        (format!("GET {PAY_QR}"), 200),
        (format!("POST {EXTEND}"), 201),
        (format!("GET {SEARCH}"), 200),
        (format!("GET {SETTLEMENT}"), 200),
    ] {
        assert!(c.seen.contains_key(&(route.clone(), status)), "{route} never answered {status}");
    }
    let answers: usize = c.seen.values().map(BTreeSet::len).sum();
    eprintln!("{answers} kinds of answer checked against docs/openapi.yaml:");
    for ((route, status), codes) in &c.seen {
        eprintln!("  {route} {status} {codes:?}");
    }
    c.env.server.stop().await;
}

/// The rows (fields split at commas: these hold none) of the settlement reports of the days in
/// India of `times`, each answer checked against the document, its file name too.
async fn settlement_rows(c: &mut Checker, op: &str, times: &[&Value]) -> Vec<Vec<String>> {
    let days: BTreeSet<String> = times.iter().map(|t| india_date(t)).collect();
    let mut rows = Vec::new();
    for day in days {
        let a = c.call("GET", SETTLEMENT, &format!("{SETTLEMENT}?date={day}"), Some(op), &[], None).await;
        expect(&a, 200, "-");
        let disposition = a.headers["content-disposition"].to_str().unwrap();
        assert_eq!(disposition, format!("attachment; filename=\"settlement-{day}.csv\""));
        let text = String::from_utf8(a.bytes).unwrap();
        let lines = text.strip_suffix("\r\n").expect("CRLF line ends").split("\r\n").skip(1);
        rows.extend(lines.map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>()));
    }
    rows
}

/// The date in India (UTC+05:30) at `t`, an RFC 3339 time: the day of the settlement report.
fn india_date(t: &Value) -> String {
    let ms = parkpay_domain::Timestamp::parse_rfc3339(t.as_str().expect("a time")).unwrap().unix_millis();
    parkpay_domain::Timestamp::from_unix_millis(ms + 19_800_000).unwrap().to_rfc3339()[..10].to_owned()
}

/// Move parkpay's clock forward and reconcile meanwhile (`POST /_dev/clock/advance`).
async fn advance(env: &Env, seconds: u64) {
    let resp = env
        .http
        .post(format!("{}/_dev/clock/advance", env.base))
        .body(json!({"seconds": seconds}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
}
