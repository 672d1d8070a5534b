//! The payment gateway seam.
//!
//! [`PaymentGateway`] is what the rest of parkpay calls: start a payment, ask its status, start a
//! refund, and authenticate and decode a server-to-server notification. Requests and answers are
//! typed and provider-neutral (amounts in [`Paise`], our own [`TxnState`]), so PhonePe's PG v2
//! (OAuth Standard Checkout, [`phonepe_v2`]) sits beside PG v1 ([`phonepe_v1`]) behind the same
//! trait.
//!
//! The error type separates the two kinds of failure a payment system must never confuse
//! ([`GatewayError::outcome_unknown`]): PhonePe *said no* (nothing happened, the caller may fail
//! the attempt), and *we don't know* whether it happened (timeout, 5xx or garbage after the
//! request was sent: the caller must keep the transaction PENDING and reconcile).

use std::fmt;

use async_trait::async_trait;
pub use parkpay_domain::Paise;

pub mod config;
#[cfg(feature = "client")]
mod transport;
pub mod phonepe_v1;
pub mod phonepe_v2;
#[cfg(feature = "client")]
pub mod tls;

pub use config::{ConfigError, Environment, PhonePeV1Config, PhonePeV2Config, V2ConfigError};

/// Our id for a payment or refund at the gateway (PhonePe's `merchantTransactionId`).
/// At most [`MerchantTxnId::MAX_LEN`] characters of `[A-Za-z0-9_-]`: the strictest of PhonePe's
/// doc revisions (below 35, 36 or 38) with one to spare.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MerchantTxnId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a merchant transaction id is 1 to 34 characters of A-Z, a-z, 0-9, '_' and '-'")]
pub struct InvalidTxnId;

impl MerchantTxnId {
    pub const MAX_LEN: usize = 34;

    pub fn parse(s: &str) -> Result<Self, InvalidTxnId> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok { Ok(Self(s.to_owned())) } else { Err(InvalidTxnId) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MerchantTxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the payer pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instrument {
    /// PhonePe's hosted pay page: the answer carries a URL to send the payer to.
    PayPage,
    /// A `upi://pay?...` link for a UPI app on the payer's phone.
    UpiIntent { target_app: Option<String>, device_os: DeviceOs },
    /// A QR code (its text) for another phone to scan.
    UpiQr,
    /// A collect request sent to the payer's UPI address.
    UpiCollect { vpa: String },
    /// PhonePe's native mobile SDK inside our app (PG v2 only): the answer carries a token the
    /// app hands to the SDK ([`PayStarted::sdk_token`]).
    AppSdk,
}

impl Instrument {
    /// PhonePe's name of the instrument (`PAY_PAGE`, `UPI_INTENT`, …; `APP_SDK` for the SDK).
    pub fn name(&self) -> &'static str {
        match self {
            Instrument::PayPage => "PAY_PAGE",
            Instrument::UpiIntent { .. } => "UPI_INTENT",
            Instrument::UpiQr => "UPI_QR",
            Instrument::UpiCollect { .. } => "UPI_COLLECT",
            Instrument::AppSdk => "APP_SDK",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceOs {
    Android,
    Ios,
}

/// Start a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayRequest {
    pub merchant_txn_id: MerchantTxnId,
    /// Our (opaque, non-personal) id of the payer.
    pub merchant_user_id: String,
    pub amount: Paise,
    pub instrument: Instrument,
    /// Where the payer's browser goes after the pay page.
    pub redirect_url: String,
    pub mobile_number: Option<String>,
}

/// A payment the gateway accepted and is now waiting for the payer on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayStarted {
    pub merchant_txn_id: MerchantTxnId,
    pub redirect_url: Option<String>,
    pub upi_intent_url: Option<String>,
    pub qr_data: Option<String>,
    /// [`Instrument::AppSdk`]: the token the app hands to PhonePe's mobile SDK.
    pub sdk_token: Option<String>,
    /// The gateway's own id of the order (PG v2 `orderId`), when it gives one.
    pub order_id: Option<String>,
}

impl PayStarted {
    /// A started payment with no links yet (fields are then filled by name).
    pub fn new(merchant_txn_id: MerchantTxnId) -> Self {
        Self {
            merchant_txn_id,
            redirect_url: None,
            upi_intent_url: None,
            qr_data: None,
            sdk_token: None,
            order_id: None,
        }
    }
}

/// Where a payment or refund stands, in our terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// Money moved. Only ever from an explicit success code with a completed state.
    Success,
    /// Final failure: no money moved.
    Failed,
    /// Not final (including every code we do not know): keep polling.
    Pending,
    /// The gateway has no such transaction (yet): not a failure while the payer has not paid.
    NotFound,
}

/// What the gateway says about one transaction (from the status API or a notification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub merchant_id: Option<String>,
    pub merchant_txn_id: MerchantTxnId,
    pub state: TxnState,
    /// The gateway's own code, as received (e.g. `PAYMENT_SUCCESS`), for logs and audit.
    pub code: String,
    /// The amount the gateway says it handled; the caller must compare it with its own record.
    pub amount: Option<Paise>,
    /// The gateway's transaction id (PhonePe `transactionId`).
    pub provider_txn_id: Option<String>,
    /// The bank reference (UTR), when the gateway gives one.
    pub utr: Option<String>,
}

/// Start a refund of (part of) a successful payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// A new id of ours for the refund (never the gateway's transaction id).
    pub refund_txn_id: MerchantTxnId,
    pub original_txn_id: MerchantTxnId,
    pub amount: Paise,
    pub merchant_user_id: Option<String>,
}

/// A refund the gateway accepted; its final state arrives by notification or status query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundStarted {
    pub refund_txn_id: MerchantTxnId,
    pub state: TxnState,
    pub code: String,
    pub provider_txn_id: Option<String>,
    pub amount: Option<Paise>,
}

/// What a verified server-to-server notification is about, when the gateway says so
/// (PG v1 callbacks don't: the id tells which of our records it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Payment,
    Refund,
    Unspecified,
}

/// A notification whose authenticity was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub report: StatusReport,
}

/// The code of [`GatewayError::Rejected`] for an instrument the gateway's API does not offer
/// (nothing was sent).
pub const INSTRUMENT_NOT_AVAILABLE: &str = "INSTRUMENT_NOT_AVAILABLE";
/// The code of [`GatewayError::Rejected`] when the gateway rate-limits us (retryable).
pub const TOO_MANY_REQUESTS: &str = "TOO_MANY_REQUESTS";

/// Why a gateway call did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The gateway answered and did not do it (bad request, bad checksum, excess refund, rate
    /// limited, …). Nothing happened at the gateway.
    #[error("gateway refused: {code}: {message}")]
    Rejected { code: String, message: String },
    /// The request may have reached the gateway and we do not know what it did (timeout after
    /// sending, 5xx, an unreadable answer, a not-final code). Keep the transaction PENDING and
    /// reconcile with the status API; never treat this as a failure.
    #[error("gateway outcome unknown: {reason}")]
    OutcomeUnknown { reason: String },
    /// The request never left (connection refused, DNS, connect timeout). Safe to retry.
    #[error("gateway unreachable: {reason}")]
    Unreachable { reason: String },
}

impl GatewayError {
    /// True when the operation may have happened at the gateway.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, GatewayError::OutcomeUnknown { .. })
    }

    /// The gateway's code, when it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            GatewayError::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when trying again later may succeed without any change (rate limits, outages).
    pub fn retryable(&self) -> bool {
        match self {
            GatewayError::Rejected { code, .. } => code == TOO_MANY_REQUESTS,
            GatewayError::OutcomeUnknown { .. } | GatewayError::Unreachable { .. } => true,
        }
    }
}

/// Why an inbound notification was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// No signature header at all.
    #[error("notification carries no signature header")]
    MissingSignature,
    /// A signature header that is malformed, names an unknown key, or does not match.
    #[error("notification signature rejected: {0}")]
    BadSignature(String),
    /// Authentic (or unauthenticatable) but unreadable: not JSON, not base64, missing fields.
    #[error("notification body is malformed: {0}")]
    Malformed(String),
    /// Our keys could not be loaded (secret store unavailable): nothing was checked; the sender
    /// should try again later.
    #[error("notification keys unavailable: {0}")]
    KeysUnavailable(String),
}

impl CallbackError {
    /// True when the sender failed to prove it is the gateway (HTTP 401 territory).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, CallbackError::MissingSignature | CallbackError::BadSignature(_))
    }
}

/// The operations parkpay needs from a payment gateway.
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Start a payment. `Ok` only when the gateway accepted it.
    async fn pay(&self, req: &PayRequest) -> Result<PayStarted, GatewayError>;

    /// The state of a payment by our id (PG v1: of a refund too). Safe to call any number of
    /// times.
    async fn status(&self, txn: &MerchantTxnId) -> Result<StatusReport, GatewayError>;

    /// The state of a refund by our refund id. Safe to call any number of times. PG v1 answers
    /// payments and refunds from one status API, so by default this is [`PaymentGateway::status`];
    /// PG v2 has a separate refund status API and overrides it. Wrappers around another gateway
    /// must forward it, not rely on the default.
    async fn refund_status(&self, refund: &MerchantTxnId) -> Result<StatusReport, GatewayError> {
        self.status(refund).await
    }

    /// Start a refund. Before retrying after [`GatewayError::OutcomeUnknown`], ask
    /// [`PaymentGateway::refund_status`] of the refund id: it may have started.
    async fn refund(&self, req: &RefundRequest) -> Result<RefundStarted, GatewayError>;

    /// Authenticate and decode a server-to-server notification from its raw headers and body.
    /// No network I/O for v1 or v2 (async so an implementation may first load its keys, e.g. from a
    /// secret store on first use). The caller still compares the amount and merchant with its
    /// own record; a PG v2 webhook's `Authorization` does not depend on its body, so its notice
    /// must be confirmed by reading the status before it is applied.
    async fn verify_notice(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<Notice, CallbackError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_id_rules() {
        assert!(MerchantTxnId::parse("MT7850590068188104").is_ok());
        assert!(MerchantTxnId::parse("a_b-C9").is_ok());
        assert!(MerchantTxnId::parse(&"x".repeat(34)).is_ok());
        for bad in ["", &"x".repeat(35), "a b", "a/b", "é", "a.b", "a\n"] {
            assert_eq!(MerchantTxnId::parse(bad), Err(InvalidTxnId), "{bad:?}");
        }
    }

    #[test]
    fn error_kinds() {
        let unknown = GatewayError::OutcomeUnknown { reason: "timeout".into() };
        assert!(unknown.outcome_unknown() && unknown.retryable());
        let no = GatewayError::Rejected { code: "BAD_REQUEST".into(), message: "x".into() };
        assert!(!no.outcome_unknown() && !no.retryable());
        assert_eq!(no.code(), Some("BAD_REQUEST"));
        let limited = GatewayError::Rejected { code: "TOO_MANY_REQUESTS".into(), message: "x".into() };
        assert!(limited.retryable());
        assert!(!GatewayError::Unreachable { reason: "refused".into() }.outcome_unknown());
    }

    #[test]
    fn instrument_names_and_an_empty_start() {
        assert_eq!(Instrument::AppSdk.name(), "APP_SDK");
        assert_eq!(Instrument::UpiCollect { vpa: "a@b".into() }.name(), "UPI_COLLECT");
        let s = PayStarted::new(MerchantTxnId::parse("T1").unwrap());
        assert_eq!((s.redirect_url, s.sdk_token, s.order_id), (None, None, None));
    }
}
