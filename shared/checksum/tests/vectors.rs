//! PhonePe's published conformance vectors (`parkpay_checksum::conformance`, `docs/phonepe.md`
//! §5), byte for byte: each reproduces, and the document carries exactly the same vectors as
//! the code (it is read here), so neither can change alone.

use std::collections::BTreeMap;

use base64::Engine;
use parkpay_checksum::conformance::{self, Input, VECTORS, Vector};
use parkpay_checksum::{Message, SaltIndex, SaltKey, SaltKeys, VerifyError, WebhookCredentials, XVerify};
use secrecy::SecretString;

const PHONEPE_MD: &str = include_str!("../../../docs/phonepe.md");
const START: &str = "<!-- conformance-vectors:start -->";
const END: &str = "<!-- conformance-vectors:end -->";

fn keys() -> SaltKeys {
    SaltKeys::single(
        SaltIndex::new(conformance::SANDBOX_SALT_INDEX),
        SaltKey::new(conformance::SANDBOX_SALT_KEY).unwrap(),
    )
}

/// What our code computes for a vector's input.
fn compute(input: &Input) -> String {
    match *input {
        Input::Body { salt_key, salt_index, path, base64 } => {
            XVerify::sign(Message::Body { base64, path }, &SaltKey::new(salt_key).unwrap(), SaltIndex::new(salt_index))
                .to_string()
        }
        Input::Path { salt_key, salt_index, path } => {
            XVerify::sign(Message::Path { path }, &SaltKey::new(salt_key).unwrap(), SaltIndex::new(salt_index))
                .to_string()
        }
        Input::Webhook { username, password } => {
            WebhookCredentials::new(username, SecretString::from(password)).authorization()
        }
    }
}

/// A vector as the document writes it: `name: value` lines.
fn as_fields(v: &Vector) -> BTreeMap<String, String> {
    let mut m = BTreeMap::from([("vector".to_owned(), v.name.to_owned())]);
    let mut put = |k: &str, v: &str| m.insert(k.to_owned(), v.to_owned());
    match v.input {
        Input::Body { salt_key, salt_index, path, base64 } => {
            put("salt_key", salt_key);
            put("salt_index", &salt_index.to_string());
            put("path", path);
            put("base64", base64);
            put("x_verify", v.expected);
        }
        Input::Path { salt_key, salt_index, path } => {
            put("salt_key", salt_key);
            put("salt_index", &salt_index.to_string());
            put("path", path);
            put("x_verify", v.expected);
        }
        Input::Webhook { username, password } => {
            put("username", username);
            put("password", password);
            put("authorization", v.expected);
        }
    }
    m
}

/// The vectors of `docs/phonepe.md`: every fenced block between the markers, one `name: value`
/// line each (a value may be empty).
fn document_vectors(doc: &str) -> Vec<BTreeMap<String, String>> {
    let start = doc.find(START).expect("docs/phonepe.md has the conformance-vectors start marker");
    let end = doc.find(END).expect("docs/phonepe.md has the conformance-vectors end marker");
    let section = &doc[start + START.len()..end];
    let mut out = Vec::new();
    let mut current: Option<BTreeMap<String, String>> = None;
    for line in section.lines() {
        let line = line.trim();
        if line.starts_with("```") {
            match current.take() {
                Some(v) => out.push(v),
                None => current = Some(BTreeMap::new()),
            }
        } else if let Some(v) = current.as_mut() {
            let (k, value) = line.split_once(':').unwrap_or_else(|| panic!("not `name: value`: {line:?}"));
            assert!(v.insert(k.trim().to_owned(), value.trim().to_owned()).is_none(), "{k} twice");
        }
    }
    assert!(current.is_none(), "an unclosed block");
    out
}

#[test]
fn the_document_carries_exactly_these_vectors() {
    let documented = document_vectors(PHONEPE_MD);
    let ours: Vec<BTreeMap<String, String>> = VECTORS.iter().map(as_fields).collect();
    assert_eq!(documented, ours, "docs/phonepe.md §5 and parkpay_checksum::conformance::VECTORS differ");
}

#[test]
fn every_vector_reproduces() {
    for v in VECTORS {
        assert_eq!(compute(&v.input), v.expected, "{}", v.name);
    }
    // and the document's, read as written
    for fields in document_vectors(PHONEPE_MD) {
        let got = if let Some(b64) = fields.get("base64") {
            let msg = Message::Body { base64: b64, path: &fields["path"] };
            XVerify::sign(
                msg,
                &SaltKey::new(fields["salt_key"].clone()).unwrap(),
                fields["salt_index"].parse().unwrap(),
            )
            .to_string()
        } else if let Some(path) = fields.get("path") {
            let msg = Message::Path { path };
            XVerify::sign(
                msg,
                &SaltKey::new(fields["salt_key"].clone()).unwrap(),
                fields["salt_index"].parse().unwrap(),
            )
            .to_string()
        } else {
            WebhookCredentials::new(fields["username"].clone(), SecretString::from(fields["password"].clone()))
                .authorization()
        };
        let want = fields.get("x_verify").or(fields.get("authorization")).unwrap();
        assert_eq!(&got, want, "{}", fields["vector"]);
    }
}

#[test]
fn v1_vectors_verify() {
    for v in VECTORS {
        let msg = match v.input {
            Input::Body { base64, path, .. } => Message::Body { base64, path },
            Input::Path { path, .. } => Message::Path { path },
            Input::Webhook { .. } => continue,
        };
        assert_eq!(keys().verify(v.expected, msg), Ok(SaltIndex::new(1)), "{}", v.name);
    }
}

#[test]
fn v1_pay_vector_payload_is_what_the_doc_describes() {
    // The base64 decodes to the pretty-printed JSON the doc names: the checksum is over the
    // base64 text, so a re-serialised (compact) payload would give a different checksum.
    let json = base64::engine::general_purpose::STANDARD.decode(conformance::PAY_BASE64).unwrap();
    let text = String::from_utf8(json).unwrap();
    assert!(text.contains("\"merchantTransactionId\": \"MT7850590068188104\""), "{text}");
    assert!(text.contains("\"amount\": 10000,"), "{text}");
    let json = base64::engine::general_purpose::STANDARD.decode(conformance::REFUND_BASE64).unwrap();
    let text = String::from_utf8(json).unwrap();
    assert!(text.contains("\"merchantTransactionId\": \"ROD620471739210623\""), "{text}");
    assert!(text.contains("\"amount\": 1000,"), "{text}");
}

#[test]
fn v1_callback_formula_is_response_then_salt() {
    // No published vector exists for the callback; the formula is sha256(response + salt), which
    // for any response equals the status formula applied to the same string.
    let response = conformance::PAY_BASE64;
    let cb = keys().sign(Message::Callback { response });
    let as_path = keys().sign(Message::Path { path: response });
    assert_eq!(cb, as_path);
    assert!(cb.to_string().ends_with("###1"));
    assert_eq!(keys().verify(&cb.to_string(), Message::Callback { response }), Ok(SaltIndex::new(1)));
}

#[test]
fn v1_vectors_fail_with_a_wrong_path_salt_or_index() {
    let msg = Message::Body { base64: conformance::PAY_BASE64, path: "/pg/v1/refund" };
    assert_eq!(keys().verify(conformance::PAY_X_VERIFY, msg), Err(VerifyError::Mismatch));
    let other = SaltKeys::single(SaltIndex::new(1), SaltKey::new("099eb0cd-02cf-4e2a-8aca-3e6c6aff0398").unwrap());
    let msg = Message::Body { base64: conformance::PAY_BASE64, path: "/pg/v1/pay" };
    assert_eq!(other.verify(conformance::PAY_X_VERIFY, msg), Err(VerifyError::Mismatch));
    // the right key under another index: not ours
    let reindexed = conformance::PAY_X_VERIFY.replace("###1", "###2");
    assert_eq!(keys().verify(&reindexed, msg), Err(VerifyError::UnknownIndex(SaltIndex::new(2))));
}

#[test]
fn several_keys_verify_each_by_its_index() {
    // The sandbox key as index 1 beside another as index 2, signing with 2: the documented
    // vectors (index 1) still verify, and what we send carries ###2.
    let both =
        SaltKeys::parse_list(&format!("1:{},2:another-key", conformance::SANDBOX_SALT_KEY), Some(SaltIndex::new(2)))
            .unwrap();
    let msg = Message::Path { path: conformance::STATUS_PATH };
    assert_eq!(both.verify(conformance::STATUS_X_VERIFY, msg), Ok(SaltIndex::new(1)));
    assert!(both.sign(msg).to_string().ends_with("###2"));
    assert_eq!(both.with_active(SaltIndex::new(1)).unwrap().sign(msg).to_string(), conformance::STATUS_X_VERIFY);
}

#[test]
fn uppercase_hex_is_accepted_and_printed_lowercase() {
    let upper = conformance::PAY_X_VERIFY.replace("###", "@").to_uppercase().replace('@', "###");
    let msg = Message::Body { base64: conformance::PAY_BASE64, path: "/pg/v1/pay" };
    assert!(keys().verify(&upper, msg).is_ok());
    assert_eq!(XVerify::parse(&upper).unwrap().to_string(), conformance::PAY_X_VERIFY);
}

#[test]
fn v2_webhook_vectors_verify() {
    let c = WebhookCredentials::new("username", SecretString::from("password"));
    assert!(c.verify(conformance::WEBHOOK_AUTHORIZATION).is_ok());
    assert!(c.verify(&conformance::WEBHOOK_AUTHORIZATION.to_uppercase()).is_ok());
    let empty = WebhookCredentials::new("", SecretString::from(""));
    assert!(empty.verify(conformance::WEBHOOK_EMPTY_AUTHORIZATION).is_ok());
    assert!(empty.verify(conformance::WEBHOOK_AUTHORIZATION).is_err());
}
