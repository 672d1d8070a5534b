//! The `Store` contract: one suite, run against both backends.
//!
//! - `embedded::*`: [`EmbeddedStore`] in a fresh temporary file per test.
//! - `dynamodb::*`: [`DynamoStore`] on a real DynamoDB Local at `PARKPAY_DYNAMODB_ENDPOINT`,
//!   one freshly created table per test. Without that variable these tests fail (run
//!   `scripts/test.sh`, which starts DynamoDB Local), unless `PARKPAY_SKIP_DYNAMODB=1`.
//!
//! Entities are built only through the domain's public API.

use std::sync::Arc;
use std::time::Duration;

use parkpay_domain::{
    BookingRequest, Hours, LotCatalog, LotId, Paise, ParkingSession, Payment, PaymentId, PaymentInstrument, Refund,
    RefundId, RefundRequest, SessionId, SessionStatus, SuccessReport, Timestamp, Transition, UserId, VehicleNumber,
    record_refund_success,
};
use parkpay_store::{
    DynamoStore, EmbeddedStore, MAX_WRITES_PER_COMMIT, Record, SessionBundle, Store, StoreError, TxnRef, Write,
};

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

/// `list_sessions` until it returns `expected` (the DynamoDB index is eventually consistent).
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
    assert_eq!(load(store, s.id()).await, SessionBundle { session: s.clone(), payments: vec![], refunds: vec![] });

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
    assert_eq!(bundle, SessionBundle { session: s.clone(), payments: vec![p_old, p.clone()], refunds });
    assert_eq!(
        load(store, other.id()).await,
        SessionBundle { session: other.clone(), payments: vec![other_p], refunds: vec![] }
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

    assert_eq!(load(store, s.id()).await, SessionBundle { session: s, payments: vec![p], refunds: vec![] });
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
    assert_eq!(load(store, s.id()).await, SessionBundle { session: s, payments: vec![], refunds: vec![] });
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
        SessionBundle { session: cancelled.clone(), payments: vec![], refunds: vec![] }
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
// Backends

fn open_embedded() -> (Arc<dyn Store>, tempfile::TempDir) {
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
async fn open_dynamodb(test: &str) -> Option<(Arc<dyn Store>, aws_sdk_dynamodb::Client, String)> {
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
    concurrent_updates_have_one_winner,
    concurrent_inserts_have_one_winner,
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
        Some(SessionBundle { session: s.clone(), payments: vec![p], refunds: vec![] })
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
