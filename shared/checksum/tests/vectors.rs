//! PhonePe's published conformance vectors (`docs/phonepe.md` §5), byte for byte.

use base64::Engine;
use parkpay_checksum::{Message, SaltIndex, SaltKey, SaltKeys, VerifyError, WebhookCredentials, XVerify};
use secrecy::SecretString;

const SALT: &str = "099eb0cd-02cf-4e2a-8aca-3e6c6aff0399";

const PAY_B64: &str = "ewogICJtZXJjaGFudElkIjogIlBHVEVTVFBBWVVBVCIsCiAgIm1lcmNoYW50VHJhbnNhY3Rpb25JZCI6ICJNVDc4NTA1OTAwNjgxODgxMDQiLAogICJtZXJjaGFudFVzZXJJZCI6ICJNVUlEMTIzIiwKICAiYW1vdW50IjogMTAwMDAsCiAgInJlZGlyZWN0VXJsIjogImh0dHBzOi8vd2ViaG9vay5zaXRlL3JlZGlyZWN0LXVybCIsCiAgInJlZGlyZWN0TW9kZSI6ICJSRURJUkVDVCIsCiAgImNhbGxiYWNrVXJsIjogImh0dHBzOi8vd2ViaG9vay5zaXRlL2NhbGxiYWNrLXVybCIsCiAgIm1vYmlsZU51bWJlciI6ICI5OTk5OTk5OTk5IiwKICAicGF5bWVudEluc3RydW1lbnQiOiB7CiAgICAidHlwZSI6ICJQQVlfUEFHRSIKICB9Cn0=";
const PAY_XVERIFY: &str = "d7a8e4458caa6fcd781166bbdc85fec76740c18cb9baa9a4c48cf2387d554180###1";

const STATUS_PATH: &str = "/pg/v1/status/PGTESTPAYUAT/MT7850590068188104";
const STATUS_XVERIFY: &str = "95c6d60f014b7190aa417083aca2489bb5b0a729d0421c17dea19f5913e6d741###1";

const REFUND_B64: &str = "ewogICAgIm1lcmNoYW50SWQiOiAiUEdURVNUUEFZVUFUIiwKICAgICJtZXJjaGFudFVzZXJJZCI6ICJVc2VyMTIzIiwKICAgICJvcmlnaW5hbFRyYW5zYWN0aW9uSWQiOiAiT0Q2MjA0NzE3MzkyMTA2MjMiLAogICAgIm1lcmNoYW50VHJhbnNhY3Rpb25JZCI6ICJST0Q2MjA0NzE3MzkyMTA2MjMiLAogICAgImFtb3VudCI6IDEwMDAsCiAgICAiY2FsbGJhY2tVcmwiOiAiaHR0cHM6Ly93ZWJob29rLnNpdGUvY2FsbGJhY2stdXJsIgp9";
const REFUND_XVERIFY: &str = "9dbaf1a531f683699ca9385103f321bc75f6adce881e68c6557cacc0b088d3f8###1";

fn keys() -> SaltKeys {
    SaltKeys::single(SaltIndex::new(1), SaltKey::new(SALT).unwrap())
}

#[test]
fn v1_pay_vector() {
    let msg = Message::Body { base64: PAY_B64, path: "/pg/v1/pay" };
    assert_eq!(keys().sign(msg).to_string(), PAY_XVERIFY);
    assert_eq!(keys().verify(PAY_XVERIFY, msg), Ok(SaltIndex::new(1)));
}

#[test]
fn v1_pay_vector_payload_is_what_the_doc_describes() {
    // The base64 decodes to the pretty-printed JSON the doc names: the checksum is over the
    // base64 text, so a re-serialised (compact) payload would give a different checksum.
    let json = base64::engine::general_purpose::STANDARD.decode(PAY_B64).unwrap();
    let text = String::from_utf8(json).unwrap();
    assert!(text.contains("\"merchantTransactionId\": \"MT7850590068188104\""), "{text}");
    assert!(text.contains("\"amount\": 10000,"), "{text}");
}

#[test]
fn v1_status_vector() {
    let msg = Message::Path { path: STATUS_PATH };
    assert_eq!(keys().sign(msg).to_string(), STATUS_XVERIFY);
    assert_eq!(keys().verify(STATUS_XVERIFY, msg), Ok(SaltIndex::new(1)));
}

#[test]
fn v1_refund_vector() {
    let msg = Message::Body { base64: REFUND_B64, path: "/pg/v1/refund" };
    assert_eq!(keys().sign(msg).to_string(), REFUND_XVERIFY);
    assert_eq!(keys().verify(REFUND_XVERIFY, msg), Ok(SaltIndex::new(1)));
}

#[test]
fn v1_callback_formula_is_response_then_salt() {
    // No published vector exists for the callback; the formula is sha256(response + salt), which
    // for any response equals the status formula applied to the same string.
    let response = PAY_B64;
    let cb = keys().sign(Message::Callback { response });
    let as_path = keys().sign(Message::Path { path: response });
    assert_eq!(cb, as_path);
    assert!(cb.to_string().ends_with("###1"));
    assert_eq!(keys().verify(&cb.to_string(), Message::Callback { response }), Ok(SaltIndex::new(1)));
}

#[test]
fn v1_vectors_fail_with_a_wrong_path_or_salt() {
    let msg = Message::Body { base64: PAY_B64, path: "/pg/v1/refund" };
    assert_eq!(keys().verify(PAY_XVERIFY, msg), Err(VerifyError::Mismatch));
    let other = SaltKeys::single(SaltIndex::new(1), SaltKey::new("099eb0cd-02cf-4e2a-8aca-3e6c6aff0398").unwrap());
    let msg = Message::Body { base64: PAY_B64, path: "/pg/v1/pay" };
    assert_eq!(other.verify(PAY_XVERIFY, msg), Err(VerifyError::Mismatch));
}

#[test]
fn uppercase_hex_is_accepted_and_printed_lowercase() {
    let upper = PAY_XVERIFY.replace("###", "@").to_uppercase().replace('@', "###");
    let msg = Message::Body { base64: PAY_B64, path: "/pg/v1/pay" };
    assert!(keys().verify(&upper, msg).is_ok());
    assert_eq!(XVerify::parse(&upper).unwrap().to_string(), PAY_XVERIFY);
}

#[test]
fn v2_webhook_vectors() {
    let c = WebhookCredentials::new("username", SecretString::from("password"));
    assert_eq!(c.authorization(), "bc842c31a9e54efe320d30d948be61291f3ceee4766e36ab25fa65243cd76e0e");
    assert!(c.verify("bc842c31a9e54efe320d30d948be61291f3ceee4766e36ab25fa65243cd76e0e").is_ok());
    assert!(c.verify("BC842C31A9E54EFE320D30D948BE61291F3CEEE4766E36AB25FA65243CD76E0E").is_ok());
    let empty = WebhookCredentials::new("", SecretString::from(""));
    assert_eq!(empty.authorization(), "e7ac0786668e0ff0f02b62bd04f45ff636fd82db63b1104601c975dc005f3a67");
    assert!(empty.verify("bc842c31a9e54efe320d30d948be61291f3ceee4766e36ab25fa65243cd76e0e").is_err());
}
