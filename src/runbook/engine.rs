//! The incident engine: opens an incident (validates, claims its keys, writes its first
//! line) or resumes one from its record (replaying each key's session and facts). `drive`
//! runs it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::action::{Action, StepId};
use super::context::{Ctx, IncidentParams, KeyRun, Purpose, Setup, SharedRecord};
use super::error::EngineError;
use super::facts::Facts;
use super::session::{Order, Session, Status};
use crate::clock::Clock;
use crate::http::Http;
use crate::inventory::Inventory;
use crate::paths::incidents_dir;
use crate::plan::SecretBag;
use crate::provider::AnyProvider;
use crate::record::event::{CaughtUp, KeyFacts, LeaseSeen, Opened, SharedNote, serde_name};
use crate::record::{Entry, Event, RecordError, RecordWriter};
use crate::secret::Redactor;
use crate::store::{AnyStore, SecretLocation};

/// Resume with a shared location: take the lease (waiting for an expired one, or taking a
/// live one with `--take-over`), bring the shared copy into the data directory when it is
/// ahead (or the only copy), verify, reopen, and start sharing from where the store is.
#[allow(clippy::type_complexity)]
fn resume_shared(
    sharing: &crate::record::shared::Sharing,
    id: &str,
    dir: &std::path::Path,
    redactor: Redactor,
) -> Result<(RecordWriter, Vec<Entry>, Option<SharedNote>), EngineError> {
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
    let mut note = SharedNote {
        location: Some(store.display().to_string()),
        ..SharedNote::default()
    };
    match adopted {
        Adopted::Fetched { entries } => note.fetched_entries = Some(entries),
        Adopted::CaughtUp { from, to } => note.caught_up = Some(CaughtUp { from, to }),
        Adopted::LocalCurrent | Adopted::NotShared => {}
    }
    let start = match lease {
        Some(l) => {
            note.lease_taken_over = l.displaced.as_ref().map(|d| LeaseSeen {
                holder: d.holder.clone(),
                host: d.host.clone(),
                expires: Some(d.expires),
            });
            note.lease_holder = Some(l.body.holder.clone());
            shared::upload::LeaseStart::Held(Box::new(l))
        }
        None => {
            note.lease = Some("the store was unreachable: no lease taken; uploads queue".into());
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
    Ok((record, entries, Some(note)))
}

/// One incident in progress: its record and each key's run through the runbook. Made by
/// [`Engine::open`] or [`Engine::resume`], then run with [`drive`](crate::drive).
pub struct Engine {
    pub(super) ctx: Ctx,
    pub(super) keys: Vec<KeyRun>,
    pub(super) resumed: bool,
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
        customer_data: None,
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
        let params = &engine.ctx.params;
        let opened = Opened {
            schema: Some(crate::record::SCHEMA),
            keyfire_version: Some(env!("CARGO_PKG_VERSION").to_string()),
            incident: Some(engine.ctx.id.clone()),
            inventory_digest: Some(inv.digest()),
            inventory_files: inv
                .files
                .iter()
                .map(|f| f.path.display().to_string())
                .collect(),
            runbook: Some(engine.ctx.setup.runbook.source.clone()),
            dry_run: params.dry_run,
            order: serde_name(&params.order),
            keys: params.keys.clone(),
            exposed_since: params.exposed_since,
            reason: params.reason.clone(),
            logs: params.logs.clone(),
            purpose: serde_name(&params.purpose),
            report_deadline_hours: Some(u64::from(inv.policy.report_deadline_hours)),
            // What the report needs about each key, so it renders from the record alone.
            key_facts: engine
                .keys
                .iter()
                .map(|k| {
                    let facts = KeyFacts {
                        provider: Some(k.provider_def.id.clone()),
                        provider_kind: serde_name(&k.provider_def.kind),
                        agents: k.key.agents.clone(),
                        scopes: k.key.scopes.clone(),
                        store: k.key.store.clone(),
                        secret_path: k.key.secret_path.clone(),
                    };
                    (k.key.id.clone(), facts)
                })
                .collect(),
            signing_key: None,
        };
        engine
            .ctx
            .record
            .append_payload(engine.ctx.setup.clock.as_ref(), &opened)?;
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

    /// The incident id (`inc-20261126-031500-a1b2`; `drill-...` for drills, `rot-...` for
    /// rotations), also the name of its folder under `incidents/`.
    pub fn id(&self) -> &str {
        &self.ctx.id
    }

    /// The incident's keys, in the order they run.
    pub fn keys(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.key.id.clone()).collect()
    }

    /// Whether this is a drill: writes are shown and recorded, never sent.
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

    /// The incident's folder (`<data dir>/incidents/<id>`), holding `record.jsonl` and its
    /// signed `head`.
    pub fn record_dir(&self) -> PathBuf {
        self.ctx.record.dir().to_path_buf()
    }

    /// What the runbook has learnt so far about one key (its provider id, the replacement,
    /// store versions, containment times); `None` for a key not in this incident.
    pub fn facts(&self, key: &str) -> Option<&Facts> {
        self.keys.iter().find(|k| k.key.id == key).map(|k| &k.facts)
    }

    /// Where one key's run through the runbook stands (each step's actions done, skipped or
    /// pending); `None` for a key not in this incident.
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
                let status = if done.is_skipped() {
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
                if let Some(Some(i)) = ev.create_intent.clone() {
                    run.facts.create_attempt = run.facts.create_attempt.max(i.attempt);
                    run.facts.upsert_intent(i);
                }
            }
            // A restore after a failed rotation, begun or done: the replacement is no longer
            // what the agents read.
            (Event::Evidence(ev), _, Some(Action::StoreWrite))
                if ev.restore_intent || ev.restored =>
            {
                Ctx::forget_replacement(run);
                if let Some(v) = ev.version.clone().filter(|_| ev.restored) {
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
            (Event::OperatorInput(i), _, _) if i.customer_data.is_some() => {
                run.customer_data = i.customer_data;
            }
            _ => {}
        }
    }
}
