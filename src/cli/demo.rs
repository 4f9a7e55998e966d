//! `keyfire demo`: the console over the built-in training environment, or (`--no-tui`) a
//! scripted incident headless. Nothing reaches the network.

use chrono::{Duration, Utc};

use super::incident::drive_headless;
use super::{CliError, Context, Exit, TerminalGate};
use crate::demo::{BANNER, SCENARIO_KEY, Training};
use crate::runbook::{Engine, IncidentParams, Order};

pub fn run(_ctx: &Context, no_tui: bool) -> Exit {
    let t = Training::start().map_err(|e| CliError::failed(e.to_string()))?;
    #[cfg(feature = "tui")]
    {
        use std::io::IsTerminal;
        if !no_tui && std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
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
    println!(
        "Scenario: the support bot's OpenAI key ({SCENARIO_KEY}) was pasted into a public issue three days ago.\nRunning the runbook headless, every write auto-approved.\n"
    );
    let params = IncidentParams {
        keys: vec![SCENARIO_KEY.into()],
        dry_run: false,
        order: Order::ContainFirst,
        exposed_since: Some(Utc::now() - Duration::days(3)),
        reason: Some("training: key pasted into a public issue".into()),
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
