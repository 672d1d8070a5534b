//! Refunds a driver or operator asks for, and sending any refund (theirs or an automatic one) to
//! PhonePe. A refund is recorded PENDING with the obligation to see it through in one commit,
//! then sent: only PhonePe's definite refusal makes it FAILED; anything that may be cured by
//! waiting (rate limited, PhonePe or the salt key unreachable, an unknown outcome) leaves it
//! PENDING, answered 202, and reconciliation sends it again.

use parkpay_domain::{
    Obligation, Refund, RefundId, RefundRequest, RefundStatus, UserId, check_cancellation, check_refund_limit,
};
use parkpay_gateway::{GatewayError, RefundRequest as GatewayRefund, TxnState};
use parkpay_store::{Record, SessionBundle, StoreError, Write};

use super::payments::find_payment;
use super::{
    MAX_ATTEMPTS, RefundBody, ReportSource, apply_refund_report, apply_refund_report_from, error_code, gateway_error,
    merchant_user_id, txn_id, with_obligation,
};
use crate::http::{ApiError, required};
use crate::identity::Caller;
use crate::state::AppState;
use crate::telemetry;
use crate::views::RefundView;

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
    telemetry::note_session(&session_id);
    telemetry::note_txn(&payment_id);
    let refund_id = RefundId::from_random(id_bytes);

    let mut attempt = 0;
    // The refund, its payer, and the session as committed (what PhonePe's answer is applied to,
    // with no second read).
    let (refund, payer, committed) = loop {
        attempt += 1;
        let bundle = match state.store.load_session(&session_id).await? {
            Some(b) if caller.is_operator || b.session.user_id() == &caller.user_id => b,
            _ => return Err(ApiError::payment_not_found()),
        };
        let mut payment =
            bundle.payments.iter().find(|p| p.id() == &payment_id).cloned().ok_or_else(ApiError::payment_not_found)?;
        if let Some(existing) = bundle.refunds.iter().find(|r| r.id() == &refund_id) {
            // A retry of a request whose first run did not finish (or was refused: a 5xx
            // answer is not kept, so the retry comes here and gets the same answer).
            match existing.status() {
                RefundStatus::Pending => {}
                RefundStatus::Failed => {
                    return Err(ApiError::new(
                        http::StatusCode::BAD_GATEWAY,
                        "GATEWAY_REJECTED",
                        format!("PhonePe refused refund {refund_id}; it is FAILED and its amount is free again"),
                    ));
                }
                RefundStatus::Success => return Ok(RefundView::from(existing)),
            }
            let report = state
                .gateways
                .of(existing.gateway())
                .refund_status(&txn_id(refund_id.as_str())?)
                .await
                .map_err(gateway_error)?;
            if report.state != TxnState::NotFound {
                let (after, _) = apply_refund_report(
                    state,
                    &session_id,
                    &refund_id,
                    report.state,
                    &report.code,
                    ReportSource::Verify,
                )
                .await?;
                let current = after.refunds.iter().find(|r| r.id() == &refund_id).unwrap_or(existing);
                return Ok(RefundView::from(current));
            }
            tracing::info!(refund = %refund_id, "retried refund never reached PhonePe; sending it now");
            let payer = bundle.session.user_id().clone();
            break (existing.clone(), payer, bundle);
        }
        let request = RefundRequest {
            amount: asked,
            reason: body.reason.clone(),
            requested_by: caller.user_id.clone(),
            by_operator: caller.is_operator,
        };
        check_refund_limit(&payment, &bundle.refunds, &request, state.policy.max_refunds_per_payment)?;
        let now = state.clock.now();
        check_cancellation(&bundle.session, &payment, &request, state.policy.cancellation, now)?;
        let refund = Refund::request(refund_id.clone(), &payment, &bundle.refunds, request, now)?;
        let expected = payment.version();
        payment.note_refund_requested(now);
        let obligation = Obligation::see_refund_through(&refund, false, now);
        let writes = vec![
            Write::Insert(Record::Refund(refund.clone())),
            Write::Update { record: Record::Payment(payment.clone()), expected_version: expected },
            Write::Insert(Record::Obligation(obligation.clone())),
        ];
        match state.store.commit(writes).await {
            Ok(()) => {
                telemetry::refund_requested();
                let payer = bundle.session.user_id().clone();
                let mut after = bundle;
                if let Some(p) = after.payments.iter_mut().find(|p| p.id() == payment.id()) {
                    *p = payment;
                }
                after.refunds.push(refund.clone());
                after.obligations.push(obligation);
                break (refund, payer, after);
            }
            Err(StoreError::Conflict) if attempt < MAX_ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    };
    tracing::info!(refund = %refund.id(), payment = %payment_id, amount = %refund.amount(),
        by_operator = caller.is_operator, "refund requested");
    match send_refund_from(state, Some(committed), &payer, &refund).await? {
        Sent::Refused(e) => Err(gateway_error(e)),
        Sent::Recorded(view) | Sent::Later(view) => Ok(view),
    }
}

/// What sending a refund came to.
pub enum Sent {
    /// PhonePe answered; what it said is recorded (PENDING, or final).
    Recorded(RefundView),
    /// Not sent, or the outcome is unknown: the refund stays PENDING and its obligation sends
    /// it again (after checking PhonePe's status) later.
    Later(RefundView),
    /// PhonePe definitely refused it: recorded FAILED (an automatic refund also needs a person).
    Refused(GatewayError),
}

/// Send `refund` (recorded PENDING) of a payment by `payer` to PhonePe and record the answer.
pub async fn send_refund(state: &AppState, payer: &UserId, refund: &Refund) -> Result<Sent, ApiError> {
    send_refund_from(state, None, payer, refund).await
}

/// [`send_refund`], recording PhonePe's answer on `loaded` (the session as the caller last read
/// or wrote it) first instead of reading it again.
pub async fn send_refund_from(
    state: &AppState,
    loaded: Option<SessionBundle>,
    payer: &UserId,
    refund: &Refund,
) -> Result<Sent, ApiError> {
    let session_id = refund.session_id();
    let request = GatewayRefund {
        refund_txn_id: txn_id(refund.id().as_str())?,
        original_txn_id: txn_id(refund.payment_id().as_str())?,
        amount: refund.amount(),
        merchant_user_id: Some(merchant_user_id(payer)),
    };
    let answer = state.gateways.of(refund.gateway()).refund(&request).await;
    let target = refund.id().as_str();
    match answer {
        Ok(started) => {
            let (bundle, _) = apply_refund_report_from(
                state,
                loaded,
                session_id,
                refund.id(),
                started.state,
                &started.code,
                ReportSource::RefundAnswer,
            )
            .await?;
            let current = bundle.refunds.iter().find(|r| r.id() == refund.id()).unwrap_or(refund);
            Ok(Sent::Recorded(RefundView::from(current)))
        }
        Err(e) if e.outcome_unknown() || e.retryable() => {
            // Rate limited, PhonePe or the salt key unreachable, or no clear answer: kept PENDING
            // with its amount held; the obligation checks PhonePe's status and sends it again.
            tracing::warn!(refund = %refund.id(), error = %e, "refund not sent or outcome unknown; left PENDING");
            let code = error_code(&e);
            let sent = e.outcome_unknown();
            with_obligation(state, session_id, target, |o, now| {
                if sent {
                    o.note_sent(now);
                }
                o.note_answer(&code, now);
            })
            .await
            .ok();
            Ok(Sent::Later(RefundView::from(refund)))
        }
        Err(e) => {
            tracing::warn!(refund = %refund.id(), error = %e, "refund refused by PhonePe; marked FAILED");
            let code = error_code(&e);
            let failed = TxnState::Failed;
            apply_refund_report_from(state, loaded, session_id, refund.id(), failed, &code, ReportSource::RefundAnswer)
                .await?;
            Ok(Sent::Refused(e))
        }
    }
}
