//! A recording proxy in front of DynamoDB Local: point a function's `AWS_ENDPOINT_URL_DYNAMODB`
//! at it and it forwards every call unchanged while noting the IAM action each one needs
//! (`X-Amz-Target`; a TransactWriteItems counts as the actions of its items: Put → `PutItem`,
//! Update → `UpdateItem`, Delete → `DeleteItem`, ConditionCheck → `ConditionCheckItem`), with
//! the partition key values it names (their prefix, what a policy's `dynamodb:LeadingKeys`
//! condition matches): a single-item call's `Key` or `Item`, a Query's partition key (from its
//! `KeyConditionExpression`; on an index, the index's), each key of a BatchGetItem (one [`Call`]
//! per prefix). The events test compares what each function really called with what
//! template.yaml allows it.
//! (DynamoDB Local does not check request signatures, so the changed host is fine.)

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One IAM-relevant call: the action, the index it used, if any, and the prefix up to the first
/// `#` (`SESSION#`, `TXN#`, `USER#`, …) of the partition key it names: the item's, a Query's
/// (the index's partition key on an index), or one of a BatchGetItem's keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub action: String,
    pub index: Option<String>,
    pub leading_key: Option<String>,
}

/// A partition key value's prefix, through its first `#`.
fn prefix(pk: &str) -> String {
    pk.split_inclusive('#').next().unwrap_or(pk).to_owned()
}

/// The `PK` prefix (through the first `#`) of the item a request body names in `Key` or `Item`,
/// or of the partition a Query reads (see [`query_partition`]).
fn leading_key(body: &serde_json::Value) -> Option<String> {
    let pk = body["Key"]["PK"]["S"].as_str().or_else(|| body["Item"]["PK"]["S"].as_str());
    match pk {
        Some(pk) => Some(prefix(pk)),
        None => query_partition(body).map(|pk| prefix(&pk)),
    }
}

/// The partition key value a Query names: the clause `<name> = <:value>` of its
/// `KeyConditionExpression` whose attribute (through `ExpressionAttributeNames`) is `PK`, or on
/// an index its partition key (`GSI1PK`, …: the attribute ending in `PK`).
fn query_partition(body: &serde_json::Value) -> Option<String> {
    let expression = body["KeyConditionExpression"].as_str()?;
    let on_index = body["IndexName"].is_string();
    for clause in expression.split(" AND ") {
        let Some((name, value)) = clause.split_once('=') else { continue };
        let (name, value) = (name.trim().trim_start_matches('('), value.trim().trim_end_matches(')'));
        let attribute = if name.starts_with('#') { body["ExpressionAttributeNames"][name].as_str()? } else { name };
        let is_partition = if on_index { attribute.ends_with("PK") } else { attribute == "PK" };
        if is_partition {
            return body["ExpressionAttributeValues"][value]["S"].as_str().map(str::to_owned);
        }
    }
    None
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    calls: Mutex<BTreeSet<Call>>,
}

pub struct DynamoProxy {
    pub url: String,
    shared: Arc<Shared>,
    server: JoinHandle<std::io::Result<()>>,
}

impl DynamoProxy {
    pub async fn start(upstream: &str) -> std::io::Result<DynamoProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            calls: Mutex::new(BTreeSet::new()),
        });
        let app = Router::new().fallback(forward).with_state(shared.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(DynamoProxy { url, shared, server })
    }

    /// The distinct calls since the last `take`.
    pub fn take(&self) -> BTreeSet<Call> {
        std::mem::take(&mut *self.shared.calls.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for DynamoProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The IAM actions a DynamoDB JSON-protocol call needs.
pub fn actions_of(target: &str, body: &[u8]) -> Vec<Call> {
    let op = target.rsplit('.').next().unwrap_or(target);
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let call = |action: &str, index: Option<&str>, body: &serde_json::Value| Call {
        action: format!("dynamodb:{action}"),
        index: index.map(str::to_owned),
        leading_key: leading_key(body),
    };
    match op {
        "TransactWriteItems" => json["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let (kind, body) = item.as_object()?.iter().next()?;
                Some(match kind.as_str() {
                    "Put" => call("PutItem", None, body),
                    "Update" => call("UpdateItem", None, body),
                    "Delete" => call("DeleteItem", None, body),
                    "ConditionCheck" => call("ConditionCheckItem", None, body),
                    other => call(other, None, body),
                })
            })
            .collect(),
        "TransactGetItems" => vec![call("GetItem", None, &serde_json::Value::Null)],
        // IAM judges LeadingKeys over every key of the batch: one call per distinct prefix.
        "BatchGetItem" => {
            let prefixes: std::collections::BTreeSet<Option<String>> = json["RequestItems"]
                .as_object()
                .into_iter()
                .flat_map(|tables| tables.values())
                .flat_map(|t| t["Keys"].as_array().cloned().unwrap_or_default())
                .map(|k| k["PK"]["S"].as_str().map(prefix))
                .collect();
            let prefixes = if prefixes.is_empty() { std::collections::BTreeSet::from([None]) } else { prefixes };
            prefixes
                .into_iter()
                .map(|leading_key| Call { action: "dynamodb:BatchGetItem".into(), index: None, leading_key })
                .collect()
        }
        _ => vec![call(op, json["IndexName"].as_str(), &json)],
    }
}

async fn forward(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        shared.calls.lock().unwrap_or_else(|e| e.into_inner()).extend(actions_of(target, &body));
    }
    let url = format!("{}{}", shared.upstream, uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut req = shared.http.request(method, url).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            req = req.header(name, value);
        }
    }
    match req.send().await {
        Ok(resp) => {
            let mut out = Response::builder().status(resp.status());
            for (name, value) in resp.headers() {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    out = out.header(name, value);
                }
            }
            let bytes = resp.bytes().await.unwrap_or_default();
            out.body(Body::from(bytes)).unwrap_or_else(|_| Response::new(Body::empty()))
        }
        Err(e) => {
            let mut r = Response::new(Body::from(format!("proxy: {e}")));
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_count_per_item() {
        let body = br#"{"TransactItems":[{"Put":{"Item":{"PK":{"S":"TXN#PP1"}}}},
            {"Update":{"Key":{"PK":{"S":"SESSION#ps_1"}}}},{"Put":{}}]}"#;
        let got: Vec<(String, Option<String>)> = actions_of("DynamoDB_20120810.TransactWriteItems", body)
            .into_iter()
            .map(|c| (c.action, c.leading_key))
            .collect();
        assert_eq!(
            got,
            [
                ("dynamodb:PutItem".into(), Some("TXN#".into())),
                ("dynamodb:UpdateItem".into(), Some("SESSION#".into())),
                ("dynamodb:PutItem".into(), None)
            ]
        );
        let q = actions_of("DynamoDB_20120810.Query", br#"{"IndexName":"GSI2"}"#);
        assert_eq!(q, [Call { action: "dynamodb:Query".into(), index: Some("GSI2".into()), leading_key: None }]);
    }

    #[test]
    fn queries_and_batches_name_their_partitions() {
        let q = actions_of(
            "DynamoDB_20120810.Query",
            br##"{"KeyConditionExpression":"#pk = :pk AND #sk < :before","ExpressionAttributeNames":{"#pk":"PK","#sk":"SK"},
                "ExpressionAttributeValues":{":pk":{"S":"USER#3f6b"},":before":{"S":"0001#x"}}}"##,
        );
        assert_eq!(q[0].leading_key.as_deref(), Some("USER#"));
        let on_index = actions_of(
            "DynamoDB_20120810.Query",
            br##"{"IndexName":"GSI3","KeyConditionExpression":"#h = :h AND #r > :after","ExpressionAttributeNames":{"#h":"GSI3PK","#r":"GSI3SK"},
                "ExpressionAttributeValues":{":h":{"S":"PASS_REVOKED"},":after":{"S":"0"}}}"##,
        );
        assert_eq!(
            (on_index[0].index.as_deref(), on_index[0].leading_key.as_deref()),
            (Some("GSI3"), Some("PASS_REVOKED"))
        );
        let batch = actions_of(
            "DynamoDB_20120810.BatchGetItem",
            br##"{"RequestItems":{"t":{"Keys":[{"PK":{"S":"SESSION#a"},"SK":{"S":"#SESSION"}},{"PK":{"S":"SESSION#b"}},{"PK":{"S":"TXN#c"}}]}}}"##,
        );
        let keys: Vec<_> = batch.iter().map(|c| c.leading_key.as_deref()).collect();
        assert_eq!(keys, [Some("SESSION#"), Some("TXN#")]);
    }
}
