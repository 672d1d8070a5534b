//! PhonePe's server-to-server callback: authenticated by its checksum, applied through the
//! same code as every other report; a callback that contradicts our record is checked with
//! PhonePe's status API first.

use http::StatusCode;
use parkpay_domain::{GatewayApi, PaymentId, PaymentStatus, SessionId};
use parkpay_gateway::{NoticeKind, StatusReport, TxnState};
use parkpay_store::{SessionBundle, TxnRef};

use super::{ReportSource, apply_payment_report_from, apply_refund_report_from, gateway_error, truncate, txn_id};
use crate::http::ApiError;
use crate::state::AppState;
use crate::telemetry;
use crate::views::CallbackAck;

/// PhonePe's server-to-server callback: a PG v1 callback (authenticated by its `X-VERIFY`
/// checksum) or a PG v2 webhook (by its `Authorization` header), told apart by that header.
///
/// A v1 callback's checksum covers its body, so it is applied as it says, unless it contradicts
/// our record ([`cross_check`]). A v2 webhook's header does not depend on its body (whoever saw
/// one webhook could send any body with it), so what it says is never applied: the order's or
/// refund's status is read from PhonePe and that is applied ([`confirm`]).
pub async fn callback(state: &AppState, headers: &http::HeaderMap, body: &[u8]) -> Result<CallbackAck, ApiError> {
    let api = state.gateways.notice_api(headers);
    let notice = state.gateways.of(api).verify_notice(headers, body).await.map_err(|e| {
        if let parkpay_gateway::CallbackError::KeysUnavailable(cause) = &e {
            tracing::error!(%cause, "callback keys unavailable");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "KEYS_UNAVAILABLE", "try again later")
        } else if e.is_unauthenticated() {
            tracing::warn!(security = true, error = %e, api = api.as_str(), "callback with a bad or missing checksum rejected");
            telemetry::security_event();
            telemetry::callback_rejected(match e {
                parkpay_gateway::CallbackError::MissingSignature => "MISSING_SIGNATURE",
                _ => "INVALID_SIGNATURE",
            });
            let what = match api {
                GatewayApi::V1 => "the callback's X-VERIFY checksum is missing or wrong",
                GatewayApi::V2 => "the webhook's Authorization is missing or wrong",
            };
            ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_SIGNATURE", what)
        } else {
            // The parser's text can quote the sender's bytes: cut before logging or answering.
            let brief = truncate(&e.to_string(), 200);
            tracing::warn!(error = %brief, "malformed callback");
            telemetry::callback_rejected("MALFORMED");
            ApiError::bad_request("MALFORMED_CALLBACK", brief)
        }
    })?;
    let report = notice.report;
    if let Some(m) = report.merchant_id.as_deref()
        && !state.merchant_id.is_empty()
        && m != state.merchant_id
    {
        tracing::warn!(security = true, merchant = %truncate(m, 40), txn = %report.merchant_txn_id,
                "callback for another merchant; not applied");
        telemetry::security_event();
        telemetry::callback_rejected("OTHER_MERCHANT");
        return Ok(CallbackAck { success: true, applied: false });
    }
    telemetry::note_txn(&report.merchant_txn_id);
    let confirmed = api == GatewayApi::V2;
    let applied = match state.store.find_txn(report.merchant_txn_id.as_str()).await? {
        Some(TxnRef::Payment { session_id, payment_id }) => {
            telemetry::note_session(&session_id);
            // The session read here is the one the report is applied to, unless PhonePe was
            // asked meanwhile (no second read otherwise).
            let checked = if confirmed {
                confirm(state, &session_id, &payment_id, NoticeKind::Payment).await?
            } else {
                cross_check(state, &session_id, &payment_id, report).await?
            };
            match checked {
                Some((report, loaded)) => {
                    apply_payment_report_from(state, loaded, &session_id, &payment_id, &report, ReportSource::Callback)
                        .await?
                        .1
                }
                None => unknown_transaction(&payment_id),
            }
        }
        Some(TxnRef::Refund { session_id, refund_id }) => {
            telemetry::note_session(&session_id);
            let checked = if confirmed {
                confirm(state, &session_id, &refund_id, NoticeKind::Refund).await?
            } else {
                let loaded = state.store.load_session(&session_id).await?;
                let api =
                    loaded.as_ref().and_then(|b| b.refunds.iter().find(|r| r.id() == &refund_id)).map(|r| r.gateway());
                match api {
                    // A v1 callback about a v1 refund: its checksum covers what it says.
                    Some(GatewayApi::V1) => loaded.map(|b| (report, Some(b))),
                    // About a refund v1 did not make: not PhonePe's way; ask the refund's API.
                    Some(_) => confirm(state, &session_id, &refund_id, NoticeKind::Refund).await?,
                    None => None,
                }
            };
            match checked {
                Some((report, loaded)) => {
                    apply_refund_report_from(
                        state,
                        loaded,
                        &session_id,
                        &refund_id,
                        report.state,
                        &report.code,
                        ReportSource::Callback,
                    )
                    .await?
                    .1
                }
                None => unknown_transaction(&refund_id),
            }
        }
        None => {
            // Authentic but not ours to know (another environment sharing the merchant id, or a
            // record lost): acknowledge so PhonePe stops retrying, and leave a trace.
            tracing::warn!(txn = %report.merchant_txn_id, code = %report.code, "callback for an unknown transaction");
            telemetry::callback_rejected("UNKNOWN_TRANSACTION");
            false
        }
    };
    Ok(CallbackAck { success: true, applied })
}

/// A PG v2 webhook about our payment or refund `id` (`kind` says which): what
/// PhonePe's status API says about it, read from the API that made the record, is the report
/// to apply (to the session as it is then). If PhonePe cannot be asked, the webhook is answered
/// 503 so that PhonePe sends it again later. `None`: no such record is stored.
async fn confirm(
    state: &AppState,
    session_id: &SessionId,
    id: &impl std::fmt::Display,
    kind: NoticeKind,
) -> Result<Option<(StatusReport, Option<SessionBundle>)>, ApiError> {
    let Some(bundle) = state.store.load_session(session_id).await? else { return Ok(None) };
    let key = id.to_string();
    let api = match kind {
        NoticeKind::Refund => bundle.refunds.iter().find(|r| r.id().as_str() == key).map(|r| r.gateway()),
        _ => bundle.payments.iter().find(|p| p.id().as_str() == key).map(|p| p.gateway()),
    };
    let Some(api) = api else { return Ok(None) };
    let gateway = state.gateways.of(api);
    let txn = txn_id(&key)?;
    let checked = match kind {
        NoticeKind::Refund => gateway.refund_status(&txn).await,
        _ => gateway.status(&txn).await,
    };
    let checked = checked.map_err(|e| {
        tracing::warn!(txn = %key, error = %e, "status read for a webhook failed; not acknowledged so that PhonePe sends it again");
        gateway_error(e)
    })?;
    tracing::info!(txn = %key, code = %checked.code, "webhook confirmed by PhonePe's status API");
    Ok(Some((checked, None)))
}

/// A transaction pointer whose record is missing (on DynamoDB a pointer is put before its
/// session's item, and stays if that write fails): as unknown as no pointer at all.
fn unknown_transaction(id: &impl std::fmt::Display) -> bool {
    tracing::warn!(txn = %id, "callback for a transaction with no record; acknowledged, not applied");
    telemetry::callback_rejected("UNKNOWN_TRANSACTION");
    false
}

/// A callback that contradicts our record — success for a payment we hold FAILED, failure for
/// one we hold SUCCESS, or another amount than ours — is checked against PhonePe's status API
/// (the source of truth) and what the status API says is applied instead. If PhonePe cannot be
/// asked, the callback is answered 503 so that PhonePe sends it again later. `None`: no such
/// payment is stored.
async fn cross_check(
    state: &AppState,
    session_id: &SessionId,
    payment_id: &PaymentId,
    report: StatusReport,
) -> Result<Option<(StatusReport, Option<SessionBundle>)>, ApiError> {
    let Some(bundle) = state.store.load_session(session_id).await? else { return Ok(None) };
    let Some(payment) = bundle.payments.iter().find(|p| p.id() == payment_id) else { return Ok(None) };
    // A v1 callback about a payment v1 did not make is not PhonePe's way: ask the payment's API.
    let other_api = payment.gateway() != GatewayApi::V1;
    let disagrees = other_api
        || match (report.state, payment.status()) {
            (TxnState::Success, PaymentStatus::Failed) | (TxnState::Failed, PaymentStatus::Success) => true,
            (TxnState::Success, _) => report.amount != Some(payment.amount()),
            _ => false,
        };
    if !disagrees {
        return Ok(Some((report, Some(bundle))));
    }
    tracing::warn!(security = true, payment = %payment_id, code = %report.code, recorded = payment.status().as_str(),
        "callback disagrees with our record; asking PhonePe's status API");
    if report.state == TxnState::Success && report.amount != Some(payment.amount()) {
        // A signed callback with another amount than ours (a late success after a decline is
        // not one: PhonePe does send those).
        telemetry::security_event();
    }
    let checked =
        state.gateways.of(payment.gateway()).status(&txn_id(payment_id.as_str())?).await.map_err(gateway_error)?;
    // The status API answering its own failure (HTTP 5xx with PhonePe's INTERNAL_SERVER_ERROR
    // envelope) says nothing about the transaction. The client reads it as a not-final PENDING,
    // which is right for polling, but here it means PhonePe could not be asked: answer 503 so
    // that PhonePe sends the callback again. A 200 would end PhonePe's retries, and a late
    // success would wait for the slow re-check (30 minutes and more) to be found and refunded.
    if checked.state == TxnState::Pending && checked.code == STATUS_API_FAILED {
        tracing::warn!(payment = %payment_id, "status API failed; callback not acknowledged so that PhonePe sends it again");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "GATEWAY_UNAVAILABLE",
            "PhonePe's status API is unavailable; send the callback again later",
        ));
    }
    // PhonePe was asked meanwhile: the report is applied to the session as it is then.
    Ok(Some((checked, None)))
}

/// The code of PhonePe's status API failing (HTTP 5xx).
const STATUS_API_FAILED: &str = parkpay_gateway::phonepe_v1::wire::codes::INTERNAL_SERVER_ERROR;
