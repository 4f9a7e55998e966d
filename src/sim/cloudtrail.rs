//! A loopback stand-in for CloudTrail `LookupEvents`, which moto does not implement. It
//! follows botocore's `cloudtrail/2013-11-01/service-2.json` and the LookupEvents API
//! reference (<https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html>):
//! the AWS JSON 1.1 protocol (`POST /` with `X-Amz-Target: CloudTrail_20131101.LookupEvents`,
//! or botocore's long form), a SigV4 `Authorization` header scoped to `cloudtrail` whose
//! credential scope names the region, one region's management events per call (events are
//! seeded with their region), at most one lookup attribute, `MaxResults` 1 to 50 (default
//! 50), `StartTime` not after `EndTime`, timestamps as epoch seconds, pages joined by
//! `NextToken`, and errors as `{"__type", "message"}`. Every call is logged with its region
//! for tests. The rate limit (two per second per account per region) is not enforced here:
//! keyfire's pacer is tested through its decisions, not through wall-clock time.

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
    /// The region whose trail recorded the call: only a lookup there returns it.
    pub region: String,
    pub access_key_id: String,
    pub time: DateTime<Utc>,
    pub name: String,
    pub source_ip: String,
    pub user_agent: String,
    pub error_code: Option<String>,
}

/// One `LookupEvents` call as the stand-in saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// From the SigV4 credential scope.
    pub region: String,
    pub next_token: Option<String>,
}

#[derive(Default)]
struct TrailState {
    events: Vec<TrailEvent>,
    lookups: Vec<Lookup>,
}

type Shared = Arc<Mutex<TrailState>>;

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
            e.events.push(event);
        }
    }

    /// Every `LookupEvents` call answered, in order.
    pub fn lookups(&self) -> Vec<Lookup> {
        self.events
            .lock()
            .map(|s| s.lookups.clone())
            .unwrap_or_default()
    }
}

/// `AWS4-HMAC-SHA256 Credential=AKID/20261127/eu-west-1/cloudtrail/aws4_request, ...` →
/// `eu-west-1`.
fn scope_region(auth: &str) -> Option<&str> {
    let scope = auth
        .strip_prefix("AWS4-HMAC-SHA256 Credential=")?
        .split(',')
        .next()?;
    let parts: Vec<&str> = scope.split('/').collect();
    match parts.as_slice() {
        [_, _, region, "cloudtrail", "aws4_request"] => Some(region),
        _ => None,
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
    let Some(region) = scope_region(auth).map(str::to_string) else {
        return aws_error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    };
    let Ok(req) = serde_json::from_str::<Value>(&body) else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "invalid JSON",
        );
    };
    let attrs = req["LookupAttributes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if attrs.len() > 1 {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidLookupAttributesException",
            "LookupAttributes can contain only one item.",
        );
    }
    let mut key: Option<String> = None;
    for attr in &attrs {
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
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidTimeRangeException",
            "Start time must be before end time.",
        );
    }
    let token = req["NextToken"].as_str().map(str::to_string);
    let offset: usize = match &token {
        None => 0,
        Some(t) => match t.parse() {
            Ok(n) => n,
            Err(_) => {
                return aws_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidNextTokenException",
                    "Invalid NextToken.",
                );
            }
        },
    };
    let page = match req.get("MaxResults").map(Value::as_u64) {
        None => PAGE,
        Some(Some(m @ 1..=50)) => m as usize,
        Some(_) => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidMaxResultsException",
                "MaxResults must be from 1 through 50.",
            );
        }
    };
    let all = match events.lock() {
        Ok(mut s) => {
            s.lookups.push(Lookup {
                region: region.clone(),
                next_token: token,
            });
            s.events.clone()
        }
        Err(_) => Vec::new(),
    };
    let mut matching: Vec<TrailEvent> = all
        .into_iter()
        .filter(|e| e.region == region)
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
                "awsRegion": e.region,
                "eventCategory": "Management",
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
