//! How much one reconciliation tick handles, and whether a new payment whose callback was lost is
//! still applied within PhonePe's schedule when many long-lived obligations sit in the due index
//! ahead of it (issue 9).
//!
//! For each store (embedded; DynamoDB Local too when `PARKPAY_DYNAMODB_ENDPOINT` is set), on a
//! local server with the PhonePe simulator:
//!
//! 1. `ITEMS` long-lived obligations are written through the store API, as the API leaves them
//!    after a driver asked for a refund PhonePe never recorded: a paid session, its SUCCESS
//!    payment, a PENDING refund of 1.00 and its SEE_REFUND_THROUGH obligation, in one commit
//!    each. PhonePe keeps failing every refund call before recording it (the simulator's
//!    `server_error: before` on refunds), so these never settle: each attempt asks the status
//!    (unknown), and once the last send is a minute old sends the refund again (500), forever.
//! 2. Then a new payment goes through HTTP (book, create-payment, the pay page) with its
//!    callback dropped.
//! 3. parkpay's clock is moved to the payment's first status check (20 s after PhonePe accepted
//!    it); by then every long-lived obligation is due as well, and earlier.
//! 4. Ticks run as the scheduled Lambda runs them: one tick, a one-second pause (simulated: the
//!    clock moves one second, nothing sleeps), the next tick; each tick's own work takes real
//!    time, which parkpay's clock also sees. Until the payment is applied.
//!
//! Prints, per store: the fill, ticks until the payment was applied, items per tick, time per
//! tick, ticks and items per second, and the payment's age when it was applied against PhonePe's
//! schedule (status checks from 20 s; the payment times out at 20 minutes). Exits non-zero if
//! the payment was not applied before its timeout.
//!
//! `bash scripts/bench-reconcile.sh` runs it in a release build with 10,000 items. Without
//! `--bench` (as `cargo test --all-targets` runs every bench once) it runs small: 100 items on
//! the embedded store and 50 on DynamoDB Local. `PARKPAY_BENCH_ITEMS` sets the number either
//! way.

#[allow(dead_code, unused_macros)]
#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parkpay_api::reconcile::{CONCURRENCY, PER_SHARD, Reconciler, TICK_BUDGET, TIMEOUT_SECS, TickReport};
use parkpay_api::{AppState, Clock};
use parkpay_domain::{
    BookingRequest, Hours, LotId, Obligation, Paise, ParkingSession, Payment, PaymentId, PaymentInstrument, RefundId,
    RefundRequest, SessionId, SuccessReport, UserId, VehicleNumber,
};
use parkpay_simulator::{Faults, Operation};
use parkpay_store::keys::DUE_SHARDS;
use parkpay_store::{Record, Write};

/// Commits in flight while filling.
const FILL_CONCURRENCY: usize = 16;

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("OS randomness");
    b
}

/// One long-lived obligation: a paid session whose driver asked for a refund of 1.00 that
/// PhonePe never recorded, written as the API writes it (one commit).
async fn fill_one(state: &AppState, i: usize) -> Result<(), String> {
    let now = state.clock.now();
    let user = UserId::parse(&format!("bench-driver-{}", i % 100)).map_err(|e| e.to_string())?;
    let request = BookingRequest {
        user_id: user.clone(),
        lot_id: LotId::parse("MG-ROAD-1").map_err(|e| e.to_string())?,
        vehicle: VehicleNumber::parse("KA01AB1234").map_err(|e| e.to_string())?,
        hours: Hours::new(2, 24).map_err(|e| e.to_string())?,
    };
    let mut session = ParkingSession::book(&state.lots, SessionId::from_random(random16()), request, now)
        .map_err(|e| e.to_string())?;
    let mut payment =
        Payment::start(PaymentId::from_random(random16()), &session, &[], PaymentInstrument::PayPage, now)
            .map_err(|e| e.to_string())?;
    let report = SuccessReport { amount: payment.amount(), provider_txn_id: Some(format!("T{i}")), utr: None };
    let _ = payment.succeed(report, now).map_err(|e| e.to_string())?;
    let _ = session.mark_paid(payment.id(), payment.amount(), now).map_err(|e| e.to_string())?;
    let ask = RefundRequest { amount: Some(Paise::new(100)), reason: None, requested_by: user, by_operator: false };
    let refund = parkpay_domain::Refund::request(RefundId::from_random(random16()), &payment, &[], ask, now)
        .map_err(|e| e.to_string())?;
    payment.note_refund_requested(now);
    let obligation = Obligation::see_refund_through(&refund, false, now);
    state
        .store
        .commit(vec![
            Write::Insert(Record::Session(session)),
            Write::Insert(Record::Payment(payment)),
            Write::Insert(Record::Refund(refund)),
            Write::Insert(Record::Obligation(obligation)),
        ])
        .await
        .map_err(|e| e.to_string())
}

async fn fill(state: &AppState, items: usize) -> Result<Duration, String> {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..FILL_CONCURRENCY)
        .map(|_| {
            let (state, next) = (state.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= items {
                        return Ok::<(), String>(());
                    }
                    fill_one(&state, i).await?;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(started.elapsed())
}

struct Tick {
    wall: Duration,
    report: TickReport,
}

struct Outcome {
    store: &'static str,
    items: usize,
    fill: Duration,
    ticks: Vec<Tick>,
    /// The payment's age (from PhonePe accepting it) when the tick that applied it ended.
    applied_at_age: Option<Duration>,
    first_due_age: Duration,
}

impl Outcome {
    fn within_schedule(&self) -> bool {
        self.applied_at_age.is_some_and(|a| a <= Duration::from_secs(TIMEOUT_SECS as u64))
    }
}

async fn run(store: &'static str, env: common::Env, items: usize) -> Result<Outcome, String> {
    let state = env.server.state.clone();
    let clock = env.server.clock.clone();
    // PhonePe fails every refund call before recording it.
    env.server.simulator.set_global_faults(Faults::server_error_before().only(&[Operation::Refund])).unwrap();
    eprintln!("{store}: writing {items} long-lived obligations…");
    let fill = fill(&state, items).await?;

    // The new payment, its callback lost.
    let t = env.token("bench-new-payment");
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    let txn = p["merchant_txn_id"].as_str().unwrap().to_owned();
    env.server.simulator.set_faults(&txn, Faults::callbacks_dropped()).unwrap();
    env.pay(&p, "success").await;
    assert_eq!(env.session(&t, &sid).await["status"], "PENDING_PAYMENT", "the callback was lost");
    let session_id = SessionId::parse(&sid).unwrap();
    let bundle = state.store.load_session(&session_id).await.map_err(|e| e.to_string())?.ok_or("no session")?;
    let o = bundle.obligation(&txn).ok_or("the payment has no obligation")?.clone();
    let (accepted, first_due) = (o.base_at().unix_millis(), o.next_attempt_at().unix_millis());

    // To its first check.
    let now = clock.now().unix_millis();
    if first_due > now {
        clock.advance(Duration::from_millis((first_due - now) as u64));
    }
    let rec = Reconciler::new(state.clone());
    let mut ticks = Vec::new();
    let mut applied_at_age = None;
    let give_up = accepted + (TIMEOUT_SECS + 60) * 1000;
    while clock.now().unix_millis() < give_up {
        let started = Instant::now();
        let report = rec.tick().await;
        ticks.push(Tick { wall: started.elapsed(), report });
        let bundle = state.store.load_session(&session_id).await.map_err(|e| e.to_string())?.ok_or("no session")?;
        if bundle.session.status().is_paid() {
            applied_at_age = Some(Duration::from_millis((clock.now().unix_millis() - accepted) as u64));
            break;
        }
        // The Lambda's one-second pause between ticks.
        clock.advance(Duration::from_secs(1));
    }
    env.server.simulator.clear_global_faults();
    env.server.stop().await;
    Ok(Outcome {
        store,
        items,
        fill,
        ticks,
        applied_at_age,
        first_due_age: Duration::from_millis((first_due - accepted) as u64),
    })
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() { 0.0 } else { xs.iter().sum::<f64>() / xs.len() as f64 }
}

fn print(outcomes: &[Outcome], full: bool) {
    println!(
        "\nReconciliation tick, {} build, {} mode: a tick reads at most {PER_SHARD} due entries from each of {DUE_SHARDS} shards ({} in all), works {CONCURRENCY} at a time, starts nothing after {} s\n",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        if full { "bench" } else { "test (small)" },
        PER_SHARD * DUE_SHARDS as usize,
        TICK_BUDGET.as_secs(),
    );
    println!(
        "| store | long-lived items | fill | ticks until applied | items per tick (mean / max) | time per tick (mean / max) | ticks per second | items per second | payment applied at age | within PhonePe's schedule (≤ {} s) |",
        TIMEOUT_SECS
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        let items: Vec<f64> = o.ticks.iter().map(|t| t.report.checked as f64).collect();
        let secs: Vec<f64> = o.ticks.iter().map(|t| t.wall.as_secs_f64()).collect();
        let total_items: f64 = items.iter().sum();
        let total_secs: f64 = secs.iter().sum();
        println!(
            "| {} | {} | {:.1} s ({:.0}/s) | {} | {:.0} / {:.0} | {:.0} ms / {:.0} ms | {:.2} | {:.0} | {} (first check due at {} s) | {} |",
            o.store,
            o.items,
            o.fill.as_secs_f64(),
            o.items as f64 / o.fill.as_secs_f64().max(1e-9),
            o.ticks.len(),
            mean(&items),
            items.iter().cloned().fold(0.0, f64::max),
            mean(&secs) * 1000.0,
            secs.iter().cloned().fold(0.0, f64::max) * 1000.0,
            o.ticks.len() as f64 / total_secs.max(1e-9),
            total_items / total_secs.max(1e-9),
            o.applied_at_age.map_or("never".to_owned(), |a| format!("{:.1} s", a.as_secs_f64())),
            o.first_due_age.as_secs(),
            if o.within_schedule() { "yes" } else { "**NO**" },
        );
    }
    println!();
    for o in outcomes {
        println!("{}: per tick (checked / due when it looked / deferred / sent / errors, wall ms):", o.store);
        let line: Vec<String> = o
            .ticks
            .iter()
            .map(|t| {
                format!(
                    "{}/{}/{}/{}/{} {:.0}",
                    t.report.checked,
                    t.report.pending,
                    t.report.deferred,
                    t.report.sent,
                    t.report.errors,
                    t.wall.as_secs_f64() * 1000.0
                )
            })
            .collect();
        println!("  {}", line.join(", "));
    }
}

async fn dynamodb_env() -> Option<common::Env> {
    let endpoint = std::env::var("PARKPAY_DYNAMODB_ENDPOINT").ok().filter(|e| !e.is_empty())?;
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(aws_sdk_dynamodb::config::Region::new("ap-south-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("bench", "bench", None, None, "bench"))
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    let table = format!("bench-{}", common::hex_id());
    parkpay_store::dynamo::create_table(&client, &table).await.expect("create table in DynamoDB Local");
    let stores = parkpay_api::Stores::new(parkpay_store::dynamo::DynamoStore::new(client, table));
    Some(common::start_with(tempfile::tempdir().unwrap(), Some(stores)).await)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let items_env =
        std::env::var("PARKPAY_BENCH_ITEMS").ok().map(|v| v.parse::<usize>().expect("PARKPAY_BENCH_ITEMS: a number"));
    let items = |small: usize| items_env.unwrap_or(if full { 10_000 } else { small });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let outcomes = rt.block_on(async {
        let mut outcomes = Vec::new();
        match run("embedded (redb)", common::embedded().await, items(100)).await {
            Ok(o) => outcomes.push(o),
            Err(e) => panic!("embedded: {e}"),
        }
        match dynamodb_env().await {
            Some(env) => match run("DynamoDB Local", env, items(50)).await {
                Ok(o) => outcomes.push(o),
                Err(e) => panic!("DynamoDB Local: {e}"),
            },
            None => eprintln!("DynamoDB Local: skipped (PARKPAY_DYNAMODB_ENDPOINT is not set)"),
        }
        outcomes
    });
    print(&outcomes, full);
    let late: Vec<&str> = outcomes.iter().filter(|o| !o.within_schedule()).map(|o| o.store).collect();
    if !late.is_empty() {
        eprintln!(
            "FAILED: the new payment was not applied within PhonePe's schedule ({} s) on: {}",
            TIMEOUT_SECS,
            late.join(", ")
        );
        std::process::exit(1);
    }
}
