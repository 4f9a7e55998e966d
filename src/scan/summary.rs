//! What a scan's findings mean for the inventory: one summary per matched key, the totals,
//! and the incident `keyfire scan --start-incident` opens. The CLI and the console's Leaks
//! view both start their incident from [`incident_for`], so the two can never disagree on
//! which keys, which reason or which exposure start.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Finding, KeyState};
use crate::inventory::Inventory;
use crate::inventory::view::{BlastRadius, blast_radius};

/// One matched key across every place it was found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeySummary {
    pub id: String,
    pub status: KeyState,
    pub live: bool,
    pub places: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_exposed: Option<DateTime<Utc>>,
    pub blast_radius: BlastRadius,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    pub findings: usize,
    pub live_keys: usize,
    pub unmanaged: usize,
    pub ambiguous: usize,
    pub withheld: usize,
    pub rotated: usize,
}

/// The inventory keys `findings` matched, in key order. Keys the inventory no longer has are
/// left out (a saved scan read after an edit).
pub fn summarize_keys(inv: &Inventory, findings: &[Finding]) -> Vec<KeySummary> {
    let mut by_key: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in findings {
        if let Some(k) = &f.verdict.key {
            by_key.entry(k.as_str()).or_default().push(f);
        }
    }
    let mut out = Vec::new();
    for (id, fs) in by_key {
        let Some(key) = inv.key(id) else { continue };
        let states: Vec<KeyState> = fs.iter().map(|f| f.verdict.status).collect();
        let status = if states.contains(&KeyState::Current) {
            KeyState::Current
        } else if states.contains(&KeyState::Unverified) {
            KeyState::Unverified
        } else {
            KeyState::Rotated
        };
        out.push(KeySummary {
            id: id.to_string(),
            status,
            live: fs.iter().any(|f| f.verdict.is_live()),
            places: fs.len(),
            first_exposed: fs
                .iter()
                .filter(|f| f.verdict.is_live())
                .filter_map(|f| f.location.earliest())
                .min(),
            blast_radius: blast_radius(inv, key),
        });
    }
    out
}

pub fn totals(findings: &[Finding], keys: &[KeySummary]) -> Totals {
    let count = |s: KeyState| findings.iter().filter(|f| f.verdict.status == s).count();
    Totals {
        findings: findings.len(),
        live_keys: keys.iter().filter(|k| k.live).count(),
        unmanaged: count(KeyState::Unmanaged),
        ambiguous: count(KeyState::Ambiguous),
        withheld: count(KeyState::Withheld),
        rotated: count(KeyState::Rotated),
    }
}

/// The incident's `reason`: where each key was found, never what.
pub fn reason(findings: &[Finding], live: &[&KeySummary]) -> String {
    let mut parts = Vec::new();
    for k in live {
        let places: Vec<String> = findings
            .iter()
            .filter(|f| f.verdict.key.as_deref() == Some(k.id.as_str()) && f.verdict.is_live())
            .map(|f| f.location.display())
            .collect();
        let shown = places
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        let more = places.len().saturating_sub(3);
        parts.push(if more > 0 {
            format!("{} found in {shown}; and {more} more", k.id)
        } else {
            format!("{} found in {shown}", k.id)
        });
    }
    format!("keyfire scan: {}", parts.join(" | "))
}

/// What `--start-incident` opens for a set of findings: one campaign over every matched
/// live key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakIncident {
    pub keys: Vec<String>,
    /// Where each key was found (never the value).
    pub reason: String,
    /// The earliest commit (or author) date of a live finding; `None` when no finding has
    /// one (files in a working tree, most scanner reports).
    pub exposed_since: Option<DateTime<Utc>>,
}

/// The campaign for `findings`, or `None` when none of them is a live inventory key (only
/// unmanaged, ambiguous, withheld or already rotated values).
pub fn incident_for(inv: &Inventory, findings: &[Finding]) -> Option<LeakIncident> {
    let keys = summarize_keys(inv, findings);
    let live: Vec<&KeySummary> = keys.iter().filter(|k| k.live).collect();
    if live.is_empty() {
        return None;
    }
    Some(LeakIncident {
        keys: live.iter().map(|k| k.id.clone()).collect(),
        reason: reason(findings, &live),
        exposed_since: live.iter().filter_map(|k| k.first_exposed).min(),
    })
}

/// Why a finding cannot open an incident (`None`: it can), for the console's Leaks view.
#[cfg(feature = "tui")]
pub fn why_not_startable(f: &Finding) -> Option<String> {
    if f.verdict.is_live() {
        return None;
    }
    Some(match f.verdict.status {
        KeyState::Unmanaged => "unmanaged: no inventory key matches it, so keyfire has nothing to revoke; revoke it at its provider, move it to a secrets manager and add it to the inventory".into(),
        KeyState::Ambiguous => format!(
            "ambiguous: the hints of {} all match; find out which key it is, then start from the inventory",
            f.verdict.candidates.join(", ")
        ),
        KeyState::Withheld => "the report withheld the value, so it matched no key: check the location by hand".into(),
        KeyState::Rotated => "already rotated: the store holds another value now".into(),
        KeyState::Current | KeyState::Unverified => {
            "its key is no longer in the inventory".into()
        }
    })
}

/// The finding's verdict in one word, as `keyfire scan` prints it.
pub fn label(f: &Finding) -> &'static str {
    match f.verdict.status {
        KeyState::Current | KeyState::Unverified => "LIVE",
        KeyState::Rotated => "ROTATED",
        KeyState::Unmanaged => "UNMANAGED",
        KeyState::Ambiguous => "AMBIGUOUS",
        KeyState::Withheld => "WITHHELD",
    }
}
