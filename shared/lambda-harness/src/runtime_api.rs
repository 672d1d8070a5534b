//! A stand-in for the AWS Lambda Runtime API, enough for `lambda_runtime` 1.x:
//!
//! | route | does |
//! |---|---|
//! | `GET /2018-06-01/runtime/invocation/next` | long-polls for the next queued event; answers it with `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`, `Lambda-Runtime-Invoked-Function-Arn` and `Lambda-Runtime-Trace-Id` |
//! | `POST /2018-06-01/runtime/invocation/{id}/response` | the function's answer to event `id` |
//! | `POST /2018-06-01/runtime/invocation/{id}/error` | the function's error for event `id` |
//! | `POST /2018-06-01/runtime/init/error` | the function failed to start |
//!
//! The time the first `/next` arrives is recorded: with the time the process was started, that
//! is the function's init duration. Use one stand-in per process start: a killed process's
//! pending `/next` would otherwise take the next event.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// What the function answered to one event.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The invocation's `Lambda-Runtime-Aws-Request-Id` (the Lambda request id).
    pub request_id: String,
    /// `true` for `/response`, `false` for `/error`.
    pub ok: bool,
    pub body: Bytes,
    /// When `/next` handed the event over.
    pub delivered_at: Instant,
    /// When the answer arrived.
    pub answered_at: Instant,
}

impl Answer {
    /// Handler time as the runtime sees it: event handed over → answer received.
    pub fn latency(&self) -> Duration {
        self.answered_at.saturating_duration_since(self.delivered_at)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("the Runtime API stand-in has stopped")]
    Stopped,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

struct Queued {
    body: String,
    /// The function's time limit for this event: `Lambda-Runtime-Deadline-Ms` is delivery + this.
    deadline: Duration,
    reply: oneshot::Sender<Answer>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    in_flight: Mutex<HashMap<String, (oneshot::Sender<Answer>, Instant)>>,
    first_next: watch::Sender<Option<Instant>>,
    init_error: Mutex<Option<String>>,
    next_id: AtomicU64,
    function_arn: String,
}

/// A running stand-in on 127.0.0.1 (a free port).
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    queue: mpsc::UnboundedSender<Queued>,
    first_next: watch::Receiver<Option<Instant>>,
    server: JoinHandle<std::io::Result<()>>,
}

impl RuntimeApi {
    /// Start serving for a function named `function_name`.
    pub async fn start(function_name: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let (first_tx, first_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(queue_rx),
            in_flight: Mutex::new(HashMap::new()),
            first_next: first_tx,
            init_error: Mutex::new(None),
            next_id: AtomicU64::new(1),
            function_arn: format!("arn:aws:lambda:ap-south-1:123456789012:function:{function_name}"),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(RuntimeApi { addr, shared, queue: queue_tx, first_next: first_rx, server })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// When the first `/next` arrived, if it has.
    pub fn first_next_at(&self) -> Option<Instant> {
        *self.first_next.borrow()
    }

    /// Wait for the first `/next` (the end of the function's init).
    pub async fn first_next(&self) -> Instant {
        let mut rx = self.first_next.clone();
        loop {
            if let Some(at) = *rx.borrow_and_update() {
                return at;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `shared`, which we hold: cannot happen, but never spin.
                std::future::pending::<()>().await;
            }
        }
    }

    /// What the function posted to `/init/error`, if anything.
    pub fn init_error(&self) -> Option<String> {
        self.shared.init_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Queue `event` (JSON text) and wait up to `timeout` for the function's answer; the
    /// function sees the same `timeout` as its deadline (as Lambda's function timeout).
    pub async fn invoke(&self, event: impl Into<String>, timeout: Duration) -> Result<Answer, InvokeError> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send(Queued { body: event.into(), deadline: timeout, reply: tx })
            .map_err(|_| InvokeError::Stopped)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(InvokeError::Stopped),
            Err(_) => Err(InvokeError::Timeout(timeout)),
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn epoch_ms(after: Duration) -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().saturating_add(after).as_millis()
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.first_next.send_if_modified(|first| {
        if first.is_none() {
            *first = Some(Instant::now());
            true
        } else {
            false
        }
    });
    let queued = {
        let mut queue = shared.queue.lock().await;
        queue.recv().await
    };
    let Some(Queued { body, deadline, reply }) = queued else {
        return (StatusCode::GONE, "stand-in stopping").into_response();
    };
    let n = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let id = format!("8476a536-e9f4-11e8-9739-{n:012x}");
    let delivered_at = Instant::now();
    shared.in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), (reply, delivered_at));
    let mut resp = Response::new(axum::body::Body::from(body));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let pairs = [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", epoch_ms(deadline).to_string()),
        ("lambda-runtime-invoked-function-arn", shared.function_arn.clone()),
        ("lambda-runtime-trace-id", format!("Root=1-6746f1a2-{n:024x};Parent=0000000000000001;Sampled=0")),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    resp
}

fn answer(shared: &Shared, id: &str, ok: bool, body: Bytes) -> StatusCode {
    let answered_at = Instant::now();
    let entry = shared.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    match entry {
        Some((reply, delivered_at)) => {
            let _ = reply.send(Answer { request_id: id.to_owned(), ok, body, delivered_at, answered_at });
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answer(&shared, &id, true, body)
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answer(&shared, &id, false, body)
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    *shared.init_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}
