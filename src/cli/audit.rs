//! `keyfire audit KEY | --all [--since TIME] [--logs FILE]... [--json] [--notify]
//! [--respond [--yes]]`.
//!
//! `--notify` sends each key's findings (and providers whose drill is overdue) to the
//! notifiers; `--respond` is the guide's rule 4 ("if an anomaly triggers, revoke the key
//! immediately"): a key with findings of a rule in `policy.respond_to` gets an incident of
//! its own, contain-first, with the usual approvals (or `--yes`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

mod run;

use super::incident::{drive_headless, setup};
use super::{CliError, Context, Exit, TerminalGate, parse_start, runtime};
use crate::audit::RuleStatus;
use crate::http::Http;
use crate::inventory::Inventory;
use crate::notify::{Detail, Event, RuleFindings};
use crate::runbook::claim::{open_holder, resume_command};
use crate::runbook::{Engine, IncidentParams, Order};
use crate::secret::Redactor;
use run::{KeyAudit, audit_keys};

pub(super) struct Args {
    pub key: Option<String>,
    pub all: bool,
    pub since: Option<String>,
    pub logs: Vec<PathBuf>,
    pub json: bool,
    pub notify: bool,
    pub respond: bool,
    pub yes: bool,
}

pub(super) fn run(ctx: &Context, args: Args) -> Exit {
    let Args {
        key,
        all,
        since,
        logs,
        json,
        notify,
        respond,
        yes,
    } = args;
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
    let since = match since.as_deref().map(|t| parse_start(ctx, t)).transpose()? {
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
    // On a terminal, an audit of many keys counts them as their usage is read.
    let progress = if json {
        None
    } else {
        super::progress::Counter::start("keys audited", keys.len())
    };
    let audited = rt.block_on(audit_keys(
        &inv,
        &keys,
        since,
        now,
        &logs,
        &http,
        progress.as_ref(),
    ));
    if let Some(p) = &progress {
        p.finish(keys.len(), "usage read".into());
    }
    let audits = audited.map_err(|e| CliError::input(e.to_string()))?;
    let fired = audits.iter().any(|a| a.summary.fired() > 0);
    let problems = audits.iter().any(|a| !a.problems.is_empty());
    // A key none of whose rules could be evaluated was not audited: that is never "clean".
    let blind: Vec<&str> = audits
        .iter()
        .filter(|a| {
            a.summary
                .rules
                .iter()
                .all(|r| r.status == RuleStatus::NotEvaluable)
        })
        .map(|a| a.key.as_str())
        .collect();
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
            "{} audited, {n} {} with findings",
            super::count(audits.len(), "key"),
            if n == 1 { "rule" } else { "rules" }
        );
        if !blind.is_empty() {
            let _ = writeln!(
                out,
                "{} not audited: no rule could be evaluated for {}",
                blind.len(),
                blind.join(", ")
            );
        }
        print!("{out}");
    }
    let mut responded = Vec::new();
    let mut failed_responses = 0;
    if respond {
        let (opened, failed) = respond_to_findings(ctx, &inv, &audits, since, yes)?;
        responded = opened;
        failed_responses = failed;
    }
    if notify || respond {
        let inv = Arc::new(inv);
        let mut events = finding_events(&inv, &audits, &responded, now);
        if notify {
            events.extend(drill_events(ctx, &inv, now));
        }
        let deliveries = super::notify::send_all(inv, events)?;
        let mut out = String::new();
        for d in &deliveries {
            let _ = writeln!(out, "notification: {}", d.line());
        }
        // Machine-readable output stays one JSON document on stdout.
        if json {
            eprint!("{out}");
        } else {
            print!("{out}");
        }
    }
    Ok(if fired || problems || !blind.is_empty() || failed_responses > 0 {
        1
    } else {
        0
    })
}

/// Rules with findings, by name.
fn fired_rules(audit: &KeyAudit) -> Vec<RuleFindings> {
    audit
        .summary
        .rules
        .iter()
        .filter(|r| r.status == RuleStatus::Findings)
        .map(|r| RuleFindings {
            rule: r.rule.to_string(),
            findings: r.findings.iter().map(ToString::to_string).collect(),
        })
        .collect()
}

fn finding_events(
    inv: &Inventory,
    audits: &[KeyAudit],
    responded: &[(String, String)],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Event> {
    audits
        .iter()
        .filter_map(|a| {
            let rules = fired_rules(a);
            if rules.is_empty() {
                return None;
            }
            let agents = inv
                .key(&a.key)
                .map(|k| k.agents.clone())
                .unwrap_or_default();
            let incident = responded
                .iter()
                .find(|(k, _)| *k == a.key)
                .map(|(_, id)| id.clone());
            let detail = Detail::AuditFindings {
                key: a.key.clone(),
                rules,
                incident,
            };
            Some(Event::new(detail, now).about_agents(agents))
        })
        .collect()
}

/// Providers whose keys have not been drilled within `policy.drill_every_days`.
fn drill_events(ctx: &Context, inv: &Inventory, now: chrono::DateTime<chrono::Utc>) -> Vec<Event> {
    let last = crate::incidents::last_drill_by_provider(&ctx.data_dir, inv);
    crate::inventory::lint::lint_with_drills(inv, now.date_naive(), &last)
        .into_iter()
        .filter(|f| f.code == "drill-overdue")
        .filter_map(|f| f.provider)
        .map(|provider| {
            let agents: Vec<String> = inv
                .keys
                .iter()
                .filter(|k| k.provider == provider)
                .flat_map(|k| k.agents.iter().cloned())
                .collect();
            let detail = Detail::DrillOverdue {
                provider: provider.to_string(),
                last_drill: last.get(provider).copied(),
                every_days: inv.policy.drill_every_days,
            };
            Event::new(detail, now).about_agents(agents)
        })
        .collect()
}

/// Open and run an incident for each key with findings of a `respond_to` rule. Returns the
/// (key, incident id) pairs opened and how many did not complete.
fn respond_to_findings(
    ctx: &Context,
    inv: &Inventory,
    audits: &[KeyAudit],
    since: Option<chrono::DateTime<chrono::Utc>>,
    yes: bool,
) -> Result<(Vec<(String, String)>, usize), CliError> {
    let targets: Vec<(&KeyAudit, Vec<RuleFindings>)> = audits
        .iter()
        .map(|a| {
            let rules: Vec<RuleFindings> = fired_rules(a)
                .into_iter()
                .filter(|r| inv.policy.respond_to.contains(&r.rule))
                .collect();
            (a, rules)
        })
        .filter(|(_, rules)| !rules.is_empty())
        .collect();
    if targets.is_empty() {
        println!(
            "respond: no finding of the rules in policy.respond_to ({}): no incident opened",
            inv.policy.respond_to.join(", ")
        );
        return Ok((Vec::new(), 0));
    }
    let mut gate = TerminalGate::new(yes);
    if !gate.can_approve() {
        return Err(CliError::input(
            "--respond opens live incidents, which need approval for every write, but stdin is not a terminal: pass --yes for unattended contain-first",
        ));
    }
    let setup = setup(ctx)?;
    let mut opened = Vec::new();
    let mut failed = 0;
    for (audit, rules) in targets {
        let key = audit.key.clone();
        if let Some((_, holder)) = open_holder(&ctx.data_dir, std::slice::from_ref(&key)) {
            println!(
                "respond: {key} is already in open {} {}; finish it with `{}`",
                holder.kind,
                holder.id,
                resume_command(&holder)
            );
            continue;
        }
        let first = rules
            .iter()
            .flat_map(|r| r.findings.first().map(|f| format!("{}: {f}", r.rule)))
            .next()
            .unwrap_or_default();
        let names: Vec<&str> = rules.iter().map(|r| r.rule.as_str()).collect();
        let params = IncidentParams {
            keys: vec![key.clone()],
            dry_run: false,
            order: Order::ContainFirst,
            exposed_since: since,
            reason: Some(format!(
                "keyfire audit --respond: findings of {} ({first})",
                names.join(", ")
            )),
            ..Default::default()
        };
        println!("\n== responding to {key}: {}", names.join(", "));
        let mut engine = match Engine::open(setup.clone(), params) {
            Ok(e) => e,
            Err(e) => {
                println!("respond: {key}: cannot open an incident: {e}");
                failed += 1;
                continue;
            }
        };
        opened.push((key.clone(), engine.id().to_string()));
        match drive_headless(&mut engine, &mut gate) {
            Ok(0) => {}
            Ok(_) => failed += 1,
            Err(e) => {
                println!("respond: {key}: {e}");
                failed += 1;
            }
        }
    }
    Ok((opened, failed))
}
