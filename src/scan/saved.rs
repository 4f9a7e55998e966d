//! The last scan, kept in the data directory (`scans/last.json`) for the console's Leaks
//! view: when it ran, over what, and its findings and key summaries. Like every finding,
//! never a value: locations, formats, hints, verdicts, blast radii and commit dates.
//!
//! Written 0600 through a temp file and a rename ([`crate::fsutil::write_atomic`]), and through
//! the recognizers' scrubber first (a report can put anything in a path field). A file from
//! a newer keyfire, or one that does not parse, is an error the reader shows, never a guess.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::summary::{KeySummary, Totals};
use super::{Coverage, Finding, ScanOutcome, ScanRequest};

/// The format this keyfire writes, and the newest it reads.
pub const VERSION: u32 = 1;

/// One scan as saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedScan {
    pub version: u32,
    pub ran_at: DateTime<Utc>,
    /// The files and directories read, absolute where they could be resolved.
    pub paths: Vec<String>,
    /// Whether each path's repository history was read too (`--git`).
    pub git: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default)]
    pub reports: Vec<String>,
    /// `--github OWNER/REPO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<String>,
    pub findings: Vec<Finding>,
    pub keys: Vec<KeySummary>,
    pub totals: Totals,
    pub coverage: Coverage,
}

impl SavedScan {
    /// The scan `req` (and `--github REPO`) ran at `ran_at`, as the Leaks view keeps it.
    pub fn of(
        ran_at: DateTime<Utc>,
        req: &ScanRequest,
        github: Option<String>,
        outcome: &ScanOutcome,
        keys: &[KeySummary],
        totals: &Totals,
    ) -> Self {
        let shown = |p: &PathBuf| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        };
        Self {
            version: VERSION,
            ran_at,
            paths: req.paths.iter().map(shown).collect(),
            git: req.git,
            since: req.since.clone(),
            reports: req.reports.iter().map(shown).collect(),
            github,
            findings: outcome.findings.clone(),
            keys: keys.to_vec(),
            totals: totals.clone(),
            coverage: outcome.coverage.clone(),
        }
    }

    /// What was read, in one line: paths, history, reports.
    #[cfg(feature = "tui")]
    pub fn scope(&self) -> String {
        let mut parts = Vec::new();
        if !self.paths.is_empty() {
            parts.push(self.paths.join(", "));
        }
        if self.git {
            parts.push(match &self.since {
                Some(rev) => format!("git history since {rev}"),
                None => "git history".into(),
            });
        }
        if !self.reports.is_empty() {
            parts.push(format!("reports {}", self.reports.join(", ")));
        }
        if let Some(repo) = &self.github {
            parts.push(format!("GitHub alerts of {repo}"));
        }
        parts.join(" · ")
    }
}

#[derive(Debug, thiserror::Error)]
// Only the console reads a saved scan.
#[cfg_attr(not(feature = "tui"), allow(dead_code))]
pub enum SavedScanError {
    #[error("{path}: cannot read the last scan: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: not a saved scan keyfire can read: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "{path}: written by a newer keyfire (format {found}; this one reads up to {VERSION}): run the newer keyfire, or `keyfire scan` again"
    )]
    Newer { path: PathBuf, found: u32 },
    #[error("{path}: cannot save the scan: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Where the last scan lives.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("scans").join("last.json")
}

/// Replace the last scan with `scan`.
pub fn save(data_dir: &Path, scan: &SavedScan) -> Result<PathBuf, SavedScanError> {
    let file = path(data_dir);
    let failed = |e: &dyn std::fmt::Display| SavedScanError::Write {
        path: file.clone(),
        reason: e.to_string(),
    };
    let text = serde_json::to_string_pretty(scan).map_err(|e| failed(&e))?;
    // Defence in depth, as for `--json`: the pass leaves the JSON valid.
    let text = crate::secret::scrub_formats(&text);
    if let Some(dir) = file.parent() {
        crate::fsutil::private_dir(dir).map_err(|e| failed(&e))?;
    }
    crate::fsutil::write_atomic(&file, text.as_bytes()).map_err(|e| failed(&e))?;
    Ok(file)
}

/// The last scan; `Ok(None)` when no scan has run yet.
#[cfg(feature = "tui")]
pub fn load(data_dir: &Path) -> Result<Option<SavedScan>, SavedScanError> {
    let file = path(data_dir);
    let bytes = match crate::fsutil::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(SavedScanError::Read {
                path: file,
                reason: e.to_string(),
            });
        }
    };
    // The version first, so a newer file says so instead of failing on a field it added.
    #[derive(Deserialize)]
    struct Head {
        version: u32,
    }
    let invalid = |e: serde_json::Error| SavedScanError::Invalid {
        path: file.clone(),
        reason: parse_error(&e),
    };
    let head: Head = serde_json::from_slice(&bytes).map_err(invalid)?;
    if head.version > VERSION {
        return Err(SavedScanError::Newer {
            path: file,
            found: head.version,
        });
    }
    serde_json::from_slice(&bytes).map(Some).map_err(invalid)
}

/// Where and how the file is wrong, never what it holds there (serde's own messages quote
/// the offending value).
#[cfg(feature = "tui")]
fn parse_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Syntax => "not valid JSON",
        Category::Data => "a field is missing or has the wrong type",
        Category::Eof => "the file ends early",
        Category::Io => "read error",
    };
    format!("line {}, column {}: {what}", e.line(), e.column())
}

#[cfg(all(test, feature = "tui"))]
mod tests {
    use super::*;

    fn sample() -> SavedScan {
        SavedScan {
            version: VERSION,
            ran_at: "2026-11-26T03:00:00Z".parse().unwrap(),
            paths: vec!["/srv/app".into()],
            git: true,
            since: None,
            reports: Vec::new(),
            github: None,
            findings: Vec::new(),
            keys: Vec::new(),
            totals: Totals::default(),
            coverage: Coverage::default(),
        }
    }

    #[test]
    fn round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none(), "no scan yet");
        let file = save(dir.path(), &sample()).unwrap();
        let back = load(dir.path()).unwrap().unwrap();
        assert_eq!(back.scope(), "/srv/app · git history");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_newer_or_broken_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = save(dir.path(), &sample()).unwrap();
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("\"version\": 1", "\"version\": 7");
        std::fs::write(&file, text).unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("newer keyfire (format 7"), "{err}");
        assert!(err.contains("last.json"), "{err}");
        std::fs::write(&file, "{\"version\": 1, \"ran_at\": 3").unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a saved scan"), "{err}");
    }
}
