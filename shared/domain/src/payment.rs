//! Payments: one attempt to pay a session through PhonePe.
//!
//! ```text
//!   start ──► PENDING ──succeed──► SUCCESS
//!                └────fail────► FAILED ──late_success──► SUCCESS
//! ```
//! - `succeed` / `fail`: only from `PENDING`. Repeating the outcome the payment already has is
//!   `AlreadyApplied`. `SUCCESS → FAILED` is always `INVALID_TRANSITION` (money that moved does
//!   not un-move; a later "failed" report is stale).
//! - A success reported for a payment we recorded as `FAILED` (PhonePe can confirm a payment
//!   after declining it; the money really moved) is not taken silently: `succeed` answers
//!   `LATE_SUCCESS`, and the caller applies it deliberately with `late_success` and then either
//!   marks the session paid or refunds the payment (the session may meanwhile be paid by another
//!   payment: [`crate::ParkingSession::mark_paid`] answers `SESSION_ALREADY_PAID` then).
//! - A reported amount that differs from the payment's is `AMOUNT_MISMATCH` and changes nothing.
//! - A success is applied to the session with [`crate::ParkingSession::mark_paid`]; if that
//!   fails with `SESSION_ALREADY_PAID` or `SESSION_NOT_PAYABLE`, keep the payment `SUCCESS` and
//!   refund it.
//! - [`check_new_payment`]: a session has at most one live (`PENDING`) payment and is paid at
//!   most once.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{PaymentId, SessionId, UserId};
use crate::lot::{Hours, LotCatalog};
use crate::money::{MoneyError, Paise};
use crate::session::{ParkingSession, SessionStatus};
use crate::time::Timestamp;
use crate::{Edge, StateMachine, Transition, check_edge, touch};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Pending,
    Success,
    Failed,
}

impl PaymentStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "PENDING",
            PaymentStatus::Success => "SUCCESS",
            PaymentStatus::Failed => "FAILED",
        }
    }
}

impl StateMachine for PaymentStatus {
    const NAME: &'static str = "payment";
    const STATES: &'static [Self] = &[PaymentStatus::Pending, PaymentStatus::Success, PaymentStatus::Failed];
    const INITIAL: Self = PaymentStatus::Pending;
    const CREATED_BY: &'static str = "start";
    const TRANSITIONS: &'static [Edge<Self>] = &[
        Edge::new(PaymentStatus::Pending, PaymentStatus::Success, "succeed"),
        Edge::new(PaymentStatus::Pending, PaymentStatus::Failed, "fail"),
        Edge::new(PaymentStatus::Failed, PaymentStatus::Success, "late_success"),
    ];

    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the driver pays; the contract's `payment_instrument`. A collect request's VPA is passed
/// to the gateway, not kept here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentInstrument {
    #[default]
    PayPage,
    UpiIntent,
    UpiQr,
    UpiCollect,
    /// PhonePe's native mobile SDK inside the app (PG v2 only).
    AppSdk,
}

impl PaymentInstrument {
    pub const ALL: [PaymentInstrument; 5] = [
        PaymentInstrument::PayPage,
        PaymentInstrument::UpiIntent,
        PaymentInstrument::UpiQr,
        PaymentInstrument::UpiCollect,
        PaymentInstrument::AppSdk,
    ];

    /// The contract's name (`PAY_PAGE`, `UPI_INTENT`, `UPI_QR`, `UPI_COLLECT`, `APP_SDK`).
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentInstrument::PayPage => "PAY_PAGE",
            PaymentInstrument::UpiIntent => "UPI_INTENT",
            PaymentInstrument::UpiQr => "UPI_QR",
            PaymentInstrument::UpiCollect => "UPI_COLLECT",
            PaymentInstrument::AppSdk => "APP_SDK",
        }
    }

    /// The instrument named exactly by `name`, if any.
    pub fn parse(name: &str) -> Option<PaymentInstrument> {
        Self::ALL.into_iter().find(|i| i.as_str() == name)
    }

    /// Whether PhonePe's `api` offers this instrument: PG v1 all but the SDK; PG v2's Standard
    /// Checkout only its pay page and its SDK.
    pub const fn offered_by(self, api: GatewayApi) -> bool {
        match (self, api) {
            (PaymentInstrument::AppSdk, GatewayApi::V1) => false,
            (PaymentInstrument::PayPage | PaymentInstrument::AppSdk, GatewayApi::V2) => true,
            (_, GatewayApi::V2) => false,
            (_, GatewayApi::V1) => true,
        }
    }
}

/// Which of PhonePe's APIs made a payment (and so takes its refunds, answers its status and sends
/// its callbacks): PG v1 (salt key, X-VERIFY) or PG v2 (Standard Checkout, OAuth). A deployment
/// switching from v1 to v2 keeps using v1 for what v1 made. Stored only when not v1, so records
/// written before v2 existed read as v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum GatewayApi {
    #[default]
    #[serde(rename = "PG_V1")]
    V1,
    #[serde(rename = "PG_V2")]
    V2,
}

impl GatewayApi {
    /// As configured and stored: `v1` | `v2` (configuration), `PG_V1` | `PG_V2` (records).
    pub const fn as_str(self) -> &'static str {
        match self {
            GatewayApi::V1 => "v1",
            GatewayApi::V2 => "v2",
        }
    }

    /// The version named `v1` or `v2` (as `PHONEPE_API_VERSION` spells it).
    pub fn parse(name: &str) -> Option<GatewayApi> {
        match name {
            "v1" => Some(GatewayApi::V1),
            "v2" => Some(GatewayApi::V2),
            _ => None,
        }
    }

    pub fn is_v1(&self) -> bool {
        *self == GatewayApi::V1
    }
}

/// What a payment pays for: the booking, or an extension of a paid session by some hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentPurpose {
    #[default]
    Booking,
    /// `hours` more at the lot's tariff; its success moves the session's booked end.
    Extension { hours: u32 },
}

impl PaymentPurpose {
    pub fn is_booking(&self) -> bool {
        *self == PaymentPurpose::Booking
    }

    /// `BOOKING` or `EXTENSION`, as the API shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentPurpose::Booking => "BOOKING",
            PaymentPurpose::Extension { .. } => "EXTENSION",
        }
    }
}

/// What PhonePe reported about a successful payment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SuccessReport {
    pub amount: Paise,
    /// PhonePe's own transaction id.
    pub provider_txn_id: Option<String>,
    /// The bank's UTR, when PhonePe gives one.
    pub utr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    id: PaymentId,
    session_id: SessionId,
    user_id: UserId,
    /// Always the session's amount.
    amount: Paise,
    instrument: PaymentInstrument,
    status: PaymentStatus,
    provider_txn_id: Option<String>,
    utr: Option<String>,
    /// Sum of this payment's refunds that succeeded; never above `amount`.
    refunded: Paise,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: u64,
    /// The API that made it; absent (v1) in records written before v2.
    #[serde(default, skip_serializing_if = "GatewayApi::is_v1")]
    gateway: GatewayApi,
    /// When PhonePe's success was recorded; absent in records written before it was kept (and
    /// while not SUCCESS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    succeeded_at: Option<Timestamp>,
    /// What it pays for; absent (the booking) in records written before extensions.
    #[serde(default, skip_serializing_if = "PaymentPurpose::is_booking")]
    purpose: PaymentPurpose,
    /// A UPI payment's `upi://pay?…` link as PhonePe returned it (the QR's text, or the intent
    /// link), kept so that a kiosk can show it as a QR image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upi_link: Option<String>,
}

/// May an extension payment be started for `session`, given its `payments`? Only for a session
/// the vehicle may use (paid and not fully refunded; else `SESSION_NOT_EXTENDABLE`), and one
/// live payment at a time (`PAYMENT_IN_PROGRESS`).
pub fn check_new_extension(session: &ParkingSession, payments: &[Payment]) -> Result<(), DomainError> {
    if !session.can_enter() {
        return Err(DomainError::SessionNotExtendable { status: session.status().as_str() });
    }
    let pending = payments.iter().any(|p| &p.session_id == session.id() && p.status == PaymentStatus::Pending);
    if pending { Err(DomainError::PaymentInProgress) } else { Ok(()) }
}

/// May a new payment be created for `session`, given its `payments` (others are ignored)?
/// - session paid (even if since refunded), or any payment of it `SUCCESS`: `SESSION_ALREADY_PAID`
/// - session cancelled: `SESSION_NOT_PAYABLE`
/// - a payment still `PENDING`: `PAYMENT_IN_PROGRESS` (until verify or reconciliation settles it)
pub fn check_new_payment(session: &ParkingSession, payments: &[Payment]) -> Result<(), DomainError> {
    match session.status() {
        SessionStatus::PendingPayment => {}
        SessionStatus::Cancelled => {
            return Err(DomainError::SessionNotPayable { status: SessionStatus::Cancelled.as_str() });
        }
        _ => return Err(DomainError::SessionAlreadyPaid),
    }
    let mine = payments.iter().filter(|p| &p.session_id == session.id());
    let mut pending = false;
    for p in mine {
        match p.status {
            PaymentStatus::Success => return Err(DomainError::SessionAlreadyPaid),
            PaymentStatus::Pending => pending = true,
            PaymentStatus::Failed => {}
        }
    }
    if pending { Err(DomainError::PaymentInProgress) } else { Ok(()) }
}

impl Payment {
    /// A new `PENDING` payment of the session's amount, if [`check_new_payment`] allows it.
    pub fn start(
        id: PaymentId,
        session: &ParkingSession,
        payments: &[Payment],
        instrument: PaymentInstrument,
        now: Timestamp,
    ) -> Result<Payment, DomainError> {
        check_new_payment(session, payments)?;
        Ok(Self::pending(id, session, session.amount(), instrument, PaymentPurpose::Booking, now))
    }

    /// A new `PENDING` payment of `amount` for `session` (checks done by the caller).
    fn pending(
        id: PaymentId,
        session: &ParkingSession,
        amount: Paise,
        instrument: PaymentInstrument,
        purpose: PaymentPurpose,
        now: Timestamp,
    ) -> Payment {
        Payment {
            id,
            session_id: session.id().clone(),
            user_id: session.user_id().clone(),
            amount,
            instrument,
            status: PaymentStatus::Pending,
            provider_txn_id: None,
            utr: None,
            refunded: Paise::ZERO,
            created_at: now,
            updated_at: now,
            version: 1,
            gateway: GatewayApi::V1,
            upi_link: None,
            succeeded_at: None,
            purpose,
        }
    }

    /// A new `PENDING` payment extending `session` by `hours` at its lot's tariff, if
    /// [`check_new_extension`] allows it and the session's hours with the extension stay within
    /// the catalog's maximum (`INVALID_HOURS`).
    pub fn start_extension(
        id: PaymentId,
        session: &ParkingSession,
        payments: &[Payment],
        hours: Hours,
        catalog: &LotCatalog,
        instrument: PaymentInstrument,
        now: Timestamp,
    ) -> Result<Payment, DomainError> {
        check_new_extension(session, payments)?;
        let max = catalog.limits().max_hours;
        if session.total_hours().saturating_add(hours.get()) > max {
            return Err(DomainError::InvalidHours { max: max.saturating_sub(session.total_hours()) });
        }
        let amount = catalog.quote(session.lot_id(), hours)?;
        let purpose = PaymentPurpose::Extension { hours: hours.get() };
        Ok(Self::pending(id, session, amount, instrument, purpose, now))
    }

    /// What it pays for.
    pub fn purpose(&self) -> PaymentPurpose {
        self.purpose
    }

    /// When its success was recorded, while SUCCESS (`None` too for records written before that
    /// was kept).
    pub fn succeeded_at(&self) -> Option<Timestamp> {
        self.succeeded_at.filter(|_| self.status == PaymentStatus::Success)
    }

    /// The payment made through `api` (a new payment takes the deployment's configured API).
    pub fn via(mut self, api: GatewayApi) -> Payment {
        self.gateway = api;
        self
    }

    /// The API that made this payment, and that its status, callbacks and refunds go through.
    pub fn gateway(&self) -> GatewayApi {
        self.gateway
    }

    pub fn id(&self) -> &PaymentId {
        &self.id
    }

    /// The UPI link PhonePe returned for it, if any.
    pub fn upi_link(&self) -> Option<&str> {
        self.upi_link.as_deref()
    }

    /// PhonePe returned `link` (a `upi://` link) for this pending payment: keep it. The same link
    /// again changes nothing; a payment no longer pending keeps what it has.
    pub fn note_upi_link(&mut self, link: &str, now: Timestamp) -> Transition {
        if self.status != PaymentStatus::Pending || self.upi_link.as_deref() == Some(link) {
            return Transition::AlreadyApplied;
        }
        self.upi_link = Some(link.to_owned());
        touch(&mut self.updated_at, &mut self.version, now);
        Transition::Applied
    }
    pub fn session_id(&self) -> &SessionId {
        &self.session_id
    }
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }
    pub fn amount(&self) -> Paise {
        self.amount
    }
    pub fn instrument(&self) -> PaymentInstrument {
        self.instrument
    }
    pub fn status(&self) -> PaymentStatus {
        self.status
    }
    pub fn provider_txn_id(&self) -> Option<&str> {
        self.provider_txn_id.as_deref()
    }
    pub fn utr(&self) -> Option<&str> {
        self.utr.as_deref()
    }
    pub fn refunded(&self) -> Paise {
        self.refunded
    }
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
    pub fn version(&self) -> u64 {
        self.version
    }

    /// A refund of this payment was requested ([`crate::Refund::request`]). The payment's money
    /// does not change until the refund succeeds, but its `version` goes up: the store writes the
    /// new refund together with this payment, conditionally on the payment's previous version, so
    /// two refund requests that read the same payment can never both be stored.
    pub fn note_refund_requested(&mut self, now: Timestamp) {
        touch(&mut self.updated_at, &mut self.version, now);
    }

    /// What this payment still holds: `amount − refunded` once `SUCCESS`, else zero.
    pub fn net_paid(&self) -> Paise {
        match self.status {
            PaymentStatus::Success => self.amount.checked_sub(self.refunded).unwrap_or(Paise::ZERO),
            _ => Paise::ZERO,
        }
    }

    fn check_amount(&self, report: &SuccessReport) -> Result<(), DomainError> {
        if report.amount == self.amount {
            Ok(())
        } else {
            Err(DomainError::AmountMismatch { expected: self.amount, got: report.amount })
        }
    }

    fn apply_success(&mut self, report: SuccessReport, action: &'static str, now: Timestamp) -> Transition {
        check_edge(self.status, PaymentStatus::Success, action);
        self.status = PaymentStatus::Success;
        self.succeeded_at = Some(now);
        self.provider_txn_id = report.provider_txn_id;
        self.utr = report.utr;
        touch(&mut self.updated_at, &mut self.version, now);
        Transition::Applied
    }

    /// PhonePe reports success: `PENDING → SUCCESS`; `SUCCESS` again is `AlreadyApplied`;
    /// from `FAILED` it is `LATE_SUCCESS` (use [`Payment::late_success`]).
    pub fn succeed(&mut self, report: SuccessReport, now: Timestamp) -> Result<Transition, DomainError> {
        self.check_amount(&report)?;
        match self.status {
            PaymentStatus::Pending => Ok(self.apply_success(report, "succeed", now)),
            PaymentStatus::Success => Ok(Transition::AlreadyApplied),
            PaymentStatus::Failed => Err(DomainError::LateSuccess),
        }
    }

    /// Deliberately apply a success reported after the payment was recorded `FAILED`:
    /// `FAILED → SUCCESS`; `SUCCESS` again is `AlreadyApplied`; from `PENDING` use `succeed`.
    pub fn late_success(&mut self, report: SuccessReport, now: Timestamp) -> Result<Transition, DomainError> {
        self.check_amount(&report)?;
        match self.status {
            PaymentStatus::Failed => Ok(self.apply_success(report, "late_success", now)),
            PaymentStatus::Success => Ok(Transition::AlreadyApplied),
            PaymentStatus::Pending => Err(DomainError::InvalidTransition {
                entity: "payment",
                from: PaymentStatus::Pending.as_str(),
                action: "record a late success for",
            }),
        }
    }

    /// PhonePe reports failure: `PENDING → FAILED`; `FAILED` again is `AlreadyApplied`;
    /// `SUCCESS` is `INVALID_TRANSITION`.
    pub fn fail(&mut self, now: Timestamp) -> Result<Transition, DomainError> {
        match self.status {
            PaymentStatus::Pending => {
                check_edge(self.status, PaymentStatus::Failed, "fail");
                self.status = PaymentStatus::Failed;
                touch(&mut self.updated_at, &mut self.version, now);
                Ok(Transition::Applied)
            }
            PaymentStatus::Failed => Ok(Transition::AlreadyApplied),
            PaymentStatus::Success => Err(DomainError::InvalidTransition {
                entity: "payment",
                from: PaymentStatus::Success.as_str(),
                action: "fail",
            }),
        }
    }

    /// A refund of `amount` from this payment succeeded. Only a `SUCCESS` payment, never above
    /// `amount − refunded`. Not idempotent by itself: apply it only when the refund's own
    /// transition was `Applied` (see [`crate::refund::record_refund_success`]).
    pub fn record_refund(&mut self, amount: Paise, now: Timestamp) -> Result<(), DomainError> {
        if self.status != PaymentStatus::Success {
            return Err(DomainError::PaymentNotRefundable { status: self.status.as_str() });
        }
        if amount == Paise::ZERO {
            return Err(DomainError::InvalidAmount(MoneyError::Zero));
        }
        let remaining = self.net_paid();
        if amount > remaining {
            return Err(DomainError::RefundExceedsRemaining { requested: amount, remaining });
        }
        self.refunded = self
            .refunded
            .checked_add(amount)
            .ok_or(DomainError::RefundExceedsRemaining { requested: amount, remaining })?;
        touch(&mut self.updated_at, &mut self.version, now);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::session::tests::{at, booked, booked_as, paid, pid};

    pub(crate) fn report(paise: u64) -> SuccessReport {
        SuccessReport { amount: Paise::new(paise), provider_txn_id: Some("T2411".into()), utr: Some("UTR1".into()) }
    }

    pub(crate) fn pending() -> Payment {
        Payment::start(pid("PP1"), &booked(), &[], PaymentInstrument::UpiIntent, at(1_500)).unwrap()
    }

    pub(crate) fn succeeded() -> Payment {
        let mut p = pending();
        assert_eq!(p.succeed(report(10_000), at(2_000)), Ok(Transition::Applied));
        p
    }

    fn failed() -> Payment {
        let mut p = pending();
        assert_eq!(p.fail(at(2_000)), Ok(Transition::Applied));
        p
    }

    /// Records written before v2 existed have no `gateway` and read as v1; v1 records are
    /// written without it (no byte more per item); v2 records carry it, and so do their refunds.
    #[test]
    fn the_gateway_api_is_recorded_only_when_not_v1() {
        let v1 = pending();
        let json = serde_json::to_value(&v1).unwrap();
        assert!(json.get("gateway").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<Payment>(json).unwrap().gateway(), GatewayApi::V1);
        let v2 = pending().via(GatewayApi::V2);
        let json = serde_json::to_value(&v2).unwrap();
        assert_eq!(json["gateway"], "PG_V2");
        assert_eq!(serde_json::from_value::<Payment>(json).unwrap(), v2);
        let mut paid_v2 = v2;
        assert_eq!(paid_v2.succeed(report(10_000), at(2_000)), Ok(Transition::Applied));
        let request = crate::RefundRequest {
            requested_by: paid_v2.user_id().clone(),
            by_operator: false,
            amount: None,
            reason: None,
        };
        let refund =
            crate::Refund::request(crate::RefundId::parse("RF1").unwrap(), &paid_v2, &[], request, at(3_000)).unwrap();
        assert_eq!(refund.gateway(), GatewayApi::V2);
        assert_eq!((GatewayApi::parse("v2"), GatewayApi::parse("V2")), (Some(GatewayApi::V2), None));
    }

    #[test]
    fn start_takes_the_sessions_amount_and_owner() {
        let p = pending();
        let s = booked();
        assert_eq!((p.amount(), p.session_id(), p.user_id()), (s.amount(), s.id(), s.user_id()));
        assert_eq!((p.status(), p.version(), p.net_paid()), (PaymentStatus::Pending, 1, Paise::ZERO));
    }

    #[test]
    fn check_new_payment_rules() {
        let s = booked();
        assert_eq!(check_new_payment(&s, &[]), Ok(()));
        assert_eq!(check_new_payment(&s, &[failed()]), Ok(()));
        assert_eq!(check_new_payment(&s, &[failed(), pending()]), Err(DomainError::PaymentInProgress));
        assert_eq!(check_new_payment(&s, &[succeeded()]), Err(DomainError::SessionAlreadyPaid));
        assert_eq!(check_new_payment(&paid(), &[]), Err(DomainError::SessionAlreadyPaid));
        let mut c = booked();
        assert_eq!(c.cancel(at(2_000)), Ok(Transition::Applied));
        assert_eq!(check_new_payment(&c, &[]).unwrap_err().code(), "SESSION_NOT_PAYABLE");
        // Another session's pending payment does not count.
        assert_eq!(check_new_payment(&booked_as([9; 16]), &[pending()]), Ok(()));
        assert_eq!(
            Payment::start(pid("PP2"), &s, &[pending()], PaymentInstrument::PayPage, at(3_000)),
            Err(DomainError::PaymentInProgress)
        );
    }

    #[test]
    fn succeed() {
        let p = succeeded();
        assert_eq!(
            (p.status(), p.provider_txn_id(), p.utr(), p.version()),
            (PaymentStatus::Success, Some("T2411"), Some("UTR1"), 2)
        );
        assert_eq!(p.net_paid(), Paise::new(10_000));

        let mut again = p.clone();
        assert_eq!(again.succeed(report(10_000), at(3_000)), Ok(Transition::AlreadyApplied));
        assert_eq!(again, p, "a repeat changes nothing");

        let mut q = pending();
        let before = q.clone();
        assert_eq!(
            q.succeed(report(9_000), at(2_000)),
            Err(DomainError::AmountMismatch { expected: Paise::new(10_000), got: Paise::new(9_000) })
        );
        assert_eq!(q, before);
    }

    #[test]
    fn fail() {
        let mut p = failed();
        assert_eq!(p.status(), PaymentStatus::Failed);
        assert_eq!(p.fail(at(3_000)), Ok(Transition::AlreadyApplied));
        assert_eq!(p.version(), 2);
        let mut s = succeeded();
        assert_eq!(s.fail(at(3_000)).unwrap_err().code(), "INVALID_TRANSITION");
        assert_eq!(s.status(), PaymentStatus::Success);
    }

    #[test]
    fn late_success_is_explicit() {
        let mut p = failed();
        assert_eq!(p.succeed(report(10_000), at(3_000)), Err(DomainError::LateSuccess));
        assert_eq!(p.status(), PaymentStatus::Failed);
        assert!(p.late_success(report(1), at(3_000)).is_err());
        assert_eq!(p.late_success(report(10_000), at(3_000)), Ok(Transition::Applied));
        assert_eq!((p.status(), p.version()), (PaymentStatus::Success, 3));
        assert_eq!(p.late_success(report(10_000), at(4_000)), Ok(Transition::AlreadyApplied));
        assert_eq!(p.succeed(report(10_000), at(4_000)), Ok(Transition::AlreadyApplied));
        assert_eq!(pending().late_success(report(10_000), at(3_000)).unwrap_err().code(), "INVALID_TRANSITION");

        // The session was paid by another payment meanwhile: the late one must be refunded.
        let mut s = paid();
        let mut late = Payment::start(pid("PP7"), &booked(), &[], PaymentInstrument::PayPage, at(1_500)).unwrap();
        assert_eq!(late.fail(at(1_600)), Ok(Transition::Applied));
        assert_eq!(late.late_success(report(10_000), at(5_000)), Ok(Transition::Applied));
        assert_eq!(s.mark_paid(late.id(), late.amount(), at(5_000)), Err(DomainError::SessionAlreadyPaid));
    }

    #[test]
    fn record_refund() {
        assert_eq!(
            pending().record_refund(Paise::new(1), at(3_000)),
            Err(DomainError::PaymentNotRefundable { status: "PENDING" })
        );
        assert_eq!(failed().record_refund(Paise::new(1), at(3_000)).unwrap_err().code(), "PAYMENT_NOT_REFUNDABLE");
        let mut p = succeeded();
        assert_eq!(p.record_refund(Paise::ZERO, at(3_000)).unwrap_err().code(), "INVALID_AMOUNT");
        assert_eq!(p.record_refund(Paise::new(10_001), at(3_000)).unwrap_err().code(), "REFUND_EXCEEDS_REMAINING");
        p.record_refund(Paise::new(10_000), at(3_000)).unwrap();
        assert_eq!((p.refunded(), p.net_paid(), p.version()), (Paise::new(10_000), Paise::ZERO, 3));
        assert_eq!(p.record_refund(Paise::new(1), at(3_000)).unwrap_err().code(), "REFUND_EXCEEDS_REMAINING");
    }

    #[test]
    fn serde_names() {
        let v = serde_json::to_value(succeeded()).unwrap();
        assert_eq!(v["status"], "SUCCESS");
        assert_eq!(v["instrument"], "UPI_INTENT");
        assert_eq!(v["amount"], 10_000);
        assert_eq!(serde_json::from_value::<Payment>(v).unwrap(), succeeded());
        for (i, name) in [
            (PaymentInstrument::PayPage, "PAY_PAGE"),
            (PaymentInstrument::UpiQr, "UPI_QR"),
            (PaymentInstrument::UpiCollect, "UPI_COLLECT"),
        ] {
            assert_eq!(serde_json::to_value(i).unwrap(), name);
        }
        assert_eq!(serde_json::to_value(PaymentStatus::Pending).unwrap(), "PENDING");
        assert_eq!(serde_json::to_value(PaymentStatus::Failed).unwrap(), "FAILED");
    }
}
