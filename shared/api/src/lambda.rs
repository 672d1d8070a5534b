//! The Lambda entry point every function's `main` calls: configuration read and clients built
//! once per execution environment (cold start), then one handler for every invocation.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Body, Request, Response, service_fn};
use parkpay_gateway::phonepe_v1::PhonePeV1;
use parkpay_store::dynamo::DynamoStore;

use crate::config::Settings;
use crate::routes::{Endpoint, handle};
use crate::state::{AppState, SystemClock};

/// Build the shared state from the environment: DynamoDB store, PhonePe client, settings.
pub async fn state_from_env() -> Result<AppState, lambda_http::Error> {
    let settings = Settings::from_env()?;
    let gateway = PhonePeV1::new(settings.phonepe.clone())
        .map_err(|e| crate::ConfigError::new("PHONEPE_ENV", e.to_string()))?;
    let store = DynamoStore::from_env(settings.table.clone()).await;
    Ok(AppState {
        store: Arc::new(store),
        gateway: Arc::new(gateway),
        lots: Arc::new(settings.lots.clone()),
        clock: Arc::new(SystemClock),
        merchant_id: settings.phonepe.merchant_id.clone(),
        redirect_url: settings.phonepe.redirect_url.clone(),
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
