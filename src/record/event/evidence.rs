//! `evidence`: what an action learned, one type for writing and reading. The actions build
//! an entry through a constructor per shape (so the writer names the fields once, here),
//! and every reader (the projection, resume, the orphan search) reads the same type back.
//!
//! The JSON is flat, one object per entry, as it always was: a field absent from a shape
//! is left out, and a field a shape always writes is written even when it has no value
//! (`Option<Option<_>>`: absent is `None`, a recorded `null` is `Some(None)`). Records
//! written by older releases read the same; the round-trip test over the previous
//! release's records (tests/integration/projection.rs) checks that they write back equal.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{present, serde_name};
use crate::audit::{AuditSummary, SourceInfo};
use crate::provider::{AuditEvent, Identity, LocatedKey, Probe, UsageBucket, UsageEvent, UsageReport};
use crate::store::StoreVersion;

fn is_false(b: &bool) -> bool {
    !*b
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// `evidence`: what an action learned. One shape per action; every field is optional and
/// the action's constructor says which apply.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Evidence {
    /// Added by the engine when it records the entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Added by the engine when it records the entry (`refresh` names no action of the
    /// runbook: it is the reads a resume makes again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The human sentence, when the action wrote one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A best-effort read that failed: why, and its HTTP status (`null`: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub status: Option<Option<u64>>,

    // resolve_credentials
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Vec<Resolved>>,

    // locate
    /// The located key (`null`: the provider no longer knows it).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub found: Option<Option<LocatedKey>>,
    /// Every key that matched the hint, when more than one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ambiguous: Option<Vec<LocatedKey>>,

    // read_store
    /// The version the store serves (`null`: nothing stored at the path).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub current_version: Option<Option<StoreVersion>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_version: Option<StoreVersion>,
    /// A replacement written before an interruption, found in the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_version: Option<StoreVersion>,

    // prove_revoked
    #[serde(skip_serializing_if = "is_false")]
    pub drill: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_key_rejected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_key_authenticates: Option<bool>,
    /// `proven`, or `inconclusive` when the probe could not prove anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// The provider's documented invalid-credential answer the proof saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The provider's answer to a call made with a key (`null`: no call was made).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub answer: Option<Option<Probe>>,
    /// Whether the value used is the key that was located.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,

    // snapshot_usage, fetch_usage
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<UsageBucket>>,
    /// What the per-request events can tell (`null`: the usage has none).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub events_source: Option<Option<SourceInfo>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_in_window: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_total: Option<u64>,
    /// The usage's individual events, or (other shapes) how many there were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Events>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<String>>,
    /// The provider's audit log (fetch_usage, beside the usage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_log: Option<AuditLog>,

    // evaluate_rules (the audit's summary, flat)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<SourceInfo>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<RuleVerdict>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_with_findings: Option<u64>,
    /// `null`: no source that answers for the key (unknown, not 0).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub requests_in_window: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub tokens_in_window: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub spend_in_window_usd: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub first_suspicious: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub last_suspicious: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable_lines: Option<u64>,

    // create
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub hint: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub create_intent: Option<Option<CreateIntent>>,
    /// A replacement whose value was lost (its id, `null` when none was recorded).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub lost_replacement: Option<Option<String>>,
    /// A replacement nobody can use, revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orphan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,

    // store_write, promote, store_read_back, restore
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<StoreVersion>,
    /// The version before (`null`: none, or nothing stored).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub previous_version: Option<Option<StoreVersion>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noop: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<bool>,
    #[serde(skip_serializing_if = "is_false")]
    pub restore_intent: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub restored: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub both_keys_live: bool,

    // verify_new
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_key_works: Option<bool>,

    // write_report
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,

    // update_inventory
    #[serde(skip_serializing_if = "is_false")]
    pub changed_since_approval: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

/// A credential resolved at open: what it is for and where it came from (a reference,
/// never a value).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Resolved {
    #[serde(rename = "for")]
    pub used_for: String,
    pub reference: String,
}

/// The exposure window an audit looked at, as recorded (the rules' summary adds the
/// baseline's start).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Window {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// A time as the record writes it (the text chrono's serde writes).
fn time(t: DateTime<Utc>) -> Option<String> {
    serde_name(&t)
}

impl Window {
    pub fn of(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            baseline_start: None,
            start: time(start),
            end: time(end),
        }
    }
}

/// `events`: the usage's individual events (fetch_usage), or how many there were (the
/// usage snapshot, the rules).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Events {
    Count(u64),
    List(Vec<UsageEvent>),
}

/// The provider's audit log as fetch_usage recorded it: its events, or why it could not
/// be read.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct AuditLog {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<AuditEvent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub status: Option<Option<u64>>,
}

/// One anomaly rule's verdict as the audit recorded it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct RuleVerdict {
    pub rule: String,
    /// `findings`, `clean` or `not_evaluable`.
    pub status: String,
    pub source: String,
    pub findings: Vec<String>,
}

/// One create request as the record knows it: what keyfire asked for and when. Recorded
/// before the request is sent and again whenever it learns more; the engine's facts keep
/// the same type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateIntent {
    pub attempt: u32,
    /// The name the replacement was given.
    pub name: String,
    /// Wall-clock time the request left (the provider stamps creation with its own clock,
    /// so this is not the incident clock).
    pub sent_at: Option<DateTime<Utc>>,
    /// When a failed answer came back (the window the provider can have made the key in).
    pub answered_at: Option<DateTime<Utc>>,
    /// The replacement's id, when its answer was recorded.
    pub key_id: Option<String>,
    /// Revoked, found gone, or it is the replacement the store serves: nothing left to clean.
    pub settled: bool,
}

/// The rotation written into the inventory (`rotation_days` `null`: the interval is kept).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Rotation {
    pub key: String,
    pub last_rotated: Option<NaiveDate>,
    pub rotation_days: Option<u32>,
    /// `incident` or `scheduled`.
    pub reason: String,
}

/// Constructors, one per shape an action records. The key is added by the engine when it
/// records the entry; the action by [`Evidence::about`].
impl Evidence {
    /// The action this evidence is about.
    pub fn about<A: Serialize>(self, action: A) -> Self {
        Self {
            action: serde_name(&action),
            ..self
        }
    }

    /// A sentence and nothing else.
    pub fn said(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }

    /// A best-effort read failed: why, and its HTTP status (`null` when it had none).
    pub fn unavailable(reason: String, status: Option<u16>) -> Self {
        Self {
            text: Some(format!("evidence unavailable: {reason}")),
            unavailable: Some(reason),
            status: Some(status.map(u64::from)),
            ..Self::default()
        }
    }

    /// Something could not be read, told in the action's own words (no status recorded).
    pub fn unavailable_saying(reason: String, text: String) -> Self {
        Self {
            unavailable: Some(reason),
            text: Some(text),
            ..Self::default()
        }
    }

    /// A resume reads provider and store state again.
    pub fn refresh() -> Self {
        Self {
            action: Some("refresh".into()),
            ..Self::said("resuming: reading provider and store state again")
        }
    }

    pub fn resolved(resolved: Vec<Resolved>) -> Self {
        Self {
            resolved: Some(resolved),
            ..Self::default()
        }
    }

    pub fn located(found: LocatedKey) -> Self {
        Self {
            found: Some(Some(found)),
            ..Self::default()
        }
    }

    /// The provider no longer knows the key.
    pub fn gone(text: impl Into<String>) -> Self {
        Self {
            found: Some(None),
            ..Self::said(text)
        }
    }

    pub fn ambiguous(candidates: Vec<LocatedKey>, text: String) -> Self {
        Self {
            ambiguous: Some(candidates),
            ..Self::said(text)
        }
    }

    /// The store's current version and the leaked key's.
    pub fn store_holds(current: StoreVersion, old: StoreVersion, text: String) -> Self {
        Self {
            current_version: Some(Some(current)),
            old_version: Some(old),
            ..Self::said(text)
        }
    }

    pub fn nothing_stored(text: impl Into<String>) -> Self {
        Self {
            current_version: Some(None),
            ..Self::said(text)
        }
    }

    /// A replacement written before an interruption, found pending in the store.
    pub fn pending_found(version: StoreVersion, text: impl Into<String>) -> Self {
        Self {
            pending_version: Some(version),
            ..Self::said(text)
        }
    }

    /// Usage before any change (counts only: the buckets are fetched again by the audit).
    pub fn usage_snapshot(report: &UsageReport, window_days: u32, text: String) -> Self {
        Self {
            window_days: Some(window_days),
            requests: Some(report.requests()),
            tokens: Some(report.tokens()),
            cost_usd: Some(report.cost_usd()),
            pages: Some(u64::from(report.pages)),
            events: Some(Events::Count(count(report.events.len()))),
            notes: Some(report.notes.clone()),
            ..Self::said(text)
        }
    }

    /// The audit's usage over the exposure window and the baseline before it.
    pub fn usage(report: &UsageReport, seen: UsageSeen, text: String) -> Self {
        let window = Window::of(seen.start, seen.end);
        Self {
            window: Some(window),
            baseline_start: time(seen.baseline_start),
            pages: Some(u64::from(report.pages)),
            requests: Some(seen.requests),
            tokens: Some(seen.tokens),
            cost_usd: Some(seen.cost_usd),
            buckets: Some(report.buckets.clone()),
            events_source: Some(report.events_source.clone()),
            events_in_window: Some(count(seen.events_in_window)),
            events_total: Some(count(report.events.len())),
            events: Some(Events::List(
                report.events.iter().take(seen.events_kept).cloned().collect(),
            )),
            notes: Some(report.notes.clone()),
            ..Self::said(text)
        }
    }

    /// The provider's audit-log events about the key.
    pub fn audit_log(events: Vec<AuditEvent>, pages: u32, text: String) -> Self {
        Self {
            audit_log: Some(AuditLog {
                events: Some(events),
                pages: Some(u64::from(pages)),
                ..AuditLog::default()
            }),
            ..Self::said(text)
        }
    }

    /// The provider's audit log could not be read (the usage findings stand).
    pub fn audit_log_unavailable(error: String, status: Option<u16>) -> Self {
        let status = Some(status.map(u64::from));
        Self {
            text: Some(format!(
                "evidence unavailable: the provider's audit log could not be read (is it enabled for the organization?): {error}; usage findings stand"
            )),
            unavailable: Some(format!("the provider's audit log: {error}")),
            status,
            audit_log: Some(AuditLog {
                unavailable: Some(error),
                status,
                ..AuditLog::default()
            }),
            ..Self::default()
        }
    }

    /// Every rule's verdict and the window's totals, as the audit summed them up.
    pub fn rules(summary: &AuditSummary, text: String) -> Self {
        let w = &summary.window;
        Self {
            window: Some(Window {
                baseline_start: time(w.baseline_start),
                ..Window::of(w.start, w.end)
            }),
            sources: Some(summary.sources.clone()),
            rules: Some(summary.rules.iter().map(RuleVerdict::of).collect()),
            events: Some(Events::Count(summary.events)),
            requests_in_window: Some(summary.requests_in_window),
            tokens_in_window: Some(summary.tokens_in_window),
            spend_in_window_usd: Some(summary.spend_in_window_usd),
            first_suspicious: Some(summary.first_suspicious.and_then(time)),
            last_suspicious: Some(summary.last_suspicious.and_then(time)),
            notes: (!summary.notes.is_empty()).then(|| summary.notes.clone()),
            unreadable_lines: (summary.unreadable_lines != 0).then_some(summary.unreadable_lines),
            rules_with_findings: Some(count(summary.fired())),
            ..Self::said(text)
        }
    }

    /// A drill's proof: the old key was used and not revoked, so the check itself is shown
    /// to work (or the provider already rejects the key).
    pub fn proof_drill(old_key_authenticates: bool, identity: Identity, text: &str) -> Self {
        Self {
            drill: true,
            old_key_authenticates: Some(old_key_authenticates),
            identity: Some(identity),
            ..Self::said(text)
        }
    }

    /// The provider rejects the old key with its documented invalid-credential answer.
    pub fn proven(status: Option<u16>, signal: String, identity: Identity, text: String) -> Self {
        Self {
            proof: Some("proven".into()),
            old_key_rejected: Some(true),
            status: Some(status.map(u64::from)),
            signal: Some(signal),
            identity: Some(identity),
            ..Self::said(text)
        }
    }

    /// The revocation is not proven: why, and the last answer if a call was made.
    pub fn inconclusive(reason: String, answer: Option<&Probe>, identity: Identity) -> Self {
        Self {
            proof: Some("inconclusive".into()),
            text: Some(format!("revocation NOT proven: {reason}")),
            reason: Some(reason),
            answer: Some(answer.cloned()),
            status: Some(answer.and_then(Probe::status).map(u64::from)),
            identity: Some(identity),
            ..Self::default()
        }
    }

    /// A replacement the provider made: its id and hint (never its value), and its intent.
    pub fn created(id: String, hint: Option<String>, intent: Option<CreateIntent>) -> Self {
        Self {
            new_key_id: Some(id),
            hint: Some(hint),
            create_intent: Some(intent),
            ..Self::default()
        }
    }

    /// What keyfire knows about one create attempt (replayed on resume).
    pub fn intent(intent: CreateIntent) -> Self {
        Self {
            create_intent: Some(Some(intent)),
            ..Self::default()
        }
    }

    /// A replacement whose value was lost before it reached the store.
    pub fn lost_replacement(id: Option<String>, text: impl Into<String>) -> Self {
        Self {
            lost_replacement: Some(id),
            ..Self::said(text)
        }
    }

    /// A replacement nobody can use, about to be revoked.
    pub fn orphan(id: String, attempt: u32, text: impl Into<String>) -> Self {
        Self {
            orphan: Some(id),
            attempt: Some(attempt),
            ..Self::said(text)
        }
    }

    /// The replacement written to the store (pending: in a stage agents do not read yet).
    pub fn stored(version: StoreVersion, previous: Option<StoreVersion>, pending: bool) -> Self {
        Self {
            version: Some(version),
            previous_version: Some(previous),
            pending: Some(pending),
            ..Self::default()
        }
    }

    /// A store without stages: the version became current when it was written.
    pub fn promotion_noop(version: StoreVersion, text: String) -> Self {
        Self {
            version: Some(version),
            noop: Some(true),
            ..Self::said(text)
        }
    }

    pub fn promoted(version: StoreVersion, from: Option<StoreVersion>, text: String) -> Self {
        Self {
            version: Some(version),
            previous_version: Some(from),
            noop: Some(false),
            ..Self::said(text)
        }
    }

    /// The stored replacement read back, and it is the one keyfire wrote.
    pub fn read_back(version: StoreVersion) -> Self {
        Self {
            version: Some(version),
            matches: Some(true),
            ..Self::default()
        }
    }

    /// The replacement authenticates at the provider.
    pub fn new_key_works(answer: Probe, text: &str) -> Self {
        Self {
            new_key_works: Some(true),
            answer: Some(Some(answer)),
            ..Self::said(text)
        }
    }

    /// A restore of the previous version is begun (recorded before anything is sent).
    pub fn restore_begun(text: String) -> Self {
        Self {
            restore_intent: true,
            ..Self::said(text)
        }
    }

    /// The previous version is again the one agents read.
    pub fn restored(version: StoreVersion, replacement: StoreVersion, text: String) -> Self {
        Self {
            restored: true,
            version: Some(version),
            previous_version: Some(Some(replacement)),
            ..Self::said(text)
        }
    }

    /// The previous version could not be restored: both keys stay live.
    pub fn both_keys_live(version: StoreVersion, text: String) -> Self {
        Self {
            both_keys_live: true,
            version: Some(version),
            ..Self::said(text)
        }
    }

    /// The report files written.
    pub fn report(path: String, json: String, deadline: String) -> Self {
        Self {
            path: Some(path),
            json: Some(json),
            deadline: Some(deadline),
            ..Self::default()
        }
    }

    /// The report is not written now (`path` says where it will be).
    pub fn report_later(path: String, text: &str) -> Self {
        Self {
            path: Some(path),
            ..Self::said(text)
        }
    }

    pub fn changed_since_approval(text: &str) -> Self {
        Self {
            changed_since_approval: true,
            ..Self::said(text)
        }
    }

    pub fn rescheduled(rotation: Rotation) -> Self {
        Self {
            rotation: Some(rotation),
            ..Self::default()
        }
    }
}

/// What the audit counted of a usage report over the exposure window.
#[derive(Debug, Clone, Copy)]
pub struct UsageSeen {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub baseline_start: DateTime<Utc>,
    pub requests: u64,
    pub tokens: u64,
    pub cost_usd: f64,
    pub events_in_window: usize,
    /// How many of the report's events the record keeps (the count is always recorded).
    pub events_kept: usize,
}

impl RuleVerdict {
    fn of(r: &crate::audit::RuleResult) -> Self {
        Self {
            rule: r.rule.to_string(),
            status: serde_name(&r.status).unwrap_or_default(),
            source: r.source.clone(),
            findings: r.findings.clone(),
        }
    }
}

/// What readers ask of an evidence entry.
impl Evidence {
    /// The usage the audit step fetched (not the audit-log evidence recorded beside it).
    pub fn is_usage(&self) -> bool {
        self.action.as_deref() == Some("fetch_usage") && self.window.is_some()
    }

    /// The usage a `fetch_usage` evidence entry recorded, for an audit resumed after the
    /// process that fetched it is gone. Events beyond the recorded cap are not in the record.
    pub fn usage_report(&self) -> Option<UsageReport> {
        let buckets = self.buckets.clone()?;
        Some(UsageReport {
            buckets,
            pages: self
                .pages
                .map_or(0, |p| u32::try_from(p).unwrap_or(u32::MAX)),
            events: match &self.events {
                Some(Events::List(events)) => events.clone(),
                _ => Vec::new(),
            },
            events_source: self
                .events_source
                .clone()
                .flatten()
                .filter(|s| !s.name.is_empty()),
            notes: Vec::new(),
        })
    }

    /// The id of a replacement this entry recorded (made, or asked for).
    pub fn replacement_id(&self) -> Option<&str> {
        self.new_key_id.as_deref().or_else(|| {
            self.create_intent
                .as_ref()
                .and_then(Option::as_ref)
                .and_then(|i| i.key_id.as_deref())
        })
    }

    /// The exposure window's start, parsed.
    pub fn window_start(&self) -> Option<DateTime<Utc>> {
        let start = self.window.as_ref()?.start.as_deref()?;
        DateTime::parse_from_rfc3339(start)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}
