//! One model for everything the audit reads: provider usage buckets, audit-log and CloudTrail
//! events, database sessions and imported gateway logs.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use compact_str::CompactString;
use serde::Serialize;

/// How much one source can tell, which decides the rules it can evaluate.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SourceInfo {
    pub name: String,
    /// Carries client addresses (network rule).
    pub addresses: bool,
    /// Carries response statuses (authentication-failure rule).
    pub statuses: bool,
    /// Carries model or API names (new-model rule).
    pub models: bool,
    /// One event per request with its own timestamp, not daily buckets (off-hours rule).
    pub per_request: bool,
}

impl SourceInfo {
    pub fn provider_usage(provider: &str) -> Self {
        Self {
            name: format!("{provider} usage API"),
            addresses: false,
            statuses: false,
            models: false,
            per_request: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When it happened (a bucket's start for bucketed usage).
    pub ts: DateTime<Utc>,
    /// A bucket's end; `None` for single requests.
    pub until: Option<DateTime<Utc>>,
    pub source_ip: Option<IpAddr>,
    pub status: Option<u16>,
    /// Model or API name; inline, without a heap allocation, up to 24 bytes.
    pub model: Option<CompactString>,
    pub requests: u64,
    pub tokens: u64,
    /// `None` when the source does not report money (CloudTrail, database sessions, a log
    /// without a cost column): spend is then unknown, never $0.
    pub cost_usd: Option<f64>,
}

impl Event {
    pub fn bucket(
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        requests: u64,
        tokens: u64,
        cost_usd: f64,
    ) -> Self {
        Self {
            ts: start,
            until: Some(end),
            source_ip: None,
            status: None,
            model: None,
            requests,
            tokens,
            cost_usd: Some(cost_usd),
        }
    }
}
