//! The local server names every request as API Gateway would (README, "Observability"): a fresh
//! id per request, put into the event's `requestContext.requestId`, so the shared handler answers
//! it as `x-request-id`, repeats it in error bodies, and logs it in the request's span; answers
//! the server makes before the handler (no such route, no token) carry one too. No
//! `lambda_request_id` locally: there is no Lambda invocation.
//!
//! One test in this binary: it installs the process-wide subscriber.

#![allow(unused_macros)]

mod common;

use reqwest::StatusCode;
use serde_json::Value;

async fn send(
    env: &common::Env,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, String, Value) {
    let mut req = env.http.request(method.parse().unwrap(), format!("{}{path}", env.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_owned());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let id = resp.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
    let id = id.unwrap_or_else(|| panic!("{method} {path}: no x-request-id"));
    let body = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null);
    (status, id, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_names_its_request() {
    let capture = common::capture::install(false);
    let env = common::embedded().await;

    let (status, first, _) = send(&env, "GET", "/api/lots/", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(first.starts_with("local-") && first.len() > 10, "{first}");
    let (_, second, _) = send(&env, "GET", "/api/lots/", None, None).await;
    assert_ne!(first, second, "a fresh id per request");

    // Answers made before the handler: no such route, no token.
    for (method, path, code) in
        [("GET", "/api/nothing-here/", "ROUTE_NOT_FOUND"), ("POST", "/api/sessions/", "UNAUTHENTICATED")]
    {
        let (status, id, body) = send(&env, method, path, None, Some("{}")).await;
        assert!(status.is_client_error(), "{method} {path}: {status}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert_eq!(body["error"]["request_id"], id.as_str(), "{method} {path}: the body repeats the header: {body}");
    }

    // An error from the handler, and a booking whose log line names the request and the session.
    let token = env.token("ids-driver");
    let (status, id, body) = send(&env, "POST", "/api/sessions/", Some(&token), Some("{\"hours\": 1}")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["request_id"], id.as_str(), "{body}");
    let booking = r#"{"lot_id": "MG-ROAD-1", "vehicle_number": "KA01AB1234", "hours": 1}"#;
    let (status, id, body) = send(&env, "POST", "/api/sessions/", Some(&token), Some(booking)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let session = body["session_id"].as_str().expect("a session id");
    let logs = capture.text();
    let line =
        logs.lines().find(|l| l.contains("session booked")).unwrap_or_else(|| panic!("no booking line:\n{logs}"));
    assert!(line.contains(&format!("request_id={id}")), "the line names the request: {line}");
    assert!(line.contains(&format!("session_id={session}")), "the line names the session: {line}");
    assert!(!logs.contains("lambda_request_id"), "no Lambda invocation locally:\n{logs}");
    env.server.stop().await;
}
