//! The PhonePe PG v2 client of a Lambda function: its two secrets (the OAuth client secret and
//! the webhook password) from SSM Parameter Store, read on first use rather than at cold start
//! (no network during init), kept in memory as secrets and never logged; its access token the
//! deployment's one ([`SharedToken`], in the table).
//!
//! A failure to read a secret is [`GatewayError::Unreachable`] (nothing was sent; the caller
//! answers 503) and is tried again on the next call.

use std::sync::Arc;

use async_trait::async_trait;
use parkpay_gateway::phonepe_v2::PhonePeV2;
use parkpay_gateway::{
    CallbackError, GatewayError, MerchantTxnId, Notice, PayRequest, PayStarted, PaymentGateway, RefundRequest,
    RefundStarted, StatusReport,
};
use parkpay_store::TokenStore;
use secrecy::SecretString;

use crate::config::{SecretSource, V2Settings};
use crate::shared_token::SharedToken;

/// The client for `cfg`, with the deployment's shared token in `tokens`.
pub fn shared_client(
    settings: &V2Settings,
    cfg: parkpay_gateway::PhonePeV2Config,
    tokens: Arc<dyn TokenStore>,
) -> Result<PhonePeV2, parkpay_gateway::V2ConfigError> {
    let name = settings.token_name();
    PhonePeV2::with_shared_tokens(cfg, |endpoint| Arc::new(SharedToken::new(tokens, endpoint, name)))
}

/// Read one SSM SecureString. The error names the parameter, never its value.
pub async fn fetch_parameter(parameter: &str, aws: &aws_config::SdkConfig) -> Result<SecretString, String> {
    use secrecy::ExposeSecret;
    let what = format!("SSM parameter {parameter}");
    let value = crate::secrets::read_parameter(parameter, &what, aws).await?;
    let value = value.expose_secret().trim();
    if value.is_empty() {
        return Err(format!("{what} has no value"));
    }
    Ok(SecretString::from(value.to_owned()))
}

async fn resolve(source: &SecretSource, aws: &aws_config::SdkConfig) -> Result<SecretString, String> {
    match source {
        SecretSource::Inline(s) => Ok(s.clone()),
        SecretSource::Ssm { parameter } => fetch_parameter(parameter, aws).await,
    }
}

/// A PG v2 client whose secrets are read from SSM on its first use (see the module docs).
pub struct LazyPhonePeV2 {
    settings: V2Settings,
    aws: aws_config::SdkConfig,
    tokens: Arc<dyn TokenStore>,
    client: tokio::sync::OnceCell<PhonePeV2>,
}

impl LazyPhonePeV2 {
    pub fn new(settings: V2Settings, aws: aws_config::SdkConfig, tokens: Arc<dyn TokenStore>) -> Self {
        Self { settings, aws, tokens, client: tokio::sync::OnceCell::new() }
    }

    async fn client(&self) -> Result<&PhonePeV2, String> {
        self.client
            .get_or_try_init(|| async {
                let secret = resolve(&self.settings.client_secret, &self.aws).await?;
                let password = resolve(&self.settings.webhook_password, &self.aws).await?;
                let cfg = self.settings.gateway_config(secret, password);
                let client = shared_client(&self.settings, cfg, self.tokens.clone()).map_err(|e| e.to_string())?;
                tracing::info!(client_id = %self.settings.client_id(), "PhonePe PG v2 secrets loaded");
                Ok(client)
            })
            .await
    }

    async fn ready(&self) -> Result<&PhonePeV2, GatewayError> {
        self.client().await.map_err(|reason| {
            tracing::error!(%reason, "PhonePe PG v2 secrets could not be loaded");
            GatewayError::Unreachable { reason: "PhonePe credentials unavailable".into() }
        })
    }
}

#[async_trait]
impl PaymentGateway for LazyPhonePeV2 {
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
        // An unauthenticated webhook is refused before the secrets are read: it must not make us
        // call SSM (nor turn a 401 into a 503 while SSM is down).
        let auth = headers.get(parkpay_gateway::phonepe_v2::AUTHORIZATION);
        if auth.is_none_or(|v| v.as_bytes().trim_ascii().is_empty()) {
            return Err(CallbackError::MissingSignature);
        }
        match self.client().await {
            Ok(c) => c.verify_notice(headers, body).await,
            Err(reason) => {
                tracing::error!(%reason, "PhonePe PG v2 secrets could not be loaded");
                Err(CallbackError::KeysUnavailable("PhonePe credentials unavailable".into()))
            }
        }
    }
}
