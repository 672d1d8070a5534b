//! What the API answers: the contract's JSON shapes, built from domain entities. Money is a
//! decimal string of rupees, times are RFC 3339 UTC.

use parkpay_domain::{Lot, ParkingSession, Payment, Refund};
use parkpay_store::SessionBundle;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct LotsView {
    pub lots: Vec<LotView>,
}

#[derive(Debug, Serialize)]
pub struct LotView {
    pub lot_id: String,
    pub name: String,
    pub hourly_rate: String,
    pub currency: &'static str,
}

impl From<&Lot> for LotView {
    fn from(l: &Lot) -> Self {
        LotView {
            lot_id: l.id.as_str().to_owned(),
            name: l.name.clone(),
            hourly_rate: l.hourly_rate.to_string(),
            currency: l.currency.as_str(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SessionView {
    pub session_id: String,
    pub lot_id: String,
    pub vehicle_number: String,
    pub hours: u32,
    pub amount: String,
    pub currency: &'static str,
    pub status: &'static str,
    pub can_enter: bool,
    pub paid: String,
    pub refunded: String,
    pub created_at: String,
    pub updated_at: String,
    pub payments: Vec<PaymentView>,
    pub refunds: Vec<RefundView>,
}

#[derive(Debug, Serialize)]
pub struct PaymentView {
    pub merchant_txn_id: String,
    pub amount: String,
    pub status: &'static str,
    pub payment_instrument: &'static str,
    pub refunded: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize)]
pub struct RefundView {
    pub refund_id: String,
    pub merchant_txn_id: String,
    pub amount: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: String,
}

impl SessionView {
    pub fn new(session: &ParkingSession, payments: &[Payment], refunds: &[Refund]) -> Self {
        SessionView {
            session_id: session.id().as_str().to_owned(),
            lot_id: session.lot_id().as_str().to_owned(),
            vehicle_number: session.vehicle().as_str().to_owned(),
            hours: session.hours().get(),
            amount: session.amount().to_string(),
            currency: "INR",
            status: session.status().as_str(),
            can_enter: session.can_enter(),
            paid: session.paid().to_string(),
            refunded: session.refunded().to_string(),
            created_at: session.created_at().to_rfc3339(),
            updated_at: session.updated_at().to_rfc3339(),
            payments: payments.iter().map(PaymentView::from).collect(),
            refunds: refunds.iter().map(RefundView::from).collect(),
        }
    }

    pub fn from_bundle(b: &SessionBundle) -> Self {
        Self::new(&b.session, &b.payments, &b.refunds)
    }
}

impl From<&Payment> for PaymentView {
    fn from(p: &Payment) -> Self {
        PaymentView {
            merchant_txn_id: p.id().as_str().to_owned(),
            amount: p.amount().to_string(),
            status: p.status().as_str(),
            payment_instrument: p.instrument().as_str(),
            refunded: p.refunded().to_string(),
            created_at: p.created_at().to_rfc3339(),
            updated_at: p.updated_at().to_rfc3339(),
        }
    }
}

impl From<&Refund> for RefundView {
    fn from(r: &Refund) -> Self {
        RefundView {
            refund_id: r.id().as_str().to_owned(),
            merchant_txn_id: r.payment_id().as_str().to_owned(),
            amount: r.amount().to_string(),
            status: r.status().as_str(),
            reason: r.reason().map(str::to_owned),
            created_at: r.created_at().to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PaymentCreatedView {
    pub merchant_txn_id: String,
    pub session_id: String,
    pub amount: String,
    pub status: &'static str,
    pub payment_instrument: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upi_intent_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_data: Option<String>,
    /// `APP_SDK`: the token the app hands to PhonePe's mobile SDK to open the payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk_token: Option<String>,
    /// PhonePe's own id of the order (PG v2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    pub expires_at: String,
}

#[derive(Debug, Serialize)]
pub struct VerifyView {
    pub merchant_txn_id: String,
    pub verified: bool,
    pub status: &'static str,
    pub amount: String,
    pub session_status: &'static str,
    pub can_enter: bool,
}

#[derive(Debug, Serialize)]
pub struct CallbackAck {
    pub success: bool,
    pub applied: bool,
}
