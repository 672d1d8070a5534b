//! The hosted pay page: `GET /pay/{token}` shows the payment with "Pay" and "Decline";
//! `POST /pay/{token}` with `outcome=success|failure|declined` decides it, sends the callback
//! and sends the browser on to the merchant's redirect URL.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::engine::Inner;
use crate::model::{CompleteError, Outcome, SimState, Transaction};
use crate::util::{html_escape, rupees};

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · PhonePe simulator</title>\n<style>\n\
         body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}}\n\
         dl{{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem}}dt{{font-weight:600}}dd{{margin:0;word-break:break-all}}\n\
         .actions{{display:flex;gap:1rem;margin-top:1.5rem}}\n\
         button{{font-size:1.1rem;padding:.6rem 1.4rem;border-radius:.4rem;border:2px solid #5f259f;cursor:pointer}}\n\
         button:focus-visible{{outline:3px solid #000;outline-offset:2px}}\n\
         .pay{{background:#5f259f;color:#fff}}.decline{{background:#fff;color:#5f259f}}\n\
         .note{{color:#555;font-size:.9rem}}\n</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n",
        title = html_escape(title),
    );
    (status, Html(html)).into_response()
}

fn details(t: &Transaction) -> String {
    format!(
        "<dl>\n<dt>Merchant</dt><dd>{}</dd>\n<dt>Amount</dt><dd>₹{}</dd>\n\
         <dt>Transaction</dt><dd>{}</dd>\n<dt>Method</dt><dd>{}</dd>\n</dl>",
        html_escape(&t.merchant_id),
        rupees(t.amount),
        html_escape(&t.merchant_transaction_id),
        html_escape(t.instrument.as_deref().unwrap_or("")),
    )
}

fn unknown_link() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Unknown payment link",
        "<h1>Unknown payment link</h1>\n<p>This payment link does not exist. Start the payment again from the merchant.</p>",
    )
}

fn lookup(inner: &Inner, token: &str) -> Option<Transaction> {
    let st = inner.lock();
    let txn = st.tokens.get(token)?;
    st.txns.get(txn).map(|r| r.view.clone())
}

pub(crate) async fn show(State(inner): State<Arc<Inner>>, Path(token): Path<String>) -> Response {
    let Some(t) = lookup(&inner, &token) else { return unknown_link() };
    if t.outcome.is_some() || t.state != SimState::Pending {
        let body = format!(
            "<h1>Payment already {}</h1>\n{}\n<p>This payment has already been decided; nothing more to do here.</p>",
            t.state.as_str().to_lowercase(),
            details(&t)
        );
        return page(StatusCode::OK, "Payment already decided", &body);
    }
    let body = format!(
        "<h1>Pay ₹{amount} to {merchant}</h1>\n{details}\n\
         <p class=\"note\">This is the parkpay PhonePe simulator: no money moves.</p>\n\
         <div class=\"actions\">\n\
         <form method=\"post\"><input type=\"hidden\" name=\"outcome\" value=\"success\">\
         <button type=\"submit\" class=\"pay\">Pay</button></form>\n\
         <form method=\"post\"><input type=\"hidden\" name=\"outcome\" value=\"declined\">\
         <button type=\"submit\" class=\"decline\">Decline</button></form>\n</div>",
        amount = rupees(t.amount),
        merchant = html_escape(&t.merchant_id),
        details = details(&t),
    );
    page(StatusCode::OK, "Pay", &body)
}

pub(crate) async fn submit(State(inner): State<Arc<Inner>>, Path(token): Path<String>, body: Bytes) -> Response {
    let Some(t) = lookup(&inner, &token) else { return unknown_link() };
    let outcome = url::form_urlencoded::parse(&body).find(|(k, _)| k == "outcome").map(|(_, v)| v.into_owned());
    let Some(outcome) = outcome.as_deref().and_then(|o| o.parse::<Outcome>().ok()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "<h1>Bad request</h1>\n<p>The form field <code>outcome</code> must be <code>success</code>, \
             <code>failure</code> or <code>declined</code>.</p>",
        );
    };
    let decided = match inner.complete(&t.merchant_transaction_id, outcome).await {
        Ok(t) => t,
        Err(CompleteError::AlreadyDecided { state, .. }) => {
            let body = format!(
                "<h1>Already decided</h1>\n{}\n<p>This payment is already {}: it cannot be paid or declined again.</p>",
                details(&t),
                state.as_str().to_lowercase()
            );
            return page(StatusCode::CONFLICT, "Already decided", &body);
        }
        Err(CompleteError::NotFound(_) | CompleteError::NotAPayment(_)) => return unknown_link(),
    };
    redirect_back(&decided)
}

/// Send the browser to the merchant: 303 for `REDIRECT` mode, an auto-submitting form for
/// `POST` mode (fields `code`, `merchantId`, `transactionId` = merchantTransactionId, `amount`,
/// `providerReferenceId`, as PhonePe posts them).
fn redirect_back(t: &Transaction) -> Response {
    let Some(url) = t.redirect_url.as_deref() else {
        let body = format!("<h1>Payment {}</h1>\n{}\n<p>You can close this page.</p>", t.code, details(t));
        return page(StatusCode::OK, "Done", &body);
    };
    if t.redirect_mode.as_deref() == Some("POST") {
        let fields = [
            ("code", t.code.as_str()),
            ("merchantId", t.merchant_id.as_str()),
            ("transactionId", t.merchant_transaction_id.as_str()),
            ("amount", &t.amount.to_string()),
            ("providerReferenceId", t.provider_transaction_id.as_str()),
        ]
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", html_escape(v)))
        .collect::<Vec<_>>()
        .join("\n");
        let body = format!(
            "<h1>Returning to the merchant…</h1>\n<form method=\"post\" action=\"{}\">\n{fields}\n\
             <noscript><button type=\"submit\">Continue</button></noscript>\n</form>\n\
             <script>document.forms[0].submit()</script>",
            html_escape(url)
        );
        return page(StatusCode::OK, "Returning to the merchant", &body);
    }
    match HeaderValue::from_str(url) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => page(StatusCode::OK, "Done", &format!("<h1>Payment {}</h1>\n{}", t.code, details(t))),
    }
}
