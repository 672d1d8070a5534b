//! What needs a person, for operators: `GET /api/obligations/?state=overdue|needs_person`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use parkpay_domain::Obligation;
use parkpay_store::AttentionList;
use parkpay_store::keys::is_attention_position;
use serde::Serialize;

use crate::http::ApiError;
use crate::identity::Caller;
use crate::state::AppState;

/// Entries per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 50;
/// Most entries per page.
pub const MAX_LIMIT: usize = 200;

#[derive(Debug, Serialize)]
pub struct ObligationsView {
    pub obligations: Vec<ObligationView>,
    /// Hand back as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ObligationView {
    pub kind: &'static str,
    pub state: &'static str,
    pub session_id: String,
    pub payment_id: String,
    pub refund_id: Option<String>,
    pub amount: String,
    /// PhonePe's last answer code (or our error: `UNREACHABLE`, `OUTCOME_UNKNOWN`, …).
    pub last_code: Option<String>,
    pub attempts: u32,
    /// When reconciliation tries next; `null` once it needs a person.
    pub next_attempt_at: Option<String>,
    pub due_by: String,
    /// Overdue list: since when it is overdue; needs-a-person list: since when it needs one.
    pub listed_since: String,
    pub note: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl ObligationView {
    fn new(o: &Obligation, list: AttentionList) -> Self {
        ObligationView {
            kind: o.kind().as_str(),
            state: o.state().as_str(),
            session_id: o.session_id().as_str().to_owned(),
            payment_id: o.payment_id().as_str().to_owned(),
            refund_id: o.refund_id().map(|r| r.as_str().to_owned()),
            amount: o.amount().to_string(),
            last_code: o.last_code().map(str::to_owned),
            attempts: o.attempts(),
            next_attempt_at: o.is_open().then(|| o.next_attempt_at().to_rfc3339()),
            due_by: o.due_by().to_rfc3339(),
            listed_since: match list {
                AttentionList::Overdue => o.overdue_from().to_rfc3339(),
                AttentionList::NeedsPerson => o.updated_at().to_rfc3339(),
            },
            note: o.note().map(str::to_owned),
            created_at: o.created_at().to_rfc3339(),
            updated_at: o.updated_at().to_rfc3339(),
        }
    }
}

fn invalid_query(message: impl Into<String>) -> ApiError {
    ApiError::unprocessable("INVALID_QUERY", message)
}

/// The query string of `GET /api/obligations/`, as given.
#[derive(Debug, Clone, Default)]
pub struct ObligationsQuery {
    pub state: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// The query string's `state`, `limit` and `cursor`, checked.
fn parse(query: &ObligationsQuery) -> Result<(AttentionList, usize, Option<String>), ApiError> {
    let list = match query.state.as_deref() {
        Some("overdue") => AttentionList::Overdue,
        Some("needs_person") => AttentionList::NeedsPerson,
        Some(_) => return Err(invalid_query("`state` must be overdue or needs_person")),
        None => return Err(invalid_query("`state` is required: overdue or needs_person")),
    };
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| invalid_query(format!("`limit` must be a whole number from 1 to {MAX_LIMIT}")))?,
    };
    let cursor = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            URL_SAFE_NO_PAD
                .decode(c.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|p| is_attention_position(p))
                .ok_or_else(|| ApiError::unprocessable("INVALID_CURSOR", "`cursor` is not one this list handed out"))?,
        ),
    };
    Ok((list, limit, cursor))
}

/// Operators only (403 `OPERATOR_ONLY` otherwise): obligations overdue or needing a person,
/// newest first, a page at a time.
pub async fn list_obligations(
    state: &AppState,
    caller: &Caller,
    query: &ObligationsQuery,
) -> Result<ObligationsView, ApiError> {
    if !caller.is_operator {
        tracing::warn!(security = true, "a caller who is not an operator asked for the obligations (OPERATOR_ONLY)");
        crate::telemetry::security_event();
        return Err(ApiError::new(StatusCode::FORBIDDEN, "OPERATOR_ONLY", "only operators may list obligations"));
    }
    let (list, limit, cursor) = parse(query)?;
    let now = state.clock.now();
    // One more than a page tells whether another page follows.
    let mut entries = state.attention.list_attention(list, now, cursor.as_deref(), limit + 1).await?;
    let more = entries.len() > limit;
    entries.truncate(limit);
    let next_cursor = if more { entries.last().map(|e| URL_SAFE_NO_PAD.encode(e.position.as_bytes())) } else { None };
    Ok(ObligationsView {
        obligations: entries.iter().map(|e| ObligationView::new(&e.obligation, list)).collect(),
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> ObligationsQuery {
        let get = |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned());
        ObligationsQuery { state: get("state"), limit: get("limit"), cursor: get("cursor") }
    }

    #[test]
    fn query_rules() {
        assert_eq!(parse(&q(&[("state", "overdue")])).unwrap(), (AttentionList::Overdue, DEFAULT_LIMIT, None));
        assert_eq!(parse(&q(&[("state", "needs_person"), ("limit", "1")])).unwrap().1, 1);
        let position = "001795802400123#OBLIGATION#PP0123456789abcdef0123456789abcdef";
        let cursor = URL_SAFE_NO_PAD.encode(position);
        let got = parse(&q(&[("state", "overdue"), ("cursor", &cursor)])).unwrap();
        assert_eq!(got.2.as_deref(), Some(position));
        for bad in [
            &[][..],
            &[("state", "OVERDUE")][..],
            &[("state", "done")][..],
            &[("state", "overdue"), ("limit", "0")][..],
            &[("state", "overdue"), ("limit", "201")][..],
            &[("state", "overdue"), ("limit", "-1")][..],
            &[("state", "overdue"), ("limit", "ten")][..],
        ] {
            assert_eq!(parse(&q(bad)).unwrap_err().code, "INVALID_QUERY", "{bad:?}");
        }
        for bad in ["!!", "YWJj", &URL_SAFE_NO_PAD.encode("001795802400123#PAYMENT#PP1")] {
            let e = parse(&q(&[("state", "overdue"), ("cursor", bad)])).unwrap_err();
            assert_eq!(e.code, "INVALID_CURSOR", "{bad}");
        }
    }
}
