//! What the AWS provider (`aws-iam`) and store (`aws-secrets-manager`) share: building the
//! official SDK's configuration from inventory settings and an optional admin credential,
//! one HTTPS client on rustls + ring (the SDK's default client would build aws-lc), and
//! turning SDK errors into short, redacted messages that keep the AWS error code and status.

use std::sync::OnceLock;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::config::retry::RetryConfig;
use aws_sdk_sts::config::timeout::TimeoutConfig;
use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use crate::secret::{Redactor, Secret};

/// Region used when neither the inventory nor the environment names one. IAM is global and
/// signs for us-east-1 anyway.
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("AWS credential: {0}")]
    Credential(String),
    #[error("{api} answered {}{code}: {message}", status.map(|s| format!("HTTP {s} ")).unwrap_or_default())]
    Service {
        api: String,
        status: Option<u16>,
        code: String,
        message: String,
    },
    #[error("{api}: cannot reach AWS: {message}")]
    Transport { api: String, message: String },
    #[error("{api}: timed out")]
    Timeout { api: String },
    #[error("{api}: unexpected response: {message}")]
    Malformed { api: String, message: String },
}

impl AwsError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Service { status, .. } => *status,
            _ => None,
        }
    }

    /// The AWS error code (`NoSuchEntity`, `InvalidClientTokenId`, ...), when AWS sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => Some(code.as_str()),
            _ => None,
        }
    }

    /// Worth another try later (throttling, 5xx, network).
    pub fn transient(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Service { status, code, .. } => {
                status.is_some_and(|s| s == 429 || s >= 500)
                    || matches!(
                        code.as_str(),
                        "Throttling" | "ThrottlingException" | "RequestLimitExceeded"
                    )
            }
            _ => false,
        }
    }
}

/// Build an [`AwsError`] from an SDK error: status, AWS error code and a redacted message.
pub fn sdk_error<E>(api: &str, err: &SdkError<E, HttpResponse>, redactor: &Redactor) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let api = api.to_string();
    match err {
        SdkError::TimeoutError(_) => AwsError::Timeout { api },
        SdkError::DispatchFailure(e) => AwsError::Transport {
            api,
            message: redactor.scrub(&format!("{:?}", e.as_connector_error())),
        },
        SdkError::ConstructionFailure(_) => AwsError::Malformed {
            api,
            message: redactor.scrub(&error_chain(err)),
        },
        _ => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            // moto answers authentication failures with a generic XML body (`<Response>
            // <Errors><Error><Code>`) that the protocol parsers do not read.
            let body_tag = |name: &str| {
                err.raw_response()
                    .and_then(|r| r.body().bytes())
                    .and_then(|b| xml_tag(&String::from_utf8_lossy(b), name))
            };
            let code = err
                .code()
                .filter(|c| *c != "Unknown")
                .map(str::to_string)
                .or_else(|| body_tag("Code"))
                .unwrap_or_else(|| "Unknown".into());
            let message = err.message().map(str::to_string).unwrap_or_else(|| {
                // moto answers some errors with an XML body the JSON parser cannot read.
                err.raw_response()
                    .and_then(|r| r.body().bytes())
                    .map(|b| xml_message(&String::from_utf8_lossy(b)))
                    .unwrap_or_else(|| error_chain(err))
            });
            AwsError::Service {
                api,
                status,
                code,
                message: crate::http::truncate(&redactor.scrub(&message), 300),
            }
        }
    }
}

fn xml_tag(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(body[start..end].to_string())
}

/// `<Message>...</Message>` (or `<Code>`) from an AWS XML error body.
fn xml_message(body: &str) -> String {
    xml_tag(body, "Message")
        .or_else(|| xml_tag(body, "Code"))
        .unwrap_or_else(|| body.trim().to_string())
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

/// The one HTTPS client every AWS SDK client of this process shares.
fn http_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                .build_https()
        })
        .clone()
}

/// One debug-log line per AWS attempt (operation, endpoint, status or failure, latency, attempt
/// number): the SDK's counterpart of `http::log_request`. Registered on every SDK client
/// keyfire builds; it reads, never changes, and logs nothing of a header or a body.
#[derive(Debug)]
pub(crate) struct LogCalls;

/// Where the current attempt went and when it left, kept in the operation's config bag (the
/// request itself is gone once it has been sent); cleared when the attempt is logged, so an
/// attempt that fails before it is sent never borrows the previous one's.
#[derive(Debug, Clone)]
struct AttemptSent {
    at: std::time::Instant,
    url: String,
}

/// How many attempts of the operation were sent so far.
#[derive(Debug, Clone, Copy)]
struct AttemptsSent(u32);

impl aws_smithy_types::config_bag::Storable for AttemptSent {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl aws_smithy_types::config_bag::Storable for AttemptsSent {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// The target the lines are written under.
const LOG_TARGET: &str = "keyfire::aws";

impl aws_smithy_runtime_api::client::interceptors::Intercept for LogCalls {
    fn name(&self) -> &'static str {
        "keyfire-debug-log"
    }

    // Before transmit, not before attempt: only then is the endpoint resolved and the request
    // signed, and the time measured is the call's, not the signing's.
    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if !tracing::enabled!(target: LOG_TARGET, tracing::Level::DEBUG) {
            return Ok(());
        }
        let sent = cfg.load::<AttemptsSent>().map_or(1, |n| n.0 + 1);
        let url = crate::debug_log::shown_url(context.request().uri());
        cfg.interceptor_state()
            .store_put(AttemptsSent(sent))
            .store_put(AttemptSent {
                at: std::time::Instant::now(),
                url,
            });
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if !tracing::enabled!(target: LOG_TARGET, tracing::Level::DEBUG) {
            return Ok(());
        }
        // `IAM`, `Secrets Manager`: spelled as keyfire's errors spell them (`iam:`,
        // `secretsmanager:`).
        let api = match cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>() {
            Some(m) => format!(
                "{}:{}",
                m.service().replace(' ', "").to_ascii_lowercase(),
                m.name()
            ),
            None => "unknown operation".to_string(),
        };
        let sent = cfg.load::<AttemptSent>().cloned();
        cfg.interceptor_state().unset::<AttemptSent>();
        let (ms, attempt, url) = match &sent {
            Some(a) => (
                Some(a.at.elapsed().as_millis()),
                cfg.load::<AttemptsSent>().map(|n| n.0),
                a.url.as_str(),
            ),
            // Failed before it was sent (credentials, signing): nothing went out.
            None => (None, None, ""),
        };
        match context.response() {
            Some(response) => tracing::debug!(
                target: LOG_TARGET,
                %api, %url, status = response.status().as_u16(), ms, attempt, "request"
            ),
            // No answer: a timeout, a refused connection, a TLS failure. The error itself is
            // in the runbook's message; its text may quote the endpoint's answer, so it is
            // not repeated here.
            None => tracing::debug!(
                target: LOG_TARGET,
                %api, %url, ms, attempt, "request failed without an answer"
            ),
        }
        Ok(())
    }
}

/// An access key pair as keyfire holds it: parsed from a stored value or an admin credential.
pub struct KeyPair {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// `{"AccessKeyId": ..., "SecretAccessKey": ..., "SessionToken": ...}` (the form keyfire
    /// stores), or `ACCESS_KEY_ID:SECRET_ACCESS_KEY`.
    pub fn parse(secret: &Secret) -> Result<Self, AwsError> {
        let text = secret.expose().trim();
        if text.starts_with('{') {
            let v: crate::secret::SecretMap = serde_json::from_str(text).map_err(|_| {
                AwsError::Credential(
                    "the value is not valid JSON (expected {\"AccessKeyId\": ..., \"SecretAccessKey\": ...})".into(),
                )
            })?;
            let field = |name: &str| v.get_str(name).map(str::to_string);
            let (Some(id), Some(secret)) = (field("AccessKeyId"), field("SecretAccessKey")) else {
                return Err(AwsError::Credential(
                    "the JSON value needs AccessKeyId and SecretAccessKey".into(),
                ));
            };
            return Ok(Self {
                access_key_id: id,
                secret_access_key: Secret::new(secret),
                session_token: field("SessionToken").map(Secret::new),
            });
        }
        match text.split_once(':') {
            Some((id, secret)) if !id.is_empty() && !secret.is_empty() => Ok(Self {
                access_key_id: id.to_string(),
                secret_access_key: Secret::new(secret),
                session_token: None,
            }),
            _ => Err(AwsError::Credential(
                "expected JSON {\"AccessKeyId\", \"SecretAccessKey\"} or ACCESS_KEY_ID:SECRET_ACCESS_KEY".into(),
            )),
        }
    }

    /// Parse, and teach the redactor the secret halves on their own (the whole value is
    /// already known to it), so an error echoing just the secret key is scrubbed too.
    pub fn parse_learned(secret: &Secret, redactor: &Redactor) -> Result<Self, AwsError> {
        let pair = Self::parse(secret)?;
        redactor.learn(&pair.secret_access_key);
        if let Some(t) = &pair.session_token {
            redactor.learn(t);
        }
        Ok(pair)
    }

    /// The JSON form keyfire writes to a store for agents to read.
    pub fn to_json(&self) -> Secret {
        let mut m = serde_json::Map::new();
        m.insert("AccessKeyId".into(), self.access_key_id.clone().into());
        m.insert(
            "SecretAccessKey".into(),
            self.secret_access_key.expose().into(),
        );
        Secret::new(serde_json::Value::Object(m).to_string())
    }

    fn credentials(&self) -> Credentials {
        Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose().to_string(),
            self.session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            "keyfire",
        )
    }
}

/// Where and as whom to call AWS, from a provider's or store's inventory entry.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// Endpoint override (`base_url` / `address`); tests point it at moto on loopback.
    pub endpoint: Option<String>,
}

impl Target {
    pub fn from_settings(
        settings: &serde_json::Map<String, serde_json::Value>,
        endpoint: Option<&str>,
    ) -> Self {
        let s = |k: &str| settings.get(k).and_then(|v| v.as_str()).map(str::to_string);
        Self {
            region: s("region"),
            profile: s("profile"),
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
        }
    }

    pub fn region_name(&self) -> &str {
        self.region.as_deref().unwrap_or(DEFAULT_REGION)
    }

    /// Where calls go, for plans: the override or the service's public endpoint.
    pub fn describe(&self, service: &str) -> String {
        match &self.endpoint {
            Some(e) => e.clone(),
            None if service == "iam" => "https://iam.amazonaws.com".into(),
            None => format!("https://{service}.{}.amazonaws.com", self.region_name()),
        }
    }

    /// SDK configuration: `pair` when given (an admin credential, or a key being verified),
    /// else the SDK's default chain (environment, profile, SSO, IMDS). The SDK's standard
    /// retries (3 attempts on throttling, 5xx and network errors) apply; the one call that is
    /// not idempotent, CreateAccessKey, turns them off for itself.
    pub async fn config(&self, pair: Option<&KeyPair>) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            );
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(pair) = pair {
            loader = loader.credentials_provider(pair.credentials());
        }
        let config = loader.load().await;
        if config.region().is_none() {
            // No region anywhere (no settings, no AWS_REGION, no profile): IAM does not care,
            // and other services need one to sign.
            return config
                .into_builder()
                .region(Region::new(DEFAULT_REGION))
                .build();
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_pairs_parse_from_json_or_colon_form_and_never_debug_the_secret() {
        let p = KeyPair::parse(&Secret::new(
            r#"{"AccessKeyId":"AKIAEXAMPLE","SecretAccessKey":"s3cr3t/xyz+abc"}"#,
        ))
        .unwrap();
        assert_eq!(p.access_key_id, "AKIAEXAMPLE");
        assert_eq!(p.secret_access_key.expose(), "s3cr3t/xyz+abc");
        assert!(!format!("{p:?}").contains("s3cr3t"));
        let q = KeyPair::parse(&Secret::new("AKIAEXAMPLE:s3cr3t")).unwrap();
        assert_eq!(q.secret_access_key.expose(), "s3cr3t");
        assert!(KeyPair::parse(&Secret::new("just-a-string")).is_err());
        assert!(KeyPair::parse(&Secret::new(r#"{"AccessKeyId":"A"}"#)).is_err());
        let back = KeyPair::parse(&p.to_json()).unwrap();
        assert_eq!(back.access_key_id, "AKIAEXAMPLE");
    }

    #[test]
    fn xml_error_bodies_yield_their_message() {
        let body = "<ErrorResponse><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></ErrorResponse>";
        assert_eq!(
            xml_message(body),
            "The security token included in the request is invalid."
        );
    }
}
