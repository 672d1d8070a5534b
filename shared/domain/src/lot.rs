//! Parking lots and their tariffs: configuration, not data the app writes.
//!
//! The price of a booking is `hourly_rate × hours`, in paise, with checked arithmetic. Hours are
//! whole hours from 1 to the configured maximum (default 24); an amount above the configured
//! maximum (default ₹1,00,000.00) is refused.
//!
//! Configuration text (JSON), the shape of `GET /api/lots/` plus the two limits, both optional:
//! ```json
//! {"max_hours": 24, "max_amount": "100000.00",
//!  "lots": [{"lot_id": "MG-ROAD-1", "name": "MG Road Multilevel", "hourly_rate": "50.00", "currency": "INR"}]}
//! ```

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::LotId;
use crate::money::Paise;

/// The only currency parkpay takes. Serialises as `"INR"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Currency {
    #[default]
    #[serde(rename = "INR")]
    Inr,
}

impl Currency {
    pub const fn as_str(self) -> &'static str {
        match self {
            Currency::Inr => "INR",
        }
    }
}

/// A booked duration: a positive whole number of hours. The configured maximum is checked when
/// pricing ([`LotCatalog::quote`]), since configuration may change after a session was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Hours(u32);

impl Hours {
    /// Takes the client's integer as is (negative and zero included) so that every wrong value
    /// gets the same answer, [`DomainError::InvalidHours`], with the configured `max`.
    pub fn new(hours: i64, max: u32) -> Result<Hours, DomainError> {
        match u32::try_from(hours) {
            Ok(h) if (1..=max).contains(&h) => Ok(Hours(h)),
            _ => Err(DomainError::InvalidHours { max }),
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Hours {
    type Error = DomainError;
    fn try_from(h: u32) -> Result<Self, DomainError> {
        Hours::new(i64::from(h), u32::MAX)
    }
}

impl From<Hours> for u32 {
    fn from(h: Hours) -> u32 {
        h.0
    }
}

/// A parking lot and its tariff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lot {
    pub id: LotId,
    /// Shown to drivers; 1–100 characters, no control characters, not blank.
    pub name: String,
    /// Price of one hour; more than zero.
    pub hourly_rate: Paise,
    pub currency: Currency,
}

/// Limits on a booking, part of the lot configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingLimits {
    /// Most hours one session may book (default 24).
    pub max_hours: u32,
    /// Most one session may cost (default ₹1,00,000.00); also the ceiling for client amounts.
    pub max_amount: Paise,
}

impl Default for BookingLimits {
    fn default() -> Self {
        BookingLimits { max_hours: 24, max_amount: Paise::new(10_000_000) }
    }
}

/// The lots drivers can book, in configuration order, with the booking limits. Built only
/// through validation: lot ids unique, names sensible, rates above zero and at most the maximum
/// amount, `max_hours` ≥ 1, `max_amount` > 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotCatalog {
    lots: Vec<Lot>,
    limits: BookingLimits,
}

impl LotCatalog {
    pub const MAX_NAME_CHARS: usize = 100;

    pub fn new(lots: Vec<Lot>, limits: BookingLimits) -> Result<Self, DomainError> {
        let bad = |msg: String| Err(DomainError::InvalidLotConfig(msg));
        if limits.max_hours == 0 {
            return bad("max_hours must be at least 1".into());
        }
        if limits.max_amount == Paise::ZERO {
            return bad("max_amount must be more than zero".into());
        }
        let mut seen = HashSet::new();
        for lot in &lots {
            if !seen.insert(&lot.id) {
                return bad(format!("lot {} appears twice", lot.id));
            }
            let chars = lot.name.chars().count();
            if lot.name.trim().is_empty() || chars > Self::MAX_NAME_CHARS || lot.name.chars().any(char::is_control) {
                return bad(format!("lot {}: name must be 1 to {} characters", lot.id, Self::MAX_NAME_CHARS));
            }
            if lot.hourly_rate == Paise::ZERO {
                return bad(format!("lot {}: hourly_rate must be more than zero", lot.id));
            }
            if lot.hourly_rate > limits.max_amount {
                return bad(format!("lot {}: hourly_rate is above max_amount {}", lot.id, limits.max_amount));
            }
        }
        Ok(LotCatalog { lots, limits })
    }

    /// Parse the configuration text (see the module docs). Unknown fields are refused so that a
    /// misspelt setting is noticed.
    pub fn from_json(text: &str) -> Result<Self, DomainError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Config {
            max_hours: Option<u32>,
            max_amount: Option<String>,
            lots: Vec<LotConfig>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct LotConfig {
            lot_id: LotId,
            name: String,
            hourly_rate: String,
            #[serde(default)]
            currency: Currency,
        }

        let config: Config = serde_json::from_str(text).map_err(|e| DomainError::InvalidLotConfig(e.to_string()))?;
        let mut limits = BookingLimits::default();
        if let Some(h) = config.max_hours {
            limits.max_hours = h;
        }
        if let Some(max) = config.max_amount {
            limits.max_amount = Paise::parse_rupees(&max, Paise::new(u64::MAX))
                .map_err(|e| DomainError::InvalidLotConfig(format!("max_amount: {e}")))?;
        }
        let lots = config
            .lots
            .into_iter()
            .map(|l| {
                let hourly_rate = Paise::parse_rupees(&l.hourly_rate, Paise::new(u64::MAX))
                    .map_err(|e| DomainError::InvalidLotConfig(format!("lot {}: hourly_rate: {e}", l.lot_id)))?;
                Ok(Lot { id: l.lot_id, name: l.name, hourly_rate, currency: l.currency })
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        Self::new(lots, limits)
    }

    /// What a local server ships so that a new user can book at once.
    pub fn default_local() -> Self {
        let lot = |id: &str, name: &str, rupees: u64| Lot {
            id: LotId::parse(id).unwrap_or_else(|_| unreachable!("{id} is a valid lot id")),
            name: name.to_owned(),
            hourly_rate: Paise::new(rupees * 100),
            currency: Currency::Inr,
        };
        LotCatalog {
            lots: vec![
                lot("MG-ROAD-1", "MG Road Multilevel", 50),
                lot("KORAMANGALA-2", "Koramangala 5th Block", 40),
                lot("AIRPORT-P1", "Kempegowda Airport P1", 100),
            ],
            limits: BookingLimits::default(),
        }
    }

    pub fn lots(&self) -> &[Lot] {
        &self.lots
    }

    pub fn limits(&self) -> BookingLimits {
        self.limits
    }

    /// The lot, or [`DomainError::UnknownLot`].
    pub fn lot(&self, id: &LotId) -> Result<&Lot, DomainError> {
        self.lots.iter().find(|l| &l.id == id).ok_or_else(|| DomainError::UnknownLot { lot_id: id.to_string() })
    }

    /// Price of `hours` at lot `id`: `UNKNOWN_LOT`, `INVALID_HOURS` above `max_hours`,
    /// `AMOUNT_TOO_LARGE` on overflow or above `max_amount`.
    pub fn quote(&self, id: &LotId, hours: Hours) -> Result<Paise, DomainError> {
        let lot = self.lot(id)?;
        if hours.get() > self.limits.max_hours {
            return Err(DomainError::InvalidHours { max: self.limits.max_hours });
        }
        let too_large = DomainError::AmountTooLarge { max: self.limits.max_amount };
        let amount = lot.hourly_rate.checked_mul(u64::from(hours.get())).ok_or(too_large.clone())?;
        if amount > self.limits.max_amount {
            return Err(too_large);
        }
        Ok(amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lot_id(s: &str) -> LotId {
        LotId::parse(s).unwrap()
    }

    fn lot(id: &str, rate: u64) -> Lot {
        Lot { id: lot_id(id), name: format!("Lot {id}"), hourly_rate: Paise::new(rate), currency: Currency::Inr }
    }

    #[test]
    fn hours() {
        assert_eq!(Hours::new(1, 24).map(Hours::get), Ok(1));
        assert_eq!(Hours::new(24, 24).map(Hours::get), Ok(24));
        for bad in [0, -1, 25, i64::MAX, i64::MIN, i64::from(u32::MAX) + 1] {
            assert_eq!(Hours::new(bad, 24), Err(DomainError::InvalidHours { max: 24 }), "{bad}");
        }
        assert!(serde_json::from_str::<Hours>("0").is_err());
        assert_eq!(serde_json::from_str::<Hours>("3").unwrap().get(), 3);
    }

    #[test]
    fn default_local_is_valid_and_prices() {
        let c = LotCatalog::default_local();
        assert_eq!(LotCatalog::new(c.lots().to_vec(), c.limits()), Ok(c.clone()));
        assert_eq!(c.lots().len(), 3);
        assert_eq!(c.quote(&lot_id("MG-ROAD-1"), Hours::new(2, 24).unwrap()), Ok(Paise::new(10_000)));
        assert_eq!(c.quote(&lot_id("AIRPORT-P1"), Hours::new(24, 24).unwrap()), Ok(Paise::new(240_000)));
        assert_eq!(
            c.quote(&lot_id("NOPE"), Hours::new(1, 24).unwrap()),
            Err(DomainError::UnknownLot { lot_id: "NOPE".into() })
        );
    }

    #[test]
    fn quote_limits() {
        let limits = BookingLimits { max_hours: 10, max_amount: Paise::new(1_000) };
        let c = LotCatalog::new(vec![lot("A", 100), lot("B", 1_000)], limits).unwrap();
        let h = |n| Hours::new(n, 100).unwrap();
        assert_eq!(c.quote(&lot_id("A"), h(10)), Ok(Paise::new(1_000)));
        assert_eq!(c.quote(&lot_id("A"), h(11)), Err(DomainError::InvalidHours { max: 10 }));
        assert_eq!(c.quote(&lot_id("B"), h(2)), Err(DomainError::AmountTooLarge { max: Paise::new(1_000) }));
        let huge = LotCatalog::new(
            vec![lot("X", u64::MAX)],
            BookingLimits { max_hours: u32::MAX, max_amount: Paise::new(u64::MAX) },
        )
        .unwrap();
        assert!(matches!(huge.quote(&lot_id("X"), h(2)), Err(DomainError::AmountTooLarge { .. })));
    }

    #[test]
    fn catalog_validation() {
        let limits = BookingLimits::default();
        let err = |lots, limits| LotCatalog::new(lots, limits).unwrap_err().code();
        assert_eq!(err(vec![lot("A", 1), lot("A", 2)], limits), "INVALID_LOT_CONFIG");
        assert_eq!(err(vec![lot("A", 0)], limits), "INVALID_LOT_CONFIG");
        assert_eq!(err(vec![lot("A", 10_000_001)], limits), "INVALID_LOT_CONFIG");
        assert_eq!(err(vec![], BookingLimits { max_hours: 0, ..limits }), "INVALID_LOT_CONFIG");
        assert_eq!(err(vec![], BookingLimits { max_amount: Paise::ZERO, ..limits }), "INVALID_LOT_CONFIG");
        for name in ["", "   ", "a\nb", &"x".repeat(101)] {
            let l = Lot { name: name.to_owned(), ..lot("A", 1) };
            assert_eq!(err(vec![l], limits), "INVALID_LOT_CONFIG", "{name:?}");
        }
        assert!(LotCatalog::new(vec![], limits).is_ok());
    }

    #[test]
    fn from_json() {
        let c = LotCatalog::from_json(
            r#"{"max_hours": 12, "max_amount": "5000.00", "lots": [
                {"lot_id": "MG-ROAD-1", "name": "MG Road Multilevel", "hourly_rate": "50.00", "currency": "INR"},
                {"lot_id": "P2", "name": "Two", "hourly_rate": "40"}]}"#,
        )
        .unwrap();
        assert_eq!(c.limits(), BookingLimits { max_hours: 12, max_amount: Paise::new(500_000) });
        assert_eq!(c.lot(&lot_id("P2")).unwrap().hourly_rate, Paise::new(4_000));
        assert_eq!(LotCatalog::from_json(r#"{"lots": []}"#).unwrap().limits(), BookingLimits::default());

        for bad in [
            "",
            "{}",
            r#"{"lots": [{"lot_id": "A", "name": "A", "hourly_rate": "1.00"}, {"lot_id": "A", "name": "B", "hourly_rate": "2.00"}]}"#,
            r#"{"lots": [{"lot_id": "A", "name": "A", "hourly_rate": "0.00"}]}"#,
            r#"{"lots": [{"lot_id": "A", "name": "A", "hourly_rate": "-1"}]}"#,
            r#"{"lots": [{"lot_id": "A", "name": "A", "hourly_rate": "1.005"}]}"#,
            r#"{"lots": [{"lot_id": "A", "name": "A", "hourly_rate": 50}]}"#,
            r#"{"lots": [{"lot_id": "a", "name": "A", "hourly_rate": "1.00"}]}"#,
            r#"{"lots": [{"lot_id": "A", "name": "A", "hourly_rate": "1.00", "currency": "USD"}]}"#,
            r#"{"lots": [{"lot_id": "A", "name": "A", "hourly_rate": "1.00", "rate": "1"}]}"#,
            r#"{"max_hours": 0, "lots": []}"#,
            r#"{"max_amount": "0", "lots": []}"#,
        ] {
            let e = LotCatalog::from_json(bad).unwrap_err();
            assert_eq!(e.code(), "INVALID_LOT_CONFIG", "{bad}: {e}");
        }
    }

    proptest! {
        #[test]
        fn tariff_never_panics_and_respects_limits(
            rate in 1u64..=u64::MAX, hours in any::<u32>(), max_hours in 1u32..=u32::MAX, max_amount in 1u64..=u64::MAX,
        ) {
            let limits = BookingLimits { max_hours, max_amount: Paise::new(max_amount) };
            let Ok(c) = LotCatalog::new(vec![lot("A", rate)], limits) else { return Ok(()) };
            let Ok(h) = Hours::new(i64::from(hours), u32::MAX) else { return Ok(()) };
            match c.quote(&lot_id("A"), h) {
                Ok(amount) => {
                    prop_assert!(amount.get() <= max_amount && hours <= max_hours);
                    prop_assert_eq!(u128::from(amount.get()), u128::from(rate) * u128::from(hours));
                }
                Err(DomainError::InvalidHours { .. }) => prop_assert!(hours > max_hours),
                Err(DomainError::AmountTooLarge { .. }) => {
                    prop_assert!(u128::from(rate) * u128::from(hours) > u128::from(max_amount));
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }
}
