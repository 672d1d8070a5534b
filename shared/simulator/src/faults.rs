//! Fault injection: one serde struct, shared by the library API and `PUT /_sim/faults/...`.
//!
//! A [`Faults`] value is set globally or for one `merchantTransactionId`; a per-transaction value
//! replaces the global one *as a whole* for that id (no field-by-field merging: what you set for
//! an id is exactly what that id gets). Every field defaults to "no fault", so `{}` is a no-op
//! and JSON only names what it changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The PhonePe API calls a fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Pay,
    Status,
    Refund,
}

/// When an injected HTTP 500 happens relative to the real work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerError {
    /// Answer 500 without doing anything: nothing is recorded.
    Before,
    /// Do the work (the payment or refund is recorded), then answer 500.
    After,
}

/// Answer a given code instead of doing anything (checked before authentication and
/// validation; nothing is recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForcedAnswer {
    /// Any code, documented or not (`TIMED_OUT`, `TOO_MANY_REQUESTS`, `SOMETHING_NEW`, …).
    pub code: String,
    /// HTTP status; default by code: `BAD_REQUEST`/`EXCESS_REFUND_AMOUNT`/`REVERSAL_WINDOW_EXCEEDED`
    /// 400, `AUTHORIZATION_FAILED`/`KEY_NOT_CONFIGURED` 401, `TRANSACTION_NOT_FOUND` 404,
    /// `TOO_MANY_REQUESTS` 429, `INTERNAL_SERVER_ERROR` 500, anything else 200.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// `success`; default as the simulator's own answers: true for `PAYMENT_SUCCESS` and
    /// `PAYMENT_INITIATED`, and for `PAYMENT_PENDING` on a refund; false otherwise.
    #[serde(default)]
    pub success: Option<bool>,
    /// `data.state`; default by code (`PAYMENT_SUCCESS` → COMPLETED, `PAYMENT_ERROR` and
    /// `PAYMENT_DECLINED` → FAILED, `PAYMENT_PENDING`/`PAYMENT_INITIATED` → PENDING). `data` is sent
    /// for `PAYMENT_*` codes, and for any code when this is set.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl ForcedAnswer {
    pub fn code(code: impl Into<String>) -> Self {
        Self { code: code.into(), http_status: None, success: None, state: None, message: None }
    }
}

/// What happens to the server-to-server callbacks of a transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackFaults {
    /// Send nothing (the log records one `dropped` entry per withheld callback).
    pub drop: bool,
    /// Send each callback this many *extra* times: `duplicates: 2` delivers 3 identical,
    /// validly signed copies, one after the other.
    pub duplicates: u32,
    /// Wait this long before the first attempt (the pay page does not wait for a delayed
    /// callback: the browser is redirected first).
    pub delay_ms: u64,
    /// Only meaningful with [`Faults::late_success_ms`]: the FAILED callback of the decline is
    /// held back and delivered *after* the later SUCCESS callback (stale news arriving last).
    pub out_of_order: bool,
}

/// Faults for API answers (filtered by [`Faults::operations`]), for outcomes, and for callbacks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The API calls the answer faults (latency, server_error, hang, garbage, force) apply to;
    /// empty means all three. Outcome and callback faults ignore this.
    pub operations: Vec<Operation>,
    /// Sleep this long before doing anything.
    pub latency_ms: u64,
    /// Plus a random 0..=jitter extra.
    pub latency_jitter_ms: u64,
    pub server_error: Option<ServerError>,
    /// Do the work, then sleep this long before answering (to trip client read timeouts).
    pub hang_ms: u64,
    /// Do the work, then answer HTTP 200 with a body that is not JSON.
    pub garbage: bool,
    /// Answer this code without doing anything.
    pub force: Option<ForcedAnswer>,
    /// The outcome is accepted (pay page / complete) but the payment stays PENDING and no
    /// callback is sent. For a refund: it never settles.
    pub stuck_pending: bool,
    /// After a `failure`/`declined` outcome (FAILED, with its callback), the payment becomes
    /// COMPLETED / PAYMENT_SUCCESS this many ms later, with a second callback. A `success`
    /// outcome is unaffected.
    pub late_success_ms: Option<u64>,
    /// The refund is accepted (PENDING) and then settles FAILED / PAYMENT_ERROR.
    pub refund_fails: bool,
    pub callback: CallbackFaults,
}

/// Longest sleep any fault may ask for.
pub const MAX_FAULT_MS: u64 = 10 * 60 * 1000;
/// Most extra callback copies.
pub const MAX_DUPLICATES: u32 = 100;

/// A fault value that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid faults: {0}")]
pub struct FaultError(pub String);

impl Faults {
    pub fn latency(ms: u64) -> Self {
        Self { latency_ms: ms, ..Self::default() }
    }
    pub fn server_error_before() -> Self {
        Self { server_error: Some(ServerError::Before), ..Self::default() }
    }
    pub fn server_error_after() -> Self {
        Self { server_error: Some(ServerError::After), ..Self::default() }
    }
    pub fn hang(ms: u64) -> Self {
        Self { hang_ms: ms, ..Self::default() }
    }
    pub fn garbage() -> Self {
        Self { garbage: true, ..Self::default() }
    }
    pub fn force(code: impl Into<String>) -> Self {
        Self { force: Some(ForcedAnswer::code(code)), ..Self::default() }
    }
    pub fn stuck_pending() -> Self {
        Self { stuck_pending: true, ..Self::default() }
    }
    pub fn late_success(ms: u64) -> Self {
        Self { late_success_ms: Some(ms), ..Self::default() }
    }
    pub fn refund_fails() -> Self {
        Self { refund_fails: true, ..Self::default() }
    }
    pub fn callbacks_dropped() -> Self {
        Self { callback: CallbackFaults { drop: true, ..CallbackFaults::default() }, ..Self::default() }
    }
    pub fn callbacks_duplicated(extra: u32) -> Self {
        Self { callback: CallbackFaults { duplicates: extra, ..CallbackFaults::default() }, ..Self::default() }
    }
    pub fn callbacks_delayed(ms: u64) -> Self {
        Self { callback: CallbackFaults { delay_ms: ms, ..CallbackFaults::default() }, ..Self::default() }
    }

    /// Restrict the answer faults to these operations.
    pub fn only(mut self, ops: &[Operation]) -> Self {
        self.operations = ops.to_vec();
        self
    }

    /// True when the answer faults apply to `op`.
    pub fn applies_to(&self, op: Operation) -> bool {
        self.operations.is_empty() || self.operations.contains(&op)
    }

    /// Refuses values that could not be honoured (absurd sleeps, an impossible HTTP status).
    pub fn validate(&self) -> Result<(), FaultError> {
        let sleeps = [
            ("latency_ms", self.latency_ms),
            ("latency_jitter_ms", self.latency_jitter_ms),
            ("hang_ms", self.hang_ms),
            ("late_success_ms", self.late_success_ms.unwrap_or(0)),
            ("callback.delay_ms", self.callback.delay_ms),
        ];
        for (name, ms) in sleeps {
            if ms > MAX_FAULT_MS {
                return Err(FaultError(format!("{name} must be at most {MAX_FAULT_MS}")));
            }
        }
        if self.callback.duplicates > MAX_DUPLICATES {
            return Err(FaultError(format!("callback.duplicates must be at most {MAX_DUPLICATES}")));
        }
        if let Some(f) = &self.force {
            if f.code.is_empty() || f.code.len() > 64 || !f.code.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(FaultError("force.code must be 1 to 64 printable ASCII characters".into()));
            }
            if f.http_status.is_some_and(|s| !(200..=599).contains(&s)) {
                return Err(FaultError("force.http_status must be 200 to 599".into()));
            }
        }
        Ok(())
    }
}

/// Every fault currently set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultTable {
    pub global: Faults,
    /// Per `merchantTransactionId` (payment or refund id); replaces `global` for that id.
    pub transactions: BTreeMap<String, Faults>,
}

impl FaultTable {
    pub fn for_txn(&self, txn: Option<&str>) -> &Faults {
        txn.and_then(|t| self.transactions.get(t)).unwrap_or(&self.global)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_json_is_no_fault_and_unknown_fields_are_refused() {
        let f: Faults = serde_json::from_str("{}").unwrap();
        assert_eq!(f, Faults::default());
        assert!(serde_json::from_str::<Faults>(r#"{"latency":5}"#).is_err());
        let f: Faults = serde_json::from_str(
            r#"{"operations":["status"],"force":{"code":"TOO_MANY_REQUESTS"},"callback":{"duplicates":2}}"#,
        )
        .unwrap();
        assert!(f.applies_to(Operation::Status) && !f.applies_to(Operation::Pay));
        assert_eq!(f.force.unwrap().code, "TOO_MANY_REQUESTS");
        assert_eq!(f.callback.duplicates, 2);
        let f: Faults = serde_json::from_str(r#"{"server_error":"after","late_success_ms":10}"#).unwrap();
        assert_eq!(f.server_error, Some(ServerError::After));
    }

    #[test]
    fn validation() {
        assert!(Faults::default().validate().is_ok());
        assert!(Faults::hang(MAX_FAULT_MS + 1).validate().is_err());
        assert!(Faults::callbacks_duplicated(MAX_DUPLICATES + 1).validate().is_err());
        let mut f = Faults::force("X");
        f.force.as_mut().unwrap().http_status = Some(99);
        assert!(f.validate().is_err());
        assert!(Faults::force("").validate().is_err());
        assert!(Faults::force("A B").validate().is_err());
    }

    #[test]
    fn per_txn_replaces_global_whole() {
        let mut t = FaultTable { global: Faults::latency(5), ..FaultTable::default() };
        t.transactions.insert("T1".into(), Faults::garbage());
        assert_eq!(t.for_txn(Some("T1")), &Faults::garbage());
        assert_eq!(t.for_txn(Some("T2")), &Faults::latency(5));
        assert_eq!(t.for_txn(None), &Faults::latency(5));
    }
}
