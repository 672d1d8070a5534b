//! # parkpay-lambda-harness: the serverless side of parkpay, tested offline
//!
//! - [`runtime_api`]: a stand-in for the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`), so a
//!   real function binary runs here exactly as it runs in Lambda: it polls
//!   `/2018-06-01/runtime/invocation/next`, answers on `/response` or `/error`, or reports
//!   `/init/error`.
//! - [`process`]: start a function binary against a fresh stand-in with the environment Lambda
//!   gives it, time its init (exec → first `/next`) and each invocation.
//! - [`events`]: the files in `events/` (one API Gateway HTTP API payload 2.0 event per function,
//!   plus negative cases), which function each drives, and the answer each must get.
//! - [`fixtures`]: the records the events refer to (fixed ids), seeded through the domain's
//!   public API into any store, and at the PhonePe simulator.
//! - [`template`]: `template.yaml` read as data, for the drift test.
//! - [`world`]: a DynamoDB Local table + a spawned simulator + the fixtures, and the environment
//!   each function gets (as `template.yaml` sets it, with offline stand-ins).
//! - [`dynamo_proxy`]: forwards to DynamoDB Local and records the IAM action of every call, so
//!   the tests can check each function's template policy allows what it really does.
//! - [`ssm_standin`]: a stand-in for SSM Parameter Store (`GetParameter`, AWS JSON 1.1), for a
//!   function whose secrets (salt key; PG v2 client secret and webhook password; the entry pass
//!   keys) are read from SSM as on AWS; it records each call and can fail.
//! - [`workspace`]: where the workspace, its `[[bin]]`s and the built binaries are.
//!
//! [`template::Deployment`] (template parameter values, with the template's conditions and
//! rules evaluated) and [`world::Apis`] (which PhonePe APIs a deployment configures) say which
//! environment and which policy statements a function gets.
//!
//! The test binaries `tests/serverless.rs`, `tests/ssm.rs`, `tests/v2.rs` (PG v2 through the
//! built binaries), `tests/token_sharing.rs` (20 cold instances, one token),
//! `tests/passes.rs` (entry passes and QR images, the pass keys from SSM) and
//! `tests/observability.rs`, and the `coldstart` benchmark, are built on these.

pub mod dynamo_proxy;
pub mod events;
pub mod fixtures;
pub mod process;
pub mod runtime_api;
pub mod ssm_standin;
pub mod template;
pub mod workspace;
pub mod world;

/// Percentile by nearest rank (`p` in 0..=100) of unsorted samples; `None` when empty.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    #[test]
    fn nearest_rank() {
        let s: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(super::percentile(&s, 50.0), Some(10.0));
        assert_eq!(super::percentile(&s, 99.0), Some(20.0));
        assert_eq!(super::percentile(&[3.0], 99.0), Some(3.0));
        assert_eq!(super::percentile(&[], 50.0), None);
    }
}
