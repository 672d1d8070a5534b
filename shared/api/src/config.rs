//! Configuration from environment variables, with the original system's names
//! (`docs/http-api.md`, "Configuration names"). A missing or invalid setting stops
//! start-up with one line naming it. Secrets are wrapped at once and never printed.

use std::time::Duration;

use parkpay_checksum::{KeyError, SaltIndex, SaltKey, SaltKeys};
use parkpay_domain::LotCatalog;
use parkpay_gateway::{Environment, PhonePeV1Config};
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

/// Everything the handlers need besides their clients.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The PhonePe client's settings, with the salt keys when they are inline; when they come
    /// from a secret store, a placeholder replaced by [`Settings::gateway_config`].
    phonepe: PhonePeV1Config,
    pub salt: SaltSource,
    pub lots: LotCatalog,
    /// DynamoDB table (AWS) — unused by the embedded store.
    pub table: String,
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

        let merchant_id = match get("PHONEPE_MERCHANT_ID") {
            Some(m) => m,
            None if simulation => SIM_MERCHANT_ID.to_owned(),
            None => return Err(ConfigError::new("PHONEPE_MERCHANT_ID", "is required")),
        };
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
        let redirect_url = match get("PARKPAY_REDIRECT_URL") {
            Some(u) => parse_url("PARKPAY_REDIRECT_URL", &u)?,
            None => {
                return Err(ConfigError::new(
                    "PARKPAY_REDIRECT_URL",
                    "is required (where the payer returns after paying)",
                ));
            }
        };
        let mut phonepe = PhonePeV1Config::new(environment, merchant_id, salt_keys, callback_url, redirect_url);
        if let Some(ms) = get("PHONEPE_CONNECT_TIMEOUT_MS") {
            phonepe.connect_timeout = parse_millis("PHONEPE_CONNECT_TIMEOUT_MS", &ms)?;
        }
        if let Some(ms) = get("PHONEPE_READ_TIMEOUT_MS") {
            phonepe.read_timeout = parse_millis("PHONEPE_READ_TIMEOUT_MS", &ms)?;
        }
        phonepe.validate().map_err(|e| {
            let var = match e {
                parkpay_gateway::ConfigError::MerchantId => "PHONEPE_MERCHANT_ID",
                parkpay_gateway::ConfigError::InsecureCallback(_) => "PHONEPE_CALLBACK_URL",
                parkpay_gateway::ConfigError::InsecureRedirect(_) => "PARKPAY_REDIRECT_URL",
                parkpay_gateway::ConfigError::NotHttp(_) => "PHONEPE_CALLBACK_URL",
                parkpay_gateway::ConfigError::ZeroTimeout => "PHONEPE_READ_TIMEOUT_MS",
                parkpay_gateway::ConfigError::Client(_) => "PHONEPE_ENV",
            };
            ConfigError::new(var, e.to_string())
        })?;

        let CoreSettings { lots, table } = CoreSettings::from_lookup(env)?;
        Ok(Settings { phonepe, salt, lots, table })
    }

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

    pub fn merchant_id(&self) -> &str {
        &self.phonepe.merchant_id
    }

    pub fn redirect_url(&self) -> &Url {
        &self.phonepe.redirect_url
    }

    pub fn environment(&self) -> &Environment {
        &self.phonepe.environment
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }
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
        assert_eq!(s.inline_salt_keys().unwrap().active_index(), SaltIndex::new(2));
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
            matches!(&s.salt, SaltSource::Ssm { parameter, index } if parameter == "/parkpay/phonepe/salt" && index.get() == 2)
        );
        assert!(s.inline_salt_keys().is_none());
        let mut sm = without.clone();
        sm.push(("PHONEPE_SALT_KEY_SECRET_ID", "parkpay/phonepe"));
        assert!(matches!(load(&sm).unwrap().salt, SaltSource::SecretsManager { .. }));
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
        let keys = s.inline_salt_keys().unwrap();
        assert_eq!(keys.active_index(), SaltIndex::new(2));
        assert_eq!(keys.sign(msg), one("new-secret-key", 2).sign(msg));
        for (k, i) in [("old-secret-key", 1), ("new-secret-key", 2)] {
            assert_eq!(keys.verify(&one(k, i).sign(msg).to_string(), msg), Ok(SaltIndex::new(i)));
        }
        assert_eq!(s.gateway_config(keys.clone()).salt_keys.active_index(), SaltIndex::new(2));
        assert!(!format!("{s:?}").contains("secret-key"));

        // one key in the list signs without PHONEPE_SALT_INDEX
        let s = with(&[("PHONEPE_SALT_KEYS", "2:new-secret-key")]).unwrap();
        assert_eq!(s.inline_salt_keys().unwrap().active_index(), SaltIndex::new(2));

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
        assert_eq!(s.merchant_id(), SIM_MERCHANT_ID);
        assert_eq!(s.lots.lots().len(), 3);
        assert_eq!(s.table, "parkpay");
    }
}
