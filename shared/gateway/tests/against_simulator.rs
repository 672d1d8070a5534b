//! The real `PhonePeV1` client against the simulator over real HTTP on 127.0.0.1, with a
//! callback receiver that verifies every callback with `verify_callback`: every operation,
//! every instrument, the pay page, refunds, and every fault.

mod support;

use std::time::{Duration, Instant};

use parkpay_gateway::phonepe_v1::wire;
use parkpay_gateway::{GatewayError, Instrument, Paise, PaymentGateway, TxnState};
use parkpay_simulator::{
    CallbackFaults, DeliveryResult, Faults, Operation, Outcome, SimState, SimulatorConfig, TxnKind,
};
use serde_json::{Value, json};
use support::*;

fn rejected_code(r: Result<impl std::fmt::Debug, GatewayError>) -> String {
    match r {
        Err(GatewayError::Rejected { code, .. }) => code,
        other => panic!("expected Rejected, got {other:?}"),
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

// ---- the happy paths ----------------------------------------------------------------------

#[tokio::test]
async fn pay_page_success_flow() {
    let rig = Rig::start().await;
    let started = rig.client.pay(&rig.pay_request("PP-1", Instrument::PayPage)).await.unwrap();
    assert_eq!(started.merchant_txn_id.as_str(), "PP-1");
    let page_url = started.redirect_url.expect("PAY_PAGE gives a redirect URL");
    assert!(page_url.starts_with(&format!("{}/pay/", rig.base())), "{page_url}");
    assert_eq!((started.upi_intent_url, started.qr_data), (None, None));

    // initiated, not paid: pending
    let report = rig.client.status(&txn("PP-1")).await.unwrap();
    assert_eq!(report.state, TxnState::Pending);
    assert_eq!(report.code, "PAYMENT_PENDING");
    assert_eq!(report.amount, Some(Paise::new(10_000)));
    assert_eq!(report.merchant_id.as_deref(), Some(MERCHANT));
    let provider_id = report.provider_txn_id.clone().unwrap();
    assert!(provider_id.starts_with('T'));
    assert_eq!(report.utr, None);

    // the page a person sees
    let browser = browser();
    let page = browser.get(&page_url).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    for needle in ["<html lang=\"en\">", MERCHANT, "₹100.00", "PP-1", ">Pay</button>", ">Decline</button>"] {
        assert!(html.contains(needle), "page lacks {needle:?}:\n{html}");
    }
    assert_eq!(html.matches("<form method=\"post\">").count(), 2);

    // a program pays: the callback has arrived by the time the 303 comes back
    let resp = browser.post(&page_url).form(&[("outcome", "success")]).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"].to_str().unwrap(), rig.rx.redirect_url());
    let notices = rig.rx.notices_for("PP-1");
    assert_eq!(notices.len(), 1, "first callback attempt is awaited before the redirect");
    let cb = &notices[0].report;
    assert_eq!((cb.state, cb.code.as_str()), (TxnState::Success, "PAYMENT_SUCCESS"));
    assert_eq!(cb.amount, Some(Paise::new(10_000)));
    assert_eq!(cb.provider_txn_id.as_deref(), Some(provider_id.as_str()));
    let utr = cb.utr.clone().expect("a completed payment has a UTR");
    assert_eq!(utr.len(), 12);

    let report = rig.client.status(&txn("PP-1")).await.unwrap();
    assert_eq!((report.state, report.code.as_str()), (TxnState::Success, "PAYMENT_SUCCESS"));
    assert_eq!(report.utr.as_deref(), Some(utr.as_str()));
    assert_eq!(report.amount, Some(Paise::new(10_000)));

    let t = rig.simulator().transaction("PP-1").unwrap();
    assert_eq!((t.kind, t.state, t.outcome), (TxnKind::Payment, SimState::Completed, Some(Outcome::Success)));
    let log = rig.simulator().callbacks_for("PP-1");
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].attempt, log[0].http_status, log[0].result), (1, Some(200), DeliveryResult::Delivered));
    assert_eq!(log[0].url, rig.rx.callback_url().to_string());

    // paying twice, unknown links, bad outcomes
    let again = browser.post(&page_url).form(&[("outcome", "success")]).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 409);
    assert!(again.text().await.unwrap().contains("cannot be paid or declined again"));
    let view = browser.get(&page_url).send().await.unwrap();
    assert_eq!(view.status().as_u16(), 200);
    assert!(!view.text().await.unwrap().contains("<button"), "a decided payment offers no buttons");
    let unknown = format!("{}/pay/0123456789abcdef0123456789abcdef", rig.base());
    assert_eq!(browser.get(&unknown).send().await.unwrap().status().as_u16(), 404);
    let resp = browser.post(&unknown).form(&[("outcome", "success")]).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(rig.rx.received().len(), 1, "nothing more was sent");

    let fresh = rig.client.pay(&rig.pay_request("PP-2", Instrument::PayPage)).await.unwrap();
    let fresh_url = fresh.redirect_url.unwrap();
    for bad in [&[("outcome", "maybe")][..], &[][..]] {
        let resp = browser.post(&fresh_url).form(bad).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 400);
    }
    assert_eq!(rig.simulator().transaction("PP-2").unwrap().state, SimState::Pending);
}

#[tokio::test]
async fn pay_page_decline_and_failure() {
    let rig = Rig::start().await;
    let browser = browser();
    for (id, outcome, code) in [("DEC-1", "declined", "PAYMENT_DECLINED"), ("ERR-1", "failure", "PAYMENT_ERROR")] {
        let url = rig.client.pay(&rig.pay_request(id, Instrument::PayPage)).await.unwrap().redirect_url.unwrap();
        let resp = browser.post(&url).form(&[("outcome", outcome)]).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 303);
        let notices = rig.rx.notices_for(id);
        assert_eq!(notices.len(), 1);
        assert_eq!((notices[0].report.state, notices[0].report.code.as_str()), (TxnState::Failed, code));
        assert_eq!(notices[0].report.utr, None);
        let report = rig.client.status(&txn(id)).await.unwrap();
        assert_eq!((report.state, report.code.as_str()), (TxnState::Failed, code));
        assert_eq!(rig.simulator().transaction(id).unwrap().state, SimState::Failed);
    }
}

#[tokio::test]
async fn redirect_mode_post_answers_an_auto_submitting_form() {
    let rig = Rig::start().await;
    let mut payload = rig.pay_payload("POST-1");
    payload["redirectMode"] = json!("POST");
    let (status, body) = rig.post_signed(wire::PAY_PATH, &payload).await;
    assert_eq!((status, body["code"].as_str()), (200, Some("PAYMENT_INITIATED")));
    let url = body["data"]["instrumentResponse"]["redirectInfo"]["url"].as_str().unwrap().to_owned();
    let resp = browser().post(&url).form(&[("outcome", "success")]).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let html = resp.text().await.unwrap();
    for needle in [
        format!("<form method=\"post\" action=\"{}\">", rig.rx.redirect_url()),
        "name=\"code\" value=\"PAYMENT_SUCCESS\"".to_owned(),
        "name=\"transactionId\" value=\"POST-1\"".to_owned(),
        "name=\"amount\" value=\"10000\"".to_owned(),
        "document.forms[0].submit()".to_owned(),
    ] {
        assert!(html.contains(&needle), "lacks {needle:?}:\n{html}");
    }
    assert_eq!(rig.rx.notices_for("POST-1").len(), 1);
}

#[tokio::test]
async fn every_instrument() {
    let rig = Rig::start().await;
    let mut req = rig.pay_request("UPI-I", upi_intent());
    req.amount = Paise::new(12_345);
    let s = rig.client.pay(&req).await.unwrap();
    let link = "upi://pay?pa=pgtestpayuat@simulator&pn=PGTESTPAYUAT&am=123.45&tr=UPI-I&cu=INR";
    assert_eq!(s.upi_intent_url.as_deref(), Some(link));
    assert_eq!((s.redirect_url, s.qr_data), (None, None));

    let s = rig.client.pay(&rig.pay_request("UPI-Q", Instrument::UpiQr)).await.unwrap();
    assert_eq!(
        s.qr_data.as_deref(),
        Some("upi://pay?pa=pgtestpayuat@simulator&pn=PGTESTPAYUAT&am=100.00&tr=UPI-Q&cu=INR")
    );
    assert_eq!((s.redirect_url, s.upi_intent_url), (None, None));

    let s =
        rig.client.pay(&rig.pay_request("UPI-C", Instrument::UpiCollect { vpa: "payer@ybl".into() })).await.unwrap();
    assert_eq!((s.redirect_url, s.upi_intent_url, s.qr_data), (None, None, None));
    assert_eq!(rig.simulator().transaction("UPI-C").unwrap().vpa.as_deref(), Some("payer@ybl"));

    // all pending until decided
    for id in ["UPI-I", "UPI-Q", "UPI-C"] {
        assert_eq!(rig.client.status(&txn(id)).await.unwrap().state, TxnState::Pending);
    }
    // decided three ways: the library, the control API, and the pay page a person could open
    rig.simulator().complete("UPI-I", Outcome::Success).await.unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/_sim/payments/UPI-Q/complete", rig.base()))
        .json(&json!({"outcome": "success"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let page = rig.simulator().transaction("UPI-C").unwrap().pay_page_url.unwrap();
    assert_eq!(browser().post(&page).form(&[("outcome", "success")]).send().await.unwrap().status().as_u16(), 303);

    for (id, amount) in [("UPI-I", 12_345), ("UPI-Q", 10_000), ("UPI-C", 10_000)] {
        let notices = rig.rx.notices_for(id);
        assert_eq!(notices.len(), 1, "{id}");
        assert_eq!(notices[0].report.state, TxnState::Success);
        assert_eq!(notices[0].report.amount, Some(Paise::new(amount)));
        let report = rig.client.status(&txn(id)).await.unwrap();
        assert_eq!((report.state, report.amount), (TxnState::Success, Some(Paise::new(amount))));
    }
}

#[tokio::test]
async fn status_of_an_unknown_id_is_not_found() {
    let rig = Rig::start().await;
    let report = rig.client.status(&txn("NEVER-1")).await.unwrap();
    assert_eq!((report.state, report.code.as_str()), (TxnState::NotFound, "TRANSACTION_NOT_FOUND"));
    assert_eq!(report.amount, None);
}

// ---- authentication and validation --------------------------------------------------------

#[tokio::test]
async fn wrong_credentials_are_refused() {
    let rig = Rig::start().await;
    let base = rig.sim.base_url.clone();
    let wrong_salt = parkpay_checksum::SaltKeys::single(
        parkpay_checksum::SaltIndex::new(1),
        parkpay_checksum::SaltKey::new("not-the-salt").unwrap(),
    );
    let c = client_for(base.clone(), &rig.rx, MERCHANT, wrong_salt, Duration::from_secs(5));
    assert_eq!(rejected_code(c.pay(&rig.pay_request("AUTH-1", Instrument::PayPage)).await), "AUTHORIZATION_FAILED");
    assert_eq!(rejected_code(c.status(&txn("AUTH-1")).await), "AUTHORIZATION_FAILED");
    assert_eq!(rejected_code(c.refund(&rig.refund_request("AUTH-R", "AUTH-1", 100)).await), "AUTHORIZATION_FAILED");

    let index_2 = parkpay_checksum::SaltKeys::single(
        parkpay_checksum::SaltIndex::new(2),
        parkpay_checksum::SaltKey::new(parkpay_simulator::SANDBOX_SALT_KEY).unwrap(),
    );
    let c = client_for(base.clone(), &rig.rx, MERCHANT, index_2, Duration::from_secs(5));
    assert_eq!(rejected_code(c.pay(&rig.pay_request("KEY-1", Instrument::PayPage)).await), "KEY_NOT_CONFIGURED");
    assert_eq!(rejected_code(c.status(&txn("KEY-1")).await), "KEY_NOT_CONFIGURED");

    let c = client_for(base, &rig.rx, "OTHERMERCHANT", keys(), Duration::from_secs(5));
    assert_eq!(rejected_code(c.pay(&rig.pay_request("KEY-2", Instrument::PayPage)).await), "KEY_NOT_CONFIGURED");
    assert_eq!(rejected_code(c.status(&txn("KEY-2")).await), "KEY_NOT_CONFIGURED");

    assert!(rig.simulator().transactions().is_empty(), "nothing was recorded");
}

#[tokio::test]
async fn hand_built_requests_with_bad_checksums_get_401() {
    let rig = Rig::start().await;
    let payload = rig.pay_payload("RAW-1");
    let (body, _) = parkpay_gateway::phonepe_v1::sign_request(&keys(), wire::PAY_PATH, &payload);
    let (_, other_xv) = parkpay_gateway::phonepe_v1::sign_request(&keys(), wire::PAY_PATH, &rig.pay_payload("RAW-2"));
    let (_, refund_path_xv) = parkpay_gateway::phonepe_v1::sign_request(&keys(), wire::REFUND_PATH, &payload);

    for (xv, why) in [
        (Some(other_xv.to_string()), "checksum of another body"),
        (Some(refund_path_xv.to_string()), "checksum for another path"),
        (None, "no X-VERIFY"),
        (Some("not-a-checksum".to_owned()), "malformed X-VERIFY"),
        (Some(format!("{} ###1", &other_xv.to_string()[..64])), "space before ###"),
    ] {
        let (status, answer) = rig.post_raw(wire::PAY_PATH, body.clone(), xv).await;
        assert_eq!(status, 401, "{why}: {answer}");
        assert_eq!(answer["code"], "AUTHORIZATION_FAILED", "{why}");
        assert_eq!(answer["success"], false);
        assert!(answer.get("data").is_none());
    }

    // status: checksum fine but X-MERCHANT-ID missing or different
    let path = wire::status_path(MERCHANT, "RAW-1");
    let xv = keys().sign(parkpay_checksum::Message::Path { path: &path }).to_string();
    for merchant_header in [None, Some("SOMEONEELSE")] {
        let mut req = reqwest::Client::new().get(format!("{}{path}", rig.base())).header("x-verify", &xv);
        if let Some(m) = merchant_header {
            req = req.header("x-merchant-id", m);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        assert_eq!(resp.json::<Value>().await.unwrap()["code"], "AUTHORIZATION_FAILED");
    }
    assert!(rig.simulator().transactions().is_empty());
}

#[tokio::test]
async fn malformed_requests_are_bad_request() {
    let rig = Rig::start().await;
    let spoil = |f: &dyn Fn(&mut Value)| {
        let mut p = rig.pay_payload("BAD-1");
        f(&mut p);
        p
    };
    let cases: Vec<(Value, &str)> = vec![
        (spoil(&|p| p["amount"] = json!("10000")), "not a string"),
        (spoil(&|p| p["amount"] = json!(100.5)), "whole number"),
        (spoil(&|p| p["amount"] = json!(-100)), "negative"),
        (spoil(&|p| p["amount"] = json!(99)), "at least 100"),
        (spoil(&|p| p["merchantTransactionId"] = json!("x".repeat(35))), "merchantTransactionId"),
        (spoil(&|p| p["merchantTransactionId"] = json!("a.b")), "merchantTransactionId"),
        (spoil(&|p| p["paymentInstrument"] = json!({"type": "CARD"})), "not supported"),
        (spoil(&|p| p["paymentInstrument"] = json!({"type": "UPI_COLLECT"})), "vpa"),
        (spoil(&|p| p["callbackUrl"] = json!("not a url")), "callbackUrl"),
        (spoil(&|p| p["redirectMode"] = json!("GET")), "redirectMode"),
        (spoil(&|p| drop(p.as_object_mut().unwrap().remove("callbackUrl"))), "callbackUrl is required"),
        (spoil(&|p| drop(p.as_object_mut().unwrap().remove("merchantUserId"))), "merchantUserId"),
    ];
    for (payload, why) in cases {
        let (status, answer) = rig.post_signed(wire::PAY_PATH, &payload).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some("BAD_REQUEST")), "{why}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(why), "{why:?} not in {message:?}");
    }

    // envelopes that are not {"request": base64-of-JSON}
    let not_json_payload = "aGVsbG8="; // "hello"
    let xv = keys().sign(parkpay_checksum::Message::Body { base64: not_json_payload, path: wire::PAY_PATH });
    for (body, xv) in [
        (b"not json".to_vec(), Some(xv.to_string())),
        (br#"{"request": 5}"#.to_vec(), Some(xv.to_string())),
        (br#"{}"#.to_vec(), Some(xv.to_string())),
        (json!({ "request": not_json_payload }).to_string().into_bytes(), Some(xv.to_string())),
    ] {
        let (status, answer) = rig.post_raw(wire::PAY_PATH, body, xv).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some("BAD_REQUEST")), "{answer}");
    }
    assert!(rig.simulator().transactions().is_empty(), "nothing was recorded");
}

#[tokio::test]
async fn a_reused_id_is_a_duplicate() {
    let rig = Rig::start().await;
    rig.client.pay(&rig.pay_request("DUP-1", Instrument::PayPage)).await.unwrap();
    let (code, message) = rejected(rig.client.pay(&rig.pay_request("DUP-1", upi_intent())).await);
    assert_eq!(code, "BAD_REQUEST");
    assert!(message.contains("duplicate"), "{message}");
    assert_eq!(rig.simulator().transaction("DUP-1").unwrap().instrument.as_deref(), Some("PAY_PAGE"));
}

// ---- refunds ------------------------------------------------------------------------------

#[tokio::test]
async fn partial_refund_then_the_rest_then_nothing_left() {
    let rig = Rig::start().await;
    rig.paid("RF-1").await;

    let started = rig.client.refund(&rig.refund_request("RF-1-R1", "RF-1", 4_000)).await.unwrap();
    assert_eq!(started.refund_txn_id.as_str(), "RF-1-R1");
    assert_eq!((started.state, started.code.as_str()), (TxnState::Pending, "PAYMENT_PENDING"));
    assert_eq!(started.amount, Some(Paise::new(4_000)));
    assert!(started.provider_txn_id.is_some());

    // more than what is left while the first is still pending
    let (code, message) = rejected(rig.client.refund(&rig.refund_request("RF-1-R2", "RF-1", 6_001)).await);
    assert_eq!(code, "EXCESS_REFUND_AMOUNT");
    assert!(message.contains("6000 paise left"), "{message}");

    let notices = rig.rx.wait_for("RF-1-R1", 1).await;
    assert_eq!((notices[0].report.state, notices[0].report.amount), (TxnState::Success, Some(Paise::new(4_000))));
    let report = rig.client.status(&txn("RF-1-R1")).await.unwrap();
    assert_eq!((report.state, report.code.as_str()), (TxnState::Success, "PAYMENT_SUCCESS"));
    assert_eq!(report.amount, Some(Paise::new(4_000)));

    let rest = rig.client.refund(&rig.refund_request("RF-1-R3", "RF-1", 6_000)).await.unwrap();
    assert_eq!(rest.state, TxnState::Pending);
    // the refund's status through the status API, pending then settled
    assert_eq!(rig.client.status(&txn("RF-1-R3")).await.unwrap().state, TxnState::Pending);
    rig.rx.wait_for("RF-1-R3", 1).await;
    assert_eq!(rig.client.status(&txn("RF-1-R3")).await.unwrap().state, TxnState::Success);

    let payment = rig.simulator().transaction("RF-1").unwrap();
    assert_eq!(payment.refunded_amount, 10_000);
    assert_eq!(payment.refund_ids, ["RF-1-R1", "RF-1-R3"]);
    let refund = rig.simulator().transaction("RF-1-R3").unwrap();
    assert_eq!((refund.kind, refund.original_transaction_id.as_deref()), (TxnKind::Refund, Some("RF-1")));
    assert_eq!(
        rejected_code(rig.client.refund(&rig.refund_request("RF-1-R4", "RF-1", 100)).await),
        "EXCESS_REFUND_AMOUNT"
    );
    // the payment itself still reads as paid
    assert_eq!(rig.client.status(&txn("RF-1")).await.unwrap().state, TxnState::Success);
}

#[tokio::test]
async fn refund_rules() {
    let rig = Rig::start().await;
    assert_eq!(
        rejected_code(rig.client.refund(&rig.refund_request("RR-R0", "NO-SUCH-PAYMENT", 100)).await),
        "TRANSACTION_NOT_FOUND"
    );
    rig.client.pay(&rig.pay_request("RR-PENDING", Instrument::PayPage)).await.unwrap();
    let (code, message) = rejected(rig.client.refund(&rig.refund_request("RR-R1", "RR-PENDING", 100)).await);
    assert_eq!(code, "BAD_REQUEST");
    assert!(message.contains("COMPLETED"), "{message}");

    rig.paid("RR-1").await;
    rig.client.refund(&rig.refund_request("RR-1-R1", "RR-1", 1_000)).await.unwrap();
    for reused in ["RR-1-R1", "RR-1", "RR-PENDING"] {
        let (code, message) = rejected(rig.client.refund(&rig.refund_request(reused, "RR-1", 1_000)).await);
        assert_eq!(code, "BAD_REQUEST", "{reused}");
        assert!(message.contains("duplicate"), "{message}");
    }
    // a refund is not refundable
    rig.rx.wait_for("RR-1-R1", 1).await;
    assert_eq!(
        rejected_code(rig.client.refund(&rig.refund_request("RR-R9", "RR-1-R1", 100)).await),
        "TRANSACTION_NOT_FOUND"
    );
    assert_eq!(rig.simulator().transaction("RR-1").unwrap().refunded_amount, 1_000);
}

#[tokio::test]
async fn a_failed_refund_frees_its_amount() {
    let rig = Rig::start().await;
    rig.paid("RFF-1").await;
    rig.simulator().set_faults("RFF-1-R1", Faults::refund_fails()).unwrap();
    let started = rig.client.refund(&rig.refund_request("RFF-1-R1", "RFF-1", 10_000)).await.unwrap();
    assert_eq!(started.state, TxnState::Pending);
    let notices = rig.rx.wait_for("RFF-1-R1", 1).await;
    assert_eq!((notices[0].report.state, notices[0].report.code.as_str()), (TxnState::Failed, "PAYMENT_ERROR"));
    let report = rig.client.status(&txn("RFF-1-R1")).await.unwrap();
    assert_eq!((report.state, report.code.as_str()), (TxnState::Failed, "PAYMENT_ERROR"));
    assert_eq!(rig.simulator().transaction("RFF-1").unwrap().refunded_amount, 0);
    // the whole amount can be refunded again
    rig.client.refund(&rig.refund_request("RFF-1-R2", "RFF-1", 10_000)).await.unwrap();
    assert_eq!(rig.rx.wait_for("RFF-1-R2", 1).await[0].report.state, TxnState::Success);
}

#[tokio::test]
async fn a_stuck_refund_never_settles() {
    let rig = Rig::start().await;
    rig.paid("RST-1").await;
    rig.simulator().set_faults("RST-1-R1", Faults::stuck_pending()).unwrap();
    rig.client.refund(&rig.refund_request("RST-1-R1", "RST-1", 2_500)).await.unwrap();
    // well past the 50 ms settle delay
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = rig.client.status(&txn("RST-1-R1")).await.unwrap();
    assert_eq!((report.state, report.code.as_str()), (TxnState::Pending, "PAYMENT_PENDING"));
    assert!(rig.rx.notices_for("RST-1-R1").is_empty());
    // still counted against the payment while pending
    assert_eq!(rig.simulator().transaction("RST-1").unwrap().refunded_amount, 2_500);
    assert_eq!(
        rejected_code(rig.client.refund(&rig.refund_request("RST-1-R2", "RST-1", 7_501)).await),
        "EXCESS_REFUND_AMOUNT"
    );
}

#[tokio::test]
async fn refund_after_the_reversal_window() {
    let rig =
        Rig::with(|c| SimulatorConfig { reversal_window: Duration::from_millis(1), ..c }, Duration::from_secs(5)).await;
    rig.paid("RW-1").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        rejected_code(rig.client.refund(&rig.refund_request("RW-1-R1", "RW-1", 100)).await),
        "REVERSAL_WINDOW_EXCEEDED"
    );
    assert!(rig.simulator().transaction("RW-1-R1").is_none());
}

// ---- answer faults ------------------------------------------------------------------------

#[tokio::test]
async fn latency_works_but_is_slower() {
    let rig = Rig::start().await;
    rig.simulator().set_faults("LAT-1", Faults { latency_jitter_ms: 50, ..Faults::latency(300) }).unwrap();
    let t0 = Instant::now();
    let started = rig.client.pay(&rig.pay_request("LAT-1", Instrument::PayPage)).await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert!(started.redirect_url.is_some());
    let t0 = Instant::now();
    assert_eq!(rig.client.status(&txn("LAT-1")).await.unwrap().state, TxnState::Pending);
    assert!(t0.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn server_error_before_records_nothing() {
    let rig = Rig::start().await;
    rig.simulator().set_faults("E5B-1", Faults::server_error_before().only(&[Operation::Pay])).unwrap();
    assert_unknown(rig.client.pay(&rig.pay_request("E5B-1", Instrument::PayPage)).await);
    assert!(rig.simulator().transaction("E5B-1").is_none());
    assert_eq!(rig.client.status(&txn("E5B-1")).await.unwrap().state, TxnState::NotFound);

    // on a refund: not started
    rig.paid("E5B-2").await;
    rig.simulator().set_faults("E5B-2-R1", Faults::server_error_before()).unwrap();
    assert_unknown(rig.client.refund(&rig.refund_request("E5B-2-R1", "E5B-2", 100)).await);
    assert!(rig.simulator().transaction("E5B-2-R1").is_none());
}

#[tokio::test]
async fn server_error_after_records_the_work() {
    let rig = Rig::start().await;
    rig.simulator().set_faults("E5A-1", Faults::server_error_after().only(&[Operation::Pay])).unwrap();
    assert_unknown(rig.client.pay(&rig.pay_request("E5A-1", Instrument::PayPage)).await);
    let t = rig.simulator().transaction("E5A-1").expect("the payment was recorded before the 500");
    assert_eq!(t.state, SimState::Pending);
    assert_eq!(rig.client.status(&txn("E5A-1")).await.unwrap().state, TxnState::Pending);

    // on a refund: it started, and it settles
    rig.paid("E5A-2").await;
    rig.simulator().set_faults("E5A-2-R1", Faults::server_error_after().only(&[Operation::Refund])).unwrap();
    assert_unknown(rig.client.refund(&rig.refund_request("E5A-2-R1", "E5A-2", 500)).await);
    assert_eq!(rig.client.status(&txn("E5A-2-R1")).await.unwrap().state, TxnState::Pending);
    rig.rx.wait_for("E5A-2-R1", 1).await;
    assert_eq!(rig.client.status(&txn("E5A-2-R1")).await.unwrap().state, TxnState::Success);
    // status itself answering 500: not final, keep polling
    rig.simulator().set_faults("E5A-2", Faults::server_error_before()).unwrap();
    let report = rig.client.status(&txn("E5A-2")).await.unwrap();
    assert_eq!((report.state, report.code.as_str()), (TxnState::Pending, "INTERNAL_SERVER_ERROR"));
}

#[tokio::test]
async fn hang_beyond_the_read_timeout_is_outcome_unknown() {
    let rig = Rig::with(|c| c, Duration::from_millis(300)).await;
    rig.simulator().set_faults("HANG-1", Faults::hang(1_500)).unwrap();
    assert_unknown(rig.client.pay(&rig.pay_request("HANG-1", Instrument::PayPage)).await);
    assert_eq!(rig.simulator().transaction("HANG-1").unwrap().state, SimState::Pending, "work done before hanging");
    assert_unknown(rig.client.status(&txn("HANG-1")).await);
    rig.simulator().clear_faults("HANG-1");
    assert_eq!(rig.client.status(&txn("HANG-1")).await.unwrap().state, TxnState::Pending);
}

#[tokio::test]
async fn garbage_answers_are_outcome_unknown() {
    let rig = Rig::start().await;
    rig.simulator().set_faults("GARB-1", Faults::garbage()).unwrap();
    assert_unknown(rig.client.pay(&rig.pay_request("GARB-1", Instrument::PayPage)).await);
    assert!(rig.simulator().transaction("GARB-1").is_some());
    assert_unknown(rig.client.status(&txn("GARB-1")).await);

    let raw = reqwest::Client::new().post(format!("{}{}", rig.base(), wire::PAY_PATH)).body("{}").send().await.unwrap();
    // the global faults do not apply (no global set): a real BAD_REQUEST
    assert_eq!(raw.status().as_u16(), 400);
    rig.simulator().set_global_faults(Faults::garbage()).unwrap();
    let raw = reqwest::Client::new().post(format!("{}{}", rig.base(), wire::PAY_PATH)).body("{}").send().await.unwrap();
    assert_eq!(raw.status().as_u16(), 200);
    assert!(serde_json::from_str::<Value>(&raw.text().await.unwrap()).is_err(), "garbage is not JSON");
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let rig = Rig::start().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let c = client_for(dead, &rig.rx, MERCHANT, keys(), Duration::from_secs(2));
    for r in [
        c.pay(&rig.pay_request("DEAD-1", Instrument::PayPage)).await.map(|_| ()),
        c.status(&txn("DEAD-1")).await.map(|_| ()),
        c.refund(&rig.refund_request("DEAD-R", "DEAD-1", 100)).await.map(|_| ()),
    ] {
        match r {
            Err(e @ GatewayError::Unreachable { .. }) => assert!(!e.outcome_unknown() && e.retryable()),
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn global_faults_and_per_id_overrides() {
    let rig = Rig::start().await;
    rig.simulator().set_global_faults(Faults::force("TOO_MANY_REQUESTS")).unwrap();
    rig.simulator().set_faults("OVR-2", Faults::default()).unwrap();
    let (code, _) = rejected(rig.client.pay(&rig.pay_request("OVR-1", Instrument::PayPage)).await);
    assert_eq!(code, "TOO_MANY_REQUESTS");
    let e = rig.client.pay(&rig.pay_request("OVR-1", Instrument::PayPage)).await.unwrap_err();
    assert!(e.retryable(), "rate limiting may be retried");
    rig.client
        .pay(&rig.pay_request("OVR-2", Instrument::PayPage))
        .await
        .expect("the per-id {} replaces the global fault");
    rig.simulator().clear_global_faults();
    rig.client.pay(&rig.pay_request("OVR-1", Instrument::PayPage)).await.unwrap();
}

// ---- outcome and callback faults ----------------------------------------------------------

#[tokio::test]
async fn dropped_callbacks_never_arrive_but_status_says_success() {
    let rig = Rig::start().await;
    rig.simulator().set_faults("DROP-1", Faults::callbacks_dropped()).unwrap();
    rig.client.pay(&rig.pay_request("DROP-1", Instrument::PayPage)).await.unwrap();
    rig.simulator().complete("DROP-1", Outcome::Success).await.unwrap();
    let log = eventually("the drop to be logged", || {
        let log = rig.simulator().callbacks_for("DROP-1");
        (!log.is_empty()).then_some(log)
    })
    .await;
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].result, log[0].attempt, log[0].code.as_str()), (DeliveryResult::Dropped, 0, "PAYMENT_SUCCESS"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rig.rx.received().is_empty());
    let report = rig.client.status(&txn("DROP-1")).await.unwrap();
    assert_eq!((report.state, report.code.as_str()), (TxnState::Success, "PAYMENT_SUCCESS"));
}

#[tokio::test]
async fn duplicated_callbacks_all_arrive_and_verify() {
    let rig = Rig::start().await;
    rig.simulator().set_faults("DUPCB-1", Faults::callbacks_duplicated(2)).unwrap();
    rig.client.pay(&rig.pay_request("DUPCB-1", Instrument::PayPage)).await.unwrap();
    rig.simulator().complete("DUPCB-1", Outcome::Success).await.unwrap();
    let notices = rig.rx.wait_for("DUPCB-1", 3).await;
    assert_eq!(notices.len(), 3);
    assert!(notices.iter().all(|n| n.report.state == TxnState::Success));
    let got = rig.rx.received();
    assert!(got.iter().all(|r| r.body == got[0].body && r.x_verify == got[0].x_verify), "identical copies");
    let copies: Vec<u32> = rig.simulator().callbacks_for("DUPCB-1").iter().map(|c| c.copy).collect();
    assert_eq!(copies, [0, 1, 2]);
}

#[tokio::test]
async fn delayed_callbacks_arrive_after_the_redirect() {
    let rig = Rig::start().await;
    rig.simulator().set_faults("DLY-1", Faults::callbacks_delayed(1_000)).unwrap();
    let url = rig.client.pay(&rig.pay_request("DLY-1", Instrument::PayPage)).await.unwrap().redirect_url.unwrap();
    let resp = browser().post(&url).form(&[("outcome", "success")]).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert!(rig.rx.received().is_empty(), "the browser is back before the delayed callback");
    assert_eq!(rig.client.status(&txn("DLY-1")).await.unwrap().state, TxnState::Success);
    let notices = rig.rx.wait_for("DLY-1", 1).await;
    assert_eq!(notices[0].report.state, TxnState::Success);
}

#[tokio::test]
async fn late_success_after_a_decline() {
    let rig = Rig::start().await;
    rig.simulator().set_faults("LATE-1", Faults::late_success(200)).unwrap();
    rig.client.pay(&rig.pay_request("LATE-1", Instrument::PayPage)).await.unwrap();
    let t = rig.simulator().complete("LATE-1", Outcome::Declined).await.unwrap();
    assert_eq!((t.state, t.code.as_str()), (SimState::Failed, "PAYMENT_DECLINED"));
    // complete() awaited the decline's first delivery; the success comes 200 ms later
    let first = rig.rx.notices_for("LATE-1");
    assert!(!first.is_empty());
    assert_eq!((first[0].report.state, first[0].report.code.as_str()), (TxnState::Failed, "PAYMENT_DECLINED"));

    let both = rig.rx.wait_for("LATE-1", 2).await;
    assert_eq!((both[1].report.state, both[1].report.code.as_str()), (TxnState::Success, "PAYMENT_SUCCESS"));
    let report = rig.client.status(&txn("LATE-1")).await.unwrap();
    assert_eq!((report.state, report.code.as_str()), (TxnState::Success, "PAYMENT_SUCCESS"));
    assert!(report.utr.is_some());
}

#[tokio::test]
async fn out_of_order_delivers_the_stale_failure_last() {
    let rig = Rig::start().await;
    let faults = Faults {
        late_success_ms: Some(100),
        callback: CallbackFaults { out_of_order: true, ..CallbackFaults::default() },
        ..Faults::default()
    };
    rig.simulator().set_faults("OOO-1", faults).unwrap();
    rig.client.pay(&rig.pay_request("OOO-1", Instrument::PayPage)).await.unwrap();
    let t = rig.simulator().complete("OOO-1", Outcome::Declined).await.unwrap();
    assert_eq!((t.state, t.code.as_str()), (SimState::Failed, "PAYMENT_DECLINED"));
    let got = rig.rx.wait_for("OOO-1", 2).await;
    assert_eq!(
        got.iter().map(|n| n.report.code.as_str()).collect::<Vec<_>>(),
        ["PAYMENT_SUCCESS", "PAYMENT_DECLINED"],
        "success first, the stale failure after it"
    );
    assert_eq!(rig.client.status(&txn("OOO-1")).await.unwrap().state, TxnState::Success);
}

#[tokio::test]
async fn callbacks_are_retried_until_accepted() {
    let rig = Rig::start().await;
    rig.rx.fail_next(2);
    let url = rig.client.pay(&rig.pay_request("RETRY-1", Instrument::PayPage)).await.unwrap().redirect_url.unwrap();
    let resp = browser().post(&url).form(&[("outcome", "success")]).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303, "the page answers after the first (failed) attempt");
    let got = eventually("three attempts", || {
        let got = rig.rx.received();
        (got.len() >= 3).then_some(got)
    })
    .await;
    assert_eq!(got.iter().map(|r| r.answered).collect::<Vec<_>>(), [500, 500, 200]);
    assert!(got.iter().all(|r| r.notice.is_ok()));
    let log = eventually("the log of three attempts", || {
        let log = rig.simulator().callbacks_for("RETRY-1");
        (log.len() >= 3).then_some(log)
    })
    .await;
    let summary: Vec<_> = log.iter().map(|c| (c.attempt, c.http_status, c.result)).collect();
    assert_eq!(
        summary,
        [
            (1, Some(500), DeliveryResult::HttpError),
            (2, Some(500), DeliveryResult::HttpError),
            (3, Some(200), DeliveryResult::Delivered)
        ]
    );
}

#[tokio::test]
async fn an_unreachable_receiver_gets_every_retry_then_is_given_up() {
    let rig = Rig::start().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut payload = rig.pay_payload("GONE-1");
    payload["callbackUrl"] = json!(format!("http://127.0.0.1:{port}/cb"));
    assert_eq!(rig.post_signed(wire::PAY_PATH, &payload).await.0, 200);
    rig.simulator().complete("GONE-1", Outcome::Success).await.unwrap();
    let log = eventually("1 + 3 attempts", || {
        let log = rig.simulator().callbacks_for("GONE-1");
        (log.len() >= 4).then_some(log)
    })
    .await;
    assert_eq!(log.iter().map(|c| c.attempt).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(log.iter().all(|c| c.result == DeliveryResult::Failed && c.http_status.is_none() && c.error.is_some()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.simulator().callbacks_for("GONE-1").len(), 4, "no more than the configured retries");
    assert_eq!(rig.client.status(&txn("GONE-1")).await.unwrap().state, TxnState::Success);
}

#[tokio::test]
async fn stuck_in_pending() {
    let rig = Rig::start().await;
    rig.simulator().set_faults("STUCK-1", Faults::stuck_pending()).unwrap();
    let url = rig.client.pay(&rig.pay_request("STUCK-1", Instrument::PayPage)).await.unwrap().redirect_url.unwrap();
    let resp = browser().post(&url).form(&[("outcome", "success")]).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303, "the payer is sent back as usual");
    let t = rig.simulator().transaction("STUCK-1").unwrap();
    assert_eq!((t.state, t.outcome), (SimState::Pending, Some(Outcome::Success)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let report = rig.client.status(&txn("STUCK-1")).await.unwrap();
    assert_eq!((report.state, report.code.as_str()), (TxnState::Pending, "PAYMENT_PENDING"));
    assert!(rig.rx.received().is_empty());
    assert!(rig.simulator().callbacks_for("STUCK-1").is_empty());
    assert!(matches!(
        rig.simulator().complete("STUCK-1", Outcome::Success).await,
        Err(parkpay_simulator::CompleteError::AlreadyDecided { .. })
    ));
    assert_eq!(browser().post(&url).form(&[("outcome", "success")]).send().await.unwrap().status().as_u16(), 409);
}

// ---- the control API over HTTP ------------------------------------------------------------

#[tokio::test]
async fn control_api_over_http() {
    let rig = Rig::start().await;
    let http = reqwest::Client::new();
    let base = rig.base();
    let get = |path: &str| http.get(format!("{base}{path}")).send();

    let health: Value = get("/_sim/health").await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");

    let r = http
        .put(format!("{base}/_sim/faults/global"))
        .json(&json!({"operations": ["status"], "force": {"code": "TOO_MANY_REQUESTS"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http.put(format!("{base}/_sim/faults/CTL-1")).json(&json!({"latency_ms": 1})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let table: Value = get("/_sim/faults").await.unwrap().json().await.unwrap();
    assert_eq!(table["global"]["force"]["code"], "TOO_MANY_REQUESTS");
    assert_eq!(table["transactions"]["CTL-1"]["latency_ms"], 1);
    assert_eq!(rig.simulator().faults().global.operations, [Operation::Status]);
    assert_eq!(rejected_code(rig.client.status(&txn("CTL-2")).await), "TOO_MANY_REQUESTS");

    // refused fault bodies
    let r = http.put(format!("{base}/_sim/faults/CTL-1")).json(&json!({"latency": 1})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "BAD_FAULTS");
    let r = http.put(format!("{base}/_sim/faults/CTL-1")).json(&json!({"hang_ms": 999_999_999})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);

    assert_eq!(http.delete(format!("{base}/_sim/faults/CTL-1")).send().await.unwrap().status().as_u16(), 204);
    assert_eq!(http.delete(format!("{base}/_sim/faults")).send().await.unwrap().status().as_u16(), 204);
    assert_eq!(rig.simulator().faults(), Default::default());

    rig.client.pay(&rig.pay_request("CTL-1", Instrument::UpiQr)).await.unwrap();
    let t: Value = get("/_sim/payments/CTL-1").await.unwrap().json().await.unwrap();
    assert_eq!(
        (t["state"].as_str(), t["kind"].as_str(), t["amount"].as_u64()),
        (Some("PENDING"), Some("payment"), Some(10_000))
    );
    let list: Value = get("/_sim/payments").await.unwrap().json().await.unwrap();
    assert_eq!(list["transactions"].as_array().unwrap().len(), 1);
    assert_eq!(get("/_sim/payments/NOPE").await.unwrap().status().as_u16(), 404);

    let complete = |id: &str, body: Value| http.post(format!("{base}/_sim/payments/{id}/complete")).json(&body).send();
    assert_eq!(complete("CTL-1", json!({"outcome": "sometimes"})).await.unwrap().status().as_u16(), 400);
    assert_eq!(complete("NOPE", json!({"outcome": "success"})).await.unwrap().status().as_u16(), 404);
    let r = complete("CTL-1", json!({"outcome": "declined"})).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!((t["state"].as_str(), t["code"].as_str()), (Some("FAILED"), Some("PAYMENT_DECLINED")));
    assert_eq!(complete("CTL-1", json!({"outcome": "success"})).await.unwrap().status().as_u16(), 409);

    let log: Value = get("/_sim/callbacks?txn=CTL-1").await.unwrap().json().await.unwrap();
    let log = log["callbacks"].as_array().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0]["attempt"].as_u64(), log[0]["http_status"].as_u64()), (Some(1), Some(200)));
    assert_eq!(log[0]["result"], "delivered");
    assert_eq!(log[0]["url"], rig.rx.callback_url().to_string());
    assert_eq!(rig.rx.notices_for("CTL-1")[0].report.state, TxnState::Failed);

    assert_eq!(http.delete(format!("{base}/_sim/callbacks")).send().await.unwrap().status().as_u16(), 204);
    assert!(rig.simulator().callbacks().is_empty());
    assert_eq!(http.post(format!("{base}/_sim/reset")).send().await.unwrap().status().as_u16(), 204);
    assert_eq!(get("/_sim/payments/CTL-1").await.unwrap().status().as_u16(), 404);
}
