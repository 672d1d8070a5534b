//! HTTP plumbing shared by every handler: the error body of the contract, JSON answers, and
//! strict request-body parsing that turns every client mistake into a 4xx with a stable code.

use std::borrow::Cow;

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use parkpay_domain::{DomainError, MoneyError, Paise};
use parkpay_store::StoreError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Largest request body we read. The contract's bodies are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An answer that is not a success: status, stable code, human sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    /// Seconds for a `Retry-After` header (503 answers that a retry will cure).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: brief(message.into()), retry_after: None }
    }

    /// The same answer with a `Retry-After: {secs}` header.
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
    }

    pub fn session_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND", "no such parking session")
    }

    pub fn payment_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND", "no such payment")
    }

    /// For failures that are ours, not the client's. The cause goes to the log, not the body.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "something went wrong on our side")
    }

    /// The answer, without a request id (see [`ApiError::into_response_for`]).
    pub fn into_response(self) -> Response<Body> {
        self.into_response_for(None)
    }

    /// The answer: `{"error": {"code", "message", "request_id"}}` (`request_id` left out when
    /// `None`), with `Retry-After` when set. Handlers answer with their request's id
    /// (`crate::telemetry::RequestIds`), which the `x-request-id` header repeats.
    pub fn into_response_for(self, request_id: Option<&str>) -> Response<Body> {
        let mut resp = json_response(
            self.status,
            &ErrorBody { error: ErrorDetail { code: self.code.as_ref(), message: &self.message, request_id } },
        );
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ApiError::new(
                StatusCode::CONFLICT,
                "CONCURRENT_UPDATE",
                "the record changed while this request was handled; try again",
            ),
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE", "storage is unavailable; try again")
            }
            other => ApiError::internal(other),
        }
    }
}

/// A JSON answer. Serialising our own view types cannot fail; if it ever did, the answer is a
/// plain 500 rather than a panic.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    let (status, body) = match serde_json::to_string(value) {
        Ok(b) => (status, b),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":{"code":"INTERNAL_ERROR","message":"something went wrong on our side"}}"#.to_owned(),
        ),
    };
    let mut resp = Response::new(Body::Text(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A text answer of another type than JSON (an HTML page, a CSV file).
pub fn text_response(status: StatusCode, content_type: &'static str, text: String) -> Response<Body> {
    let mut resp = Response::new(Body::Text(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A binary answer (an image). `lambda_http` hands API Gateway a binary content type (PNG)
/// base64-encoded, and a textual one (`image/svg+xml`) as text.
pub fn bytes_response(status: StatusCode, content_type: &'static str, bytes: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(Body::Binary(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// The raw bytes of a request body (empty when there is none).
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        // `Body` is non-exhaustive upstream; anything new is treated as no body.
        #[allow(unreachable_patterns)]
        _ => &[],
    }
}

/// Parse a JSON object body into `T`. Malformed JSON, a wrong type, a non-object, invalid
/// UTF-8 and oversized bodies are 400/413 with a stable code. Unknown fields are ignored.
pub fn parse_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    parse_json_bytes(body_bytes(req))
}

pub fn parse_json_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            format!("request body is over {MAX_BODY_BYTES} bytes"),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("MALFORMED_JSON", "request body must be a JSON object"));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("MALFORMED_JSON", "request body is not valid UTF-8"))?;
    // First make sure it is an object at all (so "[]" or "1" is a clear error).
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        return Err(ApiError::bad_request("MALFORMED_JSON", "request body must be a JSON object"));
    }
    serde_json::from_str::<T>(text).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::bad_request("INVALID_FIELD_TYPE", format!("a field has the wrong type: {e}")),
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::bad_request("MALFORMED_JSON", format!("request body is not valid JSON: {e}"))
            }
        }
    })
}

/// The longest error message. Messages built from a parser's text quote the offending value
/// (serde: `invalid type: string "…", expected u32`), which can be most of a 64 KiB body: every
/// [`ApiError`] message is cut to this, so answers, logs and stored idempotency records never
/// carry a client's bulk back.
const MAX_MESSAGE_CHARS: usize = 200;

fn brief(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

/// Require a field the client left out (fields are `Option` so that a missing one is a 422 with
/// its name, not a generic deserialisation error).
pub fn required<T>(value: Option<T>, name: &'static str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::unprocessable("MISSING_FIELD", format!("`{name}` is required")))
}

/// A money amount as a client may send it: a JSON string (`"100.00"`) or a JSON number literal
/// (`100.00`), read from its exact text so no float ever touches it.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct AmountInput(Box<RawValue>);

impl AmountInput {
    /// Paise, or a 400 (wrong JSON type) / 422 (bad amount) error naming `field`.
    pub fn to_paise(&self, field: &'static str, max: Paise) -> Result<Paise, ApiError> {
        let raw = self.0.get();
        let text: Cow<'_, str> = if raw.starts_with('"') {
            match serde_json::from_str::<String>(raw) {
                Ok(s) => Cow::Owned(s),
                Err(_) => return Err(ApiError::bad_request("INVALID_FIELD_TYPE", format!("`{field}` is malformed"))),
            }
        } else if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            Cow::Borrowed(raw)
        } else {
            return Err(ApiError::bad_request(
                "INVALID_FIELD_TYPE",
                format!("`{field}` must be a decimal string such as \"100.00\" or a number"),
            ));
        };
        Paise::parse_rupees(&text, max).map_err(|e: MoneyError| {
            let e = DomainError::from(e);
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), format!("`{field}`: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[allow(dead_code)]
        a: Option<i64>,
        amount: Option<AmountInput>,
    }

    fn parse(s: &str) -> Result<Probe, ApiError> {
        parse_json_bytes(s.as_bytes())
    }

    #[test]
    fn body_errors_have_codes() {
        assert_eq!(parse("").unwrap_err().code, "MALFORMED_JSON");
        assert_eq!(parse("{").unwrap_err().code, "MALFORMED_JSON");
        assert_eq!(parse("[]").unwrap_err().code, "MALFORMED_JSON");
        assert_eq!(parse("1").unwrap_err().code, "MALFORMED_JSON");
        assert_eq!(parse(r#"{"a":"x"}"#).unwrap_err().code, "INVALID_FIELD_TYPE");
        assert_eq!(parse(r#"{"a":1.5}"#).unwrap_err().code, "INVALID_FIELD_TYPE");
        assert_eq!(parse(r#"{"a":99999999999999999999999}"#).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(parse_json_bytes::<Probe>(&[b'{', 0xff, b'}']).unwrap_err().code, "MALFORMED_JSON");
        let deep = format!("{}{}", "{\"a\":".repeat(200), "}".repeat(200));
        assert_eq!(parse(&deep).unwrap_err().status, StatusCode::BAD_REQUEST);
        let huge = format!("{{\"a\":1,\"pad\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
        assert_eq!(parse(&huge).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(parse(r#"{"a":1,"unknown":[1,2]}"#).is_ok());
    }

    #[test]
    fn error_messages_do_not_echo_bulk_input() {
        // a 60,000-character string where a number belongs, multi-byte characters included
        let long = "é".repeat(30_000);
        let e = parse(&format!(r#"{{"a":"{long}"}}"#)).unwrap_err();
        assert_eq!(e.code, "INVALID_FIELD_TYPE");
        assert!(e.message.chars().count() <= MAX_MESSAGE_CHARS + 1, "{} chars", e.message.chars().count());
        assert!(e.message.starts_with("a field has the wrong type: invalid type: string"), "{}", e.message);
        let e = parse(&format!(r#"{{"a":1, "b": "{long}" x}}"#)).unwrap_err();
        assert_eq!(e.code, "MALFORMED_JSON");
        assert!(e.message.chars().count() <= MAX_MESSAGE_CHARS + 1);
        assert_eq!(brief("short".into()), "short");
    }

    #[test]
    fn amounts_from_strings_and_number_literals() {
        let max = Paise::new(10_000_000);
        let amount = |s: &str| parse(&format!(r#"{{"amount":{s}}}"#)).unwrap().amount.unwrap().to_paise("amount", max);
        assert_eq!(amount(r#""100.00""#), Ok(Paise::new(10_000)));
        assert_eq!(amount("100.00"), Ok(Paise::new(10_000)));
        assert_eq!(amount("100"), Ok(Paise::new(10_000)));
        assert_eq!(amount("0.1"), Ok(Paise::new(10)));
        // a float that binary floating point cannot represent stays exact
        assert_eq!(amount("12345.67"), Ok(Paise::new(1_234_567)));
        assert_eq!(amount("0.29"), Ok(Paise::new(29)));
        assert_eq!(amount("100.001").unwrap_err().status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(amount("-5").unwrap_err().code, "INVALID_AMOUNT");
        assert_eq!(amount("0").unwrap_err().code, "INVALID_AMOUNT");
        assert_eq!(amount("1e3").unwrap_err().code, "INVALID_AMOUNT");
        assert_eq!(amount("100000.01").unwrap_err().code, "AMOUNT_TOO_LARGE");
        assert_eq!(amount("true").unwrap_err().code, "INVALID_FIELD_TYPE");
        assert_eq!(amount("{}").unwrap_err().code, "INVALID_FIELD_TYPE");
        assert_eq!(amount(r#""abc""#).unwrap_err().code, "INVALID_AMOUNT");
    }

    #[test]
    fn error_body_shape() {
        let r = ApiError::session_not_found().into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let Body::Text(t) = r.body() else { panic!("text body") };
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["error"]["code"], "SESSION_NOT_FOUND");
        assert!(v["error"]["message"].is_string());
        assert!(v["error"].get("request_id").is_none());
        let r = ApiError::payment_not_found().into_response_for(Some("CvQ1aE3yBcwEJ10="));
        let Body::Text(t) = r.body() else { panic!("text body") };
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["error"]["request_id"], "CvQ1aE3yBcwEJ10=");
        assert_eq!(v["error"]["code"], "PAYMENT_NOT_FOUND");
    }
}
