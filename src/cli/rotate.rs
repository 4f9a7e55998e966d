//! `keyfire rotate [--due | KEY...] [--dry-run] [--yes]`: scheduled rotation in the safe order
//! (create, store, verify, then revoke the old key), one record per key. A failure on one key
//! leaves its old key working and the others still rotate.

use std::fmt::Write as _;
use std::sync::Arc;

use super::incident::{drive_headless, setup};
use super::{CliError, Context, Exit, TerminalGate};
use crate::runbook::{Engine, IncidentParams, Order, Purpose};

pub fn run(ctx: &Context, keys: Vec<String>, due: bool, dry_run: bool, yes: bool) -> Exit {
    let setup = setup(ctx)?;
    let inv = Arc::clone(&setup.inventory);
    let today = ctx.today();
    let chosen: Vec<String> = if due {
        inv.keys
            .iter()
            .filter(|k| inv.due_on(k).is_some_and(|d| d <= today))
            .map(|k| k.id.clone())
            .collect()
    } else {
        for k in &keys {
            if inv.key(k).is_none() {
                return Err(CliError::input(format!(
                    "unknown key `{k}`: it is not in the inventory"
                )));
            }
        }
        keys
    };
    let mut gate = TerminalGate::new(yes);
    if !dry_run && !gate.can_approve() && !chosen.is_empty() {
        return Err(CliError::input(
            "rotation writes need approval, but stdin is not a terminal: pass --yes, or --dry-run to rehearse",
        ));
    }
    if chosen.is_empty() {
        println!("no key is due for rotation");
        return Ok(0);
    }
    let mut failed = Vec::new();
    for key in &chosen {
        println!("\n== rotating {key}");
        let params = IncidentParams {
            keys: vec![key.clone()],
            dry_run,
            order: Order::ZeroDowntime,
            purpose: Purpose::Rotation,
            ..Default::default()
        };
        let outcome = match Engine::open(setup.clone(), params) {
            Ok(mut engine) => drive_headless(&mut engine, &mut gate),
            Err(e) => Err(CliError::failed(format!(
                "{key}: cannot rotate by API: {e}"
            ))),
        };
        match outcome {
            Ok(0) => {}
            Ok(_) => failed.push(format!(
                "{key}: rotation failed; the old key was not revoked"
            )),
            Err(e) => failed.push(e.message),
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} of {} keys rotated{}",
        chosen.len() - failed.len(),
        chosen.len(),
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
