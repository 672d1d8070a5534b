//! # parkpay-simulator: an in-memory PhonePe PG (v1 and v2)
//!
//! Speaks PhonePe PG v1 as `docs/phonepe.md` describes it (salt key + `X-VERIFY`), and PG v2
//! (Standard Checkout with OAuth tokens and webhooks, see [PG v2](#pg-v2-standard-checkout-with-oauth)),
//! hosts a pay page, sends authenticated server-to-server notifications, and injects faults on
//! demand. Modelled on hyperswitch's dummy connector. Everything lives in memory; nothing
//! leaves the machine except the notifications: v1 callbacks go to the `callbackUrl` each
//! request names, v2 webhooks to the configured webhook URL.
//!
//! ## Library
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use parkpay_simulator::{Faults, Outcome, Simulator, SimulatorConfig};
//!
//! // Port 0 picks a free port; links (the pay page) point at the bound address.
//! let running = Simulator::spawn(SimulatorConfig::sandbox(), "127.0.0.1:0".parse()?).await?;
//! // Point the client at `Environment::Simulation { base_url: running.base_url.clone() }`.
//! let sim = &running.simulator;
//! sim.set_faults("MT-1", Faults::callbacks_duplicated(2))?; // before the pay call is fine
//! // ... client.pay(..MT-1..) ...
//! let payment = sim.complete("MT-1", Outcome::Success).await?; // as the pay page would
//! assert_eq!(payment.code, "PAYMENT_SUCCESS");
//! let deliveries = sim.callbacks_for("MT-1"); // url, copy, attempt, http status, result
//! # let _ = deliveries;
//! # Ok(()) }
//! ```
//!
//! `Simulator::router()` gives the same routes to mount in another server (set
//! `public_base_url` when mounting under a prefix).
//!
//! ## Routes
//!
//! PhonePe API (envelope `{success, code, message, data}`):
//!
//! | route | does |
//! |---|---|
//! | `POST /pg/v1/pay` | body `{"request": base64(JSON)}`, `X-VERIFY: sha256(request + "/pg/v1/pay" + salt)###idx` → `PAYMENT_INITIATED`; `data.instrumentResponse` is `redirectInfo {url: {public_base_url}/pay/{token}, method: GET}` for PAY_PAGE, `intentUrl` for UPI_INTENT, `qrData` for UPI_QR (both `upi://pay?pa=…&pn=…&am=100.00&tr={txn}&cu=INR`), nothing for UPI_COLLECT |
//! | `GET /pg/v1/status/{merchantId}/{merchantTransactionId}` | `X-VERIFY: sha256(path + salt)###idx` and `X-MERCHANT-ID` equal to the path's merchant → the payment's or refund's state |
//! | `POST /pg/v1/refund` | like pay, path `/pg/v1/refund` → `success:true, PAYMENT_PENDING`, state PENDING; the refund settles after `refund_settle_delay` (COMPLETED / PAYMENT_SUCCESS, or FAILED / PAYMENT_ERROR with the `refund_fails` fault) and its callback goes to the refund's `callbackUrl` |
//!
//! Hosted pay page (HTML): `GET /pay/{token}` shows merchant, amount in rupees and transaction
//! id with two buttons, "Pay" and "Decline". `POST /pay/{token}` with form field
//! `outcome=success|failure|declined` (→ PAYMENT_SUCCESS / PAYMENT_ERROR / PAYMENT_DECLINED)
//! records the outcome, sends the callback (`POST callbackUrl`, JSON `{"response": base64(status
//! envelope)}`, `X-VERIFY: sha256(response + salt)###idx`), waits for the first delivery attempt
//! (at most `callback_first_attempt_wait`, 5 s by default) so that a program sees the callback
//! before the redirect, then answers `303 See Other` to the payment's `redirectUrl` (for
//! `redirectMode: POST`, a 200 page with an auto-submitting form posting `code`, `merchantId`,
//! `transactionId`, `amount`, `providerReferenceId`). Unknown token: 404; deciding twice: 409;
//! a bad `outcome`: 400. Failed deliveries (non-2xx or no connection) are retried in the
//! background `callback_retries` times, waiting `callback_backoff`, doubling.
//!
//! Control API (JSON; errors `{"error": {"code", "message"}}`):
//!
//! | route | does |
//! |---|---|
//! | `GET /_sim/health` | `{"status": "ok"}` |
//! | `GET /_sim/faults` | `{"global": Faults, "transactions": {txn: Faults}}` |
//! | `PUT /_sim/faults/global`, `DELETE /_sim/faults/global` | set / clear the global faults |
//! | `PUT /_sim/faults/{txn}`, `DELETE /_sim/faults/{txn}` | set / clear one id's faults (payment or refund id; may be set before the call) |
//! | `DELETE /_sim/faults` | clear every fault |
//! | `GET /_sim/payments`, `GET /_sim/payments/{txn}` | the recorded payments and refunds ([`Transaction`]) |
//! | `POST /_sim/payments/{txn}/complete` `{"outcome": "success"\|"failure"\|"declined"}` | decide any instrument's payment as the pay page does (404 unknown, 409 already decided) |
//! | `GET /_sim/callbacks[?txn=ID]`, `DELETE /_sim/callbacks` | the delivery log ([`CallbackDelivery`]: url, code, copy, attempt, http status, result) |
//! | `POST /_sim/reset` | forget all transactions, faults and the log |
//!
//! ## Checks and HTTP statuses
//!
//! In order: body not `{"request": "<non-empty string>"}` → `BAD_REQUEST`; no or malformed
//! `X-VERIFY` → `AUTHORIZATION_FAILED`; payload not base64 of a JSON object or no `merchantId`
//! → `BAD_REQUEST`; unknown merchant or salt index → `KEY_NOT_CONFIGURED`; checksum mismatch
//! → `AUTHORIZATION_FAILED`; then the fields: `merchantTransactionId` 1–34 of `[A-Za-z0-9_-]`,
//! `amount` a JSON integer (not a string, float or negative) of at least 100 paise for a pay
//! and 1 for a refund, `merchantUserId` (required for PAY_PAGE), `redirectUrl` (required for
//! PAY_PAGE), `callbackUrl` http(s), `redirectMode` REDIRECT|POST, `mobileNumber` 10 digits,
//! the instrument (CARD, SAVED_CARD, TOKEN, NET_BANKING are unsupported) → `BAD_REQUEST`. An id
//! already used by any payment or refund → `BAD_REQUEST` "duplicate merchantTransactionId". Ids
//! are one namespace across merchants (stricter than PhonePe).
//!
//! | code | HTTP |
//! |---|---|
//! | `PAYMENT_INITIATED`, status answers of known ids (`PAYMENT_PENDING`, `PAYMENT_SUCCESS`, `PAYMENT_ERROR`, `PAYMENT_DECLINED`), the refund answer | 200 |
//! | `BAD_REQUEST`, `EXCESS_REFUND_AMOUNT`, `REVERSAL_WINDOW_EXCEEDED` | 400 |
//! | `AUTHORIZATION_FAILED`, `KEY_NOT_CONFIGURED` | 401 |
//! | `TRANSACTION_NOT_FOUND` (status of an unknown id or one of another merchant; refund of an unknown payment), `success:false`, no `data` | 404 |
//! | `TOO_MANY_REQUESTS` (forced only) | 429 |
//! | `INTERNAL_SERVER_ERROR` (faults) | 500 |
//! | `TIMED_OUT` and any other forced code | 200 |
//!
//! Status answers carry `success: true` only with `PAYMENT_SUCCESS` (PENDING and FAILED are
//! `success: false`, as PhonePe's samples); the refund answer is `success: true,
//! PAYMENT_PENDING`. Refunds: the original must be a COMPLETED payment of the same merchant
//! (unknown → `TRANSACTION_NOT_FOUND`, not completed → `BAD_REQUEST`), asked within
//! `reversal_window` of its completion (else `REVERSAL_WINDOW_EXCEEDED`), for at most what is
//! left: paid minus the refunds that are not FAILED (else `EXCESS_REFUND_AMOUNT`).
//!
//! ## Faults ([`Faults`])
//!
//! Set globally or per `merchantTransactionId` (a payment's or a refund's own id, also before
//! it exists); a per-id value replaces the global one whole. Answer faults apply to the
//! operations in `operations` (empty: pay, status and refund), in this order:
//! `latency_ms` (+ random `latency_jitter_ms`) before anything; `force` answers the given code
//! (default HTTP status and `success` as the table above) *before* any check, recording
//! nothing; `server_error: "before"` answers 500 `INTERNAL_SERVER_ERROR` recording nothing;
//! otherwise the request is processed for real, then `server_error: "after"` replaces the
//! answer with 500 (the payment/refund stays recorded), `hang_ms` sleeps before answering
//! (the work is already done), `garbage` answers HTTP 200 with a non-JSON HTML body.
//!
//! Outcome faults: `stuck_pending` accepts the payer's outcome but leaves the payment PENDING
//! with no callback (a refund never settles); `late_success_ms` turns a failure/decline (FAILED,
//! with its callback) into COMPLETED / PAYMENT_SUCCESS that many ms later with a second
//! callback, and the status API answers the new state from then on; `refund_fails` settles the
//! refund FAILED / PAYMENT_ERROR (its amount becomes refundable again).
//!
//! Callback faults (`callback`): `drop` sends nothing (logged as `dropped`); `duplicates: n`
//! sends n extra identical copies (n + 1 deliveries, each validly signed, one after another);
//! `delay_ms` waits before the first attempt (the pay page does not wait for it);
//! `out_of_order` with `late_success_ms`: the decline's FAILED callback is held back and
//! delivered right *after* the later SUCCESS callback, so the receiver sees SUCCESS, then the
//! stale FAILED.
//!
//! ## PG v2 (Standard Checkout with OAuth)
//!
//! Served beside v1 on the same base URL, at PhonePe's own paths (PhonePe's sandbox serves PG
//! and OAuth from one host). Settings: [`SimulatorConfig::v2`] ([`V2Settings`]: client id,
//! version and secret, webhook username/password and URL, token lifetime). Answers are plain
//! JSON; errors are `{"success": false, "code", "message"}`.
//!
//! | route | does |
//! |---|---|
//! | `POST /v1/oauth/token` | form-encoded `client_id`, `client_version`, `client_secret`, `grant_type=client_credentials` → `{access_token, encrypted_access_token, expires_in: null, issued_at, expires_at, session_expires_at, token_type: "O-Bearer"}` (epoch seconds; `expires_at = issued_at + token_lifetime`). Wrong credentials: 401 `INVALID_CLIENT`; a missing field or another grant type: 400 `BAD_REQUEST`. Every request is counted ([`Simulator::token_requests`]) |
//! | `POST /checkout/v2/pay` | `{merchantOrderId, amount, expireAfter?, metaInfo?, paymentFlow: {type: "PG_CHECKOUT", merchantUrls: {redirectUrl}}}` → `{orderId, state: "PENDING", expireAt (epoch ms), redirectUrl}`; `redirectUrl` is the hosted pay page |
//! | `POST /checkout/v2/sdk/order` | the same body (`merchantUrls` optional) → `{orderId, state: "PENDING", expireAt, token}`; the token is the pay page's (`{base}/pay/{token}`) |
//! | `GET /checkout/v2/order/{merchantOrderId}/status` | `{orderId, state: PENDING\|COMPLETED\|FAILED, amount, expireAt, metaInfo?, paymentDetails: [{paymentMode, transactionId, timestamp, amount, state, rail?: {type, utr, upiTransactionId}, errorCode?}], errorCode?, detailedErrorCode?}`; unknown: 404 `ORDER_NOT_FOUND` |
//! | `POST /payments/v2/refund` | `{merchantRefundId, originalMerchantOrderId, amount}` → `{refundId, amount, state: "PENDING"}` |
//! | `GET /payments/v2/refund/{merchantRefundId}/status` | `{merchantRefundId, originalMerchantOrderId, refundId, amount, state: PENDING\|CONFIRMED\|COMPLETED\|FAILED, timestamp, errorCode?, paymentDetails}`; unknown: 404 `REFUND_NOT_FOUND` |
//!
//! Every PG call (all but the token endpoint) needs `Authorization: O-Bearer <access_token>`
//! with a token that is known, not expired and not revoked, else 401 `AUTHORIZATION_FAILED`;
//! that check comes first, then the body: a JSON object, ids 1–63 of `[A-Za-z0-9_-]`, `amount`
//! a JSON integer of paise (at least 100 for an order, 1 for a refund; a string is a 400),
//! `expireAfter` 300–3600 s (default 1200), `metaInfo` an object of strings, `paymentFlow.type`
//! `PG_CHECKOUT` → 400 `BAD_REQUEST`. An id already used (by a v1 or v2 payment or refund) is
//! 400 "duplicate". Refunds: the original must be a COMPLETED v2 order (unknown → 404
//! `ORDER_NOT_FOUND`, not completed → 400), within `reversal_window` (400
//! `REVERSAL_WINDOW_EXCEEDED`), for at most what is left (400 `EXCESS_REFUND_AMOUNT`). A v2
//! API never sees v1 transactions, nor v1 APIs v2 records.
//!
//! Orders are decided like v1 payments: the pay page, [`Simulator::complete`] or
//! `POST /_sim/payments/{merchantOrderId}/complete` (`success` → COMPLETED; `failure` /
//! `declined` → FAILED with `errorCode` `PAYMENT_ERROR` / `PAYMENT_DECLINED`). They do not
//! expire by themselves (`expireAt` is reported only). A refund is CONFIRMED (accepted) as soon
//! as it is recorded, then settles after `refund_settle_delay` (COMPLETED, or FAILED with the
//! `refund_fails` fault), or at once through [`Simulator::settle_refund`] /
//! `POST /_sim/refunds/{id}/settle`. With `stuck_pending` it stays PENDING and is never
//! accepted by itself.
//!
//! Webhooks: on each change (order COMPLETED or FAILED; refund accepted, COMPLETED or FAILED)
//! the simulator POSTs `{"event", "payload"}` to the webhook URL with the header
//! `Authorization: <lowercase hex sha256("username:password")>`; events
//! `checkout.order.completed`, `checkout.order.failed`, `pg.refund.accepted`,
//! `pg.refund.completed`, `pg.refund.failed`; the payload is the status answer plus
//! `merchantId` and `merchantOrderId` / `merchantRefundId`. The header does not depend on the
//! body. Delivery, retries, the callback log (`code` holds the event; `salt_index` is 0) and
//! the callback faults are v1's.
//!
//! Faults: the same [`Faults`] apply, addressed by `merchantOrderId` / `merchantRefundId`
//! (pay and SDK order are [`Operation::Pay`], both statuses [`Operation::Status`], refund
//! [`Operation::Refund`]; a forced answer is `{"success", "code", "message", "state"?}`).
//! Token faults ([`TokenFaults`]): `reject_next_calls` (the next n PG calls get 401 whatever
//! their token), `fail_next_token_requests` (the next n token requests get 500); and
//! [`Simulator::expire_tokens`] / [`Simulator::revoke_tokens`].
//!
//! v2 control routes: `POST /_sim/refunds/{id}/settle` `{"outcome": "success"|"failure"}`
//! (v1 and v2 refunds; 404 unknown, 409 settled), `GET /_sim/v2/orders/{merchantOrderId}`,
//! `GET /_sim/v2/refunds/{merchantRefundId}` (as the status APIs answer, without a token),
//! `GET /_sim/v2/tokens` (`{requests, issued, active, faults}`), `POST /_sim/v2/tokens/expire`,
//! `POST /_sim/v2/tokens/revoke`, `PUT`/`DELETE /_sim/v2/tokens/faults` ([`TokenFaults`]).
//! The v1 routes take v2 ids too: faults, `/_sim/payments/{id}`, `/complete`, the callback log.
//!
//! ## Salt keys
//!
//! A merchant may have several salt keys (`SimulatorConfig::merchants`, a [`parkpay_checksum::SaltKeys`]
//! each), as during a key rotation (`docs/phonepe.md` §6): a request is checked with the key
//! its `X-VERIFY` index names (an index the merchant lacks is `KEY_NOT_CONFIGURED`), and
//! [`Simulator::salt_index_of`] tells which index signed the last accepted request for an id.
//! Callbacks are signed with the keys' active index, or with another of the merchant's indices
//! chosen by [`Simulator::sign_callbacks_with`]; the callback log records it (`salt_index`).
//! The binary takes several keys as `PHONEPE_SALT_KEYS` (`1:old-key,2:new-key`) with
//! `PHONEPE_SALT_INDEX` naming the one that signs callbacks.

mod api;
mod config;
mod control;
mod engine;
mod faults;
mod model;
mod page;
mod respond;
mod util;
mod v2;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};
use parkpay_checksum::SaltIndex;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

pub use config::{
    DEFAULT_ADDR, DEFAULT_TOKEN_LIFETIME, EnvError, EnvSettings, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET,
    SANDBOX_CLIENT_VERSION, SANDBOX_MERCHANT_ID, SANDBOX_SALT_INDEX, SANDBOX_SALT_KEY, SANDBOX_WEBHOOK_PASSWORD,
    SANDBOX_WEBHOOK_USERNAME, SimConfigError, SimulatorConfig, V2Settings, settings_from, settings_from_env,
};
pub use faults::{
    CallbackFaults, FaultError, FaultTable, Faults, ForcedAnswer, MAX_DUPLICATES, MAX_FAULT_MS, Operation, ServerError,
};
pub use model::{
    BadOutcome, CallbackDelivery, CompleteError, DeliveryResult, Outcome, SettleError, SimState, Transaction, TxnKind,
};
pub use v2::{
    EVENT_ORDER_COMPLETED, EVENT_ORDER_FAILED, EVENT_REFUND_ACCEPTED, EVENT_REFUND_COMPLETED, EVENT_REFUND_FAILED,
    TokenFaults,
};

use engine::Inner;

/// A PhonePe PG v1 and v2 simulator. Cheap to clone (shared state); every clone sees the same
/// transactions, faults and callback log.
#[derive(Clone)]
pub struct Simulator {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("merchants", &self.inner.merchants.keys().collect::<Vec<_>>())
            .field("public_base", &self.inner.public_base)
            .finish_non_exhaustive()
    }
}

/// A simulator serving on a bound address.
#[derive(Debug)]
pub struct RunningSimulator {
    /// `http://{addr}/`: point `Environment::Simulation { base_url }` here.
    pub base_url: Url,
    pub addr: SocketAddr,
    /// The server task; ends only on an I/O error or when aborted.
    pub handle: JoinHandle<std::io::Result<()>>,
    pub simulator: Simulator,
}

impl RunningSimulator {
    /// Stop serving (open connections are cut).
    pub fn shutdown(&self) {
        self.handle.abort();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    Config(#[from] SimConfigError),
    #[error("could not listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

impl Simulator {
    pub fn new(cfg: SimulatorConfig) -> Result<Self, SimConfigError> {
        cfg.validate()?;
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.callback_timeout)
            .timeout(cfg.callback_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("parkpay-simulator (PhonePe PG callbacks)")
            .build()
            .map_err(|e| SimConfigError::HttpClient(e.to_string()))?;
        Ok(Self { inner: Arc::new(Inner::new(cfg, http)) })
    }

    /// Bind `addr` (port 0 picks a free port), serve the router there, and return at once.
    /// Without a configured `public_base_url`, links point at the bound address (loopback when
    /// bound to an unspecified address).
    pub async fn spawn(mut cfg: SimulatorConfig, addr: SocketAddr) -> Result<RunningSimulator, SpawnError> {
        cfg.validate()?;
        let listener = TcpListener::bind(addr).await.map_err(|source| SpawnError::Bind { addr, source })?;
        let bound = listener.local_addr().map_err(|source| SpawnError::Bind { addr, source })?;
        let reachable = match bound {
            SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::from((Ipv4Addr::LOCALHOST, a.port())),
            SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddr::from((Ipv6Addr::LOCALHOST, a.port())),
            other => other,
        };
        let base_url = Url::parse(&format!("http://{reachable}/"))
            .map_err(|e| SpawnError::Bind { addr, source: std::io::Error::other(e.to_string()) })?;
        if cfg.public_base_url.is_none() {
            cfg.public_base_url = Some(base_url.clone());
        }
        let simulator = Simulator::new(cfg)?;
        let router = simulator.router();
        let handle = tokio::spawn(async move { axum::serve(listener, router).await });
        tracing::info!(%base_url, "PhonePe simulator listening");
        Ok(RunningSimulator { base_url, addr: bound, handle, simulator })
    }

    /// All routes (PhonePe API, pay page, control API), ready to serve or to mount.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/pg/v1/pay", post(api::pay))
            .route("/pg/v1/status/{merchant_id}/{txn}", get(api::status))
            .route("/pg/v1/refund", post(api::refund))
            .route("/v1/oauth/token", post(v2::oauth::token))
            .route("/checkout/v2/pay", post(v2::api::pay))
            .route("/checkout/v2/sdk/order", post(v2::api::sdk_order))
            .route("/checkout/v2/order/{merchant_order_id}/status", get(v2::api::order_status))
            .route("/payments/v2/refund", post(v2::api::refund))
            .route("/payments/v2/refund/{merchant_refund_id}/status", get(v2::api::refund_status))
            .route("/pay/{token}", get(page::show).post(page::submit))
            .route("/_sim/health", get(control::health))
            .route("/_sim/faults", get(control::get_faults).delete(control::delete_all))
            .route("/_sim/faults/global", put(control::put_global).delete(control::delete_global))
            .route("/_sim/faults/{txn}", put(control::put_txn).delete(control::delete_txn))
            .route("/_sim/payments", get(control::list_payments))
            .route("/_sim/payments/{txn}", get(control::get_payment))
            .route("/_sim/payments/{txn}/complete", post(control::complete))
            .route("/_sim/refunds/{txn}/settle", post(v2::control::settle))
            .route("/_sim/callbacks", get(control::callbacks).delete(control::clear_callbacks))
            .route("/_sim/v2/orders/{id}", get(v2::control::get_order))
            .route("/_sim/v2/refunds/{id}", get(v2::control::get_refund))
            .route("/_sim/v2/tokens", get(v2::control::tokens))
            .route("/_sim/v2/tokens/expire", post(v2::control::expire))
            .route("/_sim/v2/tokens/revoke", post(v2::control::revoke))
            .route(
                "/_sim/v2/tokens/faults",
                put(v2::control::put_token_faults).delete(v2::control::delete_token_faults),
            )
            .route("/_sim/reset", post(control::reset))
            .with_state(self.inner.clone())
    }

    /// Faults for every id without its own.
    pub fn set_global_faults(&self, faults: Faults) -> Result<(), FaultError> {
        faults.validate()?;
        self.inner.lock().faults.global = faults;
        Ok(())
    }

    /// Faults for one payment or refund id (replacing the global ones for it); may be set
    /// before the id is used.
    pub fn set_faults(&self, txn: &str, faults: Faults) -> Result<(), FaultError> {
        faults.validate()?;
        self.inner.lock().faults.transactions.insert(txn.to_owned(), faults);
        Ok(())
    }

    pub fn clear_faults(&self, txn: &str) {
        self.inner.lock().faults.transactions.remove(txn);
    }

    pub fn clear_global_faults(&self) {
        self.inner.lock().faults.global = Faults::default();
    }

    pub fn clear_all_faults(&self) {
        self.inner.lock().faults = FaultTable::default();
    }

    pub fn faults(&self) -> FaultTable {
        self.inner.lock().faults.clone()
    }

    /// Decide a PENDING payment of any instrument, exactly as the pay page does (callback
    /// included, first attempt awaited). Returns the payment afterwards.
    pub async fn complete(&self, txn: &str, outcome: Outcome) -> Result<Transaction, CompleteError> {
        self.inner.complete(txn, outcome).await
    }

    /// A payment or refund by its merchantTransactionId.
    pub fn transaction(&self, txn: &str) -> Option<Transaction> {
        self.inner.lock().txns.get(txn).map(|r| r.view.clone())
    }

    /// Every payment and refund, oldest first.
    pub fn transactions(&self) -> Vec<Transaction> {
        let mut all: Vec<Transaction> = self.inner.lock().txns.values().map(|r| r.view.clone()).collect();
        all.sort_by(|a, b| {
            (a.created_at_ms, &a.merchant_transaction_id).cmp(&(b.created_at_ms, &b.merchant_transaction_id))
        });
        all
    }

    /// The callback log, oldest first (the last 10,000 entries).
    pub fn callbacks(&self) -> Vec<CallbackDelivery> {
        self.inner.lock().callbacks.iter().cloned().collect()
    }

    pub fn callbacks_for(&self, txn: &str) -> Vec<CallbackDelivery> {
        self.inner.lock().callbacks.iter().filter(|c| c.merchant_transaction_id == txn).cloned().collect()
    }

    pub fn clear_callbacks(&self) {
        self.inner.lock().callbacks.clear();
    }

    /// How many `op` requests named merchant transaction id `txn` (for a refund: the refund's
    /// id), whatever was answered.
    pub fn calls(&self, op: Operation, txn: &str) -> u64 {
        self.inner.lock().calls.get(&(op, txn.to_owned())).copied().unwrap_or(0)
    }

    /// The salt index that signed the last request of `op` naming merchant transaction id `txn`
    /// whose checksum matched (for a refund: the refund's id): which key parkpay signs with.
    pub fn salt_index_of(&self, op: Operation, txn: &str) -> Option<SaltIndex> {
        self.inner.lock().signed_with.get(&(op, txn.to_owned())).copied()
    }

    /// Sign `merchant_id`'s callbacks from now on with its key `index` (PhonePe's side of a key
    /// rotation, which need not switch when the merchant does), or again with the configured
    /// active index (`None`). The index must be one of the merchant's configured keys.
    pub fn sign_callbacks_with(&self, merchant_id: &str, index: Option<SaltIndex>) -> Result<(), CallbackKeyError> {
        let keys = self.inner.keys(merchant_id).ok_or_else(|| CallbackKeyError::UnknownMerchant(merchant_id.into()))?;
        let mut chosen = self.inner.callback_index.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match index {
            Some(i) if keys.key(i).is_none() => return Err(CallbackKeyError::UnknownIndex(i)),
            Some(i) => chosen.insert(merchant_id.to_owned(), i),
            None => chosen.remove(merchant_id),
        };
        Ok(())
    }

    /// Forget every transaction, fault and log entry, every v2 access token, token count and
    /// token fault, and sign callbacks with the configured indices again (tasks already
    /// scheduled find nothing). The webhook URL stays.
    pub fn reset(&self) {
        let mut st = self.inner.lock();
        st.txns.clear();
        st.tokens.clear();
        st.faults = FaultTable::default();
        st.callbacks.clear();
        st.calls.clear();
        st.signed_with.clear();
        st.oauth = v2::TokenStore::default();
        drop(st);
        self.inner.callback_index.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }
}

/// Why [`Simulator::sign_callbacks_with`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackKeyError {
    #[error("merchant {0:?} is not configured")]
    UnknownMerchant(String),
    #[error("the merchant has no salt key with index {0}")]
    UnknownIndex(SaltIndex),
}
