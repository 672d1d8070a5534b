//! A world for the events to run in, offline: a store seeded with [`crate::fixtures`], the
//! PhonePe simulator, and the environment each function gets: exactly the variables
//! `template.yaml` sets for it, with offline values, plus what replaces AWS:
//!
//! | template sets | offline |
//! |---|---|
//! | `PHONEPE_SALT_KEY_SSM_PARAMETER` (the SSM parameter's name) | `PHONEPE_SALT_KEY` = the simulator's sandbox salt (no SSM here) |
//! | `PHONEPE_ENV`, `PHONEPE_MERCHANT_ID`, `PHONEPE_SALT_INDEX` | `SANDBOX`, `PGTESTPAYUAT`, `1` |
//! | `PHONEPE_CALLBACK_URL` (`https://{api}.execute-api…/api/payment/callback/phonepe/`) | a closed local port (callbacks are driven by `events/phonepe-callback*.json`) |
//! | `PARKPAY_TABLE`, `PARKPAY_LOTS_JSON`, `PARKPAY_REDIRECT_URL` | a fresh table, `""` (built-in lots), an https URL |
//! | — | `PHONEPE_SIMULATION_MODE=true`, `PHONEPE_SIMULATOR_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, dummy credentials and region |
//!
//! [`function_env_with`] and [`Salt::Ssm`] keep `PHONEPE_SALT_KEY_SSM_PARAMETER` as the template
//! sets it (the parameter's name, [`salt_parameter_name`]) and point the AWS SDK's SSM endpoint
//! at a stand-in ([`crate::ssm_standin`]) with `AWS_ENDPOINT_URL_SSM`, so the function reads its
//! salt key from "SSM" as on AWS.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use parkpay_api::config::{SIM_MERCHANT_ID, SIM_SALT_KEY};
use parkpay_api::state::Stores;
use parkpay_api::{AppState, Clock, SystemClock};
use parkpay_simulator::{RunningSimulator, Simulator, SimulatorConfig};
use parkpay_store::dynamo::{DynamoStore, create_table};

use crate::template;

/// DynamoDB Local keeps one database per access key and region: the seeding client and the
/// function processes must use the same.
pub const ACCESS_KEY: &str = "parkpaylocal";
pub const REGION: &str = "ap-south-1";
pub const REDIRECT_URL: &str = "https://app.parkpay.example/payment-complete/";
/// `PARKPAY_SERVICE` offline: the stack name the template gives it on AWS.
pub const SERVICE: &str = "parkpay-harness";
/// Nothing listens on port 9 (discard): a payment's callback, were PhonePe to send one, is lost,
/// like a callback that never arrives. The callback function is driven by its events instead.
pub const CALLBACK_URL: &str = "http://127.0.0.1:9/api/payment/callback/phonepe/";

/// `PARKPAY_DYNAMODB_ENDPOINT` (set by `scripts/test.sh`, which starts DynamoDB Local);
/// `Ok(None)` when `PARKPAY_SKIP_DYNAMODB=1`; otherwise an error saying what to do.
pub fn dynamodb_endpoint() -> Result<Option<String>, String> {
    match std::env::var("PARKPAY_DYNAMODB_ENDPOINT") {
        Ok(e) if !e.is_empty() => Ok(Some(e)),
        _ if std::env::var("PARKPAY_SKIP_DYNAMODB").as_deref() == Ok("1") => Ok(None),
        _ => Err("PARKPAY_DYNAMODB_ENDPOINT is not set: run scripts/test.sh (it starts DynamoDB Local), or start one \
                  with `bash scripts/dynamodb-local.sh start` and export its URL; PARKPAY_SKIP_DYNAMODB=1 skips this test"
            .to_owned()),
    }
}

/// A DynamoDB client for DynamoDB Local at `endpoint`.
pub fn dynamodb_client(endpoint: &str) -> Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(aws_sdk_dynamodb::config::Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(ACCESS_KEY, ACCESS_KEY, None, None, "harness"))
        .build();
    Client::from_conf(conf)
}

/// A fresh table name (unique in this DynamoDB Local).
pub fn fresh_table_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{}-{}", std::process::id(), nanos % 1_000_000_000_000, N.fetch_add(1, Ordering::Relaxed))
}

/// A simulator for the sandbox merchant on a free local port, fast timings.
pub async fn spawn_simulator() -> Result<RunningSimulator, String> {
    let addr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    Simulator::spawn(SimulatorConfig::sandbox().with_fast_timings(), addr).await.map_err(|e| e.to_string())
}

/// Where the offline stand-ins are.
#[derive(Debug, Clone)]
pub struct Offline {
    pub table: String,
    pub simulator_url: String,
    /// DynamoDB Local (`None`: the function never reaches a table, e.g. the in-process test).
    pub dynamodb_endpoint: Option<String>,
}

/// The offline value of a variable `template.yaml` sets: `(name, value)` to give the process
/// (the salt's SSM parameter becomes the salt itself). An unknown name is an error, so a new
/// template variable cannot be silently left out of the tests.
pub fn offline_value(name: &str, offline: &Offline) -> Result<(String, String), String> {
    let v = |s: &str| Ok((name.to_owned(), s.to_owned()));
    match name {
        "PARKPAY_TABLE" => v(&offline.table),
        "PARKPAY_LOTS_JSON" => v(""),
        // the metrics' Service dimension (`!Ref AWS::StackName` on AWS)
        "PARKPAY_SERVICE" => v(SERVICE),
        "PARKPAY_REDIRECT_URL" => v(REDIRECT_URL),
        "PHONEPE_ENV" => v("SANDBOX"),
        "PHONEPE_MERCHANT_ID" => v(SIM_MERCHANT_ID),
        "PHONEPE_SALT_INDEX" => v("1"),
        "PHONEPE_CALLBACK_URL" => v(CALLBACK_URL),
        "PHONEPE_SALT_KEY_SSM_PARAMETER" => Ok(("PHONEPE_SALT_KEY".to_owned(), SIM_SALT_KEY.to_owned())),
        other => Err(format!(
            "template.yaml sets {other}: teach lambda_harness::world::offline_value what to give it offline"
        )),
    }
}

/// Where a function's PhonePe salt key comes from offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Salt {
    /// `PHONEPE_SALT_KEY` = the simulator's sandbox salt, instead of the SSM parameter's name
    /// (see [`offline_value`]): no SSM call at all.
    Inline,
    /// `PHONEPE_SALT_KEY_SSM_PARAMETER` = `parameter`, as on AWS, and `AWS_ENDPOINT_URL_SSM` =
    /// `endpoint`. `aws_config::defaults(…).load()` (`parkpay_api::lambda::sdk_config`) gives
    /// the SDK config an environment-backed service configuration, from which the SSM client
    /// takes `AWS_ENDPOINT_URL_SSM`, as the DynamoDB client takes `AWS_ENDPOINT_URL_DYNAMODB`.
    Ssm { parameter: String, endpoint: String },
}

/// The SSM parameter name template.yaml gives `function` as `PHONEPE_SALT_KEY_SSM_PARAMETER`:
/// the `Default` of the template parameter it `!Ref`s, or its literal text.
pub fn salt_parameter_name(template: &template::Template, function: &template::Function) -> Result<String, String> {
    let value = function
        .env
        .get("PHONEPE_SALT_KEY_SSM_PARAMETER")
        .ok_or_else(|| format!("{}: template.yaml gives it no PHONEPE_SALT_KEY_SSM_PARAMETER", function.logical_id))?;
    match template::ref_target(value) {
        Some(parameter) => template
            .parameter_default(&parameter)
            .ok_or_else(|| format!("template.yaml: parameter {parameter} has no Default")),
        None => value.as_str().map(str::to_owned).ok_or_else(|| {
            format!("{}: PHONEPE_SALT_KEY_SSM_PARAMETER is neither text nor a !Ref: {value:?}", function.logical_id)
        }),
    }
}

/// The whole environment of `function` offline (besides the `AWS_LAMBDA_*` runtime variables).
pub fn function_env(function: &template::Function, offline: &Offline) -> Result<Vec<(String, String)>, String> {
    function_env_with(function, offline, &Salt::Inline)
}

/// [`function_env`], with the salt key from `salt`.
pub fn function_env_with(
    function: &template::Function,
    offline: &Offline,
    salt: &Salt,
) -> Result<Vec<(String, String)>, String> {
    let mut env = Vec::new();
    for (name, value) in &function.env {
        match (name.as_str(), salt) {
            ("PHONEPE_SALT_KEY_SSM_PARAMETER", Salt::Ssm { parameter, endpoint }) => {
                env.push((name.clone(), parameter.clone()));
                env.push(("AWS_ENDPOINT_URL_SSM".into(), endpoint.clone()));
            }
            // The route a function serves: its literal value, exactly as on AWS.
            (parkpay_api::ENDPOINT_VARIABLE, _) => {
                let name_of_route = value.as_str().ok_or_else(|| {
                    format!("{}: {name} is not a literal string in template.yaml", function.logical_id)
                })?;
                env.push((name.clone(), name_of_route.to_owned()));
            }
            _ => env.push(offline_value(name, offline)?),
        }
    }
    env.push(("PHONEPE_SIMULATION_MODE".into(), "true".into()));
    env.push(("PHONEPE_SIMULATOR_URL".into(), offline.simulator_url.clone()));
    for (k, v) in
        [("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", ACCESS_KEY), ("AWS_SESSION_TOKEN", ACCESS_KEY)]
    {
        env.push((k.into(), v.into()));
    }
    env.push(("AWS_REGION".into(), REGION.into()));
    env.push(("AWS_DEFAULT_REGION".into(), REGION.into()));
    if let Some(endpoint) = &offline.dynamodb_endpoint {
        env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), endpoint.clone()));
    }
    Ok(env)
}

/// The state a function builds at cold start from `env` (`parkpay_api::lambda::state_with`, as
/// its `main` does), on `stores` instead of the DynamoDB store it would make. `phonepe`: the
/// function's `uses_phonepe`.
pub fn app_state(stores: &Stores, env: &[(String, String)], phonepe: bool) -> Result<AppState, String> {
    let lookup = |k: &str| env.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone());
    // No AWS call is made offline (the salt is given directly), but the state wants a config.
    let aws = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
    parkpay_api::lambda::state_with(phonepe, &lookup, &aws, |_| stores.clone()).map_err(|e| e.to_string())
}

/// Seed `state.store` with the fixtures, using the current PhonePe client against `simulator`.
pub async fn seed(state: &AppState, simulator: &Simulator) -> Result<(), String> {
    crate::fixtures::seed(state.store.as_ref(), state.gateways.current().as_ref(), simulator, &state.lots, SystemClock.now()).await
}

/// DynamoDB Local + a fresh table + a simulator, seeded with the fixtures.
pub struct World {
    pub offline: Offline,
    pub stores: Stores,
    pub simulator: RunningSimulator,
}

impl World {
    /// A new world on DynamoDB Local at `endpoint`: a fresh table and simulator, seeded with the
    /// fixtures through a PhonePe function's state (its environment from [`function_env`]).
    pub async fn dynamodb(endpoint: &str, template: &template::Template, prefix: &str) -> Result<World, String> {
        let client = dynamodb_client(endpoint);
        let table = fresh_table_name(prefix);
        create_table(&client, &table).await.map_err(|e| format!("create table {table} in DynamoDB Local: {e}"))?;
        let simulator = spawn_simulator().await?;
        let offline = Offline {
            table: table.clone(),
            simulator_url: simulator.base_url.to_string(),
            dynamodb_endpoint: Some(endpoint.to_owned()),
        };
        let stores = Stores::new(DynamoStore::new(client, table));
        // Seeding pays at the simulator: build the state of a function that talks to PhonePe.
        let payer = parkpay_api::ROUTES.iter().find(|r| r.uses_phonepe).ok_or("no route uses PhonePe")?;
        let f = template.functions.get(payer.function).ok_or("template.yaml lacks a PhonePe function")?;
        let state = app_state(&stores, &function_env(f, &offline)?, true)?;
        seed(&state, &simulator.simulator).await?;
        Ok(World { offline, stores, simulator })
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.simulator.shutdown();
    }
}
