//! Points in time. The domain never reads a clock: callers pass `now` in.
//!
//! A [`Timestamp`] is a count of milliseconds since the Unix epoch, from 1970-01-01T00:00:00.000Z
//! to 9999-12-31T23:59:59.999Z, so that every value has an RFC 3339 form. Stores persist it as
//! that integer; the API shows it as RFC 3339 in UTC with exactly three decimals,
//! `2026-11-27T18:00:00.123Z` (use [`rfc3339`] with `#[serde(with = …)]` in API types).

use std::fmt;
use std::time::Duration;

use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Milliseconds since the Unix epoch, within `0..=Timestamp::MAX`. Ordered; serialises as the
/// integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Timestamp(i64);

impl Timestamp {
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);
    /// 9999-12-31T23:59:59.999Z.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999);

    /// Longest RFC 3339 text we look at (the longest sensible one is 35 bytes:
    /// nanoseconds and an offset).
    const MAX_TEXT_LEN: usize = 40;

    pub fn from_unix_millis(ms: i64) -> Result<Self, DomainError> {
        if (0..=Self::MAX.0).contains(&ms) { Ok(Self(ms)) } else { Err(DomainError::InvalidTimestamp) }
    }

    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// Parse any RFC 3339 date-time (`Z` or a numeric offset, any number of decimals); the result
    /// is in UTC, truncated to the millisecond.
    pub fn parse_rfc3339(text: &str) -> Result<Self, DomainError> {
        if text.len() > Self::MAX_TEXT_LEN {
            return Err(DomainError::InvalidTimestamp);
        }
        // The `time` crate takes any character between date and time; RFC 3339 allows `T`
        // (either case), or a space (its §5.6 note).
        if !matches!(text.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
            return Err(DomainError::InvalidTimestamp);
        }
        let dt = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| DomainError::InvalidTimestamp)?;
        let ms = dt.unix_timestamp_nanos().div_euclid(1_000_000);
        i64::try_from(ms).map_err(|_| DomainError::InvalidTimestamp).and_then(Self::from_unix_millis)
    }

    /// RFC 3339 in UTC with exactly three decimals, e.g. `2026-11-27T18:00:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_string()
    }

    /// `self + d`, or `None` past [`Timestamp::MAX`].
    pub fn checked_add(self, d: Duration) -> Option<Timestamp> {
        let ms = i64::try_from(d.as_millis()).ok()?;
        Self::from_unix_millis(self.0.checked_add(ms)?).ok()
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0).unsigned_abs())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // In range by construction, so the addition cannot overflow `time`'s ±9999 years.
        let dt = OffsetDateTime::UNIX_EPOCH + ::time::Duration::milliseconds(self.0);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        )
    }
}

impl std::str::FromStr for Timestamp {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        Self::parse_rfc3339(s)
    }
}

impl TryFrom<i64> for Timestamp {
    type Error = DomainError;
    fn try_from(ms: i64) -> Result<Self, DomainError> {
        Self::from_unix_millis(ms)
    }
}

impl From<Timestamp> for i64 {
    fn from(t: Timestamp) -> i64 {
        t.0
    }
}

/// Serde as an RFC 3339 string, for API types: `#[serde(with = "parkpay_domain::time::rfc3339")]`.
pub mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Timestamp;

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms).unwrap()
    }

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(Timestamp::UNIX_EPOCH.to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(ts(1_795_802_400_123).to_rfc3339(), "2026-11-27T18:00:00.123Z");
        assert_eq!(ts(951_782_400_000).to_string(), "2000-02-29T00:00:00.000Z");
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(Timestamp::parse_rfc3339("2026-11-27T18:00:00.123Z"), Ok(ts(1_795_802_400_123)));
        assert_eq!(Timestamp::parse_rfc3339("2026-11-27T23:30:00.123+05:30"), Ok(ts(1_795_802_400_123)));
        assert_eq!(Timestamp::parse_rfc3339("2026-11-27T18:00:00Z"), Ok(ts(1_795_802_400_000)));
        assert_eq!(Timestamp::parse_rfc3339("2026-11-27T18:00:00.123999999Z"), Ok(ts(1_795_802_400_123)));
        // RFC 3339 allows a space for the `T`.
        assert_eq!(Timestamp::parse_rfc3339("2026-11-27 18:00:00Z"), Ok(ts(1_795_802_400_000)));
        for bad in ["2026-11-27X18:00:00Z", "2026-11-27_18:00:00Z", "2026-11-27"] {
            assert_eq!(Timestamp::parse_rfc3339(bad), Err(DomainError::InvalidTimestamp), "{bad}");
        }
        for bad in [
            "",
            "2026-11-27",
            "2026-11-27T18:00:00",
            "2026-02-30T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "2026-11-27T18:00:00.123Z                         ",
            "२०२६-11-27T18:00:00Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), Err(DomainError::InvalidTimestamp), "{bad:?}");
        }
    }

    #[test]
    fn range_and_arithmetic() {
        assert!(Timestamp::from_unix_millis(-1).is_err());
        assert!(Timestamp::from_unix_millis(Timestamp::MAX.unix_millis() + 1).is_err());
        assert_eq!(ts(1_000).checked_add(Duration::from_secs(2)), Some(ts(3_000)));
        assert_eq!(Timestamp::MAX.checked_add(Duration::from_millis(1)), None);
        assert_eq!(Timestamp::MAX.checked_add(Duration::MAX), None);
        assert_eq!(ts(3_000).saturating_since(ts(1_000)), Duration::from_secs(2));
        assert_eq!(ts(1_000).saturating_since(ts(3_000)), Duration::ZERO);
    }

    #[test]
    fn serde_forms() {
        let t = ts(1_795_802_400_123);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1795802400123");
        assert_eq!(serde_json::from_str::<Timestamp>("1795802400123").unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("-5").is_err());

        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Api {
            #[serde(with = "rfc3339")]
            created_at: Timestamp,
        }
        let json = r#"{"created_at":"2026-11-27T18:00:00.123Z"}"#;
        assert_eq!(serde_json::to_string(&Api { created_at: t }).unwrap(), json);
        assert_eq!(serde_json::from_str::<Api>(json).unwrap(), Api { created_at: t });
    }

    proptest! {
        #[test]
        fn rfc3339_round_trips(ms in 0..=Timestamp::MAX.unix_millis()) {
            let t = ts(ms);
            let text = t.to_rfc3339();
            prop_assert_eq!(text.len(), 24);
            prop_assert_eq!(Timestamp::parse_rfc3339(&text), Ok(t));
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = Timestamp::parse_rfc3339(&s);
        }
    }
}
