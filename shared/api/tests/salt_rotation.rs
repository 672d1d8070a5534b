//! A salt-key rotation as it happens on AWS (`docs/phonepe.md` §6): the keys live in one SSM
//! parameter, read on first use by `LazyPhonePe` over SSM's real wire protocol (a loopback
//! stand-in whose value the test changes), requests go to the simulator, which holds the
//! merchant's old and new keys and records which index signed each request, and callbacks are
//! signed as PhonePe signs them, with the index the test chooses.
//!
//! - The original single-key value: requests signed with index 1, callbacks of index 1 accepted.
//! - The new key added beside the old (`{"salt_keys": {...}}`): a callback naming the new index
//!   makes the keys in memory be read again and is accepted, with no 401 in between; the old
//!   index still verifies; requests still signed with index 1.
//! - `PHONEPE_SALT_INDEX=2` (a deploy: new execution environments): requests signed with index 2;
//!   both indices verify.
//! - The old key removed: once the keys in memory are read again, a callback of index 1 is 401
//!   and index 2 still verifies.
//! - Forged callbacks naming indices nobody has read the store at most once per interval.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use parkpay_api::config::Settings;
use parkpay_api::secrets::{KeyRefresh, LazyPhonePe};
use parkpay_checksum::{SaltIndex, SaltKey, SaltKeys};
use parkpay_gateway::phonepe_v1::{sign_callback, wire};
use parkpay_gateway::{CallbackError, Instrument, MerchantTxnId, Paise, PayRequest, PaymentGateway, TxnState};
use parkpay_simulator::{Operation, RunningSimulator, Simulator, SimulatorConfig};

const MERCHANT: &str = "ROTATIONM1";
const PARAMETER: &str = "/parkpay/phonepe/salt-key";
const OLD: &str = "old-salt-Wq4Zr8Tn2Lp6-never-log";
const NEW: &str = "new-salt-Hx7Vc3Md9Ks1-never-log";

/// An SSM stand-in holding one SecureString whose value the test changes; it counts reads.
#[derive(Clone, Default)]
struct Ssm {
    value: Arc<Mutex<String>>,
    reads: Arc<Mutex<usize>>,
}

impl Ssm {
    fn set(&self, value: &str) {
        *self.value.lock().unwrap() = value.to_owned();
    }

    fn reads(&self) -> usize {
        *self.reads.lock().unwrap()
    }

    async fn serve(&self) -> aws_config::SdkConfig {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/",
            post(move |headers: HeaderMap, body: Bytes| {
                let me = me.clone();
                async move {
                    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
                    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let ok = target == "AmazonSSM.GetParameter"
                        && body["Name"] == PARAMETER
                        && body["WithDecryption"] == true;
                    let json = [("content-type", "application/x-amz-json-1.1")];
                    if !ok {
                        let e = r#"{"__type":"ParameterNotFound","message":"no such parameter"}"#;
                        return (StatusCode::BAD_REQUEST, json, e.to_owned());
                    }
                    *me.reads.lock().unwrap() += 1;
                    let value = me.value.lock().unwrap().clone();
                    let answer = serde_json::json!({
                        "Parameter": {"Name": PARAMETER, "Type": "SecureString", "Value": value, "Version": 1}
                    });
                    (StatusCode::OK, json, answer.to_string())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("ap-south-1"))
            .endpoint_url(format!("http://{addr}"))
            .credentials_provider(aws_sdk_ssm::config::SharedCredentialsProvider::new(
                aws_sdk_ssm::config::Credentials::new("test", "test", None, None, "test"),
            ))
            .build()
    }
}

fn keys(pairs: &[(u32, &str)], active: u32) -> SaltKeys {
    let keys = pairs.iter().map(|(i, k)| (SaltIndex::new(*i), SaltKey::new(*k).unwrap())).collect();
    SaltKeys::new(keys, SaltIndex::new(active)).unwrap()
}

/// PhonePe, holding the merchant's old (1) and new (2) keys.
async fn phonepe() -> RunningSimulator {
    let cfg = SimulatorConfig::for_merchant(MERCHANT, keys(&[(1, OLD), (2, NEW)], 1)).with_fast_timings();
    Simulator::spawn(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// A function's PhonePe client as on AWS: the keys from SSM, signing with `index`.
fn lambda(sim: &RunningSimulator, aws: &aws_config::SdkConfig, index: &str, refresh: KeyRefresh) -> LazyPhonePe {
    let vars = [
        ("PHONEPE_SIMULATION_MODE", "true".to_owned()),
        ("PHONEPE_SIMULATOR_URL", sim.base_url.to_string()),
        ("PHONEPE_MERCHANT_ID", MERCHANT.to_owned()),
        ("PHONEPE_SALT_KEY_SSM_PARAMETER", PARAMETER.to_owned()),
        ("PHONEPE_SALT_INDEX", index.to_owned()),
        ("PHONEPE_CALLBACK_URL", "http://127.0.0.1:9/api/payment/callback/phonepe/".to_owned()),
        ("PARKPAY_REDIRECT_URL", "http://127.0.0.1:9/payment-complete/".to_owned()),
    ];
    let settings = Settings::from_lookup(&|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    LazyPhonePe::new(settings.v1.clone().expect("v1 configured"), aws.clone()).with_key_refresh(refresh)
}

/// Start a payment and return the salt index PhonePe saw it signed with.
async fn pay(gateway: &LazyPhonePe, sim: &RunningSimulator, txn: &str) -> u32 {
    let req = PayRequest {
        merchant_txn_id: MerchantTxnId::parse(txn).unwrap(),
        merchant_user_id: "U1".into(),
        amount: Paise::new(10_000),
        instrument: Instrument::PayPage,
        redirect_url: "http://127.0.0.1:9/payment-complete/".into(),
        mobile_number: None,
    };
    gateway.pay(&req).await.unwrap_or_else(|e| panic!("pay {txn}: {e}"));
    sim.simulator.salt_index_of(Operation::Pay, txn).expect("PhonePe accepted it").get()
}

/// A PhonePe callback for `txn` signed with `key` under `index`.
async fn callback(gateway: &LazyPhonePe, txn: &str, index: u32, key: &str) -> Result<TxnState, CallbackError> {
    let envelope: wire::Envelope<wire::StatusData> = serde_json::from_value(serde_json::json!({
        "success": true, "code": "PAYMENT_SUCCESS", "message": "m",
        "data": {"merchantId": MERCHANT, "merchantTransactionId": txn, "transactionId": "T1",
                 "amount": 10_000, "state": "COMPLETED"}
    }))
    .unwrap();
    let (body, x_verify) = sign_callback(&keys(&[(index, key)], index), &envelope);
    let mut headers = http::HeaderMap::new();
    headers.insert("x-verify", x_verify.to_string().parse().unwrap());
    gateway.verify_notice(&headers, &body).await.map(|n| n.report.state)
}

fn refused(r: Result<TxnState, CallbackError>) -> bool {
    matches!(r, Err(ref e) if e.is_unauthenticated())
}

#[tokio::test]
async fn rotation_through_ssm_refuses_no_callback_and_switches_the_signing_index() {
    let sim = phonepe().await;
    let ssm = Ssm::default();
    let aws = ssm.serve().await;
    let keep = KeyRefresh { min_interval: Duration::ZERO, max_age: Duration::from_secs(3600) };

    // Before: the original form, one key; index 1 signs and verifies.
    ssm.set(OLD);
    let before = lambda(&sim, &aws, "1", keep);
    assert_eq!(pay(&before, &sim, "ROT-A1").await, 1);
    assert_eq!(callback(&before, "ROT-A1", 1, OLD).await.unwrap(), TxnState::Success);
    assert_eq!(ssm.reads(), 1, "the keys are read once, on first use");

    // 1. The new key beside the old. An environment loaded before (keys in memory lack index 2)
    // reads the store again when a callback names index 2, and accepts it.
    ssm.set(&format!(r#"{{"salt_keys": {{"1": "{OLD}", "2": "{NEW}"}}}}"#));
    assert_eq!(callback(&before, "ROT-A1", 2, NEW).await.unwrap(), TxnState::Success);
    assert_eq!(ssm.reads(), 2, "one read for the index it lacked");
    assert_eq!(callback(&before, "ROT-A1", 1, OLD).await.unwrap(), TxnState::Success);
    assert_eq!(pay(&before, &sim, "ROT-A2").await, 1, "still signing with the old index");
    assert_eq!(ssm.reads(), 2, "nothing more to read");
    // A fresh environment holds both from the start.
    let fresh = lambda(&sim, &aws, "1", keep);
    for (i, k) in [(1, OLD), (2, NEW)] {
        assert_eq!(callback(&fresh, "ROT-A2", i, k).await.unwrap(), TxnState::Success, "index {i}");
    }
    // A key that is not the merchant's, under a held index: 401.
    assert!(refused(callback(&fresh, "ROT-A2", 2, OLD).await));

    // 2. The switch: PHONEPE_SALT_INDEX=2 (deployed: new environments). Requests are signed with
    // the new key; callbacks of both indices verify.
    let switched = lambda(&sim, &aws, "2", keep);
    assert_eq!(pay(&switched, &sim, "ROT-B1").await, 2);
    for (i, k) in [(1, OLD), (2, NEW)] {
        assert_eq!(callback(&switched, "ROT-B1", i, k).await.unwrap(), TxnState::Success, "index {i}");
    }

    // 3. The old key removed from the store. Keys in memory are read again once they are old
    // (here: on every use); then index 1 is refused and index 2 still verifies.
    ssm.set(&format!(r#"{{"salt_keys": "2:{NEW}"}}"#));
    let after = lambda(&sim, &aws, "2", KeyRefresh { min_interval: Duration::ZERO, max_age: Duration::ZERO });
    assert_eq!(callback(&after, "ROT-B1", 2, NEW).await.unwrap(), TxnState::Success);
    assert!(refused(callback(&after, "ROT-B1", 1, OLD).await), "the removed key no longer verifies");
    assert_eq!(pay(&after, &sim, "ROT-B2").await, 2);
    // ... also in an environment that held it (its keys aged out).
    tokio::time::sleep(Duration::from_millis(20)).await;
    let aged = lambda(&sim, &aws, "2", KeyRefresh { min_interval: Duration::ZERO, max_age: Duration::from_millis(10) });
    ssm.set(&format!(r#"{{"salt_keys": {{"1": "{OLD}", "2": "{NEW}"}}}}"#));
    assert_eq!(callback(&aged, "ROT-B2", 1, OLD).await.unwrap(), TxnState::Success);
    ssm.set(&format!(r#"{{"salt_keys": {{"2": "{NEW}"}}}}"#));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(refused(callback(&aged, "ROT-B2", 1, OLD).await), "removed once the keys in memory aged out");
    assert_eq!(callback(&aged, "ROT-B2", 2, NEW).await.unwrap(), TxnState::Success);

    // 4. PHONEPE_SALT_INDEX naming a key the store does not hold: nothing is signed (503), and
    // the reason names the index, never a key.
    let wrong = lambda(&sim, &aws, "1", keep);
    let req = PayRequest {
        merchant_txn_id: MerchantTxnId::parse("ROT-C1").unwrap(),
        merchant_user_id: "U1".into(),
        amount: Paise::new(10_000),
        instrument: Instrument::PayPage,
        redirect_url: "http://127.0.0.1:9/r".into(),
        mobile_number: None,
    };
    let e = wrong.pay(&req).await.unwrap_err();
    assert!(!e.outcome_unknown() && e.retryable(), "{e}");
    assert!(sim.simulator.transaction("ROT-C1").is_none());
    let e = parkpay_api::secrets::parse_stored_keys(&format!(r#"{{"salt_keys": "2:{NEW}"}}"#), SaltIndex::new(1))
        .unwrap_err();
    assert!(e.contains("PHONEPE_SALT_INDEX 1") && !e.contains(NEW), "{e}");
}

#[tokio::test]
async fn forged_indices_read_the_store_at_most_once_per_interval() {
    let sim = phonepe().await;
    let ssm = Ssm::default();
    let aws = ssm.serve().await;
    ssm.set(OLD);
    let gateway = lambda(
        &sim,
        &aws,
        "1",
        KeyRefresh { min_interval: Duration::from_millis(500), max_age: Duration::from_secs(3600) },
    );
    assert_eq!(callback(&gateway, "ROT-F1", 1, OLD).await.unwrap(), TxnState::Success);
    assert_eq!(ssm.reads(), 1);
    // Within the interval after a read, an unknown index reads nothing more.
    assert!(refused(callback(&gateway, "ROT-F1", 7, "forged-key").await));
    assert_eq!(ssm.reads(), 1, "the keys were read less than an interval ago");
    tokio::time::sleep(Duration::from_millis(600)).await;
    for index in [7, 8, 9, 7, 123_456_789] {
        assert!(refused(callback(&gateway, "ROT-F1", index, "forged-key").await), "index {index}");
    }
    assert_eq!(ssm.reads(), 2, "one read for all the unknown indices within the interval");
    // Unsigned and malformed headers never read the store.
    let mut headers = http::HeaderMap::new();
    assert!(matches!(gateway.verify_notice(&headers, b"{}").await, Err(CallbackError::MissingSignature)));
    headers.insert("x-verify", "garbage###1".parse().unwrap());
    assert!(refused(gateway.verify_notice(&headers, br#"{"response":"e30="}"#).await.map(|n| n.report.state)));
    assert_eq!(ssm.reads(), 2);
    // The held key still works.
    assert_eq!(callback(&gateway, "ROT-F1", 1, OLD).await.unwrap(), TxnState::Success);
    assert_eq!(ssm.reads(), 2);
}
