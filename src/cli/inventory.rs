//! `keyfire inventory list | show KEY | lint [--online] | discover`.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::{Context, Exit, InventoryCommand};
use crate::incidents::keys_with_open_incidents;
use crate::inventory::view::key_row;
use crate::key_view::KeyView;

fn print_json(v: &impl serde::Serialize) -> Exit {
    let text =
        serde_json::to_string_pretty(v).map_err(|e| super::CliError::failed(e.to_string()))?;
    println!("{text}");
    Ok(0)
}

pub(super) fn run(ctx: &Context, cmd: InventoryCommand) -> Exit {
    let inv = ctx.inventory()?;
    let today = ctx.today();
    match cmd {
        InventoryCommand::List { json } => {
            let open = keys_with_open_incidents(&ctx.data_dir);
            let rows: Vec<_> = inv
                .keys
                .iter()
                .map(|k| key_row(&inv, k, today, &open))
                .collect();
            if json {
                return print_json(&rows);
            }
            let mut out = String::new();
            let _ = writeln!(
                out,
                "{:<28} {:<24} {:<16} {:<28} {:>5} {:>5}  STATUS",
                "KEY", "AGENTS", "PROVIDER", "SCOPES", "AGE", "DUE"
            );
            for r in &rows {
                let num = |v: Option<i64>| v.map_or("-".to_string(), |d| d.to_string());
                let _ = writeln!(
                    out,
                    "{:<28} {:<24} {:<16} {:<28} {:>5} {:>5}  {}",
                    r.id,
                    r.agents.join(","),
                    r.provider,
                    r.scopes.join(","),
                    num(r.age_days),
                    num(r.due_in_days),
                    r.status.as_str()
                );
            }
            let overdue = rows
                .iter()
                .filter(|r| r.due_in_days.is_some_and(|d| d < 0))
                .count();
            let _ = writeln!(out, "{}, {overdue} overdue", super::count(rows.len(), "key"));
            print!("{out}");
            Ok(0)
        }
        InventoryCommand::Show { key, json } => {
            let Some(k) = inv.key(&key) else {
                return Err(super::CliError::input(format!(
                    "unknown key `{key}`: it is not in the inventory"
                )));
            };
            let open: HashSet<String> = keys_with_open_incidents(&ctx.data_dir);
            let incidents = crate::incidents::list(&ctx.data_dir);
            let view = KeyView::new(&inv, k, key_row(&inv, k, today, &open), &incidents);
            if json {
                return print_json(&serde_json::json!({
                    "key": view.key,
                    "status": view.row,
                    "provider": view.provider,
                    "capabilities": view.capabilities,
                    "blast_radius": view.radius,
                    "incidents": view.history,
                }));
            }
            print!("{}", show_text(&view));
            Ok(0)
        }
        InventoryCommand::Discover {
            providers,
            json,
            write,
        } => super::discover::run(ctx, &inv, &providers, json, write),
        InventoryCommand::Lint { json, online } => {
            let drills = crate::incidents::last_drill_by_provider(&ctx.data_dir, &inv);
            let mut findings = crate::inventory::lint::lint_with_drills(&inv, today, &drills);
            // Online findings borrow their text from this list, which outlives `findings`.
            let online_findings = if online {
                let report = super::discover::report(&inv, &[])?;
                let mut f = crate::discover::findings(&report);
                f.extend(crate::discover::scope_findings(&report, &inv));
                f
            } else {
                Vec::new()
            };
            findings.extend(
                online_findings
                    .iter()
                    .map(|f| crate::inventory::lint::Finding {
                        code: f.code,
                        severity: crate::inventory::lint::Severity::Warning,
                        key: &f.key,
                        provider: f.provider.as_deref(),
                        message: crate::inventory::lint::Message::Online(&f.message),
                    }),
            );
            if json {
                print_json(&serde_json::json!({ "keys": inv.keys.len(), "findings": findings }))?;
            } else {
                // Streamed through a buffer rather than built as one string: at 100,000 keys
                // the report is ~10 MB, which would double the command's peak memory.
                let mut out =
                    std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
                let written = findings
                    .iter()
                    .try_for_each(|f| match f.provider {
                        Some(p) => std::io::Write::write_fmt(
                            &mut out,
                            format_args!("{:<20} provider:{:<19} {}\n", f.code, p, f.message),
                        ),
                        None => std::io::Write::write_fmt(
                            &mut out,
                            format_args!("{:<20} {:<28} {}\n", f.code, f.key, f.message),
                        ),
                    })
                    .and_then(|()| {
                        std::io::Write::write_fmt(
                            &mut out,
                            format_args!(
                                "{} checked, {}\n",
                                super::count(inv.keys.len(), "key"),
                                super::count(findings.len(), "finding")
                            ),
                        )
                    })
                    .and_then(|()| std::io::Write::flush(&mut out));
                written.map_err(|e| {
                    super::CliError::failed(format!("cannot write the findings: {e}"))
                })?;
            }
            Ok(if findings.is_empty() { 0 } else { 1 })
        }
    }
}

/// `inventory show KEY` as text.
fn show_text(view: &KeyView) -> String {
    let (k, row, radius) = (view.key, &view.row, &view.radius);
    let mut out = String::new();
    let _ = writeln!(out, "key           {}", k.id);
    if let Some(d) = &k.description {
        let _ = writeln!(out, "description   {d}");
    }
    let _ = writeln!(
        out,
        "provider      {} ({})",
        k.provider,
        view.provider_kind()
    );
    let _ = writeln!(
        out,
        "provider id   {}",
        k.provider_key_id.as_deref().unwrap_or("-")
    );
    let _ = writeln!(out, "hint          {}", k.hint.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "scopes        {}", k.scopes.join(", "));
    if let Some(n) = &k.needs {
        let _ = writeln!(out, "needs         {}", n.join(", "));
    }
    let _ = writeln!(
        out,
        "issued        {}",
        k.issued_on().map_or("unknown".into(), |d| d.to_string())
    );
    let _ = writeln!(
        out,
        "due           {}",
        row.due_on.map_or("unknown".into(), |d| format!(
            "{d} ({} days)",
            row.due_in_days.unwrap_or(0)
        ))
    );
    let _ = writeln!(out, "status        {}", row.status.as_str());
    if let Some(by_api) = view.by_api() {
        let _ = writeln!(
            out,
            "by API        {}",
            if by_api.is_empty() {
                "nothing: every step is manual".into()
            } else {
                by_api.join(", ")
            }
        );
    }
    let _ = writeln!(out, "\nblast radius");
    for a in &radius.agents {
        let _ = writeln!(
            out,
            "  agent       {} (owner {}, on-call {})",
            a.id,
            a.owner.as_deref().unwrap_or("none"),
            a.oncall.as_deref().unwrap_or("none")
        );
    }
    if radius.agents.is_empty() {
        let _ = writeln!(out, "  agent       none");
    }
    for o in &radius.other_keys {
        let _ = writeln!(
            out,
            "  also holds  {} ({}) via {}",
            o.id,
            o.provider,
            o.held_by.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "  redeploy to {}",
        match view.redeploy_target() {
            Some((s, p)) => format!("{s}:{p} (field {})", k.secret_field),
            None => "no store: the replacement is delivered by hand".into(),
        }
    );
    if !view.history.is_empty() {
        let _ = writeln!(out, "\nincidents and drills");
        for i in &view.history {
            let _ = writeln!(
                out,
                "  {}  {}  {}",
                i.id,
                if i.drill { "drill" } else { "incident" },
                i.status
            );
        }
    }
    out
}
