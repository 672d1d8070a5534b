//! The salt key is fetched from SSM Parameter Store, or from Secrets Manager through Parameter
//! Store's `/aws/reference/secretsmanager/` names, over SSM's real wire protocol (AWS JSON 1.1),
//! here against a small stand-in server on loopback, on first use.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use parkpay_api::config::SaltSource;
use parkpay_api::secrets::fetch_salt;
use parkpay_checksum::{Message, SaltIndex};

#[derive(Default)]
struct Seen {
    targets: Vec<String>,
    bodies: Vec<serde_json::Value>,
}

async fn fake_aws(seen: Arc<Mutex<Seen>>) -> String {
    let app = axum::Router::new().route(
        "/",
        post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                seen.lock().unwrap().targets.push(target.clone());
                seen.lock().unwrap().bodies.push(body.clone());
                let answer = match (target.as_str(), body["Name"].as_str()) {
                    ("AmazonSSM.GetParameter", Some("/parkpay/salt")) => serde_json::json!({
                        "Parameter": {"Name": "/parkpay/salt", "Type": "SecureString", "Value": "ssm-salt-value", "Version": 1}
                    }),
                    // What Parameter Store answers for a Secrets Manager reference.
                    ("AmazonSSM.GetParameter", Some("/aws/reference/secretsmanager/parkpay/phonepe")) => serde_json::json!({
                        "Parameter": {
                            "Name": "/aws/reference/secretsmanager/parkpay/phonepe", "Type": "SecureString",
                            "Value": "{\"salt_key\":\"sm-salt-value\"}", "Version": 1,
                            "SourceResult": "{\"Name\":\"parkpay/phonepe\"}",
                            "ARN": "arn:aws:secretsmanager:ap-south-1:123456789012:secret:parkpay/phonepe-AbCdEf"
                        }
                    }),
                    _ => {
                        return (StatusCode::BAD_REQUEST, [("content-type", "application/x-amz-json-1.1")],
                            r#"{"__type":"ParameterNotFound","message":"no such parameter"}"#.to_owned());
                    }
                };
                (StatusCode::OK, [("content-type", "application/x-amz-json-1.1")], answer.to_string())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn aws_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("ap-south-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ssm::config::SharedCredentialsProvider::new(
            aws_sdk_ssm::config::Credentials::new("test", "test", None, None, "test"),
        ))
        .build()
}

fn signs_like(keys: &parkpay_checksum::SaltKeys, salt: &str) -> bool {
    let expected = parkpay_checksum::SaltKeys::single(SaltIndex::new(3), parkpay_checksum::SaltKey::new(salt).unwrap());
    let msg = Message::Path { path: "/pg/v1/status/M/T" };
    keys.sign(msg) == expected.sign(msg)
}

#[tokio::test]
async fn salt_from_ssm_and_secrets_manager() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let aws = aws_config(&fake_aws(seen.clone()).await);

    let keys = fetch_salt(&SaltSource::Ssm { parameter: "/parkpay/salt".into(), index: SaltIndex::new(3) }, &aws)
        .await
        .unwrap();
    assert!(signs_like(&keys, "ssm-salt-value"));
    assert_eq!(keys.active_index(), SaltIndex::new(3));

    let keys =
        fetch_salt(&SaltSource::SecretsManager { secret_id: "parkpay/phonepe".into(), index: SaltIndex::new(3) }, &aws)
            .await
            .unwrap();
    assert!(signs_like(&keys, "sm-salt-value"));

    let err = fetch_salt(&SaltSource::Ssm { parameter: "/missing".into(), index: SaltIndex::new(1) }, &aws)
        .await
        .unwrap_err();
    assert!(err.contains("/missing"), "{err}");
    assert!(!err.contains("salt-value"));

    let seen = seen.lock().unwrap();
    assert_eq!(seen.targets[0], "AmazonSSM.GetParameter");
    assert_eq!(seen.bodies[0]["WithDecryption"], true, "SecureString must be decrypted");
    assert_eq!(seen.targets[1], "AmazonSSM.GetParameter");
    assert_eq!(seen.bodies[1]["Name"], "/aws/reference/secretsmanager/parkpay/phonepe");
    assert_eq!(seen.bodies[1]["WithDecryption"], true, "a Secrets Manager reference must be decrypted");
}
