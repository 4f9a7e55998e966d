//! The incident engine: opens or resumes an incident, runs each key's session through the
//! actions, records everything, and closes with timings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::action::{Action, StepId};
use super::facts::Facts;
use super::gate::{FailureChoice, FailureView, Gate, Sink};
use super::session::{Cursor, Order, Session, Status};
use super::spec::Runbook;
use crate::clock::Clock;
use crate::http::{Http, HttpError};
use crate::inventory::{Inventory, Key, ProviderDef};
use crate::plan::SecretBag;
use crate::provider::{AnyProvider, Capabilities};
use crate::record::{Entry, Event, RecordError, RecordWriter};
use crate::secret::Redactor;
use crate::store::{AnyStore, SecretLocation, StoreVersion};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("unknown key `{0}`: it is not in the inventory")]
    UnknownKey(String),
    #[error("no keys given")]
    NoKeys,
    #[error("zero-downtime rotation is impossible for key `{key}`: {reason}")]
    ZeroDowntimeRefused { key: String, reason: String },
    #[error("no incident `{0}` in the data directory")]
    UnknownIncident(String),
    #[error("incident {0} is already closed")]
    AlreadyClosed(String),
    #[error("incident {0} is being run by another keyfire process")]
    Busy(String),
    #[error("the record of incident {id} does not match this inventory: {reason}")]
    Mismatch { id: String, reason: String },
    #[error("cannot start the HTTP client: {0}")]
    Http(#[from] HttpError),
    #[error(
        "key `{key}` is already in open {kind} {incident} ({status}): finish it with `{resume}` before starting another"
    )]
    KeyInOpenIncident {
        key: String,
        incident: String,
        kind: String,
        status: String,
        resume: String,
    },
    #[error("cannot lock the incidents directory: {0}")]
    OpeningLock(std::io::Error),
    #[error(transparent)]
    Shared(#[from] crate::record::shared::SharedError),
}

impl EngineError {
    /// Input and configuration problems (exit 2) as opposed to runtime failures.
    pub fn is_input_error(&self) -> bool {
        if let Self::Record(RecordError::Busy { .. }) = self {
            return false;
        }
        !matches!(
            self,
            Self::Record(_)
                | Self::Http(_)
                | Self::Busy(_)
                | Self::OpeningLock(_)
                | Self::Shared(_)
        )
    }
}

/// What the engine needs from its surroundings.
#[derive(Clone)]
pub struct Setup {
    pub inventory: Arc<Inventory>,
    pub runbook: Arc<Runbook>,
    pub data_dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    /// The team's shared record location, when one is configured: every record (drills
    /// too) is also written there, and `resume` can continue one from another machine.
    pub records: Option<Arc<crate::record::shared::Sharing>>,
}

/// Why the runbook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A leaked or suspected key (a drill when `dry_run`).
    #[default]
    Incident,
    /// Scheduled rotation in the safe order (`keyfire rotate`).
    Rotation,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct IncidentParams {
    pub keys: Vec<String>,
    pub dry_run: bool,
    pub order: Order,
    pub exposed_since: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    /// Gateway logs the audit step reads besides the provider's usage API.
    pub logs: Vec<PathBuf>,
    pub purpose: Purpose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    /// At least one key has a failed step; the incident stays open and resumable.
    Failed,
    /// The operator stopped it; it stays open and resumable.
    Aborted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
        }
    }
}

pub(super) struct KeyRun {
    pub key: Key,
    pub provider_def: ProviderDef,
    pub provider: AnyProvider,
    pub caps: Capabilities,
    pub store: Option<(AnyStore, SecretLocation)>,
    pub bag: SecretBag,
    pub facts: Facts,
    pub session: Session,
    pub step_started: HashMap<StepId, DateTime<Utc>>,
    /// The usage fetched by this process's audit step (read back from the record on resume).
    pub usage: Option<crate::provider::UsageReport>,
}

/// Everything an action may touch except the key being worked on.
/// The incident record, shared by the keys of a campaign that run at the same time. Each
/// append still takes one write and one fsync, under the lock.
#[derive(Clone)]
pub(super) struct SharedRecord {
    writer: Arc<std::sync::Mutex<RecordWriter>>,
    dir: PathBuf,
}

impl SharedRecord {
    fn new(writer: RecordWriter) -> Self {
        let dir = writer.dir().to_path_buf();
        Self {
            writer: Arc::new(std::sync::Mutex::new(writer)),
            dir,
        }
    }

    pub(super) fn append(
        &self,
        clock: &dyn Clock,
        kind: &str,
        step: Option<&str>,
        data: Value,
    ) -> Result<Entry, RecordError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.append(clock, kind, step, data)
    }

    pub(super) fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub(super) fn path(&self) -> PathBuf {
        self.dir.join(crate::record::RECORD_FILE)
    }

    pub(super) fn share_status(&self) -> Option<crate::record::shared::ShareStatus> {
        let w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.share_status()
    }

    pub(super) fn finish_sharing(
        &self,
        within: std::time::Duration,
    ) -> Option<crate::record::shared::ShareStatus> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.finish_sharing(within)
    }
}

/// Resume with a shared location: take the lease (waiting for an expired one, or taking a
/// live one with `--take-over`), bring the shared copy into the data directory when it is
/// ahead (or the only copy), verify, reopen, and start sharing from where the store is.
#[allow(clippy::type_complexity)]
fn resume_shared(
    sharing: &crate::record::shared::Sharing,
    id: &str,
    dir: &std::path::Path,
    redactor: Redactor,
) -> Result<(RecordWriter, Vec<Entry>, Option<Value>), EngineError> {
    use crate::record::shared::{self, adopt::Adopted};
    if !shared::valid_id(id) {
        return Err(EngineError::UnknownIncident(id.to_string()));
    }
    let local = dir.join(crate::record::RECORD_FILE).exists();
    let store = &sharing.store;
    let lease = match shared::block_on(shared::Lease::acquire(
        store,
        id,
        sharing.lease_ttl,
        sharing.take_over,
    )) {
        Ok(l) => Some(l),
        // The store is unreachable: an incident this machine has goes on from its own
        // record (uploads queue); one it does not have cannot be resumed here.
        Err(shared::SharedError::Store { .. }) if local => None,
        Err(e) => return Err(e.into()),
    };
    let trust = sharing.trust().map_err(|e| EngineError::Mismatch {
        id: id.to_string(),
        reason: format!("[records] public_keys: {e}"),
    })?;
    let adopted = if lease.is_some() {
        shared::adopt::adopt(store, id, dir, &trust)?
    } else {
        Adopted::NotShared
    };
    if !dir.join(crate::record::RECORD_FILE).exists() {
        return Err(EngineError::UnknownIncident(id.to_string()));
    }
    let team = sharing.team_keys().unwrap_or_default();
    let (mut record, entries) = RecordWriter::reopen_trusting(dir, redactor, &team)?;
    let mut note = serde_json::Map::new();
    note.insert("location".into(), json!(store.display()));
    match adopted {
        Adopted::Fetched { entries } => {
            note.insert("fetched_entries".into(), json!(entries));
        }
        Adopted::CaughtUp { from, to } => {
            note.insert("caught_up".into(), json!({ "from": from, "to": to }));
        }
        Adopted::LocalCurrent | Adopted::NotShared => {}
    }
    let start = match lease {
        Some(l) => {
            if let Some(d) = &l.displaced {
                note.insert(
                    "lease_taken_over".into(),
                    json!({ "holder": d.holder, "host": d.host, "expires": d.expires }),
                );
            }
            note.insert("lease_holder".into(), json!(l.body.holder));
            shared::upload::LeaseStart::Held(Box::new(l))
        }
        None => {
            note.insert(
                "lease".into(),
                json!("the store was unreachable: no lease taken; uploads queue"),
            );
            shared::upload::LeaseStart::Acquire(sharing.lease_ttl)
        }
    };
    record.share(shared::Uploader::start(
        store.clone(),
        id,
        dir,
        entries.len() as u64,
        start,
    ));
    Ok((record, entries, Some(Value::Object(note))))
}

pub(super) struct Ctx {
    pub setup: Setup,
    pub id: String,
    pub params: IncidentParams,
    pub opened_at: DateTime<Utc>,
    pub http: Http,
    pub record: SharedRecord,
    /// What `incident_resumed` says about the shared copy (fetched, lease taken over).
    pub share_note: Option<Value>,
}

pub struct Engine {
    pub(super) ctx: Ctx,
    pub(super) keys: Vec<KeyRun>,
    resumed: bool,
}

/// `inc-20261126-031500-a1b2` (`drill-…` for drills): sortable, unique per process and second.
pub fn new_incident_id(now: DateTime<Utc>, dry_run: bool, purpose: Purpose) -> String {
    use sha2::{Digest, Sha256};
    let noise = format!(
        "{}-{}-{:?}",
        std::process::id(),
        now.timestamp_nanos_opt().unwrap_or(0),
        std::thread::current().id()
    );
    let tag = &hex::encode(Sha256::digest(noise.as_bytes()))[..4];
    let prefix = match (purpose, dry_run) {
        (Purpose::Rotation, _) => "rot",
        (Purpose::Incident, true) => "drill",
        (Purpose::Incident, false) => "inc",
    };
    format!("{prefix}-{}-{tag}", now.format("%Y%m%d-%H%M%S"))
}

pub fn incidents_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("incidents")
}

fn key_run(
    setup: &Setup,
    key_id: &str,
    order: Order,
    purpose: Purpose,
) -> Result<KeyRun, EngineError> {
    let inv = &setup.inventory;
    let key = inv
        .key(key_id)
        .ok_or_else(|| EngineError::UnknownKey(key_id.to_string()))?
        .clone();
    let provider_def = inv
        .provider_of(&key)
        .ok_or_else(|| EngineError::UnknownKey(key_id.to_string()))?
        .clone();
    let provider = AnyProvider::from_def(&provider_def).for_key(&key);
    let caps = provider.capabilities();
    let store = match (&key.store, &key.secret_path) {
        (Some(store_id), Some(path)) => inv.store(store_id).map(|def| {
            (
                AnyStore::from_def(def),
                SecretLocation {
                    path: path.clone(),
                    field: key.secret_field.clone(),
                },
            )
        }),
        _ => None,
    };
    let mut session = match purpose {
        Purpose::Incident => Session::new(&key.id, &setup.runbook, order),
        Purpose::Rotation => Session::rotation(&key.id, &setup.runbook),
    };
    if caps.usage_destroyed_by_revoke {
        session = session.snapshot_before_revoke();
    }
    Ok(KeyRun {
        key,
        provider_def,
        provider,
        caps,
        store,
        bag: SecretBag::default(),
        facts: Facts::default(),
        session,
        step_started: HashMap::new(),
        usage: None,
    })
}

impl Engine {
    /// Open a new incident: validate, create its record, write `incident_opened`.
    pub fn open(setup: Setup, params: IncidentParams) -> Result<Self, EngineError> {
        if params.keys.is_empty() {
            return Err(EngineError::NoKeys);
        }
        let mut keys = Vec::new();
        for k in &params.keys {
            let run = key_run(&setup, k, params.order, params.purpose)?;
            if params.order == Order::ZeroDowntime {
                if run.caps.single_live_key {
                    return Err(EngineError::ZeroDowntimeRefused {
                        key: k.clone(),
                        reason: format!(
                            "provider kind {} allows only one live key",
                            run.provider_def.kind
                        ),
                    });
                }
                if !run.caps.create || run.store.is_none() {
                    return Err(EngineError::ZeroDowntimeRefused {
                        key: k.clone(),
                        reason: "keyfire must create and store the replacement before revoking (needs a create API and a store)".into(),
                    });
                }
            }
            keys.push(run);
        }
        // A live incident or rotation claims its keys: checked and recorded under one lock.
        let _opening = if params.dry_run {
            None
        } else {
            let lock =
                super::claim::opening_lock(&setup.data_dir).map_err(EngineError::OpeningLock)?;
            if let Some((key, holder)) = super::claim::open_holder(&setup.data_dir, &params.keys) {
                return Err(EngineError::KeyInOpenIncident {
                    key,
                    resume: super::claim::resume_command(&holder),
                    incident: holder.id,
                    kind: holder.kind,
                    status: holder.status,
                });
            }
            Some(lock)
        };
        let now = setup.clock.now();
        let id = new_incident_id(now, params.dry_run, params.purpose);
        let redactor = Redactor::new();
        let http = Http::new(params.dry_run, redactor.clone())?;
        let dir = incidents_dir(&setup.data_dir).join(&id);
        let mut record = RecordWriter::create(&dir, redactor)?;
        if let Some(sharing) = &setup.records {
            // The lease and the uploads happen on the uploader's thread: opening (and the
            // revoke after it) never waits for the store.
            record.share(crate::record::shared::Uploader::start(
                sharing.store.clone(),
                &id,
                &dir,
                0,
                crate::record::shared::upload::LeaseStart::Acquire(sharing.lease_ttl),
            ));
        }
        let engine = Self {
            ctx: Ctx {
                setup,
                id,
                params,
                opened_at: now,
                http,
                record: SharedRecord::new(record),
                share_note: None,
            },
            keys,
            resumed: false,
        };
        let inv = &engine.ctx.setup.inventory;
        let data = json!({
            "schema": crate::record::SCHEMA,
            "keyfire_version": env!("CARGO_PKG_VERSION"),
            "incident": engine.ctx.id,
            "inventory_digest": inv.digest(),
            "inventory_files": inv.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
            "runbook": engine.ctx.setup.runbook.source,
            "dry_run": engine.ctx.params.dry_run,
            "order": engine.ctx.params.order,
            "keys": engine.ctx.params.keys,
            "exposed_since": engine.ctx.params.exposed_since,
            "reason": engine.ctx.params.reason,
            "logs": engine.ctx.params.logs,
            "purpose": engine.ctx.params.purpose,
            "report_deadline_hours": inv.policy.report_deadline_hours,
            // What the report needs about each key, so it can be rendered from the record alone.
            "key_facts": engine.keys.iter().map(|k| (k.key.id.clone(), json!({
                "provider": k.provider_def.id,
                "provider_kind": k.provider_def.kind,
                "agents": k.key.agents,
                "scopes": k.key.scopes,
                "store": k.key.store,
                "secret_path": k.key.secret_path,
            }))).collect::<serde_json::Map<String, Value>>(),
        });
        engine.ctx.record.append(
            engine.ctx.setup.clock.as_ref(),
            "incident_opened",
            None,
            data,
        )?;
        Ok(engine)
    }

    /// Continue an interrupted incident from its record. Provider and store state is read
    /// again before anything else happens (see `drive`).
    pub fn resume(setup: Setup, id: &str) -> Result<Self, EngineError> {
        let dir = incidents_dir(&setup.data_dir).join(id);
        let redactor = Redactor::new();
        let (record, entries, share_note) = match setup.records.clone() {
            Some(sharing) => resume_shared(&sharing, id, &dir, redactor.clone())?,
            None => {
                if !dir.join(crate::record::RECORD_FILE).exists() {
                    return Err(EngineError::UnknownIncident(id.to_string()));
                }
                let (record, entries) = RecordWriter::reopen(&dir, redactor.clone())?;
                (record, entries, None)
            }
        };
        let first = entries
            .first()
            .ok_or_else(|| EngineError::UnknownIncident(id.to_string()))?;
        let params = params_from_opening(first).ok_or_else(|| EngineError::Mismatch {
            id: id.to_string(),
            reason: "the first line does not describe the incident".into(),
        })?;
        if crate::record::IncidentState::fold(&entries)
            .is_some_and(|s| s.status == crate::record::Status::Completed)
        {
            return Err(EngineError::AlreadyClosed(id.to_string()));
        }
        let opened_at = DateTime::parse_from_rfc3339(&first.ts)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| setup.clock.now());
        let mut keys = Vec::new();
        for k in &params.keys {
            let mut run = key_run(&setup, k, params.order, params.purpose).map_err(|e| {
                EngineError::Mismatch {
                    id: id.to_string(),
                    reason: e.to_string(),
                }
            })?;
            replay(&mut run, &entries);
            keys.push(run);
        }
        let http = Http::new(params.dry_run, redactor)?;
        Ok(Self {
            ctx: Ctx {
                setup,
                id: id.to_string(),
                params,
                opened_at,
                http,
                record: SharedRecord::new(record),
                share_note,
            },
            keys,
            resumed: true,
        })
    }

    pub fn id(&self) -> &str {
        &self.ctx.id
    }

    /// The incident's keys, in the order they run.
    pub fn keys(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.key.id.clone()).collect()
    }

    pub fn dry_run(&self) -> bool {
        self.ctx.params.dry_run
    }

    /// How far the shared copy is (`None`: no shared location).
    pub fn share_status(&self) -> Option<crate::record::shared::ShareStatus> {
        self.ctx.record.share_status()
    }

    /// Give the shared copy up to `within` to catch up, then stop sharing (the rest stays
    /// queued in the incident folder for the next command on this incident).
    pub fn finish_sharing(
        &self,
        within: std::time::Duration,
    ) -> Option<crate::record::shared::ShareStatus> {
        self.ctx.record.finish_sharing(within)
    }

    pub fn record_dir(&self) -> PathBuf {
        self.ctx.record.dir().to_path_buf()
    }

    pub fn facts(&self, key: &str) -> Option<&Facts> {
        self.keys.iter().find(|k| k.key.id == key).map(|k| &k.facts)
    }

    pub fn session(&self, key: &str) -> Option<&Session> {
        self.keys
            .iter()
            .find(|k| k.key.id == key)
            .map(|k| &k.session)
    }

    /// The HTTP client this incident sends through (shares the incident's redactor).
    pub fn http(&self) -> &Http {
        &self.ctx.http
    }

    /// The inventory the incident runs over.
    pub fn inventory(&self) -> Arc<Inventory> {
        self.ctx.setup.inventory.clone()
    }

    /// A handle that appends entries of its own to this incident's record (notification
    /// outcomes, written from a background task while the runbook goes on).
    pub fn appender(&self) -> RecordAppender {
        RecordAppender {
            record: self.ctx.record.clone(),
            clock: self.ctx.setup.clock.clone(),
        }
    }
}

/// Appends to a running incident's record from outside the engine, under the same lock as
/// the engine's own entries (so the chain stays in order). Scrubbed like every entry.
#[derive(Clone)]
pub struct RecordAppender {
    record: SharedRecord,
    clock: Arc<dyn Clock>,
}

impl RecordAppender {
    pub fn append(&self, kind: &str, data: Value) -> Result<Entry, RecordError> {
        self.record.append(self.clock.as_ref(), kind, None, data)
    }

    pub fn dir(&self) -> &std::path::Path {
        self.record.dir()
    }
}

fn params_from_opening(first: &Entry) -> Option<IncidentParams> {
    let Event::IncidentOpened(o) = Event::of(first) else {
        return None;
    };
    Some(IncidentParams {
        order: serde_json::from_value(Value::String(o.order.clone()?)).ok()?,
        purpose: o
            .purpose
            .clone()
            .and_then(|p| serde_json::from_value(Value::String(p)).ok())
            .unwrap_or_default(),
        keys: o.keys,
        dry_run: o.dry_run,
        exposed_since: o.exposed_since,
        reason: o.reason,
        logs: o.logs,
    })
}

/// Rebuild a key's session and facts from the record.
fn replay(run: &mut KeyRun, entries: &[Entry]) {
    for e in entries {
        let event = Event::of(e);
        if event.key() != Some(run.key.id.as_str()) {
            continue;
        }
        let step = e.step.as_deref().and_then(StepId::parse);
        let action = event.action().and_then(Action::parse);
        match (&event, step, action) {
            (Event::ActionDone(done), Some(step), Some(action)) => {
                let status = if done.skipped() {
                    Status::Skipped
                } else {
                    Status::Done
                };
                run.session.replay_action(step, action, status);
                if let Some(f) = done
                    .facts
                    .as_ref()
                    .and_then(|f| Facts::deserialize(f.raw()).ok())
                {
                    // Never forget a create attempt an earlier intent entry recorded.
                    let known = std::mem::take(&mut run.facts.create_intents);
                    run.facts = f;
                    for i in known {
                        if run.facts.intent_mut(i.attempt).is_none() {
                            run.facts.create_attempt = run.facts.create_attempt.max(i.attempt);
                            run.facts.create_intents.push(i);
                        }
                    }
                }
            }
            // Create intents are recorded on their own (a crash can come before the next
            // facts snapshot): the latest word on each attempt wins.
            (Event::Evidence(ev), _, Some(Action::Create)) => {
                if let Some(i) = ev
                    .create_intent
                    .as_ref()
                    .and_then(|i| super::facts::CreateIntent::deserialize(i).ok())
                {
                    run.facts.create_attempt = run.facts.create_attempt.max(i.attempt);
                    run.facts.upsert_intent(i);
                }
            }
            // A restore after a failed rotation, begun or done: the replacement is no longer
            // what the agents read.
            (Event::Evidence(ev), _, Some(Action::StoreWrite))
                if ev.restore_intent.is_some() || ev.restored =>
            {
                Ctx::forget_replacement(run);
                if let Some(v) = ev
                    .version
                    .as_ref()
                    .and_then(|v| StoreVersion::deserialize(v).ok())
                    .filter(|_| ev.restored)
                {
                    run.facts.old_version = Some(v);
                }
            }
            (Event::RequestSent(_), _, Some(action)) => match action {
                Action::Create => run.facts.create_sent = true,
                Action::Disable => run.facts.disable_sent = true,
                Action::Revoke => run.facts.revoke_sent = true,
                Action::StoreWrite => run.facts.store_write_sent = true,
                _ => {}
            },
            (Event::StepFinished(_), Some(step), _) => run.session.replay_step_finished(step),
            _ => {}
        }
    }
}

/// Crash-test hook: when `KEYFIRE_FAILPOINT` names this point, stop here until killed, so a
/// test can SIGKILL the process at an exact place in a local (non-HTTP) action.
/// Compiled in only with the `testing` feature (the test suite's), never in a release build.
#[cfg(feature = "testing")]
pub(crate) fn failpoint(name: &str) {
    if std::env::var("KEYFIRE_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("keyfire: paused at failpoint {name}");
        std::thread::sleep(std::time::Duration::from_secs(600));
    }
}

#[cfg(not(feature = "testing"))]
#[inline(always)]
pub(crate) fn failpoint(_name: &str) {}

/// Failure-test hook: when `KEYFIRE_FAILPOINT` is `fail:NAME`, the action NAME fails before
/// sending anything, as if its service had refused it. `testing` feature only.
#[cfg(feature = "testing")]
pub(super) fn injected_failure(name: &str) -> Result<(), Failure> {
    if std::env::var("KEYFIRE_FAILPOINT").is_ok_and(|v| v.strip_prefix("fail:") == Some(name)) {
        return Err(Failure::Failed {
            error: format!("{name}: failure injected by KEYFIRE_FAILPOINT"),
            status: None,
            retryable: false,
        });
    }
    Ok(())
}

#[cfg(not(feature = "testing"))]
#[inline(always)]
pub(super) fn injected_failure(_name: &str) -> Result<(), Failure> {
    Ok(())
}

pub(super) enum ActionOutcome {
    Done,
    Skipped(String),
}

pub(super) enum Failure {
    Failed {
        error: String,
        status: Option<u16>,
        retryable: bool,
    },
    Aborted(String),
    Fatal(EngineError),
}

impl From<RecordError> for Failure {
    fn from(e: RecordError) -> Self {
        Self::Fatal(EngineError::Record(e))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyOutcome {
    Done,
    /// Stopped after containment, waiting for the rest of the campaign to be contained.
    Contained,
    Failed,
    Aborted,
}

/// Which part of each key's runbook a pass of `drive` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Open and revoke (with its proof), then stop.
    Contain,
    /// Everything that is left.
    Rest,
}

impl Ctx {
    /// Append to the record (durably), then tell the front-end.
    pub(super) fn log<S: Sink>(
        &self,
        sink: &mut S,
        kind: &str,
        step: Option<StepId>,
        key: &str,
        mut data: Value,
    ) -> Result<Entry, RecordError> {
        if let Value::Object(map) = &mut data {
            map.insert("key".into(), Value::String(key.to_string()));
        }
        let entry = self.record.append(
            self.setup.clock.as_ref(),
            kind,
            step.map(StepId::as_str),
            data,
        )?;
        sink.emit(&entry);
        Ok(entry)
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        self.setup.clock.now()
    }
}

/// Run an opened or resumed incident to its end (or until the operator stops it).
pub async fn drive<G: Gate, S: Sink>(
    engine: &mut Engine,
    gate: &mut G,
    sink: &mut S,
) -> Result<Outcome, EngineError> {
    let Engine { ctx, keys, resumed } = engine;
    // Announce the incident to the front-end (its first line is already in the record).
    if let Ok(entries) = crate::record::read_entries(&ctx.record.path())
        && !*resumed
        && let Some(first) = entries.first()
    {
        sink.emit(first);
    }
    if *resumed {
        let pending: Vec<&str> = keys
            .iter()
            .filter(|k| !k.session.is_finished())
            .map(|k| k.key.id.as_str())
            .collect();
        let mut data = json!({ "pending_keys": pending, "dry_run": ctx.params.dry_run });
        if let Some(note) = &ctx.share_note {
            data["shared"] = note.clone();
        }
        let entry = ctx
            .record
            .append(ctx.setup.clock.as_ref(), "incident_resumed", None, data)?;
        sink.emit(&entry);
    }
    // Keys with the widest blast radius go first; each provider runs a bounded number of keys
    // at once (settings.max_concurrency, default 16) to respect its rate limits.
    let inv = ctx.setup.inventory.clone();
    keys.sort_by_key(|k| std::cmp::Reverse(crate::inventory::view::blast_size(&inv, &k.key)));
    let mut limits: HashMap<String, Arc<tokio::sync::Semaphore>> = HashMap::new();
    for k in keys.iter() {
        let n = k
            .provider_def
            .settings
            .get("max_concurrency")
            .and_then(Value::as_u64)
            .unwrap_or(16)
            .clamp(1, 64) as usize;
        limits
            .entry(k.provider_def.id.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(n)));
    }
    let ids: Vec<String> = keys
        .iter()
        .filter(|k| !k.session.is_finished())
        .map(|k| k.key.id.clone())
        .collect();
    let shared_gate = super::campaign::SharedGate::new(gate, &ids);
    let shared_sink = super::campaign::SharedSink::new(sink);
    let resumed = *resumed;
    let ctx_ref: &Ctx = ctx;
    // Contain first: every key's revoke (and its proof) runs before any key's redeploy,
    // audit or report, so the last key of a campaign is not left live while the first ones
    // gather evidence.
    let phases: &[Phase] = if ctx.params.order == Order::ContainFirst {
        &[Phase::Contain, Phase::Rest]
    } else {
        &[Phase::Rest]
    };
    let mut settled: Vec<Option<KeyOutcome>> = keys
        .iter()
        .map(|k| k.session.is_finished().then_some(KeyOutcome::Done))
        .collect();
    for (n, &phase) in phases.iter().enumerate() {
        let first_phase = n == 0;
        let runs = keys
            .iter_mut()
            .zip(settled.iter())
            .enumerate()
            .filter(|(_, (_, done))| done.is_none())
            .map(|(idx, (run, _))| {
                let limit = limits.get(&run.provider_def.id).cloned();
                let shared_gate = &shared_gate;
                let shared_sink = &shared_sink;
                async move {
                    let _permit = match &limit {
                        Some(l) => l.acquire().await.ok(),
                        None => None,
                    };
                    let mut gate = shared_gate.handle();
                    let mut sink = shared_sink.handle();
                    if gate.abort_requested() {
                        return (idx, Ok(KeyOutcome::Aborted));
                    }
                    if resumed && first_phase {
                        match ctx_ref.refresh(run, &mut sink).await {
                            Ok(()) => {}
                            Err(Failure::Fatal(e)) => return (idx, Err(e)),
                            Err(Failure::Aborted(_)) => return (idx, Ok(KeyOutcome::Aborted)),
                            Err(Failure::Failed { error, status, .. }) => {
                                let logged = ctx_ref.log(&mut sink, "step_failed", Some(StepId::Open), &run.key.id, json!({ "action": "refresh", "error": error, "status": status, "retryable": true }));
                                return (
                                    idx,
                                    logged
                                        .map(|_| KeyOutcome::Failed)
                                        .map_err(EngineError::from),
                                );
                            }
                        }
                    }
                    let outcome = run_key(ctx_ref, run, phase, &mut gate, &mut sink).await;
                    if matches!(outcome, Ok(KeyOutcome::Aborted)) {
                        shared_gate.abort_all();
                    }
                    (idx, outcome)
                }
            });
        let results = futures_util::future::join_all(runs).await;
        for (idx, r) in results {
            match r? {
                KeyOutcome::Contained => {}
                other => settled[idx] = Some(other),
            }
        }
    }
    let mut outcome = Outcome::Completed;
    for r in settled.into_iter().flatten() {
        match r {
            KeyOutcome::Done | KeyOutcome::Contained => {}
            KeyOutcome::Failed if outcome == Outcome::Completed => outcome = Outcome::Failed,
            KeyOutcome::Failed => {}
            KeyOutcome::Aborted => outcome = Outcome::Aborted,
        }
    }
    let mut sink = shared_sink.handle();
    close(ctx, keys, outcome, &mut sink)?;
    Ok(outcome)
}

fn step_title(ctx: &Ctx, step: StepId) -> String {
    match step {
        StepId::Open => {
            "Open: credentials, locate the key and read the store (evidence waits for the revoke)"
                .into()
        }
        other => ctx
            .setup
            .runbook
            .step(other)
            .map(|s| s.title.clone())
            .unwrap_or_else(|| other.to_string()),
    }
}

async fn run_key<G: Gate, S: Sink>(
    ctx: &Ctx,
    run: &mut KeyRun,
    phase: Phase,
    gate: &mut G,
    sink: &mut S,
) -> Result<KeyOutcome, EngineError> {
    while let Some(c) = run.session.next() {
        let step = run.session.step_id(c);
        // The containment pass ends with the proof: the evidence read deferred behind the
        // revoke waits, with the rest, until every key of the campaign is contained.
        if phase == Phase::Contain
            && (run.session.containment_settled() || !matches!(step, StepId::Open | StepId::Revoke))
        {
            return Ok(KeyOutcome::Contained);
        }
        if !run.session.step_started(c) {
            run.session.start_step(c);
            run.step_started.insert(step, ctx.now());
            let checklist = ctx
                .setup
                .runbook
                .step(step)
                .map(|s| s.checklist.clone())
                .unwrap_or_default();
            let note = ctx
                .setup
                .runbook
                .note(run.provider_def.kind, step)
                .map(str::to_string);
            let title = step_title(ctx, step);
            ctx.log(
                sink,
                "step_started",
                Some(step),
                &run.key.id,
                json!({ "title": title, "checklist": checklist, "note": note }),
            )?;
        }
        if gate.abort_requested() {
            ctx.log(
                sink,
                "operator_input",
                Some(step),
                &run.key.id,
                json!({ "decision": "abort", "reason": "operator interrupted the incident" }),
            )?;
            return Ok(KeyOutcome::Aborted);
        }
        let Some(action) = run.session.action(c) else {
            let started = run
                .step_started
                .get(&step)
                .copied()
                .unwrap_or_else(|| ctx.now());
            let ms = (ctx.now() - started).num_milliseconds();
            run.facts.step_ms.insert(step.as_str().to_string(), ms);
            run.session.finish_step(c);
            let status = run.session.steps[c.step].status;
            ctx.log(
                sink,
                "step_finished",
                Some(step),
                &run.key.id,
                json!({ "duration_ms": ms, "status": status, "facts": run.facts }),
            )?;
            continue;
        };
        let concurrent_store_read = action == Action::Locate
            && run.caps.locate
            && run.store.is_some()
            && matches!(
                run.session.steps[c.step].actions.get(c.action + 1),
                Some((Action::ReadStore, Status::Pending | Status::Failed))
            );
        let (result, store_read) = if concurrent_store_read {
            ctx.locate_and_read_store(run, step, sink).await
        } else {
            (ctx.run_action(run, step, action, gate, sink).await, None)
        };
        match result {
            Ok(ActionOutcome::Done) => {
                run.session.settle(c, Status::Done);
                note_containment(ctx, run);
                ctx.log(
                    sink,
                    "action_done",
                    Some(step),
                    &run.key.id,
                    json!({ "action": action, "status": "done", "facts": run.facts }),
                )?;
            }
            Ok(ActionOutcome::Skipped(reason)) => {
                run.session.settle(c, Status::Skipped);
                note_containment(ctx, run);
                ctx.log(sink, "action_done", Some(step), &run.key.id, json!({ "action": action, "status": "skipped", "reason": reason, "facts": run.facts }))?;
            }
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Aborted(reason)) => {
                ctx.log(
                    sink,
                    "operator_input",
                    Some(step),
                    &run.key.id,
                    json!({ "action": action, "decision": "abort", "reason": reason }),
                )?;
                return Ok(KeyOutcome::Aborted);
            }
            Err(Failure::Failed {
                error,
                status,
                retryable,
            }) => {
                // Error texts can quote what a server sent back: scrub before anyone sees them.
                let error = ctx.http.redactor().scrub(&error);
                run.session.settle(c, Status::Failed);
                ctx.log(sink, "step_failed", Some(step), &run.key.id, json!({ "action": action, "error": error, "status": status, "retryable": retryable }))?;
                let view = FailureView {
                    key: &run.key.id,
                    step,
                    action,
                    error: &error,
                    status,
                };
                let choice = gate.on_failure(&view).await;
                match choice {
                    FailureChoice::Retry => {
                        ctx.log(
                            sink,
                            "operator_input",
                            Some(step),
                            &run.key.id,
                            json!({ "action": action, "decision": "retry" }),
                        )?;
                    }
                    FailureChoice::Skip { reason } => {
                        ctx.log(
                            sink,
                            "operator_input",
                            Some(step),
                            &run.key.id,
                            json!({ "action": action, "decision": "skip", "reason": reason }),
                        )?;
                        run.session.settle(c, Status::Skipped);
                        note_containment(ctx, run);
                        ctx.log(sink, "action_done", Some(step), &run.key.id, json!({ "action": action, "status": "skipped", "reason": format!("operator skipped after failure: {reason}"), "facts": run.facts }))?;
                    }
                    FailureChoice::LeaveFailed => {
                        // A failed rotation leaves exactly the old key in use: a replacement
                        // that was asked for but never stored (its answer may have been lost:
                        // no id is needed to find it) is revoked now. The store is read again
                        // first, and the replacement it serves is never revoked.
                        let unstored = run.facts.new_version.is_none()
                            && (run.facts.create_sent
                                || run.facts.create_intents.iter().any(|i| !i.settled));
                        if ctx.params.purpose == Purpose::Rotation
                            && unstored
                            && !ctx.params.dry_run
                        {
                            ctx.log(sink, "evidence", Some(step), &run.key.id, json!({ "action": Action::Create, "text": "the rotation failed before its replacement was stored: revoking the replacement, the old key stays in use" }))?;
                            match ctx.revoke_orphan(run, step, gate, sink).await {
                                Ok(()) | Err(Failure::Failed { .. }) | Err(Failure::Aborted(_)) => {
                                }
                                Err(Failure::Fatal(e)) => return Err(e),
                            }
                        }
                        if ctx.params.purpose == Purpose::Rotation
                            && !ctx.params.dry_run
                            && let Some(v) = run.facts.new_version.clone()
                            && !run.facts.revoke_sent
                        {
                            // The store serves the replacement and the old key still works:
                            // put the previous version back, then revoke the replacement, so
                            // exactly the old key is in use again. Where the store cannot, both
                            // keys stay, loudly, and the rotation stays open to be finished.
                            let restored = if run.facts.disable_sent {
                                // The old key may no longer work: the agents keep the
                                // replacement, which is the key that does.
                                Ok(Some("the old key was disabled before the failure".into()))
                            } else {
                                ctx.restore_previous(run, step, gate, sink).await
                            };
                            let cannot = match restored {
                                Ok(None) => None,
                                Ok(Some(why)) => Some(why),
                                Err(Failure::Failed { error, .. }) => Some(error),
                                Err(Failure::Aborted(_)) => {
                                    Some("the operator declined the restore".into())
                                }
                                Err(Failure::Fatal(e)) => return Err(e),
                            };
                            match cannot {
                                None => match ctx.revoke_orphan(run, step, gate, sink).await {
                                    Ok(())
                                    | Err(Failure::Failed { .. })
                                    | Err(Failure::Aborted(_)) => {}
                                    Err(Failure::Fatal(e)) => return Err(e),
                                },
                                Some(why) => {
                                    let why = ctx.http.redactor().scrub(&why);
                                    ctx.log(sink, "evidence", Some(step), &run.key.id, json!({
                                        "action": Action::StoreWrite,
                                        "both_keys_live": true,
                                        "version": v,
                                        "text": format!("the rotation failed after storing and the previous version was not restored ({why}): the store serves the replacement (version {v}) and the old key was NOT revoked; both keys stay until `keyfire rotate --resume {}` finishes the rotation", ctx.id),
                                    }))?;
                                }
                            }
                        }
                        return Ok(KeyOutcome::Failed);
                    }
                    FailureChoice::Abort => {
                        ctx.log(
                            sink,
                            "operator_input",
                            Some(step),
                            &run.key.id,
                            json!({ "action": action, "decision": "abort" }),
                        )?;
                        return Ok(KeyOutcome::Aborted);
                    }
                }
            }
        }
        // The store read that ran beside the locate settles after it (it never fails its
        // step: an unreadable store is evidence unavailable). Not settled: it runs again on
        // its own turn.
        let read_at = Cursor {
            step: c.step,
            action: c.action + 1,
        };
        match store_read {
            Some(Ok(ActionOutcome::Done)) => {
                run.session.settle(read_at, Status::Done);
                ctx.log(
                    sink,
                    "action_done",
                    Some(step),
                    &run.key.id,
                    json!({ "action": Action::ReadStore, "status": "done", "facts": run.facts }),
                )?;
            }
            Some(Ok(ActionOutcome::Skipped(reason))) => {
                run.session.settle(read_at, Status::Skipped);
                ctx.log(sink, "action_done", Some(step), &run.key.id, json!({ "action": Action::ReadStore, "status": "skipped", "reason": reason, "facts": run.facts }))?;
            }
            Some(Err(Failure::Fatal(e))) => return Err(e),
            Some(Err(_)) | None => {}
        }
    }
    Ok(KeyOutcome::Done)
}

/// The moment the key's revoke and its proof settled: the end of its containment, whatever
/// the proof said. Evidence read after it (the deferred usage snapshot) does not count.
fn note_containment(ctx: &Ctx, run: &mut KeyRun) {
    if run.facts.contained_at.is_none() && run.session.containment_settled() {
        run.facts.contained_at = Some(ctx.now());
    }
}

fn close<S: Sink>(
    ctx: &Ctx,
    keys: &[KeyRun],
    outcome: Outcome,
    sink: &mut S,
) -> Result<(), EngineError> {
    let now = ctx.now();
    let mut per_key = serde_json::Map::new();
    for run in keys {
        let ms = |t: Option<DateTime<Utc>>| t.map(|t| (t - ctx.opened_at).num_milliseconds());
        per_key.insert(
            run.key.id.clone(),
            json!({
                "finished": run.session.is_finished(),
                "time_to_revoke_ms": ms(run.facts.revoked_at),
                "time_to_restore_ms": ms(run.facts.restored_at),
                "time_to_contain_ms": ms(run.facts.contained_at),
                "step_ms": run.facts.step_ms,
                "new_key_id": run.facts.new_key_id,
                "new_version": run.facts.new_version,
            }),
        );
    }
    // Until the last key's containment settled; unknown while any key is not contained.
    let fleet_time_to_contain_ms = keys
        .iter()
        .map(|k| k.facts.contained_at)
        .collect::<Option<Vec<_>>>()
        .and_then(|ts| ts.into_iter().max())
        .map(|t| (t - ctx.opened_at).num_milliseconds());
    let data = json!({
        "outcome": outcome,
        "dry_run": ctx.params.dry_run,
        "total_ms": (now - ctx.opened_at).num_milliseconds(),
        "fleet_time_to_contain_ms": fleet_time_to_contain_ms,
        "keys": per_key,
    });
    let entry = ctx
        .record
        .append(ctx.setup.clock.as_ref(), "incident_closed", None, data)?;
    sink.emit(&entry);
    // The final report, with the closing timings. A failure here loses nothing: the record
    // is complete and `keyfire report` renders it again.
    if ctx.params.purpose == Purpose::Incident {
        let _ = render_reports(ctx);
    }
    Ok(())
}

/// Write report.md and report.json beside the record, from the record.
pub(super) fn render_reports(ctx: &Ctx) -> std::io::Result<crate::report::Report> {
    let entries = crate::record::read_entries(&ctx.record.path()).map_err(std::io::Error::other)?;
    let report = crate::report::build(&ctx.id, &entries)
        .ok_or_else(|| std::io::Error::other("empty record"))?;
    let dir = ctx.record.dir();
    crate::record::files::write_atomic(
        &dir.join("report.md"),
        crate::report::render_markdown(&report).as_bytes(),
    )?;
    crate::record::files::write_atomic(
        &dir.join("report.json"),
        crate::report::render_json(&report).as_bytes(),
    )?;
    Ok(report)
}
