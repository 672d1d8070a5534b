//! Where the gateway is and who we are to it.

use std::time::Duration;

use parkpay_checksum::SaltKeys;
use url::Url;

/// PhonePe PG v1 sandbox host (`docs/phonepe.md` §1).
pub const SANDBOX_V1_BASE: &str = "https://api-preprod.phonepe.com/apis/pg-sandbox";
/// PhonePe PG v1 production host (`docs/phonepe.md` §1).
pub const PRODUCTION_V1_BASE: &str = "https://api.phonepe.com/apis/hermes";

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
