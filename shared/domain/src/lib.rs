//! parkpay's domain: pure types and rules, no I/O.

pub mod money;

pub use money::{MoneyError, Paise};
