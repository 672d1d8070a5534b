//! What operators use at a desk (the console): finding a driver's sessions, and the day's
//! settlement report that finance matches with PhonePe's.

use http::StatusCode;
use parkpay_domain::{Paise, SessionId, Timestamp, VehicleNumber};
use serde::Serialize;

use super::truncate;
use crate::http::ApiError;
use crate::identity::Caller;
use crate::state::AppState;
use crate::views::SessionView;

/// 403 `OPERATOR_ONLY` unless the caller is an operator.
pub(crate) fn require_operator(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.is_operator {
        return Ok(());
    }
    tracing::warn!(security = true, what, "a caller who is not an operator was refused (OPERATOR_ONLY)");
    crate::telemetry::security_event();
    Err(ApiError::new(StatusCode::FORBIDDEN, "OPERATOR_ONLY", format!("only operators may {what}")))
}

/// Sessions a search finds at most.
pub const MAX_FOUND: usize = 20;

#[derive(Debug, Default)]
pub struct SearchQuery {
    pub vehicle_number: Option<String>,
    pub merchant_txn_id: Option<String>,
    pub phonepe_transaction_id: Option<String>,
    pub utr: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SearchView {
    /// Newest first, each with its payments and refunds.
    pub sessions: Vec<SessionView>,
}

/// `GET /api/search/?vehicle_number=|merchant_txn_id=|phonepe_transaction_id=|utr=` (exactly one;
/// else 422 `INVALID_QUERY`): operators only.
pub async fn search(state: &AppState, caller: &Caller, q: &SearchQuery) -> Result<SearchView, ApiError> {
    require_operator(caller, "search")?;
    let given: Vec<(&str, &str)> = [
        ("vehicle_number", q.vehicle_number.as_deref()),
        ("merchant_txn_id", q.merchant_txn_id.as_deref()),
        ("phonepe_transaction_id", q.phonepe_transaction_id.as_deref()),
        ("utr", q.utr.as_deref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(str::trim).filter(|v| !v.is_empty()).map(|v| (k, v)))
    .collect();
    let [(by, value)] = given[..] else {
        return Err(ApiError::unprocessable(
            "INVALID_QUERY",
            "give exactly one of vehicle_number, merchant_txn_id, phonepe_transaction_id, utr",
        ));
    };
    if value.len() > 64 {
        return Err(ApiError::unprocessable("INVALID_QUERY", format!("`{by}` is at most 64 characters")));
    }
    let ids: Vec<SessionId> = match by {
        "vehicle_number" => {
            let vehicle = VehicleNumber::parse(value)?;
            state.store.sessions_by_vehicle(&vehicle, MAX_FOUND).await?
        }
        "merchant_txn_id" => match state.store.find_txn(value).await? {
            Some(parkpay_store::TxnRef::Payment { session_id, .. })
            | Some(parkpay_store::TxnRef::Refund { session_id, .. }) => vec![session_id],
            None => vec![],
        },
        _ => {
            let mut ids: Vec<SessionId> =
                state.store.find_by_provider_ref(value).await?.into_iter().map(|(s, _)| s).collect();
            ids.dedup();
            ids
        }
    };
    tracing::info!(by, found = ids.len(), "operator search");
    let mut sessions = Vec::with_capacity(ids.len());
    for id in ids.iter().take(MAX_FOUND) {
        if let Some(b) = state.store.load_session(id).await? {
            sessions.push(b);
        }
    }
    sessions.sort_by(|a, b| b.session.created_at().cmp(&a.session.created_at()));
    sessions.dedup_by(|a, b| a.session.id() == b.session.id());
    Ok(SearchView { sessions: sessions.iter().map(SessionView::from_bundle).collect() })
}

/// India's offset from UTC: settlement days are India's days.
const IST_OFFSET_MS: i64 = (5 * 60 + 30) * 60 * 1000;

/// The instants `[start, end)` of the day `date` (`YYYY-MM-DD`) in India's time; 422
/// `INVALID_DATE` for anything else.
pub fn ist_day(date: &str) -> Result<(Timestamp, Timestamp), ApiError> {
    let bad =
        || ApiError::unprocessable("INVALID_DATE", format!("`date` must be YYYY-MM-DD, not {:?}", truncate(date, 20)));
    let ok = date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-';
    if !ok {
        return Err(bad());
    }
    let midnight_utc = Timestamp::parse_rfc3339(&format!("{date}T00:00:00Z")).map_err(|_| bad())?;
    let start = midnight_utc.unix_millis() - IST_OFFSET_MS;
    let start = Timestamp::from_unix_millis(start).map_err(|_| bad())?;
    let end = Timestamp::from_unix_millis(start.unix_millis() + 24 * 3600 * 1000).map_err(|_| bad())?;
    Ok((start, end))
}

/// The CSV's columns.
pub const SETTLEMENT_HEADER: &str = "kind,merchant_txn_id,phonepe_transaction_id,utr,session_id,amount,state,final_at";

/// `GET /api/reports/settlement/?date=YYYY-MM-DD`: every payment and refund that reached a final
/// state that day (India's time), one row each, as CSV (amounts in rupees, `final_at` in UTC):
/// operators only.
pub async fn settlement_csv(state: &AppState, caller: &Caller, date: Option<&str>) -> Result<String, ApiError> {
    require_operator(caller, "download settlement reports")?;
    let date = date
        .filter(|d| !d.is_empty())
        .ok_or_else(|| ApiError::unprocessable("INVALID_DATE", "`date` (YYYY-MM-DD) is required"))?;
    let (start, end) = ist_day(date)?;
    let mut out = String::from(SETTLEMENT_HEADER);
    out.push_str("\r\n");
    let mut cursor: Option<String> = None;
    let mut rows = 0usize;
    loop {
        let page = state.store.list_ledger(start, end, 1000, cursor.as_deref()).await?;
        for e in &page.entries {
            let fields = [
                e.kind.as_str().to_owned(),
                e.merchant_txn_id.clone(),
                e.provider_txn_id.clone().unwrap_or_default(),
                e.utr.clone().unwrap_or_default(),
                e.session_id.as_str().to_owned(),
                Paise::to_string(&e.amount),
                e.state.as_str().to_owned(),
                e.final_at.to_rfc3339(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
            rows += 1;
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    tracing::info!(date, rows, "settlement report");
    Ok(out)
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break; a leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet never runs it as a formula.
pub fn csv_field(f: &str) -> String {
    let f = if f.starts_with(['=', '+', '-', '@']) { format!("'{f}") } else { f.to_owned() };
    if f.contains([',', '"', '\r', '\n']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn india_days() {
        let (start, end) = ist_day("2026-12-01").unwrap();
        assert_eq!(start.to_rfc3339(), "2026-11-30T18:30:00.000Z");
        assert_eq!(end.to_rfc3339(), "2026-12-01T18:30:00.000Z");
        for bad in ["2026-12-1", "2026/12/01", "01-12-2026", "2026-13-01", "2026-02-30", "", "2026-12-01T00:00:00Z"] {
            assert!(ist_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_fields() {
        assert_eq!(csv_field("PP01"), "PP01");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
