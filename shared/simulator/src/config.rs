//! Simulator settings, and the binary's environment variables.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use parkpay_checksum::{KeyError, SaltIndex, SaltKey, SaltKeys, WebhookCredentials};
use secrecy::SecretString;
use url::Url;

/// PhonePe's public sandbox merchant (`docs/phonepe.md` §5).
pub const SANDBOX_MERCHANT_ID: &str = parkpay_checksum::conformance::SANDBOX_MERCHANT_ID;
/// The public sandbox salt key that goes with [`SANDBOX_MERCHANT_ID`]. Public, not a secret.
pub const SANDBOX_SALT_KEY: &str = parkpay_checksum::conformance::SANDBOX_SALT_KEY;
pub const SANDBOX_SALT_INDEX: SaltIndex = SaltIndex::new(parkpay_checksum::conformance::SANDBOX_SALT_INDEX);
/// The simulator's default PG v2 OAuth client id. Public, not a secret.
pub const SANDBOX_CLIENT_ID: &str = parkpay_checksum::conformance::SIMULATOR_CLIENT_ID;
/// The simulator's default PG v2 OAuth client secret. Public, not a secret.
pub const SANDBOX_CLIENT_SECRET: &str = parkpay_checksum::conformance::SIMULATOR_CLIENT_SECRET;
/// PhonePe's sandbox (UAT) client version.
pub const SANDBOX_CLIENT_VERSION: u32 = parkpay_checksum::conformance::SIMULATOR_CLIENT_VERSION;
/// The default PG v2 webhook username and password: PhonePe's own example pair, so that the
/// default webhook `Authorization` is the published test vector
/// ([`parkpay_checksum::conformance::WEBHOOK_AUTHORIZATION`]).
pub const SANDBOX_WEBHOOK_USERNAME: &str = parkpay_checksum::conformance::SIMULATOR_WEBHOOK_USERNAME;
pub const SANDBOX_WEBHOOK_PASSWORD: &str = parkpay_checksum::conformance::SIMULATOR_WEBHOOK_PASSWORD;
/// How long a PG v2 access token lives unless configured otherwise.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Where the binary listens unless `PARKPAY_SIM_ADDR` says otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8090";

/// PG v2 (Standard Checkout with OAuth) settings. `Debug` is safe to log: the client secret and
/// the webhook password are redacted.
#[derive(Debug, Clone)]
pub struct V2Settings {
    /// The `merchantId` webhooks carry (v2 requests name no merchant: the OAuth client does).
    pub merchant_id: String,
    /// The only OAuth client the token endpoint accepts: id, version and secret.
    pub client_id: String,
    pub client_version: u32,
    pub client_secret: SecretString,
    /// Username and password whose `sha256("username:password")` (lowercase hex) every webhook
    /// carries as its `Authorization` header.
    pub webhook: WebhookCredentials,
    /// Where webhooks are POSTed; `None`: none are sent. [`crate::Simulator::set_webhook_url`]
    /// changes it while running.
    pub webhook_url: Option<Url>,
    /// How long an access token is valid (whole seconds; at least 1 s). `issued_at` is the
    /// current epoch second and `expires_at` that plus the lifetime; the token is refused from
    /// `expires_at` on.
    pub token_lifetime: Duration,
}

impl V2Settings {
    /// The simulator's public test client ([`SANDBOX_CLIENT_ID`], …), webhooks signed with
    /// PhonePe's example pair and sent nowhere, tokens valid for an hour.
    pub fn sandbox(merchant_id: impl Into<String>) -> Self {
        Self {
            merchant_id: merchant_id.into(),
            client_id: SANDBOX_CLIENT_ID.to_owned(),
            client_version: SANDBOX_CLIENT_VERSION,
            client_secret: SecretString::from(SANDBOX_CLIENT_SECRET),
            webhook: WebhookCredentials::new(SANDBOX_WEBHOOK_USERNAME, SecretString::from(SANDBOX_WEBHOOK_PASSWORD)),
            webhook_url: None,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
        }
    }
}

/// Everything a [`crate::Simulator`] needs. `Debug` is safe to log: salt keys, the v2 client
/// secret and the webhook password are redacted.
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
    /// PG v2: the OAuth client, webhooks and token lifetime (v1 users need not touch it).
    pub v2: V2Settings,
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
        let merchant_id = merchant_id.into();
        Self {
            v2: V2Settings::sandbox(merchant_id.clone()),
            merchants: vec![(merchant_id, keys)],
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

    /// The PG v2 OAuth client the token endpoint accepts.
    pub fn with_v2_client(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        client_version: u32,
    ) -> Self {
        self.v2.client_id = client_id.into();
        self.v2.client_secret = SecretString::from(client_secret.into());
        self.v2.client_version = client_version;
        self
    }

    /// Where PG v2 webhooks go, and the username and password of their `Authorization`.
    pub fn with_v2_webhook(mut self, url: Option<Url>, username: &str, password: &str) -> Self {
        self.v2.webhook_url = url;
        self.v2.webhook = WebhookCredentials::new(username, SecretString::from(password.to_owned()));
        self
    }

    /// How long PG v2 access tokens live (tests make them expire quickly).
    pub fn with_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.v2.token_lifetime = lifetime;
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
        let v2 = &self.v2;
        if !valid_client_id(&v2.client_id) {
            return Err(SimConfigError::ClientId);
        }
        if secrecy::ExposeSecret::expose_secret(&v2.client_secret).is_empty() {
            return Err(SimConfigError::EmptyClientSecret);
        }
        if !(1..=MAX_TOKEN_LIFETIME_S).contains(&v2.token_lifetime.as_secs()) {
            return Err(SimConfigError::TokenLifetime);
        }
        if let Some(u) = v2.webhook_url.as_ref().filter(|u| !matches!(u.scheme(), "http" | "https")) {
            return Err(SimConfigError::WebhookUrl(u.to_string()));
        }
        Ok(())
    }
}

/// Longest token lifetime: 30 days.
const MAX_TOKEN_LIFETIME_S: u64 = 30 * 24 * 3600;

/// 1 to 128 printable ASCII characters without spaces.
fn valid_client_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic())
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
    #[error("the PG v2 client id must be 1 to 128 printable ASCII characters without spaces")]
    ClientId,
    #[error("the PG v2 client secret must not be empty")]
    EmptyClientSecret,
    #[error("the PG v2 token lifetime must be 1 second to 30 days")]
    TokenLifetime,
    #[error("webhook URL {0:?} must be http or https")]
    WebhookUrl(String),
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
/// | `PHONEPE_CLIENT_ID` | `PARKPAY-SIM-CLIENT` | PG v2: the OAuth client the token endpoint accepts |
/// | `PHONEPE_CLIENT_SECRET` | the simulator's public test secret | its secret |
/// | `PHONEPE_CLIENT_VERSION` | `1` | its version |
/// | `PHONEPE_WEBHOOK_USERNAME`, `PHONEPE_WEBHOOK_PASSWORD` | `username`, `password` | PG v2 webhook `Authorization` = hex `sha256("username:password")` |
/// | `PHONEPE_WEBHOOK_URL` | none (no webhooks) | where PG v2 webhooks go |
/// | `PARKPAY_SIM_TOKEN_LIFETIME_S` | `3600` | PG v2 access token lifetime, seconds |
///
/// A variable that is set must be valid (an empty value is invalid); the error names it and
/// never shows a salt key, client secret or webhook password.
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
    v2_settings(&mut config.v2, read)?;
    Ok(EnvSettings { addr, config })
}

/// The PG v2 variables.
fn v2_settings(
    v2: &mut V2Settings,
    read: &dyn Fn(&'static str) -> Result<Option<String>, EnvError>,
) -> Result<(), EnvError> {
    if let Some(id) = read("PHONEPE_CLIENT_ID")? {
        if !valid_client_id(&id) {
            return Err(EnvError {
                var: "PHONEPE_CLIENT_ID",
                problem: "must be 1 to 128 printable ASCII characters without spaces".into(),
            });
        }
        v2.client_id = id;
    }
    if let Some(secret) = read("PHONEPE_CLIENT_SECRET")? {
        v2.client_secret = SecretString::from(secret);
    }
    if let Some(s) = read("PHONEPE_CLIENT_VERSION")? {
        v2.client_version = s.parse().ok().filter(|v| *v > 0).ok_or(EnvError {
            var: "PHONEPE_CLIENT_VERSION",
            problem: format!("must be a positive whole number (got {s:?})"),
        })?;
    }
    let username = read("PHONEPE_WEBHOOK_USERNAME")?;
    let password = read("PHONEPE_WEBHOOK_PASSWORD")?;
    if username.is_some() || password.is_some() {
        let username = username.unwrap_or_else(|| SANDBOX_WEBHOOK_USERNAME.to_owned());
        let password = password.unwrap_or_else(|| SANDBOX_WEBHOOK_PASSWORD.to_owned());
        v2.webhook = WebhookCredentials::new(username, SecretString::from(password));
    }
    if let Some(s) = read("PHONEPE_WEBHOOK_URL")? {
        let url = Url::parse(&s).ok().filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        v2.webhook_url = Some(url.ok_or(EnvError {
            var: "PHONEPE_WEBHOOK_URL",
            problem: format!("must be an http or https URL (got {s:?})"),
        })?);
    }
    if let Some(s) = read("PARKPAY_SIM_TOKEN_LIFETIME_S")? {
        let secs: u64 = s.parse().ok().filter(|n| (1..=MAX_TOKEN_LIFETIME_S).contains(n)).ok_or(EnvError {
            var: "PARKPAY_SIM_TOKEN_LIFETIME_S",
            problem: format!("must be a whole number of seconds from 1 to {MAX_TOKEN_LIFETIME_S} (got {s:?})"),
        })?;
        v2.token_lifetime = Duration::from_secs(secs);
    }
    Ok(())
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
    fn v2_defaults_and_overrides() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.config.v2.client_id, SANDBOX_CLIENT_ID);
        assert_eq!(s.config.v2.client_version, 1);
        assert_eq!(s.config.v2.merchant_id, "PGTESTPAYUAT");
        assert_eq!(s.config.v2.webhook.authorization(), parkpay_checksum::conformance::WEBHOOK_AUTHORIZATION);
        assert_eq!(s.config.v2.webhook_url, None);
        assert_eq!(s.config.v2.token_lifetime, DEFAULT_TOKEN_LIFETIME);

        let s = settings(&[
            ("PHONEPE_MERCHANT_ID", "M2"),
            ("PHONEPE_CLIENT_ID", "TEST-CLIENT"),
            ("PHONEPE_CLIENT_SECRET", "secret-client"),
            ("PHONEPE_CLIENT_VERSION", "3"),
            ("PHONEPE_WEBHOOK_USERNAME", "u"),
            ("PHONEPE_WEBHOOK_PASSWORD", "secret-pw"),
            ("PHONEPE_WEBHOOK_URL", "http://127.0.0.1:9/hook"),
            ("PARKPAY_SIM_TOKEN_LIFETIME_S", "5"),
        ])
        .unwrap();
        let v2 = &s.config.v2;
        assert_eq!((v2.merchant_id.as_str(), v2.client_id.as_str(), v2.client_version), ("M2", "TEST-CLIENT", 3));
        assert_eq!(secrecy::ExposeSecret::expose_secret(&v2.client_secret), "secret-client");
        let expected = WebhookCredentials::new("u", SecretString::from("secret-pw")).authorization();
        assert_eq!(v2.webhook.authorization(), expected);
        assert_eq!(v2.webhook_url.as_ref().unwrap().as_str(), "http://127.0.0.1:9/hook");
        assert_eq!(v2.token_lifetime, Duration::from_secs(5));
        let shown = format!("{:?}", s.config);
        assert!(!shown.contains("secret-client") && !shown.contains("secret-pw"), "{shown}");

        for (vars, var) in [
            (vec![("PHONEPE_CLIENT_ID", "has space")], "PHONEPE_CLIENT_ID"),
            (vec![("PHONEPE_CLIENT_SECRET", "")], "PHONEPE_CLIENT_SECRET"),
            (vec![("PHONEPE_CLIENT_VERSION", "0")], "PHONEPE_CLIENT_VERSION"),
            (vec![("PHONEPE_WEBHOOK_PASSWORD", "")], "PHONEPE_WEBHOOK_PASSWORD"),
            (vec![("PHONEPE_WEBHOOK_URL", "ftp://x")], "PHONEPE_WEBHOOK_URL"),
            (vec![("PARKPAY_SIM_TOKEN_LIFETIME_S", "0")], "PARKPAY_SIM_TOKEN_LIFETIME_S"),
        ] {
            assert_eq!(settings(&vars).unwrap_err().var, var);
        }
        let c = SimulatorConfig::sandbox().with_token_lifetime(Duration::from_millis(500));
        assert_eq!(c.validate(), Err(SimConfigError::TokenLifetime));
        let c = SimulatorConfig::sandbox().with_v2_client("", "s", 1);
        assert_eq!(c.validate(), Err(SimConfigError::ClientId));
        let c = SimulatorConfig::sandbox().with_v2_client("c", "", 1);
        assert_eq!(c.validate(), Err(SimConfigError::EmptyClientSecret));
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
