//! `keyfire drill [KEY... | --agent ID | --all]`: the runbook in dry-run over the chosen keys.
//! Reads are real, writes are recorded as "would send"; the drill report lists what would
//! have happened, how long each step took, and every problem the reads found.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::incident::{drive_headless_notifying, setup};
use super::{CliError, Context, Exit, TerminalGate};
use crate::record::{IncidentState, Proof, StepState, read_entries};
use crate::runbook::{Engine, IncidentParams, Order};

/// What a failed read means for the next real incident.
fn diagnose(action: &str, status: Option<u64>, error: &str) -> String {
    let what = match (action, status) {
        ("resolve_credentials", _) => "admin or store credential could not be resolved",
        ("read_store" | "store_read_back", Some(403)) => "store credential lacks permission",
        ("read_store" | "store_read_back", _) => "store unreachable or unreadable",
        (_, Some(401)) => "admin credential rejected by the provider",
        (_, Some(403)) => "admin credential lacks a permission the runbook needs",
        (_, Some(404)) => "key not found at the provider",
        (_, Some(429)) => "rate limited by the provider",
        (_, Some(s)) if s >= 500 => "provider failing",
        _ if error.contains("cannot reach") || error.contains("timed out") => {
            "provider unreachable"
        }
        _ => "read failed",
    };
    format!("{what} ({action}: {error})")
}

pub(super) fn run(
    ctx: &Context,
    keys: Vec<String>,
    agent: Option<String>,
    all: bool,
    notify: bool,
) -> Exit {
    let setup = setup(ctx)?;
    let inv = setup.inventory.clone();
    let mut chosen: Vec<String> = if all {
        inv.keys.iter().map(|k| k.id.clone()).collect()
    } else {
        keys
    };
    if let Some(agent) = agent {
        if inv.agent(&agent).is_none() {
            return Err(CliError::input(format!(
                "unknown agent `{agent}`: it is not in the inventory"
            )));
        }
        for k in inv.keys_of_agent(&agent) {
            if !chosen.contains(&k.id) {
                chosen.push(k.id.clone());
            }
        }
    }
    if chosen.is_empty() {
        return Err(CliError::input("name keys, --agent ID or --all"));
    }
    let params = IncidentParams {
        keys: chosen,
        dry_run: true,
        order: Order::ContainFirst,
        reason: Some("drill".into()),
        ..Default::default()
    };
    let mut engine = Engine::open(setup, params).map_err(|e| CliError::input(e.to_string()))?;
    // Drills send no write, so nothing needs approving; manual steps are shown, not asked.
    // Notifiers hear of a drill only when asked (`--notify`), every message labelled DRILL.
    let code = drive_headless_notifying(&mut engine, &mut TerminalGate::new(true), notify)?;
    let path = engine.record_dir().join(crate::record::RECORD_FILE);
    let entries = read_entries(&path).map_err(|e| CliError::failed(e.to_string()))?;

    let state = IncidentState::fold(&entries).unwrap_or_default();
    let mut would: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut steps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, k) in &state.per_key {
        would.insert(key.clone(), k.would_send.clone());
        let finished: Vec<String> = k
            .steps
            .iter()
            .filter(|s| matches!(s.state, StepState::Done | StepState::Skipped))
            .map(|s| format!("{} {} ms", s.name, s.duration_ms.unwrap_or(0)))
            .collect();
        if !finished.is_empty() {
            steps.insert(key.clone(), finished);
        }
        let list = problems.entry(key.clone()).or_default();
        for f in &k.failure_log {
            list.push(diagnose(&f.action, f.status, &f.error));
        }
        // The proof would use a stored value that is not the key the provider found.
        if let Some(by) = &k.identity_differs {
            list.push(format!(
                "the value in the store is not the key located at the provider (compared with {}): the revocation proof would be inconclusive; fix secret_path or hint/provider_key_id",
                if by.is_empty() { "its hint" } else { by }
            ));
        }
        // What the projection knows would bite in a real incident, besides failed reads.
        for u in &k.evidence_unavailable {
            list.push(format!(
                "evidence unavailable, a real incident would go on without it ({}: {})",
                u.action, u.reason
            ));
        }
        if k.nothing_stored {
            list.push(
                "nothing stored at the key's secret path: either the agents do not read this key from the secrets manager, or the inventory's store/secret_path is wrong"
                    .into(),
            );
        }
        if let Proof::Drill {
            old_key_authenticates: Some(false),
        } = k.proof
        {
            list.push(
                "the provider already rejects the value in the store: the stored value is not the live key (wrong secret_path, or the key was replaced elsewhere)"
                    .into(),
            );
        }
    }
    problems.retain(|_, v| !v.is_empty());
    let mut out = String::new();
    let _ = writeln!(out, "\nDrill report {}", engine.id());
    let keys = &state.keys;
    for key in keys {
        let _ = writeln!(out, "\n  {key}");
        let _ = writeln!(
            out,
            "    steps: {}",
            steps
                .get(key)
                .map_or("none finished".into(), |s| s.join(", "))
        );
        for w in would.get(key).into_iter().flatten() {
            let _ = writeln!(out, "    would send: {w}");
        }
        for p in problems.get(key).into_iter().flatten() {
            let _ = writeln!(out, "    PROBLEM: {p}");
        }
    }
    let n: usize = problems.values().map(Vec::len).sum();
    let _ = writeln!(
        out,
        "\n{} keys drilled, {n} problems found{}",
        keys.len(),
        if n > 0 {
            ": fix them before a real incident needs these calls"
        } else {
            ""
        }
    );
    print!("{out}");
    Ok(if n > 0 { 1 } else { code })
}
