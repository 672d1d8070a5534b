//! Any bytes, as a request body, an amount, an `Idempotency-Key` header or a groups claim: the
//! API's request parsing never panics, and what it answers keeps its promises — errors are 4xx
//! with a SCREAMING_SNAKE code, accepted amounts are positive and within the maximum, accepted
//! idempotency keys are 1–255 printable ASCII characters, payload hashes are SHA-256 hex.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parkpay_api::http::{AmountInput, ApiError, parse_json_bytes};
use parkpay_api::idempotency::{HEADER, MAX_KEY_CHARS, key_from, payload_hash};
use parkpay_api::identity::parse_groups;
use parkpay_api::service::{CreatePaymentBody, CreateSessionBody, RefundBody, VerifyBody};
use parkpay_domain::Paise;

fn check_error(e: &ApiError) {
    let status = e.status.as_u16();
    assert!((400..500).contains(&status), "{e:?}");
    assert!(
        !e.code.is_empty() && e.code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
        "{e:?}"
    );
    assert!(!e.message.is_empty(), "{e:?}");
}

fn check_amount(amount: &AmountInput) {
    for max in [Paise::new(10_000_000), Paise::new(1), Paise::new(u64::MAX / 1000)] {
        match amount.to_paise("amount", max) {
            Ok(p) => assert!(p > Paise::new(0) && p <= max, "{amount:?} -> {p:?} (max {max:?})"),
            Err(e) => check_error(&e),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(data: &[u8]) -> Option<T> {
    match parse_json_bytes::<T>(data) {
        Ok(v) => Some(v),
        Err(e) => {
            check_error(&e);
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The whole input as each endpoint's body.
    let _ = parse::<CreateSessionBody>(data);
    let _ = parse::<VerifyBody>(data);
    if let Some(b) = parse::<CreatePaymentBody>(data).and_then(|b| b.amount) {
        check_amount(&b);
    }
    if let Some(b) = parse::<RefundBody>(data).and_then(|b| b.amount) {
        check_amount(&b);
    }
    // The input as the amount's JSON value (the fuzzer finds numbers and strings faster).
    let mut wrapped = br#"{"amount":"#.to_vec();
    wrapped.extend_from_slice(data);
    wrapped.push(b'}');
    if let Some(b) = parse::<RefundBody>(&wrapped).and_then(|b| b.amount) {
        check_amount(&b);
    }

    // Payload hash: any bytes, SHA-256 hex, the same for the same bytes.
    let h = payload_hash(data);
    assert!(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()), "{h}");
    assert_eq!(h, payload_hash(data));

    // The input as an Idempotency-Key header value (when HTTP can carry it at all).
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let req = http::Request::builder()
            .header(HEADER, value)
            .body(lambda_http::Body::from(data.to_vec()))
            .expect("a request with a valid header value");
        match key_from(&req) {
            Ok(Some(k)) => {
                assert!((1..=MAX_KEY_CHARS).contains(&k.len()), "{k:?}");
                assert!(k.bytes().all(|b| (0x20..0x7f).contains(&b)), "{k:?}");
            }
            Ok(None) => panic!("a present header read as absent"),
            Err(e) => check_error(&e),
        }
    }

    // The input as a groups claim.
    let text = String::from_utf8_lossy(data);
    let _ = parse_groups(&text);
});
