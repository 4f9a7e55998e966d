//! Inventories whose leaked key lives in Doppler or Infisical, driven through the keyfire
//! binary: lint, a drill (zero writes received by the store), a live incident (the store
//! serves the replacement, the record names its version), the canary grep over every byte
//! keyfire wrote, and SIGKILL during the store write followed by `incident resume` (the
//! replacement already stored is adopted, the write is not sent again).

use std::process::Stdio;
use std::time::{Duration, Instant};

use keyfire::inventory::StoreKind;
use keyfire::sim::Fault;

use crate::common::{OLD_PATH, TestEnv, files_under, stderr, stdout};
use crate::stores_contract::{KINDS, Sim, credential, secret_path};

const STORE_VAR: &str = "KF_TEST_STORE_CREDENTIAL";

struct Fleet {
    kind: StoreKind,
    env: TestEnv,
    sim: Sim,
}

impl Fleet {
    fn new(kind: StoreKind) -> Self {
        let env = TestEnv::new();
        let sim = Sim::start(kind, &env.canaries.old_key);
        let settings = match kind {
            StoreKind::Doppler => r#"{ project = "agents", config = "prd" }"#.to_string(),
            _ => format!(
                r#"{{ client_id = "{}", project_id = "{}", environment = "prod" }}"#,
                crate::stores_contract::INFISICAL_CLIENT,
                crate::stores_contract::INFISICAL_PROJECT
            ),
        };
        let text = env.inventory_text().replacen(
            &format!("store = \"vault\"\nsecret_path = \"{OLD_PATH}\""),
            &format!("store = \"kf\"\nsecret_path = \"{}\"", secret_path(kind)),
            1,
        ) + &format!(
            "\n[[stores]]\nid = \"kf\"\nkind = \"{kind}\"\naddress = \"{}\"\ncredential = \"env:{STORE_VAR}\"\nsettings = {settings}\n",
            sim.address()
        );
        assert!(text.contains("store = \"kf\""));
        std::fs::write(env.inventory_path(), text).unwrap();
        Self { kind, env, sim }
    }

    fn cmd(&self) -> std::process::Command {
        let mut c = self.env.cmd();
        c.env(STORE_VAR, credential(self.kind));
        c
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd().args(args).output().unwrap()
    }

    fn replacement(&self) -> String {
        let made: Vec<String> = self
            .env
            .api
            .live_keys()
            .into_iter()
            .filter(|k| k.name.starts_with("keyfire-"))
            .map(|k| k.value().to_string())
            .collect();
        assert_eq!(made.len(), 1, "{:?}: exactly one replacement", self.kind);
        made[0].clone()
    }

    fn record_text(&self, id: &str) -> String {
        std::fs::read_to_string(self.env.record_path(id)).unwrap()
    }

    /// The version the store write reported, as the record keeps it.
    fn written_version(&self, id: &str) -> serde_json::Value {
        self.env
            .entries(id)
            .into_iter()
            .find(|e| e.data["action"] == "store_write" && !e.data["version"].is_null())
            .map(|e| e.data["version"].clone())
            .unwrap_or_else(|| {
                panic!(
                    "{:?}: no store write version in {}",
                    self.kind,
                    self.record_text(id)
                )
            })
    }
}

#[test]
fn lint_drill_and_live_incident_through_the_binary_with_no_secret_anywhere() {
    for kind in KINDS {
        let fleet = Fleet::new(kind);
        let mut outputs = Vec::new();

        let lint = fleet.run(&["inventory", "lint"]);
        assert_ne!(
            lint.status.code(),
            Some(2),
            "{kind:?}: lint: {}",
            stderr(&lint)
        );
        assert!(!stderr(&lint).contains("store `kf`"), "{}", stderr(&lint));
        outputs.push(stdout(&lint) + &stderr(&lint));

        let drill = fleet.run(&["incident", "start", "support-llm", "--dry-run", "--no-tui"]);
        assert_eq!(
            drill.status.code(),
            Some(0),
            "{kind:?}: drill: {}{}",
            stdout(&drill),
            stderr(&drill)
        );
        outputs.push(stdout(&drill) + &stderr(&drill));
        // The drill read the store for real, and wrote nothing.
        assert!(
            fleet
                .sim
                .requests()
                .iter()
                .any(|r| r.method == "GET" && r.path.starts_with(fleet.sim.read_path())),
            "{kind:?}: the drill read the secret"
        );
        assert!(
            fleet.sim.writes().is_empty(),
            "{kind:?}: drill wrote {:?}",
            fleet.sim.writes()
        );
        assert_eq!(
            fleet.sim.current().as_deref(),
            Some(fleet.env.canaries.old_key.as_str())
        );

        let live = fleet.run(&["incident", "start", "support-llm", "--yes", "--no-tui"]);
        assert_eq!(
            live.status.code(),
            Some(0),
            "{kind:?}: live: {}{}",
            stdout(&live),
            stderr(&live)
        );
        outputs.push(stdout(&live) + &stderr(&live));
        let replacement = fleet.replacement();
        assert_eq!(
            fleet.sim.current().as_deref(),
            Some(replacement.as_str()),
            "{kind:?}"
        );
        assert!(!fleet.env.api.accepts(&fleet.env.canaries.old_key));
        assert_eq!(fleet.sim.writes().len(), 1, "{kind:?}: one store write");
        let ids = fleet.env.incident_ids();
        let live_id = ids
            .iter()
            .find(|id| !fleet.record_text(id).contains("\"dry_run\":true"))
            .expect("live incident");
        let version = fleet.written_version(live_id);
        match &fleet.sim {
            // The record names the log entry of the change: one command rolls it back.
            Sim::Doppler(s) => assert_eq!(version, serde_json::json!(s.log_ids()[0])),
            Sim::Infisical(_) => assert_eq!(version, serde_json::json!(2)),
        }
        for id in &ids {
            let verify = fleet.run(&["record", "verify", id]);
            assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
            let show = fleet.run(&["incident", "show", id, "--json"]);
            outputs.push(stdout(&show) + &stderr(&show));
        }

        // The canary grep: every file under the test directory and every output.
        let mut secrets = vec![
            fleet.env.canaries.admin.clone(),
            fleet.env.canaries.old_key.clone(),
            credential(kind).to_string(),
            replacement,
        ];
        // Infisical's access tokens are secrets as well.
        if let Sim::Infisical(s) = &fleet.sim {
            let tokens = s.issued_tokens();
            assert!(!tokens.is_empty());
            secrets.extend(tokens);
        }
        let files = files_under(fleet.env.dir.path());
        assert!(files.iter().any(|p| p.ends_with("record.jsonl")));
        for secret in &secrets {
            let needle = &secret[4..secret.len() - 4];
            for f in &files {
                if *f == fleet.env.signing_key_path() {
                    continue;
                }
                let bytes = std::fs::read(f).unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(needle),
                    "{kind:?}: secret found in {}",
                    f.display()
                );
            }
            for text in &outputs {
                assert!(!text.contains(needle), "{kind:?}: secret in output");
            }
        }
    }
}

#[test]
fn killed_during_the_store_write_resumes_and_adopts_the_stored_replacement() {
    for kind in KINDS {
        let fleet = Fleet::new(kind);
        let method = match kind {
            StoreKind::Doppler => "POST",
            _ => "PATCH",
        };
        let path = fleet.sim.write_path();
        // The store applies the write, then holds its answer until keyfire is killed.
        fleet
            .sim
            .inject(Fault::hold(method, path, Duration::from_secs(60)));
        let mut child = fleet
            .cmd()
            .args(["incident", "start", "support-llm", "--yes", "--no-tui"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while fleet.sim.writes().is_empty() {
            assert!(
                Instant::now() < deadline,
                "{kind:?}: the store write never came"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let ids = fleet.env.incident_ids();
        assert_eq!(ids.len(), 1);
        let id = &ids[0];
        assert_eq!(fleet.run(&["record", "verify", id]).status.code(), Some(0));
        let replacement = fleet.replacement();
        assert_eq!(fleet.sim.current().as_deref(), Some(replacement.as_str()));

        let resumed = fleet.run(&["incident", "resume", id, "--yes", "--no-tui"]);
        assert_eq!(
            resumed.status.code(),
            Some(0),
            "{kind:?}: resume: {}{}",
            stdout(&resumed),
            stderr(&resumed)
        );
        assert_eq!(fleet.run(&["record", "verify", id]).status.code(), Some(0));
        // One replacement, written once, adopted on resume and served by the store.
        assert_eq!(fleet.replacement(), replacement);
        assert_eq!(
            fleet.sim.writes().len(),
            1,
            "{kind:?}: the store write is sent once"
        );
        assert_eq!(fleet.sim.current().as_deref(), Some(replacement.as_str()));
        assert!(!fleet.env.api.accepts(&fleet.env.canaries.old_key));
        // The resumed run found the replacement in the store instead of writing again.
        let write_done = fleet
            .env
            .entries(id)
            .into_iter()
            .rev()
            .find(|e| e.kind == "action_done" && e.data["action"] == "store_write")
            .unwrap_or_else(|| panic!("{kind:?}: {}", fleet.record_text(id)));
        assert_eq!(
            write_done.data["status"], "skipped",
            "{kind:?}: {}",
            write_done.data
        );
        let closed = fleet
            .env
            .entries(id)
            .into_iter()
            .rev()
            .find(|e| e.kind == "incident_closed")
            .unwrap();
        assert_eq!(
            closed.data["outcome"],
            "completed",
            "{kind:?}: {}",
            fleet.record_text(id)
        );
    }
}

#[test]
fn store_definitions_missing_what_they_need_exit_2_naming_the_line() {
    for (kind, needs) in [
        (StoreKind::Doppler, "needs settings project, config"),
        (
            StoreKind::Infisical,
            "needs settings client_id, project_id, environment",
        ),
    ] {
        let env = TestEnv::with_inventory_extra(&format!(
            "\n[[stores]]\nid = \"bare\"\nkind = \"{kind}\"\n"
        ));
        let out = env.run(&["inventory", "lint"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{kind:?}: {err}");
        assert!(err.contains(needs), "{kind:?}: {err}");
        assert!(err.contains("needs credential"), "{kind:?}: {err}");
        assert!(err.contains("inventory.toml:"), "{kind:?}: {err}");
    }
}

/// The training environment keeps the research agent's gateway key in a loopback Infisical:
/// a live incident on it logs in, replaces the key there as version 2 and reads it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_training_environment_replaces_a_key_held_in_infisical() {
    use keyfire::demo::Training;
    use keyfire::runbook::{ApproveAll, CollectSink, Engine, IncidentParams, Outcome, drive};
    crate::common::hermetic_signing_key();
    let t = tokio::task::spawn_blocking(Training::start)
        .await
        .unwrap()
        .unwrap();
    let _folder = crate::common::RemoveOnDrop(t.dir.clone());
    const PATH: &str = "/agents/research/GATEWAY_KEY";
    assert_eq!(t.infisical.version(PATH), 1);
    let params = IncidentParams {
        keys: vec!["research-gateway".into()],
        ..Default::default()
    };
    let mut engine = Engine::open(t.setup.clone(), params).unwrap();
    let mut sink = CollectSink::default();
    let outcome = drive(&mut engine, &mut ApproveAll::default(), &mut sink)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Completed,
        "{:#?}",
        sink.0
            .iter()
            .filter(|e| e.kind == "step_failed")
            .collect::<Vec<_>>()
    );
    assert_eq!(t.infisical.version(PATH), 2);
    let stored = t.infisical.value(PATH, None).unwrap();
    assert!(
        t.gateway.accepts(&stored),
        "the store serves a live replacement"
    );
    assert!(!t.still_works("research-gateway"), "the leaked key is dead");
    assert!(t.infisical.logins() >= 1);
}

#[test]
fn a_secret_path_the_store_cannot_hold_exits_2_naming_the_key() {
    for (kind, path, says) in [
        (
            StoreKind::Doppler,
            "agents/support-llm",
            "is not a Doppler secret name",
        ),
        (StoreKind::Infisical, "/agents/support/", "names no secret"),
    ] {
        let fleet = Fleet::new(kind);
        let text = std::fs::read_to_string(fleet.env.inventory_path())
            .unwrap()
            .replacen(secret_path(kind), path, 1);
        std::fs::write(fleet.env.inventory_path(), text).unwrap();
        let out = fleet.run(&["inventory", "lint"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{kind:?}: {err}");
        assert!(
            err.contains("key `support-llm`: secret_path"),
            "{kind:?}: {err}"
        );
        assert!(err.contains(says), "{kind:?}: {err}");
        assert!(err.contains("inventory.toml:"), "{kind:?}: {err}");
    }
}

/// Someone edits the Doppler config while the incident runs (here: while the replacement is
/// being created): the store write stops, and the record and the output say who and when.
#[test]
fn a_doppler_config_changed_during_the_incident_stops_the_write_naming_who_and_when() {
    let fleet = Fleet::new(StoreKind::Doppler);
    let Sim::Doppler(sim) = &fleet.sim else {
        unreachable!()
    };
    fleet
        .env
        .api
        .inject(Fault::hold("POST", "/v1/keys", Duration::from_millis(1500)).exact());
    let child = fleet
        .cmd()
        .args(["incident", "start", "support-llm", "--yes", "--no-tui"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fleet
        .env
        .api
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path == "/v1/keys")
    {
        assert!(Instant::now() < deadline, "the create never came");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log_id = sim.put_as("OTHER_SETTING", "changed", "Dana Ops", "dana@example.com");
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out) + &stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        fleet.sim.writes().is_empty(),
        "nothing written over the change"
    );
    let id = &fleet.env.incident_ids()[0];
    let record = fleet.record_text(id);
    for needle in ["Dana Ops (dana@example.com)", log_id.as_str()] {
        assert!(
            record.contains(needle),
            "{needle} not in the record: {record}"
        );
        assert!(text.contains(needle), "{needle} not in the output: {text}");
    }
    assert_eq!(fleet.run(&["record", "verify", id]).status.code(), Some(0));
}

/// A scheduled rotation that fails after storing its replacement (the new key is refused at
/// verification) puts the previous key back: Doppler and Infisical have no stages, so the old
/// value is written over the replacement, checked against the replacement's version (Doppler:
/// its log entry; Infisical: its version number). Agents read the old key again and the
/// replacement is revoked.
#[test]
fn a_rotation_failing_after_storing_writes_the_previous_key_back() {
    for kind in KINDS {
        let fleet = Fleet::new(kind);
        fleet
            .env
            .api
            .inject(Fault::fail("GET", "/v1/me", 401, 1000).exact());
        let out = fleet.run(&["rotate", "support-llm", "--yes"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{kind:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(
            fleet.sim.current().as_deref(),
            Some(fleet.env.canaries.old_key.as_str()),
            "{kind:?}: agents read the old key again"
        );
        assert_eq!(
            fleet.sim.writes().len(),
            2,
            "{kind:?}: the replacement, then the old key"
        );
        assert!(fleet.env.api.accepts(&fleet.env.canaries.old_key));
        assert!(
            fleet
                .env
                .api
                .live_keys()
                .iter()
                .all(|k| !k.name.starts_with("keyfire-")),
            "{kind:?}: the replacement nobody reads is revoked"
        );
        let id = &fleet.env.incident_ids()[0];
        let record = fleet.record_text(id);
        assert!(record.contains("\"restored\":true"), "{kind:?}: {record}");
        assert!(!record.contains("both_keys_live"), "{kind:?}: {record}");
        if let Sim::Infisical(s) = &fleet.sim {
            assert_eq!(s.version(crate::stores_contract::INFISICAL_PATH), 3);
        }
    }
}
