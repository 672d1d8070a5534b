//! Configuration from environment variables, with the original system's names
//! (`docs/http-api.md`, "Configuration names"). A missing or invalid setting stops
//! start-up with one line naming it. Secrets are wrapped at once and never printed.

use std::time::Duration;

use parkpay_checksum::{KeyError, SaltIndex, SaltKey, SaltKeys, WebhookCredentials};
use parkpay_domain::{GatewayApi, LotCatalog};
use parkpay_gateway::{Environment, PhonePeV1Config, PhonePeV2Config, V2ConfigError};
use secrecy::SecretString;
use url::Url;

/// One bad setting: its variable name and what is wrong with it (never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(var: &'static str, problem: impl Into<String>) -> Self {
        Self { var, problem: problem.into() }
    }
}

/// Where the PhonePe salt keys come from. On AWS they are never in plain configuration: the
/// function reads them from SSM Parameter Store or Secrets Manager on first use (no network at
/// cold start) and keeps them in memory, wrapped so they cannot be printed.
///
/// A merchant may hold several salt keys at once, each with its index (`docs/phonepe.md` §6):
/// requests we send are signed with one of them (`index` here, `PHONEPE_SALT_INDEX`); callbacks
/// are verified with whichever configured key their `X-VERIFY` names.
#[derive(Debug, Clone)]
pub enum SaltSource {
    /// Given directly: `PHONEPE_SALT_KEY` (one key, index `PHONEPE_SALT_INDEX`) or
    /// `PHONEPE_SALT_KEYS` (`index:key,index:key`): local use, tests.
    Inline(SaltKeys),
    /// `PHONEPE_SALT_KEY_SSM_PARAMETER`: the name of an SSM SecureString holding one key, or
    /// several as JSON (`crate::secrets::parse_stored_keys`); `index` signs.
    Ssm { parameter: String, index: SaltIndex },
    /// `PHONEPE_SALT_KEY_SECRET_ID`: a Secrets Manager secret, in the same forms as the SSM
    /// parameter (a plain key, or JSON with `salt_key` or `salt_keys`).
    SecretsManager { secret_id: String, index: SaltIndex },
}

/// Where a PG v2 secret (the OAuth client secret, the webhook password) comes from: given
/// directly (local use, tests), or the name of an SSM SecureString read on first use, like the
/// salt key.
#[derive(Debug, Clone)]
pub enum SecretSource {
    Inline(SecretString),
    Ssm { parameter: String },
}

impl SecretSource {
    pub fn inline(&self) -> Option<&SecretString> {
        match self {
            SecretSource::Inline(s) => Some(s),
            SecretSource::Ssm { .. } => None,
        }
    }
}

/// PG v1's settings: the client's configuration and where its salt keys come from.
#[derive(Debug, Clone)]
pub struct V1Settings {
    /// The client's settings, with the salt keys when they are inline; when they come from a
    /// secret store, a placeholder replaced by [`V1Settings::gateway_config`].
    phonepe: PhonePeV1Config,
    pub salt: SaltSource,
}

impl V1Settings {
    /// The PhonePe client's configuration with these keys.
    pub fn gateway_config(&self, keys: SaltKeys) -> PhonePeV1Config {
        PhonePeV1Config { salt_keys: keys, ..self.phonepe.clone() }
    }

    /// The keys when they are inline (local server, tests); `None` when a secret store holds them.
    pub fn inline_salt_keys(&self) -> Option<&SaltKeys> {
        match &self.salt {
            SaltSource::Inline(keys) => Some(keys),
            _ => None,
        }
    }
}

/// PG v2's settings: the client's configuration and where its two secrets come from.
#[derive(Debug, Clone)]
pub struct V2Settings {
    /// The client's settings, with the secrets when they are inline; when they come from SSM,
    /// placeholders replaced by [`V2Settings::gateway_config`].
    phonepe: PhonePeV2Config,
    pub client_secret: SecretSource,
    pub webhook_password: SecretSource,
}

impl V2Settings {
    /// The PhonePe client's configuration with these secrets.
    pub fn gateway_config(&self, client_secret: SecretString, webhook_password: SecretString) -> PhonePeV2Config {
        let webhook = WebhookCredentials::new(self.phonepe.webhook.username(), webhook_password);
        PhonePeV2Config { client_secret, webhook, ..self.phonepe.clone() }
    }

    /// The configuration when both secrets are inline (local server, tests).
    pub fn inline_config(&self) -> Option<PhonePeV2Config> {
        Some(self.gateway_config(self.client_secret.inline()?.clone(), self.webhook_password.inline()?.clone()))
    }

    pub fn client_id(&self) -> &str {
        &self.phonepe.client_id
    }

    /// The name of the deployment's access token in the store: one per OAuth client.
    pub fn token_name(&self) -> String {
        format!("phonepe-v2#{}", self.phonepe.client_id)
    }
}

/// Everything the handlers need besides their clients: the PhonePe API new payments use
/// (`PHONEPE_API_VERSION`), and the settings of each API configured. Records keep the API that
/// made them, so a deployment switching from v1 to v2 keeps v1's settings until v1's records
/// are done with (`README.md`, "Switching from PG v1 to PG v2").
#[derive(Debug, Clone)]
pub struct Settings {
    /// `PHONEPE_API_VERSION`: `v1` (the default) or `v2`.
    pub api: GatewayApi,
    /// PG v1: configured when it is the API in use, or when its salt key is given (a deployment
    /// that switched to v2 and still has v1 records), or in simulation with a callback URL.
    pub v1: Option<V1Settings>,
    /// PG v2: configured when it is the API in use, or when `PHONEPE_CLIENT_ID` is given.
    pub v2: Option<V2Settings>,
    pub lots: LotCatalog,
    /// DynamoDB table (AWS) — unused by the embedded store.
    pub table: String,
    environment: Environment,
    redirect_url: Url,
    /// `PHONEPE_MERCHANT_ID`: required by v1; with v2 only, optional (the OAuth client names the
    /// merchant), and when given, webhooks naming another merchant are not applied.
    merchant_id: Option<String>,
}

/// What every function needs, PhonePe or not: the lots and the table. The functions that never
/// talk to PhonePe (list-lots, create-session, get-session) read only these, so they start
/// without any PhonePe setting or salt key (the template gives them none).
#[derive(Debug, Clone)]
pub struct CoreSettings {
    pub lots: LotCatalog,
    /// DynamoDB table (AWS) — unused by the embedded store.
    pub table: String,
}

impl CoreSettings {
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| env(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let lots = match get("PARKPAY_LOTS_JSON") {
            Some(json) => {
                LotCatalog::from_json(&json).map_err(|e| ConfigError::new("PARKPAY_LOTS_JSON", e.to_string()))?
            }
            None => LotCatalog::default_local(),
        };
        let table = get("PARKPAY_TABLE").unwrap_or_else(|| "parkpay".to_owned());
        Ok(CoreSettings { lots, table })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }
}

/// The public sandbox merchant of `docs/phonepe.md` §5: the simulator's default.
pub const SIM_MERCHANT_ID: &str = parkpay_checksum::conformance::SANDBOX_MERCHANT_ID;
pub const SIM_SALT_KEY: &str = parkpay_checksum::conformance::SANDBOX_SALT_KEY;

impl Settings {
    /// Read settings through `env` (a lookup such as `|k| std::env::var(k).ok()`).
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| env(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let api = match get("PHONEPE_API_VERSION") {
            None => GatewayApi::V1,
            Some(v) => GatewayApi::parse(&v.to_ascii_lowercase())
                .ok_or_else(|| ConfigError::new("PHONEPE_API_VERSION", "must be v1 or v2"))?,
        };
        let simulation = match get("PHONEPE_SIMULATION_MODE").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") | Some("0") | Some("no") => false,
            Some("true") | Some("1") | Some("yes") => true,
            Some(_) => return Err(ConfigError::new("PHONEPE_SIMULATION_MODE", "must be true or false")),
        };
        let environment = if simulation {
            let url = get("PHONEPE_SIMULATOR_URL").ok_or_else(|| {
                ConfigError::new("PHONEPE_SIMULATOR_URL", "is required when PHONEPE_SIMULATION_MODE=true")
            })?;
            Environment::Simulation { base_url: parse_url("PHONEPE_SIMULATOR_URL", &url)? }
        } else {
            match get("PHONEPE_ENV").as_deref().map(str::to_ascii_uppercase).as_deref() {
                Some("SANDBOX") | Some("UAT") => Environment::Sandbox,
                Some("PRODUCTION") | Some("PROD") => Environment::Production,
                Some(_) => return Err(ConfigError::new("PHONEPE_ENV", "must be SANDBOX or PRODUCTION")),
                None => {
                    return Err(ConfigError::new(
                        "PHONEPE_ENV",
                        "is required (SANDBOX or PRODUCTION) unless PHONEPE_SIMULATION_MODE=true",
                    ));
                }
            }
        };
        let merchant_id = get("PHONEPE_MERCHANT_ID").or_else(|| simulation.then(|| SIM_MERCHANT_ID.to_owned()));
        let redirect_url = match get("PARKPAY_REDIRECT_URL") {
            Some(u) => parse_url("PARKPAY_REDIRECT_URL", &u)?,
            None => {
                return Err(ConfigError::new(
                    "PARKPAY_REDIRECT_URL",
                    "is required (where the payer returns after paying)",
                ));
            }
        };
        let mut timeouts = (PhonePeV2Config::DEFAULT_CONNECT_TIMEOUT, PhonePeV1Config::DEFAULT_READ_TIMEOUT);
        if let Some(ms) = get("PHONEPE_CONNECT_TIMEOUT_MS") {
            timeouts.0 = parse_millis("PHONEPE_CONNECT_TIMEOUT_MS", &ms)?;
        }
        if let Some(ms) = get("PHONEPE_READ_TIMEOUT_MS") {
            timeouts.1 = parse_millis("PHONEPE_READ_TIMEOUT_MS", &ms)?;
        }
        let common =
            Common { environment: environment.clone(), simulation, redirect_url: redirect_url.clone(), timeouts };

        let salt_given = ["PHONEPE_SALT_KEY", "PHONEPE_API_KEY", "PHONEPE_SALT_KEYS", "PHONEPE_SALT_KEY_SSM_PARAMETER"]
            .iter()
            .chain(&["PHONEPE_SALT_KEY_SECRET_ID"])
            .any(|k| get(k).is_some());
        let v1_wanted = api == GatewayApi::V1 || salt_given || (simulation && get("PHONEPE_CALLBACK_URL").is_some());
        let v1 = if v1_wanted { Some(v1_settings(&get, &common, merchant_id.clone())?) } else { None };
        let v2_wanted = api == GatewayApi::V2 || get("PHONEPE_CLIENT_ID").is_some();
        let v2 = if v2_wanted { Some(v2_settings(&get, &common, merchant_id.clone())?) } else { None };

        let CoreSettings { lots, table } = CoreSettings::from_lookup(env)?;
        Ok(Settings { api, v1, v2, lots, table, environment, redirect_url, merchant_id })
    }

    /// The API's settings, if it is configured.
    pub fn v1(&self) -> Option<&V1Settings> {
        self.v1.as_ref()
    }

    pub fn v2(&self) -> Option<&V2Settings> {
        self.v2.as_ref()
    }

    /// Our PhonePe merchant id, when known (always with v1).
    pub fn merchant_id(&self) -> Option<&str> {
        self.merchant_id.as_deref()
    }

    pub fn redirect_url(&self) -> &Url {
        &self.redirect_url
    }

    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }
}

/// What both APIs' settings share.
struct Common {
    environment: Environment,
    simulation: bool,
    redirect_url: Url,
    /// Connect, read.
    timeouts: (Duration, Duration),
}

type Get<'a> = dyn Fn(&str) -> Option<String> + 'a;

fn v1_settings(get: &Get<'_>, common: &Common, merchant_id: Option<String>) -> Result<V1Settings, ConfigError> {
    let simulation = common.simulation;
    let merchant_id = merchant_id.ok_or_else(|| ConfigError::new("PHONEPE_MERCHANT_ID", "is required"))?;
    // The index that signs what we send (PHONEPE_SALT_INDEX); 1 unless said.
    let named_index = match get("PHONEPE_SALT_INDEX") {
        Some(i) => Some(
            i.parse::<SaltIndex>()
                .map_err(|_| ConfigError::new("PHONEPE_SALT_INDEX", "must be a positive whole number"))?,
        ),
        None => None,
    };
    let index = named_index.unwrap_or(SaltIndex::new(1));
    // The original system called the salt key PHONEPE_API_KEY: accept both.
    let inline = get("PHONEPE_SALT_KEY").or_else(|| get("PHONEPE_API_KEY"));
    let list = get("PHONEPE_SALT_KEYS");
    let ssm = get("PHONEPE_SALT_KEY_SSM_PARAMETER");
    let secret = get("PHONEPE_SALT_KEY_SECRET_ID");
    if [inline.is_some(), list.is_some(), ssm.is_some(), secret.is_some()].iter().filter(|x| **x).count() > 1 {
        return Err(ConfigError::new(
            "PHONEPE_SALT_KEY",
            "give only one of PHONEPE_SALT_KEY, PHONEPE_SALT_KEYS, PHONEPE_SALT_KEY_SSM_PARAMETER, PHONEPE_SALT_KEY_SECRET_ID",
        ));
    }
    let salt = match (inline, list, ssm, secret) {
        (Some(k), ..) => SaltSource::Inline(SaltKeys::single(
            index,
            SaltKey::new(k).map_err(|_| ConfigError::new("PHONEPE_SALT_KEY", "must not be empty"))?,
        )),
        (_, Some(list), ..) => SaltSource::Inline(salt_key_list(&list, named_index)?),
        (_, _, Some(parameter), _) => SaltSource::Ssm { parameter, index },
        (_, _, _, Some(secret_id)) => SaltSource::SecretsManager { secret_id, index },
        (None, None, None, None) if simulation => SaltSource::Inline(SaltKeys::single(
            index,
            SaltKey::new(SIM_SALT_KEY).map_err(|_| ConfigError::new("PHONEPE_SALT_KEY", "must not be empty"))?,
        )),
        (None, None, None, None) => {
            return Err(ConfigError::new(
                "PHONEPE_SALT_KEY",
                "is required (or PHONEPE_SALT_KEYS / PHONEPE_SALT_KEY_SSM_PARAMETER / PHONEPE_SALT_KEY_SECRET_ID; PHONEPE_API_KEY is accepted too)",
            ));
        }
    };
    let salt_keys = match &salt {
        SaltSource::Inline(keys) => keys.clone(),
        // Validation needs some key; it is replaced before any request is signed.
        _ => SaltKeys::single(
            index,
            SaltKey::new("placeholder").map_err(|_| ConfigError::new("PHONEPE_SALT_KEY", "internal"))?,
        ),
    };

    let callback_url = parse_url(
        "PHONEPE_CALLBACK_URL",
        &get("PHONEPE_CALLBACK_URL").ok_or_else(|| ConfigError::new("PHONEPE_CALLBACK_URL", "is required"))?,
    )?;
    let mut phonepe = PhonePeV1Config::new(
        common.environment.clone(),
        merchant_id,
        salt_keys,
        callback_url,
        common.redirect_url.clone(),
    );
    (phonepe.connect_timeout, phonepe.read_timeout) = common.timeouts;
    phonepe.validate().map_err(common_error)?;
    Ok(V1Settings { phonepe, salt })
}

/// The variable a client configuration error is about.
fn common_error(e: parkpay_gateway::ConfigError) -> ConfigError {
    let var = match e {
        parkpay_gateway::ConfigError::MerchantId => "PHONEPE_MERCHANT_ID",
        parkpay_gateway::ConfigError::InsecureCallback(_) => "PHONEPE_CALLBACK_URL",
        parkpay_gateway::ConfigError::InsecureRedirect(_) => "PARKPAY_REDIRECT_URL",
        parkpay_gateway::ConfigError::NotHttp(_) => "PHONEPE_CALLBACK_URL",
        parkpay_gateway::ConfigError::ZeroTimeout => "PHONEPE_READ_TIMEOUT_MS",
        parkpay_gateway::ConfigError::Client(_) => "PHONEPE_ENV",
    };
    ConfigError::new(var, e.to_string())
}

/// A secret given directly (`inline_var`) or by the name of its SSM parameter (`ssm_var`), or in
/// simulation the simulator's public default.
fn secret_source(
    get: &Get<'_>,
    inline_var: &'static str,
    ssm_var: &'static str,
    sim_default: Option<&str>,
) -> Result<SecretSource, ConfigError> {
    match (get(inline_var), get(ssm_var), sim_default) {
        (Some(_), Some(_), _) => {
            Err(ConfigError::new(inline_var, format!("give only one of {inline_var} and {ssm_var}")))
        }
        (Some(v), None, _) => Ok(SecretSource::Inline(SecretString::from(v))),
        (None, Some(parameter), _) => Ok(SecretSource::Ssm { parameter }),
        (None, None, Some(d)) => Ok(SecretSource::Inline(SecretString::from(d.to_owned()))),
        (None, None, None) => Err(ConfigError::new(inline_var, format!("is required (or {ssm_var})"))),
    }
}

fn v2_settings(get: &Get<'_>, common: &Common, merchant_id: Option<String>) -> Result<V2Settings, ConfigError> {
    use parkpay_checksum::conformance as sim;
    let simulation = common.simulation;
    let client_id = get("PHONEPE_CLIENT_ID")
        .or_else(|| simulation.then(|| sim::SIMULATOR_CLIENT_ID.to_owned()))
        .ok_or_else(|| ConfigError::new("PHONEPE_CLIENT_ID", "is required with PHONEPE_API_VERSION=v2"))?;
    let client_version = match get("PHONEPE_CLIENT_VERSION") {
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| ConfigError::new("PHONEPE_CLIENT_VERSION", "must be a positive whole number"))?,
        None if simulation => sim::SIMULATOR_CLIENT_VERSION,
        None => {
            return Err(ConfigError::new(
                "PHONEPE_CLIENT_VERSION",
                "is required with PG v2 (PhonePe's dashboard shows it beside the client id; 1 in the sandbox)",
            ));
        }
    };
    let sim_default = |d: &'static str| simulation.then_some(d);
    let client_secret = secret_source(
        get,
        "PHONEPE_CLIENT_SECRET",
        "PHONEPE_CLIENT_SECRET_SSM_PARAMETER",
        sim_default(sim::SIMULATOR_CLIENT_SECRET),
    )?;
    let webhook_password = secret_source(
        get,
        "PHONEPE_WEBHOOK_PASSWORD",
        "PHONEPE_WEBHOOK_PASSWORD_SSM_PARAMETER",
        sim_default(sim::SIMULATOR_WEBHOOK_PASSWORD),
    )?;
    let username = get("PHONEPE_WEBHOOK_USERNAME")
        .or_else(|| simulation.then(|| sim::SIMULATOR_WEBHOOK_USERNAME.to_owned()))
        .ok_or_else(|| {
            ConfigError::new("PHONEPE_WEBHOOK_USERNAME", "is required with PG v2 (as set on PhonePe's dashboard)")
        })?;
    // Validation needs some secret; placeholders are replaced before anything is sent.
    let placeholder = || SecretString::from("placeholder".to_owned());
    let secret = client_secret.inline().cloned().unwrap_or_else(placeholder);
    let password = webhook_password.inline().cloned().unwrap_or_else(placeholder);
    let mut phonepe = PhonePeV2Config::new(
        common.environment.clone(),
        client_id,
        client_version,
        secret,
        WebhookCredentials::new(username, password),
    )
    // PhonePe closes the order when we stop waiting for it.
    .with_payment_timeout(Duration::from_millis(crate::service::PAYMENT_TTL_MS as u64))
    .with_timeouts(common.timeouts.0, common.timeouts.1);
    if let Some(m) = merchant_id {
        phonepe = phonepe.with_merchant_id(m);
    }
    if matches!(common.environment, Environment::Production) && common.redirect_url.scheme() != "https" {
        return Err(ConfigError::new("PARKPAY_REDIRECT_URL", "must be https in PRODUCTION"));
    }
    phonepe.validate().map_err(|e| match e {
        V2ConfigError::ClientId => ConfigError::new("PHONEPE_CLIENT_ID", e.to_string()),
        V2ConfigError::ClientVersion => ConfigError::new("PHONEPE_CLIENT_VERSION", e.to_string()),
        V2ConfigError::ClientSecret => ConfigError::new("PHONEPE_CLIENT_SECRET", e.to_string()),
        V2ConfigError::PaymentTimeout => ConfigError::new("PHONEPE_API_VERSION", e.to_string()),
        V2ConfigError::Common(c) => common_error(c),
    })?;
    Ok(V2Settings { phonepe, client_secret, webhook_password })
}

/// `PHONEPE_SALT_KEYS`: `index:key,index:key`, signed with `PHONEPE_SALT_INDEX` (required when
/// there is more than one key; it must be one of them). Errors never show a key.
fn salt_key_list(text: &str, active: Option<SaltIndex>) -> Result<SaltKeys, ConfigError> {
    SaltKeys::parse_list(text, active).map_err(|e| match e {
        KeyError::ActiveMissing(i) => {
            ConfigError::new("PHONEPE_SALT_INDEX", format!("names index {i}, which PHONEPE_SALT_KEYS does not hold"))
        }
        KeyError::NoActive => ConfigError::new(
            "PHONEPE_SALT_INDEX",
            "is required with several PHONEPE_SALT_KEYS: it names the index that signs requests",
        ),
        other => ConfigError::new("PHONEPE_SALT_KEYS", format!("{other} (the form is index:key,index:key)")),
    })
}

fn parse_url(var: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| ConfigError::new(var, format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(var, "must be an http or https URL"));
    }
    Ok(url)
}

fn parse_millis(var: &'static str, value: &str) -> Result<Duration, ConfigError> {
    match value.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(ConfigError::new(var, "must be a positive number of milliseconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(&|k| map.get(k).cloned())
    }

    const PROD: &[(&str, &str)] = &[
        ("PHONEPE_ENV", "PRODUCTION"),
        ("PHONEPE_MERCHANT_ID", "M123"),
        ("PHONEPE_SALT_KEY", "top-secret-salt"),
        ("PHONEPE_SALT_INDEX", "2"),
        ("PHONEPE_CALLBACK_URL", "https://api.example/api/payment/callback/phonepe/"),
        ("PARKPAY_REDIRECT_URL", "https://app.example/paid"),
    ];

    #[test]
    fn core_settings_need_no_phonepe_setting() {
        let core = load_core(&[("PARKPAY_TABLE", "t1")]).unwrap();
        assert_eq!(core.table, "t1");
        assert!(load_core(&[]).is_ok());
        assert_eq!(load_core(&[("PARKPAY_LOTS_JSON", "{")]).unwrap_err().var, "PARKPAY_LOTS_JSON");
        // ... while the full settings do need PhonePe's.
        assert!(load(&[("PARKPAY_TABLE", "t1")]).is_err());
    }

    fn load_core(pairs: &[(&str, &str)]) -> Result<CoreSettings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        CoreSettings::from_lookup(&|k| map.get(k).cloned())
    }

    #[test]
    fn production_settings() {
        let s = load(PROD).unwrap();
        assert_eq!(s.environment(), &Environment::Production);
        assert_eq!(s.v1().unwrap().inline_salt_keys().unwrap().active_index(), SaltIndex::new(2));
        assert!(!format!("{s:?}").contains("top-secret-salt"));
    }

    #[test]
    fn each_bad_setting_is_named() {
        let with = |k: &str, v: &str| {
            let mut p: Vec<(&str, &str)> = PROD.iter().copied().filter(|(key, _)| *key != k).collect();
            if !v.is_empty() {
                p.push((k, v));
            }
            load(&p).map(|_| ()).unwrap_err().var
        };
        assert_eq!(with("PHONEPE_ENV", "LIVE"), "PHONEPE_ENV");
        assert_eq!(with("PHONEPE_ENV", ""), "PHONEPE_ENV");
        assert_eq!(with("PHONEPE_MERCHANT_ID", ""), "PHONEPE_MERCHANT_ID");
        assert_eq!(with("PHONEPE_SALT_KEY", ""), "PHONEPE_SALT_KEY");
        assert_eq!(with("PHONEPE_SALT_INDEX", "one"), "PHONEPE_SALT_INDEX");
        assert_eq!(with("PHONEPE_CALLBACK_URL", "http://api.example/cb"), "PHONEPE_CALLBACK_URL");
        assert_eq!(with("PHONEPE_CALLBACK_URL", "not a url"), "PHONEPE_CALLBACK_URL");
        assert_eq!(with("PARKPAY_REDIRECT_URL", ""), "PARKPAY_REDIRECT_URL");
        assert_eq!(with("PHONEPE_SIMULATION_MODE", "maybe"), "PHONEPE_SIMULATION_MODE");
        assert_eq!(with("PARKPAY_LOTS_JSON", "{"), "PARKPAY_LOTS_JSON");
        assert_eq!(with("PHONEPE_READ_TIMEOUT_MS", "0"), "PHONEPE_READ_TIMEOUT_MS");
    }

    #[test]
    fn salt_from_a_secret_store() {
        let without: Vec<(&str, &str)> = PROD.iter().copied().filter(|(k, _)| *k != "PHONEPE_SALT_KEY").collect();
        let mut ssm = without.clone();
        ssm.push(("PHONEPE_SALT_KEY_SSM_PARAMETER", "/parkpay/phonepe/salt"));
        let s = load(&ssm).unwrap();
        assert!(
            matches!(&s.v1().unwrap().salt, SaltSource::Ssm { parameter, index } if parameter == "/parkpay/phonepe/salt" && index.get() == 2)
        );
        assert!(s.v1().unwrap().inline_salt_keys().is_none());
        let mut sm = without.clone();
        sm.push(("PHONEPE_SALT_KEY_SECRET_ID", "parkpay/phonepe"));
        assert!(matches!(load(&sm).unwrap().v1.unwrap().salt, SaltSource::SecretsManager { .. }));
        let mut both = ssm.clone();
        both.push(("PHONEPE_SALT_KEY", "x"));
        assert_eq!(load(&both).unwrap_err().var, "PHONEPE_SALT_KEY");
    }

    #[test]
    fn several_salt_keys_inline() {
        let without: Vec<(&str, &str)> = PROD.iter().copied().filter(|(k, _)| !k.starts_with("PHONEPE_SALT")).collect();
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut p = without.clone();
            p.extend_from_slice(extra);
            load(&p)
        };
        let msg = parkpay_checksum::Message::Path { path: "/pg/v1/status/M123/T1" };
        let one = |k: &str, i: u32| SaltKeys::single(SaltIndex::new(i), SaltKey::new(k).unwrap());

        // both keys verify; the named index signs
        let s =
            with(&[("PHONEPE_SALT_KEYS", "1:old-secret-key,2:new-secret-key"), ("PHONEPE_SALT_INDEX", "2")]).unwrap();
        let keys = s.v1().unwrap().inline_salt_keys().unwrap();
        assert_eq!(keys.active_index(), SaltIndex::new(2));
        assert_eq!(keys.sign(msg), one("new-secret-key", 2).sign(msg));
        for (k, i) in [("old-secret-key", 1), ("new-secret-key", 2)] {
            assert_eq!(keys.verify(&one(k, i).sign(msg).to_string(), msg), Ok(SaltIndex::new(i)));
        }
        assert_eq!(s.v1().unwrap().gateway_config(keys.clone()).salt_keys.active_index(), SaltIndex::new(2));
        assert!(!format!("{s:?}").contains("secret-key"));

        // one key in the list signs without PHONEPE_SALT_INDEX
        let s = with(&[("PHONEPE_SALT_KEYS", "2:new-secret-key")]).unwrap();
        assert_eq!(s.v1().unwrap().inline_salt_keys().unwrap().active_index(), SaltIndex::new(2));

        // what is refused, naming the variable and never the key
        for (extra, var) in [
            (&[("PHONEPE_SALT_KEYS", "1:old-secret-key,2:new-secret-key")][..], "PHONEPE_SALT_INDEX"),
            (&[("PHONEPE_SALT_KEYS", "1:old-secret-key"), ("PHONEPE_SALT_INDEX", "2")][..], "PHONEPE_SALT_INDEX"),
            (&[("PHONEPE_SALT_KEYS", "old-secret-key")][..], "PHONEPE_SALT_KEYS"),
            (
                &[("PHONEPE_SALT_KEYS", "1:old-secret-key,1:new-secret-key"), ("PHONEPE_SALT_INDEX", "1")][..],
                "PHONEPE_SALT_KEYS",
            ),
            (
                &[("PHONEPE_SALT_KEYS", "1:old-secret-key"), ("PHONEPE_SALT_KEY", "x-secret-key")][..],
                "PHONEPE_SALT_KEY",
            ),
            (
                &[("PHONEPE_SALT_KEYS", "1:old-secret-key"), ("PHONEPE_SALT_KEY_SSM_PARAMETER", "/p")][..],
                "PHONEPE_SALT_KEY",
            ),
        ] {
            let e = with(extra).map(|_| ()).unwrap_err();
            assert_eq!(e.var, var, "{extra:?}: {e}");
            assert!(!e.to_string().contains("secret-key"), "{e}");
        }
    }

    #[test]
    fn original_api_key_name_is_accepted() {
        let mut p: Vec<(&str, &str)> = PROD.iter().copied().filter(|(k, _)| *k != "PHONEPE_SALT_KEY").collect();
        p.push(("PHONEPE_API_KEY", "legacy-salt"));
        assert!(load(&p).is_ok());
    }

    #[test]
    fn simulation_defaults_to_the_sandbox_merchant() {
        let s = load(&[
            ("PHONEPE_SIMULATION_MODE", "true"),
            ("PHONEPE_SIMULATOR_URL", "http://127.0.0.1:3000/_phonepe"),
            ("PHONEPE_CALLBACK_URL", "http://127.0.0.1:3000/api/payment/callback/phonepe/"),
            ("PARKPAY_REDIRECT_URL", "http://127.0.0.1:3000/payment-complete/"),
        ])
        .unwrap();
        assert_eq!(s.merchant_id(), Some(SIM_MERCHANT_ID));
        assert_eq!(s.lots.lots().len(), 3);
        assert_eq!(s.table, "parkpay");
    }

    const PROD_V2: &[(&str, &str)] = &[
        ("PHONEPE_API_VERSION", "v2"),
        ("PHONEPE_ENV", "PRODUCTION"),
        ("PHONEPE_CLIENT_ID", "PARKPAYCLIENT"),
        ("PHONEPE_CLIENT_VERSION", "3"),
        ("PHONEPE_CLIENT_SECRET_SSM_PARAMETER", "/parkpay/phonepe/client-secret"),
        ("PHONEPE_WEBHOOK_USERNAME", "parkpay-hooks"),
        ("PHONEPE_WEBHOOK_PASSWORD_SSM_PARAMETER", "/parkpay/phonepe/webhook-password"),
        ("PARKPAY_REDIRECT_URL", "https://app.example/paid"),
    ];

    #[test]
    fn v2_alone_needs_no_v1_setting() {
        let s = load(PROD_V2).unwrap();
        assert_eq!(s.api, GatewayApi::V2);
        assert!(s.v1().is_none(), "no salt key given: v1 is not configured");
        let v2 = s.v2().unwrap();
        assert_eq!((v2.client_id(), v2.token_name().as_str()), ("PARKPAYCLIENT", "phonepe-v2#PARKPAYCLIENT"));
        assert!(
            matches!(&v2.client_secret, SecretSource::Ssm { parameter } if parameter == "/parkpay/phonepe/client-secret")
        );
        assert!(v2.inline_config().is_none());
        let cfg =
            v2.gateway_config(SecretString::from("cs-secret".to_owned()), SecretString::from("wh-secret".to_owned()));
        assert_eq!((cfg.client_version, cfg.webhook.username()), (3, "parkpay-hooks"));
        // PhonePe's expireAfter is our payment timeout.
        assert_eq!(cfg.payment_timeout.as_millis() as i64, crate::service::PAYMENT_TTL_MS);
        assert!(
            cfg.webhook
                .verify(
                    &WebhookCredentials::new("parkpay-hooks", SecretString::from("wh-secret".to_owned()))
                        .authorization()
                )
                .is_ok()
        );
        assert_eq!(s.merchant_id(), None);
        let shown = format!("{s:?} {cfg:?}");
        assert!(!shown.contains("cs-secret") && !shown.contains("wh-secret"), "no secret in Debug: {shown}");
    }

    #[test]
    fn both_apis_while_switching() {
        // v2 in use, the v1 salt key still given: v1 stays configured for v1's records.
        let mut p: Vec<(&str, &str)> = PROD_V2.to_vec();
        p.extend([
            ("PHONEPE_MERCHANT_ID", "M123"),
            ("PHONEPE_SALT_KEY_SSM_PARAMETER", "/parkpay/phonepe/salt"),
            ("PHONEPE_CALLBACK_URL", "https://api.example/api/payment/callback/phonepe/"),
        ]);
        let s = load(&p).unwrap();
        assert_eq!(s.api, GatewayApi::V2);
        assert!(s.v1().is_some() && s.v2().is_some());
        // and back: v1 in use, the v2 client still given
        let mut back: Vec<(&str, &str)> = PROD.to_vec();
        back.extend(
            PROD_V2
                .iter()
                .copied()
                .filter(|(k, _)| k.starts_with("PHONEPE_CLIENT") || k.starts_with("PHONEPE_WEBHOOK")),
        );
        let s = load(&back).unwrap();
        assert_eq!(s.api, GatewayApi::V1);
        assert!(s.v1().is_some() && s.v2().is_some());
        // v1 alone, as before
        let s = load(PROD).unwrap();
        assert!(s.v1().is_some() && s.v2().is_none());
    }

    #[test]
    fn each_bad_v2_setting_is_named() {
        let with = |k: &str, v: &str| {
            let mut p: Vec<(&str, &str)> = PROD_V2.iter().copied().filter(|(key, _)| *key != k).collect();
            if !v.is_empty() {
                p.push((k, v));
            }
            load(&p).map(|_| ()).unwrap_err().var
        };
        assert_eq!(with("PHONEPE_API_VERSION", "v3"), "PHONEPE_API_VERSION");
        assert_eq!(with("PHONEPE_CLIENT_ID", ""), "PHONEPE_CLIENT_ID");
        assert_eq!(with("PHONEPE_CLIENT_ID", "has space"), "PHONEPE_CLIENT_ID");
        assert_eq!(with("PHONEPE_CLIENT_VERSION", ""), "PHONEPE_CLIENT_VERSION");
        assert_eq!(with("PHONEPE_CLIENT_VERSION", "0"), "PHONEPE_CLIENT_VERSION");
        assert_eq!(with("PHONEPE_CLIENT_SECRET_SSM_PARAMETER", ""), "PHONEPE_CLIENT_SECRET");
        assert_eq!(with("PHONEPE_CLIENT_SECRET", "both-given"), "PHONEPE_CLIENT_SECRET");
        assert_eq!(with("PHONEPE_WEBHOOK_USERNAME", ""), "PHONEPE_WEBHOOK_USERNAME");
        assert_eq!(with("PHONEPE_WEBHOOK_PASSWORD_SSM_PARAMETER", ""), "PHONEPE_WEBHOOK_PASSWORD");
        assert_eq!(with("PARKPAY_REDIRECT_URL", "http://app.example/paid"), "PARKPAY_REDIRECT_URL");
        assert_eq!(with("PHONEPE_MERCHANT_ID", "has space"), "PHONEPE_MERCHANT_ID");
        // a v1 setting given with v2 in use makes v1 wanted, and then complete
        assert_eq!(with("PHONEPE_SALT_KEY", "k"), "PHONEPE_MERCHANT_ID");
    }

    #[test]
    fn v2_simulation_defaults_to_the_simulator_client() {
        let s = load(&[
            ("PHONEPE_API_VERSION", "V2"),
            ("PHONEPE_SIMULATION_MODE", "true"),
            ("PHONEPE_SIMULATOR_URL", "http://127.0.0.1:3000/_phonepe"),
            ("PARKPAY_REDIRECT_URL", "http://127.0.0.1:3000/payment-complete/"),
        ])
        .unwrap();
        assert_eq!(s.api, GatewayApi::V2);
        assert!(s.v1().is_none(), "no callback URL: v1 is not configured");
        let cfg = s.v2().unwrap().inline_config().unwrap();
        assert_eq!(cfg.client_id, parkpay_checksum::conformance::SIMULATOR_CLIENT_ID);
        assert_eq!(cfg.webhook.authorization(), parkpay_checksum::conformance::WEBHOOK_AUTHORIZATION);
        assert_eq!(cfg.merchant_id.as_deref(), Some(SIM_MERCHANT_ID));
    }
}
