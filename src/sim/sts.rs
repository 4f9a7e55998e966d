//! A loopback stand-in for STS `GetCallerIdentity` in the two states moto cannot produce: a
//! region where STS is switched off, and an endpoint that has not yet seen a key's deletion
//! (IAM is eventually consistent). It speaks the AWS query protocol the SDK uses for STS
//! (botocore `sts` 2011-06-15: `POST /` with a form body `Action=GetCallerIdentity&
//! Version=2011-06-15`, a SigV4 `Authorization` header scoped to `sts`) and answers every
//! call either with the documented `RegionDisabledException` (HTTP 403) in STS's XML error
//! body (`<ErrorResponse><Error><Type>Sender</Type><Code>...</Code><Message>...</Message>
//! </Error><RequestId>...</RequestId></ErrorResponse>`), or with a
//! `GetCallerIdentityResponse` whatever the key.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::{Observer, Running, observe, serve};

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// How the stand-in answers `GetCallerIdentity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StsMode {
    /// 403 `RegionDisabledException`.
    RegionDisabled,
    /// Every key authenticates (a deletion not propagated yet).
    Lagging,
}

pub struct StsStandIn {
    observer: Observer,
    running: Running,
}

fn sts_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        r#"<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>"#,
        super::token(8)
    );
    (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

impl StsStandIn {
    pub fn start(mode: StsMode) -> std::io::Result<Self> {
        let observer = Observer::default();
        let router = Router::new()
            .route("/", post(answer))
            .with_state(mode)
            .layer(axum::middleware::from_fn_with_state(
                observer.clone(),
                observe,
            ));
        let running = serve(router, 0)?;
        Ok(Self { observer, running })
    }

    pub fn address(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }
}

async fn answer(State(mode): State<StsMode>, headers: HeaderMap, body: String) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !auth.starts_with("AWS4-HMAC-SHA256 Credential=") || !auth.contains("/sts/aws4_request") {
        return sts_error(
            StatusCode::FORBIDDEN,
            "IncompleteSignature",
            "Request must contain a signature that conforms to AWS standards",
        );
    }
    let action = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.into_owned());
    if action.as_deref() != Some("GetCallerIdentity") {
        return sts_error(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            "this stand-in answers GetCallerIdentity only",
        );
    }
    match mode {
        StsMode::RegionDisabled => sts_error(
            StatusCode::FORBIDDEN,
            "RegionDisabledException",
            "STS is not activated in this region for account:123456789012. Your account administrator can activate STS in this region using the IAM Console.",
        ),
        StsMode::Lagging => {
            let body = format!(
                r#"<GetCallerIdentityResponse xmlns="{NAMESPACE}"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/agent</Arn><UserId>AIDAEXAMPLEUSERID0001</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></GetCallerIdentityResponse>"#,
                super::token(8)
            );
            ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
        }
    }
}
