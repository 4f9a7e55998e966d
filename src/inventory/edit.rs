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

/// Write an edit atomically (temporary file in the same directory, fsync, rename), keeping
/// the file's permissions.
pub fn write_edit(edit: &Edit) -> Result<(), EditError> {
    let err = |source| EditError::Write {
        path: edit.path.clone(),
        source,
    };
    let dir = edit
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = edit
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.keyfire-{}", std::process::id()));
    let perms = std::fs::metadata(&edit.path).map_err(err)?.permissions();
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(edit.after.as_bytes()).map_err(err)?;
    f.set_permissions(perms).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, &edit.path).map_err(err)?;
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

    #[test]
    fn unknown_key_is_an_error() {
        assert!(matches!(
            plan_reschedule(Path::new("inv.toml"), TEXT, &r("zz")),
            Err(EditError::KeyNotFound { .. })
        ));
    }
}
