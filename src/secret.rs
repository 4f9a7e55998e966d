//! Secret values and the redaction pass that keeps them out of every byte keyfire writes.

use std::fmt;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

/// A secret value (API key, admin token, password). Zeroed on drop, never printed.
///
/// There is deliberately no `Display` and no `Serialize`: the only way to the bytes is
/// [`Secret::expose`], called at the single place a value is put on the wire or into a store.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The form allowed in an inventory or a record: a known prefix and the last four characters.
    pub fn hint(&self) -> String {
        hint_of(self.expose())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Prefixes that identify a provider's key format; they carry no secret entropy.
const KNOWN_PREFIXES: &[&str] = &[
    "sk-proj-",
    "sk-svcacct-",
    "sk-admin-",
    "sk-ant-admin01-",
    "sk-ant-api03-",
    "sk-",
    "SG.",
    "fk-",
];

/// `sk-proj-...Q2x7`: the provider's prefix (if any) and the last four characters.
pub fn hint_of(value: &str) -> String {
    let prefix = KNOWN_PREFIXES
        .iter()
        .find(|p| value.starts_with(**p))
        .copied()
        .unwrap_or("");
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < prefix.chars().count() + 12 {
        // Too short to show anything without revealing most of it.
        return format!("{prefix}...");
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}...{tail}")
}

const REDACTED: &str = "[REDACTED]";

/// Every secret value this process has seen, so that any text about to leave the process
/// (record line, status line, error message) can be scrubbed of them.
#[derive(Clone, Default)]
pub struct Redactor {
    known: Arc<Mutex<Known>>,
}

/// The secrets seen so far and one automaton that finds any of them in a single pass (a
/// campaign learns hundreds of values, and every record line is scrubbed of all of them).
#[derive(Default)]
struct Known {
    secrets: Vec<Secret>,
    finder: Option<aho_corasick::AhoCorasick>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor")
    }
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember a value so that it is scrubbed from everything written from now on.
    pub fn learn(&self, secret: &Secret) {
        // Very short values would scrub ordinary words; they are not credible secrets anyway.
        if secret.expose().len() < 6 {
            return;
        }
        if let Ok(mut known) = self.known.lock()
            && !known.secrets.iter().any(|k| k.expose() == secret.expose())
        {
            known.secrets.push(secret.clone());
            // Leftmost-longest, so a value that contains another is redacted whole.
            known.finder = aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(known.secrets.iter().map(|s| s.expose()))
                .ok();
        }
    }

    /// Replace every known secret and every key-shaped token in `text`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = std::borrow::Cow::Borrowed(text);
        if let Ok(known) = self.known.lock()
            && let Some(finder) = &known.finder
            && finder.is_match(text)
        {
            let with: Vec<&str> = vec![REDACTED; known.secrets.len()];
            out = std::borrow::Cow::Owned(finder.replace_all(text, &with));
        }
        scrub_key_shapes(&out)
    }
}

/// Token prefixes that mark a credential whatever process produced it.
const SECRET_SHAPES: &[&str] = &[
    "sk-proj-",
    "sk-svcacct-",
    "sk-admin-",
    "sk-ant-",
    "sk-",
    "SG.",
    "ghp_",
    "xoxb-",
    "xoxp-",
    "fk-",
];

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=')
}

/// A provider's redacted form of a key (`sk-ant-api03-R2D...igAA`): its known prefix, at most
/// four characters, `...`, at most four characters. It reveals nothing and is kept.
fn is_hint(token: &str) -> bool {
    let prefix = KNOWN_PREFIXES
        .iter()
        .find(|p| token.starts_with(**p))
        .copied()
        .unwrap_or("");
    match token[prefix.len()..].split_once("...") {
        Some((head, tail)) => {
            head.chars().count() <= 4 && tail.chars().count() <= 4 && !tail.contains('.')
        }
        None => false,
    }
}

/// Redact tokens that look like provider keys (`sk-...`, `SG....`) and bearer tokens, even
/// when keyfire never learned the value (an error body echoing someone else's key).
fn scrub_key_shapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest.find(|c: char| is_token_char(c)).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
        let token = &rest[..end];
        let looks_secret = token.len() >= 20
            && SECRET_SHAPES.iter().any(|p| token.starts_with(p))
            && token.chars().any(|c| c.is_ascii_digit())
            && !is_hint(token);
        if looks_secret {
            let prefix = SECRET_SHAPES
                .iter()
                .find(|p| token.starts_with(**p))
                .copied()
                .unwrap_or("");
            out.push_str(prefix);
            out.push_str(REDACTED);
        } else {
            out.push_str(token);
        }
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("sk-proj-CANARYabcdefghijklmnop1234");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([REDACTED])");
    }

    #[test]
    fn hint_keeps_prefix_and_last_four_only() {
        assert_eq!(hint_of("sk-proj-abcdefghijklmnopQ2x7"), "sk-proj-...Q2x7");
        assert_eq!(hint_of("plainvalue-1234567890"), "...7890");
        assert_eq!(hint_of("sk-short"), "sk-...");
    }

    #[test]
    fn redactor_scrubs_learned_values_and_key_shapes() {
        let r = Redactor::new();
        r.learn(&Secret::new("hunter2-password-xyz"));
        let text = "login with hunter2-password-xyz failed; key sk-proj-ABCDEFGH12345678zz leaked";
        let scrubbed = r.scrub(text);
        assert!(!scrubbed.contains("hunter2-password-xyz"));
        assert!(!scrubbed.contains("ABCDEFGH12345678zz"));
        assert!(scrubbed.contains("sk-proj-[REDACTED]"));
        assert!(scrubbed.contains("login with [REDACTED] failed"));
    }

    #[test]
    fn redactor_keeps_provider_hints_but_not_truncated_keys() {
        let r = Redactor::new();
        let hint = "found sk-ant-api03-R2D...igAA in workspace";
        assert_eq!(r.scrub(hint), hint);
        let truncated = "key sk-ant-api03-R2D4f8g9h0j1k2l3...igAA";
        assert!(!r.scrub(truncated).contains("R2D4f8g9h0j1k2l3"));
    }

    #[test]
    fn redactor_leaves_ordinary_text_alone() {
        let r = Redactor::new();
        let text = "key_abc123 revoked at 2026-11-26T10:00:00Z (status 404)";
        assert_eq!(r.scrub(text), text);
    }
}
