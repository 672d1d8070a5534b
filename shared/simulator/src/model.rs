//! What the simulator records and shows: transactions, outcomes, callback deliveries.

use std::fmt;
use std::str::FromStr;

use parkpay_gateway::phonepe_v1::wire::codes;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxnKind {
    Payment,
    Refund,
}

/// PhonePe's `data.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimState {
    Pending,
    Completed,
    Failed,
}

impl SimState {
    pub fn as_str(self) -> &'static str {
        match self {
            SimState::Pending => codes::STATE_PENDING,
            SimState::Completed => codes::STATE_COMPLETED,
            SimState::Failed => codes::STATE_FAILED,
        }
    }
}

impl fmt::Display for SimState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the payer chose (pay page form field `outcome`, or the control API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// COMPLETED / `PAYMENT_SUCCESS`.
    Success,
    /// FAILED / `PAYMENT_ERROR`.
    Failure,
    /// FAILED / `PAYMENT_DECLINED`.
    Declined,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Success => codes::PAYMENT_SUCCESS,
            Outcome::Failure => codes::PAYMENT_ERROR,
            Outcome::Declined => codes::PAYMENT_DECLINED,
        }
    }

    pub fn state(self) -> SimState {
        match self {
            Outcome::Success => SimState::Completed,
            Outcome::Failure | Outcome::Declined => SimState::Failed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outcome must be one of success, failure, declined")]
pub struct BadOutcome;

impl FromStr for Outcome {
    type Err = BadOutcome;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "success" => Ok(Outcome::Success),
            "failure" => Ok(Outcome::Failure),
            "declined" => Ok(Outcome::Declined),
            _ => Err(BadOutcome),
        }
    }
}

/// A payment or a refund as the simulator holds it (`GET /_sim/payments/{txn}`): a PG v1
/// transaction, or a PG v2 order or refund (see the crate docs for how v2 fills the fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub kind: TxnKind,
    pub merchant_id: String,
    pub merchant_transaction_id: String,
    /// PhonePe's `transactionId`.
    pub provider_transaction_id: String,
    /// Paise.
    pub amount: u64,
    pub state: SimState,
    /// The code the status API answers (`PAYMENT_PENDING`, `PAYMENT_SUCCESS`, …).
    pub code: String,
    pub merchant_user_id: Option<String>,
    pub callback_url: String,
    /// Payments: `PAY_PAGE`, `UPI_INTENT`, `UPI_QR` or `UPI_COLLECT`.
    pub instrument: Option<String>,
    pub redirect_url: Option<String>,
    /// `REDIRECT` or `POST`.
    pub redirect_mode: Option<String>,
    /// The hosted pay page; handed out for PAY_PAGE, usable by a person for any instrument.
    pub pay_page_url: Option<String>,
    /// The `upi://pay?...` text of UPI_INTENT / UPI_QR.
    pub upi_link: Option<String>,
    pub vpa: Option<String>,
    pub utr: Option<String>,
    /// What the payer chose, once they did (also set while a `stuck_pending` fault keeps the
    /// state PENDING).
    pub outcome: Option<Outcome>,
    /// Refunds: the payment refunded.
    pub original_transaction_id: Option<String>,
    /// Payments: their refunds, oldest first.
    pub refund_ids: Vec<String>,
    /// Payments: the sum of their refunds that are not FAILED.
    pub refunded_amount: u64,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

/// How one callback attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryResult {
    /// The receiver answered 2xx.
    Delivered,
    /// The receiver answered something else (retried).
    HttpError,
    /// No answer: connection refused, timeout, … (retried).
    Failed,
    /// Withheld by a `callback.drop` fault (attempt 0, nothing sent).
    Dropped,
}

/// One entry of the callback log (`GET /_sim/callbacks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackDelivery {
    pub merchant_transaction_id: String,
    pub url: String,
    /// The code and state inside the signed payload.
    pub code: String,
    pub state: String,
    /// 0 for the callback itself, 1.. for copies added by a `callback.duplicates` fault.
    pub copy: u32,
    /// 1 for the first attempt, 2.. for retries; 0 for a dropped callback.
    pub attempt: u32,
    pub http_status: Option<u16>,
    pub result: DeliveryResult,
    pub error: Option<String>,
    /// The salt index after `###` in its `X-VERIFY` (the one it was, or would have been, signed
    /// with).
    #[serde(default)]
    pub salt_index: u32,
    pub at_ms: u64,
}

/// Why an outcome could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompleteError {
    #[error("no payment {0}")]
    NotFound(String),
    #[error("{0} is a refund: refunds settle by themselves")]
    NotAPayment(String),
    #[error("payment {txn} already has an outcome (state {state}, code {code})")]
    AlreadyDecided { txn: String, state: SimState, code: String },
}

/// Why a refund could not be settled by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    #[error("no refund {0}")]
    NotFound(String),
    #[error("{0} is a payment, not a refund")]
    NotARefund(String),
    #[error("refund {refund} is already settled (state {state})")]
    AlreadySettled { refund: String, state: SimState },
}
