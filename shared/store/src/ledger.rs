//! The settlement ledger: one entry each time a payment or refund reaches a final state
//! (SUCCESS or FAILED), for finance to match PhonePe's settlement report day by day, and for
//! operators to find a transaction by PhonePe's transaction id or its UTR.
//!
//! [`Store::commit`](crate::Store::commit) writes the entries itself, derived from the writes: a
//! write of a payment or refund in a final state that it was not in before (an insert of a record
//! already final counts) adds the entry of that transaction and state, final at the record's
//! `updated_at` in that write. Callers change nothing. A payment FAILED and then, by a late
//! success, SUCCESS has two entries, one per final state reached; a refund likewise.
//!
//! An entry is keyed by its transaction and state alone ([`keys::ledger_key`]) and written only
//! where none is (DynamoDB: `attribute_not_exists`; the embedded store: in the same transaction,
//! when absent): however often a commit is replayed or retried, a transaction has one entry per
//! final state, and it keeps the first `final_at` written.
//!
//! How each backend knows the state before the write: the embedded store reads the stored record
//! in the commit's transaction and compares. DynamoDB does not read before writing (see
//! `dynamo/aggregate.rs`): a record embedded in its session's item is compared with the status
//! the item showed when a condition failed, and otherwise presumed (`presumed_reached`) with the
//! presumption made a condition of the write where it says "not reached", so that a wrong
//! presumption fails the write, shows the stored status, and the commit is planned again on it.
//! Records of earlier versions in items of their own are judged by the presumption alone.

use parkpay_domain::{Paise, PaymentId, PaymentStatus, RefundStatus, SessionId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::keys::{self, ItemKey, corrupt};
use crate::{Record, StoreError, page};

/// Most entries one page of [`Store::list_ledger`](crate::Store::list_ledger) may hold (the
/// least is 1).
pub const MAX_LEDGER_PAGE_LIMIT: usize = 1000;

/// The longest span one listing of the ledger may cover, in days (`day_end - day_start`).
pub const MAX_LEDGER_SPAN_DAYS: i64 = 31;

/// What a ledger entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LedgerKind {
    Payment,
    Refund,
}

impl LedgerKind {
    /// As stored and shown: `PAYMENT` | `REFUND`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Payment => "PAYMENT",
            LedgerKind::Refund => "REFUND",
        }
    }
}

/// The final state a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LedgerState {
    Success,
    Failed,
}

impl LedgerState {
    /// As stored and shown: `SUCCESS` | `FAILED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LedgerState::Success => "SUCCESS",
            LedgerState::Failed => "FAILED",
        }
    }

    fn parse(text: &str) -> Option<LedgerState> {
        match text {
            "SUCCESS" => Some(LedgerState::Success),
            "FAILED" => Some(LedgerState::Failed),
            _ => None,
        }
    }
}

/// A payment or refund that reached a final state: one row of the settlement CSV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub kind: LedgerKind,
    /// The payment's or refund's id: its merchant transaction id at PhonePe.
    pub merchant_txn_id: String,
    /// The payment itself, or the payment a refund returns money of.
    pub payment_id: PaymentId,
    /// PhonePe's transaction id (payments, when PhonePe gave one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_txn_id: Option<String>,
    /// The bank's UTR (payments, when PhonePe gave one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utr: Option<String>,
    pub session_id: SessionId,
    /// In paise.
    pub amount: Paise,
    pub state: LedgerState,
    /// The record's `updated_at` in the write that made it final (the first such write, should
    /// one be written again: see the module docs).
    pub final_at: Timestamp,
}

/// One page of [`Store::list_ledger`](crate::Store::list_ledger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPage {
    /// By `final_at`, then `merchant_txn_id` (then state: `FAILED` before `SUCCESS`).
    pub entries: Vec<LedgerEntry>,
    /// Opaque, URL-safe; present only when more may follow.
    pub next_cursor: Option<String>,
}

/// The stored status of a payment or refund, as its item spells it (`None` for the other
/// records).
pub(crate) fn status_of(record: &Record) -> Option<&'static str> {
    match record {
        Record::Payment(p) => Some(p.status().as_str()),
        Record::Refund(r) => Some(r.status().as_str()),
        Record::Session(_) | Record::Obligation(_) => None,
    }
}

/// Whether a write of `record`, a payment or refund in a final state, is presumed to be the one
/// that made it so, when the stored record is not known (DynamoDB's first try):
/// - a payment SUCCESS: when its `succeeded_at` is its `updated_at` (the success sets both to the
///   same time, and every later change of a successful payment, a refund's, moves `updated_at`
///   on). Only a write presumed not to reach its state is checked (a condition that the stored
///   status is that state already): the success written by a clock behind the payment's last
///   change, whose `updated_at` stays ahead, fails that condition and is then known;
/// - a payment FAILED, a refund SUCCESS or FAILED: always (nothing changes those records but the
///   transition into a final state).
#[cfg_attr(not(feature = "dynamodb"), allow(dead_code))]
pub(crate) fn presumed_reached(record: &Record) -> bool {
    match record {
        Record::Payment(p) => p.status() != PaymentStatus::Success || p.succeeded_at() == Some(p.updated_at()),
        _ => true,
    }
}

impl LedgerEntry {
    /// The entry `record` stands for while in a final state: a payment or refund SUCCESS or
    /// FAILED; `None` otherwise.
    pub(crate) fn of(record: &Record) -> Option<LedgerEntry> {
        match record {
            Record::Payment(p) => {
                let state = match p.status() {
                    PaymentStatus::Success => LedgerState::Success,
                    PaymentStatus::Failed => LedgerState::Failed,
                    PaymentStatus::Pending => return None,
                };
                Some(LedgerEntry {
                    kind: LedgerKind::Payment,
                    merchant_txn_id: p.id().as_str().to_owned(),
                    payment_id: p.id().clone(),
                    provider_txn_id: p.provider_txn_id().map(str::to_owned),
                    utr: p.utr().map(str::to_owned),
                    session_id: p.session_id().clone(),
                    amount: p.amount(),
                    state,
                    final_at: p.updated_at(),
                })
            }
            Record::Refund(r) => {
                let state = match r.status() {
                    RefundStatus::Success => LedgerState::Success,
                    RefundStatus::Failed => LedgerState::Failed,
                    RefundStatus::Pending => return None,
                };
                Some(LedgerEntry {
                    kind: LedgerKind::Refund,
                    merchant_txn_id: r.id().as_str().to_owned(),
                    payment_id: r.payment_id().clone(),
                    provider_txn_id: None,
                    utr: None,
                    session_id: r.session_id().clone(),
                    amount: r.amount(),
                    state,
                    final_at: r.updated_at(),
                })
            }
            Record::Session(_) | Record::Obligation(_) => None,
        }
    }

    /// Its item's primary key ([`keys::ledger_key`]).
    pub fn key(&self) -> ItemKey {
        keys::ledger_key(&self.merchant_txn_id, self.state)
    }

    /// Its position in the ledger ([`keys::ledger_position`]).
    pub fn position(&self) -> String {
        keys::ledger_position(self.final_at, &self.merchant_txn_id, self.state)
    }

    /// `(GSI1PK, GSI1SK)`: its day (in India) and shard, and its position.
    pub fn day_index(&self) -> (String, String) {
        let date = keys::ist_date(self.final_at);
        (keys::ledger_gsi1pk(&date, keys::ledger_shard(&self.merchant_txn_id)), self.position())
    }

    /// `(GSI2PK, GSI2SK)` = `(PREF#{provider_txn_id}, {session_id})`, when it has a PhonePe
    /// transaction id that is indexed ([`keys::indexable_ref`]).
    pub fn provider_ref_index(&self) -> Option<(String, String)> {
        let id = self.provider_txn_id.as_deref().filter(|r| keys::indexable_ref(r))?;
        Some((keys::provider_ref_gsi2pk(id), self.session_id.as_str().to_owned()))
    }

    /// `(GSI3PK, GSI3SK)` = `(UTR#{utr}, {session_id})`, when it has a UTR that is indexed.
    pub fn utr_index(&self) -> Option<(String, String)> {
        let utr = self.utr.as_deref().filter(|r| keys::indexable_ref(r))?;
        Some((keys::utr_gsi3pk(utr), self.session_id.as_str().to_owned()))
    }

    /// Checks an entry read from the item keyed `key`, listed at `position` when read through the
    /// day index.
    pub(crate) fn check(&self, key: &ItemKey, position: Option<&str>) -> Result<(), StoreError> {
        let bad = |what: &str| corrupt(format!("ledger entry {key}: {what}"));
        if &self.key() != key {
            return Err(bad("holds another transaction or state"));
        }
        if keys::impossible_txn_id(&self.merchant_txn_id) {
            return Err(bad("not a transaction id"));
        }
        if self.kind == LedgerKind::Payment && self.payment_id.as_str() != self.merchant_txn_id {
            return Err(bad("a payment's entry names another payment"));
        }
        if position.is_some_and(|p| p != self.position()) {
            return Err(bad("listed at another position"));
        }
        Ok(())
    }
}

/// The transaction and session a search index entry names: `PK` = `TXN#{merchant_txn_id}`, `SK`
/// a ledger entry's, the index sort key the session id.
pub(crate) fn ref_from_index(pk: &str, sk: &str, session: &str) -> Result<(SessionId, String), StoreError> {
    let bad = || corrupt(format!("search index entry {session:?} for item {pk} / {sk}"));
    let txn = pk.strip_prefix("TXN#").filter(|t| !keys::impossible_txn_id(t)).ok_or_else(bad)?;
    sk.strip_prefix(keys::LEDGER_SK_PREFIX).and_then(LedgerState::parse).ok_or_else(bad)?;
    let session_id = SessionId::parse(session).map_err(|_| bad())?;
    Ok((session_id, txn.to_owned()))
}

/// Most index entries one search reads per kind of reference (PhonePe's transaction id, UTR).
pub(crate) const MAX_REF_MATCHES: usize = 100;

/// Sorts and dedupes search results.
pub(crate) fn sort_refs(found: &mut Vec<(SessionId, String)>) {
    found.sort();
    found.dedup();
}

/// The time, transaction and state of a ledger position (what [`keys::ledger_position`] makes),
/// if it is well formed.
pub(crate) fn parse_position(position: &str) -> Option<(Timestamp, String, LedgerState)> {
    let (millis, tail) = position.split_at_checked(15)?;
    if !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let at = Timestamp::from_unix_millis(millis.parse().ok()?).ok()?;
    let (txn, state) = tail.strip_prefix('#')?.rsplit_once('#')?;
    let state = LedgerState::parse(state)?;
    if keys::impossible_txn_id(txn) {
        return None;
    }
    (keys::ledger_position(at, txn, state) == position).then(|| (at, txn.to_owned(), state))
}

/// What one listing reads: positions strictly between `after` and `before`, in the day
/// partitions of `dates` (IST, oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LedgerRange {
    pub after: String,
    pub before: String,
    pub dates: Vec<String>,
}

/// The range of a listing of `[day_start, day_end)` after `cursor`. [`StoreError::Invalid`] for a
/// limit outside 1..=[`MAX_LEDGER_PAGE_LIMIT`], an empty or reversed span or one longer than
/// [`MAX_LEDGER_SPAN_DAYS`], or a cursor that is not one of this listing's.
pub(crate) fn ledger_range(
    day_start: Timestamp,
    day_end: Timestamp,
    limit: usize,
    cursor: Option<&str>,
) -> Result<LedgerRange, StoreError> {
    if !(1..=MAX_LEDGER_PAGE_LIMIT).contains(&limit) {
        return Err(StoreError::Invalid(format!("page limit {limit}: must be 1..={MAX_LEDGER_PAGE_LIMIT}")));
    }
    let span = day_end.unix_millis() - day_start.unix_millis();
    if span <= 0 || span > MAX_LEDGER_SPAN_DAYS * 86_400_000 {
        return Err(StoreError::Invalid(format!(
            "ledger span {day_start} .. {day_end}: must end after it starts, within {MAX_LEDGER_SPAN_DAYS} days"
        )));
    }
    // No position is a bare time, so the bounds are exclusive at exactly those times: every entry
    // final at `day_start` or later sorts above `{day_start:015}`, every one final at `day_end` or
    // later above `{day_end:015}`.
    let mut after = keys::due_gsi2sk_bound(day_start);
    let mut from = day_start;
    if let Some(c) = cursor {
        let position = page::decode(page::Listing::Ledger, c)?;
        if position > after {
            from = parse_position(&position).map_or(day_start, |(t, ..)| t);
            after = position;
        }
    }
    let before = keys::due_gsi2sk_bound(day_end);
    let last = Timestamp::from_unix_millis(day_end.unix_millis() - 1).unwrap_or(day_end);
    let dates = if after < before {
        (keys::ist_day(from)..=keys::ist_day(last)).map(keys::date_of_day).collect()
    } else {
        // A cursor at or past the end: nothing more.
        Vec::new()
    };
    Ok(LedgerRange { after, before, dates })
}

/// Adds one day's entries (from all its shards, each shard's first `missing + 1` at most, each
/// with its position, any order) to `found`, keeping the ledger's order; `true` when the page is
/// full and more follow.
pub(crate) fn add_day(
    found: &mut Vec<(String, LedgerEntry)>,
    mut day: Vec<(String, LedgerEntry)>,
    limit: usize,
) -> bool {
    day.sort_by(|a, b| a.0.cmp(&b.0));
    let missing = limit.saturating_sub(found.len());
    let more = day.len() > missing;
    found.extend(day.into_iter().take(missing));
    more
}

/// The page of `found` (at most the limit, in order) and its cursor, given whether more follow.
pub(crate) fn ledger_page(found: Vec<(String, LedgerEntry)>, more: bool) -> LedgerPage {
    let next_cursor = if more { found.last().map(|(p, _)| page::encode(page::Listing::Ledger, p)) } else { None };
    LedgerPage { entries: found.into_iter().map(|(_, e)| e).collect(), next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms).unwrap()
    }

    #[test]
    fn dates_are_indian() {
        // 2026-12-01T00:00:00+05:30 = 2026-11-30T18:30:00Z.
        let midnight = Timestamp::parse_rfc3339("2026-11-30T18:30:00Z").unwrap();
        assert_eq!(keys::ist_date(midnight), "2026-12-01");
        assert_eq!(keys::ist_date(at(midnight.unix_millis() - 1)), "2026-11-30");
        assert_eq!(keys::ist_date(Timestamp::UNIX_EPOCH), "1970-01-01");
        assert_eq!(keys::ist_date(Timestamp::MAX), "10000-01-01");
        assert_eq!(keys::ist_date(Timestamp::parse_rfc3339("2028-02-29T12:00:00Z").unwrap()), "2028-02-29");
        assert_eq!(keys::ist_date(Timestamp::parse_rfc3339("2027-02-28T18:29:59.999Z").unwrap()), "2027-02-28");
        assert_eq!(keys::ist_date(Timestamp::parse_rfc3339("2027-02-28T18:30:00Z").unwrap()), "2027-03-01");
        // Every day for 30 years against the domain's own formatting of the time at IST noon.
        for day in 20_000..31_000 {
            let noon_utc = day * 86_400_000 + 6 * 3_600_000 + 30 * 60_000;
            assert_eq!(keys::date_of_day(day), at(noon_utc).to_rfc3339()[..10], "day {day}");
        }
    }

    #[test]
    fn positions_parse_canonically() {
        let p = keys::ledger_position(at(42), "PP1", LedgerState::Success);
        assert_eq!(p, "000000000000042#PP1#SUCCESS");
        assert_eq!(parse_position(&p), Some((at(42), "PP1".to_owned(), LedgerState::Success)));
        for bad in [
            "000000000000042#PP1#PENDING",
            "000000000000042#PP1",
            "00000000000042#PP1#SUCCESS",
            "999999999999999#PP1#SUCCESS",
            "000000000000042#a b#SUCCESS",
            "000000000000042##SUCCESS",
            "+00000000000042#PP1#SUCCESS",
            "",
        ] {
            assert_eq!(parse_position(bad), None, "{bad:?}");
        }
        assert!(
            keys::ledger_position(at(1), "PPZ", LedgerState::Success)
                < keys::ledger_position(at(2), "PPA", LedgerState::Failed)
        );
        assert!(
            keys::ledger_position(at(1), "PPA", LedgerState::Success)
                < keys::ledger_position(at(1), "PPB", LedgerState::Failed)
        );
    }

    #[test]
    fn ranges_cover_the_dates_of_their_bounds() {
        let start = Timestamp::parse_rfc3339("2026-11-30T18:30:00Z").unwrap();
        let end = at(start.unix_millis() + 86_400_000);
        let r = ledger_range(start, end, 10, None).unwrap();
        assert_eq!(r.dates, ["2026-12-01"]);
        assert_eq!((r.after.as_str(), r.before.len()), (keys::due_gsi2sk_bound(start).as_str(), 15));
        let odd = ledger_range(at(start.unix_millis() + 3_600_000), at(end.unix_millis() + 1), 10, None).unwrap();
        assert_eq!(odd.dates, ["2026-12-01", "2026-12-02"]);
        // A cursor further on starts at its own date.
        let cursor = page::encode(
            page::Listing::Ledger,
            &keys::ledger_position(at(end.unix_millis()), "PP1", LedgerState::Failed),
        );
        let on = ledger_range(start, at(end.unix_millis() + 1), 10, Some(&cursor)).unwrap();
        assert_eq!(on.dates, ["2026-12-02"]);
        for (s, e, limit) in
            [(start, start, 10), (end, start, 10), (start, end, 0), (start, end, MAX_LEDGER_PAGE_LIMIT + 1)]
        {
            assert!(matches!(ledger_range(s, e, limit, None), Err(StoreError::Invalid(_))));
        }
        let far = at(start.unix_millis() + (MAX_LEDGER_SPAN_DAYS + 1) * 86_400_000);
        assert!(matches!(ledger_range(start, far, 10, None), Err(StoreError::Invalid(_))));
        let sessions =
            page::encode(page::Listing::Sessions, &keys::session_gsi1sk(at(1), &SessionId::from_random([1; 16])));
        assert!(matches!(ledger_range(start, end, 10, Some(&sessions)), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn search_entries_parse_and_are_checked() {
        let s = SessionId::from_random([2; 16]);
        assert_eq!(ref_from_index("TXN#PP1", "#LEDGER#SUCCESS", s.as_str()).unwrap(), (s.clone(), "PP1".to_owned()));
        for (pk, sk, session) in [
            ("TXN#PP1", "#TXN", s.as_str()),
            ("SESSION#PP1", "#LEDGER#SUCCESS", s.as_str()),
            ("TXN#a b", "#LEDGER#SUCCESS", s.as_str()),
            ("TXN#PP1", "#LEDGER#SUCCESS", "nope"),
        ] {
            assert!(matches!(ref_from_index(pk, sk, session), Err(StoreError::Corrupt(_))), "{pk} {sk} {session}");
        }
    }
}
