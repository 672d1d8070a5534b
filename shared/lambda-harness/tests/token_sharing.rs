//! One PhonePe PG v2 access token for the whole deployment, however many cold Lambda instances
//! need it at once (`parkpay_api::shared_token`): the "done when".
//!
//! `twenty_cold_instances_share_one_token`: 20 processes of the built routes binary, each with
//! its own Runtime API stand-in (20 execution environments), all configured as create-payment in
//! a PG v2 only deployment (`world::Apis::V2Only`, the template's environment), against one
//! simulator whose tokens live [`LIFETIME`] (6 s, so due for refresh every 3 s) and one DynamoDB
//! Local table, reached through the recording proxy. No token is stored when they start.
//!
//! 1. Cold: all 20 are invoked at the same moment, each with a payment for a session of its own:
//!    the token endpoint is asked once.
//! 2. For about three token lifetimes every instance keeps paying (one invocation every
//!    [`PACE`], the instances spread over it), so tokens reach their half-life and expire
//!    mid-run; halfway, once every instance holds the token of the last half-life refresh, the
//!    simulator expires every token it issued (PhonePe refusing the current token: each
//!    instance's next call gets 401).
//! 3. Then: every invocation answered 201; no instance met a 401 before the injected expiry (the
//!    token is replaced at its half-life, before PhonePe refuses it); the token endpoint was asked
//!    at least once per token lifetime elapsed, and at most once for the cold start plus twice
//!    per lifetime elapsed (the half-life refresh) plus once for the forced refresh; the
//!    401-forced refresh was one request (at most 2) although (nearly) all 20 instances met the
//!    401; every DynamoDB call is allowed by create-payment's policy in that deployment.
//!
//! `without_a_shared_token_the_bounds_fail`: the same fleet, each instance on a table of its own
//! (so each has its own token, as with a token per process) for about one token lifetime: the
//! same check must fail (20 token requests for the cold start alone). It proves the check can
//! fail, and that the sharing is what keeps the first test within its bounds.
//!
//! Both print their figures. Like the other built-binary tests, they need DynamoDB Local
//! (`PARKPAY_DYNAMODB_ENDPOINT`) and skip with `PARKPAY_SKIP_DYNAMODB=1`. They take the machine
//! for a while (20 processes), so they run one after the other.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parkpay_api::state::Stores;
use parkpay_api::{Clock, SystemClock};
use parkpay_domain::SessionId;
use parkpay_lambda_harness::dynamo_proxy::DynamoProxy;
use parkpay_lambda_harness::process::{self, Running};
use parkpay_lambda_harness::template::{Function, Template};
use parkpay_lambda_harness::world::{self, Apis, Offline, World};
use parkpay_lambda_harness::{events, fixtures, workspace};
use parkpay_simulator::{Simulator, SimulatorConfig};
use parkpay_store::dynamo::{DynamoStore, create_table};

const INSTANCES: usize = 20;
/// How long the simulator's tokens live: refreshed at half of it.
const LIFETIME: Duration = Duration::from_secs(6);
/// How long the fleet keeps paying: three token lifetimes.
const RUN: Duration = Duration::from_secs(18);
/// Each instance starts an invocation at most this often.
const PACE: Duration = Duration::from_millis(700);
const TIMEOUT: Duration = Duration::from_secs(25);
/// What create-payment logs when PhonePe refuses the access token (`parkpay_gateway`'s v2 client).
const REFUSED_LINE: &str = "PhonePe refused the access token (HTTP 401)";
const CREATE_PAYMENT: &str = "create-payment";

/// The two tests each take the machine: one at a time.
static FLEET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn template() -> Template {
    Template::load(&workspace::template_path()).unwrap_or_else(|e| panic!("{e}"))
}

fn bin_dir() -> PathBuf {
    workspace::built_binaries(&[parkpay_api::ROUTES_BINARY]).unwrap_or_else(|e| panic!("{e}"))
}

fn create_payment(t: &Template) -> &Function {
    t.function_named(CREATE_PAYMENT).unwrap_or_else(|| panic!("template.yaml has no {CREATE_PAYMENT}"))
}

/// `events/create-payment.json` for `session`, with `Idempotency-Key: key`.
fn payment_event(template_event: &serde_json::Value, session: &SessionId, key: &str) -> String {
    let mut event = template_event.clone();
    let mut body: serde_json::Value =
        serde_json::from_str(event["body"].as_str().expect("a text body")).expect("a JSON body");
    body["session_id"] = session.as_str().into();
    let body = body.to_string();
    event["headers"]["content-length"] = body.len().to_string().into();
    event["headers"]["idempotency-key"] = key.into();
    event["body"] = body.into();
    event.to_string()
}

fn create_payment_template_event() -> serde_json::Value {
    events::load_dir(&workspace::events_dir())
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .find(|f| f.name == "create-payment.json")
        .expect("events/create-payment.json")
        .json()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// One instance: its process and the sessions it pays for, one per invocation.
struct Instance {
    running: Running,
    sessions: Mutex<Vec<SessionId>>,
}

/// One answered invocation.
#[derive(Debug, Clone)]
struct Answered {
    instance: usize,
    /// When it was handed over and answered, since the cold round started.
    sent: Duration,
    at: Duration,
    status: u16,
    body: String,
}

impl std::fmt::Display for Answered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "instance {} at {:.2} s: {} {}", self.instance, self.at.as_secs_f64(), self.status, self.body)
    }
}

/// What a run measured.
#[derive(Debug, Default)]
struct Figures {
    instances: usize,
    invocations: usize,
    /// Cold round started → last answer.
    elapsed: Duration,
    /// Token endpoint requests during the run, in all.
    token_requests: u64,
    /// ... for the cold round (20 instances at once, none with a token).
    cold_requests: u64,
    /// When (since the start) the token endpoint's count went up, and to what.
    refreshes: Vec<(Duration, u64)>,
    /// The injected expiry: when, the token requests in the 1.5 s after it, and how many
    /// instances met a 401 then.
    expired_at: Option<Duration>,
    forced_requests: u64,
    instances_refused_after_expiry: usize,
    /// 401s met before the injected expiry (any instance).
    refused_before_expiry: usize,
    /// Answers other than 201.
    failures: Vec<Answered>,
    /// Invocation latency (handed over → answered): p50, p99, max.
    latency: (Duration, Duration, Duration),
    /// Invocations handed over within 1.5 s after the injected expiry, and by how many instances.
    after_expiry: (usize, usize),
    /// Instances that ran out of sessions before the end.
    ran_out: usize,
}

impl Figures {
    fn lifetimes(&self) -> f64 {
        self.elapsed.as_secs_f64() / LIFETIME.as_secs_f64()
    }

    /// The bounds on token requests: at least one per lifetime elapsed (counted up); at most the
    /// cold start's one, two per lifetime elapsed (the half-life refresh) and the forced refresh
    /// if one was injected.
    fn bounds(&self) -> (u64, u64) {
        let lifetimes = self.lifetimes().ceil() as u64;
        let forced = u64::from(self.expired_at.is_some());
        (lifetimes, 1 + 2 * lifetimes + forced)
    }

    /// Every way the run broke "one token for the deployment".
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let (min, max) = self.bounds();
        if !(min..=max).contains(&self.token_requests) {
            p.push(format!(
                "{} token requests in {:.1} s ({:.2} lifetimes of {:?}): want {min} to {max}",
                self.token_requests,
                self.elapsed.as_secs_f64(),
                self.lifetimes(),
                LIFETIME
            ));
        }
        if self.cold_requests != 1 {
            p.push(format!(
                "{} cold instances at once made {} token requests, want 1",
                self.instances, self.cold_requests
            ));
        }
        if self.expired_at.is_some() {
            if !(1..=2).contains(&self.forced_requests) {
                p.push(format!(
                    "the injected expiry made {} token requests ({} instances met the 401), want 1 (at most 2)",
                    self.forced_requests, self.instances_refused_after_expiry
                ));
            }
            if self.instances_refused_after_expiry < self.instances * 3 / 4 {
                p.push(format!(
                    "only {} of {} instances met the injected 401: the forced refresh was not tested",
                    self.instances_refused_after_expiry, self.instances
                ));
            }
        }
        if self.refused_before_expiry > 0 {
            p.push(format!(
                "{} calls met a 401 before any token was expired by hand: a token was used past its life",
                self.refused_before_expiry
            ));
        }
        if !self.failures.is_empty() {
            let some: Vec<String> = self.failures.iter().take(5).map(ToString::to_string).collect();
            p.push(format!("{} invocations did not answer 201, e.g. {some:?}", self.failures.len()));
        }
        if self.ran_out > 0 {
            p.push(format!("{} instances ran out of sessions before the end", self.ran_out));
        }
        p
    }

    fn print(&self, what: &str) {
        let (min, max) = self.bounds();
        eprintln!(
            "{what}: {} instances, {} invocations in {:.1} s = {:.2} token lifetimes of {:?}; token requests {} \
             (bounds {min}..={max}; cold round {}); refreshes at {}; injected expiry {}: {} request(s), {} instances met the 401; \
             401s before it: {}; non-201 answers: {}; latency p50 {:?} p99 {:?} max {:?}; \
             handed over in the 1.5 s after the expiry: {} invocations by {} instances",
            self.instances,
            self.invocations,
            self.elapsed.as_secs_f64(),
            self.lifetimes(),
            LIFETIME,
            self.token_requests,
            self.cold_requests,
            self.refreshes.iter().map(|(t, n)| format!("{:.2}s→{n}", t.as_secs_f64())).collect::<Vec<_>>().join(", "),
            self.expired_at.map_or("none".to_owned(), |t| format!("at {:.2} s", t.as_secs_f64())),
            self.forced_requests,
            self.instances_refused_after_expiry,
            self.refused_before_expiry,
            self.failures.len(),
            self.latency.0,
            self.latency.1,
            self.latency.2,
            self.after_expiry.0,
            self.after_expiry.1,
        );
    }
}

fn refusals(logs: &str) -> usize {
    logs.matches(REFUSED_LINE).count()
}

/// Start `offlines.len()` instances of create-payment at once (instance `i` with `offlines[i]`).
async fn start_fleet(f: &Function, exe: &std::path::Path, offlines: &[Offline]) -> Vec<Running> {
    let mut starting = tokio::task::JoinSet::new();
    for (i, offline) in offlines.iter().enumerate() {
        let env = world::function_env(f, offline).unwrap_or_else(|e| panic!("{e}"));
        let launch = process::Launch { exe: exe.to_owned(), function_name: f.logical_id.clone(), env };
        starting.spawn(async move { (i, process::start(&launch, TIMEOUT).await) });
    }
    let mut started = BTreeMap::new();
    while let Some(done) = starting.join_next().await {
        let (i, running) = done.unwrap();
        started.insert(i, running.unwrap_or_else(|e| panic!("instance {i}: {e}")));
    }
    started.into_values().collect()
}

/// Drive `instances` (see the module docs) for `run`, injecting an expiry halfway if `expire`.
async fn drive(instances: Vec<Instance>, sim: &Simulator, run: Duration, expire: bool) -> Figures {
    let event = Arc::new(create_payment_template_event());
    let instances = Arc::new(instances);
    let n = instances.len();
    let answered: Arc<Mutex<Vec<Answered>>> = Arc::default();
    let baseline = sim.token_requests();
    let started = Instant::now();

    let invoke = {
        let (event, instances, answered) = (event.clone(), instances.clone(), answered.clone());
        move |i: usize, k: usize| {
            let (event, instances, answered) = (event.clone(), instances.clone(), answered.clone());
            async move {
                let Some(session) = instances[i].sessions.lock().unwrap().pop() else { return false };
                let body = payment_event(&event, &session, &format!("fleet-{i}-{k}"));
                let sent = started.elapsed();
                let (status, text) = match instances[i].running.invoke(&body, TIMEOUT).await {
                    Ok(a) if a.ok => match process::http_answer(&a.body) {
                        Ok(h) => (h.status, h.body.to_string()),
                        Err(e) => (0, e),
                    },
                    Ok(a) => (0, a.body_text()),
                    Err(e) => (0, e.to_string()),
                };
                answered.lock().unwrap().push(Answered {
                    instance: i,
                    sent,
                    at: started.elapsed(),
                    status,
                    body: text,
                });
                true
            }
        }
    };

    // 1. Cold: every instance at the same moment.
    let mut cold = tokio::task::JoinSet::new();
    for i in 0..n {
        cold.spawn(invoke(i, 0));
    }
    while cold.join_next().await.is_some() {}
    let cold_requests = sim.token_requests() - baseline;

    // 2. Every instance keeps paying, spread over the pace.
    let mut loops = tokio::task::JoinSet::new();
    for i in 0..n {
        let invoke = invoke.clone();
        loops.spawn(async move {
            tokio::time::sleep(PACE.mul_f64(i as f64 / n as f64)).await;
            let mut k = 1;
            while started.elapsed() < run {
                let tick = Instant::now();
                if !invoke(i, k).await {
                    return Some(i);
                }
                k += 1;
                tokio::time::sleep(PACE.saturating_sub(tick.elapsed())).await;
            }
            None
        });
    }

    // Meanwhile: the token endpoint's count, and halfway the injected expiry.
    let mut figures = Figures { instances: n, cold_requests, ..Figures::default() };
    let mut last = sim.token_requests();
    figures.refreshes.push((started.elapsed(), last - baseline));
    let mut expiry: Option<(Instant, u64, Vec<usize>)> = None;
    let mut refresh_seen_after_half = false;
    while !loops.is_empty() {
        let now = sim.token_requests();
        if now != last {
            figures.refreshes.push((started.elapsed(), now - baseline));
            if started.elapsed() >= run / 2 {
                refresh_seen_after_half = true;
            }
            last = now;
        }
        // After a half-life refresh past halfway, once every instance has had time to take the
        // new token into memory (one pace and a bit) and before the next is due: expire all.
        if expire && expiry.is_none() && refresh_seen_after_half {
            tokio::time::sleep(PACE + Duration::from_millis(500)).await;
            let before: Vec<usize> = instances.iter().map(|i| refusals(&i.running.logs())).collect();
            figures.refused_before_expiry = before.iter().sum();
            let count = sim.token_requests();
            sim.expire_tokens();
            figures.expired_at = Some(started.elapsed());
            expiry = Some((Instant::now(), count, before));
        }
        if let Some((at, count, before)) = &expiry
            && figures.forced_requests == 0
            && at.elapsed() >= Duration::from_millis(1_500)
        {
            figures.forced_requests = sim.token_requests() - count;
            figures.instances_refused_after_expiry =
                instances.iter().zip(before).filter(|(i, b)| refusals(&i.running.logs()) > **b).count();
        }
        if let Ok(Some(done)) = tokio::time::timeout(Duration::from_millis(10), loops.join_next()).await {
            figures.ran_out += usize::from(done.expect("an instance's loop panicked").is_some());
        }
    }
    let answered = answered.lock().unwrap().clone();
    figures.elapsed = answered.iter().map(|a| a.at).max().unwrap_or_default();
    figures.token_requests = sim.token_requests() - baseline;
    if !expire {
        figures.refused_before_expiry = instances.iter().map(|i| refusals(&i.running.logs())).sum();
    }
    figures.invocations = answered.len();
    let mut latencies: Vec<Duration> = answered.iter().map(|a| a.at.saturating_sub(a.sent)).collect();
    latencies.sort();
    let pick = |q: f64| latencies.get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied();
    figures.latency = (pick(0.5).unwrap_or_default(), pick(0.99).unwrap_or_default(), pick(1.0).unwrap_or_default());
    if let Some(at) = figures.expired_at {
        let window: Vec<&Answered> =
            answered.iter().filter(|a| a.sent >= at && a.sent < at + Duration::from_millis(1_500)).collect();
        let who: std::collections::BTreeSet<usize> = window.iter().map(|a| a.instance).collect();
        figures.after_expiry = (window.len(), who.len());
    }
    figures.failures = answered.iter().filter(|a| a.status != 201).cloned().collect();
    figures
}

/// The sessions each instance pays for: enough for `run` at [`PACE`], plus the cold round and
/// a margin.
fn sessions_per_instance(run: Duration) -> u64 {
    (run.as_secs_f64() / PACE.as_secs_f64()).ceil() as u64 + 3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_cold_instances_share_one_token() {
    let Some(endpoint) = world::dynamodb_endpoint().unwrap_or_else(|e| panic!("{e}")) else {
        eprintln!("SKIPPED: 20 cold instances, one token (PARKPAY_SKIP_DYNAMODB=1)");
        return;
    };
    let _fleet = FLEET.lock().await;
    let setup_started = Instant::now();
    let t = template();
    let f = create_payment(&t);
    let exe = bin_dir().join(f.binary.as_deref().expect("a binary"));
    let sim = SimulatorConfig::sandbox().with_fast_timings().with_token_lifetime(LIFETIME);
    let world =
        World::dynamodb_with(&endpoint, &t, "tokens", Apis::V2Only, sim).await.unwrap_or_else(|e| panic!("{e}"));
    let proxy = DynamoProxy::start(&endpoint).await.unwrap();
    let offline = Offline { dynamodb_endpoint: Some(proxy.url.clone()), ..world.offline.clone() };

    let per = sessions_per_instance(RUN);
    let lots = parkpay_domain::LotCatalog::default_local();
    let first = 100;
    let sessions = fixtures::book_many(
        world.stores.store.clone(),
        &lots,
        first..first + per * INSTANCES as u64,
        16,
        SystemClock.now(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let booked = Instant::now();
    let running = start_fleet(f, &exe, &vec![offline.clone(); INSTANCES]).await;
    let instances: Vec<Instance> = running
        .into_iter()
        .zip(sessions.chunks(per as usize))
        .map(|(running, s)| Instance { running, sessions: Mutex::new(s.to_vec()) })
        .collect();
    let init_calls = proxy.take();
    assert!(init_calls.is_empty(), "DynamoDB called during init: {init_calls:?}");
    eprintln!(
        "fleet ready: {} sessions booked in {:.1} s, {INSTANCES} instances started in {:.1} s",
        sessions.len(),
        booked.duration_since(setup_started).as_secs_f64(),
        booked.elapsed().as_secs_f64()
    );

    let figures = drive(instances, &world.simulator.simulator, RUN, true).await;
    figures.print("20 cold instances, one shared token");

    // Least privilege: every DynamoDB call allowed by create-payment's policy with PG v2 only.
    let under = f.under(&world.offline.deployment);
    let calls = proxy.take();
    eprintln!("DynamoDB calls: {calls:?}");
    let mut problems = figures.problems();
    for c in &calls {
        if !under.grants.iter().any(|g| g.allows(&c.action, c.leading_key.as_deref())) {
            problems.push(format!("{c:?} is not allowed by create-payment's policy with PG v2 only"));
        }
    }
    assert!(calls.iter().any(|c| c.action == "dynamodb:UpdateItem" && c.leading_key.as_deref() == Some("TOKEN#")));
    assert!(problems.is_empty(), "one token for the deployment:\n  {}", problems.join("\n  "));
}

/// The negative control: each instance on a table of its own has a token of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_shared_token_the_bounds_fail() {
    let Some(endpoint) = world::dynamodb_endpoint().unwrap_or_else(|e| panic!("{e}")) else {
        eprintln!("SKIPPED: the fleet without a shared token (PARKPAY_SKIP_DYNAMODB=1)");
        return;
    };
    let _fleet = FLEET.lock().await;
    let t = template();
    let f = create_payment(&t);
    let exe = bin_dir().join(f.binary.as_deref().expect("a binary"));
    let sim = Simulator::spawn(
        SimulatorConfig::sandbox().with_fast_timings().with_token_lifetime(LIFETIME),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let run = LIFETIME + Duration::from_secs(1);
    let per = sessions_per_instance(run);
    let lots = parkpay_domain::LotCatalog::default_local();
    let client = world::dynamodb_client(&endpoint);
    let deployment = Apis::V2Only.deployment(&t).unwrap_or_else(|e| panic!("{e}"));
    let mut offlines = Vec::new();
    let mut sessions = Vec::new();
    for _ in 0..INSTANCES {
        let table = world::fresh_table_name("own-token");
        create_table(&client, &table).await.unwrap_or_else(|e| panic!("{e}"));
        let stores = Stores::new(DynamoStore::new(client.clone(), table.clone()));
        let booked = fixtures::book_many(stores.store.clone(), &lots, 100..100 + per, 8, SystemClock.now())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        sessions.push(booked);
        offlines.push(Offline {
            table,
            simulator_url: sim.base_url.to_string(),
            dynamodb_endpoint: Some(endpoint.clone()),
            deployment: deployment.clone(),
        });
    }
    let running = start_fleet(f, &exe, &offlines).await;
    let instances: Vec<Instance> =
        running.into_iter().zip(sessions).map(|(running, s)| Instance { running, sessions: Mutex::new(s) }).collect();
    let figures = drive(instances, &sim.simulator, run, false).await;
    figures.print("20 cold instances, a token each (control)");
    sim.shutdown();
    let problems = figures.problems();
    assert!(
        figures.failures.is_empty() && figures.ran_out == 0,
        "the control itself must run cleanly: {:?}",
        &figures.failures[..figures.failures.len().min(3)]
    );
    assert!(
        problems.iter().any(|p| p.contains("token requests")),
        "without a shared token the bounds must fail, yet: {problems:?}"
    );
    assert!(
        figures.cold_requests >= INSTANCES as u64 - 1,
        "each cold instance fetched its own token: {}",
        figures.cold_requests
    );
}
