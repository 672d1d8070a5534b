//! Lambda function `list-obligations`: a few lines around the shared handler (`parkpay_api::routes`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    parkpay_api::lambda::run(parkpay_api::Endpoint::ListObligations).await
}
