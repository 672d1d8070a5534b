//! The simulator accepts PhonePe's own documented requests (`docs/phonepe.md` §5) byte for byte,
//! and the binary starts, or stops with one line naming a bad setting.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use parkpay_simulator::{Simulator, SimulatorConfig};
use serde_json::Value;

use parkpay_checksum::conformance::{
    PAY_BASE64 as PAY_B64, PAY_X_VERIFY as PAY_XV, REFUND_BASE64 as REFUND_B64, REFUND_X_VERIFY as REFUND_XV,
    STATUS_PATH, STATUS_X_VERIFY as STATUS_XV,
};

async fn post(url: String, b64: &str, xv: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-verify", xv)
        .body(serde_json::json!({ "request": b64 }).to_string())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn documented_vectors_are_accepted() {
    let sim = Simulator::spawn(SimulatorConfig::sandbox(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = sim.base_url.as_str().trim_end_matches('/').to_owned();

    let (status, body) = post(format!("{base}/pg/v1/pay"), PAY_B64, PAY_XV).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["code"], "PAYMENT_INITIATED");
    assert_eq!(body["data"]["merchantTransactionId"], "MT7850590068188104");
    assert_eq!(body["data"]["instrumentResponse"]["type"], "PAY_PAGE");
    assert_eq!(body["data"]["instrumentResponse"]["redirectInfo"]["method"], "GET");
    let page = body["data"]["instrumentResponse"]["redirectInfo"]["url"].as_str().unwrap();
    assert!(page.starts_with(&format!("{base}/pay/")), "{page}");

    // the same body again: duplicate
    let (status, body) = post(format!("{base}/pg/v1/pay"), PAY_B64, PAY_XV).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BAD_REQUEST")));
    assert!(body["message"].as_str().unwrap().contains("duplicate"));

    let resp = reqwest::Client::new()
        .get(format!("{base}{STATUS_PATH}"))
        .header("x-verify", STATUS_XV)
        .header("x-merchant-id", "PGTESTPAYUAT")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "PAYMENT_PENDING");
    assert_eq!(body["success"], false);
    assert_eq!(body["data"]["state"], "PENDING");
    assert_eq!(body["data"]["amount"], 10000);

    // the refund vector authenticates; its original payment does not exist here
    let (status, body) = post(format!("{base}/pg/v1/refund"), REFUND_B64, REFUND_XV).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("TRANSACTION_NOT_FOUND")), "{body}");

    // one changed character in the body: the documented checksum no longer matches
    let tampered = PAY_B64.replacen("ewog", "ewoK", 1);
    let (status, body) = post(format!("{base}/pg/v1/pay"), &tampered, PAY_XV).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("AUTHORIZATION_FAILED")));
    sim.shutdown();
}

#[test]
fn binary_refuses_a_bad_setting_with_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_parkpay-simulator"))
        .env("PHONEPE_SALT_INDEX", "one")
        .env("PHONEPE_SALT_KEY", "do-not-print-me")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("PHONEPE_SALT_INDEX"), "{err}");
    assert!(!err.contains("do-not-print-me"));
}

#[test]
fn binary_starts_and_says_where() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parkpay-simulator"))
        .env("PARKPAY_SIM_ADDR", "127.0.0.1:0")
        .env("PHONEPE_SALT_KEY", "do-not-print-me")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    child.kill().ok();
    child.wait().ok();
    read.unwrap();
    assert!(line.contains("listening on http://127.0.0.1:"), "{line}");
    assert!(line.contains("PGTESTPAYUAT"), "{line}");
    assert!(!line.contains("do-not-print-me"));
}
