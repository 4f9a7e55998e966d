//! In-place inventory edits (step 5, reschedule) that keep every comment and unrelated byte.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use toml_edit::{DocumentMut, Item, Table, Value};

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is no longer valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: no [[keys]] entry with id `{key}` (was the file edited since it was loaded?)")]
    KeyNotFound { path: PathBuf, key: String },
}

/// The rotation facts step 5 writes for a key.
#[derive(Debug, Clone, Serialize)]
pub struct Reschedule {
    pub key: String,
    pub last_rotated: NaiveDate,
    /// A new interval (after an incident); `None` keeps the key's interval.
    pub rotation_days: Option<u32>,
}

/// The text before and after an edit, and a line diff for people to read.
#[derive(Debug, Clone)]
pub struct Edit {
    pub path: PathBuf,
    pub before: String,
    pub after: String,
}

impl Edit {
    pub fn changed(&self) -> bool {
        self.before != self.after
    }

    /// A unified-style diff of the changed region.
    pub fn diff(&self) -> String {
        let a: Vec<&str> = self.before.lines().collect();
        let b: Vec<&str> = self.after.lines().collect();
        let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let suffix = a[prefix..]
            .iter()
            .rev()
            .zip(b[prefix..].iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        let mut out = format!("--- {0}\n+++ {0}\n", self.path.display());
        out.push_str(&format!(
            "@@ -{},{} +{},{} @@\n",
            prefix + 1,
            a.len() - prefix - suffix,
            prefix + 1,
            b.len() - prefix - suffix
        ));
        for line in &a[prefix..a.len() - suffix] {
            out.push_str(&format!("-{line}\n"));
        }
        for line in &b[prefix..b.len() - suffix] {
            out.push_str(&format!("+{line}\n"));
        }
        out
    }
}

fn toml_date(d: NaiveDate) -> Value {
    let date = toml_edit::Date {
        year: u16::try_from(d.year()).unwrap_or(1970),
        month: u8::try_from(d.month()).unwrap_or(1),
        day: u8::try_from(d.day()).unwrap_or(1),
    };
    Value::from(toml_edit::Datetime {
        date: Some(date),
        time: None,
        offset: None,
    })
}

/// Replace a value but keep the comment and spacing around it.
fn set_keeping_decor(item: &mut Item, new: Value) {
    match item.as_value_mut() {
        Some(old) => {
            let decor = old.decor().clone();
            *old = new;
            *old.decor_mut() = decor;
        }
        None => *item = Item::Value(new),
    }
}

fn apply_to_table(table: &mut Table, r: &Reschedule) {
    match table.get_mut("last_rotated") {
        Some(item) => set_keeping_decor(item, toml_date(r.last_rotated)),
        None => {
            table.insert("last_rotated", Item::Value(toml_date(r.last_rotated)));
        }
    }
    let Some(days) = r.rotation_days else { return };
    let days = Value::from(i64::from(days));
    match table.get_mut("rotation_days") {
        Some(item) => set_keeping_decor(item, days),
        None => {
            table.insert("rotation_days", Item::Value(days));
        }
    }
}

fn apply_to_inline(table: &mut toml_edit::InlineTable, r: &Reschedule) {
    let mut set = |name: &str, v: Value| match table.get_mut(name) {
        Some(old) => {
            let decor = old.decor().clone();
            *old = v;
            *old.decor_mut() = decor;
        }
        None => {
            table.insert(name, v);
        }
    };
    set("last_rotated", toml_date(r.last_rotated));
    if let Some(days) = r.rotation_days {
        set("rotation_days", Value::from(i64::from(days)));
    }
}

fn has_id(id: Option<&Value>, key: &str) -> bool {
    id.and_then(Value::as_str) == Some(key)
}

/// Compute the edit for `r` on the text of one inventory file (nothing is written).
pub fn plan_reschedule(path: &Path, text: &str, r: &Reschedule) -> Result<Edit, EditError> {
    let mut doc: DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| EditError::Parse {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            })?;
    let mut found = false;
    match doc.get_mut("keys") {
        Some(Item::ArrayOfTables(tables)) => {
            for t in tables.iter_mut() {
                if has_id(t.get("id").and_then(Item::as_value), &r.key) {
                    apply_to_table(t, r);
                    found = true;
                    break;
                }
            }
        }
        Some(Item::Value(Value::Array(items))) => {
            for v in items.iter_mut() {
                if let Value::InlineTable(t) = v
                    && has_id(t.get("id"), &r.key)
                {
                    apply_to_inline(t, r);
                    found = true;
                    break;
                }
            }
        }
        _ => {}
    }
    if !found {
        return Err(EditError::KeyNotFound {
            path: path.to_path_buf(),
            key: r.key.clone(),
        });
    }
    Ok(Edit {
        path: path.to_path_buf(),
        before: text.to_string(),
        after: doc.to_string(),
    })
}

/// Read the file, compute the edit; the caller decides whether to [`write_edit`].
pub fn read_and_plan(path: &Path, r: &Reschedule) -> Result<Edit, EditError> {
    let text = std::fs::read_to_string(path).map_err(|source| EditError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    plan_reschedule(path, &text, r)
}

/// The file an edit lands in: an inventory reached through a symlink is edited at its target,
/// so the link stays a link and the target does not go stale.
pub fn edit_target(path: &Path) -> Result<PathBuf, EditError> {
    std::fs::canonicalize(path).map_err(|source| EditError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// An exclusive lock on one inventory file, held while it is re-read, edited and replaced.
/// It is an `flock` on a lock file beside the target (`.NAME.keyfire-lock`), not on the
/// target itself: the rename that replaces the target gives it a new inode, which a lock on
/// the old one would not cover.
#[derive(Debug)]
pub struct InventoryLock {
    _file: std::fs::File,
}

fn lock_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_dir(target).join(format!(".{name}.keyfire-lock"))
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Wait for the exclusive lock on `target` (another keyfire process, or another key of the
/// same campaign, may be editing it: each edit is short and synchronous).
pub fn lock(target: &Path) -> Result<InventoryLock, EditError> {
    let path = lock_path(target);
    let err = |source| EditError::Write {
        path: path.clone(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW); // the lock file is never a symlink
    }
    let file = opts.open(&path).map_err(err)?;
    file.lock().map_err(err)?;
    Ok(InventoryLock { _file: file })
}

/// Apply `r` to the inventory as it is now: take the file's lock, read it again, compute the
/// edit on that text and write it. Edits planned by other keys of a campaign (or by a person)
/// between the approval and this write are kept, not overwritten with a stale copy.
pub fn apply_locked(path: &Path, r: &Reschedule) -> Result<Edit, EditError> {
    let target = edit_target(path)?;
    let _lock = lock(&target)?;
    let text = std::fs::read_to_string(&target).map_err(|source| EditError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut edit = plan_reschedule(&target, &text, r)?;
    if edit.changed() {
        write_edit(&edit)?;
    }
    edit.path = path.to_path_buf();
    Ok(edit)
}

/// Write an edit atomically, keeping the file's permissions: a temporary file created
/// exclusively (`O_EXCL`, an unpredictable name) beside the target, fsync, rename, fsync of
/// the directory. A symlinked inventory is written at its target. Callers that may race with
/// other editors use [`apply_locked`].
pub fn write_edit(edit: &Edit) -> Result<(), EditError> {
    let target = edit_target(&edit.path)?;
    let err = |source| EditError::Write {
        path: edit.path.clone(),
        source,
    };
    let dir = parent_dir(&target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let perms = std::fs::metadata(&target).map_err(err)?.permissions();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".keyfire-tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(edit.after.as_bytes()).map_err(err)?;
    tmp.as_file().set_permissions(perms).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(&target).map_err(|e| err(e.error))?;
    // The rename is durable only once the directory is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"schema = 1
# keys below
[[keys]]
id = "a"   # first key
provider = "p"
last_rotated = 2026-01-01 # old date

[[keys]]
id = "b"
provider = "p"
"#;

    fn r(key: &str) -> Reschedule {
        Reschedule {
            key: key.into(),
            last_rotated: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            rotation_days: Some(30),
        }
    }

    #[test]
    fn replaces_in_place_keeping_comments() {
        let e = plan_reschedule(Path::new("inv.toml"), TEXT, &r("a")).unwrap();
        assert!(e.after.contains("last_rotated = 2026-11-26 # old date"));
        assert!(e.after.contains("id = \"a\"   # first key"));
        assert!(e.after.contains("rotation_days = 30"));
        assert!(e.diff().contains("-last_rotated = 2026-01-01 # old date"));
    }

    #[test]
    fn inserts_missing_fields() {
        let e = plan_reschedule(Path::new("inv.toml"), TEXT, &r("b")).unwrap();
        assert!(
            e.after
                .ends_with("provider = \"p\"\nlast_rotated = 2026-11-26\nrotation_days = 30\n"),
            "{}",
            e.after
        );
        assert!(
            e.after
                .starts_with("schema = 1\n# keys below\n[[keys]]\nid = \"a\"   # first key\n")
        );
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn an_edit_made_between_approval_and_write_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "inv.toml", TEXT);
        // Planned (and shown for approval) from the file as it was...
        let planned = read_and_plan(&path, &r("a")).unwrap();
        assert!(planned.changed());
        // ...then someone edits key b before the write.
        let other = plan_reschedule(&path, TEXT, &r("b")).unwrap();
        std::fs::write(&path, &other.after).unwrap();
        apply_locked(&path, &r("a")).unwrap();
        let now = std::fs::read_to_string(&path).unwrap();
        assert_eq!(now.matches("last_rotated = 2026-11-26").count(), 2, "{now}");
        assert!(now.contains("id = \"a\"   # first key"));
    }

    #[test]
    fn concurrent_edits_of_many_keys_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("schema = 1\n");
        for i in 0..24 {
            text.push_str(&format!("\n[[keys]]\nid = \"k{i}\"\nprovider = \"p\"\n"));
        }
        let path = write(dir.path(), "inv.toml", &text);
        std::thread::scope(|s| {
            for i in 0..24 {
                let path = &path;
                s.spawn(move || apply_locked(path, &r(&format!("k{i}"))).unwrap());
            }
        });
        let now = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            now.matches("last_rotated = 2026-11-26").count(),
            24,
            "{now}"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".keyfire-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_inventory_is_edited_at_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let target = write(&real, "inv.toml", TEXT);
        let link = dir.path().join("inv.toml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        apply_locked(&link, &r("a")).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let now = std::fs::read_to_string(&target).unwrap();
        assert!(
            now.contains("last_rotated = 2026-11-26 # old date"),
            "{now}"
        );
    }

    #[test]
    fn unknown_key_is_an_error() {
        assert!(matches!(
            plan_reschedule(Path::new("inv.toml"), TEXT, &r("zz")),
            Err(EditError::KeyNotFound { .. })
        ));
    }
}
