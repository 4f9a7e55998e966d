//! `keyfire inventory discover` and the online part of `inventory lint --online`.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{CliError, Context, Exit};
use crate::discover::{self, Outcome, Report};
use crate::inventory::Inventory;

/// List the providers and compare; `Err` only for bad input (exit 2).
pub(super) fn report(inv: &Inventory, only: &[String]) -> Result<Report, CliError> {
    let (chosen, skipped) =
        discover::select(inv, only).map_err(|e| CliError::input(e.to_string()))?;
    let http = discover::client(crate::secret::Redactor::new())
        .map_err(|e| CliError::failed(format!("cannot start the HTTP client: {e}")))?;
    let rt = super::runtime()?;
    Ok(rt.block_on(discover::discover(inv, &chosen, skipped, &http)))
}

pub(super) fn run(
    ctx: &Context,
    inv: &Inventory,
    only: &[String],
    json: bool,
    write: Option<PathBuf>,
) -> Exit {
    // Refused before any call: the file may be an inventory file.
    if let Some(path) = &write
        && path.exists()
    {
        return Err(CliError::input(
            discover::write::WriteError::Exists(path.display().to_string()).to_string(),
        ));
    }
    let report = report(inv, only)?;
    let mut wrote = None;
    if let Some(path) = &write
        && !report.shadow.is_empty()
    {
        let text = discover::write::render(inv, &report.shadow, ctx.today());
        discover::write::write(path, &text).map_err(|e| match e {
            discover::write::WriteError::Exists(_) => CliError::input(e.to_string()),
            other => CliError::failed(other.to_string()),
        })?;
        wrote = Some(path);
    }
    if json {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| CliError::failed(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", text(&report));
        match (wrote, &write) {
            (Some(path), _) => println!(
                "wrote {} shadow keys to {}: fill in agents, store and secret_path (until then lint reports no-agent and no-store)",
                report.shadow.len(),
                path.display()
            ),
            (None, Some(_)) => println!("no shadow keys: nothing written"),
            (None, None) => {}
        }
    }
    Ok(if report.clean() { 0 } else { 1 })
}

fn text(r: &Report) -> String {
    let mut out = String::new();
    for p in &r.providers {
        let _ = match &p.outcome {
            Outcome::Listed {
                scope, keys, calls, ..
            } => writeln!(
                out,
                "{:<20} {:<10} listed {scope}: {keys} keys in {calls} calls ({} ms)",
                p.id,
                p.kind.as_str(),
                p.elapsed_ms
            ),
            Outcome::Failed { error } => writeln!(
                out,
                "{:<20} {:<10} NOT LISTED (its keys are unknown): {error}",
                p.id,
                p.kind.as_str()
            ),
            Outcome::Skipped { reason } => {
                writeln!(
                    out,
                    "{:<20} {:<10} skipped: {reason}",
                    p.id,
                    p.kind.as_str()
                )
            }
        };
    }
    if !(r.shadow.is_empty() && r.gone.is_empty() && r.drift.is_empty() && r.unmatched.is_empty()) {
        out.push('\n');
    }
    for s in &r.shadow {
        let _ = writeln!(out, "SHADOW     {:<20} {}", s.provider, s.describe());
    }
    for g in &r.gone {
        let _ = writeln!(out, "GONE       {:<20} {}: {}", g.provider, g.key, g.why);
    }
    for d in &r.drift {
        let _ = writeln!(
            out,
            "DRIFT      {:<20} {} ({}): {}",
            d.provider,
            d.key,
            d.provider_key_id,
            d.difference.describe()
        );
    }
    for u in &r.unmatched {
        let _ = writeln!(out, "AMBIGUOUS  {:<20} {}: {}", u.provider, u.key, u.why);
    }
    let notes: Vec<String> = r
        .providers
        .iter()
        .flat_map(|p| match &p.outcome {
            Outcome::Listed { notes, .. } => {
                notes.iter().map(|n| format!("  {}: {n}", p.id)).collect()
            }
            _ => Vec::new(),
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\nnotes\n{}", notes.join("\n"));
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "\n{} shadow keys, {} gone, {} drift, {} ambiguous, {} providers not listed",
        s.shadow, s.gone, s.drift, s.unmatched, s.failed
    );
    out
}
