//! `keyfire inventory discover` over 10,000 provider keys with 100 ms on every call (the
//! whole process, against the simulators). Target: well under a minute.
//!
//! - OpenAI, one project of 10,000 keys: 100 pages of 100 that must be read one after
//!   another (each page's `after` cursor is the previous page's last id): ~100 x 100 ms.
//! - OpenAI, 100 projects of 100 keys (`discover_projects = "all"`): one projects page, then
//!   the projects' lists 8 at a time.
//! - Anthropic, 10,000 keys: pages of 1,000 (the API's largest), one after another.
//!
//! Each inventory names all but 10 of the keys, so the 10 are reported as shadow keys.

#[path = "common.rs"]
mod common;

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use keyfire::sim::{AnthropicSim, OpenAiSim};

const OPENAI_ADMIN: &str = "sk-admin-benchDiscover0000000000000000000000000";
const ANTHROPIC_ADMIN: &str = "sk-ant-admin01-benchDiscover000000000000000000";
const LATENCY: Duration = Duration::from_millis(100);
const KEYS: usize = 10_000;
const SHADOW: usize = 10;

fn key_entry(inv: &mut String, provider: &str, i: usize, id: &str) {
    let _ = write!(
        inv,
        "[[keys]]\nid = \"k{i}\"\nagents = []\nprovider = \"{provider}\"\nprovider_key_id = \"{id}\"\n"
    );
}

/// Run discover over this inventory; returns (wall time, shadow keys reported, calls).
fn discover(inv: &str, env: &[(&str, &str)]) -> (Duration, u64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inventory.toml");
    common::write(&path, inv);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyfire"));
    cmd.args(["inventory", "discover", "--json", "--inventory"])
        .arg(&path)
        .env("KEYFIRE_DATA_DIR", dir.path().join("data"))
        .env_remove("KEYFIRE_CONFIG")
        .env_remove("KEYFIRE_INVENTORY")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = std::time::Instant::now();
    let out = cmd.output().expect("run keyfire");
    let wall = started.elapsed();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "discover did not answer JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let calls = v["providers"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["calls"].as_u64()).sum())
        .unwrap_or(0);
    (wall, v["summary"]["shadow"].as_u64().unwrap_or(0), calls)
}

fn openai_inventory(sim: &OpenAiSim, all: bool, project: &str) -> String {
    format!(
        "schema = 1\n[[providers]]\nid = \"oa\"\nkind = \"openai\"\nadmin_credential = \"env:BENCH_OPENAI\"\nbase_url = \"{}\"\nsettings = {{ project_id = \"{project}\"{} }}\n",
        sim.base_url(),
        if all {
            ", discover_projects = \"all\""
        } else {
            ""
        }
    )
}

fn one_project() -> (Duration, u64, u64) {
    let sim = OpenAiSim::start().expect("openai sim");
    sim.add_admin_key(OPENAI_ADMIN);
    let mut inv = openai_inventory(&sim, false, "proj_keyfire");
    for i in 0..KEYS {
        let id = sim.add_user_key(
            "proj_keyfire",
            &format!("k{i}"),
            &format!("sk-proj-bench{i:06}abcdefghijklmnopqrstuvwxyz"),
        );
        if i >= SHADOW {
            key_entry(&mut inv, "oa", i, &id);
        }
    }
    sim.observer().set_latency(LATENCY);
    discover(&inv, &[("BENCH_OPENAI", OPENAI_ADMIN)])
}

fn many_projects() -> (Duration, u64, u64) {
    let sim = OpenAiSim::start().expect("openai sim");
    sim.add_admin_key(OPENAI_ADMIN);
    let mut inv = openai_inventory(&sim, true, "proj_keyfire");
    for p in 0..100 {
        let project = format!("proj_{p:03}");
        sim.add_project(&project);
        for j in 0..KEYS / 100 {
            let i = p * 100 + j;
            let id = sim.add_user_key(
                &project,
                &format!("k{i}"),
                &format!("sk-proj-bench{i:06}abcdefghijklmnopqrstuvwxyz"),
            );
            if i >= SHADOW {
                key_entry(&mut inv, "oa", i, &id);
            }
        }
    }
    sim.observer().set_latency(LATENCY);
    discover(&inv, &[("BENCH_OPENAI", OPENAI_ADMIN)])
}

fn anthropic() -> (Duration, u64, u64) {
    let sim = AnthropicSim::start().expect("anthropic sim");
    sim.add_admin_key(ANTHROPIC_ADMIN);
    let mut inv = format!(
        "schema = 1\n[[providers]]\nid = \"an\"\nkind = \"anthropic\"\nadmin_credential = \"env:BENCH_ANTHROPIC\"\nbase_url = \"{}\"\n",
        sim.base_url()
    );
    for i in 0..KEYS {
        let id = sim.add_key(
            &format!("k{i}"),
            &format!("sk-ant-api03-bench{i:06}abcdefghijklmnopqrstuvwxyz"),
        );
        if i >= SHADOW {
            key_entry(&mut inv, "an", i, &id);
        }
    }
    sim.observer().set_latency(LATENCY);
    discover(&inv, &[("BENCH_ANTHROPIC", ANTHROPIC_ADMIN)])
}

fn main() {
    println!(
        "inventory discover, {KEYS} keys, {} ms per call (target: well under 60 s)",
        LATENCY.as_millis()
    );
    for (what, run) in [
        (
            "openai, 1 project, 100 sequential pages of 100",
            one_project as fn() -> (Duration, u64, u64),
        ),
        (
            "openai, 100 projects of 100, 8 projects at a time",
            many_projects,
        ),
        ("anthropic, 10 sequential pages of 1000", anthropic),
    ] {
        let (wall, shadow, calls) = run();
        println!(
            "  {what:<52} {:>7.2} s  {calls:>4} calls  {shadow} shadow keys",
            wall.as_secs_f64()
        );
        assert_eq!(shadow, SHADOW as u64, "{what}: every shadow key is found");
    }
}
