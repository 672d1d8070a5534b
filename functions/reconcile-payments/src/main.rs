//! Lambda function `reconcile-payments`, run every minute by EventBridge: polls PhonePe for
//! PENDING payments and refunds on PhonePe's schedule (`parkpay_api::reconcile`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    parkpay_api::lambda::run_reconciler().await
}
