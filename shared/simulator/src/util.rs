//! Small helpers: ids, tokens, money text, HTML escaping.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// 64 unpredictable bits: std's randomly keyed SipHash over a counter and the clock. Enough for
/// a simulator's opaque tokens; not a CSPRNG.
pub(crate) fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

/// 32 hex digits for a pay page link.
pub(crate) fn new_token() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

/// PhonePe-looking `transactionId`: `T` and 22 digits.
pub(crate) fn new_provider_txn_id() -> String {
    let seq = COUNTER.fetch_add(1, Ordering::Relaxed) % 1_000_000_000;
    format!("T{:013}{:09}", now_ms() % 10_000_000_000_000, seq)
}

/// A PhonePe-looking PG v2 id: `prefix` and 22 digits (`OMO…` orders, `OMR…` refunds, `OM…`
/// payment attempts).
pub(crate) fn new_v2_id(prefix: &str) -> String {
    format!("{prefix}{}", &new_provider_txn_id()[1..])
}

/// A 12-digit bank reference.
pub(crate) fn new_utr() -> String {
    format!("{:012}", random_u64() % 1_000_000_000_000)
}

/// `10050` paise → `"100.50"`.
pub(crate) fn rupees(paise: u64) -> String {
    format!("{}.{:02}", paise / 100, paise % 100)
}

/// `[A-Za-z0-9_-]`, 1 to `max` characters.
pub(crate) fn valid_id(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Longest `merchantTransactionId` we accept (PhonePe's doc revisions say below 35, 36 or 38).
pub(crate) const MAX_TXN_ID: usize = 34;
/// Longest PG v2 `merchantOrderId` / `merchantRefundId` (PhonePe: at most 63).
pub(crate) const MAX_ORDER_ID: usize = 63;
/// Longest `merchantUserId` (PhonePe: below 36).
pub(crate) const MAX_USER_ID: usize = 35;

pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(rupees(10_050), "100.50");
        assert_eq!(rupees(100), "1.00");
        assert_eq!(rupees(5), "0.05");
        assert_eq!(html_escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(new_provider_txn_id().len(), 23);
        assert_eq!(new_utr().len(), 12);
        let order = new_v2_id("OMO");
        assert!(order.starts_with("OMO") && order.len() == 25, "{order}");
        assert!(valid_id(&"x".repeat(MAX_ORDER_ID), MAX_ORDER_ID));
        assert!(valid_id("MT-1_a", MAX_TXN_ID));
        assert!(!valid_id("", MAX_TXN_ID));
        assert!(!valid_id(&"x".repeat(35), MAX_TXN_ID));
        assert!(!valid_id("a b", MAX_TXN_ID));
    }
}
