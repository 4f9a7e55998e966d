//! Key-format recognizers: where in a text a credential of a known format sits, and which
//! format it is. The redactor scrubs what they find from everything keyfire writes; a leak
//! scanner can walk the same matches over files and logs.
//!
//! A [`Recognized`] carries a byte range and a [`Format`], never the matched text, and its
//! `Debug` shows only those: the caller slices the text itself when it must.
//!
//! Each pattern is the published one, with length floors lowered where the published pattern
//! pins an exact length (a scrubber must also catch a truncated or re-wrapped key, and
//! vendors lengthen keys without notice). Sources, by rule id in gitleaks' `config/gitleaks.toml`
//! (gitleaks/gitleaks, commit b58d3f1, July 2026) unless the row says otherwise:
//!
//! | format | published pattern | here |
//! | --- | --- | --- |
//! | OpenAI `sk-proj-`, `sk-svcacct-`, `sk-admin-` | `openai-api-key`: `sk-(?:proj\|svcacct\|admin)-[A-Za-z0-9_-]{58 or 74}T3BlbkFJ…` | prefix + 12 or more of `[A-Za-z0-9_-]` (newer keys carry no `T3BlbkFJ` marker) |
//! | OpenAI legacy `sk-`, LiteLLM virtual keys | `openai-api-key` legacy branch `sk-[a-zA-Z0-9]{20}T3BlbkFJ…`; LiteLLM makes `"sk-" + secrets.token_urlsafe(16)` (BerriAI/litellm `proxy/management_endpoints/key_management_endpoints.py`, `generate_key_helper_fn`) | `sk-` + 20 or more of `[A-Za-z0-9_-]` |
//! | Anthropic `sk-ant-api03-`, `sk-ant-admin01-` | `anthropic-api-key`, `anthropic-admin-api-key`: prefix + `[a-zA-Z0-9_-]{93}AA` | prefix + 12 or more (a console hint `sk-ant-api03-R2D...igAA` has 3 and is kept) |
//! | AWS access key id | `aws-access-token`: `(?:A3T[A-Z0-9]\|AKIA\|ASIA\|ABIA\|ACCA)[A-Z2-7]{16}` | same, `[A-Z0-9]{16}` (emulators draw from all digits); an *identifier*, see [`Sensitivity`] |
//! | AWS secret access key | TruffleHog `pkg/detectors/aws`: 40 of `[A-Za-z0-9+/]` next to an AWS keyword or key id | 40 or more of `[A-Za-z0-9+/]` after `aws_secret_access_key`, `SecretAccessKey`, `aws_secret` or an access key id (`/` is in the alphabet, so no boundary is needed after it) |
//! | GitHub `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` | `github-pat`, `github-oauth`, `github-app-token`, `github-refresh-token`: prefix + `[0-9a-zA-Z]{36}` | prefix + 20 or more |
//! | GitHub `github_pat_` | `github-fine-grained-pat`: `github_pat_\w{82}` | prefix + 20 or more of `[0-9A-Za-z_]` |
//! | Stripe `sk_live_`, `rk_live_` (and `test`, `prod`) | `stripe-access-token`: `(?:sk\|rk)_(?:test\|live\|prod)_[a-zA-Z0-9]{10,99}` | same, no upper bound |
//! | Google API key | `gcp-api-key`: `AIza[\w-]{35}` | `AIza` + 30 or more |
//! | Slack `xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xapp-` | `slack-bot-token`, `slack-user-token`, `slack-legacy-workspace-token` (`xox[ar]-(?:\d-)?[0-9a-zA-Z]{8,48}`), `slack-app-token` (`xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+`) | prefix + 8 or more of `[0-9A-Za-z-]` |
//! | JWT | `jwt`: `ey[a-zA-Z0-9]{17,}\.ey[a-zA-Z0-9\/\\_-]{17,}\.(?:[a-zA-Z0-9\/\\_-]{10,}={0,2})?` | same with floors of 10, signature optional |
//! | PEM private key | `private-key`: `-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[\s\S-]{64,}?KEY(?: BLOCK)?-----` | the whole block; with no END line, to the end of the text (fail closed) |
//! | Vault `hvs.`, `hvb.` | `vault-service-token` (`hvs\.[\w-]{90,120}`), `vault-batch-token` (`hvb\.[\w-]{138,300}`) | prefix + 20 or more |
//! | URL passwords (`postgres://`, `postgresql://`, any scheme) | RFC 3986 section 3.2.1 `userinfo = user:password`; PostgreSQL docs 34.1.1.2 "Connection URIs" | the password between `:` and `@` |
//! | SendGrid `SG.x.y` | `sendgrid-api-token`: `SG\.(?i)[a-z0-9=_\-\.]{66}`; 22-char id, 43-char secret (SendGrid API keys docs) | `SG.` + 16 or more + `.` + 16 or more |
//! | Twilio API key SID | `twilio-api-key`: `SK[0-9a-fA-F]{32}` | same |
//! | Twilio auth token | TruffleHog `pkg/detectors/twilio`: 32 hex next to the keyword | 32 hex within 40 characters after `twilio` or `auth_token` |
//! | `Bearer` tokens | RFC 6750 section 2.1 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` | the token, 16 or more characters, not only letters (so prose after "bearer" is kept) |
//! | keyfire training keys `fk-` | keyfire's own simulator (`sim::fake_api`) | `fk-` + 16 or more |
//!
//! Token boundaries: a prefixed format only starts after a character that cannot continue a
//! word (`= : / , ; " '`, whitespace, brackets, any non-alphanumeric), or after an escape that
//! encodes one (`\n`, `\t`, `\uXXXX` in JSON; `%XX` in a percent-encoded text), so
//! `api_key=sk-proj-…`, `…/v1/keys/sk-proj-…` and `x-api-key%3Dsk-ant-…` are found while
//! `task-queue-…` is not an `sk-` key. Characters that percent-encoding changes inside a key
//! (`+`, `/`, `=`, spaces in a PEM header, `:` and `@` around a URL password) are matched in
//! their encoded forms too, also encoded twice (`%253D`).
//!
//! Why the `regex` crate: its automata guarantee linear time on any input (a scrubber runs on
//! attacker-controlled error bodies), a `RegexSet` tells in one pass which of the formats can
//! occur, and the patterns stay the published ones, readable next to their source; hand-written
//! matching for twenty formats would be longer and harder to check.

use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};

/// Whether a recognized value is a credential or only names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensitivity {
    /// Grants access: scrubbed from everything keyfire writes.
    Secret,
    /// Names a credential without granting access (an AWS access key id is "not secret" in
    /// AWS's own words, and keyfire's inventory, record and report name keys by it). Found for
    /// a scanner, kept by the redactor.
    Identifier,
}

/// One key format.
#[derive(Debug, PartialEq, Eq)]
pub struct Format {
    /// Stable machine name (`openai-project-key`).
    pub name: &'static str,
    /// What an operator is told (`OpenAI project key`).
    pub what: &'static str,
    pub sensitivity: Sensitivity,
    /// The literal prefix that carries no entropy and may be shown (`sk-proj-`), if any.
    pub prefix: Option<&'static str>,
}

/// A credential found in a text: where, and of which format. Never the value itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Recognized {
    pub range: Range<usize>,
    pub format: &'static Format,
}

impl fmt::Debug for Recognized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recognized")
            .field("range", &self.range)
            .field("format", &self.format.name)
            .finish()
    }
}

struct Rule {
    format: Format,
    pattern: &'static str,
    /// The match must start at a token boundary (see the module doc).
    bounded: bool,
    /// A last check on the recognized text, for patterns that prose can also match.
    check: Option<fn(&str) -> bool>,
}

const fn rule(
    name: &'static str,
    what: &'static str,
    sensitivity: Sensitivity,
    prefix: Option<&'static str>,
    bounded: bool,
    pattern: &'static str,
) -> Rule {
    Rule {
        format: Format {
            name,
            what,
            sensitivity,
            prefix,
        },
        pattern,
        bounded,
        check: None,
    }
}

const fn checked(r: Rule, check: fn(&str) -> bool) -> Rule {
    Rule {
        check: Some(check),
        ..r
    }
}

/// A bearer token is random: long, and not only letters ("Bearer authentication failed" is
/// prose).
fn token_like(token: &str) -> bool {
    token.len() >= 16 && token.bytes().any(|b| !b.is_ascii_alphabetic())
}

use Sensitivity::{Identifier, Secret};

/// Order matters only between formats that match the same range: the first (most specific)
/// names it. Patterns with a capture group recognize that group; the rest is context.
static RULES: &[Rule] = &[
    rule(
        "openai-project-key",
        "OpenAI project key",
        Secret,
        Some("sk-proj-"),
        true,
        r"sk-proj-[A-Za-z0-9_-]{12,}",
    ),
    rule(
        "openai-service-account-key",
        "OpenAI service account key",
        Secret,
        Some("sk-svcacct-"),
        true,
        r"sk-svcacct-[A-Za-z0-9_-]{12,}",
    ),
    rule(
        "openai-admin-key",
        "OpenAI admin key",
        Secret,
        Some("sk-admin-"),
        true,
        r"sk-admin-[A-Za-z0-9_-]{12,}",
    ),
    rule(
        "anthropic-api-key",
        "Anthropic API key",
        Secret,
        Some("sk-ant-api03-"),
        true,
        r"sk-ant-api03-[A-Za-z0-9_-]{12,}",
    ),
    rule(
        "anthropic-admin-key",
        "Anthropic admin key",
        Secret,
        Some("sk-ant-admin01-"),
        true,
        r"sk-ant-admin01-[A-Za-z0-9_-]{12,}",
    ),
    rule(
        "anthropic-key",
        "Anthropic key",
        Secret,
        Some("sk-ant-"),
        true,
        r"sk-ant-[a-z]+[0-9]*-[A-Za-z0-9_-]{12,}",
    ),
    rule(
        "sk-key",
        "OpenAI or LiteLLM key",
        Secret,
        Some("sk-"),
        true,
        r"sk-[A-Za-z0-9_-]{20,}",
    ),
    rule(
        "aws-secret-access-key",
        "AWS secret access key",
        Secret,
        None,
        false,
        r#"(?i:aws_?secret_?access_?key|secret_?access_?key|aws_?secret_?key|aws_?secret)(?:[\s"'=:,;>\\]|%(?:25)*[0-9A-Fa-f]{2}){0,40}((?:[A-Za-z0-9+/]|%(?:25)*2[BbFf]){40,})"#,
    ),
    rule(
        "aws-secret-access-key",
        "AWS secret access key",
        Secret,
        None,
        true,
        r#"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?:[\s"':,;|\\]|%(?:25)*[0-9A-Fa-f]{2}){1,40}((?:[A-Za-z0-9+/]|%(?:25)*2[BbFf]){40,})"#,
    ),
    rule(
        "aws-access-key-id",
        "AWS access key id",
        Identifier,
        None,
        true,
        r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}",
    ),
    rule(
        "github-pat",
        "GitHub personal access token",
        Secret,
        Some("ghp_"),
        true,
        r"ghp_[0-9A-Za-z]{20,}",
    ),
    rule(
        "github-oauth",
        "GitHub OAuth token",
        Secret,
        Some("gho_"),
        true,
        r"gho_[0-9A-Za-z]{20,}",
    ),
    rule(
        "github-app-token",
        "GitHub app token",
        Secret,
        None,
        true,
        r"gh[us]_[0-9A-Za-z]{20,}",
    ),
    rule(
        "github-refresh-token",
        "GitHub refresh token",
        Secret,
        Some("ghr_"),
        true,
        r"ghr_[0-9A-Za-z]{20,}",
    ),
    rule(
        "github-fine-grained-pat",
        "GitHub fine-grained token",
        Secret,
        Some("github_pat_"),
        true,
        r"github_pat_[0-9A-Za-z_]{20,}",
    ),
    rule(
        "stripe-key",
        "Stripe secret or restricted key",
        Secret,
        None,
        true,
        r"[sr]k_(?:test|live|prod)_[0-9A-Za-z]{10,}",
    ),
    rule(
        "google-api-key",
        "Google API key",
        Secret,
        Some("AIza"),
        true,
        r"AIza[0-9A-Za-z_-]{30,}",
    ),
    rule(
        "slack-app-token",
        "Slack app token",
        Secret,
        Some("xapp-"),
        true,
        r"xapp-[0-9]-[0-9A-Za-z-]{8,}",
    ),
    rule(
        "slack-token",
        "Slack token",
        Secret,
        None,
        true,
        r"xox[abeoprs]-[0-9A-Za-z-]{8,}",
    ),
    rule(
        "jwt",
        "JSON Web Token",
        Secret,
        None,
        true,
        r"ey[A-Za-z0-9_-]{10,}\.ey[A-Za-z0-9/\\_-]{10,}\.(?:[A-Za-z0-9/\\_+-]{10,}={0,2})?",
    ),
    rule(
        "pem-private-key",
        "PEM private key",
        Secret,
        None,
        false,
        r"-----BEGIN(?:[A-Z0-9_-]|[ +]|%(?:25)*20){0,100}?PRIVATE(?:[ +]|%(?:25)*20)KEY(?:(?:[ +]|%(?:25)*20)BLOCK)?-----(?s:.*?)(?:-----END(?:[A-Z0-9_-]|[ +]|%(?:25)*20){0,100}?PRIVATE(?:[ +]|%(?:25)*20)KEY(?:(?:[ +]|%(?:25)*20)BLOCK)?-----|\z)",
    ),
    rule(
        "vault-token",
        "Vault token",
        Secret,
        None,
        true,
        r"hv[sb]\.[A-Za-z0-9_-]{20,}",
    ),
    rule(
        "postgres-url-password",
        "PostgreSQL URL password",
        Secret,
        None,
        true,
        r#"(?i:postgres(?:ql)?)(?::|%(?:25)*3[Aa])(?://|%(?:25)*2[Ff]%(?:25)*2[Ff])[^\s:@/'"]*?(?::|%(?:25)*3[Aa])([^\s@/'"]+?)(?:@|%(?:25)*40)"#,
    ),
    rule(
        "url-password",
        "URL password",
        Secret,
        None,
        true,
        r#"[A-Za-z][A-Za-z0-9+.-]*(?::|%(?:25)*3[Aa])(?://|%(?:25)*2[Ff]%(?:25)*2[Ff])[^\s:@/'"]*?(?::|%(?:25)*3[Aa])([^\s@/'"]+?)(?:@|%(?:25)*40)"#,
    ),
    rule(
        "sendgrid-api-key",
        "SendGrid API key",
        Secret,
        Some("SG."),
        true,
        r"SG\.[0-9A-Za-z_-]{16,}\.[0-9A-Za-z_-]{16,}",
    ),
    rule(
        "twilio-api-key",
        "Twilio API key",
        Secret,
        Some("SK"),
        true,
        r"SK[0-9a-fA-F]{32}",
    ),
    rule(
        "twilio-auth-token",
        "Twilio auth token",
        Secret,
        None,
        false,
        r"(?i:twilio|auth_?token)[^\n]{0,40}?(?:[^0-9A-Za-z]|%(?:25)*[0-9A-Fa-f]{2})([0-9a-f]{32})(?:[^0-9A-Za-z]|$)",
    ),
    checked(
        rule(
            "bearer-token",
            "Bearer token",
            Secret,
            None,
            true,
            r"(?i:bearer)(?:[ \t]+|%(?:25)*20|\+)([A-Za-z0-9._~+/-]{8,}=*)",
        ),
        token_like,
    ),
    rule(
        "keyfire-training-key",
        "keyfire training key",
        Secret,
        Some("fk-"),
        true,
        r"fk-[A-Za-z0-9_-]{16,}",
    ),
];

struct Compiled {
    set: RegexSet,
    each: Vec<Regex>,
}

static COMPILED: LazyLock<Option<Compiled>> = LazyLock::new(|| {
    let set = RegexSet::new(RULES.iter().map(|r| r.pattern)).ok()?;
    let each = RULES
        .iter()
        .map(|r| Regex::new(r.pattern))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some(Compiled { set, each })
});

/// Every format keyfire recognizes, in match-precedence order.
#[cfg(feature = "testing")]
pub fn formats() -> impl Iterator<Item = &'static Format> {
    RULES.iter().map(|r| &r.format)
}

/// The recognizers failed to build. Cannot happen with the patterns above (a unit test
/// compiles them); callers that scrub treat it as "everything may be secret".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the key-format recognizers are unavailable")]
pub struct Unavailable;

/// Every recognized credential and identifier in `text`, in text order, without overlaps
/// (of two overlapping matches the earlier, then the longer, then the more specific wins).
pub fn find(text: &str) -> Result<Vec<Recognized>, Unavailable> {
    let compiled = COMPILED.as_ref().ok_or(Unavailable)?;
    let mut found: Vec<(Recognized, usize)> = Vec::new();
    for i in compiled.set.matches(text).iter() {
        let rule = &RULES[i];
        let re = &compiled.each[i];
        let mut at = 0;
        while at <= text.len() {
            let Some(caps) = re.captures_at(text, at) else {
                break;
            };
            let Some(whole) = caps.get(0) else {
                break;
            };
            if rule.bounded && !starts_token(text, whole.start()) {
                at = next_char(text, whole.start());
                continue;
            }
            let part = caps.get(1).unwrap_or(whole);
            if rule.check.is_some_and(|check| !check(part.as_str())) {
                at = next_char(text, whole.start());
                continue;
            }
            found.push((
                Recognized {
                    range: part.start()..part.end(),
                    format: &rule.format,
                },
                i,
            ));
            at = if whole.end() > whole.start() {
                whole.end()
            } else {
                next_char(text, whole.start())
            };
        }
    }
    found.sort_by(|(a, ai), (b, bi)| {
        a.range
            .start
            .cmp(&b.range.start)
            .then(b.range.end.cmp(&a.range.end))
            .then(ai.cmp(bi))
    });
    let mut out: Vec<Recognized> = Vec::with_capacity(found.len());
    for (r, _) in found {
        match out.last_mut() {
            Some(last) if r.range.start < last.range.end => {
                // Overlap: one region, named by the match that started first.
                last.range.end = last.range.end.max(r.range.end);
                if last.format.sensitivity == Identifier && r.format.sensitivity == Secret {
                    last.format = r.format;
                }
            }
            _ => out.push(r),
        }
    }
    Ok(out)
}

/// The credentials (not identifiers) in `text`.
pub fn find_secrets(text: &str) -> Result<Vec<Recognized>, Unavailable> {
    let mut all = find(text)?;
    all.retain(|r| r.format.sensitivity == Secret);
    Ok(all)
}

/// The format of the first credential in `text`, if any. `Err` when the recognizers are
/// unavailable: the caller must then treat the text as secret.
pub fn first_secret(text: &str) -> Result<Option<&'static Format>, Unavailable> {
    Ok(find_secrets(text)?.first().map(|r| r.format))
}

/// True when `text` holds a credential, or when that cannot be checked.
pub fn may_hold_secret(text: &str) -> bool {
    !matches!(first_secret(text), Ok(None))
}

/// `text` with every recognized credential replaced by its format's visible prefix and
/// `marker`, or the whole text replaced by `marker` when the recognizers are unavailable.
pub fn redact(text: &str, marker: &str) -> String {
    let Ok(found) = find_secrets(text) else {
        return marker.to_string();
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for r in found {
        out.push_str(&text[last..r.range.start]);
        let value = &text[r.range.clone()];
        if let Some(p) = r.format.prefix
            && value.starts_with(p)
        {
            out.push_str(p);
        }
        out.push_str(marker);
        last = r.range.end;
    }
    out.push_str(&text[last..]);
    out
}

fn next_char(text: &str, at: usize) -> usize {
    text[at..]
        .chars()
        .next()
        .map_or(text.len() + 1, |c| at + c.len_utf8())
}

/// Whether a token may start at byte `at` (see the module doc).
fn starts_token(text: &str, at: usize) -> bool {
    let before = &text.as_bytes()[..at];
    let Some(&prev) = before.last() else {
        return true;
    };
    if !prev.is_ascii_alphanumeric() {
        return true;
    }
    // `%3D` (or `%253D`, encoded twice): a percent-encoded delimiter.
    if let Some(rest) = before.len().checked_sub(2).map(|n| &before[..n])
        && before[rest.len()..].iter().all(u8::is_ascii_hexdigit)
    {
        let mut rest = rest;
        while let Some(r) = rest.strip_suffix(b"25") {
            if r.ends_with(b"%") {
                return true;
            }
            rest = r;
        }
        if rest.ends_with(b"%") {
            return true;
        }
    }
    // `\n`, `\t`, `\r`, `\b`, `\f`: a JSON escape (an escaped backslash before it would make
    // the `n` a letter, which only widens what is redacted).
    if before.len() >= 2
        && before[before.len() - 2] == b'\\'
        && matches!(prev, b'n' | b't' | b'r' | b'b' | b'f')
    {
        return true;
    }
    // `\u0022`: a JSON unicode escape.
    if before.len() >= 6 {
        let tail = &before[before.len() - 6..];
        if tail[0] == b'\\' && tail[1] == b'u' && tail[2..].iter().all(u8::is_ascii_hexdigit) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        assert!(COMPILED.is_some());
        for r in RULES {
            Regex::new(r.pattern).unwrap_or_else(|e| panic!("{}: {e}", r.format.name));
        }
    }

    fn names(text: &str) -> Vec<&'static str> {
        find(text).unwrap().iter().map(|r| r.format.name).collect()
    }

    #[test]
    fn finds_formats_at_token_boundaries_only() {
        let key = "sk-proj-FAKEfakeFAKEfake0123456789";
        for text in [
            key.to_string(),
            format!("api_key={key}"),
            format!("https://api.example.test/v1/keys/{key}"),
            format!("{{\"k\":\"{key}\"}}"),
            format!("a%3D{key}%26"),
            format!("line\\n{key}"),
        ] {
            assert_eq!(names(&text), ["openai-project-key"], "{text}");
        }
        assert!(names("task-queue-processing-worker-01").is_empty());
        assert!(names("bask-abcdefghijklmnopqrstuvwxyz").is_empty());
    }

    #[test]
    fn keeps_console_hints_and_identifiers() {
        assert!(
            find_secrets("found sk-ant-api03-R2D...igAA and sk-proj-...Q2x7")
                .unwrap()
                .is_empty()
        );
        let ids = find("key AKIAFAKEFAKEFAKE2345 revoked").unwrap();
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].format.sensitivity, Identifier);
        assert!(
            find_secrets("key AKIAFAKEFAKEFAKE2345 revoked")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn context_formats_recognize_only_the_value() {
        let secret = "fakeFAKEfakeFAKEfakeFAKEfakeFAKE/+fake00";
        let text = format!("aws_secret_access_key = {secret}\n");
        let found = find(&text).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(&text[found[0].range.clone()], secret);
        let url = "postgresql://keyfire:FakePassw0rd@db.example.test/app";
        let found = find(url).unwrap();
        assert_eq!(&url[found[0].range.clone()], "FakePassw0rd");
        assert_eq!(found[0].format.name, "postgres-url-password");
    }

    #[test]
    fn debug_shows_range_and_format_only() {
        let text = "x sk-proj-FAKEfakeFAKEfake0123456789";
        let found = find(text).unwrap();
        let debug = format!("{found:?}");
        assert!(debug.contains("openai-project-key"));
        assert!(!debug.contains("FAKEfake"));
    }

    #[test]
    fn redact_keeps_the_visible_prefix() {
        assert_eq!(
            redact("k=sk-proj-FAKEfakeFAKEfake0123456789;", "[REDACTED]"),
            "k=sk-proj-[REDACTED];"
        );
        assert_eq!(
            redact("Authorization: Bearer fakeFAKEfake.token", "[REDACTED]"),
            "Authorization: Bearer [REDACTED]"
        );
        let prose = "Bearer authentication failed for this endpoint";
        assert_eq!(redact(prose, "[REDACTED]"), prose);
    }
}
