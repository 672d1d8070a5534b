//! Where a deployment's entry pass keys come from (`parkpay_passes::PassKeys`: the Ed25519
//! signing key and the public keys of earlier ones still accepted).
//!
//! - `PARKPAY_PASS_KEYS`: the keys' stored text itself (local use, tests); a secret, never logged.
//! - `PARKPAY_PASS_KEYS_SSM_PARAMETER`: the name of an SSM SecureString holding it (what the
//!   template gives the pass functions), read on first use, not at cold start.
//! - Neither: the local server makes a key pair once and keeps it in its data directory; a Lambda
//!   function answers the pass routes 503 `PASS_KEYS_UNAVAILABLE`.

use std::sync::Arc;

use async_trait::async_trait;
use parkpay_passes::PassKeys;
use secrecy::{ExposeSecret, SecretString};

use crate::ConfigError;

/// The pass keys, however they are kept.
#[async_trait]
pub trait PassKeySource: Send + Sync {
    /// The keys, or why they are not available (a text that never shows key material).
    async fn keys(&self) -> Result<Arc<PassKeys>, String>;
}

/// Keys in hand.
pub struct FixedPassKeys(pub Arc<PassKeys>);

#[async_trait]
impl PassKeySource for FixedPassKeys {
    async fn keys(&self) -> Result<Arc<PassKeys>, String> {
        Ok(self.0.clone())
    }
}

/// No keys configured.
pub struct NoPassKeys;

#[async_trait]
impl PassKeySource for NoPassKeys {
    async fn keys(&self) -> Result<Arc<PassKeys>, String> {
        Err("no pass keys are configured (PARKPAY_PASS_KEYS or PARKPAY_PASS_KEYS_SSM_PARAMETER)".into())
    }
}

/// What the environment says about the pass keys.
#[derive(Debug, Clone)]
pub enum PassKeySetting {
    Inline(SecretString),
    Ssm { parameter: String },
    Absent,
}

impl PassKeySetting {
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| env(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        match (get("PARKPAY_PASS_KEYS"), get("PARKPAY_PASS_KEYS_SSM_PARAMETER")) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                "PARKPAY_PASS_KEYS",
                "give only one of PARKPAY_PASS_KEYS and PARKPAY_PASS_KEYS_SSM_PARAMETER",
            )),
            (Some(text), None) => {
                // Checked now: a bad key stops start-up rather than every pass request.
                PassKeys::from_stored(&text).map_err(|e| ConfigError::new("PARKPAY_PASS_KEYS", e.to_string()))?;
                Ok(PassKeySetting::Inline(SecretString::from(text)))
            }
            (None, Some(parameter)) => Ok(PassKeySetting::Ssm { parameter }),
            (None, None) => Ok(PassKeySetting::Absent),
        }
    }

    /// The keys when given inline.
    pub fn inline(&self) -> Option<Result<PassKeys, ConfigError>> {
        match self {
            PassKeySetting::Inline(text) => Some(
                PassKeys::from_stored(text.expose_secret())
                    .map_err(|e| ConfigError::new("PARKPAY_PASS_KEYS", e.to_string())),
            ),
            _ => None,
        }
    }
}

/// The keys kept in a local data directory (`pass-keys.json`, readable by its owner only): made
/// on first use, read back afterwards, so passes stay valid across restarts.
pub fn local_keys(dir: &std::path::Path) -> Result<PassKeys, String> {
    let path = dir.join("pass-keys.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => return PassKeys::from_stored(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("{}: {e}", path.display())),
        Err(_) => {}
    }
    let keys = PassKeys::generate().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    write_private(&path, &keys.to_stored()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(keys)
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(text.as_bytes())
}

/// The keys in an SSM SecureString, read on first use and again once they are older than
/// [`SsmPassKeys::MAX_AGE`] (so a rotation, or a key removed after a leak, takes effect within
/// that time without a redeploy). A failed read keeps the keys in hand (logged); only the first
/// read's failure is an error, tried again on the next request.
#[cfg(feature = "aws")]
pub struct SsmPassKeys {
    parameter: String,
    aws: aws_config::SdkConfig,
    held: tokio::sync::Mutex<Option<(Arc<PassKeys>, std::time::Instant)>>,
}

#[cfg(feature = "aws")]
impl SsmPassKeys {
    /// As the salt key's: 15 minutes.
    pub const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

    pub fn new(parameter: String, aws: aws_config::SdkConfig) -> Self {
        Self { parameter, aws, held: tokio::sync::Mutex::new(None) }
    }

    async fn read(&self) -> Result<Arc<PassKeys>, String> {
        let text = crate::secrets_v2::fetch_parameter(&self.parameter, &self.aws).await?;
        let keys = PassKeys::from_stored(text.expose_secret())
            .map_err(|e| format!("SSM parameter {}: {e}", self.parameter))?;
        Ok(Arc::new(keys))
    }
}

#[cfg(feature = "aws")]
#[async_trait]
impl PassKeySource for SsmPassKeys {
    async fn keys(&self) -> Result<Arc<PassKeys>, String> {
        // One read at a time; the others wait for it (reads are rare: once per MAX_AGE).
        let mut held = self.held.lock().await;
        if let Some((keys, at)) = held.as_ref()
            && at.elapsed() < Self::MAX_AGE
        {
            return Ok(keys.clone());
        }
        match self.read().await {
            Ok(keys) => {
                tracing::info!(kid = keys.kid(), reload = held.is_some(), "pass keys loaded");
                *held = Some((keys.clone(), std::time::Instant::now()));
                Ok(keys)
            }
            Err(reason) => match held.as_mut() {
                Some((keys, at)) => {
                    tracing::warn!(%reason, "pass keys could not be read again; the keys in hand are kept");
                    // Tried again in 30 s, not on every request.
                    let retry_in = std::time::Duration::from_secs(30);
                    let now = std::time::Instant::now();
                    *at = now.checked_sub(Self::MAX_AGE.saturating_sub(retry_in)).unwrap_or(now);
                    Ok(keys.clone())
                }
                None => Err(reason),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_local_keys() {
        let keys = PassKeys::generate().unwrap();
        let stored = keys.to_stored();
        let env = |pairs: Vec<(&'static str, String)>| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        };
        let s = PassKeySetting::from_lookup(&env(vec![("PARKPAY_PASS_KEYS", stored.clone())])).unwrap();
        assert_eq!(s.inline().unwrap().unwrap().kid(), keys.kid());
        assert!(!format!("{s:?}").contains(&stored), "the keys never show");
        let bad = PassKeySetting::from_lookup(&env(vec![("PARKPAY_PASS_KEYS", "not keys".into())])).unwrap_err();
        assert_eq!(bad.var, "PARKPAY_PASS_KEYS");
        let both = vec![("PARKPAY_PASS_KEYS", stored), ("PARKPAY_PASS_KEYS_SSM_PARAMETER", "/p".into())];
        assert!(PassKeySetting::from_lookup(&env(both)).is_err());
        assert!(matches!(PassKeySetting::from_lookup(&env(vec![])).unwrap(), PassKeySetting::Absent));

        let dir = tempfile::tempdir().unwrap();
        let first = local_keys(dir.path()).unwrap();
        let again = local_keys(dir.path()).unwrap();
        assert_eq!(first.kid(), again.kid(), "made once, then read back");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("pass-keys.json")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "owner only");
        }
    }
}
