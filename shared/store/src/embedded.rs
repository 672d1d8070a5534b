//! [`Store`] on an embedded database ([redb]: pure Rust, ACID, one file), for running parkpay
//! locally without AWS. Same semantics as [`crate::dynamo`], same keys ([`crate::keys`]).
//!
//! # Layout
//! - Table `items`: key `(PK, SK)` (the DynamoDB item's keys), value the item's attributes as a
//!   JSON object (the entity's serde fields plus `entity`), e.g. `("SESSION#ps_…", "#SESSION")`,
//!   `("SESSION#ps_…", "PAYMENT#PP…")`, `("TXN#PP…", "#TXN")`.
//! - Table `by_user`: key `("USER#{user}", "{created_at:015}#{session_id}")`, the key of the
//!   session's user-list item on DynamoDB ([`crate::keys::user_list_key`]), value the session's
//!   `PK`; maintained in the same transaction as the session.
//! - Table `due`: key `(GSI2PK, GSI2SK)` = `("DUE#{shard}", "{next_attempt_at:015}#{SK}")`, value
//!   the item's `(PK, SK)`: index `GSI2`, holding an obligation exactly while it is open,
//!   maintained in the same transaction as the record. (Databases written by earlier versions
//!   also hold a table `pending` of PENDING payments and refunds, no longer read.)
//! - Table `attention`: key `(GSI1PK, GSI1SK)` of an obligation on an attention list
//!   (`("OVERDUE#{shard}" | "NEEDS_PERSON#{shard}", "{time:015}#{SK}")`, see
//!   [`Record::attention_index`]), value the item's `(PK, SK)`, maintained in the same transaction
//!   as the record. It holds every open obligation's `OVERDUE` entry, where DynamoDB puts on
//!   `GSI1` only those whose deadline comes first and reads the others from the due index: the
//!   lists are the same.
//! - Table `revoked`: key `(GSI3PK, GSI3SK)` = `("PASS_REVOKED", "{revoked_at:015}#{session_id}")`,
//!   value the session item's `(PK, SK)`: index `GSI3`, the revoked passes
//!   ([`Store::list_revoked`]). Table `revoked_of`: key a session's `PK`, value its `GSI3SK`
//!   (what the DynamoDB session item's own `GSI3` keys say: whether it has its entry). A session
//!   written REFUNDED enters both, at its `updated_at`, in the same transaction, unless it is in
//!   them already: the entry never moves (DynamoDB's `if_not_exists`).
//! - Table `by_vehicle`: key `(GSI4PK, GSI4SK)` =
//!   `("VEH#{vehicle}", "{created_at:015}#{session_id}")`, value the session's `PK`: index
//!   `GSI4`, the sessions of a vehicle ([`Store::sessions_by_vehicle`]), written with the session
//!   (and again, unchanged, with each write of it: sessions of databases written before the index
//!   get theirs so).
//! - Settlement ledger entries ([`crate::ledger`]) live in `items` under
//!   `("TXN#{merchant_txn_id}", "#LEDGER#{state}")`, the same attributes as on DynamoDB (JSON),
//!   written by the commit that moves a payment or refund into that final state (compared with
//!   the stored record read in the same transaction; an insert of a record already final counts),
//!   only where none is, so the first stays. Table `ledger`: key `(GSI1PK, GSI1SK)` =
//!   `("LDAY#{IST date}#{shard}", "{final_at:015}#{txn}#{state}")`, value the entry's `(PK, SK)`:
//!   the day index ([`Store::list_ledger`]). Table `refs`: key `("PREF#{provider_txn_id}" |
//!   "UTR#{utr}", PK)`, value the entry's `SK` and session id: the search
//!   ([`Store::find_by_provider_ref`]).
//! - Idempotency records live in `items` under `("IDEMPOTENCY#{key}", "#IDEMPOTENCY")`, as the
//!   same attributes as on DynamoDB (JSON). Each operation on one is one write transaction: read,
//!   decide, write. Nothing removes dead records (no TTL here); the next acquire overwrites one.
//!
//! A commit is one redb write transaction: every condition is checked and every write applied
//! inside it, and it commits only if all conditions hold (redb runs one write transaction at a
//! time, so checks and writes cannot interleave with another commit). Reads use a read
//! transaction (a consistent snapshot). Commits are durable when they return (fsync).
//!
//! One difference on damaged data only: an update over a stored record that does not read back
//! is refused here as [`StoreError::Corrupt`] (the old record is needed to move its index
//! entries), where DynamoDB would check the `version` attribute alone.
//!
//! redb is blocking: each operation runs on tokio's blocking pool.
//!
//! [redb]: https://docs.rs/redb

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use parkpay_domain::{ParkingSession, SessionId, Timestamp, UserId, VehicleNumber};
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::idempotency::{self as idem, Completion, IdempotencyItem};
use crate::keys::{
    BundleBuilder, DUE_SHARDS, ENTITY, Entity, ItemKey, LEDGER_SHARDS, REVOKED_GSI3PK, SESSION_SK, TXN_SK, TxnPointer,
    attention_gsi1pk, corrupt, due_from_index, due_gsi2pk, due_gsi2sk_bound, entity_of_sk, idempotency_key,
    indexable_ref, ledger_gsi1pk, provider_ref_gsi2pk, revoked_from_index, revoked_index, session_gsi1sk, session_pk,
    txn_pk, user_gsi1pk, utr_gsi3pk, vehicle_from_index, vehicle_gsi4pk, vehicle_index,
};
use crate::ledger::{
    LedgerRange, MAX_REF_MATCHES, add_day, ledger_page, ledger_range, ref_from_index, sort_refs, status_of,
};
use crate::token::{self, TokenItem, token_key};
use crate::{
    Acquire, AttentionEntry, AttentionIndex, AttentionList, DueEntry, IdempotencyRecord, IdempotencyStore, LedgerEntry,
    LedgerPage, PendingIndex, Record, RevokedPage, ScanCursor, ScanPage, SessionBundle, SessionPage, SessionScan,
    Store, StoreError, StoredResponse, StoredToken, TokenState, TokenStore, TxnRef, Write, validate_commit,
};

const ITEMS: TableDefinition<(&str, &str), &str> = TableDefinition::new("items");
const BY_USER: TableDefinition<(&str, &str), &str> = TableDefinition::new("by_user");
const DUE: TableDefinition<(&str, &str), (&str, &str)> = TableDefinition::new("due");
const ATTENTION: TableDefinition<(&str, &str), (&str, &str)> = TableDefinition::new("attention");
const REVOKED: TableDefinition<(&str, &str), (&str, &str)> = TableDefinition::new("revoked");
const REVOKED_OF: TableDefinition<&str, &str> = TableDefinition::new("revoked_of");
const BY_VEHICLE: TableDefinition<(&str, &str), &str> = TableDefinition::new("by_vehicle");
const LEDGER: TableDefinition<(&str, &str), (&str, &str)> = TableDefinition::new("ledger");
const REFS: TableDefinition<(&str, &str), (&str, &str)> = TableDefinition::new("refs");

/// Above every sort key we write (they are ASCII).
const MAX_SK: &str = "\u{10FFFF}";

/// The store in one redb file. Cheap to clone (the database is shared).
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").field("path", &self.path).finish_non_exhaustive()
    }
}

fn db_error(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(msg) => StoreError::Corrupt(format!("embedded database: {msg}")),
        e => StoreError::Unavailable(format!("embedded database: {e}")),
    }
}

impl EmbeddedStore {
    /// Opens the database at `path`, creating it (and its parent directories) if absent. Blocks
    /// briefly (file I/O, recovery after a crash): call it at startup. Only one `EmbeddedStore`
    /// per file at a time.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot create directory {} for the embedded database: {e}",
                    parent.display()
                ))
            })?;
        }
        let db = Database::create(&path).map_err(|e| {
            let msg = match &e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    format!("embedded database {shown} is already open (by this or another process)")
                }
                e => format!("cannot open embedded database {shown}: {e}"),
            };
            match e {
                redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)) => StoreError::Corrupt(msg),
                _ => StoreError::Unavailable(msg),
            }
        })?;
        // Create the tables once, so that read transactions always find them.
        let init = || -> Result<Result<(), StoreError>, redb::Error> {
            let txn = db.begin_write()?;
            txn.open_table(ITEMS)?;
            txn.open_table(BY_USER)?;
            txn.open_table(DUE)?;
            txn.open_table(ATTENTION)?;
            txn.open_table(REVOKED)?;
            txn.open_table(REVOKED_OF)?;
            txn.open_table(BY_VEHICLE)?;
            txn.open_table(LEDGER)?;
            txn.open_table(REFS)?;
            txn.commit()?;
            Ok(Ok(()))
        };
        init()
            .map_err(|e| StoreError::Unavailable(format!("cannot initialise embedded database {shown}: {e}")))?
            .map_err(|e| match e {
                StoreError::Corrupt(e) => StoreError::Corrupt(format!("embedded database {shown}: {e}")),
                e => e,
            })?;
        Ok(EmbeddedStore { db: Arc::new(db), path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| StoreError::Unavailable(format!("embedded database task failed: {e}")))?
    }
}

// ---------------------------------------------------------------------------------------------
// Values

fn to_json<T: Serialize>(value: &T, entity: Entity, key: &ItemKey) -> Result<String, StoreError> {
    let mut map = match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(StoreError::Invalid(format!("{key}: does not serialise to an object"))),
        Err(e) => return Err(StoreError::Invalid(format!("cannot serialise {key}: {e}"))),
    };
    if map.insert(ENTITY.to_owned(), Value::String(entity.as_str().to_owned())).is_some() {
        return Err(StoreError::Invalid(format!("a {} has a field named {ENTITY}", entity.as_str())));
    }
    serde_json::to_string(&map).map_err(|e| StoreError::Invalid(format!("cannot serialise {key}: {e}")))
}

fn record_json(record: &Record) -> Result<String, StoreError> {
    let key = record.key();
    match record {
        Record::Session(x) => to_json(x, Entity::Session, &key),
        Record::Payment(x) => to_json(x, Entity::Payment, &key),
        Record::Refund(x) => to_json(x, Entity::Refund, &key),
        Record::Obligation(x) => to_json(x, Entity::Obligation, &key),
    }
}

fn from_json<T: DeserializeOwned>(text: &str, expected: Entity, key: &ItemKey) -> Result<T, StoreError> {
    let mut map: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| corrupt(format!("item {key}: not a JSON object: {e}")))?;
    match map.remove(ENTITY) {
        Some(Value::String(tag)) if tag == expected.as_str() => {}
        other => return Err(corrupt(format!("item {key}: entity is {other:?}, expected {}", expected.as_str()))),
    }
    serde_json::from_value(Value::Object(map))
        .map_err(|e| corrupt(format!("item {key}: not a valid {}: {e}", expected.as_str())))
}

fn record_from_json(text: &str, entity: Entity, key: &ItemKey) -> Result<Record, StoreError> {
    Ok(match entity {
        Entity::Session => Record::Session(from_json(text, entity, key)?),
        Entity::Payment => Record::Payment(from_json(text, entity, key)?),
        Entity::Refund => Record::Refund(from_json(text, entity, key)?),
        Entity::Obligation => Record::Obligation(from_json(text, entity, key)?),
        Entity::Txn | Entity::Idempotency | Entity::UserSession | Entity::Token | Entity::Ledger => {
            return Err(corrupt(format!("item {key}: a {} in a session partition", entity.as_str())));
        }
    })
}

fn get_item(
    table: &impl ReadableTable<(&'static str, &'static str), &'static str>,
    key: &ItemKey,
) -> Result<Option<String>, StoreError> {
    Ok(table.get((key.pk.as_str(), key.sk.as_str())).map_err(db_error)?.map(|v| v.value().to_owned()))
}

fn index_key(session: &ParkingSession) -> (String, String) {
    (user_gsi1pk(session.user_id()), session_gsi1sk(session.created_at(), session.id()))
}

type Due<'t> = Table<'t, (&'static str, &'static str), (&'static str, &'static str)>;

/// Puts `record` in the due index if it is an open obligation, and on its attention list if
/// it is on one.
fn index_due(due: &mut Due<'_>, attention: &mut Due<'_>, record: &Record) -> Result<(), StoreError> {
    let key = record.key();
    if let Some((gsi2pk, gsi2sk)) = record.due_index() {
        due.insert((gsi2pk.as_str(), gsi2sk.as_str()), (key.pk.as_str(), key.sk.as_str())).map_err(db_error)?;
    }
    if let Some((gsi1pk, gsi1sk)) = record.attention_index() {
        attention.insert((gsi1pk.as_str(), gsi1sk.as_str()), (key.pk.as_str(), key.sk.as_str())).map_err(db_error)?;
    }
    Ok(())
}

/// Takes `record` out of the due index and its attention list (where it is there).
fn unindex_due(due: &mut Due<'_>, attention: &mut Due<'_>, record: &Record) -> Result<(), StoreError> {
    if let Some((gsi2pk, gsi2sk)) = record.due_index() {
        due.remove((gsi2pk.as_str(), gsi2sk.as_str())).map_err(db_error)?;
    }
    if let Some((gsi1pk, gsi1sk)) = record.attention_index() {
        attention.remove((gsi1pk.as_str(), gsi1sk.as_str())).map_err(db_error)?;
    }
    Ok(())
}

/// Puts `session` on the revoked passes if it is REFUNDED and not there yet.
fn index_revoked(
    revoked: &mut Due<'_>,
    revoked_of: &mut Table<'_, &'static str, &'static str>,
    session: &ParkingSession,
) -> Result<(), StoreError> {
    let Some((gsi3pk, gsi3sk)) = revoked_index(session) else { return Ok(()) };
    let pk = session_pk(session.id());
    if revoked_of.get(pk.as_str()).map_err(db_error)?.is_some() {
        return Ok(());
    }
    revoked_of.insert(pk.as_str(), gsi3sk.as_str()).map_err(db_error)?;
    revoked.insert((gsi3pk.as_str(), gsi3sk.as_str()), (pk.as_str(), SESSION_SK)).map_err(db_error)?;
    Ok(())
}

/// Puts `session` on its vehicle's list (again: the same key, so an existing entry stays as it
/// is).
fn index_vehicle(by_vehicle: &mut Items<'_>, session: &ParkingSession) -> Result<(), StoreError> {
    let (gsi4pk, gsi4sk) = vehicle_index(session);
    let pk = session_pk(session.id());
    by_vehicle.insert((gsi4pk.as_str(), gsi4sk.as_str()), pk.as_str()).map_err(db_error)?;
    Ok(())
}

/// The ledger's tables in a write transaction.
struct LedgerTables<'t> {
    day: Due<'t>,
    refs: Due<'t>,
}

/// Stores `entry` with its index entries, unless an entry of its transaction and state is stored
/// already (the first stays).
fn put_ledger(items: &mut Items<'_>, ledger: &mut LedgerTables<'_>, entry: &LedgerEntry) -> Result<(), StoreError> {
    let key = entry.key();
    if get_item(items, &key)?.is_some() {
        return Ok(());
    }
    let json = to_json(entry, Entity::Ledger, &key)?;
    items.insert((key.pk.as_str(), key.sk.as_str()), json.as_str()).map_err(db_error)?;
    let (gsi1pk, gsi1sk) = entry.day_index();
    ledger.day.insert((gsi1pk.as_str(), gsi1sk.as_str()), (key.pk.as_str(), key.sk.as_str())).map_err(db_error)?;
    for (reference, session) in entry.provider_ref_index().into_iter().chain(entry.utr_index()) {
        ledger
            .refs
            .insert((reference.as_str(), key.pk.as_str()), (key.sk.as_str(), session.as_str()))
            .map_err(db_error)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Commit

type Items<'t> = Table<'t, (&'static str, &'static str), &'static str>;

/// Checks and applies `writes` in `txn`; the caller commits only on `Ok`.
fn apply(txn: &WriteTransaction, writes: &[Write]) -> Result<(), StoreError> {
    let mut items: Items<'_> = txn.open_table(ITEMS).map_err(db_error)?;
    let mut by_user = txn.open_table(BY_USER).map_err(db_error)?;
    let mut due = txn.open_table(DUE).map_err(db_error)?;
    let mut attention = txn.open_table(ATTENTION).map_err(db_error)?;
    let mut revoked = txn.open_table(REVOKED).map_err(db_error)?;
    let mut revoked_of = txn.open_table(REVOKED_OF).map_err(db_error)?;
    let mut by_vehicle: Items<'_> = txn.open_table(BY_VEHICLE).map_err(db_error)?;
    let mut ledger =
        LedgerTables { day: txn.open_table(LEDGER).map_err(db_error)?, refs: txn.open_table(REFS).map_err(db_error)? };
    for write in writes {
        match write {
            Write::Insert(record) => {
                let key = record.key();
                if get_item(&items, &key)?.is_some() {
                    return Err(StoreError::Conflict);
                }
                if let Some((pointer_key, pointer)) = record.txn_pointer() {
                    if get_item(&items, &pointer_key)?.is_some() {
                        return Err(StoreError::Conflict);
                    }
                    let json = to_json(&pointer, Entity::Txn, &pointer_key)?;
                    items
                        .insert((pointer_key.pk.as_str(), pointer_key.sk.as_str()), json.as_str())
                        .map_err(db_error)?;
                }
                let json = record_json(record)?;
                items.insert((key.pk.as_str(), key.sk.as_str()), json.as_str()).map_err(db_error)?;
                if let Record::Session(s) = record {
                    let (ipk, isk) = index_key(s);
                    by_user.insert((ipk.as_str(), isk.as_str()), key.pk.as_str()).map_err(db_error)?;
                    index_revoked(&mut revoked, &mut revoked_of, s)?;
                    index_vehicle(&mut by_vehicle, s)?;
                }
                index_due(&mut due, &mut attention, record)?;
                // Inserted already final: that is reaching the state.
                if let Some(entry) = LedgerEntry::of(record) {
                    put_ledger(&mut items, &mut ledger, &entry)?;
                }
            }
            Write::Update { record, expected_version } => {
                let key = record.key();
                let Some(old) = get_item(&items, &key)? else {
                    return Err(StoreError::Conflict);
                };
                let old = record_from_json(&old, record.entity(), &key)?;
                if old.version() != *expected_version {
                    return Err(StoreError::Conflict);
                }
                let json = record_json(record)?;
                items.insert((key.pk.as_str(), key.sk.as_str()), json.as_str()).map_err(db_error)?;
                if let (Record::Session(old), Record::Session(new)) = (&old, record) {
                    let (opk, osk) = index_key(old);
                    by_user.remove((opk.as_str(), osk.as_str())).map_err(db_error)?;
                    let (npk, nsk) = index_key(new);
                    by_user.insert((npk.as_str(), nsk.as_str()), key.pk.as_str()).map_err(db_error)?;
                    index_revoked(&mut revoked, &mut revoked_of, new)?;
                    index_vehicle(&mut by_vehicle, new)?;
                }
                unindex_due(&mut due, &mut attention, &old)?;
                index_due(&mut due, &mut attention, record)?;
                // Moved into a final state by this write.
                if let Some(entry) = LedgerEntry::of(record)
                    && status_of(&old) != status_of(record)
                {
                    put_ledger(&mut items, &mut ledger, &entry)?;
                }
            }
        }
    }
    Ok(())
}

/// Runs `work` in one write transaction, committed only if it returns `Ok`.
fn in_write<T>(db: &Database, work: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
    let txn = db.begin_write().map_err(db_error)?;
    match work(&txn) {
        Ok(value) => {
            txn.commit().map_err(db_error)?;
            Ok(value)
        }
        Err(e) => {
            txn.abort().map_err(db_error)?;
            Err(e)
        }
    }
}

fn commit_blocking(db: &Database, writes: &[Write]) -> Result<(), StoreError> {
    in_write(db, |txn| apply(txn, writes))
}

// ---------------------------------------------------------------------------------------------
// Idempotency records

fn read_idempotency(items: &Items<'_>, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
    let item_key = idempotency_key(key);
    match get_item(items, &item_key)? {
        None => Ok(None),
        Some(text) => {
            let stored: IdempotencyItem = from_json(&text, Entity::Idempotency, &item_key)?;
            stored.into_record(key, &item_key).map(Some)
        }
    }
}

fn write_idempotency(items: &mut Items<'_>, record: &IdempotencyRecord) -> Result<(), StoreError> {
    let key = idempotency_key(&record.key);
    let json = to_json(&IdempotencyItem::from(record), Entity::Idempotency, &key)?;
    items.insert((key.pk.as_str(), key.sk.as_str()), json.as_str()).map_err(db_error)?;
    Ok(())
}

fn acquire_blocking(db: &Database, record: &IdempotencyRecord, now: Timestamp) -> Result<Acquire, StoreError> {
    in_write(db, |txn| {
        let mut items: Items<'_> = txn.open_table(ITEMS).map_err(db_error)?;
        match read_idempotency(&items, &record.key)? {
            Some(stored) if !idem::takes(Some(&stored), now) => Ok(idem::refused(stored, record)),
            _ => {
                write_idempotency(&mut items, record)?;
                Ok(Acquire::Acquired)
            }
        }
    })
}

fn complete_blocking(
    db: &Database,
    key: &str,
    token: &str,
    response: &StoredResponse,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    in_write(db, |txn| {
        let mut items: Items<'_> = txn.open_table(ITEMS).map_err(db_error)?;
        let stored = read_idempotency(&items, key)?;
        match (idem::completion(stored.as_ref(), token, response, expires_at), stored) {
            (Completion::Apply, Some(mut record)) => {
                record.status = crate::IdempotencyStatus::Completed;
                record.response = Some(response.clone());
                record.expires_at = expires_at;
                write_idempotency(&mut items, &record)
            }
            (Completion::Done, _) => Ok(()),
            _ => Err(StoreError::Conflict),
        }
    })
}

fn release_blocking(db: &Database, key: &str, token: &str) -> Result<(), StoreError> {
    in_write(db, |txn| {
        let mut items: Items<'_> = txn.open_table(ITEMS).map_err(db_error)?;
        let stored = read_idempotency(&items, key)?;
        if idem::release(stored.as_ref(), token)? {
            let item_key = idempotency_key(key);
            items.remove((item_key.pk.as_str(), item_key.sk.as_str())).map_err(db_error)?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Reads

fn load_blocking(db: &Database, id: &SessionId) -> Result<Option<SessionBundle>, StoreError> {
    let txn = db.begin_read().map_err(db_error)?;
    let items = txn.open_table(ITEMS).map_err(db_error)?;
    let pk = session_pk(id);
    let mut bundle = BundleBuilder::default();
    for entry in items.range((pk.as_str(), "")..=(pk.as_str(), MAX_SK)).map_err(db_error)? {
        let (k, v) = entry.map_err(db_error)?;
        let (_, sk) = k.value();
        let key = ItemKey { pk: pk.clone(), sk: sk.to_owned() };
        let entity =
            entity_of_sk(sk).ok_or_else(|| corrupt(format!("item {key}: unknown sort key in a session partition")))?;
        bundle.add(id, sk, record_from_json(v.value(), entity, &key)?)?;
    }
    Ok(bundle.finish())
}

fn find_txn_blocking(db: &Database, merchant_txn_id: &str) -> Result<Option<TxnRef>, StoreError> {
    let txn = db.begin_read().map_err(db_error)?;
    let items = txn.open_table(ITEMS).map_err(db_error)?;
    let key = ItemKey { pk: txn_pk(merchant_txn_id), sk: TXN_SK.to_owned() };
    match get_item(&items, &key)? {
        None => Ok(None),
        Some(text) => from_json::<TxnPointer>(&text, Entity::Txn, &key)?.into_ref(merchant_txn_id).map(Some),
    }
}

fn list_blocking(db: &Database, user: &UserId, limit: usize) -> Result<Vec<ParkingSession>, StoreError> {
    let txn = db.begin_read().map_err(db_error)?;
    let items = txn.open_table(ITEMS).map_err(db_error)?;
    let by_user = txn.open_table(BY_USER).map_err(db_error)?;
    let ipk = user_gsi1pk(user);
    let mut sessions = Vec::new();
    for entry in by_user.range((ipk.as_str(), "")..=(ipk.as_str(), MAX_SK)).map_err(db_error)?.rev().take(limit) {
        let (k, v) = entry.map_err(db_error)?;
        let key = ItemKey { pk: v.value().to_owned(), sk: SESSION_SK.to_owned() };
        let text = get_item(&items, &key)?
            .ok_or_else(|| corrupt(format!("user index entry {} names missing item {key}", k.value().1)))?;
        let session: ParkingSession = from_json(&text, Entity::Session, &key)?;
        crate::keys::check_listed(user, &session)?;
        sessions.push(session);
    }
    Ok(sessions)
}

fn list_page_blocking(
    db: &Database,
    user: &UserId,
    limit: usize,
    before: &str,
) -> Result<crate::SessionPage, StoreError> {
    let txn = db.begin_read().map_err(db_error)?;
    let items = txn.open_table(ITEMS).map_err(db_error)?;
    let by_user = txn.open_table(BY_USER).map_err(db_error)?;
    let ipk = user_gsi1pk(user);
    let mut sessions = Vec::with_capacity(limit);
    let mut more = false;
    for entry in by_user.range((ipk.as_str(), "")..(ipk.as_str(), before)).map_err(db_error)?.rev() {
        if sessions.len() == limit {
            more = true;
            break;
        }
        let (k, v) = entry.map_err(db_error)?;
        let position = k.value().1.to_owned();
        let key = ItemKey { pk: v.value().to_owned(), sk: SESSION_SK.to_owned() };
        let text = get_item(&items, &key)?
            .ok_or_else(|| corrupt(format!("user index entry {position} names missing item {key}")))?;
        let session: ParkingSession = from_json(&text, Entity::Session, &key)?;
        crate::keys::check_listed(user, &session)?;
        sessions.push((position, session));
    }
    Ok(crate::session_page(sessions, more))
}

fn list_revoked_blocking(db: &Database, after: &str, limit: usize) -> Result<crate::RevokedPage, StoreError> {
    use std::ops::Bound;
    let txn = db.begin_read().map_err(db_error)?;
    let revoked = txn.open_table(REVOKED).map_err(db_error)?;
    let range = (Bound::Excluded((REVOKED_GSI3PK, after)), Bound::Excluded((REVOKED_GSI3PK, MAX_SK)));
    let mut entries = Vec::with_capacity(limit);
    let mut more = false;
    for entry in revoked.range::<(&str, &str)>(range).map_err(db_error)? {
        if entries.len() == limit {
            more = true;
            break;
        }
        let (k, v) = entry.map_err(db_error)?;
        let ((_, gsi3sk), (pk, _)) = (k.value(), v.value());
        entries.push((gsi3sk.to_owned(), revoked_from_index(pk, gsi3sk)?));
    }
    Ok(crate::revoked_page(entries, more))
}

fn list_ledger_blocking(db: &Database, range: &LedgerRange, limit: usize) -> Result<LedgerPage, StoreError> {
    use std::ops::Bound;
    let txn = db.begin_read().map_err(db_error)?;
    let items = txn.open_table(ITEMS).map_err(db_error)?;
    let ledger = txn.open_table(LEDGER).map_err(db_error)?;
    let mut found = Vec::with_capacity(limit);
    for date in &range.dates {
        let take = limit.saturating_sub(found.len()) + 1;
        let mut day = Vec::new();
        for shard in 0..LEDGER_SHARDS {
            let pk = ledger_gsi1pk(date, shard);
            let bounds = (
                Bound::Excluded((pk.as_str(), range.after.as_str())),
                Bound::Excluded((pk.as_str(), range.before.as_str())),
            );
            for entry in ledger.range::<(&str, &str)>(bounds).map_err(db_error)?.take(take) {
                let (k, v) = entry.map_err(db_error)?;
                let (position, (pk, sk)) = (k.value().1.to_owned(), v.value());
                let key = ItemKey { pk: pk.to_owned(), sk: sk.to_owned() };
                let text = get_item(&items, &key)?
                    .ok_or_else(|| corrupt(format!("ledger index entry {position} names missing item {key}")))?;
                let entry: LedgerEntry = from_json(&text, Entity::Ledger, &key)?;
                entry.check(&key, Some(&position))?;
                day.push((position, entry));
            }
        }
        if add_day(&mut found, day, limit) {
            return Ok(ledger_page(found, true));
        }
    }
    Ok(ledger_page(found, false))
}

fn sessions_by_vehicle_blocking(db: &Database, vehicle: &str, limit: usize) -> Result<Vec<SessionId>, StoreError> {
    let txn = db.begin_read().map_err(db_error)?;
    let by_vehicle = txn.open_table(BY_VEHICLE).map_err(db_error)?;
    let mut found = Vec::new();
    for entry in by_vehicle.range((vehicle, "")..=(vehicle, MAX_SK)).map_err(db_error)?.rev().take(limit) {
        let (k, v) = entry.map_err(db_error)?;
        let (sk, pk) = (k.value().1, v.value());
        found.push(vehicle_from_index(pk, sk)?);
    }
    Ok(found)
}

fn find_by_ref_blocking(db: &Database, reference: &str) -> Result<Vec<(SessionId, String)>, StoreError> {
    let txn = db.begin_read().map_err(db_error)?;
    let refs = txn.open_table(REFS).map_err(db_error)?;
    let mut found = Vec::new();
    for key in [provider_ref_gsi2pk(reference), utr_gsi3pk(reference)] {
        for entry in refs.range((key.as_str(), "")..=(key.as_str(), MAX_SK)).map_err(db_error)?.take(MAX_REF_MATCHES) {
            let (k, v) = entry.map_err(db_error)?;
            let (pk, (sk, session)) = (k.value().1, v.value());
            found.push(ref_from_index(pk, sk, session)?);
        }
    }
    sort_refs(&mut found);
    Ok(found)
}

fn list_due_blocking(db: &Database, due_before: Timestamp, per_shard: usize) -> Result<Vec<DueEntry>, StoreError> {
    let txn = db.begin_read().map_err(db_error)?;
    let due = txn.open_table(DUE).map_err(db_error)?;
    let bound = due_gsi2sk_bound(due_before);
    let mut found = Vec::new();
    for shard in 0..DUE_SHARDS {
        let pk = due_gsi2pk(shard);
        for entry in due.range((pk.as_str(), "")..(pk.as_str(), bound.as_str())).map_err(db_error)?.take(per_shard) {
            let (k, v) = entry.map_err(db_error)?;
            let ((_, gsi2sk), (pk, sk)) = (k.value(), v.value());
            found.push(due_from_index(pk, sk, gsi2sk)?);
        }
    }
    crate::sort_due(&mut found);
    Ok(found)
}

fn list_attention_blocking(
    db: &Database,
    list: AttentionList,
    now: Timestamp,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<AttentionEntry>, StoreError> {
    let txn = db.begin_read().map_err(db_error)?;
    let items = txn.open_table(ITEMS).map_err(db_error)?;
    let attention = txn.open_table(ATTENTION).map_err(db_error)?;
    let bound = crate::attention_bound(list, now, before);
    let mut found = Vec::new();
    for shard in 0..DUE_SHARDS {
        let pk = attention_gsi1pk(list, shard);
        for entry in
            attention.range((pk.as_str(), "")..(pk.as_str(), bound.as_str())).map_err(db_error)?.rev().take(limit)
        {
            let (k, v) = entry.map_err(db_error)?;
            let (position, (pk, sk)) = (k.value().1.to_owned(), v.value());
            let key = ItemKey { pk: pk.to_owned(), sk: sk.to_owned() };
            let text = get_item(&items, &key)?
                .ok_or_else(|| corrupt(format!("attention entry {position} names missing item {key}")))?;
            let Record::Obligation(obligation) = record_from_json(&text, Entity::Obligation, &key)? else {
                return Err(corrupt(format!("attention entry {position} names {key}, not an obligation")));
            };
            found.push(AttentionEntry { position, obligation });
        }
    }
    Ok(crate::merge_attention(list, now, found, limit))
}

fn scan_blocking(db: &Database, after: Option<&ScanCursor>, page_items: usize) -> Result<ScanPage, StoreError> {
    let txn = db.begin_read().map_err(db_error)?;
    let items = txn.open_table(ITEMS).map_err(db_error)?;
    let range = match after {
        Some(c) => items.range::<(&str, &str)>((
            std::ops::Bound::Excluded((c.pk.as_str(), c.sk.as_str())),
            std::ops::Bound::Unbounded,
        )),
        None => items.range::<(&str, &str)>(..),
    }
    .map_err(db_error)?;
    let mut sessions = Vec::new();
    let mut last = None;
    for (read, entry) in range.enumerate() {
        if read == page_items.max(1) {
            return Ok(ScanPage { sessions, next: last });
        }
        let (k, _) = entry.map_err(db_error)?;
        let (pk, sk) = k.value();
        if sk == SESSION_SK {
            let id = pk
                .strip_prefix(crate::keys::SESSION_PREFIX)
                .and_then(|id| SessionId::parse(id).ok())
                .ok_or_else(|| corrupt(format!("item {pk} / {sk}: not a session key")))?;
            sessions.push(id);
        }
        last = Some(ScanCursor { pk: pk.to_owned(), sk: sk.to_owned() });
    }
    Ok(ScanPage { sessions, next: None })
}

#[async_trait]
impl AttentionIndex for EmbeddedStore {
    async fn list_attention(
        &self,
        list: AttentionList,
        now: Timestamp,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AttentionEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let before = before.map(str::to_owned);
        self.run(move |db| list_attention_blocking(db, list, now, before.as_deref(), limit)).await
    }
}

#[async_trait]
impl SessionScan for EmbeddedStore {
    async fn scan_sessions(&self, after: Option<&ScanCursor>, page_items: usize) -> Result<ScanPage, StoreError> {
        let after = after.cloned();
        self.run(move |db| scan_blocking(db, after.as_ref(), page_items)).await
    }
}

#[async_trait]
impl IdempotencyStore for EmbeddedStore {
    async fn acquire(&self, record: &IdempotencyRecord, now: Timestamp) -> Result<Acquire, StoreError> {
        idem::check_new(record, now)?;
        let record = record.clone();
        self.run(move |db| acquire_blocking(db, &record, now)).await
    }

    async fn complete(
        &self,
        key: &str,
        token: &str,
        response: &StoredResponse,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        idem::check_key(key)?;
        idem::check_token(token)?;
        idem::check_response(response)?;
        let (key, token, response) = (key.to_owned(), token.to_owned(), response.clone());
        self.run(move |db| complete_blocking(db, &key, &token, &response, expires_at)).await
    }

    async fn release(&self, key: &str, token: &str) -> Result<(), StoreError> {
        idem::check_key(key)?;
        idem::check_token(token)?;
        let (key, token) = (key.to_owned(), token.to_owned());
        self.run(move |db| release_blocking(db, &key, &token)).await
    }
}

#[async_trait]
impl PendingIndex for EmbeddedStore {
    async fn list_due(&self, due_before: Timestamp, per_shard: usize) -> Result<Vec<DueEntry>, StoreError> {
        if per_shard == 0 {
            return Ok(Vec::new());
        }
        self.run(move |db| list_due_blocking(db, due_before, per_shard)).await
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn load_session(&self, id: &SessionId) -> Result<Option<SessionBundle>, StoreError> {
        let id = id.clone();
        self.run(move |db| load_blocking(db, &id)).await
    }

    async fn find_txn(&self, merchant_txn_id: &str) -> Result<Option<TxnRef>, StoreError> {
        if crate::keys::impossible_txn_id(merchant_txn_id) {
            return Ok(None);
        }
        let id = merchant_txn_id.to_owned();
        self.run(move |db| find_txn_blocking(db, &id)).await
    }

    async fn list_sessions(&self, user: &UserId, limit: usize) -> Result<Vec<ParkingSession>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let user = user.clone();
        self.run(move |db| list_blocking(db, &user, limit)).await
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        validate_commit(&writes)?;
        self.run(move |db| commit_blocking(db, &writes)).await
    }

    async fn list_sessions_page(
        &self,
        user: &UserId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SessionPage, StoreError> {
        crate::page::check_limit(limit)?;
        let before = crate::sessions_before(cursor)?;
        let user = user.clone();
        self.run(move |db| list_page_blocking(db, &user, limit, &before)).await
    }

    async fn list_revoked(
        &self,
        since: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<RevokedPage, StoreError> {
        crate::page::check_limit(limit)?;
        let after = crate::revoked_after(since, cursor)?;
        self.run(move |db| list_revoked_blocking(db, &after, limit)).await
    }

    async fn list_ledger(
        &self,
        day_start: Timestamp,
        day_end: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<LedgerPage, StoreError> {
        let range = ledger_range(day_start, day_end, limit, cursor)?;
        self.run(move |db| list_ledger_blocking(db, &range, limit)).await
    }

    async fn sessions_by_vehicle(&self, vehicle: &VehicleNumber, limit: usize) -> Result<Vec<SessionId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let pk = vehicle_gsi4pk(vehicle);
        self.run(move |db| sessions_by_vehicle_blocking(db, &pk, limit)).await
    }

    async fn find_by_provider_ref(&self, reference: &str) -> Result<Vec<(SessionId, String)>, StoreError> {
        if !indexable_ref(reference) {
            return Ok(Vec::new());
        }
        let reference = reference.to_owned();
        self.run(move |db| find_by_ref_blocking(db, &reference)).await
    }
}

// ---------------------------------------------------------------------------------------------
// The shared OAuth token

/// The token item `name`, or the empty one (generation 0) when there is none.
fn read_token(items: &Items<'_>, name: &str) -> Result<TokenItem, StoreError> {
    let key = token_key(name);
    match get_item(items, &key)? {
        None => Ok(TokenItem::default()),
        Some(text) => from_json(&text, Entity::Token, &key),
    }
}

fn write_token(items: &mut Items<'_>, name: &str, item: &TokenItem) -> Result<(), StoreError> {
    let key = token_key(name);
    let json = to_json(item, Entity::Token, &key)?;
    items.insert((key.pk.as_str(), key.sk.as_str()), json.as_str()).map_err(db_error)?;
    Ok(())
}

#[async_trait]
impl TokenStore for EmbeddedStore {
    async fn load_token(&self, name: &str) -> Result<TokenState, StoreError> {
        token::check_name("a token name", name)?;
        let name = name.to_owned();
        self.run(move |db| {
            let txn = db.begin_read().map_err(db_error)?;
            let key = token_key(&name);
            let items = txn.open_table(ITEMS).map_err(db_error);
            let text = match items {
                Ok(items) => get_item(&items, &key)?,
                Err(_) => None,
            };
            match text {
                None => Ok(TokenState::default()),
                Some(text) => Ok(from_json::<TokenItem>(&text, Entity::Token, &key)?.into_state()),
            }
        })
        .await
    }

    async fn begin_refresh(
        &self,
        name: &str,
        seen_generation: u64,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        token::check_begin(name, holder, now, until)?;
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.run(move |db| {
            in_write(db, |txn| {
                let mut items: Items<'_> = txn.open_table(ITEMS).map_err(db_error)?;
                let mut stored = read_token(&items, &name)?;
                if !token::may_begin(&stored, seen_generation, now) {
                    return Ok(false);
                }
                stored.refresh_holder = Some(holder);
                stored.refresh_until = Some(until);
                write_token(&mut items, &name, &stored)?;
                Ok(true)
            })
        })
        .await
    }

    async fn finish_refresh(&self, name: &str, holder: &str, new: &StoredToken) -> Result<bool, StoreError> {
        token::check_finish(name, holder, new)?;
        let (name, holder, new) = (name.to_owned(), holder.to_owned(), new.clone());
        self.run(move |db| {
            in_write(db, |txn| {
                let mut items: Items<'_> = txn.open_table(ITEMS).map_err(db_error)?;
                let stored = read_token(&items, &name)?;
                if !token::may_finish(&stored, &holder) {
                    return Ok(false);
                }
                let next = TokenItem {
                    access_token: Some(new.access_token),
                    issued_at: Some(new.issued_at),
                    expires_at: Some(new.expires_at),
                    generation: stored.generation + 1,
                    refresh_holder: None,
                    refresh_until: None,
                };
                write_token(&mut items, &name, &next)?;
                Ok(true)
            })
        })
        .await
    }

    async fn abandon_refresh(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        token::check_name("a token name", name)?;
        token::check_name("a lock holder", holder)?;
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.run(move |db| {
            in_write(db, |txn| {
                let mut items: Items<'_> = txn.open_table(ITEMS).map_err(db_error)?;
                let stored = read_token(&items, &name)?;
                if !token::may_finish(&stored, &holder) {
                    return Ok(false);
                }
                let next = TokenItem { refresh_holder: None, refresh_until: None, ..stored };
                write_token(&mut items, &name, &next)?;
                Ok(true)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parkpay_domain::{BookingRequest, Hours, LotCatalog, LotId, Timestamp, VehicleNumber};

    fn session() -> ParkingSession {
        let request = BookingRequest {
            user_id: UserId::parse("driver-1").unwrap(),
            lot_id: LotId::parse("MG-ROAD-1").unwrap(),
            vehicle: VehicleNumber::parse("KA01AB1234").unwrap(),
            hours: Hours::new(2, 24).unwrap(),
        };
        let now = Timestamp::from_unix_millis(1_000).unwrap();
        ParkingSession::book(&LotCatalog::default_local(), SessionId::from_random([1; 16]), request, now).unwrap()
    }

    fn put_raw(store: &EmbeddedStore, pk: &str, sk: &str, value: &str) {
        let txn = store.db.begin_write().unwrap();
        txn.open_table(ITEMS).unwrap().insert((pk, sk), value).unwrap();
        txn.commit().unwrap();
    }

    #[tokio::test]
    async fn corrupt_items_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path().join("db.redb")).unwrap();
        let s = session();
        store.commit(vec![Write::Insert(Record::Session(s.clone()))]).await.unwrap();
        let pk = session_pk(s.id());

        put_raw(&store, &pk, "PAYMENT#PP1", "not json");
        assert!(matches!(store.load_session(s.id()).await, Err(StoreError::Corrupt(_))));
        put_raw(&store, &pk, "PAYMENT#PP1", r#"{"entity":"PAYMENT","id":"PP1"}"#);
        assert!(matches!(store.load_session(s.id()).await, Err(StoreError::Corrupt(_))));
        put_raw(&store, &pk, "PAYMENT#PP1", r#"{"entity":"REFUND"}"#);
        assert!(matches!(store.load_session(s.id()).await, Err(StoreError::Corrupt(_))));
        put_raw(&store, &pk, "OTHER#1", r#"{}"#);
        assert!(matches!(store.load_session(s.id()).await, Err(StoreError::Corrupt(_))));

        put_raw(&store, "TXN#PP9", "#TXN", r#"{"entity":"TXN","kind":"PAYMENT","session_id":"x","id":"PP9"}"#);
        assert!(matches!(store.find_txn("PP9").await, Err(StoreError::Corrupt(_))));
        put_raw(
            &store,
            "TXN#PP8",
            "#TXN",
            &format!(r#"{{"entity":"TXN","kind":"REFUND","session_id":"{}","id":"PP7"}}"#, s.id()),
        );
        assert!(matches!(store.find_txn("PP8").await, Err(StoreError::Corrupt(_))));

        // An update over a corrupt stored session is refused, and changes nothing.
        put_raw(&store, &pk, "#SESSION", r#"{"entity":"SESSION","version":1}"#);
        let mut cancelled = s.clone();
        let _ = cancelled.cancel(Timestamp::from_unix_millis(2_000).unwrap()).unwrap();
        let update = Write::Update { record: Record::Session(cancelled), expected_version: 1 };
        assert!(matches!(store.commit(vec![update]).await, Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn open_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let below = file.join("db.redb");
        let e = EmbeddedStore::open(&below).unwrap_err().to_string();
        assert!(e.contains(&file.display().to_string()), "{e}");

        let garbage = dir.path().join("garbage.redb");
        std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
        let e = EmbeddedStore::open(&garbage).unwrap_err().to_string();
        assert!(e.contains(&garbage.display().to_string()), "{e}");

        let path = dir.path().join("db.redb");
        let _open = EmbeddedStore::open(&path).unwrap();
        let e = EmbeddedStore::open(&path).unwrap_err().to_string();
        assert!(e.contains("already open") && e.contains(&path.display().to_string()), "{e}");
    }
}
