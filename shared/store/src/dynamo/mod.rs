//! [`Store`] on Amazon DynamoDB (AWS SDK for Rust 1.x).
//!
//! # Table design
//! One table holds everything (single-table design). Every key attribute is a String.
//!
//! | item | `PK` | `SK` | `GSI1PK` | `GSI1SK` | `GSI2PK` | `GSI2SK` | `GSI3PK` | `GSI3SK` | `GSI4PK` | `GSI4SK` |
//! |---|---|---|---|---|---|---|---|---|---|---|
//! | session (with its payments, refunds and obligations embedded) | `SESSION#{session_id}` | `#SESSION` | —³ | —³ | `DUE#{shard}`⁴ | `{next_attempt_at}#OBLIGATION#{target_id}`⁴ | `PASS_REVOKED`⁶ | `{revoked_at}#{session_id}`⁶ | `VEH#{vehicle}`⁷ | `{created_at}#{session_id}`⁷ |
//! | user-list entry | `USER#{user_id}` | `{created_at}#{session_id}` | — | — | — | — | — | — | — | — |
//! | obligation of its own⁵ | `SESSION#{session_id}` | `OBLIGATION#{target_id}` | `OVERDUE#{shard}`² or `NEEDS_PERSON#{shard}`² | `{due_by}#OBLIGATION#{target_id}`² or `{updated_at}#OBLIGATION#{target_id}`² | `DUE#{shard}`¹ | `{next_attempt_at}#OBLIGATION#{target_id}`¹ | — | — | — | — |
//! | payment or refund of an earlier version⁵ | `SESSION#{session_id}` | `PAYMENT#{payment_id}` / `REFUND#{refund_id}` | — | — | — | — | — | — | — | — |
//! | transaction pointer | `TXN#{payment_or_refund_id}` | `#TXN` | — | — | — | — | — | — | — | — |
//! | settlement ledger entry | `TXN#{payment_or_refund_id}` | `#LEDGER#{state}` | `LDAY#{date}#{shard}`⁸ | `{final_at}#{payment_or_refund_id}#{state}`⁸ | `PREF#{provider_txn_id}`⁹ | `{session_id}`⁹ | `UTR#{utr}`⁹ | `{session_id}`⁹ | — | — |
//! | idempotency record | `IDEMPOTENCY#{key}` | `#IDEMPOTENCY` | — | — | — | — | — | — | — | — |
//!
//! ¹ only while the obligation is open; `shard` is `00`…`31`, a hash of `target_id`
//!   ([`keys::due_shard`]). Items written by earlier versions may still carry `GSI2PK` =
//!   `PENDING` on payments and refunds; nothing reads that partition any more, and the next
//!   write of such an item (a whole-item Put) drops it.
//! ² `OVERDUE` only while the obligation is open and its deadline comes before its next attempt
//!   is late ([`Record::attention_gsi1`]); `NEEDS_PERSON` only while it needs a person. An open
//!   obligation whose attempt would be late first is on the overdue list through the due index
//!   (below). Items written by earlier versions carry `OVERDUE` keys on every open obligation;
//!   they are read as before, listed once, and dropped by the item's next write.
//! ³ Sessions written by earlier versions carry `GSI1PK` = `USER#{user_id}`, `GSI1SK` =
//!   `{created_at}#{session_id}` (their user's list was on `GSI1`), dropped by their next write;
//!   the sweep's scan gives each such session its user-list entry first.
//! ⁴ the entry of the one open obligation embedded in the session item, which `due_target` (S)
//!   names; absent when none is open. The layout of the session item, and when an obligation is
//!   kept in an item of its own instead, are in [`aggregate`].
//! ⁵ an obligation on an attention list's `GSI1`, or open while another holds the session item's
//!   due entry, is an item of its own; so are the payments, refunds and obligations earlier
//!   versions wrote (each stays where it is).
//! ⁶ only once the session is REFUNDED (a refund ended it, revoking its entry pass): set by the
//!   first write that stores it so, at that write's `updated_at` (`revoked_at`), with
//!   `if_not_exists`, so no later write moves it ([`keys::revoked_index`]). A session an earlier
//!   version wrote REFUNDED has none until its next write, which sets it at its own time.
//! ⁷ put with the session's item (the PutItem that inserts it) and never moved: its vehicle (the
//!   canonical registration number) and its booking time. Every UpdateItem of the session sets
//!   them again with `if_not_exists`: the same values, so no index write, except on a session an
//!   earlier version wrote without them, which gets its entry (at its booking time) so.
//! ⁸ `date` is the day in India (UTC+05:30) of `final_at`, `YYYY-MM-DD`; `shard` `00`…`07`, a
//!   hash of the transaction id ([`keys::ledger_shard`]); `state` `SUCCESS` | `FAILED`.
//! ⁹ only when the entry has PhonePe's transaction id (`GSI2`), a UTR (`GSI3`), of 1 to 256 bytes
//!   ([`keys::indexable_ref`]): a paid payment's, as PhonePe reports them. Refunds have neither.
//!
//! - `created_at`, `due_by` and the other times in sort keys are Unix milliseconds, zero-padded
//!   to 15 digits (enough for year 9999), so text order is time order.
//! - A session's item holds its payments, refunds and obligations as map attributes `P#{id}`,
//!   `R#{id}`, `O#{target_id}` ([`aggregate`]); the few records in items of their own share its
//!   partition (`SESSION#…`): one strongly consistent Query reads the whole aggregate.
//! - Sessions, and records in items of their own, keep their fields as native DynamoDB attributes
//!   (the domain's serde field names: ids, statuses and texts as S, amounts in paise and
//!   timestamps in Unix ms as N, a missing optional as NULL), plus `entity` = `SESSION` |
//!   `PAYMENT` | `REFUND` | `OBLIGATION`; embedded records likewise inside their map, less what
//!   the session item says already. Their `version` attribute (N) is the
//!   optimistic-concurrency check (an embedded record's, inside its map). Every item a commit
//!   writes conditionally (these, and transaction pointers) also carries `write_token`
//!   ([`keys::WRITE_TOKEN`]), unique to that commit. Reading ignores the key attributes (`PK`,
//!   `SK`, `GSI1PK` … `GSI4SK`), `due_target` and `write_token`.
//! - A session's entry in its user's list (`entity` = `USER_SESSION`, `session_id`) is an item of
//!   its own, written once, before the session, and never changed: a change to a session writes
//!   no index entry. An entry whose session is missing (its commit failed) is left out of the
//!   list.
//! - A transaction pointer (`entity` = `TXN`) has `kind` (`PAYMENT` | `REFUND`), `session_id`
//!   and `id`. It is put conditionally on `attribute_not_exists(PK)` just before the session
//!   item's write that inserts its payment or refund (in the same TransactWriteItems when the
//!   commit is one): a merchant transaction id is unique across payments and refunds, and is
//!   resolved without a scan. A pointer may outlive a failed commit (`commit.rs`); read without
//!   its record, it is unknown.
//! - A settlement ledger entry ([`crate::ledger`]; `entity` = `LEDGER`) has `kind` (`PAYMENT` |
//!   `REFUND`), `merchant_txn_id`, `payment_id`, `provider_txn_id` and `utr` (S, absent when
//!   none), `session_id`, `amount` (N, paise), `state` (`SUCCESS` | `FAILED`) and `final_at` (N,
//!   Unix ms): one item per transaction and final state, in the transaction's partition beside its
//!   pointer. It is put conditionally on `attribute_not_exists(PK)` just before the write of the
//!   commit that moves its payment or refund into that state (an entry already there is left as
//!   it is, with the first `final_at`), and never changed or deleted. `commit.rs` has why it is
//!   written ahead rather than in a transaction, and what an entry whose commit failed means.
//! - An index may hold items of different kinds under distinct partition key prefixes (DynamoDB
//!   indexes whatever item carries its key attributes); every read of an index names one
//!   partition key, so the kinds never mix. `GSI1`, `GSI2` and `GSI3` each do: the ledger entries
//!   (written once, never changed) carry their keys under prefixes of their own (`LDAY#`,
//!   `PREF#`, `UTR#`), so the ledger and its search need no index of their own.
//! - Index `GSI1` (hash `GSI1PK`, range `GSI1SK`, projection ALL) holds the attention lists'
//!   own entries: open obligations whose deadline comes before their next attempt is late under
//!   `OVERDUE#{shard}` by that deadline, and those needing a person under `NEEDS_PERSON#{shard}`
//!   by when they came to (32 shards each, like `GSI2`). Each entry carries the whole obligation
//!   as written. Sessions of earlier versions are on it too, under `USER#{user_id}` (³). And the
//!   settlement ledger by day: each entry under `LDAY#{date}#{shard}` by
//!   `{final_at}#{txn}#{state}`, the whole entry projected (a day's CSV reads nothing else). A
//!   day is spread over 8 shards: at a stadium's peak of 2,000 final states a second, 250 index
//!   writes a second per partition, within DynamoDB's 1,000.
//! - Index `GSI2` (hash `GSI2PK`, range `GSI2SK`, projection KEYS_ONLY) is sparse: each open
//!   obligation has exactly one entry, `GSI2PK` = `DUE#{shard}` and `GSI2SK` on its own item or
//!   on the session item that embeds it, written in the same request as the obligation, so the
//!   entry appears, moves and disappears atomically with it (as the index's eventual consistency
//!   lets it show). The projected keys say it all: session from `PK`, target and due time from
//!   `GSI2SK`. The entries are spread over 32 partition key values so that a peak of payments
//!   does not land on one index partition (`docs/reconciliation.md` has the arithmetic against
//!   DynamoDB's per-partition limits). It is also the overdue list of late attempts: an open
//!   obligation is overdue from its next attempt + 5 minutes
//!   ([`LATE_ATTEMPT_OVERDUE_SECS`](parkpay_domain::obligation::LATE_ATTEMPT_OVERDUE_SECS)) unless
//!   its deadline comes first, and `GSI2SK` already orders by that. Ledger entries with PhonePe's
//!   transaction id are on it too, under `PREF#{provider_txn_id}`, with the session as sort key:
//!   a search reads the keys alone (the transaction from `PK`).
//! - Index `GSI3` (hash `GSI3PK`, range `GSI3SK`, projection KEYS_ONLY) is sparse: the revoked
//!   entry passes, one entry per REFUNDED session, in the one partition `PASS_REVOKED`
//!   (revocations are rare: a full refund each), oldest first. The keys say it all (session and
//!   time in `GSI3SK`, checked against `PK`): a listing reads nothing else. The entry is written
//!   once, by the UpdateItem (or transaction) that first stores the session REFUNDED; no later
//!   write touches it, so it costs one index write unit per revoked pass. Ledger entries with a
//!   UTR are on it too, under `UTR#{utr}`, with the session as sort key.
//! - Index `GSI4` (hash `GSI4PK`, range `GSI4SK`, projection KEYS_ONLY): a vehicle's sessions
//!   by booking time, read newest first, for operators' search. Keys only, so that no change of
//!   a session item (which rewrites its attributes) writes to it: one index write unit per
//!   session, at its booking.
//! - An idempotency record (`entity` = `IDEMPOTENCY`) has `key`, `payload_hash`, `token` (S),
//!   `status` (`IN_PROGRESS` | `COMPLETED`), `in_progress_until` and `expires_at` (N, Unix ms),
//!   `response` (NULL, or M `{status: N, body: S}`), and `expires_at_epoch` (N, Unix seconds,
//!   rounded up): the table's TTL attribute ([`keys::TTL_ATTRIBUTE`]). TTL only cleans up;
//!   every decision reads `expires_at`.
//! - Billing mode PAY_PER_REQUEST. [`table_definition`] is the same description as data; the
//!   SAM template must match it, and [`create_table`] creates the table from it.
//!
//! Why this layout (the write units it saves, step by step, are in the README, "What it costs"):
//! a transaction bills twice what the same writes bill alone, and an index entry costs a write
//! unit each time it is written, moved or deleted (with projection ALL, each time its item
//! changes), and a write bills per KB of the larger of the item before and after. So a session's
//! records live in its one item (a commit about one session is one UpdateItem, one unit while the
//! item is under 1 KB, as a paid session's is), the session item carries the due entry of one
//! open obligation only, and an open obligation carries none on `GSI1` while the due index can
//! stand in for it. The settlement ledger follows the same rules: an entry is an item of its own,
//! put once outside the session's write (1 unit, where a transaction would bill the session's
//! write twice as well), and its index entries (1 unit each: its day on `GSI1`, PhonePe's id on
//! `GSI2`, the UTR on `GSI3`, on indexes that exist anyway) are written once and never moved.
//! The vehicle's entry is on a keys-only index of its own (`GSI4`): the session item's other
//! index keys are taken, and a projection of more than keys would bill an index write with every
//! change of the session.
//!
//! # Access patterns
//! | operation | DynamoDB call |
//! |---|---|
//! | [`Store::load_session`] | Query `PK = SESSION#{id}`, ConsistentRead, all pages |
//! | [`Store::find_txn`] | GetItem `TXN#{id}` / `#TXN`, ConsistentRead |
//! | [`Store::list_sessions`] | Query `PK = USER#{user}`, ScanIndexForward=false, ConsistentRead, Limit, then BatchGetItem of those sessions (ConsistentRead); beside it, Query `GSI1`, `GSI1PK = USER#{user}` for sessions of earlier versions; merged |
//! | [`Store::list_sessions_page`] | Query `PK = USER#{user} AND SK < {cursor}`, ScanIndexForward=false, ConsistentRead, Limit n + 1 (the extra entry only tells whether more follow), then BatchGetItem of the first n sessions (ConsistentRead), again further down for entries whose session is missing; beside it, Query `GSI1`, `GSI1PK = USER#{user} AND GSI1SK < {cursor}`, ScanIndexForward=false, Limit n + 1, for sessions of earlier versions; merged by sort key, the newest n kept. The cursor is the last sort key returned (both sources sort by the same `{created_at}#{session_id}`) |
//! | [`Store::list_revoked`] | Query `GSI3`, `GSI3PK = PASS_REVOKED AND GSI3SK > max({since:015}, {cursor})`, Limit n + 1 (keys only; nothing else read) |
//! | [`Store::list_ledger`] | for each IST date the bounds span (one for a day's bounds), in order until the page is full: 8 Queries on `GSI1` in parallel, `GSI1PK = LDAY#{date}#{shard} AND GSI1SK BETWEEN max({day_start:015}, {cursor}) AND {day_end:015}`, Limit n + 2 (projection ALL: nothing else read; the cursor's own entry, which BETWEEN includes, dropped), merged by position |
//! | [`Store::sessions_by_vehicle`] | Query `GSI4`, `GSI4PK = VEH#{vehicle}`, ScanIndexForward=false, Limit n (keys only; nothing else read) |
//! | [`Store::find_by_provider_ref`] | 2 Queries at once: `GSI2`, `GSI2PK = PREF#{reference}`, and `GSI3`, `GSI3PK = UTR#{reference}`, Limit 100 each (keys only; nothing else read) |
//! | [`Store::commit`] of a session insert | first a PutItem of its user-list entry (no condition) |
//! | [`Store::commit`] moving a payment or refund into a final state | first (at once with the pointers, when the commit is one write) a PutItem of its ledger entry, `attribute_not_exists(PK)`; a failed condition there is success (the entry is there) |
//! | [`Store::commit`] writing one session item | PutItem of each inserted payment's or refund's pointer, then one UpdateItem (PutItem for a new session) with the conditions in [`aggregate`], ReturnValuesOnConditionCheckFailure=ALL_OLD; after a failed condition, planned again on the item returned. Every update of the session also gets `SET GSI4PK = if_not_exists(GSI4PK, :pk), GSI4SK = if_not_exists(GSI4SK, :sk)`; a session written REFUNDED `SET GSI3PK = if_not_exists(GSI3PK, :pk), GSI3SK = if_not_exists(GSI3SK, :sk)` |
//! | [`Store::commit`] writing one item of its own | one PutItem, its condition below, ReturnValuesOnConditionCheckFailure=ALL_OLD |
//! | [`Store::commit`] writing more | one TransactWriteItems of all of it (Updates of session items, Puts, ConditionChecks), ALL_OLD on each session item (ledger entries before it, never in it) |
//! | [`AttentionIndex::list_attention`] | 32 Queries on `GSI1` in parallel, `GSI1PK = OVERDUE#{n}` (or `NEEDS_PERSON#{n}`) `AND GSI1SK < {bound}`, ScanIndexForward=false, Limit; for the overdue list also 32 Queries on `GSI2`, `GSI2PK = DUE#{n} AND GSI2SK < {bound − 5 min}`, ScanIndexForward=false, Limit, and BatchGetItem (ConsistentRead) of those obligations |
//! | [`SessionScan::scan_sessions`] | Scan, `SK = #SESSION` filter, ProjectionExpression `PK, SK, GSI1PK, GSI1SK`, Limit, ExclusiveStartKey; a PutItem of the user-list entry of each session of an earlier version |
//! | [`PendingIndex::list_due`] | 32 Queries on `GSI2` in parallel, `GSI2PK = DUE#{n} AND GSI2SK < {before:015}`, Limit |
//! | [`IdempotencyStore::acquire`] | PutItem, condition below, ReturnValuesOnConditionCheckFailure=ALL_OLD |
//! | [`IdempotencyStore::complete`] | UpdateItem, `token = :token AND status = IN_PROGRESS`, ALL_OLD on failure |
//! | [`IdempotencyStore::release`] | DeleteItem, `token = :token AND status = IN_PROGRESS`, ALL_OLD on failure |
//!
//! In a commit, a record embedded in its session's item is set with a condition on its version
//! (`#P.version = :expected`; for a final payment or refund presumed final already, also
//! `#P.status = :state`, see `aggregate.rs`) or, inserted, on its absence; an item of its own is a
//! Put conditioned on `attribute_not_exists(PK)` or `version = :expected`. A commit of one item is
//! one request (half the write units of a transaction of one item, and as atomic); a commit of
//! more is one TransactWriteItems (`commit.rs`). The SDK's own retries of a commit that did go
//! through are answered with success rather than a false conflict: a transaction carries the
//! commit's token in its ClientRequestToken, and a single write whose condition fails gets the
//! stored item back and finds its own `write_token` there.
//!
//! The overdue list merges its `GSI1` entries with the due index's late entries: each of those is
//! read from its item (the index holds keys only; a session item's is the obligation it names in
//! `due_target`) and kept when it is open, still at that place
//! in the index, and not on `GSI1` (its deadline comes later); a shard is read further down
//! until it has `limit` such entries, so that deadline entries above them in the due index's
//! order hide none. An obligation on both (an item of an earlier version) is listed once.
//!
//! `acquire` is one PutItem of the whole new record, conditioned on
//! `attribute_not_exists(PK) OR expires_at <= :now OR (status = IN_PROGRESS AND in_progress_until <= :now)`;
//! when the condition fails, the ConditionalCheckFailedException carries the live record (no
//! second read). The old item returned by a failed `complete` or `release` tells a retry of a
//! call that went through (`Ok`) from a lost lock (`Conflict`), or an absent record from a taken
//! one.
//!
//! # Errors
//! - TransactionCanceledException with a `ConditionalCheckFailed` or `TransactionConflict`
//!   reason, or a single Put's ConditionalCheckFailedException (not its own earlier write) or
//!   TransactionConflictException: [`StoreError::Conflict`] (nothing was written).
//! - Throttling, capacity, internal errors, timeouts, connection failures, a missing table:
//!   [`StoreError::Unavailable`].
//! - ValidationException (or a `ValidationError` cancellation reason), idempotency mismatch:
//!   [`StoreError::Invalid`].
//! - A failed condition of an idempotency operation: see [`IdempotencyStore`].
//! - An item that does not read back into its entity: [`StoreError::Corrupt`].

mod aggregate;
mod commit;
mod token;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem,
};
use parkpay_domain::{ParkingSession, SessionId, Timestamp, UserId, VehicleNumber};
use serde::de::DeserializeOwned;
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo_serde;

use crate::idempotency::{
    self as idem, COMPLETED, Completion, EXPIRES_AT, IN_PROGRESS, IN_PROGRESS_UNTIL, IdempotencyItem, RESPONSE, STATUS,
    StoredResponseItem, TOKEN,
};
use crate::keys::{
    self, BundleBuilder, ENTITY, Entity, GSI1, GSI1PK, GSI1SK, GSI2, GSI2PK, GSI2SK, GSI3, GSI3PK, GSI3SK, GSI4,
    GSI4PK, GSI4SK, IDEMPOTENCY_SK, ItemKey, LEDGER_SHARDS, PK, REVOKED_GSI3PK, SK, TTL_ATTRIBUTE, TXN_SK, TxnPointer,
    VERSION, WRITE_TOKEN, corrupt, due_from_index, due_gsi2pk, due_gsi2sk_bound, entity_of_sk, idempotency_key,
    idempotency_pk, revoked_from_index, session_gsi1sk, session_pk, txn_pk, user_gsi1pk,
};
use crate::ledger::{self, LedgerRange, MAX_REF_MATCHES};
use crate::{
    Acquire, AttentionEntry, AttentionIndex, AttentionList, DueEntry, IdempotencyRecord, IdempotencyStore, LedgerEntry,
    LedgerPage, PendingIndex, Record, Revoked, RevokedPage, ScanCursor, ScanPage, SessionBundle, SessionPage,
    SessionScan, Store, StoreError, StoredResponse, TxnRef, Write,
};

type Item = HashMap<String, AttributeValue>;

/// The store on a DynamoDB table laid out as described in the [module docs](self).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store on `table` through `client` (build the client once, outside the handler).
    pub fn new(client: Client, table: String) -> Self {
        DynamoStore { client, table }
    }

    /// Loads the AWS configuration from the environment once (region, credentials, and
    /// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` for DynamoDB Local) and builds a client.
    pub async fn from_env(table: impl Into<String>) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Self::new(Client::new(&config), table.into())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

// ---------------------------------------------------------------------------------------------
// Table definition

/// A key attribute: its name and DynamoDB scalar type (`S`, as CloudFormation spells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyAttribute {
    pub name: &'static str,
    pub attribute_type: &'static str,
}

/// A global secondary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDefinition {
    pub index_name: &'static str,
    pub partition_key: KeyAttribute,
    pub sort_key: KeyAttribute,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`, as CloudFormation spells it.
    pub projection_type: &'static str,
}

/// The table as data, spelt as in CloudFormation (`AWS::DynamoDB::Table`), so that the SAM
/// template can be compared with it field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDefinition {
    pub table_name: String,
    /// `PAY_PER_REQUEST`.
    pub billing_mode: &'static str,
    pub partition_key: KeyAttribute,
    pub sort_key: KeyAttribute,
    pub global_secondary_indexes: Vec<IndexDefinition>,
    /// `TimeToLiveSpecification.AttributeName` (enabled): [`keys::TTL_ATTRIBUTE`].
    pub time_to_live_attribute: Option<&'static str>,
}

impl TableDefinition {
    /// `AttributeDefinitions`: every key attribute of the table and its indexes, once, sorted by
    /// name.
    pub fn attribute_definitions(&self) -> Vec<KeyAttribute> {
        let mut all = vec![self.partition_key, self.sort_key];
        for index in &self.global_secondary_indexes {
            all.extend([index.partition_key, index.sort_key]);
        }
        all.sort();
        all.dedup();
        all
    }
}

const STRING: &str = "S";

/// The table parkpay needs, named `table`. See the [module docs](self).
pub fn table_definition(table: &str) -> TableDefinition {
    let key = |name| KeyAttribute { name, attribute_type: STRING };
    TableDefinition {
        table_name: table.to_owned(),
        billing_mode: "PAY_PER_REQUEST",
        partition_key: key(PK),
        sort_key: key(SK),
        global_secondary_indexes: vec![
            IndexDefinition {
                index_name: GSI1,
                partition_key: key(GSI1PK),
                sort_key: key(GSI1SK),
                projection_type: "ALL",
            },
            IndexDefinition {
                index_name: GSI2,
                partition_key: key(GSI2PK),
                sort_key: key(GSI2SK),
                projection_type: "KEYS_ONLY",
            },
            IndexDefinition {
                index_name: GSI3,
                partition_key: key(GSI3PK),
                sort_key: key(GSI3SK),
                projection_type: "KEYS_ONLY",
            },
            IndexDefinition {
                index_name: GSI4,
                partition_key: key(GSI4PK),
                sort_key: key(GSI4SK),
                projection_type: "KEYS_ONLY",
            },
        ],
        time_to_live_attribute: Some(TTL_ATTRIBUTE),
    }
}

fn key_schema(partition: KeyAttribute, sort: KeyAttribute) -> Result<Vec<KeySchemaElement>, StoreError> {
    [(partition, KeyType::Hash), (sort, KeyType::Range)]
        .into_iter()
        .map(|(attr, key_type)| {
            KeySchemaElement::builder().attribute_name(attr.name).key_type(key_type).build().map_err(invalid)
        })
        .collect()
}

fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(e.to_string())
}

/// Creates the table described by [`table_definition`], waits until it and its indexes are
/// ACTIVE, and enables TTL on [`keys::TTL_ATTRIBUTE`] where the endpoint supports it (best
/// effort: TTL only cleans up, so a failure there is logged, not returned). Idempotent: a table
/// that already exists is fine (it is not compared).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let def = table_definition(table);
    let attributes = def
        .attribute_definitions()
        .into_iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(a.name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type))
                .build()
                .map_err(invalid)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let indexes = def
        .global_secondary_indexes
        .iter()
        .map(|i| {
            GlobalSecondaryIndex::builder()
                .index_name(i.index_name)
                .set_key_schema(Some(key_schema(i.partition_key, i.sort_key)?))
                .projection(Projection::builder().projection_type(ProjectionType::from(i.projection_type)).build())
                .build()
                .map_err(invalid)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::from(def.billing_mode))
        .set_key_schema(Some(key_schema(def.partition_key, def.sort_key)?))
        .set_attribute_definitions(Some(attributes))
        .set_global_secondary_indexes(Some(indexes))
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(SdkError::ServiceError(e)) if e.err().is_resource_in_use_exception() => {}
        Err(e) => return Err(StoreError::Unavailable(sdk_message("CreateTable", table, &e))),
    }
    wait_until_active(client, table).await?;
    if let Some(attribute) = def.time_to_live_attribute {
        enable_ttl(client, table, attribute).await;
    }
    Ok(())
}

/// Enables TTL on `attribute` unless it is on already; skips quietly where unsupported.
async fn enable_ttl(client: &Client, table: &str, attribute: &str) {
    match client.describe_time_to_live().table_name(table).send().await {
        Ok(out) => {
            if let Some(ttl) = out.time_to_live_description()
                && matches!(ttl.time_to_live_status(), Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling))
            {
                if ttl.attribute_name() != Some(attribute) {
                    tracing::warn!(table, expected = attribute, found = ?ttl.attribute_name(), "TTL is on another attribute");
                }
                return;
            }
        }
        Err(e) => {
            tracing::debug!(table, error = %DisplayErrorContext(&e), "DescribeTimeToLive failed; TTL not enabled");
            return;
        }
    }
    let spec = match TimeToLiveSpecification::builder().attribute_name(attribute).enabled(true).build() {
        Ok(spec) => spec,
        Err(e) => {
            tracing::warn!(table, error = %e, "cannot build a TTL specification");
            return;
        }
    };
    if let Err(e) = client.update_time_to_live().table_name(table).time_to_live_specification(spec).send().await {
        tracing::debug!(table, error = %DisplayErrorContext(&e), "UpdateTimeToLive failed; TTL not enabled");
    }
}

async fn wait_until_active(client: &Client, table: &str) -> Result<(), StoreError> {
    const ATTEMPTS: u32 = 600;
    for _ in 0..ATTEMPTS {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(sdk_message("DescribeTable", table, &e)))?;
        if let Some(t) = out.table() {
            let indexes_active =
                t.global_secondary_indexes().iter().all(|i| i.index_status() == Some(&IndexStatus::Active));
            if t.table_status() == Some(&TableStatus::Active) && indexes_active {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(StoreError::Unavailable(format!("table {table} did not become ACTIVE within 2 minutes")))
}

// ---------------------------------------------------------------------------------------------
// Items

fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// The item for `record`: its fields plus keys and `entity`.
fn record_item(record: &Record) -> Result<Item, StoreError> {
    let key = record.key();
    let serialised: Result<Item, _> = match record {
        Record::Session(x) => dynamo_serde::to_item(x),
        Record::Payment(x) => dynamo_serde::to_item(x),
        Record::Refund(x) => dynamo_serde::to_item(x),
        Record::Obligation(x) => dynamo_serde::to_item(x),
    };
    let mut item = serialised.map_err(|e| StoreError::Invalid(format!("cannot serialise {key}: {e}")))?;
    let mut extra = vec![(ENTITY, record.entity().as_str().to_owned())];
    if let Some((gsi1pk, gsi1sk)) = record.attention_gsi1() {
        extra.push((GSI1PK, gsi1pk));
        extra.push((GSI1SK, gsi1sk));
    }
    if let Some((gsi2pk, gsi2sk)) = record.due_index() {
        extra.push((GSI2PK, gsi2pk));
        extra.push((GSI2SK, gsi2sk));
    }
    if let Record::Session(s) = record {
        if let Some((gsi3pk, gsi3sk)) = keys::revoked_index(s) {
            extra.push((GSI3PK, gsi3pk));
            extra.push((GSI3SK, gsi3sk));
        }
        let (gsi4pk, gsi4sk) = keys::vehicle_index(s);
        extra.push((GSI4PK, gsi4pk));
        extra.push((GSI4SK, gsi4sk));
    }
    extra.push((PK, key.pk));
    extra.push((SK, key.sk));
    for (name, value) in extra {
        if item.insert(name.to_owned(), string(value)).is_some() {
            return Err(StoreError::Invalid(format!("a {} has a field named {name}", record.entity().as_str())));
        }
    }
    Ok(item)
}

/// A session's entry in its user's list: keys, `entity` = `USER_SESSION`, `session_id`.
fn user_list_item(session: &ParkingSession) -> Item {
    let key = keys::user_list_key(session);
    HashMap::from([
        (PK.to_owned(), string(key.pk)),
        (SK.to_owned(), string(key.sk)),
        (ENTITY.to_owned(), string(Entity::UserSession.as_str())),
        ("session_id".to_owned(), string(session.id().as_str())),
    ])
}

fn pointer_item(key: keys::ItemKey, pointer: &TxnPointer) -> Result<Item, StoreError> {
    let mut item: Item =
        dynamo_serde::to_item(pointer).map_err(|e| StoreError::Invalid(format!("cannot serialise {key}: {e}")))?;
    item.insert(ENTITY.to_owned(), string(Entity::Txn.as_str()));
    item.insert(PK.to_owned(), string(key.pk));
    item.insert(SK.to_owned(), string(key.sk));
    Ok(item)
}

/// The item of a settlement ledger entry: its attributes, keys, `entity` = `LEDGER`, and its
/// index keys (`GSI1` its day, `GSI2` PhonePe's transaction id, `GSI3` the UTR).
fn ledger_item(entry: &LedgerEntry) -> Result<Item, StoreError> {
    let key = entry.key();
    let mut item: Item =
        dynamo_serde::to_item(entry).map_err(|e| StoreError::Invalid(format!("cannot serialise {key}: {e}")))?;
    let (gsi1pk, gsi1sk) = entry.day_index();
    let mut extra = vec![
        (ENTITY, Entity::Ledger.as_str().to_owned()),
        (PK, key.pk),
        (SK, key.sk),
        (GSI1PK, gsi1pk),
        (GSI1SK, gsi1sk),
    ];
    if let Some((gsi2pk, gsi2sk)) = entry.provider_ref_index() {
        extra.extend([(GSI2PK, gsi2pk), (GSI2SK, gsi2sk)]);
    }
    if let Some((gsi3pk, gsi3sk)) = entry.utr_index() {
        extra.extend([(GSI3PK, gsi3pk), (GSI3SK, gsi3sk)]);
    }
    for (name, value) in extra {
        item.insert(name.to_owned(), string(value));
    }
    Ok(item)
}

/// The item for an idempotency record: its attributes plus keys and `entity`.
fn idempotency_item(record: &IdempotencyRecord) -> Result<Item, StoreError> {
    let key = idempotency_key(&record.key);
    let mut item: Item = dynamo_serde::to_item(IdempotencyItem::from(record))
        .map_err(|e| StoreError::Invalid(format!("cannot serialise {key}: {e}")))?;
    item.insert(ENTITY.to_owned(), string(Entity::Idempotency.as_str()));
    item.insert(PK.to_owned(), string(key.pk));
    item.insert(SK.to_owned(), string(key.sk));
    Ok(item)
}

/// The idempotency record `key` from its item.
fn idempotency_from_item(item: Item, key: &str) -> Result<IdempotencyRecord, StoreError> {
    let stored: IdempotencyItem = entity_from_item(item, Entity::Idempotency)?;
    stored.into_record(key, &idempotency_key(key))
}

fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn describe(item: &Item) -> String {
    format!("item {} / {}", string_attr(item, PK).unwrap_or("?"), string_attr(item, SK).unwrap_or("?"))
}

/// The entity in `item`, which must be tagged `expected`. Key attributes are ignored.
fn entity_from_item<T: DeserializeOwned>(mut item: Item, expected: Entity) -> Result<T, StoreError> {
    let what = describe(&item);
    for key in [PK, SK, GSI1PK, GSI1SK, GSI2PK, GSI2SK, GSI3PK, GSI3SK, GSI4PK, GSI4SK, WRITE_TOKEN] {
        item.remove(key);
    }
    match item.remove(ENTITY) {
        Some(AttributeValue::S(tag)) if tag == expected.as_str() => {}
        other => return Err(corrupt(format!("{what}: entity is {other:?}, expected {}", expected.as_str()))),
    }
    dynamo_serde::from_item(item).map_err(|e| corrupt(format!("{what}: not a valid {}: {e}", expected.as_str())))
}

fn record_from_item(item: Item, entity: Entity) -> Result<Record, StoreError> {
    Ok(match entity {
        Entity::Session => Record::Session(entity_from_item(item, entity)?),
        Entity::Payment => Record::Payment(entity_from_item(item, entity)?),
        Entity::Refund => Record::Refund(entity_from_item(item, entity)?),
        Entity::Obligation => Record::Obligation(entity_from_item(item, entity)?),
        Entity::Txn | Entity::Idempotency | Entity::UserSession | Entity::Token | Entity::Ledger => {
            return Err(corrupt(format!("{}: a {} in a session partition", describe(&item), entity.as_str())));
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Errors

fn sdk_message<E, R>(op: &str, table: &str, err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    format!("DynamoDB {op} on table {table}: {}", DisplayErrorContext(err))
}

fn commit_error<R: std::fmt::Debug>(table: &str, err: SdkError<TransactWriteItemsError, R>) -> StoreError {
    let message = sdk_message("TransactWriteItems", table, &err);
    let SdkError::ServiceError(service) = &err else {
        return StoreError::Unavailable(message);
    };
    match service.err() {
        TransactWriteItemsError::TransactionCanceledException(cancelled) => {
            let codes: Vec<&str> =
                cancelled.cancellation_reasons().iter().filter_map(CancellationReason::code).collect();
            if codes.iter().any(|c| matches!(*c, "ConditionalCheckFailed" | "TransactionConflict")) {
                tracing::debug!(table, reasons = ?codes, "commit lost a race");
                StoreError::Conflict
            } else if codes.contains(&"ValidationError") {
                StoreError::Invalid(message)
            } else {
                StoreError::Unavailable(message)
            }
        }
        TransactWriteItemsError::IdempotentParameterMismatchException(_) => StoreError::Invalid(message),
        other if other.code() == Some("ValidationException") => StoreError::Invalid(message),
        _ => StoreError::Unavailable(message),
    }
}

/// `Unavailable`, or `Invalid` for a ValidationException.
fn op_error<E, R>(op: &str, table: &str, err: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let message = sdk_message(op, table, err);
    match err {
        SdkError::ServiceError(e) if e.err().code() == Some("ValidationException") => StoreError::Invalid(message),
        _ => StoreError::Unavailable(message),
    }
}

/// If `err` is a failed condition: `Some` of the old item (when the request asked for it and
/// there was one).
fn failed_condition<E, R>(
    err: &SdkError<E, R>,
    as_ccf: fn(&E) -> Option<&ConditionalCheckFailedException>,
) -> Option<Option<Item>> {
    match err {
        SdkError::ServiceError(e) => as_ccf(e.err()).map(|ccf| ccf.item().cloned()),
        _ => None,
    }
}

/// A commit's token (at most 36 characters, as TransactWriteItems' ClientRequestToken allows),
/// unique per commit: its transaction's ClientRequestToken and its items' [`WRITE_TOKEN`]. Two
/// independently seeded SipHash outputs over a process-wide counter and the time.
fn request_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_u64(salt);
        h.finish()
    };
    format!("{:016x}{:016x}", half(1), half(2))
}

// ---------------------------------------------------------------------------------------------
// Store

/// One conditional Put of a commit: an insert (`attribute_not_exists(PK)`) or an update of the
/// version read (`version = :expected`).
struct ConditionalPut {
    item: Item,
    expected_version: Option<u64>,
}

impl ConditionalPut {
    fn insert(item: Item) -> Self {
        ConditionalPut { item, expected_version: None }
    }

    fn update(item: Item, expected_version: u64) -> Self {
        ConditionalPut { item, expected_version: Some(expected_version) }
    }

    fn condition(&self) -> (&'static str, (&'static str, &'static str), Option<AttributeValue>) {
        match self.expected_version {
            None => ("attribute_not_exists(#pk)", ("#pk", PK), None),
            Some(v) => ("#version = :expected", ("#version", VERSION), Some(AttributeValue::N(v.to_string()))),
        }
    }

    fn into_transact_item(self, table: &str) -> Result<TransactWriteItem, StoreError> {
        let (condition, (placeholder, name), value) = self.condition();
        let mut put = Put::builder()
            .table_name(table)
            .set_item(Some(self.item))
            .condition_expression(condition)
            .expression_attribute_names(placeholder, name);
        if let Some(v) = value {
            put = put.expression_attribute_values(":expected", v);
        }
        Ok(TransactWriteItem::builder().put(put.build().map_err(invalid)?).build())
    }
}

impl DynamoStore {
    /// A commit of one item: one conditional PutItem, half the write units of a transaction of
    /// one item and as atomic. Its failed condition returns the stored item: one carrying this
    /// commit's [`WRITE_TOKEN`] is this very Put, retried by the SDK after it went through
    /// (success), anything else a concurrent writer (conflict) — what the transaction's
    /// ClientRequestToken does for larger commits.
    async fn put_one(&self, put: ConditionalPut, token: &str) -> Result<(), StoreError> {
        let (condition, (placeholder, name), value) = put.condition();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item.clone()))
            .condition_expression(condition)
            .expression_attribute_names(placeholder, name)
            .set_expression_attribute_values(value.map(|v| HashMap::from([(":expected".to_owned(), v)])))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let Err(err) = result else { return Ok(()) };
        match commit::refused_put(&self.table, err)? {
            Some(stored) if string_attr(&stored, WRITE_TOKEN) == Some(token) => Ok(()),
            _ => Err(StoreError::Conflict),
        }
    }

    /// Unconditional Puts of items that only index others (a session's entry in its user's
    /// list), all at once.
    async fn put_plain(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for chunk in items.chunks(25) {
            let puts = chunk
                .iter()
                .map(|item| self.client.put_item().table_name(&self.table).set_item(Some(item.clone())).send());
            for result in futures::future::join_all(puts).await {
                result.map_err(|e| op_error("PutItem", &self.table, &e))?;
            }
        }
        Ok(())
    }

    /// The sessions stored under `ids`, strongly consistent, in no particular order; ids with no
    /// session are left out.
    async fn get_sessions(&self, ids: &[SessionId]) -> Result<Vec<ParkingSession>, StoreError> {
        let keys: Vec<Item> = ids
            .iter()
            .map(|id| {
                HashMap::from([(PK.to_owned(), string(session_pk(id))), (SK.to_owned(), string(keys::SESSION_SK))])
            })
            .collect();
        let mut sessions = Vec::with_capacity(keys.len());
        for item in self.get_items(keys).await? {
            sessions.push(aggregate::read_session_only(item)?);
        }
        Ok(sessions)
    }

    /// The items stored under `keys` (BatchGetItem, strongly consistent, 100 keys a request,
    /// unprocessed keys asked again); absent ones are left out.
    async fn get_items(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(invalid)?,
            );
            let mut round = 0u32;
            while let Some(request) = pending.take() {
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << round.min(6))).await;
                }
                round += 1;
                if round > 10 {
                    return Err(StoreError::Unavailable(format!(
                        "DynamoDB BatchGetItem on table {}: keys left unprocessed",
                        self.table
                    )));
                }
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| op_error("BatchGetItem", &self.table, &e))?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(&self.table).unwrap_or_default());
                }
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys().is_empty());
            }
        }
        Ok(found)
    }

    /// The newest `limit` sessions of `user` with a user-list item, read consistently.
    async fn listed_sessions(&self, user: &UserId, limit: usize) -> Result<Vec<ParkingSession>, StoreError> {
        let mut sessions = Vec::new();
        let mut start_key = None;
        while sessions.len() < limit {
            let page = i32::try_from(limit - sessions.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", string(user_gsi1pk(user)))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(page)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(sdk_message("Query", &self.table, &e)))?;
            let mut ids = Vec::new();
            for item in out.items.unwrap_or_default() {
                let id = string_attr(&item, "session_id")
                    .and_then(|id| SessionId::parse(id).ok())
                    .ok_or_else(|| corrupt(format!("{}: not a user-list entry", describe(&item))))?;
                ids.push(id);
            }
            // An entry whose session is missing (its booking's commit failed) is left out.
            sessions.extend(self.get_sessions(&ids).await?);
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => break,
            }
        }
        Ok(sessions)
    }

    /// A page of the sessions of `user` with a user-list item, sort key below `before`, newest
    /// first, at most `limit`, each with its sort key, read consistently; and whether more may
    /// follow. Each Query asks for one entry more than is missing, so that a full page knows
    /// whether another follows without reading its session; an entry whose session is missing
    /// (its booking's commit failed) is left out, and the list read further down in its stead.
    async fn listed_page(
        &self,
        user: &UserId,
        before: &str,
        limit: usize,
    ) -> Result<(Vec<(String, ParkingSession)>, bool), StoreError> {
        let mut found = Vec::with_capacity(limit);
        let mut before = before.to_owned();
        loop {
            let missing = limit.saturating_sub(found.len());
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk < :before")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", string(user_gsi1pk(user)))
                .expression_attribute_values(":before", string(&before))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(i32::try_from(missing + 1).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(sdk_message("Query", &self.table, &e)))?;
            let cut_short = out.last_evaluated_key.is_some_and(|k| !k.is_empty());
            let items = out.items.unwrap_or_default();
            let beyond = items.len() > missing;
            let mut entries = Vec::with_capacity(missing);
            for item in items.into_iter().take(missing) {
                let sk = string_attr(&item, SK).map(str::to_owned);
                let id = string_attr(&item, "session_id").and_then(|id| SessionId::parse(id).ok());
                let (Some(sk), Some(id)) = (sk, id) else {
                    return Err(corrupt(format!("{}: not a user-list entry", describe(&item))));
                };
                entries.push((sk, id));
            }
            let Some((last, _)) = entries.last() else { return Ok((found, false)) };
            before.clone_from(last);
            let ids: Vec<SessionId> = entries.iter().map(|(_, id)| id.clone()).collect();
            let mut sessions: HashMap<SessionId, ParkingSession> =
                self.get_sessions(&ids).await?.into_iter().map(|s| (s.id().clone(), s)).collect();
            for (sk, id) in entries {
                let Some(session) = sessions.remove(&id) else { continue };
                if sk != session_gsi1sk(session.created_at(), session.id()) {
                    return Err(corrupt(format!("user-list entry {sk} names session {id}")));
                }
                found.push((sk, session));
            }
            let more = beyond || cut_short;
            if !more || found.len() >= limit {
                return Ok((found, more));
            }
        }
    }

    /// A page of the sessions of `user` on index `GSI1` (sessions of earlier versions), sort key
    /// below `before`, newest first, at most `limit`, each with its sort key; and whether more
    /// follow.
    async fn legacy_page(
        &self,
        user: &UserId,
        before: &str,
        limit: usize,
    ) -> Result<(Vec<(String, ParkingSession)>, bool), StoreError> {
        let items = self.query_below(GSI1, (GSI1PK, GSI1SK), user_gsi1pk(user), before, false, limit + 1).await?;
        let more = items.len() > limit;
        let mut found = Vec::with_capacity(limit);
        for item in items.into_iter().take(limit) {
            let sk = string_attr(&item, GSI1SK).unwrap_or_default().to_owned();
            let session = aggregate::read_session_only(item)?;
            if sk != session_gsi1sk(session.created_at(), session.id()) {
                return Err(corrupt(format!("GSI1 entry {sk} holds session {}", session.id())));
            }
            found.push((sk, session));
        }
        Ok((found, more))
    }

    /// The newest `limit` sessions of `user` on index `GSI1` (sessions written before user-list
    /// items existed carry `GSI1PK` = `USER#{user}`).
    async fn legacy_listed_sessions(&self, user: &UserId, limit: usize) -> Result<Vec<ParkingSession>, StoreError> {
        let items = self.query_below(GSI1, (GSI1PK, GSI1SK), user_gsi1pk(user), "\u{10FFFF}", false, limit).await?;
        items.into_iter().map(aggregate::read_session_only).collect()
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn load_session(&self, id: &SessionId) -> Result<Option<SessionBundle>, StoreError> {
        let pk = session_pk(id);
        let mut bundle = BundleBuilder::default();
        let mut start_key = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", string(&pk))
                .consistent_read(true)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(sdk_message("Query", &self.table, &e)))?;
            for item in out.items.unwrap_or_default() {
                let sk = string_attr(&item, SK).ok_or_else(|| corrupt(format!("{}: no SK", describe(&item))))?;
                let sk = sk.to_owned();
                let entity = entity_of_sk(&sk)
                    .ok_or_else(|| corrupt(format!("{}: unknown sort key in a session partition", describe(&item))))?;
                if entity == Entity::Session {
                    let (session, embedded) = aggregate::read_session_item(item)?;
                    bundle.add(id, &sk, Record::Session(session))?;
                    for record in embedded {
                        let sk = record.key().sk;
                        bundle.add(id, &sk, record)?;
                    }
                } else {
                    bundle.add(id, &sk, record_from_item(item, entity)?)?;
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => break,
            }
        }
        Ok(bundle.finish())
    }

    async fn find_txn(&self, merchant_txn_id: &str) -> Result<Option<TxnRef>, StoreError> {
        if keys::impossible_txn_id(merchant_txn_id) {
            return Ok(None);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, string(txn_pk(merchant_txn_id)))
            .key(SK, string(TXN_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(sdk_message("GetItem", &self.table, &e)))?;
        match out.item {
            None => Ok(None),
            Some(item) => {
                let pointer: TxnPointer = entity_from_item(item, Entity::Txn)?;
                pointer.into_ref(merchant_txn_id).map(Some)
            }
        }
    }

    async fn list_sessions(&self, user: &UserId, limit: usize) -> Result<Vec<ParkingSession>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (listed, legacy) =
            futures::future::join(self.listed_sessions(user, limit), self.legacy_listed_sessions(user, limit)).await;
        let mut sessions: HashMap<String, ParkingSession> = HashMap::new();
        for session in listed?.into_iter().chain(legacy?) {
            keys::check_listed(user, &session)?;
            // The user-list item's session (read consistently) wins over an index copy.
            sessions.entry(session_gsi1sk(session.created_at(), session.id())).or_insert(session);
        }
        let mut sessions: Vec<(String, ParkingSession)> = sessions.into_iter().collect();
        sessions.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(sessions.into_iter().take(limit).map(|(_, s)| s).collect())
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.commit_writes(writes).await
    }

    async fn list_sessions_page(
        &self,
        user: &UserId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SessionPage, StoreError> {
        crate::page::check_limit(limit)?;
        let before = crate::sessions_before(cursor)?;
        let (listed, legacy) =
            futures::future::join(self.listed_page(user, &before, limit), self.legacy_page(user, &before, limit)).await;
        let ((listed, listed_more), (legacy, legacy_more)) = (listed?, legacy?);
        // Both sources are ordered by the same key, below the same bound: the newest `limit` of
        // their union are the page. A session on both (an earlier version's, since given its
        // user-list item) once, as read consistently through its user-list item.
        let mut merged: std::collections::BTreeMap<String, ParkingSession> = std::collections::BTreeMap::new();
        for (sk, session) in listed.into_iter().chain(legacy) {
            keys::check_listed(user, &session)?;
            merged.entry(sk).or_insert(session);
        }
        let more = listed_more || legacy_more || merged.len() > limit;
        Ok(crate::session_page(merged.into_iter().rev().take(limit).collect(), more))
    }

    async fn list_revoked(
        &self,
        since: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<RevokedPage, StoreError> {
        crate::page::check_limit(limit)?;
        let after = crate::revoked_after(since, cursor)?;
        let pk = REVOKED_GSI3PK.to_owned();
        let items = self.query_range(GSI3, (GSI3PK, GSI3SK), pk, (">", &after), true, limit + 1).await?;
        let more = items.len() > limit;
        let mut entries = Vec::with_capacity(limit);
        for item in items.iter().take(limit) {
            let (Some(pk), Some(gsi3sk)) = (string_attr(item, PK), string_attr(item, GSI3SK)) else {
                return Err(corrupt(format!("{}: no keys in GSI3", describe(item))));
            };
            let revoked: Revoked = revoked_from_index(pk, gsi3sk)?;
            entries.push((gsi3sk.to_owned(), revoked));
        }
        Ok(crate::revoked_page(entries, more))
    }

    async fn list_ledger(
        &self,
        day_start: Timestamp,
        day_end: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<LedgerPage, StoreError> {
        let range = ledger::ledger_range(day_start, day_end, limit, cursor)?;
        let mut found = Vec::with_capacity(limit);
        for date in &range.dates {
            // Each shard's first entries, as many as the page still needs and one more (whether
            // more follow): together, the first of the day.
            let take = limit.saturating_sub(found.len()) + 1;
            let shards = (0..LEDGER_SHARDS).map(|shard| self.ledger_shard(date, shard, &range, take));
            let mut day = Vec::new();
            for result in futures::future::join_all(shards).await {
                day.extend(result?);
            }
            if ledger::add_day(&mut found, day, limit) {
                return Ok(ledger::ledger_page(found, true));
            }
        }
        Ok(ledger::ledger_page(found, false))
    }

    async fn sessions_by_vehicle(&self, vehicle: &VehicleNumber, limit: usize) -> Result<Vec<SessionId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let pk = keys::vehicle_gsi4pk(vehicle);
        let items = self.query_below(GSI4, (GSI4PK, GSI4SK), pk, "\u{10FFFF}", false, limit).await?;
        items
            .iter()
            .map(|item| {
                let (Some(pk), Some(sk)) = (string_attr(item, PK), string_attr(item, GSI4SK)) else {
                    return Err(corrupt(format!("{}: no keys in GSI4", describe(item))));
                };
                keys::vehicle_from_index(pk, sk)
            })
            .collect()
    }

    async fn find_by_provider_ref(&self, reference: &str) -> Result<Vec<(SessionId, String)>, StoreError> {
        if !keys::indexable_ref(reference) {
            return Ok(Vec::new());
        }
        let all = "\u{10FFFF}";
        let (by_id, by_utr) = futures::future::join(
            self.query_below(GSI2, (GSI2PK, GSI2SK), keys::provider_ref_gsi2pk(reference), all, true, MAX_REF_MATCHES),
            self.query_below(GSI3, (GSI3PK, GSI3SK), keys::utr_gsi3pk(reference), all, true, MAX_REF_MATCHES),
        )
        .await;
        let mut found = Vec::new();
        for (items, sk_attr) in [(by_id?, GSI2SK), (by_utr?, GSI3SK)] {
            for item in &items {
                let (Some(pk), Some(sk), Some(session)) =
                    (string_attr(item, PK), string_attr(item, SK), string_attr(item, sk_attr))
                else {
                    return Err(corrupt(format!("{}: no keys in the search index", describe(item))));
                };
                found.push(ledger::ref_from_index(pk, sk, session)?);
            }
        }
        ledger::sort_refs(&mut found);
        Ok(found)
    }
}

impl DynamoStore {
    /// One shard of one day of the ledger within `range`, in order, at most `take` entries, each
    /// with its position.
    async fn ledger_shard(
        &self,
        date: &str,
        shard: u32,
        range: &LedgerRange,
        take: usize,
    ) -> Result<Vec<(String, LedgerEntry)>, StoreError> {
        let pk = keys::ledger_gsi1pk(date, shard);
        let mut found = Vec::new();
        let mut start_key = None;
        while found.len() < take {
            // BETWEEN is inclusive: `after` (a cursor's entry) may come back, and is dropped.
            let page = i32::try_from(take - found.len() + 1).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :after AND :before")
                .expression_attribute_names("#pk", GSI1PK)
                .expression_attribute_names("#sk", GSI1SK)
                .expression_attribute_values(":pk", string(pk.as_str()))
                .expression_attribute_values(":after", string(range.after.as_str()))
                .expression_attribute_values(":before", string(range.before.as_str()))
                .limit(page)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(sdk_message("Query GSI1", &self.table, &e)))?;
            for item in out.items.unwrap_or_default() {
                let (Some(position), Some(key_pk), Some(key_sk)) =
                    (string_attr(&item, GSI1SK), string_attr(&item, PK), string_attr(&item, SK))
                else {
                    return Err(corrupt(format!("{}: no keys in GSI1", describe(&item))));
                };
                if position == range.after || position >= range.before.as_str() {
                    continue;
                }
                let (position, key) = (position.to_owned(), ItemKey { pk: key_pk.to_owned(), sk: key_sk.to_owned() });
                let entry: LedgerEntry = entity_from_item(item, Entity::Ledger)?;
                entry.check(&key, Some(&position))?;
                found.push((position, entry));
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => break,
            }
        }
        found.truncate(take);
        Ok(found)
    }
}

fn millis(t: Timestamp) -> AttributeValue {
    AttributeValue::N(t.unix_millis().to_string())
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn acquire(&self, record: &IdempotencyRecord, now: Timestamp) -> Result<Acquire, StoreError> {
        idem::check_new(record, now)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(idempotency_item(record)?))
            .condition_expression(
                "attribute_not_exists(#pk) OR #expires_at <= :now OR (#status = :in_progress AND #until <= :now)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#until", IN_PROGRESS_UNTIL)
            .expression_attribute_values(":now", millis(now))
            .expression_attribute_values(":in_progress", string(IN_PROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Acquire::Acquired),
            Err(e) => e,
        };
        let ccf = failed_condition(&err, |e| match e {
            PutItemError::ConditionalCheckFailedException(c) => Some(c),
            _ => None,
        });
        match ccf {
            Some(Some(old)) => Ok(idem::refused(idempotency_from_item(old, &record.key)?, record)),
            Some(None) => Err(StoreError::Unavailable(format!(
                "DynamoDB PutItem on table {}: condition failed without returning the item",
                self.table
            ))),
            None => Err(op_error("PutItem", &self.table, &err)),
        }
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
        let stored_response = dynamo_serde::to_attribute_value(StoredResponseItem::from(response))
            .map_err(|e| StoreError::Invalid(format!("cannot serialise a response: {e}")))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, string(idempotency_pk(key)))
            .key(SK, string(IDEMPOTENCY_SK))
            .update_expression(
                "SET #status = :completed, #response = :response, #expires_at = :expires_at, #ttl = :ttl",
            )
            .condition_expression("#token = :token AND #status = :in_progress")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#response", RESPONSE)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#token", TOKEN)
            .expression_attribute_values(":completed", string(COMPLETED))
            .expression_attribute_values(":response", stored_response)
            .expression_attribute_values(":expires_at", millis(expires_at))
            .expression_attribute_values(":ttl", AttributeValue::N(idem::ttl_seconds(expires_at).to_string()))
            .expression_attribute_values(":token", string(token))
            .expression_attribute_values(":in_progress", string(IN_PROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let ccf = failed_condition(&err, |e| match e {
            UpdateItemError::ConditionalCheckFailedException(c) => Some(c),
            _ => None,
        });
        match ccf {
            Some(old) => {
                let old = old.map(|item| idempotency_from_item(item, key)).transpose()?;
                match idem::completion(old.as_ref(), token, response, expires_at) {
                    Completion::Done => Ok(()),
                    Completion::Apply | Completion::Conflict => Err(StoreError::Conflict),
                }
            }
            None => Err(op_error("UpdateItem", &self.table, &err)),
        }
    }

    async fn release(&self, key: &str, token: &str) -> Result<(), StoreError> {
        idem::check_key(key)?;
        idem::check_token(token)?;
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, string(idempotency_pk(key)))
            .key(SK, string(IDEMPOTENCY_SK))
            .condition_expression("#token = :token AND #status = :in_progress")
            .expression_attribute_names("#token", TOKEN)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":token", string(token))
            .expression_attribute_values(":in_progress", string(IN_PROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let ccf = failed_condition(&err, |e| match e {
            DeleteItemError::ConditionalCheckFailedException(c) => Some(c),
            _ => None,
        });
        match ccf {
            Some(None) => Ok(()),
            Some(Some(_)) => Err(StoreError::Conflict),
            None => Err(op_error("DeleteItem", &self.table, &err)),
        }
    }
}

impl DynamoStore {
    /// Items of index `index` under partition key `pk` whose sort key is below `bound`, in
    /// sort-key order (`forward`) or reversed, at most `limit`, across pages.
    async fn query_below(
        &self,
        index: &str,
        attrs: (&str, &str),
        pk: String,
        bound: &str,
        forward: bool,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_range(index, attrs, pk, ("<", bound), forward, limit).await
    }

    /// Items of index `index` under partition key `pk` whose sort key compares to `bound` as
    /// `op` says (`<` or `>`), in sort-key order (`forward`) or reversed, at most `limit`, across
    /// pages (each asking for what is still missing).
    async fn query_range(
        &self,
        index: &str,
        (pk_attr, sk_attr): (&str, &str),
        pk: String,
        (op, bound): (&str, &str),
        forward: bool,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut start_key = None;
        while found.len() < limit {
            let page = i32::try_from(limit - found.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(format!("#pk = :pk AND #sk {op} :bound"))
                .expression_attribute_names("#pk", pk_attr)
                .expression_attribute_names("#sk", sk_attr)
                .expression_attribute_values(":pk", string(pk.as_str()))
                .expression_attribute_values(":bound", string(bound))
                .scan_index_forward(forward)
                .limit(page)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(sdk_message(&format!("Query {index}"), &self.table, &e)))?;
            found.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => break,
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    /// One shard's entries due before `bound`, earliest first, at most `limit`.
    async fn list_due_shard(&self, shard: u32, bound: &str, limit: usize) -> Result<Vec<DueEntry>, StoreError> {
        let items = self.query_below(GSI2, (GSI2PK, GSI2SK), due_gsi2pk(shard), bound, true, limit).await?;
        items
            .iter()
            .map(|item| {
                let attr = |name| {
                    string_attr(item, name).ok_or_else(|| corrupt(format!("{}: no {name} in GSI2", describe(item))))
                };
                due_from_index(attr(PK)?, attr(SK)?, attr(GSI2SK)?)
            })
            .collect()
    }
}

#[async_trait]
impl PendingIndex for DynamoStore {
    async fn list_due(&self, due_before: Timestamp, per_shard: usize) -> Result<Vec<DueEntry>, StoreError> {
        if per_shard == 0 {
            return Ok(Vec::new());
        }
        let bound = due_gsi2sk_bound(due_before);
        let shards = (0..keys::DUE_SHARDS).map(|shard| self.list_due_shard(shard, &bound, per_shard));
        let mut all = Vec::new();
        for result in futures::future::join_all(shards).await {
            all.extend(result?);
        }
        crate::sort_due(&mut all);
        Ok(all)
    }
}

impl DynamoStore {
    /// One shard of an attention list below `bound`, newest first, at most `limit`.
    async fn list_attention_shard(
        &self,
        list: AttentionList,
        shard: u32,
        bound: &str,
        limit: usize,
    ) -> Result<Vec<AttentionEntry>, StoreError> {
        let pk = keys::attention_gsi1pk(list, shard);
        let items = self.query_below(GSI1, (GSI1PK, GSI1SK), pk, bound, false, limit).await?;
        let mut found = Vec::with_capacity(items.len());
        for item in items {
            let listed = string_attr(&item, GSI1SK).map(str::to_owned);
            let record = Record::Obligation(entity_from_item(item, Entity::Obligation)?);
            let Some((_, position)) = record.attention_index() else { continue };
            if listed.as_deref() != Some(position.as_str()) {
                return Err(corrupt(format!("attention entry {listed:?} holds an obligation at {position}")));
            }
            if let Record::Obligation(obligation) = record {
                found.push(AttentionEntry { position, obligation });
            }
        }
        Ok(found)
    }

    /// One shard of the open obligations whose attempt is late (their position on the overdue
    /// list is their due-index time + [`keys::LATE_MS`]) below the due-index bound `bound`
    /// ([`keys::late_bound`]), newest first, at most `limit`, each read from its item (the due
    /// index holds keys only). Entries the overdue list reads from `GSI1` instead (the
    /// obligation's deadline comes first), and entries the index still shows at an older place,
    /// are passed over, and the shard read further down until `limit` are found.
    async fn list_late_shard(&self, shard: u32, bound: &str, limit: usize) -> Result<Vec<AttentionEntry>, StoreError> {
        let mut found = Vec::new();
        let mut start_key = None;
        while found.len() < limit {
            let page = i32::try_from(limit - found.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI2)
                .key_condition_expression("#pk = :pk AND #sk < :before")
                .expression_attribute_names("#pk", GSI2PK)
                .expression_attribute_names("#sk", GSI2SK)
                .expression_attribute_values(":pk", string(due_gsi2pk(shard)))
                .expression_attribute_values(":before", string(bound))
                .scan_index_forward(false)
                .limit(page)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(sdk_message("Query GSI2", &self.table, &e)))?;
            let entries = out.items.unwrap_or_default();
            let listed: std::collections::HashSet<String> =
                entries.iter().filter_map(|e| string_attr(e, GSI2SK).map(str::to_owned)).collect();
            let keys: Vec<Item> = entries
                .iter()
                .filter_map(|e| {
                    Some(HashMap::from([(PK.to_owned(), e.get(PK)?.clone()), (SK.to_owned(), e.get(SK)?.clone())]))
                })
                .collect();
            let mut page_found = Vec::new();
            for item in self.get_items(keys).await? {
                let record = if string_attr(&item, SK) == Some(keys::SESSION_SK) {
                    // A session item: the embedded obligation whose due entry it carries.
                    match aggregate::due_obligation(item)? {
                        Some(o) => Record::Obligation(o),
                        None => continue,
                    }
                } else {
                    Record::Obligation(entity_from_item(item, Entity::Obligation)?)
                };
                if record.attention_gsi1().is_some() {
                    continue;
                }
                let (Some((_, gsi2sk)), Some((_, position))) = (record.due_index(), record.attention_index()) else {
                    continue;
                };
                if !listed.contains(&gsi2sk) {
                    continue;
                }
                if let Record::Obligation(obligation) = record {
                    page_found.push(AttentionEntry { position, obligation });
                }
            }
            page_found.sort_by(|a, b| b.position.cmp(&a.position));
            found.extend(page_found);
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => break,
            }
        }
        found.truncate(limit);
        Ok(found)
    }
}

#[async_trait]
impl AttentionIndex for DynamoStore {
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
        let bound = crate::attention_bound(list, now, before);
        let shards = (0..keys::DUE_SHARDS).map(|shard| self.list_attention_shard(list, shard, &bound, limit));
        let late_bound = match list {
            AttentionList::Overdue => keys::late_bound(&bound),
            AttentionList::NeedsPerson => None,
        };
        let late = late_bound.iter().flat_map(|b| (0..keys::DUE_SHARDS).map(move |shard| (shard, b)));
        let late = late.map(|(shard, b)| self.list_late_shard(shard, b, limit));
        let (listed, late) =
            futures::future::join(futures::future::join_all(shards), futures::future::join_all(late)).await;
        // An obligation on both (an entry written before the due index stood in for GSI1): once,
        // as read from its item.
        let mut all: HashMap<String, AttentionEntry> = HashMap::new();
        for result in late {
            for entry in result? {
                all.insert(entry.obligation.target_id().to_owned(), entry);
            }
        }
        for result in listed {
            for entry in result? {
                all.entry(entry.obligation.target_id().to_owned()).or_insert(entry);
            }
        }
        Ok(crate::merge_attention(list, now, all.into_values().collect(), limit))
    }
}

#[async_trait]
impl SessionScan for DynamoStore {
    async fn scan_sessions(&self, after: Option<&ScanCursor>, page_items: usize) -> Result<ScanPage, StoreError> {
        let start = after.map(|c| HashMap::from([(PK.to_owned(), string(&c.pk)), (SK.to_owned(), string(&c.sk))]));
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("#sk = :session")
            .projection_expression("#pk, #sk, #gsi1pk, #gsi1sk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_names("#gsi1pk", GSI1PK)
            .expression_attribute_names("#gsi1sk", GSI1SK)
            .expression_attribute_values(":session", string(keys::SESSION_SK))
            .limit(i32::try_from(page_items.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(sdk_message("Scan", &self.table, &e)))?;
        let mut sessions = Vec::new();
        let mut relist = Vec::new();
        for item in out.items.unwrap_or_default() {
            let pk = string_attr(&item, PK).unwrap_or_default();
            let id = pk
                .strip_prefix(keys::SESSION_PREFIX)
                .and_then(|id| SessionId::parse(id).ok())
                .ok_or_else(|| corrupt(format!("{}: not a session key", describe(&item))))?;
            // A session written before user-list items existed (its user's list was GSI1):
            // give it its user-list entry, so that it stays listed once a change drops those keys.
            if let (Some(user_pk), Some(user_sk)) = (string_attr(&item, GSI1PK), string_attr(&item, GSI1SK))
                && user_pk.starts_with(keys::USER_PREFIX)
            {
                relist.push(HashMap::from([
                    (PK.to_owned(), string(user_pk)),
                    (SK.to_owned(), string(user_sk)),
                    (ENTITY.to_owned(), string(Entity::UserSession.as_str())),
                    ("session_id".to_owned(), string(id.as_str())),
                ]));
            }
            sessions.push(id);
        }
        if !relist.is_empty() {
            self.put_plain(relist).await?;
        }
        let next = out.last_evaluated_key.filter(|k| !k.is_empty()).and_then(|k| {
            Some(ScanCursor { pk: string_attr(&k, PK)?.to_owned(), sk: string_attr(&k, SK)?.to_owned() })
        });
        Ok(ScanPage { sessions, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parkpay_domain::{
        BookingRequest, Hours, LotCatalog, LotId, Paise, Payment, PaymentId, PaymentInstrument, SuccessReport,
        Timestamp, VehicleNumber,
    };

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms).unwrap()
    }

    fn session() -> ParkingSession {
        let request = BookingRequest {
            user_id: UserId::parse("driver-1").unwrap(),
            lot_id: LotId::parse("MG-ROAD-1").unwrap(),
            vehicle: VehicleNumber::parse("KA01AB1234").unwrap(),
            hours: Hours::new(2, 24).unwrap(),
        };
        ParkingSession::book(&LotCatalog::default_local(), SessionId::from_random([1; 16]), request, at(1_000)).unwrap()
    }

    #[test]
    fn session_item_has_keys_and_native_attributes() {
        let s = session();
        let item = record_item(&Record::Session(s.clone())).unwrap();
        assert_eq!(string_attr(&item, PK), Some(session_pk(s.id()).as_str()));
        assert_eq!(string_attr(&item, SK), Some("#SESSION"));
        // No index keys: the user's list has an item of its own, so changing a session never
        // rewrites an index entry.
        assert!(!item.contains_key(GSI1PK) && !item.contains_key(GSI1SK) && !item.contains_key(GSI2PK));
        let listed = user_list_item(&s);
        assert_eq!(string_attr(&listed, PK), Some("USER#driver-1"));
        assert_eq!(string_attr(&listed, SK).unwrap(), format!("000000000001000#{}", s.id()));
        assert_eq!(string_attr(&listed, ENTITY), Some("USER_SESSION"));
        assert_eq!(string_attr(&listed, "session_id"), Some(s.id().as_str()));
        assert_eq!(string_attr(&item, ENTITY), Some("SESSION"));
        assert_eq!(item.get("version"), Some(&AttributeValue::N("1".into())));
        assert_eq!(item.get("amount"), Some(&AttributeValue::N("10000".into())));
        assert_eq!(item.get("created_at"), Some(&AttributeValue::N("1000".into())));
        assert_eq!(string_attr(&item, "status"), Some("PENDING_PAYMENT"));
        assert!(!item.contains_key("paid_by"));
        let back = record_from_item(item, Entity::Session).unwrap();
        assert_eq!(back, Record::Session(s));
    }

    #[test]
    fn payment_round_trips_with_nulls_and_values() {
        let s = session();
        let mut p =
            Payment::start(PaymentId::parse("PP1").unwrap(), &s, &[], PaymentInstrument::UpiQr, at(2_000)).unwrap();
        let item = record_item(&Record::Payment(p.clone())).unwrap();
        assert_eq!(item.get("utr"), Some(&AttributeValue::Null(true)));
        assert!(!item.contains_key(GSI1PK));
        assert_eq!(record_from_item(item, Entity::Payment).unwrap(), Record::Payment(p.clone()));
        let report =
            SuccessReport { amount: Paise::new(10_000), provider_txn_id: Some("T1".into()), utr: Some("U1".into()) };
        let _ = p.succeed(report, at(3_000)).unwrap();
        let item = record_item(&Record::Payment(p.clone())).unwrap();
        assert_eq!(record_from_item(item, Entity::Payment).unwrap(), Record::Payment(p));
    }

    #[test]
    fn corrupt_items_are_errors_not_panics() {
        let good = record_item(&Record::Session(session())).unwrap();
        let mut wrong_tag = good.clone();
        wrong_tag.insert(ENTITY.into(), string("PAYMENT"));
        let mut no_tag = good.clone();
        no_tag.remove(ENTITY);
        let mut bad_version = good.clone();
        bad_version.insert("version".into(), string("one"));
        let mut negative = good.clone();
        negative.insert("version".into(), AttributeValue::N("-1".into()));
        let mut bad_id = good.clone();
        bad_id.insert("id".into(), string("nope"));
        let mut missing = good;
        missing.remove("user_id");
        for item in [wrong_tag, no_tag, bad_version, negative, bad_id, missing] {
            assert!(matches!(record_from_item(item, Entity::Session), Err(StoreError::Corrupt(_))));
        }
        let pointer: Result<TxnPointer, _> = entity_from_item(HashMap::new(), Entity::Txn);
        assert!(matches!(pointer, Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn pointer_item_round_trips() {
        let s = session();
        let p =
            Payment::start(PaymentId::parse("PP1").unwrap(), &s, &[], PaymentInstrument::PayPage, at(2_000)).unwrap();
        let (key, pointer) = Record::Payment(p).txn_pointer().unwrap();
        let item = pointer_item(key, &pointer).unwrap();
        assert_eq!(string_attr(&item, PK), Some("TXN#PP1"));
        assert_eq!(string_attr(&item, "kind"), Some("PAYMENT"));
        let back: TxnPointer = entity_from_item(item, Entity::Txn).unwrap();
        assert_eq!(
            back.into_ref("PP1").unwrap(),
            TxnRef::Payment { session_id: s.id().clone(), payment_id: PaymentId::parse("PP1").unwrap() }
        );
    }

    #[test]
    fn definition() {
        let def = table_definition("parkpay");
        assert_eq!(def.table_name, "parkpay");
        assert_eq!(def.billing_mode, "PAY_PER_REQUEST");
        let names: Vec<_> = def.attribute_definitions().iter().map(|a| (a.name, a.attribute_type)).collect();
        assert_eq!(
            names,
            [
                ("GSI1PK", "S"),
                ("GSI1SK", "S"),
                ("GSI2PK", "S"),
                ("GSI2SK", "S"),
                ("GSI3PK", "S"),
                ("GSI3SK", "S"),
                ("GSI4PK", "S"),
                ("GSI4SK", "S"),
                ("PK", "S"),
                ("SK", "S")
            ]
        );
        assert_eq!(def.global_secondary_indexes[0].index_name, "GSI1");
        assert_eq!(def.global_secondary_indexes[0].projection_type, "ALL");
        assert_eq!(def.global_secondary_indexes[1].index_name, "GSI2");
        assert_eq!(def.global_secondary_indexes[1].projection_type, "KEYS_ONLY");
        assert_eq!(def.global_secondary_indexes[2].index_name, "GSI3");
        assert_eq!(def.global_secondary_indexes[2].partition_key.name, "GSI3PK");
        assert_eq!(def.global_secondary_indexes[2].sort_key.name, "GSI3SK");
        assert_eq!(def.global_secondary_indexes[2].projection_type, "KEYS_ONLY");
        assert_eq!(def.global_secondary_indexes[3].index_name, "GSI4");
        assert_eq!(def.global_secondary_indexes[3].partition_key.name, "GSI4PK");
        assert_eq!(def.global_secondary_indexes[3].sort_key.name, "GSI4SK");
        assert_eq!(def.global_secondary_indexes[3].projection_type, "KEYS_ONLY");
        assert_eq!(def.global_secondary_indexes.len(), 4);
        assert_eq!(def.time_to_live_attribute, Some("expires_at_epoch"));
    }

    #[test]
    fn tokens_are_unique_and_short() {
        let a = request_token();
        let b = request_token();
        assert_ne!(a, b);
        assert!(a.len() <= 36);
    }
}
