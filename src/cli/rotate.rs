//! `keyfire rotate [--due | KEY... | --resume ID] [--dry-run] [--yes]`: scheduled rotation in
//! the safe order (create, store, verify, then revoke the old key), one record per key. A
//! failure on one key leaves its old key working and the others still rotate. A rotation is
//! resumable like an incident: `--resume ID` finishes one, and `--due` first finishes every
//! interrupted or failed rotation (cleaning up a replacement whose create answer was lost)
//! before it opens new ones. A key already in an open incident or rotation is never rotated
//! by a second one.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use super::incident::{drive_headless, setup};
use super::{CliError, Context, Exit, TerminalGate};
use crate::runbook::claim::{open_holder, resume_command};
use crate::runbook::{Engine, EngineError, IncidentParams, Order, Purpose, Setup};

fn engine_error(key: &str, e: EngineError) -> CliError {
    if matches!(e, EngineError::KeyInOpenIncident { .. }) {
        return CliError::input(e.to_string());
    }
    CliError::failed(format!("{key}: cannot rotate by API: {e}"))
}

/// `rotate --resume ID`.
pub(super) fn resume(ctx: &Context, id: &str, dry_run: bool, yes: bool) -> Exit {
    let setup = setup(ctx)?;
    let state = crate::incidents::list(&ctx.data_dir)
        .into_iter()
        .find(|i| i.id == id);
    match state {
        None => {
            return Err(CliError::input(format!(
                "no rotation `{id}` in the data directory"
            )));
        }
        Some(s) if s.kind != crate::record::IncidentKind::Rotation => {
            return Err(CliError::input(format!(
                "{id} is {} {}, not a rotation: use `keyfire incident resume {id}`",
                if s.kind == crate::record::IncidentKind::Incident {
                    "an"
                } else {
                    "a"
                },
                s.kind
            )));
        }
        Some(_) => {}
    }
    if dry_run {
        println!("rehearsal: rotation {id} would be resumed (nothing sent)");
        return Ok(0);
    }
    let mut gate = TerminalGate::new(yes);
    if !gate.can_approve() {
        return Err(CliError::input(
            "resuming a rotation needs approval for writes: pass --yes, or run from a terminal",
        ));
    }
    let mut engine = Engine::resume(setup, id).map_err(|e| engine_error(id, e))?;
    drive_headless(&mut engine, &mut gate)
}

/// Finish the interrupted or failed rotations before opening new ones. Returns the keys they
/// cover (rotated now, or still failing) and the failures.
fn finish_interrupted(
    setup: &Setup,
    data_dir: &std::path::Path,
    dry_run: bool,
    gate: &mut TerminalGate,
) -> (HashSet<String>, Vec<String>) {
    let open: Vec<_> = crate::incidents::list(data_dir)
        .into_iter()
        .filter(|i| i.kind == crate::record::IncidentKind::Rotation && !i.drill && i.is_open())
        .collect();
    let mut covered = HashSet::new();
    let mut failed = Vec::new();
    for r in open {
        covered.extend(r.keys.iter().cloned());
        if dry_run {
            println!(
                "\n== interrupted rotation {} ({}) would be finished first",
                r.id,
                r.keys.join(", ")
            );
            continue;
        }
        println!(
            "\n== finishing interrupted rotation {} ({})",
            r.id,
            r.keys.join(", ")
        );
        let outcome = Engine::resume(setup.clone(), &r.id)
            .map_err(|e| engine_error(&r.id, e))
            .and_then(|mut engine| drive_headless(&mut engine, gate));
        match outcome {
            Ok(0) => {}
            Ok(_) => failed.push(format!(
                "{}: the interrupted rotation {} failed again; resume it with `keyfire rotate --resume {}`",
                r.keys.join(", "),
                r.id,
                r.id
            )),
            Err(e) => failed.push(e.message),
        }
    }
    (covered, failed)
}

pub(super) fn run(ctx: &Context, keys: Vec<String>, due: bool, dry_run: bool, yes: bool) -> Exit {
    let setup = setup(ctx)?;
    let inv = Arc::clone(&setup.inventory);
    let today = ctx.today();
    let mut gate = TerminalGate::new(yes);
    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    let chosen: Vec<String> = if due {
        if !dry_run && !gate.can_approve() {
            return Err(CliError::input(
                "rotation writes need approval, but stdin is not a terminal: pass --yes, or --dry-run to rehearse",
            ));
        }
        let (covered, mut again) = finish_interrupted(&setup, &ctx.data_dir, dry_run, &mut gate);
        failed.append(&mut again);
        inv.keys
            .iter()
            .filter(|k| inv.due_on(k).is_some_and(|d| d <= today))
            .map(|k| k.id.clone())
            .filter(|k| !covered.contains(k))
            .filter(
                |k| match open_holder(&ctx.data_dir, std::slice::from_ref(k)) {
                    Some((_, holder)) => {
                        skipped.push(format!(
                            "{k}: in open {} {}; finish it with `{}`",
                            holder.kind,
                            holder.id,
                            resume_command(&holder)
                        ));
                        false
                    }
                    None => true,
                },
            )
            .collect()
    } else {
        for k in &keys {
            if inv.key(k).is_none() {
                return Err(CliError::input(format!(
                    "unknown key `{k}`: it is not in the inventory"
                )));
            }
            if let Some((_, holder)) = open_holder(&ctx.data_dir, std::slice::from_ref(k))
                && !dry_run
            {
                return Err(CliError::input(format!(
                    "key `{k}` is already in open {} {} ({}): finish it with `{}` before rotating it again",
                    holder.kind,
                    holder.id,
                    holder.status,
                    resume_command(&holder)
                )));
            }
        }
        keys
    };
    for s in &skipped {
        println!("SKIPPED {s}");
    }
    if !dry_run && !gate.can_approve() && !chosen.is_empty() {
        return Err(CliError::input(
            "rotation writes need approval, but stdin is not a terminal: pass --yes, or --dry-run to rehearse",
        ));
    }
    if chosen.is_empty() && failed.is_empty() {
        println!("no key is due for rotation");
        return Ok(0);
    }
    let attempted = chosen.len();
    let mut rotated = 0;
    for key in &chosen {
        println!("\n== rotating {key}");
        let params = IncidentParams {
            keys: vec![key.clone()],
            dry_run,
            order: Order::ZeroDowntime,
            purpose: Purpose::Rotation,
            ..Default::default()
        };
        let outcome = Engine::open(setup.clone(), params)
            .map_err(|e| engine_error(key, e))
            .and_then(|mut engine| drive_headless(&mut engine, &mut gate));
        match outcome {
            Ok(0) => rotated += 1,
            // Another process opened an incident on the key since the check above.
            Err(e) if e.code == 2 && !due => return Err(e),
            Ok(_) => failed.push(format!(
                "{key}: rotation failed; the old key was not revoked (resume it with `keyfire rotate --resume`, or `keyfire rotate --due`)"
            )),
            Err(e) => failed.push(e.message),
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{rotated} of {attempted} keys rotated{}",
        if dry_run {
            " (rehearsal: nothing sent)"
        } else {
            ""
        }
    );
    for f in &failed {
        let _ = writeln!(out, "  FAILED {f}");
    }
    print!("{out}");
    Ok(if failed.is_empty() { 0 } else { 1 })
}
