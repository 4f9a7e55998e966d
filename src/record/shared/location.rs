//! Where a team's shared records live: `[records] location` in the config file, `--records
//! URL` or `KEYFIRE_RECORDS`, opened through the `object_store` crate.
//!
//! | scheme | store | credentials |
//! | --- | --- | --- |
//! | `s3://bucket/prefix` | S3 and S3-compatible stores | the AWS SDK's default chain, as the aws-iam provider uses it (environment, profile, SSO, web identity, IMDS) |
//! | `gs://bucket/prefix` | Google Cloud Storage | `GOOGLE_*` variables, application default credentials, metadata server (object_store's builder) |
//! | `az://container/prefix` | Azure Blob Storage | `AZURE_*` variables, managed identity (object_store's builder) |
//! | `file:///path` | a shared mount | the file system's |
//!
//! An S3-compatible store is named with `?endpoint=URL&region=NAME` on the location (or the
//! `endpoint` and `region` keys of `[records]`); `profile=` picks an AWS profile.
//!
//! Conditional create (`If-None-Match: *`, `PutMode::Create`) is what makes the shared copy a
//! journal: S3 has it since 2024 ("Add preconditions to S3 operations with conditional
//! requests", S3 User Guide), GCS as `ifGenerationMatch=0`, Azure as `If-None-Match: *`.

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;

use super::SharedError;

/// The `[records]` table of the config file.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// `s3://bucket/prefix`, `gs://…`, `az://…` or `file:///path`.
    pub location: Option<String>,
    /// S3-compatible endpoint (MinIO, Ceph, moto).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// AWS profile for the credential chain.
    pub profile: Option<String>,
    /// The team's record signing keys (`ed25519:<hex>`, one a line): records fetched from the
    /// shared store are trusted when every key they declare is in this file or is this
    /// machine's.
    pub public_keys: Option<std::path::PathBuf>,
    /// How long a writer's lease lasts without renewal (default 300 s).
    pub lease_seconds: Option<u64>,
}

/// A parsed location: what to show (never a credential: none is accepted in the URL) and
/// how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The location without its query, for messages and the upload queue.
    pub display: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File {
        root: std::path::PathBuf,
    },
    S3 {
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
        region: Option<String>,
        profile: Option<String>,
    },
    /// GCS and Azure, opened by object_store's own URL parser.
    Other {
        url: String,
        prefix: String,
    },
}

fn invalid(location: &str, reason: impl Into<String>) -> SharedError {
    SharedError::InvalidLocation {
        location: location.to_string(),
        reason: reason.into(),
    }
}

impl Location {
    /// Parse `text`, with `[records]` keys filling what the URL does not say.
    pub fn parse(text: &str, config: &RecordsConfig) -> Result<Self, SharedError> {
        let url = url::Url::parse(text.trim()).map_err(|e| invalid(text, e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            // Never echo the URL: it carries a credential.
            return Err(SharedError::InvalidLocation {
                location: format!("{}://…", url.scheme()),
                reason: "credentials do not belong in the location; keyfire reads them from the cloud's standard chain".into(),
            });
        }
        let mut query = std::collections::HashMap::new();
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "endpoint" | "region" | "profile" => {
                    query.insert(k.into_owned(), v.into_owned());
                }
                other => {
                    return Err(invalid(
                        text,
                        format!("unknown parameter `{other}` (known: endpoint, region, profile)"),
                    ));
                }
            }
        }
        let mut display = url.clone();
        display.set_query(None);
        let display = display.to_string();
        let prefix = url.path().trim_matches('/').to_string();
        let kind = match url.scheme() {
            "file" => {
                let root = url
                    .to_file_path()
                    .map_err(|()| invalid(text, "a file:// location needs an absolute path"))?;
                Kind::File { root }
            }
            "s3" | "s3a" => {
                let bucket = url
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| invalid(text, "no bucket (s3://BUCKET/prefix)"))?
                    .to_string();
                Kind::S3 {
                    bucket,
                    prefix,
                    endpoint: query.remove("endpoint").or_else(|| config.endpoint.clone()),
                    region: query.remove("region").or_else(|| config.region.clone()),
                    profile: query.remove("profile").or_else(|| config.profile.clone()),
                }
            }
            "gs" | "az" | "azure" | "abfs" | "abfss" => {
                if !query.is_empty() {
                    return Err(invalid(
                        text,
                        "endpoint, region and profile apply to s3:// locations only",
                    ));
                }
                Kind::Other {
                    url: display.clone(),
                    prefix,
                }
            }
            other => {
                return Err(invalid(
                    text,
                    format!("unsupported scheme `{other}` (s3, gs, az or file)"),
                ));
            }
        };
        Ok(Self { display, kind })
    }

    /// Open the store (no request is sent yet).
    pub async fn open(&self) -> Result<Opened, SharedError> {
        let err = |e: object_store::Error| invalid(&self.display, e.to_string());
        match &self.kind {
            Kind::File { root } => {
                // Rooted at `/` with the folder as prefix: nothing is touched until the first
                // write (a missing mount is an unreachable store, not a bad configuration).
                let prefix = root.to_string_lossy().trim_start_matches('/').to_string();
                let store = object_store::local::LocalFileSystem::new()
                    .with_automatic_cleanup(false)
                    // A shared mount is the team copy: each object is synced before it counts.
                    .with_fsync(true);
                Ok(Opened {
                    store: Arc::new(store),
                    prefix: ObjectPath::from(prefix.as_str()),
                    s3: None,
                })
            }
            Kind::S3 {
                bucket,
                prefix,
                endpoint,
                region,
                profile,
            } => {
                // With the AWS SDK built, S3 credentials come from its full chain (profiles,
                // SSO, web identity, container and instance metadata), the one the aws-iam
                // provider uses; without it, from object_store's own (environment, web
                // identity, metadata).
                #[cfg(feature = "aws")]
                let (region, creds) = {
                    let target = crate::aws::Target {
                        region: region.clone(),
                        profile: profile.clone(),
                        endpoint: None,
                    };
                    let sdk = target.config(None).await;
                    let region = sdk
                        .region()
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| target.region_name().to_string());
                    (region, super::awscred::SdkCredentials::new(&sdk))
                };
                #[cfg(not(feature = "aws"))]
                let builder = {
                    if profile.is_some() {
                        return Err(invalid(
                            &self.display,
                            "a named AWS profile needs keyfire built with the `aws` feature",
                        ));
                    }
                    let b = object_store::aws::AmazonS3Builder::from_env();
                    match region {
                        Some(r) => b.with_region(r),
                        None => b,
                    }
                };
                #[cfg(feature = "aws")]
                let builder = object_store::aws::AmazonS3Builder::new()
                    .with_region(region)
                    .with_credentials(Arc::new(creds));
                let mut b = builder
                    .with_bucket_name(bucket)
                    // S3 refuses an upload to a bucket with Object Lock retention unless it
                    // carries a checksum (Content-MD5 or x-amz-checksum-*).
                    .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
                    .with_client_options(client_options().with_default_headers(s3_headers()))
                    .with_retry(retry());
                if let Some(ep) = endpoint {
                    b = b
                        .with_endpoint(ep.trim_end_matches('/'))
                        .with_allow_http(ep.starts_with("http://"));
                }
                let s3 = Arc::new(b.build().map_err(err)?);
                Ok(Opened {
                    store: s3.clone(),
                    prefix: ObjectPath::from(prefix.as_str()),
                    s3: Some(s3),
                })
            }
            Kind::Other { url, prefix } => {
                let parsed = url::Url::parse(url).map_err(|e| invalid(url, e.to_string()))?;
                let store: Arc<dyn ObjectStore> = match parsed.scheme() {
                    "gs" => Arc::new(
                        object_store::gcp::GoogleCloudStorageBuilder::from_env()
                            .with_url(url)
                            .with_client_options(client_options())
                            .with_retry(retry())
                            .build()
                            .map_err(err)?,
                    ),
                    _ => Arc::new(
                        object_store::azure::MicrosoftAzureBuilder::from_env()
                            .with_url(url)
                            .with_client_options(client_options())
                            .with_retry(retry())
                            .build()
                            .map_err(err)?,
                    ),
                };
                Ok(Opened {
                    store,
                    prefix: ObjectPath::from(prefix.as_str()),
                    s3: None,
                })
            }
        }
    }
}

/// An opened location: the store, the prefix inside it, and the S3 client when it is one
/// (for the versioned delete of `records check`).
pub struct Opened {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: ObjectPath,
    pub s3: Option<Arc<object_store::aws::AmazonS3>>,
}

/// Short timeouts: the shared copy is never on the incident's critical path, and an
/// unreachable store should be found out quickly so the queue can say so.
fn client_options() -> object_store::ClientOptions {
    // reqwest is built without a default crypto provider (ring keeps the build small).
    let _ = rustls::crypto::ring::default_provider().install_default();
    object_store::ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_timeout(Duration::from_secs(15))
        .with_user_agent(
            reqwest::header::HeaderValue::from_str(&crate::http::user_agent())
                .unwrap_or(reqwest::header::HeaderValue::from_static("keyfire")),
        )
}

/// S3 PutObject: "The Content-MD5 or x-amz-sdk-checksum-algorithm header is required for any
/// request to upload an object with a retention period configured using Amazon S3 Object
/// Lock" (S3 API Reference, PutObject). object_store sends the `x-amz-checksum-sha256` value
/// itself; this names its algorithm, as the AWS SDKs do.
fn s3_headers() -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        "x-amz-sdk-checksum-algorithm",
        reqwest::header::HeaderValue::from_static("SHA256"),
    );
    h
}

fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(20),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations_take_endpoint_and_region_from_the_query_or_the_config() {
        let config = RecordsConfig {
            region: Some("eu-west-1".into()),
            ..Default::default()
        };
        let l = Location::parse(
            "s3://team-records/keyfire?endpoint=http://127.0.0.1:5000",
            &config,
        )
        .unwrap();
        assert_eq!(l.display, "s3://team-records/keyfire");
        assert_eq!(
            l.kind,
            Kind::S3 {
                bucket: "team-records".into(),
                prefix: "keyfire".into(),
                endpoint: Some("http://127.0.0.1:5000".into()),
                region: Some("eu-west-1".into()),
                profile: None,
            }
        );
    }

    #[test]
    fn a_credential_in_the_url_is_refused_without_echoing_it() {
        let err = Location::parse(
            "s3://AKIAEXAMPLE:hunter2@bucket/p",
            &RecordsConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            !err.contains("hunter2") && !err.contains("AKIAEXAMPLE"),
            "{err}"
        );
        assert!(err.contains("credentials"), "{err}");
    }

    #[test]
    fn unknown_schemes_and_parameters_are_named() {
        let e = Location::parse("ftp://x/y", &RecordsConfig::default()).unwrap_err();
        assert!(e.to_string().contains("`ftp`"), "{e}");
        let e = Location::parse("s3://b/p?acl=public", &RecordsConfig::default()).unwrap_err();
        assert!(e.to_string().contains("`acl`"), "{e}");
        let e = Location::parse("file://relative", &RecordsConfig::default());
        assert!(e.is_err() || matches!(e.unwrap().kind, Kind::File { .. }));
    }
}
