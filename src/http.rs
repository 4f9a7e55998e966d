//! The one HTTP layer every provider and store sends its plans through: timeouts, retries
//! with backoff for calls that are safe to repeat, `Retry-After`, redacted errors, and the
//! drill guard that refuses any write plan.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue as ReqHeaderValue};

use crate::plan::{Access, HeaderValue, RequestPlan, SecretBag, SecretRef};
use crate::secret::{Redactor, Secret};

/// How much of an error body is kept (after redaction) for the operator and the record.
const BODY_LIMIT: usize = 300;

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

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HttpError::Malformed(format!("status {}: {e}", self.status)))
    }
}

/// The process's HTTP client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Http {
    client: reqwest::Client,
    dry_run: bool,
    redactor: Redactor,
    retry: RetryPolicy,
}

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
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
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
        if self.dry_run && plan.access == Access::Write {
            return Err(HttpError::DryRunBlocked(format!(
                "{} {}",
                plan.method, plan.url
            )));
        }
        let attempts = if plan.idempotent {
            self.retry.max_attempts.max(1)
        } else {
            1
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(plan, secrets, body).await {
                Err(e) if e.transient() && attempt < attempts => {
                    let wait = match &e {
                        HttpError::Status {
                            retry_after: Some(d),
                            ..
                        } => (*d).min(self.retry.max_delay),
                        _ => self.backoff(attempt),
                    };
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
                    let mut v = ReqHeaderValue::from_str(&format!("{prefix}{}", s.expose()))
                        .map_err(|_| {
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

    fn build_body(plan: &RequestPlan, secrets: &SecretBag) -> Result<Option<Vec<u8>>, HttpError> {
        let Some(body) = &plan.body else {
            return Ok(None);
        };
        let mut body = body.clone();
        for slot in &plan.body_secrets {
            let s = secrets
                .get(slot.secret)
                .ok_or(HttpError::MissingSecret(slot.secret))?;
            let target = body
                .pointer_mut(&slot.pointer)
                .ok_or_else(|| HttpError::Invalid(format!("no body field at {}", slot.pointer)))?;
            *target = serde_json::Value::String(s.expose().to_string());
        }
        let bytes = serde_json::to_vec(&body).map_err(|e| HttpError::Invalid(e.to_string()))?;
        Ok(Some(bytes))
    }

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
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?
            .to_vec();
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
