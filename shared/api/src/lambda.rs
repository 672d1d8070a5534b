//! The Lambda entry point every function's `main` calls: configuration read and clients built
//! once per execution environment (cold start, no network calls), then one handler for every
//! invocation.

use std::convert::Infallible;
use std::sync::Arc;

use async_trait::async_trait;
use lambda_http::{Body, Request, Response, service_fn};
use parkpay_gateway::phonepe_v1::PhonePeV1;
use parkpay_gateway::{
    CallbackError, GatewayError, MerchantTxnId, Notice, PayRequest, PayStarted, PaymentGateway, RefundRequest,
    RefundStarted, StatusReport,
};
use parkpay_store::dynamo::DynamoStore;
use url::Url;

use crate::Gateways;
use crate::config::{CoreSettings, Settings};
use crate::routes::{Endpoint, handle};
use crate::secrets::LazyPhonePe;
use crate::state::{AppState, Stores, SystemClock};

/// Build the shared state of `endpoint`'s function from the environment.
pub async fn state_from_env(endpoint: Endpoint) -> Result<AppState, lambda_http::Error> {
    build_state(endpoint.route().uses_phonepe).await
}

/// Settings, one AWS configuration and the DynamoDB store for every function; the PhonePe
/// client (its salt key fetched on first use when it lives in SSM or Secrets Manager) only when
/// `phonepe` is true. Nothing here touches the network (the SDK connects on its first call) or
/// reads a certificate file (see [`sdk_config`]).
async fn build_state(phonepe: bool) -> Result<AppState, lambda_http::Error> {
    let aws = sdk_config().await;
    let lookup = |k: &str| std::env::var(k).ok();
    let state = state_with(phonepe, &lookup, &aws, |table| {
        Stores::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table.to_owned()))
    })?;
    Ok(state)
}

/// The AWS SDK's configuration for a Lambda function, built cheaply:
/// - its HTTPS client trusts the same compiled-in roots as the PhonePe client
///   (`parkpay_gateway::tls`) instead of loading the system's certificate files at init;
/// - credentials from the environment, where Lambda puts them (`AWS_ACCESS_KEY_ID`, …), instead
///   of building the whole default chain (whose web-identity provider builds an STS client at
///   init); without those variables (SnapStart's container credentials, a developer's profile)
///   the default chain as usual;
/// - the region from `AWS_REGION` (Lambda sets it), else the default chain.
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls;
    let trust =
        tls::TrustStore::empty().with_native_roots(false).with_pem_certificate(parkpay_gateway::tls::root_certs_pem());
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    match tls::TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => {
            let client = aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
                .tls_context(context)
                .build_https();
            loader = loader.http_client(client);
        }
        // Cannot happen (the builder only stores its inputs); the SDK's default client then.
        Err(e) => tracing::warn!(error = %e, "compiled-in trust store refused; using the SDK's default HTTPS client"),
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        loader = loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
    }
    if let Ok(region) = std::env::var("AWS_REGION")
        && !region.is_empty()
    {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader.load().await
}

/// The state a function builds at cold start, from settings read through `env`, on the stores
/// `stores(table)` makes. The Lambda functions use DynamoDB; the serverless tests pass the same
/// environment with their own stores, so they build exactly what a function builds.
pub fn state_with(
    phonepe: bool,
    env: &dyn Fn(&str) -> Option<String>,
    aws: &aws_config::SdkConfig,
    stores: impl FnOnce(&str) -> Stores,
) -> Result<AppState, crate::ConfigError> {
    if !phonepe {
        let core = CoreSettings::from_lookup(env)?;
        let stores = stores(&core.table);
        // `about:blank` is never used: only create-payment redirects, and it has PhonePe.
        let unused =
            Url::parse("about:blank").map_err(|e| crate::ConfigError::new("PARKPAY_REDIRECT_URL", e.to_string()))?;
        let gateways = Gateways::only(parkpay_domain::GatewayApi::V1, Arc::new(NoPhonePe));
        return assemble(stores, gateways, core.lots, String::new(), unused, env, aws);
    }
    let settings = Settings::from_lookup(env)?;
    let stores = stores(&settings.table);
    let gateways = gateways(&settings, aws, &stores)?;
    let merchant_id = settings.merchant_id().unwrap_or_default().to_owned();
    let redirect_url = settings.redirect_url().clone();
    assemble(stores, gateways, settings.lots, merchant_id, redirect_url, env, aws)
}

/// The PhonePe clients `settings` configure, as a function builds them: a secret that lives in
/// SSM or Secrets Manager is read on first use; PG v2's access token is the deployment's one,
/// kept in `stores`' table.
pub fn gateways(
    settings: &Settings,
    aws: &aws_config::SdkConfig,
    stores: &Stores,
) -> Result<Gateways, crate::ConfigError> {
    let v1: Option<Arc<dyn PaymentGateway>> = match settings.v1() {
        None => None,
        Some(v1) => Some(match v1.inline_salt_keys() {
            Some(keys) => Arc::new(
                PhonePeV1::new(v1.gateway_config(keys.clone()))
                    .map_err(|e| crate::ConfigError::new("PHONEPE_ENV", e.to_string()))?,
            ),
            None => Arc::new(LazyPhonePe::new(v1.clone(), aws.clone())),
        }),
    };
    let v2: Option<Arc<dyn PaymentGateway>> = match settings.v2() {
        None => None,
        Some(v2) => Some(match v2.inline_config() {
            Some(cfg) => Arc::new(
                crate::secrets_v2::shared_client(v2, cfg, stores.tokens.clone())
                    .map_err(|e| crate::ConfigError::new("PHONEPE_ENV", e.to_string()))?,
            ),
            None => Arc::new(crate::secrets_v2::LazyPhonePeV2::new(v2.clone(), aws.clone(), stores.tokens.clone())),
        }),
    };
    Gateways::new(settings.api, v1, v2)
}

/// The state from its parts; every call to PhonePe counted and timed ([`crate::telemetry`]).
pub fn assemble(
    stores: Stores,
    gateways: Gateways,
    lots: parkpay_domain::LotCatalog,
    merchant_id: String,
    redirect_url: Url,
    env: &dyn Fn(&str) -> Option<String>,
    aws: &aws_config::SdkConfig,
) -> Result<AppState, crate::ConfigError> {
    Ok(AppState {
        store: stores.store,
        idempotency: stores.idempotency,
        pending: stores.pending,
        attention: stores.attention,
        gateways: gateways.map(crate::telemetry::MeteredGateway::wrap),
        lots: Arc::new(lots),
        clock: Arc::new(SystemClock),
        merchant_id,
        redirect_url,
        policy: crate::state::Policy::from_lookup(env)?,
        passes: pass_keys(env, aws)?,
    })
}

/// The entry pass keys a function is given (`crate::passes`): inline, or from SSM on first use;
/// none (the pass routes answer 503) when neither is configured.
pub fn pass_keys(
    env: &dyn Fn(&str) -> Option<String>,
    aws: &aws_config::SdkConfig,
) -> Result<Arc<dyn crate::passes::PassKeySource>, crate::ConfigError> {
    use crate::passes::{FixedPassKeys, NoPassKeys, PassKeySetting, SsmPassKeys};
    let setting = PassKeySetting::from_lookup(env)?;
    if let Some(keys) = setting.inline() {
        return Ok(Arc::new(FixedPassKeys(Arc::new(keys?))));
    }
    Ok(match setting {
        PassKeySetting::Ssm { parameter } => Arc::new(SsmPassKeys::new(parameter, aws.clone())),
        _ => Arc::new(NoPassKeys),
    })
}

/// The gateway of a function that never talks to PhonePe (`Route::uses_phonepe` false): its
/// handlers never call it; if one ever did, the caller would get a clean 503, not a panic.
pub struct NoPhonePe;

const NO_PHONEPE: &str = "this function is not configured to talk to PhonePe";

#[async_trait]
impl PaymentGateway for NoPhonePe {
    async fn pay(&self, _: &PayRequest) -> Result<PayStarted, GatewayError> {
        Err(GatewayError::Unreachable { reason: NO_PHONEPE.into() })
    }

    async fn status(&self, _: &MerchantTxnId) -> Result<StatusReport, GatewayError> {
        Err(GatewayError::Unreachable { reason: NO_PHONEPE.into() })
    }

    async fn refund(&self, _: &RefundRequest) -> Result<RefundStarted, GatewayError> {
        Err(GatewayError::Unreachable { reason: NO_PHONEPE.into() })
    }

    async fn verify_notice(&self, _: &http::HeaderMap, _: &[u8]) -> Result<Notice, CallbackError> {
        Err(CallbackError::KeysUnavailable(NO_PHONEPE.into()))
    }
}

/// The route function's `main` (`functions/routes`, binary [`crate::ROUTES_BINARY`]): serve the
/// endpoint named by [`crate::ENDPOINT_VARIABLE`] in the function's environment. Missing or
/// unknown, the function fails its init with one line naming the variable and the names it takes.
///
/// [`ANY_ENDPOINT`] serves every route, each request by its method and path, with the settings of
/// a PhonePe function: for a developer's `cargo lambda watch`, where one process takes every file
/// of `events/`. On AWS each function names its own route (the drift test checks the template).
pub async fn run_from_env() -> Result<(), lambda_http::Error> {
    let var = crate::ENDPOINT_VARIABLE;
    let name = std::env::var(var).unwrap_or_default();
    if name == ANY_ENDPOINT {
        return serve(None).await;
    }
    match Endpoint::from_name(&name) {
        Some(endpoint) => serve(Some(endpoint)).await,
        None => {
            let names: Vec<&str> = crate::ROUTES.iter().map(|r| r.name).collect();
            let message = format!("{var} is {name:?}: set it to one of {} (or {ANY_ENDPOINT})", names.join(", "));
            crate::telemetry::init_lambda();
            tracing::error!(error = %message, "start-up failed");
            Err(message.into())
        }
    }
}

/// The value of [`crate::ENDPOINT_VARIABLE`] that serves every route (development only).
pub const ANY_ENDPOINT: &str = "any";

/// Run `endpoint` as a Lambda function behind API Gateway (HTTP API, payload 2.0). Logs and
/// metrics as [`crate::telemetry::init_lambda`] sets them up; each invocation's metrics are
/// written (EMF, on stdout) when it has its answer.
pub async fn run(endpoint: Endpoint) -> Result<(), lambda_http::Error> {
    serve(Some(endpoint)).await
}

/// [`run`] for one endpoint, or for every route (`None`, see [`run_from_env`]).
async fn serve(endpoint: Option<Endpoint>) -> Result<(), lambda_http::Error> {
    crate::telemetry::init_lambda();
    let built = match endpoint {
        Some(endpoint) => state_from_env(endpoint).await,
        None => build_state(true).await,
    };
    let state = match built {
        Ok(s) => s,
        Err(e) => {
            // One clear line naming the setting; the runtime reports the init error.
            tracing::error!(error = %e, "start-up failed");
            return Err(e);
        }
    };
    lambda_http::run(service_fn(move |req: Request| {
        let state = state.clone();
        async move {
            let ids = crate::telemetry::RequestIds::of(&req);
            crate::telemetry::begin_invocation(Some(&ids.request_id), ids.lambda_request_id.as_deref());
            let resp = match endpoint.or_else(|| endpoint_of(&req)) {
                Some(endpoint) => handle(&state, endpoint, req).await,
                None => crate::http::ApiError::new(
                    http::StatusCode::NOT_FOUND,
                    "ROUTE_NOT_FOUND",
                    format!("no route for {} {}", req.method(), req.uri().path()),
                )
                .into_response_for(Some(&ids.request_id)),
            };
            crate::telemetry::end_invocation();
            Ok::<Response<Body>, Infallible>(resp)
        }
    }))
    .await
}

/// The endpoint a request's method and path name, if any.
fn endpoint_of(req: &Request) -> Option<Endpoint> {
    match crate::routes::match_route(req.method().as_str(), req.uri().path()) {
        crate::RouteMatch::Found { route, .. } => Some(route.endpoint),
        _ => None,
    }
}

/// Run the reconciliation function: on each scheduled invocation, tick once a second until
/// shortly before the invocation's deadline (at most 55 s), so PhonePe's 3-second schedule is
/// kept with a one-minute EventBridge rule.
pub async fn run_reconciler() -> Result<(), lambda_http::Error> {
    use lambda_http::lambda_runtime::{self, LambdaEvent};
    use tracing::Instrument;
    crate::telemetry::init_lambda();
    let state = match build_state(true).await {
        Ok(s) => s,
        Err(e) => {
            // The same one clear line as the route functions (see `serve`).
            tracing::error!(error = %e, "start-up failed");
            return Err(e);
        }
    };
    let reconciler = Arc::new(crate::reconcile::Reconciler::new(state));
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let reconciler = reconciler.clone();
        async move {
            let id = event.context.request_id;
            crate::telemetry::begin_invocation(None, Some(&id));
            let span = crate::telemetry::invocation_span(&id);
            let total = reconciler.run_invocation(event.context.deadline).instrument(span).await;
            crate::telemetry::end_invocation();
            Ok::<_, lambda_http::Error>(serde_json::json!({
                "pending": total.pending, "checked": total.checked, "applied": total.applied,
                "expired": total.expired, "sent": total.sent, "errors": total.errors, "deferred": total.deferred,
            }))
        }
    }))
    .await
}
