//! What both backends share about idempotency records: the stored form, argument checks, and
//! the decisions ([`takes`], [`completion`], [`release`]) that DynamoDB expresses as condition
//! expressions and the embedded store evaluates inside its write transaction.

use parkpay_domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::keys::{ItemKey, corrupt};
use crate::{
    IdempotencyRecord, IdempotencyStatus, MAX_IDEMPOTENCY_KEY_BYTES, MAX_IDEMPOTENCY_TOKEN_BYTES,
    MAX_STORED_RESPONSE_BYTES, StoreError, StoredResponse,
};

/// Attribute names of the stored form (used in DynamoDB expressions).
pub(crate) const TOKEN: &str = "token";
pub(crate) const STATUS: &str = "status";
pub(crate) const IN_PROGRESS_UNTIL: &str = "in_progress_until";
pub(crate) const EXPIRES_AT: &str = "expires_at";
pub(crate) const RESPONSE: &str = "response";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum StoredStatus {
    InProgress,
    Completed,
}

pub(crate) const IN_PROGRESS: &str = "IN_PROGRESS";
pub(crate) const COMPLETED: &str = "COMPLETED";

impl From<IdempotencyStatus> for StoredStatus {
    fn from(s: IdempotencyStatus) -> Self {
        match s {
            IdempotencyStatus::InProgress => StoredStatus::InProgress,
            IdempotencyStatus::Completed => StoredStatus::Completed,
        }
    }
}

impl From<StoredStatus> for IdempotencyStatus {
    fn from(s: StoredStatus) -> Self {
        match s {
            StoredStatus::InProgress => IdempotencyStatus::InProgress,
            StoredStatus::Completed => IdempotencyStatus::Completed,
        }
    }
}

/// A response as stored: a map `{status: N, body: S}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredResponseItem {
    pub status: u16,
    pub body: String,
}

impl From<&StoredResponse> for StoredResponseItem {
    fn from(r: &StoredResponse) -> Self {
        StoredResponseItem { status: r.status, body: r.body.clone() }
    }
}

/// The attributes of an idempotency item (besides keys and `entity`): timestamps in Unix ms,
/// plus the TTL attribute in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdempotencyItem {
    pub key: String,
    pub payload_hash: String,
    pub status: StoredStatus,
    pub in_progress_until: Timestamp,
    pub expires_at: Timestamp,
    /// [`crate::keys::TTL_ATTRIBUTE`] (its name is this field's): `expires_at` in Unix seconds, rounded up.
    pub expires_at_epoch: i64,
    pub response: Option<StoredResponseItem>,
    pub token: String,
}

impl From<&IdempotencyRecord> for IdempotencyItem {
    fn from(r: &IdempotencyRecord) -> Self {
        IdempotencyItem {
            key: r.key.clone(),
            payload_hash: r.payload_hash.clone(),
            status: r.status.into(),
            in_progress_until: r.in_progress_until,
            expires_at: r.expires_at,
            expires_at_epoch: ttl_seconds(r.expires_at),
            response: r.response.as_ref().map(StoredResponseItem::from),
            token: r.token.clone(),
        }
    }
}

impl IdempotencyItem {
    /// The record, checked against the key it was read under.
    pub(crate) fn into_record(self, looked_up: &str, item: &ItemKey) -> Result<IdempotencyRecord, StoreError> {
        if self.key != looked_up {
            return Err(corrupt(format!("item {item} holds the idempotency record of another key")));
        }
        let status = IdempotencyStatus::from(self.status);
        if (status == IdempotencyStatus::Completed) != self.response.is_some() {
            return Err(corrupt(format!("item {item}: {} with response {:?}", status.as_str(), self.response)));
        }
        Ok(IdempotencyRecord {
            key: self.key,
            payload_hash: self.payload_hash,
            status,
            in_progress_until: self.in_progress_until,
            expires_at: self.expires_at,
            response: self.response.map(|r| StoredResponse { status: r.status, body: r.body }),
            token: self.token,
        })
    }
}

/// `t` in Unix seconds, rounded up: DynamoDB's TTL never deletes a record before `t`.
pub(crate) fn ttl_seconds(t: Timestamp) -> i64 {
    t.unix_millis().div_euclid(1000) + i64::from(t.unix_millis().rem_euclid(1000) != 0)
}

// ---------------------------------------------------------------------------------------------
// Checks

fn invalid(msg: String) -> StoreError {
    StoreError::Invalid(msg)
}

pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
        return Err(invalid(format!("idempotency key of {} bytes (1..={MAX_IDEMPOTENCY_KEY_BYTES})", key.len())));
    }
    Ok(())
}

fn check_short(what: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() || value.len() > MAX_IDEMPOTENCY_TOKEN_BYTES {
        return Err(invalid(format!(
            "idempotency {what} of {} bytes (1..={MAX_IDEMPOTENCY_TOKEN_BYTES})",
            value.len()
        )));
    }
    Ok(())
}

pub(crate) fn check_token(token: &str) -> Result<(), StoreError> {
    check_short("token", token)
}

/// Checks an [`crate::IdempotencyStore::acquire`] argument.
pub(crate) fn check_new(record: &IdempotencyRecord, now: Timestamp) -> Result<(), StoreError> {
    check_key(&record.key)?;
    check_token(&record.token)?;
    check_short("payload hash", &record.payload_hash)?;
    if record.status != IdempotencyStatus::InProgress || record.response.is_some() {
        return Err(invalid("an acquired idempotency record must be in progress, without a response".into()));
    }
    if record.in_progress_until <= now || record.expires_at <= now {
        return Err(invalid(format!(
            "idempotency record already over at {now}: in progress until {}, expires at {}",
            record.in_progress_until, record.expires_at
        )));
    }
    Ok(())
}

pub(crate) fn check_response(response: &StoredResponse) -> Result<(), StoreError> {
    if !(100..=599).contains(&response.status) {
        return Err(invalid(format!("response status {} outside 100..=599", response.status)));
    }
    if response.body.len() > MAX_STORED_RESPONSE_BYTES {
        return Err(invalid(format!(
            "response body of {} bytes (at most {MAX_STORED_RESPONSE_BYTES})",
            response.body.len()
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Decisions

/// Whether an acquire at `now` may overwrite `stored`. The DynamoDB condition is the same:
/// `attribute_not_exists(PK) OR expires_at <= :now OR (status = IN_PROGRESS AND in_progress_until <= :now)`.
#[cfg_attr(not(feature = "embedded"), allow(dead_code))] // the embedded store's; DynamoDB says it in conditions
pub(crate) fn takes(stored: Option<&IdempotencyRecord>, now: Timestamp) -> bool {
    stored.is_none_or(|r| !r.is_live(now))
}

/// What an acquire that found the live record `stored` answers: `Acquired` again if `stored` is
/// exactly what this acquire writes (its own earlier, retried write), else the record.
pub(crate) fn refused(stored: IdempotencyRecord, wanted: &IdempotencyRecord) -> crate::Acquire {
    if &stored == wanted { crate::Acquire::Acquired } else { crate::Acquire::Existing(stored) }
}

/// What a completion finds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Completion {
    /// Held by the token and in progress: write.
    Apply,
    /// Already completed by this very call (a retry): nothing to write, `Ok`.
    Done,
    Conflict,
}

/// The DynamoDB condition for [`Completion::Apply`] is `token = :token AND status = IN_PROGRESS`;
/// on failure the old item tells `Done` from `Conflict`.
pub(crate) fn completion(
    stored: Option<&IdempotencyRecord>,
    token: &str,
    response: &StoredResponse,
    expires_at: Timestamp,
) -> Completion {
    match stored {
        Some(r) if r.token == token => match r.status {
            IdempotencyStatus::InProgress => Completion::Apply,
            IdempotencyStatus::Completed if r.response.as_ref() == Some(response) && r.expires_at == expires_at => {
                Completion::Done
            }
            IdempotencyStatus::Completed => Completion::Conflict,
        },
        _ => Completion::Conflict,
    }
}

/// What a release finds: `Ok(true)` delete, `Ok(false)` nothing to delete, or a conflict. The
/// DynamoDB condition for deleting is `token = :token AND status = IN_PROGRESS`; on failure, an
/// old item means a conflict, none means nothing to delete.
#[cfg_attr(not(feature = "embedded"), allow(dead_code))] // the embedded store's; DynamoDB says it in conditions
pub(crate) fn release(stored: Option<&IdempotencyRecord>, token: &str) -> Result<bool, StoreError> {
    match stored {
        None => Ok(false),
        Some(r) if r.token == token && r.status == IdempotencyStatus::InProgress => Ok(true),
        Some(_) => Err(StoreError::Conflict),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms).unwrap()
    }

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        assert_eq!(ttl_seconds(at(0)), 0);
        assert_eq!(ttl_seconds(at(1)), 1);
        assert_eq!(ttl_seconds(at(999)), 1);
        assert_eq!(ttl_seconds(at(1_000)), 1);
        assert_eq!(ttl_seconds(at(1_001)), 2);
        assert_eq!(ttl_seconds(Timestamp::MAX), 253_402_300_800);
    }

    #[test]
    fn takeover_rules() {
        let mut r = IdempotencyRecord::in_progress("k", "h", "t", at(2_000), at(10_000));
        assert!(takes(None, at(0)));
        assert!(!takes(Some(&r), at(1_999)));
        assert!(takes(Some(&r), at(2_000)), "in progress past its deadline");
        r.status = IdempotencyStatus::Completed;
        r.response = Some(StoredResponse { status: 201, body: "{}".into() });
        assert!(!takes(Some(&r), at(9_999)), "completed: live until it expires");
        assert!(takes(Some(&r), at(10_000)));
        // An in-progress record whose expiry comes first.
        let r = IdempotencyRecord::in_progress("k", "h", "t", at(20_000), at(10_000));
        assert!(takes(Some(&r), at(10_000)));
    }

    #[test]
    fn new_records_are_checked() {
        let now = at(1_000);
        let ok = IdempotencyRecord::in_progress("k", "h", "t", at(2_000), at(3_000));
        assert_eq!(check_new(&ok, now), Ok(()));
        let long_key = "k".repeat(MAX_IDEMPOTENCY_KEY_BYTES);
        assert_eq!(check_new(&IdempotencyRecord { key: long_key.clone(), ..ok.clone() }, now), Ok(()));
        let bad = [
            IdempotencyRecord { key: String::new(), ..ok.clone() },
            IdempotencyRecord { key: long_key + "k", ..ok.clone() },
            IdempotencyRecord { token: String::new(), ..ok.clone() },
            IdempotencyRecord { token: "t".repeat(MAX_IDEMPOTENCY_TOKEN_BYTES + 1), ..ok.clone() },
            IdempotencyRecord { payload_hash: String::new(), ..ok.clone() },
            IdempotencyRecord { status: IdempotencyStatus::Completed, ..ok.clone() },
            IdempotencyRecord { response: Some(StoredResponse { status: 200, body: String::new() }), ..ok.clone() },
            IdempotencyRecord { in_progress_until: now, ..ok.clone() },
            IdempotencyRecord { expires_at: now, ..ok },
        ];
        for r in bad {
            assert!(matches!(check_new(&r, now), Err(StoreError::Invalid(_))), "{r:?}");
        }
        assert!(check_response(&StoredResponse { status: 99, body: String::new() }).is_err());
        assert!(check_response(&StoredResponse { status: 600, body: String::new() }).is_err());
        assert!(check_response(&StoredResponse { status: 599, body: "x".repeat(MAX_STORED_RESPONSE_BYTES) }).is_ok());
        assert!(
            check_response(&StoredResponse { status: 200, body: "x".repeat(MAX_STORED_RESPONSE_BYTES + 1) }).is_err()
        );
    }

    #[test]
    fn stored_form_is_checked_on_read() {
        let key = crate::keys::idempotency_key("k");
        let r = IdempotencyRecord::in_progress("k", "h", "t", at(2_000), at(3_500));
        let item = IdempotencyItem::from(&r);
        assert_eq!(item.expires_at_epoch, 4);
        assert_eq!(item.clone().into_record("k", &key), Ok(r));
        assert!(matches!(item.clone().into_record("j", &key), Err(StoreError::Corrupt(_))));
        let completed_without_response = IdempotencyItem { status: StoredStatus::Completed, ..item };
        assert!(matches!(completed_without_response.into_record("k", &key), Err(StoreError::Corrupt(_))));
    }
}
