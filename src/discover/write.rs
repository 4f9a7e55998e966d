//! `inventory discover --write FILE`: the shadow keys as inventory `[[keys]]` entries, ready
//! for the operator to claim. Metadata only (ids, hints, dates, scopes the provider reports);
//! never a value, which no listing returns anyway.
//!
//! The file loads beside the inventory (`--inventory main.toml --inventory FILE`): `agents`
//! is empty and `store` unset, so `lint` reports `no-agent` and `no-store` for each entry
//! until the operator fills them in.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, Value};

use super::Shadow;
use crate::inventory::{Inventory, ProviderKind};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0} exists: keyfire does not overwrite it (choose another file or remove it)")]
    Exists(String),
    #[error("cannot write {path}: {reason}")]
    Io { path: String, reason: String },
}

/// The TOML text for these shadow keys.
pub fn render(inv: &Inventory, shadow: &[Shadow], today: NaiveDate) -> String {
    let mut doc = DocumentMut::new();
    doc.decor_mut().set_prefix(format!(
        "# Shadow keys found at the providers by `keyfire inventory discover` on {today}:\n\
         # keys the providers hold that no inventory entry names. Metadata only: no key value\n\
         # is in this file.\n\
         #\n\
         # Before adding this file to the inventory (`--inventory` it beside the others):\n\
         #   1. fill in `agents` with the agents that hold each key (lint reports `no-agent`\n\
         #      while it is empty);\n\
         #   2. set `store` and `secret_path` where those agents read it (lint reports\n\
         #      `no-store` until then);\n\
         #   3. where `scopes` is empty, the provider does not report what the key can do:\n\
         #      write it down.\n\
         # A key nobody claims is a candidate for revocation (`keyfire incident start KEY`).\n\n"
    ));
    doc.insert("schema", Item::Value(Value::from(1i64)));
    let mut taken: HashSet<String> = inv.keys.iter().map(|k| k.id.clone()).collect();
    let mut keys = ArrayOfTables::new();
    for s in shadow {
        keys.push(entry(inv, s, &mut taken));
    }
    if !keys.is_empty() {
        doc.insert("keys", Item::ArrayOfTables(keys));
    }
    doc.to_string()
}

/// Write the file; refuses to replace an existing one (it may be an inventory file).
pub fn write(path: &Path, text: &str) -> Result<(), WriteError> {
    let shown = path.display().to_string();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => WriteError::Exists(shown.clone()),
            _ => WriteError::Io {
                path: shown.clone(),
                reason: e.to_string(),
            },
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| WriteError::Io {
            path: shown,
            reason: e.to_string(),
        })
}

fn entry(inv: &Inventory, s: &Shadow, taken: &mut HashSet<String>) -> Table {
    let k = &s.key;
    let mut t = Table::new();
    let mut about = vec![format!("# {}: {}", s.provider, s.describe())];
    if let Some(note) = elsewhere(inv, s) {
        about.push(format!("# note: {note}"));
    }
    about.push("# TODO: fill in agents, store and secret_path".into());
    t.decor_mut()
        .set_prefix(format!("\n{}\n", about.join("\n")));
    t.insert("id", Item::Value(Value::from(unique_id(s, taken))));
    t.insert("agents", Item::Value(Value::Array(Array::new())));
    t.insert("provider", Item::Value(Value::from(s.provider.as_str())));
    t.insert("provider_key_id", Item::Value(Value::from(k.id.as_str())));
    if let Some(h) = k.hint.as_deref().and_then(inventory_hint) {
        t.insert("hint", Item::Value(Value::from(h)));
    }
    let scopes: Array = k.scopes.iter().flatten().map(String::as_str).collect();
    t.insert("scopes", Item::Value(Value::Array(scopes)));
    if let Some(c) = k.created_at {
        t.insert("created_at", Item::Value(toml_date(c.date_naive())));
    }
    if let Some(n) = &k.name {
        t.insert(
            "description",
            Item::Value(Value::from(format!("found by discover: {n}"))),
        );
    }
    t
}

/// An OpenAI key listed from another project than the provider entry's (with
/// `discover_projects = "all"`) needs a provider entry for its own project.
fn elsewhere(inv: &Inventory, s: &Shadow) -> Option<String> {
    if s.kind != ProviderKind::OpenAi {
        return None;
    }
    let def = inv.provider(&s.provider)?;
    let project = crate::provider::setting(def, "project_id")?;
    let within = s.key.within.as_deref()?;
    (within != format!("project {project}")).then(|| {
        format!(
            "this key is in {within}, not in {}'s project {project}: point `provider` at an openai provider for that project",
            s.provider
        )
    })
}

/// `provider-keyid`, made of the characters inventory ids allow, unique in the inventory
/// and the file.
fn unique_id(s: &Shadow, taken: &mut HashSet<String>) -> String {
    let base: String = format!("{}-{}", s.provider, s.key.id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut id = base.clone();
    let mut n = 2;
    while !taken.insert(id.clone()) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

/// The provider's hint in the form the inventory accepts (a prefix of at most 16
/// characters, `...`, the last 4), or nothing when it does not have that form.
fn inventory_hint(h: &str) -> Option<String> {
    let (prefix, tail) = h.split_once("...").or_else(|| h.split_once('…'))?;
    if tail.chars().count() != 4 || prefix.is_empty() {
        return None;
    }
    let prefix: String = prefix.chars().take(16).collect();
    Some(format!("{prefix}...{tail}"))
}

fn toml_date(d: NaiveDate) -> Value {
    Value::from(toml_edit::Datetime {
        date: Some(toml_edit::Date {
            year: u16::try_from(d.year()).unwrap_or(1970),
            month: u8::try_from(d.month()).unwrap_or(1),
            day: u8::try_from(d.day()).unwrap_or(1),
        }),
        time: None,
        offset: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_cut_to_what_the_inventory_accepts() {
        assert_eq!(
            inventory_hint("sk-proj-AB...wxyz").as_deref(),
            Some("sk-proj-AB...wxyz")
        );
        assert_eq!(
            inventory_hint("sk-ant-api03-R2D...igAA").as_deref(),
            Some("sk-ant-api03-R2D...igAA")
        );
        assert_eq!(
            inventory_hint("sk-ant-api03-R2DXYZ...igAA").as_deref(),
            Some("sk-ant-api03-R2D...igAA")
        );
        assert_eq!(inventory_hint("sk-...ab"), None);
        assert_eq!(inventory_hint("nothing"), None);
    }
}
