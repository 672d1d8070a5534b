//! The pass keys: the current Ed25519 signing key, the public keys still accepted, their one
//! stored text form, rotation, the JWKS, and issuing passes.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::zeroize::{Zeroize, Zeroizing};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{PassClaims, PassError};

/// How many earlier public keys [`PassKeys::rotate`] keeps accepting (newest first).
pub const MAX_PREVIOUS: usize = 3;

/// The DER of a PKCS#8 v1 Ed25519 private key up to its 32-byte seed (RFC 8410 §7).
const PKCS8_V1_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// Longest stored text we read (a PEM key or the JSON form with a few previous keys is far less).
const MAX_STORED_LEN: usize = 16 * 1024;

/// An Ed25519 public key and its `kid`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PublicKey {
    pub(crate) x: [u8; 32],
    pub(crate) kid: String,
}

impl PublicKey {
    fn new(x: [u8; 32]) -> Self {
        Self { kid: thumbprint(&x), x }
    }

    fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.x),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        })
    }
}

/// The RFC 7638 thumbprint of an Ed25519 public key: SHA-256 over its required JWK members in
/// lexicographic order, base64url without padding.
pub(crate) fn thumbprint(x: &[u8; 32]) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(x));
    URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()))
}

/// The signing key of the passes and the public keys of earlier ones still accepted.
///
/// `Debug` shows the key ids only. Cloning copies the secret (it is wiped when dropped).
#[derive(Clone)]
pub struct PassKeys {
    seed: Zeroizing<[u8; 32]>,
    pub(crate) encoding: EncodingKey,
    current: PublicKey,
    previous: Vec<PublicKey>,
}

/// The stored JSON form, as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    signing: String,
    #[serde(default)]
    previous: Vec<String>,
}

impl PassKeys {
    /// A fresh signing key (from the system's random generator), with no previous keys.
    pub fn generate() -> Result<Self, PassError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(seed.as_mut()).map_err(|_| PassError::Crypto)?;
        Self::from_seed(seed, Vec::new())
    }

    /// Keys from their stored text: the JSON form written by [`PassKeys::to_stored`]
    /// (`{"signing": "<base64url seed>", "previous": ["<base64url x>", ...]}`, `previous`
    /// optional), or a single unencrypted PKCS#8 PEM Ed25519 private key (`-----BEGIN PRIVATE
    /// KEY-----`, as `openssl genpkey -algorithm ed25519` prints it). Surrounding whitespace is
    /// ignored. Errors never quote the text.
    pub fn from_stored(text: &str) -> Result<Self, PassError> {
        if text.len() > MAX_STORED_LEN {
            return Err(PassError::Keys("the stored text is too long"));
        }
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            return Self::from_pem(text);
        }
        if !text.starts_with('{') {
            return Err(PassError::Keys("neither the JSON form nor a PEM private key"));
        }
        // serde_json's messages can quote the input: only a fixed reason is reported.
        let mut stored: Stored =
            serde_json::from_str(text).map_err(|_| PassError::Keys("not the JSON form of the pass keys"))?;
        let seed =
            decode_32(&stored.signing).map_err(|()| PassError::Keys("`signing` is not a base64url 32-byte seed"));
        stored.signing.zeroize();
        let previous = stored
            .previous
            .iter()
            .map(|x| decode_32(x).map(|x| PublicKey::new(*x)))
            .collect::<Result<Vec<_>, ()>>()
            .map_err(|()| PassError::Keys("a `previous` key is not a base64url 32-byte public key"))?;
        Self::from_seed(seed?, previous)
    }

    fn from_pem(text: &str) -> Result<Self, PassError> {
        const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
        const END: &str = "-----END PRIVATE KEY-----";
        let body = text
            .strip_prefix(BEGIN)
            .and_then(|rest| rest.strip_suffix(END))
            .ok_or(PassError::Keys("not one unencrypted PEM private key (BEGIN/END PRIVATE KEY)"))?;
        let b64 = Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect::<String>());
        let der =
            Zeroizing::new(STANDARD.decode(b64.as_bytes()).map_err(|_| PassError::Keys("the PEM body is not base64"))?);
        let pair = Ed25519KeyPair::from_pkcs8(&der)
            .map_err(|_| PassError::Keys("the PEM key is not an Ed25519 PKCS#8 private key"))?;
        let seed_bin = pair.seed().and_then(|s| s.as_be_bytes()).map_err(|_| PassError::Crypto)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        if seed_bin.as_ref().len() != 32 {
            return Err(PassError::Keys("the PEM key's seed is not 32 bytes"));
        }
        seed.copy_from_slice(seed_bin.as_ref());
        Self::from_seed(seed, Vec::new())
    }

    /// Keys from a signing seed and the earlier public keys. The current key is dropped from
    /// `previous`, and so are repeats.
    pub(crate) fn from_seed(seed: Zeroizing<[u8; 32]>, previous: Vec<PublicKey>) -> Result<Self, PassError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.as_ref()).map_err(|_| PassError::Crypto)?;
        let x: [u8; 32] = pair.public_key().as_ref().try_into().map_err(|_| PassError::Crypto)?;
        let current = PublicKey::new(x);
        let mut der = Zeroizing::new(Vec::with_capacity(48));
        der.extend_from_slice(&PKCS8_V1_PREFIX);
        der.extend_from_slice(seed.as_ref());
        let encoding = EncodingKey::from_ed_der(&der);
        let mut kept: Vec<PublicKey> = Vec::with_capacity(previous.len());
        for key in previous {
            if key != current && !kept.contains(&key) {
                kept.push(key);
            }
        }
        Ok(Self { seed, encoding, current, previous: kept })
    }

    /// The stored text form (JSON, see [`PassKeys::from_stored`]). It holds the private key:
    /// write it to the SSM SecureString or the local data file only.
    pub fn to_stored(&self) -> String {
        let previous: Vec<String> = self.previous.iter().map(|k| URL_SAFE_NO_PAD.encode(k.x)).collect();
        json!({ "signing": URL_SAFE_NO_PAD.encode(self.seed.as_ref()), "previous": previous }).to_string()
    }

    /// New keys with a fresh signing key; the current public key becomes the newest previous
    /// one, and at most [`MAX_PREVIOUS`] previous keys are kept (the oldest go).
    pub fn rotate(&self) -> Result<Self, PassError> {
        let fresh = Self::generate()?;
        let mut previous = Vec::with_capacity(MAX_PREVIOUS);
        previous.push(self.current.clone());
        previous.extend(self.previous.iter().cloned());
        previous.truncate(MAX_PREVIOUS);
        Self::from_seed(fresh.seed.clone(), previous)
    }

    /// The `kid` of the current signing key (its RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.current.kid
    }

    /// The `kid`s of the previous keys still accepted, newest first.
    pub fn previous_kids(&self) -> impl Iterator<Item = &str> {
        self.previous.iter().map(|k| k.kid.as_str())
    }

    /// The public keys as a JWKS: `{"keys": [{"kty":"OKP","crv":"Ed25519","x",..,"kid",..,
    /// "use":"sig","alg":"EdDSA"}, ...]}`, the current key first, then the previous ones.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = std::iter::once(&self.current).chain(&self.previous).map(PublicKey::jwk).collect();
        json!({ "keys": keys })
    }

    /// The pass (a compact JWS) for `claims`, signed with the current key; header
    /// `{"typ":"JWT","alg":"EdDSA","kid":<kid>}`. Deterministic: the same claims and key give the
    /// same token. The claims must pass [`PassClaims::check`].
    pub fn issue(&self, claims: &PassClaims) -> Result<String, PassError> {
        claims.check()?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.current.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|_| PassError::Crypto)
    }
}

impl fmt::Debug for PassKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassKeys")
            .field("kid", &self.current.kid)
            .field("previous", &self.previous.iter().map(|k| &k.kid).collect::<Vec<_>>())
            .field("signing", &"[redacted]")
            .finish()
    }
}

/// Decodes base64url (no padding) of exactly 32 bytes.
fn decode_32(text: &str) -> Result<Zeroizing<[u8; 32]>, ()> {
    let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(text).map_err(|_| ())?);
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(());
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}
