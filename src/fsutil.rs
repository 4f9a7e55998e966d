//! Private files: how keyfire creates and replaces files in the data directory (records,
//! reports, the signing key) and beside the inventory:
//! mode 0600 (directories 0700) whatever the umask, never through a symlink (`O_NOFOLLOW`),
//! and content that replaces other content goes through a fresh temp file, `fsync`, `rename`
//! and an `fsync` of the directory, so a crash leaves either the old file or the new one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A symlink where keyfire expected its own file: following it could make keyfire write
/// (or chmod) a file somewhere else on the caller's behalf.
pub(crate) fn symlink_refused(path: &Path) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!(
            "{} is a symbolic link; keyfire does not follow links in its data directory (remove the link)",
            path.display()
        ),
    )
}

/// `ELOOP` from `O_NOFOLLOW` becomes the clear error above.
fn explain(path: &Path, e: std::io::Error) -> std::io::Error {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return symlink_refused(path);
    }
    let _ = path;
    e
}

fn base_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut opts = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    opts
}

/// Force 0600 on a file keyfire created (the mode given to `open` is cut by the umask).
fn chmod_private(f: &File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = f;
    Ok(())
}

/// Open with `opts` plus 0600 and `O_NOFOLLOW`; `create` files are chmodded 0600.
pub(crate) fn open(path: &Path, configure: impl FnOnce(&mut OpenOptions)) -> std::io::Result<File> {
    let mut opts = base_options();
    configure(&mut opts);
    let f = opts.open(path).map_err(|e| explain(path, e))?;
    Ok(f)
}

/// Create a new file (never an existing one), 0600 whatever the umask.
pub(crate) fn create_new(path: &Path, append: bool) -> std::io::Result<File> {
    let f = open(path, |o| {
        o.create_new(true);
        if append {
            o.append(true);
        } else {
            o.write(true);
        }
    })?;
    chmod_private(&f)?;
    Ok(f)
}

/// Open or create a file for reading and writing, 0600, never through a link.
pub(crate) fn open_or_create(path: &Path) -> std::io::Result<File> {
    let f = open(path, |o| {
        o.read(true).write(true).create(true).truncate(false);
    })?;
    chmod_private(&f)?;
    Ok(f)
}

/// Create `path` (and parents) with mode 0700; refuse when `path` itself is a symlink. Each
/// folder it creates is made durable in its parent (`fsync` of the parent), so what is later
/// synced inside it cannot vanish with it in a power cut.
pub(crate) fn private_dir(path: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(symlink_refused(path));
    }
    // The folders about to be created, outermost first.
    let created: Vec<&Path> = {
        let mut missing: Vec<&Path> = path
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_err())
            .collect();
        missing.reverse();
        missing
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
        // Opened without following, so the chmod applies to this directory and no other.
        let dir = open_dir(path)?;
        dir.set_permissions(std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(path)?;
    for dir in created {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn open_dir(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| explain(path, e))
}

/// `fsync` a directory so that a create or rename in it survives a power loss.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    open_dir(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn temp_name(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Replace `path` with `bytes`: temp file (created exclusively, 0600), `fsync`, `rename`,
/// `fsync` of the directory. A symlink at `path` is refused, not replaced or followed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(symlink_refused(path));
    }
    let tmp = temp_name(path);
    let result = (|| {
        let mut f = create_new(&tmp, false)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Read a file keyfire wrote, refusing a symlink in its place.
pub(crate) fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = open(path, |o| {
        o.read(true);
    })?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

/// The first free `base.1`, `base.2`, … name, created exclusively (a fragment is never
/// overwritten by the next one).
pub(crate) fn create_numbered(base: &Path) -> std::io::Result<(PathBuf, File)> {
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for n in 1..10_000u32 {
        let path = base.with_file_name(format!("{name}.{n}"));
        match create_new(&path, false) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "too many torn fragments beside {}",
        base.display()
    )))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_refuses_a_symlink_and_leaves_its_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "theirs").unwrap();
        let link = dir.path().join("report.md");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_atomic(&link, b"ours").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "theirs");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn open_refuses_a_symlink_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        std::fs::write(&target, "x").unwrap();
        let link = dir.path().join("lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_or_create(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }

    #[test]
    fn atomic_write_is_private_and_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("report.json");
        write_atomic(&p, b"first, longer content").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file is left behind");
    }
}
