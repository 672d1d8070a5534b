//! `/_dev/…`: conveniences for a developer's own machine, served only when the server listens on
//! a loopback address and PhonePe is not PRODUCTION (otherwise 404, like any unknown path):
//!
//! - `GET /_dev/token?sub=driver-1[&operator=true]` a signed token;
//! - `POST /_dev/clock/advance` `{"seconds": N}` (simulation mode only) moves parkpay's clock
//!   forward N seconds (1 to 30 days) and runs the reconciliation passes the schedule would have
//!   run meanwhile.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body as AxumBody, Bytes};
use axum::extract::{Query, State};
use axum::http::{Response as AxumResponse, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use parkpay_api::http::ApiError;
use parkpay_gateway::Environment;
use serde::Deserialize;

use crate::{Shared, api_error};

/// Longest advance in one request: 30 days.
pub const MAX_ADVANCE_SECS: u32 = 30 * 24 * 3600;

/// Which `/_dev/` controls this server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevAccess {
    /// `/_dev/token`: loopback only, never with PhonePe PRODUCTION.
    pub token: bool,
    /// `/_dev/clock/advance`: as `token`, and only when PhonePe is the simulator.
    pub clock: bool,
}

impl DevAccess {
    /// `phonepe_env` is `PHONEPE_ENV` as given (it counts even when simulation ignores it).
    pub fn new(addr: &SocketAddr, phonepe_env: Option<&str>, environment: &Environment) -> Self {
        let named_production =
            phonepe_env.map(|e| e.trim().to_ascii_uppercase()).is_some_and(|e| e == "PRODUCTION" || e == "PROD");
        let production = named_production || matches!(environment, Environment::Production);
        let token = addr.ip().to_canonical().is_loopback() && !production;
        let clock = token && matches!(environment, Environment::Simulation { .. });
        DevAccess { token, clock }
    }

    /// The `/_dev/` routes this access allows.
    pub(crate) fn router(self) -> Router<Shared> {
        let mut router = Router::new();
        if self.token {
            router = router.route("/_dev/token", get(token));
        }
        if self.clock {
            router = router.route("/_dev/clock/advance", post(advance_clock));
        }
        router
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    sub: Option<String>,
    operator: Option<bool>,
    gate: Option<bool>,
}

async fn token(State(shared): State<Shared>, Query(q): Query<TokenQuery>) -> AxumResponse<AxumBody> {
    let sub = q.sub.unwrap_or_else(|| "driver-1".to_owned());
    if !user_id_ok(&sub) {
        return api_error(ApiError::unprocessable(
            "INVALID_USER_ID",
            "sub must be 1 to 128 printable ASCII characters",
        ));
    }
    let mut groups = Vec::new();
    if q.operator.unwrap_or(false) {
        groups.push(parkpay_api::identity::OPERATOR_GROUP);
    }
    if q.gate.unwrap_or(false) {
        groups.push(parkpay_api::identity::GATE_GROUP);
    }
    match shared.jwt.mint_in(&sub, &groups, 24 * 3600) {
        Ok(t) => ([(header::CONTENT_TYPE, "text/plain")], t).into_response(),
        Err(e) => api_error(ApiError::internal(e)),
    }
}

fn user_id_ok(sub: &str) -> bool {
    !sub.is_empty() && sub.len() <= 128 && sub.bytes().all(|b| b.is_ascii_graphic())
}

async fn advance_clock(State(shared): State<Shared>, body: Bytes) -> AxumResponse<AxumBody> {
    let secs = match advance_seconds(&body) {
        Ok(s) => s,
        Err(e) => return api_error(e),
    };
    let done = shared.reconciler.advance(secs).await;
    let answer = serde_json::json!({
        "advanced_seconds": secs,
        "now": shared.state.clock.now().to_rfc3339(),
        "passes": done.passes,
        "checked": done.checked,
        "applied": done.applied,
        "expired": done.expired,
        "sent": done.sent,
        "errors": done.errors,
    });
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// `{"seconds": N}` with N a whole number from 1 to [`MAX_ADVANCE_SECS`].
fn advance_seconds(body: &[u8]) -> Result<u32, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request("INVALID_JSON", "the body must be JSON: {\"seconds\": N}"))?;
    value
        .get("seconds")
        .and_then(serde_json::Value::as_u64)
        .and_then(|s| u32::try_from(s).ok())
        .filter(|s| (1..=MAX_ADVANCE_SECS).contains(s))
        .ok_or_else(|| {
            ApiError::unprocessable(
                "INVALID_SECONDS",
                format!("seconds must be a whole number from 1 to {MAX_ADVANCE_SECS} (30 days)"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn simulation() -> Environment {
        Environment::Simulation { base_url: "http://127.0.0.1:3000/_phonepe/".parse().unwrap() }
    }

    #[test]
    fn loopback_only() {
        let open = DevAccess { token: true, clock: true };
        let closed = DevAccess { token: false, clock: false };
        assert_eq!(DevAccess::new(&addr("127.0.0.1:3000"), None, &simulation()), open);
        assert_eq!(DevAccess::new(&addr("127.1.2.3:3000"), None, &simulation()), open);
        assert_eq!(DevAccess::new(&addr("[::1]:3000"), None, &simulation()), open);
        assert_eq!(DevAccess::new(&addr("[::ffff:127.0.0.1]:3000"), None, &simulation()), open);
        assert_eq!(DevAccess::new(&addr("0.0.0.0:3000"), None, &simulation()), closed);
        assert_eq!(DevAccess::new(&addr("[::]:3000"), None, &simulation()), closed);
        assert_eq!(DevAccess::new(&addr("192.168.1.5:3000"), None, &simulation()), closed);
    }

    #[test]
    fn never_with_production_and_the_clock_only_when_simulating() {
        let local = addr("127.0.0.1:3000");
        let closed = DevAccess { token: false, clock: false };
        assert_eq!(DevAccess::new(&local, Some(" production "), &simulation()), closed);
        assert_eq!(DevAccess::new(&local, Some("PROD"), &simulation()), closed);
        assert_eq!(DevAccess::new(&local, None, &Environment::Production), closed);
        assert_eq!(DevAccess::new(&local, Some("SANDBOX"), &simulation()), DevAccess { token: true, clock: true });
        assert_eq!(
            DevAccess::new(&local, Some("SANDBOX"), &Environment::Sandbox),
            DevAccess { token: true, clock: false }
        );
    }

    #[test]
    fn advance_body() {
        assert_eq!(advance_seconds(br#"{"seconds": 30}"#).ok(), Some(30));
        assert_eq!(advance_seconds(br#"{"seconds": 2592000}"#).ok(), Some(MAX_ADVANCE_SECS));
        for bad in [r#"{"seconds": 0}"#, r#"{"seconds": -1}"#, r#"{"seconds": 2592001}"#, r#"{"seconds": 1.5}"#]
            .into_iter()
            .chain([r#"{"seconds": "30"}"#, r#"{}"#, r#"[30]"#, "30", r#"{"seconds": 1e100}"#])
        {
            let e = advance_seconds(bad.as_bytes()).unwrap_err().into_response();
            assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        let e = advance_seconds(b"{seconds: 30").unwrap_err().into_response();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }
}
