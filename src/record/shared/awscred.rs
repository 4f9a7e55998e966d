//! S3 credentials for the shared records from the AWS SDK's default chain, the one the
//! aws-iam provider and the Secrets Manager store use (environment, profile, SSO, web
//! identity, container and instance metadata), instead of object_store's smaller chain.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use object_store::aws::AwsCredential;

#[derive(Debug)]
pub(super) struct SdkCredentials {
    provider: Option<SharedCredentialsProvider>,
    /// The last credential and when it stops being valid (SDK providers do not cache on
    /// their own; the SDK clients do, through their identity cache).
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl SdkCredentials {
    pub(super) fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            provider: sdk.credentials_provider(),
            cached: tokio::sync::Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl object_store::CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((c, expiry)) = cached.as_ref() {
            let fresh = expiry.is_none_or(|e| e > SystemTime::now() + Duration::from_secs(300));
            if fresh {
                return Ok(c.clone());
            }
        }
        let provider = self
            .provider
            .as_ref()
            .ok_or_else(|| object_store::Error::Generic {
                store: "S3",
                source: "no AWS credentials: set them up as for the aws CLI (environment, profile, SSO or instance role)".into(),
            })?;
        let creds =
            provider
                .provide_credentials()
                .await
                .map_err(|e| object_store::Error::Generic {
                    store: "S3",
                    source: format!("cannot load AWS credentials: {e}").into(),
                })?;
        let c = Arc::new(AwsCredential {
            key_id: creds.access_key_id().to_string(),
            secret_key: creds.secret_access_key().to_string(),
            token: creds.session_token().map(str::to_string),
        });
        *cached = Some((c.clone(), creds.expiry()));
        Ok(c)
    }
}
