//! Imported gateway logs (`--logs FILE`): JSON Lines or CSV with a header, one request per
//! line, read as a stream. The field names of keyfire's documented format and of LiteLLM's
//! spend logs are both understood:
//!
//! | meaning | accepted names |
//! |---|---|
//! | time (RFC 3339, `YYYY-MM-DD HH:MM:SS[.fff]` as UTC, or Unix seconds) | `timestamp`, `ts`, `time`, `startTime` |
//! | key (inventory id, provider key id or hint) | `key_id`, `key`, `api_key` |
//! | client address | `source_ip`, `ip`, `client_ip`, `requester_ip_address` |
//! | HTTP status (`success`/`failure` also read) | `status`, `status_code` |
//! | model or API | `model`, `api` |
//! | tokens | `tokens`, `total_tokens`, or `prompt_tokens` + `completion_tokens`, or `input_tokens` + `output_tokens` |
//! | cost in USD | `cost`, `cost_usd`, `spend` |
//! | requests (default 1) | `requests` |

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

use super::event::{Event, SourceInfo};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Bad {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

/// Which log lines belong to the key being audited.
#[derive(Debug, Clone, Default)]
pub struct KeyMatch {
    pub names: Vec<String>,
    /// `prefix...tail` from the inventory hint.
    pub hint: Option<(String, String)>,
}

impl KeyMatch {
    pub fn new(id: &str, provider_key_id: Option<&str>, hint: Option<&str>) -> Self {
        let mut names = vec![id.to_string()];
        names.extend(provider_key_id.map(str::to_string));
        let hint = hint
            .and_then(|h| h.split_once("...").or_else(|| h.split_once('…')))
            .map(|(p, t)| (p.to_string(), t.to_string()));
        Self { names, hint }
    }

    /// Lines without a key column count for the audited key (one log per key).
    pub fn matches(&self, value: Option<&str>) -> bool {
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            return true;
        };
        if self.names.iter().any(|n| n == v) {
            return true;
        }
        match &self.hint {
            Some((p, t)) if !t.is_empty() => {
                let (vp, vt) = v.split_once("...").unwrap_or((v, v));
                vp.starts_with(p.as_str()) && vt.ends_with(t.as_str())
            }
            _ => false,
        }
    }
}

#[derive(Deserialize, Default)]
struct Line<'a> {
    #[serde(alias = "ts", alias = "time", alias = "startTime", borrow)]
    timestamp: Option<Num<'a>>,
    #[serde(alias = "key", alias = "api_key", borrow)]
    key_id: Option<&'a str>,
    #[serde(
        alias = "ip",
        alias = "client_ip",
        alias = "requester_ip_address",
        borrow
    )]
    source_ip: Option<&'a str>,
    #[serde(alias = "status_code", borrow)]
    status: Option<Num<'a>>,
    #[serde(alias = "api", borrow)]
    model: Option<&'a str>,
    #[serde(alias = "total_tokens")]
    tokens: Option<f64>,
    prompt_tokens: Option<f64>,
    completion_tokens: Option<f64>,
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
    #[serde(alias = "cost_usd", alias = "spend")]
    cost: Option<f64>,
    requests: Option<f64>,
}

/// A field that logs write as a number or as text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Num<'a> {
    N(f64),
    #[serde(borrow)]
    S(Cow<'a, str>),
}

fn parse_time(v: &Num<'_>) -> Option<DateTime<Utc>> {
    match v {
        Num::N(n) => DateTime::from_timestamp(*n as i64, 0),
        Num::S(s) => DateTime::parse_from_rfc3339(s.as_ref())
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                    .ok()
                    .map(|t| t.and_utc())
            })
            .or_else(|| {
                NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                    .ok()
                    .map(|t| t.and_utc())
            })
            .or_else(|| {
                s.parse::<i64>()
                    .ok()
                    .and_then(|n| DateTime::from_timestamp(n, 0))
            }),
    }
}

fn parse_status(v: &Num<'_>) -> Result<Option<u16>, String> {
    match v {
        Num::N(n) if (100.0..600.0).contains(n) => Ok(Some(*n as u16)),
        Num::S(s) => match s.as_ref() {
            "success" => Ok(Some(200)),
            "failure" | "" => Ok(None),
            s => s
                .parse::<u16>()
                .map(Some)
                .map_err(|_| format!("status {s:?} is not an HTTP status")),
        },
        Num::N(n) => Err(format!("status {n} is not an HTTP status")),
    }
}

impl Line<'_> {
    fn event(&self) -> Result<Event, String> {
        let ts = self
            .timestamp
            .as_ref()
            .ok_or("missing timestamp (timestamp, ts, time or startTime)")?;
        let ts = parse_time(ts)
            .ok_or("timestamp is not RFC 3339, `YYYY-MM-DD HH:MM:SS` or Unix seconds")?;
        let source_ip = match self.source_ip.filter(|s| !s.is_empty()) {
            Some(s) => Some(
                s.parse::<IpAddr>()
                    .map_err(|_| format!("source_ip {s:?} is not an IP address"))?,
            ),
            None => None,
        };
        let status = self
            .status
            .as_ref()
            .map(parse_status)
            .transpose()?
            .flatten();
        let tokens = self
            .tokens
            .or_else(|| Some(self.prompt_tokens? + self.completion_tokens.unwrap_or(0.0)))
            .or_else(|| Some(self.input_tokens? + self.output_tokens.unwrap_or(0.0)))
            .unwrap_or(0.0);
        Ok(Event {
            ts,
            until: None,
            source_ip,
            status,
            model: self.model.filter(|m| !m.is_empty()).map(str::to_string),
            requests: self.requests.map_or(1, |r| r.max(0.0) as u64),
            tokens: tokens.max(0.0) as u64,
            cost_usd: self.cost.unwrap_or(0.0),
        })
    }
}

/// What a gateway log can tell (per-request, with addresses, statuses and models).
pub fn source_info(path: &Path) -> SourceInfo {
    SourceInfo {
        name: format!(
            "gateway log {}",
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        ),
        addresses: true,
        statuses: true,
        models: true,
        per_request: true,
    }
}

/// Stream a log file's events for one key into `sink`. Returns the number of lines used.
pub fn read(path: &Path, key: &KeyMatch, mut sink: impl FnMut(&Event)) -> Result<u64, LogError> {
    read_routed(path, |k| key.matches(k).then_some(0), |_, e| sink(e))
}

/// Stream a log file once for many keys: `route` maps a line's key field to the index of the
/// key it belongs to (or `None` to skip it), and `sink` receives that index with the event.
pub fn read_routed(
    path: &Path,
    mut route: impl FnMut(Option<&str>) -> Option<usize>,
    mut sink: impl FnMut(usize, &Event),
) -> Result<u64, LogError> {
    let io = |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let bad = |line: u64, message: String| LogError::Bad {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut used = 0;
    if is_csv {
        let mut csv = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(reader);
        let headers = csv.headers().map_err(|e| bad(1, e.to_string()))?.clone();
        let mut record = csv::StringRecord::new();
        let mut n = 1;
        loop {
            n += 1;
            match csv.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(bad(n, e.to_string())),
            }
            let line: Line = record
                .deserialize(Some(&headers))
                .map_err(|e| bad(n, e.to_string()))?;
            let Some(i) = route(line.key_id) else {
                continue;
            };
            sink(i, &line.event().map_err(|m| bad(n, m))?);
            used += 1;
        }
        return Ok(used);
    }
    let mut buf = String::new();
    let mut n = 0;
    loop {
        buf.clear();
        n += 1;
        if reader.read_line(&mut buf).map_err(io)? == 0 {
            break;
        }
        let text = buf.trim();
        if text.is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(text).map_err(|e| {
            bad(
                n,
                format!(
                    "not a JSON object with the documented fields: {}",
                    crate::http::json_error(&e)
                ),
            )
        })?;
        let Some(i) = route(line.key_id) else {
            continue;
        };
        sink(i, &line.event().map_err(|m| bad(n, m))?);
        used += 1;
    }
    Ok(used)
}
