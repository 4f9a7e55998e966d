//! Loading and validating inventory files. Every problem names file, line and column.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveTime, Weekday};
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::value::Datetime;

use super::model::*;
use super::spec::*;
use crate::textpos::LineIndex;

/// One thing wrong with an inventory, at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
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

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read inventory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no inventory files found in {0} (expected *.toml files)")]
    EmptyDirectory(PathBuf),
    #[error("no inventory given: pass --inventory PATH, set KEYFIRE_INVENTORY, or create {0}")]
    NoneConfigured(PathBuf),
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

struct Source {
    path: PathBuf,
    text: String,
    lines: LineIndex,
}

/// Collects problems while validating; everything is reported, not just the first.
struct Checker<'a> {
    sources: &'a [Source],
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn at(&mut self, file: usize, span: Range<usize>, message: impl Into<String>) {
        let src = &self.sources[file];
        let (line, column) = src.lines.locate(&src.text, span.start);
        self.problems.push(Problem {
            path: src.path.clone(),
            line,
            column,
            message: message.into(),
        });
    }

    fn line_of(&self, file: usize, span: &Range<usize>) -> usize {
        let src = &self.sources[file];
        src.lines.locate(&src.text, span.start).0
    }
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
        let text = std::fs::read_to_string(&path).map_err(|source| InventoryError::Io {
            path: path.clone(),
            source,
        })?;
        sources.push(Source {
            lines: LineIndex::new(&text),
            path,
            text,
        });
    }
    load_sources(sources)
}

/// Load an inventory from text (the training environment, tests).
pub fn load_str(path: &Path, text: &str) -> Result<Inventory, InventoryError> {
    load_sources(vec![Source {
        path: path.to_path_buf(),
        lines: LineIndex::new(text),
        text: text.to_string(),
    }])
}

fn load_sources(sources: Vec<Source>) -> Result<Inventory, InventoryError> {
    let mut checker = Checker {
        sources: &sources,
        problems: Vec::new(),
    };
    let mut specs = Vec::with_capacity(sources.len());
    for (i, src) in sources.iter().enumerate() {
        match toml::from_str::<FileSpec>(&src.text) {
            Ok(spec) => specs.push((i, spec)),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let message = e.message().trim().to_string();
                checker.at(i, span, describe_parse_error(&message));
            }
        }
    }
    if !checker.problems.is_empty() {
        return Err(InventoryError::Invalid(checker.problems));
    }
    let inventory = validate(&mut checker, specs);
    if checker.problems.is_empty() {
        let files = sources
            .iter()
            .map(|s| SourceFile {
                path: s.path.clone(),
                digest: hex::encode(Sha256::digest(s.text.as_bytes())),
            })
            .collect();
        Ok(Inventory { files, ..inventory })
    } else {
        Err(InventoryError::Invalid(checker.problems))
    }
}

fn describe_parse_error(message: &str) -> String {
    if message.starts_with("unknown field") {
        format!("{message} (inventory schema 1 allows only the documented fields)")
    } else {
        message.to_string()
    }
}

fn validate(c: &mut Checker<'_>, specs: Vec<(usize, FileSpec)>) -> Inventory {
    let mut policy: Option<Policy> = None;
    let mut providers = Vec::new();
    let mut stores = Vec::new();
    let mut agents = Vec::new();
    let mut keys: Vec<(usize, Spanned<KeySpec>)> = Vec::new();
    let mut store_refs: Vec<(usize, Range<usize>, String, Option<String>)> = Vec::new();

    for (file, spec) in specs {
        if let Some(schema) = &spec.schema
            && *schema.get_ref() != 1
        {
            c.at(
                file,
                schema.span(),
                format!(
                    "unsupported schema {}: this keyfire reads schema = 1",
                    schema.get_ref()
                ),
            );
        }
        if let Some(p) = spec.policy {
            if policy.is_some() {
                c.at(
                    file,
                    p.span(),
                    "a second [policy] table: the policy may be set in one file only",
                );
            } else {
                policy = Some(validate_policy(c, file, p.into_inner()));
            }
        }
        for p in spec.providers {
            providers.push(validate_provider(c, file, p, &mut store_refs));
        }
        for s in spec.stores {
            stores.push(validate_store(c, file, s, &mut store_refs));
        }
        for a in spec.agents {
            agents.push(validate_agent(c, file, a));
        }
        for k in spec.keys {
            keys.push((file, k));
        }
    }

    let provider_index = index_ids(
        c,
        "provider",
        providers
            .iter()
            .map(|(p, s)| (&p.id, p.origin.file, s.clone())),
    );
    let store_index = index_ids(
        c,
        "store",
        stores
            .iter()
            .map(|(s, sp)| (&s.id, s.origin.file, sp.clone())),
    );
    let agent_index = index_ids(
        c,
        "agent",
        agents
            .iter()
            .map(|(a, sp)| (&a.id, a.origin.file, sp.clone())),
    );

    for (file, span, store, owner) in store_refs {
        if !store_index.contains_key(&store) {
            c.at(
                file,
                span,
                format!(
                    "credential reference names store `{store}`, which is not defined in [[stores]]"
                ),
            );
        } else if owner.as_deref() == Some(store.as_str()) {
            c.at(
                file,
                span,
                format!("store `{store}` cannot read its own credential from itself"),
            );
        }
    }

    let providers: Vec<ProviderDef> = providers.into_iter().map(|(p, _)| p).collect();
    let stores: Vec<StoreDef> = stores.into_iter().map(|(s, _)| s).collect();
    let agents: Vec<Agent> = agents.into_iter().map(|(a, _)| a).collect();

    let mut key_index: HashMap<String, usize> = HashMap::with_capacity(keys.len());
    let mut first_seen: HashMap<String, (usize, usize)> = HashMap::new();
    let mut out_keys = Vec::with_capacity(keys.len());
    for (file, spanned) in keys {
        let span = spanned.span();
        let spec = spanned.into_inner();
        let id = spec.id.get_ref().clone();
        if let Some((f0, line0)) = first_seen.get(&id) {
            let where_ = format!("{}:{line0}", c.sources[*f0].path.display());
            c.at(
                file,
                spec.id.span(),
                format!("duplicate key id `{id}` (first defined at {where_})"),
            );
            continue;
        }
        let line = c.line_of(file, &span);
        first_seen.insert(id.clone(), (file, line));
        let key = validate_key(
            c,
            file,
            line,
            spec,
            &provider_index,
            &providers,
            &store_index,
            &agent_index,
        );
        key_index.insert(id, out_keys.len());
        out_keys.push(key);
    }

    Inventory {
        policy: policy.unwrap_or_default(),
        providers,
        stores,
        agents,
        keys: out_keys,
        files: Vec::new(),
        provider_index,
        store_index,
        agent_index,
        key_index,
    }
}

fn index_ids<'a>(
    c: &mut Checker<'_>,
    table: &str,
    items: impl Iterator<Item = (&'a String, usize, Range<usize>)>,
) -> HashMap<String, usize> {
    let mut index = HashMap::new();
    let mut first: HashMap<&str, (usize, usize)> = HashMap::new();
    for (i, (id, file, span)) in items.enumerate() {
        if let Some((f0, l0)) = first.get(id.as_str()) {
            let where_ = format!("{}:{l0}", c.sources[*f0].path.display());
            c.at(
                file,
                span,
                format!("duplicate {table} id `{id}` (first defined at {where_})"),
            );
        } else {
            first.insert(id, (file, c.line_of(file, &span)));
            index.insert(id.clone(), i);
        }
    }
    index
}

fn check_id(c: &mut Checker<'_>, file: usize, id: &Spanned<String>, table: &str) {
    let valid = !id.get_ref().is_empty()
        && id
            .get_ref()
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
    if !valid {
        c.at(
            file,
            id.span(),
            format!(
                "invalid {table} id {:?}: expected letters, digits, `-`, `_` or `.`",
                id.get_ref()
            ),
        );
    }
}

fn positive_days(
    c: &mut Checker<'_>,
    file: usize,
    v: &Option<Spanned<i64>>,
    field: &str,
    max: i64,
) -> Option<u32> {
    let v = v.as_ref()?;
    let n = *v.get_ref();
    if n < 1 || n > max {
        c.at(
            file,
            v.span(),
            format!("{field} must be between 1 and {max}, got {n}"),
        );
        None
    } else {
        u32::try_from(n).ok()
    }
}

fn validate_policy(c: &mut Checker<'_>, file: usize, p: PolicySpec) -> Policy {
    let d = Policy::default();
    let timezone = match p.timezone {
        Some(tz) if tz.get_ref() == "UTC" => tz.into_inner(),
        Some(tz) => {
            c.at(
                file,
                tz.span(),
                format!(
                    "unsupported timezone {:?}: this keyfire supports \"UTC\"",
                    tz.get_ref()
                ),
            );
            d.timezone.clone()
        }
        None => d.timezone.clone(),
    };
    Policy {
        rotation_days: positive_days(c, file, &p.rotation_days, "rotation_days", 3650)
            .unwrap_or(d.rotation_days),
        after_incident_rotation_days: positive_days(
            c,
            file,
            &p.after_incident_rotation_days,
            "after_incident_rotation_days",
            3650,
        )
        .unwrap_or(d.after_incident_rotation_days),
        drill_every_days: positive_days(c, file, &p.drill_every_days, "drill_every_days", 3650)
            .unwrap_or(d.drill_every_days),
        report_deadline_hours: positive_days(
            c,
            file,
            &p.report_deadline_hours,
            "report_deadline_hours",
            8760,
        )
        .unwrap_or(d.report_deadline_hours),
        due_soon_days: positive_days(c, file, &p.due_soon_days, "due_soon_days", 365)
            .unwrap_or(d.due_soon_days),
        timezone,
        volume_factor: match p.volume_factor {
            Some(v) if !(1.0..=1000.0).contains(v.get_ref()) => {
                c.at(
                    file,
                    v.span(),
                    format!(
                        "volume_factor must be between 1 and 1000, got {}",
                        v.get_ref()
                    ),
                );
                d.volume_factor
            }
            Some(v) => *v.get_ref(),
            None => d.volume_factor,
        },
        auth_failure_threshold: positive_days(
            c,
            file,
            &p.auth_failure_threshold,
            "auth_failure_threshold",
            1_000_000,
        )
        .unwrap_or(d.auth_failure_threshold),
        baseline_days: positive_days(c, file, &p.baseline_days, "baseline_days", 365)
            .unwrap_or(d.baseline_days),
    }
}

fn credential(
    c: &mut Checker<'_>,
    file: usize,
    v: Option<Spanned<String>>,
    owner_store: Option<&str>,
    store_refs: &mut Vec<(usize, Range<usize>, String, Option<String>)>,
) -> Option<CredentialRef> {
    let v = v?;
    match CredentialRef::parse(v.get_ref()) {
        Ok(r) => {
            if let CredentialRef::Store { store, .. } = &r {
                store_refs.push((
                    file,
                    v.span(),
                    store.clone(),
                    owner_store.map(str::to_string),
                ));
            }
            Some(r)
        }
        Err(msg) => {
            c.at(file, v.span(), msg);
            None
        }
    }
}

fn check_url(c: &mut Checker<'_>, file: usize, v: &Spanned<String>, field: &str) {
    match url::Url::parse(v.get_ref()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => c.at(
            file,
            v.span(),
            format!("{field} {:?} is not an http(s) URL", v.get_ref()),
        ),
    }
}

fn table_to_json(t: Option<toml::Table>) -> serde_json::Map<String, serde_json::Value> {
    t.and_then(|t| serde_json::to_value(t).ok())
        .and_then(|v| match v {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default()
}

fn validate_provider(
    c: &mut Checker<'_>,
    file: usize,
    spanned: Spanned<ProviderSpec>,
    store_refs: &mut Vec<(usize, Range<usize>, String, Option<String>)>,
) -> (ProviderDef, Range<usize>) {
    let span = spanned.span();
    let line = c.line_of(file, &span);
    let p = spanned.into_inner();
    check_id(c, file, &p.id, "provider");
    let kind = ProviderKind::parse(p.kind.get_ref()).unwrap_or_else(|| {
        c.at(
            file,
            p.kind.span(),
            format!(
                "unknown provider kind {:?}: expected one of {}",
                p.kind.get_ref(),
                ProviderKind::names()
            ),
        );
        ProviderKind::Manual
    });
    let needs_credential = !matches!(kind, ProviderKind::Manual | ProviderKind::AwsIam);
    if needs_credential && p.admin_credential.is_none() {
        c.at(
            file,
            p.id.span(),
            format!("provider `{}` of kind {kind} needs admin_credential (keyring:NAME, env:VAR or store:STORE_ID:PATH)", p.id.get_ref()),
        );
    }
    if let Some(u) = &p.base_url {
        check_url(c, file, u, "base_url");
    }
    check_provider_settings(c, file, kind, &p.id, p.settings.as_ref());
    let admin_credential = credential(c, file, p.admin_credential, None, store_refs);
    if kind == ProviderKind::Postgres
        && let Some(u) = &p.base_url
    {
        c.at(
            file,
            u.span(),
            "postgres providers take the server from the admin credential (a postgresql:// URL); remove base_url",
        );
    }
    let settings = p.settings.map(|t| {
        t.into_inner()
            .into_iter()
            .map(|(k, v)| (k.into_inner(), v.into_inner()))
            .collect::<toml::Table>()
    });
    let def = ProviderDef {
        id: p.id.get_ref().clone(),
        kind,
        admin_credential,
        base_url: p.base_url.map(Spanned::into_inner),
        settings: table_to_json(settings),
        origin: Origin { file, line },
    };
    (def, p.id.span())
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
        ]),
        ProviderKind::Anthropic => Some(&[(
            "workspace_id",
            false,
            "limits key searches to one workspace (wrkspc_...)",
        )]),
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
                "cloudtrail_url",
                false,
                "a CloudTrail endpoint of its own (default: base_url, else AWS)",
            ),
        ]),
        ProviderKind::Postgres => Some(&[(
            "database",
            false,
            "where the role logs in to verify (default: the admin URL's)",
        )]),
        _ => None,
    }
}

/// Kinds with API integrations get their settings checked: required ones present, every
/// value a non-empty string, no unknown (misspelt) names.
fn check_provider_settings(
    c: &mut Checker<'_>,
    file: usize,
    kind: ProviderKind,
    id: &Spanned<String>,
    settings: Option<&Spanned<crate::inventory::spec::SettingsSpec>>,
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
    if let Some(settings) = settings {
        for (name, value) in settings.get_ref() {
            if !known.iter().any(|(n, _, _)| n == name.get_ref()) {
                c.at(
                    file,
                    name.span(),
                    format!(
                        "unknown setting `{}` for a provider of kind {kind}: expected {}",
                        name.get_ref(),
                        names()
                    ),
                );
                continue;
            }
            if value.get_ref().as_str().is_none_or(str::is_empty) {
                c.at(
                    file,
                    value.span(),
                    format!("setting `{}` must be a non-empty string", name.get_ref()),
                );
            }
        }
    }
    for (name, required, what) in known {
        let present = settings.is_some_and(|s| s.get_ref().keys().any(|k| k.get_ref() == name));
        if *required && !present {
            let span = settings.map_or_else(|| id.span(), Spanned::span);
            c.at(
                file,
                span,
                format!(
                    "provider `{}` of kind {kind} needs settings.{name}: {what}",
                    id.get_ref()
                ),
            );
        }
    }
}

fn validate_store(
    c: &mut Checker<'_>,
    file: usize,
    spanned: Spanned<StoreSpec>,
    store_refs: &mut Vec<(usize, Range<usize>, String, Option<String>)>,
) -> (StoreDef, Range<usize>) {
    let span = spanned.span();
    let line = c.line_of(file, &span);
    let s = spanned.into_inner();
    check_id(c, file, &s.id, "store");
    let kind = StoreKind::parse(s.kind.get_ref()).unwrap_or_else(|| {
        c.at(
            file,
            s.kind.span(),
            format!(
                "unknown store kind {:?}: expected one of {}",
                s.kind.get_ref(),
                StoreKind::names()
            ),
        );
        StoreKind::Memory
    });
    if kind == StoreKind::VaultKv2 {
        if s.address.is_none() {
            c.at(
                file,
                s.id.span(),
                format!("store `{}` of kind vault-kv2 needs address", s.id.get_ref()),
            );
        }
        if s.credential.is_none() {
            c.at(
                file,
                s.id.span(),
                format!(
                    "store `{}` of kind vault-kv2 needs credential (a Vault token reference)",
                    s.id.get_ref()
                ),
            );
        }
    }
    if let Some(a) = &s.address {
        check_url(c, file, a, "address");
    }
    check_settings(
        c,
        file,
        &s.id,
        kind.as_str(),
        s.settings.as_ref(),
        store_settings(kind),
    );
    if kind == StoreKind::VaultKv2
        && let Some(t) = &s.settings
    {
        let auth = t.get_ref().get("auth").and_then(|v| v.as_str());
        match auth {
            None | Some("token") => {}
            Some("approle") if t.get_ref().get("role_id").is_some() => {}
            Some("approle") => c.at(
                file,
                t.span(),
                format!("store `{}`: auth = \"approle\" needs settings.role_id (the credential is the secret id)", s.id.get_ref()),
            ),
            Some(other) => c.at(
                file,
                t.span(),
                format!("store `{}`: unknown auth {other:?}: expected \"token\" or \"approle\"", s.id.get_ref()),
            ),
        }
    }
    if kind == StoreKind::Keyring
        && let Some(a) = &s.address
    {
        c.at(
            file,
            a.span(),
            "keyring stores live on this machine: remove address",
        );
    }
    let id = s.id.get_ref().clone();
    let credential = credential(c, file, s.credential, Some(&id), store_refs);
    let def = StoreDef {
        id,
        kind,
        address: s.address.map(Spanned::into_inner),
        credential,
        settings: table_to_json(s.settings.map(Spanned::into_inner)),
        origin: Origin { file, line },
    };
    (def, s.id.span())
}

fn store_settings(kind: StoreKind) -> Option<&'static [&'static str]> {
    match kind {
        StoreKind::VaultKv2 => Some(&["mount", "namespace", "auth", "role_id", "approle_mount"]),
        StoreKind::AwsSecretsManager => Some(&["region", "profile"]),
        StoreKind::Keyring => Some(&["service"]),
        StoreKind::Memory => None,
    }
}

/// Unknown settings are errors like unknown fields; every known one is a string.
fn check_settings(
    c: &mut Checker<'_>,
    file: usize,
    id: &Spanned<String>,
    kind: &str,
    settings: Option<&Spanned<toml::Table>>,
    known: Option<&[&str]>,
) {
    let (Some(t), Some(known)) = (settings, known) else {
        return;
    };
    for (name, value) in t.get_ref() {
        if !known.contains(&name.as_str()) {
            c.at(
                file,
                t.span(),
                format!(
                    "`{}` ({kind}): unknown setting `{name}`: expected {}",
                    id.get_ref(),
                    known.join(", ")
                ),
            );
        } else if !value.is_str() {
            c.at(
                file,
                t.span(),
                format!(
                    "`{}` ({kind}): setting `{name}` must be a string",
                    id.get_ref()
                ),
            );
        } else if name.ends_with("_url")
            && let Some(u) = value.as_str()
            && !url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            c.at(
                file,
                t.span(),
                format!(
                    "`{}` ({kind}): setting `{name}` {u:?} is not an http(s) URL",
                    id.get_ref()
                ),
            );
        }
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

fn validate_agent(
    c: &mut Checker<'_>,
    file: usize,
    spanned: Spanned<AgentSpec>,
) -> (Agent, Range<usize>) {
    let span = spanned.span();
    let line = c.line_of(file, &span);
    let a = spanned.into_inner();
    check_id(c, file, &a.id, "agent");
    let mut expected_networks = Vec::new();
    for n in &a.expected_networks {
        let text = n.get_ref();
        let parsed = text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => expected_networks.push(net),
            Err(_) => c.at(
                file,
                n.span(),
                format!("invalid network {text:?} in expected_networks: expected CIDR like 203.0.113.0/24 or 2001:db8::/32"),
            ),
        }
    }
    let active_hours = a.active_hours.and_then(|h| {
        let h = h.into_inner();
        let days = parse_days(h.days.get_ref());
        if days.is_none() {
            c.at(
                file,
                h.days.span(),
                format!("invalid active_hours.days {:?}: expected day names like \"mon-fri\", \"sat,sun\" or \"daily\"", h.days.get_ref()),
            );
        }
        let time = |c: &mut Checker<'_>, v: &Spanned<String>, field: &str| {
            let t = NaiveTime::parse_from_str(v.get_ref(), "%H:%M").ok();
            if t.is_none() {
                c.at(file, v.span(), format!("invalid active_hours.{field} {:?}: expected HH:MM (24-hour)", v.get_ref()));
            }
            t
        };
        let start = time(c, &h.start, "start");
        let end = time(c, &h.end, "end");
        Some(ActiveHours { days: days?, start: start?, end: end? })
    });
    let def = Agent {
        id: a.id.get_ref().clone(),
        owner: a.owner.filter(|s| !s.trim().is_empty()),
        oncall: a.oncall.filter(|s| !s.trim().is_empty()),
        description: a.description,
        expected_networks,
        active_hours,
        origin: Origin { file, line },
    };
    (def, a.id.span())
}

fn date(
    c: &mut Checker<'_>,
    file: usize,
    v: Option<Spanned<Datetime>>,
    field: &str,
) -> Option<NaiveDate> {
    let v = v?;
    let dt = v.get_ref();
    let parsed = dt.date.and_then(|d| {
        NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
    });
    if parsed.is_none() {
        c.at(
            file,
            v.span(),
            format!("{field} must be a date like 2026-08-01, got {dt}"),
        );
    }
    parsed
}

/// A hint may hold a prefix and at most the last four characters, nothing more.
fn check_hint(c: &mut Checker<'_>, file: usize, v: &Spanned<String>) {
    let text = v.get_ref();
    let split = text.split_once("...").or_else(|| text.split_once('…'));
    let ok = match split {
        Some((prefix, suffix)) => prefix.chars().count() <= 16 && suffix.chars().count() <= 4,
        None => false,
    };
    if !ok {
        c.at(
            file,
            v.span(),
            "hint must be a prefix, `...` and at most the last 4 characters (like \"sk-proj-...Q2x\"); never write more of a key into the inventory",
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn validate_key(
    c: &mut Checker<'_>,
    file: usize,
    line: usize,
    k: KeySpec,
    provider_index: &HashMap<String, usize>,
    providers: &[ProviderDef],
    store_index: &HashMap<String, usize>,
    agent_index: &HashMap<String, usize>,
) -> Key {
    check_id(c, file, &k.id, "key");
    let id = k.id.get_ref().clone();
    for a in &k.agents {
        if !agent_index.contains_key(a.get_ref()) {
            c.at(
                file,
                a.span(),
                format!(
                    "key `{id}` names agent `{}`, which is not defined in [[agents]]",
                    a.get_ref()
                ),
            );
        }
    }
    let provider_kind = match provider_index.get(k.provider.get_ref()) {
        Some(&i) => Some(providers[i].kind),
        None => {
            c.at(
                file,
                k.provider.span(),
                format!(
                    "key `{id}` names provider `{}`, which is not defined in [[providers]]",
                    k.provider.get_ref()
                ),
            );
            None
        }
    };
    if let Some(s) = &k.store {
        if !store_index.contains_key(s.get_ref()) {
            c.at(
                file,
                s.span(),
                format!(
                    "key `{id}` names store `{}`, which is not defined in [[stores]]",
                    s.get_ref()
                ),
            );
        }
        if k.secret_path.is_none() {
            c.at(
                file,
                s.span(),
                format!("key `{id}` has a store but no secret_path"),
            );
        }
    } else if let Some(p) = &k.secret_path {
        c.at(
            file,
            p.span(),
            format!("key `{id}` has secret_path but no store"),
        );
    }
    if let Some(h) = &k.hint {
        check_hint(c, file, h);
    }
    if provider_kind == Some(ProviderKind::Postgres) && k.provider_key_id.is_none() {
        c.at(
            file,
            k.id.span(),
            format!("key `{id}` of a postgres provider needs provider_key_id (the role name)"),
        );
    }
    let locatable = k.provider_key_id.is_some() || k.hint.is_some();
    if !locatable && provider_kind.is_some_and(|kind| kind != ProviderKind::Manual) {
        c.at(
            file,
            k.id.span(),
            format!(
                "key `{id}` needs provider_key_id or hint so keyfire can find it at the provider"
            ),
        );
    }
    let created_at = date(c, file, k.created_at, "created_at");
    let last_rotated = date(c, file, k.last_rotated, "last_rotated");
    let rotation_days = positive_days(c, file, &k.rotation_days, "rotation_days", 3650);
    Key {
        id,
        agents: k.agents.into_iter().map(Spanned::into_inner).collect(),
        provider: k.provider.into_inner(),
        provider_key_id: k.provider_key_id,
        hint: k.hint.map(Spanned::into_inner),
        scopes: k.scopes,
        needs: k.needs,
        store: k.store.map(Spanned::into_inner),
        secret_path: k.secret_path.map(Spanned::into_inner),
        secret_field: k.secret_field.unwrap_or_else(|| "value".into()),
        created_at,
        last_rotated,
        rotation_days,
        description: k.description,
        origin: Origin { file, line },
    }
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
            Ok(_) => Vec::new(),
            Err(InventoryError::Invalid(p)) => p.iter().map(|p| p.to_string()).collect(),
            Err(e) => vec![e.to_string()],
        }
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
hint = "...abcd"
"#;
        let p = problems(text);
        let has = |needle: &str, line: usize| {
            p.iter()
                .any(|x| x.contains(needle) && x.starts_with(&format!("inv.toml:{line}:")))
        };
        assert!(has("unknown setting `usr`", 5), "{p:#?}");
        assert!(has("remove base_url", 11), "{p:#?}");
        assert!(has("needs settings.role_id", 18), "{p:#?}");
        assert!(has("setting `region` must be a string", 23), "{p:#?}");
        assert!(has("needs provider_key_id (the role name)", 26), "{p:#?}");
        assert_eq!(p.len(), 5, "{p:#?}");
        // AWS needs no credential (the SDK's default chain), and valid settings pass.
        let ok = r#"schema = 1
[[providers]]
id = "aws"
kind = "aws-iam"
settings = { region = "eu-west-1", profile = "ir", user = "agent", cloudtrail_url = "http://127.0.0.1:9" }
[[stores]]
id = "sm"
kind = "aws-secrets-manager"
[[stores]]
id = "local"
kind = "keyring"
settings = { service = "agents" }
"#;
        assert_eq!(problems(ok), Vec::<String>::new());
    }
}
