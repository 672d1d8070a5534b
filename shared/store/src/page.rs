//! Page cursors: what [`Store::list_sessions_page`](crate::Store::list_sessions_page),
//! [`Store::list_revoked`](crate::Store::list_revoked) and
//! [`Store::list_ledger`](crate::Store::list_ledger) hand out as `next_cursor` and take back.
//!
//! A cursor is the position of the last entry of a page (its sort key on the index the listing
//! reads: `{ms:015}#{session_id}`, or a ledger entry's `{ms:015}#{txn_id}#{state}`), tagged with
//! the listing it belongs to, followed by a checksum
//! (FNV-1a, 32 bits) of both, and encoded as unpadded base64url: opaque to clients, safe in a URL
//! as it is, and the same on both backends. Decoding is strict (canonical base64url only, the
//! checksum, the listing's tag, a well-formed position): a malformed, truncated or altered cursor
//! is [`StoreError::Invalid`].
//!
//! The checksum is not a secret: it catches damage and casual edits, not a forger. None is needed
//! to protect data: a cursor is only a position, never a permission. Every listing stays within
//! its key (the caller's own `USER#…` partition; the one list of revoked passes), so a cursor made
//! up by hand can only start a page elsewhere in what the caller may read anyway.

use parkpay_domain::{SessionId, Timestamp};

use crate::StoreError;
use crate::keys;

/// Most entries one page may hold (the least is 1).
pub const MAX_PAGE_LIMIT: usize = 100;

/// Longest cursor accepted, in characters (a position is at most 58 bytes, a ledger's; tagged,
/// summed and encoded, 87).
const MAX_CURSOR_LEN: usize = 128;

/// Which listing a cursor belongs to: a cursor of one is refused by the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    /// A user's sessions, newest first.
    Sessions,
    /// Revoked passes, oldest first.
    Revoked,
    /// The settlement ledger, oldest first.
    Ledger,
}

impl Listing {
    const fn tag(self) -> &'static str {
        match self {
            Listing::Sessions => "s1:",
            Listing::Revoked => "r1:",
            Listing::Ledger => "l1:",
        }
    }

    /// Whether `position` is one this listing makes.
    fn is_position(self, position: &str) -> bool {
        match self {
            Listing::Sessions | Listing::Revoked => parse_position(position).is_some(),
            Listing::Ledger => crate::ledger::parse_position(position).is_some(),
        }
    }
}

/// `limit` is within 1..=[`MAX_PAGE_LIMIT`].
pub(crate) fn check_limit(limit: usize) -> Result<(), StoreError> {
    if (1..=MAX_PAGE_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!("page limit {limit}: must be 1..={MAX_PAGE_LIMIT}")))
    }
}

/// The cursor naming `position` (a sort key of `listing`'s) in `listing`.
pub(crate) fn encode(listing: Listing, position: &str) -> String {
    let mut bytes = format!("{}{position}", listing.tag()).into_bytes();
    let sum = fnv1a(&bytes);
    bytes.extend(sum.to_be_bytes());
    base64url(&bytes)
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// The position a cursor of `listing` names; [`StoreError::Invalid`] for anything else.
pub(crate) fn decode(listing: Listing, cursor: &str) -> Result<String, StoreError> {
    let invalid = || StoreError::Invalid("malformed cursor".into());
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
        return Err(invalid());
    }
    let mut bytes = from_base64url(cursor).ok_or_else(invalid)?;
    let sum = bytes.split_off(bytes.len().checked_sub(4).ok_or_else(invalid)?);
    if sum != fnv1a(&bytes).to_be_bytes() {
        return Err(invalid());
    }
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let position = text.strip_prefix(listing.tag()).filter(|p| listing.is_position(p)).ok_or_else(invalid)?;
    Ok(position.to_owned())
}

/// The time and session of a position `{ms:015}#{session_id}` (what [`keys::session_gsi1sk`]
/// and [`keys::revoked_gsi3sk`] make), if it is well formed.
pub(crate) fn parse_position(position: &str) -> Option<(Timestamp, SessionId)> {
    let (millis, tail) = position.split_at_checked(15)?;
    if !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let at = Timestamp::from_unix_millis(millis.parse().ok()?).ok()?;
    let id = SessionId::parse(tail.strip_prefix('#')?).ok()?;
    // Canonical: exactly what the store writes.
    (keys::session_gsi1sk(at, &id) == position).then_some((at, id))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk.first(), chunk.get(1), chunk.get(2)].map(|b| b.copied().unwrap_or(0));
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let sextet = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET.get(sextet as usize).copied().unwrap_or(b'A')));
        }
    }
    out
}

/// Strict unpadded base64url: `None` for any other character, a length no encoding has, or
/// trailing bits that are not zero (so each byte string has exactly one cursor).
fn from_base64url(text: &str) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let sextets: Vec<u32> = text
        .bytes()
        .map(|c| ALPHABET.iter().position(|&a| a == c).and_then(|p| u32::try_from(p).ok()))
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, s)| n | (s << (18 - 6 * i)));
        let bytes = chunk.len() - 1;
        // Bits below the last whole byte must be zero.
        if n & ((1 << (24 - 8 * bytes)) - 1) != 0 {
            return None;
        }
        out.extend(n.to_be_bytes().iter().skip(1).take(bytes));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_and_is_strict() {
        for input in ["", "f", "fo", "foo", "foob", "fooba", "foobar", "s1:\u{ff}~?"] {
            let encoded = base64url(input.as_bytes());
            assert!(encoded.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{encoded}");
            assert_eq!(from_base64url(&encoded).unwrap(), input.as_bytes(), "{input:?}");
        }
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        for bad in ["Zm8=", "Zm9", "Z", "Zm+v", "Zm/v", "Zm 9", "Zm9\u{e9}"] {
            assert_eq!(from_base64url(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cursors_name_positions_of_one_listing() {
        let id = SessionId::from_random([3; 16]);
        let position = keys::session_gsi1sk(Timestamp::from_unix_millis(1_234).unwrap(), &id);
        let cursor = encode(Listing::Sessions, &position);
        assert_eq!(decode(Listing::Sessions, &cursor).unwrap(), position);
        assert!(matches!(decode(Listing::Revoked, &cursor), Err(StoreError::Invalid(_))));
        let revoked = encode(Listing::Revoked, &position);
        assert_eq!(decode(Listing::Revoked, &revoked).unwrap(), position);
        assert!(matches!(decode(Listing::Ledger, &revoked), Err(StoreError::Invalid(_))));
        let entry = keys::ledger_position(
            Timestamp::from_unix_millis(1_234).unwrap(),
            &"P".repeat(34),
            crate::LedgerState::Failed,
        );
        let ledger = encode(Listing::Ledger, &entry);
        assert!(ledger.len() <= MAX_CURSOR_LEN, "{}", ledger.len());
        assert_eq!(decode(Listing::Ledger, &ledger).unwrap(), entry);
        assert!(matches!(decode(Listing::Sessions, &ledger), Err(StoreError::Invalid(_))));
        assert!(matches!(decode(Listing::Ledger, &encode(Listing::Ledger, &position)), Err(StoreError::Invalid(_))));
        // Altered, truncated, extended, or not a position at all.
        let mut flipped = cursor.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [
            String::new(),
            "x".repeat(MAX_CURSOR_LEN + 1),
            cursor[..cursor.len() - 4].to_owned(),
            format!("{cursor}AAAA"),
            flipped,
            encode(Listing::Sessions, "000000000001234#nope"),
            encode(Listing::Sessions, &format!("1234#{id}")),
            encode(Listing::Sessions, &format!("999999999999999#{id}")),
            encode(Listing::Sessions, &format!("+00000000001234#{id}")),
            base64url(position.as_bytes()),
            base64url(format!("s1:{position}").as_bytes()),
            "not a cursor".to_owned(),
        ] {
            assert!(matches!(decode(Listing::Sessions, &bad), Err(StoreError::Invalid(_))), "{bad:?}");
        }
    }

    #[test]
    fn limits() {
        assert!(check_limit(0).is_err());
        assert!(check_limit(1).is_ok());
        assert!(check_limit(MAX_PAGE_LIMIT).is_ok());
        assert!(check_limit(MAX_PAGE_LIMIT + 1).is_err());
    }
}
