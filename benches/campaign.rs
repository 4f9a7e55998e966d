//! DESIGN section 12: a campaign of 200 keys against a provider with 100 ms latency, compared
//! with the ideal bounded-concurrency time and with a sequential loop (both derived from the
//! measured one-key incident under the same latency).

#[path = "common.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use keyfire::sim::{FakeApi, VaultSim};

const ADMIN: &str = "fk-admin-bench-000000000000000000000000";

fn fleet(n: usize, api: &FakeApi, vault: &VaultSim) -> String {
    let mut inv = format!(
        "schema = 1\n[[providers]]\nid = \"p\"\nkind = \"fake\"\nadmin_credential = \"env:BENCH_ADMIN\"\nbase_url = \"{}\"\n\
         [[stores]]\nid = \"v\"\nkind = \"vault-kv2\"\naddress = \"{}\"\ncredential = \"env:BENCH_VAULT\"\n[[agents]]\nid = \"a\"\n",
        api.base_url(),
        vault.address()
    );
    for i in 0..n {
        let value = format!("fk-bench{i:04}-00000000000000000000000000");
        let id = api.add_key(&format!("k{i}"), &value);
        vault.put(&format!("k/{i}"), "value", &value);
        inv.push_str(&format!(
            "[[keys]]\nid = \"k{i}\"\nagents = [\"a\"]\nprovider = \"p\"\nprovider_key_id = \"{id}\"\nstore = \"v\"\nsecret_path = \"k/{i}\"\ncreated_at = 2026-01-01\n"
        ));
    }
    inv
}

fn run(n: usize, latency: Duration) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = FakeApi::start().expect("api");
    api.add_admin_token(ADMIN);
    let vault = VaultSim::start("secret", "bench-token").expect("vault");
    let inv = fleet(n, &api, &vault);
    api.observer().set_latency(latency);
    let path = dir.path().join("inv.toml");
    common::write(&path, &inv);
    let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    let r = common::measure(
        Command::new(env!("CARGO_BIN_EXE_keyfire"))
            .args(["incident", "start", "--yes", "--no-tui", "--inventory"])
            .arg(&path)
            .args(&keys)
            .env("KEYFIRE_DATA_DIR", dir.path().join("data"))
            .env("BENCH_ADMIN", ADMIN)
            .env("BENCH_VAULT", "bench-token")
            .env_remove("KEYFIRE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    assert_eq!(r.code, Some(0), "the campaign completed");
    r.wall
}

fn main() {
    let latency = Duration::from_millis(100);
    let concurrency = 16.0;
    let one = common::median((0..3).map(|_| run(1, latency)).collect());
    let campaign = run(200, latency);
    let ideal = one.mul_f64((200.0_f64 / concurrency).ceil());
    let sequential = one * 200;
    println!(
        "campaign: 200 keys, provider latency 100 ms, concurrency {concurrency} per provider (release, whole process)"
    );
    println!(
        "  one key (median of 3):          {:>8.0} ms",
        one.as_secs_f64() * 1000.0
    );
    println!(
        "  campaign of 200:                {:>8.0} ms",
        campaign.as_secs_f64() * 1000.0
    );
    println!(
        "  ideal bounded concurrency:      {:>8.0} ms  (ratio {:.2}x, target <= 1.3x)",
        ideal.as_secs_f64() * 1000.0,
        campaign.as_secs_f64() / ideal.as_secs_f64()
    );
    println!(
        "  sequential loop (200 x one):    {:>8.0} ms  (campaign is {:.1}x faster, target >= 10x)",
        sequential.as_secs_f64() * 1000.0,
        sequential.as_secs_f64() / campaign.as_secs_f64()
    );
}
