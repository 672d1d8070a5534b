//! The route table, written once: the Lambda functions, the local server, the `events/` tests
//! and the drift test against `template.yaml` all read it.

use std::collections::HashMap;

use http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::Instrument;

use crate::http::{ApiError, body_bytes, json_response, parse_body};
use crate::idempotency;
use crate::identity::caller;
use crate::service;
use crate::state::AppState;
use crate::telemetry::{self, RequestIds};

/// One endpoint of the contract (`docs/http-api.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ListLots,
    CreateSession,
    GetSession,
    CreatePayment,
    VerifyPayment,
    Refund,
    PhonePeCallback,
    ListObligations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub endpoint: Endpoint,
    pub method: &'static str,
    /// API Gateway route path, with `{name}` path parameters.
    pub path: &'static str,
    /// The SAM logical id of its function in `template.yaml`.
    pub function: &'static str,
    /// Its short name: the value of [`ENDPOINT_VARIABLE`] in its function's environment and the
    /// stem of its `events/<name>.json` files.
    pub name: &'static str,
    /// The Lambda binary (cargo `[[bin]]` name) that serves it: [`ROUTES_BINARY`] for every route.
    pub binary: &'static str,
    /// Whether a verified bearer token is required (API Gateway's JWT authorizer).
    pub requires_token: bool,
    /// Whether it talks to PhonePe (signs or verifies checksums): only these functions get the
    /// PhonePe client, the salt key's location and the permission to read it.
    pub uses_phonepe: bool,
}

/// The one binary every route function runs (`functions/routes`). The route functions all link
/// the whole handler table anyway, so one build serves them all (`sam build` links it once
/// instead of once per function); each function names its route in [`ENDPOINT_VARIABLE`].
pub const ROUTES_BINARY: &str = "parkpay-routes";

/// The environment variable naming a route function's endpoint ([`Route::name`]).
pub const ENDPOINT_VARIABLE: &str = "PARKPAY_ENDPOINT";

pub const ROUTES: &[Route] = &[
    Route {
        endpoint: Endpoint::ListLots,
        method: "GET",
        path: "/api/lots/",
        function: "ListLotsFunction",
        name: "list-lots",
        binary: ROUTES_BINARY,
        requires_token: false,
        uses_phonepe: false,
    },
    Route {
        endpoint: Endpoint::CreateSession,
        method: "POST",
        path: "/api/sessions/",
        function: "CreateSessionFunction",
        name: "create-session",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: false,
    },
    Route {
        endpoint: Endpoint::GetSession,
        method: "GET",
        path: "/api/sessions/{session_id}/",
        function: "GetSessionFunction",
        name: "get-session",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: false,
    },
    Route {
        endpoint: Endpoint::CreatePayment,
        method: "POST",
        path: "/api/payment/phonepe/create/",
        function: "CreatePaymentFunction",
        name: "create-payment",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: true,
    },
    Route {
        endpoint: Endpoint::VerifyPayment,
        method: "POST",
        path: "/api/payment/phonepe/verify/",
        function: "VerifyPaymentFunction",
        name: "verify-payment",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: true,
    },
    Route {
        endpoint: Endpoint::Refund,
        method: "POST",
        path: "/api/payment/phonepe/refund/",
        function: "RefundFunction",
        name: "refund-payment",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: true,
    },
    Route {
        endpoint: Endpoint::PhonePeCallback,
        method: "POST",
        path: "/api/payment/callback/phonepe/",
        function: "PhonePeCallbackFunction",
        name: "phonepe-callback",
        binary: ROUTES_BINARY,
        requires_token: false,
        uses_phonepe: true,
    },
    Route {
        endpoint: Endpoint::ListObligations,
        method: "GET",
        path: "/api/obligations/",
        function: "ListObligationsFunction",
        name: "list-obligations",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: false,
    },
];

/// A function with no HTTP route, invoked by an EventBridge schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledFunction {
    /// The SAM logical id of its function in `template.yaml`.
    pub function: &'static str,
    /// Its short name: the stem of its `events/<name>.json` files.
    pub name: &'static str,
    /// The Lambda binary (cargo `[[bin]]` name).
    pub binary: &'static str,
    /// Its schedule expression in `template.yaml`.
    pub schedule: &'static str,
    /// Whether it talks to PhonePe (see [`Route::uses_phonepe`]).
    pub uses_phonepe: bool,
}

/// The scheduled functions: reconciliation of PENDING payments and refunds every minute
/// (`crate::reconcile`; each invocation ticks once a second for up to 55 s).
pub const SCHEDULED: &[ScheduledFunction] = &[ScheduledFunction {
    function: "ReconcileFunction",
    name: "reconcile-payments",
    binary: "reconcile-payments",
    schedule: "rate(1 minute)",
    uses_phonepe: true,
}];

impl Endpoint {
    pub fn route(self) -> &'static Route {
        ROUTES.iter().find(|r| r.endpoint == self).expect("every endpoint has a route")
    }

    /// The endpoint whose [`Route::name`] is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        ROUTES.iter().find(|r| r.name == name).map(|r| r.endpoint)
    }
}

/// What a method and path name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    Found { route: &'static Route, params: HashMap<String, String> },
    MethodNotAllowed,
    NotFound,
}

/// Match a request path against the table (exact segments; `{name}` takes one non-empty one).
pub fn match_route(method: &str, path: &str) -> RouteMatch {
    let mut path_matched = false;
    for route in ROUTES {
        if let Some(params) = match_path(route.path, path) {
            if route.method.eq_ignore_ascii_case(method) {
                return RouteMatch::Found { route, params };
            }
            path_matched = true;
        }
    }
    if path_matched { RouteMatch::MethodNotAllowed } else { RouteMatch::NotFound }
}

fn match_path(template: &str, path: &str) -> Option<HashMap<String, String>> {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = HashMap::new();
    for (ts, ps) in t.iter().zip(&p) {
        if let Some(name) = ts.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if ps.is_empty() {
                return None;
            }
            params.insert(name.to_owned(), (*ps).to_owned());
        } else if ts != ps {
            return None;
        }
    }
    Some(params)
}

/// Serve one request for `endpoint`. Never fails: every outcome is an HTTP answer (an `Err`
/// handed to the Lambda runtime would become API Gateway's bare 502).
///
/// Every answer carries `x-request-id` (API Gateway's request id, see [`crate::telemetry`]), and
/// error bodies repeat it; every log line of the request is in its span
/// ([`telemetry::request_span`]).
pub async fn handle(state: &AppState, endpoint: Endpoint, mut req: Request) -> Response<Body> {
    let ids = RequestIds::of(&req);
    // The error answers made deeper down (`idempotency::run`) read the ids from here.
    req.extensions_mut().insert(ids.clone());
    let span = telemetry::request_span(endpoint.route(), &ids);
    async move {
        let mut resp = match dispatch(state, endpoint, req).await {
            Ok(resp) => resp,
            Err(e) => e.into_response_for(Some(&ids.request_id)),
        };
        telemetry::finish(&mut resp, &ids);
        resp
    }
    .instrument(span)
    .await
}

async fn dispatch(state: &AppState, endpoint: Endpoint, req: Request) -> Result<Response<Body>, ApiError> {
    match endpoint {
        Endpoint::ListLots => Ok(json_response(StatusCode::OK, &service::list_lots(state))),
        Endpoint::CreateSession => {
            let who = caller(&req)?;
            let body = parse_body(&req)?;
            Ok(json_response(StatusCode::CREATED, &service::create_session(state, &who, body).await?))
        }
        Endpoint::GetSession => {
            let who = caller(&req)?;
            let id = req.path_parameters_ref().and_then(|p| p.first("session_id")).unwrap_or_default().to_owned();
            Ok(json_response(StatusCode::OK, &service::get_session(state, &who, &id).await?))
        }
        Endpoint::CreatePayment => {
            let who = caller(&req)?;
            let body = parse_body(&req)?;
            idempotency::run(state, &who, "create-payment", &req, StatusCode::CREATED, |id| {
                service::create_payment(state, &who, body, id)
            })
            .await
        }
        Endpoint::VerifyPayment => {
            let who = caller(&req)?;
            let body = parse_body(&req)?;
            Ok(json_response(StatusCode::OK, &service::verify_payment(state, &who, body).await?))
        }
        Endpoint::Refund => {
            let who = caller(&req)?;
            let body = parse_body(&req)?;
            idempotency::run(state, &who, "refund", &req, StatusCode::ACCEPTED, |id| {
                service::refund(state, &who, body, id)
            })
            .await
        }
        Endpoint::PhonePeCallback => {
            let bytes = body_bytes(&req);
            if bytes.len() > crate::http::MAX_BODY_BYTES {
                telemetry::callback_rejected("TOO_LARGE");
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "BODY_TOO_LARGE",
                    "callback body is too large",
                ));
            }
            Ok(json_response(StatusCode::OK, &service::callback(state, req.headers(), bytes).await?))
        }
        Endpoint::ListObligations => {
            let who = caller(&req)?;
            let params = req.query_string_parameters_ref();
            let get = |k: &str| params.and_then(|p| p.first(k)).map(str::to_owned);
            let query = service::ObligationsQuery { state: get("state"), limit: get("limit"), cursor: get("cursor") };
            Ok(json_response(StatusCode::OK, &service::list_obligations(state, &who, &query).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(r.path.starts_with("/api/") && r.path.ends_with('/'), "{}", r.path);
            assert_eq!(r.binary, ROUTES_BINARY, "{}", r.name);
            assert_eq!(Endpoint::from_name(r.name), Some(r.endpoint));
            for other in &ROUTES[..i] {
                assert_ne!(r.endpoint, other.endpoint);
                assert_ne!(r.name, other.name);
                assert_ne!(r.function, other.function);
                assert!(!(r.path == other.path && r.method == other.method));
            }
        }
    }

    #[test]
    fn matching() {
        let RouteMatch::Found { route, params } = match_route("GET", "/api/sessions/ps_abc/") else { panic!() };
        assert_eq!(route.endpoint, Endpoint::GetSession);
        assert_eq!(params["session_id"], "ps_abc");
        assert!(matches!(match_route("POST", "/api/sessions/"), RouteMatch::Found { .. }));
        assert_eq!(match_route("DELETE", "/api/sessions/"), RouteMatch::MethodNotAllowed);
        assert_eq!(match_route("GET", "/api/sessions"), RouteMatch::NotFound);
        assert_eq!(match_route("GET", "/api/sessions//"), RouteMatch::NotFound);
        assert_eq!(match_route("GET", "/api/sessions/a/b/"), RouteMatch::NotFound);
        assert_eq!(match_route("GET", "/"), RouteMatch::NotFound);
    }
}
