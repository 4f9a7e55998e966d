//! `keyfire incident start | resume | list | show`.

use std::fmt::Write as _;
use std::sync::Arc;

use super::{
    CliError, Context, Exit, IncidentCommand, TerminalGate, parse_start, runtime,
};
use crate::describe::describe_event;
use crate::record::event::CustomerDataAnswer;
use crate::record::{IncidentState, Proof, read_entries};
use crate::runbook::{Engine, EngineError, IncidentParams, Order, Outcome, Setup};

fn engine_error(e: EngineError) -> CliError {
    if e.is_input_error() {
        CliError::input(e.to_string())
    } else {
        CliError::failed(e.to_string())
    }
}

/// The console runs an incident when both ends of the session are a terminal.
#[cfg(feature = "tui")]
fn console_available() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

pub(super) fn setup(ctx: &Context) -> Result<Setup, CliError> {
    Ok(Setup {
        inventory: Arc::new(ctx.inventory()?),
        runbook: Arc::new(ctx.runbook()?),
        data_dir: ctx.data_dir.clone(),
        clock: ctx.clock.clone(),
        records: ctx.sharing()?,
    })
}

/// Drive an engine headless and print the closing summary. Live incidents and rotations
/// notify the inventory's notifiers; drills only through [`drive_headless_notifying`].
pub(super) fn drive_headless(engine: &mut Engine, gate: &mut TerminalGate) -> Exit {
    let notify = !engine.dry_run();
    drive_headless_notifying(engine, gate, notify)
}

/// [`drive_headless`], notifying when `notify` is set (a drill's `--notify`).
pub(super) fn drive_headless_notifying(
    engine: &mut Engine,
    gate: &mut TerminalGate,
    notify: bool,
) -> Exit {
    let rt = runtime()?;
    // Status lines, or on a terminal the progress display of a run of many keys.
    let mut sink = super::progress::headless_sink(engine);
    let driven = rt.block_on(super::notify::drive_with_notifiers(
        engine, gate, &mut sink, notify,
    ));
    sink.finish();
    let (outcome, deliveries) = driven.map_err(engine_error)?;
    let id = engine.id().to_string();
    // Give the shared copy a moment to catch up, so the summary says where it stands.
    let share = engine.finish_sharing(std::time::Duration::from_secs(20));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} {id}: {}",
        if engine.dry_run() {
            "drill"
        } else {
            "incident"
        },
        outcome.as_str()
    );
    let entries = read_entries(&engine.record_dir().join(crate::record::RECORD_FILE)).ok();
    let state = entries.as_deref().and_then(IncidentState::fold);
    // The closing hash, printed so that it lives outside the file (DESIGN section 5).
    let closing_hash = state.as_ref().and_then(|s| s.closing_hash.clone());
    let mut not_proven = 0;
    if let Some(state) = &state {
        let ms = |v: Option<i64>| v.map_or("-".to_string(), |n| format!("{n} ms"));
        for (key, k) in &state.per_key {
            let proof = match &k.proof {
                Proof::Inconclusive { reason } if !engine.dry_run() => {
                    not_proven += 1;
                    format!(", revocation NOT proven: {reason}")
                }
                Proof::NotProvable { .. } => {
                    ", revocation confirmed by the operator (no API proof)".into()
                }
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {key}: {}, time to contain {}, time to revoke {}, time to restore {}{proof}",
                if k.finished { "done" } else { "FAILED" },
                ms(k.time_to_contain_ms),
                ms(k.time_to_revoke_ms),
                ms(k.time_to_restore_ms)
            );
            for u in &k.evidence_unavailable {
                let _ = writeln!(out, "    evidence unavailable ({}): {}", u.action, u.reason);
            }
        }
        if state.keys.len() > 1 {
            let _ = writeln!(
                out,
                "  fleet time to contain: {}",
                state
                    .fleet_time_to_contain_ms
                    .map_or("unknown (not every key was contained)".to_string(), |n| {
                        format!("{n} ms")
                    })
            );
        }
    }
    let _ = writeln!(
        out,
        "  record: {}",
        engine
            .record_dir()
            .join(crate::record::RECORD_FILE)
            .display()
    );
    if let Some(h) = &closing_hash {
        let _ = writeln!(out, "  closing hash: {h}");
    }
    for d in &deliveries {
        let _ = writeln!(out, "  notification: {}", d.line());
    }
    let mut share_problem = false;
    if let Some(st) = &share {
        match (&st.stopped, st.pending()) {
            (Some(why), _) => {
                share_problem = true;
                let _ = writeln!(out, "  shared copy STOPPED: {why}");
            }
            (None, 0) => {
                let _ = writeln!(out, "  shared: {} entries in {}", st.shared, st.location);
            }
            (None, n) => {
                share_problem = true;
                let _ = writeln!(
                    out,
                    "  NOT YET SHARED: {n} entries ({}: {}); they are queued in the incident folder and shared by `keyfire records flush` or the next `keyfire incident resume {id}`",
                    st.location,
                    st.last_error.as_deref().unwrap_or("store unreachable")
                );
            }
        }
    }
    match outcome {
        Outcome::Completed => {}
        _ => {
            let _ = writeln!(
                out,
                "  the incident is still open: fix the cause and run `keyfire incident resume {id}`"
            );
        }
    }
    let unavailable = state.as_ref().map_or(0, |st| {
        st.per_key
            .values()
            .map(|k| k.evidence_unavailable.len())
            .sum::<usize>()
    });
    if engine.dry_run() && unavailable > 0 {
        let _ = writeln!(
            out,
            "  drill problem: {unavailable} evidence source(s) unavailable; a real incident would go on without them"
        );
    }
    if not_proven > 0 {
        let _ = writeln!(
            out,
            "  revocation NOT proven for {not_proven} key(s): check at the provider that the key is dead"
        );
    }
    print!("{out}");
    let drill_problems = engine.dry_run() && unavailable > 0;
    Ok(
        if outcome == Outcome::Completed && not_proven == 0 && !drill_problems && !share_problem {
            0
        } else {
            1
        },
    )
}

/// `--customer-data` (clap has already limited it to yes, no or unknown).
fn parse_customer_data(text: Option<&str>) -> Result<Option<CustomerDataAnswer>, CliError> {
    text.map(|t| {
        t.parse()
            .map_err(|e| CliError::input(format!("--customer-data: {e}")))
    })
    .transpose()
}

pub(super) fn run(ctx: &Context, cmd: IncidentCommand) -> Exit {
    match cmd {
        IncidentCommand::Start {
            mut keys,
            agent,
            dry_run,
            zero_downtime,
            exposed_since,
            reason,
            logs,
            yes,
            no_tui,
            customer_data,
        } => {
            let customer_data = parse_customer_data(customer_data.as_deref())?;
            for l in &logs {
                if !l.is_file() {
                    return Err(CliError::input(format!(
                        "--logs {}: no such file",
                        l.display()
                    )));
                }
            }
            let exposed_since = exposed_since.as_deref().map(|t| parse_start(ctx, t)).transpose()?;
            let setup = setup(ctx)?;
            if let Some(agent) = agent {
                if setup.inventory.agent(&agent).is_none() {
                    return Err(CliError::input(format!(
                        "unknown agent `{agent}`: it is not in the inventory"
                    )));
                }
                for k in setup.inventory.keys_of_agent(&agent) {
                    if !keys.contains(&k.id) {
                        keys.push(k.id.clone());
                    }
                }
                if keys.is_empty() {
                    return Err(CliError::input(format!("agent `{agent}` holds no key")));
                }
            }
            let mut gate = TerminalGate::new(yes).with_customer_data(customer_data);
            if !dry_run && !gate.can_approve() {
                return Err(CliError::input(
                    "a live incident needs approval for every write, but stdin is not a terminal: pass --yes to approve them, or --dry-run to drill",
                ));
            }
            let params = IncidentParams {
                keys,
                dry_run,
                order: if zero_downtime {
                    Order::ZeroDowntime
                } else {
                    Order::ContainFirst
                },
                exposed_since,
                reason,
                logs,
                ..Default::default()
            };
            #[cfg(feature = "tui")]
            if !no_tui && console_available() {
                crate::tui::run_incident(
                    setup,
                    crate::tui::Opening::Start(Box::new(params)),
                    customer_data,
                )
                .map_err(|e| CliError::failed(format!("terminal error: {e}")))?;
                return Ok(0);
            }
            let _ = no_tui;
            let mut engine = Engine::open(setup, params).map_err(engine_error)?;
            drive_headless(&mut engine, &mut gate)
        }
        IncidentCommand::Resume {
            id,
            yes,
            no_tui,
            take_over,
            customer_data,
        } => {
            let customer_data = parse_customer_data(customer_data.as_deref())?;
            let mut setup = setup(ctx)?;
            if take_over {
                let Some(s) = setup.records.as_deref() else {
                    return Err(CliError::input(
                        "--take-over needs a shared record location (--records URL): the lease it takes lives there",
                    ));
                };
                let mut s = s.clone();
                s.take_over = true;
                setup.records = Some(Arc::new(s));
            }
            let mut gate = TerminalGate::new(yes).with_customer_data(customer_data);
            let mut engine = Engine::resume(setup.clone(), &id).map_err(engine_error)?;
            #[cfg(feature = "tui")]
            if !no_tui && console_available() {
                let keys = engine.keys();
                let dry_run = engine.dry_run();
                drop(engine);
                crate::tui::run_incident(
                    setup,
                    crate::tui::Opening::Resume { id, keys, dry_run },
                    customer_data,
                )
                    .map_err(|e| CliError::failed(format!("terminal error: {e}")))?;
                return Ok(0);
            }
            let _ = no_tui;
            if !engine.dry_run() && !gate.can_approve() {
                return Err(CliError::input(
                    "resuming a live incident needs approval for writes: pass --yes, or run from a terminal",
                ));
            }
            drive_headless(&mut engine, &mut gate)
        }
        IncidentCommand::List { json } => {
            let list = super::records::list_with_shared(ctx)?;
            if json {
                let text = serde_json::to_string_pretty(&list)
                    .map_err(|e| CliError::failed(e.to_string()))?;
                println!("{text}");
                return Ok(0);
            }
            let mut out = String::new();
            let _ = writeln!(
                out,
                "{:<28} {:<9} {:<25} {:<10} KEYS",
                "ID", "TYPE", "OPENED", "STATUS"
            );
            for i in &list {
                let _ = write!(
                    out,
                    "{:<28} {:<9} {:<25} {:<10} {}",
                    i.id,
                    i.kind,
                    i.opened,
                    i.status,
                    i.keys.join(",")
                );
                if let Some(sh) = &i.shared {
                    let _ = write!(out, "  [{sh}]");
                }
                out.push('\n');
            }
            let _ = writeln!(
                out,
                "{} incidents and drills, {} open",
                list.len(),
                list.iter().filter(|i| i.is_open()).count()
            );
            print!("{out}");
            Ok(0)
        }
        IncidentCommand::Show { id, json } => {
            let (path, shared_check) = super::records::existing_record(ctx, &id)?;
            if let Some(r) = &shared_check
                && !json
            {
                match &r.first_bad {
                    None => println!("shared copy {} verified ({} entries)", r.path, r.entries),
                    Some(bad) => println!(
                        "shared copy {} FAILS verification at line {}: {}",
                        r.path, bad.line, bad.reason
                    ),
                }
            }
            let entries =
                read_entries(&path).map_err(|e| CliError::input(format!("incident {id}: {e}")))?;
            let summary = crate::incidents::summarize(&id, &path, &entries)
                .ok_or_else(|| CliError::input(format!("incident {id}: empty record")))?;
            if json {
                let text = serde_json::to_string_pretty(
                    &serde_json::json!({ "incident": summary, "entries": entries }),
                )
                .map_err(|e| CliError::failed(e.to_string()))?;
                println!("{text}");
                return Ok(0);
            }
            let mut out = String::new();
            let _ = writeln!(
                out,
                "{} {} ({})",
                if summary.drill { "drill" } else { "incident" },
                summary.id,
                summary.status
            );
            let _ = writeln!(
                out,
                "opened {} for {}",
                summary.opened,
                summary.keys.join(", ")
            );
            if let Some(r) = &summary.reason {
                let _ = writeln!(out, "reason {r}");
            }
            for e in &entries {
                let event = crate::record::Event::of(e);
                let key = event.key().unwrap_or("");
                let _ = writeln!(
                    out,
                    "{:>4} {}  {key:<24} {}",
                    e.seq,
                    e.ts,
                    describe_event(e, &event)
                );
            }
            print!("{out}");
            Ok(0)
        }
    }
}
