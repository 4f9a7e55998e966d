//! `keyfire audit KEY | --all [--since TIME] [--logs FILE]... [--json]`.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{CliError, Context, Exit, parse_time, runtime};
use crate::audit::RuleStatus;
use crate::audit::run::audit_keys;
use crate::http::Http;
use crate::secret::Redactor;

pub fn run(
    ctx: &Context,
    key: Option<String>,
    all: bool,
    since: Option<String>,
    logs: Vec<PathBuf>,
    json: bool,
) -> Exit {
    let inv = ctx.inventory()?;
    for l in &logs {
        if !l.is_file() {
            return Err(CliError::input(format!(
                "--logs {}: no such file",
                l.display()
            )));
        }
    }
    let now = ctx.clock.now();
    let since = match since.as_deref().map(parse_time).transpose()? {
        Some(t) => Some(t),
        // A cron job looks at the last day by default.
        None if all => Some(now - chrono::Duration::days(1)),
        None => None,
    };
    let keys: Vec<&crate::inventory::Key> = match (&key, all) {
        (_, true) => inv.keys.iter().collect(),
        (Some(k), false) => vec![inv.key(k).ok_or_else(|| {
            CliError::input(format!("unknown key `{k}`: it is not in the inventory"))
        })?],
        (None, false) => return Err(CliError::input("name a KEY or pass --all")),
    };
    // Drill mode on the client: the audit can only ever read.
    let http = Http::new(true, Redactor::new()).map_err(|e| CliError::failed(e.to_string()))?;
    let rt = runtime()?;
    let audits = rt
        .block_on(audit_keys(&inv, &keys, since, now, &logs, &http))
        .map_err(|e| CliError::input(e.to_string()))?;
    let fired = audits.iter().any(|a| a.summary.fired() > 0);
    let problems = audits.iter().any(|a| !a.problems.is_empty());
    if json {
        let text =
            serde_json::to_string_pretty(&audits).map_err(|e| CliError::failed(e.to_string()))?;
        println!("{text}");
    } else {
        let mut out = String::new();
        for a in &audits {
            let w = &a.summary.window;
            let _ = writeln!(
                out,
                "{}  window {} to {} (baseline from {}), {} events, {}",
                a.key,
                w.start.format("%Y-%m-%d %H:%M"),
                w.end.format("%Y-%m-%d %H:%M"),
                w.baseline_start.format("%Y-%m-%d"),
                a.summary.events,
                a.summary
                    .spend_in_window_usd
                    .map_or("spend unknown (no source reports cost)".to_string(), |s| {
                        format!("${s:.2}")
                    })
            );
            for p in a.problems.iter().chain(&a.summary.notes) {
                let _ = writeln!(out, "  ! {p}");
            }
            for r in &a.summary.rules {
                let status = match r.status {
                    RuleStatus::Findings => "FINDINGS",
                    RuleStatus::Clean => "clean",
                    RuleStatus::NotEvaluable => "not evaluable",
                };
                let _ = writeln!(out, "  {:<14} {:<14} {}", r.rule, status, r.source);
                for f in &r.findings {
                    let _ = writeln!(out, "      {f}");
                }
            }
        }
        let n = audits.iter().map(|a| a.summary.fired()).sum::<usize>();
        let _ = writeln!(
            out,
            "{} keys audited, {n} rules with findings",
            audits.len()
        );
        print!("{out}");
    }
    Ok(if fired || problems { 1 } else { 0 })
}
