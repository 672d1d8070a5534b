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
//! found without a scan through [`Store::find_txn`] (the store keeps a pointer record, written
//! with the payment or refund it points to; on DynamoDB just before it (the `dynamo` module), so a
//! pointer can outlive a commit that failed: [`Store::find_txn`] may name a record that
//! [`Store::load_session`] does not have, and callers treat that as unknown).
//!
//! Two narrower traits sit beside [`Store`], so that a function depends only on what it uses
//! (and its IAM policy grants only those calls):
//! - [`IdempotencyStore`]: idempotency records with the semantics of AWS Lambda Powertools'
//!   idempotency utility (one conditional write takes a record; expiry judged from stored
//!   timestamps, never from DynamoDB TTL);
//! - [`PendingIndex`]: the open obligations (see `parkpay_domain::obligation`), by the time of
//!   their next attempt, for reconciliation. The index itself is maintained by
//!   [`Store::commit`], in the same atomic write as the obligation, so it cannot drift from the
//!   records.
//!
//! [`Store::commit`] also keeps the settlement ledger ([`ledger`]): an entry each time a payment
//! or refund reaches a final state, listed by day ([`Store::list_ledger`]) and searchable by
//! PhonePe's transaction id or UTR ([`Store::find_by_provider_ref`]); callers write nothing for
//! it.
//!
//! # Key design
//! Both backends use the same keys ([`keys`]); the table is described in [`dynamo`]. The
//! embedded store keeps the same items in redb tables ([`embedded`]).

// Data read from a backend is never trusted: no panics outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]
// With neither backend (the fuzz targets' build: traits and keys only) the helpers the backends
// share are unused.
#![cfg_attr(not(any(feature = "dynamodb", feature = "embedded")), allow(dead_code))]

use std::collections::HashSet;

use async_trait::async_trait;
use parkpay_domain::{
    Obligation, ParkingSession, Payment, PaymentId, Refund, RefundId, SessionId, Timestamp, UserId, VehicleNumber,
};

#[cfg(feature = "dynamodb")]
pub mod dynamo;
#[cfg(feature = "embedded")]
pub mod embedded;
mod idempotency;
pub mod keys;
pub mod ledger;
mod page;
mod token;

#[cfg(feature = "dynamodb")]
pub use dynamo::{DynamoStore, IndexDefinition, KeyAttribute, TableDefinition, create_table, table_definition};
#[cfg(feature = "embedded")]
pub use embedded::EmbeddedStore;
pub use ledger::{LedgerEntry, LedgerKind, LedgerPage, LedgerState, MAX_LEDGER_PAGE_LIMIT, MAX_LEDGER_SPAN_DAYS};
pub use page::MAX_PAGE_LIMIT;
pub use token::{MAX_ACCESS_TOKEN_BYTES, MAX_TOKEN_NAME_BYTES, StoredToken, TokenState, TokenStore};

/// One stored entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Session(ParkingSession),
    Payment(Payment),
    Refund(Refund),
    Obligation(Obligation),
}

impl Record {
    pub fn version(&self) -> u64 {
        match self {
            Record::Session(s) => s.version(),
            Record::Payment(p) => p.version(),
            Record::Refund(r) => r.version(),
            Record::Obligation(o) => o.version(),
        }
    }

    pub fn session_id(&self) -> &SessionId {
        match self {
            Record::Session(s) => s.id(),
            Record::Payment(p) => p.session_id(),
            Record::Refund(r) => r.session_id(),
            Record::Obligation(o) => o.session_id(),
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

/// A session with all its payments, refunds and obligations (each list oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBundle {
    pub session: ParkingSession,
    pub payments: Vec<Payment>,
    pub refunds: Vec<Refund>,
    pub obligations: Vec<Obligation>,
}

impl SessionBundle {
    /// The obligation about payment or refund `target_id`, if any.
    pub fn obligation(&self, target_id: &str) -> Option<&Obligation> {
        self.obligations.iter().find(|o| o.target_id() == target_id)
    }
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

    /// The payment or refund id: the merchant transaction id at PhonePe.
    pub fn merchant_txn_id(&self) -> &str {
        match self {
            TxnRef::Payment { payment_id, .. } => payment_id.as_str(),
            TxnRef::Refund { refund_id, .. } => refund_id.as_str(),
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

    /// Which payment or refund a merchant transaction id names; strongly consistent. On
    /// DynamoDB the record may be missing from its session (its commit failed after the pointer
    /// was put): treat that as unknown.
    async fn find_txn(&self, merchant_txn_id: &str) -> Result<Option<TxnRef>, StoreError>;

    /// A user's sessions, newest first, at most `limit`; read consistently, except that on
    /// DynamoDB sessions written by earlier versions (listed through index `GSI1`, until their
    /// user-list entry is written) may lag a commit by a moment.
    async fn list_sessions(&self, user: &UserId, limit: usize) -> Result<Vec<ParkingSession>, StoreError>;

    /// Apply all `writes` atomically, each conditionally (see [`Write`]). The same atomic write
    /// keeps the due index ([`PendingIndex`]) in step: an obligation written open enters it (at
    /// its `next_attempt_at`), one written otherwise leaves it; and a session written REFUNDED
    /// for the first time enters the revoked passes ([`Store::list_revoked`]). (On DynamoDB an
    /// inserted session's entry in its user's list is written just before, on its own: should
    /// the commit then fail, the entry names no session and the list leaves it out.)
    ///
    /// A payment or refund written into a final state it was not in (or inserted final) adds its
    /// settlement ledger entry ([`Store::list_ledger`]), once per transaction and state however
    /// often such a commit is replayed, keeping the first `final_at`. The embedded store writes it
    /// in the same transaction; DynamoDB just before the commit's write (as it does the pointers),
    /// so that no commit lands without its entries; an entry whose commit then failed is a final
    /// state about to be written again (the caller's retry, or reconciliation, applies it), see
    /// the `dynamo` module.
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// One page of a user's sessions, newest first (by `created_at`, ties by id: the order of
    /// [`Store::list_sessions`]): at most `limit` (1..=[`MAX_PAGE_LIMIT`]), starting after the
    /// session `cursor` names (from the newest when `None`).
    ///
    /// `next_cursor` names the page's last session; it is there only when more may follow (a
    /// full page, and the store saw another session beyond it). Positions are fixed (a session's
    /// `created_at` never changes), so paging on with it never repeats or skips a session, even
    /// when sessions are booked meanwhile: those are newer than any cursor (booked after the page
    /// that made it) and appear on a new first page, not on the pages after. A malformed or
    /// altered cursor, or a limit outside 1..=[`MAX_PAGE_LIMIT`]: [`StoreError::Invalid`].
    ///
    /// Read as [`Store::list_sessions`] reads: consistently, except that on DynamoDB sessions
    /// written by earlier versions (listed through `GSI1`) may lag a commit by a moment. Both
    /// sources are ordered by the same key, so one cursor (that key) bounds both.
    async fn list_sessions_page(
        &self,
        user: &UserId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SessionPage, StoreError>;

    /// One page of the revoked entry passes (sessions a refund ended: REFUNDED), oldest first
    /// (by `revoked_at`, ties by session id), at most `limit` (1..=[`MAX_PAGE_LIMIT`]): those
    /// revoked at or after `since` (inclusive: `revoked_at >= since`) and, when `cursor` is given,
    /// after the entry it names. `next_cursor` names the page's last entry, there only when more
    /// may follow: page on with it (keeping `since`), not with the last `revoked_at`, which
    /// another entry may share.
    ///
    /// A session enters the list when a commit first writes it REFUNDED, at that write's
    /// `updated_at`, and stays there unchanged. Sessions already REFUNDED when written by an
    /// earlier version have no entry (until their next write, which adds one at its own time);
    /// passes are short-lived, so those have expired.
    ///
    /// For a gate's polling: the list is eventually consistent (a DynamoDB index; and a commit
    /// takes its `updated_at` before it lands), so an entry can appear behind one already read.
    /// Poll with `since` a margin (say a minute) before the last `revoked_at` seen, and apply
    /// revocations idempotently (by session id): with `since` inclusive, an entry sharing that
    /// millisecond is never missed, only read again. A malformed or altered cursor, or a limit
    /// outside 1..=[`MAX_PAGE_LIMIT`]: [`StoreError::Invalid`].
    async fn list_revoked(
        &self,
        since: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<RevokedPage, StoreError>;

    /// One page of the settlement ledger: the entries of payments and refunds that reached a
    /// final state (SUCCESS or FAILED) with `day_start <= final_at < day_end`, ordered by
    /// `final_at`, then merchant transaction id (then state), at most `limit`
    /// (1..=[`MAX_LEDGER_PAGE_LIMIT`]), after the entry `cursor` names (from the first when
    /// `None`). For a day in India's time, pass its midnight IST and the next one's
    /// (`keys::ist_date` names the day an entry belongs to).
    ///
    /// `next_cursor` names the page's last entry, there only when more may follow: page on with
    /// it, keeping the bounds. An entry's position never changes (it is written once), so paging
    /// never repeats or skips one that was there when the first page was read.
    ///
    /// The ledger is eventually consistent on DynamoDB (an index): an entry appears a moment
    /// after its commit, and a commit takes its `updated_at` before it lands, so read a day once
    /// it has ended (a minute later, say). [`StoreError::Invalid`] for a limit outside
    /// 1..=[`MAX_LEDGER_PAGE_LIMIT`], `day_end <= day_start`, a span over
    /// [`MAX_LEDGER_SPAN_DAYS`], or a malformed or altered cursor (or another listing's).
    async fn list_ledger(
        &self,
        day_start: Timestamp,
        day_end: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<LedgerPage, StoreError>;

    /// The sessions booked for `vehicle`, newest first (by `created_at`, ties by id), at most
    /// `limit` (0: none). Eventually consistent on DynamoDB (an index). Sessions booked by
    /// versions before this index existed are found once written again (any change of the
    /// session gives it its entry, at its booking time).
    async fn sessions_by_vehicle(&self, vehicle: &VehicleNumber, limit: usize) -> Result<Vec<SessionId>, StoreError>;

    /// The payments (and refunds) whose ledger entries carry `reference` as PhonePe's transaction
    /// id or as the UTR: `(session, merchant transaction id)`, each once, sorted. Only
    /// transactions that reached a final state have entries; references longer than
    /// [`keys::MAX_PROVIDER_REF_BYTES`] are not indexed (an empty result). Eventually consistent
    /// on DynamoDB (an index).
    async fn find_by_provider_ref(&self, reference: &str) -> Result<Vec<(SessionId, String)>, StoreError>;
}

/// One page of [`Store::list_sessions_page`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPage {
    /// Newest first.
    pub sessions: Vec<ParkingSession>,
    /// Opaque, URL-safe; present only when more may follow.
    pub next_cursor: Option<String>,
}

/// A revoked entry pass: its session became REFUNDED at `revoked_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub session_id: SessionId,
    pub revoked_at: Timestamp,
}

/// One page of [`Store::list_revoked`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedPage {
    /// Oldest first.
    pub entries: Vec<Revoked>,
    /// Opaque, URL-safe; present only when more may follow.
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Idempotency records

/// Longest idempotency key, in bytes (UTF-8). The caller builds the key, e.g.
/// `{user}#{endpoint}#{Idempotency-Key header}`.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 1024;
/// Longest lock token or payload hash, in bytes.
pub const MAX_IDEMPOTENCY_TOKEN_BYTES: usize = 256;
/// Largest stored response body, in bytes (a DynamoDB item holds at most 400 KB).
pub const MAX_STORED_RESPONSE_BYTES: usize = 256 * 1024;

/// Where an idempotency record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdempotencyStatus {
    /// A request holds the record and is being processed (until `in_progress_until`).
    InProgress,
    /// The request finished; `response` is its answer, to be replayed.
    Completed,
}

impl IdempotencyStatus {
    /// As stored: `IN_PROGRESS` | `COMPLETED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            IdempotencyStatus::InProgress => "IN_PROGRESS",
            IdempotencyStatus::Completed => "COMPLETED",
        }
    }
}

/// The answer of a completed request, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status, 100..=599.
    pub status: u16,
    /// The body exactly as first sent; at most [`MAX_STORED_RESPONSE_BYTES`].
    pub body: String,
}

/// One idempotency record: who holds the key, for which payload, until when, and (once
/// completed) the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Built by the caller; 1..=[`MAX_IDEMPOTENCY_KEY_BYTES`] bytes, any text.
    pub key: String,
    /// A hash of the request's payload, compared by the caller on a repeat (mismatch: 422).
    pub payload_hash: String,
    pub status: IdempotencyStatus,
    /// An in-progress record whose holder crashed may be taken over from this time on.
    pub in_progress_until: Timestamp,
    /// The record is dead from this time on (judged from this stored value, not from DynamoDB
    /// TTL, which lags).
    pub expires_at: Timestamp,
    /// Set by [`IdempotencyStore::complete`].
    pub response: Option<StoredResponse>,
    /// The lock token, chosen by the acquirer: unique per attempt (e.g. 128 random bits), so
    /// that only the holder can complete or release the record.
    pub token: String,
}

impl IdempotencyRecord {
    /// A new in-progress record, as [`IdempotencyStore::acquire`] takes it.
    pub fn in_progress(
        key: impl Into<String>,
        payload_hash: impl Into<String>,
        token: impl Into<String>,
        in_progress_until: Timestamp,
        expires_at: Timestamp,
    ) -> Self {
        IdempotencyRecord {
            key: key.into(),
            payload_hash: payload_hash.into(),
            status: IdempotencyStatus::InProgress,
            in_progress_until,
            expires_at,
            response: None,
            token: token.into(),
        }
    }

    /// Whether the record still holds its key at `now`: not expired (`expires_at > now`), and
    /// not an in-progress record past its `in_progress_until`. [`IdempotencyStore::acquire`]
    /// takes exactly the records that are not live.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at > now
            && match self.status {
                IdempotencyStatus::InProgress => self.in_progress_until > now,
                IdempotencyStatus::Completed => true,
            }
    }
}

/// What [`IdempotencyStore::acquire`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// The caller's record is stored: it holds the key; process the request, then
    /// [`complete`](IdempotencyStore::complete) or [`release`](IdempotencyStore::release).
    Acquired,
    /// A live record holds the key (as stored; its `token` is the holder's). The caller compares
    /// `payload_hash` (differs: 422), then answers from `status`: in progress → 409, completed →
    /// replay `response`.
    Existing(IdempotencyRecord),
}

/// Idempotency records (AWS Lambda Powertools semantics). Every operation is one conditional
/// write; none reads first.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Takes `record.key` with `record` (status `InProgress`, no response) if no live record holds
    /// it: stores `record` if the key is absent, or its record has expired
    /// (`expires_at <= now`), or is in progress past its `in_progress_until <= now` (the holder is
    /// presumed crashed: a takeover). Otherwise returns the live record as stored, from the same
    /// write (no second read).
    ///
    /// Repeating an acquire that went through (the same record, token included, is what is
    /// stored and still in progress) is `Acquired` again, so a retried call is safe.
    ///
    /// [`StoreError::Invalid`] (nothing written) if `record` is not in progress, has a response,
    /// has an empty or oversized key, token or payload hash, or `in_progress_until` or
    /// `expires_at` is not after `now`.
    async fn acquire(&self, record: &IdempotencyRecord, now: Timestamp) -> Result<Acquire, StoreError>;

    /// Marks the record `key` completed with `response`, and sets its `expires_at` (how long the
    /// answer is replayed), if it is still held by `token` and in progress. Repeating a completion
    /// that went through (same token, response and `expires_at`) is `Ok`.
    ///
    /// [`StoreError::Conflict`] (nothing written) if no record is stored under `key`, or it holds
    /// another token (it was taken over), or it is already completed otherwise.
    /// [`StoreError::Invalid`] for an empty or oversized key or token, a status outside
    /// 100..=599, or a body over [`MAX_STORED_RESPONSE_BYTES`].
    async fn complete(
        &self,
        key: &str,
        token: &str,
        response: &StoredResponse,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Deletes the record `key` if it is held by `token` and still in progress (after a failure
    /// that must let a retry run the request again).
    ///
    /// - No record under `key`: `Ok`. What release is for already holds (no record blocks a
    ///   retry); this is also the answer to a repeated release.
    /// - A record with another token (the caller's lock was taken over; the new holder's record
    ///   stays), or a completed record (its answer must keep being replayed):
    ///   [`StoreError::Conflict`], nothing deleted.
    ///
    /// [`StoreError::Invalid`] for an empty or oversized key or token.
    async fn release(&self, key: &str, token: &str) -> Result<(), StoreError>;
}

// ---------------------------------------------------------------------------------------------
// Due index

/// An open obligation, as the due index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEntry {
    pub session_id: SessionId,
    /// The payment or refund the obligation is about (its key in the session).
    pub target_id: String,
    /// Its `next_attempt_at` as indexed.
    pub due_at: Timestamp,
}

/// The open obligations by the time of their next attempt, for reconciliation.
/// [`Store::commit`] maintains the index: an obligation is in it exactly while it is open, under
/// its current `next_attempt_at`. The index is spread over [`keys::DUE_SHARDS`] partitions so
/// that no single partition takes every write.
#[async_trait]
pub trait PendingIndex: Send + Sync {
    /// Open obligations due strictly before `due_before`: from each shard the earliest
    /// `per_shard` at most, merged earliest first (ties by target id). So a caller that takes
    /// the first entries gets the globally earliest. May lag a commit by a moment (DynamoDB
    /// global secondary indexes are eventually consistent): load the session before acting.
    async fn list_due(&self, due_before: Timestamp, per_shard: usize) -> Result<Vec<DueEntry>, StoreError>;
}

// ---------------------------------------------------------------------------------------------
// Attention lists

/// The two lists of obligations a person should see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttentionList {
    /// Open obligations past their deadline or whose attempt is late
    /// ([`Obligation::is_overdue`](parkpay_domain::Obligation::is_overdue)).
    Overdue,
    /// Obligations that need a person (`NEEDS_PERSON`).
    NeedsPerson,
}

/// One obligation on an attention list, with its position there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttentionEntry {
    /// `{ms:015}#OBLIGATION#{target_id}` (the time it became overdue, or came to need a
    /// person): unique, and descending order is the list's order. Hand the last one of a page
    /// back as `before` for the next page.
    pub position: String,
    pub obligation: Obligation,
}

/// The attention lists, newest first. Maintained by [`Store::commit`] in the same atomic write
/// as the obligation (an index spread over [`keys::DUE_SHARDS`] partitions, like the due index;
/// on DynamoDB the overdue list reads obligations whose attempt is late from the due index itself).
#[async_trait]
pub trait AttentionIndex: Send + Sync {
    /// At most `limit` entries of `list`, newest first (descending position), only positions
    /// strictly below `before` when given. For [`AttentionList::Overdue`], only obligations
    /// overdue at `now`. May lag a commit by a moment (DynamoDB's indexes are eventually
    /// consistent); each entry is the obligation as it was written.
    async fn list_attention(
        &self,
        list: AttentionList,
        now: Timestamp,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AttentionEntry>, StoreError>;
}

/// The exclusive upper bound of positions for a listing: `before`, and for the overdue list
/// also "overdue at `now`" (position time ≤ now).
pub(crate) fn attention_bound(list: AttentionList, now: Timestamp, before: Option<&str>) -> String {
    let mut bound = match list {
        AttentionList::Overdue => {
            keys::due_gsi2sk_bound(Timestamp::from_unix_millis(now.unix_millis() + 1).unwrap_or(now))
        }
        AttentionList::NeedsPerson => "\u{10FFFF}".to_owned(),
    };
    if let Some(b) = before
        && b < bound.as_str()
    {
        bound = b.to_owned();
    }
    bound
}

/// Merges shard results: newest first, at most `limit`, only entries still on `list` at `now`
/// (an index entry is the obligation as written; this drops nothing that is current).
pub(crate) fn merge_attention(
    list: AttentionList,
    now: Timestamp,
    mut entries: Vec<AttentionEntry>,
    limit: usize,
) -> Vec<AttentionEntry> {
    entries.retain(|e| match list {
        AttentionList::Overdue => e.obligation.is_overdue(now),
        AttentionList::NeedsPerson => e.obligation.state() == parkpay_domain::ObligationState::NeedsPerson,
    });
    entries.sort_by(|a, b| b.position.cmp(&a.position));
    entries.truncate(limit);
    entries
}

// ---------------------------------------------------------------------------------------------
// Scanning every session (the one-time sweep)

/// Where a scan stopped; opaque to callers (the store's own last key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanCursor {
    pub pk: String,
    pub sk: String,
}

/// One page of a scan: the sessions found in it (maybe none) and where to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    pub sessions: Vec<SessionId>,
    /// `None` when the whole table has been read.
    pub next: Option<ScanCursor>,
}

/// Every session in the store, page by page, for the one-time sweep of money owed that no
/// obligation tracks. A full read of the table: an operator's command, never a request path.
#[async_trait]
pub trait SessionScan: Send + Sync {
    /// The sessions among the next `page_items` items after `after` (from the start when
    /// `None`).
    async fn scan_sessions(&self, after: Option<&ScanCursor>, page_items: usize) -> Result<ScanPage, StoreError>;
}

/// The exclusive upper bound of sort keys for a page of a user's sessions after `cursor`.
pub(crate) fn sessions_before(cursor: Option<&str>) -> Result<String, StoreError> {
    match cursor {
        Some(c) => page::decode(page::Listing::Sessions, c),
        None => Ok("\u{10FFFF}".to_owned()),
    }
}

/// The exclusive lower bound of `GSI3SK` for a page of revoked passes: revoked at or after
/// `since` (every `{t:015}#…` with `t >= since` sorts above `{since:015}`), and after `cursor`.
pub(crate) fn revoked_after(since: Timestamp, cursor: Option<&str>) -> Result<String, StoreError> {
    let since = keys::due_gsi2sk_bound(since);
    Ok(match cursor {
        Some(c) => page::decode(page::Listing::Revoked, c)?.max(since),
        None => since,
    })
}

/// The page of `sessions` (each with its sort key, newest first, at most `limit`) and its cursor,
/// given whether more may follow.
pub(crate) fn session_page(sessions: Vec<(String, ParkingSession)>, more: bool) -> SessionPage {
    let next_cursor =
        if more { sessions.last().map(|(sk, _)| page::encode(page::Listing::Sessions, sk)) } else { None };
    SessionPage { sessions: sessions.into_iter().map(|(_, s)| s).collect(), next_cursor }
}

/// The page of `entries` (each with its `GSI3SK`, oldest first, at most `limit`) and its cursor,
/// given whether more may follow.
pub(crate) fn revoked_page(entries: Vec<(String, Revoked)>, more: bool) -> RevokedPage {
    let next_cursor = if more { entries.last().map(|(sk, _)| page::encode(page::Listing::Revoked, sk)) } else { None };
    RevokedPage { entries: entries.into_iter().map(|(_, r)| r).collect(), next_cursor }
}

/// Sorts merged shard results: earliest first, ties by target id.
pub(crate) fn sort_due(entries: &mut [DueEntry]) {
    entries.sort_by(|a, b| (a.due_at, &a.target_id).cmp(&(b.due_at, &b.target_id)));
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
