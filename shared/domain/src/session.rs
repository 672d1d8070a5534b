//! Parking sessions: a driver books a lot for a vehicle and some hours, pays, may enter, and may
//! be refunded.
//!
//! ```text
//!   book ──► PENDING_PAYMENT ──mark_paid──► PAID ──record_refund──► PARTIALLY_REFUNDED ──► REFUNDED
//!                 │                           └──────────record_refund (all)──────────────▲
//!                 └──cancel──► CANCELLED
//! ```
//! - `mark_paid`: only from `PENDING_PAYMENT`, with exactly the session's amount. Repeating it
//!   for the payment that paid it is `AlreadyApplied` (also after refunds); a *different*
//!   payment is `SESSION_ALREADY_PAID` (that money must be refunded); a cancelled session is
//!   `SESSION_NOT_PAYABLE`.
//! - `record_refund` (a refund that succeeded): only from `PAID` / `PARTIALLY_REFUNDED`, only for
//!   the payment that paid the session, never above `paid − refunded`; the session becomes
//!   `REFUNDED` when all is refunded. It is not idempotent by itself (two equal refunds are both
//!   real): apply it only when the refund's own transition was `Applied` — see
//!   [`crate::refund::record_refund_success`].
//! - `cancel`: only from `PENDING_PAYMENT`; repeating it is `AlreadyApplied`. Callers should not
//!   cancel while a payment is pending ([`crate::payment::check_new_payment`] tells).
//! - [`ParkingSession::can_enter`]: paid and not fully refunded.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{LotId, PaymentId, SessionId, UserId};
use crate::lot::{Hours, LotCatalog};
use crate::money::{MoneyError, Paise};
use crate::time::Timestamp;
use crate::vehicle::VehicleNumber;
use crate::visit::{GateId, ScanKind, Visit};
use crate::{Edge, StateMachine, Transition, check_edge, touch};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    PendingPayment,
    Paid,
    PartiallyRefunded,
    Refunded,
    Cancelled,
}

impl SessionStatus {
    /// The contract's name, as serialised.
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionStatus::PendingPayment => "PENDING_PAYMENT",
            SessionStatus::Paid => "PAID",
            SessionStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
            SessionStatus::Refunded => "REFUNDED",
            SessionStatus::Cancelled => "CANCELLED",
        }
    }

    /// Paid at some point (including after refunds).
    pub const fn is_paid(self) -> bool {
        matches!(self, SessionStatus::Paid | SessionStatus::PartiallyRefunded | SessionStatus::Refunded)
    }
}

impl StateMachine for SessionStatus {
    const NAME: &'static str = "session";
    const STATES: &'static [Self] = &[
        SessionStatus::PendingPayment,
        SessionStatus::Paid,
        SessionStatus::PartiallyRefunded,
        SessionStatus::Refunded,
        SessionStatus::Cancelled,
    ];
    const INITIAL: Self = SessionStatus::PendingPayment;
    const CREATED_BY: &'static str = "book";
    const TRANSITIONS: &'static [Edge<Self>] = &[
        Edge::new(SessionStatus::PendingPayment, SessionStatus::Paid, "mark_paid"),
        Edge::new(SessionStatus::PendingPayment, SessionStatus::Cancelled, "cancel"),
        Edge::new(SessionStatus::Paid, SessionStatus::PartiallyRefunded, "record_refund"),
        Edge::new(SessionStatus::Paid, SessionStatus::Refunded, "record_refund"),
        Edge::new(SessionStatus::PartiallyRefunded, SessionStatus::Refunded, "record_refund"),
    ];

    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl std::fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a driver asks to book, already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRequest {
    pub user_id: UserId,
    pub lot_id: LotId,
    pub vehicle: VehicleNumber,
    pub hours: Hours,
}

/// A parking session. Fields are read through getters and changed only by the transitions;
/// serde persists them all (`paid_by` is omitted while `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkingSession {
    id: SessionId,
    user_id: UserId,
    lot_id: LotId,
    vehicle: VehicleNumber,
    hours: Hours,
    /// Price fixed at booking: hourly rate × hours.
    amount: Paise,
    status: SessionStatus,
    /// What the paying payment brought in: 0 or `amount`.
    paid: Paise,
    /// Sum of the refunds of the paying payment that succeeded; never above `paid`.
    refunded: Paise,
    /// The payment that paid this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    paid_by: Option<PaymentId>,
    /// When it was paid (absent in records written before it was kept: the paying payment's
    /// `updated_at` tells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    paid_at: Option<Timestamp>,
    /// What the gates reported: entry and exit.
    #[serde(default, skip_serializing_if = "Visit::is_empty")]
    visit: Visit,
    /// Hours added by paid extensions (the booked end moves by them).
    #[serde(default, skip_serializing_if = "is_zero")]
    extra_hours: u32,
    /// The extension payments this session took, in order (their money is in `paid`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    extensions: Vec<PaymentId>,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// 1 at booking, +1 per applied transition: the store's optimistic-concurrency check.
    version: u64,
}

impl ParkingSession {
    /// Book: the lot must exist and the amount (lot tariff × hours) must be within the
    /// catalog's limits (`UNKNOWN_LOT`, `INVALID_HOURS`, `AMOUNT_TOO_LARGE`).
    pub fn book(
        catalog: &LotCatalog,
        id: SessionId,
        request: BookingRequest,
        now: Timestamp,
    ) -> Result<Self, DomainError> {
        let amount = catalog.quote(&request.lot_id, request.hours)?;
        Ok(ParkingSession {
            id,
            user_id: request.user_id,
            lot_id: request.lot_id,
            vehicle: request.vehicle,
            hours: request.hours,
            amount,
            status: SessionStatus::PendingPayment,
            paid: Paise::ZERO,
            refunded: Paise::ZERO,
            paid_by: None,
            paid_at: None,
            visit: Visit::default(),
            extra_hours: 0,
            extensions: Vec::new(),
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }

    pub fn id(&self) -> &SessionId {
        &self.id
    }
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }
    pub fn lot_id(&self) -> &LotId {
        &self.lot_id
    }
    pub fn vehicle(&self) -> &VehicleNumber {
        &self.vehicle
    }
    pub fn hours(&self) -> Hours {
        self.hours
    }
    pub fn amount(&self) -> Paise {
        self.amount
    }
    pub fn status(&self) -> SessionStatus {
        self.status
    }
    pub fn paid(&self) -> Paise {
        self.paid
    }
    pub fn refunded(&self) -> Paise {
        self.refunded
    }
    pub fn paid_by(&self) -> Option<&PaymentId> {
        self.paid_by.as_ref()
    }

    /// When it was paid, if that was recorded.
    pub fn paid_at(&self) -> Option<Timestamp> {
        self.paid_at
    }

    /// The entry and exit the gates reported.
    pub fn visit(&self) -> &Visit {
        &self.visit
    }

    /// When the booked time ends: booking plus the hours, moved by paid extensions.
    pub fn booked_until(&self) -> Timestamp {
        let ms = self.created_at.unix_millis().saturating_add(i64::from(self.total_hours()) * 3_600_000);
        Timestamp::from_unix_millis(ms).unwrap_or(self.created_at)
    }

    /// Hours added by paid extensions.
    pub fn extra_hours(&self) -> u32 {
        self.extra_hours
    }

    /// The booked hours and the paid extensions'.
    pub fn total_hours(&self) -> u32 {
        self.hours.get().saturating_add(self.extra_hours)
    }

    /// The extension payments this session took.
    pub fn extensions(&self) -> &[PaymentId] {
        &self.extensions
    }

    /// Whether `payment_id`'s money is this session's: the payment that paid it, or an extension
    /// it took. Any other successful payment of it is stray money (refunded automatically).
    pub fn took(&self, payment_id: &PaymentId) -> bool {
        self.paid_by.as_ref() == Some(payment_id) || self.extensions.contains(payment_id)
    }

    /// Extension payment `payment_id` of `hours` for `amount` succeeded: the booked end moves by
    /// `hours` and the money is the session's. Only a session the vehicle may use (paid, not
    /// fully refunded) takes one (`SESSION_NOT_EXTENDABLE`: its money is then refunded);
    /// the same payment again is `AlreadyApplied`.
    pub fn extend(
        &mut self,
        payment_id: &PaymentId,
        hours: u32,
        amount: Paise,
        now: Timestamp,
    ) -> Result<Transition, DomainError> {
        if self.extensions.contains(payment_id) {
            return Ok(Transition::AlreadyApplied);
        }
        if !self.can_enter() || self.paid_by.as_ref() == Some(payment_id) {
            return Err(DomainError::SessionNotExtendable { status: self.status.as_str() });
        }
        let paid =
            self.paid.checked_add(amount).ok_or(DomainError::SessionNotExtendable { status: self.status.as_str() })?;
        self.extra_hours = self.extra_hours.saturating_add(hours);
        self.paid = paid;
        self.extensions.push(payment_id.clone());
        // More money held: a session partly refunded stays so (refunded < paid).
        touch(&mut self.updated_at, &mut self.version, now);
        Ok(Transition::Applied)
    }

    /// A gate scanned this session's pass: see [`crate::visit`]. Only a session that was paid has
    /// a pass (`SESSION_NOT_PAID`); a refunded one still records what the gates saw.
    pub fn record_scan(
        &mut self,
        kind: ScanKind,
        gate: GateId,
        scanned_at: Timestamp,
        now: Timestamp,
    ) -> Result<Transition, DomainError> {
        if !self.status.is_paid() {
            return Err(DomainError::SessionNotPaid);
        }
        let t = self.visit.record(kind, gate, scanned_at, self.created_at, now)?;
        if t == Transition::Applied {
            touch(&mut self.updated_at, &mut self.version, now);
        }
        Ok(t)
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

    /// `paid − refunded`: what is still held for this session.
    pub fn net_paid(&self) -> Paise {
        self.paid.checked_sub(self.refunded).unwrap_or(Paise::ZERO)
    }

    /// May the vehicle enter: paid and not fully refunded.
    pub fn can_enter(&self) -> bool {
        matches!(self.status, SessionStatus::Paid | SessionStatus::PartiallyRefunded) && self.net_paid() > Paise::ZERO
    }

    /// Payment `payment_id` of `amount` succeeded. See the module docs for the rules.
    pub fn mark_paid(
        &mut self,
        payment_id: &PaymentId,
        amount: Paise,
        now: Timestamp,
    ) -> Result<Transition, DomainError> {
        match self.status {
            SessionStatus::PendingPayment => {
                if amount != self.amount {
                    return Err(DomainError::AmountMismatch { expected: self.amount, got: amount });
                }
                check_edge(self.status, SessionStatus::Paid, "mark_paid");
                self.status = SessionStatus::Paid;
                self.paid = amount;
                self.paid_by = Some(payment_id.clone());
                self.paid_at = Some(now);
                touch(&mut self.updated_at, &mut self.version, now);
                Ok(Transition::Applied)
            }
            s if s.is_paid() => {
                if self.paid_by.as_ref() != Some(payment_id) {
                    Err(DomainError::SessionAlreadyPaid)
                } else if amount != self.paid {
                    Err(DomainError::AmountMismatch { expected: self.paid, got: amount })
                } else {
                    Ok(Transition::AlreadyApplied)
                }
            }
            s => Err(DomainError::SessionNotPayable { status: s.as_str() }),
        }
    }

    /// A refund of `amount` from payment `payment_id` succeeded. Applied or an error; see the
    /// module docs.
    pub fn record_refund(&mut self, payment_id: &PaymentId, amount: Paise, now: Timestamp) -> Result<(), DomainError> {
        match self.status {
            SessionStatus::Paid | SessionStatus::PartiallyRefunded => {}
            SessionStatus::Refunded => return Err(DomainError::NothingToRefund),
            s => return Err(DomainError::InvalidTransition { entity: "session", from: s.as_str(), action: "refund" }),
        }
        if !self.took(payment_id) {
            return Err(DomainError::PaymentNotForSession);
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
        let to = if self.refunded == self.paid { SessionStatus::Refunded } else { SessionStatus::PartiallyRefunded };
        if to != self.status {
            check_edge(self.status, to, "record_refund");
        }
        self.status = to;
        touch(&mut self.updated_at, &mut self.version, now);
        Ok(())
    }

    /// A payment of this session was started ([`crate::Payment::start`]). Nothing visible
    /// changes, but the `version` goes up: the store writes the new payment together with this
    /// session, conditionally on the session's previous version, so two payments started from
    /// the same read can never both be stored (one live payment per session).
    pub fn note_payment_started(&mut self, now: Timestamp) {
        touch(&mut self.updated_at, &mut self.version, now);
    }

    /// Cancel an unpaid booking. A paid session is `SESSION_ALREADY_PAID` (refund it instead).
    pub fn cancel(&mut self, now: Timestamp) -> Result<Transition, DomainError> {
        match self.status {
            SessionStatus::PendingPayment => {
                check_edge(self.status, SessionStatus::Cancelled, "cancel");
                self.status = SessionStatus::Cancelled;
                touch(&mut self.updated_at, &mut self.version, now);
                Ok(Transition::Applied)
            }
            SessionStatus::Cancelled => Ok(Transition::AlreadyApplied),
            _ => Err(DomainError::SessionAlreadyPaid),
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms).unwrap()
    }

    pub(crate) fn pid(s: &str) -> PaymentId {
        PaymentId::parse(s).unwrap()
    }

    /// A 100.00 session (MG-ROAD-1, 2 hours) booked at t=1000 by "driver-1".
    pub(crate) fn booked() -> ParkingSession {
        booked_as([1; 16])
    }

    pub(crate) fn booked_as(id: [u8; 16]) -> ParkingSession {
        let request = BookingRequest {
            user_id: UserId::parse("driver-1").unwrap(),
            lot_id: LotId::parse("MG-ROAD-1").unwrap(),
            vehicle: VehicleNumber::parse("KA01AB1234").unwrap(),
            hours: Hours::new(2, 24).unwrap(),
        };
        ParkingSession::book(&LotCatalog::default_local(), SessionId::from_random(id), request, at(1_000)).unwrap()
    }

    pub(crate) fn paid() -> ParkingSession {
        let mut s = booked();
        assert_eq!(s.mark_paid(&pid("PP1"), Paise::new(10_000), at(2_000)), Ok(Transition::Applied));
        s
    }

    #[test]
    fn scans_need_a_paid_session_and_bump_the_version_once() {
        let mut s = booked();
        let gate = GateId::parse("north-1").unwrap();
        assert_eq!(
            s.record_scan(ScanKind::Entry, gate.clone(), at(1_500), at(1_600)),
            Err(DomainError::SessionNotPaid)
        );
        let mut s2 = paid();
        assert_eq!(s2.paid_at(), Some(at(2_000)));
        assert_eq!(s2.booked_until(), at(1_000 + 2 * 3_600_000));
        let v = s2.version();
        assert_eq!(s2.record_scan(ScanKind::Entry, gate.clone(), at(2_500), at(3_000)), Ok(Transition::Applied));
        assert_eq!(s2.version(), v + 1);
        assert_eq!(s2.record_scan(ScanKind::Entry, gate.clone(), at(2_600), at(3_100)), Ok(Transition::AlreadyApplied));
        assert_eq!(s2.version(), v + 1, "a repeat changes nothing");
        assert_eq!(s2.visit().entry.as_ref().unwrap().scanned_at, at(2_500));
        // kept through serde, and absent from the stored form of a session never scanned
        let back: ParkingSession = serde_json::from_value(serde_json::to_value(&s2).unwrap()).unwrap();
        assert_eq!(back, s2);
        assert!(serde_json::to_value(&s).unwrap().get("visit").is_none());
        let _ = s.cancel(at(1_700)).unwrap();
        assert_eq!(s.record_scan(ScanKind::Exit, gate, at(1_800), at(1_900)), Err(DomainError::SessionNotPaid));
    }

    #[test]
    fn extensions_move_the_end_and_their_money_is_the_sessions() {
        use crate::payment::{Payment, PaymentInstrument, PaymentPurpose, SuccessReport};
        let catalog = LotCatalog::default_local();
        // Not before paying.
        let booked = booked();
        let hours = Hours::new(1, 24).unwrap();
        let e =
            Payment::start_extension(pid("PX0"), &booked, &[], hours, &catalog, PaymentInstrument::PayPage, at(1_500));
        assert_eq!(e.unwrap_err().code(), "SESSION_NOT_EXTENDABLE");
        let mut s = paid();
        let until = s.booked_until();
        let mut x =
            Payment::start_extension(pid("PX1"), &s, &[], hours, &catalog, PaymentInstrument::PayPage, at(3_000))
                .unwrap();
        assert_eq!((x.amount(), x.purpose()), (Paise::new(5_000), PaymentPurpose::Extension { hours: 1 }));
        // One live payment at a time.
        let second = Payment::start_extension(
            pid("PX2"),
            &s,
            std::slice::from_ref(&x),
            hours,
            &catalog,
            PaymentInstrument::PayPage,
            at(3_100),
        );
        assert_eq!(second.unwrap_err(), DomainError::PaymentInProgress);
        // Never past the catalog's maximum hours in all.
        let too_many = Hours::new(23, 24).unwrap();
        let e =
            Payment::start_extension(pid("PX3"), &s, &[], too_many, &catalog, PaymentInstrument::PayPage, at(3_200));
        assert_eq!(e.unwrap_err().code(), "INVALID_HOURS");
        // Its success: the end moves an hour, the money is the session's.
        let _ = x.succeed(SuccessReport { amount: x.amount(), ..Default::default() }, at(4_000)).unwrap();
        assert!(!s.took(x.id()));
        assert_eq!(s.extend(x.id(), 1, x.amount(), at(4_000)), Ok(Transition::Applied));
        assert_eq!(s.extend(x.id(), 1, x.amount(), at(4_100)), Ok(Transition::AlreadyApplied));
        assert!(s.took(x.id()) && s.took(&pid("PP1")));
        assert_eq!((s.extra_hours(), s.total_hours(), s.paid()), (1, 3, Paise::new(15_000)));
        assert_eq!(s.booked_until().unix_millis() - until.unix_millis(), 3_600_000);
        assert_eq!(
            s.extend(&pid("PP1"), 1, Paise::new(5_000), at(4_200)).unwrap_err().code(),
            "SESSION_NOT_EXTENDABLE"
        );
        // Refunds of either payment count; all of it refunded is REFUNDED, and then no extension.
        s.record_refund(x.id(), Paise::new(5_000), at(5_000)).unwrap();
        assert_eq!(s.status(), SessionStatus::PartiallyRefunded);
        s.record_refund(&pid("PP1"), Paise::new(10_000), at(5_100)).unwrap();
        assert_eq!((s.status(), s.net_paid()), (SessionStatus::Refunded, Paise::ZERO));
        assert_eq!(s.record_refund(&pid("PP9"), Paise::new(1), at(5_200)).unwrap_err(), DomainError::NothingToRefund);
        assert_eq!(
            s.extend(&pid("PX4"), 1, Paise::new(5_000), at(5_300)).unwrap_err().code(),
            "SESSION_NOT_EXTENDABLE"
        );
        // Kept through serde.
        let back: ParkingSession = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let back: Payment = serde_json::from_value(serde_json::to_value(&x).unwrap()).unwrap();
        assert_eq!(back, x);
    }

    #[test]
    fn book_computes_the_amount() {
        let s = booked();
        assert_eq!(s.amount(), Paise::new(10_000));
        assert_eq!(s.status(), SessionStatus::PendingPayment);
        assert_eq!((s.paid(), s.refunded(), s.version()), (Paise::ZERO, Paise::ZERO, 1));
        assert_eq!((s.created_at(), s.updated_at()), (at(1_000), at(1_000)));
        assert!(!s.can_enter());
        assert_eq!(s.vehicle().as_str(), "KA-01-AB-1234");
    }

    #[test]
    fn book_refuses_unknown_lots_and_limits() {
        let mut request = BookingRequest {
            user_id: UserId::parse("u").unwrap(),
            lot_id: LotId::parse("NOWHERE").unwrap(),
            vehicle: VehicleNumber::parse("KA01AB1234").unwrap(),
            hours: Hours::new(2, 100).unwrap(),
        };
        let c = LotCatalog::default_local();
        let id = SessionId::from_random([2; 16]);
        let e = ParkingSession::book(&c, id.clone(), request.clone(), at(0)).unwrap_err();
        assert_eq!(e.code(), "UNKNOWN_LOT");
        request.lot_id = LotId::parse("AIRPORT-P1").unwrap();
        request.hours = Hours::new(25, 100).unwrap();
        assert_eq!(ParkingSession::book(&c, id, request, at(0)), Err(DomainError::InvalidHours { max: 24 }));
    }

    #[test]
    fn mark_paid() {
        let mut s = booked();
        let before = s.clone();
        assert_eq!(
            s.mark_paid(&pid("PP1"), Paise::new(9_999), at(2_000)),
            Err(DomainError::AmountMismatch { expected: Paise::new(10_000), got: Paise::new(9_999) })
        );
        assert_eq!(s, before, "an error changes nothing");

        let mut s = paid();
        assert_eq!(s.status(), SessionStatus::Paid);
        assert_eq!(
            (s.paid(), s.paid_by(), s.version(), s.updated_at()),
            (Paise::new(10_000), Some(&pid("PP1")), 2, at(2_000))
        );
        assert!(s.can_enter());

        let before = s.clone();
        assert_eq!(s.mark_paid(&pid("PP1"), Paise::new(10_000), at(3_000)), Ok(Transition::AlreadyApplied));
        assert_eq!(s, before, "a repeat changes nothing");
        assert_eq!(s.mark_paid(&pid("PP2"), Paise::new(10_000), at(3_000)), Err(DomainError::SessionAlreadyPaid));
        assert!(matches!(s.mark_paid(&pid("PP1"), Paise::new(1), at(3_000)), Err(DomainError::AmountMismatch { .. })));

        // Still recognised after refunds.
        s.record_refund(&pid("PP1"), Paise::new(10_000), at(4_000)).unwrap();
        assert_eq!(s.mark_paid(&pid("PP1"), Paise::new(10_000), at(5_000)), Ok(Transition::AlreadyApplied));

        let mut c = booked();
        assert_eq!(c.cancel(at(2_000)), Ok(Transition::Applied));
        assert_eq!(
            c.mark_paid(&pid("PP1"), Paise::new(10_000), at(3_000)),
            Err(DomainError::SessionNotPayable { status: "CANCELLED" })
        );
    }

    #[test]
    fn record_refund() {
        let mut s = paid();
        assert_eq!(
            s.record_refund(&pid("PP1"), Paise::ZERO, at(3_000)),
            Err(DomainError::InvalidAmount(MoneyError::Zero))
        );
        assert_eq!(s.record_refund(&pid("PP9"), Paise::new(1), at(3_000)), Err(DomainError::PaymentNotForSession));
        assert_eq!(
            s.record_refund(&pid("PP1"), Paise::new(10_001), at(3_000)),
            Err(DomainError::RefundExceedsRemaining { requested: Paise::new(10_001), remaining: Paise::new(10_000) })
        );
        s.record_refund(&pid("PP1"), Paise::new(4_000), at(3_000)).unwrap();
        assert_eq!(
            (s.status(), s.refunded(), s.net_paid(), s.version()),
            (SessionStatus::PartiallyRefunded, Paise::new(4_000), Paise::new(6_000), 3)
        );
        assert!(s.can_enter());
        s.record_refund(&pid("PP1"), Paise::new(6_000), at(4_000)).unwrap();
        assert_eq!((s.status(), s.refunded()), (SessionStatus::Refunded, Paise::new(10_000)));
        assert!(!s.can_enter());
        assert_eq!(s.record_refund(&pid("PP1"), Paise::new(1), at(5_000)), Err(DomainError::NothingToRefund));

        let mut b = booked();
        assert_eq!(b.record_refund(&pid("PP1"), Paise::new(1), at(2_000)).unwrap_err().code(), "INVALID_TRANSITION");
        assert_eq!(b.cancel(at(2_000)), Ok(Transition::Applied));
        assert_eq!(b.record_refund(&pid("PP1"), Paise::new(1), at(2_000)).unwrap_err().code(), "INVALID_TRANSITION");
    }

    #[test]
    fn cancel() {
        let mut s = booked();
        assert_eq!(s.cancel(at(500)), Ok(Transition::Applied));
        assert_eq!(s.updated_at(), at(1_000), "updated_at never goes backwards");
        assert_eq!(s.cancel(at(2_000)), Ok(Transition::AlreadyApplied));
        assert!(!s.can_enter());
        assert_eq!(paid().cancel(at(3_000)), Err(DomainError::SessionAlreadyPaid));
    }

    #[test]
    fn serde_round_trip_with_contract_names() {
        let s = paid();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["status"], "PAID");
        assert_eq!(json["amount"], 10_000);
        assert_eq!(json["vehicle"], "KA-01-AB-1234");
        assert_eq!(json["created_at"], 1_000);
        assert_eq!(serde_json::from_value::<ParkingSession>(json).unwrap(), s);
        for (status, name) in [
            (SessionStatus::PendingPayment, "PENDING_PAYMENT"),
            (SessionStatus::PartiallyRefunded, "PARTIALLY_REFUNDED"),
            (SessionStatus::Refunded, "REFUNDED"),
            (SessionStatus::Cancelled, "CANCELLED"),
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), name);
            assert_eq!(status.as_str(), name);
        }
        let booked = serde_json::to_value(booked()).unwrap();
        assert!(booked.get("paid_by").is_none());
    }

    proptest! {
        /// Money conservation under any sequence of refunds: 0 ≤ refunded ≤ paid, and the
        /// status always agrees with the amounts.
        #[test]
        fn refunds_never_exceed_paid(amounts in proptest::collection::vec(0u64..=12_000, 0..20)) {
            let mut s = paid();
            for (i, a) in amounts.into_iter().enumerate() {
                let before = s.clone();
                let r = s.record_refund(&pid("PP1"), Paise::new(a), at(3_000 + i as i64));
                if r.is_err() { prop_assert_eq!(&s, &before); }
                prop_assert!(s.refunded() <= s.paid());
                prop_assert_eq!(s.net_paid().get() + s.refunded().get(), s.paid().get());
                prop_assert_eq!(s.status() == SessionStatus::Refunded, s.refunded() == s.paid());
                prop_assert_eq!(s.can_enter(), s.refunded() < s.paid());
            }
        }
    }
}
