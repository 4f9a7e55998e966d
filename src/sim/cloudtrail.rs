//! A loopback stand-in for CloudTrail `LookupEvents`, which moto does not implement. It
//! follows the AWS JSON 1.1 protocol the SDK speaks: `POST /` with
//! `X-Amz-Target: CloudTrail_20131101.LookupEvents` (or botocore's long form), a
//! SigV4 `Authorization` header scoped to `cloudtrail`, timestamps as epoch seconds, pages of
//! at most 50 events joined by `NextToken`, and errors as `{"__type", "message"}`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Observer, Running, observe, serve};

/// botocore sends the long form `com.amazonaws.cloudtrail.v20131101.` + this; the Rust SDK
/// the short one. AWS takes both.
const TARGET: &str = "CloudTrail_20131101.LookupEvents";
const PAGE: usize = 50;

/// One recorded API call.
#[derive(Debug, Clone)]
pub struct TrailEvent {
    pub access_key_id: String,
    pub time: DateTime<Utc>,
    pub name: String,
    pub source_ip: String,
    pub user_agent: String,
    pub error_code: Option<String>,
}

type Shared = Arc<Mutex<Vec<TrailEvent>>>;

pub struct CloudTrailSim {
    events: Shared,
    observer: Observer,
    running: Running,
}

fn aws_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        json!({ "__type": kind, "message": message }).to_string(),
    )
        .into_response()
}

impl CloudTrailSim {
    pub fn start() -> std::io::Result<Self> {
        let events: Shared = Arc::default();
        let observer = Observer::default();
        let router = Router::new()
            .route("/", post(lookup))
            .with_state(events.clone())
            .layer(axum::middleware::from_fn_with_state(
                observer.clone(),
                observe,
            ));
        let running = serve(router, 0)?;
        Ok(Self {
            events,
            observer,
            running,
        })
    }

    pub fn address(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    pub fn add(&self, event: TrailEvent) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }
}

fn epoch(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let secs = v?.as_f64()?;
    DateTime::from_timestamp_millis((secs * 1000.0) as i64)
}

async fn lookup(State(events): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !target.ends_with(TARGET) {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            "only LookupEvents is implemented",
        );
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !auth.starts_with("AWS4-HMAC-SHA256 Credential=")
        || !auth.contains("/cloudtrail/aws4_request")
    {
        return aws_error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    }
    let Ok(req) = serde_json::from_str::<Value>(&body) else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "invalid JSON",
        );
    };
    let mut key: Option<String> = None;
    for attr in req["LookupAttributes"].as_array().into_iter().flatten() {
        match attr["AttributeKey"].as_str() {
            Some("AccessKeyId") => key = attr["AttributeValue"].as_str().map(str::to_string),
            _ => {
                return aws_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidLookupAttributesException",
                    "this stand-in looks events up by AccessKeyId only",
                );
            }
        }
    }
    let start = epoch(req.get("StartTime"));
    let end = epoch(req.get("EndTime"));
    let offset: usize = req["NextToken"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let page = req["MaxResults"]
        .as_u64()
        .map_or(PAGE, |m| (m as usize).clamp(1, PAGE));
    let mut matching: Vec<TrailEvent> = events
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| key.as_deref().is_none_or(|k| e.access_key_id == k))
        .filter(|e| start.is_none_or(|s| e.time >= s) && end.is_none_or(|t| e.time <= t))
        .collect();
    // CloudTrail returns the newest first.
    matching.sort_by_key(|e| std::cmp::Reverse(e.time));
    let slice: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(page)
        .enumerate()
        .map(|(i, e)| {
            let detail = json!({
                "eventVersion": "1.08",
                "eventTime": e.time.to_rfc3339(),
                "eventName": e.name,
                "sourceIPAddress": e.source_ip,
                "userAgent": e.user_agent,
                "errorCode": e.error_code,
                "userIdentity": { "type": "IAMUser", "accessKeyId": e.access_key_id },
            });
            json!({
                "EventId": format!("ev-{}", offset + i),
                "EventName": e.name,
                "ReadOnly": "true",
                "AccessKeyId": e.access_key_id,
                "EventTime": e.time.timestamp_millis() as f64 / 1000.0,
                "EventSource": "iam.amazonaws.com",
                "Resources": [],
                "CloudTrailEvent": detail.to_string(),
            })
        })
        .collect();
    let mut out = json!({ "Events": slice });
    if offset + page < matching.len() {
        out["NextToken"] = json!((offset + page).to_string());
    }
    (
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        out.to_string(),
    )
        .into_response()
}
