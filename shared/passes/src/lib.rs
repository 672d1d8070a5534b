//! Entry passes: what a driver shows at the gate once a parking session is PAID.
//!
//! A pass is a JWT signed with EdDSA over Ed25519 (RFC 8037). Its claims ([`PassClaims`]) name
//! the session, the lot, the vehicle and the validity window; its header names the signing key
//! (`kid`, the RFC 7638 thumbprint of the public key). Gates check it offline with the public
//! keys published as a JWKS ([`PassKeys::jwks`]: `kty` OKP, `crv` Ed25519), so any JOSE library
//! can verify it; [`verify`] is that check, done with `jsonwebtoken`.
//!
//! [`PassKeys`] holds the current signing key and the public keys of earlier ones that are still
//! accepted: [`PassKeys::rotate`] makes a new signing key and keeps the old public key in the
//! JWKS, so passes already handed out keep working. Keys have one text form
//! ([`PassKeys::to_stored`] / [`PassKeys::from_stored`]) for the SSM SecureString and the local
//! data file; a PKCS#8 PEM private key (`openssl genpkey -algorithm ed25519`) is accepted too.
//!
//! Key material never shows in `Debug` output nor in an error. Nothing here does I/O.

mod keys;
mod verify;

#[cfg(test)]
mod tests;

pub use keys::{MAX_PREVIOUS, PassKeys};
pub use verify::{MAX_TOKEN_LEN, verify};

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The `iss` claim of every pass.
pub const ISSUER: &str = "parkpay";

/// Why keys could not be read or made, a pass could not be issued, or a pass was refused.
///
/// No variant carries key material or the text it was read from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    /// The stored key text is not usable; the reason never quotes the text.
    #[error("invalid pass keys: {0}")]
    Keys(&'static str),
    /// The crypto library failed to make a key or a signature.
    #[error("the crypto library failed to make a pass key or signature")]
    Crypto,
    /// The claims handed to [`PassKeys::issue`], or found in a verified pass, are inconsistent.
    #[error("invalid pass claims: {0}")]
    Claims(&'static str),
    /// The pass is not a compact JWS with a JSON header and payload.
    #[error("the pass is not a well-formed JWT")]
    Malformed,
    /// The pass's header names another algorithm than EdDSA (`none`, HS256, RS256, ...).
    #[error("the pass is not signed with EdDSA")]
    Algorithm,
    /// The pass names no key, or a key the JWKS does not hold (retired, or never ours).
    #[error("the pass's key is not in the key set")]
    UnknownKey,
    /// The JWKS, or the entry the pass names, is not a usable Ed25519 signing key.
    #[error("the key set is not a usable Ed25519 JWKS")]
    KeySet,
    /// The signature does not match the key and the signed text.
    #[error("the pass's signature does not verify")]
    Signature,
    /// The validity window has not started (`nbf`, with leeway).
    #[error("the pass is not valid yet")]
    NotYetValid,
    /// The validity window is over (`exp`, with leeway).
    #[error("the pass has expired")]
    Expired,
}

/// The claims of a pass (the JWT payload). Serialised in this field order, so that the same
/// claims always give the same token (Ed25519 signatures are deterministic too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassClaims {
    /// Issuer: always [`ISSUER`].
    pub iss: String,
    /// Subject: the parking session id (same as `sid`).
    pub sub: String,
    /// The parking session id.
    pub sid: String,
    /// The parking lot id.
    pub lot: String,
    /// The vehicle number, in the domain's normalised form.
    pub veh: String,
    /// Valid from (epoch seconds).
    pub nbf: i64,
    /// Valid until (epoch seconds, exclusive).
    pub exp: i64,
    /// Issued at (epoch seconds).
    pub iat: i64,
    /// Unique id of the pass; see [`PassClaims::derive_jti`].
    pub jti: String,
}

impl PassClaims {
    /// The claims of the pass of one session and validity window. Deterministic: `iat` is
    /// `valid_from` and `jti` is [`PassClaims::derive_jti`], so asking twice re-issues the
    /// identical token. `vehicle` must already be normalised (parkpay-domain's vehicle number).
    pub fn new(session_id: &str, lot_id: &str, vehicle: &str, valid_from: i64, valid_until: i64) -> Self {
        Self {
            iss: ISSUER.to_owned(),
            sub: session_id.to_owned(),
            sid: session_id.to_owned(),
            lot: lot_id.to_owned(),
            veh: vehicle.to_owned(),
            nbf: valid_from,
            exp: valid_until,
            iat: valid_from,
            jti: Self::derive_jti(session_id),
        }
    }

    /// The pass id of a session: the first 16 bytes of SHA-256 over it, base64url (22
    /// characters). Every pass of one session has it, whatever its window (an extension re-issues
    /// the pass with a later `exp`), so revoking it revokes them all, and the list of revoked
    /// passes can name it without reading the session.
    pub fn derive_jti(session_id: &str) -> String {
        let input = format!("parkpay-pass\0{session_id}");
        URL_SAFE_NO_PAD.encode(&digest(&SHA256, input.as_bytes()).as_ref()[..16])
    }

    /// Checks what holds for every pass: issuer, `sub` = `sid`, non-empty ids, `nbf` < `exp`.
    pub fn check(&self) -> Result<(), PassError> {
        if self.iss != ISSUER {
            return Err(PassError::Claims("iss is not parkpay"));
        }
        if self.sub != self.sid {
            return Err(PassError::Claims("sub and sid differ"));
        }
        if self.sid.is_empty() || self.lot.is_empty() || self.veh.is_empty() || self.jti.is_empty() {
            return Err(PassError::Claims("an id is empty"));
        }
        if self.nbf >= self.exp {
            return Err(PassError::Claims("the validity window is empty"));
        }
        Ok(())
    }
}
