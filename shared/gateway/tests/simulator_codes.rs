//! Every documented PhonePe code (`wire::codes::ALL`) reaches the real client through the
//! simulator, for pay, status and refund, and the client maps each as documented: natural codes
//! where the simulator produces them by itself, forced codes (a fault) for all the rest.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use parkpay_checksum::{SaltIndex, SaltKey, SaltKeys};
use parkpay_gateway::phonepe_v1::wire::{self, codes};
use parkpay_gateway::{GatewayError, Instrument, PaymentGateway, TxnState};
use parkpay_simulator::{Faults, ForcedAnswer, Outcome, SimulatorConfig};
use serde_json::Value;
use support::*;

/// What the client made of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// pay: accepted.
    Started,
    /// status / refund: a report with this state.
    State(TxnState),
    /// `GatewayError::Rejected` with the answered code.
    Rejected(String),
    OutcomeUnknown,
    Unreachable,
}

fn seen<T>(r: Result<T, GatewayError>, state: impl FnOnce(T) -> Seen) -> Seen {
    match r {
        Ok(v) => state(v),
        Err(GatewayError::Rejected { code, .. }) => Seen::Rejected(code),
        Err(GatewayError::OutcomeUnknown { .. }) => Seen::OutcomeUnknown,
        Err(GatewayError::Unreachable { .. }) => Seen::Unreachable,
    }
}

/// The client's documented mapping of each code, per operation.
fn expected(op: &str, code: &str) -> Seen {
    use Seen::*;
    use TxnState::*;
    let rej = || Rejected(code.to_owned());
    match (op, code) {
        // Codes about the request, not the transaction: PhonePe did nothing.
        (
            _,
            codes::BAD_REQUEST
            | codes::AUTHORIZATION_FAILED
            | codes::KEY_NOT_CONFIGURED
            | codes::TOO_MANY_REQUESTS
            | codes::EXCESS_REFUND_AMOUNT
            | codes::REVERSAL_WINDOW_EXCEEDED,
        ) => rej(),

        ("pay", codes::PAYMENT_INITIATED) => Started,
        ("pay", codes::PAYMENT_ERROR | codes::PAYMENT_DECLINED) => rej(),
        // success:true with another code, not-final codes, and "not found" on a pay: it may
        // have started.
        ("pay", _) => OutcomeUnknown,

        ("status", codes::PAYMENT_SUCCESS) => State(Success),
        ("status", codes::PAYMENT_ERROR | codes::PAYMENT_DECLINED) => State(Failed),
        ("status", codes::TRANSACTION_NOT_FOUND) => State(NotFound),
        ("status", _) => State(Pending),

        ("refund", codes::TRANSACTION_NOT_FOUND) => rej(),
        ("refund", codes::PAYMENT_SUCCESS) => State(Success),
        ("refund", codes::PAYMENT_PENDING | codes::PAYMENT_INITIATED) => State(Pending),
        // success:false and not a rejection: the refund may have started; ask its status.
        ("refund", _) => OutcomeUnknown,
        _ => unreachable!("{op}"),
    }
}

async fn call(rig: &Rig, op: &str, id: &str) -> Seen {
    match op {
        "pay" => seen(rig.client.pay(&rig.pay_request(id, Instrument::PayPage)).await, |_| Seen::Started),
        "status" => seen(rig.client.status(&txn(id)).await, |r| {
            assert_eq!(r.merchant_txn_id.as_str(), id);
            Seen::State(r.state)
        }),
        "refund" => seen(rig.client.refund(&rig.refund_request(id, "ORIGINAL-1", 1_000)).await, |r| {
            assert_eq!(r.refund_txn_id.as_str(), id);
            Seen::State(r.state)
        }),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn every_code_forced_through_every_operation() {
    let rig = Rig::start().await;
    let mut checked = 0;
    for (i, code) in codes::ALL.iter().enumerate() {
        for op in ["pay", "status", "refund"] {
            let id = format!("F{i}-{op}");
            rig.simulator().set_faults(&id, Faults::force(*code)).unwrap();
            let got = call(&rig, op, &id).await;
            assert_eq!(got, expected(op, code), "{op} answered {code}");
            // a forced answer does nothing
            assert!(rig.simulator().transaction(&id).is_none(), "{op} {code} recorded something");
            checked += 1;
        }
    }
    assert_eq!(checked, codes::ALL.len() * 3);
    assert!(rig.rx.received().is_empty());
}

#[tokio::test]
async fn forced_answers_over_the_wire() {
    let rig = Rig::start().await;
    let payload = rig.pay_payload("WIRE-1");
    for (code, http) in [
        ("TOO_MANY_REQUESTS", 429),
        ("INTERNAL_SERVER_ERROR", 500),
        ("TIMED_OUT", 200),
        ("KEY_NOT_CONFIGURED", 401),
        ("TRANSACTION_NOT_FOUND", 404),
        ("EXCESS_REFUND_AMOUNT", 400),
    ] {
        rig.simulator().set_faults("WIRE-1", Faults::force(code)).unwrap();
        let (status, body) = rig.post_signed(wire::PAY_PATH, &payload).await;
        assert_eq!((status, body["code"].as_str(), body["success"].as_bool()), (http, Some(code), Some(false)));
        assert!(body.get("data").is_none(), "{code}: {body}");
    }
    // everything overridable; a contradictory state is still never Success
    let forced = ForcedAnswer {
        code: "PAYMENT_SUCCESS".into(),
        http_status: Some(202),
        success: Some(true),
        state: Some("PENDING".into()),
        message: Some("custom".into()),
    };
    rig.simulator().set_faults("WIRE-2", Faults { force: Some(forced), ..Faults::default() }).unwrap();
    let report = rig.client.status(&txn("WIRE-2")).await.unwrap();
    assert_eq!((report.state, report.code.as_str()), (TxnState::Pending, "PAYMENT_SUCCESS"));
    let resp = reqwest::Client::new()
        .get(format!("{}{}", rig.base(), wire::status_path(MERCHANT, "WIRE-2")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202, "forced answers come before authentication");
    let body: Value = resp.json().await.unwrap();
    assert_eq!((body["message"].as_str(), body["data"]["state"].as_str()), (Some("custom"), Some("PENDING")));
    // an unknown code is never final
    rig.simulator().set_faults("WIRE-3", Faults::force("SOMETHING_NEW")).unwrap();
    assert_eq!(call(&rig, "status", "WIRE-3").await, Seen::State(TxnState::Pending));
    assert_eq!(call(&rig, "pay", "WIRE-3").await, Seen::OutcomeUnknown);
}

/// The codes the simulator produces by itself, each through the client, with the mapping the
/// forced table expects.
#[tokio::test]
async fn natural_codes() {
    let rig = Rig::start().await;
    let mut observed: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut check = |op: &'static str, code: &'static str, got: Seen| {
        assert_eq!(got, expected(op, code), "{op} {code}");
        observed.insert((op, code));
    };

    // pay
    check("pay", codes::PAYMENT_INITIATED, call(&rig, "pay", "N-1").await);
    check("pay", codes::BAD_REQUEST, call(&rig, "pay", "N-1").await); // duplicate
    let wrong = SaltKeys::single(SaltIndex::new(1), SaltKey::new("wrong").unwrap());
    let bad_client = client_for(rig.sim.base_url.clone(), &rig.rx, MERCHANT, wrong, Duration::from_secs(5));
    let no_key = SaltKeys::single(SaltIndex::new(7), SaltKey::new("x").unwrap());
    let no_key_client = client_for(rig.sim.base_url.clone(), &rig.rx, MERCHANT, no_key, Duration::from_secs(5));
    let req = rig.pay_request("N-2", Instrument::PayPage);
    check("pay", codes::AUTHORIZATION_FAILED, seen(bad_client.pay(&req).await, |_| Seen::Started));
    check("pay", codes::KEY_NOT_CONFIGURED, seen(no_key_client.pay(&req).await, |_| Seen::Started));

    // status
    check("status", codes::PAYMENT_PENDING, call(&rig, "status", "N-1").await);
    check("status", codes::TRANSACTION_NOT_FOUND, call(&rig, "status", "N-404").await);
    check("status", codes::AUTHORIZATION_FAILED, seen(bad_client.status(&txn("N-1")).await, |r| Seen::State(r.state)));
    check("status", codes::KEY_NOT_CONFIGURED, seen(no_key_client.status(&txn("N-1")).await, |r| Seen::State(r.state)));
    for (id, outcome, code) in [
        ("N-OK", Outcome::Success, codes::PAYMENT_SUCCESS),
        ("N-ERR", Outcome::Failure, codes::PAYMENT_ERROR),
        ("N-DEC", Outcome::Declined, codes::PAYMENT_DECLINED),
    ] {
        call(&rig, "pay", id).await;
        rig.simulator().complete(id, outcome).await.unwrap();
        let report = rig.client.status(&txn(id)).await.unwrap();
        assert_eq!(report.code, code);
        check("status", code, Seen::State(report.state));
    }

    // refund
    let r = &rig;
    let refund = |id: &'static str, original: &'static str, paise: u64| {
        let req = r.refund_request(id, original, paise);
        async move { r.client.refund(&req).await }
    };
    let started = refund("N-OK-R1", "N-OK", 4_000).await;
    assert_eq!(started.as_ref().map(|s| s.code.as_str()).ok(), Some(codes::PAYMENT_PENDING));
    check("refund", codes::PAYMENT_PENDING, seen(started, |s| Seen::State(s.state)));
    check(
        "refund",
        codes::EXCESS_REFUND_AMOUNT,
        seen(refund("N-OK-R2", "N-OK", 6_001).await, |s| Seen::State(s.state)),
    );
    check("refund", codes::TRANSACTION_NOT_FOUND, seen(refund("N-R3", "N-404", 100).await, |s| Seen::State(s.state)));
    check("refund", codes::BAD_REQUEST, seen(refund("N-R4", "N-ERR", 100).await, |s| Seen::State(s.state)));
    let bad = bad_client.refund(&rig.refund_request("N-R5", "N-OK", 100)).await;
    check("refund", codes::AUTHORIZATION_FAILED, seen(bad, |s| Seen::State(s.state)));
    let bad = no_key_client.refund(&rig.refund_request("N-R6", "N-OK", 100)).await;
    check("refund", codes::KEY_NOT_CONFIGURED, seen(bad, |s| Seen::State(s.state)));

    let narrow =
        Rig::with(|c| SimulatorConfig { reversal_window: Duration::from_millis(1), ..c }, Duration::from_secs(5)).await;
    narrow.paid("N-W").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let late = narrow.client.refund(&narrow.refund_request("N-W-R1", "N-W", 100)).await;
    check("refund", codes::REVERSAL_WINDOW_EXCEEDED, seen(late, |s| Seen::State(s.state)));

    // the refund's own status: pending, then settled with PAYMENT_SUCCESS
    rig.rx.wait_for("N-OK-R1", 1).await;
    let report = rig.client.status(&txn("N-OK-R1")).await.unwrap();
    assert_eq!(report.code, codes::PAYMENT_SUCCESS);
    check("status", codes::PAYMENT_SUCCESS, Seen::State(report.state));

    let every: BTreeSet<&str> = observed.iter().map(|(_, c)| *c).collect();
    let never_natural: BTreeSet<&str> = codes::ALL.iter().copied().filter(|c| !every.contains(c)).collect();
    assert_eq!(
        never_natural,
        BTreeSet::from([codes::TIMED_OUT, codes::INTERNAL_SERVER_ERROR, codes::TOO_MANY_REQUESTS]),
        "only these need a fault to appear (INTERNAL_SERVER_ERROR via server_error in against_simulator.rs)"
    );
}
