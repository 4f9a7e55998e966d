//! `keyfire demo`: the console over the built-in training environment, or (`--no-tui`) a
//! scripted incident headless. Nothing reaches the network.

use chrono::{Duration, Utc};

use super::incident::drive_headless;
use super::{CliError, Context, Exit, TerminalGate};
use crate::demo::{BANNER, SCENARIO_KEY, Training};
use crate::runbook::{Engine, IncidentParams, Order};
use crate::scan::{Matcher, ScanRequest};

/// The incident's reason and exposure start, as a scan found them.
type Found = Option<(String, Option<chrono::DateTime<Utc>>)>;

/// `keyfire scan --git --with-stores` over the training repository, as an operator would run
/// it: the findings are printed (with `print`) and kept for the console's Leaks view, and the
/// scenario key's places and first commit date become the incident's reason and exposure
/// window. `None` when the repository could not be planted or the scan did not find the key
/// live.
fn scan_the_repository(t: &Training, print: bool) -> Result<Found, CliError> {
    let Some(repo) = &t.repo else {
        if print {
            println!("(git is not installed: the planted repository is skipped)\n");
        }
        return Ok(None);
    };
    if print {
        println!(
            "A scanner's job first: `keyfire scan {} --git --with-stores`\n",
            repo.display()
        );
    }
    let inv = &t.setup.inventory;
    let http = crate::http::Http::new(true, crate::secret::Redactor::new())
        .map_err(|e| CliError::failed(e.to_string()))?;
    let stores = super::runtime()?.block_on(crate::scan::matcher::read_stores(inv, &http));
    let matcher = Matcher::new(inv, stores);
    let req = ScanRequest {
        paths: vec![repo.clone()],
        git: true,
        ..Default::default()
    };
    let outcome = crate::scan::scan(&req, &matcher).map_err(|e| CliError::failed(e.to_string()))?;
    let keys = crate::scan::summarize_keys(inv, &outcome.findings);
    let totals = crate::scan::summary::totals(&outcome.findings, &keys);
    let saved =
        crate::scan::SavedScan::of(t.setup.clock.now(), &req, None, &outcome, &keys, &totals);
    if let Err(e) = crate::scan::saved::save(&t.setup.data_dir, &saved) {
        eprintln!("warning: {e}");
    }
    if print {
        println!("{}", super::scan::render(&outcome, &keys, &totals, true));
    }
    let live: Vec<&crate::scan::KeySummary> = keys
        .iter()
        .filter(|k| k.live && k.id == SCENARIO_KEY)
        .collect();
    let Some(k) = live.first() else {
        return Ok(None);
    };
    Ok(Some((
        crate::scan::summary::reason(&outcome.findings, &live),
        k.first_exposed,
    )))
}

pub(super) fn run(_ctx: &Context, no_tui: bool) -> Exit {
    let t = Training::start().map_err(|e| CliError::failed(e.to_string()))?;
    #[cfg(feature = "tui")]
    {
        use std::io::IsTerminal;
        if !no_tui && std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
            // The planted leak waits in the console's Leaks view (`L`).
            if let Err(e) = scan_the_repository(&t, false) {
                eprintln!("warning: the training repository could not be scanned: {e}");
            }
            crate::tui::run(
                t.setup.clone(),
                crate::tui::ConsoleOptions { training: true },
            )
            .map_err(|e| CliError::failed(format!("terminal error: {e}")))?;
            println!(
                "{BANNER}\nEverything this session wrote: {}",
                t.dir.display()
            );
            return Ok(0);
        }
    }
    let _ = no_tui;
    headless(&t)
}

fn headless(t: &Training) -> Exit {
    println!("{BANNER}\n");
    let found = scan_the_repository(t, true)?;
    println!(
        "Scenario: the support bot's OpenAI key ({SCENARIO_KEY}) was committed in a .env three days ago{}.\nRunning the runbook headless, every write auto-approved.\n",
        if found.is_some() {
            " (found above by `keyfire scan`)"
        } else {
            ""
        }
    );
    let (reason, exposed_since) = found.unwrap_or_else(|| {
        (
            "training: key committed in a .env".to_string(),
            Some(Utc::now() - Duration::days(3)),
        )
    });
    let params = IncidentParams {
        keys: vec![SCENARIO_KEY.into()],
        dry_run: false,
        order: Order::ContainFirst,
        exposed_since,
        reason: Some(reason),
        ..Default::default()
    };
    let mut engine =
        Engine::open(t.setup.clone(), params).map_err(|e| CliError::failed(e.to_string()))?;
    let code = drive_headless(&mut engine, &mut TerminalGate::new(true))?;
    println!(
        "\nThe leaked key still authenticates at the provider: {}",
        if t.still_works(SCENARIO_KEY) {
            "YES"
        } else {
            "no"
        }
    );
    println!(
        "Report: {}",
        engine.record_dir().join("report.md").display()
    );
    let messages = t.oncall.received();
    println!(
        "The on-call channel (a loopback Slack stand-in) received {} messages:",
        messages.len()
    );
    for m in &messages {
        let text = m
            .json()
            .and_then(|v| v["text"].as_str().map(str::to_string))
            .unwrap_or_default();
        println!("  {}", text.lines().next().unwrap_or(""));
    }
    println!("Inventory after step 5: {}", t.inventory_path.display());
    println!("Everything this session wrote: {}", t.dir.display());
    println!(
        "Next: `keyfire demo` on a terminal opens the console over the same fleet; drills there (d on a key) find the problems planted in it."
    );
    println!("\n{BANNER}");
    Ok(code)
}
