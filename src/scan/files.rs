//! Files and directories: a parallel walk (the `ignore` crate, ripgrep's walker) that
//! respects `.gitignore`, `.ignore` and `.git/info/exclude` unless told not to, and reads
//! hidden files (`.env`, `.npmrc`) too; only `.git` itself is skipped (`--git` reads history
//! through git). Every text file is read: `.env*`, configuration files, Dockerfiles and
//! notebooks are classified so that generic formats count there (see [`super::FileKind`]).
//! Binary files (a NUL byte in the first 8 KiB, git's own test) are skipped and counted.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::{Coverage, FileKind, Found, Location, ScanError, Source};
use crate::secret::recognize::{self, Format, Sensitivity};

/// Files above this size are listed as skipped, never silently passed.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Walk `paths` and hand every recognized value to `on`, from several threads.
pub fn scan_paths(
    paths: &[PathBuf],
    no_ignore: bool,
    on: &(dyn Fn(Found<'_>) + Sync),
) -> Result<Coverage, ScanError> {
    let Some((first, rest)) = paths.split_first() else {
        return Ok(Coverage::default());
    };
    for p in paths {
        if std::fs::symlink_metadata(p).is_err() {
            return Err(ScanError::NoSuchPath(p.clone()));
        }
    }
    let mut builder = ignore::WalkBuilder::new(first);
    for p in rest {
        builder.add(p);
    }
    builder
        .hidden(false)
        .require_git(false)
        .git_ignore(!no_ignore)
        .git_exclude(!no_ignore)
        .git_global(!no_ignore)
        .ignore(!no_ignore)
        .parents(!no_ignore)
        .follow_links(false)
        .threads(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        )
        .filter_entry(|e| e.file_name() != ".git");
    let coverage = Mutex::new(Coverage::default());
    let failed: Mutex<Option<ScanError>> = Mutex::new(None);
    builder.build_parallel().run(|| {
        Box::new(|entry| {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    if let Ok(mut c) = coverage.lock() {
                        c.unreadable.push(e.to_string());
                    }
                    return ignore::WalkState::Continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return ignore::WalkState::Continue;
            }
            match scan_file(entry.path(), on) {
                Ok(read) => {
                    if let Ok(mut c) = coverage.lock() {
                        match read {
                            Read::Text(bytes) => {
                                c.files += 1;
                                c.bytes += bytes;
                            }
                            Read::Binary => c.skipped_binary += 1,
                            Read::TooLarge => {
                                c.skipped_large.push(entry.path().display().to_string())
                            }
                        }
                    }
                }
                Err(ScanError::Recognizers) => {
                    if let Ok(mut f) = failed.lock() {
                        *f = Some(ScanError::Recognizers);
                    }
                    return ignore::WalkState::Quit;
                }
                Err(e) => {
                    if let Ok(mut c) = coverage.lock() {
                        c.unreadable.push(e.to_string());
                    }
                }
            }
            ignore::WalkState::Continue
        })
    });
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut c = coverage.into_inner().map_err(|_| ScanError::Recognizers)?;
    c.unreadable.sort();
    c.skipped_large.sort();
    Ok(c)
}

enum Read {
    Text(u64),
    Binary,
    TooLarge,
}

fn scan_file(path: &Path, on: &(dyn Fn(Found<'_>) + Sync)) -> Result<Read, ScanError> {
    let io = |e: std::io::Error| ScanError::Io(path.to_path_buf(), e.to_string());
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_FILE_BYTES {
        return Ok(Read::TooLarge);
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(io)?);
    let head = &bytes[..bytes.len().min(8192)];
    if memchr::memchr(0, head).is_some() {
        return Ok(Read::Binary);
    }
    let shown = path.display().to_string();
    let kind = FileKind::of_path(&shown);
    let emit = |value: &str, format: &'static Format, line: u64| {
        on(Found {
            value,
            format: format.name.to_string(),
            what: format.what.to_string(),
            identifier: format.sensitivity == Sensitivity::Identifier,
            prefix: format.prefix,
            source: Source::File,
            location: Location {
                path: shown.clone(),
                line: Some(line),
                ..Default::default()
            },
            file_kind: kind,
            withheld: false,
        })
    };
    match std::str::from_utf8(&bytes) {
        Ok(text) => scan_text(text, emit)?,
        Err(_) => {
            let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
            scan_text(&text, emit)?;
        }
    }
    Ok(Read::Text(bytes.len() as u64))
}

/// Every recognized value in `text`, with its 1-based line number.
pub(crate) fn scan_text(
    text: &str,
    mut emit: impl FnMut(&str, &'static Format, u64),
) -> Result<(), ScanError> {
    let found = recognize::find(text).map_err(|_| ScanError::Recognizers)?;
    let mut line = 1u64;
    let mut at = 0usize;
    for r in found {
        line += memchr::memchr_iter(b'\n', &text.as_bytes()[at..r.range.start]).count() as u64;
        at = r.range.start;
        if let Some(value) = text.get(r.range.clone()) {
            emit(value, r.format, line);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_count_from_one() {
        let text = "a\nb\nkey=fk-FAKEfakeFAKEfake0123\n\nsk-proj-FAKEfakeFAKEfake0123456789\n";
        let mut seen = Vec::new();
        scan_text(text, |_, f, l| seen.push((f.name, l))).unwrap();
        assert_eq!(
            seen,
            [("keyfire-training-key", 3), ("openai-project-key", 5)]
        );
    }

    #[test]
    fn walks_hidden_files_respects_gitignore_and_skips_binaries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "ignored.log\n").unwrap();
        std::fs::write(root.join(".env"), "KEY=fk-FAKEfakeFAKEfake0123\n").unwrap();
        std::fs::write(root.join("ignored.log"), "fk-FAKEfakeFAKEfake4567\n").unwrap();
        std::fs::write(root.join("blob.bin"), b"\0fk-FAKEfakeFAKEfake8901").unwrap();
        std::fs::create_dir(root.join(".git")).unwrap();
        std::fs::write(root.join(".git/config"), "fk-FAKEfakeFAKEfake2345\n").unwrap();
        let seen = Mutex::new(Vec::new());
        let on = |f: Found<'_>| seen.lock().unwrap().push((f.location.path, f.file_kind));
        let c = scan_paths(&[root.to_path_buf()], false, &on).unwrap();
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].0.ends_with(".env"));
        assert_eq!(seen[0].1, FileKind::Env);
        assert_eq!(c.skipped_binary, 1);
        let all = Mutex::new(0);
        let on = |_: Found<'_>| *all.lock().unwrap() += 1;
        scan_paths(&[root.to_path_buf()], true, &on).unwrap();
        assert_eq!(*all.lock().unwrap(), 2, "--no-ignore reads ignored.log too");
    }
}
