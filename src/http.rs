//! The one HTTP layer every provider and store sends its plans through: timeouts, retries
//! with backoff for calls that are safe to repeat, `Retry-After`, redacted errors, and the
//! drill guard that refuses any write plan.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue as ReqHeaderValue};
use zeroize::{Zeroize, Zeroizing};

use crate::plan::{HeaderValue, RequestPlan, SecretBag, SecretRef};
use crate::secret::{Redactor, Secret};

/// How much of an error body is kept (after redaction) for the operator and the record.
const BODY_LIMIT: usize = 300;

/// The largest response body keyfire reads. The largest answer it expects is a page of a
/// usage or audit listing (well under a megabyte); a body past this is refused rather than
/// held in memory whole.
pub const RESPONSE_LIMIT: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    ClientError,
    ServerError,
    Timeout,
    Transport,
    Malformed,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{} {status}: {reason}", kind_text(*.kind))]
    Status {
        kind: FailureKind,
        status: u16,
        reason: String,
        retry_after: Option<Duration>,
        /// The provider's machine-readable error code (`error.code`), when the body has one.
        code: Option<String>,
        /// The provider's error type (`error.type`), when the body has one.
        error_type: Option<String>,
    },
    #[error("request timed out: {0}")]
    Timeout(String),
    #[error("cannot reach {0}")]
    Transport(String),
    #[error("unexpected response: {0}")]
    Malformed(String),
    #[error("refused to send a write in a drill: {0}")]
    DryRunBlocked(String),
    #[error("the plan needs {} but it is not available", .0.label())]
    MissingSecret(SecretRef),
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A transient failure that outlasted every retry the plan allowed.
    #[error("{last} (gave up after {attempts} attempts)")]
    Exhausted { attempts: u32, last: Box<HttpError> },
}

fn kind_text(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Unauthorized => "unauthorized",
        FailureKind::Forbidden => "forbidden",
        FailureKind::NotFound => "not found",
        FailureKind::Conflict => "conflict",
        FailureKind::RateLimited => "rate limited",
        FailureKind::ClientError => "rejected",
        FailureKind::ServerError => "server error",
        FailureKind::Timeout => "timeout",
        FailureKind::Transport => "transport",
        FailureKind::Malformed => "malformed response",
    }
}

impl HttpError {
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Exhausted { last, .. } => last.kind(),
            Self::Status { kind, .. } => *kind,
            Self::Timeout(_) => FailureKind::Timeout,
            Self::Transport(_) => FailureKind::Transport,
            Self::Malformed(_) => FailureKind::Malformed,
            Self::DryRunBlocked(_) | Self::MissingSecret(_) | Self::Invalid(_) => {
                FailureKind::ClientError
            }
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Exhausted { last, .. } => last.status(),
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth another try later (the step stays retryable either way).
    pub fn transient(&self) -> bool {
        matches!(
            self.kind(),
            FailureKind::RateLimited
                | FailureKind::ServerError
                | FailureKind::Timeout
                | FailureKind::Transport
        )
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Timeouts and retries of the process's HTTP client.
#[derive(Debug, Clone, Copy)]
pub struct HttpConfig {
    /// Time allowed to open a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time allowed for one attempt, from sending to the last byte of the answer.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

/// A successful answer. Its body may hold a new key (a create response), so it is zeroed
/// on drop and never printed.
pub struct HttpResponse {
    pub status: u16,
    pub body: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field(
                "body",
                &format_args!("[{} bytes, not shown]", self.body.len()),
            )
            .finish()
    }
}

impl HttpResponse {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            HttpError::Malformed(format!("status {}: {}", self.status, json_error(&e)))
        })
    }
}

/// A serde_json error without the input it quotes: `invalid type: string "sk-…"` would carry
/// a new key into an error text before keyfire has learned it. Field names come from
/// keyfire's own types and are kept.
pub fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "the body could not be read".to_string(),
        Category::Syntax => "the body is not valid JSON".to_string(),
        Category::Eof => "the body ends before its JSON does".to_string(),
        Category::Data => {
            let text = e.to_string();
            match text.split_once(" at line ") {
                Some((m, _)) if m.starts_with("missing field `") => {
                    format!("the JSON has no {}", m.trim_start_matches("missing "))
                }
                _ => "the JSON has a value of an unexpected type or form (not shown)".to_string(),
            }
        }
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

/// One attempt in the debug log: method, URL without credentials, status (or the kind of
/// failure) and latency. Never a header or a body; the log's writer scrubs the line again.
fn log_request(
    plan: &RequestPlan,
    attempt: u32,
    took: Duration,
    result: &Result<HttpResponse, HttpError>,
) {
    if !tracing::enabled!(target: "keyfire::http", tracing::Level::DEBUG) {
        return;
    }
    let url = crate::debug_log::shown_url(&plan.url);
    let ms = took.as_millis();
    match result {
        Ok(r) => tracing::debug!(
            target: "keyfire::http",
            method = %plan.method, %url, status = r.status, ms, attempt, "request"
        ),
        Err(e) => tracing::debug!(
            target: "keyfire::http",
            method = %plan.method,
            %url,
            status = e.status(),
            failure = ?e.kind(),
            ms,
            attempt,
            "request failed"
        ),
    }
}

/// The process's HTTP client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Http {
    client: reqwest::Client,
    dry_run: bool,
    redactor: Redactor,
    retry: RetryPolicy,
    /// The last waits before a retry, as decided (not as measured): what a test reads to
    /// check `Retry-After` and backoff without a wall clock.
    waits: std::sync::Arc<std::sync::Mutex<Vec<Duration>>>,
}

/// How many retry waits an `Http` remembers.
const WAITS_KEPT: usize = 64;

pub fn user_agent() -> String {
    format!("keyfire/{}", env!("CARGO_PKG_VERSION"))
}

impl Http {
    pub fn new(dry_run: bool, redactor: Redactor) -> Result<Self, HttpError> {
        Self::with_config(dry_run, redactor, HttpConfig::default())
    }

    pub fn with_config(
        dry_run: bool,
        redactor: Redactor,
        config: HttpConfig,
    ) -> Result<Self, HttpError> {
        // reqwest is built without a default crypto provider (ring keeps the build small).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(user_agent())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| HttpError::Invalid(e.to_string()))?;
        Ok(Self {
            client,
            dry_run,
            redactor,
            retry: config.retry,
            waits: Default::default(),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// The waits this client (and its clones) decided before retrying, oldest first.
    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().map(|w| w.clone()).unwrap_or_default()
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Send a plan, substituting the secrets it names. Idempotent plans are retried on
    /// 429/5xx/timeouts with backoff (honouring `Retry-After`); others are sent once.
    pub async fn send(
        &self,
        plan: &RequestPlan,
        secrets: &SecretBag,
    ) -> Result<HttpResponse, HttpError> {
        self.send_body(plan, secrets, None).await
    }

    /// Send a plan with a JSON body built in memory instead of the plan's (a store write
    /// that must carry the other fields of the secret, which no plan may hold). The body is
    /// a `Secret`: it is zeroized after the call and never logged.
    pub async fn send_with_body(
        &self,
        plan: &RequestPlan,
        secrets: &SecretBag,
        body: &Secret,
    ) -> Result<HttpResponse, HttpError> {
        self.send_body(plan, secrets, Some(body)).await
    }

    async fn send_body(
        &self,
        plan: &RequestPlan,
        secrets: &SecretBag,
        body: Option<&Secret>,
    ) -> Result<HttpResponse, HttpError> {
        // Second line of defence: the provider and store dispatchers refuse first (the same
        // rule, with the operation); this catches a call a backend sends on its own.
        if let Err(refused) = crate::plan::drill_guard(self.dry_run, false, plan) {
            tracing::debug!(
                target: "keyfire::http",
                method = %plan.method,
                url = %crate::debug_log::shown_url(&plan.url),
                "write refused in a drill"
            );
            return Err(HttpError::DryRunBlocked(refused));
        }
        let attempts = if plan.idempotent {
            self.retry.max_attempts.max(1)
        } else {
            1
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = std::time::Instant::now();
            let result = self.send_once(plan, secrets, body).await;
            log_request(plan, attempt, started.elapsed(), &result);
            match result {
                Err(e) if e.transient() && attempt < attempts => {
                    let wait = match &e {
                        HttpError::Status {
                            retry_after: Some(d),
                            ..
                        } => (*d).min(self.retry.max_delay),
                        _ => self.backoff(attempt),
                    };
                    tracing::debug!(
                        target: "keyfire::http",
                        wait_ms = wait.as_millis(),
                        attempt,
                        "retrying after a transient failure"
                    );
                    if let Ok(mut waits) = self.waits.lock() {
                        if waits.len() == WAITS_KEPT {
                            waits.remove(0);
                        }
                        waits.push(wait);
                    }
                    tokio::time::sleep(wait).await;
                }
                // Say that retrying was tried, so the record explains why the step gave up.
                Err(e) if e.transient() && attempt > 1 => {
                    return Err(HttpError::Exhausted {
                        attempts: attempt,
                        last: Box::new(e),
                    });
                }
                other => return other,
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .retry
            .base_delay
            .saturating_mul(1u32 << attempt.min(10).saturating_sub(1));
        let capped = exp.min(self.retry.max_delay);
        // Full jitter from the clock's sub-second noise; good enough to spread retries.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let frac = f64::from(nanos % 1000) / 1000.0;
        capped.mul_f64(0.5 + frac / 2.0)
    }

    fn build_headers(
        &self,
        plan: &RequestPlan,
        secrets: &SecretBag,
    ) -> Result<HeaderMap, HttpError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &plan.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| HttpError::Invalid(e.to_string()))?;
            let mut v = match value {
                HeaderValue::Plain(v) => {
                    ReqHeaderValue::from_str(v).map_err(|e| HttpError::Invalid(e.to_string()))?
                }
                HeaderValue::Secret { prefix, secret } => {
                    let s = secrets
                        .get(*secret)
                        .ok_or(HttpError::MissingSecret(*secret))?;
                    let full = Zeroizing::new(format!("{prefix}{}", s.expose()));
                    let mut v = ReqHeaderValue::from_str(&full).map_err(|_| {
                        HttpError::Invalid(format!(
                            "{} is not a valid header value",
                            secret.label()
                        ))
                    })?;
                    v.set_sensitive(true);
                    v
                }
            };
            if matches!(value, HeaderValue::Secret { .. }) {
                v.set_sensitive(true);
            }
            headers.insert(name, v);
        }
        Ok(headers)
    }

    /// The body with its secrets put in. The copy of each secret in the JSON tree is zeroed
    /// once serialized; the bytes go to reqwest, which keeps them in a `Bytes` it frees
    /// without zeroing (see the note on [`Http::send_once`]).
    fn build_body(plan: &RequestPlan, secrets: &SecretBag) -> Result<Option<Vec<u8>>, HttpError> {
        let Some(body) = &plan.body else {
            return Ok(None);
        };
        let mut body = body.clone();
        let filled = Self::fill_body(&mut body, plan, secrets).and_then(|()| {
            serde_json::to_vec(&body).map_err(|e| HttpError::Invalid(e.to_string()))
        });
        for slot in &plan.body_secrets {
            if let Some(serde_json::Value::String(s)) = body.pointer_mut(&slot.pointer) {
                s.zeroize();
            }
        }
        filled.map(Some)
    }

    fn fill_body(
        body: &mut serde_json::Value,
        plan: &RequestPlan,
        secrets: &SecretBag,
    ) -> Result<(), HttpError> {
        for slot in &plan.body_secrets {
            let s = secrets
                .get(slot.secret)
                .ok_or(HttpError::MissingSecret(slot.secret))?;
            let target = body
                .pointer_mut(&slot.pointer)
                .ok_or_else(|| HttpError::Invalid(format!("no body field at {}", slot.pointer)))?;
            *target = serde_json::Value::String(s.expose().to_string());
        }
        Ok(())
    }

    /// One attempt. What cannot be zeroed: the header values and body bytes handed to
    /// reqwest (it stores them as `http::HeaderValue` and `bytes::Bytes`, which free their
    /// memory unzeroed), and the chunks hyper reads before they are copied into the zeroizing
    /// response buffer.
    async fn send_once(
        &self,
        plan: &RequestPlan,
        secrets: &SecretBag,
        body_override: Option<&Secret>,
    ) -> Result<HttpResponse, HttpError> {
        let method = reqwest::Method::from_bytes(plan.method.as_bytes())
            .map_err(|e| HttpError::Invalid(e.to_string()))?;
        let mut req = self
            .client
            .request(method, &plan.url)
            .headers(self.build_headers(plan, secrets)?);
        let body = match body_override {
            Some(b) => Some(b.expose().as_bytes().to_vec()),
            None => Self::build_body(plan, secrets)?,
        };
        if let Some(body) = body {
            let has_type = plan
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
            if !has_type {
                req = req.header(reqwest::header::CONTENT_TYPE, "application/json");
            }
            req = req.body(body);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let body = self.read_body(resp).await?;
        if (200..300).contains(&status) {
            return Ok(HttpResponse { status, body });
        }
        let kind = match status {
            401 => FailureKind::Unauthorized,
            403 => FailureKind::Forbidden,
            404 => FailureKind::NotFound,
            409 => FailureKind::Conflict,
            429 => FailureKind::RateLimited,
            500..=599 => FailureKind::ServerError,
            _ => FailureKind::ClientError,
        };
        let field = |pointer: &str| {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.pointer(pointer)
                        .and_then(|c| c.as_str())
                        .map(str::to_string)
                })
                .map(|c| truncate(&self.redactor.scrub(&c), 64))
        };
        Err(HttpError::Status {
            kind,
            status,
            reason: self.reason(&body),
            retry_after,
            code: field("/error/code"),
            error_type: field("/error/type"),
        })
    }

    /// The whole body, refused past [`RESPONSE_LIMIT`] (checked against `Content-Length`
    /// first, then while reading, since a chunked answer announces no length).
    async fn read_body(
        &self,
        mut resp: reqwest::Response,
    ) -> Result<Zeroizing<Vec<u8>>, HttpError> {
        let too_large = || {
            HttpError::Malformed(format!(
                "the response body is larger than {} MiB; refused",
                RESPONSE_LIMIT / (1024 * 1024)
            ))
        };
        let announced = resp.content_length().unwrap_or(0);
        if announced > RESPONSE_LIMIT as u64 {
            return Err(too_large());
        }
        let mut body = Zeroizing::new(Vec::with_capacity(
            usize::try_from(announced).unwrap_or(0).min(RESPONSE_LIMIT),
        ));
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(&e))? {
            if body.len() + chunk.len() > RESPONSE_LIMIT {
                return Err(too_large());
            }
            crate::secret::extend_wiped(&mut body, &chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, e: &reqwest::Error) -> HttpError {
        // reqwest errors name the URL; URLs carry no secrets in our plans, but scrub anyway.
        let text = self.redactor.scrub(&error_chain(e));
        if e.is_timeout() {
            HttpError::Timeout(text)
        } else {
            HttpError::Transport(text)
        }
    }

    /// A short, redacted reason from an error body: the provider's message when it has one.
    fn reason(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                let candidates = [
                    v.pointer("/error/message"),
                    v.pointer("/message"),
                    v.pointer("/errors/0/message"),
                    v.pointer("/errors/0"),
                    // Doppler: `{"messages": [...], "success": false}`.
                    v.pointer("/messages/0"),
                    v.pointer("/error"),
                ];
                candidates
                    .into_iter()
                    .flatten()
                    .find_map(|m| m.as_str().map(str::to_string))
            });
        let chosen = message.unwrap_or_else(|| text.trim().to_string());
        truncate(&self.redactor.scrub(&chosen), BODY_LIMIT)
    }
}

/// `Retry-After` is either delay-seconds or an HTTP-date (RFC 9110 section 10.2.3); a date in
/// the past means "now".
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is a subset of RFC 2822.
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let ms = (at.with_timezone(&chrono::Utc) - now)
        .num_milliseconds()
        .max(0);
    Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

pub fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let cut: String = text.chars().take(limit).collect();
    format!("{cut}… (truncated)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 11, 26, 3, 15, 0)
            .single()
            .expect("valid time");
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 03:15:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        // A date already past means "retry now", not an error.
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 03:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn json_errors_never_quote_the_body() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Created {
            id: u64,
            value: String,
        }
        let key = "sk-svcacct-FAKEnewKEYfake0123456789abcdef";
        for body in [
            format!(r#"{{"id":"{key}","value":"x"}}"#),
            format!(r#"{{"value":"{key}","id":true}}"#),
            format!(r#"{{"value":"{key}""#),
            format!(r#"{{"id":1,"value":"{key}",}}"#),
        ] {
            let resp = HttpResponse {
                status: 201,
                body: Zeroizing::new(body.into_bytes()),
            };
            let e = resp.json::<Created>().unwrap_err().to_string();
            assert!(!e.contains("FAKEnewKEY"), "{e}");
            assert!(e.contains("status 201") && e.contains("line 1"), "{e}");
        }
        let resp = HttpResponse {
            status: 200,
            body: Zeroizing::new(br#"{"id":1}"#.to_vec()),
        };
        let e = resp.json::<Created>().unwrap_err().to_string();
        assert!(e.contains("no field `value`"), "{e}");
    }

    #[test]
    fn response_debug_shows_the_size_not_the_body() {
        let resp = HttpResponse {
            status: 201,
            body: Zeroizing::new(br#"{"value":"sk-proj-FAKEfakeFAKE0123456789"}"#.to_vec()),
        };
        let debug = format!("{resp:?}");
        assert!(!debug.contains("FAKEfake"), "{debug}");
        assert!(debug.contains("201") && debug.contains("bytes"), "{debug}");
    }

    /// A loopback server that answers every request with `head` and then `chunks`
    /// (1 MiB each).
    async fn serve_once(head: String, chunks: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock.write_all(head.as_bytes()).await;
            let chunk = vec![b'a'; 1024 * 1024];
            for _ in 0..chunks {
                let framed = format!("{:x}\r\n", chunk.len());
                if sock.write_all(framed.as_bytes()).await.is_err()
                    || sock.write_all(&chunk).await.is_err()
                    || sock.write_all(b"\r\n").await.is_err()
                {
                    return;
                }
            }
            let _ = sock.write_all(b"0\r\n\r\n").await;
        });
        format!("http://{addr}/big")
    }

    #[tokio::test]
    async fn bodies_past_the_limit_are_refused_with_or_without_a_length() {
        let http = Http::new(false, Redactor::new()).unwrap();
        let url = serve_once(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
                RESPONSE_LIMIT + 1
            ),
            0,
        )
        .await;
        let plan = RequestPlan::read("read a big body", "GET", url);
        let e = http.send(&plan, &SecretBag::default()).await.unwrap_err();
        assert!(e.to_string().contains("larger than 16 MiB"), "{e}");

        let url = serve_once(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".into(),
            17,
        )
        .await;
        let plan = RequestPlan::read("read a big body", "GET", url);
        let e = http.send(&plan, &SecretBag::default()).await.unwrap_err();
        assert!(e.to_string().contains("larger than 16 MiB"), "{e}");

        let url = serve_once(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".into(),
            2,
        )
        .await;
        let plan = RequestPlan::read("read a body under the limit", "GET", url);
        let resp = http.send(&plan, &SecretBag::default()).await.unwrap();
        assert_eq!(resp.body.len(), 2 * 1024 * 1024);
    }

    #[test]
    fn exhausted_retries_keep_the_kind_and_status_and_say_so() {
        let e = HttpError::Exhausted {
            attempts: 5,
            last: Box::new(HttpError::Status {
                kind: FailureKind::ServerError,
                status: 500,
                reason: "boom".into(),
                retry_after: None,
                code: None,
                error_type: None,
            }),
        };
        assert_eq!(e.kind(), FailureKind::ServerError);
        assert_eq!(e.status(), Some(500));
        assert!(e.transient());
        assert_eq!(
            e.to_string(),
            "server error 500: boom (gave up after 5 attempts)"
        );
    }
}
