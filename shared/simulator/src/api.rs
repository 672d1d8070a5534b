//! PhonePe PG v1: `POST /pg/v1/pay`, `GET /pg/v1/status/{merchantId}/{merchantTransactionId}`,
//! `POST /pg/v1/refund`, with PhonePe's checks, envelopes and codes, and the answer faults.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use parkpay_checksum::{Message, SaltKey, XVerify};
use parkpay_gateway::phonepe_v1::wire::{self, codes};
use parkpay_gateway::phonepe_v1::{X_MERCHANT_ID, X_VERIFY};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::{Inner, Record, message_for, status_envelope};
use crate::faults::{ForcedAnswer, Operation};
use crate::model::{SimState, Transaction, TxnKind};
use crate::respond::with_faults;
use crate::util::{MAX_TXN_ID, MAX_USER_ID, new_provider_txn_id, new_token, now_ms, rupees, valid_id};

/// Standard alphabet; padding optional (the checksum is still over the text as received).
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One answer: HTTP status and envelope JSON.
pub(crate) struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn envelope<D: Serialize>(status: StatusCode, env: &wire::Envelope<D>) -> Self {
        Self { status, body: serde_json::to_value(env).unwrap_or(Value::Null) }
    }

    fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        let env: wire::Envelope<Value> =
            wire::Envelope { success: false, code: code.to_owned(), message: message.into(), data: None };
        Self::envelope(status, &env)
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

fn bad_request(message: impl Into<String>) -> Answer {
    Answer::error(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
}

fn auth_failed(message: impl Into<String>) -> Answer {
    Answer::error(StatusCode::UNAUTHORIZED, codes::AUTHORIZATION_FAILED, message)
}

fn key_not_configured(message: impl Into<String>) -> Answer {
    Answer::error(StatusCode::UNAUTHORIZED, codes::KEY_NOT_CONFIGURED, message)
}

fn not_found(message: impl Into<String>) -> Answer {
    Answer::error(StatusCode::NOT_FOUND, codes::TRANSACTION_NOT_FOUND, message)
}

fn internal_error() -> Answer {
    Answer::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::INTERNAL_SERVER_ERROR,
        message_for(codes::INTERNAL_SERVER_ERROR),
    )
}

/// The HTTP status the simulator uses for a code.
pub(crate) fn default_http_status(code: &str) -> StatusCode {
    match code {
        codes::BAD_REQUEST | codes::EXCESS_REFUND_AMOUNT | codes::REVERSAL_WINDOW_EXCEEDED => StatusCode::BAD_REQUEST,
        codes::AUTHORIZATION_FAILED | codes::KEY_NOT_CONFIGURED => StatusCode::UNAUTHORIZED,
        codes::TRANSACTION_NOT_FOUND => StatusCode::NOT_FOUND,
        codes::TOO_MANY_REQUESTS => StatusCode::TOO_MANY_REQUESTS,
        codes::INTERNAL_SERVER_ERROR => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::OK,
    }
}

/// What a request is about, read before (and whatever) validation: picks the faults and fills
/// forced answers.
#[derive(Debug, Default)]
struct Hint {
    txn: Option<String>,
    merchant_id: Option<String>,
    amount: Option<u64>,
}

fn hint_from_body(body: &[u8]) -> Hint {
    let payload = request_string(body).ok().and_then(|b64| decode_payload(&b64).ok());
    let Some(p) = payload else { return Hint::default() };
    Hint {
        txn: p.get("merchantTransactionId").and_then(Value::as_str).map(str::to_owned),
        merchant_id: p.get("merchantId").and_then(Value::as_str).map(str::to_owned),
        amount: p.get("amount").and_then(Value::as_u64),
    }
}

/// Apply the answer faults around `work` (which records, if anything is recorded).
async fn run(inner: &Arc<Inner>, op: Operation, hint: &Hint, work: impl FnOnce() -> Answer) -> Response {
    with_faults(
        inner,
        op,
        hint.txn.as_deref(),
        |forced| forced_answer(inner, op, hint, forced).into_response(),
        || internal_error().into_response(),
        || work().into_response(),
    )
    .await
}

fn forced_answer(inner: &Inner, op: Operation, hint: &Hint, forced: &ForcedAnswer) -> Answer {
    let code = forced.code.as_str();
    let status = forced.http_status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(default_http_status(code));
    let success = forced.success.unwrap_or(match code {
        codes::PAYMENT_SUCCESS | codes::PAYMENT_INITIATED => true,
        codes::PAYMENT_PENDING => op == Operation::Refund,
        _ => false,
    });
    let default_state = match code {
        codes::PAYMENT_SUCCESS => Some(SimState::Completed.as_str()),
        codes::PAYMENT_ERROR | codes::PAYMENT_DECLINED => Some(SimState::Failed.as_str()),
        codes::PAYMENT_PENDING | codes::PAYMENT_INITIATED => Some(SimState::Pending.as_str()),
        _ => None,
    };
    let state = forced.state.clone().or(default_state.map(str::to_owned));
    let data = (code.starts_with("PAYMENT_") || forced.state.is_some()).then(|| {
        let known = hint.txn.as_deref().and_then(|t| inner.lock().txns.get(t).map(|r| r.view.clone()));
        let mut d = Map::new();
        let merchant = hint
            .merchant_id
            .clone()
            .or_else(|| known.as_ref().map(|k| k.merchant_id.clone()))
            .or_else(|| inner.cfg.merchants.first().map(|(m, _)| m.clone()));
        d.insert("merchantId".into(), merchant.map(Value::String).unwrap_or(Value::Null));
        d.insert("merchantTransactionId".into(), hint.txn.clone().map(Value::String).unwrap_or(Value::Null));
        let provider = known.as_ref().map(|k| k.provider_transaction_id.clone()).unwrap_or_else(new_provider_txn_id);
        d.insert("transactionId".into(), Value::String(provider));
        if let Some(amount) = known.as_ref().map(|k| k.amount).or(hint.amount) {
            d.insert("amount".into(), Value::from(amount));
        }
        if let Some(state) = &state {
            d.insert("state".into(), Value::String(state.clone()));
        }
        Value::Object(d)
    });
    let message = forced.message.clone().unwrap_or_else(|| message_for(code).to_owned());
    let env = wire::Envelope { success, code: code.to_owned(), message, data };
    Answer::envelope(status, &env)
}

/// The `request` string of a `{"request": "<base64>"}` body.
fn request_string(body: &[u8]) -> Result<String, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| "body must be JSON: {\"request\": \"<base64>\"}".to_owned())?;
    match v.get("request") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err("request is empty".into()),
        Some(_) => Err("request must be a base64 string".into()),
        None => Err("body must be {\"request\": \"<base64>\"}".into()),
    }
}

/// The JSON object inside the base64 `request`.
fn decode_payload(b64: &str) -> Result<Map<String, Value>, String> {
    let bytes = B64.decode(b64.as_bytes()).map_err(|_| "request is not valid base64".to_owned())?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the decoded request must be a JSON object".into()),
        Err(_) => Err("the decoded request is not JSON".into()),
    }
}

fn x_verify_header(headers: &HeaderMap) -> Result<XVerify, Answer> {
    let raw = headers.get(X_VERIFY).ok_or_else(|| auth_failed("X-VERIFY header is missing"))?;
    let text = raw.to_str().map_err(|_| auth_failed("X-VERIFY is malformed"))?;
    XVerify::parse(text).map_err(|e| auth_failed(format!("X-VERIFY is malformed: {e}")))
}

/// Remember which salt index signed an accepted request.
fn note_signed(inner: &Inner, op: Operation, txn: &str, xv: &XVerify) {
    inner.lock().signed_with.insert((op, txn.to_owned()), xv.index());
}

fn salt_key<'a>(inner: &'a Inner, merchant_id: &str, xv: &XVerify) -> Result<&'a SaltKey, Answer> {
    let keys = inner
        .keys(merchant_id)
        .ok_or_else(|| key_not_configured(format!("no key is configured for merchant {merchant_id:?}")))?;
    keys.key(xv.index()).ok_or_else(|| {
        key_not_configured(format!("no salt key with index {} is configured for merchant {merchant_id:?}", xv.index()))
    })
}

/// Pay and refund: body shape, X-VERIFY, merchant, salt index, checksum over the base64 text
/// exactly as received. Returns the payload and the merchant id.
fn authenticate_body(
    inner: &Inner,
    op: Operation,
    headers: &HeaderMap,
    body: &[u8],
    path: &str,
) -> Result<(Map<String, Value>, String), Answer> {
    let b64 = request_string(body).map_err(bad_request)?;
    let xv = x_verify_header(headers)?;
    let payload = decode_payload(&b64).map_err(bad_request)?;
    let merchant_id = match payload.get("merchantId") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err(bad_request("merchantId is required")),
    };
    let key = salt_key(inner, &merchant_id, &xv)?;
    if !xv.matches(Message::Body { base64: &b64, path }, key) {
        return Err(auth_failed("X-VERIFY does not match the request"));
    }
    if let Some(txn) = payload.get("merchantTransactionId").and_then(Value::as_str) {
        note_signed(inner, op, txn, &xv);
    }
    Ok((payload, merchant_id))
}

// ---- field checks -------------------------------------------------------------------------

pub(crate) fn opt_str<'a>(p: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

pub(crate) fn req_str<'a>(p: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    opt_str(p, key)?.filter(|s| !s.is_empty()).ok_or_else(|| format!("{key} is required"))
}

/// Integer paise as a JSON number: never a string, a float or negative.
pub(crate) fn amount(p: &Map<String, Value>, min: u64) -> Result<u64, String> {
    let n = match p.get("amount") {
        None | Some(Value::Null) => return Err("amount is required".into()),
        Some(Value::String(_)) => return Err("amount must be a JSON number of paise, not a string".into()),
        Some(Value::Number(n)) => n,
        Some(_) => return Err("amount must be a JSON integer number of paise".into()),
    };
    let paise = match n.as_u64() {
        Some(v) => v,
        None if n.as_i64().is_some() || n.as_f64().is_some_and(|f| f < 0.0) => {
            return Err("amount must not be negative".into());
        }
        None => return Err("amount must be a whole number of paise".into()),
    };
    if paise < min {
        return Err(format!("amount must be at least {min} paise"));
    }
    Ok(paise)
}

fn txn_id(p: &Map<String, Value>, key: &str) -> Result<String, String> {
    let s = req_str(p, key)?;
    if !valid_id(s, MAX_TXN_ID) {
        return Err(format!("{key} must be 1 to {MAX_TXN_ID} characters of A-Z, a-z, 0-9, '_' and '-'"));
    }
    Ok(s.to_owned())
}

fn user_id(p: &Map<String, Value>) -> Result<Option<String>, String> {
    match opt_str(p, "merchantUserId")? {
        None => Ok(None),
        Some(s) if valid_id(s, MAX_USER_ID) => Ok(Some(s.to_owned())),
        Some(_) => Err(format!("merchantUserId must be 1 to {MAX_USER_ID} characters of A-Z, a-z, 0-9, '_' and '-'")),
    }
}

pub(crate) fn http_url(raw: &str, key: &str) -> Result<String, String> {
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(u.to_string()),
        _ => Err(format!("{key} must be an http or https URL")),
    }
}

#[derive(Debug)]
enum Instrument {
    PayPage,
    UpiIntent,
    UpiQr,
    UpiCollect { vpa: String },
}

impl Instrument {
    fn name(&self) -> &'static str {
        match self {
            Instrument::PayPage => "PAY_PAGE",
            Instrument::UpiIntent => "UPI_INTENT",
            Instrument::UpiQr => "UPI_QR",
            Instrument::UpiCollect { .. } => "UPI_COLLECT",
        }
    }
}

fn instrument(p: &Map<String, Value>) -> Result<Instrument, String> {
    let Some(Value::Object(i)) = p.get("paymentInstrument") else {
        return Err("paymentInstrument is required (an object with a type)".into());
    };
    let kind = req_str(i, "type").map_err(|_| "paymentInstrument.type is required".to_owned())?;
    match kind {
        "PAY_PAGE" => Ok(Instrument::PayPage),
        "UPI_INTENT" => {
            opt_str(i, "targetApp").map_err(|e| format!("paymentInstrument.{e}"))?;
            match i.get("deviceContext") {
                None | Some(Value::Null) => {}
                Some(Value::Object(d)) => match opt_str(d, "deviceOS") {
                    Ok(None | Some("ANDROID" | "IOS")) => {}
                    _ => return Err("paymentInstrument.deviceContext.deviceOS must be ANDROID or IOS".into()),
                },
                Some(_) => return Err("paymentInstrument.deviceContext must be an object".into()),
            }
            Ok(Instrument::UpiIntent)
        }
        "UPI_QR" => Ok(Instrument::UpiQr),
        "UPI_COLLECT" => {
            let vpa = req_str(i, "vpa").map_err(|_| "paymentInstrument.vpa is required for UPI_COLLECT".to_owned())?;
            let well_formed = vpa.len() <= 100
                && vpa.split_once('@').is_some_and(|(user, handle)| {
                    !user.is_empty()
                        && !handle.is_empty()
                        && vpa.bytes().all(|b| b.is_ascii_alphanumeric() || b"@._-".contains(&b))
                        && !handle.contains('@')
                });
            if !well_formed {
                return Err("paymentInstrument.vpa must look like name@handle".into());
            }
            Ok(Instrument::UpiCollect { vpa: vpa.to_owned() })
        }
        "CARD" | "SAVED_CARD" | "TOKEN" | "NET_BANKING" => {
            Err(format!("payment instrument {kind} is not supported by the simulator"))
        }
        _ => Err("paymentInstrument.type is not a known instrument".into()),
    }
}

struct PayReq {
    txn: String,
    user_id: Option<String>,
    amount: u64,
    redirect_url: Option<String>,
    redirect_mode: &'static str,
    callback_url: String,
    instrument: Instrument,
}

fn parse_pay(p: &Map<String, Value>) -> Result<PayReq, String> {
    let txn = txn_id(p, "merchantTransactionId")?;
    let amount = amount(p, 100)?;
    let instrument = instrument(p)?;
    let user_id = user_id(p)?;
    if user_id.is_none() && matches!(instrument, Instrument::PayPage) {
        return Err("merchantUserId is required for PAY_PAGE".into());
    }
    let redirect_url = match opt_str(p, "redirectUrl")? {
        Some(u) if !u.is_empty() => Some(http_url(u, "redirectUrl")?),
        _ if matches!(instrument, Instrument::PayPage) => return Err("redirectUrl is required for PAY_PAGE".into()),
        _ => None,
    };
    let redirect_mode = match opt_str(p, "redirectMode")? {
        None | Some("REDIRECT") => "REDIRECT",
        Some("POST") => "POST",
        Some(_) => return Err("redirectMode must be REDIRECT or POST".into()),
    };
    let callback_url = http_url(req_str(p, "callbackUrl")?, "callbackUrl")?;
    if opt_str(p, "mobileNumber")?.is_some_and(|m| !(m.len() == 10 && m.bytes().all(|b| b.is_ascii_digit()))) {
        return Err("mobileNumber must be 10 digits".into());
    }
    Ok(PayReq { txn, user_id, amount, redirect_url, redirect_mode, callback_url, instrument })
}

/// Where links point when no public base URL is configured: the request's own host.
pub(crate) fn host_base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

// ---- pay ----------------------------------------------------------------------------------

pub(crate) async fn pay(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let hint = hint_from_body(&body);
    run(&inner, Operation::Pay, &hint, || process_pay(&inner, &headers, &body).unwrap_or_else(|a| a)).await
}

fn process_pay(inner: &Inner, headers: &HeaderMap, body: &[u8]) -> Result<Answer, Answer> {
    let (payload, merchant_id) = authenticate_body(inner, Operation::Pay, headers, body, wire::PAY_PATH)?;
    let req = parse_pay(&payload).map_err(bad_request)?;

    let base = inner.public_base.clone().unwrap_or_else(|| host_base(headers));
    let token = new_token();
    let pay_page_url = format!("{base}/pay/{token}");
    let upi_link = format!(
        "upi://pay?pa={}@simulator&pn={merchant_id}&am={}&tr={}&cu=INR",
        merchant_id.to_ascii_lowercase(),
        rupees(req.amount),
        req.txn
    );
    let mut ir = wire::InstrumentResponse {
        kind: req.instrument.name().to_owned(),
        redirect_info: None,
        intent_url: None,
        qr_data: None,
    };
    let mut link = None;
    match &req.instrument {
        Instrument::PayPage => {
            ir.redirect_info = Some(wire::RedirectInfo { url: pay_page_url.clone(), method: "GET".into() });
        }
        Instrument::UpiIntent => {
            ir.intent_url = Some(upi_link.clone());
            link = Some(upi_link);
        }
        Instrument::UpiQr => {
            ir.qr_data = Some(upi_link.clone());
            link = Some(upi_link);
        }
        Instrument::UpiCollect { .. } => {}
    }
    let now = now_ms();
    let view = Transaction {
        kind: TxnKind::Payment,
        merchant_id: merchant_id.clone(),
        merchant_transaction_id: req.txn.clone(),
        provider_transaction_id: new_provider_txn_id(),
        amount: req.amount,
        state: SimState::Pending,
        code: codes::PAYMENT_PENDING.to_owned(),
        merchant_user_id: req.user_id,
        callback_url: req.callback_url,
        instrument: Some(req.instrument.name().to_owned()),
        redirect_url: req.redirect_url,
        redirect_mode: Some(req.redirect_mode.to_owned()),
        pay_page_url: Some(pay_page_url),
        upi_link: link,
        vpa: match &req.instrument {
            Instrument::UpiCollect { vpa } => Some(vpa.clone()),
            _ => None,
        },
        utr: None,
        outcome: None,
        original_transaction_id: None,
        refund_ids: Vec::new(),
        refunded_amount: 0,
        created_at_ms: now,
        updated_at_ms: now,
    };
    {
        let mut st = inner.lock();
        if st.txns.contains_key(&req.txn) {
            return Err(bad_request(format!("duplicate merchantTransactionId {}: it is already used", req.txn)));
        }
        st.tokens.insert(token, req.txn.clone());
        st.txns.insert(req.txn.clone(), Record::v1(view));
    }
    tracing::info!(txn = %req.txn, amount = req.amount, instrument = req.instrument.name(), "payment initiated");
    let env = wire::Envelope {
        success: true,
        code: codes::PAYMENT_INITIATED.to_owned(),
        message: message_for(codes::PAYMENT_INITIATED).to_owned(),
        data: Some(wire::PayData { merchant_id, merchant_transaction_id: req.txn, instrument_response: Some(ir) }),
    };
    Ok(Answer::envelope(StatusCode::OK, &env))
}

// ---- status -------------------------------------------------------------------------------

pub(crate) async fn status(
    State(inner): State<Arc<Inner>>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Path((merchant_id, txn))) = path else {
        return bad_request("the status path is /pg/v1/status/{merchantId}/{merchantTransactionId}").into_response();
    };
    let hint = Hint { txn: Some(txn.clone()), merchant_id: Some(merchant_id.clone()), amount: None };
    run(&inner, Operation::Status, &hint, || process_status(&inner, &headers, &merchant_id, &txn).unwrap_or_else(|a| a))
        .await
}

fn process_status(inner: &Inner, headers: &HeaderMap, merchant_id: &str, txn: &str) -> Result<Answer, Answer> {
    let xv = x_verify_header(headers)?;
    match headers.get(X_MERCHANT_ID).map(|h| h.to_str()) {
        None => return Err(auth_failed("X-MERCHANT-ID header is missing")),
        Some(Ok(m)) if m == merchant_id => {}
        Some(_) => return Err(auth_failed("X-MERCHANT-ID does not match the merchant in the path")),
    }
    let key = salt_key(inner, merchant_id, &xv)?;
    let path = wire::status_path(merchant_id, txn);
    if !xv.matches(Message::Path { path: &path }, key) {
        return Err(auth_failed("X-VERIFY does not match the request"));
    }
    note_signed(inner, Operation::Status, txn, &xv);
    if !valid_id(txn, MAX_TXN_ID) {
        return Err(bad_request(format!(
            "merchantTransactionId must be 1 to {MAX_TXN_ID} characters of A-Z, a-z, 0-9, '_' and '-'"
        )));
    }
    let st = inner.lock();
    match st.txns.get(txn) {
        Some(rec) if rec.view.merchant_id == merchant_id && rec.v2.is_none() => {
            Ok(Answer::envelope(StatusCode::OK, &status_envelope(&rec.view)))
        }
        _ => Err(not_found(format!("no transaction {txn} for merchant {merchant_id}"))),
    }
}

// ---- refund -------------------------------------------------------------------------------

pub(crate) async fn refund(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let hint = hint_from_body(&body);
    run(&inner, Operation::Refund, &hint, || process_refund(&inner, &headers, &body).unwrap_or_else(|a| a)).await
}

struct RefundReq {
    refund_id: String,
    original: String,
    user_id: Option<String>,
    amount: u64,
    callback_url: String,
}

fn parse_refund(p: &Map<String, Value>) -> Result<RefundReq, String> {
    Ok(RefundReq {
        original: txn_id(p, "originalTransactionId")?,
        refund_id: txn_id(p, "merchantTransactionId")?,
        user_id: user_id(p)?,
        amount: amount(p, 1)?,
        callback_url: http_url(req_str(p, "callbackUrl")?, "callbackUrl")?,
    })
}

fn process_refund(inner: &Arc<Inner>, headers: &HeaderMap, body: &[u8]) -> Result<Answer, Answer> {
    let (payload, merchant_id) = authenticate_body(inner, Operation::Refund, headers, body, wire::REFUND_PATH)?;
    let req = parse_refund(&payload).map_err(bad_request)?;
    let view = {
        let mut st = inner.lock();
        if st.txns.contains_key(&req.refund_id) {
            return Err(bad_request(format!(
                "duplicate merchantTransactionId {}: it is already used; a refund needs a new id",
                req.refund_id
            )));
        }
        let original = match st.txns.get(&req.original) {
            Some(r) if r.view.kind == TxnKind::Payment && r.view.merchant_id == merchant_id && r.v2.is_none() => r,
            _ => return Err(not_found(format!("no payment {} for merchant {merchant_id}", req.original))),
        };
        if original.view.state != SimState::Completed {
            return Err(bad_request(format!(
                "payment {} is {}: only a COMPLETED payment can be refunded",
                req.original, original.view.state
            )));
        }
        if original.completed_at.is_some_and(|at| at.elapsed() > inner.cfg.reversal_window) {
            return Err(Answer::error(
                StatusCode::BAD_REQUEST,
                codes::REVERSAL_WINDOW_EXCEEDED,
                message_for(codes::REVERSAL_WINDOW_EXCEEDED),
            ));
        }
        let left = original.view.amount.saturating_sub(original.view.refunded_amount);
        if req.amount > left {
            return Err(Answer::error(
                StatusCode::BAD_REQUEST,
                codes::EXCESS_REFUND_AMOUNT,
                format!("refund of {} paise exceeds the {left} paise left of payment {}", req.amount, req.original),
            ));
        }
        let now = now_ms();
        let view = Transaction {
            kind: TxnKind::Refund,
            merchant_id: merchant_id.clone(),
            merchant_transaction_id: req.refund_id.clone(),
            provider_transaction_id: new_provider_txn_id(),
            amount: req.amount,
            state: SimState::Pending,
            code: codes::PAYMENT_PENDING.to_owned(),
            merchant_user_id: req.user_id,
            callback_url: req.callback_url,
            instrument: None,
            redirect_url: None,
            redirect_mode: None,
            pay_page_url: None,
            upi_link: None,
            vpa: None,
            utr: None,
            outcome: None,
            original_transaction_id: Some(req.original.clone()),
            refund_ids: Vec::new(),
            refunded_amount: 0,
            created_at_ms: now,
            updated_at_ms: now,
        };
        st.txns.insert(req.refund_id.clone(), Record::v1(view.clone()));
        if let Some(p) = st.txns.get_mut(&req.original) {
            p.view.refund_ids.push(req.refund_id.clone());
        }
        st.refresh_refunded(&req.original);
        view
    };
    tracing::info!(refund = %req.refund_id, original = %req.original, amount = req.amount, "refund accepted");
    inner.schedule_refund(req.refund_id);
    // The refund answer: success:true, PAYMENT_PENDING, state PENDING.
    let mut env = status_envelope(&view);
    env.success = true;
    Ok(Answer::envelope(StatusCode::OK, &env))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn amounts_must_be_json_integers() {
        assert_eq!(amount(&obj(serde_json::json!({"amount": 100})), 100), Ok(100));
        for (bad, why) in [
            (serde_json::json!({"amount": "100"}), "string"),
            (serde_json::json!({"amount": 100.5}), "whole"),
            (serde_json::json!({"amount": 100.0}), "whole"),
            (serde_json::json!({"amount": -100}), "negative"),
            (serde_json::json!({"amount": -1.5}), "negative"),
            (serde_json::json!({"amount": 99}), "at least"),
            (serde_json::json!({"amount": null}), "required"),
            (serde_json::json!({}), "required"),
            (serde_json::json!({"amount": [1]}), "integer"),
            (serde_json::json!({"amount": 1e30}), "whole"),
        ] {
            let e = amount(&obj(bad.clone()), 100).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn instruments() {
        let i = |v: Value| instrument(&obj(serde_json::json!({ "paymentInstrument": v })));
        assert!(matches!(i(serde_json::json!({"type": "PAY_PAGE"})), Ok(Instrument::PayPage)));
        assert!(matches!(
            i(
                serde_json::json!({"type": "UPI_INTENT", "targetApp": "com.phonepe.app", "deviceContext": {"deviceOS": "IOS"}})
            ),
            Ok(Instrument::UpiIntent)
        ));
        assert!(i(serde_json::json!({"type": "UPI_INTENT", "deviceContext": {"deviceOS": "WINDOWS"}})).is_err());
        assert!(matches!(
            i(serde_json::json!({"type": "UPI_COLLECT", "vpa": "a.b@ybl"})),
            Ok(Instrument::UpiCollect { .. })
        ));
        for bad_vpa in ["", "ab", "@ybl", "a@", "a@b@c", "a b@ybl"] {
            assert!(i(serde_json::json!({"type": "UPI_COLLECT", "vpa": bad_vpa})).is_err(), "{bad_vpa}");
        }
        assert!(i(serde_json::json!({"type": "CARD"})).unwrap_err().contains("not supported"));
        assert!(i(serde_json::json!({"type": "BITCOIN"})).is_err());
        assert!(i(serde_json::json!({})).is_err());
        assert!(i(serde_json::json!("PAY_PAGE")).is_err());
    }

    #[test]
    fn body_shapes() {
        assert!(request_string(b"not json").is_err());
        assert!(request_string(br#"{"request": 5}"#).is_err());
        assert!(request_string(br#"{"request": ""}"#).is_err());
        assert!(request_string(br#"{"req": "eyJ9"}"#).is_err());
        assert_eq!(request_string(br#"{"request": "eyJ9"}"#).unwrap(), "eyJ9");
        assert!(decode_payload("%%%").is_err());
        assert!(decode_payload("WzFd").is_err()); // [1]
        assert!(decode_payload("e30").is_ok()); // {} without padding
        assert!(decode_payload("e30=").is_ok());
    }

    #[test]
    fn http_statuses() {
        assert_eq!(default_http_status("TOO_MANY_REQUESTS"), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(default_http_status("KEY_NOT_CONFIGURED"), StatusCode::UNAUTHORIZED);
        assert_eq!(default_http_status("TIMED_OUT"), StatusCode::OK);
        assert_eq!(default_http_status("SOMETHING_NEW"), StatusCode::OK);
    }
}
