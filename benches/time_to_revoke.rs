//! DESIGN section 12: time to revoke one key, headless, on the real provider kinds (OpenAI and
//! Anthropic simulators) with the same latency on every service keyfire calls, the secrets
//! manager included. Prints, from the record: the time from the incident's opening to the
//! revocation proven, the calls recorded before the proof, and that time in round trips
//! (target: 3 round trips + 50 ms: locate, revoke, probe; the store read runs beside the
//! locate, evidence after the proof).

#[path = "common.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use keyfire::record::Entry;
use keyfire::sim::{AnthropicSim, OpenAiSim, VaultSim};

const ADMIN_OPENAI: &str = "sk-admin-benchAdmin000000000000000000000000000";
const ADMIN_ANTHROPIC: &str = "sk-ant-admin01-benchAdmin0000000000000000000000-AA";
const VAULT_TOKEN: &str = "hvs.benchVaultToken000000000";
const PROJECT: &str = "proj_bench";

#[derive(Clone, Copy)]
enum Shape {
    /// OpenAI project key known by id.
    OpenAiById,
    /// OpenAI project key found by its hint among 130 keys (two list pages).
    OpenAiByHint,
    /// Anthropic key known by id (disable, then archive).
    Anthropic,
}

impl Shape {
    fn label(self) -> &'static str {
        match self {
            Self::OpenAiById => "openai, key id known",
            Self::OpenAiByHint => "openai, hint among 130",
            Self::Anthropic => "anthropic, key id known",
        }
    }
}

fn ts_ms(ts: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(ts)
        .expect("rfc3339")
        .timestamp_millis() as f64
}

struct Sample {
    to_proof_ms: f64,
    calls_before_proof: usize,
}

fn one(shape: Shape, latency: Duration) -> Sample {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = VaultSim::start("secret", VAULT_TOKEN).expect("vault");
    let (provider, locate, admin, _openai, _anthropic) = match shape {
        Shape::OpenAiById | Shape::OpenAiByHint => {
            let sim = OpenAiSim::start().expect("openai sim");
            sim.add_admin_key(ADMIN_OPENAI);
            sim.add_project(PROJECT);
            for i in 0..130 {
                sim.add_user_key(
                    PROJECT,
                    &format!("filler-{i}"),
                    &format!("sk-proj-filler{i:04}abcdefghijklmnopqrstuvwxyz{i:04}"),
                );
            }
            let old = "sk-proj-benchOldKey0000000000000000000000000000T3BlbkFJ";
            let id = sim.add_user_key(PROJECT, "support-bot", old);
            vault.put("agents/bench", "value", old);
            sim.observer().set_latency(latency);
            let provider = format!(
                "id = \"p\"\nkind = \"openai\"\nadmin_credential = \"env:BENCH_ADMIN\"\nbase_url = \"{}/v1\"\nsettings = {{ project_id = \"{PROJECT}\", organization = \"{}\" }}",
                sim.base_url(),
                keyfire::sim::openai::ORGANIZATION
            );
            let locate = match shape {
                Shape::OpenAiById => format!("provider_key_id = \"{id}\""),
                _ => "hint = \"sk-proj-...bkFJ\"".to_string(),
            };
            (provider, locate, ADMIN_OPENAI, Some(sim), None)
        }
        Shape::Anthropic => {
            let sim = AnthropicSim::start().expect("anthropic sim");
            sim.add_admin_key(ADMIN_ANTHROPIC);
            let old = "sk-ant-api03-benchOldKey00000000000000000000000000-AAAA";
            let id = sim.add_key("support-bot", old);
            vault.put("agents/bench", "value", old);
            sim.observer().set_latency(latency);
            let provider = format!(
                "id = \"p\"\nkind = \"anthropic\"\nadmin_credential = \"env:BENCH_ADMIN\"\nbase_url = \"{}\"\nsettings = {{ workspace_id = \"{}\" }}",
                sim.base_url(),
                keyfire::sim::anthropic::WORKSPACE
            );
            (
                provider,
                format!("provider_key_id = \"{id}\""),
                ADMIN_ANTHROPIC,
                None,
                Some(sim),
            )
        }
    };
    vault.observer().set_latency(latency);
    let inv = format!(
        "schema = 1\n[[providers]]\n{provider}\n\
         [[stores]]\nid = \"v\"\nkind = \"vault-kv2\"\naddress = \"{}\"\ncredential = \"env:BENCH_VAULT\"\n\
         [[agents]]\nid = \"a\"\n[[keys]]\nid = \"k\"\nagents = [\"a\"]\nprovider = \"p\"\n{locate}\nstore = \"v\"\nsecret_path = \"agents/bench\"\ncreated_at = 2026-01-01\n",
        vault.address()
    );
    let inv_path = dir.path().join("inv.toml");
    common::write(&inv_path, &inv);
    let data = dir.path().join("data");
    // Anthropic has no create API: the replacement is pasted, which a headless run cannot
    // do, so that incident stops in step 2. Containment is what this measures.
    let out = Command::new(env!("CARGO_BIN_EXE_keyfire"))
        .args(["incident", "start", "k", "--yes", "--no-tui", "--inventory"])
        .arg(&inv_path)
        .env("KEYFIRE_DATA_DIR", &data)
        .env("KEYFIRE_SIGNING_KEY_FILE", dir.path().join("signing.key"))
        .env("BENCH_ADMIN", admin)
        .env("BENCH_VAULT", VAULT_TOKEN)
        .env_remove("KEYFIRE_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run keyfire");
    let incident = std::fs::read_dir(data.join("incidents"))
        .expect("incidents")
        .next()
        .expect("one")
        .expect("entry")
        .path();
    let entries = keyfire::record::read_entries(&incident.join("record.jsonl")).expect("record");
    measure_record(&entries).unwrap_or_else(|| {
        panic!(
            "no proof in the record: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn measure_record(entries: &[Entry]) -> Option<Sample> {
    let opened = entries.first()?;
    let proof = entries
        .iter()
        .position(|e| e.kind == "evidence" && e.data["action"] == "prove_revoked")?;
    Some(Sample {
        to_proof_ms: ts_ms(&entries[proof].ts) - ts_ms(&opened.ts),
        calls_before_proof: entries[..proof]
            .iter()
            .filter(|e| e.kind == "request_sent")
            .count(),
    })
}

fn main() {
    let runs = 7;
    println!(
        "time_to_revoke: keyfire {} (release), `incident start KEY --yes --no-tui`, median of {runs} runs; times from the record",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "{:<26} {:>9} {:>22} {:>18} {:>16}",
        "shape", "latency", "opened→proven (ms)", "calls before proof", "round trips"
    );
    for shape in [Shape::OpenAiById, Shape::OpenAiByHint, Shape::Anthropic] {
        for latency_ms in [0u64, 100] {
            let latency = Duration::from_millis(latency_ms);
            let samples: Vec<Sample> = (0..runs).map(|_| one(shape, latency)).collect();
            let median_ms = common::median(
                samples
                    .iter()
                    .map(|s| Duration::from_secs_f64(s.to_proof_ms.max(0.0) / 1000.0))
                    .collect(),
            )
            .as_secs_f64()
                * 1000.0;
            let calls = samples
                .iter()
                .map(|s| s.calls_before_proof)
                .max()
                .unwrap_or(0);
            let round_trips = if latency_ms > 0 {
                format!("{:.2}", median_ms / latency_ms as f64)
            } else {
                "-".into()
            };
            println!(
                "{:<26} {:>6} ms {:>22.1} {:>18} {:>16}",
                shape.label(),
                latency_ms,
                median_ms,
                calls,
                round_trips
            );
        }
    }
    println!(
        "target: opened→proven within 3 round trips + 50 ms (350 ms at 100 ms per call) for a key keyfire can locate in one call"
    );
}
