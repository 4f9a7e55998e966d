//! Slack incoming webhooks: `POST` of `{"text": ...}` to the webhook URL, answered `200 ok`
//! (errors are 4xx with a short text such as `invalid_payload` or `no_service`). The URL
//! carries the credential, so it comes from a credential reference and is never shown.
//! Reference: <https://api.slack.com/messaging/webhooks> ("Sending messages using incoming
//! webhooks", "Handling errors").

use serde::Serialize;

use super::message::{Expect, Message, Outgoing, truncate_chars};
use crate::secret::Secret;

/// Slack truncates longer messages; keyfire's are far shorter, this keeps a flood of findings
/// readable.
const TEXT_LIMIT: usize = 3000;

#[derive(Serialize)]
struct Payload<'a> {
    text: &'a str,
}

pub fn request(url: &Secret, msg: &Message) -> Outgoing {
    let text = truncate_chars(&msg.text, TEXT_LIMIT);
    let body = serde_json::to_string(&Payload { text: &text }).unwrap_or_default();
    Outgoing {
        url: url.clone(),
        headers: vec![("content-type", "application/json".into())],
        body: Secret::new(body),
        expect: Expect::SlackOk,
    }
}
