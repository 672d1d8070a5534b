//! The PhonePe salt keys from a secret store, loaded on first use rather than at cold start (no
//! network during init), kept in memory wrapped as secrets, and never logged.
//!
//! The stored value holds one key or several (a rotation, `docs/phonepe.md` §6; the forms are
//! [`parse_stored_keys`]'s). Requests are signed with the key of `PHONEPE_SALT_INDEX`; callbacks
//! are verified with whichever held key their `X-VERIFY` names. The keys in memory are read
//! again from the store:
//! - when a callback names an index they do not hold (a new key was added to the store after
//!   they were loaded), at most once per [`KeyRefresh::min_interval`]: a rotation's new index is
//!   accepted as soon as the store has it, and forged indices cannot make us hammer the store;
//! - once they are older than [`KeyRefresh::max_age`], so a key removed from the store stops
//!   being accepted within that time.
//!
//! A reload that fails keeps the keys in memory (logged) and is tried again after
//! `min_interval`; only the first load's failure is an error (503), tried again on the next
//! request.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parkpay_checksum::{KeyError, SaltIndex, SaltKey, SaltKeys, XVerify};
use parkpay_gateway::phonepe_v1::PhonePeV1;
use parkpay_gateway::{
    CallbackError, GatewayError, MerchantTxnId, Notice, PayRequest, PayStarted, PaymentGateway, RefundRequest,
    RefundStarted, StatusReport,
};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{SaltSource, V1Settings};

/// The SSM parameter name through which Parameter Store hands out a Secrets Manager secret
/// ("Referencing AWS Secrets Manager secrets from Parameter Store parameters"): one client (SSM)
/// serves both stores, which keeps the Secrets Manager SDK out of every Lambda binary.
pub fn secrets_manager_reference(secret_id: &str) -> String {
    format!("/aws/reference/secretsmanager/{secret_id}")
}

/// Fetch the salt keys named by `source`. The error text names the source, never a value.
pub async fn fetch_salt(source: &SaltSource, aws: &aws_config::SdkConfig) -> Result<SaltKeys, String> {
    let (parameter, what, index) = match source {
        SaltSource::Inline(keys) => return Ok(keys.clone()),
        SaltSource::Ssm { parameter, index } => (parameter.clone(), format!("SSM parameter {parameter}"), *index),
        SaltSource::SecretsManager { secret_id, index } => {
            (secrets_manager_reference(secret_id), format!("secret {secret_id}"), *index)
        }
    };
    let value = read_parameter(&parameter, &what, aws).await?;
    parse_stored_keys(value.expose_secret(), index).map_err(|problem| format!("{what}: {problem}"))
}

/// One SSM parameter, decrypted (every secret parkpay keeps in SSM is read here), wrapped at
/// once. `what` names it in errors, which never show its value.
pub async fn read_parameter(parameter: &str, what: &str, aws: &aws_config::SdkConfig) -> Result<SecretString, String> {
    let out = aws_sdk_ssm::Client::new(aws)
        .get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| format!("{what}: {}", aws_sdk_ssm::error::DisplayErrorContext(e)))?;
    out.parameter.and_then(|p| p.value).map(SecretString::from).ok_or_else(|| format!("{what} has no value"))
}

/// The salt keys in a stored value (an SSM parameter or a Secrets Manager secret), signing with
/// `index` (`PHONEPE_SALT_INDEX`):
///
/// | stored value | keys |
/// |---|---|
/// | `099eb0cd-…` (anything not starting with `{`) | that one key, with index `index` (the original form) |
/// | `{"salt_key": "…"}` (or `PHONEPE_SALT_KEY`) | the same, as JSON (a Secrets Manager key/value secret) |
/// | `{"salt_keys": {"1": "old…", "2": "new…"}}` | several keys by index |
/// | `{"salt_keys": "1:old…,2:new…"}` | the same, in `PHONEPE_SALT_KEYS`' text form (fits a key/value secret) |
///
/// With several keys, `index` must be one of them. Surrounding whitespace is ignored. The error
/// says what is wrong, never what the value holds.
pub fn parse_stored_keys(value: &str, index: SaltIndex) -> Result<SaltKeys, String> {
    let value = value.trim();
    if !value.starts_with('{') {
        let key = SaltKey::new(value.to_owned()).map_err(|_| "the stored salt key is empty".to_owned())?;
        return Ok(SaltKeys::single(index, key));
    }
    let json: serde_json::Value =
        serde_json::from_str(value).map_err(|_| "the stored value starts with '{' but is not JSON".to_owned())?;
    let object = json.as_object().ok_or_else(|| "the stored value is not a JSON object".to_owned())?;
    let single = object.get("salt_key").or_else(|| object.get("PHONEPE_SALT_KEY"));
    let keys = match (object.get("salt_keys"), single) {
        (Some(_), Some(_)) => return Err("the stored JSON holds both salt_key and salt_keys: keep one".into()),
        (None, Some(serde_json::Value::String(k))) => {
            let key = SaltKey::new(k.trim().to_owned()).map_err(|_| "the stored salt_key is empty".to_owned())?;
            return Ok(SaltKeys::single(index, key));
        }
        (None, Some(_)) => return Err("the stored salt_key is not a string".into()),
        (None, None) => return Err("the stored JSON has no salt_key or salt_keys".into()),
        (Some(serde_json::Value::String(list)), None) => SaltKeys::parse_list(list, Some(index)),
        (Some(serde_json::Value::Object(map)), None) => {
            let mut keys = Vec::with_capacity(map.len());
            for (i, k) in map {
                let i = i.trim().parse::<SaltIndex>().map_err(|_| "a salt_keys name is not an index".to_owned())?;
                let k = k.as_str().ok_or_else(|| format!("salt_keys.{i} is not a string"))?;
                keys.push((i, SaltKey::new(k.trim().to_owned()).map_err(|_| format!("salt_keys.{i} is empty"))?));
            }
            SaltKeys::new(keys, index)
        }
        (Some(_), None) => {
            return Err("salt_keys must be an object {\"index\": \"key\"} or the text index:key,index:key".into());
        }
    };
    keys.map_err(|e| match e {
        KeyError::ActiveMissing(i) => format!("holds no key with PHONEPE_SALT_INDEX {i}, the index that signs"),
        KeyError::NoKeys => "salt_keys is empty".to_owned(),
        other => format!("salt_keys: {other}"),
    })
}

/// When the keys in memory are read from the store again (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRefresh {
    /// At most one reload per this long, for a callback naming an index not held or after a
    /// failed reload.
    pub min_interval: Duration,
    /// Keys older than this are reloaded on their next use.
    pub max_age: Duration,
}

impl KeyRefresh {
    /// 30 s between reloads; keys kept for 15 minutes.
    pub const DEFAULT: KeyRefresh =
        KeyRefresh { min_interval: Duration::from_secs(30), max_age: Duration::from_secs(15 * 60) };
}

impl Default for KeyRefresh {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A client built with the keys loaded at `at`.
struct Loaded {
    client: Arc<PhonePeV1>,
    at: Instant,
}

/// A PhonePe client whose salt keys are loaded from a secret store on its first use (and read
/// again as the module docs say). A failure of the first load is an
/// [`GatewayError::Unreachable`] (nothing was sent; the caller answers 503) and is tried again
/// on the next request.
pub struct LazyPhonePe {
    settings: V1Settings,
    aws: aws_config::SdkConfig,
    refresh: KeyRefresh,
    held: Mutex<Option<Arc<Loaded>>>,
    /// When the last (re)load was started, successful or not.
    last_attempt: Mutex<Option<Instant>>,
    /// One load at a time.
    loading: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LazyPhonePe {
    pub fn new(settings: V1Settings, aws: aws_config::SdkConfig) -> Self {
        Self {
            settings,
            aws,
            refresh: KeyRefresh::DEFAULT,
            held: Mutex::new(None),
            last_attempt: Mutex::new(None),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// Other reload timings (tests).
    pub fn with_key_refresh(mut self, refresh: KeyRefresh) -> Self {
        self.refresh = refresh;
        self
    }

    fn held(&self) -> Option<Arc<Loaded>> {
        lock(&self.held).clone()
    }

    /// The client, with keys that hold `wanted` (a callback's index) if the store has it.
    async fn client(&self, wanted: Option<SaltIndex>) -> Result<Arc<PhonePeV1>, String> {
        let holds_wanted = |l: &Loaded| wanted.is_none_or(|i| l.client.config().salt_keys.key(i).is_some());
        let fresh = |l: &Loaded| holds_wanted(l) && l.at.elapsed() < self.refresh.max_age;
        let held = self.held();
        let _guard = match &held {
            Some(l) if fresh(l) => return Ok(l.client.clone()),
            // Only old: while another task reloads, the keys in memory serve.
            Some(l) if holds_wanted(l) => match self.loading.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(l.client.clone()),
            },
            // Not loaded yet, or a callback names an index not held: wait for the load.
            _ => self.loading.lock().await,
        };
        // Another task may have loaded meanwhile.
        let held = self.held();
        if let Some(l) = &held {
            let recent = lock(&self.last_attempt).is_some_and(|t| t.elapsed() < self.refresh.min_interval);
            if fresh(l) || recent {
                return Ok(l.client.clone());
            }
        }
        *lock(&self.last_attempt) = Some(Instant::now());
        let loaded = async {
            let keys = fetch_salt(&self.settings.salt, &self.aws).await?;
            PhonePeV1::new(self.settings.gateway_config(keys)).map_err(|e| e.to_string())
        };
        match loaded.await {
            Ok(client) => {
                let keys = &client.config().salt_keys;
                let indexes: Vec<u32> = keys.indexes().map(SaltIndex::get).collect();
                let signing = keys.active_index().get();
                tracing::info!(?indexes, signing, ?wanted, reload = held.is_some(), "PhonePe salt keys loaded");
                let client = Arc::new(client);
                *lock(&self.held) = Some(Arc::new(Loaded { client: client.clone(), at: Instant::now() }));
                Ok(client)
            }
            Err(reason) => match held {
                Some(l) => {
                    tracing::warn!(%reason, "PhonePe salt keys could not be reloaded; the keys in memory are kept");
                    Ok(l.client.clone())
                }
                None => Err(reason),
            },
        }
    }

    async fn ready(&self) -> Result<Arc<PhonePeV1>, GatewayError> {
        self.client(None).await.map_err(|reason| {
            tracing::error!(%reason, "PhonePe salt key could not be loaded");
            GatewayError::Unreachable { reason: "PhonePe credentials unavailable".into() }
        })
    }
}

#[async_trait]
impl PaymentGateway for LazyPhonePe {
    async fn pay(&self, req: &PayRequest) -> Result<PayStarted, GatewayError> {
        self.ready().await?.pay(req).await
    }

    async fn status(&self, txn: &MerchantTxnId) -> Result<StatusReport, GatewayError> {
        self.ready().await?.status(txn).await
    }

    async fn refund_status(&self, txn: &MerchantTxnId) -> Result<StatusReport, GatewayError> {
        self.ready().await?.refund_status(txn).await
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStarted, GatewayError> {
        self.ready().await?.refund(req).await
    }

    async fn verify_notice(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<Notice, CallbackError> {
        // An unsigned notification is refused before the keys are loaded: it must not make us
        // call the secret store (nor turn a 401 into a 503 while the store is down).
        if headers.get(parkpay_gateway::phonepe_v1::X_VERIFY).is_none_or(|v| v.as_bytes().trim_ascii().is_empty()) {
            return Err(CallbackError::MissingSignature);
        }
        // The index the callback names: keys that lack it are read again first (a rotation).
        let wanted = headers
            .get(parkpay_gateway::phonepe_v1::X_VERIFY)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| XVerify::parse(v).ok())
            .map(|x| x.index());
        match self.client(wanted).await {
            Ok(c) => c.verify_notice(headers, body).await,
            Err(reason) => {
                tracing::error!(%reason, "PhonePe salt key could not be loaded");
                Err(CallbackError::KeysUnavailable("PhonePe credentials unavailable".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parkpay_checksum::Message;

    fn signs_as(keys: &SaltKeys, key: &str, index: u32) -> bool {
        let msg = Message::Path { path: "/pg/v1/status/M/T" };
        keys.sign(msg) == SaltKeys::single(SaltIndex::new(index), SaltKey::new(key).unwrap()).sign(msg)
    }

    fn verifies(keys: &SaltKeys, key: &str, index: u32) -> bool {
        let msg = Message::Path { path: "/pg/v1/status/M/T" };
        let header = SaltKeys::single(SaltIndex::new(index), SaltKey::new(key).unwrap()).sign(msg).to_string();
        keys.verify(&header, msg) == Ok(SaltIndex::new(index))
    }

    #[test]
    fn stored_values() {
        let i = SaltIndex::new;
        // one key: plain, or JSON
        for v in ["plain-key", "  plain-key\n", r#"{"salt_key":"plain-key"}"#, r#"{"PHONEPE_SALT_KEY":" plain-key "}"#]
        {
            let keys = parse_stored_keys(v, i(3)).unwrap();
            assert!(signs_as(&keys, "plain-key", 3), "{v:?}");
        }
        // several: an object by index, or the text form; the given index signs, all verify
        for v in [r#"{"salt_keys":{"1":"old-key","2":"new-key"}}"#, r#"{"salt_keys":"1:old-key, 2:new-key"}"#] {
            let keys = parse_stored_keys(v, i(2)).unwrap();
            assert!(signs_as(&keys, "new-key", 2), "{v:?}");
            assert!(verifies(&keys, "old-key", 1) && verifies(&keys, "new-key", 2), "{v:?}");
            let keys = parse_stored_keys(v, i(1)).unwrap();
            assert!(signs_as(&keys, "old-key", 1), "{v:?}");
        }
        // refused, and the reason never holds a key
        for v in [
            "  ",
            "{not json secret",
            r#"{"password":"secret"}"#,
            r#"{"salt_key":""}"#,
            r#"{"salt_key":7}"#,
            r#"{"salt_key":"secret","salt_keys":{"1":"secret"}}"#,
            r#"{"salt_keys":{}}"#,
            r#"{"salt_keys":{"one":"secret"}}"#,
            r#"{"salt_keys":{"1":""}}"#,
            r#"{"salt_keys":{"1":5}}"#,
            r#"{"salt_keys":{"2":"secret"}}"#,
            r#"{"salt_keys":"2:secret"}"#,
            r#"{"salt_keys":"secret"}"#,
            r#"{"salt_keys":["1:secret"]}"#,
        ] {
            let e = parse_stored_keys(v, i(1)).unwrap_err();
            assert!(!e.contains("secret"), "{v:?}: {e}");
        }
        assert!(parse_stored_keys(r#"{"salt_keys":{"2":"k"}}"#, i(1)).unwrap_err().contains("PHONEPE_SALT_INDEX 1"));
    }
}
