//! Shared test rig: the simulator on 127.0.0.1:0, a callback receiver on 127.0.0.1:0 that
//! verifies every callback with `verify_callback`, and the real `PhonePeV1` client between them.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use parkpay_checksum::{SaltIndex, SaltKey, SaltKeys};
use parkpay_gateway::phonepe_v1::{PhonePeV1, sign_request, verify_callback};
use parkpay_gateway::{
    CallbackError, DeviceOs, Environment, Instrument, MerchantTxnId, Notice, Paise, PayRequest, PhonePeV1Config,
    RefundRequest,
};
use parkpay_simulator::{RunningSimulator, SANDBOX_MERCHANT_ID, SANDBOX_SALT_KEY, Simulator, SimulatorConfig};
use serde_json::Value;
use url::Url;

pub const MERCHANT: &str = SANDBOX_MERCHANT_ID;
/// Generous bound for "eventually" conditions; none of them is about speed.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub fn keys() -> SaltKeys {
    SaltKeys::single(SaltIndex::new(1), SaltKey::new(SANDBOX_SALT_KEY).unwrap())
}

pub fn txn(s: &str) -> MerchantTxnId {
    MerchantTxnId::parse(s).unwrap()
}

/// One callback as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Bytes,
    pub x_verify: Option<String>,
    pub notice: Result<Notice, CallbackError>,
    /// What the receiver answered.
    pub answered: u16,
}

#[derive(Clone)]
struct RxState {
    keys: SaltKeys,
    got: Arc<Mutex<Vec<Received>>>,
    fail_next: Arc<AtomicU32>,
}

/// The merchant's side: `POST /cb` verifies and records callbacks; `/return` is the redirect
/// target.
pub struct Receiver {
    pub base: Url,
    got: Arc<Mutex<Vec<Received>>>,
    fail_next: Arc<AtomicU32>,
}

async fn on_callback(State(s): State<RxState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let notice = verify_callback(&s.keys, &headers, &body);
    let fail = s.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let answered = if fail { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
    let x_verify = headers.get("x-verify").and_then(|h| h.to_str().ok()).map(str::to_owned);
    s.got.lock().unwrap().push(Received { body, x_verify, notice, answered: answered.as_u16() });
    answered
}

impl Receiver {
    pub async fn start() -> Self {
        let state = RxState { keys: keys(), got: Arc::default(), fail_next: Arc::default() };
        let (got, fail_next) = (state.got.clone(), state.fail_next.clone());
        let app = Router::new()
            .route("/cb", post(on_callback))
            .route("/return", get(|| async { "back at the merchant" }).post(|| async { "back at the merchant" }))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base: Url::parse(&format!("http://{addr}/")).unwrap(), got, fail_next }
    }

    pub fn callback_url(&self) -> Url {
        self.base.join("cb").unwrap()
    }

    pub fn redirect_url(&self) -> String {
        self.base.join("return").unwrap().to_string()
    }

    /// Answer 500 to the next `n` callbacks.
    pub fn fail_next(&self, n: u32) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Verified notices about `txn`, in arrival order; panics on any callback that did not verify.
    pub fn notices_for(&self, txn: &str) -> Vec<Notice> {
        self.received()
            .into_iter()
            .map(|r| r.notice.expect("every callback must verify"))
            .filter(|n| n.report.merchant_txn_id.as_str() == txn)
            .collect()
    }

    /// Wait until at least `n` callbacks about `txn` arrived.
    pub async fn wait_for(&self, txn: &str, n: usize) -> Vec<Notice> {
        eventually(&format!("{n} callbacks for {txn}"), || {
            let got = self.notices_for(txn);
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

/// Poll `f` every 10 ms until it gives a value (or panic after [`PATIENCE`]).
pub async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub struct Rig {
    pub sim: RunningSimulator,
    pub rx: Receiver,
    pub client: PhonePeV1,
}

impl Rig {
    pub async fn start() -> Self {
        Self::with(|c| c, Duration::from_secs(5)).await
    }

    /// A rig whose simulator config is adjusted by `tune` and whose client waits `read_timeout`
    /// for answers.
    pub async fn with(tune: impl FnOnce(SimulatorConfig) -> SimulatorConfig, read_timeout: Duration) -> Self {
        let cfg = tune(SimulatorConfig::sandbox().with_fast_timings());
        let sim = Simulator::spawn(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let rx = Receiver::start().await;
        let client = client_for(sim.base_url.clone(), &rx, MERCHANT, keys(), read_timeout);
        Self { sim, rx, client }
    }

    pub fn simulator(&self) -> &Simulator {
        &self.sim.simulator
    }

    /// The simulator's base URL without the trailing slash.
    pub fn base(&self) -> String {
        self.sim.base_url.as_str().trim_end_matches('/').to_owned()
    }

    pub fn pay_request(&self, id: &str, instrument: Instrument) -> PayRequest {
        PayRequest {
            merchant_txn_id: txn(id),
            merchant_user_id: "U1".into(),
            amount: Paise::new(10_000),
            instrument,
            redirect_url: self.rx.redirect_url(),
            mobile_number: None,
        }
    }

    pub fn refund_request(&self, refund_id: &str, original: &str, paise: u64) -> RefundRequest {
        RefundRequest {
            refund_txn_id: txn(refund_id),
            original_txn_id: txn(original),
            amount: Paise::new(paise),
            merchant_user_id: Some("U1".into()),
        }
    }

    /// A raw, correctly signed POST of any JSON payload (to send what the client never would).
    pub async fn post_signed(&self, path: &str, payload: &Value) -> (u16, Value) {
        let (body, xv) = sign_request(&keys(), path, payload);
        self.post_raw(path, body, Some(xv.to_string())).await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>, x_verify: Option<String>) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{}{path}", self.base()))
            .header("content-type", "application/json")
            .body(body);
        if let Some(x) = x_verify {
            req = req.header("x-verify", x);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A valid pay payload (as JSON) that tests then spoil one field of.
    pub fn pay_payload(&self, id: &str) -> Value {
        serde_json::json!({
            "merchantId": MERCHANT,
            "merchantTransactionId": id,
            "merchantUserId": "U1",
            "amount": 10000,
            "redirectUrl": self.rx.redirect_url(),
            "redirectMode": "REDIRECT",
            "callbackUrl": self.rx.callback_url().to_string(),
            "paymentInstrument": {"type": "PAY_PAGE"}
        })
    }

    /// Pay with PAY_PAGE and complete it successfully through the library; returns once the
    /// success callback arrived.
    pub async fn paid(&self, id: &str) {
        use parkpay_gateway::PaymentGateway;
        self.client.pay(&self.pay_request(id, Instrument::PayPage)).await.unwrap();
        self.simulator().complete(id, parkpay_simulator::Outcome::Success).await.unwrap();
        self.rx.wait_for(id, 1).await;
    }
}

pub fn client_for(base: Url, rx: &Receiver, merchant: &str, keys: SaltKeys, read_timeout: Duration) -> PhonePeV1 {
    let cfg = PhonePeV1Config::new(
        Environment::Simulation { base_url: base },
        merchant,
        keys,
        rx.callback_url(),
        Url::parse(&rx.redirect_url()).unwrap(),
    )
    .with_timeouts(Duration::from_secs(2), read_timeout);
    PhonePeV1::new(cfg).unwrap()
}

pub fn upi_intent() -> Instrument {
    Instrument::UpiIntent { target_app: Some("com.phonepe.app".into()), device_os: DeviceOs::Android }
}

/// An HTTP client that does not follow redirects (to see the pay page's 303).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}
