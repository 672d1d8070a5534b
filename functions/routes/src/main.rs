//! The Lambda binary of every HTTP route (`parkpay_api::ROUTES_BINARY`). Each route is still its
//! own Lambda function (own role, permissions, log group and settings in `template.yaml`); the
//! function's `PARKPAY_ENDPOINT` says which route it serves. One binary because every route
//! function links the whole handler table anyway: `sam build` then links it once, not once per
//! function (docs/serverless.md, "Build time").

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    parkpay_api::lambda::run_from_env().await
}
