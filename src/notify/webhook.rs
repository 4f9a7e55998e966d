//! keyfire's own webhook: a JSON `POST` to the notifier's `url`, the body signed with
//! HMAC-SHA256 (RFC 2104, FIPS 180-4) under the notifier's `secret`:
//!
//! - `X-Keyfire-Signature: sha256=<lowercase hex of HMAC-SHA256(secret, raw body)>`
//! - `X-Keyfire-Event: incident.opened` (see [`super::Event::name`])
//! - `X-Keyfire-Delivery: <id>`, the same on every retry of one message, for receivers that
//!   deduplicate.
//!
//! A receiver verifies the signature over the raw bytes before parsing them, comparing in
//! constant time. The body: `{id, event, drill, incident, at, severity, title, text,
//! recipients, detail}`.

use ring::hmac;
use serde::Serialize;

use super::event::{Contact, Severity};
use super::message::{Expect, Message, Outgoing};
use crate::secret::Secret;

#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    event: &'a str,
    drill: bool,
    incident: Option<&'a str>,
    at: String,
    severity: Severity,
    title: &'a str,
    text: &'a str,
    recipients: &'a [Contact],
    detail: &'a serde_json::Value,
}

/// `sha256=<hex>` over `body`.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

/// Whether `header` is the signature of `body` under `secret` (constant-time).
#[cfg(feature = "testing")]
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, body, &sig).is_ok()
}

pub fn request(url: &Secret, secret: &Secret, delivery: &str, msg: &Message) -> Outgoing {
    let body = Body {
        id: delivery,
        event: msg.event,
        drill: msg.drill,
        incident: msg.incident.as_deref(),
        at: msg.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        severity: msg.severity,
        title: &msg.title,
        text: &msg.text,
        recipients: &msg.recipients,
        detail: &msg.detail,
    };
    let body = serde_json::to_string(&body).unwrap_or_default();
    let signature = signature(secret, body.as_bytes());
    Outgoing {
        url: url.clone(),
        headers: vec![
            ("content-type", "application/json".into()),
            ("x-keyfire-event", msg.event.to_string()),
            ("x-keyfire-delivery", delivery.to_string()),
            ("x-keyfire-signature", signature),
        ],
        body: Secret::new(body),
        expect: Expect::Success,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_and_detects_a_changed_body() {
        let secret = Secret::new("whsec-test-0123456789");
        let sig = signature(&secret, b"{\"a\":1}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), "sha256=".len() + 64);
        assert!(verify(secret.expose().as_bytes(), b"{\"a\":1}", &sig));
        assert!(!verify(secret.expose().as_bytes(), b"{\"a\":2}", &sig));
        assert!(!verify(b"other-secret", b"{\"a\":1}", &sig));
    }

    /// RFC 4231 test case 2: HMAC-SHA256 with key "Jefe".
    #[test]
    fn signature_matches_the_rfc_4231_vector() {
        let sig = signature(&Secret::new("Jefe"), b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
