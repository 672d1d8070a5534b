//! The sweep: money owed that no obligation tracks becomes obligations
//! (`parkpay_domain::untracked` has the rule and its table).
//!
//! Two callers share it:
//! - the one-time sweep of a whole table ([`sweep_all`]): `parkpay-local sweep` on the
//!   embedded store or on a deployment's DynamoDB table (`docs/reconciliation.md`, "The sweep"), and the
//!   local server at start;
//! - reconciliation, on every session it loads for an attempt ([`sweep_bundle`]), so records of
//!   a session it already works on are never left behind.
//!
//! Every write is conditional (an insert of an obligation that must not exist, an update of the
//! payment at the version read), so a sweep racing live traffic or another sweep changes
//! nothing twice: a lost race reloads the session and decides again.

use std::collections::BTreeMap;
use std::time::Duration;

use parkpay_domain::untracked::{Untracked, obligation_for, untracked};
use parkpay_domain::{SessionId, Timestamp};
use parkpay_store::{Record, ScanCursor, SessionBundle, SessionScan, Store, StoreError, Write};

use crate::http::ApiError;
use crate::service::automatic_refund_writes;
use crate::state::Clock;

/// Most commits one session's sweep makes before giving up for this pass (each finding is one
/// commit at most; lost races reload).
const MAX_COMMITS: usize = 64;

/// What the untracked `what` in `bundle` becomes, as the writes of one commit. `None` when
/// nothing is to be written after all (e.g. nothing left to refund).
fn writes_for(bundle: &SessionBundle, what: &Untracked, now: Timestamp) -> Result<Option<Vec<Write>>, ApiError> {
    if let Untracked::StraySuccess(id) = what {
        let Some(payment) = bundle.payments.iter().find(|p| p.id() == id) else { return Ok(None) };
        let mut payment = payment.clone();
        let version = payment.version();
        let Some((_, mut writes)) = automatic_refund_writes(bundle, &mut payment, now)? else { return Ok(None) };
        writes.push(Write::Update { record: Record::Payment(payment), expected_version: version });
        return Ok(Some(writes));
    }
    Ok(obligation_for(what, &bundle.payments, &bundle.refunds, now).map(|o| vec![Write::Insert(Record::Obligation(o))]))
}

fn untracked_in(bundle: &SessionBundle, now: Timestamp) -> Vec<Untracked> {
    untracked(&bundle.session, &bundle.payments, &bundle.refunds, &bundle.obligations, now)
}

/// Turn what `bundle`'s session owes untracked into obligations. Returns what was turned (empty
/// when nothing was owed untracked: then nothing was read or written). Each finding is logged
/// with `alert=UNTRACKED_MONEY_FOUND`.
pub async fn sweep_bundle(
    store: &dyn Store,
    clock: &dyn Clock,
    bundle: &SessionBundle,
) -> Result<Vec<Untracked>, ApiError> {
    if untracked_in(bundle, clock.now()).is_empty() {
        return Ok(Vec::new());
    }
    sweep_session(store, clock, bundle.session.id()).await
}

/// [`sweep_bundle`] for the session `id`, read afresh.
pub async fn sweep_session(store: &dyn Store, clock: &dyn Clock, id: &SessionId) -> Result<Vec<Untracked>, ApiError> {
    let mut done = Vec::new();
    for _ in 0..MAX_COMMITS {
        let Some(bundle) = store.load_session(id).await? else { return Ok(done) };
        let now = clock.now();
        let Some(what) = untracked_in(&bundle, now).into_iter().next() else { return Ok(done) };
        let Some(writes) = writes_for(&bundle, &what, now)? else {
            // Nothing to write for it (it cannot be turned); stop rather than loop on it.
            tracing::warn!(session = %id, found = ?what, "untracked money could not be turned into an obligation");
            return Ok(done);
        };
        match store.commit(writes).await {
            Ok(()) => {
                tracing::warn!(alert = "UNTRACKED_MONEY_FOUND", session = %id, found = ?what, becomes = what.becomes(),
                    "money owed without an obligation: now tracked");
                done.push(what);
            }
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        http::StatusCode::CONFLICT,
        "SWEEP_CONTENDED",
        "the session kept changing; the sweep tries it again on its next pass",
    ))
}

/// What a whole sweep found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Sessions read.
    pub sessions: usize,
    /// Items read by the scan (sessions, payments, refunds, obligations, pointers, …).
    pub pages: usize,
    /// Findings turned into obligations, by the obligation kind they became.
    pub turned: BTreeMap<&'static str, usize>,
    /// Sessions that could not be swept (store errors); a later sweep tries them again.
    pub errors: usize,
}

impl SweepReport {
    pub fn total(&self) -> usize {
        self.turned.values().sum()
    }
}

/// Sweep every session in the store: read them all, page by page (`page_items` items a page),
/// and turn whatever each owes untracked into obligations. Safe to run any number of times and
/// beside live traffic; a second run finds nothing the first turned.
pub async fn sweep_all(
    store: &dyn Store,
    scan: &dyn SessionScan,
    clock: &dyn Clock,
    page_items: usize,
) -> Result<SweepReport, StoreError> {
    let mut report = SweepReport::default();
    let mut after: Option<ScanCursor> = None;
    loop {
        let page = scan_with_retry(scan, after.as_ref(), page_items).await?;
        report.pages += 1;
        for id in &page.sessions {
            report.sessions += 1;
            match sweep_session(store, clock, id).await {
                Ok(found) => {
                    for what in found {
                        *report.turned.entry(what.becomes()).or_default() += 1;
                    }
                }
                Err(e) => {
                    report.errors += 1;
                    tracing::error!(alert = "RECONCILIATION_ERROR", session = %id, error = %e.message,
                        "the sweep could not check a session; run it again");
                }
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(report),
        }
    }
}

/// One scan page, retried a few times with backoff (a long scan meets throttling).
async fn scan_with_retry(
    scan: &dyn SessionScan,
    after: Option<&ScanCursor>,
    page_items: usize,
) -> Result<parkpay_store::ScanPage, StoreError> {
    let mut wait = Duration::from_millis(200);
    let mut tries = 0;
    loop {
        match scan.scan_sessions(after, page_items).await {
            Ok(page) => return Ok(page),
            Err(StoreError::Unavailable(e)) if tries < 5 => {
                tries += 1;
                tracing::warn!(error = %e, "scan page failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => return Err(e),
        }
    }
}
