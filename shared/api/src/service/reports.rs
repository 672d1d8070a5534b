//! Applying what PhonePe reports (callback, verify, reconciliation, the answers to pay and
//! refund), once, with the obligations that follow, in the same commit as the change:
//! - a payment that succeeds for its session ends its obligation;
//! - an extension payment that succeeds moves its session's booked end (`ParkingSession::extend`);
//! - one that succeeds for a session that cannot take it (cancelled, timed out, paid by another
//!   payment; for an extension, refunded in full meanwhile) ends it too, and the same commit records an automatic refund of it with the
//!   obligation to see that through (sent right after; if that fails, reconciliation sends it);
//! - one that fails (declined, expired) is watched for a late success for 48 hours;
//! - a refund's final outcome ends its obligation, except PhonePe refusing an automatic refund,
//!   or a success that makes refunds exceed what was paid: those need a person.
//!
//! The obligation's change (ended, watched, needing a person) is in that same commit: on
//! DynamoDB one write of the session's item.

use parkpay_domain::{
    DomainError, Obligation, Paise, PaymentId, PaymentPurpose, PaymentStatus, Refund, RefundId, RefundRequest,
    RefundStatus, SYSTEM_USER, SessionId, SuccessReport, Timestamp, UserId, record_late_refund_success,
};
use parkpay_gateway::{StatusReport, TxnState};
use parkpay_store::{Record, SessionBundle, StoreError, Write};

use super::{MAX_ATTEMPTS, ReportSource, obligation_write, refunds::send_refund};
use crate::http::ApiError;
use crate::state::AppState;
use crate::telemetry;

/// The id of the automatic refund of `payment_id`: derived from it, so there is one however
/// often a stray success is reported.
pub(crate) fn automatic_refund_id(payment_id: &PaymentId) -> RefundId {
    RefundId::from_random(crate::idempotency::derived_id(&format!("auto-refund#{payment_id}"), ""))
}

const AUTO_REFUND_REASON: &str = "automatic: the payment succeeded after its session was cancelled, timed out or paid";

/// The automatic refund of stray payment `payment_id` (all that is left of it), with its
/// obligation and the payment's version bump, as writes; `None` when nothing is left to refund
/// or it was started before.
pub(crate) fn automatic_refund_writes(
    bundle: &SessionBundle,
    payment: &mut parkpay_domain::Payment,
    now: Timestamp,
) -> Result<Option<(Refund, Vec<Write>)>, ApiError> {
    let id = automatic_refund_id(payment.id());
    if bundle.refunds.iter().any(|r| r.id() == &id) {
        return Ok(None);
    }
    let system = UserId::parse(SYSTEM_USER).map_err(ApiError::internal)?;
    let request = RefundRequest {
        amount: None,
        reason: Some(AUTO_REFUND_REASON.into()),
        requested_by: system,
        by_operator: true,
    };
    let refund = match Refund::request(id, payment, &bundle.refunds, request, now) {
        Ok(r) => r,
        Err(DomainError::NothingToRefund) => return Ok(None),
        Err(e) => return Err(ApiError::internal(format!("automatic refund of {}: {e}", payment.id()))),
    };
    payment.note_refund_requested(now);
    let writes = vec![
        Write::Insert(Record::Refund(refund.clone())),
        Write::Insert(Record::Obligation(Obligation::see_refund_through(&refund, true, now))),
    ];
    Ok(Some((refund, writes)))
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
    apply_payment_report_from(state, None, session_id, payment_id, report, source).await
}

/// [`apply_payment_report`], deciding first on `loaded` (the session as the caller has just
/// read it) instead of reading it again; a commit that loses a race reloads, as always.
pub async fn apply_payment_report_from(
    state: &AppState,
    mut loaded: Option<SessionBundle>,
    session_id: &SessionId,
    payment_id: &PaymentId,
    report: &StatusReport,
    source: ReportSource,
) -> Result<(SessionBundle, bool), ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let bundle = match loaded.take() {
            Some(b) => b,
            None => state.store.load_session(session_id).await?.ok_or_else(|| {
                ApiError::internal(format!("session {session_id} of payment {payment_id} is missing"))
            })?,
        };
        let Some(payment) = bundle.payments.iter().find(|p| p.id() == payment_id).cloned() else {
            return Err(ApiError::internal(format!("payment {payment_id} is missing from session {session_id}")));
        };
        let now = state.clock.now();
        let mut payment = payment;
        let mut session = bundle.session.clone();
        let (p_ver, s_ver) = (payment.version(), session.version());
        let target = payment_id.as_str();
        let mut obligation =
            bundle.obligation(target).cloned().unwrap_or_else(|| Obligation::check_payment(&payment, now));
        let mut extra = Vec::new();
        let mut automatic = None;

        match report.state {
            TxnState::Success => {
                let Some(amount) = report.amount else {
                    tracing::warn!(security = true, payment = %payment_id, source = source.as_str(),
                        "success reported without an amount; not applied");
                    telemetry::security_event();
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
                        telemetry::security_event();
                        return Ok((bundle, false));
                    }
                    Err(e) => {
                        tracing::warn!(payment = %payment_id, source = source.as_str(), error = %e, "success not applied");
                        return Ok((bundle, false));
                    }
                }
                // The booking pays the session; an extension moves its booked end.
                let taken = match payment.purpose() {
                    PaymentPurpose::Booking => session.mark_paid(payment_id, amount, now),
                    PaymentPurpose::Extension { hours } => session.extend(payment_id, hours, amount, now),
                };
                if let Err(e) = taken {
                    // Money moved but this session cannot take it (cancelled or timed out, or paid
                    // by another payment). The payment is recorded SUCCESS so the money is never
                    // lost track of, and refunded automatically: the refund and the obligation
                    // to see it through are in this same commit.
                    tracing::warn!(payment = %payment_id, session = %session_id, error = %e,
                        "payment succeeded for a session that cannot take it; refunding it");
                    if let Some((refund, writes)) = automatic_refund_writes(&bundle, &mut payment, now)? {
                        extra.extend(writes);
                        automatic = Some(refund);
                    }
                    let _ = obligation.done("succeeded for a session that cannot take it; refunded automatically", now);
                } else {
                    let _ = obligation.done("paid", now);
                }
            }
            TxnState::Failed => match payment.fail(now) {
                Ok(t) if t.is_applied() => {
                    let _ = obligation.payment_failed(now);
                }
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
        writes.extend(obligation_write(&bundle, target, obligation.clone()));
        writes.extend(extra);
        match state.store.commit(writes).await {
            Ok(()) => {
                tracing::info!(payment = %payment_id, status = payment.status().as_str(),
                    session_status = session.status().as_str(), source = source.as_str(), "payment outcome applied");
                match payment.status() {
                    PaymentStatus::Success => telemetry::payment_succeeded(payment.amount()),
                    PaymentStatus::Failed => telemetry::payment_failed(),
                    PaymentStatus::Pending => {}
                }
                if automatic.is_some() {
                    telemetry::refund_requested();
                }
                let Some(refund) = automatic else {
                    // What was just committed, without reading it back.
                    let mut after = bundle;
                    after.session = session;
                    if let Some(p) = after.payments.iter_mut().find(|p| p.id() == payment_id) {
                        *p = payment;
                    }
                    set_obligation(&mut after, obligation.clone());
                    return Ok((after, true));
                };
                // Best effort now; the obligation recorded with it sees it through.
                match send_refund(state, session.user_id(), &refund).await {
                    Ok(_) => tracing::warn!(payment = %payment_id, refund = %refund.id(),
                        "automatic refund of a payment its session cannot take"),
                    Err(e) => tracing::warn!(payment = %payment_id, refund = %refund.id(), error = %e.message,
                        "automatic refund not sent yet; reconciliation will send it"),
                }
                // The refund has moved on since the commit: read the session back.
                let after = state
                    .store
                    .load_session(session_id)
                    .await?
                    .ok_or_else(|| ApiError::internal(format!("session {session_id} vanished after a commit")))?;
                return Ok((after, true));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// Apply what PhonePe says about a refund (`code`: PhonePe's code, or our error's short name),
/// once.
pub async fn apply_refund_report(
    state: &AppState,
    session_id: &SessionId,
    refund_id: &RefundId,
    report_state: TxnState,
    code: &str,
    source: ReportSource,
) -> Result<(SessionBundle, bool), ApiError> {
    apply_refund_report_from(state, None, session_id, refund_id, report_state, code, source).await
}

/// [`apply_refund_report`], deciding first on `loaded` (the session as the caller has just read
/// or written it) instead of reading it again; a commit that loses a race reloads, as always.
pub async fn apply_refund_report_from(
    state: &AppState,
    mut loaded: Option<SessionBundle>,
    session_id: &SessionId,
    refund_id: &RefundId,
    report_state: TxnState,
    code: &str,
    source: ReportSource,
) -> Result<(SessionBundle, bool), ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let bundle =
            match loaded.take() {
                Some(b) => b,
                None => state.store.load_session(session_id).await?.ok_or_else(|| {
                    ApiError::internal(format!("session {session_id} of refund {refund_id} is missing"))
                })?,
            };
        let Some(mut refund) = bundle.refunds.iter().find(|r| r.id() == refund_id).cloned() else {
            return Err(ApiError::internal(format!("refund {refund_id} is missing from session {session_id}")));
        };
        let Some(mut payment) = bundle.payments.iter().find(|p| p.id() == refund.payment_id()).cloned() else {
            return Err(ApiError::internal(format!("payment of refund {refund_id} is missing")));
        };
        let mut session = bundle.session.clone();
        let (r_ver, p_ver, s_ver) = (refund.version(), payment.version(), session.version());
        let now = state.clock.now();
        let automatic = refund.requested_by().as_str() == SYSTEM_USER;
        let target = refund_id.as_str();
        let mut obligation = bundle
            .obligation(target)
            .cloned()
            .unwrap_or_else(|| Obligation::see_refund_through(&refund, automatic, now));
        let result = match report_state {
            TxnState::Success => {
                record_late_refund_success(&mut refund, &mut payment, &mut session, now).map(|(t, excess)| {
                    if excess > Paise::ZERO {
                        tracing::error!(alert = "EXCESS_REFUND", refund = %refund_id, payment = %payment.id(),
                            session = %session_id, excess = %excess,
                            "PhonePe reports a refund we held FAILED as done: refunds exceed what was paid");
                        let _ = obligation.excess_refund(excess, now);
                    } else {
                        let _ = obligation.done("refunded", now);
                    }
                    t
                })
            }
            TxnState::Failed => refund.fail(now).inspect(|t| {
                if t.is_applied() {
                    if automatic {
                        tracing::error!(alert = "AUTOMATIC_REFUND_REFUSED", refund = %refund_id, code,
                            payment = %payment.id(), session = %session_id, amount = %refund.amount(),
                            "PhonePe refused an automatic refund: a person must return this money");
                        let _ = obligation.needs_person(&format!("PhonePe refused the automatic refund ({code})"), now);
                    } else {
                        let _ = obligation.done(&format!("PhonePe refused the refund ({code})"), now);
                    }
                }
            }),
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
        writes.extend(obligation_write(&bundle, target, obligation.clone()));
        match state.store.commit(writes).await {
            Ok(()) => {
                tracing::info!(refund = %refund_id, status = refund.status().as_str(), amount = %refund.amount(),
                    session_status = session.status().as_str(), source = source.as_str(), "refund outcome applied");
                match refund.status() {
                    RefundStatus::Success => telemetry::refund_settled(true, refund.amount()),
                    RefundStatus::Failed => telemetry::refund_settled(false, refund.amount()),
                    RefundStatus::Pending => {}
                }
                let mut after = bundle;
                after.session = session;
                if let Some(p) = after.payments.iter_mut().find(|p| p.id() == payment.id()) {
                    *p = payment;
                }
                if let Some(r) = after.refunds.iter_mut().find(|r| r.id() == refund_id) {
                    *r = refund;
                }
                set_obligation(&mut after, obligation.clone());
                return Ok((after, true));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// `obligation` in `bundle` in place of the one about the same target.
fn set_obligation(bundle: &mut SessionBundle, obligation: Obligation) {
    match bundle.obligations.iter_mut().find(|o| o.target_id() == obligation.target_id()) {
        Some(o) => *o = obligation,
        None => bundle.obligations.push(obligation),
    }
}

/// A payment still PENDING at PhonePe's timeout: FAILED, and its session, if still unpaid and
/// waiting on no other payment, CANCELLED (the booking is released); its obligation turns into
/// the 48-hour watch for a late success. One commit.
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
        let target = payment_id.as_str();
        let mut obligation =
            bundle.obligation(target).cloned().unwrap_or_else(|| Obligation::check_payment(&payment, now));
        let _ = obligation.payment_failed(now);
        let mut session = bundle.session.clone();
        let others_live = bundle.payments.iter().any(|p| p.id() != payment_id && p.status() == PaymentStatus::Pending);
        let mut writes = vec![Write::Update { record: Record::Payment(payment), expected_version: p_ver }];
        if !others_live && session.cancel(now).is_ok_and(|t| t.is_applied()) {
            writes.push(Write::Update { record: Record::Session(session), expected_version: s_ver });
        }
        writes.extend(obligation_write(&bundle, target, obligation));
        match state.store.commit(writes).await {
            Ok(()) => {
                tracing::info!(payment = %payment_id, session = %session_id, "payment expired after the timeout");
                telemetry::payment_expired();
                return Ok(());
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// Change the obligation about `target_id` with `change` and store it (reloading on a lost
/// race). Nothing happens if the session has no such obligation or `change` leaves it as it
/// was. The obligation afterwards, if any.
pub async fn with_obligation(
    state: &AppState,
    session_id: &SessionId,
    target_id: &str,
    change: impl Fn(&mut Obligation, Timestamp),
) -> Result<Option<Obligation>, ApiError> {
    with_obligation_from(state, None, session_id, target_id, change).await
}

/// [`with_obligation`], deciding first on `loaded` (the session as the caller last read or wrote
/// it) instead of reading it again; a write that loses a race reloads, as always.
pub async fn with_obligation_from(
    state: &AppState,
    mut loaded: Option<SessionBundle>,
    session_id: &SessionId,
    target_id: &str,
    change: impl Fn(&mut Obligation, Timestamp),
) -> Result<Option<Obligation>, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let bundle = match loaded.take() {
            Some(b) => b,
            None => match state.store.load_session(session_id).await? {
                Some(b) => b,
                None => return Ok(None),
            },
        };
        let Some(old) = bundle.obligation(target_id) else { return Ok(None) };
        let mut changed = old.clone();
        change(&mut changed, state.clock.now());
        let Some(write) = obligation_write(&bundle, target_id, changed.clone()) else { return Ok(Some(changed)) };
        match state.store.commit(vec![write]).await {
            Ok(()) => return Ok(Some(changed)),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// An attempt's answer left the obligation about `target_id` open: note PhonePe's `code`, and
/// end the watch of a FAILED payment whose 48 hours are over.
pub async fn finish_check(
    state: &AppState,
    session_id: &SessionId,
    target_id: &str,
    code: &str,
) -> Result<Option<Obligation>, ApiError> {
    finish_check_from(state, None, session_id, target_id, code).await
}

/// [`finish_check`] on `loaded` first (see [`with_obligation_from`]).
pub async fn finish_check_from(
    state: &AppState,
    loaded: Option<SessionBundle>,
    session_id: &SessionId,
    target_id: &str,
    code: &str,
) -> Result<Option<Obligation>, ApiError> {
    with_obligation_from(state, loaded, session_id, target_id, |o, now| {
        if o.kind() == parkpay_domain::ObligationKind::RecheckFailedPayment && o.past_recheck_window(now) {
            let _ = o.done("no late success within 48 hours", now);
        } else if o.last_code() != Some(code) || o.errors() > 0 {
            o.note_answer(code, now);
        }
    })
    .await
}
