//! Entry and exit: a gate (group `gate`) or an operator records that the session's pass was
//! scanned, with the time of the scan (`scanned_at`): a gate that was offline sends its queued
//! scans later, and the earliest scan of each kind wins (`parkpay_domain::visit`). Idempotent: the
//! same scan again, or a later one, changes nothing and answers the same.

use http::StatusCode;
use parkpay_domain::{GateId, ScanKind, Timestamp};
use parkpay_store::{Record, StoreError, Write};
use serde::{Deserialize, Serialize};

use super::{MAX_ATTEMPTS, parse_session_id, truncate};
use crate::http::{ApiError, required};
use crate::identity::Caller;
use crate::state::AppState;
use crate::telemetry;

#[derive(Debug, Deserialize)]
pub struct ScanBody {
    pub gate: Option<String>,
    /// RFC 3339; when absent, now (a gate that is online).
    pub scanned_at: Option<String>,
}

/// The session's entry and exit after the scan.
#[derive(Debug, Serialize)]
pub struct VisitView {
    pub session_id: String,
    /// Whether this request changed anything (`false`: the scan was already known, or a scan
    /// of the same kind was earlier).
    pub recorded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<ScanView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<ScanView>,
}

#[derive(Debug, Serialize)]
pub struct ScanView {
    pub gate: String,
    pub scanned_at: String,
    pub recorded_at: String,
}

impl ScanView {
    pub fn of(scan: &parkpay_domain::Scan) -> Self {
        ScanView {
            gate: scan.gate.to_string(),
            scanned_at: scan.scanned_at.to_rfc3339(),
            recorded_at: scan.recorded_at.to_rfc3339(),
        }
    }
}

/// 403 `GATE_ONLY` unless the caller is a gate or an operator.
pub(crate) fn require_gate(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.is_gate || caller.is_operator {
        return Ok(());
    }
    tracing::warn!(security = true, what, "a caller who is neither a gate nor an operator was refused (GATE_ONLY)");
    telemetry::security_event();
    Err(ApiError::new(StatusCode::FORBIDDEN, "GATE_ONLY", format!("only a gate or an operator may {what}")))
}

/// `POST /api/sessions/{session_id}/entry/` and `.../exit/`.
pub async fn record_scan(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
    kind: ScanKind,
    body: ScanBody,
) -> Result<VisitView, ApiError> {
    require_gate(caller, &format!("record an {}", kind.as_str()))?;
    let session_id = parse_session_id(raw_id)?;
    telemetry::note_session(&session_id);
    let gate = GateId::parse(&required(body.gate, "gate")?)?;
    let scanned_at = match body.scanned_at {
        Some(text) => Timestamp::parse_rfc3339(&text).map_err(|_| {
            ApiError::unprocessable(
                "INVALID_SCAN_TIME",
                format!("`scanned_at` must be an RFC 3339 date-time, not {:?}", truncate(&text, 40)),
            )
        })?,
        None => state.clock.now(),
    };
    for _ in 0..MAX_ATTEMPTS {
        let Some(bundle) = state.store.load_session(&session_id).await? else {
            return Err(ApiError::session_not_found());
        };
        let mut session = bundle.session.clone();
        let expected = session.version();
        let now = state.clock.now();
        let t = session.record_scan(kind, gate.clone(), scanned_at, now)?;
        let view = |s: &parkpay_domain::ParkingSession, recorded: bool| VisitView {
            session_id: s.id().as_str().to_owned(),
            recorded,
            entry: s.visit().entry.as_ref().map(ScanView::of),
            exit: s.visit().exit.as_ref().map(ScanView::of),
        };
        if t == parkpay_domain::Transition::AlreadyApplied {
            return Ok(view(&session, false));
        }
        match state
            .store
            .commit(vec![Write::Update { record: Record::Session(session.clone()), expected_version: expected }])
            .await
        {
            Ok(()) => {
                tracing::info!(session = %session_id, kind = kind.as_str(), gate = %gate, "scan recorded");
                return Ok(view(&session, true));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(StatusCode::CONFLICT, "CONCURRENT_UPDATE", "the session changed too often; try again"))
}
