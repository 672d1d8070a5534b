//! The use cases: book, pay, verify, refund, and applying what PhonePe reports. Handlers parse
//! and answer; this module decides. Every state change goes through the domain's transitions
//! and one conditional [`Store::commit`]; a lost race reloads and decides again.
//!
//! Outcomes from PhonePe (callback, verify, reconciliation) all go through
//! [`apply_payment_report`] / [`apply_refund_report`], so they are applied the same way and at
//! most once however often they arrive.

use http::StatusCode;
use parkpay_domain::{
    BookingRequest, DomainError, Hours, LotId, ParkingSession, Payment, PaymentId, PaymentInstrument, PaymentStatus,
    Refund, RefundId, RefundRequest, SessionId, SuccessReport, Timestamp, VehicleNumber, record_refund_success,
};
use parkpay_gateway::{
    DeviceOs, GatewayError, Instrument, MerchantTxnId, PayRequest, RefundRequest as GatewayRefund, StatusReport,
    TxnState,
};
use parkpay_store::{Record, SessionBundle, StoreError, TxnRef, Write};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::http::{AmountInput, ApiError, required};
use crate::identity::Caller;
use crate::state::{AppState, random_id_bytes};
use crate::views::{CallbackAck, LotView, LotsView, PaymentCreatedView, RefundView, SessionView, VerifyView};

/// How often a use case reloads and retries after losing a race before answering 409.
const MAX_ATTEMPTS: usize = 8;

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
    tracing::info!(session = %session.id(), lot = %session.lot_id(), amount = %session.amount(), "session booked");
    Ok(SessionView::new(&session, &[], &[]))
}

/// The session if the caller may see it (its owner, or an operator); otherwise 404.
async fn load_visible(state: &AppState, caller: &Caller, id: &SessionId) -> Result<SessionBundle, ApiError> {
    match state.store.load_session(id).await? {
        Some(b) if caller.is_operator || b.session.user_id() == &caller.user_id => Ok(b),
        _ => Err(ApiError::session_not_found()),
    }
}

/// The session if the caller owns it; otherwise 404 (operators do not pay for drivers).
async fn load_owned(state: &AppState, caller: &Caller, id: &SessionId) -> Result<SessionBundle, ApiError> {
    match state.store.load_session(id).await? {
        Some(b) if b.session.user_id() == &caller.user_id => Ok(b),
        _ => Err(ApiError::session_not_found()),
    }
}

fn parse_session_id(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw).map_err(|_| ApiError::session_not_found())
}

pub async fn get_session(state: &AppState, caller: &Caller, raw_id: &str) -> Result<SessionView, ApiError> {
    let id = parse_session_id(raw_id)?;
    Ok(SessionView::from_bundle(&load_visible(state, caller, &id).await?))
}

/// PhonePe's `merchantUserId`: a stable, non-personal id (the JWT subject may be an e-mail).
fn merchant_user_id(caller: &parkpay_domain::UserId) -> String {
    let digest = Sha256::digest(caller.as_str().as_bytes());
    let mut out = String::from("U");
    for b in &digest[..16] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn gateway_instrument(
    instrument: PaymentInstrument,
    vpa: Option<String>,
    device_os: Option<String>,
) -> Result<Instrument, ApiError> {
    Ok(match instrument {
        PaymentInstrument::PayPage => Instrument::PayPage,
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

/// `handle@psp`: 2–256 characters of letters, digits, `.`, `-`, `_`, one `@`.
fn valid_vpa(vpa: &str) -> bool {
    let Some((user, psp)) = vpa.split_once('@') else { return false };
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    vpa.len() <= 256 && ok(user) && ok(psp) && psp.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

fn txn_id(id: &str) -> Result<MerchantTxnId, ApiError> {
    MerchantTxnId::parse(id).map_err(ApiError::internal)
}

/// Create the payment whose id is fixed by `id_bytes` (derived from the `Idempotency-Key`, or
/// random). A retry that finds this payment already recorded resumes it instead of creating
/// another: if PhonePe never saw it, it is sent now with the same id; otherwise its state is
/// brought up to date and answered.
pub async fn create_payment(
    state: &AppState,
    caller: &Caller,
    body: CreatePaymentBody,
    id_bytes: [u8; 16],
) -> Result<PaymentCreatedView, ApiError> {
    let session_id = parse_session_id(&required(body.session_id, "session_id")?)?;
    if let Some(user) = body.user_id.as_deref()
        && user != caller.user_id.as_str()
    {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "USER_MISMATCH", "`user_id` must be the caller's own id"));
    }
    let instrument = match body.payment_instrument.as_deref() {
        None => PaymentInstrument::PayPage,
        Some(name) => PaymentInstrument::parse(name).ok_or_else(|| {
            ApiError::unprocessable(
                "INVALID_PAYMENT_INSTRUMENT",
                "`payment_instrument` must be PAY_PAGE, UPI_INTENT, UPI_QR or UPI_COLLECT",
            )
        })?,
    };
    let gw_instrument = gateway_instrument(instrument, body.vpa, body.device_os)?;
    let asked = body.amount.as_ref().map(|a| a.to_paise("amount", state.max_amount())).transpose()?;

    // Record the PENDING payment before PhonePe hears of it: if we crash after PhonePe takes the
    // money, reconciliation still finds it.
    let payment_id = PaymentId::from_random(id_bytes);
    let mut attempt = 0;
    let (session, payment) = loop {
        attempt += 1;
        let bundle = load_owned(state, caller, &session_id).await?;
        let mut session = bundle.session;
        if let Some(asked) = asked
            && asked != session.amount()
        {
            return Err(DomainError::AmountMismatch { expected: session.amount(), got: asked }.into());
        }
        if let Some(existing) = bundle.payments.iter().find(|p| p.id() == &payment_id) {
            // A retry of a request whose first run did not finish.
            let payment = resume_payment(state, &session_id, existing).await?;
            break (session, payment);
        }
        let now = state.clock.now();
        let payment = Payment::start(payment_id.clone(), &session, &bundle.payments, instrument, now)?;
        let expected = session.version();
        session.note_payment_started(now);
        let writes = vec![
            Write::Insert(Record::Payment(payment.clone())),
            Write::Update { record: Record::Session(session.clone()), expected_version: expected },
        ];
        match state.store.commit(writes).await {
            Ok(()) => break (session, payment),
            Err(StoreError::Conflict) if attempt < MAX_ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    };

    let mut redirect = state.redirect_url.clone();
    redirect.query_pairs_mut().append_pair("session_id", session.id().as_str());
    let request = PayRequest {
        merchant_txn_id: txn_id(payment.id().as_str())?,
        merchant_user_id: merchant_user_id(&caller.user_id),
        amount: payment.amount(),
        instrument: gw_instrument,
        redirect_url: redirect.to_string(),
        mobile_number: None,
    };
    match state.gateway.pay(&request).await {
        Ok(started) => {
            tracing::info!(payment = %payment.id(), session = %session.id(), amount = %payment.amount(), "payment started");
            let expires = Timestamp::from_unix_millis(payment.created_at().unix_millis() + PAYMENT_TTL_MS)
                .unwrap_or(payment.created_at());
            Ok(PaymentCreatedView {
                merchant_txn_id: payment.id().as_str().to_owned(),
                session_id: session.id().as_str().to_owned(),
                amount: payment.amount().to_string(),
                status: payment.status().as_str(),
                payment_instrument: instrument.as_str(),
                redirect_url: started.redirect_url,
                upi_intent_url: started.upi_intent_url,
                qr_data: started.qr_data,
                expires_at: expires.to_rfc3339(),
            })
        }
        Err(e) if e.outcome_unknown() => {
            // PhonePe may have the payment: keep it PENDING for verify / reconciliation.
            tracing::warn!(payment = %payment.id(), error = %e, "payment outcome unknown; left PENDING");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "GATEWAY_OUTCOME_UNKNOWN",
                format!(
                    "PhonePe did not answer in time; payment {} is pending: verify it, or try again later",
                    payment.id()
                ),
            ))
        }
        Err(e) => {
            // PhonePe definitely did not start it: mark it FAILED so the session can be paid.
            tracing::warn!(payment = %payment.id(), error = %e, "payment refused or not sent; marked FAILED");
            fail_payment(state, &session_id, payment.id()).await?;
            Err(gateway_error(e))
        }
    }
}

/// A create-payment retry found its payment already recorded. `Ok`: PhonePe never saw it, send
/// it now (same id). Otherwise the answer for the client (`Err`), after bringing the record up to
/// date with what PhonePe says.
async fn resume_payment(state: &AppState, session_id: &SessionId, existing: &Payment) -> Result<Payment, ApiError> {
    let in_progress = |id: &PaymentId| {
        ApiError::new(
            StatusCode::CONFLICT,
            "PAYMENT_IN_PROGRESS",
            format!("payment {id} for this request is in progress; verify it"),
        )
    };
    let failed = |id: &PaymentId| {
        ApiError::new(
            StatusCode::CONFLICT,
            "PAYMENT_FAILED",
            format!("payment {id} for this request failed; start a new one with a new Idempotency-Key"),
        )
    };
    match existing.status() {
        PaymentStatus::Success => return Err(DomainError::SessionAlreadyPaid.into()),
        PaymentStatus::Failed => return Err(failed(existing.id())),
        PaymentStatus::Pending => {}
    }
    let report = state.gateway.status(&txn_id(existing.id().as_str())?).await.map_err(gateway_error)?;
    if report.state == TxnState::NotFound {
        tracing::info!(payment = %existing.id(), "retried payment never reached PhonePe; sending it now");
        return Ok(existing.clone());
    }
    let (after, _) = apply_payment_report(state, session_id, existing.id(), &report, ReportSource::Verify).await?;
    match after.payments.iter().find(|p| p.id() == existing.id()).map(|p| p.status()) {
        Some(PaymentStatus::Success) => Err(DomainError::SessionAlreadyPaid.into()),
        Some(PaymentStatus::Failed) => Err(failed(existing.id())),
        _ => Err(in_progress(existing.id())),
    }
}

fn gateway_error(e: GatewayError) -> ApiError {
    match e {
        GatewayError::Rejected { code, .. } if code == "TOO_MANY_REQUESTS" => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "GATEWAY_BUSY", "PhonePe is busy; try again shortly")
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

/// Mark a payment PhonePe never accepted as FAILED.
async fn fail_payment(state: &AppState, session_id: &SessionId, payment_id: &PaymentId) -> Result<(), ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let Some(bundle) = state.store.load_session(session_id).await? else { return Ok(()) };
        let Some(mut payment) = bundle.payments.into_iter().find(|p| p.id() == payment_id) else { return Ok(()) };
        let expected = payment.version();
        match payment.fail(state.clock.now()) {
            Ok(t) if t.is_applied() => {}
            _ => return Ok(()),
        }
        match state
            .store
            .commit(vec![Write::Update { record: Record::Payment(payment), expected_version: expected }])
            .await
        {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
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
    fn as_str(self) -> &'static str {
        match self {
            ReportSource::Callback => "callback",
            ReportSource::Verify => "verify",
            ReportSource::Reconciliation => "reconciliation",
            ReportSource::PayAnswer => "pay-answer",
            ReportSource::RefundAnswer => "refund-answer",
        }
    }
}

/// Apply what PhonePe says about a payment, once. Returns the session bundle afterwards and
/// whether anything changed. An amount that differs from ours is never applied.
pub async fn apply_payment_report(
    state: &AppState,
    session_id: &SessionId,
    payment_id: &PaymentId,
    report: &StatusReport,
    source: ReportSource,
) -> Result<(SessionBundle, bool), ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let bundle =
            state.store.load_session(session_id).await?.ok_or_else(|| {
                ApiError::internal(format!("session {session_id} of payment {payment_id} is missing"))
            })?;
        let Some(payment) = bundle.payments.iter().find(|p| p.id() == payment_id).cloned() else {
            return Err(ApiError::internal(format!("payment {payment_id} is missing from session {session_id}")));
        };
        let now = state.clock.now();
        let mut payment = payment;
        let mut session = bundle.session.clone();
        let (p_ver, s_ver) = (payment.version(), session.version());

        match report.state {
            TxnState::Success => {
                let Some(amount) = report.amount else {
                    tracing::warn!(security = true, payment = %payment_id, source = source.as_str(),
                        "success reported without an amount; not applied");
                    return Ok((bundle, false));
                };
                let success =
                    SuccessReport { amount, provider_txn_id: report.provider_txn_id.clone(), utr: report.utr.clone() };
                let transition = match payment.succeed(success.clone(), now) {
                    Err(DomainError::LateSuccess) => {
                        tracing::warn!(payment = %payment_id, source = source.as_str(), "late success after a failure");
                        payment.late_success(success, now)
                    }
                    other => other,
                };
                match transition {
                    Ok(t) if !t.is_applied() => return Ok((bundle, false)),
                    Ok(_) => {}
                    Err(e @ DomainError::AmountMismatch { .. }) => {
                        tracing::warn!(security = true, payment = %payment_id, source = source.as_str(), error = %e,
                            "reported amount differs from ours; not applied");
                        return Ok((bundle, false));
                    }
                    Err(e) => {
                        tracing::warn!(payment = %payment_id, source = source.as_str(), error = %e, "success not applied");
                        return Ok((bundle, false));
                    }
                }
                if let Err(e) = session.mark_paid(payment_id, amount, now) {
                    // Money moved but this session cannot take it (cancelled or timed out, or paid
                    // by another payment). The payment is recorded SUCCESS so the money is never
                    // lost track of, and refunded automatically after the commit.
                    tracing::warn!(payment = %payment_id, session = %session_id, error = %e,
                        "payment succeeded for a session that cannot take it; refunding it");
                }
            }
            TxnState::Failed => match payment.fail(now) {
                Ok(t) if t.is_applied() => {}
                Ok(_) => return Ok((bundle, false)),
                Err(e) => {
                    // e.g. a stale FAILED arriving after SUCCESS: success is final.
                    tracing::warn!(payment = %payment_id, source = source.as_str(), error = %e, "failure not applied");
                    return Ok((bundle, false));
                }
            },
            TxnState::Pending | TxnState::NotFound => return Ok((bundle, false)),
        }

        let mut writes = vec![Write::Update { record: Record::Payment(payment.clone()), expected_version: p_ver }];
        if session.version() != s_ver {
            writes.push(Write::Update { record: Record::Session(session.clone()), expected_version: s_ver });
        }
        match state.store.commit(writes).await {
            Ok(()) => {
                tracing::info!(payment = %payment_id, status = payment.status().as_str(),
                    session_status = session.status().as_str(), source = source.as_str(), "payment outcome applied");
                let stray = payment.status() == PaymentStatus::Success && session.paid_by() != Some(payment_id);
                let mut after = bundle;
                after.session = session;
                if let Some(p) = after.payments.iter_mut().find(|p| p.id() == payment_id) {
                    *p = payment;
                }
                if stray {
                    // Money arrived for a session that cannot take it: give it back.
                    match Box::pin(auto_refund(state, payment_id)).await {
                        Ok(r) => tracing::warn!(payment = %payment_id, refund = %r.refund_id, status = r.status,
                            "automatic refund of a payment its session cannot take"),
                        Err(e) => tracing::error!(payment = %payment_id, error = %e.message,
                            "automatic refund failed; reconciliation or an operator must refund it"),
                    }
                    let refreshed = state.store.load_session(session_id).await?.unwrap_or(after);
                    return Ok((refreshed, true));
                }
                return Ok((after, true));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// Apply what PhonePe says about a refund, once.
pub async fn apply_refund_report(
    state: &AppState,
    session_id: &SessionId,
    refund_id: &RefundId,
    report_state: TxnState,
    source: ReportSource,
) -> Result<(SessionBundle, bool), ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let bundle = state
            .store
            .load_session(session_id)
            .await?
            .ok_or_else(|| ApiError::internal(format!("session {session_id} of refund {refund_id} is missing")))?;
        let Some(mut refund) = bundle.refunds.iter().find(|r| r.id() == refund_id).cloned() else {
            return Err(ApiError::internal(format!("refund {refund_id} is missing from session {session_id}")));
        };
        let Some(mut payment) = bundle.payments.iter().find(|p| p.id() == refund.payment_id()).cloned() else {
            return Err(ApiError::internal(format!("payment of refund {refund_id} is missing")));
        };
        let mut session = bundle.session.clone();
        let (r_ver, p_ver, s_ver) = (refund.version(), payment.version(), session.version());
        let now = state.clock.now();
        let result = match report_state {
            TxnState::Success => record_refund_success(&mut refund, &mut payment, &mut session, now),
            TxnState::Failed => refund.fail(now),
            TxnState::Pending | TxnState::NotFound => return Ok((bundle, false)),
        };
        match result {
            Ok(t) if t.is_applied() => {}
            Ok(_) => return Ok((bundle, false)),
            Err(e) => {
                tracing::warn!(refund = %refund_id, source = source.as_str(), error = %e, "refund outcome not applied");
                return Ok((bundle, false));
            }
        }
        let mut writes = vec![Write::Update { record: Record::Refund(refund.clone()), expected_version: r_ver }];
        if payment.version() != p_ver {
            writes.push(Write::Update { record: Record::Payment(payment.clone()), expected_version: p_ver });
        }
        if session.version() != s_ver {
            writes.push(Write::Update { record: Record::Session(session.clone()), expected_version: s_ver });
        }
        match state.store.commit(writes).await {
            Ok(()) => {
                tracing::info!(refund = %refund_id, status = refund.status().as_str(), amount = %refund.amount(),
                    session_status = session.status().as_str(), source = source.as_str(), "refund outcome applied");
                let mut after = bundle;
                after.session = session;
                if let Some(p) = after.payments.iter_mut().find(|p| p.id() == payment.id()) {
                    *p = payment;
                }
                if let Some(r) = after.refunds.iter_mut().find(|r| r.id() == refund_id) {
                    *r = refund;
                }
                return Ok((after, true));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// The system's own identity for refunds it starts by itself.
const SYSTEM_USER: &str = "parkpay-system";

/// Refund all of a payment that succeeded for a session that cannot take it. Its id derives
/// from the payment's, so however often this runs there is one such refund.
async fn auto_refund(state: &AppState, payment_id: &PaymentId) -> Result<RefundView, ApiError> {
    let system =
        Caller { user_id: parkpay_domain::UserId::parse(SYSTEM_USER).map_err(ApiError::internal)?, is_operator: true };
    let body = RefundBody {
        merchant_txn_id: Some(payment_id.as_str().to_owned()),
        amount: None,
        reason: Some("automatic: the payment succeeded after its session was cancelled, timed out or paid".into()),
    };
    let id = crate::idempotency::derived_id(&format!("auto-refund#{payment_id}"), "");
    refund(state, &system, body, id).await
}

/// A payment still PENDING at PhonePe's timeout: FAILED, and its session, if still unpaid and
/// waiting on no other payment, CANCELLED (the booking is released). One commit.
pub async fn expire_payment(state: &AppState, session_id: &SessionId, payment_id: &PaymentId) -> Result<(), ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let Some(bundle) = state.store.load_session(session_id).await? else { return Ok(()) };
        let Some(mut payment) = bundle.payments.iter().find(|p| p.id() == payment_id).cloned() else { return Ok(()) };
        let now = state.clock.now();
        let (p_ver, s_ver) = (payment.version(), bundle.session.version());
        match payment.fail(now) {
            Ok(t) if t.is_applied() => {}
            _ => return Ok(()),
        }
        let mut session = bundle.session.clone();
        let others_live = bundle.payments.iter().any(|p| p.id() != payment_id && p.status() == PaymentStatus::Pending);
        let mut writes = vec![Write::Update { record: Record::Payment(payment), expected_version: p_ver }];
        if !others_live && session.cancel(now).is_ok_and(|t| t.is_applied()) {
            writes.push(Write::Update { record: Record::Session(session), expected_version: s_ver });
        }
        match state.store.commit(writes).await {
            Ok(()) => {
                tracing::info!(payment = %payment_id, session = %session_id, "payment expired after the timeout");
                return Ok(());
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// Find a payment by its merchant transaction id (refund ids and malformed ids are "not found").
async fn find_payment(state: &AppState, raw: &str) -> Result<(SessionId, PaymentId), ApiError> {
    if PaymentId::parse(raw).is_err() {
        return Err(ApiError::payment_not_found());
    }
    match state.store.find_txn(raw).await? {
        Some(TxnRef::Payment { session_id, payment_id }) => Ok((session_id, payment_id)),
        _ => Err(ApiError::payment_not_found()),
    }
}

pub async fn verify_payment(state: &AppState, caller: &Caller, body: VerifyBody) -> Result<VerifyView, ApiError> {
    let raw = required(body.merchant_txn_id, "merchant_txn_id")?;
    let (session_id, payment_id) = find_payment(state, &raw).await?;
    let bundle = load_visible(state, caller, &session_id).await.map_err(|_| ApiError::payment_not_found())?;
    let bundle = match state.gateway.status(&txn_id(payment_id.as_str())?).await {
        Ok(report) => apply_payment_report(state, &session_id, &payment_id, &report, ReportSource::Verify).await?.0,
        Err(e) => {
            let recorded = bundle.payments.iter().find(|p| p.id() == &payment_id).map(|p| p.status());
            if matches!(recorded, Some(PaymentStatus::Success | PaymentStatus::Failed)) {
                // Final already: our record answers.
                tracing::warn!(payment = %payment_id, error = %e, "status API unavailable; answering from our record");
                bundle
            } else {
                return Err(gateway_error(e));
            }
        }
    };
    let payment =
        bundle.payments.iter().find(|p| p.id() == &payment_id).ok_or_else(|| ApiError::internal("payment vanished"))?;
    Ok(VerifyView {
        merchant_txn_id: payment.id().as_str().to_owned(),
        verified: payment.status() == PaymentStatus::Success,
        status: payment.status().as_str(),
        amount: payment.amount().to_string(),
        session_status: bundle.session.status().as_str(),
        can_enter: bundle.session.can_enter(),
    })
}

/// Request the refund whose id is fixed by `id_bytes` (derived from the `Idempotency-Key`, or
/// random). A retry that finds this refund already recorded resumes it: it is sent to PhonePe
/// again only if PhonePe has never seen it (PhonePe's docs: check a refund's status before any
/// retry; a re-sent refund would be refused as excess).
pub async fn refund(
    state: &AppState,
    caller: &Caller,
    body: RefundBody,
    id_bytes: [u8; 16],
) -> Result<RefundView, ApiError> {
    let raw = required(body.merchant_txn_id, "merchant_txn_id")?;
    let asked = body.amount.as_ref().map(|a| a.to_paise("amount", state.max_amount())).transpose()?;
    let (session_id, payment_id) = find_payment(state, &raw).await?;
    let refund_id = RefundId::from_random(id_bytes);

    let mut attempt = 0;
    let (payment, refund) = loop {
        attempt += 1;
        let bundle = match state.store.load_session(&session_id).await? {
            Some(b) if caller.is_operator || b.session.user_id() == &caller.user_id => b,
            _ => return Err(ApiError::payment_not_found()),
        };
        let mut payment =
            bundle.payments.iter().find(|p| p.id() == &payment_id).cloned().ok_or_else(ApiError::payment_not_found)?;
        if let Some(existing) = bundle.refunds.iter().find(|r| r.id() == &refund_id) {
            // A retry of a request whose first run did not finish.
            if existing.status() != parkpay_domain::RefundStatus::Pending {
                return Ok(RefundView::from(existing));
            }
            let report = state.gateway.status(&txn_id(refund_id.as_str())?).await.map_err(gateway_error)?;
            if report.state != TxnState::NotFound {
                let (after, _) =
                    apply_refund_report(state, &session_id, &refund_id, report.state, ReportSource::Verify).await?;
                let current = after.refunds.iter().find(|r| r.id() == &refund_id).unwrap_or(existing);
                return Ok(RefundView::from(current));
            }
            tracing::info!(refund = %refund_id, "retried refund never reached PhonePe; sending it now");
            break (payment, existing.clone());
        }
        let now = state.clock.now();
        let refund = Refund::request(
            refund_id.clone(),
            &payment,
            &bundle.refunds,
            RefundRequest {
                amount: asked,
                reason: body.reason.clone(),
                requested_by: caller.user_id.clone(),
                by_operator: caller.is_operator,
            },
            now,
        )?;
        let expected = payment.version();
        payment.note_refund_requested(now);
        let writes = vec![
            Write::Insert(Record::Refund(refund.clone())),
            Write::Update { record: Record::Payment(payment.clone()), expected_version: expected },
        ];
        match state.store.commit(writes).await {
            Ok(()) => break (payment, refund),
            Err(StoreError::Conflict) if attempt < MAX_ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    };
    tracing::info!(refund = %refund.id(), payment = %payment.id(), amount = %refund.amount(),
        by_operator = caller.is_operator, "refund requested");

    let request = GatewayRefund {
        refund_txn_id: txn_id(refund.id().as_str())?,
        original_txn_id: txn_id(payment.id().as_str())?,
        amount: refund.amount(),
        merchant_user_id: Some(merchant_user_id(payment.user_id())),
    };
    let final_state = match state.gateway.refund(&request).await {
        Ok(started) => started.state,
        Err(e) if e.outcome_unknown() => {
            // It may have started at PhonePe: stays PENDING, reconciliation asks its status.
            tracing::warn!(refund = %refund.id(), error = %e, "refund outcome unknown; left PENDING");
            TxnState::Pending
        }
        Err(e) => {
            tracing::warn!(refund = %refund.id(), error = %e, "refund refused or not sent; marked FAILED");
            apply_refund_report(state, &session_id, refund.id(), TxnState::Failed, ReportSource::RefundAnswer).await?;
            return Err(gateway_error(e));
        }
    };
    let (bundle, _) =
        apply_refund_report(state, &session_id, refund.id(), final_state, ReportSource::RefundAnswer).await?;
    let current = bundle.refunds.iter().find(|r| r.id() == refund.id()).unwrap_or(&refund);
    Ok(RefundView::from(current))
}

/// PhonePe's server-to-server callback. Authenticated by its checksum only.
pub async fn callback(state: &AppState, headers: &http::HeaderMap, body: &[u8]) -> Result<CallbackAck, ApiError> {
    let notice = state.gateway.verify_notice(headers, body).await.map_err(|e| {
        if let parkpay_gateway::CallbackError::KeysUnavailable(cause) = &e {
            tracing::error!(%cause, "callback keys unavailable");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "KEYS_UNAVAILABLE", "try again later")
        } else if e.is_unauthenticated() {
            tracing::warn!(security = true, error = %e, "callback with a bad or missing checksum rejected");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_SIGNATURE",
                "the callback's X-VERIFY checksum is missing or wrong",
            )
        } else {
            tracing::warn!(error = %e, "malformed callback");
            ApiError::bad_request("MALFORMED_CALLBACK", e.to_string())
        }
    })?;
    let report = notice.report;
    if let Some(m) = report.merchant_id.as_deref()
        && m != state.merchant_id
    {
        tracing::warn!(security = true, merchant = %truncate(m, 40), txn = %report.merchant_txn_id,
                "callback for another merchant; not applied");
        return Ok(CallbackAck { success: true, applied: false });
    }
    let applied = match state.store.find_txn(report.merchant_txn_id.as_str()).await? {
        Some(TxnRef::Payment { session_id, payment_id }) => {
            let report = cross_check(state, &session_id, &payment_id, report).await?;
            apply_payment_report(state, &session_id, &payment_id, &report, ReportSource::Callback).await?.1
        }
        Some(TxnRef::Refund { session_id, refund_id }) => {
            apply_refund_report(state, &session_id, &refund_id, report.state, ReportSource::Callback).await?.1
        }
        None => {
            // Authentic but not ours to know (another environment sharing the merchant id, or a
            // record lost): acknowledge so PhonePe stops retrying, and leave a trace.
            tracing::warn!(txn = %report.merchant_txn_id, code = %report.code, "callback for an unknown transaction");
            false
        }
    };
    Ok(CallbackAck { success: true, applied })
}

/// A callback that contradicts our record — success for a payment we hold FAILED, failure for
/// one we hold SUCCESS, or another amount than ours — is checked against PhonePe's status API
/// (the source of truth) and what the status API says is applied instead. If PhonePe cannot be
/// asked, the callback is answered 503 so that PhonePe sends it again later.
async fn cross_check(
    state: &AppState,
    session_id: &SessionId,
    payment_id: &PaymentId,
    report: StatusReport,
) -> Result<StatusReport, ApiError> {
    let Some(bundle) = state.store.load_session(session_id).await? else { return Ok(report) };
    let Some(payment) = bundle.payments.iter().find(|p| p.id() == payment_id) else { return Ok(report) };
    let disagrees = match (report.state, payment.status()) {
        (TxnState::Success, PaymentStatus::Failed) | (TxnState::Failed, PaymentStatus::Success) => true,
        (TxnState::Success, _) => report.amount != Some(payment.amount()),
        _ => false,
    };
    if !disagrees {
        return Ok(report);
    }
    tracing::warn!(security = true, payment = %payment_id, code = %report.code, recorded = payment.status().as_str(),
        "callback disagrees with our record; asking PhonePe's status API");
    state.gateway.status(&txn_id(payment_id.as_str())?).await.map_err(gateway_error)
}

fn truncate(s: &str, max: usize) -> String {
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
