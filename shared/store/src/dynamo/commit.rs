//! Sending a commit planned by [`aggregate`](super::aggregate).
//!
//! - A commit that writes one session item and nothing else (the usual case: booking, creating a
//!   payment, applying an outcome, reconciliation's claims) is one PutItem or UpdateItem. The
//!   transaction pointers of the payments and refunds it inserts are put first, each on its own,
//!   conditionally on `attribute_not_exists(PK)`: an id already used by another payment or refund
//!   is a conflict before anything else is written, and a pointer already there for this very
//!   record (a caller's retry with the same id) is left as it is. Should the session item's write
//!   then fail, the pointers stay: each names a record that does not exist (yet: a caller retries
//!   with the same id), which [`Store::find_txn`](crate::Store::find_txn)'s callers read as
//!   unknown. They are not deleted again: a concurrent commit with the same id may be relying on
//!   one, and no single conditional write can tell.
//! - One item of its own and nothing else: one conditional PutItem, as before.
//! - Anything else: one TransactWriteItems of all of it, pointers included.
//!
//! Before any of these, the settlement ledger entries of the payments and refunds the commit moves
//! into a final state ([`crate::ledger`]) are put, each on its own and all at once (beside the
//! pointers of a single write), conditionally on `attribute_not_exists(PK)`: an entry already
//! there (a replay, or a retry of a commit that failed after putting it) is left as it is, with
//! its first `final_at`, and is not an error. They are never part of a transaction (that would
//! bill each twice, and an entry already there would cancel it). Written ahead, no commit lands
//! without its entries; should the commit then fail, the entry stays, and names a final state
//! about to be written: the state came from PhonePe (a callback or a status check, whose caller
//! retries, and which reconciliation asks again until applied), so the record follows with the
//! same state a moment later (its `updated_at` that moment later than the entry's `final_at`).
//! The one state parkpay decides itself, a payment FAILED at PhonePe's timeout (`expire_payment`),
//! loses only to a concurrent write of the same payment's outcome from PhonePe: its entry then
//! records FAILED before PhonePe's SUCCESS, as a late success would. Deleting such an entry again
//! is not safe: a concurrent commit of the same outcome may be relying on it, and no single
//! conditional write can tell.
//!
//! A failed condition on a session item returns the item as stored; the commit is planned again
//! on it (at most [`MAX_PLANS`] times, then a conflict). The SDK's own retry of a write that went
//! through is recognised by the commit's token on the item (single writes) or by the
//! transaction's ClientRequestToken.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use parkpay_domain::SessionId;

use super::aggregate::{self, AggregateOp, AggregateUpdate, Condition, DUE_TARGET, Plan, STATUS, View, key_item};
use super::{
    DynamoStore, Item, commit_error, entity_from_item, failed_condition, invalid, ledger_item, op_error, pointer_item,
    request_token, string, user_list_item,
};
use crate::keys::{Entity, ItemKey, PK, TxnPointer, VERSION, WRITE_TOKEN};
use crate::{LedgerEntry, Record, StoreError, Write, validate_commit};

/// Plans a commit may take (each after a failed condition showed the item as stored) before it
/// is a conflict.
pub(super) const MAX_PLANS: u32 = 4;

/// What a commit has put ahead of its writes so far (not put again when it is planned again).
#[derive(Default)]
struct Written {
    pointers: bool,
    ledger: std::collections::HashSet<ItemKey>,
}

/// What one try of a plan came to.
enum Sent {
    Done,
    /// Conditions on these session items failed: here they are as stored.
    Learned(Vec<(SessionId, View)>),
    Failed(StoreError),
}

/// Expression attribute names and values of one request.
#[derive(Default)]
struct Expression {
    names: HashMap<String, String>,
    placeholders: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    fn name(&mut self, attribute: &str) -> String {
        if let Some(p) = self.placeholders.get(attribute) {
            return p.clone();
        }
        let p = format!("#n{}", self.placeholders.len());
        self.placeholders.insert(attribute.to_owned(), p.clone());
        self.names.insert(p.clone(), attribute.to_owned());
        p
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), value);
        p
    }

    fn values(self) -> (HashMap<String, String>, Option<HashMap<String, AttributeValue>>) {
        let values = (!self.values.is_empty()).then_some(self.values);
        (self.names, values)
    }
}

fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// The update and condition expressions of `update`; the update sets `token` too.
fn render(update: &AggregateUpdate, token: &str, e: &mut Expression) -> (Option<String>, String) {
    let mut expression = String::new();
    if !update.is_check_only() {
        let mut sets: Vec<String> =
            update.set.iter().map(|(name, value)| format!("{} = {}", e.name(name), e.value(value.clone()))).collect();
        for (name, value) in &update.set_if_absent {
            let name = e.name(name);
            sets.push(format!("{name} = if_not_exists({name}, {})", e.value(value.clone())));
        }
        sets.push(format!("{} = {}", e.name(WRITE_TOKEN), e.value(string(token))));
        expression = format!("SET {}", sets.join(", "));
        if !update.remove.is_empty() {
            let removes: Vec<String> = update.remove.iter().map(|name| e.name(name)).collect();
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
    }
    let conditions: Vec<String> = update
        .conditions
        .iter()
        .map(|c| match c {
            Condition::Exists => format!("attribute_exists({})", e.name(PK)),
            Condition::SessionVersion(v) => format!("{} = {}", e.name(VERSION), e.value(number(*v))),
            Condition::Version(name, v) => {
                format!("{}.{} = {}", e.name(name), e.name(VERSION), e.value(number(*v)))
            }
            Condition::Absent(name) => format!("attribute_not_exists({})", e.name(name)),
            Condition::Status(name, status) => {
                format!("{}.{} = {}", e.name(name), e.name(STATUS), e.value(string(*status)))
            }
            Condition::SlotHeldBy(target) => format!("{} = {}", e.name(DUE_TARGET), e.value(string(target))),
            Condition::SlotFree => format!("attribute_not_exists({})", e.name(DUE_TARGET)),
        })
        .collect();
    ((!expression.is_empty()).then_some(expression), conditions.join(" AND "))
}

/// A conditional PutItem that did not go through: `Ok` of the stored item its failed condition
/// returned (ALL_OLD; `None` when there is none), or the error (a transaction under way on the
/// item is a conflict: nothing was written).
pub(super) fn refused_put<R: std::fmt::Debug>(
    table: &str,
    err: SdkError<PutItemError, R>,
) -> Result<Option<Item>, StoreError> {
    if let SdkError::ServiceError(e) = &err
        && let PutItemError::TransactionConflictException(_) = e.err()
    {
        return Err(StoreError::Conflict);
    }
    match failed_condition(&err, |e| match e {
        PutItemError::ConditionalCheckFailedException(c) => Some(c),
        _ => None,
    }) {
        Some(image) => Ok(image),
        None => Err(op_error("PutItem", table, &err)),
    }
}

/// [`refused_put`] for a conditional UpdateItem.
fn refused_update<R: std::fmt::Debug>(
    table: &str,
    err: SdkError<UpdateItemError, R>,
) -> Result<Option<Item>, StoreError> {
    if let SdkError::ServiceError(e) = &err
        && let UpdateItemError::TransactionConflictException(_) = e.err()
    {
        return Err(StoreError::Conflict);
    }
    match failed_condition(&err, |e| match e {
        UpdateItemError::ConditionalCheckFailedException(c) => Some(c),
        _ => None,
    }) {
        Some(image) => Ok(image),
        None => Err(op_error("UpdateItem", table, &err)),
    }
}

impl DynamoStore {
    /// [`Store::commit`](crate::Store::commit): see the module docs.
    pub(super) async fn commit_writes(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        validate_commit(&writes)?;
        let token = request_token();
        // A new session's entry in its user's list goes first: if the commit then fails, the
        // entry names no session and the list leaves it out; the other way round, a session
        // could be stored and never listed.
        let user_lists: Vec<Item> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Insert(Record::Session(s)) => Some(user_list_item(s)),
                _ => None,
            })
            .collect();
        if !user_lists.is_empty() {
            self.put_plain(user_lists).await?;
        }
        let mut views: HashMap<SessionId, View> = HashMap::new();
        let mut put = Written::default();
        for attempt in 0..MAX_PLANS {
            let sent = match aggregate::plan(&writes, &views) {
                Ok(plan) => self.send(plan, &token, attempt, &mut put).await,
                Err(e) => Sent::Failed(e),
            };
            match sent {
                Sent::Done => return Ok(()),
                Sent::Learned(learned) => views.extend(learned),
                Sent::Failed(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn send(&self, mut plan: Plan, token: &str, attempt: u32, written: &mut Written) -> Sent {
        if written.pointers {
            plan.pointers.clear();
        }
        plan.ledger.retain(|e| !written.ledger.contains(&e.key()));
        for put in &mut plan.separate {
            put.item.insert(WRITE_TOKEN.to_owned(), string(token));
        }
        let single = plan.aggregates.len() == 1
            && plan.separate.is_empty()
            && !matches!(plan.aggregates.first(), Some(AggregateOp::Update(u)) if u.is_check_only());
        if single && let Some(op) = plan.aggregates.pop() {
            // Ledger entries and pointers at once, all before the session item's write.
            let pointers = async {
                for (key, pointer) in &plan.pointers {
                    self.put_pointer(key, pointer, token).await?;
                }
                Ok(())
            };
            let (ledger, pointers) = futures::future::join(self.put_ledger(&plan.ledger), pointers).await;
            if let Err(e) = ledger.and(pointers) {
                return Sent::Failed(e);
            }
            written.pointers = true;
            written.ledger.extend(plan.ledger.iter().map(LedgerEntry::key));
            return self.send_one(op, token).await;
        }
        // Otherwise the pointers go in the transaction (or there are none), the entries before it.
        if let Err(e) = self.put_ledger(&plan.ledger).await {
            return Sent::Failed(e);
        }
        written.ledger.extend(plan.ledger.iter().map(LedgerEntry::key));
        if plan.aggregates.is_empty()
            && plan.pointers.is_empty()
            && plan.separate.len() == 1
            && let Some(put) = plan.separate.pop()
        {
            return match self.put_one(put, token).await {
                Ok(()) => Sent::Done,
                Err(e) => Sent::Failed(e),
            };
        }
        self.send_transaction(plan, token, attempt).await
    }

    /// Puts a transaction pointer on its own, or finds the same pointer there already (a retry of
    /// a commit with the same id); another pointer under its key is a conflict.
    async fn put_pointer(&self, key: &ItemKey, pointer: &TxnPointer, token: &str) -> Result<(), StoreError> {
        let mut item = pointer_item(key.clone(), pointer)?;
        item.insert(WRITE_TOKEN.to_owned(), string(token));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let Err(err) = result else { return Ok(()) };
        match refused_put(&self.table, err)? {
            Some(stored) => {
                let existing: TxnPointer = entity_from_item(stored, Entity::Txn)?;
                if &existing == pointer { Ok(()) } else { Err(StoreError::Conflict) }
            }
            None => Err(StoreError::Conflict),
        }
    }

    /// Puts the ledger entries `entries`, each where none of its transaction and state is, all at
    /// once. An entry already there is fine (the first stays).
    async fn put_ledger(&self, entries: &[LedgerEntry]) -> Result<(), StoreError> {
        let puts = entries.iter().map(|entry| async move {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(ledger_item(entry)?))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(err) => match failed_condition(&err, |e| match e {
                    PutItemError::ConditionalCheckFailedException(c) => Some(c),
                    _ => None,
                }) {
                    Some(_) => Ok(()),
                    None => Err(op_error("PutItem", &self.table, &err)),
                },
            }
        });
        futures::future::join_all(puts).await.into_iter().collect()
    }

    /// One session item's write on its own.
    async fn send_one(&self, op: AggregateOp, token: &str) -> Sent {
        let session = op.session().clone();
        let image = match op {
            AggregateOp::Put { mut item, .. } => {
                item.insert(WRITE_TOKEN.to_owned(), string(token));
                let result = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                    .send()
                    .await;
                match result {
                    Ok(_) => return Sent::Done,
                    Err(err) => match refused_put(&self.table, err) {
                        Ok(image) => image,
                        Err(e) => return Sent::Failed(e),
                    },
                }
            }
            AggregateOp::Update(update) => {
                let mut e = Expression::default();
                let (expression, condition) = render(&update, token, &mut e);
                let (names, values) = e.values();
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key_item(&update.key)))
                    .set_update_expression(expression)
                    .condition_expression(condition)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(values)
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                    .send()
                    .await;
                match result {
                    Ok(_) => return Sent::Done,
                    Err(err) => match refused_update(&self.table, err) {
                        Ok(image) => image,
                        Err(e) => return Sent::Failed(e),
                    },
                }
            }
        };
        // The stored item carries this commit's token: this very write, retried by the SDK after
        // it went through.
        if image.as_ref().and_then(aggregate::write_token_of) == Some(token) {
            return Sent::Done;
        }
        match View::known(image.as_ref()) {
            Ok(view) => Sent::Learned(vec![(session, view)]),
            Err(e) => Sent::Failed(e),
        }
    }

    /// Everything in one TransactWriteItems.
    async fn send_transaction(&self, plan: Plan, token: &str, attempt: u32) -> Sent {
        match self.try_transaction(plan, token, attempt).await {
            Ok(sent) => sent,
            Err(e) => Sent::Failed(e),
        }
    }

    async fn try_transaction(&self, plan: Plan, token: &str, attempt: u32) -> Result<Sent, StoreError> {
        let table = self.table.as_str();
        let all_old = ReturnValuesOnConditionCheckFailure::AllOld;
        let mut items = Vec::new();
        for (key, pointer) in &plan.pointers {
            let mut item = pointer_item(key.clone(), pointer)?;
            item.insert(WRITE_TOKEN.to_owned(), string(token));
            // Absent, or this very pointer (a retry of a commit with the same id).
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk) OR (#sid = :sid AND #kind = :kind AND #id = :id)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sid", "session_id")
                .expression_attribute_names("#kind", "kind")
                .expression_attribute_names("#id", "id")
                .expression_attribute_values(":sid", string(pointer.session_id.as_str()))
                .expression_attribute_values(":kind", string(pointer.kind.as_str()))
                .expression_attribute_values(":id", string(&pointer.id))
                .build()
                .map_err(invalid)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        let mut aggregates_at = HashMap::new();
        for op in plan.aggregates {
            aggregates_at.insert(items.len(), op.session().clone());
            let item = match op {
                AggregateOp::Put { mut item, .. } => {
                    item.insert(WRITE_TOKEN.to_owned(), string(token));
                    let put = Put::builder()
                        .table_name(table)
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(#pk)")
                        .expression_attribute_names("#pk", PK)
                        .return_values_on_condition_check_failure(all_old.clone())
                        .build()
                        .map_err(invalid)?;
                    TransactWriteItem::builder().put(put).build()
                }
                AggregateOp::Update(update) if update.is_check_only() => {
                    let mut e = Expression::default();
                    let (_, condition) = render(&update, token, &mut e);
                    let (names, values) = e.values();
                    let check = ConditionCheck::builder()
                        .table_name(table)
                        .set_key(Some(key_item(&update.key)))
                        .condition_expression(condition)
                        .set_expression_attribute_names(Some(names))
                        .set_expression_attribute_values(values)
                        .return_values_on_condition_check_failure(all_old.clone())
                        .build()
                        .map_err(invalid)?;
                    TransactWriteItem::builder().condition_check(check).build()
                }
                AggregateOp::Update(update) => {
                    let mut e = Expression::default();
                    let (expression, condition) = render(&update, token, &mut e);
                    let (names, values) = e.values();
                    let update = Update::builder()
                        .table_name(table)
                        .set_key(Some(key_item(&update.key)))
                        .set_update_expression(expression)
                        .condition_expression(condition)
                        .set_expression_attribute_names(Some(names))
                        .set_expression_attribute_values(values)
                        .return_values_on_condition_check_failure(all_old.clone())
                        .build()
                        .map_err(invalid)?;
                    TransactWriteItem::builder().update(update).build()
                }
            };
            items.push(item);
        }
        for put in plan.separate {
            items.push(put.into_transact_item(table)?);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(format!("{token}-{attempt}"))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Sent::Done),
            Err(e) => e,
        };
        let reasons: Option<Vec<CancellationReason>> = match &err {
            SdkError::ServiceError(e) => match e.err() {
                TransactWriteItemsError::TransactionCanceledException(c) => Some(c.cancellation_reasons().to_vec()),
                _ => None,
            },
            _ => None,
        };
        let Some(reasons) = reasons else { return Err(commit_error(table, err)) };
        // A session item that is not as assumed is learned, and the commit planned again (an item
        // of its own may have failed only because of what was assumed). Failed conditions on other
        // items alone are a conflict.
        let mut learned = Vec::new();
        for (i, reason) in reasons.iter().enumerate() {
            match reason.code() {
                None | Some("None") => {}
                Some("ConditionalCheckFailed") => {
                    if let Some(session) = aggregates_at.get(&i) {
                        learned.push((session.clone(), View::known(reason.item())?));
                    }
                }
                _ => return Err(commit_error(table, err)),
            }
        }
        if learned.is_empty() {
            return Err(commit_error(table, err));
        }
        Ok(Sent::Learned(learned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SESSION_SK;

    #[test]
    fn expressions_name_every_attribute_and_condition() {
        let session = SessionId::from_random([1; 16]);
        let update = AggregateUpdate {
            session: session.clone(),
            key: ItemKey { pk: crate::keys::session_pk(&session), sk: SESSION_SK.to_owned() },
            set: vec![("P#PP1".into(), string("x")), ("GSI2SK".into(), string("y"))],
            set_if_absent: vec![],
            remove: vec!["paid_by".into()],
            conditions: vec![
                Condition::Exists,
                Condition::SessionVersion(3),
                Condition::Version("P#PP1".into(), 2),
                Condition::Absent("O#PP1".into()),
                Condition::SlotHeldBy("PP1".into()),
                Condition::SlotFree,
            ],
        };
        let mut e = Expression::default();
        let (expression, condition) = render(&update, "tok", &mut e);
        assert_eq!(expression.as_deref(), Some("SET #n0 = :v0, #n1 = :v1, #n2 = :v2 REMOVE #n3"));
        assert_eq!(
            condition,
            "attribute_exists(#n4) AND #n5 = :v3 AND #n0.#n5 = :v4 AND attribute_not_exists(#n6) AND #n7 = :v5 \
             AND attribute_not_exists(#n7)"
        );
        assert_eq!(e.names["#n0"], "P#PP1");
        assert_eq!(e.names["#n2"], WRITE_TOKEN);
        assert_eq!(e.names["#n7"], DUE_TARGET);
        assert_eq!(e.values[":v2"], string("tok"));
        assert_eq!(e.values[":v4"], number(2));
    }

    #[test]
    fn attributes_set_once_use_if_not_exists() {
        let session = SessionId::from_random([1; 16]);
        let update = AggregateUpdate {
            session: session.clone(),
            key: ItemKey { pk: crate::keys::session_pk(&session), sk: SESSION_SK.to_owned() },
            set: vec![("status".into(), string("REFUNDED"))],
            set_if_absent: vec![("GSI3PK".into(), string("PASS_REVOKED")), ("GSI3SK".into(), string("k"))],
            remove: vec![],
            conditions: vec![Condition::SessionVersion(3)],
        };
        assert!(!update.is_check_only());
        let mut e = Expression::default();
        let (expression, _) = render(&update, "tok", &mut e);
        assert_eq!(
            expression.as_deref(),
            Some("SET #n0 = :v0, #n1 = if_not_exists(#n1, :v1), #n2 = if_not_exists(#n2, :v2), #n3 = :v3")
        );
        assert_eq!((e.names["#n1"].as_str(), e.names["#n2"].as_str()), ("GSI3PK", "GSI3SK"));
        let only_once = AggregateUpdate { set: vec![], ..update };
        assert!(!only_once.is_check_only());
    }
}
