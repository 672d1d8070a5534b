//! parkpay's domain: pure types and rules, no I/O. No clock reads and no randomness either:
//! callers pass `now` ([`Timestamp`]) and the random bytes of new ids in.
//!
//! - [`ids`]: validated identifiers; [`time`]: timestamps; [`money`]: amounts in paise.
//! - [`lot`]: lots and tariffs (configuration); [`vehicle`]: registration numbers.
//! - [`session`], [`payment`], [`refund`]: the entities and their state machines.
//! - [`obligation`]: what parkpay still owes, written down and driven to an end.
//! - [`error`]: [`DomainError`], with a stable code and the HTTP status class of each variant.
//!
//! # Transitions and repeated outcomes
//! A state change is a method returning `Result<Transition, DomainError>`. Payment outcomes
//! arrive many times (callback retries, the verify route, reconciliation), so re-applying the
//! outcome an entity already has is not an error: it returns [`Transition::AlreadyApplied`] and
//! changes nothing (not even `updated_at` or `version`), so the caller writes nothing and
//! answers as before. [`Transition::Applied`] means the entity changed and its `version` went up
//! by one: persist it conditionally on the previous version. Anything else that the state does
//! not allow is an `Err`, never a silent no-op.

pub mod error;
pub mod ids;
pub mod lot;
pub mod money;
pub mod obligation;
pub mod payment;
pub mod refund;
pub mod session;
pub mod time;
pub mod untracked;
pub mod vehicle;

pub use self::time::Timestamp;
pub use error::{DomainError, ErrorKind};
pub use ids::{LotId, PaymentId, RefundId, SessionId, UserId};
pub use lot::{BookingLimits, Currency, Hours, Lot, LotCatalog};
pub use money::{MoneyError, Paise};
pub use obligation::{Obligation, ObligationKind, ObligationState, ObligationTarget, SYSTEM_USER};
pub use payment::{Payment, PaymentInstrument, PaymentStatus, SuccessReport, check_new_payment};
pub use refund::{
    Refund, RefundRequest, RefundStatus, check_refund_limit, record_late_refund_success, record_refund_success,
    refundable,
};
pub use session::{BookingRequest, ParkingSession, SessionStatus};
pub use untracked::{Untracked, untracked};
pub use vehicle::VehicleNumber;

/// What a successful transition did. See the crate docs.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// The entity changed; `version` was incremented and `updated_at` set. Persist it.
    Applied,
    /// The entity already had this outcome; nothing changed. Persist nothing.
    AlreadyApplied,
}

impl Transition {
    pub const fn is_applied(self) -> bool {
        matches!(self, Transition::Applied)
    }
}

/// Shared by the entities: `updated_at` never goes backwards (clocks of different machines
/// differ), `version` counts applied transitions.
fn touch(updated_at: &mut Timestamp, version: &mut u64, now: Timestamp) {
    *updated_at = (*updated_at).max(now);
    *version = version.saturating_add(1);
}
