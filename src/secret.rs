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
    /// Wraps a value; the `Secret`'s string is zeroed when it drops (a copy the caller keeps
    /// is not).
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The value itself, for the one place it goes on the wire or into a store; never log,
    /// print or record it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the value is the empty string (a prompt answered with nothing), without exposing
    /// it.
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

/// A JSON object that may hold secret values (a Vault secret's `data`, a Secrets Manager
/// `SecretString`, a stored AWS key pair): every string in it, names included, is zeroed on
/// drop, and `Debug` shows only how many fields it has.
#[derive(Default, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretMap(pub serde_json::Map<String, serde_json::Value>);

impl SecretMap {
    pub fn get_str(&self, field: &str) -> Option<&str> {
        self.0.get(field).and_then(|v| v.as_str())
    }
}

impl Drop for SecretMap {
    fn drop(&mut self) {
        zeroize_map(&mut self.0);
    }
}

impl fmt::Debug for SecretMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretMap([{} fields, REDACTED])", self.0.len())
    }
}

/// Zero every string in a JSON value (object names included) and empty it.
pub fn zeroize_json(v: &mut serde_json::Value) {
    use zeroize::Zeroize;
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(a) => {
            for x in a.iter_mut() {
                zeroize_json(x);
            }
            a.clear();
        }
        serde_json::Value::Object(m) => zeroize_map(m),
        _ => {}
    }
}

fn zeroize_map(m: &mut serde_json::Map<String, serde_json::Value>) {
    use zeroize::Zeroize;
    for (mut name, mut value) in std::mem::take(m) {
        name.zeroize();
        zeroize_json(&mut value);
    }
}

/// Append to a zeroizing buffer without leaving a stale copy behind when it grows: a plain
/// `Vec` or `String` moves to a larger block and frees the old one as it is.
pub fn extend_wiped(buf: &mut Zeroizing<Vec<u8>>, chunk: &[u8]) {
    if buf.len() + chunk.len() > buf.capacity() {
        let mut grown = Zeroizing::new(Vec::with_capacity(
            (buf.len() + chunk.len()).max(buf.capacity() * 2),
        ));
        grown.extend_from_slice(buf);
        *buf = grown;
    }
    buf.extend_from_slice(chunk);
}

/// [`extend_wiped`] for text typed or pasted one piece at a time (the console's fields).
#[cfg(feature = "tui")]
pub fn push_str_wiped(buf: &mut Zeroizing<String>, piece: &str) {
    if buf.len() + piece.len() > buf.capacity() {
        let mut grown = Zeroizing::new(String::with_capacity(
            (buf.len() + piece.len()).max(buf.capacity() * 2).max(64),
        ));
        grown.push_str(buf);
        *buf = grown;
    }
    buf.push_str(piece);
}

/// One line (without its line break) read into wiped memory, `None` at the end of input. A
/// pasted key read with `read_line` would leave a copy behind at every growth of the line.
pub fn read_line_wiped(input: &mut impl std::io::BufRead) -> std::io::Result<Option<Secret>> {
    let mut line = Zeroizing::new(Vec::with_capacity(256));
    let mut seen = false;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        seen = true;
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        extend_wiped(&mut line, &chunk[..take]);
        input.consume(take);
        if done {
            break;
        }
    }
    if !seen {
        return Ok(None);
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    // The bytes move into the string without a copy; invalid UTF-8 is refused without
    // quoting it.
    let bytes = std::mem::take(&mut *line);
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Some(Secret(Zeroizing::new(text)))),
        Err(e) => {
            let mut bytes = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut bytes);
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the value is not valid UTF-8",
            ))
        }
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

pub mod fingerprint;
pub mod recognize;

const REDACTED: &str = "[REDACTED]";

/// What a text becomes when it cannot be checked (the redactor's lock was poisoned by a
/// panic, or the recognizers are unavailable): nothing of it is let through.
pub const WITHHELD: &str = "[REDACTED: text withheld, it could not be checked for secrets]";

/// See [`Redactor::process_wide`].
static EVERY_VALUE: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();

/// Every secret value this process has seen, so that any text about to leave the process
/// (record line, status line, error message) can be scrubbed of them.
#[derive(Clone, Default)]
pub struct Redactor {
    known: Arc<Mutex<Known>>,
}

/// The secrets seen so far and one automaton that finds any of them (in the forms they take
/// inside JSON and URLs too) in a single pass: a campaign learns hundreds of values, and
/// every record line is scrubbed of all of them.
#[derive(Default)]
struct Known {
    secrets: Vec<Secret>,
    /// Each secret's literal, JSON-escaped and percent-encoded forms (distinct ones only).
    forms: Vec<Zeroizing<String>>,
    finder: Option<aho_corasick::AhoCorasick>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor")
    }
}

/// The forms a value takes when it is written inside a JSON string, a URL component or a
/// form body: an error body or a URL quoting the value carries one of these, not the
/// literal.
fn encoded_forms(value: &str) -> Vec<Zeroizing<String>> {
    let mut forms: Vec<Zeroizing<String>> = vec![Zeroizing::new(value.to_string())];
    let mut add = |form: Zeroizing<String>| {
        if !forms.iter().any(|f| **f == *form) {
            forms.push(form);
        }
    };
    // Each form is built in a buffer sized for its longest outcome (at most three bytes per
    // byte), so no copy of the value is left behind by a buffer that grew.
    let sized = || Zeroizing::new(String::with_capacity(value.len() * 6 + 2));
    if let Ok(json) = serde_json::to_string(value).map(Zeroizing::new) {
        let inner = json
            .strip_prefix('"')
            .and_then(|j| j.strip_suffix('"'))
            .unwrap_or(&json);
        let mut plain = sized();
        plain.push_str(inner);
        // serde_json leaves `/` alone; other encoders write `\/`.
        let mut slashed = sized();
        for c in inner.chars() {
            match c {
                '/' => slashed.push_str("\\/"),
                c => slashed.push(c),
            }
        }
        add(plain);
        add(slashed);
    }
    let mut form = sized();
    for piece in url::form_urlencoded::byte_serialize(value.as_bytes()) {
        form.push_str(piece);
    }
    add(form);
    let mut upper = sized();
    let mut lower = sized();
    const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
    const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            upper.push(char::from(b));
            lower.push(char::from(b));
        } else {
            for (out, hex) in [(&mut upper, HEX_UPPER), (&mut lower, HEX_LOWER)] {
                out.push('%');
                out.push(char::from(hex[usize::from(b >> 4)]));
                out.push(char::from(hex[usize::from(b & 0xf)]));
            }
        }
    }
    add(upper);
    add(lower);
    forms
}

impl Redactor {
    /// A redactor that has learnt no value yet: until [`Redactor::learn`] it scrubs only the
    /// credential formats it recognizes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember a value so that it is scrubbed from everything written from now on (by this
    /// redactor and its clones, and by the debug log when one is being written).
    pub fn learn(&self, secret: &Secret) {
        // Very short values would scrub ordinary words; they are not credible secrets anyway.
        if secret.expose().len() < 6 {
            return;
        }
        self.learn_here(secret);
        // Each command makes its own redactors (the engine's, the scanner's, ...); the debug
        // log sees text from all of them, so it learns what any of them learns.
        if let Some(every) = EVERY_VALUE.get()
            && !Arc::ptr_eq(&every.known, &self.known)
        {
            every.learn_here(secret);
        }
    }

    /// The redactor that learns every value any redactor of this process learns from now on:
    /// the debug log's scrubber. Nothing is gathered until this is first called, so a run
    /// without a debug log keeps no extra copy of any value.
    pub fn process_wide() -> Redactor {
        EVERY_VALUE.get_or_init(Redactor::new).clone()
    }

    fn learn_here(&self, secret: &Secret) {
        // A poisoned lock is not recovered: `scrub` withholds every text from then on.
        if let Ok(mut known) = self.known.lock()
            && !known.secrets.iter().any(|k| k.expose() == secret.expose())
        {
            known.secrets.push(secret.clone());
            known.forms.extend(encoded_forms(secret.expose()));
            // Leftmost-longest, so a value that contains another is redacted whole.
            known.finder = aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .prefilter(false)
                .build(known.forms.iter().map(|s| s.as_str()))
                .ok();
        }
    }

    /// Replace every known secret (in any of its encoded forms) and every recognized
    /// credential in `text`. Fails closed: a text that cannot be checked is withheld whole.
    pub fn scrub(&self, text: &str) -> String {
        let Ok(known) = self.known.lock() else {
            return WITHHELD.to_string();
        };
        let learned = match &known.finder {
            Some(finder) => {
                let mut out = String::with_capacity(text.len());
                if finder
                    .try_replace_all_with(text, &mut out, |_, _, dst| {
                        dst.push_str(REDACTED);
                        true
                    })
                    .is_err()
                {
                    return WITHHELD.to_string();
                }
                std::borrow::Cow::Owned(out)
            }
            // Values were learned but no automaton could be built for them.
            None if !known.forms.is_empty() => return WITHHELD.to_string(),
            None => std::borrow::Cow::Borrowed(text),
        };
        drop(known);
        recognize::redact(&learned, REDACTED)
    }

    /// Poison the lock (tests of the fail-closed path).
    #[cfg(test)]
    fn poison(&self) {
        let known = self.known.clone();
        let _ = std::thread::spawn(move || {
            let _guard = known.lock();
            panic!("poisoning the redactor on purpose");
        })
        .join();
    }
}

/// Scrub recognized credential formats from a text that keyfire did not learn anything for
/// (an input file's error, a configuration problem): the last pass before stderr.
pub fn scrub_formats(text: &str) -> String {
    recognize::redact(text, REDACTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_read_across_buffer_refills_without_its_line_break() {
        let text = "sk-proj-FAKElineAcrossRefills0123456789\r\nnext\n";
        // A 4-byte buffer makes the reader refill ten times within the first line.
        let mut input = std::io::BufReader::with_capacity(4, text.as_bytes());
        let first = read_line_wiped(&mut input).unwrap().unwrap();
        assert_eq!(first.expose(), "sk-proj-FAKElineAcrossRefills0123456789");
        assert_eq!(read_line_wiped(&mut input).unwrap().unwrap().expose(), "next");
        assert!(read_line_wiped(&mut input).unwrap().is_none(), "end of input");
        let bad = read_line_wiped(&mut &b"\xff\xfe\n"[..]).unwrap_err();
        assert_eq!(bad.to_string(), "the value is not valid UTF-8");
    }

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
    fn learned_values_are_found_json_escaped_and_percent_encoded() {
        let r = Redactor::new();
        let value = "pa ss/w\"rd+FAKE-0123456789";
        r.learn(&Secret::new(value));
        let json = serde_json::to_string(&serde_json::json!({ "v": value })).unwrap();
        let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let path = "pa%20ss%2Fw%22rd%2BFAKE-0123456789";
        let lower = "pa%20ss%2fw%22rd%2bFAKE-0123456789";
        for text in [
            value.to_string(),
            json,
            form,
            path.to_string(),
            lower.to_string(),
        ] {
            let out = r.scrub(&format!("before {text} after"));
            assert!(!out.contains("FAKE-0123456789"), "{out}");
            assert!(out.contains("[REDACTED]"), "{out}");
        }
    }

    #[test]
    fn the_process_wide_redactor_learns_what_any_redactor_learns_after_it_exists() {
        let before = Redactor::new();
        before.learn(&Secret::new("learned-FAKE-before-0123"));
        let every = Redactor::process_wide();
        let engine = Redactor::new();
        engine.learn(&Secret::new("learned-FAKE-engine-4567"));
        let out = every.scrub("a learned-FAKE-engine-4567 b");
        assert_eq!(out, "a [REDACTED] b");
        // The engine's own redactor does not learn what others learn.
        assert_eq!(engine.scrub("learned-FAKE-before-0123"), "learned-FAKE-before-0123");
    }

    #[test]
    fn a_poisoned_redactor_withholds_everything() {
        let r = Redactor::new();
        r.learn(&Secret::new("learned-FAKE-value-0123"));
        r.poison();
        assert_eq!(r.scrub("learned-FAKE-value-0123 in a text"), WITHHELD);
        assert_eq!(r.scrub("harmless"), WITHHELD);
    }

    #[test]
    fn redactor_leaves_ordinary_text_alone() {
        let r = Redactor::new();
        let text = "key_abc123 revoked at 2026-11-26T10:00:00Z (status 404)";
        assert_eq!(r.scrub(text), text);
    }
}
