//! A corpus of fake credentials, one or more per recognized format, each built to match the
//! format's published pattern (checked by `every_sample_matches_its_published_pattern`).
//! Every value is visibly fake (`FAKE`, `fake`, `EXAMPLE`, `fa4e` hex): none is a real key.
//!
//! Each sample is placed the ways a key reaches keyfire's outputs: standalone, `name=value`,
//! in a URL path, as `x-api-key=`, inside JSON, JSON-escaped (a JSON body quoted in a JSON
//! string) and percent-encoded.

#![allow(dead_code)]

pub struct Sample {
    pub format: &'static str,
    /// The published pattern the value is made from (gitleaks rule, vendor docs, RFC).
    pub published: &'static str,
    /// The secret itself: nothing of it may survive.
    pub value: String,
    /// The text the value is written in (the context some formats need: `{v}` is the value).
    pub context: &'static str,
}

impl Sample {
    pub fn text(&self) -> String {
        self.context.replace("{v}", &self.value)
    }
}

/// `len` characters cycling through `seed` (letters and digits that spell FAKE somewhere).
fn fill(seed: &str, len: usize) -> String {
    seed.chars().cycle().take(len).collect()
}

pub fn samples() -> Vec<Sample> {
    let s = |format, published, value: String, context| Sample {
        format,
        published,
        value,
        context,
    };
    let openai = r"sk-(?:proj|svcacct|admin)-(?:[A-Za-z0-9_-]{74}|[A-Za-z0-9_-]{58})T3BlbkFJ(?:[A-Za-z0-9_-]{74}|[A-Za-z0-9_-]{58})";
    let github = r"gh[pousr]_[0-9a-zA-Z]{36}";
    let stripe = r"(?:sk|rk)_(?:test|live|prod)_[a-zA-Z0-9]{10,99}";
    vec![
        s("openai-project-key", openai,
            format!("sk-proj-{}T3BlbkFJ{}", fill("FAKEprojA0", 74), fill("FAKEprojB1", 74)), "{v}"),
        s("openai-service-account-key", openai,
            format!("sk-svcacct-{}T3BlbkFJ{}", fill("FAKEsvcC2_", 58), fill("FAKEsvcD3-", 58)), "{v}"),
        s("openai-admin-key", openai,
            format!("sk-admin-{}T3BlbkFJ{}", fill("FAKEadmE4", 58), fill("FAKEadmF5", 58)), "{v}"),
        s("openai-legacy-key", r"sk-[a-zA-Z0-9]{20}T3BlbkFJ[a-zA-Z0-9]{20}",
            format!("sk-{}T3BlbkFJ{}", fill("FAKElegG6", 20), fill("FAKElegH7", 20)), "{v}"),
        s("litellm-virtual-key", r"sk-[A-Za-z0-9_-]{22}",
            format!("sk-{}", fill("FAKElitellmI8_", 22)), "{v}"),
        s("anthropic-api-key", r"sk-ant-api03-[a-zA-Z0-9_\-]{93}AA",
            format!("sk-ant-api03-{}AA", fill("FAKEantJ9-", 93)), "{v}"),
        s("anthropic-admin-key", r"sk-ant-admin01-[a-zA-Z0-9_\-]{93}AA",
            format!("sk-ant-admin01-{}AA", fill("FAKEantK0_", 93)), "{v}"),
        s("aws-secret-access-key", r"[A-Za-z0-9+/]{40}",
            fill("FAKEawsSECRETfake+EXAMPLE/L1", 40), "aws_secret_access_key = {v}"),
        s("aws-secret-access-key", r"[A-Za-z0-9+/]{40}",
            fill("FAKEawsM2/EXAMPLEsecret+", 40), "\"SecretAccessKey\": \"{v}\""),
        s("aws-secret-access-key", r"[A-Za-z0-9+/]{40}",
            fill("FAKEawsN3+pairEXAMPLE/", 40), "AKIAFAKEFAKEFAKE2345:{v}"),
        s("github-pat", github, format!("ghp_{}", fill("FAKEghpO4", 36)), "{v}"),
        s("github-oauth", github, format!("gho_{}", fill("FAKEghoP5", 36)), "{v}"),
        s("github-app-token", github, format!("ghs_{}", fill("FAKEghsQ6", 36)), "{v}"),
        s("github-app-token", github, format!("ghu_{}", fill("FAKEghuR7", 36)), "{v}"),
        s("github-refresh-token", github, format!("ghr_{}", fill("FAKEghrS8", 36)), "{v}"),
        s("github-fine-grained-pat", r"github_pat_\w{82}",
            format!("github_pat_{}", fill("FAKEpatT9_", 82)), "{v}"),
        s("stripe-key", stripe, format!("sk_live_{}", fill("FAKEstripeU0", 24)), "{v}"),
        s("stripe-key", stripe, format!("rk_live_{}", fill("FAKEstripeV1", 24)), "{v}"),
        s("stripe-key", stripe, format!("sk_test_{}", fill("FAKEstripeW2", 24)), "{v}"),
        s("google-api-key", r"AIza[\w-]{35}", format!("AIza{}", fill("FAKEgoogX3-", 35)), "{v}"),
        s("slack-bot-token", r"xoxb-[0-9]{10,13}-[0-9]{10,13}[a-zA-Z0-9-]*",
            format!("xoxb-1234567890-1234567890-{}", fill("FAKEslackY4", 24)), "{v}"),
        s("slack-user-token", r"xox[pe](?:-[0-9]{10,13}){3}-[a-zA-Z0-9-]{28,34}",
            format!("xoxp-1234567890-1234567890-1234567890-{}", fill("FAKEslackZ5", 32)), "{v}"),
        s("slack-workspace-token", r"xox[ar]-(?:\d-)?[0-9a-zA-Z]{8,48}",
            format!("xoxa-2-{}", fill("FAKEslackA6", 40)), "{v}"),
        s("slack-app-token", r"(?i)xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+",
            format!("xapp-1-AFAKE07-1234567890-{}", fill("fakeslackb7", 40)), "{v}"),
        s("jwt", r"ey[a-zA-Z0-9]{17,}\.ey[a-zA-Z0-9/\\_-]{17,}\.(?:[a-zA-Z0-9/\\_-]{10,}={0,2})?",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJGQUtFLW5vdC1hLXJlYWwtdG9rZW4iLCJpYXQiOjF9.FAKEsignatureC8notREAL".into(), "{v}"),
        s("pem-private-key", r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[\s\S-]{64,}?KEY(?: BLOCK)?-----",
            format!(
                "-----BEGIN RSA PRIVATE KEY-----\n{}\n{}\n{}=\n-----END RSA PRIVATE KEY-----",
                fill("FAKEpemD9+fake/EXAMPLE", 64),
                fill("FAKEpemE0/notREAL+", 64),
                fill("FAKEpemF1", 30)
            ), "{v}"),
        s("vault-service-token", r"hvs\.[\w-]{90,120}",
            format!("hvs.{}", fill("FAKEvaultG2_", 95)), "{v}"),
        s("vault-batch-token", r"hvb\.[\w-]{138,300}",
            format!("hvb.{}", fill("FAKEvaultH3-", 140)), "{v}"),
        s("postgres-url-password", r"postgres(?:ql)?://[^:@/\s]+:([^@/\s]+)@",
            "FAKEpgPassw0rdI4-not-real".into(), "postgresql://keyfire:{v}@db.example.test:5432/app"),
        s("postgres-url-password", r"postgres(?:ql)?://[^:@/\s]+:([^@/\s]+)@",
            "FAKEpgJ5~secret".into(), "postgres://admin:{v}@127.0.0.1/postgres"),
        s("sendgrid-api-key", r"SG\.(?i)[a-z0-9=_\-\.]{66}",
            format!("SG.{}.{}", fill("FAKEsgK6", 22), fill("FAKEsgL7-", 43)), "{v}"),
        s("twilio-api-key", r"SK[0-9a-fA-F]{32}", format!("SK{}", fill("fa4e0fa4e1", 32)), "{v}"),
        s("twilio-auth-token", r"[0-9a-f]{32}",
            fill("fa4e2fa4e3", 32), "TWILIO_AUTH_TOKEN={v}"),
        s("bearer-token", r"[A-Za-z0-9\-._~+/]+=*",
            "FAKEbearerM8.not-REAL~0123".into(), "Authorization: Bearer {v}"),
    ]
}

/// Percent-encoding of a URL component: everything but RFC 3986's unreserved characters.
pub fn percent(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inside of a JSON string holding `text`.
pub fn json_escaped(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap();
    quoted[1..quoted.len() - 1].to_string()
}

/// The placements, by name, of a sample's text.
pub fn placements(text: &str) -> Vec<(&'static str, String)> {
    let json = serde_json::json!({ "key": text }).to_string();
    vec![
        ("standalone", format!(" {text} ")),
        ("name=value", format!("api_key={text}")),
        (
            "url path",
            format!("https://api.example.test/v1/keys/{text}"),
        ),
        ("x-api-key", format!("x-api-key={text}")),
        ("json", json.clone()),
        ("json-escaped", json_escaped(&json)),
        ("percent-encoded", format!("q={}", percent(text))),
    ]
}

/// The pieces of a value that must not survive in a text encoded with `encode`: the value
/// cut into 12-character pieces (the first few characters, a format's public prefix, may
/// stay).
pub fn needles(value: &str, encode: impl Fn(&str) -> String) -> Vec<String> {
    let chars: Vec<char> = value.chars().collect();
    let skip = value
        .find(['.', '_'])
        .map_or(3, |i| i + 1)
        .min(16)
        .min(chars.len() / 2);
    chars[skip..]
        .chunks(12)
        .filter(|c| c.len() >= 6)
        .map(|c| encode(&c.iter().collect::<String>()))
        .collect()
}

/// How a placement's text encodes the value inside it.
pub fn encoding_of(placement: &str) -> fn(&str) -> String {
    match placement {
        "json-escaped" => |v| json_escaped(&json_escaped(v)),
        "json" => json_escaped,
        "percent-encoded" => percent,
        _ => |v| v.to_string(),
    }
}

/// A corpus line naming the first piece of any sample that survived in `text`.
pub fn survivor(text: &str) -> Option<String> {
    for s in samples() {
        for (placement, _) in placements(&s.text()) {
            for needle in needles(&s.value, encoding_of(placement)) {
                if text.contains(&needle) {
                    return Some(format!("{} ({placement})", s.format));
                }
            }
        }
    }
    None
}

#[test]
fn every_sample_matches_its_published_pattern() {
    for s in samples() {
        let re = regex::RegexBuilder::new(&format!("^(?:{})$", s.published))
            .size_limit(1 << 26)
            .build()
            .unwrap();
        // A context sample's pattern may describe the context (a URL's userinfo).
        let matched = re.is_match(&s.value)
            || (s.context != "{v}"
                && regex::RegexBuilder::new(s.published)
                    .build()
                    .unwrap()
                    .is_match(&s.text()));
        assert!(
            matched,
            "{}: {} does not match {}",
            s.format,
            s.text(),
            s.published
        );
        assert!(
            s.value.to_ascii_lowercase().contains("fake") || s.value.contains("fa4e"),
            "{}: corpus values must be visibly fake",
            s.format
        );
    }
}

#[test]
fn no_sample_survives_the_scrubber_in_any_placement() {
    let r = keyfire::secret::Redactor::new();
    for s in samples() {
        for (placement, text) in placements(&s.text()) {
            let out = r.scrub(&text);
            for needle in needles(&s.value, encoding_of(placement)) {
                assert!(
                    !out.contains(&needle),
                    "{} survived as {placement}: {out}",
                    s.format
                );
            }
        }
    }
}

#[test]
fn the_recognizers_name_each_sample_and_never_print_it() {
    for s in samples() {
        let text = s.text();
        let found = keyfire::secret::recognize::find_secrets(&text).unwrap();
        assert!(!found.is_empty(), "{} not recognized", s.format);
        let debug = format!("{found:?}");
        for needle in needles(&s.value, |v| v.to_string()) {
            assert!(
                !debug.contains(&needle),
                "{}: Debug shows the value",
                s.format
            );
        }
    }
}
