//! Leak scanning (`keyfire scan`): find credentials in files, in a repository's history and
//! in other scanners' reports, and match each one to the inventory without writing it down.
//!
//! Where values come from:
//!
//! | source | module | what is read |
//! | --- | --- | --- |
//! | files and directories | [`files`] | every text file the walk reaches (`.gitignore` respected unless told otherwise), through the shared recognizers in [`crate::secret::recognize`] |
//! | a repository's history | [`history`] | the lines each commit reachable from any ref added, from `git log --all -p` |
//! | gitleaks, TruffleHog, GitHub secret scanning | [`reports`] | the scanner's own finding objects (field names cited there) |
//!
//! Every value found goes through one function, [`Matcher::judge`], while it is still in the
//! buffer it was read into; what comes out ([`Finding`]) holds the location, the format, a
//! hint (the prefix and last four characters, the form the inventory itself allows) and the
//! verdict, never the value. Buffers that held file contents are zeroed when dropped.

pub mod files;
pub mod github;
pub mod history;
pub mod matcher;
pub mod reports;
pub mod saved;
pub mod summary;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use matcher::{KeyState, Matcher, Verdict};
#[cfg(feature = "testing")]
pub use matcher::{MatchedBy, StoreKnowledge};
pub use saved::SavedScan;
pub use summary::{KeySummary, incident_for, summarize_keys};

/// Where a scanner found a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A file in a working tree or directory.
    File,
    /// A line added by a commit.
    Git,
    Gitleaks,
    Trufflehog,
    Github,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Git => "git",
            Self::Gitleaks => "gitleaks",
            Self::Trufflehog => "trufflehog",
            Self::Github => "github",
        }
    }
}

/// Where one value was found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Location {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_date: Option<DateTime<Utc>>,
    /// The committer date (git): with the author date, the earliest time the value was in
    /// the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_date: Option<DateTime<Utc>>,
    /// The report file the finding came from (scanner reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

impl Location {
    /// The earliest time the value is known to have been exposed at this location.
    pub fn earliest(&self) -> Option<DateTime<Utc>> {
        match (self.author_date, self.commit_date) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        }
    }

    /// `path:line`, then `(commit abc1234, 2026-01-02)` when the value came from history.
    pub fn display(&self) -> String {
        let mut s = self.path.clone();
        if let Some(l) = self.line {
            s.push_str(&format!(":{l}"));
        }
        let mut extra = Vec::new();
        if let Some(c) = &self.commit {
            extra.push(format!("commit {}", c.get(..12).unwrap_or(c)));
        }
        if let Some(d) = self.author_date {
            extra.push(d.format("%Y-%m-%d").to_string());
        }
        if let Some(r) = &self.report {
            extra.push(format!("report {r}"));
        }
        if !extra.is_empty() {
            s.push_str(&format!(" ({})", extra.join(", ")));
        }
        s
    }
}

/// What kind of file a value sat in. Rule 1 of the key-handling guide names `.env` files and
/// configuration files (and so Dockerfiles and notebooks, which carry configuration) as
/// places a key must never be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Env,
    Config,
    Dockerfile,
    Notebook,
    /// Source code, documentation, anything else.
    Other,
    /// A scanner report: the scanner decided the value is a secret.
    Report,
}

impl FileKind {
    /// Where every key-shaped value is a finding, even one no inventory key matches.
    pub fn holds_configuration(self) -> bool {
        !matches!(self, Self::Other)
    }

    /// Classify by file name only (the content is not consulted).
    pub fn of_path(path: &str) -> Self {
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let lower = name.to_ascii_lowercase();
        let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        if lower.starts_with(".env") || lower.ends_with(".env") || lower == "envrc" {
            return Self::Env;
        }
        if lower == ".envrc" {
            return Self::Env;
        }
        if lower.starts_with("dockerfile")
            || lower.ends_with(".dockerfile")
            || lower.starts_with("docker-compose")
            || lower.starts_with("compose.")
            || lower == "containerfile"
        {
            return Self::Dockerfile;
        }
        if ext == "ipynb" {
            return Self::Notebook;
        }
        const CONFIG_EXT: &[&str] = &[
            "toml",
            "yaml",
            "yml",
            "json",
            "jsonc",
            "ini",
            "cfg",
            "conf",
            "config",
            "properties",
            "xml",
            "tfvars",
            "tf",
            "hcl",
            "plist",
            "env",
            "secrets",
        ];
        const CONFIG_NAMES: &[&str] = &[
            ".npmrc",
            ".pypirc",
            ".netrc",
            "_netrc",
            ".pgpass",
            "credentials",
            ".git-credentials",
            ".dockercfg",
        ];
        if CONFIG_EXT.contains(&ext) || CONFIG_NAMES.contains(&lower.as_str()) {
            return Self::Config;
        }
        Self::Other
    }
}

/// A value as a scanner front-end hands it over: borrowed from the buffer it was read into.
pub struct Found<'a> {
    pub value: &'a str,
    /// Machine name of the format (`openai-project-key`, or the scanner's rule id).
    pub format: String,
    /// What an operator is told (`OpenAI project key`).
    pub what: String,
    /// The value names a credential without granting access (an AWS access key id): only a
    /// match with an inventory key's `provider_key_id` makes it a finding.
    pub identifier: bool,
    /// A prefix that carries no entropy and may be shown in the hint.
    pub prefix: Option<&'static str>,
    pub source: Source,
    pub location: Location,
    pub file_kind: FileKind,
    /// The report withheld the value (`gitleaks --redact`, TruffleHog without `Raw`).
    pub withheld: bool,
}

/// Generic formats that also match documentation and test code (a URL with a password, a
/// `Bearer` header in an example, a sample JWT). Outside configuration files they are
/// reported only when they belong to an inventory key.
const GENERIC_FORMATS: &[&str] = &[
    "bearer-token",
    "url-password",
    "postgres-url-password",
    "jwt",
    "twilio-auth-token",
];

/// One finding: where, which format, and what keyfire knows about it. Never the value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    pub source: Source,
    pub location: Location,
    pub file_kind: FileKind,
    pub format: String,
    pub what: String,
    /// Prefix and last four characters (or only the prefix for short values).
    pub hint: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

impl Finding {
    /// A finding that makes the scan fail: a live (or possibly live) inventory key, or a
    /// secret keyfire does not manage.
    pub fn is_alarm(&self) -> bool {
        self.verdict.is_alarm()
    }
}

/// Decide what one value is, and whether it is a finding at all.
pub fn judge(found: &Found<'_>, matcher: &Matcher) -> Option<Finding> {
    let verdict = if found.withheld {
        Verdict::withheld()
    } else {
        matcher.judge(found.value, found.identifier)
    };
    if verdict.key.is_none() && !found.withheld {
        // An identifier alone grants nothing, unless a scanner chose to report it (gitleaks'
        // `aws-access-token` rule reports only the id): then it is the scanner's finding.
        if found.identifier && found.file_kind != FileKind::Report {
            return None;
        }
        let generic = GENERIC_FORMATS.contains(&found.format.as_str());
        if generic && !found.file_kind.holds_configuration() {
            return None;
        }
    }
    let hint = if found.withheld {
        String::from("(value withheld by the report)")
    } else {
        hint_for(found.value, found.prefix)
    };
    Some(Finding {
        source: found.source,
        location: found.location.clone(),
        file_kind: found.file_kind,
        format: found.format.clone(),
        what: found.what.clone(),
        hint,
        verdict,
    })
}

/// `prefix...last4`, like the inventory's `hint`. Values too short to spare four characters
/// (twelve or fewer past the prefix) show only the prefix.
pub fn hint_for(value: &str, prefix: Option<&str>) -> String {
    let known = crate::secret::hint_of(value);
    let Some(p) = prefix.filter(|p| value.starts_with(*p)) else {
        return known;
    };
    let rest = value.len() - p.len();
    if rest <= 12 || !value.is_char_boundary(value.len() - 4) {
        return format!("{p}...");
    }
    format!("{p}...{}", &value[value.len() - 4..])
}

/// What to scan.
#[derive(Debug, Clone, Default)]
pub struct ScanRequest {
    pub paths: Vec<PathBuf>,
    /// Also every commit reachable from any ref of each path's repository.
    pub git: bool,
    /// Only commits not reachable from this revision.
    pub since: Option<String>,
    pub reports: Vec<PathBuf>,
    /// Read files `.gitignore` excludes too.
    pub no_ignore: bool,
}

/// Every finding, ordered by key (matched first), then location; and what was read.
#[derive(Debug, Clone, Serialize)]
pub struct ScanOutcome {
    pub findings: Vec<Finding>,
    pub coverage: Coverage,
}

/// Run a scan: reports first (a malformed one stops everything before any other work), then
/// the files, then the history. Values go from the buffers to [`judge`] and no further.
pub fn scan(req: &ScanRequest, matcher: &Matcher) -> Result<ScanOutcome, ScanError> {
    for p in req.paths.iter().chain(&req.reports) {
        if std::fs::symlink_metadata(p).is_err() {
            return Err(ScanError::NoSuchPath(p.clone()));
        }
    }
    let findings = std::sync::Mutex::new(Vec::new());
    let on = |f: Found<'_>| {
        if let Some(finding) = judge(&f, matcher)
            && let Ok(mut all) = findings.lock()
        {
            all.push(finding);
        }
    };
    let mut coverage = Coverage::default();
    for r in &req.reports {
        let (_, entries) = reports::read_report(r, &on)?;
        coverage.reports += 1;
        coverage.report_entries += entries;
    }
    if !req.paths.is_empty() {
        let files = files::scan_paths(&req.paths, req.no_ignore, &on)?;
        coverage.files = files.files;
        coverage.bytes = files.bytes;
        coverage.skipped_binary = files.skipped_binary;
        coverage.skipped_large = files.skipped_large;
        coverage.unreadable = files.unreadable;
    }
    if req.git {
        let mut seen = Vec::new();
        for p in &req.paths {
            // A file stands for the repository it is in.
            let dir = match p.parent() {
                Some(parent) if p.is_file() => {
                    if parent.as_os_str().is_empty() {
                        std::path::Path::new(".")
                    } else {
                        parent
                    }
                }
                _ => p.as_path(),
            };
            let repo = history::repository_of(dir)?;
            if seen.contains(&repo) {
                continue;
            }
            seen.push(repo);
            let h = history::scan_history(dir, req.since.as_deref(), &on)?;
            coverage.commits += h.commits;
            coverage.history_bytes += h.bytes;
        }
    }
    let mut findings = findings.into_inner().map_err(|_| ScanError::Recognizers)?;
    sort_findings(&mut findings);
    // A file named on the command line inside a directory also walked is read twice.
    findings.dedup_by(|a, b| {
        a.source == b.source
            && a.location == b.location
            && a.format == b.format
            && a.hint == b.hint
            && a.verdict == b.verdict
    });
    Ok(ScanOutcome { findings, coverage })
}

/// Matched keys first (by key id), then unmatched; within each, by source and location.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (
            a.verdict.key.is_none(),
            &a.verdict.key,
            a.source.as_str(),
            &a.location.path,
            a.location.line,
            &a.location.commit,
            &a.format,
            &a.hint,
        )
            .cmp(&(
                b.verdict.key.is_none(),
                &b.verdict.key,
                b.source.as_str(),
                &b.location.path,
                b.location.line,
                &b.location.commit,
                &b.format,
                &b.hint,
            ))
    });
}

/// Counts of what a scan read, so an operator can tell "clean" from "read nothing".
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Coverage {
    pub files: u64,
    pub bytes: u64,
    pub commits: u64,
    pub history_bytes: u64,
    pub reports: u64,
    pub report_entries: u64,
    /// Files skipped as binary (a NUL byte in the first 8 KiB).
    pub skipped_binary: u64,
    /// Files above the size limit.
    pub skipped_large: Vec<String>,
    /// Files that could not be read: the scan of them is incomplete, never clean.
    pub unreadable: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0}: no such file or directory")]
    NoSuchPath(PathBuf),
    #[error("{0}: not a git repository (--git needs one)")]
    NotARepo(PathBuf),
    #[error("--since {rev}: not a commit in {repo}")]
    BadRevision { repo: PathBuf, rev: String },
    #[error("git failed in {repo}: {reason}")]
    Git { repo: PathBuf, reason: String },
    #[error("{file}:{line}:{column}: {reason}")]
    Report {
        file: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("--github {0}: expected OWNER/REPO")]
    BadGithubRepo(String),
    #[error("GitHub secret-scanning alerts of {repo} could not be read: {reason}")]
    Github { repo: String, reason: String },
    #[error("{0}: cannot read: {1}")]
    Io(PathBuf, String),
    #[error("the key-format recognizers are unavailable")]
    Recognizers,
}

impl ScanError {
    /// Input errors exit 2: nothing was scanned.
    pub fn is_input_error(&self) -> bool {
        !matches!(
            self,
            Self::Git { .. } | Self::Github { .. } | Self::Recognizers
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_kinds_follow_the_name() {
        for (p, k) in [
            (".env", FileKind::Env),
            ("app/.env.production", FileKind::Env),
            ("prod.env", FileKind::Env),
            ("Dockerfile", FileKind::Dockerfile),
            ("build/api.dockerfile", FileKind::Dockerfile),
            ("docker-compose.yml", FileKind::Dockerfile),
            ("nb/explore.ipynb", FileKind::Notebook),
            ("config/settings.toml", FileKind::Config),
            ("values.yaml", FileKind::Config),
            ("src/main.rs", FileKind::Other),
            ("README.md", FileKind::Other),
        ] {
            assert_eq!(FileKind::of_path(p), k, "{p}");
        }
    }

    #[test]
    fn hints_keep_prefix_and_last_four_only() {
        assert_eq!(
            hint_for("sk-proj-FAKEfakeFAKEfake0123abcd", Some("sk-proj-")),
            "sk-proj-...abcd"
        );
        assert_eq!(hint_for("ghp_short1234", Some("ghp_")), "ghp_...");
        assert_eq!(hint_for("fk-CANARYoldkey3Fg6Hj9K", None), "fk-...Hj9K");
    }

    #[test]
    fn identifiers_count_only_when_matched_or_reported() {
        let inv = crate::inventory::load_str(
            std::path::Path::new("i.toml"),
            "schema = 1\n[[providers]]\nid = \"p\"\nkind = \"manual\"\n[[agents]]\nid = \"a\"\n[[keys]]\nid = \"k\"\nagents = [\"a\"]\nprovider = \"p\"\nprovider_key_id = \"AKIAFAKEFAKEFAKE2345\"\n",
        )
        .unwrap();
        let m = Matcher::new(&inv, Vec::new());
        let found = |value, file_kind| Found {
            value,
            format: "aws-access-key-id".into(),
            what: "AWS access key id".into(),
            identifier: true,
            prefix: None,
            source: Source::File,
            location: Location::default(),
            file_kind,
            withheld: false,
        };
        let hit = judge(&found("AKIAFAKEFAKEFAKE2345", FileKind::Env), &m).unwrap();
        assert_eq!(hit.verdict.key.as_deref(), Some("k"));
        assert!(judge(&found("AKIAFAKEFAKEFAKE9999", FileKind::Env), &m).is_none());
        let reported = judge(&found("AKIAFAKEFAKEFAKE9999", FileKind::Report), &m).unwrap();
        assert_eq!(reported.verdict.status, KeyState::Unmanaged);
    }

    #[test]
    fn earliest_takes_the_older_of_author_and_committer_dates() {
        let a = "2026-01-02T00:00:00Z".parse().ok();
        let c = "2026-01-01T00:00:00Z".parse().ok();
        let loc = Location {
            author_date: a,
            commit_date: c,
            ..Default::default()
        };
        assert_eq!(loc.earliest(), c);
    }
}
