//! Identifiers as validated newtypes: the only ways to get one are `parse` (text from outside)
//! and, for the ids we mint, `from_random` (the caller supplies 16 random bytes; this crate never
//! draws randomness). Each serialises as its string and deserialises through `parse`.
//!
//! | type | rule | minted as |
//! |---|---|---|
//! | [`UserId`] | the JWT `sub`: 1–128 printable ASCII, no whitespace or control | — |
//! | [`SessionId`] | `ps_` + 26 lowercase Crockford base32 (128 bits) | `ps_…` |
//! | [`LotId`] | `[A-Z0-9-]{1,32}`, e.g. `MG-ROAD-1` | — (configuration) |
//! | [`PaymentId`] | PhonePe's merchantTransactionId rule: 1–34 of `[A-Za-z0-9_-]` | `PP` + 26 upper base32 |
//! | [`RefundId`] | the same (a refund is a PhonePe transaction too) | `RF` + 26 upper base32 |
//!
//! Because [`PaymentId`] and [`RefundId`] follow PhonePe's rule, each converts into the gateway's
//! merchant transaction id without failing.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Crockford's base32 alphabet (no I, L, O, U), lower case.
const CROCKFORD_LOWER: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// 128 bits as 26 base32 characters, most significant first; the first character carries only
/// 3 bits, so it is always one of `0`–`7` (as in a ULID).
fn base32_128(bytes: [u8; 16], upper: bool) -> String {
    let n = u128::from_be_bytes(bytes);
    (0..26)
        .map(|i| {
            let c = CROCKFORD_LOWER[((n >> (5 * (25 - i))) & 31) as usize];
            char::from(if upper { c.to_ascii_uppercase() } else { c })
        })
        .collect()
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $err:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, DomainError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, DomainError> {
                if Self::is_valid(&s) { Ok(Self(s)) } else { Err(DomainError::$err) }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl $name {
            /// Parse text from outside; see the type's rule.
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                if Self::is_valid(s) { Ok(Self(s.to_owned())) } else { Err(DomainError::$err) }
            }
        }
    };
}

string_id!(
    /// A user: the JWT `sub` claim. 1–128 printable ASCII characters (`!`..=`~`): no spaces, no
    /// control characters, nothing outside ASCII.
    UserId,
    InvalidUserId
);

impl UserId {
    pub const MAX_LEN: usize = 128;

    fn is_valid(s: &str) -> bool {
        (1..=Self::MAX_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
    }
}

string_id!(
    /// A parking session, minted by us: `ps_` followed by 26 lowercase Crockford base32 characters
    /// encoding 128 bits, exactly what [`SessionId::from_random`] makes and nothing else. Put a
    /// millisecond timestamp in the first 6 bytes for ULID-like ordering if wanted.
    SessionId,
    InvalidSessionId
);

impl SessionId {
    pub const PREFIX: &'static str = "ps_";
    pub const LEN: usize = 3 + 26;

    /// The id for 16 random bytes supplied by the caller.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(format!("{}{}", Self::PREFIX, base32_128(bytes, false)))
    }

    fn is_valid(s: &str) -> bool {
        let Some(body) = s.strip_prefix(Self::PREFIX) else { return false };
        body.len() == 26
            && (b'0'..=b'7').contains(&body.as_bytes()[0])
            && body.bytes().all(|b| CROCKFORD_LOWER.contains(&b))
    }
}

string_id!(
    /// A parking lot (configuration): 1–32 characters of `A-Z`, `0-9` and `-`, e.g. `MG-ROAD-1`.
    LotId,
    InvalidLotId
);

impl LotId {
    pub const MAX_LEN: usize = 32;

    fn is_valid(s: &str) -> bool {
        (1..=Self::MAX_LEN).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
    }
}

/// PhonePe's merchantTransactionId rule, shared by payment and refund ids.
fn is_phonepe_txn_id(s: &str) -> bool {
    (1..=PaymentId::MAX_LEN).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

string_id!(
    /// A payment: its PhonePe merchantTransactionId. 1–34 characters of `[A-Za-z0-9_-]`.
    /// Minted by [`PaymentId::from_random`] as `PP` + 26 upper-case base32 characters (28 in all).
    PaymentId,
    InvalidPaymentId
);

impl PaymentId {
    pub const MAX_LEN: usize = 34;

    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(format!("PP{}", base32_128(bytes, true)))
    }

    fn is_valid(s: &str) -> bool {
        is_phonepe_txn_id(s)
    }
}

string_id!(
    /// A refund: the merchantTransactionId of the refund at PhonePe, same rule as [`PaymentId`].
    /// Minted by [`RefundId::from_random`] as `RF` + 26 upper-case base32 characters.
    RefundId,
    InvalidRefundId
);

impl RefundId {
    pub const MAX_LEN: usize = PaymentId::MAX_LEN;

    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(format!("RF{}", base32_128(bytes, true)))
    }

    fn is_valid(s: &str) -> bool {
        is_phonepe_txn_id(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn user_ids() {
        for ok in ["a", "auth0|5f1c", "0b7e6c1e-9f3a-4c55-8a51-2d4c1e0e9f10", &"x".repeat(128)] {
            assert_eq!(UserId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", " ", "a b", "a\tb", "a\n", "é", "\u{7f}", &"x".repeat(129)] {
            assert_eq!(UserId::parse(bad), Err(DomainError::InvalidUserId), "{bad:?}");
        }
    }

    #[test]
    fn session_ids() {
        assert_eq!(SessionId::from_random([0; 16]).as_str(), "ps_00000000000000000000000000");
        assert_eq!(SessionId::from_random([0xff; 16]).as_str(), "ps_7zzzzzzzzzzzzzzzzzzzzzzzzz");
        let id = SessionId::from_random(*b"0123456789abcdef");
        assert_eq!(id.as_str().len(), SessionId::LEN);
        assert_eq!(SessionId::parse(id.as_str()), Ok(id));
        for bad in [
            "",
            "ps_",
            "ps_0000000000000000000000000",   // 25
            "ps_000000000000000000000000000", // 27
            "ps_80000000000000000000000000",  // above 128 bits
            "ps_0000000000000000000000000i",  // not Crockford
            "ps_0000000000000000000000000Z",  // upper case
            "PS_00000000000000000000000000",
            "xx_00000000000000000000000000",
        ] {
            assert_eq!(SessionId::parse(bad), Err(DomainError::InvalidSessionId), "{bad:?}");
        }
    }

    #[test]
    fn lot_ids() {
        for ok in ["MG-ROAD-1", "A", "-", &"A".repeat(32)] {
            assert!(LotId::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "mg-road-1", "MG ROAD", "MG_ROAD", "MG-ROAD-\u{0661}", &"A".repeat(33)] {
            assert_eq!(LotId::parse(bad), Err(DomainError::InvalidLotId), "{bad:?}");
        }
    }

    #[test]
    fn payment_and_refund_ids() {
        let p = PaymentId::from_random([7; 16]);
        assert!(p.as_str().starts_with("PP") && p.as_str().len() == 28);
        let r = RefundId::from_random([7; 16]);
        assert!(r.as_str().starts_with("RF") && r.as_str().len() == 28);
        for ok in ["T1", "a_b-C", &"x".repeat(34)] {
            assert!(PaymentId::parse(ok).is_ok() && RefundId::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "a b", "a.b", "a/b", "ü", &"x".repeat(35)] {
            assert_eq!(PaymentId::parse(bad), Err(DomainError::InvalidPaymentId), "{bad:?}");
            assert_eq!(RefundId::parse(bad), Err(DomainError::InvalidRefundId), "{bad:?}");
        }
    }

    #[test]
    fn serde_goes_through_parse() {
        let id = LotId::parse("MG-ROAD-1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"MG-ROAD-1\"");
        assert_eq!(serde_json::from_str::<LotId>("\"MG-ROAD-1\"").unwrap(), id);
        assert!(serde_json::from_str::<LotId>("\"mg-road-1\"").is_err());
        assert!(serde_json::from_str::<SessionId>("\"ps_x\"").is_err());
    }

    proptest! {
        #[test]
        fn minted_ids_parse_back(bytes in any::<[u8; 16]>()) {
            let s = SessionId::from_random(bytes);
            prop_assert_eq!(SessionId::parse(s.as_str()), Ok(s));
            let p = PaymentId::from_random(bytes);
            prop_assert_eq!(PaymentId::parse(p.as_str()), Ok(p));
            let r = RefundId::from_random(bytes);
            prop_assert_eq!(RefundId::parse(r.as_str()), Ok(r));
        }

        #[test]
        fn distinct_bytes_distinct_ids(a in any::<[u8; 16]>(), b in any::<[u8; 16]>()) {
            prop_assert_eq!(a == b, SessionId::from_random(a) == SessionId::from_random(b));
        }

        #[test]
        fn parsers_never_panic(s in any::<String>()) {
            let _ = (UserId::parse(&s), SessionId::parse(&s), LotId::parse(&s), PaymentId::parse(&s), RefundId::parse(&s));
        }
    }
}
