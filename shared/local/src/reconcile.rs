//! Reconciliation on the local server, on the code the scheduled Lambda runs
//! ([`parkpay_api::reconcile::Reconciler::tick`]): a background pass every
//! `PARKPAY_RECONCILE_EVERY_MS`, and [`LocalReconciler::advance`] behind
//! `POST /_dev/clock/advance`, which moves parkpay's clock forward and runs the passes the
//! schedule would have run meanwhile. One lock keeps the two from ever running a pass at once.

use std::sync::Arc;
use std::time::Duration;

use parkpay_api::reconcile::{Reconciler, TickReport};
use parkpay_api::{AppState, Clock};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::clock::OffsetClock;

/// The background period unless `PARKPAY_RECONCILE_EVERY_MS` says otherwise: once a second, as
/// the Lambda ticks.
pub const DEFAULT_EVERY: Duration = Duration::from_millis(1_000);
/// Longest step of simulated time between two passes: at least one pass per simulated minute,
/// as the one-minute EventBridge schedule guarantees.
const MAX_STEP_MS: i64 = 60_000;
/// Shortest step: the Lambda never ticks more than once a second.
const MIN_STEP_MS: i64 = 1_000;

/// What an advance of the clock did: the passes run and the sums of their reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advance {
    pub passes: usize,
    pub checked: usize,
    pub applied: usize,
    pub expired: usize,
    pub sent: usize,
    pub errors: usize,
}

impl Advance {
    fn add(&mut self, r: &TickReport) {
        self.passes += 1;
        self.checked += r.checked;
        self.applied += r.applied;
        self.expired += r.expired;
        self.sent += r.sent;
        self.errors += r.errors;
    }
}

/// The server's one reconciler, on parkpay's (movable) clock.
pub struct LocalReconciler {
    reconciler: Reconciler,
    clock: Arc<OffsetClock>,
    pass: Mutex<()>,
}

impl LocalReconciler {
    /// `state.clock` must be `clock`.
    pub fn new(state: AppState, clock: Arc<OffsetClock>) -> Self {
        Self { reconciler: Reconciler::new(state), clock, pass: Mutex::new(()) }
    }

    /// One pass, as one second of the scheduled Lambda.
    pub async fn tick(&self) -> TickReport {
        let _pass = self.pass.lock().await;
        self.reconciler.tick().await
    }

    /// Move parkpay's clock forward by `secs` seconds in steps of at most a minute, shorter when
    /// something falls due sooner ([`Reconciler::next_due`], e.g. PhonePe's 3-second checks),
    /// one pass after each step. No waiting: simulated time only.
    pub async fn advance(&self, secs: u32) -> Advance {
        let _pass = self.pass.lock().await;
        let mut left_ms = i64::from(secs) * 1_000;
        let mut done = Advance::default();
        while left_ms > 0 {
            let step = self.step_ms(left_ms).await;
            self.clock.advance(Duration::from_millis(step.unsigned_abs()));
            left_ms -= step;
            done.add(&self.reconciler.tick().await);
        }
        done
    }

    async fn step_ms(&self, left_ms: i64) -> i64 {
        let until_due = match self.reconciler.next_due().await {
            Some(at) => at.unix_millis() - self.clock.now().unix_millis(),
            None => MAX_STEP_MS,
        };
        until_due.clamp(MIN_STEP_MS, MAX_STEP_MS).min(left_ms)
    }

    /// Run a pass every `every` until `stop` fires or its sender is dropped. A pass that panics
    /// is logged; the next one runs as usual.
    pub fn spawn_background(self: Arc<Self>, every: Duration, mut stop: watch::Receiver<()>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let me = self.clone();
                if let Err(e) = tokio::spawn(async move { me.tick().await }).await {
                    tracing::error!(error = %e, "background reconciliation pass failed");
                }
            }
        })
    }
}
