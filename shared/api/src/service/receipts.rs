//! Receipts: `GET /api/sessions/{session_id}/receipt/` for the session's driver or an operator,
//! as JSON, or (`Accept: text/html`) as a printable page. Amounts in rupees; PhonePe's own
//! transaction ids and UTRs, so a driver can match it with their bank statement.

use parkpay_domain::{ParkingSession, Payment, PaymentStatus, Refund};
use serde::Serialize;

use super::visits::ScanView;
use super::{load_visible, parse_session_id};
use crate::http::ApiError;
use crate::identity::Caller;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct ReceiptView {
    pub session_id: String,
    pub lot_id: String,
    pub lot_name: String,
    pub vehicle_number: String,
    /// The booked hours, and the hours added by paid extensions.
    pub hours: u32,
    pub extra_hours: u32,
    pub status: &'static str,
    pub booked_at: String,
    pub booked_until: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<ScanView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<ScanView>,
    pub currency: &'static str,
    /// The session's price.
    pub amount: String,
    pub paid: String,
    pub refunded: String,
    /// `paid − refunded`: what the driver paid in the end.
    pub net_paid: String,
    /// Every payment that succeeded (failed attempts took no money and are left out).
    pub payments: Vec<ReceiptPayment>,
    /// Every refund, with its state.
    pub refunds: Vec<ReceiptRefund>,
    pub issued_at: String,
}

#[derive(Debug, Serialize)]
pub struct ReceiptPayment {
    pub merchant_txn_id: String,
    /// `BOOKING` or `EXTENSION`.
    pub purpose: &'static str,
    pub amount: String,
    pub payment_instrument: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phonepe_transaction_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utr: Option<String>,
    pub paid_at: String,
}

#[derive(Debug, Serialize)]
pub struct ReceiptRefund {
    pub refund_id: String,
    pub merchant_txn_id: String,
    pub amount: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub requested_at: String,
    pub updated_at: String,
}

impl ReceiptView {
    pub fn new(
        session: &ParkingSession,
        lot_name: &str,
        payments: &[Payment],
        refunds: &[Refund],
        now: parkpay_domain::Timestamp,
    ) -> Self {
        ReceiptView {
            session_id: session.id().as_str().to_owned(),
            lot_id: session.lot_id().as_str().to_owned(),
            lot_name: lot_name.to_owned(),
            vehicle_number: session.vehicle().as_str().to_owned(),
            hours: session.hours().get(),
            extra_hours: session.extra_hours(),
            status: session.status().as_str(),
            booked_at: session.created_at().to_rfc3339(),
            booked_until: session.booked_until().to_rfc3339(),
            entry: session.visit().entry.as_ref().map(ScanView::of),
            exit: session.visit().exit.as_ref().map(ScanView::of),
            currency: "INR",
            amount: session.amount().to_string(),
            paid: session.paid().to_string(),
            refunded: session.refunded().to_string(),
            net_paid: session.net_paid().to_string(),
            payments: payments
                .iter()
                .filter(|p| p.status() == PaymentStatus::Success)
                .map(|p| ReceiptPayment {
                    merchant_txn_id: p.id().as_str().to_owned(),
                    purpose: p.purpose().as_str(),
                    amount: p.amount().to_string(),
                    payment_instrument: p.instrument().as_str(),
                    phonepe_transaction_id: p.provider_txn_id().map(str::to_owned),
                    utr: p.utr().map(str::to_owned),
                    paid_at: p.succeeded_at().unwrap_or(p.updated_at()).to_rfc3339(),
                })
                .collect(),
            refunds: refunds
                .iter()
                .map(|r| ReceiptRefund {
                    refund_id: r.id().as_str().to_owned(),
                    merchant_txn_id: r.payment_id().as_str().to_owned(),
                    amount: r.amount().to_string(),
                    status: r.status().as_str(),
                    reason: r.reason().map(str::to_owned),
                    requested_at: r.created_at().to_rfc3339(),
                    updated_at: r.updated_at().to_rfc3339(),
                })
                .collect(),
            issued_at: now.to_rfc3339(),
        }
    }

    /// The receipt as a printable HTML page (every value escaped).
    pub fn to_html(&self) -> String {
        let e = html_escape;
        let mut rows = String::new();
        let row = |rows: &mut String, k: &str, v: &str| {
            rows.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>\n", e(k), e(v)))
        };
        row(&mut rows, "Session", &self.session_id);
        row(&mut rows, "Lot", &format!("{} ({})", self.lot_name, self.lot_id));
        row(&mut rows, "Vehicle", &self.vehicle_number);
        let extended = if self.extra_hours > 0 { format!(" + {} h extended", self.extra_hours) } else { String::new() };
        row(
            &mut rows,
            "Booked",
            &format!("{} for {} h{extended}, until {}", self.booked_at, self.hours, self.booked_until),
        );
        if let Some(s) = &self.entry {
            row(&mut rows, "Entered", &format!("{} at gate {}", s.scanned_at, s.gate));
        }
        if let Some(s) = &self.exit {
            row(&mut rows, "Left", &format!("{} at gate {}", s.scanned_at, s.gate));
        }
        row(&mut rows, "Status", self.status);
        row(&mut rows, "Price", &format!("₹{}", self.amount));
        row(&mut rows, "Paid", &format!("₹{}", self.paid));
        row(&mut rows, "Refunded", &format!("₹{}", self.refunded));
        row(&mut rows, "Net paid", &format!("₹{}", self.net_paid));
        let mut payments = String::new();
        for p in &self.payments {
            payments.push_str(&format!(
                "<tr><td>{}</td><td>₹{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                e(&p.merchant_txn_id),
                e(&p.amount),
                e(p.payment_instrument),
                e(p.phonepe_transaction_id.as_deref().unwrap_or("—")),
                e(p.utr.as_deref().unwrap_or("—")),
                e(&p.paid_at)
            ));
        }
        let mut refunds = String::new();
        for r in &self.refunds {
            refunds.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>₹{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                e(&r.refund_id),
                e(&r.merchant_txn_id),
                e(&r.amount),
                e(r.status),
                e(r.reason.as_deref().unwrap_or("")),
                e(&r.updated_at)
            ));
        }
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Parking receipt {id}</title>\n\
             <style>body{{font-family:sans-serif;max-width:48em;margin:2em auto}}table{{border-collapse:collapse;width:100%;margin-bottom:1.5em}}\
             th,td{{text-align:left;padding:.3em .6em;border-bottom:1px solid #ccc}}@media print{{button{{display:none}}}}</style></head>\n\
             <body><h1>Parking receipt</h1>\n<table>\n{rows}</table>\n\
             <h2>Payments</h2>\n<table><tr><th>Payment</th><th>Amount</th><th>Instrument</th><th>PhonePe transaction</th><th>UTR</th><th>Paid at</th></tr>\n{payments}</table>\n\
             <h2>Refunds</h2>\n<table><tr><th>Refund</th><th>Payment</th><th>Amount</th><th>Status</th><th>Reason</th><th>Updated</th></tr>\n{refunds}</table>\n\
             <p>Issued {issued}. Amounts in Indian rupees.</p><button onclick=\"window.print()\">Print</button></body></html>\n",
            id = e(&self.session_id),
            issued = e(&self.issued_at),
        )
    }
}

/// `&`, `<`, `>`, `"` and `'` as entities.
pub fn html_escape(s: &str) -> String {
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

/// The receipt of a session its caller may see (its driver, or an operator; anyone else 404).
pub async fn receipt(state: &AppState, caller: &Caller, raw_id: &str) -> Result<ReceiptView, ApiError> {
    let id = parse_session_id(raw_id)?;
    crate::telemetry::note_session(&id);
    let b = load_visible(state, caller, &id).await?;
    let lot_name = state.lots.lot(b.session.lot_id()).map(|l| l.name.clone()).unwrap_or_default();
    Ok(ReceiptView::new(&b.session, &lot_name, &b.payments, &b.refunds, state.clock.now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(html_escape(r#"<b onclick="x">&'"#), "&lt;b onclick=&quot;x&quot;&gt;&amp;&#39;");
    }
}
