//! What an incident runs with: its surroundings (`Setup`), why and how it runs
//! (`IncidentParams`), the record its keys share, and the per-key state the actions work on.
//! The engine builds these; the actions read and update them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::action::StepId;
use super::facts::Facts;
use super::session::{Order, Session};
use super::spec::Runbook;
use crate::clock::Clock;
use crate::http::Http;
use crate::inventory::{Inventory, Key, ProviderDef};
use crate::plan::SecretBag;
use crate::provider::{AnyProvider, Capabilities};
use crate::record::{Entry, RecordError, RecordWriter};
use crate::store::{AnyStore, SecretLocation};

/// What the engine needs from its surroundings.
#[derive(Clone)]
pub struct Setup {
    /// The loaded inventory; an incident's keys, providers and stores are looked up in it.
    pub inventory: Arc<Inventory>,
    /// The runbook to follow: the built-in key-compromise runbook or a `--runbook` file.
    pub runbook: Arc<Runbook>,
    /// Where records live: each incident in `incidents/<id>/`, beside the lock that live
    /// incidents take to claim their keys.
    pub data_dir: PathBuf,
    /// The time source for record timestamps and timings (the system clock outside tests).
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

/// What to open an incident for and how to run it (the options of `incident start`, `drill`,
/// `rotate`), recorded in the opening line so that a resume runs the same way.
#[derive(Debug, Clone, Serialize, Default)]
pub struct IncidentParams {
    /// Inventory ids of the keys to respond to; at least one.
    pub keys: Vec<String>,
    /// A drill: reads are sent, writes are shown and recorded but never sent, and the keys are
    /// not claimed.
    pub dry_run: bool,
    /// Whether each key is revoked before or after its replacement is in place.
    pub order: Order,
    /// Start of the exposure window the audit step examines; `None` means the key's last
    /// rotation (or creation), else 30 days before the revocation.
    pub exposed_since: Option<DateTime<Utc>>,
    /// Why the incident is opened (leak report, ticket), kept in the record; `None` records
    /// nothing.
    pub reason: Option<String>,
    /// Gateway logs the audit step reads besides the provider's usage API.
    pub logs: Vec<PathBuf>,
    /// A response to a leak (a drill when `dry_run`) or a scheduled rotation.
    pub purpose: Purpose,
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
    /// The operator's answer to the customer-data question (read back from the record on
    /// resume, so it is never asked twice).
    pub customer_data: Option<crate::record::event::CustomerDataAnswer>,
}

/// The incident record, shared by the keys of a campaign that run at the same time. Each
/// append still takes one write and one fsync, under the lock.
#[derive(Clone)]
pub(super) struct SharedRecord {
    writer: Arc<std::sync::Mutex<RecordWriter>>,
    dir: PathBuf,
}

impl SharedRecord {
    pub(super) fn new(writer: RecordWriter) -> Self {
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

    /// Append one of the engine's incident-wide typed entries.
    pub(super) fn append_payload<P: crate::record::event::Payload>(
        &self,
        clock: &dyn Clock,
        payload: &P,
    ) -> Result<Entry, RecordError> {
        self.append(clock, P::KIND, None, payload.data())
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

/// Everything an action may touch except the key being worked on.
pub(super) struct Ctx {
    pub setup: Setup,
    pub id: String,
    pub params: IncidentParams,
    pub opened_at: DateTime<Utc>,
    pub http: Http,
    pub record: SharedRecord,
    /// What `incident_resumed` says about the shared copy (fetched, lease taken over).
    pub share_note: Option<crate::record::event::SharedNote>,
}

impl Ctx {
    pub(super) fn now(&self) -> DateTime<Utc> {
        self.setup.clock.now()
    }
}
