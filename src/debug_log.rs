//! The debug log (`-v`, `-vv`, `KEYFIRE_LOG`): what a bug report needs (command line,
//! version, inventory, every HTTP request with its status and latency (AWS SDK calls,
//! PostgreSQL connections and statements, shared-record calls and OS keyring calls included,
//! each logged where it is made), each runbook action and record append), in a private file
//! under the data directory.
//!
//! The file is `logs/keyfire-<UTC time>-<pid>.log`, created 0600 without following a link
//! (as every private file keyfire writes, see `fsutil`), and every line goes through the
//! process-wide [`Redactor`] before it is written: the values any part of keyfire learned
//! and the credential formats it recognizes never reach the file. Without `-v` and without
//! `KEYFIRE_LOG`, no subscriber is installed and no file is created.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::SubscriberExt;
use zeroize::Zeroizing;

use crate::secret::Redactor;

/// The variable that turns the log on without `-v`.
pub(crate) const ENV: &str = "KEYFIRE_LOG";

#[derive(Debug, thiserror::Error)]
pub(crate) enum LogError {
    /// The value is not quoted: a variable set by mistake may hold anything.
    #[error("{ENV} must be one of off, info, debug or trace")]
    BadLevel,
    #[error("cannot create the debug log in {dir}: {source}")]
    Create {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("a debug log is already being written by this process")]
    AlreadyStarted,
}

/// How much the log holds: `-v` or `KEYFIRE_LOG=debug` is keyfire's debug events (requests,
/// actions, record appends); `-vv` or `trace` adds keyfire's trace events and the info
/// events of the libraries underneath (connections, TLS).
pub(crate) fn level(verbose: u8, env: Option<&str>) -> Result<Option<LevelFilter>, LogError> {
    let from_flags = match verbose {
        0 => None,
        1 => Some(LevelFilter::DEBUG),
        _ => Some(LevelFilter::TRACE),
    };
    let from_env = match env.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("off") => None,
        Some("info") => Some(LevelFilter::INFO),
        Some("debug") => Some(LevelFilter::DEBUG),
        Some("trace") => Some(LevelFilter::TRACE),
        Some(_) => return Err(LogError::BadLevel),
    };
    // The more detailed of the two wins.
    Ok(from_flags.max(from_env))
}

/// One formatted event on its way to the writer thread, in wiped memory.
type Line = Zeroizing<Vec<u8>>;

/// A debug log being written; [`DebugLog::path`] is printed at the end of the run, after
/// [`DebugLog::finish`] has written every line.
pub(crate) struct DebugLog {
    path: PathBuf,
    /// Closed by `finish`: the writer thread then drains what is queued and ends.
    to_writer: Arc<Mutex<Option<mpsc::Sender<Line>>>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl DebugLog {
    /// Create the file and install the process's subscriber. Called once, at the start of a
    /// command; a second call in the same process (a test harness) is refused.
    pub(crate) fn start(data_dir: &Path, level: LevelFilter) -> Result<Self, LogError> {
        let dir = data_dir.join("logs");
        let create = |source| LogError::Create {
            dir: dir.clone(),
            source,
        };
        crate::fsutil::private_dir(&dir).map_err(create)?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let path = dir.join(format!("keyfire-{stamp}-{}.log", std::process::id()));
        let file = crate::fsutil::create_new(&path, true).map_err(create)?;
        // Scrubbing runs every recognizer over the line: a thread of its own does it, so a
        // runbook action never waits for its log line to be checked and written.
        let (tx, rx) = mpsc::channel::<Line>();
        let redactor = Redactor::process_wide();
        let thread = std::thread::Builder::new()
            .name("keyfire-debug-log".into())
            .spawn(move || write_lines(rx, file, &redactor))
            .map_err(create)?;
        let to_writer = Arc::new(Mutex::new(Some(tx)));
        let writer = ScrubbedFile {
            to: to_writer.clone(),
        };
        // Other crates stay at warnings unless the most detailed level is asked for.
        let others = if level >= LevelFilter::TRACE {
            LevelFilter::INFO
        } else {
            LevelFilter::WARN
        };
        let filter = Targets::new()
            .with_target("keyfire", level)
            .with_default(others);
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .with_timer(UtcTime);
        let subscriber = tracing_subscriber::registry().with(layer).with(filter);
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            // Nothing will ever be written: the writer thread ends with its channel, and the
            // empty file it held goes too, so no log of nothing is left behind.
            if let Ok(mut to) = to_writer.lock() {
                to.take();
            }
            let _ = thread.join();
            let _ = std::fs::remove_file(&path);
            return Err(LogError::AlreadyStarted);
        }
        Ok(Self {
            path,
            to_writer,
            writer: Some(thread),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Stop taking lines and wait until every queued one is in the file.
    pub(crate) fn finish(&mut self) {
        if let Ok(mut to) = self.to_writer.lock() {
            to.take();
        }
        if let Some(thread) = self.writer.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread: each line scrubbed whole, then appended. A line that cannot be written
/// is dropped; the log must never stop the run.
fn write_lines(rx: mpsc::Receiver<Line>, mut file: std::fs::File, redactor: &Redactor) {
    for line in rx {
        let text = Zeroizing::new(String::from_utf8_lossy(&line).into_owned());
        drop(line);
        let clean = redactor.scrub(&text);
        let _ = file.write_all(clean.as_bytes());
    }
}

/// Wall-clock UTC time with microseconds: the log is read beside the record's timestamps.
struct UtcTime;

impl FormatTime for UtcTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ"))
    }
}

/// The formatter's writer: it writes each event into one [`ScrubbedLine`] and drops it, and
/// the whole event goes to the writer thread, which scrubs it at once (a value split across
/// the formatter's writes is still found).
struct ScrubbedFile {
    to: Arc<Mutex<Option<mpsc::Sender<Line>>>>,
}

impl<'a> MakeWriter<'a> for ScrubbedFile {
    type Writer = ScrubbedLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbedLine {
            to: self,
            buf: Zeroizing::new(Vec::with_capacity(256)),
        }
    }
}

/// One event's text, held in wiped memory until the writer thread has scrubbed it.
struct ScrubbedLine<'a> {
    to: &'a ScrubbedFile,
    buf: Line,
}

impl Write for ScrubbedLine<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        crate::secret::extend_wiped(&mut self.buf, bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedLine<'_> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let line = std::mem::replace(&mut self.buf, Zeroizing::new(Vec::new()));
        // After `finish` (or if the thread is gone) the line is dropped, wiped.
        if let Ok(to) = self.to.to.lock()
            && let Some(tx) = to.as_ref()
        {
            let _ = tx.send(line);
        }
    }
}

/// The command line as typed, scrubbed (a key pasted as an argument is not kept).
pub(crate) fn command_line() -> String {
    let args: Vec<String> = std::env::args_os()
        .map(|a| {
            let a = a.to_string_lossy();
            // A URL argument (`--against`, `--records`) loses its credentials as a URL would.
            if a.contains("://") {
                shown_url(&a)
            } else {
                a.into_owned()
            }
        })
        .collect();
    Redactor::process_wide().scrub(&args.join(" "))
}

/// A URL as the log shows it: scheme, host, port and path; query values are kept except
/// those whose name says they carry a credential (the line is scrubbed again on its way to
/// the file). The user part of an authority is never shown.
pub(crate) fn shown_url(url: &str) -> String {
    // Learned secrets first, on the text as given: parsing rewrites a URL (a default port
    // dropped, the host lowercased, spaces trimmed), and a secret URL such as a Slack
    // webhook would no longer match what was learned.
    let url = Redactor::process_wide().scrub(url);
    let Ok(mut parsed) = url::Url::parse(&url) else {
        // Not a URL (a SQL target, a local lookup): the scrubber still sees it.
        return url;
    };
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    parsed.set_fragment(None);
    let query: Vec<String> = parsed
        .query_pairs()
        .map(|(k, v)| {
            if sensitive_name(&k) {
                format!("{k}=[REDACTED]")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    parsed.set_query(None);
    if query.is_empty() {
        parsed.to_string()
    } else {
        format!("{parsed}?{}", query.join("&"))
    }
}

/// Query parameters that carry a credential: `api_key`, `token`, `access_token`, AWS's
/// presigned `X-Amz-Signature` and `X-Amz-Credential`, an OAuth `code`, ... but not a
/// `secretPath` or `key_id`, which name where a secret is and are worth seeing.
fn sensitive_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('-', "_");
    const EXACT: &[&str] = &[
        "key", "apikey", "token", "secret", "password", "pass", "pwd", "sig", "code", "auth",
    ];
    const ENDS: &[&str] = &[
        "_key",
        "token",
        "_secret",
        "password",
        "signature",
        "credential",
        "_sig",
        "authorization",
    ];
    EXACT.contains(&n.as_str()) || ENDS.iter().any(|e| n.ends_with(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learned_secret_url_is_hidden_even_where_parsing_would_rewrite_it() {
        // A Slack webhook is a secret URL; with `:443` (or a trailing newline from an
        // environment variable), parsing rewrites it so the learned text no longer matches.
        let hook = "https://hooks.slack.com:443/services/TFAKE000/BFAKE000/fakeHookSecret0123\n";
        // The debug log makes the process-wide redactor when it starts; until then no other
        // redactor passes what it learns on (a test run may not have made it yet).
        let _log_scrubber = Redactor::process_wide();
        crate::secret::Redactor::new().learn(&crate::secret::Secret::new(hook));
        let shown = shown_url(hook);
        assert!(!shown.contains("fakeHookSecret0123"), "{shown}");
    }

    #[test]
    fn a_log_that_cannot_be_installed_leaves_no_file() {
        // Another subscriber already owns the process (as a second start would find).
        let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::new());
        let dir = tempfile::tempdir().unwrap();
        let refused = DebugLog::start(dir.path(), LevelFilter::DEBUG);
        assert!(matches!(refused, Err(LogError::AlreadyStarted)));
        let left: Vec<_> = std::fs::read_dir(dir.path().join("logs"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn flags_and_variable_choose_the_more_detailed_level() {
        assert_eq!(level(0, None).unwrap(), None);
        assert_eq!(level(0, Some("off")).unwrap(), None);
        assert_eq!(level(1, None).unwrap(), Some(LevelFilter::DEBUG));
        assert_eq!(level(2, None).unwrap(), Some(LevelFilter::TRACE));
        assert_eq!(level(0, Some("Debug")).unwrap(), Some(LevelFilter::DEBUG));
        assert_eq!(level(1, Some("trace")).unwrap(), Some(LevelFilter::TRACE));
        assert_eq!(level(2, Some("info")).unwrap(), Some(LevelFilter::TRACE));
        assert_eq!(level(0, Some("info")).unwrap(), Some(LevelFilter::INFO));
    }

    #[test]
    fn a_bad_level_is_refused_without_quoting_it() {
        let err = level(0, Some("sk-proj-FAKEvalue0123456789abcd")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("KEYFIRE_LOG"), "{text}");
        assert!(!text.contains("FAKEvalue"), "{text}");
    }

    #[test]
    fn urls_lose_credentials_in_the_query_and_authority() {
        let shown = shown_url(
            "https://user:pw-FAKE@api.example.com:8443/v1/usage?start_time=17&api_key=FAKEabc&limit=5&secretPath=/agents&X-Amz-Signature=FAKEsig&token=FAKEt#frag",
        );
        assert_eq!(
            shown,
            "https://api.example.com:8443/v1/usage?start_time=17&api_key=[REDACTED]&limit=5&secretPath=/agents&X-Amz-Signature=[REDACTED]&token=[REDACTED]"
        );
        assert_eq!(
            shown_url("http://127.0.0.1:9/v1/keys/key_1"),
            "http://127.0.0.1:9/v1/keys/key_1"
        );
        assert_eq!(
            shown_url("postgres admin on db-1"),
            "postgres admin on db-1"
        );
    }
}
