//! Where the gateway is and who we are to it.

use std::fmt;
use std::time::Duration;

use parkpay_checksum::{SaltKeys, WebhookCredentials};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// PhonePe PG v1 sandbox host (`docs/phonepe.md` §1).
pub const SANDBOX_V1_BASE: &str = "https://api-preprod.phonepe.com/apis/pg-sandbox";
/// PhonePe PG v1 production host (`docs/phonepe.md` §1).
pub const PRODUCTION_V1_BASE: &str = "https://api.phonepe.com/apis/hermes";

/// PhonePe PG v2 sandbox host, for PG calls and OAuth alike.
pub const SANDBOX_V2_BASE: &str = "https://api-preprod.phonepe.com/apis/pg-sandbox";
/// PhonePe PG v2 production host of the PG calls.
pub const PRODUCTION_V2_PG_BASE: &str = "https://api.phonepe.com/apis/pg";
/// PhonePe PG v2 production host of the OAuth token endpoint.
pub const PRODUCTION_V2_OAUTH_BASE: &str = "https://api.phonepe.com/apis/identity-manager";

/// Which PhonePe we talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Environment {
    /// The parkpay simulator at this base URL: no request leaves the machine.
    Simulation {
        base_url: Url,
    },
    Sandbox,
    Production,
}

impl Environment {
    pub fn v1_base_url(&self) -> Url {
        match self {
            Environment::Simulation { base_url } => base_url.clone(),
            Environment::Sandbox => Url::parse(SANDBOX_V1_BASE).expect("constant URL"),
            Environment::Production => Url::parse(PRODUCTION_V1_BASE).expect("constant URL"),
        }
    }

    /// PG v2: where the PG calls (orders, statuses, refunds) go. The simulator serves v2 on its
    /// one base URL.
    pub fn v2_pg_base_url(&self) -> Url {
        match self {
            Environment::Simulation { base_url } => base_url.clone(),
            Environment::Sandbox => Url::parse(SANDBOX_V2_BASE).expect("constant URL"),
            Environment::Production => Url::parse(PRODUCTION_V2_PG_BASE).expect("constant URL"),
        }
    }

    /// PG v2: where the OAuth token endpoint (`/v1/oauth/token`) is. The sandbox serves it
    /// from the PG host; production from a host of its own.
    pub fn v2_oauth_base_url(&self) -> Url {
        match self {
            Environment::Simulation { base_url } => base_url.clone(),
            Environment::Sandbox => Url::parse(SANDBOX_V2_BASE).expect("constant URL"),
            Environment::Production => Url::parse(PRODUCTION_V2_OAUTH_BASE).expect("constant URL"),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Environment::Simulation { .. } => "SIMULATION",
            Environment::Sandbox => "SANDBOX",
            Environment::Production => "PRODUCTION",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("PHONEPE_MERCHANT_ID must be 1 to 37 characters of A-Z, a-z, 0-9, '_' and '-'")]
    MerchantId,
    #[error("PHONEPE_CALLBACK_URL must be an https URL in PRODUCTION (got scheme {0:?})")]
    InsecureCallback(String),
    #[error("the redirect URL must be an https URL in PRODUCTION (got scheme {0:?})")]
    InsecureRedirect(String),
    #[error("{0} must be an http or https URL")]
    NotHttp(&'static str),
    #[error("timeouts must be more than zero")]
    ZeroTimeout,
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// Why a PG v2 configuration was refused: what it shares with v1 ([`ConfigError`], whose
/// variants stay as they are for v1's callers), and what is v2's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V2ConfigError {
    /// The merchant id, a zero timeout, or the HTTP client.
    #[error(transparent)]
    Common(#[from] ConfigError),
    #[error("PHONEPE_CLIENT_ID must be 1 to 128 printable ASCII characters without spaces")]
    ClientId,
    #[error("PHONEPE_CLIENT_VERSION must be a positive whole number")]
    ClientVersion,
    #[error("PHONEPE_CLIENT_SECRET must not be empty")]
    ClientSecret,
    #[error("the PG v2 payment timeout must be 300 to 3600 whole seconds (PhonePe's expireAfter)")]
    PaymentTimeout,
}

/// Everything the v1 client needs. Secrets live in [`SaltKeys`], whose `Debug` is redacted, so
/// this whole struct can be logged.
#[derive(Debug, Clone)]
pub struct PhonePeV1Config {
    pub environment: Environment,
    pub merchant_id: String,
    pub salt_keys: SaltKeys,
    /// Where PhonePe POSTs the server-to-server callback.
    pub callback_url: Url,
    /// Where the payer's browser is sent after the pay page.
    pub redirect_url: Url,
    pub connect_timeout: Duration,
    /// Longest wait for the answer once connected (PhonePe's SDKs use 30 s in total).
    pub read_timeout: Duration,
}

impl PhonePeV1Config {
    /// Defaults: 3 s to connect (as PhonePe's Python SDK), 10 s to read an answer.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

    pub fn new(
        environment: Environment,
        merchant_id: impl Into<String>,
        salt_keys: SaltKeys,
        callback_url: Url,
        redirect_url: Url,
    ) -> Self {
        Self {
            environment,
            merchant_id: merchant_id.into(),
            salt_keys,
            callback_url,
            redirect_url,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            read_timeout: Self::DEFAULT_READ_TIMEOUT,
        }
    }

    pub fn with_timeouts(mut self, connect: Duration, read: Duration) -> Self {
        self.connect_timeout = connect;
        self.read_timeout = read;
        self
    }

    /// Refuses what PhonePe would refuse, and what would be unsafe in production: a callback or
    /// redirect over plain HTTP.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let m = &self.merchant_id;
        if m.is_empty() || m.len() > 37 || !m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(ConfigError::MerchantId);
        }
        for (name, url) in [("PHONEPE_CALLBACK_URL", &self.callback_url), ("the redirect URL", &self.redirect_url)] {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::NotHttp(name));
            }
        }
        if self.environment == Environment::Production {
            if self.callback_url.scheme() != "https" {
                return Err(ConfigError::InsecureCallback(self.callback_url.scheme().to_owned()));
            }
            if self.redirect_url.scheme() != "https" {
                return Err(ConfigError::InsecureRedirect(self.redirect_url.scheme().to_owned()));
            }
        }
        if self.connect_timeout.is_zero() || self.read_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        Ok(())
    }
}

/// Everything the PG v2 client needs. `Debug` is safe to log: the client secret and the
/// webhook password are redacted (they are [`secrecy`] secrets).
#[derive(Clone)]
pub struct PhonePeV2Config {
    pub environment: Environment,
    /// The OAuth client PhonePe issued: id, version (1 in the sandbox) and secret.
    pub client_id: String,
    pub client_version: u32,
    pub client_secret: SecretString,
    /// The webhook username and password set on PhonePe's dashboard: each webhook carries
    /// `Authorization: hex(sha256("username:password"))`.
    pub webhook: WebhookCredentials,
    /// Our PhonePe merchant id, reported in status reports when an answer names none (v2
    /// status answers don't; webhooks do). Not sent: the OAuth client names the merchant.
    pub merchant_id: Option<String>,
    /// How long the payer has to pay: sent as the order's `expireAfter` (whole seconds, 300 to
    /// 3600).
    pub payment_timeout: Duration,
    pub connect_timeout: Duration,
    /// Longest wait for the answer once connected.
    pub read_timeout: Duration,
}

impl fmt::Debug for PhonePeV2Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhonePeV2Config")
            .field("environment", &self.environment)
            .field("client_id", &self.client_id)
            .field("client_version", &self.client_version)
            .field("client_secret", &"[REDACTED]")
            .field("webhook", &self.webhook)
            .field("merchant_id", &self.merchant_id)
            .field("payment_timeout", &self.payment_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

impl PhonePeV2Config {
    /// 15 minutes for the payer.
    pub const DEFAULT_PAYMENT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
    /// Defaults: 3 s to connect (as PhonePe's Python SDK), 10 s to read an answer.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

    pub fn new(
        environment: Environment,
        client_id: impl Into<String>,
        client_version: u32,
        client_secret: SecretString,
        webhook: WebhookCredentials,
    ) -> Self {
        Self {
            environment,
            client_id: client_id.into(),
            client_version,
            client_secret,
            webhook,
            merchant_id: None,
            payment_timeout: Self::DEFAULT_PAYMENT_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            read_timeout: Self::DEFAULT_READ_TIMEOUT,
        }
    }

    pub fn with_merchant_id(mut self, merchant_id: impl Into<String>) -> Self {
        self.merchant_id = Some(merchant_id.into());
        self
    }

    pub fn with_payment_timeout(mut self, timeout: Duration) -> Self {
        self.payment_timeout = timeout;
        self
    }

    pub fn with_timeouts(mut self, connect: Duration, read: Duration) -> Self {
        self.connect_timeout = connect;
        self.read_timeout = read;
        self
    }

    /// Refuses what PhonePe would refuse.
    pub fn validate(&self) -> Result<(), V2ConfigError> {
        let id = &self.client_id;
        if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(V2ConfigError::ClientId);
        }
        if self.client_version == 0 {
            return Err(V2ConfigError::ClientVersion);
        }
        if self.client_secret.expose_secret().is_empty() {
            return Err(V2ConfigError::ClientSecret);
        }
        let whole = self.payment_timeout.subsec_nanos() == 0;
        if !whole || !(300..=3600).contains(&self.payment_timeout.as_secs()) {
            return Err(V2ConfigError::PaymentTimeout);
        }
        if self.merchant_id.as_deref().is_some_and(|m| {
            m.is_empty() || m.len() > 37 || !m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }) {
            return Err(ConfigError::MerchantId.into());
        }
        if self.connect_timeout.is_zero() || self.read_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parkpay_checksum::{SaltIndex, SaltKey};

    fn cfg(env: Environment, callback: &str) -> PhonePeV1Config {
        PhonePeV1Config::new(
            env,
            "PGTESTPAYUAT",
            SaltKeys::single(SaltIndex::new(1), SaltKey::new("s").unwrap()),
            Url::parse(callback).unwrap(),
            Url::parse("https://app.example/return").unwrap(),
        )
    }

    #[test]
    fn production_needs_https_callback() {
        assert_eq!(
            cfg(Environment::Production, "http://x.example/cb").validate(),
            Err(ConfigError::InsecureCallback("http".into()))
        );
        assert!(cfg(Environment::Production, "https://x.example/cb").validate().is_ok());
        assert!(cfg(Environment::Sandbox, "http://x.example/cb").validate().is_ok());
        assert_eq!(
            cfg(Environment::Sandbox, "ftp://x.example/cb").validate(),
            Err(ConfigError::NotHttp("PHONEPE_CALLBACK_URL"))
        );
    }

    #[test]
    fn hosts_are_the_documented_ones() {
        assert_eq!(Environment::Sandbox.v1_base_url().as_str(), "https://api-preprod.phonepe.com/apis/pg-sandbox");
        assert_eq!(Environment::Production.v1_base_url().as_str(), "https://api.phonepe.com/apis/hermes");
    }

    #[test]
    fn merchant_id_rules() {
        let mut c = cfg(Environment::Sandbox, "https://x.example/cb");
        c.merchant_id = "has space".into();
        assert_eq!(c.validate(), Err(ConfigError::MerchantId));
        c.merchant_id = "M".repeat(38);
        assert_eq!(c.validate(), Err(ConfigError::MerchantId));
    }

    fn v2(env: Environment) -> PhonePeV2Config {
        PhonePeV2Config::new(
            env,
            "TEST-CLIENT",
            1,
            SecretString::from("very-secret-client"),
            WebhookCredentials::new("hook-user", SecretString::from("very-secret-hook")),
        )
    }

    #[test]
    fn v2_hosts_and_defaults() {
        assert_eq!(Environment::Sandbox.v2_pg_base_url().as_str(), "https://api-preprod.phonepe.com/apis/pg-sandbox");
        assert_eq!(Environment::Sandbox.v2_oauth_base_url(), Environment::Sandbox.v2_pg_base_url());
        assert_eq!(Environment::Production.v2_pg_base_url().as_str(), "https://api.phonepe.com/apis/pg");
        assert_eq!(
            Environment::Production.v2_oauth_base_url().as_str(),
            "https://api.phonepe.com/apis/identity-manager"
        );
        let sim = Environment::Simulation { base_url: Url::parse("http://127.0.0.1:9/").unwrap() };
        assert_eq!(sim.v2_pg_base_url(), sim.v2_oauth_base_url());
        let c = v2(Environment::Sandbox);
        assert_eq!(c.payment_timeout, Duration::from_secs(900));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn v2_validation_and_debug() {
        let c = v2(Environment::Production);
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("TEST-CLIENT"));
        for (bad, err) in [
            (PhonePeV2Config { client_id: String::new(), ..c.clone() }, V2ConfigError::ClientId),
            (PhonePeV2Config { client_id: "a b".into(), ..c.clone() }, V2ConfigError::ClientId),
            (PhonePeV2Config { client_version: 0, ..c.clone() }, V2ConfigError::ClientVersion),
            (PhonePeV2Config { client_secret: SecretString::from(""), ..c.clone() }, V2ConfigError::ClientSecret),
            (c.clone().with_payment_timeout(Duration::from_secs(299)), V2ConfigError::PaymentTimeout),
            (c.clone().with_payment_timeout(Duration::from_secs(3601)), V2ConfigError::PaymentTimeout),
            (c.clone().with_payment_timeout(Duration::from_millis(900_500)), V2ConfigError::PaymentTimeout),
            (c.clone().with_merchant_id("has space"), V2ConfigError::Common(ConfigError::MerchantId)),
            (
                c.clone().with_timeouts(Duration::ZERO, Duration::from_secs(1)),
                V2ConfigError::Common(ConfigError::ZeroTimeout),
            ),
        ] {
            assert_eq!(bad.validate(), Err(err));
        }
        assert!(c.with_payment_timeout(Duration::from_secs(3600)).with_merchant_id("M1").validate().is_ok());
    }

    #[test]
    fn debug_hides_salt() {
        let c = PhonePeV1Config::new(
            Environment::Sandbox,
            "M",
            SaltKeys::single(SaltIndex::new(1), SaltKey::new("very-secret-salt").unwrap()),
            Url::parse("https://x.example/cb").unwrap(),
            Url::parse("https://x.example/r").unwrap(),
        );
        assert!(!format!("{c:?}").contains("very-secret-salt"));
    }
}
