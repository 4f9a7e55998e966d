//! Every `--json` output of the built binary against its JSON Schema in `assets/`: each schema
//! is a valid draft 2020-12 schema, each output is run in the situations that exercise its
//! optional parts (failed and completed incidents, audit findings and rules that cannot be
//! evaluated, live, rotated, unmanaged, ambiguous and withheld scan findings, shadow keys and
//! drift, tampered records), and a mutated output is rejected. Formats (`date`, `date-time`)
//! are checked, not only annotated.

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{Duration, Utc};
use keyfire::sim::Fault;
use serde_json::{Value, json};

use crate::common::{OTHER_PATH, TestEnv, stderr, stdout};

/// The schema files, by the output they describe.
const SCHEMAS: &[&str] = &[
    "audit",
    "auth-list",
    "incident-list",
    "incident-show",
    "inventory-discover",
    "inventory-lint",
    "inventory-list",
    "inventory-show",
    "record-verify",
    "records-check",
    "report",
    "scan",
];

fn schema_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(format!("{name}.schema.json"))
}

fn schema(name: &str) -> Value {
    let text = std::fs::read_to_string(schema_path(name))
        .unwrap_or_else(|e| panic!("{}: {e}", schema_path(name).display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}.schema.json: {e}"))
}

fn validator(name: &str) -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema(name))
        .unwrap_or_else(|e| panic!("{name}.schema.json does not compile: {e}"))
}

/// Every reason `value` fails `name`'s schema, one per line with where it is.
fn violations(name: &str, value: &Value) -> Vec<String> {
    validator(name)
        .iter_errors(value)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect()
}

/// `value` conforms to `name`'s schema; on failure, the reasons and the output.
fn assert_conforms(name: &str, value: &Value, what: &str) {
    let errors = violations(name, value);
    assert!(
        errors.is_empty(),
        "{what} does not match assets/{name}.schema.json:\n{}\n{value:#}",
        errors.join("\n")
    );
}

/// Run keyfire's output through its schema: stdout is one JSON document.
fn conforms(name: &str, out: &Output, what: &str) -> Value {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not JSON ({e}):\n{}\n{}",
            stdout(out),
            stderr(out)
        )
    });
    assert_conforms(name, &v, what);
    v
}

#[test]
fn every_schema_is_a_valid_draft_2020_12_schema_with_a_versioned_id() {
    let mut on_disk: Vec<String> = std::fs::read_dir(schema_path("report").parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".schema.json")
                .map(str::to_string)
        })
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, SCHEMAS, "a schema in assets/ is not checked here");
    for name in SCHEMAS {
        let s = schema(name);
        if let Err(e) = jsonschema::draft202012::meta::validate(&s) {
            panic!("{name}.schema.json is not a valid draft 2020-12 schema: {e}");
        }
        assert_eq!(
            s["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert_eq!(s["$id"], format!("keyfire.{name}/1"), "{name}");
        assert!(
            s["description"].as_str().is_some_and(|d| d.len() > 20),
            "{name}: says what it describes"
        );
        validator(name);
        if *name != "report" {
            let mut undescribed = Vec::new();
            undescribed_fields(&s, "", &mut undescribed);
            assert!(
                undescribed.is_empty(),
                "{name}: fields without a description: {undescribed:?}"
            );
        }
    }
    // The report's schema is the one the binary embeds.
    assert_eq!(
        schema("report"),
        serde_json::from_str::<Value>(keyfire::report::JSON_SCHEMA).unwrap()
    );
}

/// Fields (under any `properties`) that say nothing to a reader: no description, and not a
/// reference or a constant that explains itself.
fn undescribed_fields(node: &Value, at: &str, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (field, def) in props {
                    let explained = ["description", "$ref", "const"]
                        .iter()
                        .any(|k| def.get(k).is_some());
                    if !explained && !at.ends_with("/if") {
                        out.push(format!("{at}/{field}"));
                    }
                }
            }
            for (k, v) in map {
                undescribed_fields(v, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                undescribed_fields(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A shared key with no dates (unknown age) and scopes beyond its needs, and an overdue one.
const EXTRA_KEYS: &str = r#"
[[keys]]
id = "old-crm"
agents = ["research"]
provider = "crm"
created_at = 2025-06-01
[[keys]]
id = "legacy-crm"
agents = ["research", "support-bot"]
provider = "crm"
scopes = ["contacts.read", "contacts.write"]
needs = ["contacts.read"]
description = "Old CRM key, shared"
"#;

#[test]
fn inventory_and_incident_outputs_match_their_schemas() {
    let env = TestEnv::with_inventory_extra(EXTRA_KEYS);
    // A completed drill, and a live incident whose create step fails (left failed).
    let drill = env.run(&["incident", "start", "research-llm", "--dry-run", "--no-tui"]);
    assert_eq!(drill.status.code(), Some(0), "{}", stdout(&drill));
    env.api
        .inject(Fault::fail("POST", "/v1/keys", 500, 5).exact());
    let failed = env.run(&[
        "incident",
        "start",
        "support-llm",
        "--yes",
        "--no-tui",
        "--reason",
        "key pasted in a ticket",
    ]);
    assert_eq!(failed.status.code(), Some(1), "{}", stdout(&failed));

    let list = conforms(
        "inventory-list",
        &env.run(&["inventory", "list", "--json"]),
        "inventory list",
    );
    let statuses: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    for s in ["incident-open", "unknown-age", "overdue"] {
        assert!(statuses.contains(&s), "{s} not exercised: {statuses:?}");
    }

    for key in ["support-llm", "research-llm", "sales-crm", "legacy-crm"] {
        let v = conforms(
            "inventory-show",
            &env.run(&["inventory", "show", key, "--json"]),
            &format!("inventory show {key}"),
        );
        if key == "support-llm" {
            assert_eq!(v["incidents"][0]["status"], "failed", "{v:#}");
        }
        if key == "legacy-crm" {
            assert!(v["key"]["created_at"].is_null() && v["key"]["needs"].is_array());
        }
    }

    let lint = env.run(&["inventory", "lint", "--json"]);
    assert_eq!(lint.status.code(), Some(1));
    let lint = conforms("inventory-lint", &lint, "inventory lint");
    let codes: Vec<&str> = lint["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    for c in [
        "shared-key",
        "scope-beyond-needs",
        "unknown-age",
        "no-store",
    ] {
        assert!(codes.contains(&c), "{c} not exercised: {codes:?}");
    }

    let incidents = conforms(
        "incident-list",
        &env.run(&["incident", "list", "--json"]),
        "incident list",
    );
    let mut seen: Vec<&str> = incidents
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, ["completed", "failed"]);
    for id in env.incident_ids() {
        let v = conforms(
            "incident-show",
            &env.run(&["incident", "show", &id, "--json"]),
            &format!("incident show {id}"),
        );
        assert_eq!(
            v["entries"].as_array().unwrap().len() as u64,
            v["incident"]["entries"].as_u64().unwrap()
        );
    }
}

/// The previous release's outputs, kept as fixtures, still conform: the schemas describe
/// what users' scripts have already seen. Its failed 21-key drill is shown too.
#[test]
fn the_previous_releases_incident_outputs_conform() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records");
    let read = |file: &str| -> Value {
        let text = std::fs::read_to_string(fixtures.join("expected").join(file))
            .unwrap()
            .replace("{DATA}", "/data");
        serde_json::from_str(&text).unwrap()
    };
    assert_conforms("incident-list", &read("list.json"), "list.json");
    assert_conforms(
        "incident-show",
        &read("inc-20261127-190425-6f33.show.json"),
        "inc-20261127-190425-6f33.show.json",
    );
    for id in ["inc-20261127-190425-6f33", "drill-20261127-190425-348e"] {
        assert_conforms(
            "report",
            &read(&format!("{id}.report.json")),
            &format!("{id}.report.json"),
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data").join("incidents");
    let id = "drill-20261127-190425-348e";
    std::fs::create_dir_all(data.join(id)).unwrap();
    for f in ["record.jsonl", "head"] {
        std::fs::copy(
            fixtures.join("data/incidents").join(id).join(f),
            data.join(id).join(f),
        )
        .unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyfire"))
        .args(["incident", "show", id, "--json"])
        .env("KEYFIRE_DATA_DIR", tmp.path().join("data"))
        .env(
            "KEYFIRE_SIGNING_KEY_FILE",
            tmp.path().join("record-signing.key"),
        )
        .env_remove("KEYFIRE_INVENTORY")
        .env_remove("KEYFIRE_CONFIG")
        .env_remove("KEYFIRE_RECORDS")
        .output()
        .unwrap();
    let v = conforms("incident-show", &out, "incident show of a failed drill");
    assert_eq!(v["incident"]["status"], "failed");
}

#[test]
fn audit_output_matches_its_schema_with_findings_and_rules_that_cannot_be_evaluated() {
    let env = TestEnv::new();
    let now = Utc::now();
    let line = |ts: chrono::DateTime<Utc>, ip: &str, model: &str| {
        format!(
            "{{\"timestamp\":\"{}\",\"key_id\":\"sales-crm\",\"source_ip\":\"{ip}\",\"status\":200,\"model\":\"{model}\"}}",
            ts.to_rfc3339()
        )
    };
    let log = crate::audit::write_log(
        &env,
        "gateway.jsonl",
        &[
            line(now - Duration::days(5), "10.0.0.1", "crm.read"),
            line(now - Duration::hours(3), "10.0.0.1", "crm.export_all"),
        ],
    );
    let since = (now - Duration::days(1)).to_rfc3339();
    let out = env.run(&[
        "audit",
        "sales-crm",
        "--json",
        "--since",
        &since,
        "--logs",
        log.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = conforms("audit", &out, "audit with a log");
    let rules = &v[0]["summary"]["rules"];
    let status = |rule: &str| {
        rules
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == rule)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("new_model"), "findings", "{v:#}");
    assert_eq!(status("network"), "not_evaluable", "{v:#}");

    // A log with no line for the key: every rule unknown, said in notes, counts null.
    let other = crate::audit::write_log(
        &env,
        "other.jsonl",
        &[line(now - Duration::hours(1), "10.0.0.1", "m").replace("sales-crm", "other-key")],
    );
    let out = env.run(&[
        "audit",
        "sales-crm",
        "--json",
        "--logs",
        other.to_str().unwrap(),
    ]);
    let v = conforms("audit", &out, "audit with a log of other keys");
    assert!(v[0]["summary"]["notes"].is_array(), "{v:#}");
    assert!(v[0]["summary"]["requests_in_window"].is_null(), "{v:#}");

    // Every key from the provider's usage (a spike: findings and a spend), one whose usage
    // read fails (a problem), and the manual keys nothing can see.
    env.plant_usage_spike();
    let all = env.run(&["audit", "--all", "--json"]);
    assert_eq!(all.status.code(), Some(1), "{}", stderr(&all));
    let v = conforms("audit", &all, "audit --all");
    let support = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "support-llm")
        .unwrap();
    assert!(support["summary"]["spend_in_window_usd"].is_number());
    let crm = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "sales-crm")
        .unwrap();
    assert!(crm["summary"]["spend_in_window_usd"].is_null(), "{crm:#}");

    env.api.inject(Fault::fail("GET", "/v1/usage", 500, 20));
    let failing = env.run(&["audit", "support-llm", "--json"]);
    let v = conforms("audit", &failing, "audit with a usage read that fails");
    assert!(
        !v[0]["problems"].as_array().unwrap().is_empty(),
        "the failed read is named: {v:#}"
    );
}

#[test]
fn scan_output_matches_its_schema_for_every_verdict() {
    // support-llm's fingerprint in the inventory: its value matches.
    let env = crate::scan::env_with_fingerprint();
    let p = crate::scan::planted(&env);
    let repo = p.repo.to_str().unwrap();
    let out = env.run(&["scan", repo, "--git", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = conforms("scan", &out, "scan --git");
    let statuses = |v: &Value| -> Vec<String> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["status"].as_str().unwrap().to_string())
            .collect()
    };
    for s in ["unverified", "unmanaged"] {
        assert!(statuses(&v).iter().any(|x| x == s), "{s}: {v:#}");
    }

    // The store tells current from rotated.
    env.vault
        .put(OTHER_PATH, "value", "fk-FAKErotatedFAKE0123456789abcd");
    let out = env.run(&["scan", repo, "--git", "--with-stores", "--json"]);
    let v = conforms("scan", &out, "scan --with-stores");
    for s in ["current", "rotated"] {
        assert!(statuses(&v).iter().any(|x| x == s), "{s}: {v:#}");
    }

    // Scanner reports: a withheld value and report locations.
    let out = env.run(&[
        "scan",
        "--report",
        &crate::scan::fixture("gitleaks.json"),
        "--report",
        &crate::scan::fixture("trufflehog.jsonl"),
        "--report",
        &crate::scan::fixture("github-alerts.json"),
        "--json",
    ]);
    let v = conforms("scan", &out, "scan --report");
    assert!(statuses(&v).iter().any(|x| x == "withheld"), "{v:#}");

    // A second key with research-llm's hint: a value with that hint is ambiguous.
    let tail = &env.canaries.other_key[env.canaries.other_key.len() - 4..];
    let text = std::fs::read_to_string(env.inventory_path()).unwrap()
        + &format!(
            "\n[[keys]]\nid = \"research-llm-spare\"\nagents = [\"research\"]\nprovider = \"llm\"\nhint = \"fk-...{tail}\"\nscopes = [\"model.request\"]\ncreated_at = 2026-11-01\n"
        );
    std::fs::write(env.inventory_path(), text).unwrap();
    let out = env.run(&["scan", repo, "--json"]);
    let v = conforms("scan", &out, "scan with an ambiguous hint");
    let ambiguous = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["status"] == "ambiguous")
        .unwrap_or_else(|| panic!("no ambiguous finding: {v:#}"));
    assert_eq!(ambiguous["candidates"].as_array().unwrap().len(), 2);
}

#[test]
fn discover_and_online_lint_outputs_match_their_schemas() {
    let f = crate::discover::Fleet::start();
    let out = f.run(&["inventory", "discover", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = conforms("inventory-discover", &out, "discover");
    for list in ["shadow", "gone", "drift"] {
        assert!(
            !v[list].as_array().unwrap().is_empty(),
            "{list} not exercised"
        );
    }
    let lint = f.run(&["inventory", "lint", "--online", "--json"]);
    conforms("inventory-lint", &lint, "lint --online");

    // A provider that cannot be listed.
    f.anthropic.revoke_admin_keys();
    let out = f.run(&["inventory", "discover", "--provider", "anthropic", "--json"]);
    let v = conforms(
        "inventory-discover",
        &out,
        "discover of an unlistable provider",
    );
    assert_eq!(v["providers"][0]["status"], "failed");
    let lint = f.run(&["inventory", "lint", "--online", "--json"]);
    let v = conforms(
        "inventory-lint",
        &lint,
        "lint --online, one provider unlistable",
    );
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["code"] == "listing-unavailable" && x["provider"] == "anthropic"),
        "{v:#}"
    );
}

/// A hint that matches two keys at the provider: the inventory key is unmatched (never
/// guessed), and `lint --online` says ambiguous-at-provider.
#[test]
fn discover_output_with_an_ambiguous_hint_matches_its_schema() {
    const ADMIN: &str = "sk-admin-FAKEschemaAdmin7Q2x9LmZ4bV8nR1tY6wK3";
    let sim = keyfire::sim::OpenAiSim::start().unwrap();
    sim.add_admin_key(ADMIN);
    let ids = [
        sim.add_user_key(
            "proj_keyfire",
            "one",
            "sk-proj-FAKEschemaOne3Fg6Hj9Kl2Mn5Pq8Rs1Tzzzz",
        ),
        sim.add_user_key(
            "proj_keyfire",
            "two",
            "sk-proj-FAKEschemaTwo6Hj9Kl2Mn5Pq8Rs1T3zzzz",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.toml");
    std::fs::write(
        &inv,
        format!(
            "schema = 1\n[[providers]]\nid = \"openai\"\nkind = \"openai\"\nadmin_credential = \"env:KF_SCHEMA_OPENAI\"\nbase_url = \"{}\"\nsettings = {{ project_id = \"proj_keyfire\" }}\n\n[[keys]]\nid = \"bot-openai\"\nagents = []\nprovider = \"openai\"\nhint = \"sk-proj-FA...zzzz\"\n",
            sim.base_url()
        ),
    )
    .unwrap();
    crate::common::hermetic_signing_key();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_keyfire"))
            .args(args)
            .env("KF_SCHEMA_OPENAI", ADMIN)
            .env("KEYFIRE_INVENTORY", &inv)
            .env("KEYFIRE_DATA_DIR", dir.path().join("data"))
            .env_remove("KEYFIRE_CONFIG")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["inventory", "discover", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = conforms(
        "inventory-discover",
        &out,
        "discover with an ambiguous hint",
    );
    let mut candidates: Vec<&str> = v["unmatched"][0]["candidates"]
        .as_array()
        .unwrap_or_else(|| panic!("no unmatched key: {v:#}"))
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    candidates.sort();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(candidates, want);
    let lint = conforms(
        "inventory-lint",
        &run(&["inventory", "lint", "--online", "--json"]),
        "lint --online with an ambiguous hint",
    );
    assert!(
        lint["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "ambiguous-at-provider"),
        "{lint:#}"
    );
}

#[test]
fn record_verify_and_records_check_outputs_match_their_schemas() {
    let env = TestEnv::new();
    let store = crate::shared_records::Store::file(&env);
    let a = crate::shared_records::Machine::new(&env, "a");
    a.setup(&store);
    let out = a.run(&["incident", "start", "support-llm", "--dry-run", "--no-tui"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let id = a.ids().pop().unwrap();

    let good = a.run(&["record", "verify", &id, "--json"]);
    assert_eq!(good.status.code(), Some(0), "{}", stderr(&good));
    let v = conforms("record-verify", &good, "record verify of a good record");
    assert!(v[0]["first_bad"].is_null() && v[0]["last_hash"].is_string());
    let all = a.run(&["record", "verify", "--json"]);
    conforms("record-verify", &all, "record verify of every record");

    // A tampered copy, verified by path.
    let scratch = tempfile::tempdir().unwrap();
    let record = a.record(&id);
    let copy = scratch.path().join("record.jsonl");
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&copy, text.replacen("\"seq\":2", "\"seq\":7", 1)).unwrap();
    std::fs::copy(record.with_file_name("head"), scratch.path().join("head")).unwrap();
    let bad = a.run(&["record", "verify", copy.to_str().unwrap(), "--json"]);
    assert_eq!(bad.status.code(), Some(1), "{}", stdout(&bad));
    let v = conforms("record-verify", &bad, "record verify of a tampered record");
    assert!(v[0]["first_bad"]["line"].is_u64(), "{v:#}");

    // --against: the same record, then a local edit.
    let same = a.run(&["record", "verify", &id, "--against", &store.url(), "--json"]);
    let v = conforms("record-verify", &same, "record verify --against");
    assert!(v["first_difference"].is_null(), "{v:#}");
    std::fs::write(&record, text.replacen("\"ts\":\"", "\"ts\":\"1", 3)).unwrap();
    let differs = a.run(&["record", "verify", &id, "--against", &store.url(), "--json"]);
    assert_eq!(differs.status.code(), Some(1));
    let v = conforms("record-verify", &differs, "record verify --against, edited");
    assert!(v["first_difference"].is_u64(), "{v:#}");
    // The edited record must not reach the other views' cross-check at the end.
    std::fs::write(&record, &text).unwrap();

    let check = a.run(&["records", "check", "--json"]);
    assert_eq!(
        check.status.code(),
        Some(1),
        "a plain folder enforces nothing"
    );
    let v = conforms("records-check", &check, "records check");
    assert_eq!(v["enforced"], false);
}

#[test]
fn auth_list_output_matches_its_schema() {
    let env = TestEnv::new();
    let name = format!("kf-schema-{}", std::process::id());
    let mut set = env.cmd();
    set.args(["auth", "set", &name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = set.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"sk-FAKEschemaFAKE0123\n")
        .unwrap();
    let stored = child.wait_with_output().unwrap();
    if stored.status.code() != Some(0) {
        // Only a keyring this machine cannot use is a skip; any other failure is a failure.
        assert!(
            stderr(&stored).contains("is not usable"),
            "auth set failed: {}",
            stderr(&stored)
        );
        crate::emulators::skip(
            "auth_list_output_matches_its_schema",
            &format!(
                "no usable keyring (run under `keyctl session -`): {}",
                stderr(&stored)
            ),
        );
        return;
    }
    let out = env.run(&["auth", "list", "--json"]);
    let _ = env.run(&["auth", "remove", &name]);
    let v = conforms("auth-list", &out, "auth list");
    assert!(
        v["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == name.as_str() && c["present"] == true),
        "{v:#}"
    );
}

/// The checks above can fail: real outputs, changed the way a regression would change them,
/// are rejected, each for the reason given.
#[test]
fn mutated_outputs_are_rejected() {
    let env = TestEnv::new();
    let list = conforms(
        "inventory-list",
        &env.run(&["inventory", "list", "--json"]),
        "inventory list",
    );
    let audit = conforms(
        "audit",
        &env.run(&["audit", "sales-crm", "--json"]),
        "audit",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "OPENAI_API_KEY={}\n",
            crate::scan::generated("sk-proj-", 60)
        ),
    )
    .unwrap();
    let scan = conforms(
        "scan",
        &env.run(&["scan", dir.path().to_str().unwrap(), "--json"]),
        "scan",
    );
    type Mutation = fn(&mut Value);
    let cases: [(&str, &Value, &str, Mutation); 10] = [
        ("inventory-list", &list, "an unknown status", |v| {
            v[0]["status"] = json!("fine")
        }),
        ("inventory-list", &list, "a missing field", |v| {
            v[0].as_object_mut().unwrap().remove("due_in_days");
        }),
        ("inventory-list", &list, "an extra field", |v| {
            v[0]["value"] = json!("sk-...")
        }),
        ("inventory-list", &list, "a date that is not one", |v| {
            v[0]["due_on"] = json!("next Tuesday")
        }),
        ("audit", &audit, "unknown spend given as zero text", |v| {
            v[0]["summary"]["spend_in_window_usd"] = json!("0")
        }),
        ("audit", &audit, "an unknown rule", |v| {
            v[0]["summary"]["rules"][0]["rule"] = json!("vibes")
        }),
        ("audit", &audit, "a window end that is not a time", |v| {
            v[0]["summary"]["window"]["end"] = json!("2026-13-45T99:00:00Z")
        }),
        ("scan", &scan, "a finding that carries a value", |v| {
            v["findings"][0]["value"] = json!("sk-proj-...")
        }),
        ("scan", &scan, "an unknown verdict", |v| {
            v["findings"][0]["status"] = json!("probably fine")
        }),
        ("scan", &scan, "a live verdict that names no key", |v| {
            v["findings"][0]["status"] = json!("current")
        }),
    ];
    for (name, original, what, mutate) in cases {
        let mut v = original.clone();
        mutate(&mut v);
        assert!(
            !violations(name, &v).is_empty(),
            "{name}: {what} was accepted"
        );
    }
}

/// The `enum` at `pointer` in `name`'s schema, as strings.
fn schema_enum(name: &str, pointer: &str) -> Vec<String> {
    let s = schema(name);
    let mut values: Vec<String> = s
        .pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{name}: no enum at {pointer}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    values.sort();
    values
}

/// The closed vocabularies the schemas list are the code's: a new lint code or provider kind
/// fails here until its schema says it.
#[test]
fn closed_vocabularies_in_the_schemas_are_the_codes() {
    let mut codes: Vec<String> = keyfire::inventory::lint::CODES
        .iter()
        .map(|(c, _)| c.to_string())
        .collect();
    codes.sort();
    assert_eq!(
        schema_enum(
            "inventory-lint",
            "/properties/findings/items/properties/code/enum"
        ),
        codes
    );

    use keyfire::inventory::ProviderKind;
    let mut spelled: Vec<String> = ProviderKind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect();
    spelled.sort();
    assert_eq!(
        schema_enum(
            "inventory-discover",
            "/properties/shadow/items/properties/kind/enum"
        ),
        spelled
    );
    // Rows and the provider entry serialize the Rust variant name (as the report does).
    let mut variants: Vec<String> = ProviderKind::ALL
        .iter()
        .map(|k| {
            serde_json::to_value(k)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    variants.sort();
    assert_eq!(
        schema_enum(
            "inventory-list",
            "/$defs/key_row/properties/provider_kind/enum"
        ),
        variants
    );
    assert_eq!(
        schema_enum("inventory-show", "/$defs/provider/properties/kind/enum"),
        variants
    );
    // The audit's rules are the report's.
    assert_eq!(
        schema_enum(
            "audit",
            "/items/properties/summary/properties/rules/items/properties/rule/enum"
        ),
        schema_enum(
            "report",
            "/properties/keys/items/properties/findings/items/properties/rule/enum"
        )
    );
}
