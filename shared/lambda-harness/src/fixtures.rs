//! The records the files in `events/` refer to, with fixed ids, built through the domain's
//! public API and written through the [`Store`] trait (so any store: embedded or DynamoDB), and
//! the PhonePe side of them at the simulator.
//!
//! | session | owner | state | used by |
//! |---|---|---|---|
//! | `…0001` | driver | booked | `get-session*.json` |
//! | `…0002` | driver | booked | `create-payment.json`, `create-payment.amount-mismatch.json`, `create-payment.other-user.json` |
//! | `…0003` | driver | paid by `PP…0003` | `create-payment.already-paid.json` |
//! | `…0004` | driver | `PP…0004` PENDING here, COMPLETED at the simulator (its callback lost) | `verify-payment*.json` |
//! | `…0005` | driver | paid by `PP…0005` (COMPLETED at the simulator too) | `refund-payment*.json` |
//! | `…0006` | driver | `PP…0006` PENDING | `phonepe-callback.json` (a validly signed SUCCESS for it) |
//! | `…0007` | driver | `PP…0007` PENDING | `phonepe-callback.forged.json`, `…missing-checksum.json` (must stay PENDING) |
//! | `…0008` | driver | `PP…0008` PENDING here since a minute ago, COMPLETED at the simulator (callback lost) | `reconcile-payments.json` |
//! | `…0009` | driver | booked; `PP…0009` SUCCESS it did not take, its automatic refund `RF…0009` FAILED: an AUTOMATIC_REFUND obligation that needs a person | `list-obligations*.json` |
//! | `…0010` | driver | `PP…0010` a PG v2 payment (an order at the simulator's v2 API), PENDING here, COMPLETED at the simulator (no webhook sent) | `phonepe-callback.v2-webhook.json` (its webhook, confirmed by a status read) |
//! | `…0011` | driver | paid by `PP…0011` | `get-pass*.json`, `get-pass-qr*.json`, `get-receipt*.json` (all read only) |
//! | `…0012` | driver | paid by `PP…0012`, then refunded in full (`RF…0012` SUCCESS): REFUNDED, its pass revoked (on `GSI3`) | `revoked-passes.json`, `get-pass.revoked.json` (read only) |
//! | `…0013` | driver | paid by `PP…0013`, no scan yet | `record-entry.json` (a gate online: scanned now) |
//! | `…0014` | driver | booked at [`QUEUED_BOOKED_AT_MS`] (2025-11-27T10:00:00Z), paid by `PP…0014` | `record-entry.queued.json`, `record-exit.queued.json` (an offline gate's queued scans, each with its `scanned_at`: the entry before the exit, so either may come first) |
//! | `…0015` | driver | paid by `PP…0015`, no scan yet | `record-exit.json` (scanned now) |
//! | `…0016` | driver | `PP…0016` a UPI QR payment, PENDING, with PhonePe's UPI link ([`UPI_LINK`]) kept | `payment-qr*.json` (read only) |
//! | `…0017` | driver | paid by `PP…0017` | `extend-session.json` (pays for one more hour: a PENDING extension payment) |
//! | `…0018` | driver | booked on [`SETTLED_DATE`] (India), paid by `PP…0018` (PhonePe id [`SETTLED_PHONEPE_ID`], UTR [`SETTLED_UTR`]) at [`SETTLED_PAID_AT`], then `RF…0018` ([`SETTLED_REFUND_PAISE`] back) SUCCESS at [`SETTLED_REFUNDED_AT`] (PARTIALLY_REFUNDED): two settlement ledger entries that day, one commit each | `search-sessions*.json`, `settlement-report*.json` (all read only) |
//!
//! Each session is changed by one function's events only (a few read-only events share a
//! session), and each event leaves the others' expectations intact, so the HTTP events can run
//! in any order, once each, on one seeded store. `list-sessions.json` reads the driver's newest
//! sessions, whichever they are.
//!
//! The pass keys the functions sign passes with are [`PASS_KEYS`] (inline, or in the SSM
//! stand-in under the template's parameter name): fixed, so a pass's `kid` is known
//! ([`PASS_KEY_ID`]), with one earlier public key still accepted ([`PREVIOUS_PASS_KEY_ID`]).
//! Fixture [`SETTLED`] is seeded at fixed times, on a day of its own in India's time, so that
//! `settlement-report.json` names that day and gets exactly its two rows (the others' ledger
//! entries are on the seeding day).
//! The scheduled event (`reconcile-payments.json`) runs first, within 20 s of seeding: then the
//! only payment old enough for reconciliation's first check is `…0008`.

use parkpay_api::Gateways;
use parkpay_domain::{
    BookingRequest, GatewayApi, Hours, LotCatalog, LotId, Obligation, ParkingSession, Payment, PaymentId,
    PaymentInstrument, Refund, RefundId, RefundRequest, SYSTEM_USER, ScanKind, SessionId, SessionStatus, SuccessReport,
    Timestamp, UserId, VehicleNumber, record_refund_success,
};
use parkpay_gateway::{Instrument, MerchantTxnId, PayRequest};
use parkpay_simulator::{Faults, Outcome, Simulator};
use parkpay_store::{Record, Store, Write};

/// The JWT `sub` of the driver in the events (a Cognito user id).
pub const DRIVER: &str = "3f6b2a8e-1c4d-4e7a-9b2f-5a8c7d6e4f10";
/// Another driver: sees nothing of the first one's.
pub const OTHER_DRIVER: &str = "a91c0e55-7b3d-4f28-8e6a-0d2b4c6e8f12";
/// An operator (`groups` / `cognito:groups` = `[operator]` in the events).
pub const OPERATOR: &str = "c2d4e6f8-0a1b-4c3d-8e5f-7a9b1c3d5e7f";
/// A parking gate's device (`cognito:groups` = `[gate]` in the events): records entries and
/// exits, reads the revoked passes.
pub const GATE: &str = "7e1d3c5b-9a2f-4b8e-a6c4-0f2e4d6b8a13";

/// The entry pass keys of the offline deployment, in their stored JSON form (what the SSM
/// parameter `PassKeysParameterName` holds): a fixed signing seed and the public key of an
/// earlier signing key still accepted. Test keys only, never a deployment's.
pub const PASS_KEYS: &str = concat!(
    r#"{"signing": "jih64l5UzAP4cJIvpPuKBEB81D4sl_UG11FUv9mJl60", "#,
    r#""previous": ["27M2p2QZsDg_N_9j1CxuDV8pryCouonV6hKN0nx49dQ"]}"#
);
/// The `kid` (RFC 7638 thumbprint) of [`PASS_KEYS`]' signing key: every pass names it.
pub const PASS_KEY_ID: &str = "CgkleESv2Vct78DuEoI9eHH6N7G4bcTvixMaEIwrngM";
/// The `kid` of [`PASS_KEYS`]' previous key: the JWKS lists it second.
pub const PREVIOUS_PASS_KEY_ID: &str = "l3Sn5SYuI2wnU9FQAwsjhk2EisCd2quLnw_Zk7UnAXw";

/// The UPI link PhonePe returned for fixture [`UPI_QR`]'s payment (kept on the payment, as
/// create-payment keeps it): what `payment-qr` draws.
pub const UPI_LINK: &str =
    "upi://pay?pa=PGTESTPAYUAT@ybl&pn=Smart%20Parking&am=100.00&cu=INR&tr=PP01JDFX8R2M0000000000000016";

pub const BOOKED: u64 = 1;
pub const PAYABLE: u64 = 2;
pub const PAID: u64 = 3;
pub const TO_VERIFY: u64 = 4;
pub const TO_REFUND: u64 = 5;
pub const CALLBACK: u64 = 6;
pub const FORGED: u64 = 7;
pub const RECONCILE: u64 = 8;
pub const NEEDS_PERSON: u64 = 9;
pub const V2_WEBHOOK: u64 = 10;
pub const PASS: u64 = 11;
pub const REVOKED: u64 = 12;
pub const ENTRY: u64 = 13;
pub const QUEUED_SCANS: u64 = 14;
pub const EXIT: u64 = 15;
pub const UPI_QR: u64 = 16;
pub const EXTEND: u64 = 17;
pub const SETTLED: u64 = 18;
pub const ALL: [u64; 18] = [
    BOOKED,
    PAYABLE,
    PAID,
    TO_VERIFY,
    TO_REFUND,
    CALLBACK,
    FORGED,
    RECONCILE,
    NEEDS_PERSON,
    V2_WEBHOOK,
    PASS,
    REVOKED,
    ENTRY,
    QUEUED_SCANS,
    EXIT,
    UPI_QR,
    EXTEND,
    SETTLED,
];
/// The last fixture id: [`book_many`] books above it.
const LAST: u64 = SETTLED;

/// When fixture [`QUEUED_SCANS`] was booked, 2025-11-27T10:00:00Z: before the `scanned_at` of
/// its queued scans in `events/record-*.queued.json` (10:14:05 and 11:52:40 that day), which a
/// session booked at seeding time would refuse as earlier than its booking.
pub const QUEUED_BOOKED_AT_MS: i64 = 1_764_237_600_000;
/// The `scanned_at` of the entry and the exit in `events/record-entry.queued.json` and
/// `events/record-exit.queued.json`, as the answers give them back.
pub const QUEUED_ENTRY_AT: &str = "2025-11-27T10:14:05.000Z";
pub const QUEUED_EXIT_AT: &str = "2025-11-27T11:52:40.000Z";

/// When fixture [`SETTLED`] was booked (2025-11-26T04:30:00Z, 10:00 in India), paid
/// (04:32:00Z) and partly refunded (05:30:00Z): all on the India day [`SETTLED_DATE`].
pub const SETTLED_BOOKED_AT_MS: i64 = 1_764_131_400_000;
pub const SETTLED_PAID_AT_MS: i64 = 1_764_131_520_000;
pub const SETTLED_REFUNDED_AT_MS: i64 = 1_764_135_000_000;
/// The India day (`YYYY-MM-DD`) of fixture [`SETTLED`]'s payment and refund: what
/// `events/settlement-report.json` asks for.
pub const SETTLED_DATE: &str = "2025-11-26";
/// Fixture [`SETTLED`]'s payment and refund final times, as the settlement CSV gives them.
pub const SETTLED_PAID_AT: &str = "2025-11-26T04:32:00.000Z";
pub const SETTLED_REFUNDED_AT: &str = "2025-11-26T05:30:00.000Z";
/// What fixture [`SETTLED`]'s refund gave back (40.00 of its 100.00).
pub const SETTLED_REFUND_PAISE: u64 = 4_000;
/// PhonePe's transaction id and the UTR of fixture [`SETTLED`]'s payment (as [`paid`] makes
/// them): what `events/search-sessions.phonepe-id.json` and `…utr.json` search for.
pub const SETTLED_PHONEPE_ID: &str = "T2511271015301234500018";
pub const SETTLED_UTR: &str = "433212300018";

/// How long before seeding fixture [`RECONCILE`] was booked and its payment started: past
/// reconciliation's first check (20–25 s), well inside PhonePe's 20-minute timeout.
pub const RECONCILE_AGE_MS: i64 = 60_000;

/// Every fixture session costs this (MG-ROAD-1, 50.00 an hour, 2 hours).
pub const AMOUNT_PAISE: u64 = 10_000;

/// The fixed id of fixture session `n`.
pub fn session_id(n: u64) -> SessionId {
    SessionId::parse(&format!("ps_01jdfx8r2m{n:016}")).expect("fixture session ids are valid")
}

/// The fixed id of the payment of fixture session `n` (sessions 3 to 18 have one).
pub fn payment_id(n: u64) -> PaymentId {
    PaymentId::parse(&format!("PP01JDFX8R2M{n:016}")).expect("fixture payment ids are valid")
}

/// The fixed id of the refund of fixture session `n` (session 9's automatic one, session 12's, session 18's).
pub fn refund_id(n: u64) -> RefundId {
    RefundId::parse(&format!("RF01JDFX8R2M{n:016}")).expect("fixture refund ids are valid")
}

fn user(id: &str) -> UserId {
    UserId::parse(id).expect("fixture user ids are valid")
}

fn book(lots: &LotCatalog, n: u64, now: Timestamp) -> Result<ParkingSession, String> {
    let request = BookingRequest {
        user_id: user(DRIVER),
        lot_id: LotId::parse("MG-ROAD-1").map_err(|e| e.to_string())?,
        vehicle: VehicleNumber::parse(&format!("KA01AB{:04}", 1000 + n)).map_err(|e| e.to_string())?,
        hours: Hours::new(2, lots.limits().max_hours).map_err(|e| e.to_string())?,
    };
    ParkingSession::book(lots, session_id(n), request, now).map_err(|e| format!("book fixture {n}: {e}"))
}

fn paid(session: &mut ParkingSession, payment: &mut Payment, n: u64, now: Timestamp) -> Result<(), String> {
    let report = SuccessReport {
        amount: session.amount(),
        provider_txn_id: Some(format!("T25112710153012345{n:05}")),
        utr: Some(format!("4332123{n:05}")),
    };
    let applied = payment.succeed(report, now).map_err(|e| format!("fixture {n}: {e}"))?.is_applied()
        && session
            .mark_paid(payment.id(), session.amount(), now)
            .map_err(|e| format!("fixture {n}: {e}"))?
            .is_applied();
    if applied { Ok(()) } else { Err(format!("fixture {n}: payment not applied")) }
}

/// Fixture [`NEEDS_PERSON`]: `payment` succeeded for a session that did not take it, and PhonePe
/// refused its automatic refund: the refund FAILED and its obligation needs a person.
fn stray_refund_refused(payment: &mut Payment, n: u64, now: Timestamp) -> Result<Vec<Write>, String> {
    let report = SuccessReport {
        amount: payment.amount(),
        provider_txn_id: Some(format!("T2511271015301234{n:06}")),
        utr: None,
    };
    let applied = payment.succeed(report, now).map_err(|e| format!("fixture {n}: {e}"))?.is_applied();
    let request = RefundRequest {
        amount: None,
        reason: Some("automatic: fixture".into()),
        requested_by: user(SYSTEM_USER),
        by_operator: true,
    };
    let mut refund =
        Refund::request(refund_id(n), payment, &[], request, now).map_err(|e| format!("fixture {n}: {e}"))?;
    payment.note_refund_requested(now);
    let mut obligation = Obligation::see_refund_through(&refund, true, now);
    let failed = refund.fail(now).map_err(|e| format!("fixture {n}: {e}"))?.is_applied();
    if !(applied
        && failed
        && obligation.needs_person("PhonePe refused the automatic refund (fixture)", now).is_applied())
    {
        return Err(format!("fixture {n}: not applied"));
    }
    Ok(vec![Write::Insert(Record::Refund(refund)), Write::Insert(Record::Obligation(obligation))])
}

/// Fixture [`REVOKED`]: the driver refunded their paid session in full and PhonePe did it: the
/// refund SUCCESS, the session REFUNDED (its pass revoked). Applied through the domain's
/// `record_refund_success`, as a refund's success is.
fn refunded_in_full(
    session: &mut ParkingSession,
    payment: &mut Payment,
    n: u64,
    now: Timestamp,
) -> Result<Vec<Write>, String> {
    let request = RefundRequest {
        amount: None,
        reason: Some("trip cancelled (fixture)".into()),
        requested_by: user(DRIVER),
        by_operator: false,
    };
    let mut refund =
        Refund::request(refund_id(n), payment, &[], request, now).map_err(|e| format!("fixture {n}: {e}"))?;
    payment.note_refund_requested(now);
    let applied = record_refund_success(&mut refund, payment, session, now).map_err(|e| format!("fixture {n}: {e}"))?;
    if !applied.is_applied() || session.status() != SessionStatus::Refunded {
        return Err(format!("fixture {n}: not refunded in full"));
    }
    Ok(vec![Write::Insert(Record::Refund(refund))])
}

/// Fixture [`SETTLED`]: booked, paid and then partly refunded at its fixed times, as the
/// functions would commit it: the paid session first (its payment's ledger entry, final at
/// [`SETTLED_PAID_AT`]), then the refund's success in a commit of its own (the refund's entry).
async fn seed_settled(store: &dyn Store, lots: &LotCatalog) -> Result<(), String> {
    let n = SETTLED;
    let at = |ms: i64| Timestamp::from_unix_millis(ms).map_err(|e| e.to_string());
    let (booked, paid_at, refunded_at) =
        (at(SETTLED_BOOKED_AT_MS)?, at(SETTLED_PAID_AT_MS)?, at(SETTLED_REFUNDED_AT_MS)?);
    let mut session = book(lots, n, booked)?;
    let mut payment = Payment::start(payment_id(n), &session, &[], PaymentInstrument::PayPage, booked)
        .map_err(|e| format!("fixture {n}: {e}"))?
        .via(GatewayApi::V1);
    paid(&mut session, &mut payment, n, paid_at)?;
    let writes = vec![Write::Insert(Record::Session(session.clone())), Write::Insert(Record::Payment(payment.clone()))];
    store.commit(writes).await.map_err(|e| format!("seed fixture {n}: {e}"))?;
    let (session_version, payment_version) = (session.version(), payment.version());
    let request = RefundRequest {
        amount: Some(parkpay_domain::Paise::new(SETTLED_REFUND_PAISE)),
        reason: Some("left early (fixture)".into()),
        requested_by: user(OPERATOR),
        by_operator: true,
    };
    let mut refund =
        Refund::request(refund_id(n), &payment, &[], request, refunded_at).map_err(|e| format!("fixture {n}: {e}"))?;
    payment.note_refund_requested(refunded_at);
    let applied = record_refund_success(&mut refund, &mut payment, &mut session, refunded_at)
        .map_err(|e| format!("fixture {n}: {e}"))?;
    if !applied.is_applied() || session.status() == SessionStatus::Refunded {
        return Err(format!("fixture {n}: not partly refunded"));
    }
    let writes = vec![
        Write::Update { record: Record::Session(session), expected_version: session_version },
        Write::Update { record: Record::Payment(payment), expected_version: payment_version },
        Write::Insert(Record::Refund(refund)),
    ];
    store.commit(writes).await.map_err(|e| format!("seed fixture {n}'s refund: {e}"))
}

/// Seed the store with every fixture (see the module docs), and make the simulator know the
/// payments the events verify, refund or are notified of: paid through `gateways` (pointed at
/// `simulator`; PG v1, and PG v2 for fixture [`V2_WEBHOOK`], so both must be configured), then
/// completed with their callbacks dropped, so only the status API (or the event) tells.
pub async fn seed(
    store: &dyn Store,
    gateways: &Gateways,
    simulator: &Simulator,
    lots: &LotCatalog,
    now: Timestamp,
) -> Result<(), String> {
    for api in [GatewayApi::V1, GatewayApi::V2] {
        if !gateways.has(api) {
            return Err(format!("seeding the fixtures needs PhonePe PG {} configured", api.as_str()));
        }
    }
    for n in ALL {
        if n == SETTLED {
            seed_settled(store, lots).await?;
            continue;
        }
        let at = match n {
            RECONCILE => {
                Timestamp::from_unix_millis(now.unix_millis() - RECONCILE_AGE_MS).map_err(|e| e.to_string())?
            }
            QUEUED_SCANS => Timestamp::from_unix_millis(QUEUED_BOOKED_AT_MS).map_err(|e| e.to_string())?,
            _ => now,
        };
        let mut session = book(lots, n, at)?;
        let mut writes = Vec::new();
        if n >= PAID {
            let instrument = if n == UPI_QR { PaymentInstrument::UpiQr } else { PaymentInstrument::PayPage };
            // Paid now, whenever it was booked.
            let started = if n == QUEUED_SCANS { now } else { at };
            let mut payment = Payment::start(payment_id(n), &session, &[], instrument, started)
                .map_err(|e| format!("fixture {n}: {e}"))?
                .via(if n == V2_WEBHOOK { GatewayApi::V2 } else { GatewayApi::V1 });
            if [PAID, TO_REFUND, PASS, REVOKED, ENTRY, QUEUED_SCANS, EXIT, EXTEND].contains(&n) {
                paid(&mut session, &mut payment, n, now)?;
                if n == REVOKED {
                    writes.extend(refunded_in_full(&mut session, &mut payment, n, now)?);
                }
            } else if n == NEEDS_PERSON {
                writes.extend(stray_refund_refused(&mut payment, n, now)?);
            } else {
                if n == UPI_QR && !payment.note_upi_link(UPI_LINK, at).is_applied() {
                    return Err(format!("fixture {n}: UPI link not kept"));
                }
                // As create-payment records it: with the obligation to check it.
                writes.push(Write::Insert(Record::Obligation(Obligation::check_payment(&payment, at))));
            }
            writes.push(Write::Insert(Record::Payment(payment)));
        }
        writes.insert(0, Write::Insert(Record::Session(session)));
        store.commit(writes).await.map_err(|e| format!("seed fixture {n}: {e}"))?;
    }
    for n in [TO_VERIFY, TO_REFUND, RECONCILE, V2_WEBHOOK] {
        let id = payment_id(n);
        let txn = MerchantTxnId::parse(id.as_str()).map_err(|e| e.to_string())?;
        simulator.set_faults(id.as_str(), Faults::callbacks_dropped()).map_err(|e| e.to_string())?;
        let api = if n == V2_WEBHOOK { GatewayApi::V2 } else { GatewayApi::V1 };
        gateways
            .of(api)
            .pay(&PayRequest {
                merchant_txn_id: txn,
                merchant_user_id: format!("UFIXTURE{n}"),
                amount: parkpay_domain::Paise::new(AMOUNT_PAISE),
                instrument: Instrument::PayPage,
                redirect_url: "https://app.parkpay.example/payment-complete/".to_owned(),
                mobile_number: None,
            })
            .await
            .map_err(|e| format!("fixture payment {id} at the simulator: {e}"))?;
        simulator
            .complete(id.as_str(), Outcome::Success)
            .await
            .map_err(|e| format!("complete fixture payment {id} at the simulator: {e}"))?;
    }
    Ok(())
}

/// Book the driver's sessions `ids` (fixed ids, [`session_id`]; not the fixtures' 1–18), each
/// `PENDING_PAYMENT` and payable like fixture [`PAYABLE`], `parallel` bookings at a time: the
/// sessions a test pays for, one each.
pub async fn book_many(
    store: std::sync::Arc<dyn Store>,
    lots: &LotCatalog,
    ids: std::ops::Range<u64>,
    parallel: usize,
    now: Timestamp,
) -> Result<Vec<SessionId>, String> {
    if ids.start <= LAST || ids.end > 9_000 {
        return Err(format!("book_many: ids {ids:?} overlap the fixtures or run out of vehicle numbers"));
    }
    let mut booked = Vec::new();
    let mut running = tokio::task::JoinSet::new();
    for n in ids {
        if running.len() >= parallel.max(1) {
            booked.push(running.join_next().await.ok_or("no booking running")?.map_err(|e| e.to_string())??);
        }
        let session = book(lots, n, now)?;
        let store = store.clone();
        running.spawn(async move {
            let id = session.id().clone();
            store.commit(vec![Write::Insert(Record::Session(session))]).await.map_err(|e| format!("book {id}: {e}"))?;
            Ok::<_, String>(id)
        });
    }
    while let Some(done) = running.join_next().await {
        booked.push(done.map_err(|e| e.to_string())??);
    }
    booked.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(booked)
}

/// What must hold after every event ran once (checked by both events tests): the verified and
/// called-back payments are applied, the forged callbacks changed nothing, the read-only
/// session is untouched.
pub async fn check_after_events(store: &dyn Store) -> Result<(), String> {
    let load = |n: u64| async move {
        store
            .load_session(&session_id(n))
            .await
            .map_err(|e| format!("load fixture {n}: {e}"))?
            .ok_or_else(|| format!("fixture session {n} is gone"))
    };
    let status = |b: &parkpay_store::SessionBundle| b.session.status().as_str();
    let booked = load(BOOKED).await?;
    if status(&booked) != "PENDING_PAYMENT" || !booked.payments.is_empty() {
        return Err(format!("session {BOOKED} changed: {} with {} payments", status(&booked), booked.payments.len()));
    }
    for n in [TO_VERIFY, CALLBACK, RECONCILE, V2_WEBHOOK] {
        let b = load(n).await?;
        if status(&b) != "PAID" {
            return Err(format!("session {n} should be PAID after its event, is {}", status(&b)));
        }
    }
    let forged = load(FORGED).await?;
    let p = forged.payments.first().map(|p| p.status().as_str());
    if status(&forged) != "PENDING_PAYMENT" || p != Some("PENDING") {
        return Err(format!("a forged callback changed session {FORGED}: {} / payment {p:?}", status(&forged)));
    }
    let refunded = load(TO_REFUND).await?;
    if refunded.refunds.len() != 2 {
        return Err(format!(
            "session {TO_REFUND} should have 2 refunds (driver's and operator's), has {}",
            refunded.refunds.len()
        ));
    }
    let payable = load(PAYABLE).await?;
    if payable.payments.len() != 1 {
        return Err(format!(
            "session {PAYABLE} should have the 1 payment create-payment.json made, has {}",
            payable.payments.len()
        ));
    }
    // The gates' scans were recorded, each on its own session, with the time each gate gave.
    let scan = |b: &parkpay_store::SessionBundle, kind: ScanKind| {
        b.session.visit().scan(kind).map(|s| (s.gate.to_string(), s.scanned_at.to_rfc3339()))
    };
    let entered = load(ENTRY).await?;
    if scan(&entered, ScanKind::Entry).map(|(g, _)| g).as_deref() != Some("north-1")
        || scan(&entered, ScanKind::Exit).is_some()
    {
        return Err(format!("session {ENTRY}: record-entry.json's entry not recorded: {:?}", entered.session.visit()));
    }
    let queued = load(QUEUED_SCANS).await?;
    let want = (Some(QUEUED_ENTRY_AT.to_owned()), Some(QUEUED_EXIT_AT.to_owned()));
    let got = (scan(&queued, ScanKind::Entry).map(|(_, at)| at), scan(&queued, ScanKind::Exit).map(|(_, at)| at));
    if got != want {
        return Err(format!("session {QUEUED_SCANS}: the queued scans are {got:?}, want {want:?}"));
    }
    let left = load(EXIT).await?;
    if scan(&left, ScanKind::Exit).is_none() || scan(&left, ScanKind::Entry).is_some() {
        return Err(format!("session {EXIT}: record-exit.json's exit not recorded: {:?}", left.session.visit()));
    }
    // The read-only ones are as seeded: the pass and receipt session untouched, the revoked one
    // still REFUNDED, the UPI payment still PENDING with its link.
    let pass = load(PASS).await?;
    if status(&pass) != "PAID" || !pass.session.visit().is_empty() || pass.session.version() != 2 {
        return Err(format!("session {PASS} changed: {} v{}", status(&pass), pass.session.version()));
    }
    let revoked = load(REVOKED).await?;
    if status(&revoked) != "REFUNDED" {
        return Err(format!("session {REVOKED} should stay REFUNDED, is {}", status(&revoked)));
    }
    let extended = load(EXTEND).await?;
    let pending: Vec<_> = extended.payments.iter().filter(|p| p.status().as_str() == "PENDING").collect();
    if pending.len() != 1 || pending[0].purpose().is_booking() {
        return Err(format!("session {EXTEND} should have the 1 PENDING extension payment extend-session.json made"));
    }
    // Searched and reported on only: as seeded, its payment and its one refund.
    let settled = load(SETTLED).await?;
    if status(&settled) != "PARTIALLY_REFUNDED" || settled.payments.len() != 1 || settled.refunds.len() != 1 {
        return Err(format!(
            "session {SETTLED} changed: {} with {} payments, {} refunds",
            status(&settled),
            settled.payments.len(),
            settled.refunds.len()
        ));
    }
    let upi = load(UPI_QR).await?;
    let p = upi.payments.first();
    if p.map(|p| p.status().as_str()) != Some("PENDING") || p.and_then(|p| p.upi_link()) != Some(UPI_LINK) {
        return Err(format!("session {UPI_QR}: its UPI payment changed: {p:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_and_distinct() {
        let sessions: std::collections::BTreeSet<String> = ALL.iter().map(|n| session_id(*n).to_string()).collect();
        assert_eq!(sessions.len(), ALL.len());
        assert_eq!(session_id(1).as_str(), "ps_01jdfx8r2m0000000000000001");
        assert_eq!(payment_id(4).as_str(), "PP01JDFX8R2M0000000000000004");
        for u in [DRIVER, OTHER_DRIVER, OPERATOR, GATE] {
            assert!(UserId::parse(u).is_ok());
        }
        assert_eq!(LAST, *ALL.iter().max().unwrap());
        assert_eq!(Timestamp::from_unix_millis(QUEUED_BOOKED_AT_MS).unwrap().to_rfc3339(), "2025-11-27T10:00:00.000Z");
        for (ms, date, at) in [
            (SETTLED_PAID_AT_MS, SETTLED_DATE, SETTLED_PAID_AT),
            (SETTLED_REFUNDED_AT_MS, SETTLED_DATE, SETTLED_REFUNDED_AT),
        ] {
            assert_eq!(Timestamp::from_unix_millis(ms).unwrap().to_rfc3339(), at);
            // Its day in India (UTC+05:30) is the report's.
            let ist = Timestamp::from_unix_millis(ms + 19_800_000).unwrap().to_rfc3339();
            assert!(ist.starts_with(date), "{ist}");
        }
        assert!(SETTLED_BOOKED_AT_MS < SETTLED_PAID_AT_MS && SETTLED_PAID_AT_MS < SETTLED_REFUNDED_AT_MS);
        assert!(SETTLED_PHONEPE_ID.ends_with("00018") && SETTLED_UTR.ends_with("00018"));
        assert!(payment_id(UPI_QR).as_str().len() <= 35 && UPI_LINK.ends_with(payment_id(UPI_QR).as_str()));
    }

    #[test]
    fn pass_keys_are_what_the_events_expect() {
        let keys = parkpay_passes::PassKeys::from_stored(PASS_KEYS).unwrap();
        assert_eq!(keys.kid(), PASS_KEY_ID);
        assert_eq!(keys.previous_kids().collect::<Vec<_>>(), [PREVIOUS_PASS_KEY_ID]);
        let jwks = keys.jwks();
        assert_eq!(jwks["keys"][0]["kid"], PASS_KEY_ID);
        assert_eq!(jwks["keys"][1]["kid"], PREVIOUS_PASS_KEY_ID);
    }
}
