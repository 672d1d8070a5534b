//! Money. Inside parkpay every amount is an integer number of paise (1 rupee = 100 paise);
//! at the HTTP API it is a decimal string of rupees with exactly two decimals (`"100.00"`);
//! PhonePe gets integer paise as a JSON number. Floats never touch an amount.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount in paise. Always non-negative; arithmetic is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Paise(u64);

/// Why a rupee amount given by a client was refused. Every variant is a client mistake (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount is empty")]
    Empty,
    #[error("amount must be a plain decimal number of rupees such as \"100.00\"")]
    NotANumber,
    #[error("amount has more than two decimals")]
    TooManyDecimals,
    #[error("amount must be positive")]
    Negative,
    #[error("amount must be more than zero")]
    Zero,
    #[error("amount is above the maximum of {max}")]
    TooLarge { max: Paise },
}

/// Longest integer part we parse: 13 digits of rupees is far above any configured maximum and
/// keeps `rupees * 100 + paise` well inside `u64`.
const MAX_INTEGER_DIGITS: usize = 13;

impl Paise {
    pub const ZERO: Paise = Paise(0);

    pub const fn new(paise: u64) -> Self {
        Self(paise)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    pub const fn from_rupees(rupees: u64) -> Option<Self> {
        match rupees.checked_mul(100) {
            Some(p) => Some(Self(p)),
            None => None,
        }
    }

    pub fn checked_add(self, other: Paise) -> Option<Paise> {
        self.0.checked_add(other.0).map(Paise)
    }

    pub fn checked_sub(self, other: Paise) -> Option<Paise> {
        self.0.checked_sub(other.0).map(Paise)
    }

    pub fn checked_mul(self, factor: u64) -> Option<Paise> {
        self.0.checked_mul(factor).map(Paise)
    }

    /// Parse a client-given rupee amount: `"100"`, `"100.5"`, `"100.50"` (the text of a JSON
    /// string or of a JSON number literal). Refuses signs other than a leading `-` (reported as
    /// negative), exponents, separators, spaces, more than two decimals, zero, and anything above
    /// `max`.
    pub fn parse_rupees(text: &str, max: Paise) -> Result<Paise, MoneyError> {
        if text.is_empty() {
            return Err(MoneyError::Empty);
        }
        if let Some(rest) = text.strip_prefix('-') {
            // Only report "negative" for something that would otherwise be a number.
            return match Self::parse_unsigned(rest) {
                Ok(_) | Err(MoneyError::Zero | MoneyError::TooManyDecimals | MoneyError::TooLarge { .. }) => {
                    Err(MoneyError::Negative)
                }
                Err(e) => Err(e),
            };
        }
        // `parse_unsigned` does not know `max`: report the real one.
        let paise = Self::parse_unsigned(text).map_err(|e| match e {
            MoneyError::TooLarge { .. } => MoneyError::TooLarge { max },
            e => e,
        })?;
        if paise > max {
            return Err(MoneyError::TooLarge { max });
        }
        Ok(paise)
    }

    fn parse_unsigned(text: &str) -> Result<Paise, MoneyError> {
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) {
            return Err(MoneyError::NotANumber);
        }
        if let Some(f) = frac
            && !digits(f)
        {
            return Err(MoneyError::NotANumber);
        }
        let int = int.trim_start_matches('0');
        if int.len() > MAX_INTEGER_DIGITS {
            return Err(MoneyError::TooLarge { max: Paise(0) });
        }
        let rupees: u64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| MoneyError::NotANumber)? };
        let frac = frac.unwrap_or("");
        // Trailing zeros beyond two decimals are still "more than two decimals": "1.000" is
        // refused, as the contract says, rather than silently accepted.
        if frac.len() > 2 {
            return Err(MoneyError::TooManyDecimals);
        }
        let paise_part: u64 = match frac.len() {
            0 => 0,
            1 => u64::from(frac.as_bytes()[0] - b'0') * 10,
            _ => u64::from(frac.as_bytes()[0] - b'0') * 10 + u64::from(frac.as_bytes()[1] - b'0'),
        };
        let total = rupees * 100 + paise_part;
        if total == 0 {
            return Err(MoneyError::Zero);
        }
        Ok(Paise(total))
    }

    /// The API form: rupees with exactly two decimals, e.g. `"100.00"`.
    pub fn to_rupees_string(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Paise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: Paise = Paise(10_000_000); // 1,00,000.00 rupees

    #[test]
    fn parses_the_accepted_forms() {
        assert_eq!(Paise::parse_rupees("100", MAX), Ok(Paise(10_000)));
        assert_eq!(Paise::parse_rupees("100.5", MAX), Ok(Paise(10_050)));
        assert_eq!(Paise::parse_rupees("100.50", MAX), Ok(Paise(10_050)));
        assert_eq!(Paise::parse_rupees("0.01", MAX), Ok(Paise(1)));
        assert_eq!(Paise::parse_rupees("007.10", MAX), Ok(Paise(710)));
        assert_eq!(Paise::parse_rupees("100000.00", MAX), Ok(MAX));
    }

    #[test]
    fn refuses_everything_else() {
        use MoneyError::*;
        let cases: &[(&str, MoneyError)] = &[
            ("", Empty),
            ("0", Zero),
            ("0.00", Zero),
            ("-1", Negative),
            ("-0.5", Negative),
            ("-", NotANumber),
            ("1.001", TooManyDecimals),
            ("1.000", TooManyDecimals),
            ("1e2", NotANumber),
            ("1E2", NotANumber),
            ("+1", NotANumber),
            (" 1", NotANumber),
            ("1 ", NotANumber),
            ("1_000", NotANumber),
            ("1,000", NotANumber),
            (".5", NotANumber),
            ("5.", NotANumber),
            ("1.2.3", NotANumber),
            ("NaN", NotANumber),
            ("Infinity", NotANumber),
            ("१००", NotANumber),
            ("100000.01", TooLarge { max: MAX }),
            ("99999999999999999999999", TooLarge { max: MAX }),
            ("-99999999999999999999999", Negative),
        ];
        for (text, want) in cases {
            assert_eq!(Paise::parse_rupees(text, MAX), Err(want.clone()), "{text:?}");
        }
    }

    #[test]
    fn formats_with_two_decimals() {
        assert_eq!(Paise(10_000).to_string(), "100.00");
        assert_eq!(Paise(5).to_string(), "0.05");
        assert_eq!(Paise(10_050).to_rupees_string(), "100.50");
        assert_eq!(Paise(0).to_string(), "0.00");
    }

    #[test]
    fn serialises_as_integer_paise() {
        assert_eq!(serde_json::to_string(&Paise(10_000)).unwrap(), "10000");
        assert_eq!(serde_json::from_str::<Paise>("10000").unwrap(), Paise(10_000));
        assert!(serde_json::from_str::<Paise>("\"10000\"").is_err());
        assert!(serde_json::from_str::<Paise>("100.5").is_err());
        assert!(serde_json::from_str::<Paise>("-1").is_err());
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(p in 1u64..=10_000_000) {
            prop_assert_eq!(Paise::parse_rupees(&Paise(p).to_string(), MAX), Ok(Paise(p)));
        }

        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = Paise::parse_rupees(&s, MAX);
        }
    }
}
