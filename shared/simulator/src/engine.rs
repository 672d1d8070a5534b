//! The simulator's state and what happens to a transaction over time: outcomes, late success,
//! refund settlement, and notification delivery (v1 signed callbacks, v2 webhooks) with retries
//! and faults.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use parkpay_checksum::{SaltIndex, SaltKeys};
use parkpay_gateway::phonepe_v1::wire::{self, codes};
use parkpay_gateway::phonepe_v1::{X_VERIFY, sign_callback};
use tokio::sync::oneshot;

use crate::config::SimulatorConfig;
use crate::faults::{CallbackFaults, FaultTable, Faults, Operation};
use crate::model::{
    CallbackDelivery, CompleteError, DeliveryResult, Outcome, SettleError, SimState, Transaction, TxnKind,
};
use crate::util::{new_utr, now_ms};
use crate::v2::{TokenStore, V2Info};

/// The callback log keeps this many entries (oldest dropped first).
const MAX_LOG: usize = 10_000;
/// Backoff between callback retries never grows past this.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub(crate) struct Record {
    pub view: Transaction,
    /// When the payment completed (for the reversal window).
    pub completed_at: Option<Instant>,
    /// What a PG v2 order or refund adds; `None` for a v1 transaction. v1 and v2 ids share one
    /// namespace, and each API sees only its own records.
    pub v2: Option<V2Info>,
}

impl Record {
    pub fn v1(view: Transaction) -> Self {
        Self { view, completed_at: None, v2: None }
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub txns: HashMap<String, Record>,
    /// Pay page token → merchantTransactionId.
    pub tokens: HashMap<String, String>,
    pub faults: FaultTable,
    pub callbacks: VecDeque<CallbackDelivery>,
    /// API requests received, by operation and merchant transaction id (as the request named
    /// it), whatever their answer: tests count how often parkpay asks.
    pub calls: HashMap<(Operation, String), u64>,
    /// The salt index of the last request, by operation and merchant transaction id, whose
    /// checksum matched: which of the merchant's keys parkpay signs with.
    pub signed_with: HashMap<(Operation, String), SaltIndex>,
    /// PG v2 OAuth: issued tokens, token request counts and token faults.
    pub oauth: TokenStore,
}

impl State {
    /// Recompute a payment's `refunded_amount`: its refunds that are not FAILED.
    pub fn refresh_refunded(&mut self, payment: &str) {
        let Some(p) = self.txns.get(payment) else { return };
        let total = p
            .view
            .refund_ids
            .iter()
            .filter_map(|r| self.txns.get(r))
            .filter(|r| r.view.state != SimState::Failed)
            .fold(0u64, |acc, r| acc.saturating_add(r.view.amount));
        if let Some(p) = self.txns.get_mut(payment) {
            p.view.refunded_amount = total;
            p.view.updated_at_ms = now_ms();
        }
    }
}

pub(crate) struct Inner {
    pub merchants: HashMap<String, SaltKeys>,
    /// Without a trailing slash.
    pub public_base: Option<String>,
    pub cfg: SimulatorConfig,
    pub http: reqwest::Client,
    state: Mutex<State>,
    /// Merchants whose callbacks are signed with another of their indices than the configured
    /// active one (PhonePe's side of a key rotation). Apart from `state`, whose lock is held
    /// while a callback is prepared: locked after it, never before.
    pub callback_index: Mutex<HashMap<String, SaltIndex>>,
    /// Where PG v2 webhooks go (`None`: none are sent). Like `callback_index`: locked after
    /// `state`, never before.
    pub webhook_url: Mutex<Option<String>>,
}

/// A notification ready to send, prepared when the state changed: a v1 callback (signed
/// `{"response": base64}` + `X-VERIFY`) or a v2 webhook (`{event, payload}` + `Authorization`).
#[derive(Clone)]
pub(crate) struct Notification {
    pub txn: String,
    pub url: String,
    /// v1: the status code; v2: the event name (`checkout.order.completed`, …).
    pub code: String,
    pub state: String,
    pub body: Vec<u8>,
    /// The authentication header: name and value.
    pub header: (&'static str, String),
    /// v1: the salt index after `###`; v2: 0.
    pub salt_index: u32,
}

impl Inner {
    pub fn new(cfg: SimulatorConfig, http: reqwest::Client) -> Self {
        let merchants = cfg.merchants.iter().cloned().collect();
        let public_base = cfg.public_base_url.as_ref().map(|u| u.as_str().trim_end_matches('/').to_owned());
        let webhook_url = cfg.v2.webhook_url.as_ref().map(|u| u.to_string());
        Self {
            merchants,
            public_base,
            cfg,
            http,
            state: Mutex::new(State::default()),
            callback_index: Mutex::new(HashMap::new()),
            webhook_url: Mutex::new(webhook_url),
        }
    }

    /// The state, even after a panic elsewhere poisoned the lock (the data stays usable).
    /// Never held across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn faults_for(&self, txn: Option<&str>) -> Faults {
        self.lock().faults.for_txn(txn).clone()
    }

    pub fn keys(&self, merchant_id: &str) -> Option<&SaltKeys> {
        self.merchants.get(merchant_id)
    }

    fn log(&self, entry: CallbackDelivery) {
        let mut st = self.lock();
        if st.callbacks.len() >= MAX_LOG {
            st.callbacks.pop_front();
        }
        st.callbacks.push_back(entry);
    }

    /// The keys that sign `merchant_id`'s callbacks: its configured keys, with the index chosen
    /// by [`crate::Simulator::sign_callbacks_with`] if any.
    pub fn callback_keys(&self, merchant_id: &str) -> Option<SaltKeys> {
        let keys = self.keys(merchant_id)?;
        let chosen =
            self.callback_index.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(merchant_id).copied();
        match chosen {
            Some(index) => keys.with_active(index).ok(),
            None => Some(keys.clone()),
        }
    }

    /// The notification a record's current state calls for: a signed v1 callback to its
    /// `callbackUrl`, or a v2 webhook to the configured webhook URL (none without one).
    pub fn notification(&self, rec: &Record) -> Option<Notification> {
        if rec.v2.is_some() {
            let url = self.webhook_url.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()?;
            return crate::v2::webhook(&self.cfg.v2, rec, url);
        }
        let keys = self.callback_keys(&rec.view.merchant_id)?;
        let envelope = status_envelope(&rec.view);
        let (body, x_verify) = sign_callback(&keys, &envelope);
        Some(Notification {
            txn: rec.view.merchant_transaction_id.clone(),
            url: rec.view.callback_url.clone(),
            code: envelope.code.clone(),
            state: rec.view.state.as_str().to_owned(),
            body,
            header: (X_VERIFY, x_verify.to_string()),
            salt_index: keys.active_index().get(),
        })
    }

    /// Apply a payer's outcome to a PENDING payment and send its callback(s). Waits (bounded by
    /// `callback_first_attempt_wait`) for the first delivery attempt unless the callback is
    /// delayed, dropped or withheld. Returns the payment as it stands afterwards.
    pub async fn complete(self: &Arc<Self>, txn: &str, outcome: Outcome) -> Result<Transaction, CompleteError> {
        let (faults, notification, snapshot) = {
            let mut st = self.lock();
            let faults = st.faults.for_txn(Some(txn)).clone();
            let rec = st.txns.get_mut(txn).ok_or_else(|| CompleteError::NotFound(txn.to_owned()))?;
            if rec.view.kind != TxnKind::Payment {
                return Err(CompleteError::NotAPayment(txn.to_owned()));
            }
            if rec.view.outcome.is_some() || rec.view.state != SimState::Pending {
                return Err(CompleteError::AlreadyDecided {
                    txn: txn.to_owned(),
                    state: rec.view.state,
                    code: rec.view.code.clone(),
                });
            }
            rec.view.outcome = Some(outcome);
            rec.view.updated_at_ms = now_ms();
            if faults.stuck_pending {
                tracing::info!(txn, ?outcome, "outcome accepted, payment stuck in PENDING (fault)");
                return Ok(rec.view.clone());
            }
            apply(rec, outcome.state(), outcome.code());
            tracing::info!(txn, code = outcome.code(), "payment decided");
            let n = self.notification(rec);
            (faults, n, rec.view.clone())
        };
        let Some(notification) = notification else { return Ok(snapshot) };

        let late = if outcome == Outcome::Success { None } else { faults.late_success_ms };
        let cb = faults.callback.clone();
        let mut first = None;
        match late {
            Some(ms) if cb.out_of_order => {
                // The FAILED callback is held back and sent after the SUCCESS one.
                tokio::spawn(late_success(self.clone(), txn.to_owned(), ms, cb, Some(notification)));
            }
            Some(ms) => {
                let (tx, rx) = oneshot::channel();
                first = Some(rx);
                tokio::spawn(notify(self.clone(), notification, cb.clone(), Some(tx)));
                tokio::spawn(late_success(self.clone(), txn.to_owned(), ms, cb, None));
            }
            None => {
                let (tx, rx) = oneshot::channel();
                first = Some(rx);
                tokio::spawn(notify(self.clone(), notification, cb, Some(tx)));
            }
        }
        if let Some(rx) = first {
            // A dropped sender (dropped or delayed callback) ends the wait at once.
            let _ = tokio::time::timeout(self.cfg.callback_first_attempt_wait, rx).await;
        }
        Ok(self.lock().txns.get(txn).map(|r| r.view.clone()).unwrap_or(snapshot))
    }

    /// Let a new refund settle after the configured delay (faults are read at settle time).
    pub fn schedule_refund(self: &Arc<Self>, refund_id: String) {
        let inner = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(inner.cfg.refund_settle_delay).await;
            if let Err(e) = inner.settle_refund(&refund_id, None) {
                tracing::debug!(refund = %refund_id, error = %e, "refund not settled");
            }
        });
    }

    /// Settle a refund that is still PENDING and send its notification. `outcome` `None`: as its
    /// faults say (`stuck_pending`: not at all; `refund_fails`: FAILED; otherwise COMPLETED);
    /// `Some`: COMPLETED for [`Outcome::Success`], FAILED otherwise, whatever the faults.
    pub fn settle_refund(
        self: &Arc<Self>,
        refund_id: &str,
        outcome: Option<Outcome>,
    ) -> Result<Transaction, SettleError> {
        let faults = self.faults_for(Some(refund_id));
        let (notification, view) = {
            let mut st = self.lock();
            let rec = st.txns.get_mut(refund_id).ok_or_else(|| SettleError::NotFound(refund_id.to_owned()))?;
            if rec.view.kind != TxnKind::Refund {
                return Err(SettleError::NotARefund(refund_id.to_owned()));
            }
            if rec.view.state != SimState::Pending {
                return Err(SettleError::AlreadySettled { refund: refund_id.to_owned(), state: rec.view.state });
            }
            let fails = match outcome {
                None if faults.stuck_pending => return Ok(rec.view.clone()),
                None => faults.refund_fails,
                Some(o) => o != Outcome::Success,
            };
            if fails {
                apply(rec, SimState::Failed, codes::PAYMENT_ERROR);
            } else {
                apply(rec, SimState::Completed, codes::PAYMENT_SUCCESS);
            }
            tracing::info!(refund = %refund_id, code = %rec.view.code, "refund settled");
            let n = self.notification(rec);
            let view = rec.view.clone();
            if let Some(parent) = view.original_transaction_id.clone() {
                st.refresh_refunded(&parent);
            }
            (n, view)
        };
        if let Some(n) = notification {
            tokio::spawn(notify(self.clone(), n, faults.callback, None));
        }
        Ok(view)
    }
}

/// Set a final state and code (and a UTR and completion time on success).
fn apply(rec: &mut Record, state: SimState, code: &str) {
    rec.view.state = state;
    rec.view.code = code.to_owned();
    rec.view.updated_at_ms = now_ms();
    if state == SimState::Completed {
        rec.view.utr = Some(new_utr());
        rec.completed_at = Some(Instant::now());
    }
}

async fn late_success(inner: Arc<Inner>, txn: String, after_ms: u64, cb: CallbackFaults, stale: Option<Notification>) {
    tokio::time::sleep(Duration::from_millis(after_ms)).await;
    let notification = {
        let mut st = inner.lock();
        let Some(rec) = st.txns.get_mut(&txn) else { return };
        if rec.view.state != SimState::Failed {
            return;
        }
        apply(rec, SimState::Completed, codes::PAYMENT_SUCCESS);
        tracing::info!(%txn, "late success after a failed outcome (fault)");
        inner.notification(rec)
    };
    if let Some(n) = notification {
        notify(inner.clone(), n, cb.clone(), None).await;
    }
    if let Some(stale) = stale {
        notify(inner, stale, cb, None).await;
    }
}

/// The status answer (and callback payload) for a transaction.
pub(crate) fn status_envelope(t: &Transaction) -> wire::Envelope<wire::StatusData> {
    let paid_instrument =
        (t.state == SimState::Completed).then(|| wire::PaidInstrument { kind: "UPI".into(), utr: t.utr.clone() });
    wire::Envelope {
        success: t.code == codes::PAYMENT_SUCCESS,
        code: t.code.clone(),
        message: message_for(&t.code).to_owned(),
        data: Some(wire::StatusData {
            merchant_id: t.merchant_id.clone(),
            merchant_transaction_id: t.merchant_transaction_id.clone(),
            transaction_id: Some(t.provider_transaction_id.clone()),
            amount: Some(t.amount),
            state: Some(t.state.as_str().to_owned()),
            response_code: Some(t.code.trim_start_matches("PAYMENT_").to_owned()),
            payment_instrument: paid_instrument,
        }),
    }
}

/// PhonePe-style human messages.
pub(crate) fn message_for(code: &str) -> &'static str {
    match code {
        codes::PAYMENT_INITIATED => "Payment initiated",
        codes::PAYMENT_SUCCESS => "Your payment is successful.",
        codes::PAYMENT_ERROR => "Payment Failed",
        codes::PAYMENT_DECLINED => "Payment declined by the payer",
        codes::PAYMENT_PENDING => "Your request is in pending state.",
        codes::TIMED_OUT => "The request timed out.",
        codes::INTERNAL_SERVER_ERROR => {
            "There is an error trying to process your transaction at the moment. Please try again in a while."
        }
        codes::BAD_REQUEST => "Invalid request",
        codes::AUTHORIZATION_FAILED => "Authorization failed: X-VERIFY is missing or does not match",
        codes::TRANSACTION_NOT_FOUND => "No transaction found with the given merchantTransactionId",
        codes::KEY_NOT_CONFIGURED => "Key not configured for the merchant",
        codes::TOO_MANY_REQUESTS => "Too many requests",
        codes::REVERSAL_WINDOW_EXCEEDED => "The refund window of this payment has passed",
        codes::EXCESS_REFUND_AMOUNT => "Refund amount exceeds what is left of the payment",
        _ => "Simulated answer",
    }
}

/// Send one notification with its faults: drop, delay, duplicates, retries. `first` fires
/// after the first attempt of the first copy (or at once when there is nothing to wait for).
pub(crate) async fn notify(
    inner: Arc<Inner>,
    n: Notification,
    faults: CallbackFaults,
    mut first: Option<oneshot::Sender<()>>,
) {
    if faults.drop {
        tracing::info!(txn = %n.txn, code = %n.code, "callback dropped (fault)");
        inner.log(CallbackDelivery {
            merchant_transaction_id: n.txn.clone(),
            url: n.url.clone(),
            code: n.code.clone(),
            state: n.state.clone(),
            copy: 0,
            attempt: 0,
            http_status: None,
            result: DeliveryResult::Dropped,
            error: None,
            salt_index: n.salt_index,
            at_ms: now_ms(),
        });
        return;
    }
    if faults.delay_ms > 0 {
        drop(first.take());
        tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
    }
    for copy in 0..=faults.duplicates {
        let signal = if copy == 0 { first.take() } else { None };
        deliver(&inner, &n, copy, signal).await;
    }
}

/// An error and its causes on one line ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn deliver(inner: &Inner, n: &Notification, copy: u32, mut first: Option<oneshot::Sender<()>>) {
    let attempts = inner.cfg.callback_retries.saturating_add(1);
    let mut backoff = inner.cfg.callback_backoff.min(MAX_BACKOFF);
    for attempt in 1..=attempts {
        let sent = inner
            .http
            .post(&n.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(n.header.0, &n.header.1)
            .body(n.body.clone())
            .send()
            .await;
        let (http_status, result, error) = match sent {
            Ok(resp) if resp.status().is_success() => (Some(resp.status().as_u16()), DeliveryResult::Delivered, None),
            Ok(resp) => (Some(resp.status().as_u16()), DeliveryResult::HttpError, None),
            Err(e) => (None, DeliveryResult::Failed, Some(error_chain(&e))),
        };
        tracing::info!(txn = %n.txn, code = %n.code, copy, attempt, ?http_status, ?result, "callback attempt");
        inner.log(CallbackDelivery {
            merchant_transaction_id: n.txn.clone(),
            url: n.url.clone(),
            code: n.code.clone(),
            state: n.state.clone(),
            copy,
            attempt,
            http_status,
            result,
            error,
            salt_index: n.salt_index,
            at_ms: now_ms(),
        });
        if let Some(tx) = first.take() {
            let _ = tx.send(());
        }
        if result == DeliveryResult::Delivered {
            return;
        }
        if attempt < attempts {
            tokio::time::sleep(backoff).await;
            backoff = backoff.checked_mul(2).unwrap_or(MAX_BACKOFF).min(MAX_BACKOFF);
        }
    }
}
