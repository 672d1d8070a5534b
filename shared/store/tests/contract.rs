//! The `Store` contract: one suite, run against both backends.
//!
//! - `embedded::*`: [`EmbeddedStore`] in a fresh temporary file per test.
//! - `dynamodb::*`: [`DynamoStore`] on a real DynamoDB Local at `PARKPAY_DYNAMODB_ENDPOINT`,
//!   one freshly created table per test. Without that variable these tests fail (run
//!   `scripts/test.sh`, which starts DynamoDB Local), unless `PARKPAY_SKIP_DYNAMODB=1`.
//!
//! Entities are built only through the domain's public API. Every contract function runs on a
//! [`Backend`]: a store with all three traits ([`Store`], [`IdempotencyStore`], [`PendingIndex`]).

use std::sync::Arc;
use std::time::Duration;

use parkpay_domain::{
    BookingRequest, Hours, LotCatalog, LotId, Obligation, ObligationState, Paise, ParkingSession, Payment, PaymentId,
    PaymentInstrument, Refund, RefundId, RefundRequest, SessionId, SessionStatus, SuccessReport, Timestamp, Transition,
    UserId, VehicleNumber, record_refund_success,
};
use parkpay_store::{
    Acquire, AttentionIndex, AttentionList, DueEntry, DynamoStore, EmbeddedStore, IdempotencyRecord, IdempotencyStatus,
    IdempotencyStore, LedgerEntry, LedgerKind, LedgerState, MAX_LEDGER_PAGE_LIMIT, MAX_LEDGER_SPAN_DAYS,
    MAX_PAGE_LIMIT, MAX_STORED_RESPONSE_BYTES, MAX_WRITES_PER_COMMIT, PendingIndex, Record, Revoked, ScanCursor,
    SessionBundle, SessionScan, Store, StoreError, StoredResponse, StoredToken, TokenState, TokenStore, TxnRef, Write,
    keys,
};

/// What each backend is.
trait Backend: Store + IdempotencyStore + PendingIndex + AttentionIndex + SessionScan + TokenStore {}
impl<T: Store + IdempotencyStore + PendingIndex + AttentionIndex + SessionScan + TokenStore> Backend for T {}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms).unwrap()
}

fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

fn sid(n: u8) -> SessionId {
    SessionId::from_random([n; 16])
}

fn pid(s: &str) -> PaymentId {
    PaymentId::parse(s).unwrap()
}

fn rid(s: &str) -> RefundId {
    RefundId::parse(s).unwrap()
}

/// A 100.00 booking (MG-ROAD-1, 2 hours) for `who`, created at `created_ms`.
fn book(n: u8, who: &str, created_ms: i64) -> ParkingSession {
    let request = BookingRequest {
        user_id: user(who),
        lot_id: LotId::parse("MG-ROAD-1").unwrap(),
        vehicle: VehicleNumber::parse("KA01AB1234").unwrap(),
        hours: Hours::new(2, 24).unwrap(),
    };
    ParkingSession::book(&LotCatalog::default_local(), sid(n), request, at(created_ms)).unwrap()
}

fn start(id: &str, session: &ParkingSession, payments: &[Payment], now_ms: i64) -> Payment {
    Payment::start(pid(id), session, payments, PaymentInstrument::PayPage, at(now_ms)).unwrap()
}

fn report(p: &Payment) -> SuccessReport {
    SuccessReport { amount: p.amount(), provider_txn_id: Some(format!("T-{}", p.id())), utr: Some("UTR1".into()) }
}

/// A payment of `session` that succeeded (not stored).
fn paid_payment(id: &str, session: &ParkingSession, now_ms: i64) -> Payment {
    let mut p = start(id, session, &[], now_ms);
    assert_eq!(p.succeed(report(&p), at(now_ms + 1)), Ok(Transition::Applied));
    p
}

fn refund_request(who: &UserId, amount: Option<u64>) -> RefundRequest {
    RefundRequest {
        amount: amount.map(Paise::new),
        reason: Some("left early".into()),
        requested_by: who.clone(),
        by_operator: false,
    }
}

fn ins_session(s: &ParkingSession) -> Write {
    Write::Insert(Record::Session(s.clone()))
}

fn ins_payment(p: &Payment) -> Write {
    Write::Insert(Record::Payment(p.clone()))
}

fn ins_refund(r: &Refund) -> Write {
    Write::Insert(Record::Refund(r.clone()))
}

fn upd_session(s: &ParkingSession, expected_version: u64) -> Write {
    Write::Update { record: Record::Session(s.clone()), expected_version }
}

fn upd_payment(p: &Payment, expected_version: u64) -> Write {
    Write::Update { record: Record::Payment(p.clone()), expected_version }
}

fn upd_refund(r: &Refund, expected_version: u64) -> Write {
    Write::Update { record: Record::Refund(r.clone()), expected_version }
}

async fn load(store: &dyn Store, id: &SessionId) -> SessionBundle {
    store.load_session(id).await.unwrap().unwrap_or_else(|| panic!("session {id} not found"))
}

fn assert_invalid(result: Result<(), StoreError>, what: &str) {
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{what}: {result:?}");
}

/// `list_sessions` until it returns `expected` (on DynamoDB, sessions of earlier versions are
/// listed through `GSI1`, which is eventually consistent).
async fn assert_listed(store: &dyn Store, who: &UserId, limit: usize, expected: &[&ParkingSession]) {
    let expected: Vec<ParkingSession> = expected.iter().map(|s| (*s).clone()).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let got = store.list_sessions(who, limit).await.unwrap();
        if got == expected || tokio::time::Instant::now() > deadline {
            let ids = |v: &[ParkingSession]| v.iter().map(|s| s.id().to_string()).collect::<Vec<_>>();
            assert_eq!(ids(&got), ids(&expected), "list_sessions({who}, {limit})");
            assert_eq!(got, expected, "list_sessions({who}, {limit})");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The contract

/// A session through payments (one failed, one paid) and refunds (one settled), stored commit
/// by commit as the application would, then read back whole; lists are oldest first.
async fn session_with_payments_and_refunds(store: Arc<dyn Store>) {
    let store = &*store;
    let driver = user("driver-1");
    let mut s = book(1, "driver-1", 1_000);
    store.commit(vec![ins_session(&s)]).await.unwrap();
    assert_eq!(
        load(store, s.id()).await,
        SessionBundle { session: s.clone(), payments: vec![], refunds: vec![], obligations: vec![] }
    );

    // Ids chosen so that id order is not time order.
    let mut p_old = start("PPB", &s, &[], 2_000);
    store.commit(vec![ins_payment(&p_old)]).await.unwrap();
    assert_eq!(p_old.fail(at(3_000)), Ok(Transition::Applied));
    store.commit(vec![upd_payment(&p_old, 1)]).await.unwrap();

    let mut p = start("PPA", &s, std::slice::from_ref(&p_old), 4_000);
    store.commit(vec![ins_payment(&p)]).await.unwrap();
    assert_eq!(p.succeed(report(&p), at(5_000)), Ok(Transition::Applied));
    assert_eq!(s.mark_paid(p.id(), p.amount(), at(5_000)), Ok(Transition::Applied));
    store.commit(vec![upd_payment(&p, 1), upd_session(&s, 1)]).await.unwrap();

    // Refunds: a request is stored with the payment's version bump, in one commit.
    let mut refunds: Vec<Refund> = Vec::new();
    for (id, amount, now) in [("RFZ", Some(2_000), 6_000), ("RFB", Some(3_000), 7_000), ("RFA", None, 7_000)] {
        let r = Refund::request(rid(id), &p, &refunds, refund_request(&driver, amount), at(now)).unwrap();
        let before = p.version();
        p.note_refund_requested(at(now));
        store.commit(vec![ins_refund(&r), upd_payment(&p, before)]).await.unwrap();
        refunds.push(r);
    }
    assert_eq!(refunds[2].amount(), Paise::new(5_000));

    let (pv, sv) = (p.version(), s.version());
    let mut r = refunds[0].clone();
    assert_eq!(record_refund_success(&mut r, &mut p, &mut s, at(8_000)), Ok(Transition::Applied));
    store.commit(vec![upd_refund(&r, 1), upd_payment(&p, pv), upd_session(&s, sv)]).await.unwrap();
    refunds[0] = r;
    assert_eq!(s.status(), SessionStatus::PartiallyRefunded);

    // Another session of the same driver, with its own payment, stays apart.
    let other = book(2, "driver-1", 1_500);
    let other_p = start("PPC", &other, &[], 2_500);
    store.commit(vec![ins_session(&other), ins_payment(&other_p)]).await.unwrap();

    let bundle = load(store, s.id()).await;
    let by_time = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(by_time(&["PPB", "PPA"]), bundle.payments.iter().map(|p| p.id().to_string()).collect::<Vec<_>>());
    assert_eq!(
        by_time(&["RFZ", "RFA", "RFB"]),
        bundle.refunds.iter().map(|r| r.id().to_string()).collect::<Vec<_>>(),
        "oldest first, same time by id"
    );
    refunds.sort_by(|a, b| (a.created_at(), a.id()).cmp(&(b.created_at(), b.id())));
    assert_eq!(
        bundle,
        SessionBundle { session: s.clone(), payments: vec![p_old, p.clone()], refunds, obligations: vec![] }
    );
    assert_eq!(
        load(store, other.id()).await,
        SessionBundle { session: other.clone(), payments: vec![other_p], refunds: vec![], obligations: vec![] }
    );

    assert_eq!(
        store.find_txn("PPA").await.unwrap(),
        Some(TxnRef::Payment { session_id: s.id().clone(), payment_id: pid("PPA") })
    );
    assert_eq!(
        store.find_txn("RFB").await.unwrap(),
        Some(TxnRef::Refund { session_id: s.id().clone(), refund_id: rid("RFB") })
    );
    assert_eq!(
        store.find_txn("PPC").await.unwrap(),
        Some(TxnRef::Payment { session_id: other.id().clone(), payment_id: pid("PPC") })
    );
    assert_eq!(store.load_session(&sid(9)).await.unwrap(), None);
}

/// Inserting what exists is a conflict and changes nothing.
async fn duplicate_insert_conflicts(store: Arc<dyn Store>) {
    let store = &*store;
    let s = book(1, "driver-1", 1_000);
    store.commit(vec![ins_session(&s)]).await.unwrap();
    let mut again = s.clone();
    assert_eq!(again.cancel(at(2_000)), Ok(Transition::Applied));
    // Same key, different content, even a different version: still a conflict.
    assert_eq!(store.commit(vec![ins_session(&again)]).await, Err(StoreError::Conflict));
    assert_eq!(store.commit(vec![ins_session(&s)]).await, Err(StoreError::Conflict));

    let p = start("PP1", &s, &[], 2_000);
    store.commit(vec![ins_payment(&p)]).await.unwrap();
    let p_again = start("PP1", &s, &[], 3_000);
    assert_eq!(store.commit(vec![ins_payment(&p_again)]).await, Err(StoreError::Conflict));

    assert_eq!(
        load(store, s.id()).await,
        SessionBundle { session: s, payments: vec![p], refunds: vec![], obligations: vec![] }
    );
}

/// An update from a stale read is a conflict and changes nothing; so is an update of nothing.
async fn stale_update_conflicts(store: Arc<dyn Store>) {
    let store = &*store;
    let read = book(1, "driver-1", 1_000);
    store.commit(vec![ins_session(&read)]).await.unwrap();

    let mut cancelled = read.clone();
    assert_eq!(cancelled.cancel(at(2_000)), Ok(Transition::Applied));
    store.commit(vec![upd_session(&cancelled, 1)]).await.unwrap();

    let mut paid = read.clone();
    assert_eq!(paid.mark_paid(&pid("PP1"), paid.amount(), at(2_500)), Ok(Transition::Applied));
    assert_eq!(store.commit(vec![upd_session(&paid, 1)]).await, Err(StoreError::Conflict));
    assert_eq!(load(store, read.id()).await.session, cancelled);

    // Nothing stored under that key: an update cannot create it.
    let mut ghost = book(2, "driver-1", 1_000);
    assert_eq!(ghost.cancel(at(2_000)), Ok(Transition::Applied));
    assert_eq!(store.commit(vec![upd_session(&ghost, 1)]).await, Err(StoreError::Conflict));
    assert_eq!(store.load_session(ghost.id()).await.unwrap(), None);
    let ghost_payment = paid_payment("PP9", &read, 3_000);
    assert_eq!(store.commit(vec![upd_payment(&ghost_payment, 1)]).await, Err(StoreError::Conflict));
    assert_eq!(store.find_txn("PP9").await.unwrap(), None);
}

/// Malformed commits are refused before anything is written.
async fn malformed_commits_are_invalid(store: Arc<dyn Store>) {
    let store = &*store;
    let s = book(1, "driver-1", 1_000);
    store.commit(vec![ins_session(&s)]).await.unwrap();
    let mut next = s.clone();
    assert_eq!(next.cancel(at(2_000)), Ok(Transition::Applied));

    assert_invalid(store.commit(vec![upd_session(&s, 1)]).await, "update to the same version");
    assert_invalid(store.commit(vec![upd_session(&next, 2)]).await, "update not advancing from expected");
    assert_invalid(store.commit(vec![upd_session(&next, 7)]).await, "update going backwards");
    assert_invalid(store.commit(vec![]).await, "empty commit");
    let many: Vec<Write> = (0..=MAX_WRITES_PER_COMMIT)
        .map(|i| ins_session(&book(u8::try_from(i + 10).unwrap(), "driver-2", 1_000)))
        .collect();
    assert_invalid(store.commit(many).await, "too many writes");
    let mut next2 = next.clone();
    assert_eq!(next2.cancel(at(3_000)), Ok(Transition::AlreadyApplied));
    assert_invalid(store.commit(vec![upd_session(&next, 1), upd_session(&next2, 1)]).await, "same item twice");
    let fresh = book(3, "driver-1", 1_000);
    assert_invalid(store.commit(vec![ins_session(&fresh), ins_session(&fresh)]).await, "same insert twice");

    // A payment and a refund with the same merchant transaction id in one commit.
    let p = paid_payment("PPX", &s, 2_000);
    let r = Refund::request(rid("PPX"), &p, &[], refund_request(s.user_id(), None), at(3_000)).unwrap();
    assert_invalid(store.commit(vec![ins_payment(&p), ins_refund(&r)]).await, "one txn id twice");

    // Nothing of the above was written.
    assert_eq!(
        load(store, s.id()).await,
        SessionBundle { session: s, payments: vec![], refunds: vec![], obligations: vec![] }
    );
    assert_eq!(store.load_session(fresh.id()).await.unwrap(), None);
    assert_eq!(store.load_session(&sid(10)).await.unwrap(), None);
    assert_eq!(store.find_txn("PPX").await.unwrap(), None);
    assert_eq!(store.list_sessions(&user("driver-2"), 100).await.unwrap(), vec![]);
}

/// One failing condition, wherever it is in the commit, and none of the writes happen —
/// including the pointer records of inserted payments and refunds.
async fn failed_commit_writes_nothing(store: Arc<dyn Store>) {
    let store = &*store;
    let read = book(1, "driver-1", 1_000);
    store.commit(vec![ins_session(&read)]).await.unwrap();
    let mut cancelled = read.clone();
    assert_eq!(cancelled.cancel(at(2_000)), Ok(Transition::Applied));
    store.commit(vec![upd_session(&cancelled, 1)]).await.unwrap();

    // A writer that read version 1: new session + payment + stale session update.
    let new_session = book(2, "driver-1", 3_000);
    let p = start("PPN", &read, &[], 3_000);
    let mut paid = read.clone();
    assert_eq!(paid.mark_paid(p.id(), p.amount(), at(3_000)), Ok(Transition::Applied));
    let writes = vec![ins_session(&new_session), ins_payment(&p), upd_session(&paid, 1)];
    assert_eq!(store.commit(writes).await, Err(StoreError::Conflict));
    let writes = vec![upd_session(&paid, 1), ins_payment(&p), ins_session(&new_session)];
    assert_eq!(store.commit(writes).await, Err(StoreError::Conflict));

    assert_eq!(store.load_session(new_session.id()).await.unwrap(), None);
    assert_eq!(
        load(store, read.id()).await,
        SessionBundle { session: cancelled.clone(), payments: vec![], refunds: vec![], obligations: vec![] }
    );
    assert_eq!(store.find_txn("PPN").await.unwrap(), None, "no pointer left behind");
    assert_listed(store, &user("driver-1"), 10, &[&cancelled]).await;

    // Only the pointer collides (the id is taken by a refund elsewhere): still nothing written.
    let s2 = book(3, "driver-1", 4_000);
    let p2 = paid_payment("PP2", &s2, 4_000);
    let r2 = Refund::request(rid("RF2"), &p2, &[], refund_request(s2.user_id(), None), at(5_000)).unwrap();
    store.commit(vec![ins_session(&s2), ins_payment(&p2), ins_refund(&r2)]).await.unwrap();
    let s3 = book(4, "driver-1", 6_000);
    let clash = start("RF2", &s3, &[], 6_000);
    assert_eq!(store.commit(vec![ins_session(&s3), ins_payment(&clash)]).await, Err(StoreError::Conflict));
    assert_eq!(store.load_session(s3.id()).await.unwrap(), None);
    assert_eq!(
        store.find_txn("RF2").await.unwrap(),
        Some(TxnRef::Refund { session_id: s2.id().clone(), refund_id: rid("RF2") })
    );
}

/// A merchant transaction id names one payment or refund, whatever the session.
async fn txn_ids_are_unique(store: Arc<dyn Store>) {
    let store = &*store;
    let a = book(1, "driver-1", 1_000);
    let b = book(2, "driver-2", 1_000);
    let pa = paid_payment("PP1", &a, 2_000);
    store.commit(vec![ins_session(&a), ins_session(&b), ins_payment(&pa)]).await.unwrap();

    // The same payment id in another session.
    let pb = start("PP1", &b, &[], 3_000);
    assert_eq!(store.commit(vec![ins_payment(&pb)]).await, Err(StoreError::Conflict));
    // A refund with a payment's id.
    let ra = Refund::request(rid("PP1"), &pa, &[], refund_request(a.user_id(), Some(1_000)), at(3_000)).unwrap();
    assert_eq!(store.commit(vec![ins_refund(&ra)]).await, Err(StoreError::Conflict));
    // A payment with a refund's id.
    let ra = Refund::request(rid("RF1"), &pa, &[], refund_request(a.user_id(), Some(1_000)), at(3_000)).unwrap();
    store.commit(vec![ins_refund(&ra)]).await.unwrap();
    let pb = start("RF1", &b, &[], 4_000);
    assert_eq!(store.commit(vec![ins_payment(&pb)]).await, Err(StoreError::Conflict));
    // A refund with a refund's id, in another session.
    let pb = paid_payment("PP2", &b, 5_000);
    store.commit(vec![ins_payment(&pb)]).await.unwrap();
    let rb = Refund::request(rid("RF1"), &pb, &[], refund_request(b.user_id(), None), at(6_000)).unwrap();
    assert_eq!(store.commit(vec![ins_refund(&rb)]).await, Err(StoreError::Conflict));

    assert_eq!(
        store.find_txn("PP1").await.unwrap(),
        Some(TxnRef::Payment { session_id: a.id().clone(), payment_id: pid("PP1") })
    );
    assert_eq!(
        store.find_txn("RF1").await.unwrap(),
        Some(TxnRef::Refund { session_id: a.id().clone(), refund_id: rid("RF1") })
    );
    assert_eq!(
        store.find_txn("PP2").await.unwrap(),
        Some(TxnRef::Payment { session_id: b.id().clone(), payment_id: pid("PP2") })
    );
    for unknown in ["PP3", "pp1", "RF", "", "not a txn id", &"X".repeat(35), "TXN#PP1"] {
        assert_eq!(store.find_txn(unknown).await.unwrap(), None, "{unknown:?}");
    }
    let bundle_a = load(store, a.id()).await;
    assert_eq!((bundle_a.payments, bundle_a.refunds), (vec![pa], vec![ra]));
    let bundle_b = load(store, b.id()).await;
    assert_eq!((bundle_b.payments, bundle_b.refunds), (vec![pb], vec![]));
}

/// A user's sessions, newest first, at most `limit`, never another user's.
async fn list_sessions_newest_first(store: Arc<dyn Store>) {
    let store = &*store;
    let a = user("driver-a");
    let s1 = book(1, "driver-a", 3_000);
    let s2 = book(2, "driver-a", 1_000);
    let s3 = book(3, "driver-a", 2_000);
    let s4 = book(4, "driver-a", 2_000); // same time as s3: the id breaks the tie
    let b1 = book(5, "driver-b", 5_000);
    let zz = book(6, "driver-a0", 9_000); // a user whose id extends driver-a's
    for s in [&s3, &b1, &s1, &zz, &s2, &s4] {
        store.commit(vec![ins_session(s)]).await.unwrap();
    }
    assert!(s4.id() > s3.id());

    assert_listed(store, &a, 10, &[&s1, &s4, &s3, &s2]).await;
    assert_listed(store, &a, 4, &[&s1, &s4, &s3, &s2]).await;
    assert_listed(store, &a, 2, &[&s1, &s4]).await;
    assert_listed(store, &a, 1, &[&s1]).await;
    assert_listed(store, &a, 0, &[]).await;
    assert_listed(store, &user("driver-b"), 10, &[&b1]).await;
    assert_listed(store, &user("driver-a0"), 10, &[&zz]).await;
    assert_listed(store, &user("nobody"), 10, &[]).await;

    // An updated session is listed once, as it is now.
    let mut s2c = s2.clone();
    assert_eq!(s2c.cancel(at(4_000)), Ok(Transition::Applied));
    store.commit(vec![upd_session(&s2c, 1)]).await.unwrap();
    assert_listed(store, &a, 10, &[&s1, &s4, &s3, &s2c]).await;
}

/// Every page of `who`'s sessions at `limit`, from `cursor` on: the sessions in order, and each
/// page's size and whether it had a cursor.
async fn all_pages(
    store: &dyn Store,
    who: &UserId,
    limit: usize,
    mut cursor: Option<String>,
) -> (Vec<ParkingSession>, Vec<(usize, bool)>) {
    let mut sessions = Vec::new();
    let mut pages = Vec::new();
    loop {
        let page = store.list_sessions_page(who, limit, cursor.as_deref()).await.unwrap();
        assert!(page.sessions.len() <= limit);
        pages.push((page.sessions.len(), page.next_cursor.is_some()));
        sessions.extend(page.sessions);
        assert!(pages.len() < 1000, "the pages do not end");
        match page.next_cursor {
            Some(c) => {
                assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe: {c}");
                cursor = Some(c);
            }
            None => return (sessions, pages),
        }
    }
}

fn ids(sessions: &[ParkingSession]) -> Vec<String> {
    sessions.iter().map(|s| s.id().to_string()).collect()
}

/// A user's sessions page by page: newest first, each once, at any page size; a cursor stays
/// valid while sessions are booked and changed; the last page has no cursor; bad limits and
/// cursors are refused.
async fn list_sessions_page_by_page(store: Arc<dyn Store>) {
    let store = &*store;
    let who = user("driver-p");
    let mut mine = Vec::new();
    for (n, t) in [(1u8, 1_000), (2, 2_000), (3, 2_000), (4, 3_000), (5, 4_000), (6, 5_000), (7, 6_000)] {
        let s = book(n, "driver-p", t);
        store.commit(vec![ins_session(&s)]).await.unwrap();
        mine.push(s);
    }
    // Users whose list keys border this one's.
    for (n, who) in [(20u8, "driver-p0"), (21, "driver-o"), (22, "driver-q")] {
        store.commit(vec![ins_session(&book(n, who, 3_500))]).await.unwrap();
    }
    mine.sort_by(|a, b| (b.created_at(), b.id()).cmp(&(a.created_at(), a.id())));
    assert_eq!(ids(&mine), ids(&store.list_sessions(&who, 100).await.unwrap()), "the order of list_sessions");

    for limit in [1, 2, 3, 6, 7, 8, MAX_PAGE_LIMIT] {
        let (got, pages) = all_pages(store, &who, limit, None).await;
        assert_eq!(ids(&got), ids(&mine), "limit {limit}");
        assert_eq!(got, mine, "limit {limit}");
        let full = mine.len() / limit;
        let mut expected: Vec<(usize, bool)> = (0..full).map(|_| (limit, true)).collect();
        match mine.len() % limit {
            0 => {
                // A full last page knows nothing follows: no cursor, no empty page.
                if let Some(last) = expected.last_mut() {
                    last.1 = false;
                }
            }
            rest => expected.push((rest, false)),
        }
        assert_eq!(pages, expected, "limit {limit}");
    }
    assert_eq!(all_pages(store, &user("nobody"), 10, None).await.1, [(0, false)]);

    // Sessions booked (newer) and changed between page requests disturb no later page.
    let first = store.list_sessions_page(&who, 3, None).await.unwrap();
    assert_eq!(ids(&first.sessions), ids(&mine[..3]));
    let cursor = first.next_cursor.unwrap();
    let newer = book(8, "driver-p", 7_000);
    store.commit(vec![ins_session(&newer)]).await.unwrap();
    let mut changed = mine[4].clone();
    assert_eq!(changed.cancel(at(8_000)), Ok(Transition::Applied));
    store.commit(vec![upd_session(&changed, 1)]).await.unwrap();
    let (rest, _) = all_pages(store, &who, 3, Some(cursor.clone())).await;
    let mut expected_rest = mine[3..].to_vec();
    expected_rest[1] = changed.clone();
    assert_eq!(rest, expected_rest, "the rest, each once, as it is now");
    // The same cursor again reads the same page.
    let again = store.list_sessions_page(&who, 3, Some(&cursor)).await.unwrap();
    assert_eq!(again.sessions, expected_rest[..3]);
    let first = store.list_sessions_page(&who, 1, None).await.unwrap();
    assert_eq!(first.sessions, vec![newer]);

    // Refused: limits outside 1..=MAX_PAGE_LIMIT, cursors that are not this listing's.
    for limit in [0, MAX_PAGE_LIMIT + 1] {
        let got = store.list_sessions_page(&who, limit, None).await;
        assert!(matches!(got, Err(StoreError::Invalid(_))), "limit {limit}: {got:?}");
    }
    let mut altered = cursor.clone().into_bytes();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for bad in ["", "nope", "!!!!", &cursor[..cursor.len() - 2], &format!("{cursor}A"), &altered] {
        let got = store.list_sessions_page(&who, 3, Some(bad)).await;
        assert!(matches!(got, Err(StoreError::Invalid(_))), "cursor {bad:?}: {got:?}");
    }
    let revoked_cursor = store.list_revoked(at(0), 1, Some(&cursor)).await;
    assert!(matches!(revoked_cursor, Err(StoreError::Invalid(_))), "a sessions cursor for revoked passes");
}

// ---------------------------------------------------------------------------------------------
// Revoked passes

/// Stores a booking of `who` at `created_ms` and its payment, paid 1 s later.
async fn store_paid(store: &dyn Store, n: u8, who: &str, created_ms: i64) -> (ParkingSession, Payment) {
    let mut s = book(n, who, created_ms);
    store.commit(vec![ins_session(&s)]).await.unwrap();
    let p = paid_payment(&format!("PPV{n:03}"), &s, created_ms + 999);
    assert_eq!(s.mark_paid(p.id(), p.amount(), at(created_ms + 1_000)), Ok(Transition::Applied));
    store.commit(vec![ins_payment(&p), upd_session(&s, 1)]).await.unwrap();
    (s, p)
}

/// Refunds `amount` of `p` (what is left when `None`; `earlier` its earlier refunds) with an
/// obligation to see it through, then records its success at `done_ms`, as the service commits
/// them (ending the obligation in the same commit unless `leave_open`). Returns the refund and
/// its obligation as stored.
#[allow(clippy::too_many_arguments)]
async fn store_refund(
    store: &dyn Store,
    s: &mut ParkingSession,
    p: &mut Payment,
    id: &str,
    amount: Option<u64>,
    earlier: &[Refund],
    done_ms: i64,
    leave_open: bool,
) -> (Refund, Obligation) {
    let asked = at(done_ms - 500);
    let mut r = Refund::request(rid(id), p, earlier, refund_request(s.user_id(), amount), asked).unwrap();
    let o = Obligation::see_refund_through(&r, false, asked);
    let pv = p.version();
    p.note_refund_requested(asked);
    store.commit(vec![ins_refund(&r), upd_payment(p, pv), ins_obligation(&o)]).await.unwrap();
    let (rv, pv, sv) = (r.version(), p.version(), s.version());
    assert_eq!(record_refund_success(&mut r, p, s, at(done_ms)), Ok(Transition::Applied));
    let mut writes = vec![upd_refund(&r, rv), upd_payment(p, pv), upd_session(s, sv)];
    let mut ended = o.clone();
    if !leave_open {
        assert_eq!(ended.done("refunded", at(done_ms)), Transition::Applied);
        writes.push(upd_obligation(&ended, o.version()));
    }
    store.commit(writes).await.unwrap();
    (r, ended)
}

fn revoked(s: &ParkingSession, ms: i64) -> Revoked {
    Revoked { session_id: s.id().clone(), revoked_at: at(ms) }
}

/// `list_revoked` until it returns `expected` (on DynamoDB `GSI3` is eventually consistent);
/// returns the page's cursor.
async fn assert_revoked(
    store: &dyn Store,
    since_ms: i64,
    limit: usize,
    cursor: Option<&str>,
    expected: &[Revoked],
    more: bool,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let page = store.list_revoked(at(since_ms), limit, cursor).await.unwrap();
        if (page.entries == expected && page.next_cursor.is_some() == more) || tokio::time::Instant::now() > deadline {
            assert_eq!(page.entries, expected, "list_revoked({since_ms}, {limit}, {cursor:?})");
            assert_eq!(page.next_cursor.is_some(), more, "list_revoked({since_ms}, {limit}, {cursor:?}): cursor");
            return page.next_cursor;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A full refund revokes the session's pass once, at the time the session became REFUNDED; a
/// partial one does not; later commits on the session (its obligation, a gate's scan) neither
/// move nor repeat the entry. Paging: oldest first, `since` inclusive, cursors to go on.
async fn revoked_passes_are_listed_once(store: Arc<dyn Store>) {
    let store = &*store;
    assert_revoked(store, 0, 10, None, &[], false).await;

    // Refunded in full at 10_000.
    let (mut a, mut pa) = store_paid(store, 1, "driver-r", 1_000).await;
    let (_, open_a) = store_refund(store, &mut a, &mut pa, "RFA1", None, &[], 10_000, true).await;
    assert_eq!(a.status(), SessionStatus::Refunded);
    // Partly refunded: not revoked.
    let (mut b, mut pb) = store_paid(store, 2, "driver-r", 2_000).await;
    let (rb, _) = store_refund(store, &mut b, &mut pb, "RFB1", Some(4_000), &[], 11_000, false).await;
    assert_eq!(b.status(), SessionStatus::PartiallyRefunded);
    assert_revoked(store, 0, 10, None, &[revoked(&a, 10_000)], false).await;
    // The rest of it at 20_000: revoked then. And two more, both at 30_000 (ids break the tie).
    let _ = store_refund(store, &mut b, &mut pb, "RFB2", None, std::slice::from_ref(&rb), 20_000, false).await;
    assert_eq!(b.status(), SessionStatus::Refunded);
    let (mut c, mut pc) = store_paid(store, 3, "driver-s", 3_000).await;
    let _ = store_refund(store, &mut c, &mut pc, "RFC1", None, &[], 30_000, false).await;
    let (mut d, mut pd) = store_paid(store, 4, "driver-t", 4_000).await;
    let _ = store_refund(store, &mut d, &mut pd, "RFD1", None, &[], 30_000, false).await;
    let (first_30, second_30) = if c.id() < d.id() { (&c, &d) } else { (&d, &c) };
    let all = [revoked(&a, 10_000), revoked(&b, 20_000), revoked(first_30, 30_000), revoked(second_30, 30_000)];
    assert_revoked(store, 0, 10, None, &all, false).await;

    // Later commits on a REFUNDED session: its obligation (moved to a person's list, then ended),
    // and a gate's scan that changes the session itself (a refunded pass still records what the
    // gates saw).
    let mut stuck = open_a.clone();
    assert_eq!(stuck.needs_person("checking", at(40_000)), Transition::Applied);
    store.commit(vec![upd_obligation(&stuck, open_a.version())]).await.unwrap();
    let mut ended = stuck.clone();
    assert_eq!(ended.done("checked", at(40_500)), Transition::Applied);
    store.commit(vec![upd_obligation(&ended, stuck.version())]).await.unwrap();
    let before = a.version();
    let gate = parkpay_domain::GateId::parse("north-1").unwrap();
    let scanned = a.record_scan(parkpay_domain::ScanKind::Entry, gate, at(41_000), at(41_000));
    assert_eq!(scanned, Ok(Transition::Applied));
    store.commit(vec![upd_session(&a, before)]).await.unwrap();
    let bundle = load(store, a.id()).await;
    assert_eq!((bundle.session, bundle.obligations), (a.clone(), vec![ended]));
    // Give an index a moment to show anything it would show.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_revoked(store, 0, 10, None, &all, false).await;

    // Page by page, with the cursor; the last full page has none.
    let mut cursor = None;
    for (i, entry) in all.iter().enumerate() {
        let more = i + 1 < all.len();
        cursor = assert_revoked(store, 0, 1, cursor.as_deref(), std::slice::from_ref(entry), more).await;
    }
    let next = assert_revoked(store, 0, 2, None, &all[..2], true).await.unwrap();
    assert!(next.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe: {next}");
    assert_revoked(store, 0, 2, Some(&next), &all[2..], false).await;
    // `since` is inclusive: both entries of 30_000 from 30_000 on, none after.
    assert_revoked(store, 30_000, 10, None, &all[2..], false).await;
    assert_revoked(store, 29_999, 10, None, &all[2..], false).await;
    assert_revoked(store, 30_001, 10, None, &[], false).await;
    assert_revoked(store, 20_000, 10, None, &all[1..], false).await;
    // A cursor and `since` both bound the page: the later of the two wins.
    let after_first_30 = assert_revoked(store, 30_000, 1, None, &all[2..3], true).await.unwrap();
    assert_revoked(store, 0, 10, Some(&after_first_30), &all[3..], false).await;
    assert_revoked(store, 30_000, 10, Some(&next), &all[2..], false).await;
    assert_revoked(store, 30_001, 10, Some(&next), &[], false).await;

    // Refused: limits outside 1..=MAX_PAGE_LIMIT, cursors that are not this listing's.
    for limit in [0, MAX_PAGE_LIMIT + 1] {
        let got = store.list_revoked(at(0), limit, None).await;
        assert!(matches!(got, Err(StoreError::Invalid(_))), "limit {limit}: {got:?}");
    }
    let sessions_cursor = store.list_sessions_page(&user("driver-r"), 1, None).await.unwrap().next_cursor.unwrap();
    for bad in ["", "nope", "AAAA", &next[..next.len() - 1], &format!("{next}x"), &sessions_cursor] {
        let got = store.list_revoked(at(0), 10, Some(bad)).await;
        assert!(matches!(got, Err(StoreError::Invalid(_))), "cursor {bad:?}: {got:?}");
    }
}

const CONCURRENT: usize = 50;

/// 50 writers update one session from the same read: exactly one wins.
async fn concurrent_updates_have_one_winner(store: Arc<dyn Store>) {
    let s = book(1, "driver-1", 1_000);
    store.commit(vec![ins_session(&s)]).await.unwrap();
    let read = load(&*store, s.id()).await.session;

    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let store = Arc::clone(&store);
            let mut mine = read.clone();
            let now = 2_000 + i64::try_from(i).unwrap();
            assert_eq!(mine.cancel(at(now)), Ok(Transition::Applied));
            let expected = read.version();
            tokio::spawn(async move {
                let result = store.commit(vec![upd_session(&mine, expected)]).await;
                (mine, result)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (mine, result) = task.await.unwrap();
        match result {
            Ok(()) => winners.push(mine),
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("expected Ok or Conflict, got {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    let stored = load(&*store, s.id()).await.session;
    assert_eq!(stored.version(), read.version() + 1);
    assert_eq!(stored, winners[0]);
}

/// 50 writers insert the same payment id: exactly one wins.
async fn concurrent_inserts_have_one_winner(store: Arc<dyn Store>) {
    let s = book(1, "driver-1", 1_000);
    store.commit(vec![ins_session(&s)]).await.unwrap();

    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let store = Arc::clone(&store);
            let p = start("PP1", &s, &[], 2_000 + i64::try_from(i).unwrap());
            tokio::spawn(async move {
                let result = store.commit(vec![ins_payment(&p)]).await;
                (p, result)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (p, result) = task.await.unwrap();
        match result {
            Ok(()) => winners.push(p),
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("expected Ok or Conflict, got {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one insert wins");
    assert_eq!(load(&*store, s.id()).await.payments, winners);
    assert_eq!(
        store.find_txn("PP1").await.unwrap(),
        Some(TxnRef::Payment { session_id: s.id().clone(), payment_id: pid("PP1") })
    );
}

// ---------------------------------------------------------------------------------------------
// Idempotency records

/// Some time in 2027, in Unix ms.
const T0: i64 = 1_800_000_000_000;
const IN_PROGRESS_MS: i64 = 30_000;
const KEEP_MS: i64 = 3_600_000;

/// A record as a request at `now_ms` acquires it: in progress for 30 s, kept for an hour.
fn claim(key: &str, hash: &str, token: &str, now_ms: i64) -> IdempotencyRecord {
    IdempotencyRecord::in_progress(key, hash, token, at(now_ms + IN_PROGRESS_MS), at(now_ms + KEEP_MS))
}

/// A key as the api builds it, near the size the brief allows (~600 bytes), with characters
/// that must survive as they are.
fn long_key(tag: &str) -> String {
    format!("driver-1#POST /api/payments#{tag}#{}#ключ #é€😀", "k".repeat(560))
}

fn created() -> StoredResponse {
    StoredResponse {
        status: 201,
        body: "{\"payment_id\":\"PP1\",\"redirect_url\":\"https://pay.example/\\u0041?a=1&b=2\",\"note\":\"₹100.00 — ok\"}\n  "
            .into(),
    }
}

async fn existing(store: &dyn Backend, record: &IdempotencyRecord, now_ms: i64) -> IdempotencyRecord {
    match store.acquire(record, at(now_ms)).await.unwrap() {
        Acquire::Existing(r) => r,
        Acquire::Acquired => panic!("expected an existing record for {:?}", record.key),
    }
}

/// The first acquire takes the key; while it is in progress, others find it (as stored), and a
/// retry of the very same acquire is answered `Acquired` again.
async fn idempotency_acquire_then_in_progress(store: Arc<dyn Backend>) {
    let store = &*store;
    let key = long_key("a");
    assert!(key.len() >= 600, "{}", key.len());
    let first = claim(&key, "hash-1", "token-1", T0);
    assert_eq!(store.acquire(&first, at(T0)).await, Ok(Acquire::Acquired));
    assert_eq!(store.acquire(&first, at(T0)).await, Ok(Acquire::Acquired), "a retried acquire");

    // Another request, same payload or not: it gets the first record, payload hash included.
    let same_payload = claim(&key, "hash-1", "token-2", T0 + 10);
    assert_eq!(existing(store, &same_payload, T0 + 10).await, first);
    let other_payload = claim(&key, "hash-2", "token-3", T0 + IN_PROGRESS_MS - 1);
    let found = existing(store, &other_payload, T0 + IN_PROGRESS_MS - 1).await;
    assert_eq!(
        (found.status, found.payload_hash.as_str(), found.response),
        (IdempotencyStatus::InProgress, "hash-1", None)
    );

    // Keys are independent, even one that extends another.
    let other_key = claim(&format!("{key}x"), "hash-1", "token-4", T0);
    assert_eq!(store.acquire(&other_key, at(T0)).await, Ok(Acquire::Acquired));
    let short = claim("k", "hash-1", "token-5", T0);
    assert_eq!(store.acquire(&short, at(T0)).await, Ok(Acquire::Acquired));
}

/// A completed record replays its response byte for byte until it expires; completing is
/// repeatable with the same arguments and refused with others; a completed record is not
/// released.
async fn idempotency_complete_then_replay(store: Arc<dyn Backend>) {
    let store = &*store;
    let key = long_key("c");
    let first = claim(&key, "hash-1", "token-1", T0);
    assert_eq!(store.acquire(&first, at(T0)).await, Ok(Acquire::Acquired));
    let response = created();
    let keep_until = at(T0 + 2 * KEEP_MS);
    store.complete(&key, "token-1", &response, keep_until).await.unwrap();

    let found = existing(store, &claim(&key, "hash-1", "token-2", T0 + 1_000), T0 + 1_000).await;
    assert_eq!(found.status, IdempotencyStatus::Completed);
    assert_eq!(found.response.as_ref().map(|r| r.body.as_bytes()), Some(response.body.as_bytes()));
    assert_eq!(
        found,
        IdempotencyRecord {
            status: IdempotencyStatus::Completed,
            response: Some(response.clone()),
            expires_at: keep_until,
            ..first.clone()
        }
    );
    // Past in_progress_until but before the (new) expiry: still replayed.
    let later = T0 + KEEP_MS + 1;
    assert_eq!(existing(store, &claim(&key, "hash-9", "token-3", later), later).await, found);

    // The same completion again (a retry): fine. Another one: refused, nothing changes.
    store.complete(&key, "token-1", &response, keep_until).await.unwrap();
    let other = StoredResponse { status: 500, body: "{}".into() };
    assert_eq!(store.complete(&key, "token-1", &other, keep_until).await, Err(StoreError::Conflict));
    assert_eq!(store.complete(&key, "token-1", &response, at(T0 + 5)).await, Err(StoreError::Conflict));
    assert_eq!(store.release(&key, "token-1").await, Err(StoreError::Conflict), "a completed record stays");
    assert_eq!(existing(store, &claim(&key, "hash-1", "token-4", later), later).await, found);

    // An empty body (a 204) and a body at the size limit are replayed as they are.
    for (tag, body) in [("empty", String::new()), ("big", "é".repeat(MAX_STORED_RESPONSE_BYTES / 2))] {
        let key = long_key(tag);
        assert_eq!(store.acquire(&claim(&key, "h", "t", T0), at(T0)).await, Ok(Acquire::Acquired));
        let response = StoredResponse { status: 204, body };
        store.complete(&key, "t", &response, at(T0 + KEEP_MS)).await.unwrap();
        let found = existing(store, &claim(&key, "h", "t2", T0 + 1), T0 + 1).await;
        assert_eq!(found.response, Some(response), "{tag}");
    }
}

/// From `expires_at` on, a record (completed or not) is dead: the next acquire takes the key.
async fn idempotency_takeover_after_expiry(store: Arc<dyn Backend>) {
    let store = &*store;
    let key = long_key("e");
    let first = IdempotencyRecord::in_progress(&key, "hash-1", "token-1", at(T0 + 5_000), at(T0 + 8_000));
    assert_eq!(store.acquire(&first, at(T0)).await, Ok(Acquire::Acquired));
    store.complete(&key, "token-1", &created(), at(T0 + 10_000)).await.unwrap();

    let at_9_999 = claim(&key, "hash-2", "token-2", T0 + 9_999);
    assert_eq!(existing(store, &at_9_999, T0 + 9_999).await.status, IdempotencyStatus::Completed);
    let at_expiry = claim(&key, "hash-2", "token-2", T0 + 10_000);
    assert_eq!(store.acquire(&at_expiry, at(T0 + 10_000)).await, Ok(Acquire::Acquired));
    assert_eq!(existing(store, &claim(&key, "hash-3", "token-3", T0 + 10_001), T0 + 10_001).await, at_expiry);
    assert_eq!(store.complete(&key, "token-1", &created(), at(T0 + 20_000)).await, Err(StoreError::Conflict));

    // An in-progress record whose expiry comes before its in-progress deadline.
    let key = long_key("e2");
    let short = IdempotencyRecord::in_progress(&key, "hash-1", "token-1", at(T0 + 9_000), at(T0 + 2_000));
    assert_eq!(store.acquire(&short, at(T0)).await, Ok(Acquire::Acquired));
    assert_eq!(existing(store, &claim(&key, "h", "token-2", T0 + 1_999), T0 + 1_999).await, short);
    assert_eq!(store.acquire(&claim(&key, "h", "token-2", T0 + 2_000), at(T0 + 2_000)).await, Ok(Acquire::Acquired));
}

/// From `in_progress_until` on, an in-progress record is taken over; its first holder can then
/// neither complete nor release it.
async fn idempotency_takeover_after_in_progress_deadline(store: Arc<dyn Backend>) {
    let store = &*store;
    let key = long_key("p");
    let crashed = claim(&key, "hash-1", "token-1", T0);
    assert_eq!(store.acquire(&crashed, at(T0)).await, Ok(Acquire::Acquired));
    let deadline = T0 + IN_PROGRESS_MS;
    assert_eq!(existing(store, &claim(&key, "hash-1", "token-2", deadline - 1), deadline - 1).await, crashed);
    let takeover = claim(&key, "hash-1", "token-2", deadline);
    assert_eq!(store.acquire(&takeover, at(deadline)).await, Ok(Acquire::Acquired));

    assert_eq!(store.complete(&key, "token-1", &created(), at(T0 + KEEP_MS)).await, Err(StoreError::Conflict));
    assert_eq!(store.release(&key, "token-1").await, Err(StoreError::Conflict));
    assert_eq!(existing(store, &claim(&key, "hash-1", "token-3", deadline + 1), deadline + 1).await, takeover);
    store.complete(&key, "token-2", &created(), at(T0 + KEEP_MS)).await.unwrap();
    let found = existing(store, &claim(&key, "hash-1", "token-3", deadline + 2), deadline + 2).await;
    assert_eq!((found.token.as_str(), found.response), ("token-2", Some(created())));
}

/// Only the holder's token completes or releases; a release lets the next request in; releasing
/// nothing is fine, completing nothing is not.
async fn idempotency_wrong_token_is_refused(store: Arc<dyn Backend>) {
    let store = &*store;
    let key = long_key("w");
    let held = claim(&key, "hash-1", "token-1", T0);
    assert_eq!(store.acquire(&held, at(T0)).await, Ok(Acquire::Acquired));
    assert_eq!(store.complete(&key, "token-x", &created(), at(T0 + KEEP_MS)).await, Err(StoreError::Conflict));
    assert_eq!(store.release(&key, "token-x").await, Err(StoreError::Conflict));
    assert_eq!(existing(store, &claim(&key, "hash-1", "token-2", T0 + 1), T0 + 1).await, held);

    store.release(&key, "token-1").await.unwrap();
    store.release(&key, "token-1").await.unwrap(); // nothing left: still Ok
    assert_eq!(store.complete(&key, "token-1", &created(), at(T0 + KEEP_MS)).await, Err(StoreError::Conflict));
    let retry = claim(&key, "hash-1", "token-2", T0 + 2);
    assert_eq!(store.acquire(&retry, at(T0 + 2)).await, Ok(Acquire::Acquired));
    assert_eq!(store.release(&long_key("never"), "token-1").await, Ok(()));
    assert_eq!(store.complete(&long_key("never"), "token-1", &created(), at(T0)).await, Err(StoreError::Conflict));
}

/// Malformed arguments are refused before anything is written.
async fn idempotency_invalid_arguments(store: Arc<dyn Backend>) {
    let store = &*store;
    let ok = claim("k", "hash", "token", T0);
    let bad = [
        IdempotencyRecord { key: String::new(), ..ok.clone() },
        IdempotencyRecord { key: "k".repeat(parkpay_store::MAX_IDEMPOTENCY_KEY_BYTES + 1), ..ok.clone() },
        IdempotencyRecord { token: String::new(), ..ok.clone() },
        IdempotencyRecord { status: IdempotencyStatus::Completed, response: Some(created()), ..ok.clone() },
        IdempotencyRecord { response: Some(created()), ..ok.clone() },
        IdempotencyRecord { expires_at: at(T0), ..ok.clone() },
        IdempotencyRecord { in_progress_until: at(T0 - 1), ..ok.clone() },
    ];
    for record in &bad {
        assert!(matches!(store.acquire(record, at(T0)).await, Err(StoreError::Invalid(_))), "{record:?}");
    }
    assert_eq!(store.acquire(&ok, at(T0)).await, Ok(Acquire::Acquired), "nothing was written under k");
    let too_big = StoredResponse { status: 200, body: "x".repeat(MAX_STORED_RESPONSE_BYTES + 1) };
    let no_status = StoredResponse { status: 0, body: String::new() };
    for response in [too_big, no_status] {
        assert!(matches!(store.complete("k", "token", &response, at(T0 + 1)).await, Err(StoreError::Invalid(_))));
    }
    assert!(matches!(store.complete("k", "", &created(), at(T0 + 1)).await, Err(StoreError::Invalid(_))));
    assert!(matches!(store.release("", "token").await, Err(StoreError::Invalid(_))));
    assert_eq!(existing(store, &claim("k", "hash", "token-2", T0 + 1), T0 + 1).await, ok);
}

/// 50 requests with one key at once: exactly one acquires; the 49 others see its record.
async fn concurrent_acquires_have_one_winner(store: Arc<dyn Backend>) {
    let key = long_key("race");
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let store = Arc::clone(&store);
            let mine = claim(&key, &format!("hash-{i}"), &format!("token-{i}"), T0);
            tokio::spawn(async move {
                let result = store.acquire(&mine, at(T0)).await;
                (mine, result)
            })
        })
        .collect();
    let (mut winners, mut others) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            (mine, Ok(Acquire::Acquired)) => winners.push(mine),
            (_, Ok(Acquire::Existing(found))) => others.push(found),
            (_, Err(e)) => panic!("expected Acquired or Existing, got {e:?}"),
        }
    }
    assert_eq!((winners.len(), others.len()), (1, CONCURRENT - 1), "exactly one acquire wins");
    assert!(others.iter().all(|r| *r == winners[0]), "every loser sees the winner's record");
}

// ---------------------------------------------------------------------------------------------
// Due index

fn ins_obligation(o: &Obligation) -> Write {
    Write::Insert(Record::Obligation(o.clone()))
}

fn upd_obligation(o: &Obligation, expected_version: u64) -> Write {
    Write::Update { record: Record::Obligation(o.clone()), expected_version }
}

/// `list_due` until it returns `expected` as (target, due ms) (the DynamoDB index is
/// eventually consistent).
async fn assert_due(store: &dyn Backend, before_ms: i64, per_shard: usize, expected: &[(&str, &SessionId, i64)]) {
    let expected: Vec<DueEntry> = expected
        .iter()
        .map(|(id, session, due_ms)| DueEntry {
            session_id: (*session).clone(),
            target_id: (*id).to_owned(),
            due_at: at(*due_ms),
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let got = store.list_due(at(before_ms), per_shard).await.unwrap();
        if got == expected || tokio::time::Instant::now() > deadline {
            let ids = |v: &[DueEntry]| v.iter().map(|p| p.target_id.clone()).collect::<Vec<_>>();
            assert_eq!(ids(&got), ids(&expected), "list_due({before_ms}, {per_shard})");
            assert_eq!(got, expected, "list_due({before_ms}, {per_shard})");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Obligations are listed exactly while open, at their next attempt, earliest first (ties by
/// target), strictly before the given time; committed with the records they are about.
async fn due_index_follows_obligations(store: Arc<dyn Backend>) {
    let store = &*store;
    let end = 10_000_000;
    let mut a = book(1, "driver-1", 1_000);
    let b = book(2, "driver-2", 1_000);
    store.commit(vec![ins_session(&a), ins_session(&b)]).await.unwrap();
    assert_due(store, end, 10, &[]).await;

    // A payment and its obligation in one commit: due 20 s after the payment started.
    let mut pa1 = start("PPA1", &a, &[], 2_000);
    let mut oa1 = Obligation::check_payment(&pa1, at(2_000));
    store.commit(vec![ins_payment(&pa1), ins_obligation(&oa1)]).await.unwrap();
    assert_due(store, end, 10, &[("PPA1", a.id(), 22_000)]).await;
    assert_eq!(load(store, a.id()).await.obligation("PPA1"), Some(&oa1));
    // Nothing before it is due.
    assert_due(store, 22_000, 10, &[]).await;
    assert_due(store, 22_001, 10, &[("PPA1", a.id(), 22_000)]).await;

    // A claim moves it to the next slot of the schedule.
    let v = oa1.version();
    assert_eq!(oa1.claim(at(22_500)), Transition::Applied);
    store.commit(vec![upd_obligation(&oa1, v)]).await.unwrap();
    assert_due(store, end, 10, &[("PPA1", a.id(), 25_000)]).await;
    // A stale claim (same version read) loses and changes nothing.
    let mut stale = oa1.clone();
    assert_eq!(stale.claim(at(25_000)), Transition::Applied);
    assert_eq!(store.commit(vec![upd_obligation(&stale, v)]).await, Err(StoreError::Conflict));
    assert_due(store, end, 10, &[("PPA1", a.id(), 25_000)]).await;

    // The payment fails: the obligation turns into a slow re-check, in the same commit.
    let (pv, ov) = (pa1.version(), oa1.version());
    assert_eq!(pa1.fail(at(26_000)), Ok(Transition::Applied));
    assert_eq!(oa1.payment_failed(at(26_000)), Transition::Applied);
    store.commit(vec![upd_payment(&pa1, pv), upd_obligation(&oa1, ov)]).await.unwrap();
    assert_due(store, end, 10, &[("PPA1", a.id(), 2_000 + 1_800_000)]).await;

    // Another payment succeeds: its obligation is done and leaves the index.
    let mut pa2 = start("PPA2", &a, std::slice::from_ref(&pa1), 4_000);
    let mut oa2 = Obligation::check_payment(&pa2, at(4_000));
    store.commit(vec![ins_payment(&pa2), ins_obligation(&oa2)]).await.unwrap();
    let pb = start("PPB2", &b, &[], 5_000);
    let ob = Obligation::check_payment(&pb, at(5_000));
    store.commit(vec![ins_payment(&pb), ins_obligation(&ob)]).await.unwrap();
    assert_due(store, end, 10, &[("PPA2", a.id(), 24_000), ("PPB2", b.id(), 25_000), ("PPA1", a.id(), 1_802_000)])
        .await;
    let (pv, sv, ov) = (pa2.version(), a.version(), oa2.version());
    assert_eq!(pa2.succeed(report(&pa2), at(6_000)), Ok(Transition::Applied));
    assert_eq!(a.mark_paid(pa2.id(), pa2.amount(), at(6_000)), Ok(Transition::Applied));
    assert_eq!(oa2.done("paid", at(6_000)), Transition::Applied);
    store.commit(vec![upd_payment(&pa2, pv), upd_session(&a, sv), upd_obligation(&oa2, ov)]).await.unwrap();
    assert_due(store, end, 10, &[("PPB2", b.id(), 25_000), ("PPA1", a.id(), 1_802_000)]).await;
    let bundle = load(store, a.id()).await;
    assert_eq!(bundle.obligations.len(), 2, "ended obligations are kept");
    assert_eq!(bundle.obligation("PPA2").map(|o| o.state()), Some(ObligationState::Done));

    // A refund and its obligation; one that needs a person leaves the index.
    let driver = user("driver-1");
    let r = Refund::request(rid("RFA"), &pa2, &[], refund_request(&driver, Some(1_000)), at(7_000)).unwrap();
    let or = Obligation::see_refund_through(&r, false, at(7_000));
    let before = pa2.version();
    pa2.note_refund_requested(at(7_000));
    store.commit(vec![ins_refund(&r), upd_payment(&pa2, before), ins_obligation(&or)]).await.unwrap();
    let all = [("PPB2", b.id(), 25_000), ("RFA", a.id(), 27_000), ("PPA1", a.id(), 1_802_000)];
    assert_due(store, end, 10, &all).await;
    assert_due(store, end, 0, &[]).await;
    let mut or2 = or.clone();
    assert_eq!(or2.needs_person("refused", at(8_000)), Transition::Applied);
    store.commit(vec![upd_obligation(&or2, or.version())]).await.unwrap();
    assert_due(store, end, 10, &[("PPB2", b.id(), 25_000), ("PPA1", a.id(), 1_802_000)]).await;
    assert_eq!(load(store, a.id()).await.obligation("RFA").map(|o| o.state()), Some(ObligationState::NeedsPerson));
}

/// Many obligations over every shard: `per_shard` bounds each shard, and the merged list is the
/// globally earliest first, so the earliest due entries are never hidden behind others.
async fn due_index_spreads_and_merges(store: Arc<dyn Backend>) {
    let store = &*store;
    let n: u8 = 96;
    let mut expected = Vec::new();
    for i in 0..n {
        let s = book(i.wrapping_add(10), "driver-9", 1_000);
        let p = start(&format!("PPM{i:03}"), &s, &[], 100_000 - i64::from(i) * 100);
        let o = Obligation::check_payment(&p, p.created_at());
        store.commit(vec![ins_session(&s), ins_payment(&p), ins_obligation(&o)]).await.unwrap();
        expected.push((p.id().as_str().to_owned(), s.id().clone(), o.next_attempt_at().unix_millis()));
    }
    expected.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
    let want = |k: usize| expected[..k].iter().map(|(id, s, ms)| (id.as_str(), s, *ms)).collect::<Vec<_>>();
    assert_due(store, 10_000_000, 10, &want(expected.len())).await;
    let got = store.list_due(at(1_000_000), 1).await.unwrap();
    assert!(got.len() <= parkpay_store::keys::DUE_SHARDS as usize && got.len() > 16, "{}", got.len());
    assert_eq!(got[0].target_id, expected[0].0, "the earliest of all comes first");
    assert!(got.windows(2).all(|w| w[0].due_at <= w[1].due_at));
}

/// The targets on an attention list at `now_ms`, newest first, read in pages of `page`.
async fn attention(store: &dyn Backend, list: AttentionList, now_ms: i64, page: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let got = store.list_attention(list, at(now_ms), before.as_deref(), page).await.unwrap();
        assert!(got.len() <= page);
        assert!(got.windows(2).all(|w| w[0].position > w[1].position), "newest first");
        all.extend(got.iter().map(|e| e.obligation.target_id().to_owned()));
        match got.last() {
            Some(last) if got.len() == page => before = Some(last.position.clone()),
            _ => return all,
        }
    }
}

/// Open obligations are on the overdue list from the moment they are overdue (not before),
/// those needing a person on theirs, ended ones on neither; pages with a cursor miss nothing
/// and repeat nothing.
async fn attention_lists_follow_obligations(store: Arc<dyn Backend>) {
    let store = &*store;
    let a = book(1, "driver-1", 1_000);
    store.commit(vec![ins_session(&a)]).await.unwrap();
    let mut obligations = Vec::new();
    for i in 0..5i64 {
        let p = start(&format!("PPO{i}"), &a, &[], 2_000 + i * 60_000);
        let o = Obligation::check_payment(&p, p.created_at());
        store.commit(vec![ins_payment(&p), ins_obligation(&o)]).await.unwrap();
        obligations.push(o);
    }
    let first = obligations[0].overdue_from().unix_millis();
    let last = obligations[4].overdue_from().unix_millis();
    assert!(first < last);
    assert_eq!(attention(store, AttentionList::Overdue, first - 1, 10).await, Vec::<String>::new());
    assert_eq!(attention(store, AttentionList::Overdue, first, 10).await, vec!["PPO0"]);
    let all_newest_first: Vec<String> = (0..5).rev().map(|i| format!("PPO{i}")).collect();
    for page in [1, 2, 3, 5, 10] {
        assert_eq!(attention(store, AttentionList::Overdue, last, page).await, all_newest_first, "page {page}");
    }
    assert_eq!(attention(store, AttentionList::NeedsPerson, last, 10).await, Vec::<String>::new());

    // An attempt moves it off the list until it is late again; one needing a person moves
    // lists; an ended one is on neither.
    let mut o0 = obligations[0].clone();
    assert_eq!(o0.claim(at(first)), Transition::Applied);
    store.commit(vec![upd_obligation(&o0, obligations[0].version())]).await.unwrap();
    assert!(!attention(store, AttentionList::Overdue, first, 10).await.contains(&"PPO0".to_owned()));
    let mut o1 = obligations[1].clone();
    assert_eq!(o1.needs_person("refused", at(first + 1)), Transition::Applied);
    let mut o2 = obligations[2].clone();
    assert_eq!(o2.done("paid", at(first + 2)), Transition::Applied);
    store
        .commit(vec![upd_obligation(&o1, obligations[1].version()), upd_obligation(&o2, obligations[2].version())])
        .await
        .unwrap();
    assert_eq!(attention(store, AttentionList::Overdue, last, 2).await, vec!["PPO4", "PPO3"]);
    assert_eq!(attention(store, AttentionList::NeedsPerson, last, 10).await, vec!["PPO1"]);
    let listed = store.list_attention(AttentionList::NeedsPerson, at(last), None, 10).await.unwrap();
    assert_eq!(listed[0].obligation, o1, "the entry is the obligation as written");
    assert!(parkpay_store::keys::is_attention_position(&listed[0].position));
    assert!(store.list_attention(AttentionList::Overdue, at(last), None, 0).await.unwrap().is_empty());
}

/// The overdue list holds both kinds of overdue: obligations past their deadline, and
/// obligations whose attempt is late (DynamoDB reads the latter from the due index). With both
/// kinds in one shard — late ones newer on the list while the deadline ones come first in the
/// due index's order — pages of every size list each exactly once, newest first.
async fn overdue_list_mixes_deadlines_and_late_attempts(store: Arc<dyn Backend>) {
    let store = &*store;
    let a = book(1, "driver-1", 1_000);
    store.commit(vec![ins_session(&a)]).await.unwrap();
    // Eight payment ids in one due-index shard.
    let shard = parkpay_store::keys::due_shard("PPM0");
    let ids: Vec<String> = (0..10_000)
        .map(|n| format!("PPM{n}"))
        .filter(|id| parkpay_store::keys::due_shard(id) == shard)
        .take(8)
        .collect();
    let t0 = 10_000_000i64;
    let mut listed = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let i = i as i64;
        // Four checks claimed 26 minutes in: their next try (+5 s) makes their deadline (30
        // minutes) come first. Four started 25 minutes later and never tried: late from 20 s + 5
        // minutes on, newer than the deadlines, yet due earlier than the claimed ones' next try.
        let created = if i < 4 { t0 + i * 1_000 } else { t0 + 25 * 60_000 + (i - 4) * 1_000 };
        let p = start(id, &a, &[], created);
        let first = Obligation::check_payment(&p, p.created_at());
        let mut o = first.clone();
        store.commit(vec![ins_payment(&p), ins_obligation(&first)]).await.unwrap();
        if i < 4 {
            assert_eq!(o.claim(at(created + 26 * 60_000)), Transition::Applied);
            assert_eq!(o.overdue_from(), o.due_by(), "deadline first");
            store.commit(vec![upd_obligation(&o, first.version())]).await.unwrap();
        } else {
            assert!(o.overdue_from() < o.due_by(), "late first");
        }
        listed.push((o.overdue_from(), o.next_attempt_at(), id.clone()));
    }
    let (deadlines, lates) = listed.split_at(4);
    assert!(lates.iter().all(|l| deadlines.iter().all(|d| l.0 > d.0 && l.1 < d.1)), "{listed:?}");
    listed.sort_by_key(|x| std::cmp::Reverse(x.0));
    let expected: Vec<String> = listed.iter().map(|x| x.2.clone()).collect();
    let now = t0 + 40 * 60_000;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    for page in [1, 2, 3, 8, 50] {
        loop {
            let got = attention(store, AttentionList::Overdue, now, page).await;
            if got == expected || tokio::time::Instant::now() > deadline {
                assert_eq!(got, expected, "page {page}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Just past the deadlines, before the late ones are late: only the deadline ones.
    let only_deadlines: Vec<String> = expected[4..].to_vec();
    assert_eq!(attention(store, AttentionList::Overdue, t0 + 30 * 60_000 + 10_000, 3).await, only_deadlines);
}

/// A scan in small pages finds every session exactly once, among all the other items.
async fn scan_finds_every_session(store: Arc<dyn Backend>) {
    let store = &*store;
    let mut expected = std::collections::BTreeSet::new();
    for i in 0..23u8 {
        let s = book(i.wrapping_add(40), "driver-3", 1_000);
        let p = start(&format!("PPS{i:02}"), &s, &[], 2_000);
        store
            .commit(vec![ins_session(&s), ins_payment(&p), ins_obligation(&Obligation::check_payment(&p, at(2_000)))])
            .await
            .unwrap();
        expected.insert(s.id().clone());
    }
    for page in [1usize, 7, 1000] {
        let mut found = Vec::new();
        let mut after: Option<ScanCursor> = None;
        let mut pages = 0;
        loop {
            let got = store.scan_sessions(after.as_ref(), page).await.unwrap();
            found.extend(got.sessions);
            pages += 1;
            assert!(pages < 1000, "the scan does not end");
            match got.next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(found.len(), expected.len(), "page {page}: each once");
        assert_eq!(found.into_iter().collect::<std::collections::BTreeSet<_>>(), expected, "page {page}");
    }
}

// ---------------------------------------------------------------------------------------------
// The shared OAuth token

fn token(text: &str, issued_ms: i64) -> StoredToken {
    StoredToken { access_token: text.to_owned(), issued_at: at(issued_ms), expires_at: at(issued_ms + 3_600_000) }
}

/// One token per name: the lock is taken for the generation read, by one holder, until its time
/// runs out; finishing stores the next generation and frees the lock; a caller that read an older
/// generation does not refresh again.
async fn token_refresh_is_locked_per_generation(store: Arc<dyn Backend>) {
    let store = &*store;
    assert_eq!(store.load_token("phonepe").await.unwrap(), TokenState::default());
    assert!(store.begin_refresh("phonepe", 0, "a", at(0), at(10_000)).await.unwrap());
    assert!(!store.begin_refresh("phonepe", 0, "b", at(1), at(10_000)).await.unwrap(), "held by a");
    let locked = store.load_token("phonepe").await.unwrap();
    assert_eq!((locked.token, locked.generation, locked.refresh_holder.as_deref()), (None, 0, Some("a")));
    assert!(!store.finish_refresh("phonepe", "b", &token("tb", 1)).await.unwrap(), "b holds nothing");
    assert!(store.finish_refresh("phonepe", "a", &token("ta", 1)).await.unwrap());
    let stored = store.load_token("phonepe").await.unwrap();
    assert_eq!(
        stored,
        TokenState { token: Some(token("ta", 1)), generation: 1, refresh_holder: None, refresh_until: None }
    );
    // b read generation 0: someone has refreshed since; b does not refresh again.
    assert!(!store.begin_refresh("phonepe", 0, "b", at(2), at(10_000)).await.unwrap());
    assert!(!store.finish_refresh("phonepe", "a", &token("again", 2)).await.unwrap(), "the lock is gone");
    // A holder whose time runs out loses the lock to the next caller.
    assert!(store.begin_refresh("phonepe", 1, "c", at(3), at(5_000)).await.unwrap());
    assert!(!store.begin_refresh("phonepe", 1, "d", at(4_999), at(9_000)).await.unwrap());
    assert!(store.begin_refresh("phonepe", 1, "d", at(5_000), at(9_000)).await.unwrap());
    assert!(!store.finish_refresh("phonepe", "c", &token("tc", 5)).await.unwrap(), "taken over");
    assert!(store.finish_refresh("phonepe", "d", &token("td", 6)).await.unwrap());
    assert_eq!(store.load_token("phonepe").await.unwrap().generation, 2);
    assert_eq!(store.load_token("phonepe").await.unwrap().token, Some(token("td", 6)));
    // A failed refresh gives the lock back at once, keeping the token; only its holder can.
    assert!(store.begin_refresh("phonepe", 2, "e", at(6_000), at(60_000)).await.unwrap());
    assert!(!store.abandon_refresh("phonepe", "f").await.unwrap(), "f holds nothing");
    assert!(!store.begin_refresh("phonepe", 2, "f", at(6_001), at(60_000)).await.unwrap(), "still e's");
    assert!(store.abandon_refresh("phonepe", "e").await.unwrap());
    assert!(!store.abandon_refresh("phonepe", "e").await.unwrap(), "already released");
    assert_eq!(
        store.load_token("phonepe").await.unwrap(),
        TokenState { token: Some(token("td", 6)), generation: 2, refresh_holder: None, refresh_until: None }
    );
    assert!(store.begin_refresh("phonepe", 2, "f", at(6_002), at(60_000)).await.unwrap(), "free at once");
    assert!(store.abandon_refresh("phonepe", "f").await.unwrap());
    // Names are separate.
    assert_eq!(store.load_token("other").await.unwrap(), TokenState::default());
    // Bad arguments write nothing.
    for bad in [
        store.begin_refresh("", 2, "e", at(0), at(1)).await,
        store.begin_refresh("phonepe", 2, "", at(0), at(1)).await,
        store.begin_refresh("phonepe", 2, "e", at(1), at(1)).await,
    ] {
        assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    }
    let bad = store.finish_refresh("phonepe", "d", &token("", 7)).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
}

/// Many cold starts finding the token due at once: exactly one takes the lock.
async fn concurrent_refreshes_have_one_winner(store: Arc<dyn Backend>) {
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.begin_refresh("phonepe", 0, &format!("h{i}"), at(0), at(10_000)).await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

// ---------------------------------------------------------------------------------------------
// The settlement ledger, and search

const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// 2026-12-01 00:00 in India (IST, UTC+05:30): 2026-11-30T18:30:00Z.
fn ist_midnight() -> i64 {
    Timestamp::parse_rfc3339("2026-12-01T00:00:00+05:30").unwrap().unix_millis()
}

fn payment_entry(p: &Payment, state: LedgerState) -> LedgerEntry {
    LedgerEntry {
        kind: LedgerKind::Payment,
        merchant_txn_id: p.id().to_string(),
        payment_id: p.id().clone(),
        provider_txn_id: p.provider_txn_id().map(str::to_owned),
        utr: p.utr().map(str::to_owned),
        session_id: p.session_id().clone(),
        amount: p.amount(),
        state,
        final_at: p.updated_at(),
    }
}

fn refund_entry(r: &Refund, state: LedgerState) -> LedgerEntry {
    LedgerEntry {
        kind: LedgerKind::Refund,
        merchant_txn_id: r.id().to_string(),
        payment_id: r.payment_id().clone(),
        provider_txn_id: None,
        utr: None,
        session_id: r.session_id().clone(),
        amount: r.amount(),
        state,
        final_at: r.updated_at(),
    }
}

/// `list_ledger` over `[start, end)` until it returns `expected` (on DynamoDB the ledger is read
/// from an index, eventually consistent); returns the page's cursor.
async fn assert_ledger(
    store: &dyn Store,
    (start, end): (i64, i64),
    limit: usize,
    cursor: Option<&str>,
    expected: &[LedgerEntry],
    more: bool,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let page = store.list_ledger(at(start), at(end), limit, cursor).await.unwrap();
        if (page.entries == expected && page.next_cursor.is_some() == more) || tokio::time::Instant::now() > deadline {
            let txns = |v: &[LedgerEntry]| {
                v.iter().map(|e| format!("{}/{}", e.merchant_txn_id, e.state.as_str())).collect::<Vec<_>>()
            };
            assert_eq!(txns(&page.entries), txns(expected), "list_ledger({start}, {end}, {limit}, {cursor:?})");
            assert_eq!(page.entries, expected, "list_ledger({start}, {end}, {limit}, {cursor:?})");
            assert_eq!(page.next_cursor.is_some(), more, "list_ledger({start}, {end}, {limit}, {cursor:?}): cursor");
            return page.next_cursor;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every page of the ledger over `[start, end)` at `limit`: the entries in order, and how many
/// pages.
async fn ledger_pages(store: &dyn Store, (start, end): (i64, i64), limit: usize) -> (Vec<LedgerEntry>, usize) {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1..1000 {
        let page = store.list_ledger(at(start), at(end), limit, cursor.as_deref()).await.unwrap();
        assert!(page.entries.len() <= limit);
        entries.extend(page.entries);
        match page.next_cursor {
            Some(c) => {
                assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe: {c}");
                cursor = Some(c);
            }
            None => return (entries, pages),
        }
    }
    panic!("the pages do not end");
}

/// A payment of `session` started at `start_ms` and succeeded at `paid_ms` with these references
/// (not stored).
fn paid_with(id: &str, session: &ParkingSession, start_ms: i64, paid_ms: i64, refs: (&str, &str)) -> Payment {
    let mut p = start(id, session, &[], start_ms);
    let report =
        SuccessReport { amount: p.amount(), provider_txn_id: Some(refs.0.to_owned()), utr: Some(refs.1.to_owned()) };
    assert_eq!(p.succeed(report, at(paid_ms)), Ok(Transition::Applied));
    p
}

/// Each final state a payment or refund reaches is one entry, with the record's fields as that
/// write stored them: a paid payment (its PhonePe id and UTR), one FAILED and then SUCCESS by a
/// late success (two), a refund that succeeded and one PhonePe refused, a payment inserted
/// already final, and a success written by a clock behind the payment's last change (final at
/// the record's `updated_at`). Later changes of a final record (a refund's, on its payment) add
/// none; replayed commits are conflicts and add none.
async fn ledger_records_each_final_state_once(store: Arc<dyn Store>) {
    let store = &*store;
    let d = ist_midnight();
    let day = (d, d + DAY);
    assert_ledger(store, day, 10, None, &[], false).await;

    // Paid, as the callback commits it: payment SUCCESS and session PAID.
    let mut s = book(1, "driver-l", d + HOUR);
    store.commit(vec![ins_session(&s)]).await.unwrap();
    let mut p = start("PPL1", &s, &[], d + HOUR + 1_000);
    store.commit(vec![ins_payment(&p)]).await.unwrap();
    assert_ledger(store, day, 10, None, &[], false).await;
    assert_eq!(p.succeed(report(&p), at(d + 2 * HOUR)), Ok(Transition::Applied));
    assert_eq!(s.mark_paid(p.id(), p.amount(), at(d + 2 * HOUR)), Ok(Transition::Applied));
    let callback = vec![upd_payment(&p, 1), upd_session(&s, 1)];
    store.commit(callback.clone()).await.unwrap();
    let paid = payment_entry(&p, LedgerState::Success);
    assert_eq!(
        (paid.provider_txn_id.as_deref(), paid.utr.as_deref(), paid.amount, paid.final_at),
        (Some("T-PPL1"), Some("UTR1"), Paise::new(10_000), at(d + 2 * HOUR))
    );
    assert_eq!(keys::ist_date(paid.final_at), "2026-12-01");
    assert_ledger(store, day, 10, None, std::slice::from_ref(&paid), false).await;
    // Replayed: a conflict, and no second entry.
    assert_eq!(store.commit(callback).await, Err(StoreError::Conflict));

    // A refund requested (the payment's version bump) and settled (its `refunded`): the refund's
    // entry only.
    let (r1, _) = store_refund(store, &mut s, &mut p, "RFL1", Some(3_000), &[], d + 5 * HOUR, false).await;
    let refunded = refund_entry(&r1, LedgerState::Success);
    assert_eq!((refunded.payment_id.as_str(), refunded.amount), ("PPL1", Paise::new(3_000)));
    // Another refund, refused by PhonePe.
    let mut r2 = Refund::request(
        rid("RFL2"),
        &p,
        std::slice::from_ref(&r1),
        refund_request(s.user_id(), Some(1_000)),
        at(d + 6 * HOUR),
    )
    .unwrap();
    let pv = p.version();
    p.note_refund_requested(at(d + 6 * HOUR));
    store.commit(vec![ins_refund(&r2), upd_payment(&p, pv)]).await.unwrap();
    assert_eq!(r2.fail(at(d + 7 * HOUR)), Ok(Transition::Applied));
    store.commit(vec![upd_refund(&r2, 1)]).await.unwrap();
    let refused = refund_entry(&r2, LedgerState::Failed);

    // FAILED, then SUCCESS by a late success: two entries.
    let s2 = book(2, "driver-l", d + HOUR);
    store.commit(vec![ins_session(&s2)]).await.unwrap();
    let mut q = start("PPL2", &s2, &[], d + HOUR);
    store.commit(vec![ins_payment(&q)]).await.unwrap();
    assert_eq!(q.fail(at(d + 3 * HOUR)), Ok(Transition::Applied));
    store.commit(vec![upd_payment(&q, 1)]).await.unwrap();
    let failed = payment_entry(&q, LedgerState::Failed);
    assert_eq!((failed.provider_txn_id.as_deref(), failed.utr.as_deref()), (None, None));
    let qv = q.version();
    assert_eq!(q.late_success(report(&q), at(d + 4 * HOUR)), Ok(Transition::Applied));
    let late = vec![upd_payment(&q, qv)];
    store.commit(late.clone()).await.unwrap();
    assert_eq!(store.commit(late).await, Err(StoreError::Conflict));
    let succeeded = payment_entry(&q, LedgerState::Success);

    // Inserted already final.
    let s3 = book(3, "driver-l", d + HOUR);
    let direct = paid_with("PPL3", &s3, d + 8 * HOUR, d + 8 * HOUR + 1, ("T-PPL3", "UTR3"));
    store.commit(vec![ins_session(&s3), ins_payment(&direct)]).await.unwrap();
    let inserted = payment_entry(&direct, LedgerState::Success);

    // A success written by a clock behind the payment's last change: final at the record's
    // `updated_at`, which stays ahead of its `succeeded_at`.
    let s4 = book(4, "driver-l", d + HOUR);
    store.commit(vec![ins_session(&s4)]).await.unwrap();
    let mut b = start("PPL4", &s4, &[], d + 9 * HOUR);
    store.commit(vec![ins_payment(&b)]).await.unwrap();
    assert_eq!(b.note_upi_link("upi://pay?pa=parkpay@ybl", at(d + 10 * HOUR)), Transition::Applied);
    store.commit(vec![upd_payment(&b, 1)]).await.unwrap();
    assert_eq!(b.succeed(report(&b), at(d + 9 * HOUR + 1_000)), Ok(Transition::Applied));
    assert!(b.succeeded_at() < Some(b.updated_at()));
    store.commit(vec![upd_payment(&b, 2)]).await.unwrap();
    let behind = payment_entry(&b, LedgerState::Success);
    assert_eq!(behind.final_at, at(d + 10 * HOUR));

    let all = [paid, failed, succeeded, refunded, refused, inserted, behind];
    assert_ledger(store, day, 100, None, &all, false).await;
    // Written again, a final record adds nothing: the refunded payment settles another refund.
    let (r3, _) = store_refund(store, &mut s, &mut p, "RFL3", Some(1_000), &[r1, r2], d + 11 * HOUR, false).await;
    let mut all = all.to_vec();
    all.push(refund_entry(&r3, LedgerState::Success));
    // Give an index a moment to show anything it would show.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_ledger(store, day, 100, None, &all, false).await;
    assert_ledger(store, (d - DAY, d), 10, None, &[], false).await;
    assert_ledger(store, (d + DAY, d + 2 * DAY), 10, None, &[], false).await;
}

/// A day of the ledger is a day in India: from 00:00:00.000 IST (inclusive) to the next
/// 00:00:00.000 IST (exclusive); an entry at 23:59:59.999 IST is the day's last, one at 00:00 the
/// next day's first. Bounds that span two dates read both; pages go on across them.
async fn ledger_days_are_indian_days(store: Arc<dyn Store>) {
    let store = &*store;
    let d = ist_midnight();
    let next = d + DAY;
    let s = book(1, "driver-d", d - HOUR);
    store.commit(vec![ins_session(&s)]).await.unwrap();
    let mut e = Vec::new();
    for (n, final_ms) in [d - 1, d, next - 1, next, next + DAY - 1].into_iter().enumerate() {
        let p = paid_with(&format!("PPD{n}"), &s, final_ms - 10, final_ms, ("T", "U"));
        store.commit(vec![ins_payment(&p)]).await.unwrap();
        e.push(payment_entry(&p, LedgerState::Success));
    }
    let dates: Vec<String> = e.iter().map(|x| keys::ist_date(x.final_at)).collect();
    assert_eq!(dates, ["2026-11-30", "2026-12-01", "2026-12-01", "2026-12-02", "2026-12-02"]);
    assert_eq!(at(next - 1).to_rfc3339(), "2026-12-01T18:29:59.999Z", "23:59:59.999 IST");

    assert_ledger(store, (d, next), 10, None, &e[1..3], false).await;
    assert_ledger(store, (next, next + DAY), 10, None, &e[3..5], false).await;
    assert_ledger(store, (d - DAY, d), 10, None, &e[..1], false).await;
    // Odd bounds: noon to noon, across two dates.
    assert_ledger(store, (d + 12 * HOUR, next + 12 * HOUR), 10, None, &e[2..4], false).await;
    assert_ledger(store, (d - 1, next + 1), 10, None, &e[..4], false).await;
    assert_ledger(store, (d, d + 1), 10, None, &e[1..2], false).await;
    assert_ledger(store, (next - 1, next), 10, None, &e[2..3], false).await;
    // Page by page across dates.
    let mut cursor = None;
    for (i, entry) in e[..4].iter().enumerate() {
        cursor =
            assert_ledger(store, (d - 1, next + 1), 1, cursor.as_deref(), std::slice::from_ref(entry), i < 3).await;
    }
    let (got, pages) = ledger_pages(store, (d - DAY, next + DAY), 2).await;
    assert_eq!((got, pages), (e.clone(), 3));
}

/// Pages of the ledger: by `final_at`, then transaction id, then state (a transaction FAILED and
/// SUCCESS in the same millisecond: FAILED first), each entry once at every page size, the last
/// page without a cursor; bad limits, spans and cursors are refused.
async fn ledger_pages_in_order(store: Arc<dyn Store>) {
    let store = &*store;
    let d = ist_midnight();
    let day = (d, d + DAY);
    let s = book(1, "driver-p", d);
    store.commit(vec![ins_session(&s)]).await.unwrap();
    let mut all = Vec::new();
    // Three in the same millisecond, ids not in insertion order; the rest spread over the day.
    for (id, ms) in [("PPC", 5_000), ("PPA", 5_000), ("PPB", 5_000), ("PPX", 1), ("PPY", 2 * HOUR), ("PPZ", DAY - 1)]
        .into_iter()
        .chain(
            (0..9).map(|n| (["PP0", "PP1", "PP2", "PP3", "PP4", "PP5", "PP6", "PP7", "PP8"][n], (n as i64 + 1) * HOUR)),
        )
    {
        let p = paid_with(id, &s, d, d + ms, ("T", "U"));
        store.commit(vec![ins_payment(&p)]).await.unwrap();
        all.push(payment_entry(&p, LedgerState::Success));
    }
    // FAILED and, by a late success, SUCCESS in the same millisecond.
    let mut q = start("PPQ", &s, &[], d + 3 * HOUR);
    store.commit(vec![ins_payment(&q)]).await.unwrap();
    assert_eq!(q.fail(at(d + 3 * HOUR)), Ok(Transition::Applied));
    store.commit(vec![upd_payment(&q, 1)]).await.unwrap();
    all.push(payment_entry(&q, LedgerState::Failed));
    assert_eq!(q.late_success(report(&q), at(d + 3 * HOUR)), Ok(Transition::Applied));
    store.commit(vec![upd_payment(&q, 2)]).await.unwrap();
    all.push(payment_entry(&q, LedgerState::Success));
    all.sort_by(|a, b| {
        (a.final_at, &a.merchant_txn_id, a.state.as_str()).cmp(&(b.final_at, &b.merchant_txn_id, b.state.as_str()))
    });
    assert_eq!(all.len(), 17);
    assert_ledger(store, day, MAX_LEDGER_PAGE_LIMIT, None, &all, false).await;
    let q_at = all.iter().position(|e| e.merchant_txn_id == "PPQ").unwrap();
    assert_eq!((all[q_at].state, all[q_at + 1].state), (LedgerState::Failed, LedgerState::Success));

    for limit in [1, 2, 3, 4, 7, 16, 17, 18] {
        let (got, pages) = ledger_pages(store, day, limit).await;
        assert_eq!(got, all, "limit {limit}");
        assert_eq!(pages, all.len().div_ceil(limit).max(1), "limit {limit}");
    }
    let next = assert_ledger(store, day, 5, None, &all[..5], true).await.unwrap();
    assert_ledger(store, day, 5, Some(&next), &all[5..10], true).await;
    // The cursor with narrower bounds: the later of cursor and start wins.
    assert_ledger(store, (d + 6 * HOUR, d + DAY), 100, Some(&next), &all[all.len() - 5..], false).await;
    assert_ledger(store, (d, d + 2 * HOUR + 1), 100, Some(&next), &all[5..7], false).await;
    assert_ledger(store, (d, d + 2 * HOUR), 100, Some(&next), &[], false).await;

    for limit in [0, MAX_LEDGER_PAGE_LIMIT + 1] {
        let got = store.list_ledger(at(d), at(d + DAY), limit, None).await;
        assert!(matches!(got, Err(StoreError::Invalid(_))), "limit {limit}: {got:?}");
    }
    for (start, end) in [(d, d), (d + 1, d), (d, d + (MAX_LEDGER_SPAN_DAYS + 1) * DAY)] {
        let got = store.list_ledger(at(start), at(end), 10, None).await;
        assert!(matches!(got, Err(StoreError::Invalid(_))), "{start}..{end}: {got:?}");
    }
    store.list_ledger(at(d), at(d + MAX_LEDGER_SPAN_DAYS * DAY), 10, None).await.unwrap();
    store.commit(vec![ins_session(&book(2, "driver-p", 2_000))]).await.unwrap();
    let sessions_cursor = store.list_sessions_page(&user("driver-p"), 1, None).await.unwrap().next_cursor.unwrap();
    for bad in ["", "nope", "AAAA", &next[..next.len() - 1], &format!("{next}x"), &sessions_cursor] {
        let got = store.list_ledger(at(d), at(d + DAY), 10, Some(bad)).await;
        assert!(matches!(got, Err(StoreError::Invalid(_))), "cursor {bad:?}: {got:?}");
    }
    let got = store.list_revoked(at(0), 10, Some(&next)).await;
    assert!(matches!(got, Err(StoreError::Invalid(_))), "a ledger cursor for revoked passes: {got:?}");
}

fn book_vehicle(n: u8, who: &str, created_ms: i64, vehicle: &str) -> ParkingSession {
    let request = BookingRequest {
        user_id: user(who),
        lot_id: LotId::parse("MG-ROAD-1").unwrap(),
        vehicle: VehicleNumber::parse(vehicle).unwrap(),
        hours: Hours::new(2, 24).unwrap(),
    };
    ParkingSession::book(&LotCatalog::default_local(), sid(n), request, at(created_ms)).unwrap()
}

/// `sessions_by_vehicle` until it returns `expected` (an index on DynamoDB).
async fn assert_by_vehicle(store: &dyn Store, vehicle: &str, limit: usize, expected: &[&ParkingSession]) {
    let vehicle = VehicleNumber::parse(vehicle).unwrap();
    let expected: Vec<SessionId> = expected.iter().map(|s| s.id().clone()).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let got = store.sessions_by_vehicle(&vehicle, limit).await.unwrap();
        if got == expected || tokio::time::Instant::now() > deadline {
            assert_eq!(got, expected, "sessions_by_vehicle({vehicle}, {limit})");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `find_by_provider_ref` until it returns `expected` (an index on DynamoDB).
async fn assert_found(store: &dyn Store, reference: &str, expected: &[(&ParkingSession, &str)]) {
    let mut expected: Vec<(SessionId, String)> =
        expected.iter().map(|(s, t)| (s.id().clone(), (*t).to_owned())).collect();
    expected.sort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let got = store.find_by_provider_ref(reference).await.unwrap();
        if got == expected || tokio::time::Instant::now() > deadline {
            assert_eq!(got, expected, "find_by_provider_ref({reference:?})");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An operator's search: a vehicle's sessions, newest first (however the number is typed); a
/// transaction by PhonePe's transaction id or by UTR, from the ledger (each once, though a payment
/// FAILED then SUCCESS has two entries; a UTR shared by two payments finds both; a reference that
/// is one payment's PhonePe id and another's UTR finds both).
async fn operators_find_sessions_and_transactions(store: Arc<dyn Store>) {
    let store = &*store;
    let a1 = book_vehicle(1, "driver-v", 1_000, "KA01AB1234");
    let a2 = book_vehicle(2, "driver-w", 3_000, "ka 01 ab 1234");
    let a3 = book_vehicle(3, "driver-v", 2_000, "KA-01-AB-1234");
    let a4 = book_vehicle(4, "driver-v", 2_000, "KA01AB1234"); // a tie with a3: the id decides
    let b = book_vehicle(5, "driver-v", 4_000, "MH12XY9999");
    for s in [&a1, &a2, &a3, &a4, &b] {
        store.commit(vec![ins_session(s)]).await.unwrap();
    }
    assert!(a4.id() > a3.id());
    assert_by_vehicle(store, "KA01AB1234", 10, &[&a2, &a4, &a3, &a1]).await;
    assert_by_vehicle(store, "ka-01-ab-1234", 2, &[&a2, &a4]).await;
    assert_by_vehicle(store, "KA01AB1234", 0, &[]).await;
    assert_by_vehicle(store, "MH12XY9999", 10, &[&b]).await;
    assert_by_vehicle(store, "DL011234", 10, &[]).await;
    // Changed, still listed once, where it was booked.
    let mut a1c = a1.clone();
    assert_eq!(a1c.cancel(at(5_000)), Ok(Transition::Applied));
    store.commit(vec![upd_session(&a1c, 1)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_by_vehicle(store, "KA01AB1234", 10, &[&a2, &a4, &a3, &a1]).await;

    let p1 = paid_with("PPS1", &a1, 10_000, 11_000, ("T-S1", "U-S1"));
    let p2 = paid_with("PPS2", &a2, 10_000, 11_000, ("T-S2", "U-SHARED"));
    let p3 = paid_with("PPS3", &b, 10_000, 11_000, ("T-S3", "U-SHARED"));
    let p5 = paid_with("PPS5", &a3, 10_000, 11_000, ("X-BOTH", "U-S5"));
    let p6 = paid_with("PPS6", &a4, 10_000, 11_000, ("T-S6", "X-BOTH"));
    for p in [&p1, &p2, &p3, &p5, &p6] {
        store.commit(vec![ins_payment(p)]).await.unwrap();
    }
    // FAILED, then SUCCESS: found once.
    let mut p4 = start("PPS4", &a3, &[], 10_000);
    store.commit(vec![ins_payment(&p4)]).await.unwrap();
    assert_eq!(p4.fail(at(12_000)), Ok(Transition::Applied));
    store.commit(vec![upd_payment(&p4, 1)]).await.unwrap();
    let report = SuccessReport { amount: p4.amount(), provider_txn_id: Some("T-S4".into()), utr: Some("U-S4".into()) };
    assert_eq!(p4.late_success(report, at(13_000)), Ok(Transition::Applied));
    store.commit(vec![upd_payment(&p4, 2)]).await.unwrap();
    // A refund of p1: no references of its own.
    let r = Refund::request(rid("RFS1"), &p1, &[], refund_request(a1.user_id(), None), at(14_000)).unwrap();
    store.commit(vec![ins_refund(&r)]).await.unwrap();

    assert_found(store, "T-S1", &[(&a1, "PPS1")]).await;
    assert_found(store, "U-S1", &[(&a1, "PPS1")]).await;
    assert_found(store, "U-SHARED", &[(&a2, "PPS2"), (&b, "PPS3")]).await;
    assert_found(store, "T-S4", &[(&a3, "PPS4")]).await;
    assert_found(store, "U-S4", &[(&a3, "PPS4")]).await;
    assert_found(store, "X-BOTH", &[(&a3, "PPS5"), (&a4, "PPS6")]).await;
    for nothing in ["PPS1", "RFS1", "T-S", "t-s1", "nothing", "", &"x".repeat(keys::MAX_PROVIDER_REF_BYTES + 1)] {
        assert_found(store, nothing, &[]).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Backends

fn open_embedded() -> (Arc<dyn Backend>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("parkpay.redb")).unwrap();
    (Arc::new(store), dir)
}

/// A client for the DynamoDB Local at `PARKPAY_DYNAMODB_ENDPOINT`, or `None` when skipped.
fn dynamodb_client(test: &str) -> Option<aws_sdk_dynamodb::Client> {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let endpoint = match std::env::var("PARKPAY_DYNAMODB_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => e,
        _ if std::env::var("PARKPAY_SKIP_DYNAMODB").as_deref() == Ok("1") => {
            eprintln!("SKIPPED {test} on DynamoDB: PARKPAY_SKIP_DYNAMODB=1");
            return None;
        }
        _ => panic!(
            "PARKPAY_DYNAMODB_ENDPOINT is not set: run scripts/test.sh (it starts DynamoDB Local and sets it), \
             or start one with `scripts/dynamodb-local.sh start` and export PARKPAY_DYNAMODB_ENDPOINT=<the URL it \
             prints>. Set PARKPAY_SKIP_DYNAMODB=1 to skip the DynamoDB tests."
        ),
    };
    let env = |name: &str, default: &str| std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or(default.into());
    // DynamoDB Local keeps one database per access key and region; keys must be letters and digits.
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(env("AWS_REGION", "ap-south-1")))
        .credentials_provider(Credentials::new(
            env("AWS_ACCESS_KEY_ID", "parkpaylocal"),
            env("AWS_SECRET_ACCESS_KEY", "parkpaylocal"),
            None,
            None,
            "parkpay-contract-tests",
        ))
        .build();
    Some(aws_sdk_dynamodb::Client::from_conf(config))
}

fn unique_table(test: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("contract-{test}-{}-{nanos}-{n}", std::process::id())
}

/// A store on a new table of the DynamoDB Local, or `None` when skipped.
async fn open_dynamodb(test: &str) -> Option<(Arc<dyn Backend>, aws_sdk_dynamodb::Client, String)> {
    let client = dynamodb_client(test)?;
    let table = unique_table(test);
    parkpay_store::create_table(&client, &table)
        .await
        .unwrap_or_else(|e| panic!("cannot create table {table} on DynamoDB Local (is it running?): {e}"));
    // Idempotent.
    parkpay_store::create_table(&client, &table).await.unwrap();
    let store = DynamoStore::new(client.clone(), table.clone());
    Some((Arc::new(store), client, table))
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _dir) = super::open_embedded();
                    super::$name(store).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some((store, _, _)) = super::open_dynamodb(stringify!($name)).await {
                        super::$name(store).await;
                    }
                }
            )*
        }
    };
}

contract!(
    session_with_payments_and_refunds,
    duplicate_insert_conflicts,
    stale_update_conflicts,
    malformed_commits_are_invalid,
    failed_commit_writes_nothing,
    txn_ids_are_unique,
    list_sessions_newest_first,
    list_sessions_page_by_page,
    revoked_passes_are_listed_once,
    concurrent_updates_have_one_winner,
    concurrent_inserts_have_one_winner,
    idempotency_acquire_then_in_progress,
    idempotency_complete_then_replay,
    idempotency_takeover_after_expiry,
    idempotency_takeover_after_in_progress_deadline,
    idempotency_wrong_token_is_refused,
    idempotency_invalid_arguments,
    concurrent_acquires_have_one_winner,
    due_index_follows_obligations,
    due_index_spreads_and_merges,
    attention_lists_follow_obligations,
    overdue_list_mixes_deadlines_and_late_attempts,
    scan_finds_every_session,
    token_refresh_is_locked_per_generation,
    concurrent_refreshes_have_one_winner,
    ledger_records_each_final_state_once,
    ledger_days_are_indian_days,
    ledger_pages_in_order,
    operators_find_sessions_and_transactions,
);

// ---------------------------------------------------------------------------------------------
// Backend-specific

/// The embedded store is a file: what was committed is there after the store is dropped and the
/// file opened again.
#[tokio::test]
async fn embedded_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("parkpay.redb");
    let mut s = book(1, "driver-1", 1_000);
    let p = paid_payment("PP1", &s, 2_000);
    {
        let store = EmbeddedStore::open(&path).unwrap();
        store.commit(vec![ins_session(&s), ins_payment(&p)]).await.unwrap();
        assert_eq!(s.mark_paid(p.id(), p.amount(), at(3_000)), Ok(Transition::Applied));
        store.commit(vec![upd_session(&s, 1)]).await.unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.path(), path);
    assert_eq!(
        store.load_session(s.id()).await.unwrap(),
        Some(SessionBundle { session: s.clone(), payments: vec![p], refunds: vec![], obligations: vec![] })
    );
    assert_eq!(
        store.find_txn("PP1").await.unwrap(),
        Some(TxnRef::Payment { session_id: s.id().clone(), payment_id: pid("PP1") })
    );
    assert_eq!(store.list_sessions(s.user_id(), 10).await.unwrap(), vec![s.clone()]);
    // Conditions still hold across the restart.
    let mut stale = s.clone();
    let _ = stale.record_refund(&pid("PP1"), Paise::new(1), at(4_000));
    assert_eq!(store.commit(vec![upd_session(&stale, 1)]).await, Err(StoreError::Conflict));
}

/// An item that does not read back into its entity is `Corrupt`, never a panic.
#[tokio::test]
async fn dynamodb_corrupt_items_are_reported() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let Some((store, client, table)) = open_dynamodb("corrupt").await else { return };
    let s = book(1, "driver-1", 1_000);
    store.commit(vec![ins_session(&s)]).await.unwrap();
    let str = |v: &str| AttributeValue::S(v.to_owned());
    let put = |item: Vec<(&str, AttributeValue)>| {
        let mut req = client.put_item().table_name(&table);
        for (k, v) in item {
            req = req.item(k, v);
        }
        req.send()
    };
    let pk = format!("SESSION#{}", s.id());
    put(vec![("PK", str(&pk)), ("SK", str("PAYMENT#PP1")), ("entity", str("PAYMENT")), ("id", str("PP1"))])
        .await
        .unwrap();
    assert!(matches!(store.load_session(s.id()).await, Err(StoreError::Corrupt(_))));
    put(vec![("PK", str(&pk)), ("SK", str("PAYMENT#PP1")), ("entity", str("REFUND"))]).await.unwrap();
    assert!(matches!(store.load_session(s.id()).await, Err(StoreError::Corrupt(_))));
    put(vec![
        ("PK", str("TXN#PP2")),
        ("SK", str("#TXN")),
        ("entity", str("TXN")),
        ("kind", str("PAYMENT")),
        ("session_id", str("nope")),
        ("id", str("PP2")),
    ])
    .await
    .unwrap();
    assert!(matches!(store.find_txn("PP2").await, Err(StoreError::Corrupt(_))));
    // A session item without its fields, found through the user index.
    put(vec![
        ("PK", str(&format!("SESSION#{}", sid(3)))),
        ("SK", str("#SESSION")),
        ("GSI1PK", str("USER#driver-8")),
        ("GSI1SK", str("1")),
        ("entity", str("SESSION")),
    ])
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match store.list_sessions(&user("driver-8"), 10).await {
            Err(StoreError::Corrupt(_)) => break,
            Ok(v) if v.is_empty() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}

/// The table as created: its indexes with their projections, TTL on `expires_at_epoch` (where
/// DynamoDB Local reports TTL at all); items carry the documented attributes.
#[tokio::test]
async fn dynamodb_table_and_items_as_documented() {
    use aws_sdk_dynamodb::types::{AttributeValue, ProjectionType, TimeToLiveStatus};
    let Some((store, client, table)) = open_dynamodb("layout").await else { return };
    let described = client.describe_table().table_name(&table).send().await.unwrap();
    let mut indexes: Vec<(String, Option<ProjectionType>)> = described
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .map(|i| (i.index_name().unwrap().to_owned(), i.projection().and_then(|p| p.projection_type()).cloned()))
        .collect();
    indexes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        indexes,
        [
            ("GSI1".to_owned(), Some(ProjectionType::All)),
            ("GSI2".to_owned(), Some(ProjectionType::KeysOnly)),
            ("GSI3".to_owned(), Some(ProjectionType::KeysOnly)),
            ("GSI4".to_owned(), Some(ProjectionType::KeysOnly))
        ]
    );
    match client.describe_time_to_live().table_name(&table).send().await {
        Ok(out) => {
            let ttl = out.time_to_live_description().unwrap();
            assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
            assert_eq!(ttl.attribute_name(), Some(parkpay_store::keys::TTL_ATTRIBUTE));
        }
        Err(e) => eprintln!("DescribeTimeToLive unsupported here: {e}"),
    }

    let get = |pk: String, sk: &str| {
        client
            .get_item()
            .table_name(&table)
            .key("PK", AttributeValue::S(pk))
            .key("SK", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
    };
    let n = |v: &str| Some(AttributeValue::N(v.to_owned()));
    let s_ = |v: &str| Some(AttributeValue::S(v.to_owned()));

    // An idempotency record: native attributes; TTL in seconds, rounded up.
    let record = IdempotencyRecord::in_progress("u#k", "h", "t", at(T0 + 1), at(T0 + 1_500));
    assert_eq!(store.acquire(&record, at(T0)).await, Ok(Acquire::Acquired));
    let item = get("IDEMPOTENCY#u#k".into(), "#IDEMPOTENCY").await.unwrap().item.unwrap();
    assert_eq!(item.get("entity").cloned(), s_("IDEMPOTENCY"));
    assert_eq!(item.get("status").cloned(), s_("IN_PROGRESS"));
    assert_eq!(item.get("in_progress_until").cloned(), n(&(T0 + 1).to_string()));
    assert_eq!(item.get("expires_at").cloned(), n(&(T0 + 1_500).to_string()));
    assert_eq!(item.get("expires_at_epoch").cloned(), n(&(T0 / 1_000 + 2).to_string()));
    assert_eq!(item.get("response").cloned(), Some(AttributeValue::Null(true)));
    store.complete("u#k", "t", &created(), at(T0 + 7_000)).await.unwrap();
    let item = get("IDEMPOTENCY#u#k".into(), "#IDEMPOTENCY").await.unwrap().item.unwrap();
    assert_eq!(item.get("status").cloned(), s_("COMPLETED"));
    assert_eq!(item.get("expires_at_epoch").cloned(), n(&(T0 / 1_000 + 7).to_string()));
    let response = item.get("response").unwrap().as_m().unwrap();
    assert_eq!(response.get("status").cloned(), n("201"));
    assert_eq!(response.get("body").cloned(), s_(&created().body));

    // A session item holds its payments and obligations as map attributes, less what the item
    // says already (`session_id`, the session's `user_id`, empty optionals), and carries the due
    // entry (GSI2) of its one open obligation, named by `due_target`.
    let s = book(1, "driver-1", 1_000);
    let p = start("PP1", &s, &[], 2_000);
    let mut o = Obligation::check_payment(&p, at(2_000));
    store.commit(vec![ins_session(&s), ins_payment(&p), ins_obligation(&o)]).await.unwrap();
    let pk = format!("SESSION#{}", s.id());
    let item = get(pk.clone(), "#SESSION").await.unwrap().item.unwrap();
    let shard = parkpay_store::keys::due_shard("PP1");
    assert_eq!(item.get("GSI2PK").cloned(), s_(&format!("DUE#{shard:02}")));
    assert_eq!(item.get("GSI2SK").cloned(), s_("000000000022000#OBLIGATION#PP1"));
    assert_eq!(item.get("due_target").cloned(), s_("PP1"));
    assert_eq!(item.get("entity").cloned(), s_("SESSION"));
    assert_eq!(item.get("status").cloned(), s_("PENDING_PAYMENT"));
    let embedded = item.get("O#PP1").unwrap().as_m().unwrap();
    assert_eq!(embedded.get("kind").cloned(), s_("CHECK_PAYMENT"));
    assert_eq!(embedded.get("next_attempt_at").cloned(), n("22000"));
    assert_eq!(embedded.get("version").cloned(), n("1"));
    assert!(!embedded.contains_key("session_id") && !embedded.contains_key("refund_id"), "{embedded:?}");
    let payment = item.get("P#PP1").unwrap().as_m().unwrap();
    assert_eq!(payment.get("status").cloned(), s_("PENDING"));
    assert!(!payment.contains_key("user_id") && !payment.contains_key("utr"), "{payment:?}");
    // Open and not past its deadline: the due index stands in for the overdue list, no GSI1
    // entry; nothing else in the partition.
    assert!(!item.contains_key("GSI1PK") && !item.contains_key("GSI1SK"), "{item:?}");
    assert!(item.get("write_token").and_then(|t| t.as_s().ok()).is_some_and(|t| !t.is_empty()));
    for sk in ["PAYMENT#PP1", "OBLIGATION#PP1"] {
        assert!(get(pk.clone(), sk).await.unwrap().item.is_none(), "{sk}");
    }
    let pointer = get("TXN#PP1".into(), "#TXN").await.unwrap().item.unwrap();
    assert_eq!(pointer.get("session_id").cloned(), s_(s.id().as_str()));
    // The session's entry in its user's list is an item of its own.
    let listed = get("USER#driver-1".into(), &format!("{:015}#{}", 1_000, s.id())).await.unwrap().item.unwrap();
    assert_eq!(listed.get("entity").cloned(), s_("USER_SESSION"));
    assert_eq!(listed.get("session_id").cloned(), s_(s.id().as_str()));
    // Ended: the due entry goes, the obligation stays embedded.
    assert_eq!(o.done("paid", at(3_000)), Transition::Applied);
    store.commit(vec![upd_obligation(&o, 1)]).await.unwrap();
    let item = get(pk.clone(), "#SESSION").await.unwrap().item.unwrap();
    for gone in ["GSI2PK", "GSI2SK", "due_target"] {
        assert!(!item.contains_key(gone), "{gone}: {item:?}");
    }
    assert_eq!(item.get("O#PP1").unwrap().as_m().unwrap().get("state").cloned(), s_("DONE"));

    // A second open obligation while one holds the slot, and one that needs a person, are items
    // of their own with their own index entries.
    let mut paid = p.clone();
    assert!(paid.succeed(report(&p), at(3_000)).unwrap().is_applied());
    let r1 = Refund::request(rid("RF1"), &paid, &[], refund_request(s.user_id(), Some(1_000)), at(4_000)).unwrap();
    let o1 = Obligation::see_refund_through(&r1, false, at(4_000));
    store.commit(vec![upd_payment(&paid, 1), ins_refund(&r1), ins_obligation(&o1)]).await.unwrap();
    let r2 = Refund::request(
        rid("RF2"),
        &paid,
        std::slice::from_ref(&r1),
        refund_request(s.user_id(), Some(1_000)),
        at(5_000),
    )
    .unwrap();
    let o2 = Obligation::see_refund_through(&r2, false, at(5_000));
    store.commit(vec![ins_refund(&r2), ins_obligation(&o2)]).await.unwrap();
    let item = get(pk.clone(), "#SESSION").await.unwrap().item.unwrap();
    assert_eq!(item.get("due_target").cloned(), s_("RF1"));
    assert!(item.contains_key("R#RF1") && item.contains_key("R#RF2") && item.contains_key("O#RF1"));
    assert!(!item.contains_key("O#RF2"));
    let own = get(pk.clone(), "OBLIGATION#RF2").await.unwrap().item.unwrap();
    assert_eq!(own.get("GSI2PK").cloned(), s_(&format!("DUE#{:02}", parkpay_store::keys::due_shard("RF2"))));
    let mut stuck = o1.clone();
    assert_eq!(stuck.needs_person("refused", at(6_000)), Transition::Applied);
    store.commit(vec![upd_obligation(&stuck, o1.version())]).await.unwrap();
    let item = get(pk.clone(), "#SESSION").await.unwrap().item.unwrap();
    assert!(!item.contains_key("O#RF1") && !item.contains_key("due_target"), "moved out: {item:?}");
    let own = get(pk.clone(), "OBLIGATION#RF1").await.unwrap().item.unwrap();
    assert!(own.get("GSI1PK").and_then(|v| v.as_s().ok()).is_some_and(|v| v.starts_with("NEEDS_PERSON#")));
    let bundle = load(&*store, s.id()).await;
    assert_eq!(bundle.obligations, vec![o, stuck, o2]);
    assert_eq!(bundle.refunds, vec![r1, r2]);
    assert_eq!(bundle.payments, vec![paid]);
}

/// Items as earlier versions wrote them stay listed: a session carrying its user's list on GSI1
/// (`GSI1PK` = `USER#…`, no user-list item) is listed beside new ones, gets its user-list item
/// from the sweep's scan, and so stays listed once a change drops those keys; an open obligation
/// carrying an `OVERDUE` entry for a late attempt is listed once.
#[tokio::test]
async fn dynamodb_items_of_earlier_layouts_stay_listed() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let Some((store, client, table)) = open_dynamodb("legacy").await else { return };
    let str = |v: &str| AttributeValue::S(v.to_owned());
    let new = book(1, "driver-1", 2_000);
    let mut old = book(2, "driver-1", 1_000);
    store.commit(vec![ins_session(&new), ins_session(&old)]).await.unwrap();
    // Make `old` what an earlier version wrote: GSI1 keys on the session, no user-list item.
    let old_pk = format!("SESSION#{}", old.id());
    let user_sk = format!("{:015}#{}", 1_000, old.id());
    client
        .update_item()
        .table_name(&table)
        .key("PK", str(&old_pk))
        .key("SK", str("#SESSION"))
        .update_expression("SET GSI1PK = :pk, GSI1SK = :sk")
        .expression_attribute_values(":pk", str("USER#driver-1"))
        .expression_attribute_values(":sk", str(&user_sk))
        .send()
        .await
        .unwrap();
    client
        .delete_item()
        .table_name(&table)
        .key("PK", str("USER#driver-1"))
        .key("SK", str(&user_sk))
        .send()
        .await
        .unwrap();
    assert_listed(&*store, &user("driver-1"), 10, &[&new, &old]).await;
    assert_listed(&*store, &user("driver-1"), 1, &[&new]).await;

    // The sweep's scan gives it its user-list item; a change then drops its GSI1 keys.
    let mut after = None;
    loop {
        let page = store.scan_sessions(after.as_ref(), 100).await.unwrap();
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let listed = client
        .get_item()
        .table_name(&table)
        .key("PK", str("USER#driver-1"))
        .key("SK", str(&user_sk))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(listed.item.is_some(), "the scan wrote the user-list item");
    let read = old.clone();
    assert_eq!(old.cancel(at(3_000)), Ok(Transition::Applied));
    store.commit(vec![upd_session(&old, read.version())]).await.unwrap();
    let item = client
        .get_item()
        .table_name(&table)
        .key("PK", str(&old_pk))
        .key("SK", str("#SESSION"))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!item.contains_key("GSI1PK"), "a change writes the session without index keys");
    assert_listed(&*store, &user("driver-1"), 10, &[&new, &old]).await;

    // An open obligation with an OVERDUE entry for its late attempt (every open obligation had
    // one): on the list once, from the moment it is late.
    // (Records of an earlier version are items of their own: committed before their session
    // item exists, they are stored so.)
    let legacy = book(3, "driver-1", 4_000);
    let p = start("PPL1", &legacy, &[], 5_000);
    let o = Obligation::check_payment(&p, p.created_at());
    store.commit(vec![ins_payment(&p), ins_obligation(&o)]).await.unwrap();
    store.commit(vec![ins_session(&legacy)]).await.unwrap();
    let position = format!("{:015}#OBLIGATION#PPL1", o.overdue_from().unix_millis());
    let shard = parkpay_store::keys::due_shard("PPL1");
    client
        .update_item()
        .table_name(&table)
        .key("PK", str(&format!("SESSION#{}", legacy.id())))
        .key("SK", str("OBLIGATION#PPL1"))
        .update_expression("SET GSI1PK = :pk, GSI1SK = :sk")
        .expression_attribute_values(":pk", str(&format!("OVERDUE#{shard:02}")))
        .expression_attribute_values(":sk", str(&position))
        .send()
        .await
        .unwrap();
    let late = o.overdue_from().unix_millis();
    assert_eq!(attention(&*store, AttentionList::Overdue, late - 1, 10).await, Vec::<String>::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let got = attention(&*store, AttentionList::Overdue, late, 10).await;
        if got == ["PPL1"] || tokio::time::Instant::now() > deadline {
            assert_eq!(got, ["PPL1"]);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let entries = store.list_attention(AttentionList::Overdue, at(late), None, 10).await.unwrap();
    assert_eq!((entries.len(), entries[0].position.as_str()), (1, position.as_str()));

    // Records in items of their own are updated where they are, in the same commit as the
    // session item's change (the first try assumes them embedded; its failed condition shows
    // where they are).
    let mut paid = p.clone();
    assert!(paid.succeed(report(&p), at(6_000)).unwrap().is_applied());
    let mut session = legacy.clone();
    assert!(session.mark_paid(paid.id(), paid.amount(), at(6_000)).unwrap().is_applied());
    let mut ended = o.clone();
    assert_eq!(ended.done("paid", at(6_000)), Transition::Applied);
    store
        .commit(vec![upd_payment(&paid, p.version()), upd_session(&session, 1), upd_obligation(&ended, o.version())])
        .await
        .unwrap();
    let bundle = load(&*store, legacy.id()).await;
    assert_eq!((bundle.session, bundle.payments, bundle.obligations), (session, vec![paid], vec![ended.clone()]));
    let own = client
        .get_item()
        .table_name(&table)
        .key("PK", str(&format!("SESSION#{}", legacy.id())))
        .key("SK", str("OBLIGATION#PPL1"))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!own.contains_key("GSI2PK") && !own.contains_key("GSI1PK"), "{own:?}");
    assert_eq!(store.commit(vec![upd_obligation(&ended, o.version())]).await, Err(StoreError::Conflict));
}

/// Makes `s` what an earlier version wrote: `GSI1` keys on the session item (its user's list was
/// that index), no user-list item.
async fn make_legacy_listed(client: &aws_sdk_dynamodb::Client, table: &str, s: &ParkingSession) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let str = |v: &str| AttributeValue::S(v.to_owned());
    let user_pk = format!("USER#{}", s.user_id());
    let user_sk = format!("{:015}#{}", s.created_at().unix_millis(), s.id());
    client
        .update_item()
        .table_name(table)
        .key("PK", str(&format!("SESSION#{}", s.id())))
        .key("SK", str("#SESSION"))
        .update_expression("SET GSI1PK = :pk, GSI1SK = :sk")
        .expression_attribute_values(":pk", str(&user_pk))
        .expression_attribute_values(":sk", str(&user_sk))
        .send()
        .await
        .unwrap();
    client.delete_item().table_name(table).key("PK", str(&user_pk)).key("SK", str(&user_sk)).send().await.unwrap();
}

/// Pages merge the two sources of a user's list by the one key they share: sessions with a
/// user-list item and sessions of earlier versions (on `GSI1`), interleaved in time, each once
/// (also one on both, after the sweep gave it its user-list item), at every page size.
#[tokio::test]
async fn dynamodb_pages_merge_sessions_of_earlier_versions() {
    let Some((store, client, table)) = open_dynamodb("legacy_pages").await else { return };
    let who = user("driver-1");
    let mut all = Vec::new();
    for (n, t) in [(1u8, 1_000), (2, 2_000), (3, 3_000), (4, 3_000), (5, 4_000), (6, 5_000), (7, 6_000)] {
        let s = book(n, "driver-1", t);
        store.commit(vec![ins_session(&s)]).await.unwrap();
        all.push(s);
    }
    store.commit(vec![ins_session(&book(9, "driver-2", 3_500))]).await.unwrap();
    // Earlier versions' sessions: the oldest, the newest, one of a tie, and one in the middle.
    for i in [0, 2, 4, 6] {
        make_legacy_listed(&client, &table, &all[i]).await;
    }
    all.sort_by(|a, b| (b.created_at(), b.id()).cmp(&(a.created_at(), a.id())));
    let expected: Vec<&ParkingSession> = all.iter().collect();
    assert_listed(&*store, &who, 100, &expected).await;
    for limit in [1, 2, 3, 4, 7, 100] {
        let (got, pages) = all_pages(&*store, &who, limit, None).await;
        assert_eq!(ids(&got), ids(&all), "limit {limit}");
        assert_eq!(got, all, "limit {limit}");
        assert_eq!(pages.len(), all.len().div_ceil(limit), "limit {limit}: {pages:?}");
    }
    // The sweep gives them their user-list items while they keep their GSI1 keys: on both
    // sources, still once.
    let mut after = None;
    loop {
        let page = store.scan_sessions(after.as_ref(), 100).await.unwrap();
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    for limit in [1, 3, 100] {
        let (got, _) = all_pages(&*store, &who, limit, None).await;
        assert_eq!(got, all, "limit {limit}, after the sweep");
    }
}

/// A session written REFUNDED carries its revoked-pass keys (`GSI3PK`, `GSI3SK`), at the time of
/// the write that made it so. One an earlier version wrote REFUNDED has none and is not listed;
/// its next write lists it, at that write's time.
#[tokio::test]
async fn dynamodb_revoked_pass_keys_as_documented() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let Some((store, client, table)) = open_dynamodb("revoked_keys").await else { return };
    let str = |v: &str| AttributeValue::S(v.to_owned());
    let (mut a, mut pa) = store_paid(&*store, 1, "driver-1", 1_000).await;
    let _ = store_refund(&*store, &mut a, &mut pa, "RFA1", None, &[], 10_000, false).await;
    let pk = format!("SESSION#{}", a.id());
    let session_item = || {
        client.get_item().table_name(&table).key("PK", str(&pk)).key("SK", str("#SESSION")).consistent_read(true).send()
    };
    let item = session_item().await.unwrap().item.unwrap();
    assert_eq!(item.get("GSI3PK"), Some(&str("PASS_REVOKED")));
    assert_eq!(item.get("GSI3SK"), Some(&str(&format!("{:015}#{}", 10_000, a.id()))));
    assert_revoked(&*store, 0, 10, None, &[revoked(&a, 10_000)], false).await;

    // As an earlier version left it: REFUNDED, no keys.
    client
        .update_item()
        .table_name(&table)
        .key("PK", str(&format!("SESSION#{}", a.id())))
        .key("SK", str("#SESSION"))
        .update_expression("REMOVE GSI3PK, GSI3SK")
        .send()
        .await
        .unwrap();
    assert_revoked(&*store, 0, 10, None, &[], false).await;
    let before = a.version();
    let gate = parkpay_domain::GateId::parse("north-1").unwrap();
    let scanned = a.record_scan(parkpay_domain::ScanKind::Entry, gate, at(50_000), at(50_000));
    assert_eq!(scanned, Ok(Transition::Applied));
    store.commit(vec![upd_session(&a, before)]).await.unwrap();
    assert_revoked(&*store, 0, 10, None, &[revoked(&a, 50_000)], false).await;
    let item = session_item().await.unwrap().item.unwrap();
    assert_eq!(item.get("GSI3SK"), Some(&str(&format!("{:015}#{}", 50_000, a.id()))));
    assert_eq!(load(&*store, a.id()).await.session, a, "the keys are not read into the session");
}

/// Answers the first response it sees with HTTP 500 instead (the request did go through), so the
/// SDK sends the same request again.
#[derive(Debug, Default)]
struct LoseFirstAnswer(std::sync::atomic::AtomicUsize);

impl aws_sdk_dynamodb::config::Intercept for LoseFirstAnswer {
    fn name(&self) -> &'static str {
        "LoseFirstAnswer"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextMut<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            *context.response_mut().status_mut() = 500u16.try_into()?;
        }
        Ok(())
    }
}

/// A single-item commit (one conditional PutItem, no transaction) whose answer is lost after it
/// went through is retried by the SDK; the retry's failed condition finds the commit's own write
/// (its write token), so the commit succeeds rather than reporting a false conflict — and a
/// transaction's retry likewise (its ClientRequestToken).
#[tokio::test]
async fn dynamodb_retried_commit_that_went_through_succeeds() {
    let Some((store, client, table)) = open_dynamodb("retried").await else { return };
    let s = book(1, "driver-1", 1_000);
    let p = start("PPR1", &s, &[], 2_000);
    let o = Obligation::check_payment(&p, p.created_at());
    store.commit(vec![ins_session(&s), ins_payment(&p), ins_obligation(&o)]).await.unwrap();
    let lossy = |client: &aws_sdk_dynamodb::Client| {
        let conf = client.config().to_builder().interceptor(LoseFirstAnswer::default()).build();
        DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), table.clone())
    };

    let mut claimed = o.clone();
    assert_eq!(claimed.claim(at(22_000)), Transition::Applied);
    assert_eq!(lossy(&client).commit(vec![upd_obligation(&claimed, o.version())]).await, Ok(()));
    assert_eq!(load(&*store, s.id()).await.obligations, vec![claimed.clone()]);
    // Another commit of the very same record from the same read is still a conflict.
    assert_eq!(store.commit(vec![upd_obligation(&claimed, o.version())]).await, Err(StoreError::Conflict));

    let mut paid = p.clone();
    assert_eq!(paid.succeed(report(&p), at(23_000)), Ok(Transition::Applied));
    let mut done = claimed.clone();
    assert_eq!(done.done("paid", at(23_000)), Transition::Applied);
    let writes = vec![upd_payment(&paid, p.version()), upd_obligation(&done, claimed.version())];
    assert_eq!(lossy(&client).commit(writes).await, Ok(()));
    let bundle = load(&*store, s.id()).await;
    assert_eq!((bundle.payments, bundle.obligations), (vec![paid], vec![done]));
}

/// A table that does not exist: `Unavailable`, with the table's name.
#[tokio::test]
async fn dynamodb_missing_table_is_unavailable() {
    let Some(client) = dynamodb_client("missing_table") else { return };
    let store = DynamoStore::new(client, "parkpay-no-such-table".into());
    match store.load_session(&sid(1)).await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("parkpay-no-such-table"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let s = book(1, "driver-1", 1_000);
    assert!(matches!(store.commit(vec![ins_session(&s)]).await, Err(StoreError::Unavailable(_))));
}

/// A ledger entry is an item of its own beside its transaction's pointer (`TXN#{id}` /
/// `#LEDGER#{state}`) with the entry's attributes, listed by its day in India on `GSI1`
/// (`LDAY#{date}#{shard}`, `{final_at}#{txn}#{state}`), found by PhonePe's transaction id on
/// `GSI2` (`PREF#…`) and by UTR on `GSI3` (`UTR#…`), each with the session id as sort key; an
/// entry without those references has no such keys. A session item carries its vehicle's keys on
/// `GSI4`; one an earlier version wrote without them is found once it is written again, at its
/// booking time.
#[tokio::test]
async fn dynamodb_ledger_and_search_keys_as_documented() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let Some((store, client, table)) = open_dynamodb("ledger_keys").await else { return };
    let get = |pk: String, sk: &str| {
        client
            .get_item()
            .table_name(&table)
            .key("PK", AttributeValue::S(pk))
            .key("SK", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
    };
    let n = |v: &str| Some(AttributeValue::N(v.to_owned()));
    let s_ = |v: &str| Some(AttributeValue::S(v.to_owned()));
    let d = ist_midnight();
    let mut s = book(1, "driver-k", d + HOUR);
    let p0 = start("PPK1", &s, &[], d + HOUR);
    store.commit(vec![ins_session(&s), ins_payment(&p0)]).await.unwrap();
    let pk = format!("SESSION#{}", s.id());
    let item = get(pk.clone(), "#SESSION").await.unwrap().item.unwrap();
    assert_eq!(item.get("GSI4PK").cloned(), s_("VEH#KA-01-AB-1234"));
    assert_eq!(item.get("GSI4SK").cloned(), s_(&format!("{:015}#{}", d + HOUR, s.id())));
    let mut p = p0.clone();
    assert_eq!(p.succeed(report(&p), at(d + 2 * HOUR)), Ok(Transition::Applied));
    assert_eq!(s.mark_paid(p.id(), p.amount(), at(d + 2 * HOUR)), Ok(Transition::Applied));
    store.commit(vec![upd_payment(&p, 1), upd_session(&s, 1)]).await.unwrap();

    let entry = get("TXN#PPK1".into(), "#LEDGER#SUCCESS").await.unwrap().item.unwrap();
    let final_at = (d + 2 * HOUR).to_string();
    let shard = keys::ledger_shard("PPK1");
    for (name, value) in [
        ("entity", s_("LEDGER")),
        ("kind", s_("PAYMENT")),
        ("merchant_txn_id", s_("PPK1")),
        ("payment_id", s_("PPK1")),
        ("provider_txn_id", s_("T-PPK1")),
        ("utr", s_("UTR1")),
        ("session_id", s_(s.id().as_str())),
        ("amount", n("10000")),
        ("state", s_("SUCCESS")),
        ("final_at", n(&final_at)),
        ("GSI1PK", s_(&format!("LDAY#2026-12-01#{shard:02}"))),
        ("GSI1SK", s_(&format!("{final_at:0>15}#PPK1#SUCCESS"))),
        ("GSI2PK", s_("PREF#T-PPK1")),
        ("GSI2SK", s_(s.id().as_str())),
        ("GSI3PK", s_("UTR#UTR1")),
        ("GSI3SK", s_(s.id().as_str())),
    ] {
        assert_eq!(entry.get(name).cloned(), value, "{name}: {entry:?}");
    }
    assert!(!entry.contains_key("GSI4PK") && !entry.contains_key("write_token"), "{entry:?}");
    // The pointer is as it was.
    let pointer = get("TXN#PPK1".into(), "#TXN").await.unwrap().item.unwrap();
    assert_eq!(pointer.get("entity").cloned(), s_("TXN"));

    // A refund's entry: no references, so no search keys.
    let (r, _) = store_refund(&*store, &mut s, &mut p, "RFK1", Some(1_000), &[], d + 3 * HOUR, false).await;
    let entry = get(format!("TXN#{}", r.id()), "#LEDGER#SUCCESS").await.unwrap().item.unwrap();
    assert_eq!((entry.get("kind").cloned(), entry.get("payment_id").cloned()), (s_("REFUND"), s_("PPK1")));
    for absent in ["provider_txn_id", "utr", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK"] {
        assert!(!entry.contains_key(absent), "{absent}: {entry:?}");
    }
    assert!(entry.get("GSI1PK").and_then(|v| v.as_s().ok()).is_some_and(|v| v.starts_with("LDAY#2026-12-01#")));
    // The payment's later writes (the refund's) added no entry of their own.
    assert!(get("TXN#PPK1".into(), "#LEDGER#FAILED").await.unwrap().item.is_none());

    // As an earlier version left it: no vehicle keys; not found, until its next write.
    let old = book_vehicle(2, "driver-k", 5_000, "MH12XY9999");
    store.commit(vec![ins_session(&old)]).await.unwrap();
    let old_pk = format!("SESSION#{}", old.id());
    client
        .update_item()
        .table_name(&table)
        .key("PK", AttributeValue::S(old_pk.clone()))
        .key("SK", AttributeValue::S("#SESSION".into()))
        .update_expression("REMOVE GSI4PK, GSI4SK")
        .send()
        .await
        .unwrap();
    assert_by_vehicle(&*store, "MH12XY9999", 10, &[]).await;
    let mut cancelled = old.clone();
    assert_eq!(cancelled.cancel(at(9_000)), Ok(Transition::Applied));
    store.commit(vec![upd_session(&cancelled, 1)]).await.unwrap();
    assert_by_vehicle(&*store, "MH12XY9999", 10, &[&old]).await;
    let item = get(old_pk, "#SESSION").await.unwrap().item.unwrap();
    assert_eq!(item.get("GSI4SK").cloned(), s_(&format!("{:015}#{}", 5_000, old.id())), "at its booking time");
    assert_eq!(load(&*store, old.id()).await.session, cancelled, "the keys are not read into the session");
}

/// The outcome of a payment whose commit then fails (here: a stale session version): on DynamoDB
/// its ledger entry was put just before the session item's write and stays (the state came from
/// PhonePe, and the caller's retry writes it); the retry, later, lands and keeps the entry as it
/// is, with the first `final_at`. The embedded store writes the entry in the commit's transaction:
/// none after the failure, the retry's after it.
async fn outcome_after_a_failed_commit(store: &dyn Store, ahead: bool) {
    let d = ist_midnight();
    let mut s = book(1, "driver-f", d + HOUR);
    let p0 = start("PPF1", &s, &[], d + HOUR);
    store.commit(vec![ins_session(&s), ins_payment(&p0)]).await.unwrap();
    let mut first = p0.clone();
    assert_eq!(first.succeed(report(&p0), at(d + 2 * HOUR)), Ok(Transition::Applied));
    let mut paid = s.clone();
    assert_eq!(paid.mark_paid(first.id(), first.amount(), at(d + 2 * HOUR)), Ok(Transition::Applied));
    assert_eq!(store.commit(vec![upd_payment(&first, 1), upd_session(&paid, 0)]).await, Err(StoreError::Conflict));
    let written_ahead = payment_entry(&first, LedgerState::Success);
    let expected = if ahead { vec![written_ahead.clone()] } else { vec![] };
    assert_ledger(store, (d, d + DAY), 10, None, &expected, false).await;
    assert_eq!(load(store, s.id()).await.payments, vec![p0.clone()], "the record is as it was");

    // The retry, a minute later.
    let mut p = p0.clone();
    assert_eq!(p.succeed(report(&p0), at(d + 2 * HOUR + 60_000)), Ok(Transition::Applied));
    assert_eq!(s.mark_paid(p.id(), p.amount(), at(d + 2 * HOUR + 60_000)), Ok(Transition::Applied));
    store.commit(vec![upd_payment(&p, 1), upd_session(&s, 1)]).await.unwrap();
    let expected = if ahead { written_ahead } else { payment_entry(&p, LedgerState::Success) };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_ledger(store, (d, d + DAY), 10, None, &[expected], false).await;
    assert_eq!(load(store, s.id()).await.payments, vec![p]);
}

#[tokio::test]
async fn dynamodb_ledger_entries_are_written_ahead() {
    let Some((store, _, _)) = open_dynamodb("ledger_ahead").await else { return };
    outcome_after_a_failed_commit(&*store, true).await;
}

#[tokio::test]
async fn embedded_ledger_entries_commit_with_their_writes() {
    let (store, _dir) = open_embedded();
    outcome_after_a_failed_commit(&*store, false).await;
}
