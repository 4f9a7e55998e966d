//! DESIGN section 12: a campaign of 200 OpenAI project keys (simulator) with 100 ms on every
//! call, the secrets manager included, at 16 keys at a time per provider. Prints, from the
//! incident's record: the fleet time to contain (until the last key's revocation was proven
//! or found inconclusive) against its target of 1.3 x ceil(200/16) x 3 round trips, the
//! per-key containment times, and the whole run against the ideal bounded-concurrency time
//! and a sequential loop (both derived from a measured one-key incident).

#[path = "common.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use keyfire::sim::{OpenAiSim, VaultSim};

const ADMIN: &str = "sk-admin-benchAdmin000000000000000000000000000";
const VAULT_TOKEN: &str = "hvs.benchVaultToken000000000";
const PROJECT: &str = "proj_bench";
const PER_PROVIDER: usize = 16;

struct Result {
    wall: Duration,
    fleet_to_contain_ms: Option<i64>,
    contain_ms: Vec<i64>,
}

fn run(n: usize, latency: Duration) -> Result {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = OpenAiSim::start().expect("openai sim");
    sim.add_admin_key(ADMIN);
    sim.add_project(PROJECT);
    let vault = VaultSim::start("secret", VAULT_TOKEN).expect("vault");
    let mut inv = format!(
        "schema = 1\n[[providers]]\nid = \"p\"\nkind = \"openai\"\nadmin_credential = \"env:BENCH_ADMIN\"\nbase_url = \"{}/v1\"\nsettings = {{ project_id = \"{PROJECT}\", organization = \"{}\", max_concurrency = {PER_PROVIDER} }}\n\
         [[stores]]\nid = \"v\"\nkind = \"vault-kv2\"\naddress = \"{}\"\ncredential = \"env:BENCH_VAULT\"\n[[agents]]\nid = \"a\"\n",
        sim.base_url(),
        keyfire::sim::openai::ORGANIZATION,
        vault.address()
    );
    for i in 0..n {
        let value = format!("sk-proj-bench{i:04}0000000000000000000000000000000T3BlbkFJ");
        let id = sim.add_user_key(PROJECT, &format!("k{i}"), &value);
        vault.put(&format!("k/{i}"), "value", &value);
        inv.push_str(&format!(
            "[[keys]]\nid = \"k{i}\"\nagents = [\"a\"]\nprovider = \"p\"\nprovider_key_id = \"{id}\"\nstore = \"v\"\nsecret_path = \"k/{i}\"\ncreated_at = 2026-01-01\n"
        ));
    }
    sim.observer().set_latency(latency);
    vault.observer().set_latency(latency);
    let path = dir.path().join("inv.toml");
    common::write(&path, &inv);
    let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    let data = dir.path().join("data");
    let r = common::measure(
        Command::new(env!("CARGO_BIN_EXE_keyfire"))
            .args(["incident", "start", "--yes", "--no-tui", "--inventory"])
            .arg(&path)
            .args(&keys)
            .env("KEYFIRE_DATA_DIR", &data)
            .env("KEYFIRE_SIGNING_KEY_FILE", dir.path().join("signing.key"))
            .env("BENCH_ADMIN", ADMIN)
            .env("BENCH_VAULT", VAULT_TOKEN)
            .env_remove("KEYFIRE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    assert_eq!(r.code, Some(0), "the campaign completed");
    let incident = std::fs::read_dir(data.join("incidents"))
        .expect("incidents")
        .next()
        .expect("one")
        .expect("entry")
        .path();
    let entries = keyfire::record::read_entries(&incident.join("record.jsonl")).expect("record");
    let state = keyfire::record::IncidentState::fold(&entries).expect("state");
    let mut contain_ms: Vec<i64> = state
        .per_key
        .values()
        .filter_map(|k| k.time_to_contain_ms)
        .collect();
    contain_ms.sort_unstable();
    Result {
        wall: r.wall,
        fleet_to_contain_ms: state.fleet_time_to_contain_ms,
        contain_ms,
    }
}

fn main() {
    let latency = Duration::from_millis(100);
    let n = 200;
    let one = common::median((0..3).map(|_| run(1, latency).wall).collect());
    let campaign = run(n, latency);
    let waves = (n as f64 / PER_PROVIDER as f64).ceil();
    let contain_target_ms = 1.3 * waves * 3.0 * latency.as_secs_f64() * 1000.0;
    let ideal = one.mul_f64(waves);
    let sequential = one * n as u32;
    let pct = |p: f64| {
        let v = &campaign.contain_ms;
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(-1)
    };
    println!(
        "campaign: {n} openai keys, 100 ms on every call (provider and store), {PER_PROVIDER} per provider (release, whole process)"
    );
    println!(
        "  fleet time to contain:          {:>8} ms  (target <= {contain_target_ms:.0} ms = 1.3 x {waves} waves x 3 round trips)",
        campaign
            .fleet_to_contain_ms
            .map_or("unknown".to_string(), |m| m.to_string())
    );
    println!(
        "  per-key time to contain:        median {} ms, p90 {} ms, last {} ms ({} keys)",
        pct(0.5),
        pct(0.9),
        pct(1.0),
        campaign.contain_ms.len()
    );
    println!(
        "  one key, whole run (median of 3):{:>7.0} ms",
        one.as_secs_f64() * 1000.0
    );
    println!(
        "  campaign of {n}, whole run:      {:>8.0} ms",
        campaign.wall.as_secs_f64() * 1000.0
    );
    println!(
        "  ideal bounded concurrency:      {:>8.0} ms  (ratio {:.2}x, target <= 1.3x)",
        ideal.as_secs_f64() * 1000.0,
        campaign.wall.as_secs_f64() / ideal.as_secs_f64()
    );
    println!(
        "  sequential loop ({n} x one):    {:>8.0} ms  (campaign is {:.1}x faster, target >= 10x)",
        sequential.as_secs_f64() * 1000.0,
        sequential.as_secs_f64() / campaign.wall.as_secs_f64()
    );
}
