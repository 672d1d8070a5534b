//! The single-table key design, shared by both backends (see [`crate::dynamo`] for the table).
//!
//! Every key is built here and nowhere else, so DynamoDB and the embedded store cannot drift.

use parkpay_domain::{
    ObligationState, ParkingSession, Payment, PaymentId, Refund, RefundId, SessionId, SessionStatus, Timestamp, UserId,
    VehicleNumber,
};
use serde::{Deserialize, Serialize};

use crate::{AttentionList, DueEntry, LedgerState, Record, Revoked, SessionBundle, StoreError, TxnRef};

/// Partition key attribute of the table.
pub const PK: &str = "PK";
/// Sort key attribute of the table.
pub const SK: &str = "SK";
/// Partition key attribute of index [`GSI1`]: carried by an obligation on an attention list
/// where the due index cannot stand in for it ([`Record::attention_gsi1`]: `NEEDS_PERSON#{shard}`,
/// or `OVERDUE#{shard}` for an open one whose deadline comes first), and by a settlement ledger
/// entry (`LDAY#{date}#{shard}`, [`ledger_gsi1pk`]). Sessions carry none; those written by
/// earlier versions still carry `USER#{user_id}` (their user's list was on this index).
pub const GSI1PK: &str = "GSI1PK";
/// Sort key attribute of index [`GSI1`]: the obligation's position on its attention list, or the
/// ledger entry's in the ledger ([`ledger_position`]) (for sessions of earlier versions,
/// [`session_gsi1sk`]).
pub const GSI1SK: &str = "GSI1SK";
/// The attention index: obligations needing a person, and open ones whose deadline comes before
/// their next attempt is late (the rest of the overdue list is read from [`GSI2`]), in
/// [`DUE_SHARDS`] partitions each; and the settlement ledger by day in India, in
/// [`LEDGER_SHARDS`] partitions a day. A user's sessions are listed from items of their own
/// ([`user_list_key`]), not from this index.
pub const GSI1: &str = "GSI1";
/// Partition key attribute of index [`GSI2`]: open obligations (`DUE#{shard}`), and ledger
/// entries with PhonePe's transaction id (`PREF#{provider_txn_id}`, [`provider_ref_gsi2pk`]).
pub const GSI2PK: &str = "GSI2PK";
/// Sort key attribute of index [`GSI2`]: an open obligation's [`due_gsi2sk`], a ledger entry's
/// session id.
pub const GSI2SK: &str = "GSI2SK";
/// The due index (sparse): open obligations by the time of their next attempt, in
/// [`DUE_SHARDS`] partitions, for reconciliation; also where the overdue list finds the
/// obligations whose attempt is late ([`late_bound`]); and the ledger's search by PhonePe's
/// transaction id.
pub const GSI2: &str = "GSI2";
/// Partition key attribute of index [`GSI3`]: [`REVOKED_GSI3PK`], on a session item from the
/// first write that stores the session REFUNDED ([`revoked_index`]); `UTR#{utr}` on a ledger
/// entry with a UTR ([`utr_gsi3pk`]).
pub const GSI3PK: &str = "GSI3PK";
/// Sort key attribute of index [`GSI3`]: [`revoked_gsi3sk`], set once and never moved; a ledger
/// entry's session id.
pub const GSI3SK: &str = "GSI3SK";
/// The revoked passes (sparse, keys only): sessions a refund ended (REFUNDED), by when they
/// became so, in one partition (revocations are rare), for gates to poll; and the ledger's
/// search by UTR.
pub const GSI3: &str = "GSI3";
/// The one [`GSI3PK`] value of the revoked passes.
pub const REVOKED_GSI3PK: &str = "PASS_REVOKED";
/// Partition key attribute of index [`GSI4`]: [`vehicle_gsi4pk`], on a session item.
pub const GSI4PK: &str = "GSI4PK";
/// Sort key attribute of index [`GSI4`]: [`session_gsi1sk`] (`{created_at:015}#{session_id}`).
pub const GSI4SK: &str = "GSI4SK";
/// The sessions of a vehicle (keys only): `VEH#{vehicle}` by when they were booked, set once on
/// the session item ([`vehicle_index`]) and never moved.
pub const GSI4: &str = "GSI4";
/// How many partitions a day of the settlement ledger is spread over on [`GSI1`]
/// (`LDAY#{date}#00` … `#07`); an entry's shard is [`due_shard`]'s hash of its transaction id,
/// modulo this. At a stadium's peak of 2,000 final states a second that is 250 index writes a
/// second per partition, against DynamoDB's 1,000.
pub const LEDGER_SHARDS: u32 = 8;
/// Longest PhonePe transaction id or UTR the ledger indexes for search, in bytes (longer ones are
/// kept in the entry but not indexed).
pub const MAX_PROVIDER_REF_BYTES: usize = 256;
/// How many partitions the due index is spread over (`GSI2PK` = `DUE#00` … `DUE#31`); an
/// obligation's shard is a hash of its target's id. `docs/reconciliation.md` has the arithmetic.
pub const DUE_SHARDS: u32 = 32;
/// The [`GSI2PK`] value of items written by earlier versions for PENDING payments and refunds
/// (no longer written; never read).
pub const LEGACY_PENDING_GSI2PK: &str = "PENDING";
/// The table's TTL attribute: a Number of Unix **seconds**, carried by records that expire
/// (idempotency records). DynamoDB deletes such items some time after (up to days); it only
/// cleans up, and readers judge expiry from their own stored timestamps.
pub const TTL_ATTRIBUTE: &str = "expires_at_epoch";
/// Attribute of every item a commit writes conditionally in DynamoDB (records and transaction
/// pointers; not user-list entries): a token unique to that commit, so that the SDK's retry of
/// a single-item write that went through is told from a concurrent writer (the failed condition
/// returns the stored item, and with it the token). Never read into an entity.
pub const WRITE_TOKEN: &str = "write_token";
/// Attribute naming what an item is: [`Entity::as_str`].
pub const ENTITY: &str = "entity";
/// The version attribute of sessions, payments and refunds (a Number in DynamoDB).
pub const VERSION: &str = "version";

/// Sort key of the session item in its partition.
pub const SESSION_SK: &str = "#SESSION";
/// Sort key of a merchant-transaction-id pointer.
pub const TXN_SK: &str = "#TXN";
/// Sort key of an idempotency record.
pub const IDEMPOTENCY_SK: &str = "#IDEMPOTENCY";
/// Sort key prefix of a ledger entry in its transaction's partition: `#LEDGER#{state}`.
pub const LEDGER_SK_PREFIX: &str = "#LEDGER#";

pub(crate) const SESSION_PREFIX: &str = "SESSION#";
const PAYMENT_PREFIX: &str = "PAYMENT#";
const REFUND_PREFIX: &str = "REFUND#";
const OBLIGATION_PREFIX: &str = "OBLIGATION#";
const DUE_PREFIX: &str = "DUE#";
const OVERDUE_PREFIX: &str = "OVERDUE#";
const NEEDS_PERSON_PREFIX: &str = "NEEDS_PERSON#";
const TXN_PREFIX: &str = "TXN#";
pub(crate) const USER_PREFIX: &str = "USER#";
const IDEMPOTENCY_PREFIX: &str = "IDEMPOTENCY#";
const VEHICLE_PREFIX: &str = "VEH#";
const LEDGER_DAY_PREFIX: &str = "LDAY#";
const PROVIDER_REF_PREFIX: &str = "PREF#";
const UTR_PREFIX: &str = "UTR#";

/// `SESSION#{session_id}`: the partition of a session, its payments and its refunds.
pub fn session_pk(id: &SessionId) -> String {
    format!("{SESSION_PREFIX}{id}")
}

/// `PAYMENT#{payment_id}`.
pub fn payment_sk(id: &PaymentId) -> String {
    format!("{PAYMENT_PREFIX}{id}")
}

/// `REFUND#{refund_id}`.
pub fn refund_sk(id: &RefundId) -> String {
    format!("{REFUND_PREFIX}{id}")
}

/// `OBLIGATION#{target_id}`: an obligation, keyed by the payment or refund it is about.
pub fn obligation_sk(target_id: &str) -> String {
    format!("{OBLIGATION_PREFIX}{target_id}")
}

/// The due-index shard of the obligation about `target_id`: FNV-1a of the id, modulo
/// [`DUE_SHARDS`]. Stable: changing it strands index entries.
pub fn due_shard(target_id: &str) -> u32 {
    fnv1a(target_id) % DUE_SHARDS
}

/// FNV-1a, 32 bits.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// `DUE#{shard:02}`: [`GSI2PK`] of an open obligation.
pub fn due_gsi2pk(shard: u32) -> String {
    format!("{DUE_PREFIX}{shard:02}")
}

/// [`GSI1PK`] of an obligation on one of the attention lists: `OVERDUE#{shard:02}` (open) or
/// `NEEDS_PERSON#{shard:02}`, the shard being [`due_shard`] of its target.
pub fn attention_gsi1pk(list: AttentionList, shard: u32) -> String {
    let prefix = match list {
        AttentionList::Overdue => OVERDUE_PREFIX,
        AttentionList::NeedsPerson => NEEDS_PERSON_PREFIX,
    };
    format!("{prefix}{shard:02}")
}

/// `TXN#{merchant_txn_id}`: the pointer from a payment or refund id to its session.
pub fn txn_pk(merchant_txn_id: &str) -> String {
    format!("{TXN_PREFIX}{merchant_txn_id}")
}

/// `USER#{user_id}`: the partition of a user's list of sessions (the user-list items' `PK`;
/// [`GSI1PK`] of sessions written before user-list items existed).
pub fn user_gsi1pk(user: &UserId) -> String {
    format!("{USER_PREFIX}{user}")
}

/// `{created_at unix ms, 15 digits}#{session_id}`: the sort key of a session's entry in its
/// user's list (the user-list item's `SK` in DynamoDB; [`GSI1SK`] of sessions written before
/// user-list items existed). 15 digits hold
/// [`Timestamp::MAX`], so text order is time order; the id breaks ties.
pub fn session_gsi1sk(created_at: Timestamp, id: &SessionId) -> String {
    format!("{:015}#{id}", created_at.unix_millis())
}

/// `{revoked_at unix ms, 15 digits}#{session_id}`: [`GSI3SK`] of a session whose pass was revoked
/// at `revoked_at` (when it became REFUNDED). Text order is time order; the id breaks ties.
pub fn revoked_gsi3sk(revoked_at: Timestamp, id: &SessionId) -> String {
    session_gsi1sk(revoked_at, id)
}

/// `(GSI3PK, GSI3SK)` a write of `session` carries when the session is REFUNDED (a refund ended
/// it, and so revoked its entry pass): revoked at its `updated_at`. Only the first such write
/// sets them (DynamoDB: `if_not_exists`; the embedded store: only when the session has no entry
/// yet), so later writes of the session (a gate's scan, say) do not move the entry: it stays at
/// the time of the write that made the session REFUNDED. `None` for any other status.
pub fn revoked_index(session: &ParkingSession) -> Option<(String, String)> {
    (session.status() == SessionStatus::Refunded)
        .then(|| (REVOKED_GSI3PK.to_owned(), revoked_gsi3sk(session.updated_at(), session.id())))
}

/// `{next_attempt_at unix ms, 15 digits}#OBLIGATION#{target_id}`: [`GSI2SK`] of an open
/// obligation whose sort key is `sk`. Text order is due order; the target breaks ties.
pub fn due_gsi2sk(due_at: Timestamp, sk: &str) -> String {
    format!("{:015}#{sk}", due_at.unix_millis())
}

/// How late an attempt makes an open obligation overdue, in ms
/// ([`parkpay_domain::obligation::LATE_ATTEMPT_OVERDUE_SECS`]).
pub const LATE_MS: i64 = parkpay_domain::obligation::LATE_ATTEMPT_OVERDUE_SECS * 1000;

/// The due-index bound ([`GSI2SK`] `<` it) of the open obligations whose lateness position
/// (`{next_attempt_at + LATE:015}#OBLIGATION#{target}`) is below the attention-list bound
/// `bound` (a position, or its 15-digit time alone): the time part moved back by
/// [`LATE_MS`], the rest kept, so text order still matches. `None` when no time is that
/// early; an unreadable bound is read as "everything".
pub fn late_bound(bound: &str) -> Option<String> {
    let (time, rest) = match bound.split_at_checked(15) {
        Some((t, rest)) if t.bytes().all(|b| b.is_ascii_digit()) => (t, rest),
        _ => return Some("\u{10FFFF}".to_owned()),
    };
    let t: i64 = time.parse().ok()?;
    let moved = t.checked_sub(LATE_MS).filter(|m| *m >= 0)?;
    Some(format!("{moved:015}{rest}"))
}

/// The exclusive upper bound of [`GSI2SK`] for "due before `t`": every [`due_gsi2sk`] of a
/// time `< t` sorts below it, every one of a time `>= t` above it.
pub fn due_gsi2sk_bound(t: Timestamp) -> String {
    format!("{:015}", t.unix_millis())
}

/// The key of a session's entry in its user's list: `USER#{user_id}` /
/// `{created_at:015}#{session_id}` (DynamoDB keeps it as an item of its own, so that changing a
/// session never rewrites an index entry).
pub fn user_list_key(session: &ParkingSession) -> ItemKey {
    ItemKey { pk: user_gsi1pk(session.user_id()), sk: session_gsi1sk(session.created_at(), session.id()) }
}

/// `VEH#{vehicle}`: [`GSI4PK`] of the sessions of a vehicle (its canonical registration number).
pub fn vehicle_gsi4pk(vehicle: &VehicleNumber) -> String {
    format!("{VEHICLE_PREFIX}{vehicle}")
}

/// `(GSI4PK, GSI4SK)` of a session item: its vehicle, and when it was booked
/// (`{created_at:015}#{session_id}`). Neither ever changes, so the entry is written once, with
/// the session's insert (DynamoDB: `if_not_exists` on later writes, which gives sessions of
/// earlier versions theirs at their next write without moving anyone's).
pub fn vehicle_index(session: &ParkingSession) -> (String, String) {
    (vehicle_gsi4pk(session.vehicle()), session_gsi1sk(session.created_at(), session.id()))
}

/// The primary key of the ledger entry of transaction `merchant_txn_id` reaching `state`:
/// `TXN#{merchant_txn_id}` / `#LEDGER#{state}` (beside the transaction's pointer). One item per
/// transaction and final state, so that writing it again changes nothing.
pub fn ledger_key(merchant_txn_id: &str, state: LedgerState) -> ItemKey {
    ItemKey { pk: txn_pk(merchant_txn_id), sk: format!("{LEDGER_SK_PREFIX}{}", state.as_str()) }
}

/// The ledger shard of transaction `merchant_txn_id`: [`due_shard`]'s hash modulo
/// [`LEDGER_SHARDS`]. Stable: changing it strands index entries.
pub fn ledger_shard(merchant_txn_id: &str) -> u32 {
    fnv1a(merchant_txn_id) % LEDGER_SHARDS
}

/// `LDAY#{date}#{shard:02}`: [`GSI1PK`] of the ledger entries of one IST date
/// (`YYYY-MM-DD`, [`ist_date`]) in one shard.
pub fn ledger_gsi1pk(date: &str, shard: u32) -> String {
    format!("{LEDGER_DAY_PREFIX}{date}#{shard:02}")
}

/// `{final_at:015}#{merchant_txn_id}#{state}`: [`GSI1SK`] of a ledger entry, its position in the
/// ledger (time order, then transaction id, then state; unique).
pub fn ledger_position(final_at: Timestamp, merchant_txn_id: &str, state: LedgerState) -> String {
    format!("{:015}#{merchant_txn_id}#{}", final_at.unix_millis(), state.as_str())
}

/// `PREF#{provider_txn_id}`: [`GSI2PK`] of a ledger entry with PhonePe's transaction id.
pub fn provider_ref_gsi2pk(provider_txn_id: &str) -> String {
    format!("{PROVIDER_REF_PREFIX}{provider_txn_id}")
}

/// `UTR#{utr}`: [`GSI3PK`] of a ledger entry with a UTR.
pub fn utr_gsi3pk(utr: &str) -> String {
    format!("{UTR_PREFIX}{utr}")
}

/// Whether a PhonePe transaction id or UTR is indexed for search (1..=[`MAX_PROVIDER_REF_BYTES`]
/// bytes).
pub fn indexable_ref(reference: &str) -> bool {
    (1..=MAX_PROVIDER_REF_BYTES).contains(&reference.len())
}

/// India's offset from UTC (+05:30), in ms.
const IST_OFFSET_MS: i64 = 19_800_000;
const DAY_MS: i64 = 86_400_000;

/// The date in India (UTC+05:30) at `t`, `YYYY-MM-DD`: the day of the ledger an entry final at
/// `t` belongs to.
pub fn ist_date(t: Timestamp) -> String {
    date_of_day(ist_day(t))
}

/// Days since 1970-01-01 in India at `t`.
pub(crate) fn ist_day(t: Timestamp) -> i64 {
    (t.unix_millis() + IST_OFFSET_MS).div_euclid(DAY_MS)
}

/// `YYYY-MM-DD` of day `days` since 1970-01-01 (proleptic Gregorian; H. Hinnant's
/// `civil_from_days`).
pub(crate) fn date_of_day(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `IDEMPOTENCY#{key}`: the partition of an idempotency record (sort key [`IDEMPOTENCY_SK`]).
pub fn idempotency_pk(key: &str) -> String {
    format!("{IDEMPOTENCY_PREFIX}{key}")
}

/// The primary key of the idempotency record `key`.
pub fn idempotency_key(key: &str) -> ItemKey {
    ItemKey { pk: idempotency_pk(key), sk: IDEMPOTENCY_SK.to_owned() }
}

/// What an item is; the value of the [`ENTITY`] attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Session,
    Payment,
    Refund,
    Obligation,
    Txn,
    Idempotency,
    /// A session's entry in its user's list (DynamoDB).
    UserSession,
    /// The deployment's shared OAuth token ([`crate::TokenStore`]).
    Token,
    /// A settlement ledger entry ([`crate::LedgerEntry`]).
    Ledger,
}

impl Entity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Entity::Session => "SESSION",
            Entity::Payment => "PAYMENT",
            Entity::Refund => "REFUND",
            Entity::Obligation => "OBLIGATION",
            Entity::Txn => "TXN",
            Entity::Idempotency => "IDEMPOTENCY",
            Entity::UserSession => "USER_SESSION",
            Entity::Token => "TOKEN",
            Entity::Ledger => "LEDGER",
        }
    }
}

/// The primary key of one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemKey {
    pub pk: String,
    pub sk: String,
}

impl std::fmt::Display for ItemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.pk, self.sk)
    }
}

impl Record {
    /// What this record is stored as.
    pub fn entity(&self) -> Entity {
        match self {
            Record::Session(_) => Entity::Session,
            Record::Payment(_) => Entity::Payment,
            Record::Refund(_) => Entity::Refund,
            Record::Obligation(_) => Entity::Obligation,
        }
    }

    /// The record's primary key.
    pub fn key(&self) -> ItemKey {
        let pk = session_pk(self.session_id());
        let sk = match self {
            Record::Session(_) => SESSION_SK.to_owned(),
            Record::Payment(p) => payment_sk(p.id()),
            Record::Refund(r) => refund_sk(r.id()),
            Record::Obligation(o) => obligation_sk(o.target_id()),
        };
        ItemKey { pk, sk }
    }

    /// `(GSI2PK, GSI2SK)` of this record while it belongs in the due index: an open
    /// obligation. `None` for everything else.
    pub fn due_index(&self) -> Option<(String, String)> {
        match self {
            Record::Obligation(o) if o.is_open() => Some((
                due_gsi2pk(due_shard(o.target_id())),
                due_gsi2sk(o.next_attempt_at(), &obligation_sk(o.target_id())),
            )),
            _ => None,
        }
    }

    /// `(GSI1PK, GSI1SK)` of this record while it is on an attention list: an open obligation
    /// under `OVERDUE#{shard}` at the time it is (or will be) overdue
    /// ([`Obligation::overdue_from`](parkpay_domain::Obligation::overdue_from)), one needing a
    /// person under `NEEDS_PERSON#{shard}` at the time it came to need one; the sort key is
    /// `{time:015}#OBLIGATION#{target_id}`, its position in the list. `None` for everything
    /// else. This is the entry the embedded store keeps; DynamoDB writes only those of
    /// [`Record::attention_gsi1`].
    pub fn attention_index(&self) -> Option<(String, String)> {
        let Record::Obligation(o) = self else { return None };
        let (list, at) = match o.state() {
            ObligationState::Open => (AttentionList::Overdue, o.overdue_from()),
            ObligationState::NeedsPerson => (AttentionList::NeedsPerson, o.updated_at()),
            ObligationState::Done => return None,
        };
        Some((attention_gsi1pk(list, due_shard(o.target_id())), due_gsi2sk(at, &obligation_sk(o.target_id()))))
    }

    /// `(GSI1PK, GSI1SK)` DynamoDB writes on this record: its place on an attention list where
    /// the due index cannot stand in for it. An open obligation is overdue from the earlier of
    /// its deadline and its next attempt + [`LATE_MS`]: when the latter comes
    /// first (most of the time: every new payment check and refund), the due index already holds
    /// it at its next attempt ([`Record::due_index`]) and the overdue list reads it from there
    /// ([`late_bound`]); only an open obligation whose deadline comes first carries `OVERDUE`
    /// keys. One needing a person always carries its `NEEDS_PERSON` keys. So creating and ending
    /// a payment's check, and each attempt that moves it, write no `GSI1` entry at all.
    pub fn attention_gsi1(&self) -> Option<(String, String)> {
        let Record::Obligation(o) = self else { return None };
        if o.state() == ObligationState::Open && o.overdue_from() != o.due_by() {
            return None;
        }
        self.attention_index()
    }

    /// The pointer an insert of this record also writes (payments and refunds only).
    pub(crate) fn txn_pointer(&self) -> Option<(ItemKey, TxnPointer)> {
        let (kind, id) = match self {
            Record::Session(_) | Record::Obligation(_) => return None,
            Record::Payment(p) => (TxnKind::Payment, p.id().as_str()),
            Record::Refund(r) => (TxnKind::Refund, r.id().as_str()),
        };
        let key = ItemKey { pk: txn_pk(id), sk: TXN_SK.to_owned() };
        Some((key, TxnPointer { kind, session_id: self.session_id().clone(), id: id.to_owned() }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum TxnKind {
    Payment,
    Refund,
}

impl TxnKind {
    /// As stored: `PAYMENT` | `REFUND`.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            TxnKind::Payment => "PAYMENT",
            TxnKind::Refund => "REFUND",
        }
    }
}

/// The attributes of a pointer item (besides keys and `entity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TxnPointer {
    pub kind: TxnKind,
    pub session_id: SessionId,
    pub id: String,
}

impl TxnPointer {
    /// The pointer stored under `TXN#{looked_up}` as a [`TxnRef`], checked against its key.
    pub(crate) fn into_ref(self, looked_up: &str) -> Result<TxnRef, StoreError> {
        if self.id != looked_up {
            return Err(corrupt(format!("pointer {} names transaction {:?}", txn_pk(looked_up), self.id)));
        }
        let bad_id = |_| corrupt(format!("pointer {} holds an invalid id", txn_pk(looked_up)));
        Ok(match self.kind {
            TxnKind::Payment => {
                TxnRef::Payment { session_id: self.session_id, payment_id: PaymentId::parse(&self.id).map_err(bad_id)? }
            }
            TxnKind::Refund => {
                TxnRef::Refund { session_id: self.session_id, refund_id: RefundId::parse(&self.id).map_err(bad_id)? }
            }
        })
    }
}

pub(crate) fn corrupt(msg: impl Into<String>) -> StoreError {
    StoreError::Corrupt(msg.into())
}

/// A merchant transaction id that no payment or refund can have (so need not be looked up).
pub(crate) fn impossible_txn_id(merchant_txn_id: &str) -> bool {
    // Payment and refund ids follow the same rule.
    PaymentId::parse(merchant_txn_id).is_err()
}

/// Collects the items of one session partition, checking each against its key, into a bundle.
#[derive(Default)]
pub(crate) struct BundleBuilder {
    keys: std::collections::HashSet<String>,
    session: Option<ParkingSession>,
    payments: Vec<Payment>,
    refunds: Vec<Refund>,
    obligations: Vec<parkpay_domain::Obligation>,
}

/// Which entity a sort key in a session partition names.
pub(crate) fn entity_of_sk(sk: &str) -> Option<Entity> {
    if sk == SESSION_SK {
        Some(Entity::Session)
    } else if sk.starts_with(PAYMENT_PREFIX) {
        Some(Entity::Payment)
    } else if sk.starts_with(REFUND_PREFIX) {
        Some(Entity::Refund)
    } else if sk.starts_with(OBLIGATION_PREFIX) {
        Some(Entity::Obligation)
    } else {
        None
    }
}

impl BundleBuilder {
    /// Add an item read from partition `session_pk(id)` under sort key `sk`.
    pub(crate) fn add(&mut self, id: &SessionId, sk: &str, record: Record) -> Result<(), StoreError> {
        let expected = ItemKey { pk: session_pk(id), sk: sk.to_owned() };
        if record.key() != expected {
            return Err(corrupt(format!("item {expected} holds a record whose key is {}", record.key())));
        }
        if !self.keys.insert(sk.to_owned()) {
            return Err(corrupt(format!("record {expected} is stored twice")));
        }
        match record {
            Record::Session(s) => self.session = Some(s),
            Record::Payment(p) => self.payments.push(p),
            Record::Refund(r) => self.refunds.push(r),
            Record::Obligation(o) => self.obligations.push(o),
        }
        Ok(())
    }

    /// The bundle, each list oldest first (ties by id); `None` without a session item.
    pub(crate) fn finish(self) -> Option<SessionBundle> {
        let BundleBuilder { session, mut payments, mut refunds, mut obligations, .. } = self;
        payments.sort_by(|a, b| (a.created_at(), a.id()).cmp(&(b.created_at(), b.id())));
        refunds.sort_by(|a, b| (a.created_at(), a.id()).cmp(&(b.created_at(), b.id())));
        obligations.sort_by(|a, b| (a.created_at(), a.target_id()).cmp(&(b.created_at(), b.target_id())));
        session.map(|session| SessionBundle { session, payments, refunds, obligations })
    }
}

/// The due-index entry with table keys `pk` / `sk` and index sort key `gsi2sk`, checked for
/// agreement (`gsi2sk` must be `{due_at:015}#{sk}`, `sk` an obligation's; or, for a session
/// item's entry, `{due_at:015}#OBLIGATION#{target_id}` of the obligation embedded in it).
pub(crate) fn due_from_index(pk: &str, sk: &str, gsi2sk: &str) -> Result<DueEntry, StoreError> {
    let bad = || corrupt(format!("due index entry {gsi2sk:?} for item {pk} / {sk}"));
    let (millis, tail) = gsi2sk.split_at_checked(15).ok_or_else(bad)?;
    let indexed = tail.strip_prefix('#');
    // A session item carries the entry of the one open obligation embedded in it.
    let sk = if sk == SESSION_SK { indexed.filter(|t| t.starts_with(OBLIGATION_PREFIX)).ok_or_else(bad)? } else { sk };
    if indexed != Some(sk) || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let due_at = millis.parse().ok().and_then(|ms| Timestamp::from_unix_millis(ms).ok()).ok_or_else(bad)?;
    let session_id = pk.strip_prefix(SESSION_PREFIX).and_then(|id| SessionId::parse(id).ok()).ok_or_else(bad)?;
    let target_id = sk.strip_prefix(OBLIGATION_PREFIX).filter(|id| !impossible_txn_id(id)).ok_or_else(bad)?;
    Ok(DueEntry { session_id, target_id: target_id.to_owned(), due_at })
}

/// Whether `position` is a well-formed attention-list position (`{ms:015}#OBLIGATION#{id}`),
/// as a client hands one back in a cursor.
pub fn is_attention_position(position: &str) -> bool {
    let Some((millis, tail)) = position.split_at_checked(15) else { return false };
    millis.bytes().all(|b| b.is_ascii_digit())
        && tail
            .strip_prefix('#')
            .and_then(|sk| sk.strip_prefix(OBLIGATION_PREFIX))
            .is_some_and(|id| !impossible_txn_id(id))
}

/// The revocation an index entry names: `GSI3SK` `{revoked_at:015}#{session_id}` on the item
/// with partition key `pk`, which must be that session's.
pub(crate) fn revoked_from_index(pk: &str, gsi3sk: &str) -> Result<Revoked, StoreError> {
    let bad = || corrupt(format!("revoked-pass entry {gsi3sk:?} for item {pk}"));
    let (revoked_at, session_id) = crate::page::parse_position(gsi3sk).ok_or_else(bad)?;
    if pk != session_pk(&session_id) {
        return Err(bad());
    }
    Ok(Revoked { session_id, revoked_at })
}

/// The session a vehicle-index entry names: `GSI4SK` `{created_at:015}#{session_id}` on the item
/// with partition key `pk`, which must be that session's.
pub(crate) fn vehicle_from_index(pk: &str, gsi4sk: &str) -> Result<SessionId, StoreError> {
    let bad = || corrupt(format!("vehicle index entry {gsi4sk:?} for item {pk}"));
    let (_, session_id) = crate::page::parse_position(gsi4sk).ok_or_else(bad)?;
    if pk != session_pk(&session_id) {
        return Err(bad());
    }
    Ok(session_id)
}

/// Checks a session read from the list of `user` (its user-list entries, or `GSI1` for sessions
/// of earlier versions).
pub(crate) fn check_listed(user: &UserId, session: &ParkingSession) -> Result<(), StoreError> {
    if session.user_id() != user {
        return Err(corrupt(format!("session {} is indexed under another user", session.id())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_formats() {
        let s = SessionId::from_random([0; 16]);
        assert_eq!(session_pk(&s), "SESSION#ps_00000000000000000000000000");
        assert_eq!(payment_sk(&PaymentId::parse("PP1").unwrap()), "PAYMENT#PP1");
        assert_eq!(refund_sk(&RefundId::parse("RF1").unwrap()), "REFUND#RF1");
        assert_eq!(txn_pk("PP1"), "TXN#PP1");
        assert_eq!(user_gsi1pk(&UserId::parse("u-1").unwrap()), "USER#u-1");
        let t = Timestamp::from_unix_millis(1_795_802_400_123).unwrap();
        assert_eq!(session_gsi1sk(t, &s), "001795802400123#ps_00000000000000000000000000");
        assert_eq!(session_gsi1sk(Timestamp::MAX, &s).len(), 15 + 1 + SessionId::LEN);
        assert!(session_gsi1sk(Timestamp::UNIX_EPOCH, &s) < session_gsi1sk(t, &s));
        assert_eq!(due_gsi2sk(t, "OBLIGATION#PP1"), "001795802400123#OBLIGATION#PP1");
        assert_eq!(due_gsi2sk_bound(t), "001795802400123");
        assert_eq!(obligation_sk("RF1"), "OBLIGATION#RF1");
        assert_eq!(due_gsi2pk(7), "DUE#07");
        assert_eq!(idempotency_pk("u-1#POST /x#k"), "IDEMPOTENCY#u-1#POST /x#k");
        assert_eq!(idempotency_key("k").sk, "#IDEMPOTENCY");
        assert_eq!(vehicle_gsi4pk(&VehicleNumber::parse("ka01ab1234").unwrap()), "VEH#KA-01-AB-1234");
        assert_eq!(
            ledger_key("PP1", LedgerState::Success),
            ItemKey { pk: "TXN#PP1".into(), sk: "#LEDGER#SUCCESS".into() }
        );
        assert_eq!(ledger_key("RF1", LedgerState::Failed).sk, "#LEDGER#FAILED");
        assert_eq!(ledger_gsi1pk("2026-12-01", 7), "LDAY#2026-12-01#07");
        assert_eq!(ledger_position(t, "PP1", LedgerState::Failed), "001795802400123#PP1#FAILED");
        assert_eq!(provider_ref_gsi2pk("T1"), "PREF#T1");
        assert_eq!(utr_gsi3pk("U1"), "UTR#U1");
        assert!(indexable_ref("U") && indexable_ref(&"u".repeat(MAX_PROVIDER_REF_BYTES)));
        assert!(!indexable_ref("") && !indexable_ref(&"u".repeat(MAX_PROVIDER_REF_BYTES + 1)));
        // The ledger's entries never share a partition with a session's items or a pointer's key.
        assert_eq!(entity_of_sk("#LEDGER#SUCCESS"), None);
    }

    #[test]
    fn ledger_shards_are_stable_and_spread() {
        // Stable: changing the hash would strand index entries.
        assert_eq!(ledger_shard(""), 0x811c_9dc5 % LEDGER_SHARDS);
        let mut counts = [0u32; LEDGER_SHARDS as usize];
        for n in 0..8_000 {
            counts[ledger_shard(&format!("PP{n:026}")) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
    }

    #[test]
    fn due_bound_orders_by_time_only() {
        let t = |ms| Timestamp::from_unix_millis(ms).unwrap();
        let bound = due_gsi2sk_bound(t(5_000));
        assert!(due_gsi2sk(t(4_999), "OBLIGATION#ZZZZ") < bound);
        assert!(due_gsi2sk(t(5_000), "OBLIGATION#0") > bound);
        assert!(due_gsi2sk(Timestamp::MAX, "OBLIGATION#0") > due_gsi2sk_bound(t(5_000)));
        assert!(due_gsi2sk(t(0), "OBLIGATION#0") >= due_gsi2sk_bound(t(0)));
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // Stable: changing the hash would strand index entries.
        assert_eq!(due_shard(""), 0x811c_9dc5 % DUE_SHARDS);
        assert_eq!(due_shard("PP1"), due_shard("PP1"));
        let mut counts = [0u32; DUE_SHARDS as usize];
        for n in 0..32_000 {
            counts[due_shard(&format!("PP{n:030}")) as usize] += 1;
        }
        // 1,000 expected per shard: none far off.
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
    }

    #[test]
    fn due_entries_parse_and_are_checked() {
        let s = SessionId::from_random([0; 16]);
        let pk = session_pk(&s);
        let t = Timestamp::from_unix_millis(42).unwrap();
        let entry = due_from_index(&pk, "OBLIGATION#RF1", &due_gsi2sk(t, "OBLIGATION#RF1")).unwrap();
        assert_eq!(entry, DueEntry { session_id: s.clone(), target_id: "RF1".into(), due_at: t });
        for (pk, sk, gsi2sk) in [
            (pk.as_str(), "OBLIGATION#PP1", "000000000000042#OBLIGATION#PP2"),
            (pk.as_str(), "OBLIGATION#PP1", "00000000000042#OBLIGATION#PP1"),
            (pk.as_str(), "OBLIGATION#PP1", "+00000000000042#OBLIGATION#PP1"),
            (pk.as_str(), "OBLIGATION#PP1", "999999999999999#OBLIGATION#PP1"),
            (pk.as_str(), "PAYMENT#PP1", "000000000000042#PAYMENT#PP1"),
            (pk.as_str(), "OBLIGATION#a b", "000000000000042#OBLIGATION#a b"),
            ("TXN#PP1", "OBLIGATION#PP1", "000000000000042#OBLIGATION#PP1"),
            (pk.as_str(), "OBLIGATION#PP1", ""),
            (pk.as_str(), "OBLIGATION#PP1", "é"),
        ] {
            assert!(matches!(due_from_index(pk, sk, gsi2sk), Err(StoreError::Corrupt(_))), "{gsi2sk:?}");
        }
    }

    #[test]
    fn revoked_entries_parse_and_are_checked() {
        let s = SessionId::from_random([0; 16]);
        let t = Timestamp::from_unix_millis(42).unwrap();
        assert_eq!(revoked_gsi3sk(t, &s), "000000000000042#ps_00000000000000000000000000");
        let entry = revoked_from_index(&session_pk(&s), &revoked_gsi3sk(t, &s)).unwrap();
        assert_eq!(entry, Revoked { session_id: s.clone(), revoked_at: t });
        let other = SessionId::from_random([1; 16]);
        for (pk, sk) in [
            (session_pk(&other), revoked_gsi3sk(t, &s)),
            (format!("USER#{s}"), revoked_gsi3sk(t, &s)),
            (session_pk(&s), format!("42#{s}")),
            (session_pk(&s), format!("999999999999999#{s}")),
            (session_pk(&s), "000000000000042#nope".to_owned()),
            (session_pk(&s), String::new()),
        ] {
            assert!(matches!(revoked_from_index(&pk, &sk), Err(StoreError::Corrupt(_))), "{pk} {sk}");
        }
    }

    #[test]
    fn sort_keys_classify() {
        assert_eq!(entity_of_sk("#SESSION"), Some(Entity::Session));
        assert_eq!(entity_of_sk("PAYMENT#PP1"), Some(Entity::Payment));
        assert_eq!(entity_of_sk("REFUND#RF1"), Some(Entity::Refund));
        assert_eq!(entity_of_sk("OBLIGATION#RF1"), Some(Entity::Obligation));
        assert_eq!(entity_of_sk("#TXN"), None);
        assert_eq!(entity_of_sk("OTHER#1"), None);
    }

    #[test]
    fn impossible_ids() {
        assert!(impossible_txn_id(""));
        assert!(impossible_txn_id(&"x".repeat(35)));
        assert!(impossible_txn_id("a b"));
        assert!(!impossible_txn_id("PP1"));
    }
}
