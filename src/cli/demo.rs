//! `keyfire demo`: the runbook over a built-in training environment (loopback provider,
//! in-memory store, throw-away data directory). Nothing reaches the network.

use std::sync::Arc;

use chrono::{Duration, NaiveTime, Utc};

use super::incident::drive_headless;
use super::{CliError, Context, Exit, TerminalGate};
use crate::provider::UsageBucket;
use crate::runbook::{Engine, IncidentParams, Order, Runbook, Setup};
use crate::secret::Secret;
use crate::sim::FakeApi;
use crate::store::MemoryStore;

const INVENTORY: &str = include_str!("../../assets/demo/inventory.toml");
const BANNER: &str =
    "TRAINING ENVIRONMENT: loopback services, throw-away data; no real key is touched";

/// Daily usage with a planted abuse pattern in the last two days.
fn planted_usage() -> Vec<UsageBucket> {
    let today = Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc();
    (0..21)
        .map(|i| {
            let start = today - Duration::days(20 - i);
            let abuse = i >= 19;
            let requests = if abuse {
                9_000 + 700 * i as u64
            } else {
                180 + (i as u64 * 37) % 60
            };
            UsageBucket {
                start,
                end: start + Duration::days(1),
                requests,
                input_tokens: requests * 900,
                output_tokens: requests * 300,
                cost_usd: requests as f64 * 0.012,
            }
        })
        .collect()
}

/// The training environment: loopback provider, in-memory store, throw-away directory.
struct Training {
    api: FakeApi,
    dir: std::path::PathBuf,
    inv_path: std::path::PathBuf,
    leaked: Secret,
    setup: Setup,
}

fn training() -> Result<Training, CliError> {
    let err =
        |e: std::io::Error| CliError::failed(format!("cannot start the training environment: {e}"));
    let api = FakeApi::start().map_err(err)?;
    let dir = std::env::temp_dir().join(format!("keyfire-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(err)?;
    let inv_path = dir.join("inventory.toml");
    let rotated = (Utc::now() - Duration::days(10)).date_naive().to_string();
    let text = INVENTORY
        .replace("@PORT@", &api.addr().port().to_string())
        .replace("@ROTATED@", &rotated);
    std::fs::write(&inv_path, text).map_err(err)?;

    let admin = format!("fk-admin-{}", crate::sim::token(32));
    api.add_admin_token(&admin);
    let vault = MemoryStore::named("training-vault");
    vault.seed("admin/llm-training", "value", Secret::new(admin));
    let mut leaked = Secret::new(String::new());
    for (id, path) in [
        ("key_support01", "agents/support-bot/llm"),
        ("key_research01", "agents/research/llm"),
    ] {
        let value = Secret::new(format!("fk-{}", crate::sim::token(40)));
        api.add_key_with_id(id, id, value.expose());
        vault.seed(path, "value", value.clone());
        if id == "key_support01" {
            leaked = value;
        }
    }
    api.set_usage("key_support01", planted_usage());

    let inventory = crate::inventory::load(std::slice::from_ref(&inv_path))
        .map_err(|e| CliError::failed(e.to_string()))?;
    let setup = Setup {
        inventory: Arc::new(inventory),
        runbook: Arc::new(Runbook::builtin().map_err(|e| CliError::failed(e.to_string()))?),
        data_dir: dir.join("data"),
        clock: Arc::new(crate::clock::SystemClock),
    };
    Ok(Training {
        api,
        dir,
        inv_path,
        leaked,
        setup,
    })
}

pub fn run(_ctx: &Context, no_tui: bool) -> Exit {
    let t = training()?;
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
                "{BANNER}\nRecords of this session: {}",
                t.dir.join("data").display()
            );
            return Ok(0);
        }
    }
    let _ = no_tui;
    headless(t)
}

fn headless(t: Training) -> Exit {
    println!("{BANNER}\n");
    println!(
        "Scenario: the support bot's LLM key was pasted into a public issue. Running the runbook headless, every write auto-approved.\n"
    );
    let params = IncidentParams {
        keys: vec!["support-bot-llm".into()],
        dry_run: false,
        order: Order::ContainFirst,
        exposed_since: Some(Utc::now() - Duration::days(3)),
        reason: Some("training: key pasted into a public issue".into()),
        ..Default::default()
    };
    let mut engine = Engine::open(t.setup, params).map_err(|e| CliError::failed(e.to_string()))?;
    let code = drive_headless(&mut engine, &mut TerminalGate::new(true))?;
    println!(
        "\nThe leaked key still authenticates at the provider: {}",
        if t.api.accepts(t.leaked.expose()) {
            "YES"
        } else {
            "no"
        }
    );
    println!(
        "Report: {}",
        engine.record_dir().join("report.md").display()
    );
    println!("Inventory after step 5: {}", t.inv_path.display());
    println!("Everything this session wrote: {}", t.dir.display());
    println!("\n{BANNER}");
    Ok(code)
}
