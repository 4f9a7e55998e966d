//! Loading and validating inventory files. Every problem names file, line and column, and
//! every problem is reported, not just the first.
//!
//! Files are read with the streaming reader (`inventory::reader`): each `[[keys]]` entry is
//! validated and turned into a model `Key` as soon as it is read, then its tree is dropped, so
//! the text and the model are the only large things in memory. Checks that need the whole
//! inventory (references between tables, across files) run at the end on the positions kept
//! for them.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveTime, Weekday};
use ipnet::IpNet;
use sha2::{Digest, Sha256};

use super::model::*;
use super::reader::{self, Item, Key as TomlKey, Table, Value};
use super::spec::{self, Int, Problems, Str};
use crate::textpos::LineIndex;

/// One thing wrong with an inventory, at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The inventory file, as given on the command line or found in a directory.
    pub path: PathBuf,
    /// Line in that file, counted from 1.
    pub line: usize,
    /// Column in that line, in characters (not bytes), counted from 1.
    pub column: usize,
    /// What is wrong and, where it helps, how to fix it. Never quotes a value that looks like
    /// a key.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Why an inventory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// A file or directory could not be read (missing, permissions, not a file).
    #[error("cannot read inventory {path}: {source}")]
    Io {
        /// The file or directory keyfire tried to read.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A directory given as inventory holds no `*.toml` files.
    #[error("no inventory files found in {0} (expected *.toml files)")]
    EmptyDirectory(PathBuf),
    /// No inventory was given (no `--inventory`, `KEYFIRE_INVENTORY` or configured paths) and
    /// none is in the configuration directory; the path is where keyfire looked first.
    #[error("no inventory given: pass --inventory PATH, set KEYFIRE_INVENTORY, or create {0}")]
    NoneConfigured(PathBuf),
    /// The files were read but are not a valid inventory: every problem found, in file order,
    /// each with its file, line and column.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<Problem>),
}

fn render_problems(problems: &[Problem]) -> String {
    let mut lines: Vec<String> = problems.iter().map(|p| format!("{p}")).collect();
    let n = problems.len();
    lines.push(format!(
        "inventory invalid: {n} problem{}",
        if n == 1 { "" } else { "s" }
    ));
    lines.join("\n")
}

struct Source<'t> {
    path: PathBuf,
    /// Borrowed for `load_str`, so a caller's text is not copied.
    text: Cow<'t, str>,
}

/// Expand `--inventory` arguments: files as given, directories to their `*.toml` files.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InventoryError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| InventoryError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| InventoryError::Io {
                    path: path.clone(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(InventoryError::EmptyDirectory(path.clone()));
            }
            out.extend(files);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Load and validate an inventory from files and directories.
pub fn load(paths: &[PathBuf]) -> Result<Inventory, InventoryError> {
    let files = expand_paths(paths)?;
    let mut sources = Vec::with_capacity(files.len());
    for path in files {
        let bytes = std::fs::read(&path).map_err(|source| InventoryError::Io {
            path: path.clone(),
            source,
        })?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => return Err(InventoryError::Invalid(vec![not_utf8(path, e)])),
        };
        sources.push(Source {
            path,
            text: Cow::Owned(text),
        });
    }
    load_sources(&sources)
}

/// Where a file stops being UTF-8, as a problem with line and column (counted in the valid
/// text before it). The bytes themselves are not shown: they may be part of a pasted key.
fn not_utf8(path: PathBuf, e: std::string::FromUtf8Error) -> Problem {
    let at = e.utf8_error().valid_up_to();
    let bytes = e.into_bytes();
    let valid = std::str::from_utf8(&bytes[..at]).unwrap_or("");
    let (line, column) = LineIndex::new(valid).locate(valid, at);
    Problem {
        path,
        line,
        column,
        message: "not valid UTF-8 here: inventory files are UTF-8 text (was it saved in another encoding?)".into(),
    }
}

/// Load an inventory from text (the training environment, tests).
pub fn load_str(path: &Path, text: &str) -> Result<Inventory, InventoryError> {
    load_sources(&[Source {
        path: path.to_path_buf(),
        text: Cow::Borrowed(text),
    }])
}

/// A problem found while loading: file index, byte offset, message. Turned into line and
/// column only at the end, and only for files that have problems.
struct Found {
    file: usize,
    at: usize,
    message: String,
}

fn load_sources(sources: &[Source<'_>]) -> Result<Inventory, InventoryError> {
    let mut b = Builder::default();
    let mut found = Vec::new();
    let mut unreadable = false;
    for (file, src) in sources.iter().enumerate() {
        // The model's key list is the largest allocation: sized from the headers up front
        // (a fast substring count) rather than doubled and copied as keys arrive.
        let headers = src.text.matches("[[keys]]").count();
        b.keys.reserve(headers);
        b.key_index.reserve(headers);
        let mut sink = FileSink {
            b: &mut b,
            sources,
            file,
            text: &src.text,
            lines: LineCounter::default(),
            problems: Vec::new(),
        };
        secrets_in_text(&src.text, &mut sink.problems);
        if let Err(e) = reader::read(&src.text, &mut sink) {
            sink.problems.push((e.at, e.message));
            unreadable = true;
        }
        found.extend(
            sink.problems
                .into_iter()
                .map(|(at, message)| Found { file, at, message }),
        );
    }
    // With a file that could not be read, every reference into it would dangle: checking
    // references then only adds noise to the syntax error that needs fixing.
    if !unreadable {
        b.check_references(&mut found);
    }
    if !found.is_empty() {
        return Err(InventoryError::Invalid(locate(sources, found)));
    }
    let files = sources
        .iter()
        .map(|s| SourceFile {
            path: s.path.clone(),
            digest: hex::encode(Sha256::digest(s.text.as_bytes())),
        })
        .collect();
    Ok(b.finish(files))
}

/// Problems in file order, then position order, with line and column.
fn locate(sources: &[Source<'_>], mut found: Vec<Found>) -> Vec<Problem> {
    found.sort_by_key(|f| (f.file, f.at));
    let mut problems = Vec::with_capacity(found.len());
    let mut index: Option<(usize, LineIndex)> = None;
    for f in found {
        let src = &sources[f.file];
        let lines = match &index {
            Some((file, lines)) if *file == f.file => lines,
            _ => &index.insert((f.file, LineIndex::new(&src.text))).1,
        };
        let (line, column) = lines.locate(&src.text, f.at);
        problems.push(Problem {
            path: src.path.clone(),
            line,
            column,
            // The messages above avoid quoting a value that looks like a key; this catches
            // any that still would (a key pasted as a table name or a field name).
            message: crate::secret::scrub_formats(&f.message),
        });
    }
    problems
}

/// Line numbers for entries, which arrive in file order: counting newlines from the last
/// position is one pass over the file, where a line index would be a large table.
#[derive(Default)]
struct LineCounter {
    at: usize,
    line: usize,
}

impl LineCounter {
    fn line(&mut self, text: &str, at: usize) -> usize {
        let at = at.min(text.len());
        if at < self.at || self.line == 0 {
            // Entries written as inline arrays arrive at the end, out of order.
            self.at = 0;
            self.line = 1;
        }
        self.line += text.as_bytes()[self.at..at]
            .iter()
            .filter(|&&c| c == b'\n')
            .count();
        self.at = at;
        self.line
    }
}

/// Positions kept per key for the checks that need the whole inventory.
struct KeyRefs {
    file: usize,
    id_at: usize,
    provider_at: usize,
    store_at: Option<usize>,
    /// Range into `Builder::agent_refs`, one position per name in `Key::agents`.
    agents: Range<usize>,
}

/// A `store:ID:PATH` credential reference, checked once every store is known.
struct StoreRef {
    file: usize,
    at: usize,
    store: String,
    /// The store whose own credential this is, which cannot come from itself.
    owner: Option<String>,
}

/// The inventory as it is being read, over all files.
#[derive(Default)]
struct Builder {
    policy: Option<Policy>,
    providers: Vec<ProviderDef>,
    stores: Vec<StoreDef>,
    agents: Vec<Agent>,
    keys: Vec<Key>,
    provider_index: foldhash::HashMap<String, usize>,
    store_index: foldhash::HashMap<String, usize>,
    agent_index: foldhash::HashMap<String, usize>,
    key_index: foldhash::HashMap<String, usize>,
    key_refs: Vec<KeyRefs>,
    agent_refs: Vec<usize>,
    store_refs: Vec<StoreRef>,
    notifiers: Vec<NotifierDef>,
    /// Agent names of `[[notifiers]] agents`, with file and position, checked at the end.
    notifier_agent_refs: Vec<(usize, usize, String)>,
}

impl Builder {
    fn check_references(&self, found: &mut Vec<Found>) {
        for (file, at, agent) in &self.notifier_agent_refs {
            if !self.agent_index.contains_key(agent) {
                found.push(Found {
                    file: *file,
                    at: *at,
                    message: format!(
                        "notifier names agent `{agent}`, which is not defined in [[agents]]"
                    ),
                });
            }
        }
        for r in &self.store_refs {
            let store = &r.store;
            let message = if !self.store_index.contains_key(store) {
                format!(
                    "credential reference names store `{store}`, which is not defined in [[stores]]"
                )
            } else if r.owner.as_deref() == Some(store.as_str()) {
                format!("store `{store}` cannot read its own credential from itself")
            } else {
                continue;
            };
            found.push(Found {
                file: r.file,
                at: r.at,
                message,
            });
        }
        for (key, r) in self.keys.iter().zip(&self.key_refs) {
            let id = &key.id;
            let mut at = |at: usize, message: String| {
                found.push(Found {
                    file: r.file,
                    at,
                    message,
                });
            };
            let agent_refs = self.agent_refs.get(r.agents.clone()).unwrap_or_default();
            for (agent, &agent_at) in key.agents.iter().zip(agent_refs) {
                if !self.agent_index.contains_key(agent) {
                    at(
                        agent_at,
                        format!(
                            "key `{id}` names agent `{agent}`, which is not defined in [[agents]]"
                        ),
                    );
                }
            }
            let provider_kind = match self.provider_index.get(&key.provider) {
                Some(&i) => Some(self.providers[i].kind),
                None => {
                    at(
                        r.provider_at,
                        format!(
                            "key `{id}` names provider `{}`, which is not defined in [[providers]]",
                            key.provider
                        ),
                    );
                    None
                }
            };
            if let (Some(store), Some(store_at)) = (&key.store, r.store_at)
                && !self.store_index.contains_key(store)
            {
                at(
                    store_at,
                    format!("key `{id}` names store `{store}`, which is not defined in [[stores]]"),
                );
            }
            let store_kind = (key.store.as_ref())
                .and_then(|s| self.store_index.get(s))
                .map(|&i| self.stores[i].kind);
            if let (Some(kind), Some(path), Some(store_at)) =
                (store_kind, &key.secret_path, r.store_at)
                && let Some(problem) = secret_path_problem(kind, path)
            {
                at(store_at, format!("key `{id}`: secret_path {problem}"));
            }
            if provider_kind == Some(ProviderKind::Postgres) && key.provider_key_id.is_none() {
                at(
                    r.id_at,
                    format!(
                        "key `{id}` of a postgres provider needs provider_key_id (the role name)"
                    ),
                );
            }
            let locatable = key.provider_key_id.is_some() || key.hint.is_some();
            if !locatable && provider_kind.is_some_and(|kind| kind != ProviderKind::Manual) {
                at(
                    r.id_at,
                    format!(
                        "key `{id}` needs provider_key_id or hint so keyfire can find it at the provider"
                    ),
                );
            }
        }
    }

    fn finish(self, files: Vec<SourceFile>) -> Inventory {
        Inventory {
            policy: self.policy.unwrap_or_default(),
            providers: self.providers,
            stores: self.stores,
            agents: self.agents,
            keys: self.keys,
            notifiers: self.notifiers,
            files,
            provider_index: self.provider_index,
            store_index: self.store_index,
            agent_index: self.agent_index,
            key_index: self.key_index,
        }
    }
}

/// Reads one file into the builder.
struct FileSink<'b, 's, 't> {
    b: &'b mut Builder,
    sources: &'s [Source<'t>],
    file: usize,
    text: &'s str,
    lines: LineCounter,
    problems: Problems,
}

/// Report every credential written anywhere in an inventory file: in a value, a list, a nested
/// setting, an unknown field or a comment. An inventory holds ids and hints, never a key value;
/// a key written into it has leaked into that file (and wherever the file was copied or
/// committed), so it is refused with what to do, never quoted. One recognizer pass over the
/// whole text: a few milliseconds for 10,000 keys, where a pass per string cost a third of the
/// load.
fn secrets_in_text(text: &str, problems: &mut Problems) {
    // Unavailable recognizers are reported where text is scrubbed; they do not make every
    // inventory unreadable.
    let Ok(found) = crate::secret::recognize::find_secrets(text) else {
        return;
    };
    for r in found {
        let line_start = text[..r.range.start].rfind('\n').map_or(0, |i| i + 1);
        let place = match where_on_line(&text[line_start..r.range.start]) {
            Place::Comment => "a comment".to_string(),
            Place::Field(name) => format!("`{name}`"),
            Place::Value => "a value".to_string(),
        };
        problems.push((
            r.range.start,
            format!(
                "{place} holds what looks like {} {} (not shown): an inventory holds ids and hints like `sk-proj-...Q2x7`, never a key value. Remove it, and treat that key as leaked: it is in this file and in every copy or commit of it (`keyfire scan --git` finds them)",
                spec::article(r.format.what),
                r.format.what
            ),
        ));
    }
}

enum Place<'t> {
    Comment,
    /// The key of the nearest `key = ` before the value on its line.
    Field(&'t str),
    /// A line of a multi-line array or string.
    Value,
}

/// What the text of a line up to a credential says about where it is: after a `#` outside
/// quotes it is a comment; else it belongs to the last `key =` on the line.
fn where_on_line(prefix: &str) -> Place<'_> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut last_equals = None;
    for (i, c) in prefix.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '#' => return Place::Comment,
                '=' => last_equals = Some(i),
                _ => {}
            },
        }
    }
    let Some(eq) = last_equals else {
        return Place::Value;
    };
    let before = prefix[..eq].trim_end();
    let start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(0, |i| i + 1);
    match &before[start..] {
        "" => Place::Value,
        name => Place::Field(name),
    }
}

impl<'a> reader::Sink<'a> for FileSink<'_, '_, '_> {
    fn element(&mut self, name: &TomlKey<'a>, element: Item<'a>) {
        match name.name.as_ref() {
            "providers" => self.provider(element),
            "stores" => self.store(element),
            "agents" => self.agent(element),
            "keys" => self.key(element),
            "notifiers" => self.notifier(element),
            // Reported once, as an unknown field of the root table.
            _ => {}
        }
    }

    fn root(&mut self, root: Table<'a>) {
        for (key, item) in root.into_entries() {
            match key.name.as_ref() {
                "schema" => match item.value {
                    Value::Integer(1) => {}
                    Value::Integer(n) => self.problems.push((
                        item.span.start,
                        format!("unsupported schema {n}: this keyfire reads schema = 1"),
                    )),
                    _ => self.problems.push((
                        item.span.start,
                        format!(
                            "invalid type: {}, expected an integer for `schema`",
                            spec::found(&item)
                        ),
                    )),
                },
                "policy" => self.policy(item),
                "providers" | "stores" | "agents" | "keys" | "notifiers" => match item.value {
                    // Its elements were streamed to `element` already.
                    Value::Array(a) if a.of_tables => {}
                    Value::Array(a) => {
                        for element in a.items {
                            self.element(&key, element);
                        }
                    }
                    _ => self.problems.push((
                        item.span.start,
                        format!(
                            "invalid type: {}, expected an array of tables ([[{}]]) for `{}`",
                            spec::found(&item),
                            key.name,
                            key.name
                        ),
                    )),
                },
                name => self
                    .problems
                    .push((key.span.start, spec::unknown_field(name, spec::ROOT_FIELDS))),
            }
        }
    }
}

impl FileSink<'_, '_, '_> {
    fn at(&mut self, at: usize, message: impl Into<String>) {
        self.problems.push((at, message.into()));
    }

    fn line(&mut self, at: usize) -> usize {
        self.lines.line(self.text, at)
    }

    /// `path:line` of an earlier definition, for duplicate messages.
    fn place(&self, origin: Origin) -> String {
        format!(
            "{}:{}",
            self.sources[origin.file].path.display(),
            origin.line
        )
    }

    fn policy(&mut self, item: Item<'_>) {
        let at = item.span.start;
        let Some(p) = spec::policy(item, &mut self.problems) else {
            return;
        };
        if self.b.policy.is_some() {
            self.at(
                at,
                "a second [policy] table: the policy may be set in one file only",
            );
            return;
        }
        let policy = validate_policy(&mut self.problems, p);
        self.b.policy = Some(policy);
    }

    fn check_id(&mut self, id: &Str<'_>, table: &str) {
        let valid = !id.text.is_empty()
            && id
                .text
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        if !valid {
            self.at(
                id.at,
                format!(
                    "invalid {table} id {:?}: expected letters, digits, `-`, `_` or `.`",
                    id.as_str()
                ),
            );
        }
    }

    /// Reports a duplicate id; true when `first` (the earlier definition) exists.
    fn duplicate(&mut self, first: Option<Origin>, id: &Str<'_>, table: &str) -> bool {
        let Some(origin) = first else {
            return false;
        };
        let place = self.place(origin);
        self.at(
            id.at,
            format!(
                "duplicate {table} id `{}` (first defined at {place})",
                id.as_str()
            ),
        );
        true
    }

    fn credential(
        &mut self,
        v: Option<Str<'_>>,
        owner_store: Option<&str>,
    ) -> Option<CredentialRef> {
        let v = v?;
        match CredentialRef::parse(v.as_str()) {
            Ok(r) => {
                if let CredentialRef::Store { store, .. } = &r {
                    self.b.store_refs.push(StoreRef {
                        file: self.file,
                        at: v.at,
                        store: store.clone(),
                        owner: owner_store.map(str::to_string),
                    });
                }
                Some(r)
            }
            Err(msg) => {
                self.at(v.at, msg);
                None
            }
        }
    }

    /// An http(s) URL without credentials in it; plain `http://` only to this machine,
    /// unless the table says `allow_insecure_http = true` (admin tokens and new keys travel
    /// over these addresses).
    fn check_url(&mut self, v: &Str<'_>, field: &str, allow_insecure_http: bool) {
        let u = match url::Url::parse(v.as_str()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
            _ => {
                // Quoted back only when it cannot hold a password (`user:password@`).
                let shown = if v.as_str().contains('@')
                    || crate::secret::recognize::may_hold_secret(v.as_str())
                {
                    String::new()
                } else {
                    format!(" {:?}", v.as_str())
                };
                self.at(v.at, format!("{field}{shown} is not an http(s) URL"));
                return;
            }
        };
        if !u.username().is_empty() || u.password().is_some() {
            self.at(
                v.at,
                format!(
                    "{field} holds a user name or password (`user:password@`, not shown): it would be copied into plans and the incident record; put the credential in a keyring:, env: or store: reference instead"
                ),
            );
            return;
        }
        if u.scheme() == "http" && !allow_insecure_http && !is_loopback(&u) {
            self.at(
                v.at,
                format!(
                    "{field} uses plain http:// to {}: admin tokens and new keys would cross the network unencrypted; use https://, or set allow_insecure_http = true on this table",
                    u.host_str().unwrap_or("")
                ),
            );
        }
    }

    /// Kinds with API integrations get their settings checked: required ones present, every
    /// value a non-empty string, no unknown (misspelt) names.
    fn check_provider_settings(
        &mut self,
        kind: ProviderKind,
        id: &Str<'_>,
        settings: Option<&crate::inventory::reader::Table<'_>>,
        table_at: usize,
    ) {
        let Some(known) = provider_settings(kind) else {
            return;
        };
        let names = || {
            known
                .iter()
                .map(|(n, _, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (key, item) in settings.map(|t| t.entries.as_slice()).unwrap_or_default() {
            if !known.iter().any(|(n, _, _)| *n == key.name.as_ref()) {
                self.at(
                    key.span.start,
                    format!(
                        "unknown setting `{}` for a provider of kind {kind}: expected {}",
                        key.name,
                        names()
                    ),
                );
                continue;
            }
            use crate::inventory::reader::Value;
            if key.name == "proof_wait_seconds" {
                if !matches!(&item.value, Value::Integer(n) if (0..=600).contains(n)) {
                    self.at(
                        item.span.start,
                        "setting `proof_wait_seconds` must be an integer from 0 to 600".to_string(),
                    );
                }
                continue;
            }
            if kind == ProviderKind::AwsIam && key.name == "regions" {
                self.check_regions(item);
                continue;
            }
            if kind == ProviderKind::Postgres && key.name == "sslmode" {
                // libpq's values that the postgres provider's TLS takes (its `tls` module).
                const SSLMODES: &[&str] =
                    &["disable", "prefer", "require", "verify-ca", "verify-full"];
                if !matches!(&item.value, Value::String(s) if SSLMODES.contains(&s.as_ref())) {
                    self.at(
                        item.span.start,
                        format!("setting `sslmode` must be one of {}", SSLMODES.join(", ")),
                    );
                }
                continue;
            }
            if key.name == "max_concurrency" {
                if !matches!(&item.value, Value::Integer(n) if (1..=64).contains(n)) {
                    self.at(
                        item.span.start,
                        "setting `max_concurrency` must be an integer from 1 to 64".to_string(),
                    );
                }
                continue;
            }
            let ok = matches!(&item.value, Value::String(s) if !s.is_empty());
            if !ok {
                self.at(
                    item.span.start,
                    format!("setting `{}` must be a non-empty string", key.name),
                );
            }
        }
        for (name, required, what) in known {
            let present = settings.is_some_and(|t| t.entries.iter().any(|(k, _)| k.name == *name));
            if *required && !present {
                let at = if settings.is_some() { table_at } else { id.at };
                self.at(
                    at,
                    format!(
                        "provider `{}` of kind {kind} needs settings.{name}: {what}",
                        id.as_str()
                    ),
                );
            }
        }
    }

    /// `regions` of an aws-iam provider: a non-empty array of distinct AWS region names
    /// (`us-east-1`, `eu-west-2`, `us-gov-west-1`, ...), each searched by CloudTrail.
    fn check_regions(&mut self, item: &crate::inventory::reader::Item<'_>) {
        use crate::inventory::reader::Value;
        let Value::Array(a) = &item.value else {
            self.at(
                item.span.start,
                format!(
                    "setting `regions` must be an array of AWS region names (like [\"us-east-1\", \"eu-west-1\"]), not a {}",
                    item.value.type_name()
                ),
            );
            return;
        };
        if a.items.is_empty() {
            self.at(
                item.span.start,
                "setting `regions` must name at least one AWS region (or be left out: the provider's region)".to_string(),
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for (i, r) in a.items.iter().enumerate() {
            match &r.value {
                Value::String(name) if is_region_name(name) => {
                    if seen.contains(&name.as_ref()) {
                        self.at(
                            r.span.start,
                            format!("setting `regions` names region {name:?} twice"),
                        );
                    }
                    seen.push(name.as_ref());
                }
                Value::String(name) => self.at(
                    r.span.start,
                    format!(
                        "setting `regions`: item {} ({name:?}) is not an AWS region name like us-east-1",
                        i + 1
                    ),
                ),
                other => self.at(
                    r.span.start,
                    format!(
                        "setting `regions`: item {} is not an AWS region name (found {})",
                        i + 1,
                        other.type_name()
                    ),
                ),
            }
        }
    }

    /// Store settings: known names only, every value a non-empty string, and AppRole needs
    /// its role id.
    fn check_store_settings(
        &mut self,
        kind: StoreKind,
        id: &Str<'_>,
        settings: Option<&crate::inventory::reader::Table<'_>>,
    ) {
        use crate::inventory::reader::Value;
        let Some(known) = store_settings(kind) else {
            return;
        };
        let entries = settings.map(|t| t.entries.as_slice()).unwrap_or_default();
        for (key, item) in entries {
            if !known.contains(&key.name.as_ref()) {
                self.at(
                    key.span.start,
                    format!(
                        "unknown setting `{}` for a store of kind {kind}: expected {}",
                        key.name,
                        known.join(", ")
                    ),
                );
            } else if !matches!(&item.value, Value::String(s) if !s.is_empty()) {
                self.at(
                    item.span.start,
                    format!("setting `{}` must be a non-empty string", key.name),
                );
            }
        }
        let get = |name: &str| {
            entries
                .iter()
                .find(|(k, _)| k.name == name)
                .map(|(_, item)| item)
        };
        if kind == StoreKind::VaultKv2
            && let Some(auth) = get("auth")
        {
            match &auth.value {
                Value::String(a) if a == "token" => {}
                Value::String(a) if a == "approle" => {
                    if get("role_id").is_none() {
                        self.at(
                            auth.span.start,
                            format!("store `{}`: auth = \"approle\" needs settings.role_id (the credential is the secret id)", id.as_str()),
                        );
                    }
                }
                _ => self.at(
                    auth.span.start,
                    format!(
                        "store `{}`: auth must be \"token\" or \"approle\"",
                        id.as_str()
                    ),
                ),
            }
        }
    }

    fn provider(&mut self, item: Item<'_>) {
        let Some(p) = spec::provider(item, &mut self.problems) else {
            return;
        };
        self.check_id(&p.id, "provider");
        let kind = ProviderKind::parse(p.kind.as_str()).unwrap_or_else(|| {
            self.at(
                p.kind.at,
                format!(
                    "unknown provider kind {:?}: expected one of {}",
                    p.kind.as_str(),
                    ProviderKind::names()
                ),
            );
            ProviderKind::Manual
        });
        if let Some(feature) = kind.feature().filter(|_| !kind.is_built()) {
            self.at(p.kind.at, not_built("provider", kind.as_str(), feature));
        }
        let needs_credential = !matches!(kind, ProviderKind::Manual | ProviderKind::AwsIam);
        if needs_credential && p.admin_credential.is_none() {
            self.at(
                p.id.at,
                format!("provider `{}` of kind {kind} needs admin_credential (keyring:NAME, env:VAR or store:STORE_ID:PATH)", p.id.as_str()),
            );
        }
        if kind == ProviderKind::LiteLlm && p.base_url.is_none() {
            self.at(
                p.id.at,
                format!(
                    "provider `{}` of kind litellm needs base_url: the address of the LiteLLM proxy",
                    p.id.as_str()
                ),
            );
        }
        if let Some(u) = &p.base_url {
            self.check_url(u, "base_url", p.allow_insecure_http);
            if kind == ProviderKind::Postgres {
                self.at(
                    u.at,
                    "postgres providers take the server from the admin credential (a postgresql:// URL); remove base_url",
                );
            }
        }
        self.check_provider_settings(kind, &p.id, p.settings.as_ref(), p.at);
        let admin_credential = self.credential(p.admin_credential, None);
        let first = (self.b.provider_index.get(p.id.as_str())).map(|&i| self.b.providers[i].origin);
        let duplicate = self.duplicate(first, &p.id, "provider");
        let line = self.line(p.at);
        let def = ProviderDef {
            id: p.id.into_string(),
            kind,
            admin_credential,
            base_url: p.base_url.map(Str::into_string),
            settings: p.settings.map(table_to_json).unwrap_or_default(),
            origin: Origin {
                file: self.file,
                line,
            },
        };
        if !duplicate {
            self.b
                .provider_index
                .insert(def.id.clone(), self.b.providers.len());
        }
        self.b.providers.push(def);
    }

    fn store(&mut self, item: Item<'_>) {
        let Some(s) = spec::store(item, &mut self.problems) else {
            return;
        };
        self.check_id(&s.id, "store");
        let kind = StoreKind::parse(s.kind.as_str()).unwrap_or_else(|| {
            self.at(
                s.kind.at,
                format!(
                    "unknown store kind {:?}: expected one of {}",
                    s.kind.as_str(),
                    StoreKind::names()
                ),
            );
            StoreKind::Memory
        });
        if let Some(feature) = kind.feature().filter(|_| !kind.is_built()) {
            self.at(s.kind.at, not_built("store", kind.as_str(), feature));
        }
        if kind == StoreKind::VaultKv2 {
            if s.address.is_none() {
                self.at(
                    s.id.at,
                    format!("store `{}` of kind vault-kv2 needs address", s.id.as_str()),
                );
            }
            if s.credential.is_none() {
                self.at(
                    s.id.at,
                    format!(
                        "store `{}` of kind vault-kv2 needs credential (a Vault token reference)",
                        s.id.as_str()
                    ),
                );
            }
        }
        if let Some(required) = store_required(kind) {
            if s.credential.is_none() {
                self.at(
                    s.id.at,
                    format!(
                        "store `{}` of kind {kind} needs credential ({})",
                        s.id.as_str(),
                        required.0
                    ),
                );
            }
            let missing: Vec<&str> = required
                .1
                .iter()
                .copied()
                .filter(|name| {
                    !s.settings
                        .as_ref()
                        .is_some_and(|t| t.entries.iter().any(|(k, _)| k.name == *name))
                })
                .collect();
            if !missing.is_empty() {
                self.at(
                    s.id.at,
                    format!(
                        "store `{}` of kind {kind} needs settings {}",
                        s.id.as_str(),
                        missing.join(", ")
                    ),
                );
            }
        }
        if let Some(a) = &s.address {
            self.check_url(a, "address", s.allow_insecure_http);
            if kind == StoreKind::Keyring {
                self.at(a.at, "keyring stores live on this machine: remove address");
            }
        }
        self.check_store_settings(kind, &s.id, s.settings.as_ref());
        let credential = self.credential(s.credential, Some(s.id.as_str()));
        let first = (self.b.store_index.get(s.id.as_str())).map(|&i| self.b.stores[i].origin);
        let duplicate = self.duplicate(first, &s.id, "store");
        let line = self.line(s.at);
        let def = StoreDef {
            id: s.id.into_string(),
            kind,
            address: s.address.map(Str::into_string),
            credential,
            settings: s.settings.map(table_to_json).unwrap_or_default(),
            origin: Origin {
                file: self.file,
                line,
            },
        };
        if !duplicate {
            self.b
                .store_index
                .insert(def.id.clone(), self.b.stores.len());
        }
        self.b.stores.push(def);
    }

    fn agent(&mut self, item: Item<'_>) {
        let Some(a) = spec::agent(item, &mut self.problems) else {
            return;
        };
        self.check_id(&a.id, "agent");
        let mut expected_networks = Vec::with_capacity(a.expected_networks.len());
        for n in &a.expected_networks {
            let text = n.as_str();
            let parsed = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => expected_networks.push(net),
                Err(_) => self.at(
                    n.at,
                    format!("invalid network {text:?} in expected_networks: expected CIDR like 203.0.113.0/24 or 2001:db8::/32"),
                ),
            }
        }
        let active_hours = a.active_hours.and_then(|h| {
            let days = parse_days(h.days.as_str());
            if days.is_none() {
                self.at(
                    h.days.at,
                    format!("invalid active_hours.days {:?}: expected day names like \"mon-fri\", \"sat,sun\" or \"daily\"", h.days.as_str()),
                );
            }
            let mut time = |v: &Str<'_>, field: &str| {
                let t = NaiveTime::parse_from_str(v.as_str(), "%H:%M").ok();
                if t.is_none() {
                    self.at(
                        v.at,
                        format!(
                            "invalid active_hours.{field} {:?}: expected HH:MM (24-hour)",
                            v.as_str()
                        ),
                    );
                }
                t
            };
            let start = time(&h.start, "start");
            let end = time(&h.end, "end");
            let timezone = match &h.timezone {
                Some(tz) => match zone(tz.as_str()) {
                    Ok(z) => Some(z),
                    Err(message) => {
                        self.at(tz.at, format!("active_hours.{message}"));
                        return None;
                    }
                },
                None => None,
            };
            Some(ActiveHours {
                days: days?,
                start: start?,
                end: end?,
                timezone,
            })
        });
        let first = (self.b.agent_index.get(a.id.as_str())).map(|&i| self.b.agents[i].origin);
        let duplicate = self.duplicate(first, &a.id, "agent");
        let line = self.line(a.at);
        let non_blank = |s: Option<Str<'_>>| {
            s.filter(|s| !s.as_str().trim().is_empty())
                .map(Str::into_string)
        };
        let def = Agent {
            id: a.id.into_string(),
            owner: non_blank(a.owner),
            oncall: non_blank(a.oncall),
            description: a.description.map(Str::into_string),
            expected_networks,
            active_hours,
            origin: Origin {
                file: self.file,
                line,
            },
        };
        if !duplicate {
            self.b
                .agent_index
                .insert(def.id.clone(), self.b.agents.len());
        }
        self.b.agents.push(def);
    }

    /// A `[[notifiers]]` entry: the fields its kind needs (and no other), credential
    /// references where a value is a secret, known routes.
    fn notifier(&mut self, item: Item<'_>) {
        let Some(n) = spec::notifier(item, &mut self.problems) else {
            return;
        };
        self.check_id(&n.id, "notifier");
        let id = n.id.as_str().to_string();
        let kind = match NotifierKind::parse(n.kind.as_str()) {
            Some(k) => k,
            None => {
                self.at(
                    n.kind.at,
                    format!(
                        "unknown notifier kind {:?}: expected one of {}",
                        n.kind.as_str(),
                        NotifierKind::names()
                    ),
                );
                return;
            }
        };
        let (needs, forbids): (&[&str], &[&str]) = match kind {
            NotifierKind::Slack => (&["url"], &["routing_key", "secret"]),
            NotifierKind::PagerDuty => (&["routing_key"], &["secret"]),
            NotifierKind::Webhook => (&["url", "secret"], &["routing_key"]),
        };
        let present = |name: &str| match name {
            "url" => n.url.as_ref().map(|v| v.at),
            "routing_key" => n.routing_key.as_ref().map(|v| v.at),
            _ => n.secret.as_ref().map(|v| v.at),
        };
        for name in needs {
            if present(name).is_none() {
                let what = match *name {
                    "url" if kind == NotifierKind::Slack => {
                        "a credential reference to the incoming-webhook URL (the URL is itself a secret)"
                    }
                    "url" => "the receiver's URL, or a credential reference to it",
                    "routing_key" => "a credential reference to the Events API v2 integration key",
                    _ => "a credential reference to the HMAC-SHA256 signing secret",
                };
                self.at(
                    n.id.at,
                    format!("notifier `{id}` of kind {kind} needs {name}: {what}"),
                );
            }
        }
        for name in forbids {
            if let Some(at) = present(name) {
                self.at(
                    at,
                    format!("notifier `{id}` of kind {kind} takes no {name}: remove it"),
                );
            }
        }
        let url = n.url.as_ref().and_then(|u| {
            let text = u.as_str();
            let is_reference = ["env:", "keyring:", "store:"]
                .iter()
                .any(|p| text.starts_with(p));
            if is_reference {
                return self.credential(Some(u.clone()), None).map(Endpoint::Secret);
            }
            if kind == NotifierKind::Slack {
                self.at(
                    u.at,
                    "a Slack incoming-webhook URL is itself a secret (anyone holding it can post): put it in a keyring:, env: or store: reference (value not shown)",
                );
                return None;
            }
            self.check_url(u, "url", n.allow_insecure_http);
            Some(Endpoint::Url(text.to_string()))
        });
        let routing_key = self.credential(n.routing_key, None);
        let secret = self.credential(n.secret, None);
        let routes = match &n.route {
            None => vec![Route::Incident],
            Some((at, names)) => {
                if names.is_empty() {
                    self.at(
                        *at,
                        format!(
                            "notifier `{id}`: route is empty; expected some of {}",
                            Route::names()
                        ),
                    );
                }
                let mut routes = Vec::new();
                for r in names {
                    match Route::parse(r.as_str()) {
                        Some(route) if !routes.contains(&route) => routes.push(route),
                        Some(_) => {}
                        None => self.at(
                            r.at,
                            format!(
                                "unknown route {:?} for notifier `{id}`: expected {}",
                                r.as_str(),
                                Route::names()
                            ),
                        ),
                    }
                }
                routes
            }
        };
        if self.b.notifiers.iter().any(|d| d.id == id) {
            self.at(n.id.at, format!("duplicate notifier id `{id}`"));
            return;
        }
        for a in &n.agents {
            self.b
                .notifier_agent_refs
                .push((self.file, a.at, a.as_str().to_string()));
        }
        let line = self.line(n.at);
        self.b.notifiers.push(NotifierDef {
            id,
            kind,
            url,
            routing_key,
            secret,
            routes,
            agents: n.agents.into_iter().map(Str::into_string).collect(),
            owners: n.owners,
            origin: Origin {
                file: self.file,
                line,
            },
        });
    }

    /// Everything about a key that needs no other table; references are checked at the end.
    fn key(&mut self, item: Item<'_>) {
        let Some(k) = spec::key(item, &mut self.problems) else {
            return;
        };
        self.check_id(&k.id, "key");
        let first = (self.b.key_index.get(k.id.as_str())).map(|&i| self.b.keys[i].origin);
        if self.duplicate(first, &k.id, "key") {
            return;
        }
        let id = k.id.as_str();
        match (&k.store, &k.secret_path) {
            (Some(s), None) => {
                self.at(s.at, format!("key `{id}` has a store but no secret_path"));
            }
            (None, Some(p)) => {
                self.at(p.at, format!("key `{id}` has secret_path but no store"));
            }
            _ => {}
        }
        if let Some(h) = &k.hint {
            check_hint(&mut self.problems, h);
        }
        if let Some(f) = &k.fingerprint {
            check_fingerprint(&mut self.problems, f);
        }
        let created_at = date(&mut self.problems, k.created_at, "created_at");
        let last_rotated = date(&mut self.problems, k.last_rotated, "last_rotated");
        let rotation_days =
            positive_days(&mut self.problems, k.rotation_days, "rotation_days", 3650);
        let line = self.line(k.at);

        let agents_start = self.b.agent_refs.len();
        self.b.agent_refs.extend(k.agents.iter().map(|a| a.at));
        self.b.key_refs.push(KeyRefs {
            file: self.file,
            id_at: k.id.at,
            provider_at: k.provider.at,
            store_at: k.store.as_ref().map(|s| s.at),
            agents: agents_start..self.b.agent_refs.len(),
        });
        let strings = |v: Vec<Str<'_>>| v.into_iter().map(Str::into_string).collect::<Vec<_>>();
        let key = Key {
            id: k.id.into_string(),
            agents: strings(k.agents),
            provider: k.provider.into_string(),
            provider_key_id: k.provider_key_id.map(Str::into_string),
            hint: k.hint.map(Str::into_string),
            fingerprint: k.fingerprint.map(Str::into_string),
            scopes: strings(k.scopes),
            needs: k.needs.map(strings),
            store: k.store.map(Str::into_string),
            secret_path: k.secret_path.map(Str::into_string),
            secret_field: k
                .secret_field
                .map_or_else(|| "value".to_string(), Str::into_string),
            created_at,
            last_rotated,
            rotation_days,
            description: k.description.map(Str::into_string),
            origin: Origin {
                file: self.file,
                line,
            },
        };
        self.b.key_index.insert(key.id.clone(), self.b.keys.len());
        self.b.keys.push(key);
    }
}

/// The anomaly rules of `keyfire audit` (DESIGN section 7), as `policy.respond_to` names them.
const AUDIT_RULES: &[&str] = &[
    "volume",
    "network",
    "auth_failures",
    "off_hours",
    "new_model",
];

/// `localhost`, 127.0.0.0/8 or ::1: traffic that never leaves this machine.
fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn positive_days(out: &mut Problems, v: Option<Int>, field: &str, max: i64) -> Option<u32> {
    let v = v?;
    let n = v.value;
    if n < 1 || n > max {
        out.push((
            v.at,
            format!("{field} must be between 1 and {max}, got {n}"),
        ));
        None
    } else {
        u32::try_from(n).ok()
    }
}

/// An IANA time zone name, or why it is not one.
fn zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse::<chrono_tz::Tz>().map_err(|_| {
        format!("timezone {name:?} is not an IANA time zone name (like \"UTC\", \"Europe/Berlin\" or \"America/New_York\")")
    })
}

fn validate_policy(out: &mut Problems, p: spec::PolicySpec<'_>) -> Policy {
    let d = Policy::default();
    let timezone = match p.timezone {
        Some(tz) => match zone(tz.as_str()) {
            Ok(z) => z.name().to_string(),
            Err(message) => {
                out.push((tz.at, format!("policy.{message}")));
                d.timezone.clone()
            }
        },
        None => d.timezone.clone(),
    };
    Policy {
        rotation_days: positive_days(out, p.rotation_days, "rotation_days", 3650)
            .unwrap_or(d.rotation_days),
        after_incident_rotation_days: positive_days(
            out,
            p.after_incident_rotation_days,
            "after_incident_rotation_days",
            3650,
        )
        .unwrap_or(d.after_incident_rotation_days),
        drill_every_days: positive_days(out, p.drill_every_days, "drill_every_days", 3650)
            .unwrap_or(d.drill_every_days),
        report_deadline_hours: positive_days(
            out,
            p.report_deadline_hours,
            "report_deadline_hours",
            8760,
        )
        .unwrap_or(d.report_deadline_hours),
        due_soon_days: positive_days(out, p.due_soon_days, "due_soon_days", 365)
            .unwrap_or(d.due_soon_days),
        timezone,
        volume_factor: match p.volume_factor {
            Some(v) if !(1.0..=1000.0).contains(&v.value) => {
                out.push((
                    v.at,
                    format!("volume_factor must be between 1 and 1000, got {}", v.value),
                ));
                d.volume_factor
            }
            Some(v) => v.value,
            None => d.volume_factor,
        },
        auth_failure_threshold: positive_days(
            out,
            p.auth_failure_threshold,
            "auth_failure_threshold",
            1_000_000,
        )
        .unwrap_or(d.auth_failure_threshold),
        baseline_days: positive_days(out, p.baseline_days, "baseline_days", 365)
            .unwrap_or(d.baseline_days),
        respond_to: match p.respond_to {
            Some(rules) => {
                for r in &rules {
                    if !AUDIT_RULES.contains(&r.as_str()) {
                        out.push((
                            r.at,
                            format!(
                                "unknown rule {:?} in respond_to: expected {}",
                                r.as_str(),
                                AUDIT_RULES.join(", ")
                            ),
                        ));
                    }
                }
                rules.into_iter().map(Str::into_string).collect()
            }
            None => d.respond_to,
        },
        notify_timeout_seconds: positive_days(
            out,
            p.notify_timeout_seconds,
            "notify_timeout_seconds",
            60,
        )
        .unwrap_or(d.notify_timeout_seconds),
    }
}

/// An AWS region name: a partition-and-area prefix and a number (`us-east-1`,
/// `ap-southeast-2`, `us-gov-west-1`, `cn-north-1`). Not a list of today's regions, which
/// grows; only the shape, so that a typo like `us-east1` or `US-EAST-1` is caught.
pub(crate) fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words[0].len() == 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Why a `secret_path` cannot name a secret in a store of this kind (the path is a name or a
/// folder path, never a value, so it may be quoted).
fn secret_path_problem(kind: StoreKind, path: &str) -> Option<String> {
    match kind {
        // Doppler: "may only contain uppercase letters, numbers, and underscores" and "may not
        // start with a number" (docs.doppler.com/docs/secrets, "Secret Names").
        StoreKind::Doppler => {
            let valid = !path.is_empty()
                && !path.starts_with(|c: char| c.is_ascii_digit())
                && path
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            (!valid).then(|| {
                format!(
                    "{path:?} is not a Doppler secret name (uppercase letters, digits and underscores, not starting with a digit)"
                )
            })
        }
        // Infisical: the folder and the name, `/agents/support/OPENAI_KEY`.
        StoreKind::Infisical => (path.trim().is_empty() || path.trim().ends_with('/')).then(|| {
            format!(
                "{path:?} names no secret: give the folder and the name, e.g. /agents/support/OPENAI_KEY"
            )
        }),
        _ => None,
    }
}

/// What a store kind cannot work without: what its credential is, and its required settings.
fn store_required(kind: StoreKind) -> Option<(&'static str, &'static [&'static str])> {
    match kind {
        StoreKind::Doppler => Some((
            "a Doppler service token with write access, or a service account token",
            &["project", "config"],
        )),
        StoreKind::Infisical => Some((
            "the Universal Auth client secret of a machine identity",
            &["client_id", "project_id", "environment"],
        )),
        _ => None,
    }
}

/// Settings a store kind understands (`None`: not checked).
fn store_settings(kind: StoreKind) -> Option<&'static [&'static str]> {
    match kind {
        StoreKind::VaultKv2 => Some(&["mount", "namespace", "auth", "role_id", "approle_mount"]),
        StoreKind::AwsSecretsManager => Some(&["region", "profile"]),
        StoreKind::Keyring => Some(&["service"]),
        StoreKind::Doppler => Some(&["project", "config"]),
        StoreKind::Infisical => Some(&["client_id", "project_id", "environment"]),
        StoreKind::Memory => None,
    }
}

/// Settings a provider kind understands: (name, required, what it is).
fn provider_settings(kind: ProviderKind) -> Option<&'static [(&'static str, bool, &'static str)]> {
    match kind {
        ProviderKind::OpenAi => Some(&[
            (
                "project_id",
                true,
                "the project whose keys keyfire manages (proj_...)",
            ),
            (
                "organization",
                false,
                "the organization id sent as OpenAI-Organization (org-...)",
            ),
            (
                "discover_projects",
                false,
                "`all`: inventory discover lists the keys of every project the admin key sees (default: project_id only)",
            ),
            (
                "max_concurrency",
                false,
                "how many keys of a campaign run at once (default 16)",
            ),
        ]),
        ProviderKind::Anthropic => Some(&[
            (
                "workspace_id",
                false,
                "limits key searches to one workspace (wrkspc_...)",
            ),
            (
                "max_concurrency",
                false,
                "how many keys of a campaign run at once (default 16)",
            ),
        ]),
        ProviderKind::AwsIam => Some(&[
            (
                "region",
                false,
                "the AWS region (default: the SDK's, else us-east-1)",
            ),
            (
                "profile",
                false,
                "the AWS profile for the SDK's default credential chain",
            ),
            ("user", false, "the IAM user owning the keys"),
            (
                "path_prefix",
                false,
                "inventory discover lists only the IAM users under this path (default: every user)",
            ),
            (
                "regions",
                false,
                "the regions whose CloudTrail management events are searched (default: the provider's region)",
            ),
            (
                "cloudtrail_url",
                false,
                "a CloudTrail endpoint of its own (default: base_url, else AWS)",
            ),
            (
                "sts_url",
                false,
                "an STS endpoint of its own, e.g. a regional or VPC endpoint (default: base_url, else AWS)",
            ),
            (
                "proof_wait_seconds",
                false,
                "how long the revocation proof waits for IAM to reflect a deletion (default 30)",
            ),
            (
                "max_concurrency",
                false,
                "how many keys of a campaign run at once (default 16)",
            ),
        ]),
        ProviderKind::SendGrid => Some(&[
            (
                "on_behalf_of",
                false,
                "a subuser's username (or `account-id ID`) sent as the on-behalf-of header",
            ),
            (
                "max_concurrency",
                false,
                "how many keys of a campaign run at once (default 16)",
            ),
        ]),
        ProviderKind::LiteLlm => Some(&[(
            "max_concurrency",
            false,
            "how many keys of a campaign run at once (default 16)",
        )]),
        ProviderKind::Postgres => Some(&[
            (
                "database",
                false,
                "where the role logs in to verify (default: the admin URL's)",
            ),
            (
                "sslmode",
                false,
                "TLS when the admin URL names no sslmode: disable, prefer, require, verify-ca or verify-full (default: verify-full, prefer for loopback hosts)",
            ),
            (
                "sslrootcert",
                false,
                "a PEM file of the CAs that sign the server's certificate, or `system`, when the admin URL names none (default: the system's trust store)",
            ),
            (
                "max_concurrency",
                false,
                "how many keys of a campaign run at once (default 16)",
            ),
        ]),
        _ => None,
    }
}

/// `settings` tables go to providers and stores as JSON objects. Dates become their TOML
/// text; a NaN or infinite float becomes null, as JSON has neither.
fn table_to_json(t: Table<'_>) -> serde_json::Map<String, serde_json::Value> {
    t.into_entries()
        .into_iter()
        .map(|(k, v)| (k.name.into_owned(), value_to_json(v.value)))
        .collect()
}

fn value_to_json(v: Value<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::String(s) => J::String(s.into_owned()),
        Value::Integer(i) => J::from(i),
        Value::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        Value::Boolean(b) => J::Bool(b),
        Value::Datetime(d) => J::String(d.to_string()),
        Value::Array(a) => J::Array(
            a.items
                .into_iter()
                .map(|i| value_to_json(i.value))
                .collect(),
        ),
        Value::Table(t) => J::Object(table_to_json(t)),
    }
}

fn parse_days(text: &str) -> Option<Vec<Weekday>> {
    let day = |s: &str| -> Option<Weekday> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "mon" => Weekday::Mon,
            "tue" => Weekday::Tue,
            "wed" => Weekday::Wed,
            "thu" => Weekday::Thu,
            "fri" => Weekday::Fri,
            "sat" => Weekday::Sat,
            "sun" => Weekday::Sun,
            _ => return None,
        })
    };
    let text = text.trim();
    if text.eq_ignore_ascii_case("daily") || text.eq_ignore_ascii_case("mon-sun") {
        return Some(vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ]);
    }
    let mut days = Vec::new();
    for part in text.split(',') {
        if let Some((a, b)) = part.split_once('-') {
            let (mut d, end) = (day(a)?, day(b)?);
            loop {
                if !days.contains(&d) {
                    days.push(d);
                }
                if d == end {
                    break;
                }
                d = d.succ();
            }
        } else {
            let d = day(part)?;
            if !days.contains(&d) {
                days.push(d);
            }
        }
    }
    (!days.is_empty()).then_some(days)
}

fn date(out: &mut Problems, v: Option<spec::Date>, field: &str) -> Option<NaiveDate> {
    let v = v?;
    let dt = v.value;
    let parsed = dt.date.and_then(|d| {
        NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
    });
    if parsed.is_none() {
        out.push((
            v.at,
            format!("{field} must be a date like 2026-08-01, got {dt}"),
        ));
    }
    parsed
}

/// A hint is the key's prefix and its last four characters, nothing more: less could match
/// several keys at the provider (and keyfire would refuse to pick one), more leaks the key.
fn check_hint(out: &mut Problems, v: &Str<'_>) {
    let text = v.as_str();
    let split = text.split_once("...").or_else(|| text.split_once('…'));
    let ok = match split {
        Some((prefix, suffix)) => {
            (1..=16).contains(&prefix.chars().count()) && suffix.chars().count() == 4
        }
        None => false,
    };
    if !ok {
        out.push((
            v.at,
            "hint must be the key's prefix, `...` and its last 4 characters (like \"sk-proj-...Q2x7\"); never write more of a key into the inventory".into(),
        ));
    }
}

/// A fingerprint is `sha256:` and 64 lowercase hex digits, nothing else: anything longer or
/// of another shape may be a pasted key, so the message never repeats the value.
fn check_fingerprint(out: &mut Problems, v: &Str<'_>) {
    if !crate::secret::fingerprint::is_valid(v.as_str()) {
        out.push((
            v.at,
            "fingerprint must be `sha256:` followed by the 64 lowercase hex digits of the key value's SHA-256 (like \"sha256:9f86d0...\"); the value given is not shown".into(),
        ));
    }
}

/// The error for a kind this build left out (see `ProviderKind::feature`).
fn not_built(what: &str, kind: &str, feature: &str) -> String {
    format!(
        "{what} kind {kind:?} is not in this build of keyfire: build it with the `{feature}` feature (`cargo build --release --features {feature}`, or the default features, which include every kind)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse() {
        assert_eq!(parse_days("mon-fri").map(|d| d.len()), Some(5));
        assert_eq!(parse_days("fri-mon").map(|d| d.len()), Some(4));
        assert_eq!(parse_days("sat,sun").map(|d| d.len()), Some(2));
        assert!(parse_days("funday").is_none());
    }

    #[test]
    fn credential_refs() {
        assert!(matches!(
            CredentialRef::parse("env:OPENAI_ADMIN"),
            Ok(CredentialRef::Env { .. })
        ));
        assert!(matches!(
            CredentialRef::parse("keyring:openai-admin"),
            Ok(CredentialRef::Keyring { .. })
        ));
        let r = CredentialRef::parse("store:vault:ops/openai#token");
        assert_eq!(
            r,
            Ok(CredentialRef::Store {
                store: "vault".into(),
                path: "ops/openai".into(),
                field: "token".into()
            })
        );
        assert!(CredentialRef::parse("sk-proj-abc").is_err());
        assert!(CredentialRef::parse("env:1BAD").is_err());
        assert!(CredentialRef::parse("store:vault").is_err());
    }

    fn problems(text: &str) -> Vec<String> {
        match load_str(Path::new("inv.toml"), text) {
            Err(InventoryError::Invalid(p)) => p
                .iter()
                .map(|p| format!("{}:{}: {}", p.line, p.column, p.message))
                .collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn a_key_value_anywhere_in_the_file_is_refused_unquoted() {
        let key = "sk-proj-Zx9Qw2Er4Ty6Ui8Op0As1Df3Gh5Jk7Lz";
        let p = problems(&format!(
            "[[providers]]\nid = \"oa\"\nkind = \"openai\"\nadmin_credential = \"env:OA\"\nsettings = {{ project_id = \"proj_a\", extra = {{ deep = \"{key}\" }} }}\n\
             [[keys]]\nid = \"k\"\nagents = [\"a\"]\nprovider = \"oa\"\nscopes = [\"model.request\", \"{key}\"]\ncreated_at = 2026-01-01\n\
             provider_key_id = \"{key}\"\nhint = \"sk-proj-...Lz00\"\ndescription = \"was AKIAIOSFODNN7EXAMPLE before\"\n\
             secret_path = \"a#b\" # the old one was {key}\n"
        ));
        let held: Vec<&String> = p
            .iter()
            .filter(|m| m.contains("holds what looks like"))
            .collect();
        assert_eq!(held.len(), 4, "{p:#?}");
        assert!(
            held[0].starts_with("5:55: `deep` holds what looks like an OpenAI project key (not shown)"),
            "{p:#?}"
        );
        assert!(held[1].starts_with("10:29: `scopes` holds"), "{p:#?}");
        assert!(held[2].starts_with("12:20: `provider_key_id` holds"), "{p:#?}");
        assert!(held[3].starts_with("15:39: a comment holds"), "{p:#?}");
        assert!(p.iter().all(|m| !m.contains("Zx9Qw2Er4Ty6")), "{p:#?}");
    }

    #[test]
    fn every_problem_of_a_table_is_reported() {
        let p = problems(
            "schema = 1\n[[keys]]\nidd = \"a\"\nprovider = 5\ncreated_at = \"2026-01-01\"\nscopes = [\"x\", 3]\n",
        );
        assert_eq!(p.len(), 5, "{p:#?}");
        assert!(
            p[0].starts_with("2:1: missing field `id` in [[keys]]"),
            "{p:#?}"
        );
        assert!(
            p[1].starts_with("3:1: unknown field `idd`, expected one of `id`"),
            "{p:#?}"
        );
        assert!(
            p[2].starts_with("4:12: invalid type: integer `5`, expected a string for `provider`"),
            "{p:#?}"
        );
        assert!(
            p[3].starts_with("5:14: invalid type: string \"2026-01-01\", expected a TOML date"),
            "{p:#?}"
        );
        assert!(
            p[4].starts_with("6:16: invalid type: integer `3`, expected a string for `scopes`"),
            "{p:#?}"
        );
    }

    #[test]
    fn a_syntax_error_is_not_buried_under_dangling_references() {
        let p = problems("[[keys]]\nid = \"k\"\nprovider = \"nowhere\"\n[[agents]\n");
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].starts_with("4:9: expected `]]` to close the table header, found `]`"),
            "{p:#?}"
        );
    }

    #[test]
    fn inline_arrays_settings_and_origins() {
        let text = "schema = 1\nproviders = [{ id = \"p\", kind = \"manual\", settings = { project = \"x\", n = 2, on = 2026-08-01, deep = { ok = true } } }]\n\n# a comment\n[[agents]]\nid = \"a\"\n\n[[keys]]\nid = \"k1\"\nagents = [\"a\"]\nprovider = \"p\"\n\n[[keys]]\nid = \"k2\"\nprovider = \"p\"\nlast_rotated = 2026-08-01T10:00:00Z\n";
        let inv = load_str(Path::new("inv.toml"), text).expect("valid");
        let p = inv.provider("p").expect("provider");
        assert_eq!(p.origin.line, 2);
        assert_eq!(p.settings["project"], "x");
        assert_eq!(p.settings["n"], 2);
        assert_eq!(p.settings["on"], "2026-08-01");
        assert_eq!(p.settings["deep"]["ok"], true);
        assert_eq!(inv.agent("a").map(|a| a.origin.line), Some(5));
        assert_eq!(inv.key("k1").map(|k| k.origin.line), Some(8));
        let k2 = inv.key("k2").expect("k2");
        assert_eq!(k2.origin.line, 13);
        assert_eq!(k2.secret_field, "value");
        assert_eq!(k2.last_rotated, NaiveDate::from_ymd_opt(2026, 8, 1));
        assert_eq!(inv.keys.len(), 2);
    }

    #[test]
    fn duplicates_name_the_first_definition() {
        let p = problems(
            "[[providers]]\nid = \"p\"\nkind = \"manual\"\n[[providers]]\nid = \"p\"\nkind = \"manual\"\n[[keys]]\nid = \"k\"\nprovider = \"p\"\n[[keys]]\nid = \"k\"\nprovider = \"p\"\n",
        );
        assert_eq!(
            p,
            [
                "5:6: duplicate provider id `p` (first defined at inv.toml:1)".to_string(),
                "11:6: duplicate key id `k` (first defined at inv.toml:7)".to_string(),
            ]
        );
    }

    #[test]
    fn aws_postgres_and_store_settings_are_checked_with_positions() {
        let text = r#"schema = 1
[[providers]]
id = "aws"
kind = "aws-iam"
settings = { region = "us-east-1", usr = "typo" }

[[providers]]
id = "db"
kind = "postgres"
admin_credential = "env:PG_ADMIN"
base_url = "http://127.0.0.1:5432"

[[stores]]
id = "bao"
kind = "vault-kv2"
address = "http://127.0.0.1:8200"
credential = "env:SECRET_ID"
settings = { auth = "approle" }

[[stores]]
id = "sm"
kind = "aws-secrets-manager"
settings = { region = 1 }

[[keys]]
id = "db-key"
provider = "db"
hint = "pg-...abcd"
"#;
        let p = problems(text);
        let has = |needle: &str, line: usize| {
            p.iter()
                .any(|x| x.contains(needle) && x.starts_with(&format!("{line}:")))
        };
        assert!(has("unknown setting `usr`", 5), "{p:#?}");
        assert!(has("remove base_url", 11), "{p:#?}");
        assert!(has("needs settings.role_id", 18), "{p:#?}");
        assert!(
            has("setting `region` must be a non-empty string", 23),
            "{p:#?}"
        );
        assert!(has("needs provider_key_id (the role name)", 26), "{p:#?}");
        assert_eq!(p.len(), 5, "{p:#?}");
        // AWS needs no credential (the SDK's default chain), and valid settings pass.
        let ok = r#"schema = 1
[[providers]]
id = "aws"
kind = "aws-iam"
settings = { region = "eu-west-1", profile = "ir", user = "agent", cloudtrail_url = "http://127.0.0.1:9", regions = ["eu-west-1", "us-east-1", "us-gov-west-1"] }
[[stores]]
id = "sm"
kind = "aws-secrets-manager"
[[stores]]
id = "local"
kind = "keyring"
settings = { service = "agents" }
"#;
        assert!(load_str(Path::new("inv.toml"), ok).is_ok());
    }

    #[test]
    fn postgres_sslmode_is_one_of_libpqs_values() {
        let text = r#"schema = 1
[[providers]]
id = "a"
kind = "postgres"
admin_credential = "env:A"
settings = { sslmode = "verify_full" }

[[providers]]
id = "b"
kind = "postgres"
admin_credential = "env:B"
settings = { sslmode = "verify-ca", sslrootcert = "/etc/pg/ca.pem" }
"#;
        let p = problems(text);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].starts_with("6:")
                && p[0].contains(
                    "setting `sslmode` must be one of disable, prefer, require, verify-ca, verify-full"
                ),
            "{p:#?}"
        );
    }

    #[test]
    fn aws_regions_are_checked_item_by_item() {
        let text = r#"schema = 1
[[providers]]
id = "a"
kind = "aws-iam"
settings = { regions = "us-east-1" }

[[providers]]
id = "b"
kind = "aws-iam"
settings = { regions = [] }

[[providers]]
id = "c"
kind = "aws-iam"
settings = { regions = [
  "us-east-1",
  "us-east1",
  3,
  "us-east-1",
] }
"#;
        let p = problems(text);
        let has = |needle: &str, line: usize| {
            p.iter()
                .any(|x| x.contains(needle) && x.starts_with(&format!("{line}:")))
        };
        assert!(has("must be an array of AWS region names", 5), "{p:#?}");
        assert!(has("must name at least one AWS region", 10), "{p:#?}");
        assert!(
            has("item 2 (\"us-east1\") is not an AWS region name", 17),
            "{p:#?}"
        );
        assert!(
            has("item 3 is not an AWS region name (found integer)", 18),
            "{p:#?}"
        );
        assert!(has("names region \"us-east-1\" twice", 19), "{p:#?}");
        assert_eq!(p.len(), 5, "{p:#?}");
        for ok in [
            "us-east-1",
            "ap-southeast-2",
            "us-gov-west-1",
            "cn-north-1",
            "il-central-1",
        ] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in [
            "us-east1",
            "US-EAST-1",
            "east-1",
            "us-east-",
            "",
            "useast-1",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }
}
