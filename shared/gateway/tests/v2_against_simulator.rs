//! The real `PhonePeV2` client against the simulator over real HTTP on 127.0.0.1, with a webhook
//! receiver: orders (pay page and SDK), statuses, refunds and their statuses, webhooks checked
//! with `verify_notice`, OAuth tokens (reuse, half-life refresh, forced refresh on 401, one
//! fetch for concurrent callers), and the classification of 429, 5xx, garbage and timeouts.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use parkpay_checksum::WebhookCredentials;
use parkpay_checksum::conformance::WEBHOOK_AUTHORIZATION;
use parkpay_gateway::phonepe_v2::PhonePeV2;
use parkpay_gateway::phonepe_v2::token::now_epoch_s;
use parkpay_gateway::{
    CallbackError, Environment, GatewayError, Instrument, MerchantTxnId, NoticeKind, Paise, PayRequest, PaymentGateway,
    PhonePeV2Config, RefundRequest, TxnState,
};
use parkpay_simulator::{
    Faults, Operation, Outcome, RunningSimulator, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_MERCHANT_ID,
    Simulator, SimulatorConfig, TokenFaults,
};
use secrecy::SecretString;
use support::{browser, eventually, txn, upi_intent};
use url::Url;

/// One webhook as received: raw headers and body.
type Got = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn on_hook(State(got): State<Got>, headers: HeaderMap, body: Bytes) -> &'static str {
    got.lock().unwrap().push((headers, body));
    "ok"
}

struct Rig {
    sim: RunningSimulator,
    got: Got,
    client: PhonePeV2,
}

fn config(base: Url, read_timeout: Duration) -> PhonePeV2Config {
    PhonePeV2Config::new(
        Environment::Simulation { base_url: base },
        SANDBOX_CLIENT_ID,
        1,
        SecretString::from(SANDBOX_CLIENT_SECRET),
        WebhookCredentials::new("username", SecretString::from("password")),
    )
    .with_merchant_id(SANDBOX_MERCHANT_ID)
    .with_timeouts(Duration::from_secs(2), read_timeout)
}

impl Rig {
    async fn start() -> Self {
        Self::with(|c| c, Duration::from_secs(5)).await
    }

    async fn with(tune: impl FnOnce(SimulatorConfig) -> SimulatorConfig, read_timeout: Duration) -> Self {
        let got: Got = Arc::default();
        let app = Router::new().route("/hook", post(on_hook)).with_state(got.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook_url = Url::parse(&format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let cfg =
            SimulatorConfig::sandbox().with_fast_timings().with_v2_webhook(Some(hook_url), "username", "password");
        let sim = Simulator::spawn(tune(cfg), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = PhonePeV2::new(config(sim.base_url.clone(), read_timeout)).unwrap();
        Self { sim, got, client }
    }

    fn sim(&self) -> &Simulator {
        &self.sim.simulator
    }

    /// Another client of the same simulator (a token cache of its own).
    fn other_client(&self, tune: impl FnOnce(PhonePeV2Config) -> PhonePeV2Config) -> PhonePeV2 {
        PhonePeV2::new(tune(config(self.sim.base_url.clone(), Duration::from_secs(5)))).unwrap()
    }

    fn pay_request(&self, id: &str, instrument: Instrument) -> PayRequest {
        PayRequest {
            merchant_txn_id: txn(id),
            merchant_user_id: "U1".into(),
            amount: Paise::new(10_000),
            instrument,
            redirect_url: "https://merchant.example/return".into(),
            mobile_number: None,
        }
    }

    fn refund_request(&self, id: &str, original: &str, paise: u64) -> RefundRequest {
        RefundRequest {
            refund_txn_id: txn(id),
            original_txn_id: txn(original),
            amount: Paise::new(paise),
            merchant_user_id: None,
        }
    }

    /// The webhooks about `id`, verified by the client, in arrival order (panics on one that
    /// does not verify).
    async fn notices(&self, id: &str, at_least: usize) -> Vec<parkpay_gateway::Notice> {
        let client = self.client.clone();
        let got = self.got.clone();
        let mut verified = Vec::new();
        let deadline = Instant::now() + support::PATIENCE;
        loop {
            let raw = got.lock().unwrap().clone();
            verified.clear();
            for (headers, body) in raw {
                assert_eq!(headers["authorization"], WEBHOOK_AUTHORIZATION);
                let n = client.verify_notice(&headers, &body).await.expect("every webhook verifies");
                if n.report.merchant_txn_id.as_str() == id {
                    verified.push(n);
                }
            }
            if verified.len() >= at_least {
                return verified;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {at_least} webhooks about {id}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Pay on the pay page, completed through the library; returns once the webhook arrived.
    async fn paid(&self, id: &str) {
        self.client.pay(&self.pay_request(id, Instrument::PayPage)).await.unwrap();
        self.sim().complete(id, Outcome::Success).await.unwrap();
        self.notices(id, 1).await;
    }
}

fn rejected(r: Result<impl std::fmt::Debug, GatewayError>) -> (String, String) {
    match r {
        Err(GatewayError::Rejected { code, message }) => (code, message),
        other => panic!("expected Rejected, got {other:?}"),
    }
}

fn assert_unknown(r: Result<impl std::fmt::Debug, GatewayError>) {
    match r {
        Err(e @ GatewayError::OutcomeUnknown { .. }) => assert!(e.retryable()),
        other => panic!("expected OutcomeUnknown, got {other:?}"),
    }
}

// ---- orders -------------------------------------------------------------------------------

#[tokio::test]
async fn pay_page_order_status_and_webhook() {
    let rig = Rig::start().await;
    let before_ms = now_epoch_s() * 1000;
    let started = rig.client.pay(&rig.pay_request("V2-PP-1", Instrument::PayPage)).await.unwrap();
    assert_eq!(started.merchant_txn_id.as_str(), "V2-PP-1");
    let page = started.redirect_url.clone().expect("a pay page URL");
    assert!(page.starts_with(&format!("{}pay/", rig.sim.base_url)), "{page}");
    let order_id = started.order_id.clone().expect("PhonePe's orderId");
    assert!(order_id.starts_with("OMO"));
    assert_eq!((started.sdk_token, started.upi_intent_url, started.qr_data), (None, None, None));
    // expireAfter is the configured payment timeout: 15 minutes by default
    let expire_at = rig.sim().v2_order("V2-PP-1").unwrap()["expireAt"].as_u64().unwrap();
    assert!((before_ms + 900_000..before_ms + 903_000).contains(&expire_at), "{expire_at}");

    let r = rig.client.status(&txn("V2-PP-1")).await.unwrap();
    assert_eq!((r.state, r.code.as_str(), r.amount), (TxnState::Pending, "PENDING", Some(Paise::new(10_000))));
    assert_eq!(r.merchant_id.as_deref(), Some(SANDBOX_MERCHANT_ID));

    let resp = browser().post(&page).form(&[("outcome", "success")]).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let notices = rig.notices("V2-PP-1", 1).await;
    assert_eq!(notices.len(), 1);
    let n = &notices[0];
    assert_eq!((n.kind, n.report.state, n.report.code.as_str()), (NoticeKind::Payment, TxnState::Success, "COMPLETED"));
    assert_eq!(n.report.amount, Some(Paise::new(10_000)));
    let utr = n.report.utr.clone().expect("a UTR");

    let r = rig.client.status(&txn("V2-PP-1")).await.unwrap();
    assert_eq!((r.state, r.code.as_str()), (TxnState::Success, "COMPLETED"));
    assert_eq!(r.utr.as_deref(), Some(utr.as_str()));
    assert_eq!(r.provider_txn_id, n.report.provider_txn_id);
    assert!(r.provider_txn_id.as_deref().unwrap().starts_with("OM"));

    // the same id again: refused, nothing changed
    let (code, message) = rejected(rig.client.pay(&rig.pay_request("V2-PP-1", Instrument::PayPage)).await);
    assert_eq!(code, "BAD_REQUEST");
    assert!(message.contains("duplicate"), "{message}");

    // a shorter payment timeout is the order's expireAfter
    let short = rig.other_client(|c| c.with_payment_timeout(Duration::from_secs(300)));
    short.pay(&rig.pay_request("V2-PP-2", Instrument::PayPage)).await.unwrap();
    let expire_at = rig.sim().v2_order("V2-PP-2").unwrap()["expireAt"].as_u64().unwrap();
    assert!((before_ms + 300_000..before_ms + 303_000).contains(&expire_at), "{expire_at}");
}

#[tokio::test]
async fn sdk_orders_declines_and_unavailable_instruments() {
    let rig = Rig::start().await;
    let s = rig.client.pay(&rig.pay_request("V2-SDK-1", Instrument::AppSdk)).await.unwrap();
    let token = s.sdk_token.expect("an SDK token");
    assert!(s.order_id.unwrap().starts_with("OMO"));
    assert_eq!(s.redirect_url, None);
    assert_eq!(rig.sim().transaction("V2-SDK-1").unwrap().instrument.as_deref(), Some("SDK"));
    assert!(rig.sim().transaction("V2-SDK-1").unwrap().pay_page_url.unwrap().ends_with(&token));

    rig.sim().complete("V2-SDK-1", Outcome::Declined).await.unwrap();
    let n = &rig.notices("V2-SDK-1", 1).await[0];
    assert_eq!((n.report.state, n.report.code.as_str()), (TxnState::Failed, "PAYMENT_DECLINED"));
    let r = rig.client.status(&txn("V2-SDK-1")).await.unwrap();
    assert_eq!((r.state, r.code.as_str(), r.utr), (TxnState::Failed, "PAYMENT_DECLINED", None));

    let calls = rig.sim().token_requests();
    for instrument in [upi_intent(), Instrument::UpiQr, Instrument::UpiCollect { vpa: "payer@ybl".into() }] {
        let name = instrument.name();
        let (code, message) = rejected(rig.client.pay(&rig.pay_request("V2-NA-1", instrument)).await);
        assert_eq!(code, "INSTRUMENT_NOT_AVAILABLE");
        assert!(message.contains(name) && message.contains("v2"), "{message}");
    }
    assert!(rig.sim().transaction("V2-NA-1").is_none());
    assert_eq!(rig.sim().token_requests(), calls, "refused before anything was sent");

    // and PG v1 has no SDK
    let v1 = support::Rig::start().await;
    let (code, message) = rejected(v1.client.pay(&v1.pay_request("V1-SDK-1", Instrument::AppSdk)).await);
    assert_eq!(code, "INSTRUMENT_NOT_AVAILABLE");
    assert!(message.contains("v1"), "{message}");
    assert!(v1.simulator().transactions().is_empty());
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let rig = Rig::start().await;
    let r = rig.client.status(&txn("NEVER-1")).await.unwrap();
    assert_eq!((r.state, r.code.as_str(), r.amount), (TxnState::NotFound, "ORDER_NOT_FOUND", None));
    let r = rig.client.refund_status(&txn("NEVER-R1")).await.unwrap();
    assert_eq!((r.state, r.code.as_str()), (TxnState::NotFound, "REFUND_NOT_FOUND"));
    let (code, _) = rejected(rig.client.refund(&rig.refund_request("NEVER-R2", "NEVER-1", 100)).await);
    assert_eq!(code, "ORDER_NOT_FOUND");
}

// ---- refunds ------------------------------------------------------------------------------

#[tokio::test]
async fn refunds_their_status_and_webhooks() {
    let rig = Rig::with(
        |mut c| {
            c.refund_settle_delay = Duration::from_secs(60);
            c
        },
        Duration::from_secs(5),
    )
    .await;
    rig.paid("V2-RF-1").await;
    let started = rig.client.refund(&rig.refund_request("V2-RF-1-R1", "V2-RF-1", 4_000)).await.unwrap();
    assert_eq!((started.state, started.code.as_str()), (TxnState::Pending, "PENDING"));
    assert_eq!(started.amount, Some(Paise::new(4_000)));
    let refund_id = started.provider_txn_id.clone().unwrap();
    assert!(refund_id.starts_with("OMR"));

    let r = rig.client.refund_status(&txn("V2-RF-1-R1")).await.unwrap();
    assert_eq!((r.state, r.code.as_str()), (TxnState::Pending, "CONFIRMED"));
    assert_eq!((r.amount, r.provider_txn_id.as_deref()), (Some(Paise::new(4_000)), Some(refund_id.as_str())));
    let n = &rig.notices("V2-RF-1-R1", 1).await[0];
    assert_eq!((n.kind, n.report.state), (NoticeKind::Refund, TxnState::Pending), "accepted is not settled");

    let (code, message) = rejected(rig.client.refund(&rig.refund_request("V2-RF-1-R2", "V2-RF-1", 6_001)).await);
    assert_eq!(code, "EXCESS_REFUND_AMOUNT");
    assert!(message.contains("6000 paise left"), "{message}");

    rig.sim().settle_refund("V2-RF-1-R1", Outcome::Success).unwrap();
    let notices = rig.notices("V2-RF-1-R1", 2).await;
    assert_eq!((notices[1].report.state, notices[1].report.code.as_str()), (TxnState::Success, "COMPLETED"));
    let r = rig.client.refund_status(&txn("V2-RF-1-R1")).await.unwrap();
    assert_eq!((r.state, r.code.as_str()), (TxnState::Success, "COMPLETED"));
    // the order itself still reads as paid; the refund id is not an order
    assert_eq!(rig.client.status(&txn("V2-RF-1")).await.unwrap().state, TxnState::Success);
    assert_eq!(rig.client.status(&txn("V2-RF-1-R1")).await.unwrap().state, TxnState::NotFound);

    rig.client.refund(&rig.refund_request("V2-RF-1-R3", "V2-RF-1", 6_000)).await.unwrap();
    rig.sim().settle_refund("V2-RF-1-R3", Outcome::Failure).unwrap();
    let notices = rig.notices("V2-RF-1-R3", 2).await;
    assert_eq!(notices[1].report.state, TxnState::Failed);
    let r = rig.client.refund_status(&txn("V2-RF-1-R3")).await.unwrap();
    assert_eq!((r.state, r.code.as_str()), (TxnState::Failed, "PAYMENT_ERROR"));
    // its amount is free again
    rig.client.refund(&rig.refund_request("V2-RF-1-R4", "V2-RF-1", 6_000)).await.unwrap();
}

// ---- webhooks -----------------------------------------------------------------------------

#[tokio::test]
async fn webhooks_with_other_credentials_are_refused() {
    let rig = Rig::start().await;
    rig.paid("V2-WH-1").await;
    let (headers, body) = rig.got.lock().unwrap()[0].clone();
    let stranger = rig.other_client(|mut c| {
        c.webhook = WebhookCredentials::new("username", SecretString::from("not-the-password"));
        c
    });
    assert!(matches!(stranger.verify_notice(&headers, &body).await, Err(CallbackError::BadSignature(_))));
    assert_eq!(rig.client.verify_notice(&HeaderMap::new(), &body).await, Err(CallbackError::MissingSignature));
    // the header does not depend on the body: a forged body verifies (hence: read the status)
    let forged = br#"{"event":"checkout.order.completed","payload":{"merchantOrderId":"V2-FORGED","state":"COMPLETED","amount":1}}"#;
    let n = rig.client.verify_notice(&headers, forged).await.unwrap();
    assert_eq!(n.report.merchant_txn_id.as_str(), "V2-FORGED");
    assert_eq!(rig.client.status(&txn("V2-FORGED")).await.unwrap().state, TxnState::NotFound);
}

// ---- tokens -------------------------------------------------------------------------------

#[tokio::test]
async fn the_token_is_reused_and_refreshed_at_half_life() {
    let rig = Rig::with(|c| c.with_token_lifetime(Duration::from_secs(4)), Duration::from_secs(5)).await;
    for _ in 0..3 {
        rig.client.status(&txn("V2-TK-1")).await.unwrap();
    }
    assert_eq!(rig.sim().token_requests(), 1, "one token for many calls");
    let token = rig.client.token_provider().current().await.unwrap();
    assert_eq!(token.expires_at() - token.issued_at(), 4);
    assert_eq!(rig.sim().token_requests(), 1);
    // just past the half-life (whole epoch seconds)
    while now_epoch_s() < token.refresh_at() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.client.status(&txn("V2-TK-1")).await.unwrap();
    assert_eq!(rig.sim().token_requests(), 2, "refreshed at half-life, before it expired");
    let newer = rig.client.token_provider().current().await.unwrap();
    assert!(!newer.same_as(&token));
    rig.client.status(&txn("V2-TK-1")).await.unwrap();
    assert_eq!(rig.sim().token_requests(), 2);
}

#[tokio::test]
async fn a_401_forces_one_refresh_and_one_retry() {
    let rig = Rig::start().await;
    rig.client.pay(&rig.pay_request("V2-401-1", Instrument::PayPage)).await.unwrap();
    assert_eq!(rig.sim().token_requests(), 1);

    // a valid-looking token refused once
    rig.sim().reject_next_v2_calls(1);
    assert_eq!(rig.client.status(&txn("V2-401-1")).await.unwrap().state, TxnState::Pending);
    assert_eq!(rig.sim().token_requests(), 2);
    assert_eq!(rig.sim().calls(Operation::Status, "V2-401-1"), 2, "the call and its retry");

    // revoked and expired tokens
    rig.sim().revoke_tokens();
    rig.client.refund_status(&txn("V2-401-R")).await.unwrap();
    assert_eq!(rig.sim().token_requests(), 3);
    rig.sim().expire_tokens();
    rig.client.pay(&rig.pay_request("V2-401-2", Instrument::PayPage)).await.unwrap();
    assert_eq!(rig.sim().token_requests(), 4);
    assert_eq!(rig.sim().calls(Operation::Pay, "V2-401-2"), 2);
    assert!(rig.sim().transaction("V2-401-2").is_some(), "the retried pay went through once");

    // refused twice: the answer stands, one refresh only
    rig.sim().reject_next_v2_calls(2);
    let (code, _) = rejected(rig.client.status(&txn("V2-401-1")).await);
    assert_eq!(code, "AUTHORIZATION_FAILED");
    assert_eq!(rig.sim().token_requests(), 5);
    assert_eq!(rig.client.status(&txn("V2-401-1")).await.unwrap().state, TxnState::Pending);
    assert_eq!(rig.sim().token_requests(), 5, "the refreshed token is kept");
}

#[tokio::test]
async fn concurrent_calls_share_one_token_fetch() {
    let rig = Rig::with(|c| c, Duration::from_secs(5)).await;
    // the first caller fetches while the others wait for its token
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let c = rig.client.clone();
            tokio::spawn(async move { c.status(&MerchantTxnId::parse(&format!("V2-CC-{i}")).unwrap()).await })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap().state, TxnState::NotFound);
    }
    assert_eq!(rig.sim().token_requests(), 1);

    // all of them refused with the same (revoked) token: still one refresh
    rig.sim().revoke_tokens();
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let c = rig.client.clone();
            tokio::spawn(async move { c.status(&MerchantTxnId::parse(&format!("V2-CC-{i}")).unwrap()).await })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap().state, TxnState::NotFound);
    }
    assert_eq!(rig.sim().token_requests(), 2);
}

#[tokio::test]
async fn token_endpoint_failures() {
    let rig = Rig::start().await;
    let wrong = rig.other_client(|mut c| {
        c.client_secret = SecretString::from("not-the-secret");
        c
    });
    let (code, message) = rejected(wrong.status(&txn("V2-TE-1")).await);
    assert_eq!(code, "INVALID_CLIENT");
    assert!(!message.contains("not-the-secret"));
    assert!(!format!("{wrong:?}").contains("not-the-secret"));

    rig.sim().set_token_faults(TokenFaults { fail_next_token_requests: 1, ..TokenFaults::default() }).unwrap();
    match rig.client.pay(&rig.pay_request("V2-TE-2", Instrument::PayPage)).await {
        Err(e @ GatewayError::Unreachable { .. }) => assert!(e.retryable()),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(rig.sim().transaction("V2-TE-2").is_none(), "no token, no call");
    rig.client.pay(&rig.pay_request("V2-TE-2", Instrument::PayPage)).await.unwrap();

    // nobody listening at all
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let nowhere = PhonePeV2::new(config(closed, Duration::from_secs(1))).unwrap();
    assert!(matches!(nowhere.status(&txn("V2-TE-3")).await, Err(GatewayError::Unreachable { .. })));
}

// ---- classification -----------------------------------------------------------------------

#[tokio::test]
async fn rate_limits_server_errors_and_garbage_are_classified() {
    let rig = Rig::with(|c| c, Duration::from_millis(500)).await;
    let sim = rig.sim();

    sim.set_faults("V2-429", Faults::force("TOO_MANY_REQUESTS")).unwrap();
    let r = rig.client.pay(&rig.pay_request("V2-429", Instrument::PayPage)).await;
    let e = r.unwrap_err();
    assert_eq!(e.code(), Some("TOO_MANY_REQUESTS"));
    assert!(e.retryable() && !e.outcome_unknown());
    assert_eq!(rig.client.status(&txn("V2-429")).await.unwrap_err().code(), Some("TOO_MANY_REQUESTS"));

    sim.set_faults("V2-500B", Faults::server_error_before()).unwrap();
    assert_unknown(rig.client.pay(&rig.pay_request("V2-500B", Instrument::PayPage)).await);
    assert!(sim.transaction("V2-500B").is_none());
    assert_unknown(rig.client.status(&txn("V2-500B")).await);

    sim.set_faults("V2-500A", Faults::server_error_after().only(&[Operation::Pay])).unwrap();
    assert_unknown(rig.client.pay(&rig.pay_request("V2-500A", Instrument::PayPage)).await);
    assert_eq!(rig.client.status(&txn("V2-500A")).await.unwrap().state, TxnState::Pending, "it did start");

    sim.set_faults("V2-GARBAGE", Faults::garbage()).unwrap();
    assert_unknown(rig.client.pay(&rig.pay_request("V2-GARBAGE", Instrument::PayPage)).await);
    assert_unknown(rig.client.status(&txn("V2-GARBAGE")).await);

    sim.set_faults("V2-HANG", Faults::hang(1_500).only(&[Operation::Pay])).unwrap();
    assert_unknown(rig.client.pay(&rig.pay_request("V2-HANG", Instrument::PayPage)).await);
    eventually("the hung order recorded", || sim.transaction("V2-HANG")).await;

    // a refund whose answer is lost: ask its status before any retry
    rig.paid("V2-RF-500").await;
    sim.set_faults("V2-RF-500-R", Faults::server_error_after().only(&[Operation::Refund])).unwrap();
    assert_unknown(rig.client.refund(&rig.refund_request("V2-RF-500-R", "V2-RF-500", 1_000)).await);
    let r = rig.client.refund_status(&txn("V2-RF-500-R")).await.unwrap();
    assert!(matches!(r.state, TxnState::Pending | TxnState::Success), "{r:?}");
    sim.clear_faults("V2-RF-500-R");
    let (code, message) = rejected(rig.client.refund(&rig.refund_request("V2-RF-500-R", "V2-RF-500", 1_000)).await);
    assert_eq!(code, "BAD_REQUEST");
    assert!(message.contains("duplicate"), "{message}");

    // a forced 4xx with PhonePe's code is a refusal with that code
    sim.set_faults("V2-400", Faults::force("BAD_REQUEST").only(&[Operation::Status])).unwrap();
    assert_eq!(rig.client.status(&txn("V2-400")).await.unwrap_err().code(), Some("BAD_REQUEST"));
}
