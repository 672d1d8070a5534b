//! Lists that page: the caller's sessions (history), newest first; the passes revoked since a
//! time, for gates to poll.

use parkpay_domain::Timestamp;
use parkpay_store::StoreError;
use serde::Serialize;

use super::truncate;
use super::visits::require_gate;
use crate::http::ApiError;
use crate::identity::Caller;
use crate::state::AppState;
use crate::views::SessionView;

/// Items per page unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

/// `limit`: a whole number from 1 to [`MAX_PAGE`] (422 `INVALID_LIMIT`), [`DEFAULT_PAGE`] when
/// absent.
pub(crate) fn page_limit(limit: Option<&str>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        // Digits only: no sign, no spaces.
        Some(text) => Some(text)
            .filter(|t| !t.is_empty() && t.len() <= 3 && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<usize>().ok())
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::unprocessable("INVALID_LIMIT", format!("`limit` must be a whole number from 1 to {MAX_PAGE}"))
            }),
    }
}

/// A refused cursor is the client's mistake (422 `INVALID_CURSOR`), never a 500.
fn cursor_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid(_) => {
            ApiError::unprocessable("INVALID_CURSOR", "`cursor` must be a next_cursor this list returned")
        }
        other => other.into(),
    }
}

#[derive(Debug, Serialize)]
pub struct SessionsView {
    pub sessions: Vec<SessionView>,
    /// Give it as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `GET /api/sessions/?limit=&cursor=`: the caller's own sessions, newest first (operators too
/// see only their own here).
pub async fn list_sessions(
    state: &AppState,
    caller: &Caller,
    limit: Option<String>,
    cursor: Option<String>,
) -> Result<SessionsView, ApiError> {
    let limit = page_limit(limit.as_deref())?;
    let page = state
        .store
        .list_sessions_page(&caller.user_id, limit, cursor.as_deref().filter(|c| !c.is_empty()))
        .await
        .map_err(cursor_error)?;
    Ok(SessionsView {
        sessions: page.sessions.iter().map(|s| SessionView::new(s, &[], &[])).collect(),
        next_cursor: page.next_cursor,
    })
}

#[derive(Debug, Default)]
pub struct RevokedQuery {
    pub since: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RevokedView {
    pub revoked: Vec<RevokedEntry>,
    /// Give it as `cursor` (instead of `since`) for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RevokedEntry {
    /// The pass's `jti` (every pass of the session has it).
    pub jti: String,
    pub session_id: String,
    pub revoked_at: String,
}

/// `GET /api/passes/revoked/?since=&limit=&cursor=`: passes revoked (their session refunded in
/// full) after `since` (RFC 3339; absent: since the beginning), oldest first. Gates and
/// operators only (403 `GATE_ONLY`).
pub async fn revoked_passes(state: &AppState, caller: &Caller, q: &RevokedQuery) -> Result<RevokedView, ApiError> {
    require_gate(caller, "read the revoked passes")?;
    let limit = page_limit(q.limit.as_deref())?;
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        None => Timestamp::UNIX_EPOCH,
        Some(text) => Timestamp::parse_rfc3339(text).map_err(|_| {
            ApiError::unprocessable(
                "INVALID_SINCE",
                format!("`since` must be an RFC 3339 date-time, not {:?}", truncate(text, 40)),
            )
        })?,
    };
    let page = state
        .store
        .list_revoked(since, limit, q.cursor.as_deref().filter(|c| !c.is_empty()))
        .await
        .map_err(cursor_error)?;
    Ok(RevokedView {
        revoked: page
            .entries
            .iter()
            .map(|r| RevokedEntry {
                jti: pass_jti(r.session_id.as_str()),
                session_id: r.session_id.as_str().to_owned(),
                revoked_at: r.revoked_at.to_rfc3339(),
            })
            .collect(),
        next_cursor: page.next_cursor,
    })
}

#[cfg(feature = "passes")]
fn pass_jti(session_id: &str) -> String {
    parkpay_passes::PassClaims::derive_jti(session_id)
}

#[cfg(not(feature = "passes"))]
fn pass_jti(_: &str) -> String {
    String::new()
}
