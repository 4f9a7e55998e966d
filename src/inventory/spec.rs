//! The raw shape of an inventory file, read from the reader's tree with a position for every
//! value so that problems can name line and column. Validation into the types of
//! `inventory::model` happens in `inventory::load`.
//!
//! Every unknown field, wrong type and missing field is reported, not just the first: a
//! table with problems still yields what could be read, unless a required field is missing.

use std::borrow::Cow;

use super::reader::{Datetime, Item, Key, Table, Value};

/// A problem at a byte offset of the file being read.
pub(crate) type Problems = Vec<(usize, String)>;

/// A string and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Str<'a> {
    pub text: Cow<'a, str>,
    pub at: usize,
}

impl Str<'_> {
    pub(super) fn as_str(&self) -> &str {
        &self.text
    }

    pub(super) fn into_string(self) -> String {
        self.text.into_owned()
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Int {
    pub value: i64,
    pub at: usize,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Float {
    pub value: f64,
    pub at: usize,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Date {
    pub value: Datetime,
    pub at: usize,
}

#[derive(Debug, Default)]
pub(crate) struct PolicySpec<'a> {
    pub rotation_days: Option<Int>,
    pub after_incident_rotation_days: Option<Int>,
    pub drill_every_days: Option<Int>,
    pub report_deadline_hours: Option<Int>,
    pub due_soon_days: Option<Int>,
    pub timezone: Option<Str<'a>>,
    pub volume_factor: Option<Float>,
    pub auth_failure_threshold: Option<Int>,
    pub baseline_days: Option<Int>,
    pub respond_to: Option<Vec<Str<'a>>>,
    pub notify_timeout_seconds: Option<Int>,
}

#[derive(Debug)]
pub(crate) struct ProviderSpec<'a> {
    pub at: usize,
    pub id: Str<'a>,
    pub kind: Str<'a>,
    pub admin_credential: Option<Str<'a>>,
    pub base_url: Option<Str<'a>>,
    pub allow_insecure_http: bool,
    pub settings: Option<Table<'a>>,
}

#[derive(Debug)]
pub(crate) struct StoreSpec<'a> {
    pub at: usize,
    pub id: Str<'a>,
    pub kind: Str<'a>,
    pub address: Option<Str<'a>>,
    pub credential: Option<Str<'a>>,
    pub allow_insecure_http: bool,
    pub settings: Option<Table<'a>>,
}

#[derive(Debug)]
pub(crate) struct AgentSpec<'a> {
    pub at: usize,
    pub id: Str<'a>,
    pub owner: Option<Str<'a>>,
    pub oncall: Option<Str<'a>>,
    pub description: Option<Str<'a>>,
    pub expected_networks: Vec<Str<'a>>,
    pub active_hours: Option<ActiveHoursSpec<'a>>,
}

#[derive(Debug)]
pub(crate) struct ActiveHoursSpec<'a> {
    pub days: Str<'a>,
    pub start: Str<'a>,
    pub end: Str<'a>,
    pub timezone: Option<Str<'a>>,
}

#[derive(Debug)]
pub(crate) struct KeySpec<'a> {
    pub at: usize,
    pub id: Str<'a>,
    pub agents: Vec<Str<'a>>,
    pub provider: Str<'a>,
    pub provider_key_id: Option<Str<'a>>,
    pub hint: Option<Str<'a>>,
    pub fingerprint: Option<Str<'a>>,
    pub scopes: Vec<Str<'a>>,
    pub needs: Option<Vec<Str<'a>>>,
    pub store: Option<Str<'a>>,
    pub secret_path: Option<Str<'a>>,
    pub secret_field: Option<Str<'a>>,
    pub created_at: Option<Date>,
    pub last_rotated: Option<Date>,
    pub rotation_days: Option<Int>,
    pub description: Option<Str<'a>>,
}

pub(crate) const ROOT_FIELDS: &[&str] = &[
    "schema",
    "policy",
    "providers",
    "stores",
    "agents",
    "keys",
    "notifiers",
];
const POLICY_FIELDS: &[&str] = &[
    "rotation_days",
    "after_incident_rotation_days",
    "drill_every_days",
    "report_deadline_hours",
    "due_soon_days",
    "timezone",
    "volume_factor",
    "auth_failure_threshold",
    "baseline_days",
    "respond_to",
    "notify_timeout_seconds",
];
const PROVIDER_FIELDS: &[&str] = &[
    "id",
    "kind",
    "admin_credential",
    "base_url",
    "allow_insecure_http",
    "settings",
];
const STORE_FIELDS: &[&str] = &[
    "id",
    "kind",
    "address",
    "credential",
    "allow_insecure_http",
    "settings",
];
const AGENT_FIELDS: &[&str] = &[
    "id",
    "owner",
    "oncall",
    "description",
    "expected_networks",
    "active_hours",
];
const ACTIVE_HOURS_FIELDS: &[&str] = &["days", "start", "end", "timezone"];
const KEY_FIELDS: &[&str] = &[
    "id",
    "agents",
    "provider",
    "provider_key_id",
    "hint",
    "fingerprint",
    "scopes",
    "needs",
    "store",
    "secret_path",
    "secret_field",
    "created_at",
    "last_rotated",
    "rotation_days",
    "description",
];

/// What a value is, the way the messages quote it: `string "x"`, ``integer `5` ``.
pub(crate) fn found(item: &Item<'_>) -> String {
    match &item.value {
        Value::String(s) => match crate::secret::recognize::first_secret(s) {
            Ok(None) => format!("string {s:?}"),
            Ok(Some(format)) => format!(
                "a string that looks like {} {} (not shown; an inventory holds hints like `sk-proj-...Q2x7`, never keys)",
                article(format.what),
                format.what
            ),
            Err(_) => "a string (not shown)".into(),
        },
        Value::Integer(i) => format!("integer `{i}`"),
        Value::Float(f) => format!("float `{f}`"),
        Value::Boolean(b) => format!("boolean `{b}`"),
        Value::Datetime(d) => format!("datetime `{d}`"),
        Value::Array(a) if a.of_tables => "array of tables".into(),
        Value::Array(_) => "array".into(),
        Value::Table(_) => "table".into(),
    }
}

pub(crate) fn article(what: &str) -> &'static str {
    if what.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

fn type_error(out: &mut Problems, item: &Item<'_>, expected: &str, field: &str) {
    out.push((
        item.span.start,
        format!(
            "invalid type: {}, expected {expected} for `{field}`",
            found(item)
        ),
    ));
}

/// Reads the fields of one table, reporting wrong types, missing and unknown fields.
///
/// Each reader below walks the table's entries once and dispatches on the name (no lookups
/// per field: this runs for every key of the inventory).
pub(crate) struct Fields<'p> {
    /// Where the table starts, for "missing field".
    at: usize,
    /// `[[keys]]`, `active_hours`...: names the table in messages.
    what: &'static str,
    allowed: &'static [&'static str],
    /// Dotted path of the table, prefixed to field names in messages (`active_hours.`).
    prefix: &'static str,
    out: &'p mut Problems,
}

impl<'p> Fields<'p> {
    fn new(
        at: usize,
        what: &'static str,
        allowed: &'static [&'static str],
        prefix: &'static str,
        out: &'p mut Problems,
    ) -> Self {
        Self {
            at,
            what,
            allowed,
            prefix,
            out,
        }
    }

    /// The entries of `item` and a reader for them, or a type error when it is not a table.
    fn of<'a>(
        item: Item<'a>,
        what: &'static str,
        allowed: &'static [&'static str],
        out: &'p mut Problems,
    ) -> Option<(Vec<(Key<'a>, Item<'a>)>, Self)> {
        let at = item.span.start;
        match item.value {
            Value::Table(t) => Some((t.into_entries(), Self::new(at, what, allowed, "", out))),
            _ => {
                out.push((
                    at,
                    format!(
                        "invalid type: {}, expected a table for {what}",
                        found(&item)
                    ),
                ));
                None
            }
        }
    }

    fn field_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn type_error(&mut self, item: &Item<'_>, expected: &str, name: &str) {
        let field = self.field_name(name);
        type_error(self.out, item, expected, &field);
    }

    /// Reports a required field that is absent (a present one of the wrong type was reported
    /// as such already).
    fn require<T>(&mut self, value: Option<T>, present: bool, name: &str) -> Option<T> {
        if !present {
            self.out.push((
                self.at,
                format!("missing field `{}` in {}", self.field_name(name), self.what),
            ));
        }
        value
    }

    fn unknown(&mut self, key: &Key<'_>) {
        self.out
            .push((key.span.start, unknown_field(&key.name, self.allowed)));
    }

    fn string<'a>(&mut self, item: Item<'a>, name: &str) -> Option<Str<'a>> {
        match item.value {
            Value::String(text) => Some(Str {
                text,
                at: item.span.start,
            }),
            _ => {
                self.type_error(&item, "a string", name);
                None
            }
        }
    }

    fn boolean(&mut self, item: Item<'_>, name: &str) -> Option<bool> {
        match item.value {
            Value::Boolean(b) => Some(b),
            _ => {
                self.type_error(&item, "a boolean (true or false)", name);
                None
            }
        }
    }

    fn integer(&mut self, item: Item<'_>, name: &str) -> Option<Int> {
        match item.value {
            Value::Integer(value) => Some(Int {
                value,
                at: item.span.start,
            }),
            _ => {
                self.type_error(&item, "an integer", name);
                None
            }
        }
    }

    /// A number; `3` is as good as `3.0`.
    fn float(&mut self, item: Item<'_>, name: &str) -> Option<Float> {
        match item.value {
            Value::Float(value) => Some(Float {
                value,
                at: item.span.start,
            }),
            Value::Integer(value) => Some(Float {
                value: value as f64,
                at: item.span.start,
            }),
            _ => {
                self.type_error(&item, "a number", name);
                None
            }
        }
    }

    fn datetime(&mut self, item: Item<'_>, name: &str) -> Option<Date> {
        match item.value {
            Value::Datetime(value) => Some(Date {
                value,
                at: item.span.start,
            }),
            _ => {
                self.type_error(&item, "a TOML date like 2026-08-01 (without quotes)", name);
                None
            }
        }
    }

    /// An array of strings; every element of another type is reported.
    fn strings<'a>(&mut self, item: Item<'a>, name: &str) -> Option<Vec<Str<'a>>> {
        match item.value {
            Value::Array(a) if !a.of_tables => {
                let mut out = Vec::with_capacity(a.items.len());
                for element in a.items {
                    match element.value {
                        Value::String(text) => out.push(Str {
                            text,
                            at: element.span.start,
                        }),
                        _ => self.type_error(&element, "a string", name),
                    }
                }
                Some(out)
            }
            _ => {
                self.type_error(&item, "an array of strings", name);
                None
            }
        }
    }

    fn table<'a>(&mut self, item: Item<'a>, name: &str) -> Option<(Table<'a>, usize)> {
        let at = item.span.start;
        match item.value {
            Value::Table(t) => Some((t, at)),
            _ => {
                self.type_error(&item, "a table", name);
                None
            }
        }
    }
}

pub(crate) fn unknown_field(name: &str, allowed: &[&str]) -> String {
    let expected: Vec<String> = allowed.iter().map(|f| format!("`{f}`")).collect();
    format!(
        "unknown field `{name}`, expected one of {} (inventory schema 1 allows only the documented fields)",
        expected.join(", ")
    )
}

pub(crate) fn policy<'a>(item: Item<'a>, out: &mut Problems) -> Option<PolicySpec<'a>> {
    let (entries, mut f) = Fields::of(item, "[policy]", POLICY_FIELDS, out)?;
    let mut p = PolicySpec::default();
    for (key, item) in entries {
        let name = key.name.as_ref();
        match name {
            "rotation_days" => p.rotation_days = f.integer(item, name),
            "after_incident_rotation_days" => {
                p.after_incident_rotation_days = f.integer(item, name)
            }
            "drill_every_days" => p.drill_every_days = f.integer(item, name),
            "report_deadline_hours" => p.report_deadline_hours = f.integer(item, name),
            "due_soon_days" => p.due_soon_days = f.integer(item, name),
            "timezone" => p.timezone = f.string(item, name),
            "volume_factor" => p.volume_factor = f.float(item, name),
            "auth_failure_threshold" => p.auth_failure_threshold = f.integer(item, name),
            "baseline_days" => p.baseline_days = f.integer(item, name),
            "respond_to" => p.respond_to = f.strings(item, name),
            "notify_timeout_seconds" => p.notify_timeout_seconds = f.integer(item, name),
            _ => f.unknown(&key),
        }
    }
    Some(p)
}

/// `id` and `kind` present, for providers and stores.
fn has(entries: &[(Key<'_>, Item<'_>)], name: &str) -> bool {
    entries.iter().any(|(k, _)| k.name == name)
}

pub(crate) fn provider<'a>(item: Item<'a>, out: &mut Problems) -> Option<ProviderSpec<'a>> {
    let at = item.span.start;
    let (entries, mut f) = Fields::of(item, "[[providers]]", PROVIDER_FIELDS, out)?;
    let (has_id, has_kind) = (has(&entries, "id"), has(&entries, "kind"));
    let (mut id, mut kind, mut admin_credential, mut base_url, mut settings) =
        (None, None, None, None, None);
    let mut insecure = false;
    for (key, item) in entries {
        let name = key.name.as_ref();
        match name {
            "id" => id = f.string(item, name),
            "kind" => kind = f.string(item, name),
            "admin_credential" => admin_credential = f.string(item, name),
            "base_url" => base_url = f.string(item, name),
            "allow_insecure_http" => insecure = f.boolean(item, name).unwrap_or(false),
            "settings" => settings = f.table(item, name).map(|(t, _)| t),
            _ => f.unknown(&key),
        }
    }
    let id = f.require(id, has_id, "id");
    let kind = f.require(kind, has_kind, "kind");
    Some(ProviderSpec {
        at,
        id: id?,
        kind: kind?,
        admin_credential,
        base_url,
        allow_insecure_http: insecure,
        settings,
    })
}

pub(crate) fn store<'a>(item: Item<'a>, out: &mut Problems) -> Option<StoreSpec<'a>> {
    let at = item.span.start;
    let (entries, mut f) = Fields::of(item, "[[stores]]", STORE_FIELDS, out)?;
    let (has_id, has_kind) = (has(&entries, "id"), has(&entries, "kind"));
    let (mut id, mut kind, mut address, mut credential, mut settings) =
        (None, None, None, None, None);
    let mut insecure = false;
    for (key, item) in entries {
        let name = key.name.as_ref();
        match name {
            "id" => id = f.string(item, name),
            "kind" => kind = f.string(item, name),
            "address" => address = f.string(item, name),
            "credential" => credential = f.string(item, name),
            "allow_insecure_http" => insecure = f.boolean(item, name).unwrap_or(false),
            "settings" => settings = f.table(item, name).map(|(t, _)| t),
            _ => f.unknown(&key),
        }
    }
    let id = f.require(id, has_id, "id");
    let kind = f.require(kind, has_kind, "kind");
    Some(StoreSpec {
        at,
        id: id?,
        kind: kind?,
        address,
        credential,
        allow_insecure_http: insecure,
        settings,
    })
}

fn active_hours<'a>(
    table: Table<'a>,
    at: usize,
    out: &mut Problems,
) -> Option<ActiveHoursSpec<'a>> {
    let entries = table.into_entries();
    let mut f = Fields::new(
        at,
        "active_hours",
        ACTIVE_HOURS_FIELDS,
        "active_hours.",
        out,
    );
    let present = |name| has(&entries, name);
    let (has_days, has_start, has_end) = (present("days"), present("start"), present("end"));
    let (mut days, mut start, mut end, mut timezone) = (None, None, None, None);
    for (key, item) in entries {
        let name = key.name.as_ref();
        match name {
            "days" => days = f.string(item, name),
            "start" => start = f.string(item, name),
            "end" => end = f.string(item, name),
            "timezone" => timezone = f.string(item, name),
            _ => f.unknown(&key),
        }
    }
    let days = f.require(days, has_days, "days");
    let start = f.require(start, has_start, "start");
    let end = f.require(end, has_end, "end");
    Some(ActiveHoursSpec {
        days: days?,
        start: start?,
        end: end?,
        timezone,
    })
}

pub(crate) fn agent<'a>(item: Item<'a>, out: &mut Problems) -> Option<AgentSpec<'a>> {
    let at = item.span.start;
    let (entries, mut f) = Fields::of(item, "[[agents]]", AGENT_FIELDS, out)?;
    let has_id = has(&entries, "id");
    let mut id = None;
    let mut spec = AgentSpec {
        at,
        id: Str {
            text: Cow::Borrowed(""),
            at,
        },
        owner: None,
        oncall: None,
        description: None,
        expected_networks: Vec::new(),
        active_hours: None,
    };
    for (key, item) in entries {
        let name = key.name.as_ref();
        match name {
            "id" => id = f.string(item, name),
            "owner" => spec.owner = f.string(item, name),
            "oncall" => spec.oncall = f.string(item, name),
            "description" => spec.description = f.string(item, name),
            "expected_networks" => {
                spec.expected_networks = f.strings(item, name).unwrap_or_default();
            }
            "active_hours" => {
                spec.active_hours = f
                    .table(item, name)
                    .and_then(|(t, hours_at)| active_hours(t, hours_at, f.out));
            }
            _ => f.unknown(&key),
        }
    }
    spec.id = f.require(id, has_id, "id")?;
    Some(spec)
}

pub(crate) fn key<'a>(item: Item<'a>, out: &mut Problems) -> Option<KeySpec<'a>> {
    let at = item.span.start;
    let (entries, mut f) = Fields::of(item, "[[keys]]", KEY_FIELDS, out)?;
    let (mut has_id, mut has_provider) = (false, false);
    let (mut id, mut provider) = (None, None);
    let blank = Str {
        text: Cow::Borrowed(""),
        at,
    };
    let mut k = KeySpec {
        at,
        id: blank.clone(),
        agents: Vec::new(),
        provider: blank,
        provider_key_id: None,
        hint: None,
        fingerprint: None,
        scopes: Vec::new(),
        needs: None,
        store: None,
        secret_path: None,
        secret_field: None,
        created_at: None,
        last_rotated: None,
        rotation_days: None,
        description: None,
    };
    for (key, item) in entries {
        let name = key.name.as_ref();
        match name {
            "id" => {
                has_id = true;
                id = f.string(item, name);
            }
            "agents" => k.agents = f.strings(item, name).unwrap_or_default(),
            "provider" => {
                has_provider = true;
                provider = f.string(item, name);
            }
            "provider_key_id" => k.provider_key_id = f.string(item, name),
            "hint" => k.hint = f.string(item, name),
            "fingerprint" => k.fingerprint = f.string(item, name),
            "scopes" => k.scopes = f.strings(item, name).unwrap_or_default(),
            "needs" => k.needs = f.strings(item, name),
            "store" => k.store = f.string(item, name),
            "secret_path" => k.secret_path = f.string(item, name),
            "secret_field" => k.secret_field = f.string(item, name),
            "created_at" => k.created_at = f.datetime(item, name),
            "last_rotated" => k.last_rotated = f.datetime(item, name),
            "rotation_days" => k.rotation_days = f.integer(item, name),
            "description" => k.description = f.string(item, name),
            _ => f.unknown(&key),
        }
    }
    let id = f.require(id, has_id, "id");
    let provider = f.require(provider, has_provider, "provider");
    k.id = id?;
    k.provider = provider?;
    Some(k)
}

#[derive(Debug)]
pub(crate) struct NotifierSpec<'a> {
    pub at: usize,
    pub id: Str<'a>,
    pub kind: Str<'a>,
    pub url: Option<Str<'a>>,
    pub routing_key: Option<Str<'a>>,
    pub secret: Option<Str<'a>>,
    /// Where `route` was written and its names, when it was.
    pub route: Option<(usize, Vec<Str<'a>>)>,
    pub agents: Vec<Str<'a>>,
    pub owners: bool,
    pub allow_insecure_http: bool,
}

const NOTIFIER_FIELDS: &[&str] = &[
    "id",
    "kind",
    "url",
    "routing_key",
    "secret",
    "route",
    "agents",
    "owners",
    "allow_insecure_http",
];

pub(crate) fn notifier<'a>(item: Item<'a>, out: &mut Problems) -> Option<NotifierSpec<'a>> {
    let at = item.span.start;
    let (entries, mut f) = Fields::of(item, "[[notifiers]]", NOTIFIER_FIELDS, out)?;
    let (has_id, has_kind) = (has(&entries, "id"), has(&entries, "kind"));
    let (mut id, mut kind) = (None, None);
    let mut n = NotifierSpec {
        at,
        id: Str {
            text: Cow::Borrowed(""),
            at,
        },
        kind: Str {
            text: Cow::Borrowed(""),
            at,
        },
        url: None,
        routing_key: None,
        secret: None,
        route: None,
        agents: Vec::new(),
        owners: false,
        allow_insecure_http: false,
    };
    for (key, item) in entries {
        let name = key.name.as_ref();
        match name {
            "id" => id = f.string(item, name),
            "kind" => kind = f.string(item, name),
            "url" => n.url = f.string(item, name),
            "routing_key" => n.routing_key = f.string(item, name),
            "secret" => n.secret = f.string(item, name),
            "route" => {
                let route_at = item.span.start;
                n.route = f.strings(item, name).map(|r| (route_at, r));
            }
            "agents" => n.agents = f.strings(item, name).unwrap_or_default(),
            "owners" => n.owners = f.boolean(item, name).unwrap_or(false),
            "allow_insecure_http" => n.allow_insecure_http = f.boolean(item, name).unwrap_or(false),
            _ => f.unknown(&key),
        }
    }
    let id = f.require(id, has_id, "id");
    let kind = f.require(kind, has_kind, "kind");
    n.id = id?;
    n.kind = kind?;
    Some(n)
}
