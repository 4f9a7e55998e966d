//! Other scanners' reports, read from a file. The format is recognized from the content.
//!
//! | scanner | shape | fields read | source |
//! | --- | --- | --- | --- |
//! | gitleaks (`--report-format json`) | one JSON array of findings | `RuleID`, `Description`, `StartLine`, `Secret`, `File`, `Commit`, `Date` (`Match` is not read) | `report.Finding` in gitleaks/gitleaks `report/finding.go` (v8: Go field names are the JSON names; `Line` is `json:"-"`); `--redact` replaces `Secret` with `REDACTED` or a masked `abc...` |
//! | TruffleHog v3 (`--json`) | JSON Lines, one result per line | `DetectorName`, `Verified`, `Raw`, `RawV2`, `SourceMetadata.Data.<Source>.{file, line, commit, timestamp}` | `PrintJSON` in trufflesecurity/trufflehog `pkg/output/json.go`; the `Git` and `Filesystem` messages of `proto/source_metadata.proto` (`commit`, `file`, `email`, `repository`, `timestamp`, `line`). AWS results carry the key id in `Raw` and id + secret in `RawV2`: the part after the id is matched too |
//! | GitHub secret scanning | the REST API's alert objects: an array from `GET /repos/{owner}/{repo}/secret-scanning/alerts`, or one alert | `number`, `state`, `secret_type`, `secret_type_display_name`, `secret`, `html_url`, `first_location_detected.{path, start_line, commit_sha}` | `secret-scanning-alert` in github/rest-api-description; `first_location_detected` and `has_more_locations` GA since 2025-06-24 (GitHub changelog); `hide_secret=true` omits `secret` |
//!
//! Whatever a report holds is read into zeroizing memory, judged, and dropped; a malformed
//! report is an input error naming the file, line and column, never quoting the text.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{FileKind, Found, Location, ScanError, Source};
use crate::secret::Secret;

/// Reports above this size are refused (a report is findings, not data).
pub const MAX_REPORT_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Gitleaks,
    Trufflehog,
    Github,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GitleaksFinding {
    #[serde(rename = "RuleID")]
    rule_id: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    start_line: Option<u64>,
    #[serde(default, deserialize_with = "secret")]
    secret: Option<Secret>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    date: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrufflehogResult {
    detector_name: String,
    #[serde(default)]
    verified: bool,
    #[serde(default, deserialize_with = "secret")]
    raw: Option<Secret>,
    #[serde(default, rename = "RawV2", deserialize_with = "secret")]
    raw_v2: Option<Secret>,
    #[serde(default)]
    source_metadata: Option<TrufflehogMetadata>,
    #[serde(default)]
    source_name: Option<String>,
}

#[derive(Deserialize)]
struct TrufflehogMetadata {
    /// One entry, named by the source (`Git`, `Filesystem`, `Github`, ...).
    #[serde(rename = "Data", default)]
    data: std::collections::BTreeMap<String, TrufflehogPlace>,
}

#[derive(Deserialize, Default)]
struct TrufflehogPlace {
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    line: Option<u64>,
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    link: Option<String>,
}

#[derive(Deserialize)]
struct GithubAlert {
    number: u64,
    secret_type: String,
    #[serde(default)]
    secret_type_display_name: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    secret: Option<Secret>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    first_location_detected: Option<GithubLocation>,
}

#[derive(Deserialize, Default)]
struct GithubLocation {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    start_line: Option<u64>,
    #[serde(default)]
    commit_sha: Option<String>,
}

/// Read one report and hand every finding in it to `on`. Returns (kind, entries).
pub fn read_report(
    path: &Path,
    on: &(dyn Fn(Found<'_>) + Sync),
) -> Result<(ReportKind, u64), ScanError> {
    let io = |e: std::io::Error| ScanError::Io(path.to_path_buf(), e.to_string());
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ScanError::NoSuchPath(path.to_path_buf()),
        _ => io(e),
    })?;
    if meta.len() > MAX_REPORT_BYTES {
        return Err(report_error(
            path,
            1,
            1,
            "the report is larger than 512 MiB",
        ));
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidData {
            report_error(path, 1, 1, "the report is not UTF-8 text")
        } else {
            io(e)
        }
    })?);
    parse(path, &text, on)
}

fn report_error(file: &Path, line: usize, column: usize, reason: &str) -> ScanError {
    ScanError::Report {
        file: file.to_path_buf(),
        line,
        column,
        reason: reason.to_string(),
    }
}

/// A JSON error as file:line:column and a reason that never quotes the input (serde's
/// "invalid type: string \"...\"" would).
fn json_error(file: &Path, line_offset: usize, e: &serde_json::Error) -> ScanError {
    let msg = e.to_string();
    let reason = if let Some(field) = msg
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        format!("missing field `{field}`")
    } else {
        match e.classify() {
            serde_json::error::Category::Syntax => "not valid JSON".into(),
            serde_json::error::Category::Eof => "the JSON ends early".into(),
            serde_json::error::Category::Data => {
                "a field has the wrong type (value not shown: it may be a secret)".into()
            }
            serde_json::error::Category::Io => "cannot read".into(),
        }
    };
    report_error(file, line_offset + e.line(), e.column(), &reason)
}

fn detect(text: &str) -> Option<ReportKind> {
    let trimmed = text.trim_start();
    if let Some(inner) = trimmed.strip_prefix('[') {
        // The first object's keys tell gitleaks from GitHub.
        if inner.trim_start().starts_with(']') {
            return Some(ReportKind::Gitleaks);
        }
        if text.contains("\"RuleID\"") {
            return Some(ReportKind::Gitleaks);
        }
        if text.contains("\"secret_type\"") {
            return Some(ReportKind::Github);
        }
        return None;
    }
    if trimmed.starts_with('{') {
        let first = trimmed.lines().next().unwrap_or("");
        if first.contains("\"DetectorName\"") || first.contains("\"SourceMetadata\"") {
            return Some(ReportKind::Trufflehog);
        }
        if text.contains("\"secret_type\"") {
            return Some(ReportKind::Github);
        }
        return None;
    }
    if trimmed.is_empty() {
        // TruffleHog prints nothing when it finds nothing.
        return Some(ReportKind::Trufflehog);
    }
    None
}

fn parse(
    path: &Path,
    text: &str,
    on: &(dyn Fn(Found<'_>) + Sync),
) -> Result<(ReportKind, u64), ScanError> {
    let kind = detect(text).ok_or_else(|| {
        report_error(
            path,
            1,
            1,
            "not a gitleaks JSON report, TruffleHog JSON lines or GitHub secret-scanning alerts",
        )
    })?;
    let report = path.display().to_string();
    let mut entries = 0u64;
    match kind {
        ReportKind::Gitleaks => {
            let findings: Vec<GitleaksFinding> =
                serde_json::from_str(text).map_err(|e| json_error(path, 0, &e))?;
            for f in findings {
                entries += 1;
                let loc = Location {
                    path: f.file.unwrap_or_default(),
                    line: f.start_line.filter(|l| *l > 0),
                    commit: f.commit.filter(|c| !c.is_empty()),
                    author_date: f.date.as_deref().and_then(parse_date),
                    commit_date: None,
                    report: Some(report.clone()),
                };
                let what = f
                    .description
                    .clone()
                    .unwrap_or_else(|| format!("gitleaks rule {}", f.rule_id));
                emit(
                    on,
                    f.secret.as_ref(),
                    &format!("gitleaks:{}", f.rule_id),
                    &what,
                    Source::Gitleaks,
                    loc,
                );
            }
        }
        ReportKind::Trufflehog => {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let r: TrufflehogResult =
                    serde_json::from_str(line).map_err(|e| json_error(path, i, &e))?;
                entries += 1;
                let place = r
                    .source_metadata
                    .and_then(|m| m.data.into_values().next())
                    .unwrap_or_default();
                let loc = Location {
                    path: place
                        .file
                        .or(place.link)
                        .or(r.source_name)
                        .unwrap_or_default(),
                    line: place.line.filter(|l| *l > 0),
                    commit: place.commit.filter(|c| !c.is_empty()),
                    author_date: place.timestamp.as_deref().and_then(parse_date),
                    commit_date: None,
                    report: Some(report.clone()),
                };
                let what = format!(
                    "{} ({})",
                    r.detector_name,
                    if r.verified {
                        "verified live by TruffleHog"
                    } else {
                        "unverified"
                    }
                );
                let format = format!("trufflehog:{}", r.detector_name);
                emit(
                    on,
                    r.raw.as_ref(),
                    &format,
                    &what,
                    Source::Trufflehog,
                    loc.clone(),
                );
                // RawV2 = id + secret for multi-part credentials (AWS): the secret half.
                if let (Some(raw), Some(v2)) = (&r.raw, &r.raw_v2)
                    && let Some(rest) = v2.expose().strip_prefix(raw.expose())
                    && !rest.is_empty()
                {
                    let rest = Secret::new(rest.trim_start_matches([':', ' ']));
                    emit(on, Some(&rest), &format, &what, Source::Trufflehog, loc);
                }
            }
        }
        ReportKind::Github => {
            let trimmed = text.trim_start();
            let alerts: Vec<GithubAlert> = if trimmed.starts_with('[') {
                serde_json::from_str(text).map_err(|e| json_error(path, 0, &e))?
            } else {
                vec![serde_json::from_str(text).map_err(|e| json_error(path, 0, &e))?]
            };
            entries += emit_github(&report, alerts, on);
        }
    }
    Ok((kind, entries))
}

/// One page of the REST API's alert array (`--github`), named `label` in locations.
pub(crate) fn parse_github_page(
    label: &Path,
    text: &str,
    on: &(dyn Fn(Found<'_>) + Sync),
) -> Result<u64, ScanError> {
    let alerts: Vec<GithubAlert> =
        serde_json::from_str(text).map_err(|e| json_error(label, 0, &e))?;
    Ok(emit_github(&label.display().to_string(), alerts, on))
}

fn emit_github(report: &str, alerts: Vec<GithubAlert>, on: &(dyn Fn(Found<'_>) + Sync)) -> u64 {
    let mut entries = 0;
    for a in alerts {
        entries += 1;
        let first = a.first_location_detected.unwrap_or_default();
        let loc = Location {
            path: first
                .path
                .or(a.html_url)
                .unwrap_or_else(|| format!("alert #{}", a.number)),
            line: first.start_line.filter(|l| *l > 0),
            commit: first.commit_sha,
            author_date: None,
            commit_date: None,
            report: Some(report.to_string()),
        };
        let what = format!(
            "{} (GitHub alert #{}{})",
            a.secret_type_display_name
                .as_deref()
                .unwrap_or(&a.secret_type),
            a.number,
            a.state.map(|s| format!(", {s}")).unwrap_or_default()
        );
        emit(
            on,
            a.secret.as_ref(),
            &format!("github:{}", a.secret_type),
            &what,
            Source::Github,
            loc,
        );
    }
    entries
}

/// A value a scanner reported. A withheld value (`REDACTED`, gitleaks' masked `abc...`, an
/// empty field) cannot be matched but is still a finding.
fn emit(
    on: &(dyn Fn(Found<'_>) + Sync),
    value: Option<&Secret>,
    format: &str,
    what: &str,
    source: Source,
    location: Location,
) {
    let v = value.map(Secret::expose).unwrap_or("").trim();
    let withheld = v.is_empty() || v == "REDACTED" || v.ends_with("...");
    // The shared recognizers name the format where they can, and show its prefix in the hint.
    let recognized = if withheld {
        None
    } else {
        crate::secret::recognize::find(v)
            .ok()
            .and_then(|r| r.into_iter().find(|r| r.range == (0..v.len())))
    };
    on(Found {
        value: if withheld { "" } else { v },
        format: format.to_string(),
        what: what.to_string(),
        identifier: recognized.as_ref().is_some_and(|r| {
            r.format.sensitivity == crate::secret::recognize::Sensitivity::Identifier
        }),
        prefix: recognized.and_then(|r| r.format.prefix),
        source,
        location,
        file_kind: FileKind::Report,
        withheld,
    });
}

/// RFC 3339 (gitleaks, GitHub), or git's `2006-01-02 15:04:05 -0700` (TruffleHog's Git
/// `timestamp`).
fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S %z"))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// (format, path, line, withheld) of each finding.
    type Seen = (String, String, Option<u64>, bool);

    fn read(text: &str) -> Result<Vec<Seen>, ScanError> {
        let seen = Mutex::new(Vec::new());
        let on = |f: Found<'_>| {
            seen.lock().unwrap().push((
                f.format.clone(),
                f.location.path.clone(),
                f.location.line,
                f.withheld,
            ))
        };
        parse(Path::new("r.json"), text, &on)?;
        Ok(seen.into_inner().unwrap())
    }

    #[test]
    fn gitleaks_trufflehog_and_github_shapes() {
        let g = r#"[{"RuleID":"openai-api-key","Description":"OpenAI","StartLine":3,"EndLine":3,"StartColumn":1,"EndColumn":9,"Match":"k","Secret":"sk-proj-FAKEfakeFAKEfake0123456789","File":"a.py","SymlinkFile":"","Commit":"abc","Entropy":4.1,"Author":"a","Email":"e","Date":"2026-01-02T03:04:05Z","Message":"m","Tags":[],"Fingerprint":"abc:a.py:openai-api-key:3"}]"#;
        assert_eq!(
            read(g).unwrap(),
            [(
                "gitleaks:openai-api-key".into(),
                "a.py".into(),
                Some(3),
                false
            )]
        );
        let t = "{\"SourceMetadata\":{\"Data\":{\"Filesystem\":{\"file\":\"b.env\",\"line\":2}}},\"SourceID\":1,\"SourceType\":15,\"SourceName\":\"trufflehog - filesystem\",\"DetectorType\":1,\"DetectorName\":\"OpenAI\",\"DecoderName\":\"PLAIN\",\"Verified\":false,\"Raw\":\"sk-proj-FAKEfakeFAKEfake0123456789\",\"RawV2\":\"\",\"Redacted\":\"\",\"ExtraData\":null,\"StructuredData\":null}\n";
        assert_eq!(
            read(t).unwrap(),
            [("trufflehog:OpenAI".into(), "b.env".into(), Some(2), false)]
        );
        let h = r#"[{"number":2,"created_at":"2026-01-02T03:04:05Z","state":"open","secret_type":"openai_api_key","secret_type_display_name":"OpenAI API Key","secret":"sk-proj-FAKEfakeFAKEfake0123456789","first_location_detected":{"path":"c.py","start_line":7,"end_line":7,"start_column":1,"end_column":40,"blob_sha":"b","commit_sha":"c"}}]"#;
        assert_eq!(
            read(h).unwrap(),
            [(
                "github:openai_api_key".into(),
                "c.py".into(),
                Some(7),
                false
            )]
        );
        let redacted = r#"[{"RuleID":"x","Secret":"REDACTED","File":"d"}]"#;
        assert!(read(redacted).unwrap()[0].3);
        assert!(read("").unwrap().is_empty());
        assert!(read("[]").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_place_and_never_the_value() {
        let bad = "[{\"RuleID\": 5, \"Secret\": \"sk-proj-FAKEfakeFAKEfake0123456789\"}]";
        let e = read(bad).unwrap_err().to_string();
        assert!(e.starts_with("r.json:1:"), "{e}");
        assert!(!e.contains("FAKEfake"), "{e}");
        let bad_type =
            "[{\"RuleID\": \"x\", \"StartLine\": \"sk-proj-FAKEfakeFAKEfake0123456789\"}]";
        let e = read(bad_type).unwrap_err().to_string();
        assert!(!e.contains("FAKEfake"), "{e}");
        let lines = "{\"DetectorName\":\"A\"}\n{\"DetectorName\":\n";
        let e = read(lines).unwrap_err().to_string();
        assert!(e.starts_with("r.json:2:"), "{e}");
        let e = read("<html>").unwrap_err().to_string();
        assert!(e.contains("not a gitleaks"), "{e}");
        let missing = r#"[{"RuleID":"x","Secret":"REDACTED"},{"Secret":"x"}]"#;
        assert!(
            read(missing)
                .unwrap_err()
                .to_string()
                .contains("missing field `RuleID`")
        );
    }
}
