//! Run a built function binary the way Lambda runs `bootstrap`: a clean environment with the
//! `AWS_LAMBDA_*` variables Lambda sets, `AWS_LAMBDA_RUNTIME_API` pointing at a fresh
//! [`RuntimeApi`] stand-in, and the function's own variables. Init is timed from just before
//! `exec` to the first `/next`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::runtime_api::{Answer, InvokeError, RuntimeApi};

/// Memory size the template gives every function (`Globals.Function.MemorySize`).
pub const MEMORY_MB: u32 = 256;

/// What to start.
#[derive(Debug, Clone)]
pub struct Launch {
    pub exe: PathBuf,
    /// `AWS_LAMBDA_FUNCTION_NAME` (the template's logical id reads well in logs).
    pub function_name: String,
    /// The function's own variables (template environment, credentials, endpoints).
    pub env: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the Runtime API stand-in: {0}")]
    RuntimeApi(std::io::Error),
    #[error("cannot start {exe}: {source}")]
    Spawn { exe: String, source: std::io::Error },
    #[error(
        "{exe} exited ({status}) before asking for an event; init error: {init_error:?}\n--- its output ---\n{logs}"
    )]
    Exited { exe: String, status: ExitStatus, init_error: Option<String>, logs: String },
    #[error("{exe} did not ask for an event within {timeout:?}\n--- its output ---\n{logs}")]
    InitTimeout { exe: String, timeout: Duration, logs: String },
}

/// The variables Lambda's `provided.al2023` runtime sets for a function (besides its own).
pub fn lambda_environment(function_name: &str, runtime_api: &str, task_root: &Path) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_MB.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2025/11/27/[$LATEST]0123456789abcdef0123456789abcdef".to_owned()),
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        // Globals.Function.LoggingConfig of template.yaml
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("LAMBDA_TASK_ROOT", task_root.display().to_string()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A started function that has reached its first `/next`.
pub struct Running {
    child: Child,
    api: RuntimeApi,
    logs: Arc<Mutex<Vec<u8>>>,
    /// exec → first `/next`.
    pub init: Duration,
    pub exe: String,
}

fn drain(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&buf[..n]);
        }
    });
}

fn logs_text(logs: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&logs.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Start `launch` against a fresh stand-in and wait (up to `init_timeout`) for its first `/next`.
pub async fn start(launch: &Launch, init_timeout: Duration) -> Result<Running, StartError> {
    let api = RuntimeApi::start(&launch.function_name).await.map_err(StartError::RuntimeApi)?;
    let exe = launch.exe.display().to_string();
    // Absolute: the process starts in its own directory (LAMBDA_TASK_ROOT), as in Lambda.
    let path = launch.exe.canonicalize().map_err(|source| StartError::Spawn { exe: exe.clone(), source })?;
    let task_root = path.parent().unwrap_or(Path::new("/"));
    let mut cmd = Command::new(&path);
    cmd.env_clear()
        .envs(lambda_environment(&launch.function_name, &api.address(), task_root))
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(task_root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started_at = Instant::now();
    let mut child = cmd.spawn().map_err(|source| StartError::Spawn { exe: exe.clone(), source })?;
    let logs = Arc::new(Mutex::new(Vec::new()));
    if let Some(out) = child.stdout.take() {
        drain(out, logs.clone());
    }
    if let Some(err) = child.stderr.take() {
        drain(err, logs.clone());
    }

    let first_next = {
        let first = api.first_next();
        tokio::pin!(first);
        let mut poll = tokio::time::interval(Duration::from_millis(2));
        loop {
            tokio::select! {
                at = &mut first => break at,
                _ = poll.tick() => {
                    if let Ok(Some(status)) = child.try_wait() {
                        // It may have asked for an event just before exiting.
                        if let Some(at) = api.first_next_at() { break at; }
                        std::thread::sleep(Duration::from_millis(20)); // let the log threads finish
                        return Err(StartError::Exited { exe, status, init_error: api.init_error(), logs: logs_text(&logs) });
                    }
                    if started_at.elapsed() > init_timeout {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(StartError::InitTimeout { exe, timeout: init_timeout, logs: logs_text(&logs) });
                    }
                }
            }
        }
    };
    Ok(Running { child, api, logs, init: first_next.saturating_duration_since(started_at), exe })
}

impl Running {
    /// Hand the function one event and wait for its answer.
    pub async fn invoke(&self, event: &str, timeout: Duration) -> Result<Answer, InvokeError> {
        self.api.invoke(event.to_owned(), timeout).await
    }

    /// Everything the process printed so far (its logs).
    pub fn logs(&self) -> String {
        logs_text(&self.logs)
    }

    /// Kill the process and reap it.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The parts of an API Gateway (payload 2.0) Lambda response the tests look at.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    /// The body parsed as JSON when the content type is JSON (or absent); `Null` for an empty
    /// body and for another content type (an image, an HTML page: see [`HttpAnswer::bytes`]).
    pub body: serde_json::Value,
    /// The body's bytes, base64-decoded when `isBase64Encoded`.
    pub bytes: Vec<u8>,
    /// The response's `isBase64Encoded`: how API Gateway is told the body is binary (an image).
    pub base64_encoded: bool,
    /// The `content-disposition` header, if any (a download: the settlement CSV).
    pub content_disposition: Option<String>,
}

/// Whether `content_type` (a `content-type` value) is JSON.
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .is_none_or(|ct| ct.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")))
}

/// Read a function's `/response` body as API Gateway would: `statusCode`, `headers`, `body`
/// (base64 when `isBase64Encoded`). A JSON answer that is not JSON is an error.
pub fn http_answer(raw: &[u8]) -> Result<HttpAnswer, String> {
    use base64::Engine;
    let v: serde_json::Value = serde_json::from_slice(raw)
        .map_err(|e| format!("response is not JSON ({e}): {}", String::from_utf8_lossy(raw)))?;
    let status = v["statusCode"].as_u64().ok_or_else(|| format!("no statusCode in {v}"))? as u16;
    let content_type = v["headers"]["content-type"].as_str().map(str::to_owned);
    let content_disposition = v["headers"]["content-disposition"].as_str().map(str::to_owned);
    let base64_encoded = v["isBase64Encoded"].as_bool().unwrap_or(false);
    let bytes = match (&v["body"], base64_encoded) {
        (serde_json::Value::String(s), false) => s.clone().into_bytes(),
        (serde_json::Value::String(s), true) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("isBase64Encoded, but the body is not base64 ({e})"))?,
        (serde_json::Value::Null, _) => Vec::new(),
        (other, _) => return Err(format!("body is not a string: {other}")),
    };
    let body = if bytes.is_empty() || !is_json(content_type.as_deref()) {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("body is not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))?
    };
    Ok(HttpAnswer { status, content_type, body, bytes, base64_encoded, content_disposition })
}

/// The [`HttpAnswer`] `lambda_http` makes of a handler's response, as the runtime does before it
/// sends it (`IntoResponse`: a body whose content type is text-like, `text/*`, JSON, or a `+xml`
/// type such as `image/svg+xml`, becomes text; any other, an image, stays binary), so the
/// in-process tests see what API Gateway gets: a binary body base64-encoded
/// (`isBase64Encoded: true`), a text body as it is.
pub async fn answer_of(resp: lambda_http::Response<lambda_http::Body>) -> Result<HttpAnswer, String> {
    use lambda_http::IntoResponse;
    let resp = resp.into_response().await;
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_disposition =
        resp.headers().get("content-disposition").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (bytes, base64_encoded) = match resp.body() {
        lambda_http::Body::Text(t) => (t.clone().into_bytes(), false),
        lambda_http::Body::Binary(b) => (b.clone(), true),
        _ => (Vec::new(), false),
    };
    let body = if bytes.is_empty() || !is_json(content_type.as_deref()) {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("body is not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))?
    };
    Ok(HttpAnswer { status, content_type, body, bytes, base64_encoded, content_disposition })
}
