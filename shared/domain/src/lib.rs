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
//!
//! # The state machines as data
//! [`StateMachine`] lists each status enum's states and allowed changes (`TRANSITIONS`); the
//! diagrams in `docs/architecture.md` are checked against it.

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
pub mod visit;

pub use self::time::Timestamp;
pub use error::{DomainError, ErrorKind};
pub use ids::{LotId, PaymentId, RefundId, SessionId, UserId};
pub use lot::{BookingLimits, Currency, Hours, Lot, LotCatalog};
pub use money::{MoneyError, Paise};
pub use obligation::{Obligation, ObligationKind, ObligationState, ObligationTarget, SYSTEM_USER};
pub use payment::{
    GatewayApi, Payment, PaymentInstrument, PaymentPurpose, PaymentStatus, SuccessReport, check_new_extension,
    check_new_payment,
};
pub use refund::{
    Refund, RefundRequest, RefundStatus, check_cancellation, check_refund_limit, record_late_refund_success,
    record_refund_success, refundable,
};
pub use session::{BookingRequest, ParkingSession, SessionStatus};
pub use untracked::{Untracked, untracked};
pub use vehicle::VehicleNumber;
pub use visit::{CancellationRule, GateId, Scan, ScanKind, Visit};

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

/// One allowed change of an entity's status: before, after, and the method that makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Edge<S: 'static> {
    pub from: S,
    pub to: S,
    pub action: &'static str,
}

impl<S> Edge<S> {
    pub const fn new(from: S, to: S, action: &'static str) -> Self {
        Edge { from, to, action }
    }
}

/// A status enum and the changes its entity's methods may make to it: the state machines of
/// sessions, payments and refunds as data. The transition methods check every change they make
/// against [`StateMachine::TRANSITIONS`] (debug builds, so every test), property tests check the
/// table against those methods (`tests/transition_tables.rs`), and the diagrams in
/// `docs/architecture.md` are compared with it (`tests/state_diagrams.rs`).
///
/// Only changes are listed: a method that leaves the status as it was (a repeated outcome, a
/// second partial refund) is not an edge.
pub trait StateMachine: Copy + Eq + std::hash::Hash + std::fmt::Debug + 'static {
    /// The entity, as the docs name its machine (`session`, `payment`, `refund`).
    const NAME: &'static str;
    /// Every status.
    const STATES: &'static [Self];
    /// The status a new entity has.
    const INITIAL: Self;
    /// The method that creates an entity (in [`StateMachine::INITIAL`]).
    const CREATED_BY: &'static str;
    /// Every allowed change.
    const TRANSITIONS: &'static [Edge<Self>];

    /// The contract's name of the status (`PENDING_PAYMENT`).
    fn name(self) -> &'static str;

    /// May a status `from` become `to` (by any method)?
    fn allows(from: Self, to: Self) -> bool {
        Self::TRANSITIONS.iter().any(|e| e.from == from && e.to == to)
    }

    /// No change leads out of it.
    fn is_final(self) -> bool {
        !Self::TRANSITIONS.iter().any(|e| e.from == self)
    }
}

/// The transition methods' own check that the change they are making is listed.
fn check_edge<S: StateMachine>(from: S, to: S, action: &'static str) {
    debug_assert!(
        S::TRANSITIONS.contains(&Edge::new(from, to, action)),
        "{} {} -> {} by {action} is not in its StateMachine::TRANSITIONS",
        S::NAME,
        from.name(),
        to.name()
    );
}

/// Shared by the entities: `updated_at` never goes backwards (clocks of different machines
/// differ), `version` counts applied transitions.
fn touch(updated_at: &mut Timestamp, version: &mut u64, now: Timestamp) {
    *updated_at = (*updated_at).max(now);
    *version = version.saturating_add(1);
}
