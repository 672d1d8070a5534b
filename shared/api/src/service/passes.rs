//! Entry passes: the JWT a PAID session's driver shows at the gate, as text or as a QR image; the
//! public keys gates verify it with (a JWKS), offline.
//!
//! A pass is valid from the booking to the booked end (`created_at` + hours) plus the grace
//! period (`PARKPAY_PASS_GRACE_MINUTES`). Its `jti` is the session's (`PassClaims::derive_jti`):
//! asking again gives the same token, and the list of revoked passes names it.

use std::sync::Arc;

use http::StatusCode;
use parkpay_domain::{ParkingSession, SessionStatus, Timestamp};
use parkpay_passes::{PassClaims, PassKeys};
use serde::Serialize;

use super::{load_visible, parse_session_id};
use crate::http::ApiError;
use crate::identity::Caller;
use crate::state::AppState;

/// `GET /api/sessions/{session_id}/pass/`.
#[derive(Debug, Serialize)]
pub struct PassView {
    pub pass: String,
    pub kid: String,
    pub valid_from: String,
    pub valid_until: String,
}

/// An image answer: its content type and bytes.
#[derive(Debug)]
pub struct Image {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The image formats of the QR routes: `?format=png` (the default) or `svg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrFormat {
    Png,
    Svg,
}

impl QrFormat {
    /// 422 `INVALID_FORMAT` for anything else.
    pub fn parse(format: Option<&str>) -> Result<Self, ApiError> {
        match format.map(str::to_ascii_lowercase).as_deref() {
            None | Some("png") => Ok(QrFormat::Png),
            Some("svg") => Ok(QrFormat::Svg),
            Some(_) => Err(ApiError::unprocessable("INVALID_FORMAT", "`format` must be png or svg")),
        }
    }

    /// `text` as a QR image in this format.
    pub fn render(self, text: &str) -> Result<Image, ApiError> {
        match self {
            QrFormat::Png => {
                Ok(Image { content_type: "image/png", bytes: parkpay_qr::png(text).map_err(ApiError::internal)? })
            }
            QrFormat::Svg => Ok(Image {
                content_type: "image/svg+xml",
                bytes: parkpay_qr::svg(text).map_err(ApiError::internal)?.into_bytes(),
            }),
        }
    }
}

pub(crate) async fn keys(state: &AppState) -> Result<Arc<PassKeys>, ApiError> {
    state.passes.keys().await.map_err(|reason| {
        tracing::error!(%reason, "pass keys unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "PASS_KEYS_UNAVAILABLE",
            "entry passes are unavailable; try again later",
        )
    })
}

/// The pass's window: booking to booked end plus the grace period.
pub fn window(session: &ParkingSession, grace_minutes: i64) -> (Timestamp, Timestamp) {
    let end = session.booked_until().unix_millis().saturating_add(grace_minutes.saturating_mul(60_000));
    (session.created_at(), Timestamp::from_unix_millis(end).unwrap_or(session.booked_until()))
}

fn epoch_s(t: Timestamp) -> i64 {
    t.unix_millis().div_euclid(1000)
}

/// The session's pass, if the session may enter now: paid and not fully refunded (a REFUNDED one
/// is 409 `PASS_REVOKED`, an unpaid or cancelled one 409 `SESSION_NOT_PAID`), and its window
/// not over (409 `PASS_EXPIRED`). Its driver or an operator; anyone else 404.
pub async fn issue(state: &AppState, caller: &Caller, raw_id: &str) -> Result<(PassView, ParkingSession), ApiError> {
    let id = parse_session_id(raw_id)?;
    crate::telemetry::note_session(&id);
    let bundle = load_visible(state, caller, &id).await?;
    let session = bundle.session;
    match session.status() {
        SessionStatus::Refunded => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "PASS_REVOKED",
                "this session was refunded; its pass is revoked",
            ));
        }
        s if !s.is_paid() => return Err(parkpay_domain::DomainError::SessionNotPaid.into()),
        _ => {}
    }
    let (from, until) = window(&session, state.policy.pass_grace_minutes);
    if state.clock.now() >= until {
        return Err(ApiError::new(StatusCode::CONFLICT, "PASS_EXPIRED", "this session's pass has expired"));
    }
    let keys = keys(state).await?;
    let claims = PassClaims::new(
        id.as_str(),
        session.lot_id().as_str(),
        session.vehicle().as_str(),
        epoch_s(from),
        epoch_s(until),
    );
    let pass = keys.issue(&claims).map_err(ApiError::internal)?;
    let view = PassView {
        pass,
        kid: keys.kid().to_owned(),
        valid_from: Timestamp::from_unix_millis(epoch_s(from) * 1000).unwrap_or(from).to_rfc3339(),
        valid_until: Timestamp::from_unix_millis(epoch_s(until) * 1000).unwrap_or(until).to_rfc3339(),
    };
    Ok((view, session))
}

/// `GET /api/sessions/{session_id}/pass/`.
pub async fn get_pass(state: &AppState, caller: &Caller, raw_id: &str) -> Result<PassView, ApiError> {
    Ok(issue(state, caller, raw_id).await?.0)
}

/// `GET /api/sessions/{session_id}/pass/qr/?format=png|svg`: the same token as a QR image.
pub async fn pass_qr(state: &AppState, caller: &Caller, raw_id: &str, format: Option<&str>) -> Result<Image, ApiError> {
    // The format is checked before anything is read or signed.
    let format = QrFormat::parse(format)?;
    let (view, _) = issue(state, caller, raw_id).await?;
    format.render(&view.pass)
}

/// `GET /api/passes/keys/`: the JWKS gates verify passes with (no token needed).
pub async fn jwks(state: &AppState) -> Result<serde_json::Value, ApiError> {
    Ok(keys(state).await?.jwks())
}
