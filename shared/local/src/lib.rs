//! The local server: every route of the contract on one port, served by the very handlers the
//! Lambda functions run. Each request is turned into an API Gateway HTTP API (payload 2.0) event
//! — path parameters and verified JWT claims in the request context, as API Gateway fills them —
//! and handed to `lambda_http`'s own event parser, so the handler sees exactly what it would see
//! on AWS. Beside the API, on the same port:
//!
//! - `/_phonepe/…` the PhonePe simulator (pay page, PG v1 API, `/_phonepe/_sim/…` control API);
//! - `GET /payment-complete/` where the pay page sends the browser afterwards;
//! - `GET /openapi.json` and `GET /docs/` the API's OpenAPI document and a page of it ([`openapi`]);
//! - `GET /console/` the operators' console, a route of the table like the API's (served by
//!   [`parkpay_api::console`], as `ConsoleFunction` serves it on AWS); `/console` redirects there;
//! - `/_dev/…` ([`dev`]), only when listening on a loopback address and PhonePe is not
//!   PRODUCTION: `GET /_dev/token?sub=driver-1[&operator=true]` a signed token for local use, and
//!   in simulation mode `POST /_dev/clock/advance` `{"seconds": N}`, which moves parkpay's clock
//!   ([`clock::OffsetClock`]) forward and runs the reconciliation passes due meanwhile.
//!
//! Reconciliation runs in the background, on the code the scheduled Lambda runs
//! ([`parkpay_api::reconcile::Reconciler::tick`]): one pass every `PARKPAY_RECONCILE_EVERY_MS`
//! milliseconds (default 1000, once a second like the Lambda; `0` turns it off, e.g. for tests
//! that drive their own reconciler). A pass never overlaps another or a clock advance.

pub mod clock;
pub mod dev;
pub mod jwt;
pub mod openapi;
pub mod reconcile;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body as AxumBody, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Request as AxumRequest, Response as AxumResponse, StatusCode, header};
use axum::response::Html;
use axum::routing::get;
use base64::Engine;
use lambda_http::Body as LambdaBody;
use parkpay_api::http::ApiError;
use parkpay_api::{AppState, RouteMatch, Settings, Stores, match_route};
use parkpay_gateway::PaymentGateway;
use parkpay_gateway::phonepe_v1::PhonePeV1;
use parkpay_simulator::{Simulator, SimulatorConfig};
use parkpay_store::dynamo::{DynamoStore, create_table};
use parkpay_store::embedded::EmbeddedStore;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use crate::clock::OffsetClock;
use crate::dev::DevAccess;
use crate::jwt::JwtKeys;
use crate::reconcile::LocalReconciler;

/// Where the simulator is mounted on the local server.
pub const SIMULATOR_PREFIX: &str = "/_phonepe";

/// Largest body the local server reads (API Gateway's own limit is 10 MB; handlers refuse
/// anything over 64 KiB with a 413 of their own).
const MAX_READ_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] parkpay_api::ConfigError),
    #[error("PARKPAY_ADDR: cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("PARKPAY_DATA_DIR: {0}")]
    DataDir(String),
    #[error("simulator: {0}")]
    Simulator(String),
}

/// Read `PARKPAY_JWT_SECRET`, or else the secret kept in the data directory (made on first use),
/// so tokens minted by `parkpay-local token` keep working across restarts.
pub fn jwt_secret(env: &dyn Fn(&str) -> Option<String>, data_dir: &Path) -> Result<SecretString, StartError> {
    if let Some(s) = env("PARKPAY_JWT_SECRET").filter(|s| !s.is_empty()) {
        if s.len() < 16 {
            return Err(StartError::Config(parkpay_api::ConfigError::new(
                "PARKPAY_JWT_SECRET",
                "must be at least 16 characters",
            )));
        }
        return Ok(SecretString::from(s));
    }
    let path = data_dir.join("jwt-secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim().to_owned();
        if s.len() >= 16 {
            return Ok(SecretString::from(s));
        }
    }
    std::fs::create_dir_all(data_dir).map_err(|e| StartError::DataDir(format!("{}: {e}", data_dir.display())))?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StartError::DataDir(format!("no randomness for a JWT secret: {e}")))?;
    let secret = hex::encode(bytes);
    write_private(&path, &secret).map_err(|e| StartError::DataDir(format!("{}: {e}", path.display())))?;
    Ok(SecretString::from(secret))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(text.as_bytes())
}

pub fn data_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    PathBuf::from(env("PARKPAY_DATA_DIR").filter(|s| !s.is_empty()).unwrap_or_else(|| "data".to_owned()))
}

/// A running local server.
pub struct LocalServer {
    pub addr: SocketAddr,
    pub base_url: Url,
    pub state: AppState,
    pub simulator: Simulator,
    pub handle: JoinHandle<std::io::Result<()>>,
    /// parkpay's clock (`state.clock`): the system clock plus a forward-only offset.
    pub clock: Arc<OffsetClock>,
    /// Which `/_dev/` controls are served.
    pub dev: DevAccess,
    jwt: Arc<JwtKeys>,
    /// Background reconciliation, when on.
    background: Option<JoinHandle<()>>,
    /// Dropping it stops the server and background reconciliation.
    stop: Option<watch::Sender<()>>,
}

impl LocalServer {
    /// A token for `sub` (an operator's when `operator`), valid for a day.
    pub fn token(&self, sub: &str, operator: bool) -> String {
        self.jwt.mint(sub, operator, 24 * 3600).unwrap_or_default()
    }

    /// A token for a parking gate `sub` (group `gate`), valid for a day.
    pub fn gate_token(&self, sub: &str) -> String {
        self.jwt.mint_in(sub, &[parkpay_api::identity::GATE_GROUP], 24 * 3600).unwrap_or_default()
    }

    /// Stop accepting, let open requests and a running reconciliation pass finish, close idle
    /// connections, and release the store (the embedded database can then be opened again).
    pub async fn stop(mut self) {
        drop(self.stop.take());
        let _ = (&mut self.handle).await;
        if let Some(background) = self.background.take() {
            let _ = background.await;
        }
    }
}

#[derive(Clone)]
pub(crate) struct Shared {
    state: AppState,
    jwt: Arc<JwtKeys>,
    reconciler: Arc<LocalReconciler>,
}

/// Bind `PARKPAY_ADDR` (or `addr`), open the embedded store under the data directory, start
/// the simulator in process, and serve. `env` supplies the settings (`std::env::var` in the
/// binary; a map in tests). Simulation is the default: PhonePe settings the user does not give
/// point at the in-process simulator.
pub async fn start(env: &dyn Fn(&str) -> Option<String>) -> Result<LocalServer, StartError> {
    start_with_store(env, None).await
}

/// [`start`], on a store the caller built (tests: a DynamoDB Local table of their own).
pub async fn start_with_store(
    env: &dyn Fn(&str) -> Option<String>,
    stores: Option<Stores>,
) -> Result<LocalServer, StartError> {
    let addr_text = env("PARKPAY_ADDR").filter(|s| !s.is_empty()).unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let listener =
        TcpListener::bind(&addr_text).await.map_err(|source| StartError::Bind { addr: addr_text.clone(), source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: addr_text.clone(), source })?;
    let host = if addr.ip().is_unspecified() { format!("127.0.0.1:{}", addr.port()) } else { addr.to_string() };
    let base_url = Url::parse(&format!("http://{host}/")).map_err(|e| StartError::Simulator(e.to_string()))?;

    let data_dir = data_dir(env);
    std::fs::create_dir_all(&data_dir).map_err(|e| StartError::DataDir(format!("{}: {e}", data_dir.display())))?;
    let jwt = Arc::new(JwtKeys::new(jwt_secret(env, &data_dir)?));

    // Local defaults, each overridable from the environment.
    let sim_url = format!("http://{host}{SIMULATOR_PREFIX}/");
    let callback_url = format!("http://{host}/api/payment/callback/phonepe/");
    let mut defaults: HashMap<&str, String> = HashMap::from([
        ("PHONEPE_SIMULATION_MODE", "true".to_owned()),
        ("PHONEPE_SIMULATOR_URL", sim_url.clone()),
        ("PHONEPE_CALLBACK_URL", callback_url.clone()),
        ("PARKPAY_REDIRECT_URL", format!("http://{host}/payment-complete/")),
    ]);
    let simulation =
        env("PHONEPE_SIMULATION_MODE").filter(|v| !v.is_empty()).is_none_or(|v| v.eq_ignore_ascii_case("true"));
    if simulation {
        // Both APIs against the simulator, whichever PHONEPE_API_VERSION names, so that a
        // local deployment can switch and keep serving the other API's records.
        defaults.insert("PHONEPE_CLIENT_ID", parkpay_simulator::SANDBOX_CLIENT_ID.to_owned());
    }
    let lookup = |k: &str| env(k).filter(|v| !v.is_empty()).or_else(|| defaults.get(k).cloned());
    let settings = Settings::from_lookup(&lookup)?;
    let inline_only = |var: &'static str| {
        StartError::Config(parkpay_api::ConfigError::new(
            var,
            "the local server needs the secret itself (not an SSM or Secrets Manager reference)",
        ))
    };
    let v1_keys = match settings.v1() {
        Some(v1) => Some(v1.inline_salt_keys().cloned().ok_or_else(|| inline_only("PHONEPE_SALT_KEY"))?),
        None => None,
    };
    let v2_cfg = match settings.v2() {
        Some(v2) => Some(v2.inline_config().ok_or_else(|| inline_only("PHONEPE_CLIENT_SECRET"))?),
        None => None,
    };

    let merchant_id = settings.merchant_id().unwrap_or(parkpay_api::config::SIM_MERCHANT_ID).to_owned();
    let sim_keys = v1_keys.clone().unwrap_or_else(|| SimulatorConfig::sandbox().merchants[0].1.clone());
    let mut sim_cfg = SimulatorConfig::for_merchant(merchant_id.clone(), sim_keys);
    if let Some(cfg) = &v2_cfg {
        use secrecy::ExposeSecret;
        // The simulator plays PhonePe's side of this client: its webhooks go to our callback
        // route, as the dashboard setting would send them.
        sim_cfg = sim_cfg
            .with_v2_client(cfg.client_id.clone(), cfg.client_secret.expose_secret(), cfg.client_version)
            .with_v2_webhook(
                Some(Url::parse(&lookup("PHONEPE_CALLBACK_URL").unwrap_or(callback_url)).map_err(|e| {
                    StartError::Config(parkpay_api::ConfigError::new("PHONEPE_CALLBACK_URL", e.to_string()))
                })?),
                cfg.webhook.username(),
                lookup("PHONEPE_WEBHOOK_PASSWORD").as_deref().unwrap_or(parkpay_simulator::SANDBOX_WEBHOOK_PASSWORD),
            );
    }
    if let Some(ms) = env("PARKPAY_SIM_REFUND_SETTLE_MS").filter(|s| !s.is_empty()) {
        let ms: u64 = ms.parse().map_err(|_| {
            StartError::Config(parkpay_api::ConfigError::new(
                "PARKPAY_SIM_REFUND_SETTLE_MS",
                "must be a number of milliseconds",
            ))
        })?;
        sim_cfg.refund_settle_delay = std::time::Duration::from_millis(ms);
    }
    sim_cfg.public_base_url = Some(Url::parse(&sim_url).map_err(|e| StartError::Simulator(e.to_string()))?);
    let simulator = Simulator::new(sim_cfg).map_err(|e| StartError::Simulator(e.to_string()))?;

    let stores: Stores = match stores {
        Some(stores) => stores,
        None => open_stores(env, &settings.table, true).await?,
    };
    let client_error = |e: String| StartError::Config(parkpay_api::ConfigError::new("PHONEPE_ENV", e));
    let v1: Option<Arc<dyn PaymentGateway>> = match (settings.v1(), v1_keys) {
        (Some(v1), Some(keys)) => {
            Some(Arc::new(PhonePeV1::new(v1.gateway_config(keys)).map_err(|e| client_error(e.to_string()))?))
        }
        _ => None,
    };
    let v2: Option<Arc<dyn PaymentGateway>> = match (settings.v2(), v2_cfg) {
        (Some(v2), Some(cfg)) => Some(Arc::new(
            parkpay_api::secrets_v2::shared_client(v2, cfg, stores.tokens.clone())
                .map_err(|e| client_error(e.to_string()))?,
        )),
        _ => None,
    };
    let gateways = parkpay_api::Gateways::new(settings.api, v1, v2)?;
    let every = reconcile_every(env)?;
    let scan = stores.scan.clone();
    let dev = DevAccess::new(&addr, env("PHONEPE_ENV").as_deref(), settings.environment());
    let clock = Arc::new(OffsetClock::new());
    let state = AppState {
        store: stores.store,
        idempotency: stores.idempotency,
        pending: stores.pending,
        attention: stores.attention,
        gateways: gateways.map(parkpay_api::telemetry::MeteredGateway::wrap),
        lots: Arc::new(settings.lots.clone()),
        clock: clock.clone(),
        merchant_id: settings.merchant_id().unwrap_or_default().to_owned(),
        redirect_url: settings.redirect_url().clone(),
        policy: parkpay_api::Policy::from_lookup(env)?,
        passes: pass_keys(env, &data_dir)?,
    };
    let reconciler = Arc::new(LocalReconciler::new(state.clone(), clock.clone()));

    let shared = Shared { state: state.clone(), jwt: jwt.clone(), reconciler: reconciler.clone() };
    let app = dev
        .router()
        .route("/payment-complete/", get(payment_complete))
        .route("/console", get(console_redirect))
        .merge(openapi::router())
        .fallback(api)
        .with_state(shared)
        .nest(SIMULATOR_PREFIX, simulator.router());
    let (stop_tx, mut stop_rx) = watch::channel(());
    let background = every.map(|every| reconciler.spawn_background(every, stop_rx.clone()));
    if every.is_some() {
        // With background reconciliation on, sweep the store once at start: a data directory
        // written by an earlier version may hold money owed with no obligation.
        let (store, clock) = (state.store.clone(), state.clock.clone());
        tokio::spawn(async move {
            match parkpay_api::sweep::sweep_all(&*store, &*scan, &*clock, SWEEP_PAGE_ITEMS).await {
                Ok(r) if r.total() > 0 || r.errors > 0 => {
                    tracing::warn!(sessions = r.sessions, turned = ?r.turned, errors = r.errors, "start-up sweep")
                }
                Ok(r) => tracing::info!(sessions = r.sessions, "start-up sweep: nothing owed without an obligation"),
                Err(e) => tracing::error!(alert = "RECONCILIATION_ERROR", error = %e, "start-up sweep failed"),
            }
        });
    }
    let handle = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.changed().await;
            })
            .await
    });
    Ok(LocalServer { addr, base_url, state, simulator, handle, clock, dev, jwt, background, stop: Some(stop_tx) })
}

/// The entry pass keys: `PARKPAY_PASS_KEYS` if given, else the pair kept in the data directory
/// (made on first start).
fn pass_keys(
    env: &dyn Fn(&str) -> Option<String>,
    data_dir: &Path,
) -> Result<Arc<dyn parkpay_api::passes::PassKeySource>, StartError> {
    use parkpay_api::passes::{FixedPassKeys, PassKeySetting, local_keys};
    let keys = match PassKeySetting::from_lookup(env)?.inline() {
        Some(keys) => keys?,
        None => local_keys(data_dir).map_err(StartError::DataDir)?,
    };
    Ok(Arc::new(FixedPassKeys(Arc::new(keys))))
}

/// The store the settings name (`PARKPAY_STORE`: `embedded`, the default, under the data
/// directory; or `dynamodb`, table `table`, where the AWS SDK's environment points). With
/// `create`, a missing DynamoDB table is created (DynamoDB Local); the sweep command never
/// creates one.
pub async fn open_stores(
    env: &dyn Fn(&str) -> Option<String>,
    table: &str,
    create: bool,
) -> Result<Stores, StartError> {
    let data_dir = data_dir(env);
    Ok(match env("PARKPAY_STORE").filter(|s| !s.is_empty()).as_deref() {
        None | Some("embedded") => {
            let db_path = data_dir.join("parkpay.redb");
            Stores::new(
                EmbeddedStore::open(&db_path)
                    .map_err(|e| StartError::DataDir(format!("{}: {e}", db_path.display())))?,
            )
        }
        Some("dynamodb") => {
            // The AWS SDK's own environment says where (AWS_ENDPOINT_URL_DYNAMODB for
            // DynamoDB Local; region and credentials for a deployment's table).
            let store = DynamoStore::from_env(table.to_owned()).await;
            if create {
                create_table(store.client(), table).await.map_err(|e| {
                    StartError::Config(parkpay_api::ConfigError::new(
                        "PARKPAY_TABLE",
                        format!("cannot create or reach it: {e}"),
                    ))
                })?;
            }
            Stores::new(store)
        }
        Some(_) => {
            return Err(StartError::Config(parkpay_api::ConfigError::new(
                "PARKPAY_STORE",
                "must be embedded or dynamodb",
            )));
        }
    })
}

/// Items per page of the sweep's scan.
pub const SWEEP_PAGE_ITEMS: usize = 500;

/// `PARKPAY_RECONCILE_EVERY_MS`: the background period, `None` when `0` (off).
fn reconcile_every(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Duration>, StartError> {
    let Some(text) = env("PARKPAY_RECONCILE_EVERY_MS").filter(|s| !s.trim().is_empty()) else {
        return Ok(Some(reconcile::DEFAULT_EVERY));
    };
    match text.trim().parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(ms) => Ok(Some(Duration::from_millis(ms))),
        Err(_) => Err(StartError::Config(parkpay_api::ConfigError::new(
            "PARKPAY_RECONCILE_EVERY_MS",
            "must be a number of milliseconds (0 turns background reconciliation off)",
        ))),
    }
}

async fn payment_complete(Query(q): Query<HashMap<String, String>>) -> Html<String> {
    let session = q.get("session_id").map(|s| html_escape(s)).unwrap_or_default();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>parkpay: payment finished</title></head>\
         <body><main><h1>Payment finished</h1><p>Parking session <code>{session}</code>: \
         its status is at <code>GET /api/sessions/{session}/</code>.</p></main></body></html>"
    ))
}

/// `/console` → `/console/`, where the page is (its script and stylesheet are relative to it).
async fn console_redirect() -> axum::response::Redirect {
    axum::response::Redirect::permanent(parkpay_api::console::PATH)
}

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

pub(crate) fn api_error(e: ApiError) -> AxumResponse<AxumBody> {
    to_axum(e.into_response())
}

/// An error answer naming the request `request_id` (body and `x-request-id`).
fn api_error_for(e: ApiError, request_id: &str) -> AxumResponse<AxumBody> {
    let mut resp = to_axum(e.into_response_for(Some(request_id)));
    if let Ok(v) = axum::http::HeaderValue::from_str(request_id) {
        resp.headers_mut().insert(parkpay_api::telemetry::REQUEST_ID_HEADER, v);
    }
    resp
}

fn to_axum(resp: lambda_http::Response<LambdaBody>) -> AxumResponse<AxumBody> {
    let (parts, body) = resp.into_parts();
    let bytes: Vec<u8> = match body {
        LambdaBody::Empty => Vec::new(),
        LambdaBody::Text(t) => t.into_bytes(),
        LambdaBody::Binary(b) => b,
        #[allow(unreachable_patterns)]
        _ => Vec::new(),
    };
    AxumResponse::from_parts(parts, AxumBody::from(bytes))
}

/// Every `/api/…` request: route, authenticate, convert to an API Gateway event, handle.
async fn api(State(shared): State<Shared>, req: AxumRequest<AxumBody>) -> AxumResponse<AxumBody> {
    // The request's id: in the event as API Gateway's would be, so the shared handler answers
    // with it (x-request-id, error bodies) and logs it; also on the answers made here.
    let request_id = parkpay_api::telemetry::new_request_id();
    let api_error = |e: ApiError| api_error_for(e, &request_id);
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let (route, params) = match match_route(parts.method.as_str(), &path) {
        RouteMatch::Found { route, params } => (route, params),
        RouteMatch::MethodNotAllowed => {
            let mut resp = api_error(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "method not allowed here",
            ));
            // RFC 9110: a 405 says which methods the path has.
            if let Ok(allow) = axum::http::HeaderValue::from_str(&allowed_methods(&path)) {
                resp.headers_mut().insert(header::ALLOW, allow);
            }
            return resp;
        }
        RouteMatch::NotFound => {
            return api_error(ApiError::new(StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND", "no such route"));
        }
    };
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_READ_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return api_error(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BODY_TOO_LARGE",
                "request body is too large",
            ));
        }
    };
    // What API Gateway's JWT authorizer does before the function runs.
    let claims = if route.requires_token {
        match bearer(&parts.headers).map(|t| shared.jwt.verify(t)) {
            Some(Ok(claims)) => Some(claims),
            Some(Err(e)) => return api_error(ApiError::unauthenticated(e.to_string())),
            None => return api_error(ApiError::unauthenticated("a bearer token is required")),
        }
    } else {
        None
    };
    let mut event =
        gateway_event(&parts.method, &parts.uri, &parts.headers, route.method, route.path, &params, claims, &bytes);
    event["requestContext"]["requestId"] = serde_json::Value::String(request_id.clone());
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(r) => r,
        Err(e) => {
            return api_error(ApiError::bad_request("MALFORMED_REQUEST", format!("request could not be read: {e}")));
        }
    };
    let state = shared.state.clone();
    let endpoint = route.endpoint;
    // A panic in a handler must not take the server down: it becomes a 500 like any bug.
    match tokio::spawn(async move { parkpay_api::handle(&state, endpoint, request).await }).await {
        Ok(resp) => to_axum(resp),
        Err(e) => api_error(ApiError::internal(format!("handler panicked: {e}"))),
    }
}

/// The methods of the routes whose path is `path`, for `Allow`.
fn allowed_methods(path: &str) -> String {
    let methods: Vec<&str> = parkpay_api::ROUTES
        .iter()
        .filter(|r| matches!(match_route(r.method, path), RouteMatch::Found { route, .. } if route == *r))
        .map(|r| r.method)
        .collect();
    methods.join(", ")
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The API Gateway HTTP API (payload format 2.0) event for this request.
#[allow(clippy::too_many_arguments)]
pub fn gateway_event(
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    route_method: &str,
    route_path: &str,
    params: &HashMap<String, String>,
    claims: Option<HashMap<String, String>>,
    body: &[u8],
) -> serde_json::Value {
    // As behind API Gateway, Host and X-Forwarded-Proto are the server's own: lambda_http builds
    // the request URI from them and panics on one that makes no URL, so the client's Host is kept
    // only when it makes one, and the scheme is always http.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| Url::parse(&format!("http://{h}{}", uri.path())).is_ok())
        .unwrap_or("localhost");
    let mut hdrs = serde_json::Map::new();
    hdrs.insert("host".into(), serde_json::Value::String(host.to_owned()));
    hdrs.insert("x-forwarded-proto".into(), serde_json::Value::String("http".into()));
    for (name, value) in headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let key = name.as_str().to_ascii_lowercase();
        if key == "host" || key == "x-forwarded-proto" {
            continue;
        }
        match hdrs.get_mut(&key) {
            Some(serde_json::Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                hdrs.insert(key, serde_json::Value::String(v));
            }
        }
    }
    let query: HashMap<String, String> =
        uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let (body_text, is_base64) = match std::str::from_utf8(body) {
        Ok(t) => (t.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let route_key = format!("{route_method} {route_path}");
    let mut ctx = serde_json::json!({
        "accountId": "local",
        "apiId": "local",
        "domainName": host,
        "domainPrefix": "local",
        "http": {
            "method": method.as_str(),
            "path": uri.path(),
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": headers.get(header::USER_AGENT).and_then(|h| h.to_str().ok()).unwrap_or(""),
        },
        "requestId": parkpay_api::telemetry::new_request_id(),
        "routeKey": route_key,
        "stage": "$default",
        "time": "",
        "timeEpoch": now_ms as i64,
    });
    if let Some(claims) = claims {
        ctx["authorizer"] = serde_json::json!({ "jwt": { "claims": claims, "scopes": null } });
    }
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": uri.path(),
        "rawQueryString": uri.query().unwrap_or(""),
        "headers": hdrs,
        "requestContext": ctx,
        "isBase64Encoded": is_base64,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = serde_json::json!(query);
    }
    if !params.is_empty() {
        event["pathParameters"] = serde_json::json!(params);
    }
    if !body.is_empty() {
        event["body"] = serde_json::Value::String(body_text);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On the local server the client controls Host and X-Forwarded-Proto (behind API Gateway,
    /// API Gateway sets them). `lambda_http` builds the request URI from them with `unwrap`, so
    /// a value that makes no URL must never reach it: the request's task would panic and the
    /// client would get a dropped connection instead of an answer.
    #[test]
    fn client_host_and_forwarded_proto_cannot_break_event_parsing() {
        let uri: axum::http::Uri = "/api/lots/?a=b".parse().unwrap();
        let cases = [
            ("host", "a b"),
            ("host", "a:99999"),
            ("host", "[::1"),
            ("host", ""),
            ("host", "ä.example"),
            ("host", "x/y"),
            ("host", "%"),
            ("x-forwarded-proto", "1"),
            ("x-forwarded-proto", ""),
            ("x-forwarded-proto", "a b"),
            ("x-forwarded-proto", "ftp"),
        ];
        for (name, value) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(name, axum::http::HeaderValue::from_bytes(value.as_bytes()).unwrap());
            let event = gateway_event(&Method::GET, &uri, &headers, "GET", "/api/lots/", &HashMap::new(), None, b"");
            let parsed = std::panic::catch_unwind(|| lambda_http::request::from_str(&event.to_string()).is_ok());
            assert!(matches!(parsed, Ok(true)), "{name}: {value:?} breaks the event");
        }
    }
}
