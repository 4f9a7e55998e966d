//! Imported gateway logs (`--logs FILE`): JSON Lines or CSV with a header, one request per
//! line, read as a stream. The field names of keyfire's documented format and of LiteLLM's
//! spend logs are both understood:
//!
//! | meaning | accepted names |
//! |---|---|
//! | time (RFC 3339, `YYYY-MM-DD HH:MM:SS[.fff][+zz]` (UTC when no offset), or Unix seconds) | `timestamp`, `ts`, `time`, `startTime` |
//! | key (inventory id, provider key id, hint, or the key's SHA-256 hex) | `key_id`, `key`, `api_key` |
//! | client address (an `X-Forwarded-For` list: its first address) | `source_ip`, `ip`, `client_ip`, `requester_ip_address` |
//! | HTTP status (`success`/`failure` also read) | `status`, `status_code` |
//! | model or API | `model`, `api` |
//! | tokens | `tokens`, `total_tokens`, or `prompt_tokens` + `completion_tokens`, or `input_tokens` + `output_tokens` |
//! | cost in USD | `cost`, `cost_usd`, `spend` |
//! | requests (default 1) | `requests` |
//! | details of a failure | `metadata` (an object, or a string holding one) |
//!
//! LiteLLM's spend log, as its source defines it (BerriAI/litellm, `schema.prisma` model
//! `LiteLLM_SpendLogs`, and `litellm/proxy/spend_tracking/spend_tracking_utils.py`
//! `get_logging_payload`):
//!
//! | LiteLLM field | what it holds | read as |
//! |---|---|---|
//! | `api_key` | "Hashed API Token. Not the actual Virtual Key": `hash_token(key)`, the SHA-256 hex of the virtual key | key, matched by fingerprint (the inventory's `fingerprint`, or the SHA-256 of the store's value during an incident) |
//! | `startTime` | request start, UTC | time |
//! | `requester_ip_address` | `metadata.requester_ip_address`: with `use_x_forwarded_for`, the raw `X-Forwarded-For` value (`"1.2.3.4, 10.0.0.1"`) | first address of the list |
//! | `status` | `_get_status_for_spend_log`: `"success"` or `"failure"`, nothing else | `success` = 200; `failure` = the code below |
//! | `metadata` | `SpendLogsMetadata` (a JSON string in the payload, JSON in the table); `error_information` is `StandardLoggingPayloadErrorInformation` with `error_code: Optional[str]` | `metadata.error_information.error_code`, else `metadata.status_code`, as the HTTP status of a failure |
//! | `spend`, `total_tokens`, `prompt_tokens`, `completion_tokens`, `model` | as named | cost, tokens, model |
//!
//! Hostile input: every string is read owned or borrowed as serde finds it (JSON escapes such as
//! `caf\u00e9` are fine); a line longer than [`MAX_LINE`] is an error; no counter can overflow;
//! CSV errors name the physical line; no error repeats a field's value (it may be a key).

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use compact_str::CompactString;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::blocks;
use super::event::{Event, SourceInfo};
use crate::secret::fingerprint;

pub use super::blocks::MAX_LINE;

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

/// What to do with a line that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBadLine {
    /// `keyfire audit`: the first bad line is the error (exit 2).
    Stop,
    /// An incident: count it, remember the first, read on. Evidence never stops the runbook.
    Count,
}

/// What one pass over a log file saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogStats {
    pub file: String,
    /// Request lines read (blank lines and the CSV header excluded, unreadable ones included).
    pub lines: u64,
    /// Lines that belonged to a key being audited.
    pub used: u64,
    pub unreadable: u64,
    /// The first unreadable line: number and why (never its content).
    pub first_unreadable: Option<(u64, String)>,
    /// Reading stopped at this line (a CSV line over the limit leaves no way to resync).
    pub stopped_at: Option<u64>,
    /// The key column holds SHA-256 hex digests (LiteLLM's hashed `api_key`).
    pub hashed_keys: bool,
}

impl LogStats {
    /// "3 unreadable line(s) in FILE (first: line 7: why)", when there were any.
    pub fn unreadable_note(&self) -> Option<String> {
        let (line, why) = self.first_unreadable.as_ref()?;
        let mut s = format!(
            "{} unreadable line(s) in {} skipped (first: line {line}: {why})",
            self.unreadable, self.file
        );
        if let Some(at) = self.stopped_at {
            s.push_str(&format!("; reading stopped at line {at}"));
        }
        Some(s)
    }

    fn bad(&mut self, line: u64, why: String) {
        self.unreadable = self.unreadable.saturating_add(1);
        self.first_unreadable.get_or_insert((line, why));
    }
}

/// Which log lines belong to the key being audited.
#[derive(Debug, Clone, Default)]
pub struct KeyMatch {
    pub names: Vec<String>,
    /// `prefix...tail` from the inventory hint.
    pub hint: Option<(String, String)>,
    /// SHA-256 hex digests (lowercase) of the key value.
    pub fingerprints: Vec<String>,
}

impl KeyMatch {
    pub fn new(id: &str, provider_key_id: Option<&str>, hint: Option<&str>) -> Self {
        let mut names = vec![id.to_string()];
        names.extend(provider_key_id.map(str::to_string));
        let hint = hint
            .and_then(|h| h.split_once("...").or_else(|| h.split_once('…')))
            .map(|(p, t)| (p.to_string(), t.to_string()));
        Self {
            names,
            hint,
            fingerprints: Vec::new(),
        }
    }

    /// Every way the inventory and the store know the key: id, provider key id, hint, the
    /// inventory's `fingerprint`, and the SHA-256 of the value read from the store (computed
    /// here, in memory; only the digest is kept).
    pub fn for_key(
        key: &crate::inventory::Key,
        provider_key_id: Option<&str>,
        store_value: Option<&str>,
    ) -> Self {
        let mut m = Self::new(
            &key.id,
            provider_key_id.or(key.provider_key_id.as_deref()),
            key.hint.as_deref(),
        );
        if let Some(hex) = key.fingerprint.as_deref().and_then(fingerprint::hex_of) {
            m = m.with_fingerprint(hex);
        }
        if let Some(v) = store_value.filter(|v| !v.is_empty()) {
            m = m.with_fingerprint(&fingerprint::of_value(v));
        }
        m
    }

    /// Also match lines whose key field is this SHA-256 hex digest (either case; anything
    /// that is not 64 hex digits is no digest and is ignored).
    pub fn with_fingerprint(mut self, hex: &str) -> Self {
        let hex = hex.to_ascii_lowercase();
        if fingerprint::is_hash(&hex) && !self.fingerprints.contains(&hex) {
            self.fingerprints.push(hex);
        }
        self
    }

    /// Lines without a key column count for the audited key (one log per key).
    pub fn matches(&self, value: Option<&str>) -> bool {
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            return true;
        };
        if self.names.iter().any(|n| n == v) {
            return true;
        }
        let hex = v.strip_prefix("sha256:").unwrap_or(v);
        if hex.len() == 64 {
            // The fingerprints are lowercase digests, so an equal value is one (compared
            // exactly first: gateways write lowercase, and this runs for every log line).
            if self
                .fingerprints
                .iter()
                .any(|f| f == hex || f.eq_ignore_ascii_case(hex))
            {
                return true;
            }
            if fingerprint::looks_hashed(hex) {
                // A digest never matches a hint: "...a1b2" would match one hash in 65,536.
                return false;
            }
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

/// A string field, borrowed from the line when it has no escapes, owned when it has.
#[derive(Debug)]
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A field that logs write as a number or as text.
#[derive(Debug)]
enum Scalar<'a> {
    N(f64),
    S(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::N(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::N(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::N(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::S(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::S(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::S(Cow::Owned(v)))
            }
        }
        d.deserialize_any(V)
    }
}

/// The parts of LiteLLM's `metadata` the audit reads; everything else is skipped unparsed
/// into values. It arrives as an object (the table's JSON column) or as a string holding one
/// (`SpendLogsPayload.metadata` is `safe_dumps(clean_metadata)`).
#[derive(Debug, Default)]
struct Metadata {
    /// `error_information.error_code`, else `status_code`.
    status: Option<u16>,
}

#[derive(Deserialize, Default)]
struct MetadataFields<'a> {
    #[serde(borrow)]
    error_information: Option<ErrorInformation<'a>>,
    #[serde(borrow)]
    status_code: Option<Scalar<'a>>,
}

#[derive(Deserialize, Default)]
struct ErrorInformation<'a> {
    #[serde(borrow)]
    error_code: Option<Scalar<'a>>,
}

impl MetadataFields<'_> {
    fn status(&self) -> Option<u16> {
        let code = self
            .error_information
            .as_ref()
            .and_then(|e| e.error_code.as_ref())
            .and_then(http_code);
        code.or_else(|| self.status_code.as_ref().and_then(http_code))
    }
}

fn http_code(v: &Scalar<'_>) -> Option<u16> {
    let n = match v {
        Scalar::N(n) => *n,
        Scalar::S(s) => trim(s).parse::<f64>().ok()?,
    };
    (100.0..600.0).contains(&n).then_some(n as u16)
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metadata;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object or a string holding JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let m = MetadataFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Metadata { status: m.status() })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                // Metadata that is not JSON is no reason to drop the request: the line's
                // other fields stand, the failure's code is then unknown.
                Ok(Metadata {
                    status: serde_json::from_str::<MetadataFields>(v)
                        .ok()
                        .and_then(|m| m.status()),
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Metadata::default())
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Metadata::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Metadata::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Metadata::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Metadata::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Metadata::default())
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
struct Line<'a> {
    #[serde(alias = "ts", alias = "time", alias = "startTime", borrow)]
    timestamp: Option<Scalar<'a>>,
    #[serde(alias = "key", alias = "api_key", borrow)]
    key_id: Option<Text<'a>>,
    #[serde(
        alias = "ip",
        alias = "client_ip",
        alias = "requester_ip_address",
        borrow
    )]
    source_ip: Option<Text<'a>>,
    #[serde(alias = "status_code", borrow)]
    status: Option<Scalar<'a>>,
    #[serde(alias = "api", borrow)]
    model: Option<Text<'a>>,
    #[serde(alias = "total_tokens")]
    tokens: Option<f64>,
    prompt_tokens: Option<f64>,
    completion_tokens: Option<f64>,
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
    #[serde(alias = "cost_usd", alias = "spend")]
    cost: Option<f64>,
    requests: Option<f64>,
    metadata: Option<Metadata>,
}

/// The text forms of a time besides RFC 3339, parsed once: parsing a format string for every
/// line cost more than the rest of the line.
static TIME_FORMATS: LazyLock<Vec<(Vec<Item<'static>>, bool)>> = LazyLock::new(|| {
    [
        // LiteLLM's `startTime` in a JSON export, and ISO 8601 without an offset (UTC).
        ("%Y-%m-%dT%H:%M:%S%.f", false),
        // SQL's text form (PostgreSQL `timestamp`), UTC.
        ("%Y-%m-%d %H:%M:%S%.f", false),
        // PostgreSQL's text form of a `timestamptz`: `2026-11-20 10:00:00.123+00`.
        ("%Y-%m-%d %H:%M:%S%.f%#z", true),
        ("%Y-%m-%dT%H:%M:%S%.f%#z", true),
    ]
    .into_iter()
    .filter_map(|(f, offset)| {
        StrftimeItems::new(f)
            .parse_to_owned()
            .ok()
            .map(|i| (i, offset))
    })
    .collect()
});

fn parse_time(v: &Scalar<'_>) -> Option<DateTime<Utc>> {
    match v {
        Scalar::N(n) if n.is_finite() => DateTime::from_timestamp(*n as i64, 0),
        Scalar::N(_) => None,
        Scalar::S(s) => {
            if let Some(t) = plain_utc(s) {
                return Some(t);
            }
            let s = trim(s);
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.with_timezone(&Utc));
            }
            // Other ISO 8601 without an offset (a lowercase `t`, a leap second) is RFC 3339 once
            // `Z` is added, and chrono's RFC 3339 parser is several times faster than a format
            // string.
            if let Some(t) = utc_without_offset(s) {
                return Some(t);
            }
            for (items, offset) in TIME_FORMATS.iter() {
                let mut p = Parsed::new();
                if chrono::format::parse(&mut p, s, items.iter()).is_err() {
                    continue;
                }
                let t = if *offset {
                    p.to_datetime().ok().map(|t| t.with_timezone(&Utc))
                } else {
                    p.to_naive_datetime_with_offset(0).ok().map(|t| t.and_utc())
                };
                if t.is_some() {
                    return t;
                }
            }
            s.parse::<i64>()
                .ok()
                .and_then(|n| DateTime::from_timestamp(n, 0))
        }
    }
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.f]` (one to nine fraction digits) read by position as UTC: the
/// shape of LiteLLM's `startTime`, parsed once a line. `None` for any other text, which the
/// general parsers then read (they give the same time for this shape).
fn plain_utc(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let (head, fraction) = (b.get(..19)?, b.get(19..)?);
    let digits = |d: &[u8]| -> Option<u32> {
        d.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit()
                .then(|| n.saturating_mul(10).saturating_add(u32::from(c - b'0')))
        })
    };
    let field = |at: usize, len: usize| head.get(at..at + len).and_then(digits);
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, c)| head.get(at) != Some(&c))
        || !matches!(head.get(10), Some(b'T' | b' '))
    {
        return None;
    }
    let nanos = match fraction {
        [] => 0,
        [b'.', f @ ..] if (1..=9).contains(&f.len()) => {
            digits(f)?.saturating_mul(10u32.pow(9 - f.len() as u32))
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(field(0, 4)?).ok()?,
        field(5, 2)?,
        field(8, 2)?,
    )?;
    let time = NaiveTime::from_hms_nano_opt(field(11, 2)?, field(14, 2)?, field(17, 2)?, nanos)?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

/// `str::trim`, without its character-by-character walk when neither end is whitespace (the
/// usual field).
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.f]` read as UTC, through a stack copy with `Z` appended.
fn utc_without_offset(s: &str) -> Option<DateTime<Utc>> {
    let mut buf = [0u8; 40];
    let with_z = buf.get_mut(..s.len() + 1)?;
    let (text, z) = with_z.split_at_mut(s.len());
    text.copy_from_slice(s.as_bytes());
    z.copy_from_slice(b"Z");
    let text = std::str::from_utf8(with_z).ok()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The line's HTTP status. LiteLLM writes `success`/`failure`; a failure's code is in its
/// metadata, and a failure without one has an unknown status (not a success).
fn parse_status(v: Option<&Scalar<'_>>, meta: Option<&Metadata>) -> Result<Option<u16>, String> {
    let from_meta = meta.and_then(|m| m.status);
    match v {
        None => Ok(from_meta),
        Some(Scalar::N(n)) if (100.0..600.0).contains(n) => Ok(Some(*n as u16)),
        Some(Scalar::N(_)) => Err("status is not an HTTP status (100 to 599)".into()),
        Some(Scalar::S(s)) => match trim(s) {
            "success" => Ok(Some(200)),
            "failure" | "" => Ok(from_meta),
            s => match s.parse::<u16>() {
                Ok(n) if (100..600).contains(&n) => Ok(Some(n)),
                _ => Err("status is not an HTTP status, `success` or `failure`".into()),
            },
        },
    }
}

/// A client address. An `X-Forwarded-For` value lists the client first, then the proxies; an
/// address may carry a port. `Ok(None)`: no address, or the proxy wrote `unknown` (RFC 7239
/// section 6.2).
fn parse_address(s: &str) -> Result<Option<IpAddr>, ()> {
    // The usual line first: a plain address, then at most a comma and the proxies.
    let first = memchr::memchr(b',', s.as_bytes()).map_or(s, |at| &s[..at]);
    if let Ok(ip) = first.trim_ascii().parse::<IpAddr>() {
        return Ok(Some(ip));
    }
    let s = trim(s);
    if s.is_empty() {
        return Ok(None);
    }
    let first = s.split(',').next().unwrap_or("").trim();
    if first.eq_ignore_ascii_case("unknown") {
        return Ok(None);
    }
    first
        .parse::<IpAddr>()
        .ok()
        .or_else(|| first.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            // `[2001:db8::1]` without a port.
            first
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.parse().ok())
        })
        .map(Some)
        .ok_or(())
}

/// A count from a float field: negative and NaN are 0, huge values saturate.
fn count(v: f64) -> u64 {
    // `as` saturates (NaN becomes 0), which is what a counter wants.
    v.max(0.0) as u64
}

impl Line<'_> {
    /// The key this line belongs to (by `route`) and, only then, its event: a line of a key
    /// not being audited is never made into one.
    fn routed(
        &self,
        route: &impl Fn(Option<&str>) -> Option<usize>,
        hashed: &HashedKeys,
    ) -> Routed {
        let key = self
            .key_id
            .as_ref()
            .map(|t| t.0.as_ref())
            .filter(|k| !k.is_empty());
        if let Some(k) = key {
            hashed.see(k);
        }
        route(key).map(|i| (i, self.event()))
    }

    fn event(&self) -> Result<Event, String> {
        let ts = self
            .timestamp
            .as_ref()
            .ok_or("missing timestamp (timestamp, ts, time or startTime)")?;
        let ts = parse_time(ts)
            .ok_or("timestamp is not RFC 3339, `YYYY-MM-DD HH:MM:SS` or Unix seconds")?;
        let source_ip = match self.source_ip.as_ref() {
            Some(t) => parse_address(&t.0)
                .map_err(|()| "source_ip is not an IP address or X-Forwarded-For list")?,
            None => None,
        };
        let status = parse_status(self.status.as_ref(), self.metadata.as_ref())?;
        let fields = [
            self.tokens,
            self.prompt_tokens,
            self.completion_tokens,
            self.input_tokens,
            self.output_tokens,
            self.cost,
            self.requests,
        ];
        if fields.iter().flatten().any(|v| !v.is_finite()) {
            return Err("a number (tokens, cost or requests) is not finite".into());
        }
        let tokens = match (self.tokens, self.prompt_tokens, self.input_tokens) {
            (Some(t), _, _) => count(t),
            (None, Some(p), _) => {
                count(p).saturating_add(count(self.completion_tokens.unwrap_or(0.0)))
            }
            (None, None, Some(i)) => {
                count(i).saturating_add(count(self.output_tokens.unwrap_or(0.0)))
            }
            _ => 0,
        };
        Ok(Event {
            ts,
            until: None,
            source_ip,
            status,
            model: self
                .model
                .as_ref()
                .map(|m| m.0.as_ref())
                .filter(|m| !m.is_empty())
                .map(CompactString::from),
            requests: self.requests.map_or(1, count),
            tokens,
            cost_usd: self.cost,
        })
    }
}

/// What a gateway log can tell (per-request, with addresses, statuses and models).
pub fn source_info(path: &Path) -> SourceInfo {
    SourceInfo {
        name: format!("gateway log {}", file_name(path)),
        addresses: true,
        statuses: true,
        models: true,
        per_request: true,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Stream a log file's events for one key into `sink`.
pub fn read(
    path: &Path,
    key: &KeyMatch,
    on_bad: OnBadLine,
    mut sink: impl FnMut(&Event),
) -> Result<LogStats, LogError> {
    read_routed(
        path,
        on_bad,
        |k| key.matches(k).then_some(0),
        |_, e| sink(e),
    )
}

/// A JSON or CSV error, told without the values it quotes (a value may be a key). serde_json
/// puts values in double quotes and the tokens it expected in backticks, which stay.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        match (c, quoted) {
            ('"', false) => {
                quoted = true;
                out.push_str("\"…");
            }
            ('"', true) => {
                quoted = false;
                out.push('"');
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

/// Stream a log file once for many keys: `route` maps a line's key field to the index of the
/// key it belongs to (or `None` to skip it), and `sink` receives that index with the event.
pub fn read_routed(
    path: &Path,
    on_bad: OnBadLine,
    route: impl Fn(Option<&str>) -> Option<usize> + Sync,
    sink: impl FnMut(usize, &Event),
) -> Result<LogStats, LogError> {
    let file = File::open(path).map_err(|source| LogError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    read_stream(file, path, is_csv, on_bad, route, sink)
}

/// [`read_routed`] over any byte stream (`path` names it in errors; `csv` picks the format).
pub fn read_stream(
    input: impl Read,
    path: &Path,
    csv: bool,
    on_bad: OnBadLine,
    route: impl Fn(Option<&str>) -> Option<usize> + Sync,
    mut sink: impl FnMut(usize, &Event),
) -> Result<LogStats, LogError> {
    let io = |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stats = LogStats {
        file: file_name(path),
        ..LogStats::default()
    };
    let hashed = HashedKeys::default();
    // One routed line: count it, and hand its event to the key it belongs to (or say why the
    // line is no event; that counts only for a line of a key being audited).
    let mut take = |stats: &mut LogStats, line: Routed| -> Result<(), String> {
        stats.lines = stats.lines.saturating_add(1);
        let Some((i, event)) = line else {
            return Ok(());
        };
        let event = event?;
        stats.used = stats.used.saturating_add(1);
        sink(i, &event);
        Ok(())
    };
    let verdict = |stats: &mut LogStats, n: u64, r: Result<(), String>| match (r, on_bad) {
        (Ok(()), _) => Ok(()),
        (Err(message), OnBadLine::Stop) => Err(LogError::Bad {
            path: path.to_path_buf(),
            line: n,
            message,
        }),
        (Err(message), OnBadLine::Count) => {
            stats.bad(n, message);
            Ok(())
        }
    };
    if csv {
        let limited = LineLimit::new(BufReader::with_capacity(1 << 20, input));
        let mut csv = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(limited);
        let csv_error = |e: &csv::Error, fallback: u64| {
            let line = e.position().map_or(fallback, |p| p.line());
            (line, without_values(&e.to_string()))
        };
        let headers = match csv.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                let (line, message) = csv_error(&e, 1);
                return Err(LogError::Bad {
                    path: path.to_path_buf(),
                    line,
                    message,
                });
            }
        };
        let mut record = csv::StringRecord::new();
        loop {
            match csv.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let over = csv.get_ref().over_limit;
                    let (line, message) = if let Some(at) = over {
                        (at, format!("line is longer than {} bytes", MAX_LINE))
                    } else {
                        csv_error(&e, csv.get_ref().line)
                    };
                    stats.lines = stats.lines.saturating_add(1);
                    verdict(&mut stats, line, Err(message))?;
                    if over.is_some() || matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        // No way to find the next record's start: stop here, said loudly.
                        stats.stopped_at = Some(line);
                        break;
                    }
                    continue;
                }
            }
            let n = record.position().map_or(0, |p| p.line());
            let r = match record.deserialize::<Line>(Some(&headers)) {
                Ok(line) => take(&mut stats, line.routed(&route, &hashed)),
                Err(e) => {
                    stats.lines = stats.lines.saturating_add(1);
                    Err(without_values(&e.to_string()))
                }
            };
            verdict(&mut stats, n, r)?;
        }
        stats.hashed_keys = hashed.seen();
        return Ok(stats);
    }
    // Blocks are read straight from the input, without a buffer in between; each line is
    // routed on the thread that parsed it.
    let mut input = input;
    blocks::for_each_line(
        &mut input,
        blocks::workers(),
        &|text: &[u8]| json_line(text).map(|line| line.routed(&route, &hashed)),
        |n, line| {
            let r = match line {
                Err(why) => {
                    stats.lines = stats.lines.saturating_add(1);
                    Err(why)
                }
                Ok(line) => take(&mut stats, line),
            };
            verdict(&mut stats, n, r)
        },
        io,
    )?;
    stats.hashed_keys = hashed.seen();
    Ok(stats)
}

/// One line as the reading thread needs it: when it belongs to a key being audited, that key's
/// index and the line's event (or why the line is no event).
type Routed = Option<(usize, Result<Event, String>)>;

/// Whether any line's key field looked like a SHA-256 digest, set by whichever thread saw one
/// (checked only until one is seen: the answer is the same for every line after).
#[derive(Default)]
struct HashedKeys(AtomicBool);

impl HashedKeys {
    fn see(&self, key: &str) {
        if !self.0.load(Ordering::Relaxed) && fingerprint::looks_hashed(key) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    fn seen(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

fn json_line(text: &[u8]) -> Result<Line<'_>, String> {
    // One UTF-8 check of the whole line is cheaper than serde_json's check of every string.
    let text = std::str::from_utf8(text)
        .map_err(|e| format!("not UTF-8 (at byte {})", e.valid_up_to() + 1))?;
    serde_json::from_str::<Line>(text).map_err(|e| {
        format!(
            "not a JSON object with the documented fields: {}",
            without_values(&e.to_string())
        )
    })
}

/// A reader that counts physical lines and refuses a line longer than [`MAX_LINE`], so the
/// CSV parser never buffers an unbounded record.
struct LineLimit<R> {
    inner: R,
    /// The physical line being read (1-based).
    line: u64,
    run: usize,
    over_limit: Option<u64>,
}

impl<R> LineLimit<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            line: 1,
            run: 0,
            over_limit: None,
        }
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.over_limit.is_some() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "line too long",
            ));
        }
        let n = self.inner.read(out)?;
        for &b in &out[..n] {
            if b == b'\n' {
                self.line = self.line.saturating_add(1);
                self.run = 0;
            } else {
                self.run += 1;
                if self.run > MAX_LINE {
                    self.over_limit = Some(self.line);
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "line too long",
                    ));
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_drop_quoted_values_and_keep_expected_tokens() {
        let m = without_values(
            "invalid type: string \"sk-proj-Zz9Yy8\", expected f64 at line 1 column 9",
        );
        assert_eq!(
            m,
            "invalid type: string \"…\", expected f64 at line 1 column 9"
        );
        assert_eq!(
            without_values("expected `,` or `}` at line 1 column 5"),
            "expected `,` or `}` at line 1 column 5"
        );
    }

    #[test]
    fn the_positional_time_reader_agrees_with_the_general_parsers_or_leaves_the_text_to_them() {
        let general = |s: &str| utc_without_offset(s);
        let dates = [
            "2026-11-05", "2024-02-29", "2025-02-29", "0000-01-01", "9999-12-31", "2026-13-01",
            "2026-00-10", "2026-1-05",
        ];
        let times = [
            "10:00:00", "23:59:59", "24:00:00", "10:60:00", "10:00:60", "00:00:00", "1:00:00",
            "10:0a:00",
        ];
        let fractions = [
            "", ".5", ".250", ".123456789", ".1234567891", ".", ".12a", "Z", "+01:00", " ",
        ];
        let mut read = 0;
        for date in dates {
            for sep in ["T", " ", "t", "_"] {
                for time in times {
                    for frac in fractions {
                        let s = format!("{date}{sep}{time}{frac}");
                        // `None` leaves the text to the general parsers (a leap second, a
                        // lowercase `t`, an offset, ten fraction digits, or no time at all).
                        if let Some(t) = plain_utc(&s) {
                            read += 1;
                            assert_eq!(Some(t), general(&s), "{s:?}");
                        }
                    }
                }
            }
        }
        // Four real dates, two separators, three real times, four fractions.
        assert_eq!(read, 4 * 2 * 3 * 4, "texts read by position");
        let litellm = [
            "2026-11-05T10:00:00.000",
            "2026-11-05 10:00:00",
            "2026-11-05T10:00:00.123456",
        ];
        for litellm in litellm {
            assert!(plain_utc(litellm).is_some(), "{litellm:?}");
        }
        // The general path still reads what the positional one leaves.
        let t = |s: &str| parse_time(&Scalar::S(Cow::Borrowed(s)));
        assert!(t("2016-12-31T23:59:60").is_some(), "a leap second");
        assert_eq!(t(" 2026-11-05T10:00:00 "), plain_utc("2026-11-05T10:00:00"));
    }

    #[test]
    fn times_without_an_offset_are_utc_in_every_accepted_form() {
        let t = |s: &str| parse_time(&Scalar::S(Cow::Borrowed(s))).map(|t| t.to_rfc3339());
        let ten = Some("2026-11-05T10:00:00+00:00".to_string());
        assert_eq!(t("2026-11-05T10:00:00"), ten);
        assert_eq!(t("2026-11-05 10:00:00"), ten);
        assert_eq!(t("2026-11-05T11:00:00+01:00"), ten);
        assert_eq!(t("2026-11-05 10:00:00+00"), ten);
        // With an offset (RFC 3339), read as such whatever the separator or the offset's form.
        assert_eq!(t("2026-11-05T10:00:00Z"), ten);
        assert_eq!(t("2026-11-05 10:00:00Z"), ten);
        assert_eq!(t("2026-11-05T05:00:00-05:00"), ten);
        assert_eq!(t("2026-11-05T10:00:00.000-00:00"), ten);
        assert_eq!(
            t("2026-11-05T10:00:00.250").as_deref(),
            Some("2026-11-05T10:00:00.250+00:00")
        );
        assert_eq!(
            t("2026-11-05 10:00:00.123456+00").as_deref(),
            Some("2026-11-05T10:00:00.123456+00:00")
        );
        assert_eq!(
            t("1793872800").as_deref(),
            Some("2026-11-05T10:00:00+00:00")
        );
        for bad in [
            "2026-11-05T25:00:00",
            "2026-13-05 10:00:00",
            "yesterday",
            "",
            "2026-11-05T10:00:00ZZ",
        ] {
            assert_eq!(t(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn addresses_take_the_first_of_a_forwarded_for_list_and_drop_ports() {
        let ip = |s: &str| parse_address(s).ok().flatten().map(|a| a.to_string());
        assert_eq!(ip("1.2.3.4, 10.0.0.1").as_deref(), Some("1.2.3.4"));
        assert_eq!(ip(" 2001:db8::1 ,10.0.0.1").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip("1.2.3.4:5678").as_deref(), Some("1.2.3.4"));
        assert_eq!(ip("[2001:db8::1]:443").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip("[2001:db8::1]").as_deref(), Some("2001:db8::1"));
        assert_eq!(
            ip("unknown, 1.2.3.4"),
            None,
            "the client is the first entry"
        );
    }
}
