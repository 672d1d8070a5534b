//! The domain's one error type. Every variant has a stable SCREAMING_SNAKE [`DomainError::code`]
//! (clients see it in `{"error": {"code": …}}`) and an [`ErrorKind`] that tells the API which
//! status to answer: a client mistake (422), a state conflict (409) or "not yours" (404).

use crate::money::{MoneyError, Paise};

/// How the API should answer a [`DomainError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is wrong whatever the state: HTTP 422.
    Validation,
    /// The input is fine but the entity's state forbids it (already paid, refund exceeds what
    /// is left, …): HTTP 409.
    Conflict,
    /// The caller may not see the entity; answered as if it did not exist: HTTP 404.
    NotFound,
}

impl ErrorKind {
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorKind::Validation => 422,
            ErrorKind::Conflict => 409,
            ErrorKind::NotFound => 404,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    // ---- validation (422) ----
    #[error("user id must be 1 to 128 printable ASCII characters without spaces")]
    InvalidUserId,
    #[error("session id must be \"ps_\" followed by 26 lowercase base32 characters")]
    InvalidSessionId,
    #[error("lot id must be 1 to 32 characters of A-Z, 0-9 and '-'")]
    InvalidLotId,
    #[error("payment id must be 1 to 34 characters of A-Z, a-z, 0-9, '_' and '-'")]
    InvalidPaymentId,
    #[error("refund id must be 1 to 34 characters of A-Z, a-z, 0-9, '_' and '-'")]
    InvalidRefundId,
    #[error("timestamp must be an RFC 3339 date-time between 1970 and 9999")]
    InvalidTimestamp,
    #[error("vehicle number must be an Indian registration number such as KA-01-AB-1234 or 22-BH-1234-AB")]
    InvalidVehicleNumber,
    #[error("hours must be a whole number from 1 to {max}")]
    InvalidHours { max: u32 },
    #[error("invalid amount: {0}")]
    InvalidAmount(MoneyError),
    #[error("amount is above the maximum of {max}")]
    AmountTooLarge { max: Paise },
    #[error("amount {got} does not match the amount due, {expected}")]
    AmountMismatch { expected: Paise, got: Paise },
    #[error("unknown parking lot {lot_id:?}")]
    UnknownLot { lot_id: String },
    #[error("invalid lot configuration: {0}")]
    InvalidLotConfig(String),
    #[error("refund reason must be at most {max} characters without control characters")]
    InvalidRefundReason { max: usize },
    #[error("gate must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' and '.'")]
    InvalidGateId,
    #[error("scanned_at is refused: {reason}")]
    InvalidScanTime { reason: &'static str },

    // ---- state conflicts (409) ----
    #[error("this parking session is already paid")]
    SessionAlreadyPaid,
    #[error("a payment for this parking session is already in progress")]
    PaymentInProgress,
    #[error("this parking session is {status} and cannot be paid")]
    SessionNotPayable { status: &'static str },
    #[error("the payment does not belong to this parking session")]
    PaymentNotForSession,
    #[error("only a successful payment can be refunded; this one is {status}")]
    PaymentNotRefundable { status: &'static str },
    #[error("refund of {requested} exceeds the {remaining} that is left to refund")]
    RefundExceedsRemaining { requested: Paise, remaining: Paise },
    #[error("nothing is left to refund")]
    NothingToRefund,
    #[error("at most {max} refund requests may be made for one payment; ask an operator")]
    RefundLimitReached { max: u32 },
    #[error("the payment was recorded as failed and is now reported successful; apply it with late_success")]
    LateSuccess,
    #[error("cannot {action} a {entity} that is {from}")]
    InvalidTransition { entity: &'static str, from: &'static str, action: &'static str },
    #[error("this parking session is not paid")]
    SessionNotPaid,
    #[error("this parking session is {status} and cannot be extended")]
    SessionNotExtendable { status: &'static str },
    #[error("the driver may not refund this payment: {reason}; an operator can")]
    RefundNotAllowed { reason: &'static str },

    // ---- not yours (404) ----
    #[error("payment not found")]
    PaymentNotFound,
}

impl DomainError {
    /// The stable machine-readable code. Never change one: clients match on it.
    pub const fn code(&self) -> &'static str {
        use DomainError::*;
        match self {
            InvalidUserId => "INVALID_USER_ID",
            InvalidSessionId => "INVALID_SESSION_ID",
            InvalidLotId => "INVALID_LOT_ID",
            InvalidPaymentId => "INVALID_PAYMENT_ID",
            InvalidRefundId => "INVALID_REFUND_ID",
            InvalidTimestamp => "INVALID_TIMESTAMP",
            InvalidVehicleNumber => "INVALID_VEHICLE_NUMBER",
            InvalidHours { .. } => "INVALID_HOURS",
            InvalidAmount(_) => "INVALID_AMOUNT",
            AmountTooLarge { .. } => "AMOUNT_TOO_LARGE",
            AmountMismatch { .. } => "AMOUNT_MISMATCH",
            UnknownLot { .. } => "UNKNOWN_LOT",
            InvalidLotConfig(_) => "INVALID_LOT_CONFIG",
            InvalidRefundReason { .. } => "INVALID_REFUND_REASON",
            InvalidGateId => "INVALID_GATE_ID",
            InvalidScanTime { .. } => "INVALID_SCAN_TIME",
            SessionAlreadyPaid => "SESSION_ALREADY_PAID",
            PaymentInProgress => "PAYMENT_IN_PROGRESS",
            SessionNotPayable { .. } => "SESSION_NOT_PAYABLE",
            PaymentNotForSession => "PAYMENT_NOT_FOR_SESSION",
            PaymentNotRefundable { .. } => "PAYMENT_NOT_REFUNDABLE",
            RefundExceedsRemaining { .. } => "REFUND_EXCEEDS_REMAINING",
            NothingToRefund => "NOTHING_TO_REFUND",
            RefundLimitReached { .. } => "REFUND_LIMIT_REACHED",
            LateSuccess => "LATE_SUCCESS",
            InvalidTransition { .. } => "INVALID_TRANSITION",
            SessionNotPaid => "SESSION_NOT_PAID",
            SessionNotExtendable { .. } => "SESSION_NOT_EXTENDABLE",
            RefundNotAllowed { .. } => "REFUND_NOT_ALLOWED",
            PaymentNotFound => "PAYMENT_NOT_FOUND",
        }
    }

    pub const fn kind(&self) -> ErrorKind {
        use DomainError::*;
        match self {
            InvalidUserId
            | InvalidSessionId
            | InvalidLotId
            | InvalidPaymentId
            | InvalidRefundId
            | InvalidTimestamp
            | InvalidVehicleNumber
            | InvalidHours { .. }
            | InvalidAmount(_)
            | AmountTooLarge { .. }
            | AmountMismatch { .. }
            | UnknownLot { .. }
            | InvalidLotConfig(_)
            | InvalidRefundReason { .. }
            | InvalidGateId
            | InvalidScanTime { .. } => ErrorKind::Validation,
            SessionAlreadyPaid
            | PaymentInProgress
            | SessionNotPayable { .. }
            | PaymentNotForSession
            | PaymentNotRefundable { .. }
            | RefundExceedsRemaining { .. }
            | NothingToRefund
            | RefundLimitReached { .. }
            | LateSuccess
            | InvalidTransition { .. }
            | SessionNotPaid
            | SessionNotExtendable { .. }
            | RefundNotAllowed { .. } => ErrorKind::Conflict,
            PaymentNotFound => ErrorKind::NotFound,
        }
    }

    pub const fn http_status(&self) -> u16 {
        self.kind().http_status()
    }
}

/// A refused rupee amount: `TooLarge` becomes [`DomainError::AmountTooLarge`] (its own code),
/// everything else [`DomainError::InvalidAmount`].
impl From<MoneyError> for DomainError {
    fn from(e: MoneyError) -> Self {
        match e {
            MoneyError::TooLarge { max } => DomainError::AmountTooLarge { max },
            other => DomainError::InvalidAmount(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_screaming_snake_and_kinds_map_to_statuses() {
        let all = [
            DomainError::InvalidUserId,
            DomainError::InvalidHours { max: 24 },
            DomainError::InvalidAmount(MoneyError::Zero),
            DomainError::SessionAlreadyPaid,
            DomainError::RefundExceedsRemaining { requested: Paise::new(2), remaining: Paise::new(1) },
            DomainError::InvalidTransition { entity: "payment", from: "SUCCESS", action: "fail" },
            DomainError::PaymentNotFound,
        ];
        for e in &all {
            assert!(e.code().bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "{}", e.code());
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(all[0].http_status(), 422);
        assert_eq!(all[3].http_status(), 409);
        assert_eq!(all[6].http_status(), 404);
    }

    #[test]
    fn money_errors_convert() {
        let max = Paise::new(100);
        assert_eq!(DomainError::from(MoneyError::TooLarge { max }), DomainError::AmountTooLarge { max });
        assert_eq!(DomainError::from(MoneyError::Zero).code(), "INVALID_AMOUNT");
    }
}
