use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use proptest::prelude::*;
use secrecy::zeroize::Zeroizing;
use serde_json::{Value, json};

use crate::keys::thumbprint;
use crate::{MAX_PREVIOUS, PassClaims, PassError, PassKeys, verify};

// RFC 8037 Appendix A: the Ed25519 test key (A.1 `d`, A.2 `x`), its thumbprint (A.3) and the
// JWS of "Example of Ed25519 signing" with header {"alg":"EdDSA"} (A.4).
const RFC_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const RFC_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC_KID: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
const RFC_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
// The same key as `openssl pkey -inform DER` prints it (PKCS#8 v1).
const RFC_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
// A key from `openssl genpkey -algorithm ed25519`, and its public key from `openssl pkey -pubout`.
const OPENSSL_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIK68limKXVc/nAMzUEoU/Ha0d/l0UTyL8ewuYcMJyAqn\n-----END PRIVATE KEY-----\n";
const OPENSSL_X: &str = "Mm4zKeTneUYO-sSjWrSPinSvlEobDSSYUZm9d9D6-Tc";

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn rfc_keys() -> PassKeys {
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&URL_SAFE_NO_PAD.decode(RFC_D).unwrap());
    PassKeys::from_seed(seed, Vec::new()).unwrap()
}

fn claims() -> PassClaims {
    PassClaims::new("01JD8X5A2B3C4D5E6F7G8H9J0K", "LOT-BLR-01", "KA01AB1234", NOW, NOW + 3600)
}

fn x_of(keys: &PassKeys) -> String {
    keys.jwks()["keys"][0]["x"].as_str().unwrap().to_owned()
}

/// Splits a token, lets `edit` change the decoded header and payload, and joins it again with
/// the original signature.
fn reencode(token: &str, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    edit(&mut header, &mut payload);
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.{}", enc(&header), enc(&payload), parts[2])
}

#[test]
fn rfc8037_known_answers() {
    let keys = rfc_keys();
    assert_eq!(x_of(&keys), RFC_X);
    assert_eq!(keys.kid(), RFC_KID);
    // jsonwebtoken computes the same thumbprint from the published JWK
    let jwk: Jwk = serde_json::from_value(keys.jwks()["keys"][0].clone()).unwrap();
    assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256), RFC_KID);

    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA"}"#);
    let payload = URL_SAFE_NO_PAD.encode(b"Example of Ed25519 signing");
    let message = format!("{header}.{payload}");
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &keys.encoding, Algorithm::EdDSA).unwrap();
    assert_eq!(format!("{message}.{signature}"), RFC_JWS);

    // and the RFC's JWS verifies with the JWK we publish
    let key = DecodingKey::from_jwk(&jwk).unwrap();
    let (msg, sig) = RFC_JWS.rsplit_once('.').unwrap();
    assert!(jsonwebtoken::crypto::verify(sig, msg.as_bytes(), &key, Algorithm::EdDSA).unwrap());
    assert!(!jsonwebtoken::crypto::verify(sig, b"eyJhbGciOiJFZERTQSJ9.e30", &key, Algorithm::EdDSA).unwrap());
}

#[test]
fn pkcs8_built_by_hand_matches_aws_lc() {
    use aws_lc_rs::signature::Ed25519KeyPair;
    let pair = Ed25519KeyPair::from_seed_unchecked(&URL_SAFE_NO_PAD.decode(RFC_D).unwrap()).unwrap();
    assert_eq!(rfc_keys().encoding.inner(), pair.to_pkcs8v1().unwrap().as_ref());
}

#[test]
fn issue_verify_round_trip() {
    let keys = PassKeys::generate().unwrap();
    let token = keys.issue(&claims()).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.kid.as_deref(), Some(keys.kid()));
    assert_eq!(verify(&token, &keys.jwks(), NOW + 10, 0).unwrap(), claims());
    // deterministic: the same claims give the same token
    assert_eq!(keys.issue(&claims()).unwrap(), token);
    assert!(token.len() < 600, "{} characters", token.len());
}

#[test]
fn claims_are_deterministic_and_checked() {
    let c = claims();
    assert_eq!(c.iss, "parkpay");
    assert_eq!((c.sub.as_str(), c.iat), (c.sid.as_str(), c.nbf));
    assert_eq!(c.jti, PassClaims::new(&c.sid, &c.lot, &c.veh, c.nbf, c.exp).jti);
    assert_eq!(c.jti.len(), 22);
    assert_eq!(c.jti, PassClaims::derive_jti(&c.sid), "one id for every pass of a session");
    assert_eq!(PassClaims::new(&c.sid, &c.lot, &c.veh, c.nbf, c.exp + 3600).jti, c.jti, "an extension keeps it");
    assert_ne!(c.jti, PassClaims::derive_jti("other"));

    let keys = rfc_keys();
    let empty = PassClaims { exp: NOW, ..claims() };
    assert!(matches!(keys.issue(&empty), Err(PassError::Claims(_))));
    let mismatched = PassClaims { sub: "other".into(), ..claims() };
    assert!(matches!(keys.issue(&mismatched), Err(PassError::Claims(_))));
    let foreign = PassClaims { iss: "someone".into(), ..claims() };
    assert!(matches!(keys.issue(&foreign), Err(PassError::Claims(_))));
    let no_vehicle = PassClaims { veh: String::new(), ..claims() };
    assert!(matches!(keys.issue(&no_vehicle), Err(PassError::Claims(_))));
}

#[test]
fn validity_window_with_leeway() {
    let keys = rfc_keys();
    let jwks = keys.jwks();
    let token = keys.issue(&claims()).unwrap();
    assert!(verify(&token, &jwks, NOW, 0).is_ok());
    assert!(verify(&token, &jwks, NOW + 3599, 0).is_ok());
    assert_eq!(verify(&token, &jwks, NOW - 1, 0), Err(PassError::NotYetValid));
    assert_eq!(verify(&token, &jwks, NOW + 3600, 0), Err(PassError::Expired));
    assert!(verify(&token, &jwks, NOW - 30, 30).is_ok());
    assert_eq!(verify(&token, &jwks, NOW - 31, 30), Err(PassError::NotYetValid));
    assert!(verify(&token, &jwks, NOW + 3629, 30).is_ok());
    assert_eq!(verify(&token, &jwks, NOW + 3630, 30), Err(PassError::Expired));
    // extremes saturate instead of overflowing
    assert_eq!(verify(&token, &jwks, i64::MAX, u64::MAX), Err(PassError::Expired));
    assert_eq!(verify(&token, &jwks, i64::MIN, u64::MAX), Err(PassError::NotYetValid));
    assert!(verify(&token, &jwks, 0, u64::MAX).is_ok());
}

#[test]
fn wrong_key_and_tampering_are_refused() {
    let keys = rfc_keys();
    let token = keys.issue(&claims()).unwrap();
    // another key published under the same kid
    let mut other = PassKeys::generate().unwrap().jwks();
    other["keys"][0]["kid"] = json!(keys.kid());
    assert_eq!(verify(&token, &other, NOW, 0), Err(PassError::Signature));
    // another key set altogether
    assert_eq!(verify(&token, &PassKeys::generate().unwrap().jwks(), NOW, 0), Err(PassError::UnknownKey));
    // a changed claim, header or signature
    let longer = reencode(&token, |_, p| p["exp"] = json!(NOW + 86_400));
    assert_eq!(verify(&longer, &keys.jwks(), NOW, 0), Err(PassError::Signature));
    let car = reencode(&token, |_, p| p["veh"] = json!("KA01AB9999"));
    assert_eq!(verify(&car, &keys.jwks(), NOW, 0), Err(PassError::Signature));
    let retyped = reencode(&token, |h, _| h["typ"] = json!("jwt"));
    assert_eq!(verify(&retyped, &keys.jwks(), NOW, 0), Err(PassError::Signature));
    let (msg, sig) = token.rsplit_once('.').unwrap();
    let flipped = format!("{msg}.{}{}", if sig.starts_with('A') { 'B' } else { 'A' }, &sig[1..]);
    assert_eq!(verify(&flipped, &keys.jwks(), NOW, 0), Err(PassError::Signature));
    // not a JWT
    for bad in ["", "a.b", "a.b.c.d", "!!.e30.", &format!("{token}.x")] {
        assert_eq!(verify(bad, &keys.jwks(), NOW, 0), Err(PassError::Malformed), "{bad}");
    }
    let critical = reencode(&token, |h, _| h["crit"] = json!(["exp"]));
    assert_eq!(verify(&critical, &keys.jwks(), NOW, 0), Err(PassError::Malformed));
    // a key set that is not one
    assert_eq!(verify(&token, &json!({"keys": {}}), NOW, 0), Err(PassError::KeySet));
    assert_eq!(verify(&token, &json!([]), NOW, 0), Err(PassError::KeySet));
}

#[test]
fn other_algorithms_are_refused() {
    let keys = rfc_keys();
    let jwks = keys.jwks();
    let token = keys.issue(&claims()).unwrap();
    // alg none, signature dropped
    let none = reencode(&token, |h, _| h["alg"] = json!("none"));
    let unsigned = format!("{}.", none.rsplit_once('.').unwrap().0);
    assert_eq!(verify(&unsigned, &jwks, NOW, 0), Err(PassError::Algorithm));
    assert_eq!(verify(&none, &jwks, NOW, 0), Err(PassError::Algorithm));
    // HS256 with the public key (raw, and as its base64url text) as the HMAC secret
    let x = URL_SAFE_NO_PAD.decode(x_of(&keys)).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(keys.kid().to_owned());
    for secret in [x.clone(), x_of(&keys).into_bytes()] {
        let forged = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(verify(&forged, &jwks, NOW, 0), Err(PassError::Algorithm));
    }
    // an EdDSA header over an `oct` key under our kid
    let oct = json!({"keys": [{"kty": "oct", "k": URL_SAFE_NO_PAD.encode(&x), "kid": keys.kid()}]});
    assert_eq!(verify(&token, &oct, NOW, 0), Err(PassError::KeySet));
    // a JWKS entry restricted to another algorithm or to encryption
    for (member, value) in [("alg", "RS256"), ("use", "enc")] {
        let mut restricted = jwks.clone();
        restricted["keys"][0][member] = json!(value);
        assert_eq!(verify(&token, &restricted, NOW, 0), Err(PassError::KeySet), "{member}");
    }
}

#[test]
fn rotation_keeps_previous_keys_for_a_while() {
    let first = rfc_keys();
    let old_pass = first.issue(&claims()).unwrap();
    let second = first.rotate().unwrap();
    assert_ne!(second.kid(), first.kid());
    assert_eq!(second.previous_kids().collect::<Vec<_>>(), [first.kid()]);
    let jwks = second.jwks();
    assert_eq!(jwks["keys"][0]["kid"], json!(second.kid()));
    assert_eq!(jwks["keys"][1]["kid"], json!(first.kid()));
    assert_eq!(verify(&old_pass, &jwks, NOW, 0).unwrap(), claims());
    let new_pass = second.issue(&claims()).unwrap();
    assert_ne!(new_pass, old_pass);
    assert!(verify(&new_pass, &jwks, NOW, 0).is_ok());
    // the new pass does not verify against the old key set
    assert_eq!(verify(&new_pass, &first.jwks(), NOW, 0), Err(PassError::UnknownKey));

    let mut keys = second;
    for _ in 0..MAX_PREVIOUS {
        keys = keys.rotate().unwrap();
    }
    assert_eq!(keys.previous_kids().count(), MAX_PREVIOUS);
    assert!(keys.previous_kids().all(|kid| kid != first.kid()));
    assert_eq!(verify(&old_pass, &keys.jwks(), NOW, 0), Err(PassError::UnknownKey));
    // a key taken out of a published set by hand
    let mut trimmed = jwks.clone();
    trimmed["keys"].as_array_mut().unwrap().remove(1);
    assert_eq!(verify(&old_pass, &trimmed, NOW, 0), Err(PassError::UnknownKey));
}

#[test]
fn stored_form_round_trips() {
    let keys = rfc_keys().rotate().unwrap().rotate().unwrap();
    let text = keys.to_stored();
    let stored: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stored["previous"].as_array().unwrap().len(), 2);
    let back = PassKeys::from_stored(&text).unwrap();
    assert_eq!(back.kid(), keys.kid());
    assert_eq!(back.jwks(), keys.jwks());
    assert_eq!(back.to_stored(), text);
    assert_eq!(back.issue(&claims()).unwrap(), keys.issue(&claims()).unwrap());
    // `previous` is optional, whitespace around is fine, the current key is not repeated
    let only = PassKeys::from_stored(&format!("\n {{\"signing\": \"{RFC_D}\"}} \n")).unwrap();
    assert_eq!(only.kid(), RFC_KID);
    let repeated = format!(r#"{{"signing":"{RFC_D}","previous":["{RFC_X}","{OPENSSL_X}","{OPENSSL_X}"]}}"#);
    let deduped = PassKeys::from_stored(&repeated).unwrap();
    assert_eq!(deduped.previous_kids().count(), 1);
}

#[test]
fn pem_private_keys_are_accepted() {
    let rfc = PassKeys::from_stored(RFC_PEM).unwrap();
    assert_eq!(rfc.kid(), RFC_KID);
    assert_eq!(rfc.to_stored(), rfc_keys().to_stored());
    let openssl = PassKeys::from_stored(&OPENSSL_PEM.replace('\n', "\r\n")).unwrap();
    assert_eq!(x_of(&openssl), OPENSSL_X);
    let token = openssl.issue(&claims()).unwrap();
    assert!(verify(&token, &openssl.jwks(), NOW, 0).is_ok());
    // PKCS#8 v2 (with the public key), as aws-lc writes it
    let pair = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
    let v2 = base64::engine::general_purpose::STANDARD.encode(pair.to_pkcs8().unwrap().as_ref());
    let v2 = PassKeys::from_stored(&format!("-----BEGIN PRIVATE KEY-----\n{v2}\n-----END PRIVATE KEY-----")).unwrap();
    assert_eq!(x_of(&v2), URL_SAFE_NO_PAD.encode(aws_lc_rs::signature::KeyPair::public_key(&pair)));
}

#[test]
fn unusable_stored_text_is_refused() {
    let cases = [
        String::new(),
        "signing".to_owned(),
        "{}".to_owned(),
        r#"{"signing": 7}"#.to_owned(),
        format!(r#"{{"signing": "{RFC_D}", "extra": 1}}"#),
        format!(r#"{{"signing": "{}"}}"#, &RFC_D[1..]),
        format!(r#"{{"signing": "{RFC_D}=="}}"#),
        format!(r#"{{"signing": "{RFC_D}", "previous": ["{RFC_D}A"]}}"#),
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----".into(),
        "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----".into(),
        // a P-256 key (openssl genpkey -algorithm EC)
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3aeVA79WtdIDyBvD\nPqFqlfDrqOalhlrCSn1qpEDqmZahRANCAATqvWJmJ46seYgY+8/v01LnPKQIO9O4\n1V3a3Fjx3lqAOkIKXIaH+EJ46vPtnScLTcAiEo6n2+rojK15H2cqp99M\n-----END PRIVATE KEY-----".into(),
        "x".repeat(20_000),
    ];
    for text in &cases {
        let err = PassKeys::from_stored(text).unwrap_err();
        assert!(matches!(err, PassError::Keys(_)), "{err:?}");
        assert!(!err.to_string().contains(RFC_D));
    }
}

#[test]
fn debug_shows_kids_only() {
    let keys = rfc_keys().rotate().unwrap();
    let debug = format!("{keys:?}");
    assert!(debug.contains(keys.kid()) && debug.contains(RFC_KID), "{debug}");
    let stored: Value = serde_json::from_str(&keys.to_stored()).unwrap();
    let seed = stored["signing"].as_str().unwrap();
    assert!(!debug.contains(seed) && !debug.contains(RFC_D), "{debug}");
}

proptest! {
    #[test]
    fn secrets_never_show(seed in proptest::array::uniform32(any::<u8>()), cut in 0usize..43) {
        let keys = PassKeys::from_seed(Zeroizing::new(seed), Vec::new()).unwrap();
        let b64 = URL_SAFE_NO_PAD.encode(seed);
        let debug = format!("{keys:?}");
        prop_assert!(!debug.contains(&b64[..20]));
        prop_assert_eq!(keys.kid(), thumbprint(&URL_SAFE_NO_PAD.decode(x_of(&keys)).unwrap().try_into().unwrap()));
        // broken stored texts holding (part of) the seed: the error never quotes it
        let truncated = format!(r#"{{"signing": "{}"}}"#, &b64[..cut]);
        let wrong_type = format!(r#"{{"signing": ["{b64}"]}}"#);
        let unknown = format!(r#"{{"signing": "{b64}", "{b64}": 1}}"#);
        let broken_json = format!(r#"{{"signing": "{b64}""#);
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----");
        for text in [truncated, wrong_type, unknown, broken_json, pem] {
            let err = PassKeys::from_stored(&text).unwrap_err();
            let shown = format!("{err} {err:?}");
            prop_assert!(!shown.contains(&b64[..cut.max(8)]), "{}", shown);
        }
    }
}
