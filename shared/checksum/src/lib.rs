//! PhonePe checksums.
//!
//! * PG v1 `X-VERIFY`: lowercase hex SHA-256 of a message followed by `###` and the salt index
//!   (`docs/phonepe.md` §2):
//!   - pay and refund: `sha256(base64Body + apiPath + saltKey)`,
//!   - status: `sha256(apiPath + saltKey)`,
//!   - inbound server-to-server callback: `sha256(base64Response + saltKey)`.
//! * PG v2 webhook `Authorization`: hex `sha256("username:password")`.
//!
//! Everything is computed over the exact text that travels on the wire: callers hand in the
//! base64 string as sent or received, never a re-serialised payload. Received headers are
//! parsed into typed values first (every malformed shape is a typed [`HeaderError`], never a
//! panic), the salt is chosen by the index the header names, and digests are compared in
//! constant time. Salt keys and webhook passwords are [`secrecy`] secrets: their `Debug`
//! output is redacted, so they cannot leak through a log line by accident.

use std::fmt;
use std::str::FromStr;

pub mod conformance;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The literal between the digest and the salt index.
pub const SEPARATOR: &str = "###";

/// Longest `X-VERIFY` value we are willing to look at: 64 hex digits, `###`, and an index of at
/// most [`MAX_INDEX_DIGITS`] digits. Anything longer is rejected before any other work.
pub const MAX_HEADER_LEN: usize = 64 + SEPARATOR.len() + MAX_INDEX_DIGITS;

/// Salt indices are small positive integers; nine digits always fit a `u32`.
pub const MAX_INDEX_DIGITS: usize = 9;

const DIGEST_HEX_LEN: usize = 64;

/// A malformed `X-VERIFY` (or webhook `Authorization`) header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("checksum header is empty")]
    Empty,
    #[error("checksum header is {len} bytes long, more than {max}")]
    TooLong { len: usize, max: usize },
    #[error("checksum header has no `###` separator")]
    MissingSeparator,
    #[error("checksum digest must be {expected} hex digits, got {len}")]
    DigestLength { len: usize, expected: usize },
    #[error("checksum digest is not hexadecimal")]
    NonHexDigest,
    #[error("salt index must be 1 to {MAX_INDEX_DIGITS} decimal digits")]
    BadIndex,
}

/// Why a received checksum was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("no salt key is configured for index {0}")]
    UnknownIndex(SaltIndex),
    #[error("checksum does not match")]
    Mismatch,
}

/// Invalid salt-key configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("salt key is empty")]
    EmptyKey,
    #[error("salt index {0} is configured twice")]
    DuplicateIndex(SaltIndex),
    #[error("at least one salt key is required")]
    NoKeys,
    #[error("the active salt index {0} has no key")]
    ActiveMissing(SaltIndex),
    #[error("several salt keys are configured: say which index signs")]
    NoActive,
    #[error("salt index must be 1 to {MAX_INDEX_DIGITS} decimal digits")]
    BadIndex,
    /// An entry of a key list (`index:key,index:key`) that is not `index:key`; counted from 1.
    /// Names the position only, never the text (it may hold a key).
    #[error("entry {0} of the salt key list is not index:key")]
    MalformedEntry(usize),
}

/// The number after `###` that names which of a merchant's salt keys signed a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SaltIndex(u32);

impl SaltIndex {
    pub const fn new(index: u32) -> Self {
        Self(index)
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for SaltIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for SaltIndex {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_index(s).map_err(|_| KeyError::BadIndex)
    }
}

/// Only plain ASCII digits: no sign, no spaces, no `0x`; at most nine of them.
fn parse_index(s: &str) -> Result<SaltIndex, HeaderError> {
    if s.is_empty() || s.len() > MAX_INDEX_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::BadIndex);
    }
    s.parse::<u32>().map(SaltIndex).map_err(|_| HeaderError::BadIndex)
}

/// One PhonePe salt key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SaltKey(SecretString);

impl SaltKey {
    pub fn new(key: impl Into<String>) -> Result<Self, KeyError> {
        let key: String = key.into();
        if key.is_empty() {
            return Err(KeyError::EmptyKey);
        }
        Ok(Self(SecretString::from(key)))
    }

    fn bytes(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

impl fmt::Debug for SaltKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SaltKey([REDACTED])")
    }
}

/// What an `X-VERIFY` value signs. Each variant is hashed as the concatenation of its parts
/// followed by the salt key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// `POST /pg/v1/pay` and `POST /pg/v1/refund`: the base64 body exactly as sent, then the API
    /// path (e.g. `/pg/v1/pay`).
    Body { base64: &'a str, path: &'a str },
    /// `GET /pg/v1/status/{merchantId}/{merchantTransactionId}`: the path alone.
    Path { path: &'a str },
    /// The inbound server-to-server callback: the `response` field exactly as received.
    Callback { response: &'a str },
}

impl Message<'_> {
    fn digest(&self, key: &SaltKey) -> [u8; 32] {
        let mut h = Sha256::new();
        match *self {
            Message::Body { base64, path } => {
                h.update(base64.as_bytes());
                h.update(path.as_bytes());
            }
            Message::Path { path } => h.update(path.as_bytes()),
            Message::Callback { response } => h.update(response.as_bytes()),
        }
        h.update(key.bytes());
        h.finalize().into()
    }
}

/// A parsed `X-VERIFY` value: a SHA-256 digest and the salt index that produced it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct XVerify {
    digest: [u8; 32],
    index: SaltIndex,
}

impl XVerify {
    /// Parse a received header value. Strict: exactly 64 hex digits (either case), `###`, and a
    /// decimal index; no surrounding or embedded whitespace.
    pub fn parse(header: &str) -> Result<Self, HeaderError> {
        if header.is_empty() {
            return Err(HeaderError::Empty);
        }
        if header.len() > MAX_HEADER_LEN {
            return Err(HeaderError::TooLong { len: header.len(), max: MAX_HEADER_LEN });
        }
        let (hex_part, index_part) = header.split_once(SEPARATOR).ok_or(HeaderError::MissingSeparator)?;
        let digest = parse_digest(hex_part)?;
        let index = parse_index(index_part)?;
        Ok(Self { digest, index })
    }

    /// Sign `message` with one key.
    pub fn sign(message: Message<'_>, key: &SaltKey, index: SaltIndex) -> Self {
        Self { digest: message.digest(key), index }
    }

    pub fn index(&self) -> SaltIndex {
        self.index
    }

    /// True when this value is `message` signed with `key`; constant time in the digest.
    pub fn matches(&self, message: Message<'_>, key: &SaltKey) -> bool {
        bool::from(self.digest.ct_eq(&message.digest(key)))
    }
}

impl FromStr for XVerify {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The header value as PhonePe writes it: lowercase hex, `###`, index.
impl fmt::Display for XVerify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEPARATOR}{}", hex::encode(self.digest), self.index)
    }
}

impl fmt::Debug for XVerify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "XVerify({self})")
    }
}

fn parse_digest(hex_part: &str) -> Result<[u8; 32], HeaderError> {
    if hex_part.len() != DIGEST_HEX_LEN {
        return Err(HeaderError::DigestLength { len: hex_part.len(), expected: DIGEST_HEX_LEN });
    }
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut digest).map_err(|_| HeaderError::NonHexDigest)?;
    Ok(digest)
}

/// A merchant's salt keys by index, and the one used to sign outgoing requests.
#[derive(Clone, Debug)]
pub struct SaltKeys {
    keys: Vec<(SaltIndex, SaltKey)>,
    active: SaltIndex,
}

impl SaltKeys {
    /// A single key (the common case).
    pub fn single(index: SaltIndex, key: SaltKey) -> Self {
        Self { keys: vec![(index, key)], active: index }
    }

    /// Several keys (during a key rotation, say); outgoing requests are signed with `active`,
    /// incoming ones are checked with whichever key their header names.
    pub fn new(keys: Vec<(SaltIndex, SaltKey)>, active: SaltIndex) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        for (i, (index, _)) in keys.iter().enumerate() {
            if keys[..i].iter().any(|(other, _)| other == index) {
                return Err(KeyError::DuplicateIndex(*index));
            }
        }
        if !keys.iter().any(|(index, _)| *index == active) {
            return Err(KeyError::ActiveMissing(active));
        }
        Ok(Self { keys, active })
    }

    pub fn active_index(&self) -> SaltIndex {
        self.active
    }

    pub fn key(&self, index: SaltIndex) -> Option<&SaltKey> {
        self.keys.iter().find(|(i, _)| *i == index).map(|(_, k)| k)
    }

    /// The configured indices, in the order given (not secret: they travel in every header).
    pub fn indexes(&self) -> impl Iterator<Item = SaltIndex> + '_ {
        self.keys.iter().map(|(index, _)| *index)
    }

    /// The same keys with another index signing (a key rotation's switch).
    pub fn with_active(&self, active: SaltIndex) -> Result<Self, KeyError> {
        Self::new(self.keys.clone(), active)
    }

    /// Several keys from the text form `index:key,index:key` (e.g. `1:old-key,2:new-key`):
    /// entries separated by commas, each an index (1 to 9 digits), a colon, and a key (which
    /// may itself hold colons but no comma); spaces around entries, indices and keys are
    /// ignored. `active` names the signing index; without it, a list of one key signs with
    /// that key, and a longer list is refused ([`KeyError::NoActive`]: it never guesses). Errors
    /// name positions and indices, never a key.
    pub fn parse_list(text: &str, active: Option<SaltIndex>) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for (n, entry) in text.split(',').enumerate() {
            let (index, key) = entry.split_once(':').ok_or(KeyError::MalformedEntry(n + 1))?;
            let index = index.trim().parse::<SaltIndex>().map_err(|_| KeyError::MalformedEntry(n + 1))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(KeyError::EmptyKey);
            }
            keys.push((index, SaltKey::new(key)?));
        }
        let active = match (active, keys.as_slice()) {
            (Some(a), _) => a,
            (None, [(only, _)]) => *only,
            (None, _) => return Err(KeyError::NoActive),
        };
        Self::new(keys, active)
    }

    /// Sign with the active key.
    pub fn sign(&self, message: Message<'_>) -> XVerify {
        let key = self.key(self.active).expect("constructor guarantees the active key exists");
        XVerify::sign(message, key, self.active)
    }

    /// Check a received header value against `message`; returns the index that signed it.
    pub fn verify(&self, header: &str, message: Message<'_>) -> Result<SaltIndex, VerifyError> {
        let received = XVerify::parse(header)?;
        let key = self.key(received.index).ok_or(VerifyError::UnknownIndex(received.index))?;
        if received.matches(message, key) { Ok(received.index) } else { Err(VerifyError::Mismatch) }
    }
}

/// PG v2 webhook credentials as configured on PhonePe's dashboard.
#[derive(Clone)]
pub struct WebhookCredentials {
    username: String,
    password: SecretString,
}

impl fmt::Debug for WebhookCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookCredentials").field("username", &self.username).field("password", &"[REDACTED]").finish()
    }
}

/// Why a v2 webhook `Authorization` header was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookAuthError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("webhook authorization does not match")]
    Mismatch,
}

impl WebhookCredentials {
    pub fn new(username: impl Into<String>, password: SecretString) -> Self {
        Self { username: username.into(), password }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.username.as_bytes());
        h.update(b":");
        h.update(self.password.expose_secret().as_bytes());
        h.finalize().into()
    }

    /// The header value PhonePe sends: lowercase hex `sha256("username:password")`.
    pub fn authorization(&self) -> String {
        hex::encode(self.digest())
    }

    /// Check a received `Authorization` value (64 hex digits, either case), in constant time.
    pub fn verify(&self, header: &str) -> Result<(), WebhookAuthError> {
        if header.is_empty() {
            return Err(HeaderError::Empty.into());
        }
        if header.len() > MAX_HEADER_LEN {
            return Err(HeaderError::TooLong { len: header.len(), max: MAX_HEADER_LEN }.into());
        }
        let received = parse_digest(header)?;
        if bool::from(received.ct_eq(&self.digest())) { Ok(()) } else { Err(WebhookAuthError::Mismatch) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secrets() {
        let key = SaltKey::new("super-secret-salt").unwrap();
        let keys = SaltKeys::single(SaltIndex::new(1), key.clone());
        let creds = WebhookCredentials::new("user", SecretString::from("hunter2"));
        let all = format!("{key:?} {keys:?} {creds:?}");
        assert!(!all.contains("super-secret-salt"), "{all}");
        assert!(!all.contains("hunter2"), "{all}");
        assert!(all.contains("REDACTED"));
    }

    #[test]
    fn key_set_rules() {
        let k = || SaltKey::new("k").unwrap();
        assert_eq!(SaltKey::new("").unwrap_err(), KeyError::EmptyKey);
        assert_eq!(SaltKeys::new(vec![], SaltIndex::new(1)).unwrap_err(), KeyError::NoKeys);
        assert_eq!(
            SaltKeys::new(vec![(SaltIndex::new(1), k()), (SaltIndex::new(1), k())], SaltIndex::new(1)).unwrap_err(),
            KeyError::DuplicateIndex(SaltIndex::new(1))
        );
        assert_eq!(
            SaltKeys::new(vec![(SaltIndex::new(1), k())], SaltIndex::new(2)).unwrap_err(),
            KeyError::ActiveMissing(SaltIndex::new(2))
        );
        assert_eq!("12".parse::<SaltIndex>().unwrap(), SaltIndex::new(12));
        for bad in ["", "+1", "-1", " 1", "1 ", "0x1", "1234567890", "١"] {
            assert_eq!(bad.parse::<SaltIndex>().unwrap_err(), KeyError::BadIndex, "{bad:?}");
        }
    }

    #[test]
    fn key_lists() {
        let msg = Message::Path { path: "/pg/v1/status/M/T" };
        let one = |k: &str, i: u32| SaltKeys::single(SaltIndex::new(i), SaltKey::new(k).unwrap());
        let both = SaltKeys::parse_list(" 1 : old-key , 2:new:key ", Some(SaltIndex::new(2))).unwrap();
        assert_eq!(both.indexes().collect::<Vec<_>>(), [SaltIndex::new(1), SaltIndex::new(2)]);
        assert_eq!(both.sign(msg), one("new:key", 2).sign(msg), "a key may hold colons; spaces around it go");
        assert_eq!(both.verify(&one("old-key", 1).sign(msg).to_string(), msg), Ok(SaltIndex::new(1)));
        let switched = both.with_active(SaltIndex::new(1)).unwrap();
        assert_eq!(switched.sign(msg), one("old-key", 1).sign(msg));
        assert_eq!(both.with_active(SaltIndex::new(3)).unwrap_err(), KeyError::ActiveMissing(SaltIndex::new(3)));
        // one entry signs by itself; several need the active index named
        assert_eq!(SaltKeys::parse_list("7:k", None).unwrap().active_index(), SaltIndex::new(7));
        assert_eq!(SaltKeys::parse_list("1:a,2:b", None).unwrap_err(), KeyError::NoActive);
        for (bad, err) in [
            ("", KeyError::MalformedEntry(1)),
            ("secret-without-index", KeyError::MalformedEntry(1)),
            ("1:a,,2:b", KeyError::MalformedEntry(2)),
            ("x:secret", KeyError::MalformedEntry(1)),
            ("1:", KeyError::EmptyKey),
            ("1:a,1:b", KeyError::DuplicateIndex(SaltIndex::new(1))),
        ] {
            let e = SaltKeys::parse_list(bad, Some(SaltIndex::new(1))).unwrap_err();
            assert_eq!(e, err, "{bad:?}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }
}
