//! The incidents and drills in the data directory, summarised from their records.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::paths::incidents_dir;
use crate::record::{Entry, IncidentKind, IncidentState, RECORD_FILE, read_entries};

#[derive(Debug, Clone, Serialize)]
pub struct IncidentSummary {
    pub id: String,
    /// `incident`, `drill` or `rotation`.
    pub kind: IncidentKind,
    pub drill: bool,
    pub opened: String,
    pub keys: Vec<String>,
    /// `open` (interrupted or in progress), or the outcome of the last close.
    pub status: String,
    pub reason: Option<String>,
    pub entries: usize,
    pub path: PathBuf,
    pub total_ms: Option<i64>,
    /// With a shared location: `verified`, `local only`, `N queued`, or why the shared copy
    /// fails verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<String>,
}

impl IncidentSummary {
    pub fn is_open(&self) -> bool {
        self.status != "completed"
    }
}

pub fn summarize(id: &str, path: &Path, entries: &[Entry]) -> Option<IncidentSummary> {
    let state = IncidentState::fold(entries)?;
    let drill = state.dry_run;
    let kind = state.kind();
    Some(IncidentSummary {
        id: id.to_string(),
        kind,
        drill,
        opened: state.opened,
        keys: state.keys,
        status: state.status.as_str().to_string(),
        reason: state.reason,
        entries: state.entries,
        path: path.to_path_buf(),
        total_ms: state.closed.and(state.total_ms),
        shared: None,
    })
}

/// Every incident in the data directory, newest first. Unreadable records are listed as
/// damaged rather than hidden.
pub fn list(data_dir: &Path) -> Vec<IncidentSummary> {
    let dir = incidents_dir(data_dir);
    let Ok(read) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<IncidentSummary> = read
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let id = e.file_name().to_string_lossy().into_owned();
            let path = e.path().join(RECORD_FILE);
            match read_entries(&path) {
                Ok(entries) => summarize(&id, &path, &entries),
                Err(_) => Some(IncidentSummary {
                    id,
                    kind: IncidentKind::Incident,
                    drill: false,
                    opened: String::new(),
                    keys: Vec::new(),
                    status: "damaged".into(),
                    reason: None,
                    entries: 0,
                    path,
                    total_ms: None,
                    shared: None,
                }),
            }
        })
        .collect();
    out.sort_by(|a, b| b.opened.cmp(&a.opened).then(b.id.cmp(&a.id)));
    out
}

/// Keys with an open (unfinished) live incident.
pub fn keys_with_open_incidents(data_dir: &Path) -> std::collections::HashSet<String> {
    list(data_dir)
        .into_iter()
        .filter(|i| i.kind == crate::record::IncidentKind::Incident && i.is_open())
        .flat_map(|i| i.keys)
        .collect()
}

/// Resolve `record verify ID|PATH` and `incident show ID` arguments to a record path.
pub fn record_path(data_dir: &Path, id_or_path: &str) -> PathBuf {
    let p = PathBuf::from(id_or_path);
    if p.is_file() {
        return p;
    }
    if p.is_dir() {
        return p.join(RECORD_FILE);
    }
    incidents_dir(data_dir).join(id_or_path).join(RECORD_FILE)
}

/// The day of the last drill of each provider's keys.
pub fn last_drill_by_provider(
    data_dir: &Path,
    inv: &crate::inventory::Inventory,
) -> std::collections::HashMap<String, chrono::NaiveDate> {
    let mut out = std::collections::HashMap::new();
    for d in list(data_dir)
        .into_iter()
        .filter(|i| i.kind == IncidentKind::Drill)
    {
        let Ok(day) = chrono::DateTime::parse_from_rfc3339(&d.opened).map(|t| t.date_naive())
        else {
            continue;
        };
        for k in &d.keys {
            if let Some(p) = inv.key(k).map(|k| k.provider.clone()) {
                let e = out.entry(p).or_insert(day);
                if day > *e {
                    *e = day;
                }
            }
        }
    }
    out
}
