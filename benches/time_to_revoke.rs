//! DESIGN section 12: headless time to revoke one key against a loopback provider, from
//! process start to the provider's confirmation (target: 50 ms plus the provider's own
//! latency). Prints process start → revoke confirmed, and → old key proven dead.

#[path = "common.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use keyfire::sim::{FakeApi, VaultSim};

fn ts_ms(ts: &str) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(ts).expect("rfc3339");
    t.timestamp_millis() as f64
}

fn main() {
    println!(
        "time_to_revoke: keyfire {} (release), `incident start KEY --yes --no-tui`, median of 9 runs",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "{:>18} {:>22} {:>22} {:>16}",
        "provider latency", "start→revoke ok (ms)", "start→proven dead (ms)", "whole run (ms)"
    );
    for latency_ms in [0u64, 50] {
        let mut to_revoke = Vec::new();
        let mut to_proof = Vec::new();
        let mut whole = Vec::new();
        for _ in 0..9 {
            let dir = tempfile::tempdir().expect("tempdir");
            let api = FakeApi::start().expect("api");
            api.add_admin_token("fk-admin-bench-000000000000000000000000");
            let old = "fk-bench-old-0000000000000000000000000000";
            let id = api.add_key("bench", old);
            let vault = VaultSim::start("secret", "bench-token").expect("vault");
            vault.put("bench/key", "value", old);
            api.observer()
                .set_latency(Duration::from_millis(latency_ms));
            let inv = format!(
                "schema = 1\n[[providers]]\nid = \"p\"\nkind = \"fake\"\nadmin_credential = \"env:BENCH_ADMIN\"\nbase_url = \"{}\"\n\
                 [[stores]]\nid = \"v\"\nkind = \"vault-kv2\"\naddress = \"{}\"\ncredential = \"env:BENCH_VAULT\"\n\
                 [[agents]]\nid = \"a\"\n[[keys]]\nid = \"k\"\nagents = [\"a\"]\nprovider = \"p\"\nprovider_key_id = \"{id}\"\nstore = \"v\"\nsecret_path = \"bench/key\"\ncreated_at = 2026-01-01\n",
                api.base_url(),
                vault.address()
            );
            let inv_path = dir.path().join("inv.toml");
            common::write(&inv_path, &inv);
            let data = dir.path().join("data");
            let started = SystemTime::now();
            let run = common::measure(
                Command::new(env!("CARGO_BIN_EXE_keyfire"))
                    .args(["incident", "start", "k", "--yes", "--no-tui", "--inventory"])
                    .arg(&inv_path)
                    .env("KEYFIRE_DATA_DIR", &data)
                    .env("BENCH_ADMIN", "fk-admin-bench-000000000000000000000000")
                    .env("BENCH_VAULT", "bench-token")
                    .env_remove("KEYFIRE_CONFIG")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null()),
            );
            assert_eq!(run.code, Some(0));
            let start_ms = started
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("clock")
                .as_millis() as f64;
            let incident = std::fs::read_dir(data.join("incidents"))
                .expect("incidents")
                .next()
                .expect("one")
                .expect("entry")
                .path();
            let entries =
                keyfire::record::read_entries(&incident.join("record.jsonl")).expect("record");
            let revoked = entries
                .iter()
                .find(|e| e.kind == "response" && e.data["action"] == "revoke")
                .expect("revoke response");
            let proven = entries
                .iter()
                .find(|e| e.kind == "evidence" && e.data["action"] == "prove_revoked")
                .expect("proof");
            to_revoke.push(Duration::from_secs_f64(
                (ts_ms(&revoked.ts) - start_ms).max(0.0) / 1000.0,
            ));
            to_proof.push(Duration::from_secs_f64(
                (ts_ms(&proven.ts) - start_ms).max(0.0) / 1000.0,
            ));
            whole.push(run.wall);
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:>15} ms {:>22.1} {:>22.1} {:>16.1}",
            latency_ms,
            ms(common::median(to_revoke)),
            ms(common::median(to_proof)),
            ms(common::median(whole))
        );
    }
}
