//! The module graph stays layered: no two modules of `src/` import each other, at the top
//! level (`record`, `runbook`, `provider`, ...) or one level down inside a module
//! (`runbook::engine`, `runbook::actions`, ...). Read from the source text: every
//! `crate::a::b` path and every `super::x` of a file outside its unit tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/runbook/actions/call.rs` is `["runbook", "actions", "call"]`; `mod.rs` names its folder.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The paths after `prefix` in `text` (`crate::` or `super::`), as identifiers.
fn paths_after<'a>(text: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().last();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let path: Vec<&str> = rest
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or("")
            .split("::")
            .take_while(|s| !s.is_empty() && s.chars().all(|c| c.is_lowercase() || c == '_'))
            .collect();
        if !path.is_empty() {
            out.push(path);
        }
    }
    out
}

#[test]
fn no_two_modules_import_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let m = module_of(&src, file);
        if m.is_empty() || m == ["lib"] || m == ["main"] {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read");
        // Unit tests may reach anywhere.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        for path in paths_after(text, "crate::") {
            edges
                .entry(m[0].clone())
                .or_default()
                .insert(path[0].to_string());
            if m.len() >= 2 && path.len() >= 2 && path[0] == m[0] {
                edges
                    .entry(m[..2].join("::"))
                    .or_default()
                    .insert(path[..2].join("::"));
            }
        }
        if m.len() >= 2 {
            for path in paths_after(text, "super::") {
                let mut target = m[..m.len() - 1].to_vec();
                target.push(path[0].to_string());
                if target.len() >= 2 {
                    edges
                        .entry(m[..2].join("::"))
                        .or_default()
                        .insert(target[..2].join("::"));
                }
            }
        }
    }
    let mut pairs = Vec::new();
    for (a, targets) in &edges {
        for b in targets {
            if a < b && edges.get(b).is_some_and(|t| t.contains(a)) {
                pairs.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(
        pairs.is_empty(),
        "modules that import each other:\n  {}",
        pairs.join("\n  ")
    );
    // The reader sees the layering it checks (a test that reads nothing cannot fail).
    assert!(edges["runbook"].contains("record"));
    assert!(edges["runbook::engine"].contains("runbook::context"));
}
