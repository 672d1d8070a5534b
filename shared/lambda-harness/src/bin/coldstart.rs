//! Cold-start benchmark: start every function binary (and the bare `hello-lambda` floor) many
//! times, each time as a fresh process against a fresh Lambda Runtime API stand-in, with DynamoDB
//! Local and the PhonePe simulator up, so the real clients are built and used. Measures:
//!
//! - init: exec → first `GET /next` (what Lambda bills as Init Duration);
//! - first invoke: its own `events/<name>.json` (the route's name, or `reconcile-payments`)
//!   handed over → `/response` received, on a freshly seeded table (the realistic answer:
//!   200/201/202);
//! - warm invokes: the same event again in the same process (answers may differ: e.g. a second
//!   payment for the same session is a 409).
//!
//! Usage (scripts/coldstart.sh builds the release binaries and starts DynamoDB Local):
//!
//! ```text
//! coldstart --bin-dir target/lambda/bench/bin [--runs 20] [--warm 5] [--only list-lots,hello-lambda] [--env NAME=VALUE]
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use parkpay_api::{ROUTES, SCHEDULED};
use parkpay_lambda_harness::template::Template;
use parkpay_lambda_harness::world::{self, Apis, World};
use parkpay_lambda_harness::{events, percentile, process, workspace};

const FLOOR: &str = "hello-lambda";

struct Args {
    bin_dir: PathBuf,
    runs: usize,
    warm: usize,
    only: Option<Vec<String>>,
    /// Extra variables for every function process (what-if experiments, e.g. SSL_CERT_FILE).
    extra_env: Vec<(String, String)>,
}

fn parse_args() -> Result<Args, String> {
    let mut args =
        Args { bin_dir: workspace::target_dir().join("release"), runs: 20, warm: 5, only: None, extra_env: Vec::new() };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--bin-dir" => args.bin_dir = PathBuf::from(value()?),
            "--runs" => args.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--warm" => args.warm = value()?.parse().map_err(|e| format!("--warm: {e}"))?,
            "--only" => args.only = Some(value()?.split(',').map(str::to_owned).collect()),
            "--env" => {
                let kv = value()?;
                let (k, v) = kv.split_once('=').ok_or_else(|| format!("--env {kv}: want NAME=VALUE"))?;
                args.extra_env.push((k.to_owned(), v.to_owned()));
            }
            "-h" | "--help" => {
                return Err(
                    "usage: coldstart --bin-dir DIR [--runs N] [--warm N] [--only bin,bin] [--env NAME=VALUE]..."
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(args)
}

#[derive(Default)]
struct Samples {
    init_ms: Vec<f64>,
    first_ms: Vec<f64>,
    warm_ms: Vec<f64>,
    first_status: BTreeMap<u16, usize>,
    warm_status: BTreeMap<u16, usize>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn status_of(body: &[u8]) -> u16 {
    process::http_answer(body).map(|a| a.status).unwrap_or(0)
}

/// One event and how to send it: HTTP events with a 30 s function timeout and `--warm` repeats;
/// the scheduled reconciliation with a 6 s timeout (it ticks until 5 s before its deadline, so
/// about a second) and no warm repeats (each would be another second of ticking).
struct Invocation<'a> {
    event: &'a str,
    timeout: Duration,
    warm: usize,
}

async fn one_start(
    binary: &str,
    function: &str,
    exe: PathBuf,
    env: Vec<(String, String)>,
    inv: Invocation<'_>,
    samples: &mut Samples,
) -> Result<(), String> {
    let Invocation { event, timeout, warm } = inv;
    let launch = process::Launch { exe, function_name: function.to_owned(), env };
    let running = process::start(&launch, Duration::from_secs(30)).await.map_err(|e| format!("{binary}: {e}"))?;
    samples.init_ms.push(ms(running.init));
    for i in 0..=warm {
        let answer =
            running.invoke(event, timeout).await.map_err(|e| format!("{binary}: invoke: {e}\n{}", running.logs()))?;
        if !answer.ok {
            return Err(format!("{binary}: error to the runtime: {}", answer.body_text()));
        }
        let status = status_of(&answer.body);
        if i == 0 {
            samples.first_ms.push(ms(answer.latency()));
            *samples.first_status.entry(status).or_default() += 1;
        } else {
            samples.warm_ms.push(ms(answer.latency()));
            *samples.warm_status.entry(status).or_default() += 1;
        }
    }
    running.stop();
    Ok(())
}

/// `200×20`; a non-HTTP answer (the reconciler's summary) shows as `ok`.
fn statuses(m: &BTreeMap<u16, usize>) -> String {
    m.iter().map(|(s, n)| if *s == 0 { format!("ok×{n}") } else { format!("{s}×{n}") }).collect::<Vec<_>>().join(" ")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("coldstart: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let endpoint =
        world::dynamodb_endpoint()?.ok_or("the benchmark needs DynamoDB Local (PARKPAY_DYNAMODB_ENDPOINT)")?;
    let template = Template::load(&workspace::template_path())?;
    let files = events::load_dir(&workspace::events_dir())?;

    // (name, binary, function logical id, main event): the route functions share one binary,
    // each started with its own template environment (which names its route).
    let mut subjects: Vec<(String, String, String, String)> =
        vec![(FLOOR.into(), FLOOR.into(), "HelloWorldFloor".into(), String::new())];
    let functions = ROUTES
        .iter()
        .map(|r| (r.name, r.binary, r.function))
        .chain(SCHEDULED.iter().map(|s| (s.name, s.binary, s.function)));
    for (name, binary, function) in functions {
        let event = files
            .iter()
            .find(|f| f.function == name && f.case.is_none())
            .ok_or_else(|| format!("no events/{name}.json"))?;
        subjects.push((name.into(), binary.into(), function.into(), event.text.clone()));
    }
    let floor_event = subjects[1].3.clone();
    subjects[0].3 = floor_event;
    if let Some(only) = &args.only {
        subjects.retain(|(n, _, _, _)| only.contains(n));
    }
    for (_, binary, _, _) in &subjects {
        let exe = args.bin_dir.join(binary);
        if !exe.is_file() {
            return Err(format!("{} is not built (scripts/coldstart.sh builds it)", exe.display()));
        }
    }

    eprintln!(
        "{} starts of each of {} functions from {} ({} warm invokes per start)...",
        args.runs,
        subjects.len(),
        args.bin_dir.display(),
        args.warm
    );
    let mut results: BTreeMap<String, Samples> = BTreeMap::new();
    for run in 0..args.runs {
        // Rotate the order so no function always follows the same one.
        for k in 0..subjects.len() {
            let (name, binary, function, event) = &subjects[(k + run) % subjects.len()];
            let samples = results.entry(name.clone()).or_default();
            let exe = args.bin_dir.join(binary);
            let scheduled = SCHEDULED.iter().any(|s| s.name == name);
            let inv = Invocation {
                event,
                timeout: Duration::from_secs(if scheduled { 6 } else { 30 }),
                warm: if scheduled { 0 } else { args.warm },
            };
            if name == FLOOR {
                let mut env = vec![("AWS_REGION".to_owned(), world::REGION.to_owned())];
                env.extend(args.extra_env.iter().cloned());
                one_start(name, function, exe, env, inv, samples).await?;
                continue;
            }
            // A fresh table, simulator and fixtures for every start: each first invoke does the
            // real work (books, pays, verifies, refunds, applies a callback). The functions get
            // the template's default parameters (PG v1 only), as the figures always measured.
            let sim = parkpay_simulator::SimulatorConfig::sandbox().with_fast_timings();
            let world = World::dynamodb_with(&endpoint, &template, "coldstart", Apis::V1Only, sim).await?;
            let f = template.functions.get(function).ok_or_else(|| format!("{function} not in template.yaml"))?;
            let mut env = world::function_env(f, &world.offline)?;
            env.extend(args.extra_env.iter().cloned());
            one_start(name, function, exe, env, inv, samples).await?;
        }
    }

    let p = |v: &[f64], q: f64| percentile(v, q).unwrap_or(f64::NAN);
    let floor_p50 = results.get(FLOOR).map(|s| p(&s.init_ms, 50.0));
    println!(
        "| function (binary) | starts | init p50 | init p99 | init p50 / floor | first invoke p50 | first invoke p99 | first status | warm invoke p50 | warm invoke p99 | warm status | binary size |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, binary, _, _) in &subjects {
        let s = &results[name];
        let size = std::fs::metadata(args.bin_dir.join(binary)).map(|m| m.len()).unwrap_or(0);
        let ratio = floor_p50.map_or("-".to_owned(), |f| format!("{:.1}×", p(&s.init_ms, 50.0) / f));
        // "—" where there are no samples (the scheduled function gets no warm invokes).
        let t = |v: &[f64], q: f64| percentile(v, q).map_or("—".to_owned(), |x| format!("{x:.2} ms"));
        let st = |m: &BTreeMap<u16, usize>| if m.is_empty() { "—".to_owned() } else { statuses(m) };
        println!(
            "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} MB |",
            name,
            if name == FLOOR { " (floor)".to_owned() } else { format!(" ({binary})") },
            s.init_ms.len(),
            t(&s.init_ms, 50.0),
            t(&s.init_ms, 99.0),
            ratio,
            t(&s.first_ms, 50.0),
            t(&s.first_ms, 99.0),
            st(&s.first_status),
            t(&s.warm_ms, 50.0),
            t(&s.warm_ms, 99.0),
            st(&s.warm_status),
            size as f64 / 1_000_000.0,
        );
    }
    Ok(())
}
