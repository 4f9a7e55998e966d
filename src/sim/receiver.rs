//! A loopback stand-in for the places notifications go: a Slack incoming webhook, PagerDuty's
//! Events API v2 and a keyfire webhook receiver. It keeps every request it receives (path,
//! the `X-Keyfire-*` and content-type headers, the raw body) so that tests can verify the
//! signature over the exact bytes, validate the payload, and grep everything for canaries.
//!
//! Answers follow the services' documents: Slack answers `200 ok` ("Sending messages using
//! incoming webhooks"); PagerDuty answers `202 {"status":"success","message":"Event
//! processed","dedup_key":...}`, or `400` when a required field is missing (Events API v2
//! OpenAPI, `/enqueue`). `Hold` never answers (a receiver that accepted the connection and
//! hung), `Status` answers with a fixed failure.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::{Running, serve};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Slack,
    PagerDuty,
    /// `200 {}` (a webhook receiver).
    Ok,
    Status(u16),
    /// Accept the request and never answer.
    Hold,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub event: Option<String>,
    pub signature: Option<String>,
    pub delivery: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    answered: usize,
}

pub struct Receiver {
    server: Running,
    state: Arc<Mutex<State>>,
    reply: Arc<Mutex<Reply>>,
}

impl Receiver {
    pub fn start(reply: Reply) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let reply = Arc::new(Mutex::new(reply));
        let (s, r) = (state.clone(), reply.clone());
        let router =
            axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
                let (s, r) = (s.clone(), r.clone());
                async move { receive(s, r, uri, headers, body).await }
            });
        Ok(Self {
            server: serve(router, 0)?,
            state,
            reply,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    pub fn set_reply(&self, reply: Reply) {
        if let Ok(mut r) = self.reply.lock() {
            *r = reply;
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state
            .lock()
            .map(|s| s.received.clone())
            .unwrap_or_default()
    }

    /// Requests answered so far (a held one is received, never answered).
    pub fn answered(&self) -> usize {
        self.state.lock().map(|s| s.answered).unwrap_or(0)
    }

    /// Everything received but the path, as one text (for canary greps). The path is left
    /// out because a Slack incoming-webhook URL is the credential: it is where the message
    /// goes, never what it says.
    pub fn log_text(&self) -> String {
        let mut out = String::new();
        for r in self.received() {
            out.push_str(&format!(
                "{:?} {:?} {:?}\n{}\n",
                r.event,
                r.signature,
                r.delivery,
                String::from_utf8_lossy(&r.body)
            ));
        }
        out
    }
}

async fn receive(
    state: Arc<Mutex<State>>,
    reply: Arc<Mutex<Reply>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let received = Received {
        path: uri.path().to_string(),
        event: header("x-keyfire-event"),
        signature: header("x-keyfire-signature"),
        delivery: header("x-keyfire-delivery"),
        content_type: header("content-type"),
        body: body.to_vec(),
    };
    if let Ok(mut s) = state.lock() {
        s.received.push(received);
    }
    let reply = reply.lock().map(|r| *r).unwrap_or(Reply::Ok);
    let response = match reply {
        Reply::Hold => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
        Reply::Slack => (StatusCode::OK, "ok").into_response(),
        Reply::Ok => (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response(),
        Reply::Status(code) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "failure",
        )
            .into_response(),
        Reply::PagerDuty => pagerduty(&body),
    };
    if let Ok(mut s) = state.lock() {
        s.answered += 1;
    }
    response
}

/// `/enqueue` as the Events API v2 document describes it.
fn pagerduty(body: &[u8]) -> Response {
    let bad = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": [why],
            })),
        )
            .into_response()
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return bad("JSON parse error");
    };
    if v.get("routing_key").and_then(|r| r.as_str()).is_none() {
        return bad("'routing_key' is missing");
    }
    let action = v.get("event_action").and_then(|a| a.as_str()).unwrap_or("");
    if !matches!(action, "trigger" | "acknowledge" | "resolve") {
        return bad("'event_action' is invalid");
    }
    let dedup = v.get("dedup_key").and_then(|d| d.as_str());
    if action != "trigger" && dedup.is_none() {
        return bad("'dedup_key' is required for acknowledge and resolve");
    }
    if action == "trigger" && v.get("payload").is_none() {
        return bad("'payload' is missing");
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({
            "status": "success",
            "message": "Event processed",
            "dedup_key": dedup.unwrap_or("generated-dedup-key"),
        })),
    )
        .into_response()
}
