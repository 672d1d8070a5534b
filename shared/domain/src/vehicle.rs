//! Indian vehicle registration numbers.
//!
//! [`VehicleNumber::parse`] normalises and validates; the result is always in one canonical form:
//! - standard: state (2 letters) – RTO (1–2 digits, shown as 2) – series (0–3 letters) – number
//!   (1–4 digits, shown as 4): `ka 01 ab 1234`, `KA01AB1234`, `KA-1-AB-1234` → `KA-01-AB-1234`;
//!   without a series: `DL-01-1234`.
//! - Bharat series: year (2 digits) – `BH` – number (4 digits) – letters (1–2): `22BH1234AB` →
//!   `22-BH-1234-AB`.
//!
//! Input is ASCII only: anything else (full-width letters, Devanagari digits, …) is refused, as
//! is input longer than [`VehicleNumber::MAX_INPUT_LEN`] bytes (checked before any other work).
//! Spaces, hyphens and dots are dropped and letters upper-cased. RTO code and number may not be
//! all zeros. Without a series the RTO code and the number touch (`DL011234`); the separators the
//! driver typed decide where one ends when the digits alone cannot (`DL 1 123`), and without them
//! such input is refused as ambiguous.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// A validated registration number in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VehicleNumber(String);

impl VehicleNumber {
    /// Longest input looked at, separators included.
    pub const MAX_INPUT_LEN: usize = 32;

    pub fn parse(input: &str) -> Result<Self, DomainError> {
        parse(input).map(Self).ok_or(DomainError::InvalidVehicleNumber)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn parse(input: &str) -> Option<String> {
    if input.len() > VehicleNumber::MAX_INPUT_LEN || !input.is_ascii() {
        return None;
    }
    // Compact form, plus where the driver put separators (index into `compact` before which
    // one or more separators stood).
    let mut compact = Vec::with_capacity(input.len());
    let mut breaks = Vec::new();
    for b in input.bytes() {
        match b {
            b' ' | b'-' | b'.' => breaks.push(compact.len()),
            b if b.is_ascii_alphanumeric() => compact.push(b.to_ascii_uppercase()),
            _ => return None,
        }
    }
    // Runs of letters and digits: [(is_digit, start, end)].
    let mut runs: Vec<(bool, usize, usize)> = Vec::new();
    for (i, b) in compact.iter().enumerate() {
        let digit = b.is_ascii_digit();
        match runs.last_mut() {
            Some((d, _, end)) if *d == digit => *end = i + 1,
            _ => runs.push((digit, i, i + 1)),
        }
    }
    let text = |(_, s, e): (bool, usize, usize)| std::str::from_utf8(&compact[s..e]).ok();
    let len = |(_, s, e): (bool, usize, usize)| e - s;
    let kinds: Vec<bool> = runs.iter().map(|r| r.0).collect();

    match kinds.as_slice() {
        // Bharat series: YY BH NNNN L(L)
        [true, false, true, false] => {
            let [year, bh, number, letters] = [runs[0], runs[1], runs[2], runs[3]];
            (len(year) == 2 && text(bh)? == "BH" && len(number) == 4 && (1..=2).contains(&len(letters)))
                .then_some(())?;
            Some(format!("{}-BH-{}-{}", text(year)?, text(number)?, text(letters)?))
        }
        // Standard with series: SS R(R) L(LL) N(NNN)
        [false, true, false, true] => {
            let [state, rto, series, number] = [runs[0], runs[1], runs[2], runs[3]];
            (len(state) == 2 && len(rto) <= 2 && len(series) <= 3 && len(number) <= 4).then_some(())?;
            standard(text(state)?, text(rto)?, Some(text(series)?), text(number)?)
        }
        // Standard without series: SS then RTO and number as one run of digits.
        [false, true] => {
            let [state, digits] = [runs[0], runs[1]];
            if len(state) != 2 {
                return None;
            }
            let (start, end) = (digits.1, digits.2);
            // RTO takes 1 or 2 digits, the number 1 to 4.
            let splits: Vec<usize> = (1..=2).map(|k| start + k).filter(|&at| at < end && end - at <= 4).collect();
            let at = match splits.as_slice() {
                [only] => *only,
                _ => {
                    let marked: Vec<usize> = splits.iter().copied().filter(|at| breaks.contains(at)).collect();
                    match marked.as_slice() {
                        [only] => *only,
                        _ => return None,
                    }
                }
            };
            let digits = std::str::from_utf8(&compact[start..end]).ok()?;
            let (rto, number) = digits.split_at(at - start);
            standard(text(state)?, rto, None, number)
        }
        _ => None,
    }
}

fn standard(state: &str, rto: &str, series: Option<&str>, number: &str) -> Option<String> {
    let rto_n: u32 = rto.parse().ok()?;
    let number_n: u32 = number.parse().ok()?;
    if rto_n == 0 || number_n == 0 {
        return None;
    }
    Some(match series {
        Some(series) => format!("{state}-{rto_n:02}-{series}-{number_n:04}"),
        None => format!("{state}-{rto_n:02}-{number_n:04}"),
    })
}

impl fmt::Display for VehicleNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for VehicleNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for VehicleNumber {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for VehicleNumber {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        Self::parse(&s)
    }
}

impl From<VehicleNumber> for String {
    fn from(v: VehicleNumber) -> String {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canon(s: &str) -> Result<String, DomainError> {
        VehicleNumber::parse(s).map(String::from)
    }

    #[test]
    fn accepts_and_normalises() {
        let cases = [
            ("KA-01-AB-1234", "KA-01-AB-1234"),
            ("KA01AB1234", "KA-01-AB-1234"),
            ("ka 01 ab 1234", "KA-01-AB-1234"),
            ("K.A. 01 - A.B. 1234", "KA-01-AB-1234"),
            ("KA1AB1234", "KA-01-AB-1234"),
            ("MH12A7", "MH-12-A-0007"),
            ("DL3CAB1234", "DL-03-CAB-1234"),
            ("DL-01-1234", "DL-01-1234"),
            ("DL011234", "DL-01-1234"),
            ("DL 1 1234", "DL-01-1234"),
            ("DL1 23", "DL-01-0023"),
            ("DL12 3", "DL-12-0003"),
            ("22BH1234AB", "22-BH-1234-AB"),
            ("22 bh 1234 a", "22-BH-1234-A"),
            ("22-BH-1234-AB", "22-BH-1234-AB"),
        ];
        for (input, want) in cases {
            assert_eq!(canon(input).as_deref(), Ok(want), "{input:?}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        let long = format!("KA01AB1234{}", " ".repeat(40));
        let bad = [
            "",
            "   ",
            "-",
            "KA",
            "KA01",
            "KA01AB",
            "K01AB1234",    // one-letter state
            "KAR01AB1234",  // three-letter state
            "KA123AB1234",  // three-digit RTO
            "KA01ABCD1234", // four-letter series
            "KA01AB12345",  // five-digit number
            "KA00AB1234",   // RTO zero
            "KA01AB0000",   // number zero
            "KA01AB1234X",  // trailing letter
            "1234",
            "DL1234", // RTO and number touch, ambiguous
            "Aa0",    // a lone digit: an RTO code without a number
            "DL 1",
            "DL 1 2 34",   // two marked splits
            "22BH123AB",   // BH number must be 4 digits
            "22BH1234ABC", // 1-2 letters
            "22BX1234AB",
            "2BH1234AB",
            "22BH1234",
            "KA_01_AB_1234",
            "KA/01/AB/1234",
            "KA01AB1234\n",
            "ＫＡ01AB1234", // full-width letters
            "KA०१AB1234",   // Devanagari digits
            "KA01AB١٢٣٤",   // Arabic-Indic digits
            "KА01AB1234",   // Cyrillic А
            &long,
        ];
        for input in bad {
            assert_eq!(VehicleNumber::parse(input), Err(DomainError::InvalidVehicleNumber), "{input:?}");
        }
    }

    #[test]
    fn serde_as_canonical_string() {
        let v = VehicleNumber::parse("ka01ab1234").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"KA-01-AB-1234\"");
        assert_eq!(serde_json::from_str::<VehicleNumber>("\"KA-01-AB-1234\"").unwrap(), v);
        assert!(serde_json::from_str::<VehicleNumber>("\"nope\"").is_err());
    }

    proptest! {
        #[test]
        /// Inputs shaped like registration numbers (so that many are accepted) and arbitrary
        /// ones: whatever is accepted is canonical and re-parses to itself.
        fn accepted_numbers_reparse_to_themselves(
            s in prop_oneof![
                "[0-9A-Za-z]{0,3}[ .-]{0,2}[0-9]{0,3}[ .-]{0,2}[A-Za-z]{0,4}[ .-]{0,2}[0-9]{0,5}[ .-]?[A-Za-z]{0,3}",
                "[a-zA-Z0-9 .-]{0,16}",
            ]
        ) {
            if let Ok(v) = VehicleNumber::parse(&s) {
                prop_assert!(v.as_str().len() <= 14 && !v.as_str().contains(' '));
                prop_assert_eq!(VehicleNumber::parse(v.as_str()), Ok(v.clone()));
            }
        }

        #[test]
        fn every_well_formed_number_is_accepted(
            state in "[A-Z]{2}", rto in 1u32..=99, series in "[A-Z]{0,3}", number in 1u32..=9999, sep in "[ .-]{0,2}",
        ) {
            let input = format!("{state}{sep}{rto:02}{sep}{series}{sep}{number}");
            let v = VehicleNumber::parse(&input);
            // Without a series and without a separator the digits may be ambiguous; with a
            // zero-padded two-digit RTO and four digits they are not.
            if series.is_empty() && sep.is_empty() && number < 1000 {
                return Ok(());
            }
            let want = if series.is_empty() {
                format!("{state}-{rto:02}-{number:04}")
            } else {
                format!("{state}-{rto:02}-{series}-{number:04}")
            };
            let v = v.map_err(|e| TestCaseError::fail(format!("{input:?}: {e}")))?;
            prop_assert_eq!(v.as_str(), want);
            prop_assert_eq!(VehicleNumber::parse(v.as_str()), Ok(v.clone()));
        }

        #[test]
        fn bharat_series_accepted(year in 0u32..=99, number in "[0-9]{4}", letters in "[A-Z]{1,2}") {
            let v = VehicleNumber::parse(&format!("{year:02}bh{number}{}", letters.to_lowercase())).unwrap();
            prop_assert_eq!(v.as_str(), format!("{year:02}-BH-{number}-{letters}"));
            prop_assert_eq!(VehicleNumber::parse(v.as_str()), Ok(v.clone()));
        }

        #[test]
        fn never_panics(s in any::<String>()) {
            if let Ok(v) = VehicleNumber::parse(&s) {
                prop_assert_eq!(VehicleNumber::parse(v.as_str()), Ok(v.clone()));
            }
        }
    }
}
