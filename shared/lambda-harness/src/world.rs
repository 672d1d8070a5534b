//! A world for the events to run in, offline: a store seeded with [`crate::fixtures`], the
//! PhonePe simulator, and the environment each function gets: exactly the variables
//! `template.yaml` sets for it, resolved for a [`Deployment`] (template parameter values: which
//! PhonePe APIs are configured, [`Apis`]), with offline values, plus what replaces AWS:
//!
//! | template sets | offline |
//! |---|---|
//! | `PHONEPE_SALT_KEY_SSM_PARAMETER`, `PHONEPE_CLIENT_SECRET_SSM_PARAMETER`, `PHONEPE_WEBHOOK_PASSWORD_SSM_PARAMETER`, `PARKPAY_PASS_KEYS_SSM_PARAMETER` (SSM parameter names) | [`Secrets::Inline`]: `PHONEPE_SALT_KEY`, `PHONEPE_CLIENT_SECRET`, `PHONEPE_WEBHOOK_PASSWORD` = the simulator's, `PARKPAY_PASS_KEYS` = [`crate::fixtures::PASS_KEYS`] (no SSM here); [`Secrets::Ssm`]: the names, as on AWS, read from an SSM stand-in; an empty name stays empty (unset, as on AWS) |
//! | `PHONEPE_API_VERSION`, `PHONEPE_CLIENT_ID`, `PHONEPE_CLIENT_VERSION`, `PHONEPE_WEBHOOK_USERNAME` | the deployment's parameter values ([`Apis`] gives the simulator's client and webhook username) |
//! | `PARKPAY_CANCELLATION_RULE`, `PARKPAY_CANCEL_WINDOW_MINUTES`, `PARKPAY_PASS_GRACE_MINUTES` | the deployment's parameter values (the template's defaults unless a test sets them) |
//! | `PHONEPE_ENV`, `PHONEPE_MERCHANT_ID`, `PHONEPE_SALT_INDEX` | `SANDBOX`, `PGTESTPAYUAT`, `1` |
//! | `PHONEPE_CALLBACK_URL` (`https://{api}.execute-api…/api/payment/callback/phonepe/`) | a closed local port (callbacks are driven by `events/phonepe-callback*.json`) |
//! | `PARKPAY_TABLE`, `PARKPAY_LOTS_JSON`, `PARKPAY_REDIRECT_URL` | a fresh table, `""` (built-in lots), an https URL |
//! | — | `PHONEPE_SIMULATION_MODE=true`, `PHONEPE_SIMULATOR_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, dummy credentials and region |
//!
//! With [`Secrets::Ssm`] ([`function_env_with`]) the `*_SSM_PARAMETER` variables keep the
//! parameter names the deployment gives ([`ssm_parameter_name`]) and the AWS SDK's SSM endpoint
//! points at a stand-in ([`crate::ssm_standin`]) through `AWS_ENDPOINT_URL_SSM`, so the function
//! reads its secrets from "SSM" as on AWS.
//!
//! In simulation mode the code configures PG v1 whenever `PHONEPE_CALLBACK_URL` is set (with the
//! simulator's salt when none is given), so even an [`Apis::V2Only`] function has a v1 client
//! here; it never uses it, and reads no salt key from SSM.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use parkpay_api::config::{SIM_MERCHANT_ID, SIM_SALT_KEY};
use parkpay_api::state::Stores;
use parkpay_api::{AppState, Clock, SystemClock};
use parkpay_simulator::{
    RunningSimulator, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_CLIENT_VERSION, SANDBOX_WEBHOOK_PASSWORD,
    SANDBOX_WEBHOOK_USERNAME, Simulator, SimulatorConfig,
};
use parkpay_store::dynamo::{DynamoStore, create_table};

use crate::template::{self, Deployment};

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
    spawn_simulator_with(SimulatorConfig::sandbox().with_fast_timings()).await
}

/// A simulator with `cfg` on a free local port.
pub async fn spawn_simulator_with(cfg: SimulatorConfig) -> Result<RunningSimulator, String> {
    let addr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    Simulator::spawn(cfg, addr).await.map_err(|e| e.to_string())
}

/// The SSM parameter names the offline PG v2 deployments give (a deployer's choice: the template
/// has no default for them).
pub const CLIENT_SECRET_PARAMETER: &str = "/parkpay/phonepe/client-secret";
pub const WEBHOOK_PASSWORD_PARAMETER: &str = "/parkpay/phonepe/webhook-password";

/// Which PhonePe APIs a deployment configures, as template parameters (`docs/serverless.md`,
/// "Switching to PhonePe PG v2"). The PG v2 client is the simulator's default one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apis {
    /// The template's defaults: PG v1 only.
    V1Only,
    /// PG v1 for new payments, and a PG v2 client configured (`PhonePeClientId` given): both
    /// clients. The events run here (their fixtures hold v1 records and one v2 payment).
    Both,
    /// Switching: PG v2 for new payments, the salt key still given for v1's open records.
    Switching,
    /// PG v2 only: `PhonePeApiVersion` v2, no salt key parameter.
    V2Only,
}

impl Apis {
    pub const ALL: [Apis; 4] = [Apis::V1Only, Apis::Both, Apis::Switching, Apis::V2Only];

    /// The template parameters this deployment sets (the others keep their defaults).
    pub fn parameters(self) -> Vec<(&'static str, &'static str)> {
        let v2 = [
            ("PhonePeClientId", SANDBOX_CLIENT_ID),
            ("PhonePeClientVersion", SIM_CLIENT_VERSION),
            ("PhonePeClientSecretParameterName", CLIENT_SECRET_PARAMETER),
            ("PhonePeWebhookUsername", SANDBOX_WEBHOOK_USERNAME),
            ("PhonePeWebhookPasswordParameterName", WEBHOOK_PASSWORD_PARAMETER),
        ];
        match self {
            Apis::V1Only => Vec::new(),
            Apis::Both => v2.to_vec(),
            Apis::Switching => [&v2[..], &[("PhonePeApiVersion", "v2")]].concat(),
            Apis::V2Only => [&v2[..], &[("PhonePeApiVersion", "v2"), ("PhonePeSaltKeyParameterName", "")]].concat(),
        }
    }

    /// This deployment of `template`.
    pub fn deployment(self, template: &template::Template) -> Result<Deployment, String> {
        template.deployment(&self.parameters())
    }
}

/// [`SANDBOX_CLIENT_VERSION`] as the template parameter's text.
const SIM_CLIENT_VERSION: &str = {
    assert!(SANDBOX_CLIENT_VERSION == 1, "update SIM_CLIENT_VERSION");
    "1"
};

/// Where the offline stand-ins are, and the deployment the functions are configured for.
#[derive(Debug, Clone)]
pub struct Offline {
    pub table: String,
    pub simulator_url: String,
    /// DynamoDB Local (`None`: the function never reaches a table, e.g. the in-process test).
    pub dynamodb_endpoint: Option<String>,
    /// The template parameters (see [`Apis`]).
    pub deployment: Deployment,
}

/// The offline value of a variable `template.yaml` sets that does not come from a PhonePe
/// parameter (those are resolved by [`function_env_with`]): `(name, value)` to give the process.
/// An unknown name is an error, so a new template variable cannot be silently left out of the
/// tests.
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
        other => Err(format!(
            "template.yaml sets {other}: teach lambda_harness::world::offline_value what to give it offline"
        )),
    }
}

/// The variables `template.yaml` passes secrets in (the NAME of an SSM SecureString): PhonePe's,
/// and the entry pass keys; the variable that takes the secret itself, and the offline value of
/// it (the simulator's; the fixtures' pass keys).
pub const SECRET_VARIABLES: [(&str, &str, &str); 4] = [
    ("PHONEPE_SALT_KEY_SSM_PARAMETER", "PHONEPE_SALT_KEY", SIM_SALT_KEY),
    ("PHONEPE_CLIENT_SECRET_SSM_PARAMETER", "PHONEPE_CLIENT_SECRET", SANDBOX_CLIENT_SECRET),
    ("PHONEPE_WEBHOOK_PASSWORD_SSM_PARAMETER", "PHONEPE_WEBHOOK_PASSWORD", SANDBOX_WEBHOOK_PASSWORD),
    ("PARKPAY_PASS_KEYS_SSM_PARAMETER", "PARKPAY_PASS_KEYS", crate::fixtures::PASS_KEYS),
];

/// The variables `template.yaml` sets straight from a PhonePe parameter, given as the deployment
/// sets them.
pub const PARAMETER_VARIABLES: [&str; 4] =
    ["PHONEPE_API_VERSION", "PHONEPE_CLIENT_ID", "PHONEPE_CLIENT_VERSION", "PHONEPE_WEBHOOK_USERNAME"];

/// The policy settings `template.yaml` sets straight from a parameter
/// (`parkpay_api::state::Policy`), given as the deployment sets them, each only to the functions
/// that use it.
pub const POLICY_VARIABLES: [&str; 3] =
    ["PARKPAY_CANCELLATION_RULE", "PARKPAY_CANCEL_WINDOW_MINUTES", "PARKPAY_PASS_GRACE_MINUTES"];

/// Where a function's PhonePe secrets come from offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secrets {
    /// Each secret the deployment names, given directly instead (the simulator's salt key,
    /// client secret and webhook password, see [`SECRET_VARIABLES`]): no SSM call at all.
    Inline,
    /// Each `*_SSM_PARAMETER` as on AWS (the deployment's parameter name), and
    /// `AWS_ENDPOINT_URL_SSM` = `endpoint`. `aws_config::defaults(…).load()`
    /// (`parkpay_api::lambda::sdk_config`) gives the SDK config an environment-backed service
    /// configuration, from which the SSM client takes `AWS_ENDPOINT_URL_SSM`, as the DynamoDB
    /// client takes `AWS_ENDPOINT_URL_DYNAMODB`.
    Ssm { endpoint: String },
}

/// The value `deployment` gives `function`'s variable `var` when the template sets it to
/// `!Ref <parameter>` (`Ok(None)`: the template sets it otherwise).
pub fn parameter_value(
    deployment: &Deployment,
    function: &template::Function,
    var: &str,
) -> Result<Option<String>, String> {
    let value =
        function.env.get(var).ok_or_else(|| format!("{}: template.yaml gives it no {var}", function.logical_id))?;
    Ok(template::ref_target(value).and_then(|p| deployment.parameter(&p).map(str::to_owned)))
}

/// The SSM parameter name `deployment` passes `function` in `var` (one of the `*_SSM_PARAMETER`
/// of [`SECRET_VARIABLES`]; empty when the deployment gives none).
pub fn ssm_parameter_name(deployment: &Deployment, function: &template::Function, var: &str) -> Result<String, String> {
    parameter_value(deployment, function, var)?
        .ok_or_else(|| format!("{}: {var} is not !Ref of a template parameter", function.logical_id))
}

/// The whole environment of `function` offline (besides the `AWS_LAMBDA_*` runtime variables),
/// its secrets given directly.
pub fn function_env(function: &template::Function, offline: &Offline) -> Result<Vec<(String, String)>, String> {
    function_env_with(function, offline, &Secrets::Inline)
}

/// [`function_env`], with the secrets from `secrets`.
pub fn function_env_with(
    function: &template::Function,
    offline: &Offline,
    secrets: &Secrets,
) -> Result<Vec<(String, String)>, String> {
    let mut env = Vec::new();
    let mut ssm_endpoint = None;
    for (name, value) in &function.env {
        if let Some((_, inline_var, sim_value)) = SECRET_VARIABLES.iter().find(|(v, ..)| v == name) {
            let parameter = ssm_parameter_name(&offline.deployment, function, name)?;
            if parameter.is_empty() {
                // Set and empty, as on AWS: the code takes it as not given.
                env.push((name.clone(), String::new()));
                continue;
            }
            match secrets {
                Secrets::Inline => env.push(((*inline_var).to_owned(), (*sim_value).to_owned())),
                Secrets::Ssm { endpoint } => {
                    env.push((name.clone(), parameter));
                    ssm_endpoint = Some(endpoint.clone());
                }
            }
            continue;
        }
        if PARAMETER_VARIABLES.contains(&name.as_str()) || POLICY_VARIABLES.contains(&name.as_str()) {
            let given = parameter_value(&offline.deployment, function, name)?
                .ok_or_else(|| format!("{}: {name} is not !Ref of a template parameter", function.logical_id))?;
            env.push((name.clone(), given));
            continue;
        }
        if name == parkpay_api::ENDPOINT_VARIABLE {
            // The route a function serves: its literal value, exactly as on AWS.
            let name_of_route = value
                .as_str()
                .ok_or_else(|| format!("{}: {name} is not a literal string in template.yaml", function.logical_id))?;
            env.push((name.clone(), name_of_route.to_owned()));
            continue;
        }
        env.push(offline_value(name, offline)?);
    }
    if let Some(endpoint) = ssm_endpoint {
        env.push(("AWS_ENDPOINT_URL_SSM".into(), endpoint));
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

/// Seed `state.store` with the fixtures, using `state`'s PhonePe clients against `simulator`
/// (the state must have both: the fixtures hold v1 payments and one v2 payment).
pub async fn seed(state: &AppState, simulator: &Simulator) -> Result<(), String> {
    crate::fixtures::seed(state.store.as_ref(), &state.gateways, simulator, &state.lots, SystemClock.now()).await
}

/// DynamoDB Local + a fresh table + a simulator, seeded with the fixtures.
pub struct World {
    pub offline: Offline,
    pub stores: Stores,
    pub simulator: RunningSimulator,
}

impl World {
    /// A new world on DynamoDB Local at `endpoint`: a fresh table and simulator (sandbox, fast
    /// timings), seeded with the fixtures, its functions configured with both PhonePe APIs
    /// ([`Apis::Both`]: every event file has what it needs).
    pub async fn dynamodb(endpoint: &str, template: &template::Template, prefix: &str) -> Result<World, String> {
        Self::dynamodb_with(endpoint, template, prefix, Apis::Both, SimulatorConfig::sandbox().with_fast_timings())
            .await
    }

    /// [`World::dynamodb`] with the functions configured for `apis`, and the simulator `sim`.
    /// The fixtures are seeded through a PhonePe function's state with both APIs (they hold a v2
    /// payment), whatever `apis` is.
    pub async fn dynamodb_with(
        endpoint: &str,
        template: &template::Template,
        prefix: &str,
        apis: Apis,
        sim: SimulatorConfig,
    ) -> Result<World, String> {
        let client = dynamodb_client(endpoint);
        let table = fresh_table_name(prefix);
        create_table(&client, &table).await.map_err(|e| format!("create table {table} in DynamoDB Local: {e}"))?;
        let simulator = spawn_simulator_with(sim).await?;
        let offline = Offline {
            table: table.clone(),
            simulator_url: simulator.base_url.to_string(),
            dynamodb_endpoint: Some(endpoint.to_owned()),
            deployment: apis.deployment(template)?,
        };
        let stores = Stores::new(DynamoStore::new(client, table));
        // Seeding pays at the simulator: build the state of a function that talks to PhonePe.
        // Its PG v2 token is kept out of the table (in a file store dropped after seeding), so
        // the functions under test start as a new deployment does, with no token stored.
        let payer = parkpay_api::ROUTES.iter().find(|r| r.uses_phonepe).ok_or("no route uses PhonePe")?;
        let f = template.functions.get(payer.function).ok_or("template.yaml lacks a PhonePe function")?;
        let seeding = Offline { deployment: Apis::Both.deployment(template)?, ..offline.clone() };
        let token_file = std::env::temp_dir().join(format!("{}.redb", fresh_table_name("parkpay-seeding-token")));
        let seeded = async {
            let own_token = parkpay_store::EmbeddedStore::open(&token_file).map_err(|e| e.to_string())?;
            let seeding_stores = Stores { tokens: std::sync::Arc::new(own_token), ..stores.clone() };
            let state = app_state(&seeding_stores, &function_env(f, &seeding)?, true)?;
            seed(&state, &simulator.simulator).await
        }
        .await;
        let _ = std::fs::remove_file(&token_file);
        seeded?;
        Ok(World { offline, stores, simulator })
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.simulator.shutdown();
    }
}
