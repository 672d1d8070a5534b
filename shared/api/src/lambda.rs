//! The Lambda entry point every function's `main` calls: configuration read and clients built
//! once per execution environment (cold start, no network calls), then one handler for every
//! invocation.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Body, Request, Response, service_fn};
use parkpay_gateway::PaymentGateway;
use parkpay_gateway::phonepe_v1::PhonePeV1;
use parkpay_store::dynamo::DynamoStore;

use crate::config::Settings;
use crate::routes::{Endpoint, handle};
use crate::secrets::LazyPhonePe;
use crate::state::{AppState, Stores, SystemClock};

/// Build the shared state from the environment: settings, one AWS configuration, the DynamoDB
/// store and the PhonePe client (its salt key fetched on first use when it lives in SSM or
/// Secrets Manager).
pub async fn state_from_env() -> Result<AppState, lambda_http::Error> {
    let settings = Arc::new(Settings::from_env()?);
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let gateway: Arc<dyn PaymentGateway> = match settings.inline_salt_keys() {
        Some(keys) => Arc::new(
            PhonePeV1::new(settings.gateway_config(keys.clone()))
                .map_err(|e| crate::ConfigError::new("PHONEPE_ENV", e.to_string()))?,
        ),
        None => Arc::new(LazyPhonePe::new(settings.clone(), aws.clone())),
    };
    let stores = Stores::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), settings.table.clone()));
    Ok(AppState {
        store: stores.store,
        idempotency: stores.idempotency,
        pending: stores.pending,
        gateway,
        lots: Arc::new(settings.lots.clone()),
        clock: Arc::new(SystemClock),
        merchant_id: settings.merchant_id().to_owned(),
        redirect_url: settings.redirect_url().clone(),
    })
}

/// Run `endpoint` as a Lambda function behind API Gateway (HTTP API, payload 2.0).
pub async fn run(endpoint: Endpoint) -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let state = match state_from_env().await {
        Ok(s) => s,
        Err(e) => {
            // One clear line naming the setting; the runtime reports the init error.
            tracing::error!(error = %e, "start-up failed");
            return Err(e);
        }
    };
    lambda_http::run(service_fn(move |req: Request| {
        let state = state.clone();
        async move { Ok::<Response<Body>, Infallible>(handle(&state, endpoint, req).await) }
    }))
    .await
}

/// Run the reconciliation function: on each scheduled invocation, tick once a second until
/// shortly before the invocation's deadline (at most 55 s), so PhonePe's 3-second schedule is
/// kept with a one-minute EventBridge rule.
pub async fn run_reconciler() -> Result<(), lambda_http::Error> {
    use lambda_http::lambda_runtime::{self, LambdaEvent};
    lambda_http::tracing::init_default_subscriber();
    let state = state_from_env().await?;
    let reconciler = Arc::new(crate::reconcile::Reconciler::new(state));
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let reconciler = reconciler.clone();
        async move {
            let deadline_ms = event.context.deadline;
            let now_ms = || {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
            };
            let stop_at = now_ms() + 55_000.min(deadline_ms.saturating_sub(now_ms()).saturating_sub(5_000));
            let mut total = crate::reconcile::TickReport::default();
            loop {
                let r = reconciler.tick().await;
                total.checked += r.checked;
                total.applied += r.applied;
                total.expired += r.expired;
                total.errors += r.errors;
                total.pending = r.pending;
                if now_ms() + 1_000 >= stop_at {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Ok::<_, lambda_http::Error>(serde_json::json!({
                "pending": total.pending, "checked": total.checked, "applied": total.applied,
                "expired": total.expired, "errors": total.errors,
            }))
        }
    }))
    .await
}
