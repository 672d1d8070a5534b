//! `DynamoStore::from_env` reaches the endpoint named by `AWS_ENDPOINT_URL_DYNAMODB` (how the
//! local tools and `sam local` point the Lambda code at DynamoDB Local). Its own test binary,
//! because it sets environment variables.

use parkpay_domain::SessionId;
use parkpay_store::{DynamoStore, Store};

#[test]
fn from_env_honours_the_dynamodb_endpoint_variable() {
    let endpoint = match std::env::var("PARKPAY_DYNAMODB_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => e,
        _ if std::env::var("PARKPAY_SKIP_DYNAMODB").as_deref() == Ok("1") => {
            eprintln!("SKIPPED from_env on DynamoDB: PARKPAY_SKIP_DYNAMODB=1");
            return;
        }
        _ => panic!(
            "PARKPAY_DYNAMODB_ENDPOINT is not set: run scripts/test.sh (it starts DynamoDB Local and sets it). \
             Set PARKPAY_SKIP_DYNAMODB=1 to skip the DynamoDB tests."
        ),
    };
    let defaults = [
        ("AWS_REGION", "ap-south-1"),
        ("AWS_ACCESS_KEY_ID", "parkpaylocal"),
        ("AWS_SECRET_ACCESS_KEY", "parkpaylocal"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    // SAFETY: the only test in this binary, and no other thread has been started by it yet.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", &endpoint);
        for (name, value) in defaults {
            if std::env::var_os(name).is_none() {
                std::env::set_var(name, value);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let table = format!("from-env-{}", std::process::id());
        let store = DynamoStore::from_env(table.clone()).await;
        assert_eq!(store.table(), table);
        parkpay_store::create_table(store.client(), &table).await.unwrap();
        assert_eq!(store.load_session(&SessionId::from_random([1; 16])).await.unwrap(), None);
    });
}
