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
use crate::provider::{
    AuditEvent, Identity, LocatedKey, Probe, UsageBucket, UsageEvent, UsageReport,
};
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
    pub(crate) fn of(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
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
    pub(crate) fn about<A: Serialize>(self, action: A) -> Self {
        Self {
            action: serde_name(&action),
            ..self
        }
    }

    /// A sentence and nothing else.
    pub(crate) fn said(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }

    /// A best-effort read failed: why, and its HTTP status (`null` when it had none).
    pub(crate) fn unavailable(reason: String, status: Option<u16>) -> Self {
        Self {
            text: Some(format!("evidence unavailable: {reason}")),
            unavailable: Some(reason),
            status: Some(status.map(u64::from)),
            ..Self::default()
        }
    }

    /// Something could not be read, told in the action's own words (no status recorded).
    pub(crate) fn unavailable_saying(reason: String, text: String) -> Self {
        Self {
            unavailable: Some(reason),
            text: Some(text),
            ..Self::default()
        }
    }

    /// A resume reads provider and store state again.
    pub(crate) fn refresh() -> Self {
        Self {
            action: Some("refresh".into()),
            ..Self::said("resuming: reading provider and store state again")
        }
    }

    pub(crate) fn resolved(resolved: Vec<Resolved>) -> Self {
        Self {
            resolved: Some(resolved),
            ..Self::default()
        }
    }

    pub(crate) fn located(found: LocatedKey) -> Self {
        Self {
            found: Some(Some(found)),
            ..Self::default()
        }
    }

    /// The provider no longer knows the key.
    pub(crate) fn gone(text: impl Into<String>) -> Self {
        Self {
            found: Some(None),
            ..Self::said(text)
        }
    }

    pub(crate) fn ambiguous(candidates: Vec<LocatedKey>, text: String) -> Self {
        Self {
            ambiguous: Some(candidates),
            ..Self::said(text)
        }
    }

    /// The store's current version and the leaked key's.
    pub(crate) fn store_holds(current: StoreVersion, old: StoreVersion, text: String) -> Self {
        Self {
            current_version: Some(Some(current)),
            old_version: Some(old),
            ..Self::said(text)
        }
    }

    pub(crate) fn nothing_stored(text: impl Into<String>) -> Self {
        Self {
            current_version: Some(None),
            ..Self::said(text)
        }
    }

    /// A replacement written before an interruption, found pending in the store.
    pub(crate) fn pending_found(version: StoreVersion, text: impl Into<String>) -> Self {
        Self {
            pending_version: Some(version),
            ..Self::said(text)
        }
    }

    /// Usage before any change (counts only: the buckets are fetched again by the audit).
    pub(crate) fn usage_snapshot(report: &UsageReport, window_days: u32, text: String) -> Self {
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
    pub(crate) fn usage(report: &UsageReport, seen: UsageSeen, text: String) -> Self {
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
                report
                    .events
                    .iter()
                    .take(seen.events_kept)
                    .cloned()
                    .collect(),
            )),
            notes: Some(report.notes.clone()),
            ..Self::said(text)
        }
    }

    /// The provider's audit-log events about the key.
    pub(crate) fn audit_log(events: Vec<AuditEvent>, pages: u32, text: String) -> Self {
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
    pub(crate) fn audit_log_unavailable(error: String, status: Option<u16>) -> Self {
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
    pub(crate) fn rules(summary: &AuditSummary, text: String) -> Self {
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
    pub(crate) fn proof_drill(old_key_authenticates: bool, identity: Identity, text: &str) -> Self {
        Self {
            drill: true,
            old_key_authenticates: Some(old_key_authenticates),
            identity: Some(identity),
            ..Self::said(text)
        }
    }

    /// The provider rejects the old key with its documented invalid-credential answer.
    pub(crate) fn proven(
        status: Option<u16>,
        signal: String,
        identity: Identity,
        text: String,
    ) -> Self {
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
    pub(crate) fn inconclusive(reason: String, answer: Option<&Probe>, identity: Identity) -> Self {
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
    pub(crate) fn created(id: String, hint: Option<String>, intent: Option<CreateIntent>) -> Self {
        Self {
            new_key_id: Some(id),
            hint: Some(hint),
            create_intent: Some(intent),
            ..Self::default()
        }
    }

    /// What keyfire knows about one create attempt (replayed on resume).
    pub(crate) fn intent(intent: CreateIntent) -> Self {
        Self {
            create_intent: Some(Some(intent)),
            ..Self::default()
        }
    }

    /// A replacement whose value was lost before it reached the store.
    pub(crate) fn lost_replacement(id: Option<String>, text: impl Into<String>) -> Self {
        Self {
            lost_replacement: Some(id),
            ..Self::said(text)
        }
    }

    /// A replacement nobody can use, about to be revoked.
    pub(crate) fn orphan(id: String, attempt: u32, text: impl Into<String>) -> Self {
        Self {
            orphan: Some(id),
            attempt: Some(attempt),
            ..Self::said(text)
        }
    }

    /// The replacement written to the store (pending: in a stage agents do not read yet).
    pub(crate) fn stored(
        version: StoreVersion,
        previous: Option<StoreVersion>,
        pending: bool,
    ) -> Self {
        Self {
            version: Some(version),
            previous_version: Some(previous),
            pending: Some(pending),
            ..Self::default()
        }
    }

    /// A store without stages: the version became current when it was written.
    pub(crate) fn promotion_noop(version: StoreVersion, text: String) -> Self {
        Self {
            version: Some(version),
            noop: Some(true),
            ..Self::said(text)
        }
    }

    pub(crate) fn promoted(
        version: StoreVersion,
        from: Option<StoreVersion>,
        text: String,
    ) -> Self {
        Self {
            version: Some(version),
            previous_version: Some(from),
            noop: Some(false),
            ..Self::said(text)
        }
    }

    /// The stored replacement read back, and it is the one keyfire wrote.
    pub(crate) fn read_back(version: StoreVersion) -> Self {
        Self {
            version: Some(version),
            matches: Some(true),
            ..Self::default()
        }
    }

    /// The replacement authenticates at the provider.
    pub(crate) fn new_key_works(answer: Probe, text: &str) -> Self {
        Self {
            new_key_works: Some(true),
            answer: Some(Some(answer)),
            ..Self::said(text)
        }
    }

    /// A restore of the previous version is begun (recorded before anything is sent).
    pub(crate) fn restore_begun(text: String) -> Self {
        Self {
            restore_intent: true,
            ..Self::said(text)
        }
    }

    /// The previous version is again the one agents read.
    pub(crate) fn restored(version: StoreVersion, replacement: StoreVersion, text: String) -> Self {
        Self {
            restored: true,
            version: Some(version),
            previous_version: Some(Some(replacement)),
            ..Self::said(text)
        }
    }

    /// The previous version could not be restored: both keys stay live.
    pub(crate) fn both_keys_live(version: StoreVersion, text: String) -> Self {
        Self {
            both_keys_live: true,
            version: Some(version),
            ..Self::said(text)
        }
    }

    /// The report files written.
    pub(crate) fn report(path: String, json: String, deadline: String) -> Self {
        Self {
            path: Some(path),
            json: Some(json),
            deadline: Some(deadline),
            ..Self::default()
        }
    }

    /// The report is not written now (`path` says where it will be).
    pub(crate) fn report_later(path: String, text: &str) -> Self {
        Self {
            path: Some(path),
            ..Self::said(text)
        }
    }

    pub(crate) fn changed_since_approval(text: &str) -> Self {
        Self {
            changed_since_approval: true,
            ..Self::said(text)
        }
    }

    pub(crate) fn rescheduled(rotation: Rotation) -> Self {
        Self {
            rotation: Some(rotation),
            ..Self::default()
        }
    }
}

/// What the audit counted of a usage report over the exposure window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UsageSeen {
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    pub(crate) baseline_start: DateTime<Utc>,
    pub(crate) requests: u64,
    pub(crate) tokens: u64,
    pub(crate) cost_usd: f64,
    pub(crate) events_in_window: usize,
    /// How many of the report's events the record keeps (the count is always recorded).
    pub(crate) events_kept: usize,
}

impl UsageSeen {
    /// Count what `report` holds inside the window `start..end` (buckets that end after the
    /// start, events from it on).
    pub(crate) fn of(
        report: &UsageReport,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        baseline_start: DateTime<Utc>,
        events_kept: usize,
    ) -> Self {
        let in_window: Vec<_> = report.buckets.iter().filter(|b| b.end > start).collect();
        Self {
            start,
            end,
            baseline_start,
            requests: in_window
                .iter()
                .fold(0u64, |a, b| a.saturating_add(b.requests)),
            tokens: in_window
                .iter()
                .fold(0u64, |a, b| a.saturating_add(b.tokens())),
            // `+ 0.0` turns the empty sum's -0.0 into 0.0.
            cost_usd: in_window.iter().map(|b| b.cost_usd).sum::<f64>() + 0.0,
            events_in_window: report.events.iter().filter(|e| e.time >= start).count(),
            events_kept,
        }
    }
}

impl RuleVerdict {
    fn of(r: &crate::audit::rules::RuleResult) -> Self {
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

#[cfg(test)]
mod tests {
    //! Each constructor writes exactly what the action's `json!` literal wrote before the
    //! evidence was typed (the literals below are the old code's, with the same inputs), and
    //! reads back into the value it was built from.

    use serde_json::{Value, json};

    use super::*;
    use crate::audit::RuleStatus;
    use crate::audit::rules::RuleResult;
    use crate::record::event::Payload;
    use crate::runbook::action::Action;

    fn check(built: Evidence, old: Value) {
        assert_eq!(built.data(), old, "written");
        let read = Evidence::deserialize(&old).expect("reads back");
        assert_eq!(read, built, "read back");
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn located(id: &str, last_used: Option<&str>) -> LocatedKey {
        LocatedKey {
            id: id.into(),
            name: Some("agent-key".into()),
            state: crate::provider::KeyState::Active,
            hint: Some("sk-...abcd".into()),
            created_at: None,
            last_used_at: last_used.map(str::to_string),
        }
    }

    fn identity() -> Identity {
        Identity::Matches {
            by: "the provider's hint sk-...abcd".into(),
        }
    }

    fn intent() -> CreateIntent {
        CreateIntent {
            attempt: 2,
            name: "keyfire-inc-1-k-2".into(),
            sent_at: Some(t("2026-11-27T03:00:01.250Z")),
            answered_at: None,
            key_id: Some("key_new".into()),
            settled: false,
        }
    }

    fn report() -> UsageReport {
        UsageReport {
            buckets: vec![
                UsageBucket {
                    start: t("2026-11-26T00:00:00Z"),
                    end: t("2026-11-27T00:00:00Z"),
                    requests: 120,
                    input_tokens: 1000,
                    output_tokens: 250,
                    cost_usd: 0.5,
                },
                UsageBucket {
                    start: t("2026-11-27T00:00:00Z"),
                    end: t("2026-11-28T00:00:00Z"),
                    requests: 3,
                    input_tokens: 0,
                    output_tokens: 0,
                    cost_usd: 0.0,
                },
            ],
            pages: 2,
            events: vec![
                UsageEvent {
                    time: t("2026-11-27T02:00:00Z"),
                    action: "GetCallerIdentity".into(),
                    source_ip: Some("203.0.113.9".into()),
                    user_agent: None,
                    error_code: None,
                },
                UsageEvent {
                    time: t("2026-11-27T02:30:00Z"),
                    action: "ListBuckets".into(),
                    source_ip: None,
                    user_agent: Some("aws-cli".into()),
                    error_code: Some("AccessDenied".into()),
                },
            ],
            events_source: Some(SourceInfo {
                name: "CloudTrail".into(),
                addresses: true,
                statuses: true,
                models: true,
                per_request: true,
            }),
            notes: vec!["IAM: last used 2026-11-27 by s3".into()],
        }
    }

    #[test]
    fn failed_reads_keep_their_shapes() {
        for status in [Some(503u16), None] {
            let reason = "locate: HTTP 503".to_string();
            check(
                Evidence::unavailable(reason.clone(), status),
                json!({
                    "unavailable": reason,
                    "status": status,
                    "text": format!("evidence unavailable: {reason}"),
                }),
            );
        }
        let error = "store: timed out".to_string();
        let old_version = StoreVersion::Number(3);
        let text = format!(
            "evidence unavailable: the leaked version {old_version} could not be read back: {error}"
        );
        check(
            Evidence::unavailable_saying(error.clone(), text),
            json!({
                "unavailable": error,
                "text": format!("evidence unavailable: the leaked version {old_version} could not be read back: {error}"),
            }),
        );
        for status in [Some(403u16), None] {
            let error = "audit log: HTTP 403".to_string();
            check(
                Evidence::audit_log_unavailable(error.clone(), status),
                json!({
                    "audit_log": { "unavailable": error, "status": status },
                    "unavailable": format!("the provider's audit log: {error}"),
                    "status": status,
                    "text": format!("evidence unavailable: the provider's audit log could not be read (is it enabled for the organization?): {error}; usage findings stand"),
                }),
            );
        }
    }

    #[test]
    fn open_evidence_keeps_its_shapes() {
        check(
            Evidence::refresh(),
            json!({ "action": "refresh", "text": "resuming: reading provider and store state again" }),
        );
        let cref = "env:OPENAI_ADMIN_KEY";
        check(
            Evidence::resolved(vec![
                Resolved {
                    used_for: format!("provider {}", "openai-prod"),
                    reference: cref.to_string(),
                },
                Resolved {
                    used_for: format!("store {}", "vault"),
                    reference: "keyring:vault".into(),
                },
            ]),
            json!({ "resolved": [
                json!({ "for": format!("provider {}", "openai-prod"), "reference": cref.to_string() }),
                json!({ "for": format!("store {}", "vault"), "reference": "keyring:vault" }),
            ] }),
        );
        let found = located("key_1", None);
        check(Evidence::located(found.clone()), json!({ "found": found }));
        check(
            Evidence::gone("the key is gone at the provider: it was revoked"),
            json!({ "found": null, "text": "the key is gone at the provider: it was revoked" }),
        );
        let candidates = vec![
            located("key_1", Some("2026-11-27T01:00:00Z")),
            located("key_2", None),
        ];
        let text = "2 keys at provider `openai-prod` match hint sk-...abcd".to_string();
        check(
            Evidence::ambiguous(candidates.clone(), text.clone()),
            json!({ "ambiguous": candidates, "text": text }),
        );
        for (version, old_version) in [
            (StoreVersion::Number(4), StoreVersion::Number(3)),
            (
                StoreVersion::Id("v-b".into()),
                StoreVersion::Id("v-a".into()),
            ),
        ] {
            let text =
                format!("store holds version {version}; the leaked key is version {old_version}");
            check(
                Evidence::store_holds(version.clone(), old_version.clone(), text.clone()),
                json!({ "current_version": version, "old_version": old_version, "text": text }),
            );
        }
        check(
            Evidence::nothing_stored("nothing stored at the secret path yet"),
            json!({ "current_version": null, "text": "nothing stored at the secret path yet" }),
        );
        let report = report();
        let text = format!(
            "last 7 days before any change: {} requests, ${:.2}",
            report.requests(),
            report.cost_usd()
        );
        check(
            Evidence::usage_snapshot(&report, 7, text.clone()),
            json!({
                "text": text,
                "window_days": 7,
                "requests": report.requests(),
                "tokens": report.tokens(),
                "cost_usd": report.cost_usd(),
                "pages": report.pages,
                "events": report.events.len(),
                "notes": report.notes,
            }),
        );
    }

    #[test]
    fn proofs_keep_their_shapes() {
        let identity = identity();
        for accepted in [true, false] {
            let text = if accepted {
                "drill: the old key still authenticates (revoke was not sent); the proof call works"
            } else {
                "drill: the provider already rejects the old key"
            };
            check(
                Evidence::proof_drill(accepted, identity.clone(), text),
                json!({
                    "drill": true,
                    "old_key_authenticates": accepted,
                    "identity": identity,
                    "text": if accepted { "drill: the old key still authenticates (revoke was not sent); the proof call works" } else { "drill: the provider already rejects the old key" },
                }),
            );
        }
        for status in [Some(401u16), None] {
            let signal = "invalid_api_key".to_string();
            let text = format!("the provider rejects the old key ({signal})");
            check(
                Evidence::proven(status, signal.clone(), identity.clone(), text.clone()),
                json!({
                    "proof": "proven",
                    "old_key_rejected": true,
                    "status": status,
                    "signal": signal,
                    "identity": identity,
                    "text": text,
                }),
            );
        }
        let throttled = Probe::Inconclusive {
            status: Some(429),
            reason: "rate limited".into(),
        };
        let unknown = Identity::Unknown {
            why: "no hint".into(),
        };
        for (probe, identity) in [(Some(&throttled), identity.clone()), (None, unknown)] {
            let reason = "after 3 tries the last answer was HTTP 429".to_string();
            check(
                Evidence::inconclusive(reason.clone(), probe, identity.clone()),
                json!({
                    "proof": "inconclusive",
                    "reason": reason,
                    "answer": probe,
                    "status": probe.and_then(Probe::status),
                    "identity": identity,
                    "text": format!("revocation NOT proven: {reason}"),
                }),
            );
        }
        check(
            Evidence::said("the provider no longer knows the key: already revoked"),
            json!({ "text": "the provider no longer knows the key: already revoked" }),
        );
    }

    #[test]
    fn replacement_evidence_keeps_its_shapes() {
        let id = "key_new".to_string();
        for (hint, intent) in [
            (Some("sk-...wxyz".to_string()), Some(intent())),
            (None, None),
        ] {
            check(
                Evidence::created(id.clone(), hint.clone(), intent.clone()),
                json!({ "new_key_id": id, "hint": hint, "create_intent": intent }),
            );
        }
        let intent = intent();
        check(
            Evidence::intent(intent.clone()),
            json!({ "create_intent": intent }),
        );
        for new_key_id in [Some("key_new".to_string()), None] {
            check(
                Evidence::lost_replacement(
                    new_key_id.clone(),
                    "the replacement made before the interruption never reached the store and its value is gone: the create runs again",
                ),
                json!({
                    "lost_replacement": new_key_id,
                    "text": "the replacement made before the interruption never reached the store and its value is gone: the create runs again",
                }),
            );
        }
        check(
            Evidence::orphan(
                id.clone(),
                intent.attempt,
                "a replacement whose value was lost (its create answer, or the process, did not survive) is revoked",
            ),
            json!({ "orphan": id, "attempt": intent.attempt, "text": "a replacement whose value was lost (its create answer, or the process, did not survive) is revoked" }),
        );
        check(
            Evidence::said("the store serves the replacement: it is kept, not revoked"),
            json!({ "text": "the store serves the replacement: it is kept, not revoked" }),
        );
        let version = StoreVersion::Id("AWSPENDING-1".into());
        check(
            Evidence::pending_found(
                version.clone(),
                "the replacement written before the interruption is in the store: it is used, not recreated",
            ),
            json!({ "pending_version": version, "text": "the replacement written before the interruption is in the store: it is used, not recreated" }),
        );
        for (cas, pending) in [(Some(StoreVersion::Number(3)), true), (None, false)] {
            let version = StoreVersion::Number(4);
            check(
                Evidence::stored(version.clone(), cas.clone(), pending),
                json!({ "version": version, "previous_version": cas, "pending": pending }),
            );
        }
        let v = StoreVersion::Number(4);
        let text = format!(
            "{} has no stages: version {v} became current when it was written",
            "vault"
        );
        check(
            Evidence::promotion_noop(v.clone(), text),
            json!({ "version": v, "noop": true, "text": format!("{} has no stages: version {v} became current when it was written", "vault") }),
        );
        for from in [Some(StoreVersion::Id("v-a".into())), None] {
            let version = StoreVersion::Id("v-b".into());
            let text = format!("version {version} is now the one agents read");
            check(
                Evidence::promoted(version.clone(), from.clone(), text),
                json!({ "version": version, "previous_version": from, "noop": false, "text": format!("version {version} is now the one agents read") }),
            );
        }
        check(
            Evidence::read_back(v.clone()),
            json!({ "version": v, "matches": true }),
        );
        for p in [
            Probe::Accepted,
            Probe::Restricted {
                status: Some(403),
                reason: "missing scope".into(),
            },
        ] {
            check(
                Evidence::new_key_works(p.clone(), "the replacement authenticates at the provider"),
                json!({ "new_key_works": true, "answer": p, "text": "the replacement authenticates at the provider" }),
            );
        }
    }

    #[test]
    fn a_failed_rotation_keeps_its_shapes() {
        let (old, new) = (StoreVersion::Number(3), StoreVersion::Number(4));
        check(
            Evidence::restore_begun(format!("putting version {old} back as the one agents read")),
            json!({
                "restore_intent": true,
                "text": format!("putting version {old} back as the one agents read"),
            }),
        );
        let text = format!(
            "version {old} (the key in use before the rotation) is again the one agents read; the replacement, version {new}, is not"
        );
        check(
            Evidence::restored(old.clone(), new.clone(), text),
            json!({
                "restored": true,
                "version": old,
                "previous_version": new,
                "text": format!("version {old} (the key in use before the rotation) is again the one agents read; the replacement, version {new}, is not"),
            }),
        );
        // These two were written with their action in the literal.
        check(
            Evidence::said("the rotation failed before its replacement was stored: revoking the replacement, the old key stays in use").about(Action::Create),
            json!({ "action": Action::Create, "text": "the rotation failed before its replacement was stored: revoking the replacement, the old key stays in use" }),
        );
        let (v, why, id) = (new.clone(), "the operator declined the restore", "rot-1");
        let text = format!(
            "the rotation failed after storing and the previous version was not restored ({why}): the store serves the replacement (version {v}) and the old key was NOT revoked; both keys stay until `keyfire rotate --resume {}` finishes the rotation",
            id
        );
        check(
            Evidence::both_keys_live(v.clone(), text).about(Action::StoreWrite),
            json!({
                "action": Action::StoreWrite,
                "both_keys_live": true,
                "version": v,
                "text": format!("the rotation failed after storing and the previous version was not restored ({why}): the store serves the replacement (version {v}) and the old key was NOT revoked; both keys stay until `keyfire rotate --resume {}` finishes the rotation", id),
            }),
        );
    }

    #[test]
    fn audit_evidence_keeps_its_shapes() {
        const EVIDENCE_EVENTS: usize = 1;
        let report = report();
        let (start, end) = (t("2026-11-27T00:00:00Z"), t("2026-11-27T03:15:30.5Z"));
        let baseline_start = t("2026-11-13T00:00:00Z");
        let seen = UsageSeen::of(&report, start, end, baseline_start, EVIDENCE_EVENTS);
        let text = "3 requests costing $0.00".to_string();
        check(
            Evidence::usage(&report, seen, text.clone()),
            json!({
                "text": text,
                "window": { "start": start, "end": end },
                "baseline_start": baseline_start,
                "pages": report.pages,
                // Only the second bucket ends after the window's start; both events are in it.
                "requests": 3,
                "tokens": 0,
                "cost_usd": 0.0,
                "buckets": report.buckets,
                "events_source": report.events_source,
                "events_in_window": 2,
                "events_total": report.events.len(),
                "events": report.events.iter().take(EVIDENCE_EVENTS).collect::<Vec<_>>(),
                "notes": report.notes,
            }),
        );
        // A usage without per-request events records its source as `null`.
        let buckets_only = UsageReport {
            events: Vec::new(),
            events_source: None,
            notes: Vec::new(),
            ..report.clone()
        };
        let built = Evidence::usage(&buckets_only, seen, text.clone()).data();
        assert_eq!(built["events_source"], Value::Null);
        assert_eq!(built["events"], json!([]));
        assert_eq!(built["notes"], json!([]));

        let events = vec![crate::provider::AuditEvent {
            id: "evt_1".into(),
            kind: "api_key.updated".into(),
            at: t("2026-11-27T02:00:00Z"),
            actor: Some("ops@example.com".into()),
            ip_address: None,
            user_agent: None,
        }];
        let (pages, text) = (1u32, "1 audit-log event(s)".to_string());
        check(
            Evidence::audit_log(events.clone(), pages, text.clone()),
            json!({ "audit_log": { "events": events, "pages": pages }, "text": text }),
        );

        let window = crate::audit::Window {
            baseline_start,
            start,
            end,
        };
        let rule = |rule, status, findings: &[&str]| RuleResult {
            rule,
            status,
            source: "openai-prod usage API".into(),
            findings: findings.iter().map(|f| f.to_string()).collect(),
        };
        let quiet = AuditSummary {
            window,
            sources: vec![SourceInfo::provider_usage("openai-prod")],
            rules: vec![
                rule(
                    "volume",
                    RuleStatus::Findings,
                    &["3x the baseline on 2026-11-27"],
                ),
                rule("network", RuleStatus::NotEvaluable, &[]),
                rule("off_hours", RuleStatus::Clean, &[]),
            ],
            events: 2,
            requests_in_window: Some(3),
            tokens_in_window: None,
            spend_in_window_usd: None,
            first_suspicious: Some(t("2026-11-27T02:00:00Z")),
            last_suspicious: None,
            notes: Vec::new(),
            unreadable_lines: 0,
        };
        let noisy = AuditSummary {
            spend_in_window_usd: Some(0.25),
            tokens_in_window: Some(0),
            notes: vec!["4 unreadable lines in gw.log".into()],
            unreadable_lines: 4,
            ..quiet.clone()
        };
        for summary in [quiet, noisy] {
            let text = "volume: 1 finding(s); network: not evaluable; off_hours: clean".to_string();
            let mut data = serde_json::to_value(&summary).unwrap_or_default();
            if let Value::Object(m) = &mut data {
                m.insert("text".into(), json!(text));
                m.insert("rules_with_findings".into(), json!(summary.fired()));
            }
            check(Evidence::rules(&summary, text), data);
        }
    }

    #[test]
    fn report_and_reschedule_evidence_keep_their_shapes() {
        let dir = std::path::Path::new("/data/incidents/inc-1");
        check(
            Evidence::report_later(
                dir.join("report.md").display().to_string(),
                "the campaign's report is rendered once, when the incident closes",
            ),
            json!({
                "path": dir.join("report.md").display().to_string(),
                "text": "the campaign's report is rendered once, when the incident closes",
            }),
        );
        let deadline = "2026-11-30T03:00:00Z".to_string();
        check(
            Evidence::report(
                dir.join("report.md").display().to_string(),
                dir.join("report.json").display().to_string(),
                deadline.clone(),
            ),
            json!({
                "path": dir.join("report.md").display().to_string(),
                "json": dir.join("report.json").display().to_string(),
                "deadline": deadline,
            }),
        );
        check(
            Evidence::changed_since_approval(
                "the file changed between the approval and the write: the edit was applied to it as it is now",
            ),
            json!({
                "changed_since_approval": true,
                "text": "the file changed between the approval and the write: the edit was applied to it as it is now",
            }),
        );
        let key = "openai-agent".to_string();
        let last_rotated = NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
        for (rotation_days, reason) in [(Some(30u32), "incident"), (None, "scheduled")] {
            let rotation = Rotation {
                key: key.clone(),
                last_rotated: Some(last_rotated),
                rotation_days,
                reason: reason.into(),
            };
            check(
                Evidence::rescheduled(rotation),
                json!({
                    "rotation": { "key": key, "last_rotated": last_rotated, "rotation_days": rotation_days, "reason": reason },
                }),
            );
        }
    }

    /// Readers of the old `Value` fields get the same answers from the typed ones.
    #[test]
    fn readers_find_the_replacement_and_the_recorded_usage() {
        let intent_only = Evidence::deserialize(&json!({
            "key": "k", "action": "create", "create_intent": { "attempt": 1, "name": "n", "key_id": "key_9" }
        }))
        .expect("reads");
        assert_eq!(intent_only.replacement_id(), Some("key_9"));
        let nothing = Evidence::deserialize(&json!({ "create_intent": null })).expect("reads");
        assert_eq!(nothing.create_intent, Some(None));
        assert_eq!(nothing.replacement_id(), None);

        let report = report();
        let seen = UsageSeen {
            start: t("2026-11-27T00:00:00Z"),
            end: t("2026-11-27T03:00:00Z"),
            baseline_start: t("2026-11-13T00:00:00Z"),
            requests: 3,
            tokens: 0,
            cost_usd: 0.0,
            events_in_window: 2,
            events_kept: 500,
        };
        let recorded = Evidence::usage(&report, seen, "usage".into()).about(Action::FetchUsage);
        let back = recorded.usage_report().expect("usage");
        assert_eq!(back.buckets, report.buckets);
        assert_eq!(back.events, report.events);
        assert_eq!(back.events_source, report.events_source);
        assert_eq!(back.pages, 2);
        assert!(recorded.is_usage());
        assert_eq!(recorded.window_start(), Some(seen.start));
        // The snapshot counts its events: no list to hand back.
        let snapshot = Evidence::usage_snapshot(&report, 7, "s".into());
        assert_eq!(snapshot.events, Some(Events::Count(2)));
    }
}
