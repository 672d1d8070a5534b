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
use parkpay_domain::ScanKind;

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
    ListSessions,
    GetPass,
    GetPassQr,
    PassKeys,
    RevokedPasses,
    RecordEntry,
    RecordExit,
    GetReceipt,
    PaymentQr,
    ExtendSession,
    SearchSessions,
    SettlementReport,
    /// The operators' console page and its files (`crate::console`): not part of the API.
    Console,
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
    /// Whether it signs entry passes or publishes their keys: only these functions get the pass
    /// keys' location (`PARKPAY_PASS_KEYS_SSM_PARAMETER`) and the permission to read it.
    pub uses_pass_keys: bool,
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
        uses_pass_keys: false,
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
        uses_pass_keys: false,
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
        uses_pass_keys: false,
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
        uses_pass_keys: false,
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
        uses_pass_keys: false,
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
        uses_pass_keys: false,
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
        uses_pass_keys: false,
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
        uses_pass_keys: false,
    },
    Route {
        endpoint: Endpoint::ListSessions,
        method: "GET",
        path: "/api/sessions/",
        function: "ListSessionsFunction",
        name: "list-sessions",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: false,
        uses_pass_keys: false,
    },
    Route {
        endpoint: Endpoint::GetPass,
        method: "GET",
        path: "/api/sessions/{session_id}/pass/",
        function: "GetPassFunction",
        name: "get-pass",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: false,
        uses_pass_keys: true,
    },
    Route {
        endpoint: Endpoint::GetPassQr,
        method: "GET",
        path: "/api/sessions/{session_id}/pass/qr/",
        function: "GetPassQrFunction",
        name: "get-pass-qr",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: false,
        uses_pass_keys: true,
    },
    Route {
        endpoint: Endpoint::PassKeys,
        method: "GET",
        path: "/api/passes/keys/",
        function: "PassKeysFunction",
        name: "pass-keys",
        binary: ROUTES_BINARY,
        requires_token: false,
        uses_phonepe: false,
        uses_pass_keys: true,
    },
    Route {
        endpoint: Endpoint::RevokedPasses,
        method: "GET",
        path: "/api/passes/revoked/",
        function: "RevokedPassesFunction",
        name: "revoked-passes",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: false,
        uses_pass_keys: false,
    },
    Route {
        endpoint: Endpoint::RecordEntry,
        method: "POST",
        path: "/api/sessions/{session_id}/entry/",
        function: "RecordEntryFunction",
        name: "record-entry",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: false,
        uses_pass_keys: false,
    },
    Route {
        endpoint: Endpoint::RecordExit,
        method: "POST",
        path: "/api/sessions/{session_id}/exit/",
        function: "RecordExitFunction",
        name: "record-exit",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: false,
        uses_pass_keys: false,
    },
    Route {
        endpoint: Endpoint::GetReceipt,
        method: "GET",
        path: "/api/sessions/{session_id}/receipt/",
        function: "GetReceiptFunction",
        name: "get-receipt",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: false,
        uses_pass_keys: false,
    },
    Route {
        endpoint: Endpoint::PaymentQr,
        method: "GET",
        path: "/api/payment/phonepe/qr/{merchant_txn_id}/",
        function: "PaymentQrFunction",
        name: "payment-qr",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: false,
        uses_pass_keys: false,
    },
    Route {
        endpoint: Endpoint::SearchSessions,
        method: "GET",
        path: "/api/search/",
        function: "SearchSessionsFunction",
        name: "search-sessions",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: false,
        uses_pass_keys: false,
    },
    Route {
        endpoint: Endpoint::SettlementReport,
        method: "GET",
        path: "/api/reports/settlement/",
        function: "SettlementReportFunction",
        name: "settlement-report",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: false,
        uses_pass_keys: false,
    },
    Route {
        endpoint: Endpoint::ExtendSession,
        method: "POST",
        path: "/api/sessions/{session_id}/extend/",
        function: "ExtendSessionFunction",
        name: "extend-session",
        binary: ROUTES_BINARY,
        requires_token: true,
        uses_phonepe: true,
        uses_pass_keys: false,
    },
    // The operators' console: a static page (no token: it asks for the operator's and calls the
    // API with it), its script and stylesheet by `?asset=` on the same route (crate::console).
    Route {
        endpoint: Endpoint::Console,
        method: "GET",
        path: crate::console::PATH,
        function: "ConsoleFunction",
        name: "console",
        binary: ROUTES_BINARY,
        requires_token: false,
        uses_phonepe: false,
        uses_pass_keys: false,
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
        Endpoint::ListSessions => {
            let who = caller(&req)?;
            let params = req.query_string_parameters_ref();
            let get = |k: &str| params.and_then(|p| p.first(k)).map(str::to_owned);
            Ok(json_response(StatusCode::OK, &service::list_sessions(state, &who, get("limit"), get("cursor")).await?))
        }
        Endpoint::SearchSessions => {
            let who = caller(&req)?;
            let query = service::SearchQuery {
                vehicle_number: query_param(&req, "vehicle_number"),
                merchant_txn_id: query_param(&req, "merchant_txn_id"),
                phonepe_transaction_id: query_param(&req, "phonepe_transaction_id"),
                utr: query_param(&req, "utr"),
            };
            Ok(json_response(StatusCode::OK, &service::search(state, &who, &query).await?))
        }
        Endpoint::SettlementReport => {
            let who = caller(&req)?;
            let date = query_param(&req, "date");
            let csv = service::settlement_csv(state, &who, date.as_deref()).await?;
            let mut resp = crate::http::text_response(StatusCode::OK, "text/csv; charset=utf-8", csv);
            // Finance's data: never kept by a cache on the way.
            resp.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
            // `date` was checked (YYYY-MM-DD): safe in a header.
            if let Some(d) = date
                && let Ok(v) = http::HeaderValue::from_str(&format!("attachment; filename=\"settlement-{d}.csv\""))
            {
                resp.headers_mut().insert(http::header::CONTENT_DISPOSITION, v);
            }
            Ok(resp)
        }
        Endpoint::ExtendSession => {
            let who = caller(&req)?;
            let body = parse_body(&req)?;
            let id = path_param(&req, "session_id");
            // Not a session id: 404 before anything (the id goes into the key's scope below).
            service::parse_session_id(&id)?;
            // The session is in the path, not the body: it is part of the key's scope.
            let scope = format!("extend-session#{id}");
            idempotency::run(state, &who, &scope, &req, StatusCode::CREATED, |key| {
                service::extend_session(state, &who, &id, body, key)
            })
            .await
        }
        Endpoint::RecordEntry | Endpoint::RecordExit => {
            let who = caller(&req)?;
            let body = parse_body(&req)?;
            let kind = if endpoint == Endpoint::RecordEntry { ScanKind::Entry } else { ScanKind::Exit };
            Ok(json_response(
                StatusCode::OK,
                &service::record_scan(state, &who, &path_param(&req, "session_id"), kind, body).await?,
            ))
        }
        Endpoint::GetReceipt => {
            let who = caller(&req)?;
            let receipt = service::receipt(state, &who, &path_param(&req, "session_id")).await?;
            let mut resp = if wants_html(&req) {
                crate::http::text_response(StatusCode::OK, "text/html; charset=utf-8", receipt.to_html())
            } else {
                json_response(StatusCode::OK, &receipt)
            };
            // One URL, two representations: a shared cache must keep them apart.
            resp.headers_mut().insert(http::header::VARY, http::HeaderValue::from_static("Accept"));
            Ok(resp)
        }
        Endpoint::RevokedPasses => {
            let who = caller(&req)?;
            let params = req.query_string_parameters_ref();
            let get = |k: &str| params.and_then(|p| p.first(k)).map(str::to_owned);
            let query = service::RevokedQuery { since: get("since"), limit: get("limit"), cursor: get("cursor") };
            Ok(json_response(StatusCode::OK, &service::revoked_passes(state, &who, &query).await?))
        }
        #[cfg(feature = "passes")]
        Endpoint::GetPass => {
            let who = caller(&req)?;
            Ok(json_response(StatusCode::OK, &service::get_pass(state, &who, &path_param(&req, "session_id")).await?))
        }
        #[cfg(feature = "passes")]
        Endpoint::GetPassQr => {
            let who = caller(&req)?;
            let format = query_param(&req, "format");
            let image = service::pass_qr(state, &who, &path_param(&req, "session_id"), format.as_deref()).await?;
            Ok(crate::http::bytes_response(StatusCode::OK, image.content_type, image.bytes))
        }
        #[cfg(feature = "passes")]
        Endpoint::PassKeys => Ok(json_response(StatusCode::OK, &service::jwks(state).await?)),
        #[cfg(feature = "passes")]
        Endpoint::PaymentQr => {
            let who = caller(&req)?;
            let format = query_param(&req, "format");
            let image =
                service::payment_qr(state, &who, &path_param(&req, "merchant_txn_id"), format.as_deref()).await?;
            Ok(crate::http::bytes_response(StatusCode::OK, image.content_type, image.bytes))
        }
        #[cfg(not(feature = "passes"))]
        Endpoint::GetPass | Endpoint::GetPassQr | Endpoint::PassKeys | Endpoint::PaymentQr => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "PASS_KEYS_UNAVAILABLE",
            "this build has no entry passes or QR images",
        )),
        Endpoint::Console => crate::console::respond(query_param(&req, crate::console::ASSET_PARAMETER).as_deref()),
        Endpoint::ListObligations => {
            let who = caller(&req)?;
            let params = req.query_string_parameters_ref();
            let get = |k: &str| params.and_then(|p| p.first(k)).map(str::to_owned);
            let query = service::ObligationsQuery { state: get("state"), limit: get("limit"), cursor: get("cursor") };
            Ok(json_response(StatusCode::OK, &service::list_obligations(state, &who, &query).await?))
        }
    }
}

/// A path parameter API Gateway (or the local server) filled in; empty when absent.
fn path_param(req: &Request, name: &str) -> String {
    req.path_parameters_ref().and_then(|p| p.first(name)).unwrap_or_default().to_owned()
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref().and_then(|p| p.first(name)).map(str::to_owned)
}

/// Whether the client asks for HTML (`Accept: text/html`, as a browser does) rather than JSON.
fn wants_html(req: &Request) -> bool {
    req.headers()
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("text/html")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, r) in ROUTES.iter().enumerate() {
            // Every route is the API's (docs/openapi.yaml), but the console's page (crate::console).
            let api = r.path.starts_with("/api/");
            assert!((api || r.endpoint == Endpoint::Console) && r.path.ends_with('/'), "{}", r.path);
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
