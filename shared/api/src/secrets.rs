//! The PhonePe salt key from a secret store, loaded on first use rather than at cold start (no
//! network during init), kept in memory wrapped as a secret, and never logged.

use std::sync::Arc;

use async_trait::async_trait;
use parkpay_checksum::{SaltIndex, SaltKey, SaltKeys};
use parkpay_gateway::phonepe_v1::PhonePeV1;
use parkpay_gateway::{
    CallbackError, GatewayError, MerchantTxnId, Notice, PayRequest, PayStarted, PaymentGateway, RefundRequest,
    RefundStarted, StatusReport,
};
use tokio::sync::OnceCell;

use crate::config::{SaltSource, Settings};

/// The SSM parameter name through which Parameter Store hands out a Secrets Manager secret
/// ("Referencing AWS Secrets Manager secrets from Parameter Store parameters"): one client (SSM)
/// serves both stores, which keeps the Secrets Manager SDK out of every Lambda binary.
pub fn secrets_manager_reference(secret_id: &str) -> String {
    format!("/aws/reference/secretsmanager/{secret_id}")
}

/// Fetch the salt key named by `source`. The error text names the source, never a value.
pub async fn fetch_salt(source: &SaltSource, aws: &aws_config::SdkConfig) -> Result<SaltKeys, String> {
    let (parameter, what, index) = match source {
        SaltSource::Inline(keys) => return Ok(keys.clone()),
        SaltSource::Ssm { parameter, index } => (parameter.clone(), format!("SSM parameter {parameter}"), *index),
        SaltSource::SecretsManager { secret_id, index } => {
            (secrets_manager_reference(secret_id), format!("secret {secret_id}"), *index)
        }
    };
    let out = aws_sdk_ssm::Client::new(aws)
        .get_parameter()
        .name(&parameter)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| format!("{what}: {}", aws_sdk_ssm::error::DisplayErrorContext(e)))?;
    let value = out.parameter.and_then(|p| p.value).ok_or_else(|| format!("{what} has no value"))?;
    let raw = match source {
        SaltSource::SecretsManager { .. } => secret_json_field(&value).unwrap_or(value),
        _ => value,
    };
    salt_keys(raw, index)
}

/// A Secrets Manager secret may hold the key itself or a JSON object with a `salt_key` field.
fn secret_json_field(value: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(value).ok()?;
    v.get("salt_key").or_else(|| v.get("PHONEPE_SALT_KEY")).and_then(|s| s.as_str()).map(str::to_owned)
}

fn salt_keys(raw: String, index: SaltIndex) -> Result<SaltKeys, String> {
    let key = SaltKey::new(raw.trim().to_owned()).map_err(|_| "the stored salt key is empty".to_owned())?;
    Ok(SaltKeys::single(index, key))
}

/// A PhonePe client whose salt key is loaded from a secret store on its first use. A failure to
/// load is an [`GatewayError::Unreachable`] (nothing was sent; the caller answers 503) and is
/// tried again on the next request.
pub struct LazyPhonePe {
    settings: Arc<Settings>,
    aws: aws_config::SdkConfig,
    client: OnceCell<PhonePeV1>,
}

impl LazyPhonePe {
    pub fn new(settings: Arc<Settings>, aws: aws_config::SdkConfig) -> Self {
        Self { settings, aws, client: OnceCell::new() }
    }

    async fn client(&self) -> Result<&PhonePeV1, String> {
        self.client
            .get_or_try_init(|| async {
                let keys = fetch_salt(&self.settings.salt, &self.aws).await?;
                PhonePeV1::new(self.settings.gateway_config(keys)).map_err(|e| e.to_string())
            })
            .await
    }

    async fn ready(&self) -> Result<&PhonePeV1, GatewayError> {
        self.client().await.map_err(|reason| {
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

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStarted, GatewayError> {
        self.ready().await?.refund(req).await
    }

    async fn verify_notice(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<Notice, CallbackError> {
        // An unsigned notification is refused before the keys are loaded: it must not make us
        // call the secret store (nor turn a 401 into a 503 while the store is down).
        if headers.get(parkpay_gateway::phonepe_v1::X_VERIFY).is_none_or(|v| v.as_bytes().trim_ascii().is_empty()) {
            return Err(CallbackError::MissingSignature);
        }
        match self.client().await {
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

    #[test]
    fn secret_values() {
        assert_eq!(secret_json_field(r#"{"salt_key":"abc"}"#).as_deref(), Some("abc"));
        assert_eq!(secret_json_field(r#"{"PHONEPE_SALT_KEY":"abc"}"#).as_deref(), Some("abc"));
        assert_eq!(secret_json_field("plain-key"), None);
        assert!(salt_keys("  ".into(), SaltIndex::new(1)).is_err());
        assert!(salt_keys("k\n".into(), SaltIndex::new(1)).is_ok());
    }
}
