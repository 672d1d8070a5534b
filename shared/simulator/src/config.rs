//! Simulator settings, and the binary's environment variables.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use parkpay_checksum::{KeyError, SaltIndex, SaltKey, SaltKeys};
use url::Url;

/// PhonePe's public sandbox merchant (`docs/phonepe.md` §5).
pub const SANDBOX_MERCHANT_ID: &str = parkpay_checksum::conformance::SANDBOX_MERCHANT_ID;
/// The public sandbox salt key that goes with [`SANDBOX_MERCHANT_ID`]. Public, not a secret.
pub const SANDBOX_SALT_KEY: &str = parkpay_checksum::conformance::SANDBOX_SALT_KEY;
pub const SANDBOX_SALT_INDEX: SaltIndex = SaltIndex::new(parkpay_checksum::conformance::SANDBOX_SALT_INDEX);
/// Where the binary listens unless `PARKPAY_SIM_ADDR` says otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8090";

/// Everything a [`crate::Simulator`] needs. `Debug` is safe to log: salt keys are redacted.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Merchant ids and their salt keys (several indices per merchant are fine).
    pub merchants: Vec<(String, SaltKeys)>,
    /// Base of the links the simulator hands out (the hosted pay page). `None`: the address
    /// [`crate::Simulator::spawn`] bound, or else the request's `Host` header. Set it when the
    /// router is mounted under a path prefix or reached through a proxy.
    pub public_base_url: Option<Url>,
    /// Extra callback attempts after a non-2xx answer or a connection error.
    pub callback_retries: u32,
    /// Wait before the first retry; doubled for each further retry (capped at 60 s).
    pub callback_backoff: Duration,
    /// Longest wait for one callback attempt.
    pub callback_timeout: Duration,
    /// How long the pay page (and `complete`) waits for the first callback attempt before
    /// answering, so programs see deterministic behaviour.
    pub callback_first_attempt_wait: Duration,
    /// A refund is PENDING for this long, then settles (with its callback).
    pub refund_settle_delay: Duration,
    /// A refund asked for longer than this after the payment completed is
    /// `REVERSAL_WINDOW_EXCEEDED`.
    pub reversal_window: Duration,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self::sandbox()
    }
}

impl SimulatorConfig {
    /// PhonePe's public sandbox credentials (`PGTESTPAYUAT`, index 1) and default timings:
    /// 3 callback retries from 1 s backoff, 5 s per attempt, 5 s first-attempt wait, refunds
    /// settle after 2 s, a 30-day reversal window.
    pub fn sandbox() -> Self {
        let key = SaltKey::new(SANDBOX_SALT_KEY).expect("the sandbox salt constant is not empty");
        Self::for_merchant(SANDBOX_MERCHANT_ID, SaltKeys::single(SANDBOX_SALT_INDEX, key))
    }

    /// One merchant, default timings.
    pub fn for_merchant(merchant_id: impl Into<String>, keys: SaltKeys) -> Self {
        Self {
            merchants: vec![(merchant_id.into(), keys)],
            public_base_url: None,
            callback_retries: 3,
            callback_backoff: Duration::from_secs(1),
            callback_timeout: Duration::from_secs(5),
            callback_first_attempt_wait: Duration::from_secs(5),
            refund_settle_delay: Duration::from_secs(2),
            reversal_window: Duration::from_secs(30 * 24 * 3600),
        }
    }

    /// Short timings for tests: 20 ms callback backoff, 2 s per attempt, refunds settle after
    /// 50 ms.
    pub fn with_fast_timings(mut self) -> Self {
        self.callback_backoff = Duration::from_millis(20);
        self.callback_timeout = Duration::from_secs(2);
        self.refund_settle_delay = Duration::from_millis(50);
        self
    }

    pub fn validate(&self) -> Result<(), SimConfigError> {
        if self.merchants.is_empty() {
            return Err(SimConfigError::NoMerchants);
        }
        for (i, (id, _)) in self.merchants.iter().enumerate() {
            if !valid_merchant_id(id) {
                return Err(SimConfigError::MerchantId(id.clone()));
            }
            if self.merchants[..i].iter().any(|(other, _)| other == id) {
                return Err(SimConfigError::DuplicateMerchant(id.clone()));
            }
        }
        if let Some(u) = self.public_base_url.as_ref().filter(|u| !matches!(u.scheme(), "http" | "https")) {
            return Err(SimConfigError::PublicUrl(u.to_string()));
        }
        if self.callback_timeout.is_zero() {
            return Err(SimConfigError::ZeroCallbackTimeout);
        }
        Ok(())
    }
}

/// 1 to 37 characters of `[A-Za-z0-9_-]` (PhonePe: "below 38").
pub(crate) fn valid_merchant_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 37 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimConfigError {
    #[error("at least one merchant is required")]
    NoMerchants,
    #[error("merchant id {0:?} must be 1 to 37 characters of A-Z, a-z, 0-9, '_' and '-'")]
    MerchantId(String),
    #[error("merchant {0:?} is configured twice")]
    DuplicateMerchant(String),
    #[error("public base URL {0:?} must be http or https")]
    PublicUrl(String),
    #[error("the callback timeout must be more than zero")]
    ZeroCallbackTimeout,
    #[error("could not build the callback HTTP client: {0}")]
    HttpClient(String),
}

/// A bad environment variable: `Display` is the one line the binary prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var} {problem}")]
pub struct EnvError {
    pub var: &'static str,
    pub problem: String,
}

/// What the binary runs with.
#[derive(Debug, Clone)]
pub struct EnvSettings {
    pub addr: SocketAddr,
    pub config: SimulatorConfig,
}

/// Read the binary's settings from the process environment. See [`settings_from`].
pub fn settings_from_env() -> Result<EnvSettings, EnvError> {
    settings_from(|name| std::env::var_os(name))
}

/// Read the binary's settings through `get` (tests pass a map):
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `PARKPAY_SIM_ADDR` | `127.0.0.1:8090` | listen address |
/// | `PHONEPE_MERCHANT_ID` | `PGTESTPAYUAT` | the merchant the simulator accepts |
/// | `PHONEPE_SALT_KEY` (or `PHONEPE_API_KEY`) | the sandbox salt | its salt key |
/// | `PHONEPE_SALT_KEYS` | | instead: several keys, `index:key,index:key` (a key rotation); requests signed with any of them are accepted |
/// | `PHONEPE_SALT_INDEX` | `1` (with `PHONEPE_SALT_KEYS` of one key: its index) | the salt key's index: the one that signs callbacks |
/// | `PARKPAY_SIM_PUBLIC_URL` | `http://<listen address>` | base of the pay page links |
/// | `PARKPAY_SIM_REFUND_SETTLE_MS` | `2000` | how long refunds stay PENDING |
/// | `PARKPAY_SIM_CALLBACK_RETRIES` | `3` | extra callback attempts |
///
/// A variable that is set must be valid (an empty value is invalid); the error names it and
/// never shows a salt key.
pub fn settings_from(get: impl Fn(&str) -> Option<OsString>) -> Result<EnvSettings, EnvError> {
    let read = |var: &'static str| -> Result<Option<String>, EnvError> {
        match get(var) {
            None => Ok(None),
            Some(v) => match v.into_string() {
                Ok(s) if s.is_empty() => Err(EnvError { var, problem: "is set but empty".into() }),
                Ok(s) => Ok(Some(s)),
                Err(_) => Err(EnvError { var, problem: "is not valid UTF-8".into() }),
            },
        }
    };

    let addr_text = read("PARKPAY_SIM_ADDR")?.unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let addr: SocketAddr = addr_text.parse().map_err(|_| EnvError {
        var: "PARKPAY_SIM_ADDR",
        problem: format!("must be an IP address and port such as {DEFAULT_ADDR} (got {addr_text:?})"),
    })?;

    let merchant = read("PHONEPE_MERCHANT_ID")?.unwrap_or_else(|| SANDBOX_MERCHANT_ID.to_owned());
    if !valid_merchant_id(&merchant) {
        return Err(EnvError {
            var: "PHONEPE_MERCHANT_ID",
            problem: "must be 1 to 37 characters of A-Z, a-z, 0-9, '_' and '-'".into(),
        });
    }

    let named_index = match read("PHONEPE_SALT_INDEX")? {
        None => None,
        Some(s) => Some(s.parse::<SaltIndex>().map_err(|_| EnvError {
            var: "PHONEPE_SALT_INDEX",
            problem: format!("must be 1 to 9 decimal digits (got {s:?})"),
        })?),
    };
    let index = named_index.unwrap_or(SANDBOX_SALT_INDEX);

    if let Some(list) = read("PHONEPE_SALT_KEYS")? {
        if read("PHONEPE_SALT_KEY")?.is_some() || read("PHONEPE_API_KEY")?.is_some() {
            return Err(EnvError {
                var: "PHONEPE_SALT_KEYS",
                problem: "and PHONEPE_SALT_KEY (or PHONEPE_API_KEY) are both set: set only one".into(),
            });
        }
        let keys = SaltKeys::parse_list(&list, named_index).map_err(|e| match e {
            KeyError::NoActive | KeyError::ActiveMissing(_) => EnvError {
                var: "PHONEPE_SALT_INDEX",
                problem: format!("must name one of the PHONEPE_SALT_KEYS indices ({e})"),
            },
            other => EnvError { var: "PHONEPE_SALT_KEYS", problem: format!("is not index:key,index:key ({other})") },
        })?;
        return finish(addr, SimulatorConfig::for_merchant(merchant, keys), &read);
    }

    let salt = match (read("PHONEPE_SALT_KEY")?, read("PHONEPE_API_KEY")?) {
        (Some(a), Some(b)) if a != b => {
            return Err(EnvError {
                var: "PHONEPE_SALT_KEY",
                problem: "and PHONEPE_API_KEY are both set and differ: set only one".into(),
            });
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => SANDBOX_SALT_KEY.to_owned(),
    };
    let salt = SaltKey::new(salt).map_err(|_| EnvError { var: "PHONEPE_SALT_KEY", problem: "is empty".into() })?;
    finish(addr, SimulatorConfig::for_merchant(merchant, SaltKeys::single(index, salt)), &read)
}

/// The settings after the merchant and its keys.
fn finish(
    addr: SocketAddr,
    mut config: SimulatorConfig,
    read: &dyn Fn(&'static str) -> Result<Option<String>, EnvError>,
) -> Result<EnvSettings, EnvError> {
    if let Some(s) = read("PARKPAY_SIM_PUBLIC_URL")? {
        let url = Url::parse(&s).ok().filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        config.public_base_url = Some(url.ok_or(EnvError {
            var: "PARKPAY_SIM_PUBLIC_URL",
            problem: format!("must be an http or https URL (got {s:?})"),
        })?);
    }
    if let Some(s) = read("PARKPAY_SIM_REFUND_SETTLE_MS")? {
        let ms: u64 = s.parse().ok().filter(|ms| *ms <= 3_600_000).ok_or(EnvError {
            var: "PARKPAY_SIM_REFUND_SETTLE_MS",
            problem: format!("must be a whole number of milliseconds up to 3600000 (got {s:?})"),
        })?;
        config.refund_settle_delay = Duration::from_millis(ms);
    }
    if let Some(s) = read("PARKPAY_SIM_CALLBACK_RETRIES")? {
        config.callback_retries = s.parse().ok().filter(|n| *n <= 20).ok_or(EnvError {
            var: "PARKPAY_SIM_CALLBACK_RETRIES",
            problem: format!("must be a whole number from 0 to 20 (got {s:?})"),
        })?;
    }
    Ok(EnvSettings { addr, config })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use parkpay_checksum::Message;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<EnvSettings, EnvError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        settings_from(|k| map.get(k).map(OsString::from))
    }

    #[test]
    fn defaults_are_the_public_sandbox() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.addr, "127.0.0.1:8090".parse().unwrap());
        let (id, keys) = &s.config.merchants[0];
        assert_eq!(id, "PGTESTPAYUAT");
        assert_eq!(keys.active_index(), SaltIndex::new(1));
        // the docs' status vector (docs/phonepe.md §5) verifies with the default salt
        let path = parkpay_checksum::conformance::STATUS_PATH;
        assert!(keys.verify(parkpay_checksum::conformance::STATUS_X_VERIFY, Message::Path { path }).is_ok());
        assert!(s.config.validate().is_ok());
    }

    #[test]
    fn overrides_and_the_original_key_name() {
        let s = settings(&[
            ("PARKPAY_SIM_ADDR", "0.0.0.0:9999"),
            ("PHONEPE_MERCHANT_ID", "M1"),
            ("PHONEPE_API_KEY", "k"),
            ("PHONEPE_SALT_INDEX", "3"),
            ("PARKPAY_SIM_PUBLIC_URL", "https://sim.example/x"),
            ("PARKPAY_SIM_REFUND_SETTLE_MS", "10"),
            ("PARKPAY_SIM_CALLBACK_RETRIES", "0"),
        ])
        .unwrap();
        assert_eq!(s.addr.port(), 9999);
        assert_eq!(s.config.merchants[0].0, "M1");
        assert!(s.config.merchants[0].1.key(SaltIndex::new(3)).is_some());
        assert_eq!(s.config.public_base_url.unwrap().as_str(), "https://sim.example/x");
        assert_eq!(s.config.refund_settle_delay, Duration::from_millis(10));
        assert_eq!(s.config.callback_retries, 0);
        // same value under both names is fine
        assert!(settings(&[("PHONEPE_SALT_KEY", "k"), ("PHONEPE_API_KEY", "k")]).is_ok());
    }

    #[test]
    fn several_keys() {
        let s = settings(&[("PHONEPE_SALT_KEYS", "1:secret-old,2:secret-new"), ("PHONEPE_SALT_INDEX", "2")]).unwrap();
        let keys = &s.config.merchants[0].1;
        assert_eq!(keys.active_index(), SaltIndex::new(2));
        assert!(keys.key(SaltIndex::new(1)).is_some());
        assert_eq!(
            settings(&[("PHONEPE_SALT_KEYS", "3:secret-x")]).unwrap().config.merchants[0].1.active_index(),
            SaltIndex::new(3)
        );
        for (vars, var) in [
            (vec![("PHONEPE_SALT_KEYS", "1:secret-old,2:secret-new")], "PHONEPE_SALT_INDEX"),
            (vec![("PHONEPE_SALT_KEYS", "1:secret-old"), ("PHONEPE_SALT_INDEX", "2")], "PHONEPE_SALT_INDEX"),
            (vec![("PHONEPE_SALT_KEYS", "secret-old")], "PHONEPE_SALT_KEYS"),
            (vec![("PHONEPE_SALT_KEYS", "1:secret-old"), ("PHONEPE_SALT_KEY", "secret-b")], "PHONEPE_SALT_KEYS"),
        ] {
            let e = settings(&vars).unwrap_err();
            assert_eq!(e.var, var, "{vars:?}");
            assert!(!e.to_string().contains("secret-"), "{e}");
        }
    }

    #[test]
    fn each_bad_setting_is_named_and_salts_never_shown() {
        for (vars, var) in [
            (vec![("PARKPAY_SIM_ADDR", "localhost")], "PARKPAY_SIM_ADDR"),
            (vec![("PHONEPE_MERCHANT_ID", "has space")], "PHONEPE_MERCHANT_ID"),
            (vec![("PHONEPE_SALT_KEY", "")], "PHONEPE_SALT_KEY"),
            (vec![("PHONEPE_SALT_KEY", "secret-a"), ("PHONEPE_API_KEY", "secret-b")], "PHONEPE_SALT_KEY"),
            (vec![("PHONEPE_SALT_INDEX", "x")], "PHONEPE_SALT_INDEX"),
            (vec![("PHONEPE_SALT_INDEX", "-1")], "PHONEPE_SALT_INDEX"),
            (vec![("PARKPAY_SIM_PUBLIC_URL", "ftp://x")], "PARKPAY_SIM_PUBLIC_URL"),
            (vec![("PARKPAY_SIM_REFUND_SETTLE_MS", "soon")], "PARKPAY_SIM_REFUND_SETTLE_MS"),
            (vec![("PARKPAY_SIM_CALLBACK_RETRIES", "99")], "PARKPAY_SIM_CALLBACK_RETRIES"),
        ] {
            let e = settings(&vars).unwrap_err();
            assert_eq!(e.var, var);
            let line = e.to_string();
            assert!(line.starts_with(var), "{line}");
            assert!(!line.contains("secret-"), "{line}");
            assert!(!line.contains('\n'));
        }
    }

    #[test]
    fn config_validation() {
        let mut c = SimulatorConfig::sandbox();
        c.merchants.push(c.merchants[0].clone());
        assert_eq!(c.validate(), Err(SimConfigError::DuplicateMerchant("PGTESTPAYUAT".into())));
        c.merchants.clear();
        assert_eq!(c.validate(), Err(SimConfigError::NoMerchants));
        let mut c = SimulatorConfig::sandbox();
        c.merchants[0].0 = "M".repeat(38);
        assert!(matches!(c.validate(), Err(SimConfigError::MerchantId(_))));
        assert!(!format!("{:?}", SimulatorConfig::sandbox()).contains(SANDBOX_SALT_KEY));
    }
}
