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
    /// Nothing there.
    Absent,
}

/// What an answer's body must be (its content type and how API Gateway gets it included).
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// `application/json`, as text; each JSON pointer as wanted.
    Json(&'static [(&'static str, Want)]),
    /// `text/html; charset=utf-8`, as text, holding each of these texts.
    Html(&'static [&'static str]),
    /// `image/png`, base64-encoded for API Gateway (`isBase64Encoded: true`): a PNG image
    /// (its 8-byte signature, then the `IHDR` chunk).
    Png,
    /// `image/svg+xml`, as text (`lambda_http` sends a `+xml` type as text, not base64): an SVG
    /// document.
    Svg,
    /// `text/javascript; charset=utf-8`, as text (the console's script), holding each of these
    /// texts.
    Script(&'static [&'static str]),
    /// `text/csv; charset=utf-8`, as text, a download (`content-disposition: attachment;
    /// filename="<name>"`): exactly these lines, each ended by CRLF (RFC 4180).
    Csv { filename: &'static str, lines: &'static [&'static str] },
}

/// The answer `file` must get.
#[derive(Debug, Clone, Copy)]
pub struct Expectation {
    pub file: &'static str,
    pub status: u16,
    pub body: Body,
}

/// A JSON answer.
const fn expect(file: &'static str, status: u16, checks: &'static [(&'static str, Want)]) -> Expectation {
    Expectation { file, status, body: Body::Json(checks) }
}

/// An answer of another kind ([`Body`]).
const fn expect_body(file: &'static str, status: u16, body: Body) -> Expectation {
    Expectation { file, status, body }
}

use Want::{Absent, Json, Text};

/// The signature every PNG file starts with.
pub const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

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
    // The driver's newest two sessions (whichever they are: create-session.json may have booked
    // one meanwhile), and a cursor to the next page.
    expect(
        "list-sessions.json",
        200,
        &[
            ("/sessions/0/session_id", Text),
            ("/sessions/0/vehicle_number", Text),
            ("/sessions/1/session_id", Text),
            ("/sessions/2", Absent),
            ("/next_cursor", Text),
        ],
    ),
    // Another driver has no session: only their own are listed.
    expect("list-sessions.other-user.json", 200, &[("/sessions", Json("[]")), ("/next_cursor", Json("null"))]),
    expect("list-sessions.bad-cursor.json", 422, &[("/error/code", Json(r#""INVALID_CURSOR""#))]),
    // Fixture 11 (PAID): its pass, signed with the fixtures' current key.
    expect(
        "get-pass.json",
        200,
        &[
            ("/pass", Text),
            ("/kid", Json(r#""CgkleESv2Vct78DuEoI9eHH6N7G4bcTvixMaEIwrngM""#)),
            ("/valid_from", Text),
            ("/valid_until", Text),
        ],
    ),
    expect("get-pass.revoked.json", 409, &[("/error/code", Json(r#""PASS_REVOKED""#))]),
    expect("get-pass.not-paid.json", 409, &[("/error/code", Json(r#""SESSION_NOT_PAID""#))]),
    expect("get-pass.other-user.json", 404, &[("/error/code", Json(r#""SESSION_NOT_FOUND""#))]),
    expect_body("get-pass-qr.json", 200, Body::Png),
    expect_body("get-pass-qr.svg.json", 200, Body::Svg),
    expect("get-pass-qr.bad-format.json", 422, &[("/error/code", Json(r#""INVALID_FORMAT""#))]),
    // The JWKS (no token): the current key, then the previous one still accepted.
    expect(
        "pass-keys.json",
        200,
        &[
            ("/keys/0/kty", Json(r#""OKP""#)),
            ("/keys/0/crv", Json(r#""Ed25519""#)),
            ("/keys/0/alg", Json(r#""EdDSA""#)),
            ("/keys/0/use", Json(r#""sig""#)),
            ("/keys/0/kid", Json(r#""CgkleESv2Vct78DuEoI9eHH6N7G4bcTvixMaEIwrngM""#)),
            ("/keys/0/x", Json(r#""sbhqj4C2EnCOjo-tpjWrf856Tli86CWg9obs7qhIz-Q""#)),
            ("/keys/0/d", Absent),
            ("/keys/1/kid", Json(r#""l3Sn5SYuI2wnU9FQAwsjhk2EisCd2quLnw_Zk7UnAXw""#)),
            ("/keys/2", Absent),
        ],
    ),
    // A gate polls: fixture 12 (refunded in full) is the one revoked pass, read from GSI3.
    expect(
        "revoked-passes.json",
        200,
        &[
            ("/revoked/0/session_id", Json(r#""ps_01jdfx8r2m0000000000000012""#)),
            ("/revoked/0/jti", Text),
            ("/revoked/0/revoked_at", Text),
            ("/revoked/1", Absent),
            ("/next_cursor", Json("null")),
        ],
    ),
    expect("revoked-passes.since.json", 200, &[("/revoked", Json("[]")), ("/next_cursor", Json("null"))]),
    expect("revoked-passes.driver.json", 403, &[("/error/code", Json(r#""GATE_ONLY""#))]),
    // A gate online (scanned now), fixture 13.
    expect(
        "record-entry.json",
        200,
        &[
            ("/session_id", Json(r#""ps_01jdfx8r2m0000000000000013""#)),
            ("/recorded", Json("true")),
            ("/entry/gate", Json(r#""north-1""#)),
            ("/entry/scanned_at", Text),
            ("/entry/recorded_at", Text),
            ("/exit", Absent),
        ],
    ),
    // An offline gate's queued entry, with its scanned_at, fixture 14.
    expect(
        "record-entry.queued.json",
        200,
        &[
            ("/session_id", Json(r#""ps_01jdfx8r2m0000000000000014""#)),
            ("/recorded", Json("true")),
            ("/entry/gate", Json(r#""north-2""#)),
            ("/entry/scanned_at", Json(r#""2025-11-27T10:14:05.000Z""#)),
        ],
    ),
    expect("record-entry.driver.json", 403, &[("/error/code", Json(r#""GATE_ONLY""#))]),
    expect("record-entry.not-paid.json", 409, &[("/error/code", Json(r#""SESSION_NOT_PAID""#))]),
    expect(
        "record-exit.json",
        200,
        &[
            ("/session_id", Json(r#""ps_01jdfx8r2m0000000000000015""#)),
            ("/recorded", Json("true")),
            ("/exit/gate", Json(r#""south-1""#)),
            ("/entry", Absent),
        ],
    ),
    // The same offline gate's queued exit (an operator's console forwards it), fixture 14.
    expect(
        "record-exit.queued.json",
        200,
        &[
            ("/session_id", Json(r#""ps_01jdfx8r2m0000000000000014""#)),
            ("/recorded", Json("true")),
            ("/exit/gate", Json(r#""south-2""#)),
            ("/exit/scanned_at", Json(r#""2025-11-27T11:52:40.000Z""#)),
        ],
    ),
    expect(
        "get-receipt.json",
        200,
        &[
            ("/session_id", Json(r#""ps_01jdfx8r2m0000000000000011""#)),
            ("/status", Json(r#""PAID""#)),
            ("/amount", Json(r#""100.00""#)),
            ("/paid", Json(r#""100.00""#)),
            ("/net_paid", Json(r#""100.00""#)),
            ("/payments/0/merchant_txn_id", Json(r#""PP01JDFX8R2M0000000000000011""#)),
            ("/payments/0/utr", Json(r#""433212300011""#)),
            ("/refunds", Json("[]")),
        ],
    ),
    expect_body(
        "get-receipt.html.json",
        200,
        Body::Html(&[
            "<!doctype html>",
            "Parking receipt ps_01jdfx8r2m0000000000000011",
            "PP01JDFX8R2M0000000000000011",
        ]),
    ),
    expect("get-receipt.other-user.json", 404, &[("/error/code", Json(r#""SESSION_NOT_FOUND""#))]),
    // Fixture 16's pending UPI payment: its link as an image.
    expect_body("payment-qr.json", 200, Body::Png),
    expect_body("payment-qr.svg.json", 200, Body::Svg),
    expect("payment-qr.other-user.json", 404, &[("/error/code", Json(r#""PAYMENT_NOT_FOUND""#))]),
    // Fixture 17 (PAID): one more hour at MG-ROAD-1's 50.00, a payment like create-payment's.
    expect(
        "extend-session.json",
        201,
        &[
            ("/session_id", Json(r#""ps_01jdfx8r2m0000000000000017""#)),
            ("/merchant_txn_id", Text),
            ("/amount", Json(r#""50.00""#)),
            ("/status", Json(r#""PENDING""#)),
            ("/redirect_url", Text),
            ("/expires_at", Text),
        ],
    ),
    expect("extend-session.not-paid.json", 409, &[("/error/code", Json(r#""SESSION_NOT_EXTENDABLE""#))]),
    expect("extend-session.other-user.json", 404, &[("/error/code", Json(r#""SESSION_NOT_FOUND""#))]),
    // Operators' search (fixture 18, read only), by each key: its vehicle (on GSI4), its
    // merchant transaction id (its pointer), PhonePe's transaction id (GSI2) and its UTR (GSI3).
    expect(
        "search-sessions.json",
        200,
        &[
            ("/sessions/0/session_id", Json(r#""ps_01jdfx8r2m0000000000000018""#)),
            ("/sessions/0/vehicle_number", Json(r#""KA-01-AB-1018""#)),
            ("/sessions/0/payments/0/merchant_txn_id", Json(r#""PP01JDFX8R2M0000000000000018""#)),
            ("/sessions/0/status", Json(r#""PARTIALLY_REFUNDED""#)),
            ("/sessions/0/refunds/0/refund_id", Json(r#""RF01JDFX8R2M0000000000000018""#)),
            ("/sessions/1", Absent),
        ],
    ),
    expect(
        "search-sessions.merchant-txn.json",
        200,
        &[("/sessions/0/session_id", Json(r#""ps_01jdfx8r2m0000000000000018""#)), ("/sessions/1", Absent)],
    ),
    expect(
        "search-sessions.phonepe-id.json",
        200,
        &[("/sessions/0/session_id", Json(r#""ps_01jdfx8r2m0000000000000018""#)), ("/sessions/1", Absent)],
    ),
    expect(
        "search-sessions.utr.json",
        200,
        &[("/sessions/0/session_id", Json(r#""ps_01jdfx8r2m0000000000000018""#)), ("/sessions/1", Absent)],
    ),
    expect("search-sessions.driver.json", 403, &[("/error/code", Json(r#""OPERATOR_ONLY""#))]),
    expect("search-sessions.invalid-query.json", 422, &[("/error/code", Json(r#""INVALID_QUERY""#))]),
    // The settlement CSV of fixture 18's India day: its payment and its refund, nothing else.
    expect_body(
        "settlement-report.json",
        200,
        Body::Csv {
            filename: "settlement-2025-11-26.csv",
            lines: &[
                "kind,merchant_txn_id,phonepe_transaction_id,utr,session_id,amount,state,final_at",
                "PAYMENT,PP01JDFX8R2M0000000000000018,T2511271015301234500018,433212300018,ps_01jdfx8r2m0000000000000018,100.00,SUCCESS,2025-11-26T04:32:00.000Z",
                "REFUND,RF01JDFX8R2M0000000000000018,,,ps_01jdfx8r2m0000000000000018,40.00,SUCCESS,2025-11-26T05:30:00.000Z",
            ],
        },
    ),
    expect("settlement-report.driver.json", 403, &[("/error/code", Json(r#""OPERATOR_ONLY""#))]),
    expect("settlement-report.bad-date.json", 422, &[("/error/code", Json(r#""INVALID_DATE""#))]),
    // The operators' console (no token): the page, which loads its script and stylesheet from
    // the same route by `?asset=`; its script; an asset it does not have.
    expect_body(
        "console.json",
        200,
        Body::Html(&["<!doctype html>", "<title>parkpay console</title>", r#"<script src="?asset=console.js" defer>"#]),
    ),
    expect_body("console.script.json", 200, Body::Script(&["sessionStorage", "/api/payment/phonepe/refund/"])),
    expect("console.unknown-asset.json", 404, &[("/error/code", Json(r#""ROUTE_NOT_FOUND""#))]),
];

pub fn expectation(file: &str) -> Option<&'static Expectation> {
    EXPECTATIONS.iter().find(|e| e.file == file)
}

/// Check a JSON answer against `expect` (a [`Body::Json`] expectation): status, JSON content
/// type, every pointer; errors always carry a code and a message. `Err` lists every mismatch.
pub fn check(expect: &Expectation, status: u16, content_type: Option<&str>, body: &Value) -> Result<(), String> {
    let answer = crate::process::HttpAnswer {
        status,
        content_type: content_type.map(str::to_owned),
        body: body.clone(),
        bytes: Vec::new(),
        base64_encoded: false,
        content_disposition: None,
    };
    check_answer(expect, &answer)
}

/// Check an answer against `expect`: status, content type, whether API Gateway gets the body
/// base64-encoded (binary answers: `isBase64Encoded: true`; text: not), and the body
/// ([`Body`]); errors always carry a code and a message. `Err` lists every mismatch.
pub fn check_answer(expect: &Expectation, a: &crate::process::HttpAnswer) -> Result<(), String> {
    let mut problems = Vec::new();
    if a.status != expect.status {
        problems.push(format!("status {}, want {}", a.status, expect.status));
    }
    let (content_type, binary) = match expect.body {
        Body::Json(_) => ("application/json", false),
        Body::Html(_) => ("text/html; charset=utf-8", false),
        Body::Png => ("image/png", true),
        Body::Svg => ("image/svg+xml", false),
        Body::Script(_) => ("text/javascript; charset=utf-8", false),
        Body::Csv { .. } => ("text/csv; charset=utf-8", false),
    };
    if a.content_type.as_deref() != Some(content_type) {
        problems.push(format!("content-type {:?}, want {content_type}", a.content_type));
    }
    if a.base64_encoded != binary {
        problems.push(format!("isBase64Encoded {}, want {binary}", a.base64_encoded));
    }
    let text = String::from_utf8_lossy(&a.bytes);
    match expect.body {
        Body::Json(checks) => {
            for (pointer, want) in checks {
                let got = a.body.pointer(pointer);
                let ok = match want {
                    Want::Json(text) => {
                        got == Some(&serde_json::from_str::<Value>(text).expect("expectations are valid JSON"))
                    }
                    Want::Text => got.and_then(Value::as_str).is_some_and(|s| !s.is_empty()),
                    Want::Absent => got.is_none(),
                };
                if !ok {
                    problems.push(format!(
                        "{pointer} = {}, want {want:?}",
                        got.map_or("(absent)".into(), Value::to_string)
                    ));
                }
            }
        }
        Body::Html(parts) | Body::Script(parts) => {
            for part in parts {
                if !text.contains(part) {
                    problems.push(format!("the answer does not hold {part:?}"));
                }
            }
        }
        Body::Png => {
            if !a.bytes.starts_with(&PNG_SIGNATURE) || a.bytes.get(12..16) != Some(b"IHDR".as_slice()) {
                problems.push(format!("not a PNG image: {:02x?}", &a.bytes[..a.bytes.len().min(16)]));
            }
        }
        Body::Csv { filename, lines } => {
            let want = format!("attachment; filename=\"{filename}\"");
            if a.content_disposition.as_deref() != Some(want.as_str()) {
                problems.push(format!("content-disposition {:?}, want {want:?}", a.content_disposition));
            }
            let want: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
            if text != want {
                problems.push(format!("CSV {text:?}, want {want:?}"));
            }
        }
        Body::Svg => {
            if !(text.starts_with("<?xml") || text.starts_with("<svg"))
                || !text.contains("<svg ")
                || !text.trim_end().ends_with("</svg>")
            {
                problems.push(format!("not an SVG document: {:.80}", text));
            }
        }
    }
    if expect.status >= 400 && a.body["error"]["message"].as_str().is_none_or(str::is_empty) {
        problems.push("an error answer without error.message".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let shown = if matches!(expect.body, Body::Png | Body::Svg) && a.status < 400 {
            format!("{} bytes", a.bytes.len())
        } else {
            a.body.to_string()
        };
        Err(format!("{}: {} — body {shown}", expect.file, problems.join("; ")))
    }
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
            if let Body::Json(checks) = e.body {
                for (_, want) in checks {
                    if let Want::Json(t) = want {
                        serde_json::from_str::<Value>(t).unwrap_or_else(|err| panic!("{}: {t}: {err}", e.file));
                    }
                }
            }
        }
    }
}
