//! A stand-in for AWS Systems Manager Parameter Store on 127.0.0.1, speaking SSM's wire
//! protocol (AWS JSON 1.1: `POST /` with `x-amz-target: AmazonSSM.<Operation>`), enough for
//! `GetParameter`. A function binary reaches it through `AWS_ENDPOINT_URL_SSM` (see
//! [`crate::world::Secrets::Ssm`]).
//!
//! It records every request it answers ([`Call`]), and can be told to fail, so the tests can see
//! when a function reads its secret and what it does when SSM is unavailable:
//!
//! | state | a request gets |
//! |---|---|
//! | [`SsmStandIn::refusing`] (until [`SsmStandIn::listen`]) | connection refused: the port is bound but not listening |
//! | [`Failure::InternalError`] | `500` `InternalServerError` |
//! | [`Failure::Throttling`] | `400` `ThrottlingException` (as SSM answers past its request rate) |
//! | healthy, a known name | `200` the parameter; a `SecureString`'s value only with `WithDecryption: true`, else an opaque ciphertext, as SSM does |
//! | healthy, another name | `400` `ParameterNotFound` |
//!
//! Both failures are ones the AWS SDK retries (its standard mode makes up to 3 attempts), so one
//! `GetParameter` of a function may be several [`Call`]s here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;

/// The target of `GetParameter` in AWS JSON 1.1.
pub const GET_PARAMETER: &str = "AmazonSSM.GetParameter";

const JSON_1_1: &str = "application/x-amz-json-1.1";

/// What SSM answers instead of a `SecureString`'s value when it is not asked to decrypt.
pub const CIPHERTEXT: &str = "AQICAHhstand+in+ciphertext+not+the+value==";

/// A failure the stand-in answers every request with until told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `500` `InternalServerError`.
    InternalError,
    /// `400` `ThrottlingException`.
    Throttling,
}

/// One request the stand-in answered.
#[derive(Debug, Clone)]
pub struct Call {
    /// `x-amz-target`, e.g. [`GET_PARAMETER`].
    pub target: String,
    /// The request's `Name`.
    pub name: Option<String>,
    /// The request's `WithDecryption`.
    pub with_decryption: Option<bool>,
    /// The SigV4 `Credential=…` scope of its `Authorization` header (`key/date/region/service/aws4_request`).
    pub credential_scope: Option<String>,
    /// The status it was answered with.
    pub status: u16,
}

struct Shared {
    parameters: BTreeMap<String, String>,
    failure: Mutex<Option<Failure>>,
    calls: Mutex<Vec<Call>>,
}

/// A running (or, until [`SsmStandIn::listen`], refusing) stand-in.
pub struct SsmStandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Bound but not listening: connections are refused.
    bound: Mutex<Option<TcpSocket>>,
    server: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SsmStandIn {
    /// A stand-in holding `parameters` (`name → value`, each a `SecureString`) on a free port of
    /// 127.0.0.1 whose connections are refused until [`listen`](Self::listen).
    pub fn refusing<N: Into<String>, V: Into<String>>(
        parameters: impl IntoIterator<Item = (N, V)>,
    ) -> std::io::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = socket.local_addr()?;
        let shared = Arc::new(Shared {
            parameters: parameters.into_iter().map(|(n, v)| (n.into(), v.into())).collect(),
            failure: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
        });
        Ok(SsmStandIn { addr, shared, bound: Mutex::new(Some(socket)), server: Mutex::new(None) })
    }

    /// A stand-in serving `parameters` (see [`refusing`](Self::refusing)) right away. Call it
    /// inside a Tokio runtime.
    pub fn start<N: Into<String>, V: Into<String>>(
        parameters: impl IntoIterator<Item = (N, V)>,
    ) -> std::io::Result<Self> {
        let s = Self::refusing(parameters)?;
        s.listen()?;
        Ok(s)
    }

    /// Start accepting connections (on the same port). Call it inside a Tokio runtime; a second
    /// call does nothing.
    pub fn listen(&self) -> std::io::Result<()> {
        let Some(socket) = lock(&self.bound).take() else { return Ok(()) };
        let listener = socket.listen(64)?;
        let app = Router::new().route("/", post(answer)).with_state(self.shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *lock(&self.server) = Some(server);
        Ok(())
    }

    /// The endpoint URL, the value of `AWS_ENDPOINT_URL_SSM`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer every request with `failure` from now on (`None`: answer normally again).
    pub fn fail_with(&self, failure: Option<Failure>) {
        *lock(&self.shared.failure) = failure;
    }

    /// Every request answered so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.calls).clone()
    }
}

impl Drop for SsmStandIn {
    fn drop(&mut self) {
        if let Some(server) = lock(&self.server).take() {
            server.abort();
        }
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let body = serde_json::json!({ "__type": kind, "message": message }).to_string();
    (status, [("content-type", JSON_1_1)], body)
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let name = request["Name"].as_str().map(str::to_owned);
    let with_decryption = request["WithDecryption"].as_bool();
    let credential_scope = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .map(|rest| rest.split(',').next().unwrap_or_default().to_owned());
    let failure = *lock(&shared.failure);
    let reply = match (failure, target.as_str(), name.as_deref()) {
        (Some(Failure::InternalError), _, _) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "stand-in: internal error")
        }
        (Some(Failure::Throttling), _, _) => error(StatusCode::BAD_REQUEST, "ThrottlingException", "Rate exceeded"),
        (None, GET_PARAMETER, Some(name)) => match shared.parameters.get(name) {
            Some(value) => {
                let value = if with_decryption == Some(true) { value.as_str() } else { CIPHERTEXT };
                let parameter = serde_json::json!({
                    "Parameter": {
                        "Name": name,
                        "Type": "SecureString",
                        "Value": value,
                        "Version": 1,
                        "LastModifiedDate": 1.7642385e9,
                        "ARN": format!("arn:aws:ssm:ap-south-1:123456789012:parameter{name}"),
                        "DataType": "text",
                    }
                });
                (StatusCode::OK, [("content-type", JSON_1_1)], parameter.to_string())
            }
            None => error(StatusCode::BAD_REQUEST, "ParameterNotFound", "stand-in: no such parameter"),
        },
        (None, GET_PARAMETER, None) => error(StatusCode::BAD_REQUEST, "ValidationException", "Name is required"),
        (None, _, _) => error(StatusCode::BAD_REQUEST, "UnknownOperationException", "stand-in: only GetParameter"),
    };
    lock(&shared.calls).push(Call { target, name, with_decryption, credential_scope, status: reply.0.as_u16() });
    reply
}
