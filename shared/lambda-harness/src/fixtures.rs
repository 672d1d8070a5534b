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
//!
//! Each session is used by one function's events only, and each event leaves the others'
//! expectations intact, so the HTTP events can run in any order, once each, on one seeded store.
//! The scheduled event (`reconcile-payments.json`) runs first, within 20 s of seeding: then the
//! only payment old enough for reconciliation's first check is `…0008`.

use parkpay_api::Gateways;
use parkpay_domain::{
    BookingRequest, GatewayApi, Hours, LotCatalog, LotId, Obligation, ParkingSession, Payment, PaymentId,
    PaymentInstrument, Refund, RefundId, RefundRequest, SYSTEM_USER, SessionId, SuccessReport, Timestamp, UserId,
    VehicleNumber,
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
pub const ALL: [u64; 10] =
    [BOOKED, PAYABLE, PAID, TO_VERIFY, TO_REFUND, CALLBACK, FORGED, RECONCILE, NEEDS_PERSON, V2_WEBHOOK];

/// How long before seeding fixture [`RECONCILE`] was booked and its payment started: past
/// reconciliation's first check (20–25 s), well inside PhonePe's 20-minute timeout.
pub const RECONCILE_AGE_MS: i64 = 60_000;

/// Every fixture session costs this (MG-ROAD-1, 50.00 an hour, 2 hours).
pub const AMOUNT_PAISE: u64 = 10_000;

/// The fixed id of fixture session `n`.
pub fn session_id(n: u64) -> SessionId {
    SessionId::parse(&format!("ps_01jdfx8r2m{n:016}")).expect("fixture session ids are valid")
}

/// The fixed id of the payment of fixture session `n` (sessions 3 to 10 have one).
pub fn payment_id(n: u64) -> PaymentId {
    PaymentId::parse(&format!("PP01JDFX8R2M{n:016}")).expect("fixture payment ids are valid")
}

/// The fixed id of the (automatic) refund of fixture session `n` (session 9 has one).
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
        let at = if n == RECONCILE {
            Timestamp::from_unix_millis(now.unix_millis() - RECONCILE_AGE_MS).map_err(|e| e.to_string())?
        } else {
            now
        };
        let mut session = book(lots, n, at)?;
        let mut writes = Vec::new();
        if n >= PAID {
            let mut payment = Payment::start(payment_id(n), &session, &[], PaymentInstrument::PayPage, at)
                .map_err(|e| format!("fixture {n}: {e}"))?
                .via(if n == V2_WEBHOOK { GatewayApi::V2 } else { GatewayApi::V1 });
            if n == PAID || n == TO_REFUND {
                paid(&mut session, &mut payment, n, now)?;
            } else if n == NEEDS_PERSON {
                writes.extend(stray_refund_refused(&mut payment, n, now)?);
            } else {
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

/// Book the driver's sessions `ids` (fixed ids, [`session_id`]; not the fixtures' 1–10), each
/// `PENDING_PAYMENT` and payable like fixture [`PAYABLE`], `parallel` bookings at a time: the
/// sessions a test pays for, one each.
pub async fn book_many(
    store: std::sync::Arc<dyn Store>,
    lots: &LotCatalog,
    ids: std::ops::Range<u64>,
    parallel: usize,
    now: Timestamp,
) -> Result<Vec<SessionId>, String> {
    if ids.start <= V2_WEBHOOK || ids.end > 9_000 {
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
        for u in [DRIVER, OTHER_DRIVER, OPERATOR] {
            assert!(UserId::parse(u).is_ok());
        }
    }
}
