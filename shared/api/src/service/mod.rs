//! The use cases: book, pay, verify, refund, and applying what PhonePe reports. Handlers parse
//! and answer; this module decides. Every state change goes through the domain's transitions
//! and one conditional [`Store::commit`]; a lost race reloads and decides again.
//!
//! Outcomes from PhonePe (callback, verify, reconciliation) all go through
//! [`apply_payment_report`] / [`apply_refund_report`], so they are applied the same way and at
//! most once however often they arrive.

use http::StatusCode;
use parkpay_domain::{
    BookingRequest, DomainError, Hours, LotId, Obligation, ParkingSession, PaymentInstrument, SessionId, VehicleNumber,
};
use parkpay_gateway::{DeviceOs, GatewayError, Instrument, MerchantTxnId};
use parkpay_store::{Record, SessionBundle, Write};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::http::{AmountInput, ApiError, required};
use crate::identity::Caller;
use crate::state::{AppState, random_id_bytes};
use crate::views::{LotView, LotsView, SessionView};

mod callbacks;
mod history;
mod obligations;
mod operators;
#[cfg(feature = "passes")]
mod passes;
mod payments;
mod receipts;
mod refunds;
mod reports;
mod visits;

pub use callbacks::callback;
pub use history::{RevokedQuery, RevokedView, SessionsView, list_sessions, revoked_passes};
pub use obligations::{ObligationView, ObligationsQuery, ObligationsView, list_obligations};
pub use operators::{SETTLEMENT_HEADER, SearchQuery, SearchView, csv_field, ist_day, search, settlement_csv};
#[cfg(feature = "passes")]
pub use passes::{Image, PassView, QrFormat, get_pass, jwks, pass_qr};
#[cfg(feature = "passes")]
pub use payments::payment_qr;
pub use payments::{create_payment, extend_session, verify_payment};
pub use receipts::{ReceiptView, receipt};
pub use refunds::{refund, send_refund, send_refund_from};
pub(crate) use reports::automatic_refund_writes;
pub use reports::{
    apply_payment_report, apply_payment_report_from, apply_refund_report, apply_refund_report_from, expire_payment,
    finish_check, finish_check_from, with_obligation, with_obligation_from,
};
pub use visits::{ScanBody, ScanView, VisitView, record_scan};

/// How often a use case reloads and retries after losing a race before answering 409.
pub(crate) const MAX_ATTEMPTS: usize = 8;

/// Verify asks PhonePe about one payment at most this often; in between it answers from our
/// record.
pub const VERIFY_MIN_INTERVAL_SECS: i64 = 10;

/// How long a created payment's pay page stays usable (PhonePe's reconciliation window).
pub const PAYMENT_TTL_MS: i64 = 20 * 60 * 1000;

// ---------------------------------------------------------------------------------------------
// Request bodies. Fields are optional so a missing one is a 422 naming it; wrong JSON types are
// 400 (see `http::parse_body`).

#[derive(Debug, Deserialize)]
pub struct CreateSessionBody {
    pub lot_id: Option<String>,
    pub vehicle_number: Option<String>,
    pub hours: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct CreatePaymentBody {
    pub session_id: Option<String>,
    pub amount: Option<AmountInput>,
    pub payment_instrument: Option<String>,
    pub vpa: Option<String>,
    pub user_id: Option<String>,
    pub device_os: Option<String>,
}

/// `POST /api/sessions/{session_id}/extend/`.
#[derive(Debug, Deserialize)]
pub struct ExtendBody {
    pub hours: Option<i64>,
    pub amount: Option<AmountInput>,
    pub payment_instrument: Option<String>,
    pub vpa: Option<String>,
    pub device_os: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct VerifyBody {
    pub merchant_txn_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RefundBody {
    pub merchant_txn_id: Option<String>,
    pub amount: Option<AmountInput>,
    pub reason: Option<String>,
}

// ---------------------------------------------------------------------------------------------

pub fn list_lots(state: &AppState) -> LotsView {
    LotsView { lots: state.lots.lots().iter().map(LotView::from).collect() }
}

pub async fn create_session(
    state: &AppState,
    caller: &Caller,
    body: CreateSessionBody,
) -> Result<SessionView, ApiError> {
    let lot_id = required(body.lot_id, "lot_id")?;
    let vehicle = required(body.vehicle_number, "vehicle_number")?;
    let hours = required(body.hours, "hours")?;
    // An id that cannot exist is the same as an unknown lot to the client.
    let lot_id = LotId::parse(&lot_id).map_err(|_| DomainError::UnknownLot { lot_id: truncate(&lot_id, 40) })?;
    let vehicle = VehicleNumber::parse(&vehicle)?;
    let hours = Hours::new(hours, state.lots.limits().max_hours)?;
    let now = state.clock.now();
    let session = ParkingSession::book(
        &state.lots,
        SessionId::from_random(random_id_bytes()),
        BookingRequest { user_id: caller.user_id.clone(), lot_id, vehicle, hours },
        now,
    )?;
    state.store.commit(vec![Write::Insert(Record::Session(session.clone()))]).await?;
    crate::telemetry::note_session(session.id());
    tracing::info!(session = %session.id(), lot = %session.lot_id(), amount = %session.amount(), "session booked");
    Ok(SessionView::new(&session, &[], &[]))
}

/// The session if the caller may see it (its owner, or an operator); otherwise 404.
pub(crate) async fn load_visible(state: &AppState, caller: &Caller, id: &SessionId) -> Result<SessionBundle, ApiError> {
    match state.store.load_session(id).await? {
        Some(b) if caller.is_operator || b.session.user_id() == &caller.user_id => Ok(b),
        _ => Err(ApiError::session_not_found()),
    }
}

/// The session if the caller owns it; otherwise 404 (operators do not pay for drivers).
pub(crate) async fn load_owned(state: &AppState, caller: &Caller, id: &SessionId) -> Result<SessionBundle, ApiError> {
    match state.store.load_session(id).await? {
        Some(b) if b.session.user_id() == &caller.user_id => Ok(b),
        _ => Err(ApiError::session_not_found()),
    }
}

/// A session id from a path; 404 `SESSION_NOT_FOUND` when it cannot be one.
pub fn parse_session_id(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw).map_err(|_| ApiError::session_not_found())
}

pub async fn get_session(state: &AppState, caller: &Caller, raw_id: &str) -> Result<SessionView, ApiError> {
    let id = parse_session_id(raw_id)?;
    crate::telemetry::note_session(&id);
    Ok(SessionView::from_bundle(&load_visible(state, caller, &id).await?))
}

/// PhonePe's `merchantUserId`: a stable, non-personal id (the JWT subject may be an e-mail).
pub(crate) fn merchant_user_id(caller: &parkpay_domain::UserId) -> String {
    let digest = Sha256::digest(caller.as_str().as_bytes());
    let mut out = String::from("U");
    for b in &digest[..16] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

pub(crate) fn gateway_instrument(
    instrument: PaymentInstrument,
    vpa: Option<String>,
    device_os: Option<String>,
) -> Result<Instrument, ApiError> {
    Ok(match instrument {
        PaymentInstrument::PayPage => Instrument::PayPage,
        PaymentInstrument::AppSdk => Instrument::AppSdk,
        PaymentInstrument::UpiQr => Instrument::UpiQr,
        PaymentInstrument::UpiIntent => Instrument::UpiIntent {
            target_app: None,
            device_os: match device_os.as_deref().map(str::to_ascii_uppercase).as_deref() {
                None | Some("ANDROID") => DeviceOs::Android,
                Some("IOS") => DeviceOs::Ios,
                Some(_) => {
                    return Err(ApiError::unprocessable("INVALID_DEVICE_OS", "`device_os` must be ANDROID or IOS"));
                }
            },
        },
        PaymentInstrument::UpiCollect => {
            let vpa =
                vpa.ok_or_else(|| ApiError::unprocessable("MISSING_FIELD", "`vpa` is required for UPI_COLLECT"))?;
            if !valid_vpa(&vpa) {
                return Err(ApiError::unprocessable("INVALID_VPA", "`vpa` must be a UPI address such as name@bank"));
            }
            Instrument::UpiCollect { vpa }
        }
    })
}

/// 422 `INSTRUMENT_NOT_AVAILABLE`: the instrument (by its contract name) is not offered by the
/// PhonePe API this deployment uses.
pub(crate) fn instrument_not_available(instrument: &str, api: parkpay_domain::GatewayApi) -> ApiError {
    let offered: Vec<&str> = PaymentInstrument::ALL.iter().filter(|i| i.offered_by(api)).map(|i| i.as_str()).collect();
    ApiError::unprocessable(
        "INSTRUMENT_NOT_AVAILABLE",
        format!(
            "{instrument} is not available with PhonePe PG {}, which this deployment uses: use {}",
            api.as_str(),
            offered.join(", ")
        ),
    )
}

/// `handle@psp`: 2–256 characters of letters, digits, `.`, `-`, `_`, one `@`.
fn valid_vpa(vpa: &str) -> bool {
    let Some((user, psp)) = vpa.split_once('@') else { return false };
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    vpa.len() <= 256 && ok(user) && ok(psp) && psp.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

pub(crate) fn txn_id(id: &str) -> Result<MerchantTxnId, ApiError> {
    MerchantTxnId::parse(id).map_err(ApiError::internal)
}

/// The HTTP answer for a gateway error the client must see.
pub(crate) fn gateway_error(e: GatewayError) -> ApiError {
    match e {
        // The client of the payment's API refused the instrument (a payment resumed under the
        // API that made it, after the deployment switched).
        GatewayError::Rejected { code, message } if code == parkpay_gateway::INSTRUMENT_NOT_AVAILABLE => {
            ApiError::unprocessable("INSTRUMENT_NOT_AVAILABLE", message)
        }
        GatewayError::Rejected { code, .. } if code == "TOO_MANY_REQUESTS" => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "GATEWAY_BUSY", "PhonePe is busy; try again shortly")
                .retry_after(GATEWAY_BUSY_RETRY_SECS)
        }
        GatewayError::Rejected { code, .. } => {
            ApiError::new(StatusCode::BAD_GATEWAY, "GATEWAY_REJECTED", format!("PhonePe refused the request ({code})"))
        }
        GatewayError::Unreachable { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "GATEWAY_UNAVAILABLE",
            "PhonePe cannot be reached; try again",
        ),
        GatewayError::OutcomeUnknown { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "GATEWAY_OUTCOME_UNKNOWN",
            "PhonePe did not answer in time; try again",
        ),
    }
}

/// How long a client is told to wait after PhonePe's TOO_MANY_REQUESTS.
pub const GATEWAY_BUSY_RETRY_SECS: u32 = 5;

/// A short name for a gateway error, kept as an obligation's `last_code`.
pub(crate) fn error_code(e: &GatewayError) -> String {
    match e {
        GatewayError::Rejected { code, .. } => code.clone(),
        GatewayError::OutcomeUnknown { .. } => "OUTCOME_UNKNOWN".into(),
        GatewayError::Unreachable { .. } => "UNREACHABLE".into(),
    }
}

/// Where a report came from, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportSource {
    Callback,
    Verify,
    Reconciliation,
    PayAnswer,
    RefundAnswer,
}

impl ReportSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReportSource::Callback => "callback",
            ReportSource::Verify => "verify",
            ReportSource::Reconciliation => "reconciliation",
            ReportSource::PayAnswer => "pay-answer",
            ReportSource::RefundAnswer => "refund-answer",
        }
    }
}

/// The obligation about `target_id` in `bundle` as a write: an update of the stored one
/// (conditional on the version read), or an insert of `fresh` when the session has none (a
/// record written before obligations existed).
pub(crate) fn obligation_write(bundle: &SessionBundle, target_id: &str, changed: Obligation) -> Option<Write> {
    match bundle.obligation(target_id) {
        Some(old) if old.version() == changed.version() => None,
        Some(old) => Some(Write::Update { record: Record::Obligation(changed), expected_version: old.version() }),
        None => Some(Write::Insert(Record::Obligation(changed))),
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merchant_user_id_fits_phonepe() {
        let id = merchant_user_id(&parkpay_domain::UserId::parse("someone@example.com").unwrap());
        assert_eq!(id.len(), 33);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(id, merchant_user_id(&parkpay_domain::UserId::parse("other").unwrap()));
    }

    #[test]
    fn vpa_rules() {
        assert!(valid_vpa("driver.1@okhdfc"));
        assert!(valid_vpa("a_b-c@ybl"));
        for bad in ["", "@ybl", "name@", "name", "a@b@c", "nä@ybl", "a@y bl", "a@y_bl"] {
            assert!(!valid_vpa(bad), "{bad}");
        }
    }
}
