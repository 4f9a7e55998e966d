//! A repository's history: every line added by every commit reachable from any ref, read
//! from `git` itself as a subprocess (no object parsing here):
//!
//! ```text
//! git log --all [--not REV] -p --unified=0 --no-renames --no-ext-diff --no-textconv
//!     --src-prefix=a/ --dst-prefix=b/ --format=%x01%H %aI %cI
//! ```
//!
//! Output shape, from git's documentation (`git-log(1)` "PRETTY FORMATS" for `%H`, `%aI`,
//! `%cI` and `%x01`; `git-diff(1)` "GENERATING PATCH TEXT WITH -P" and "combined diff
//! format" for the patch): a `\x01`-led line per commit, then per file `diff --git`, extended
//! headers, `--- a/PATH` and `+++ b/PATH` (`/dev/null` for a deleted file), and hunks
//! `@@ -OLD[,N] +NEW[,M] @@` followed by exactly N `-` lines and M `+` lines (with
//! `--unified=0` there is no context). Counting the hunk's lines is what tells an added line
//! `+++ x` from a file header. Merge commits print no patch without `-m`/`-c`: their parents'
//! commits carry the lines. `core.quotePath=false` keeps non-ASCII paths readable; paths with
//! control characters or quotes arrive C-quoted and are unquoted here.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use super::{FileKind, Found, Location, ScanError, Source};
use crate::secret::recognize::Sensitivity;

#[derive(Debug, Clone, Default)]
pub struct HistoryCoverage {
    pub commits: u64,
    pub bytes: u64,
}

/// Scan the history of the repository at `repo`; with `since`, only commits not reachable
/// from that revision.
pub fn scan_history(
    repo: &Path,
    since: Option<&str>,
    on: &(dyn Fn(Found<'_>) + Sync),
) -> Result<HistoryCoverage, ScanError> {
    if !repo.exists() {
        return Err(ScanError::NoSuchPath(repo.to_path_buf()));
    }
    let inside = git(repo)
        .args(["rev-parse", "--git-dir"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| git_failed(repo, &e.to_string()))?;
    if !inside.success() {
        return Err(ScanError::NotARepo(repo.to_path_buf()));
    }
    let mut args: Vec<String> = vec![
        "log".into(),
        "--all".into(),
        "--no-color".into(),
        "--no-ext-diff".into(),
        "--no-textconv".into(),
        "--no-renames".into(),
        "-p".into(),
        "--unified=0".into(),
        "--src-prefix=a/".into(),
        "--dst-prefix=b/".into(),
        "--format=%x01%H %aI %cI".into(),
    ];
    if let Some(rev) = since {
        let ok = !rev.starts_with('-')
            && git(repo)
                .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
                .arg(format!("{rev}^{{commit}}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            return Err(ScanError::BadRevision {
                repo: repo.to_path_buf(),
                rev: rev.to_string(),
            });
        }
        args.push("--not".into());
        args.push(rev.to_string());
    }
    let mut child = git(repo)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| git_failed(repo, &e.to_string()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| git_failed(repo, "no output pipe"))?;
    // stderr is read on its own thread so that a chatty git never blocks on a full pipe.
    let stderr = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stderr {
            let _ = std::io::Read::read_to_string(&mut s, &mut text);
        }
        text
    });
    let mut parser = Parser::new(on);
    let parsed = parser.read(BufReader::with_capacity(1 << 20, stdout));
    let status = child.wait().map_err(|e| git_failed(repo, &e.to_string()))?;
    let err_text = errors.join().unwrap_or_default();
    parsed?;
    if !status.success() {
        let reason =
            crate::secret::scrub_formats(crate::http::truncate(err_text.trim(), 300).as_str());
        return Err(git_failed(repo, &format!("{status}: {reason}")));
    }
    Ok(parser.coverage)
}

/// The repository a path belongs to (its absolute git directory), so that two paths in one
/// repository have its history read once.
pub fn repository_of(path: &Path) -> Result<PathBuf, ScanError> {
    if !path.exists() {
        return Err(ScanError::NoSuchPath(path.to_path_buf()));
    }
    let out = git(path)
        .args(["rev-parse", "--absolute-git-dir"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| git_failed(path, &e.to_string()))?;
    if !out.status.success() {
        return Err(ScanError::NotARepo(path.to_path_buf()));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn git(repo: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(repo)
        .args([
            "-c",
            "core.quotePath=false",
            "-c",
            "log.showSignature=false",
            "-c",
            "diff.noprefix=false",
        ])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PAGER", "cat")
        .stdin(Stdio::null());
    c
}

fn git_failed(repo: &Path, reason: &str) -> ScanError {
    ScanError::Git {
        repo: repo.to_path_buf(),
        reason: reason.to_string(),
    }
}

#[derive(Clone)]
struct Commit {
    hash: String,
    author: Option<DateTime<Utc>>,
    committer: Option<DateTime<Utc>>,
}

/// The state machine over `git log -p --unified=0` output.
struct Parser<'a> {
    on: &'a (dyn Fn(Found<'_>) + Sync),
    commit: Option<Commit>,
    path: Option<String>,
    /// Lines still to come in the current hunk: (removed, added).
    hunk: (u64, u64),
    next_line: u64,
    /// The current file's added lines, joined, and where each starts.
    added: Zeroizing<String>,
    starts: Vec<(usize, u64)>,
    coverage: HistoryCoverage,
}

impl<'a> Parser<'a> {
    fn new(on: &'a (dyn Fn(Found<'_>) + Sync)) -> Self {
        Self {
            on,
            commit: None,
            path: None,
            hunk: (0, 0),
            next_line: 0,
            added: Zeroizing::new(String::new()),
            starts: Vec::new(),
            coverage: HistoryCoverage::default(),
        }
    }

    fn read(&mut self, mut input: impl BufRead) -> Result<(), ScanError> {
        let mut raw: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(4096));
        loop {
            raw.clear();
            let n = input
                .read_until(b'\n', &mut raw)
                .map_err(|e| ScanError::Git {
                    repo: PathBuf::new(),
                    reason: format!("reading git's output: {e}"),
                })?;
            if n == 0 {
                break;
            }
            self.coverage.bytes += n as u64;
            let mut line: &[u8] = &raw;
            if let Some(l) = line.strip_suffix(b"\n") {
                line = l;
            }
            self.line(line)?;
        }
        self.flush()
    }

    fn line(&mut self, line: &[u8]) -> Result<(), ScanError> {
        if self.hunk != (0, 0) {
            match line.first() {
                Some(b'+') if self.hunk.1 > 0 => {
                    self.hunk.1 -= 1;
                    let text = String::from_utf8_lossy(&line[1..]);
                    self.starts.push((self.added.len(), self.next_line));
                    self.added.push_str(&text);
                    self.added.push('\n');
                    self.next_line += 1;
                    return Ok(());
                }
                Some(b'-') if self.hunk.0 > 0 => {
                    self.hunk.0 -= 1;
                    return Ok(());
                }
                Some(b'\\') => return Ok(()),
                // Counts that do not add up (a git that printed something else): the hunk
                // is over, and the line is read as a header.
                _ => self.hunk = (0, 0),
            }
        }
        if let Some(rest) = line.strip_prefix(b"\x01") {
            self.flush()?;
            self.commit = Some(parse_commit(&String::from_utf8_lossy(rest)));
            self.coverage.commits += 1;
            self.path = None;
        } else if line.starts_with(b"diff --git ") {
            self.flush()?;
            self.path = None;
        } else if let Some(rest) = line.strip_prefix(b"+++ ") {
            self.flush()?;
            let p = unquote(&String::from_utf8_lossy(rest));
            self.path = p.strip_prefix("b/").map(str::to_string);
        } else if let Some(rest) = line.strip_prefix(b"@@ ") {
            let text = String::from_utf8_lossy(rest);
            if let Some((old, new, start)) = parse_hunk(&text) {
                self.hunk = (old, new);
                self.next_line = start;
            }
        } else if line.starts_with(b"\\ ") {
            // "\ No newline at end of file" after a hunk's last line.
        }
        Ok(())
    }

    /// Scan the added lines gathered for the current file.
    fn flush(&mut self) -> Result<(), ScanError> {
        if self.added.is_empty() {
            return Ok(());
        }
        let (Some(path), Some(commit)) = (self.path.clone(), self.commit.clone()) else {
            self.added.clear();
            self.starts.clear();
            return Ok(());
        };
        let kind = FileKind::of_path(&path);
        let added = std::mem::replace(&mut self.added, Zeroizing::new(String::new()));
        let starts = std::mem::take(&mut self.starts);
        let on = self.on;
        let found = recognize_in(&added, |value, format, offset| {
            let at = starts.partition_point(|(o, _)| *o <= offset);
            let line = at.checked_sub(1).map(|i| starts[i].1);
            on(Found {
                value,
                format: format.name.to_string(),
                what: format.what.to_string(),
                identifier: format.sensitivity == Sensitivity::Identifier,
                prefix: format.prefix,
                source: Source::Git,
                location: Location {
                    path: path.clone(),
                    line,
                    commit: Some(commit.hash.clone()),
                    author_date: commit.author,
                    commit_date: commit.committer,
                    report: None,
                },
                file_kind: kind,
                withheld: false,
            });
        });
        // Keep the allocation for the next file; it is zeroed when the parser is dropped.
        self.added = added;
        self.added.clear();
        self.starts = starts;
        self.starts.clear();
        found
    }
}

/// Like `files::scan_text`, but hands over byte offsets (history lines are mapped separately).
fn recognize_in(
    text: &str,
    mut emit: impl FnMut(&str, &'static crate::secret::recognize::Format, usize),
) -> Result<(), ScanError> {
    let found = crate::secret::recognize::find(text).map_err(|_| ScanError::Recognizers)?;
    for r in found {
        if let Some(v) = text.get(r.range.clone()) {
            emit(v, r.format, r.range.start);
        }
    }
    Ok(())
}

fn parse_commit(text: &str) -> Commit {
    let mut parts = text.split(' ');
    let hash = parts.next().unwrap_or("").to_string();
    let date = |s: Option<&str>| {
        s.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
    };
    let author = date(parts.next());
    let committer = date(parts.next());
    Commit {
        hash,
        author,
        committer,
    }
}

/// `-OLD[,N] +NEW[,M] @@ ...` to (N, M, NEW). A missing count means 1.
fn parse_hunk(text: &str) -> Option<(u64, u64, u64)> {
    let mut it = text.split(' ');
    let old = it.next()?.strip_prefix('-')?;
    let new = it.next()?.strip_prefix('+')?;
    let count = |s: &str| -> Option<(u64, u64)> {
        match s.split_once(',') {
            Some((a, n)) => Some((a.parse().ok()?, n.parse().ok()?)),
            None => Some((s.parse().ok()?, 1)),
        }
    };
    let (_, old_n) = count(old)?;
    let (new_start, new_n) = count(new)?;
    Some((old_n, new_n, new_start))
}

/// Undo git's C-style quoting of a path (`"b/a\"b"`).
fn unquote(p: &str) -> String {
    let Some(inner) = p.strip_prefix('"').and_then(|p| p.strip_suffix('"')) else {
        return p.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn added_lines_only_with_their_new_line_numbers() {
        let log = concat!(
            "\x01aaaa 2026-03-01T10:00:00+00:00 2026-03-02T10:00:00+00:00\n",
            "\n",
            "diff --git a/.env b/.env\n",
            "new file mode 100644\n",
            "--- /dev/null\n",
            "+++ b/.env\n",
            "@@ -0,0 +1,2 @@\n",
            "+A=1\n",
            "+KEY=fk-FAKEaddedFAKE0123456789\n",
            "diff --git a/x.txt b/x.txt\n",
            "--- a/x.txt\n",
            "+++ b/x.txt\n",
            "@@ -3 +3 @@ ctx\n",
            "-old fk-FAKEremovedFAKE012345678\n",
            "++++ fk-FAKEplusplusFAKE0123456\n",
            "\\ No newline at end of file\n",
            "\x01bbbb 2026-03-03T10:00:00+00:00 2026-03-03T10:00:00+00:00\n",
            "diff --git a/.env b/.env\n",
            "deleted file mode 100644\n",
            "--- a/.env\n",
            "+++ /dev/null\n",
            "@@ -1,2 +0,0 @@\n",
            "-A=1\n",
            "-KEY=fk-FAKEaddedFAKE0123456789\n",
        );
        let seen = Mutex::new(Vec::new());
        let on = |f: Found<'_>| {
            seen.lock().unwrap().push((
                f.value.to_string(),
                f.location.path.clone(),
                f.location.line,
                f.location.commit.clone(),
            ))
        };
        let mut p = Parser::new(&on);
        p.read(log.as_bytes()).unwrap();
        assert_eq!(p.coverage.commits, 2);
        let seen = seen.into_inner().unwrap();
        assert_eq!(
            seen,
            [
                (
                    "fk-FAKEaddedFAKE0123456789".to_string(),
                    ".env".to_string(),
                    Some(2),
                    Some("aaaa".to_string())
                ),
                (
                    "fk-FAKEplusplusFAKE0123456".to_string(),
                    "x.txt".to_string(),
                    Some(3),
                    Some("aaaa".to_string())
                ),
            ]
        );
    }

    #[test]
    fn hunk_headers_and_quoted_paths() {
        assert_eq!(parse_hunk("-0,0 +1,2 @@"), Some((0, 2, 1)));
        assert_eq!(parse_hunk("-3 +3 @@ fn x()"), Some((1, 1, 3)));
        assert_eq!(parse_hunk("garbage"), None);
        assert_eq!(unquote("\"b/we\\\"ird\\tname\""), "b/we\"ird\tname");
        assert_eq!(unquote("b/plain"), "b/plain");
    }
}
