//! A session's item holds its whole aggregate: the session's own attributes, and its payments,
//! refunds and obligations embedded as map attributes. So a commit about one session is, in the
//! usual case, one UpdateItem of one item: one write unit while the item stays under 1 KB, where
//! a transaction of the same records bills two per record.
//!
//! This module is pure: it reads and builds items, and plans a commit into the requests that make
//! it ([`plan`]); `commit.rs` sends them.
//!
//! # Layout of the session item
//! - The session's fields as native attributes, exactly as before (so a session item written by an
//!   earlier version reads the same).
//! - `P#{payment_id}`, `R#{refund_id}`, `O#{target_id}` (M): an embedded payment, refund or
//!   obligation, its fields as native attributes, less what the item already says: `session_id`
//!   (the key), `user_id` when it is the session's, and empty optionals (NULL).
//! - At most one embedded obligation is open: the one whose due-index entry the item carries,
//!   named by `due_target` (S), with `GSI2PK`/`GSI2SK` exactly as its own item would carry them
//!   (`DUE#{shard}`, `{next_attempt_at}#OBLIGATION#{target_id}`).
//! - Once the session is REFUNDED, `GSI3PK`/`GSI3SK` (`PASS_REVOKED`,
//!   `{revoked_at}#{session_id}`): its revoked pass. Every update that writes the session
//!   REFUNDED sets them with `if_not_exists`, so the first one's time stays (the planner does not
//!   know the stored status, and need not).
//! - `GSI4PK`/`GSI4SK` (`VEH#{vehicle}`, `{created_at}#{session_id}`): its place in its vehicle's
//!   list, put with the session; every update of the session sets them again with `if_not_exists`
//!   (the same values: no index write), which gives a session of an earlier version its entry.
//!
//! # Ledger entries
//! A write that moves a payment or refund into a final state adds its settlement ledger entry
//! ([`crate::ledger`]), which `commit.rs` puts just before the session item's write. Whether a
//! record was in that state already: for an embedded record, what a known view's item showed
//! (its `status`); on assumptions, [`crate::ledger::presumed_reached`], and where that says "it
//! was" the write is conditioned on it (`#P.status = :state`), so that a wrong presumption fails,
//! shows the item, and the commit is planned again on what it shows. A record in an item of its
//! own (an earlier version's) is judged by the presumption alone.
//!
//! An obligation is kept in an item of its own (the layout of earlier versions, with its own
//! index entries) when it is on an attention list's `GSI1` (its deadline comes first, or it needs
//! a person), or when it is open while another embedded obligation holds the due slot. Records
//! written by earlier versions as items of their own stay there: an update finds them by the
//! failed condition of a first try (below). Once in an item of its own, a record stays there; an
//! embedded obligation that comes onto `GSI1` moves out (one transaction removes it from the
//! session item and puts its own item).
//!
//! # Planning without reading
//! A commit does not read before writing. It is planned on a [`View`] of each session item: first
//! the assumed one (the item exists; every record updated is embedded at the version the caller
//! read; the due slot is held by the first obligation updated, or free), and every assumption is
//! a condition of the write. When a condition fails, DynamoDB returns the item as stored
//! (`ReturnValuesOnConditionCheckFailure=ALL_OLD`); the commit is planned again on that known
//! view, whose facts are again conditions, and sent again. A version that differs from the one
//! the caller read is a conflict, as ever.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use parkpay_domain::{Obligation, ParkingSession, SessionId};
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo_serde;

use super::{ConditionalPut, Item, entity_from_item, record_item, string};
use crate::keys::{
    self, Entity, GSI1PK, GSI1SK, GSI2PK, GSI2SK, GSI3PK, GSI3SK, GSI4PK, GSI4SK, ItemKey, PK, SK, TxnPointer, VERSION,
    WRITE_TOKEN, corrupt,
};
use crate::ledger::{LedgerEntry, presumed_reached, status_of};
use crate::{Record, StoreError, Write};

/// The embedded obligation whose due entry the session item carries.
pub(super) const DUE_TARGET: &str = "due_target";
/// The status attribute of an embedded payment or refund.
pub(super) const STATUS: &str = "status";
const PAYMENT_ATTR: &str = "P#";
const REFUND_ATTR: &str = "R#";
const OBLIGATION_ATTR: &str = "O#";
/// The session's fields that serialise only when set (`skip_serializing_if`): an update that
/// leaves one out removes it. `session_optional_fields_are_listed` keeps this in step with the
/// domain.
pub(super) const SESSION_OPTIONAL_FIELDS: [&str; 5] = ["extensions", "extra_hours", "paid_at", "paid_by", "visit"];

/// The attribute of the session item that holds `record` (`None` for the session itself).
pub(super) fn attr_name(record: &Record) -> Option<String> {
    match record {
        Record::Session(_) => None,
        Record::Payment(p) => Some(format!("{PAYMENT_ATTR}{}", p.id())),
        Record::Refund(r) => Some(format!("{REFUND_ATTR}{}", r.id())),
        Record::Obligation(o) => Some(format!("{OBLIGATION_ATTR}{}", o.target_id())),
    }
}

fn embedded_entity(name: &str) -> Option<Entity> {
    if name.starts_with(PAYMENT_ATTR) {
        Some(Entity::Payment)
    } else if name.starts_with(REFUND_ATTR) {
        Some(Entity::Refund)
    } else if name.starts_with(OBLIGATION_ATTR) {
        Some(Entity::Obligation)
    } else {
        None
    }
}

/// `record` as an attribute of its session's item (see the module docs for what is left out).
pub(super) fn embedded_value(record: &Record, session_user: Option<&str>) -> Result<AttributeValue, StoreError> {
    let serialised: Result<Item, _> = match record {
        Record::Session(x) => dynamo_serde::to_item(x),
        Record::Payment(x) => dynamo_serde::to_item(x),
        Record::Refund(x) => dynamo_serde::to_item(x),
        Record::Obligation(x) => dynamo_serde::to_item(x),
    };
    let mut map = serialised.map_err(|e| StoreError::Invalid(format!("cannot serialise {}: {e}", record.key())))?;
    map.remove("session_id");
    if let (Some(user), Some(AttributeValue::S(own))) = (session_user, map.get("user_id"))
        && own == user
    {
        map.remove("user_id");
    }
    map.retain(|_, v| !matches!(v, AttributeValue::Null(_)));
    Ok(AttributeValue::M(map))
}

/// The record embedded under `name`, given its session.
fn embedded_record(name: &str, value: AttributeValue, session: &ParkingSession) -> Result<Record, StoreError> {
    let what = || format!("attribute {name} of session {}", session.id());
    let (Some(entity), AttributeValue::M(mut map)) = (embedded_entity(name), value) else {
        return Err(corrupt(format!("{}: not an embedded record", what())));
    };
    map.insert("session_id".to_owned(), string(session.id().as_str()));
    if entity == Entity::Payment {
        map.entry("user_id".to_owned()).or_insert_with(|| string(session.user_id().as_str()));
    }
    let bad = |e: serde_dynamo::Error| corrupt(format!("{}: not a valid {}: {e}", what(), entity.as_str()));
    let record = match entity {
        Entity::Payment => Record::Payment(dynamo_serde::from_item(map).map_err(bad)?),
        Entity::Refund => Record::Refund(dynamo_serde::from_item(map).map_err(bad)?),
        _ => Record::Obligation(dynamo_serde::from_item(map).map_err(bad)?),
    };
    if attr_name(&record).as_deref() != Some(name) {
        return Err(corrupt(format!("{}: holds the record {}", what(), record.key())));
    }
    Ok(record)
}

/// The session item split into the session and the records embedded in it.
pub(super) fn read_session_item(item: Item) -> Result<(ParkingSession, Vec<Record>), StoreError> {
    let (own, embedded) = split(item);
    let session: ParkingSession = entity_from_item(own, Entity::Session)?;
    let records = embedded.into_iter().map(|(k, v)| embedded_record(&k, v, &session)).collect::<Result<_, _>>()?;
    Ok((session, records))
}

/// Only the session of a session item (its embedded records are not read).
pub(super) fn read_session_only(item: Item) -> Result<ParkingSession, StoreError> {
    entity_from_item(split(item).0, Entity::Session)
}

fn split(item: Item) -> (Item, Vec<(String, AttributeValue)>) {
    let mut own = Item::with_capacity(item.len());
    let mut embedded = Vec::new();
    for (name, value) in item {
        if embedded_entity(&name).is_some() {
            embedded.push((name, value));
        } else if name != DUE_TARGET {
            own.insert(name, value);
        }
    }
    (own, embedded)
}

/// The open obligation whose due entry a session item carries, if any.
pub(super) fn due_obligation(item: Item) -> Result<Option<Obligation>, StoreError> {
    let Some(target) = item.get(DUE_TARGET).and_then(|v| v.as_s().ok()).cloned() else { return Ok(None) };
    let (_, records) = read_session_item(item)?;
    Ok(records.into_iter().find_map(|r| match r {
        Record::Obligation(o) if o.target_id() == target => Some(o),
        _ => None,
    }))
}

// ---------------------------------------------------------------------------------------------
// Views

/// What a commit is planned on: a session item as assumed, or as a failed condition returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct View {
    exists: bool,
    /// Learned from the item rather than assumed.
    known: bool,
    session_version: Option<u64>,
    /// Embedded records: attribute name → version.
    embedded: HashMap<String, u64>,
    /// Embedded payments and refunds: attribute name → `status` (known views only).
    statuses: HashMap<String, String>,
    /// `due_target`.
    slot: Option<String>,
}

impl View {
    /// The usual case, for the writes of one session: the item exists (unless the commit inserts
    /// the session), every record updated is embedded at the version the caller read, and the due
    /// slot is held by the first obligation updated, or free.
    pub(super) fn assumed(writes: &[&Write]) -> View {
        let mut view = View {
            exists: true,
            known: false,
            session_version: None,
            embedded: HashMap::new(),
            statuses: HashMap::new(),
            slot: None,
        };
        for write in writes {
            match write {
                Write::Insert(Record::Session(_)) => view.exists = false,
                Write::Insert(_) => {}
                Write::Update { record: Record::Session(_), expected_version } => {
                    view.session_version = Some(*expected_version);
                }
                Write::Update { record, expected_version } => {
                    if let Some(name) = attr_name(record) {
                        view.embedded.insert(name, *expected_version);
                    }
                    if let Record::Obligation(o) = record
                        && view.slot.is_none()
                    {
                        view.slot = Some(o.target_id().to_owned());
                    }
                }
            }
        }
        view
    }

    /// The item as stored (`None`: there is none).
    pub(super) fn known(image: Option<&Item>) -> Result<View, StoreError> {
        let Some(item) = image else {
            return Ok(View {
                exists: false,
                known: true,
                session_version: None,
                embedded: HashMap::new(),
                statuses: HashMap::new(),
                slot: None,
            });
        };
        let number = |v: &AttributeValue| v.as_n().ok().and_then(|n| n.parse::<u64>().ok());
        let mut embedded = HashMap::new();
        let mut statuses = HashMap::new();
        for (name, value) in item {
            if let Some(entity) = embedded_entity(name) {
                let map = value.as_m().ok();
                let version = map.and_then(|m| m.get(VERSION)).and_then(number);
                let version = version.ok_or_else(|| corrupt(format!("attribute {name}: no version")))?;
                embedded.insert(name.clone(), version);
                if entity != Entity::Obligation
                    && let Some(status) = map.and_then(|m| m.get(STATUS)).and_then(|v| v.as_s().ok())
                {
                    statuses.insert(name.clone(), status.clone());
                }
            }
        }
        Ok(View {
            exists: true,
            known: true,
            session_version: item.get(VERSION).and_then(number),
            embedded,
            statuses,
            slot: item.get(DUE_TARGET).and_then(|v| v.as_s().ok()).cloned(),
        })
    }
}

/// The token a stored item carries, if any.
pub(super) fn write_token_of(item: &Item) -> Option<&str> {
    item.get(WRITE_TOKEN).and_then(|v| v.as_s().ok()).map(String::as_str)
}

// ---------------------------------------------------------------------------------------------
// Plans

/// A condition on the session item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Condition {
    /// The item exists.
    Exists,
    /// The session's `version`.
    SessionVersion(u64),
    /// An embedded record's `version`.
    Version(String, u64),
    /// No such attribute (no such embedded record).
    Absent(String),
    /// An embedded payment's or refund's `status` is this (it was final already).
    Status(String, &'static str),
    /// `due_target` names this obligation.
    SlotHeldBy(String),
    /// No `due_target`.
    SlotFree,
}

/// An UpdateItem of a session item (or, with nothing to set or remove, a ConditionCheck in a
/// transaction).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct AggregateUpdate {
    pub session: SessionId,
    pub key: ItemKey,
    pub set: Vec<(String, AttributeValue)>,
    /// Set only where the item has no such attribute yet (`if_not_exists`): the revoked-pass
    /// entry (`GSI3PK`, `GSI3SK`), which stays where the first write put it.
    pub set_if_absent: Vec<(String, AttributeValue)>,
    pub remove: Vec<String>,
    pub conditions: Vec<Condition>,
}

impl AggregateUpdate {
    pub(super) fn is_check_only(&self) -> bool {
        self.set.is_empty() && self.set_if_absent.is_empty() && self.remove.is_empty()
    }
}

/// What is done to one session item.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum AggregateOp {
    /// A new session item (condition: none exists).
    Put {
        session: SessionId,
        key: ItemKey,
        item: Item,
    },
    Update(AggregateUpdate),
}

impl AggregateOp {
    pub(super) fn session(&self) -> &SessionId {
        match self {
            AggregateOp::Put { session, .. } => session,
            AggregateOp::Update(u) => &u.session,
        }
    }
}

/// A commit as requests: session items, items of their own, the transaction pointers of the
/// payments and refunds it inserts, and the ledger entries of those it moves into a final state.
#[derive(Default)]
pub(super) struct Plan {
    pub aggregates: Vec<AggregateOp>,
    pub separate: Vec<ConditionalPut>,
    pub pointers: Vec<(ItemKey, TxnPointer)>,
    pub ledger: Vec<LedgerEntry>,
}

/// Where an obligation is before or after a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    New,
    Embedded,
    Own,
}

/// Plans `writes` (validated) on `views` (one per session written; a missing one is assumed).
/// [`StoreError::Conflict`] when a known view already shows the commit cannot apply.
pub(super) fn plan(writes: &[Write], views: &HashMap<SessionId, View>) -> Result<Plan, StoreError> {
    let mut groups: Vec<(SessionId, Vec<&Write>)> = Vec::new();
    for write in writes {
        let sid = write_record(write).session_id();
        match groups.iter_mut().find(|(id, _)| id == sid) {
            Some((_, group)) => group.push(write),
            None => groups.push((sid.clone(), vec![write])),
        }
    }
    let mut plan = Plan::default();
    for (sid, group) in groups {
        let view = match views.get(&sid) {
            Some(v) => v.clone(),
            None => View::assumed(&group),
        };
        plan_session(&sid, &group, &view, &mut plan)?;
    }
    Ok(plan)
}

fn write_record(write: &Write) -> &Record {
    match write {
        Write::Insert(r) | Write::Update { record: r, .. } => r,
    }
}

fn plan_session(sid: &SessionId, writes: &[&Write], view: &View, plan: &mut Plan) -> Result<(), StoreError> {
    let key = ItemKey { pk: keys::session_pk(sid), sk: keys::SESSION_SK.to_owned() };
    let inserted_session = writes.iter().find_map(|w| match w {
        Write::Insert(Record::Session(s)) => Some(s),
        _ => None,
    });
    if inserted_session.is_some() && view.exists {
        return Err(StoreError::Conflict);
    }
    if inserted_session.is_none() && !view.exists {
        // No session item: every record in an item of its own (as earlier versions stored them).
        for write in writes {
            match write {
                Write::Insert(record) => {
                    plan.separate.push(ConditionalPut::insert(record_item(record)?));
                    plan.pointers.extend(record.txn_pointer());
                    plan.ledger.extend(LedgerEntry::of(record));
                }
                Write::Update { record, expected_version } => {
                    plan.separate.push(ConditionalPut::update(record_item(record)?, *expected_version));
                    plan.ledger.extend(LedgerEntry::of(record).filter(|_| presumed_reached(record)));
                }
            }
        }
        return Ok(());
    }
    let session_user = writes.iter().find_map(|w| match write_record(w) {
        Record::Session(s) => Some(s.user_id().as_str().to_owned()),
        _ => None,
    });
    let user = session_user.as_deref();
    let mut update = AggregateUpdate {
        session: sid.clone(),
        key: key.clone(),
        set: Vec::new(),
        set_if_absent: Vec::new(),
        remove: Vec::new(),
        conditions: Vec::new(),
    };
    if inserted_session.is_none() {
        update.conditions.push(Condition::Exists);
    }
    let mut obligations: Vec<(&Obligation, Option<u64>)> = Vec::new();
    for write in writes {
        match write {
            Write::Insert(Record::Session(_)) => {}
            Write::Update { record: Record::Session(s), expected_version } => {
                if view.known && view.session_version != Some(*expected_version) {
                    return Err(StoreError::Conflict);
                }
                update.conditions.push(Condition::SessionVersion(*expected_version));
                let attributes: Item = dynamo_serde::to_item(s)
                    .map_err(|e| StoreError::Invalid(format!("cannot serialise session {}: {e}", s.id())))?;
                for field in SESSION_OPTIONAL_FIELDS {
                    if !attributes.contains_key(field) {
                        update.remove.push(field.to_owned());
                    }
                }
                // A session of an earlier version listed its user's sessions on GSI1; the sweep's
                // scan gives it a user-list item instead, and a change drops those keys (a session
                // item carries no other GSI1 entry).
                update.remove.extend([GSI1PK.to_owned(), GSI1SK.to_owned()]);
                update.set.extend(attributes);
                // REFUNDED: its pass is revoked, listed on GSI3 from the first write that stores
                // it so (the planner does not know the stored status; `if_not_exists` keeps the
                // entry where that write put it, whatever later writes of the session say).
                if let Some((gsi3pk, gsi3sk)) = keys::revoked_index(s) {
                    update.set_if_absent.push((GSI3PK.to_owned(), string(gsi3pk)));
                    update.set_if_absent.push((GSI3SK.to_owned(), string(gsi3sk)));
                }
                // Its vehicle's list: put with the session, so these change nothing (and write no
                // index entry) but on a session of an earlier version, which gets its entry.
                let (gsi4pk, gsi4sk) = keys::vehicle_index(s);
                update.set_if_absent.push((GSI4PK.to_owned(), string(gsi4pk)));
                update.set_if_absent.push((GSI4SK.to_owned(), string(gsi4sk)));
            }
            Write::Insert(Record::Obligation(o)) => obligations.push((o, None)),
            Write::Update { record: Record::Obligation(o), expected_version } => {
                obligations.push((o, Some(*expected_version)));
            }
            Write::Insert(record) => {
                let name = attr_name(record).unwrap_or_default();
                if view.embedded.contains_key(&name) {
                    return Err(StoreError::Conflict);
                }
                update.conditions.push(Condition::Absent(name.clone()));
                update.set.push((name, embedded_value(record, user)?));
                plan.pointers.extend(record.txn_pointer());
                // Inserted already final: that is reaching the state.
                plan.ledger.extend(LedgerEntry::of(record));
            }
            Write::Update { record, expected_version } => {
                let name = attr_name(record).unwrap_or_default();
                let entry = LedgerEntry::of(record);
                match view.embedded.get(&name) {
                    Some(v) if v == expected_version => {
                        update.conditions.push(Condition::Version(name.clone(), *expected_version));
                        if let Some(entry) = entry {
                            let state = status_of(record).unwrap_or_default();
                            let reached = if view.known {
                                view.statuses.get(&name).map(String::as_str) != Some(state)
                            } else {
                                presumed_reached(record)
                            };
                            if reached {
                                plan.ledger.push(entry);
                            } else if !view.known {
                                // Checked: was it in this state already?
                                update.conditions.push(Condition::Status(name.clone(), state));
                            }
                        }
                        update.set.push((name, embedded_value(record, user)?));
                    }
                    Some(_) => return Err(StoreError::Conflict),
                    None => {
                        plan.separate.push(ConditionalPut::update(record_item(record)?, *expected_version));
                        plan.ledger.extend(entry.filter(|_| presumed_reached(record)));
                    }
                }
            }
        }
    }
    plan_obligations(&obligations, view, user, &mut update, plan)?;

    if let Some(session) = inserted_session {
        let mut item = record_item(&Record::Session(session.clone()))?;
        item.extend(update.set);
        for (name, value) in update.set_if_absent {
            item.entry(name).or_insert(value);
        }
        plan.aggregates.push(AggregateOp::Put { session: sid.clone(), key, item });
    } else if !update.is_check_only() || update.conditions.iter().any(|c| *c != Condition::Exists) {
        plan.aggregates.push(AggregateOp::Update(update));
    }
    Ok(())
}

/// Places each obligation written (see the module docs) and keeps the due slot right.
fn plan_obligations(
    obligations: &[(&Obligation, Option<u64>)],
    view: &View,
    user: Option<&str>,
    update: &mut AggregateUpdate,
    plan: &mut Plan,
) -> Result<(), StoreError> {
    if obligations.is_empty() {
        return Ok(());
    }
    // Where each obligation is now.
    let mut placed: Vec<(&Obligation, Option<u64>, Place, Place)> = Vec::with_capacity(obligations.len());
    for &(o, expected) in obligations {
        let name = format!("{OBLIGATION_ATTR}{}", o.target_id());
        let before = match (expected, view.embedded.get(&name)) {
            (None, None) => Place::New,
            (None, Some(_)) => return Err(StoreError::Conflict),
            (Some(e), Some(v)) if e == *v => Place::Embedded,
            (Some(_), Some(_)) => return Err(StoreError::Conflict),
            (Some(_), None) => Place::Own,
        };
        placed.push((o, expected, before, Place::Own));
    }
    let written: HashSet<&str> = obligations.iter().map(|(o, _)| o.target_id()).collect();
    // Where each goes: the slot's holder keeps it if it stays embedded and open; the others ask
    // in commit order.
    let mut slot = view.slot.clone().filter(|t| !written.contains(t.as_str()));
    placed.sort_by_key(|(o, ..)| view.slot.as_deref() != Some(o.target_id()));
    for (o, _, before, after) in &mut placed {
        let on_a_list = Record::Obligation((*o).clone()).attention_gsi1().is_some();
        *after = if *before == Place::Own || on_a_list {
            Place::Own
        } else if !o.is_open() {
            Place::Embedded
        } else if slot.is_none() {
            slot = Some(o.target_id().to_owned());
            Place::Embedded
        } else {
            Place::Own
        };
    }
    let mut touches_slot = false;
    for (o, expected, before, after) in &placed {
        let record = Record::Obligation((*o).clone());
        let name = format!("{OBLIGATION_ATTR}{}", o.target_id());
        match (before, after, expected) {
            (Place::Own, _, Some(v)) => plan.separate.push(ConditionalPut::update(record_item(&record)?, *v)),
            (Place::New, Place::Own, _) => {
                update.conditions.push(Condition::Absent(name));
                plan.separate.push(ConditionalPut::insert(record_item(&record)?));
            }
            (Place::Embedded, Place::Own, Some(v)) => {
                touches_slot = true;
                update.conditions.push(Condition::Version(name.clone(), *v));
                update.remove.push(name);
                plan.separate.push(ConditionalPut::insert(record_item(&record)?));
            }
            (_, Place::Embedded, expected) => {
                touches_slot = true;
                update.conditions.push(match expected {
                    Some(v) => Condition::Version(name.clone(), *v),
                    None => Condition::Absent(name.clone()),
                });
                update.set.push((name, embedded_value(&record, user)?));
            }
            (Place::Own | Place::Embedded, _, None) | (_, Place::New, _) => {
                return Err(StoreError::Invalid("obligation placed nowhere".into()));
            }
        }
    }
    if !touches_slot {
        return Ok(());
    }
    update.conditions.push(match &view.slot {
        Some(t) => Condition::SlotHeldBy(t.clone()),
        None => Condition::SlotFree,
    });
    match &slot {
        Some(holder) => {
            if let Some((o, _)) = obligations.iter().find(|(o, _)| o.target_id() == holder) {
                let Some((gsi2pk, gsi2sk)) = Record::Obligation((*o).clone()).due_index() else {
                    return Err(StoreError::Invalid("the due slot's holder is not open".into()));
                };
                update.set.push((GSI2PK.to_owned(), string(gsi2pk)));
                update.set.push((GSI2SK.to_owned(), string(gsi2sk)));
                update.set.push((DUE_TARGET.to_owned(), string(holder.as_str())));
            }
        }
        None if view.slot.is_some() => {
            update.remove.extend([GSI2PK.to_owned(), GSI2SK.to_owned(), DUE_TARGET.to_owned()]);
        }
        None => {}
    }
    Ok(())
}

/// The key attributes of `key`.
pub(super) fn key_item(key: &ItemKey) -> Item {
    HashMap::from([(PK.to_owned(), string(&key.pk)), (SK.to_owned(), string(&key.sk))])
}

#[cfg(test)]
mod tests {
    use parkpay_domain::{
        BookingRequest, Hours, LotCatalog, LotId, Obligation, ParkingSession, Payment, PaymentId, PaymentInstrument,
        SessionId, SuccessReport, Timestamp, UserId, VehicleNumber,
    };

    use super::*;
    use crate::{LedgerKind, LedgerState};

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms).unwrap()
    }

    fn session(user: &str) -> ParkingSession {
        let request = BookingRequest {
            user_id: UserId::parse(user).unwrap(),
            lot_id: LotId::parse("MG-ROAD-1").unwrap(),
            vehicle: VehicleNumber::parse("KA01AB1234").unwrap(),
            hours: Hours::new(2, 24).unwrap(),
        };
        ParkingSession::book(&LotCatalog::default_local(), SessionId::from_random([7; 16]), request, at(1_000)).unwrap()
    }

    /// The create-payment commit and the callback's, as the service makes them.
    fn paid_path(user: &str) -> (ParkingSession, [Vec<Write>; 2]) {
        let booked = session(user);
        let mut started = booked.clone();
        let p = Payment::start(PaymentId::from_random([9; 16]), &booked, &[], PaymentInstrument::PayPage, at(2_000))
            .unwrap();
        started.note_payment_started(at(2_000));
        let o = Obligation::check_payment(&p, at(2_000));
        let create = vec![
            Write::Insert(Record::Payment(p.clone())),
            Write::Update { record: Record::Session(started.clone()), expected_version: booked.version() },
            Write::Insert(Record::Obligation(o.clone())),
        ];
        let mut paid = p.clone();
        let report = SuccessReport {
            amount: p.amount(),
            provider_txn_id: Some("T2611011845123456789012345".into()),
            utr: Some("612345678901".into()),
        };
        assert!(paid.succeed(report, at(3_000)).unwrap().is_applied());
        let mut done = started.clone();
        assert!(done.mark_paid(paid.id(), paid.amount(), at(3_000)).unwrap().is_applied());
        let mut ended = o.clone();
        assert!(ended.done("paid", at(3_000)).is_applied());
        let callback = vec![
            Write::Update { record: Record::Payment(paid), expected_version: p.version() },
            Write::Update { record: Record::Session(done), expected_version: started.version() },
            Write::Update { record: Record::Obligation(ended), expected_version: o.version() },
        ];
        (booked, [create, callback])
    }

    fn one_update(plan: &Plan) -> &AggregateUpdate {
        assert!(plan.separate.is_empty(), "nothing in items of their own");
        match plan.aggregates.as_slice() {
            [AggregateOp::Update(u)] => u,
            other => panic!("expected one UpdateItem, got {other:?}"),
        }
    }

    #[test]
    fn the_paid_path_is_one_update_per_commit_on_assumptions_it_checks() {
        let (s, [create, callback]) = paid_path("driver-1");
        let planned = super::plan(&create, &HashMap::new()).unwrap();
        assert_eq!(planned.pointers.len(), 1, "the payment's pointer");
        let u = one_update(&planned);
        let target = match &create[0] {
            Write::Insert(Record::Payment(p)) => p.id().as_str().to_owned(),
            _ => unreachable!(),
        };
        assert!(u.conditions.contains(&Condition::Exists));
        assert!(u.conditions.contains(&Condition::SessionVersion(s.version())));
        assert!(u.conditions.contains(&Condition::Absent(format!("P#{target}"))));
        assert!(u.conditions.contains(&Condition::Absent(format!("O#{target}"))));
        assert!(u.conditions.contains(&Condition::SlotFree));
        let set: HashMap<_, _> = u.set.iter().cloned().collect();
        assert_eq!(set.get(DUE_TARGET), Some(&string(target.as_str())));
        assert!(set.contains_key(GSI2PK) && set.contains_key(GSI2SK));

        let planned = super::plan(&callback, &HashMap::new()).unwrap();
        assert!(planned.pointers.is_empty());
        let u = one_update(&planned);
        assert!(u.conditions.contains(&Condition::Version(format!("P#{target}"), 1)));
        assert!(u.conditions.contains(&Condition::Version(format!("O#{target}"), 1)));
        assert!(u.conditions.contains(&Condition::SlotHeldBy(target.clone())));
        for gone in [GSI2PK, GSI2SK, DUE_TARGET] {
            assert!(u.remove.iter().any(|r| r == gone), "{gone} removed");
        }
    }

    /// What a failed condition shows decides the next plan: a record elsewhere is written there,
    /// another version is a conflict before anything is sent.
    #[test]
    fn known_views_place_records_or_refuse() {
        let (s, [_, callback]) = paid_path("driver-1");
        let sid = s.id().clone();
        // Stored by an earlier version: nothing embedded.
        let mut item = record_item(&Record::Session(s.clone())).unwrap();
        item.insert(VERSION.to_owned(), AttributeValue::N("2".into()));
        let view = View::known(Some(&item)).unwrap();
        let planned = super::plan(&callback, &HashMap::from([(sid.clone(), view)])).unwrap();
        assert_eq!(planned.separate.len(), 2, "payment and obligation where they are");
        let u = match planned.aggregates.as_slice() {
            [AggregateOp::Update(u)] => u,
            _ => panic!(),
        };
        assert_eq!(u.conditions, vec![Condition::Exists, Condition::SessionVersion(2)]);
        // The session moved on meanwhile.
        item.insert(VERSION.to_owned(), AttributeValue::N("3".into()));
        let view = View::known(Some(&item)).unwrap();
        assert!(matches!(super::plan(&callback, &HashMap::from([(sid.clone(), view)])), Err(StoreError::Conflict)));
        // No session item at all.
        let view = View::known(None).unwrap();
        let planned = super::plan(&callback, &HashMap::from([(sid, view)])).unwrap();
        assert!(planned.aggregates.is_empty());
        assert_eq!(planned.separate.len(), 3);
    }

    #[test]
    fn a_second_open_obligation_gets_an_item_of_its_own() {
        let (_, [create, _]) = paid_path("driver-1");
        let Write::Insert(Record::Obligation(o)) = &create[2] else { unreachable!() };
        let s = o.session_id().clone();
        let mut view = View::assumed(&[]);
        view.known = true;
        view.slot = Some("PPOTHER".into());
        view.session_version = Some(1);
        let planned = super::plan(&create, &HashMap::from([(s, view)])).unwrap();
        assert_eq!(planned.separate.len(), 1, "the obligation");
        let u = match planned.aggregates.as_slice() {
            [AggregateOp::Update(u)] => u,
            _ => panic!(),
        };
        assert!(!u.set.iter().any(|(k, _)| k == DUE_TARGET || k.starts_with(OBLIGATION_ATTR)));
        assert!(u.conditions.contains(&Condition::Absent(format!("O#{}", o.target_id()))));
    }

    #[test]
    fn embedded_records_round_trip_without_what_the_item_says() {
        let (booked, [create, callback]) = paid_path("driver-1");
        let mut item = record_item(&Record::Session(booked.clone())).unwrap();
        let mut expected = Vec::new();
        for write in create.iter().chain(&callback) {
            let record = write_record(write);
            if let Some(name) = attr_name(record) {
                item.insert(name, embedded_value(record, Some("driver-1")).unwrap());
                expected.retain(|r: &Record| r.key() != record.key());
                expected.push(record.clone());
            }
        }
        let payment = item.iter().find(|(k, _)| k.starts_with(PAYMENT_ATTR)).unwrap().1.as_m().unwrap();
        assert!(!payment.contains_key("session_id") && !payment.contains_key("user_id"));
        let (session, mut records) = read_session_item(item.clone()).unwrap();
        assert_eq!(session, booked);
        records.sort_by_key(Record::key);
        expected.sort_by_key(Record::key);
        assert_eq!(records, expected);
        // A payment of another user keeps its user_id.
        let Write::Update { record, .. } = &callback[0] else { unreachable!() };
        let AttributeValue::M(kept) = embedded_value(record, Some("someone-else")).unwrap() else { panic!() };
        assert!(kept.contains_key("user_id"));
        // Corrupt embedded records are errors, never panics.
        for (name, value) in [
            ("P#PPX", string("not a map")),
            ("O#PPX", AttributeValue::M(HashMap::new())),
            ("R#RF1", payment_value(&item)),
        ] {
            let mut bad = item.clone();
            bad.insert(name.to_owned(), value);
            assert!(matches!(read_session_item(bad), Err(StoreError::Corrupt(_))), "{name}");
        }
    }

    fn payment_value(item: &Item) -> AttributeValue {
        item.iter().find(|(k, _)| k.starts_with(PAYMENT_ATTR)).unwrap().1.clone()
    }

    #[test]
    fn session_optional_fields_are_listed() {
        let (_, [_, callback]) = paid_path("driver-1");
        let Write::Update { record: Record::Session(paid), .. } = &callback[1] else { unreachable!() };
        let mut paid = paid.clone();
        let gate = parkpay_domain::GateId::parse("north-1").unwrap();
        let scanned = paid.updated_at();
        assert!(paid.record_scan(parkpay_domain::ScanKind::Entry, gate, scanned, scanned).unwrap().is_applied());
        let extension = parkpay_domain::PaymentId::parse("PX1").unwrap();
        assert!(paid.extend(&extension, 1, parkpay_domain::Paise::new(5_000), scanned).unwrap().is_applied());
        let with: Item = dynamo_serde::to_item(&paid).unwrap();
        let without: Item = dynamo_serde::to_item(session("driver-1")).unwrap();
        let mut optional: Vec<&str> = with.keys().filter(|k| !without.contains_key(*k)).map(String::as_str).collect();
        optional.sort_unstable();
        assert_eq!(optional, SESSION_OPTIONAL_FIELDS);
    }

    /// After [`paid_path`]: a refund of `amount` (all that is left when `None`) requested, then
    /// its success recorded, as the service commits them. Returns the commits and the session as
    /// the last one stores it.
    fn refund_path(user: &str, amount: Option<u64>) -> (ParkingSession, Vec<Vec<Write>>) {
        let (_, [create, callback]) = paid_path(user);
        let (Write::Update { record: Record::Payment(paid), .. }, Write::Update { record: Record::Session(s), .. }) =
            (&callback[0], &callback[1])
        else {
            unreachable!()
        };
        let request = parkpay_domain::RefundRequest {
            amount: amount.map(parkpay_domain::Paise::new),
            reason: Some("left early".into()),
            requested_by: UserId::parse(user).unwrap(),
            by_operator: false,
        };
        let r = parkpay_domain::Refund::request(
            parkpay_domain::RefundId::from_random([5; 16]),
            paid,
            &[],
            request,
            at(4_000),
        )
        .unwrap();
        let mut asked = paid.clone();
        asked.note_refund_requested(at(4_000));
        let o = Obligation::see_refund_through(&r, false, at(4_000));
        let requested = vec![
            Write::Insert(Record::Refund(r.clone())),
            Write::Update { record: Record::Payment(asked.clone()), expected_version: paid.version() },
            Write::Insert(Record::Obligation(o.clone())),
        ];
        let (mut done_r, mut done_p, mut done_s) = (r.clone(), asked.clone(), s.clone());
        let applied = parkpay_domain::record_refund_success(&mut done_r, &mut done_p, &mut done_s, at(5_000));
        assert!(applied.unwrap().is_applied());
        let mut ended = o.clone();
        assert!(ended.done("refunded", at(5_000)).is_applied());
        let succeeded = vec![
            Write::Update { record: Record::Refund(done_r), expected_version: r.version() },
            Write::Update { record: Record::Payment(done_p), expected_version: asked.version() },
            Write::Update { record: Record::Session(done_s.clone()), expected_version: s.version() },
            Write::Update { record: Record::Obligation(ended), expected_version: o.version() },
        ];
        (done_s, vec![create, callback, requested, succeeded])
    }

    /// The commit that stores a session REFUNDED lists its pass as revoked, at that commit's time,
    /// only where no entry is yet (`if_not_exists`); no other commit touches `GSI3`.
    #[test]
    fn a_full_refund_revokes_the_pass_once() {
        let (refunded, commits) = refund_path("driver-1", None);
        assert_eq!(refunded.status(), parkpay_domain::SessionStatus::Refunded);
        let updates: Vec<AggregateUpdate> =
            commits.iter().skip(1).map(|w| one_update(&super::plan(w, &HashMap::new()).unwrap()).clone()).collect();
        let revoked_sk = format!("{:015}#{}", 5_000, refunded.id());
        let gsi3 = |u: &AggregateUpdate| -> Vec<(String, AttributeValue)> {
            u.set_if_absent.iter().filter(|(k, _)| k.starts_with("GSI3")).cloned().collect()
        };
        assert_eq!(
            gsi3(updates.last().unwrap()),
            vec![(GSI3PK.to_owned(), string("PASS_REVOKED")), (GSI3SK.to_owned(), string(revoked_sk))]
        );
        for u in &updates {
            assert!(
                !u.set.iter().any(|(k, _)| k.starts_with("GSI3")) && !u.remove.iter().any(|k| k.starts_with("GSI3"))
            );
        }
        assert!(updates[..updates.len() - 1].iter().all(|u| gsi3(u).is_empty()));

        let (partly, commits) = refund_path("driver-1", Some(3_000));
        assert_eq!(partly.status(), parkpay_domain::SessionStatus::PartiallyRefunded);
        for writes in &commits[1..] {
            assert!(gsi3(one_update(&super::plan(writes, &HashMap::new()).unwrap())).is_empty());
        }
    }

    /// The plan carries the ledger entry of each payment or refund a commit moves into a final
    /// state, and only those: a later change of a final record (a refund's, on its payment) adds
    /// none, and is conditioned on the status it presumes (so that a wrong presumption shows).
    #[test]
    fn ledger_entries_follow_final_states() {
        let (_, commits) = refund_path("driver-1", Some(3_000));
        let [create, callback, requested, succeeded] = commits.as_slice() else { unreachable!() };
        let ledger = |writes: &Vec<Write>| {
            let planned = super::plan(writes, &HashMap::new()).unwrap();
            let u = one_update(&planned).clone();
            (planned.ledger, u.conditions)
        };
        let status = |c: &Condition| matches!(c, Condition::Status(..));
        let (entries, conditions) = ledger(create);
        assert!(entries.is_empty() && !conditions.iter().any(status));
        let (entries, conditions) = ledger(callback);
        let [paid] = entries.as_slice() else { panic!("{entries:?}") };
        assert_eq!((paid.kind, paid.state, paid.final_at), (LedgerKind::Payment, LedgerState::Success, at(3_000)));
        assert_eq!(paid.provider_txn_id.as_deref(), Some("T2611011845123456789012345"));
        assert!(!conditions.iter().any(status));
        let target = paid.merchant_txn_id.clone();
        // The payment's version bump for a refund, then the refund's success with the payment's
        // `refunded`: no payment entry again, each checked.
        for (writes, refunds) in [(requested, 0), (succeeded, 1)] {
            let (entries, conditions) = ledger(writes);
            assert!(entries.iter().all(|e| e.kind == LedgerKind::Refund), "{entries:?}");
            assert_eq!(entries.len(), refunds);
            assert!(conditions.contains(&Condition::Status(format!("P#{target}"), "SUCCESS")), "{conditions:?}");
        }
        let (entries, _) = ledger(succeeded);
        assert_eq!(
            (entries[0].state, entries[0].final_at, entries[0].amount.get()),
            (LedgerState::Success, at(5_000), 3_000)
        );

        // A success written by a clock behind the payment's last change: presumed already
        // SUCCESS, checked; once the item shows it PENDING, its entry.
        let Write::Update { record: Record::Payment(p), expected_version } = &callback[0] else { unreachable!() };
        let mut skewed = callback.clone();
        let Write::Insert(Record::Payment(started)) = &create[0] else { unreachable!() };
        let mut behind = started.clone();
        assert!(behind.note_upi_link("upi://pay?x", at(4_000)).is_applied());
        let report = SuccessReport { amount: p.amount(), provider_txn_id: None, utr: None };
        assert!(behind.succeed(report, at(3_500)).unwrap().is_applied());
        assert_eq!((behind.succeeded_at(), behind.updated_at()), (Some(at(3_500)), at(4_000)));
        skewed[0] = Write::Update { record: Record::Payment(behind.clone()), expected_version: *expected_version };
        let (entries, conditions) = ledger(&skewed);
        assert!(entries.is_empty());
        let name = format!("P#{target}");
        assert!(conditions.contains(&Condition::Status(name.clone(), "SUCCESS")));
        let mut item = record_item(&Record::Session(session("driver-1"))).unwrap();
        item.insert(VERSION.to_owned(), AttributeValue::N("2".into()));
        item.insert(name.clone(), embedded_value(&Record::Payment(started.clone()), Some("driver-1")).unwrap());
        item.insert("O#".to_owned() + &target, embedded_value(write_record(&create[2]), Some("driver-1")).unwrap());
        let sid = started.session_id().clone();
        let known = View::known(Some(&item)).unwrap();
        assert_eq!(known.statuses.get(&name).map(String::as_str), Some("PENDING"));
        let planned = super::plan(&skewed, &HashMap::from([(sid.clone(), known)])).unwrap();
        assert_eq!(planned.ledger.iter().map(|e| e.final_at).collect::<Vec<_>>(), [at(4_000)]);
        assert!(!one_update(&planned).conditions.iter().any(status));
        // Known SUCCESS already (the refund request's commit, on the item as the callback left
        // it): nothing, nothing checked.
        item.insert(name, embedded_value(&Record::Payment(p.clone()), Some("driver-1")).unwrap());
        let planned = super::plan(requested, &HashMap::from([(sid, View::known(Some(&item)).unwrap())])).unwrap();
        assert!(planned.ledger.is_empty() && !one_update(&planned).conditions.iter().any(status));
    }

    /// Every update of a session sets its vehicle-index keys only where absent (a session of an
    /// earlier version gets them; no other's change); an insert puts them with the session.
    #[test]
    fn the_vehicle_index_is_set_once() {
        let (booked, commits) = refund_path("driver-1", None);
        let expected = vec![
            (GSI4PK.to_owned(), string("VEH#KA-01-AB-1234")),
            (GSI4SK.to_owned(), string(format!("{:015}#{}", 1_000, booked.id()))),
        ];
        for writes in &commits {
            let planned = super::plan(writes, &HashMap::new()).unwrap();
            let u = one_update(&planned);
            let gsi4: Vec<_> = u.set_if_absent.iter().filter(|(k, _)| k.starts_with("GSI4")).cloned().collect();
            let writes_session = writes.iter().any(|w| matches!(write_record(w), Record::Session(_)));
            assert_eq!(gsi4, if writes_session { expected.clone() } else { vec![] });
            assert!(
                !u.set.iter().any(|(k, _)| k.starts_with("GSI4")) && !u.remove.iter().any(|k| k.starts_with("GSI4"))
            );
        }
        let item = record_item(&Record::Session(session("driver-1"))).unwrap();
        assert_eq!(item.get(GSI4PK), Some(&expected[0].1));
        assert_eq!(item.get(GSI4SK), Some(&expected[1].1));
    }

    /// The session item along `commits`, each planned on assumptions and applied as DynamoDB
    /// would (`if_not_exists` included); its size after each, and the item at the end.
    fn item_sizes(booked: &ParkingSession, commits: &[Vec<Write>]) -> (Vec<usize>, Item) {
        let mut item = record_item(&Record::Session(booked.clone())).unwrap();
        item.insert(WRITE_TOKEN.to_owned(), string("0".repeat(32)));
        let mut sizes = Vec::new();
        for writes in commits {
            let planned = super::plan(writes, &HashMap::new()).unwrap();
            let u = one_update(&planned);
            item.extend(u.set.iter().cloned());
            for (name, value) in &u.set_if_absent {
                item.entry(name.clone()).or_insert_with(|| value.clone());
            }
            for name in &u.remove {
                item.remove(name);
            }
            sizes.push(item.iter().map(|(k, v)| k.len() + value_size(v)).sum());
        }
        (sizes, item)
    }

    /// The revoked-pass keys add under 100 bytes to a REFUNDED session's item, and only to the
    /// commit that makes it so: at the lengths of the contract tests and the cost test, the item
    /// stays within the same kilobyte (write units are billed per KB of the larger of the item
    /// before and after).
    #[test]
    fn revoking_a_pass_adds_few_bytes() {
        for user in ["driver-1", &"u".repeat(UserId::MAX_LEN)] {
            let (_, commits) = refund_path(user, None);
            let booked = session(user);
            let (sizes, item) = item_sizes(&booked, &commits[1..]);
            let keys: usize = [GSI3PK, GSI3SK].iter().map(|k| k.len() + value_size(&item[*k])).sum();
            let last = *sizes.last().unwrap();
            eprintln!("refunded session item ({} B user id): {sizes:?} B, of which GSI3 keys {keys} B", user.len());
            assert!(keys < 100, "{keys}");
            if user.len() < 16 {
                assert_eq!(last.div_ceil(1024), (last - keys).div_ceil(1024), "{last} B with {keys} B of GSI3 keys");
            }
        }
    }

    /// DynamoDB's size of an attribute value (names and values in UTF-8; a number about one byte
    /// per two digits plus one; a map 3 bytes plus 1 per element).
    fn value_size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
            AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + value_size(v) + 1).sum::<usize>(),
            _ => 1,
        }
    }

    /// The paid path is 12 write units only while the session item stays under 1 KB: with the
    /// longest user id, lot id and vehicle number there are, it still does (at its largest: after
    /// the payment's creation, or after its success).
    #[test]
    fn a_paid_session_item_stays_under_one_kilobyte_at_the_longest() {
        let user = "u".repeat(UserId::MAX_LEN);
        let (booked, [create, callback]) = paid_path(&user);
        let mut item = record_item(&Record::Session(booked)).unwrap();
        item.insert(WRITE_TOKEN.to_owned(), string("0".repeat(32)));
        let mut largest = 0;
        for writes in [&create, &callback] {
            let planned = super::plan(writes, &HashMap::new()).unwrap();
            let u = one_update(&planned);
            item.extend(u.set.iter().cloned());
            for name in &u.remove {
                item.remove(name);
            }
            let size: usize = item.iter().map(|(k, v)| k.len() + value_size(v)).sum();
            largest = largest.max(size);
        }
        // The test's lot id and vehicle number are shorter than the longest allowed (the vehicle
        // is in the item twice, as `vehicle` and in `GSI4PK`, but its canonical form is at most
        // 14 bytes, one more than the test's: the input's longest covers both).
        let slack = (LotId::MAX_LEN - "MG-ROAD-1".len()) + (VehicleNumber::MAX_INPUT_LEN - "KA01AB1234".len());
        eprintln!("largest paid session item: {largest} B + {slack} B");
        assert!(largest + slack < 1024, "{largest} B + {slack} B");
    }
}
