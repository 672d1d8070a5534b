//! What a gate does offline: check a pass against the published JWKS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::{PassClaims, PassError};

/// Longest pass looked at; a real one is about 500 characters.
pub const MAX_TOKEN_LEN: usize = 4096;

/// The header members looked at before the signature is checked.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// Verifies a pass as a gate does, offline: the key is the JWKS entry whose `kid` the header
/// names; it must be an Ed25519 (`OKP`) signing key; the header's `alg` must be `EdDSA` (`none`,
/// HS256 and every other algorithm are refused before any key is used); the signature is checked
/// by `jsonwebtoken` with [`DecodingKey::from_jwk`]. Then the claims must pass
/// [`PassClaims::check`] and `now_epoch_s` must lie in the window: `nbf - leeway <= now` and
/// `now < exp + leeway`.
pub fn verify(token: &str, jwks: &Value, now_epoch_s: i64, leeway_s: u64) -> Result<PassClaims, PassError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(PassError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(PassError::Malformed);
    };
    let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| PassError::Malformed)?;
    let header: RawHeader = serde_json::from_slice(&header).map_err(|_| PassError::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(PassError::Algorithm);
    }
    if header.crit.is_some() {
        // RFC 7515 §4.1.11: extensions we do not understand make the pass invalid.
        return Err(PassError::Malformed);
    }
    let kid = header.kid.ok_or(PassError::UnknownKey)?;
    let key = decoding_key(jwks, &kid)?;

    let mut validation = Validation::new(Algorithm::EdDSA);
    // The window is checked below against the caller's clock (jsonwebtoken reads the system's).
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<PassClaims>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => PassError::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => PassError::Algorithm,
            ErrorKind::InvalidKeyFormat | ErrorKind::InvalidEddsaKey => PassError::KeySet,
            _ => PassError::Malformed,
        })?
        .claims;

    claims.check()?;
    let leeway = i64::try_from(leeway_s).unwrap_or(i64::MAX);
    if now_epoch_s < claims.nbf.saturating_sub(leeway) {
        return Err(PassError::NotYetValid);
    }
    if now_epoch_s >= claims.exp.saturating_add(leeway) {
        return Err(PassError::Expired);
    }
    Ok(claims)
}

/// The decoding key of the JWKS entry named `kid`, if it is an Ed25519 signing key for EdDSA.
fn decoding_key(jwks: &Value, kid: &str) -> Result<DecodingKey, PassError> {
    let keys = jwks.get("keys").and_then(Value::as_array).ok_or(PassError::KeySet)?;
    // Entries are matched by `kid` first, so that keys of other kinds in the set do not matter.
    let entry = keys.iter().find(|k| k.get("kid").and_then(Value::as_str) == Some(kid)).ok_or(PassError::UnknownKey)?;
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|_| PassError::KeySet)?;
    let AlgorithmParameters::OctetKeyPair(params) = &jwk.algorithm else {
        return Err(PassError::KeySet);
    };
    if params.curve != EllipticCurve::Ed25519 {
        return Err(PassError::KeySet);
    }
    if jwk.common.key_algorithm.as_ref().is_some_and(|alg| *alg != KeyAlgorithm::EdDSA) {
        return Err(PassError::KeySet);
    }
    if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
        return Err(PassError::KeySet);
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| PassError::KeySet)?;
    if key.as_bytes().len() != 32 {
        return Err(PassError::KeySet);
    }
    Ok(key)
}
