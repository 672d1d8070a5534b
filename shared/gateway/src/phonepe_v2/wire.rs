//! PhonePe PG v2 wire formats, kept apart from our domain types.
//!
//! Everything received is lenient about what it does not need (unknown fields are ignored,
//! optional fields default) and strict about what it does (amounts are JSON integers of paise,
//! never strings). Requests are plain JSON (no base64 envelope, no checksum): the OAuth token
//! authenticates them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The token endpoint, on the OAuth host.
pub const TOKEN_PATH: &str = "/v1/oauth/token";
/// Create an order paid on PhonePe's hosted checkout page.
pub const PAY_PATH: &str = "/checkout/v2/pay";
/// Create an order paid through PhonePe's mobile SDK in our app.
pub const SDK_ORDER_PATH: &str = "/checkout/v2/sdk/order";
pub const REFUND_PATH: &str = "/payments/v2/refund";

/// `/checkout/v2/order/{merchantOrderId}/status`.
pub fn order_status_path(merchant_order_id: &str) -> String {
    format!("/checkout/v2/order/{merchant_order_id}/status")
}

/// `/payments/v2/refund/{merchantRefundId}/status`.
pub fn refund_status_path(merchant_refund_id: &str) -> String {
    format!("/payments/v2/refund/{merchant_refund_id}/status")
}

/// The `Authorization` scheme of PG calls: `O-Bearer <access_token>`.
pub const TOKEN_TYPE: &str = "O-Bearer";
/// The only grant PhonePe offers.
pub const GRANT_TYPE: &str = "client_credentials";
/// `paymentFlow.type` of both the checkout page and the SDK.
pub const PG_CHECKOUT: &str = "PG_CHECKOUT";

/// Order and refund states.
pub mod states {
    pub const PENDING: &str = "PENDING";
    /// Refunds only: PhonePe accepted the refund; it has not settled yet.
    pub const CONFIRMED: &str = "CONFIRMED";
    pub const COMPLETED: &str = "COMPLETED";
    pub const FAILED: &str = "FAILED";
}

/// Webhook `event` values.
pub mod events {
    pub const ORDER_COMPLETED: &str = "checkout.order.completed";
    pub const ORDER_FAILED: &str = "checkout.order.failed";
    pub const REFUND_ACCEPTED: &str = "pg.refund.accepted";
    pub const REFUND_COMPLETED: &str = "pg.refund.completed";
    pub const REFUND_FAILED: &str = "pg.refund.failed";
    /// Every event that concerns an order.
    pub const ORDER_PREFIX: &str = "checkout.order.";
    /// Every event that concerns a refund.
    pub const REFUND_PREFIX: &str = "pg.refund.";
}

/// The token endpoint's answer. No `Debug`: it holds the token.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub access_token: String,
    /// Epoch seconds.
    #[serde(default)]
    pub issued_at: Option<u64>,
    /// Epoch seconds.
    #[serde(default)]
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub token_type: Option<String>,
}

/// The body of pay and SDK order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrder {
    pub merchant_order_id: String,
    /// Integer paise, a JSON number.
    pub amount: u64,
    /// Seconds the payer has (300 to 3600).
    pub expire_after: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_info: Option<BTreeMap<String, String>>,
    pub payment_flow: PaymentFlow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFlow {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_urls: Option<MerchantUrls>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantUrls {
    pub redirect_url: String,
}

/// The answer of pay (`redirectUrl`) and of SDK order (`token`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    #[serde(default)]
    pub order_id: String,
    #[serde(default)]
    pub state: String,
    /// Epoch milliseconds.
    #[serde(default)]
    pub expire_at: Option<u64>,
    #[serde(default)]
    pub redirect_url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

/// The order status answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderStatus {
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub amount: Option<u64>,
    #[serde(default)]
    pub expire_at: Option<u64>,
    #[serde(default)]
    pub payment_details: Vec<PaymentDetail>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub detailed_error_code: Option<String>,
}

/// One payment attempt of an order, or the transfer of a refund.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDetail {
    #[serde(default)]
    pub transaction_id: Option<String>,
    #[serde(default)]
    pub payment_mode: Option<String>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub amount: Option<u64>,
    #[serde(default)]
    pub timestamp: Option<u64>,
    #[serde(default)]
    pub rail: Option<Rail>,
    #[serde(default)]
    pub error_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rail {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The bank reference (UPI rails).
    #[serde(default)]
    pub utr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundBody {
    pub merchant_refund_id: String,
    pub original_merchant_order_id: String,
    pub amount: u64,
}

/// The refund answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundAccepted {
    #[serde(default)]
    pub refund_id: String,
    #[serde(default)]
    pub amount: Option<u64>,
    #[serde(default)]
    pub state: String,
}

/// The refund status answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundStatus {
    #[serde(default)]
    pub refund_id: Option<String>,
    #[serde(default)]
    pub original_merchant_order_id: Option<String>,
    #[serde(default)]
    pub amount: Option<u64>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub payment_details: Vec<PaymentDetail>,
}

/// An error answer: `{"code", "message", …}` (the fields we read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// A webhook body: `{"event", "payload"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Webhook {
    pub event: String,
    pub payload: WebhookPayload,
}

/// The fields of an order or a refund webhook payload that we read (the status answer plus the
/// merchant's ids).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    #[serde(default)]
    pub merchant_id: Option<String>,
    #[serde(default)]
    pub merchant_order_id: Option<String>,
    #[serde(default)]
    pub merchant_refund_id: Option<String>,
    #[serde(default)]
    pub original_merchant_order_id: Option<String>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub refund_id: Option<String>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub amount: Option<u64>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub payment_details: Vec<PaymentDetail>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_order_shape() {
        let body = CreateOrder {
            merchant_order_id: "ORD-1".into(),
            amount: 10_000,
            expire_after: 900,
            meta_info: None,
            payment_flow: PaymentFlow {
                kind: PG_CHECKOUT.into(),
                merchant_urls: Some(MerchantUrls { redirect_url: "https://m.example/r".into() }),
            },
        };
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "merchantOrderId": "ORD-1", "amount": 10000, "expireAfter": 900,
                "paymentFlow": {"type": "PG_CHECKOUT", "merchantUrls": {"redirectUrl": "https://m.example/r"}}
            })
        );
        assert!(v["amount"].is_u64(), "amount must be a JSON number");
    }

    #[test]
    fn answers_are_read_leniently_and_amounts_strictly() {
        let s: OrderStatus = serde_json::from_str(
            r#"{"orderId":"OMO1","state":"COMPLETED","amount":100,"expireAt":1,"newField":{"x":1},
                "paymentDetails":[{"transactionId":"OM1","paymentMode":"UPI_QR","state":"COMPLETED","amount":100,
                "timestamp":5,"rail":{"type":"UPI","utr":"206378866112","vpa":"a@b"},"instrument":{"type":"ACCOUNT"}}]}"#,
        )
        .unwrap();
        assert_eq!(s.payment_details[0].rail.as_ref().unwrap().utr.as_deref(), Some("206378866112"));
        assert!(serde_json::from_str::<OrderStatus>(r#"{"state":"COMPLETED","amount":"100"}"#).is_err());
        assert!(serde_json::from_str::<RefundAccepted>(r#"{"refundId":"R","amount":"100"}"#).is_err());
        let e: ErrorBody = serde_json::from_str(r#"{"success":false,"code":"BAD_REQUEST","data":{}}"#).unwrap();
        assert_eq!((e.code.as_str(), e.message.as_str()), ("BAD_REQUEST", ""));
    }

    #[test]
    fn paths() {
        assert_eq!(order_status_path("ORD-1"), "/checkout/v2/order/ORD-1/status");
        assert_eq!(refund_status_path("R-1"), "/payments/v2/refund/R-1/status");
    }
}
