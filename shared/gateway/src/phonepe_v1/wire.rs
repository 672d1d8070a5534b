//! PhonePe PG v1 wire formats (`docs/phonepe.md` §3), kept apart from our domain types.
//!
//! Everything received is lenient about what it does not need (unknown fields are ignored,
//! optional fields default) and strict about what it does (amounts are JSON integers).
//! The simulator speaks the same formats through this module.

use serde::{Deserialize, Serialize};

pub const PAY_PATH: &str = "/pg/v1/pay";
pub const REFUND_PATH: &str = "/pg/v1/refund";
pub const STATUS_PREFIX: &str = "/pg/v1/status";

/// `/pg/v1/status/{merchantId}/{merchantTransactionId}`: both the URL path (after the base) and
/// the string the status checksum is over.
pub fn status_path(merchant_id: &str, merchant_txn_id: &str) -> String {
    format!("{STATUS_PREFIX}/{merchant_id}/{merchant_txn_id}")
}

/// The body of every v1 POST: `{"request": "<base64 of the JSON payload>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestBody {
    pub request: String,
}

/// The body of a v1 server-to-server callback: `{"response": "<base64>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackBody {
    pub response: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayPayload {
    pub merchant_id: String,
    pub merchant_transaction_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_user_id: Option<String>,
    /// Integer paise, a JSON number.
    pub amount: u64,
    pub redirect_url: String,
    pub redirect_mode: RedirectMode,
    pub callback_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_number: Option<String>,
    pub payment_instrument: PaymentInstrument,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RedirectMode {
    Redirect,
    Post,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentInstrument {
    PayPage,
    #[serde(rename_all = "camelCase")]
    UpiIntent {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_app: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_context: Option<DeviceContext>,
    },
    UpiCollect {
        vpa: String,
    },
    UpiQr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceContext {
    #[serde(rename = "deviceOS")]
    pub device_os: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundPayload {
    pub merchant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_user_id: Option<String>,
    pub original_transaction_id: String,
    pub merchant_transaction_id: String,
    pub amount: u64,
    pub callback_url: String,
}

/// PhonePe's answer envelope. `data` is absent on most errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<D> {
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub data: Option<D>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayData {
    #[serde(default)]
    pub merchant_id: String,
    #[serde(default)]
    pub merchant_transaction_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instrument_response: Option<InstrumentResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentResponse {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_info: Option<RedirectInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectInfo {
    pub url: String,
    #[serde(default)]
    pub method: String,
}

/// The `data` of a status answer, of a refund answer, and of a decoded callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusData {
    #[serde(default)]
    pub merchant_id: String,
    #[serde(default)]
    pub merchant_transaction_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    /// `COMPLETED`, `FAILED` or `PENDING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_instrument: Option<PaidInstrument>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaidInstrument {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utr: Option<String>,
}

/// The codes PhonePe documents (`docs/phonepe.md` §4).
pub mod codes {
    pub const PAYMENT_INITIATED: &str = "PAYMENT_INITIATED";
    pub const PAYMENT_SUCCESS: &str = "PAYMENT_SUCCESS";
    pub const PAYMENT_ERROR: &str = "PAYMENT_ERROR";
    pub const PAYMENT_DECLINED: &str = "PAYMENT_DECLINED";
    pub const PAYMENT_PENDING: &str = "PAYMENT_PENDING";
    pub const TIMED_OUT: &str = "TIMED_OUT";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const AUTHORIZATION_FAILED: &str = "AUTHORIZATION_FAILED";
    pub const TRANSACTION_NOT_FOUND: &str = "TRANSACTION_NOT_FOUND";
    pub const KEY_NOT_CONFIGURED: &str = "KEY_NOT_CONFIGURED";
    pub const TOO_MANY_REQUESTS: &str = "TOO_MANY_REQUESTS";
    pub const REVERSAL_WINDOW_EXCEEDED: &str = "REVERSAL_WINDOW_EXCEEDED";
    pub const EXCESS_REFUND_AMOUNT: &str = "EXCESS_REFUND_AMOUNT";

    /// Every documented code, for tests that must cover them all.
    pub const ALL: &[&str] = &[
        PAYMENT_INITIATED,
        PAYMENT_SUCCESS,
        PAYMENT_ERROR,
        PAYMENT_DECLINED,
        PAYMENT_PENDING,
        TIMED_OUT,
        INTERNAL_SERVER_ERROR,
        BAD_REQUEST,
        AUTHORIZATION_FAILED,
        TRANSACTION_NOT_FOUND,
        KEY_NOT_CONFIGURED,
        TOO_MANY_REQUESTS,
        REVERSAL_WINDOW_EXCEEDED,
        EXCESS_REFUND_AMOUNT,
    ];

    /// The `data.state` values.
    pub const STATE_COMPLETED: &str = "COMPLETED";
    pub const STATE_FAILED: &str = "FAILED";
    pub const STATE_PENDING: &str = "PENDING";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pay_payload_shape() {
        let p = PayPayload {
            merchant_id: "M".into(),
            merchant_transaction_id: "T1".into(),
            merchant_user_id: Some("U1".into()),
            amount: 10_000,
            redirect_url: "https://r".into(),
            redirect_mode: RedirectMode::Redirect,
            callback_url: "https://c".into(),
            mobile_number: None,
            payment_instrument: PaymentInstrument::UpiIntent {
                target_app: Some("com.phonepe.app".into()),
                device_context: Some(DeviceContext { device_os: "ANDROID".into() }),
            },
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "merchantId": "M", "merchantTransactionId": "T1", "merchantUserId": "U1",
                "amount": 10000, "redirectUrl": "https://r", "redirectMode": "REDIRECT",
                "callbackUrl": "https://c",
                "paymentInstrument": {"type": "UPI_INTENT", "targetApp": "com.phonepe.app",
                                      "deviceContext": {"deviceOS": "ANDROID"}}
            })
        );
        assert!(v["amount"].is_u64(), "amount must be a JSON number");
    }

    #[test]
    fn envelope_ignores_unknown_fields_and_tolerates_missing_data() {
        let e: Envelope<StatusData> =
            serde_json::from_str(r#"{"success":false,"code":"BAD_REQUEST","message":"x","extra":{"a":1}}"#).unwrap();
        assert_eq!(e.code, "BAD_REQUEST");
        assert!(e.data.is_none());
        let e: Envelope<StatusData> = serde_json::from_str(
            r#"{"success":true,"code":"PAYMENT_SUCCESS","data":{"merchantId":"M","merchantTransactionId":"T",
                "transactionId":"P1","amount":100,"state":"COMPLETED","responseCode":"SUCCESS","newField":true,
                "paymentInstrument":{"type":"UPI","utr":"206378866112","upiTransactionId":"x"}}}"#,
        )
        .unwrap();
        let d = e.data.unwrap();
        assert_eq!(d.amount, Some(100));
        assert_eq!(d.payment_instrument.unwrap().utr.as_deref(), Some("206378866112"));
    }

    #[test]
    fn string_amounts_are_refused() {
        let r: Result<StatusData, _> = serde_json::from_str(r#"{"amount":"100"}"#);
        assert!(r.is_err());
    }

    #[test]
    fn status_path_is_the_checksum_path() {
        assert_eq!(status_path("PGTESTPAYUAT", "MT7850590068188104"), "/pg/v1/status/PGTESTPAYUAT/MT7850590068188104");
    }
}
