//! Persistence behind one narrow trait, [`Store`], with two implementations of the same
//! semantics: DynamoDB ([`dynamo`]) for AWS and an embedded database ([`embedded`], redb) for the
//! local default. One contract test suite runs against both (`tests/contract.rs`).
//!
//! # Model
//! A parking session and everything that happens to it (its payments and refunds) form one
//! aggregate, loaded together with one strongly consistent read ([`Store::load_session`]).
//! Every change is a [`Write`] in a [`Store::commit`]: all the writes of one commit happen
//! atomically or not at all, and each is conditional: an [`Write::Insert`] only if nothing with
//! that key exists, an [`Write::Update`] only if the stored version is the one the caller read.
//! A lost race is [`StoreError::Conflict`]: nothing was written; reload and decide again. So no
//! update is ever lost to a concurrent one, and "payment SUCCESS + session PAID" is one commit.
//!
//! Payment and refund ids are PhonePe merchant transaction ids: unique across both kinds, and
//! found without a scan through [`Store::find_txn`] (the store keeps a pointer record, written in
//! the same commit as the payment or refund it points to).
//!
//! # Key design
//! Both backends use the same keys ([`keys`]); the table is described in [`dynamo`]. The
//! embedded store keeps the same items in redb tables ([`embedded`]).

// Data read from a backend is never trusted: no panics outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

use std::collections::HashSet;

use async_trait::async_trait;
use parkpay_domain::{ParkingSession, Payment, PaymentId, Refund, RefundId, SessionId, UserId};

pub mod dynamo;
pub mod embedded;
pub mod keys;

pub use dynamo::{DynamoStore, IndexDefinition, KeyAttribute, TableDefinition, create_table, table_definition};
pub use embedded::EmbeddedStore;

/// One stored entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Session(ParkingSession),
    Payment(Payment),
    Refund(Refund),
}

impl Record {
    pub fn version(&self) -> u64 {
        match self {
            Record::Session(s) => s.version(),
            Record::Payment(p) => p.version(),
            Record::Refund(r) => r.version(),
        }
    }

    pub fn session_id(&self) -> &SessionId {
        match self {
            Record::Session(s) => s.id(),
            Record::Payment(p) => p.session_id(),
            Record::Refund(r) => r.session_id(),
        }
    }
}

/// One conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Store a new record. Fails with [`StoreError::Conflict`] if a record with its key exists
    /// (or, for a payment or refund, if its id is already used by any payment or refund).
    Insert(Record),
    /// Replace a stored record. Fails with [`StoreError::Conflict`] unless the stored record's
    /// version is `expected_version`. The new record's version must be greater (the domain's
    /// transitions increment it); a commit that breaks this is refused as
    /// [`StoreError::Invalid`] before anything is written.
    Update { record: Record, expected_version: u64 },
}

/// A session with all its payments and refunds (each list oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBundle {
    pub session: ParkingSession,
    pub payments: Vec<Payment>,
    pub refunds: Vec<Refund>,
}

/// What a merchant transaction id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnRef {
    Payment { session_id: SessionId, payment_id: PaymentId },
    Refund { session_id: SessionId, refund_id: RefundId },
}

impl TxnRef {
    pub fn session_id(&self) -> &SessionId {
        match self {
            TxnRef::Payment { session_id, .. } | TxnRef::Refund { session_id, .. } => session_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A condition failed (a concurrent writer won, or the record exists): nothing was written.
    #[error("conflicting concurrent change; nothing was written")]
    Conflict,
    /// The backend could not be reached or refused for capacity; nothing is known to be
    /// written only if the backend says so; callers answer 503 and may retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored item could not be read back into a domain entity.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The commit itself is malformed (a programming error): nothing was written.
    #[error("invalid commit: {0}")]
    Invalid(String),
}

/// Most writes one commit may hold. With the pointer record the store adds for each inserted
/// payment or refund, a commit is at most 50 items: well within DynamoDB's TransactWriteItems
/// limit of 100.
pub const MAX_WRITES_PER_COMMIT: usize = 25;

#[async_trait]
pub trait Store: Send + Sync {
    /// The session with its payments and refunds; strongly consistent. `None` when no session
    /// is stored under `id` (even if payments or refunds were inserted under it); an item that
    /// does not read back, or an unknown kind of item in the session's partition, is
    /// [`StoreError::Corrupt`].
    async fn load_session(&self, id: &SessionId) -> Result<Option<SessionBundle>, StoreError>;

    /// Which payment or refund a merchant transaction id names; strongly consistent.
    async fn find_txn(&self, merchant_txn_id: &str) -> Result<Option<TxnRef>, StoreError>;

    /// A user's sessions, newest first, at most `limit`. May lag a commit by a moment
    /// (DynamoDB global secondary indexes are eventually consistent).
    async fn list_sessions(&self, user: &UserId, limit: usize) -> Result<Vec<ParkingSession>, StoreError>;

    /// Apply all `writes` atomically, each conditionally (see [`Write`]).
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;
}

/// Checks every backend applies before writing anything:
/// - at least one write, at most [`MAX_WRITES_PER_COMMIT`];
/// - every update advances the version;
/// - no two writes touch the same item, counting the pointer records that inserts of payments
///   and refunds add (DynamoDB refuses two operations on one item in a transaction; refusing it
///   here gives both backends the same answer). So one commit cannot insert a payment and a
///   refund with the same id, nor write one record twice.
pub fn validate_commit(writes: &[Write]) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Err(StoreError::Invalid("empty commit".into()));
    }
    if writes.len() > MAX_WRITES_PER_COMMIT {
        return Err(StoreError::Invalid(format!("{} writes, at most {MAX_WRITES_PER_COMMIT}", writes.len())));
    }
    for w in writes {
        if let Write::Update { record, expected_version } = w
            && record.version() <= *expected_version
        {
            return Err(StoreError::Invalid(format!(
                "update to version {} does not advance from {expected_version}",
                record.version()
            )));
        }
    }
    let mut touched = HashSet::with_capacity(writes.len() * 2);
    for w in writes {
        let (record, pointer) = match w {
            Write::Insert(record) => (record, record.txn_pointer().map(|(key, _)| key)),
            Write::Update { record, .. } => (record, None),
        };
        for key in std::iter::once(record.key()).chain(pointer) {
            if !touched.insert(key.clone()) {
                return Err(StoreError::Invalid(format!("two writes to item {key} in one commit")));
            }
        }
    }
    Ok(())
}
