//! Paying for a session: create-payment (and resuming a retried one), verify.

use http::StatusCode;
use parkpay_domain::{
    DomainError, Obligation, Payment, PaymentId, PaymentInstrument, PaymentStatus, SessionId, Timestamp,
};
use parkpay_gateway::{PayRequest, TxnState};
use parkpay_store::{Record, SessionBundle, StoreError, TxnRef, Write};

use super::{
    CreatePaymentBody, MAX_ATTEMPTS, PAYMENT_TTL_MS, ReportSource, VERIFY_MIN_INTERVAL_SECS, VerifyBody,
    apply_payment_report, gateway_error, gateway_instrument, load_owned, load_visible, merchant_user_id,
    obligation_write, parse_session_id, txn_id, with_obligation,
};
use crate::http::{ApiError, required};
use crate::identity::Caller;
use crate::state::AppState;
use crate::telemetry;
use crate::views::{PaymentCreatedView, VerifyView};

/// The `last_code`s of a payment's obligation while PhonePe has not taken it for a reason a
/// retry cures: rate limited (`TOO_MANY_REQUESTS`), never sent (`UNREACHABLE`: no connection,
/// or the salt key could not be loaded), or PhonePe's status says it has never seen it
/// (`TRANSACTION_NOT_FOUND`, PG v2's `ORDER_NOT_FOUND`, noted by reconciliation, e.g. after a
/// 5xx before PhonePe recorded it). The payment stays PENDING (never FAILED for that), and the next create-payment for the
/// session resumes it: it asks PhonePe's status and sends it with the same id only if PhonePe
/// has never seen it.
const NOT_TAKEN_YET: [&str; 4] = [
    "TOO_MANY_REQUESTS",
    "UNREACHABLE",
    parkpay_gateway::phonepe_v1::wire::codes::TRANSACTION_NOT_FOUND,
    parkpay_gateway::phonepe_v2::ORDER_NOT_FOUND,
];

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
    telemetry::note_session(&session_id);
    if let Some(user) = body.user_id.as_deref()
        && user != caller.user_id.as_str()
    {
        tracing::warn!(security = true, "create-payment for another user's id refused (USER_MISMATCH)");
        telemetry::security_event();
        return Err(ApiError::new(StatusCode::FORBIDDEN, "USER_MISMATCH", "`user_id` must be the caller's own id"));
    }
    let how = How::parse(state, body.payment_instrument, body.vpa, body.device_os)?;
    let asked = body.amount.as_ref().map(|a| a.to_paise("amount", state.max_amount())).transpose()?;
    pay_for(state, caller, session_id, What::Booking, asked, how, id_bytes).await
}

/// `POST /api/sessions/{session_id}/extend/` `{"hours": n, "payment_instrument"?, …}`: a payment
/// for `n` more hours at the lot's tariff, answered like create-payment. The session's booked
/// end moves only when that payment succeeds; one live payment at a time; the same
/// `Idempotency-Key` rules.
pub async fn extend_session(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
    body: super::ExtendBody,
    id_bytes: [u8; 16],
) -> Result<PaymentCreatedView, ApiError> {
    let session_id = parse_session_id(raw_id)?;
    telemetry::note_session(&session_id);
    let hours = parkpay_domain::Hours::new(required(body.hours, "hours")?, state.lots.limits().max_hours)?;
    let how = How::parse(state, body.payment_instrument, body.vpa, body.device_os)?;
    let asked = body.amount.as_ref().map(|a| a.to_paise("amount", state.max_amount())).transpose()?;
    pay_for(state, caller, session_id, What::Extension(hours), asked, how, id_bytes).await
}

/// What a payment is for.
#[derive(Debug, Clone, Copy)]
enum What {
    Booking,
    Extension(parkpay_domain::Hours),
}

/// How the payer pays: the instrument as recorded and as sent to PhonePe.
struct How {
    instrument: PaymentInstrument,
    gateway: parkpay_gateway::Instrument,
}

impl How {
    /// The instrument named (`PAY_PAGE` when none), if the configured PhonePe API offers it
    /// (checked before anything is recorded).
    fn parse(
        state: &AppState,
        name: Option<String>,
        vpa: Option<String>,
        device_os: Option<String>,
    ) -> Result<How, ApiError> {
        let instrument = match name.as_deref() {
            None => PaymentInstrument::PayPage,
            Some(name) => PaymentInstrument::parse(name).ok_or_else(|| {
                ApiError::unprocessable(
                    "INVALID_PAYMENT_INSTRUMENT",
                    "`payment_instrument` must be PAY_PAGE, UPI_INTENT, UPI_QR, UPI_COLLECT or APP_SDK",
                )
            })?,
        };
        let api = state.gateways.api();
        if !instrument.offered_by(api) {
            return Err(super::instrument_not_available(instrument.as_str(), api));
        }
        Ok(How { instrument, gateway: gateway_instrument(instrument, vpa, device_os)? })
    }
}

/// Record the payment (`what`) and send it to PhonePe; see [`create_payment`].
async fn pay_for(
    state: &AppState,
    caller: &Caller,
    session_id: SessionId,
    what: What,
    asked: Option<parkpay_domain::Paise>,
    how: How,
    id_bytes: [u8; 16],
) -> Result<PaymentCreatedView, ApiError> {
    let How { instrument, gateway: gw_instrument } = how;
    let api = state.gateways.api();
    // Record the PENDING payment, and the obligation to check it, before PhonePe hears of it:
    // if we crash after PhonePe takes the money, reconciliation still finds it.
    let payment_id = PaymentId::from_random(id_bytes);
    let mut attempt = 0;
    let (session, payment) = loop {
        attempt += 1;
        let bundle = load_owned(state, caller, &session_id).await?;
        let mut session = bundle.session.clone();
        // What is due: the session's price, or the extension's at the lot's tariff.
        let due = match what {
            What::Booking => session.amount(),
            What::Extension(hours) => state.lots.quote(session.lot_id(), hours)?,
        };
        if let Some(asked) = asked
            && asked != due
        {
            return Err(DomainError::AmountMismatch { expected: due, got: asked }.into());
        }
        // A payment for the same thing (the booking, or as many hours) that PhonePe did not take
        // a moment ago is resumed; one for something else still blocks a new one (one live
        // payment per session).
        let purpose = match what {
            What::Booking => parkpay_domain::PaymentPurpose::Booking,
            What::Extension(hours) => parkpay_domain::PaymentPurpose::Extension { hours: hours.get() },
        };
        let same_kind = |p: &&Payment| p.purpose() == purpose;
        let not_taken = not_taken_payment(&bundle).filter(same_kind);
        if let Some(existing) = bundle.payments.iter().find(|p| p.id() == &payment_id).or(not_taken) {
            // A retry of a request whose first run did not finish, or a payment PhonePe would not
            // take a moment ago: resume it (same id).
            let payment = resume_payment(state, &bundle, existing).await?;
            break (session, payment);
        }
        let now = state.clock.now();
        let payment = match what {
            What::Booking => Payment::start(payment_id.clone(), &session, &bundle.payments, instrument, now)?,
            What::Extension(hours) => Payment::start_extension(
                payment_id.clone(),
                &session,
                &bundle.payments,
                hours,
                &state.lots,
                instrument,
                now,
            )?,
        }
        .via(api);
        let expected = session.version();
        session.note_payment_started(now);
        let writes = vec![
            Write::Insert(Record::Payment(payment.clone())),
            Write::Update { record: Record::Session(session.clone()), expected_version: expected },
            Write::Insert(Record::Obligation(Obligation::check_payment(&payment, now))),
        ];
        match state.store.commit(writes).await {
            Ok(()) => break (session, payment),
            Err(StoreError::Conflict) if attempt < MAX_ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    };

    telemetry::note_txn(payment.id());
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
    match state.gateways.of(payment.gateway()).pay(&request).await {
        Ok(started) => {
            tracing::info!(payment = %payment.id(), session = %session.id(), amount = %payment.amount(), "payment started");
            if let Some(link) = started.qr_data.as_deref().or(started.upi_intent_url.as_deref()) {
                // Kept for the QR route (a kiosk shows it as an image); the answer has it anyway,
                // so a failure to keep it is logged, not the driver's problem.
                if let Err(e) = keep_upi_link(state, &session_id, payment.id(), link).await {
                    tracing::warn!(payment = %payment.id(), error = %e.message, "UPI link not kept; its QR route answers 404");
                }
            }
            telemetry::payment_created();
            let expires = Timestamp::from_unix_millis(state.clock.now().unix_millis() + PAYMENT_TTL_MS)
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
                sdk_token: started.sdk_token,
                order_id: started.order_id,
                expires_at: expires.to_rfc3339(),
            })
        }
        Err(e) if e.outcome_unknown() => {
            // PhonePe may have the payment: keep it PENDING; its obligation checks it.
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
        Err(e) if e.retryable() => {
            // Rate limited, or never sent: PhonePe did not take it, and nothing is the driver's
            // fault. The payment stays PENDING (not FAILED), marked as not taken, so the retry
            // (same key or another) resumes it.
            tracing::warn!(payment = %payment.id(), error = %e, "PhonePe did not take the payment; kept for a retry");
            let code = super::error_code(&e);
            with_obligation(state, &session_id, payment.id().as_str(), |o, now| {
                o.note_error(&code, now);
            })
            .await?;
            Err(gateway_error(e))
        }
        Err(e) => {
            // PhonePe definitely did not start it: mark it FAILED so the session can be paid.
            tracing::warn!(payment = %payment.id(), error = %e, "payment refused or not sent; marked FAILED");
            fail_payment(state, &session_id, payment.id()).await?;
            Err(gateway_error(e))
        }
    }
}

/// Keep PhonePe's UPI link on the payment (see [`Payment::note_upi_link`]).
async fn keep_upi_link(state: &AppState, session_id: &SessionId, id: &PaymentId, link: &str) -> Result<(), ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let Some(bundle) = state.store.load_session(session_id).await? else { return Ok(()) };
        let Some(mut payment) = bundle.payments.iter().find(|p| p.id() == id).cloned() else { return Ok(()) };
        let expected = payment.version();
        if payment.note_upi_link(link, state.clock.now()) == parkpay_domain::Transition::AlreadyApplied {
            return Ok(());
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
    Ok(())
}

/// `GET /api/payment/phonepe/qr/{merchant_txn_id}/?format=png|svg`: a pending UPI payment's
/// link as a QR image, for a kiosk or a gate screen. Its driver or an operator; anyone else, a
/// payment without a UPI link, or an unknown id: 404; a payment no longer pending: 409
/// `PAYMENT_NOT_PENDING`.
#[cfg(feature = "passes")]
pub async fn payment_qr(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    format: Option<&str>,
) -> Result<super::Image, ApiError> {
    let format = super::QrFormat::parse(format)?;
    let (session_id, payment_id) = find_payment(state, raw).await?;
    telemetry::note_session(&session_id);
    // Not the caller's is not found; the store being down stays a 503.
    let bundle = load_visible(state, caller, &session_id)
        .await
        .map_err(|e| if e.status == StatusCode::NOT_FOUND { ApiError::payment_not_found() } else { e })?;
    let payment = bundle.payments.iter().find(|p| p.id() == &payment_id).ok_or_else(ApiError::payment_not_found)?;
    let link = payment.upi_link().ok_or_else(ApiError::payment_not_found)?;
    if payment.status() != PaymentStatus::Pending {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "PAYMENT_NOT_PENDING",
            format!("payment {payment_id} is {}: there is nothing left to pay", payment.status()),
        ));
    }
    format.render(link)
}

/// A PENDING payment of the session that PhonePe did not take for now (rate limited, or never
/// sent).
fn not_taken_payment(bundle: &SessionBundle) -> Option<&Payment> {
    bundle.payments.iter().find(|p| {
        p.status() == PaymentStatus::Pending
            && bundle
                .obligation(p.id().as_str())
                .and_then(|o| o.last_code())
                .is_some_and(|c| NOT_TAKEN_YET.contains(&c))
    })
}

/// A create-payment retry found its payment already recorded. `Ok`: PhonePe never saw it, send
/// it now (same id), with PhonePe's timeout counted from now. Otherwise the answer for the
/// client (`Err`), after bringing the record up to date with what PhonePe says.
async fn resume_payment(state: &AppState, bundle: &SessionBundle, existing: &Payment) -> Result<Payment, ApiError> {
    let session_id = bundle.session.id();
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
    let report =
        state.gateways.of(existing.gateway()).status(&txn_id(existing.id().as_str())?).await.map_err(gateway_error)?;
    if report.state == TxnState::NotFound {
        tracing::info!(payment = %existing.id(), "payment never reached PhonePe; sending it now");
        // PhonePe's timeout counts from this send. Reloaded and retried on a lost race (a
        // reconciler may claim the obligation while we asked PhonePe).
        let target = existing.id().as_str();
        if with_obligation(state, session_id, target, |o, now| o.restart_clock(now)).await?.is_none() {
            // Written before obligations existed: track it from now.
            let mut o = Obligation::check_payment(existing, state.clock.now());
            o.restart_clock(state.clock.now());
            match state.store.commit(vec![Write::Insert(Record::Obligation(o))]).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(existing.clone());
    }
    let (after, _) = apply_payment_report(state, session_id, existing.id(), &report, ReportSource::Verify).await?;
    match after.payments.iter().find(|p| p.id() == existing.id()).map(|p| p.status()) {
        Some(PaymentStatus::Success) => Err(DomainError::SessionAlreadyPaid.into()),
        Some(PaymentStatus::Failed) => Err(failed(existing.id())),
        _ => Err(in_progress(existing.id())),
    }
}

/// Mark a payment PhonePe never accepted as FAILED. Its obligation ends too: PhonePe refused
/// it, so there is nothing to watch for.
async fn fail_payment(state: &AppState, session_id: &SessionId, payment_id: &PaymentId) -> Result<(), ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let Some(bundle) = state.store.load_session(session_id).await? else { return Ok(()) };
        let Some(mut payment) = bundle.payments.iter().find(|p| p.id() == payment_id).cloned() else {
            return Ok(());
        };
        let expected = payment.version();
        let now = state.clock.now();
        match payment.fail(now) {
            Ok(t) if t.is_applied() => {}
            _ => return Ok(()),
        }
        let mut writes = vec![Write::Update { record: Record::Payment(payment), expected_version: expected }];
        if let Some(mut o) = bundle.obligation(payment_id.as_str()).cloned() {
            let _ = o.done("PhonePe refused the payment", now);
            writes.extend(obligation_write(&bundle, payment_id.as_str(), o));
        }
        match state.store.commit(writes).await {
            Ok(()) => {
                telemetry::payment_failed();
                return Ok(());
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// Find a payment by its merchant transaction id (refund ids and malformed ids are "not found").
pub(crate) async fn find_payment(state: &AppState, raw: &str) -> Result<(SessionId, PaymentId), ApiError> {
    if PaymentId::parse(raw).is_err() {
        return Err(ApiError::payment_not_found());
    }
    match state.store.find_txn(raw).await? {
        Some(TxnRef::Payment { session_id, payment_id }) => Ok((session_id, payment_id)),
        _ => Err(ApiError::payment_not_found()),
    }
}

/// Whether verify may ask PhonePe about `payment_id` now: at most once per
/// [`VERIFY_MIN_INTERVAL_SECS`] per payment, whoever asks (the time is claimed with a
/// conditional write on the payment's obligation, so concurrent verifies ask once). Never for a
/// SUCCESS (final); for a FAILED payment only while it is watched for a late success.
async fn may_ask_phonepe(state: &AppState, bundle: &SessionBundle, payment: &Payment) -> Result<bool, ApiError> {
    if payment.status() == PaymentStatus::Success {
        return Ok(false);
    }
    let id = payment.id().as_str();
    let mut current = bundle.clone();
    for _ in 0..MAX_ATTEMPTS {
        let Some(o) = current.obligation(id) else {
            // Written before obligations: ask, as before, while it is PENDING.
            return Ok(payment.status() == PaymentStatus::Pending);
        };
        if !o.is_open() {
            return Ok(false);
        }
        let mut claimed = o.clone();
        if !claimed.note_status_asked(state.clock.now(), VERIFY_MIN_INTERVAL_SECS).is_applied() {
            return Ok(false);
        }
        let write = Write::Update { record: Record::Obligation(claimed), expected_version: o.version() };
        match state.store.commit(vec![write]).await {
            Ok(()) => return Ok(true),
            Err(StoreError::Conflict) => {
                current =
                    state.store.load_session(bundle.session.id()).await?.ok_or_else(ApiError::payment_not_found)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

pub async fn verify_payment(state: &AppState, caller: &Caller, body: VerifyBody) -> Result<VerifyView, ApiError> {
    let raw = required(body.merchant_txn_id, "merchant_txn_id")?;
    let (session_id, payment_id) = find_payment(state, &raw).await?;
    telemetry::note_session(&session_id);
    telemetry::note_txn(&payment_id);
    // Not the caller's is not found; the store being down stays a 503.
    let bundle = load_visible(state, caller, &session_id)
        .await
        .map_err(|e| if e.status == StatusCode::NOT_FOUND { ApiError::payment_not_found() } else { e })?;
    let recorded = bundle.payments.iter().find(|p| p.id() == &payment_id).ok_or_else(ApiError::payment_not_found)?;
    let bundle = if may_ask_phonepe(state, &bundle, recorded).await? {
        match state.gateways.of(recorded.gateway()).status(&txn_id(payment_id.as_str())?).await {
            Ok(report) => apply_payment_report(state, &session_id, &payment_id, &report, ReportSource::Verify).await?.0,
            Err(e) if recorded.status() != PaymentStatus::Pending => {
                // Final already: our record answers.
                tracing::warn!(payment = %payment_id, error = %e, "status API unavailable; answering from our record");
                bundle
            }
            Err(e) => return Err(gateway_error(e)),
        }
    } else {
        bundle
    };
    let payment = bundle.payments.iter().find(|p| p.id() == &payment_id).ok_or_else(ApiError::payment_not_found)?;
    Ok(VerifyView {
        merchant_txn_id: payment.id().as_str().to_owned(),
        verified: payment.status() == PaymentStatus::Success,
        status: payment.status().as_str(),
        amount: payment.amount().to_string(),
        session_status: bundle.session.status().as_str(),
        can_enter: bundle.session.can_enter(),
    })
}
