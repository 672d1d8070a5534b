//! parkpay's application layer: the use cases ([`service`]) and the HTTP handlers that serve
//! them ([`routes::handle`]), on `lambda_http`'s request and response types so that exactly the
//! same code runs behind API Gateway (one Lambda per route, [`lambda::run`]) and on the local
//! server (all routes on one port).

pub mod config;
pub mod console;
pub mod gateways;
pub mod http;
pub mod idempotency;
pub mod identity;
#[cfg(feature = "aws")]
pub mod lambda;
#[cfg(feature = "passes")]
pub mod passes;
pub mod reconcile;
pub mod routes;
#[cfg(feature = "aws")]
pub mod secrets;
#[cfg(feature = "aws")]
pub mod secrets_v2;
pub mod service;
#[cfg(feature = "aws")]
pub mod shared_token;
pub mod state;
pub mod sweep;
pub mod telemetry;
pub mod views;

pub use config::{ConfigError, CoreSettings, Settings};
pub use gateways::Gateways;
pub use routes::{
    ENDPOINT_VARIABLE, Endpoint, ROUTES, ROUTES_BINARY, Route, RouteMatch, SCHEDULED, ScheduledFunction, handle,
    match_route,
};
pub use state::{AppState, Clock, Policy, Stores, SystemClock};
