//! PG v2 PG calls: `POST /checkout/v2/pay`, `POST /checkout/v2/sdk/order`,
//! `GET /checkout/v2/order/{merchantOrderId}/status`, `POST /payments/v2/refund`,
//! `GET /payments/v2/refund/{merchantRefundId}/status`. Each is authorised by an `O-Bearer`
//! token, checked like PhonePe does, and wrapped in the same answer faults as v1.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use parkpay_gateway::phonepe_v1::wire::codes as v1_codes;
use serde_json::{Map, Value, json};

use super::oauth::authorize;
use super::{Reply, V2Info, bad_request, codes, forced, internal_error, order_json, refund_json};
use crate::api::{amount, host_base, http_url, opt_str, req_str};
use crate::engine::{Inner, Record, notify};
use crate::faults::Operation;
use crate::model::{SimState, Transaction, TxnKind};
use crate::respond::with_faults;
use crate::util::{MAX_ORDER_ID, new_token, new_v2_id, now_ms, valid_id};

/// `expireAfter` when the request names none, seconds.
pub(crate) const DEFAULT_EXPIRE_AFTER_S: u64 = 1200;
/// The range PhonePe accepts for `expireAfter`, seconds.
pub(crate) const EXPIRE_AFTER_RANGE: std::ops::RangeInclusive<u64> = 300..=3600;
/// Longest `metaInfo` value.
const MAX_META_VALUE: usize = 256;

/// Which call created an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// `/checkout/v2/pay`: answered with the pay page URL.
    Checkout,
    /// `/checkout/v2/sdk/order`: answered with a token for PhonePe's mobile SDK.
    Sdk,
}

impl Flow {
    /// The `instrument` the order is recorded with.
    fn name(self) -> &'static str {
        match self {
            Flow::Checkout => "PG_CHECKOUT",
            Flow::Sdk => "SDK",
        }
    }
}

/// The id a body names (to pick faults), read before any validation.
fn hint(body: &[u8], key: &str) -> Option<String> {
    serde_json::from_slice::<Value>(body).ok()?.get(key)?.as_str().map(str::to_owned)
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad_request("the body must be a JSON object")),
        Err(_) => Err(bad_request("the body must be JSON")),
    }
}

/// 1 to 63 characters of `[A-Za-z0-9_-]`.
fn v2_id(p: &Map<String, Value>, key: &str) -> Result<String, String> {
    let s = req_str(p, key)?;
    if !valid_id(s, MAX_ORDER_ID) {
        return Err(format!("{key} must be 1 to {MAX_ORDER_ID} characters of A-Z, a-z, 0-9, '_' and '-'"));
    }
    Ok(s.to_owned())
}

struct CreateReq {
    order: String,
    amount: u64,
    expire_after_s: u64,
    meta_info: Option<Value>,
    redirect_url: Option<String>,
}

fn parse_create(p: &Map<String, Value>, flow: Flow) -> Result<CreateReq, String> {
    let order = v2_id(p, "merchantOrderId")?;
    let amount = amount(p, 100)?;
    let expire_after_s = match p.get("expireAfter") {
        None | Some(Value::Null) => DEFAULT_EXPIRE_AFTER_S,
        Some(Value::Number(n)) => n.as_u64().filter(|s| EXPIRE_AFTER_RANGE.contains(s)).ok_or_else(|| {
            format!(
                "expireAfter must be a whole number of seconds from {} to {}",
                EXPIRE_AFTER_RANGE.start(),
                EXPIRE_AFTER_RANGE.end()
            )
        })?,
        Some(_) => return Err("expireAfter must be a JSON number of seconds".into()),
    };
    let meta_info = match p.get("metaInfo") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => {
            if m.values().any(|v| v.as_str().is_none_or(|s| s.len() > MAX_META_VALUE)) {
                return Err(format!("metaInfo values must be strings of at most {MAX_META_VALUE} characters"));
            }
            Some(Value::Object(m.clone()))
        }
        Some(_) => return Err("metaInfo must be an object".into()),
    };
    let Some(Value::Object(pf)) = p.get("paymentFlow") else {
        return Err("paymentFlow is required (an object with type PG_CHECKOUT)".into());
    };
    if opt_str(pf, "type").ok().flatten() != Some("PG_CHECKOUT") {
        return Err("paymentFlow.type must be PG_CHECKOUT".into());
    }
    let redirect_url = match pf.get("merchantUrls") {
        None | Some(Value::Null) => None,
        Some(Value::Object(urls)) => {
            match opt_str(urls, "redirectUrl").map_err(|e| format!("paymentFlow.merchantUrls.{e}"))? {
                Some(u) if !u.is_empty() => Some(http_url(u, "paymentFlow.merchantUrls.redirectUrl")?),
                _ => None,
            }
        }
        Some(_) => return Err("paymentFlow.merchantUrls must be an object".into()),
    };
    if redirect_url.is_none() && flow == Flow::Checkout {
        return Err("paymentFlow.merchantUrls.redirectUrl is required".into());
    }
    Ok(CreateReq { order, amount, expire_after_s, meta_info, redirect_url })
}

// ---- create: pay and SDK order ------------------------------------------------------------

pub(crate) async fn pay(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    create(inner, headers, body, Flow::Checkout).await
}

pub(crate) async fn sdk_order(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    create(inner, headers, body, Flow::Sdk).await
}

async fn create(inner: Arc<Inner>, headers: HeaderMap, body: Bytes, flow: Flow) -> Response {
    let id = hint(&body, "merchantOrderId");
    with_faults(&inner, Operation::Pay, id.as_deref(), forced, internal_error, || {
        process_create(&inner, &headers, &body, flow).unwrap_or_else(|e| e).into_response()
    })
    .await
}

fn process_create(inner: &Inner, headers: &HeaderMap, body: &[u8], flow: Flow) -> Result<Reply, Reply> {
    authorize(inner, headers)?;
    let p = json_object(body)?;
    let req = parse_create(&p, flow).map_err(bad_request)?;
    let base = inner.public_base.clone().unwrap_or_else(|| host_base(headers));
    let token = new_token();
    let pay_page_url = format!("{base}/pay/{token}");
    let webhook_url = inner.webhook_url.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    let now = now_ms();
    let expire_at_ms = now.saturating_add(req.expire_after_s.saturating_mul(1000));
    let order_id = new_v2_id("OMO");
    let view = Transaction {
        kind: TxnKind::Payment,
        merchant_id: inner.cfg.v2.merchant_id.clone(),
        merchant_transaction_id: req.order.clone(),
        provider_transaction_id: new_v2_id("OM"),
        amount: req.amount,
        state: SimState::Pending,
        code: v1_codes::PAYMENT_PENDING.to_owned(),
        merchant_user_id: None,
        callback_url: webhook_url.unwrap_or_default(),
        instrument: Some(flow.name().to_owned()),
        redirect_url: req.redirect_url,
        redirect_mode: Some("REDIRECT".to_owned()),
        pay_page_url: Some(pay_page_url.clone()),
        upi_link: None,
        vpa: None,
        utr: None,
        outcome: None,
        original_transaction_id: None,
        refund_ids: Vec::new(),
        refunded_amount: 0,
        created_at_ms: now,
        updated_at_ms: now,
    };
    let info = V2Info { phonepe_id: order_id.clone(), expire_at_ms, meta_info: req.meta_info, confirmed: false };
    {
        let mut st = inner.lock();
        if st.txns.contains_key(&req.order) {
            return Err(bad_request(format!("duplicate merchantOrderId {}: it is already used", req.order)));
        }
        st.tokens.insert(token.clone(), req.order.clone());
        st.txns.insert(req.order.clone(), Record { view, completed_at: None, v2: Some(info) });
    }
    tracing::info!(order = %req.order, amount = req.amount, flow = flow.name(), "v2 order created");
    Ok(Reply::ok(match flow {
        Flow::Checkout => {
            json!({ "orderId": order_id, "state": "PENDING", "expireAt": expire_at_ms, "redirectUrl": pay_page_url })
        }
        // The SDK token is the pay page token: an app standing in for PhonePe's SDK opens
        // `{base}/pay/{token}`.
        Flow::Sdk => json!({ "orderId": order_id, "state": "PENDING", "expireAt": expire_at_ms, "token": token }),
    }))
}

// ---- statuses -----------------------------------------------------------------------------

pub(crate) async fn order_status(
    State(inner): State<Arc<Inner>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Path(id)) = path else {
        return bad_request("the status path is /checkout/v2/order/{merchantOrderId}/status").into_response();
    };
    with_faults(&inner, Operation::Status, Some(&id), forced, internal_error, || {
        lookup(&inner, &headers, &id, TxnKind::Payment).unwrap_or_else(|e| e).into_response()
    })
    .await
}

pub(crate) async fn refund_status(
    State(inner): State<Arc<Inner>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Path(id)) = path else {
        return bad_request("the status path is /payments/v2/refund/{merchantRefundId}/status").into_response();
    };
    with_faults(&inner, Operation::Status, Some(&id), forced, internal_error, || {
        lookup(&inner, &headers, &id, TxnKind::Refund).unwrap_or_else(|e| e).into_response()
    })
    .await
}

/// An order's or a refund's status (a v1 transaction or a record of the other kind is not found).
fn lookup(inner: &Inner, headers: &HeaderMap, id: &str, kind: TxnKind) -> Result<Reply, Reply> {
    authorize(inner, headers)?;
    let (key, missing) = match kind {
        TxnKind::Payment => ("merchantOrderId", codes::ORDER_NOT_FOUND),
        TxnKind::Refund => ("merchantRefundId", codes::REFUND_NOT_FOUND),
    };
    if !valid_id(id, MAX_ORDER_ID) {
        return Err(bad_request(format!("{key} must be 1 to {MAX_ORDER_ID} characters of A-Z, a-z, 0-9, '_' and '-'")));
    }
    let st = inner.lock();
    match st.txns.get(id) {
        Some(rec) if rec.v2.is_some() && rec.view.kind == kind => Ok(Reply::ok(match kind {
            TxnKind::Payment => order_json(rec),
            TxnKind::Refund => refund_json(rec),
        })),
        _ => Err(Reply::error(
            missing,
            format!("no {} with {key} {id}", if kind == TxnKind::Payment { "order" } else { "refund" }),
        )),
    }
}

// ---- refund -------------------------------------------------------------------------------

pub(crate) async fn refund(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let id = hint(&body, "merchantRefundId");
    with_faults(&inner, Operation::Refund, id.as_deref(), forced, internal_error, || {
        process_refund(&inner, &headers, &body).unwrap_or_else(|e| e).into_response()
    })
    .await
}

fn process_refund(inner: &Arc<Inner>, headers: &HeaderMap, body: &[u8]) -> Result<Reply, Reply> {
    authorize(inner, headers)?;
    let p = json_object(body)?;
    let refund_id = v2_id(&p, "merchantRefundId").map_err(bad_request)?;
    let original = v2_id(&p, "originalMerchantOrderId").map_err(bad_request)?;
    let amount = amount(&p, 1).map_err(bad_request)?;
    let faults = inner.faults_for(Some(&refund_id));
    let (phonepe_id, accepted) = {
        let mut st = inner.lock();
        if st.txns.contains_key(&refund_id) {
            return Err(bad_request(format!(
                "duplicate merchantRefundId {refund_id}: it is already used; a refund needs a new id"
            )));
        }
        let order = match st.txns.get(&original) {
            Some(r) if r.view.kind == TxnKind::Payment && r.v2.is_some() => r,
            _ => return Err(Reply::error(codes::ORDER_NOT_FOUND, format!("no order with merchantOrderId {original}"))),
        };
        if order.view.state != SimState::Completed {
            return Err(bad_request(format!(
                "order {original} is {}: only a COMPLETED order can be refunded",
                order.view.state
            )));
        }
        if order.completed_at.is_some_and(|at| at.elapsed() > inner.cfg.reversal_window) {
            return Err(Reply::error(codes::REVERSAL_WINDOW_EXCEEDED, "the refund window of this order has passed"));
        }
        let left = order.view.amount.saturating_sub(order.view.refunded_amount);
        if amount > left {
            return Err(Reply::error(
                codes::EXCESS_REFUND_AMOUNT,
                format!("refund of {amount} paise exceeds the {left} paise left of order {original}"),
            ));
        }
        let now = now_ms();
        let view = Transaction {
            kind: TxnKind::Refund,
            merchant_id: inner.cfg.v2.merchant_id.clone(),
            merchant_transaction_id: refund_id.clone(),
            provider_transaction_id: new_v2_id("OM"),
            amount,
            state: SimState::Pending,
            code: v1_codes::PAYMENT_PENDING.to_owned(),
            merchant_user_id: None,
            callback_url: order.view.callback_url.clone(),
            instrument: None,
            redirect_url: None,
            redirect_mode: None,
            pay_page_url: None,
            upi_link: None,
            vpa: None,
            utr: None,
            outcome: None,
            original_transaction_id: Some(original.clone()),
            refund_ids: Vec::new(),
            refunded_amount: 0,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let phonepe_id = new_v2_id("OMR");
        // Accepted at once (CONFIRMED, with its webhook), unless a stuck_pending fault holds it.
        let confirmed = !faults.stuck_pending;
        let info = V2Info { phonepe_id: phonepe_id.clone(), expire_at_ms: 0, meta_info: None, confirmed };
        let rec = Record { view, completed_at: None, v2: Some(info) };
        let accepted = if confirmed { inner.notification(&rec) } else { None };
        st.txns.insert(refund_id.clone(), rec);
        if let Some(o) = st.txns.get_mut(&original) {
            o.view.refund_ids.push(refund_id.clone());
        }
        st.refresh_refunded(&original);
        (phonepe_id, accepted)
    };
    tracing::info!(refund = %refund_id, %original, amount, "v2 refund accepted");
    if let Some(n) = accepted {
        tokio::spawn(notify(inner.clone(), n, faults.callback.clone(), None));
    }
    inner.schedule_refund(refund_id);
    Ok(Reply::ok(json!({ "refundId": phonepe_id, "amount": amount, "state": "PENDING" })))
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

    fn good() -> Value {
        json!({
            "merchantOrderId": "ORD-1", "amount": 10000, "expireAfter": 900,
            "metaInfo": {"udf1": "a"},
            "paymentFlow": {"type": "PG_CHECKOUT", "merchantUrls": {"redirectUrl": "https://m.example/r"}}
        })
    }

    #[test]
    fn create_requests() {
        let r = parse_create(&obj(good()), Flow::Checkout).unwrap();
        assert_eq!((r.order.as_str(), r.amount, r.expire_after_s), ("ORD-1", 10_000, 900));
        assert_eq!(r.redirect_url.as_deref(), Some("https://m.example/r"));
        let spoil = |f: &dyn Fn(&mut Value)| {
            let mut v = good();
            f(&mut v);
            parse_create(&obj(v), Flow::Checkout)
        };
        for (why, result) in [
            ("string", spoil(&|v| v["amount"] = json!("10000"))),
            ("at least 100", spoil(&|v| v["amount"] = json!(99))),
            ("merchantOrderId", spoil(&|v| v["merchantOrderId"] = json!("x".repeat(64)))),
            ("merchantOrderId", spoil(&|v| v["merchantOrderId"] = json!("a.b"))),
            ("expireAfter", spoil(&|v| v["expireAfter"] = json!(299))),
            ("expireAfter", spoil(&|v| v["expireAfter"] = json!(3601))),
            ("expireAfter", spoil(&|v| v["expireAfter"] = json!("900"))),
            ("metaInfo", spoil(&|v| v["metaInfo"] = json!({"udf1": 5}))),
            ("metaInfo", spoil(&|v| v["metaInfo"] = json!([1]))),
            ("PG_CHECKOUT", spoil(&|v| v["paymentFlow"]["type"] = json!("SDK"))),
            ("paymentFlow is required", spoil(&|v| drop(v.as_object_mut().unwrap().remove("paymentFlow")))),
            ("redirectUrl is required", spoil(&|v| v["paymentFlow"]["merchantUrls"] = json!({}))),
            ("redirectUrl", spoil(&|v| v["paymentFlow"]["merchantUrls"]["redirectUrl"] = json!("not a url"))),
        ] {
            let e = result.err().unwrap_or_default();
            assert!(e.contains(why), "{why:?} not in {e:?}");
        }
        // expireAfter is optional; an SDK order needs no redirect URL
        let mut v = good();
        v.as_object_mut().unwrap().remove("expireAfter");
        v["paymentFlow"] = json!({"type": "PG_CHECKOUT"});
        let r = parse_create(&obj(v), Flow::Sdk).unwrap();
        assert_eq!((r.expire_after_s, r.redirect_url), (DEFAULT_EXPIRE_AFTER_S, None));
        assert!(
            parse_create(
                &obj(
                    json!({"merchantOrderId": &"x".repeat(63), "amount": 100, "paymentFlow": {"type": "PG_CHECKOUT"}})
                ),
                Flow::Sdk
            )
            .is_ok()
        );
    }
}
