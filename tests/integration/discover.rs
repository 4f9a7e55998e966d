//! `keyfire inventory discover` and `inventory lint --online` on the built binary, against
//! the OpenAI and Anthropic simulators (planted shadow keys, a removed key, a disabled key)
//! and moto's IAM (extra users and keys): what is reported, the `--json` shape, `--write`
//! output that loads back, exit codes, no write ever received, no value in any output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use keyfire::sim::{AnthropicSim, OpenAiSim};
use serde_json::Value;

use crate::common::{stderr, stdout};
use crate::emulators::Moto;

const OPENAI_VAR: &str = "KF_DISCOVER_OPENAI";
const ANTHROPIC_VAR: &str = "KF_DISCOVER_ANTHROPIC";
const OPENAI_ADMIN: &str = "sk-admin-CANARYdiscAdmin7Q2x9LmZ4bV8nR1tY6wK3";
const ANTHROPIC_ADMIN: &str = "sk-ant-admin01-CANARYdiscAdmin5Hj8Kp2Lm9Qr4St7Uv1Wx";
const PROJECT: &str = "proj_keyfire";

/// Every key value planted at the providers: none may appear in anything keyfire writes.
const VALUES: &[&str] = &[
    "sk-proj-CANARYdiscKnown3Fg6Hj9Kl2Mn5Pq8Rs1T3BlbkFJaaaa",
    "sk-proj-CANARYdiscRemoved6Hj9Kl2Mn5Pq8Rs1T3BlbkFJbbbb",
    "sk-proj-CANARYdiscShadow9Kl2Mn5Pq8Rs1T3BlbkFJcccc",
    "sk-svcacct-CANARYdiscSvcShadow2Mn5Pq8Rs1T3BlbkFJdddd",
    "sk-proj-CANARYdiscNoAccess5Pq8Rs1T3BlbkFJeeee",
    "sk-ant-api03-CANARYdiscKnownAnt8Rs1T3BlbkFJffff",
    "sk-ant-api03-CANARYdiscInactive1T3BlbkFJgggg",
    "sk-ant-api03-CANARYdiscShadowAnt3BlbkFJhhhh",
    "sk-ant-api03-CANARYdiscArchived3BlbkFJiiii",
];

pub(crate) struct Fleet {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) openai: OpenAiSim,
    pub(crate) anthropic: AnthropicSim,
    /// Provider ids of the planted keys.
    pub(crate) ids: std::collections::HashMap<&'static str, String>,
}

fn tail(v: &str) -> &str {
    &v[v.len() - 4..]
}

impl Fleet {
    /// Both simulators with keys: some in the inventory, some planted behind its back.
    pub(crate) fn start() -> Self {
        let openai = OpenAiSim::start().unwrap();
        openai.add_admin_key(OPENAI_ADMIN);
        let anthropic = AnthropicSim::start().unwrap();
        anthropic.add_admin_key(ANTHROPIC_ADMIN);
        let mut ids = std::collections::HashMap::new();
        ids.insert("known", openai.add_user_key(PROJECT, "support", VALUES[0]));
        let removed = openai.add_user_key(PROJECT, "old-research", VALUES[1]);
        openai.remove_key(&removed);
        ids.insert("removed", removed);
        let shadow = openai.add_user_key(PROJECT, "laptop-test", VALUES[2]);
        openai.set_last_used(&shadow, chrono::Utc::now() - chrono::Duration::days(2));
        ids.insert("shadow", shadow);
        ids.insert(
            "svc_shadow",
            openai.add_service_account(PROJECT, "ci-bot", VALUES[3]).1,
        );
        let no_access = openai.add_user_key(PROJECT, "left-the-team", VALUES[4]);
        openai.set_owner_access(&no_access, false);
        ids.insert("no_access", no_access);
        ids.insert("ant_known", anthropic.add_key("support", VALUES[5]));
        let inactive = anthropic.add_key("paused", VALUES[6]);
        anthropic.set_status(&inactive, "inactive");
        ids.insert("ant_inactive", inactive);
        ids.insert("ant_shadow", anthropic.add_key("notebook", VALUES[7]));
        let archived = anthropic.add_key("retired", VALUES[8]);
        anthropic.set_status(&archived, "archived");
        ids.insert("ant_archived", archived);
        let f = Self {
            dir: tempfile::tempdir().unwrap(),
            openai,
            anthropic,
            ids,
        };
        std::fs::write(f.inventory(), f.inventory_text(true)).unwrap();
        f
    }

    pub(crate) fn inventory(&self) -> PathBuf {
        self.dir.path().join("inventory.toml")
    }

    /// The inventory: the known keys, the removed one, the disabled ones; with `drifted`
    /// false, only the keys that match the providers exactly (and no shadow at anthropic).
    pub(crate) fn inventory_text(&self, drifted: bool) -> String {
        let mut text = format!(
            r#"schema = 1

[[providers]]
id = "openai-prod"
kind = "openai"
admin_credential = "env:{OPENAI_VAR}"
base_url = "{openai}"
settings = {{ project_id = "{PROJECT}" }}

[[providers]]
id = "anthropic"
kind = "anthropic"
admin_credential = "env:{ANTHROPIC_VAR}"
base_url = "{anthropic}"

[[providers]]
id = "crm"
kind = "manual"

[[agents]]
id = "support-bot"
owner = "support@example.com"

[[keys]]
id = "support-openai"
agents = ["support-bot"]
provider = "openai-prod"
provider_key_id = "{known}"
hint = "sk-proj-CA...{known_tail}"
scopes = ["model.request"]
created_at = 2026-10-01

[[keys]]
id = "support-anthropic"
agents = ["support-bot"]
provider = "anthropic"
hint = "sk-ant-api03-CAN...{ant_tail}"
scopes = ["messages"]
created_at = 2026-10-01
"#,
            openai = self.openai.base_url(),
            anthropic = self.anthropic.base_url(),
            known = self.ids["known"],
            known_tail = tail(VALUES[0]),
            ant_tail = tail(VALUES[5]),
        );
        if drifted {
            text.push_str(&format!(
                r#"
[[keys]]
id = "research-openai"
agents = ["support-bot"]
provider = "openai-prod"
provider_key_id = "{removed}"
scopes = ["model.request"]

[[keys]]
id = "offboarded-openai"
agents = ["support-bot"]
provider = "openai-prod"
provider_key_id = "{no_access}"
scopes = ["model.request"]

[[keys]]
id = "paused-anthropic"
agents = ["support-bot"]
provider = "anthropic"
provider_key_id = "{inactive}"
scopes = ["messages"]
"#,
                removed = self.ids["removed"],
                no_access = self.ids["no_access"],
                inactive = self.ids["ant_inactive"],
            ));
        }
        text
    }

    pub(crate) fn cmd(&self) -> Command {
        crate::common::hermetic_signing_key();
        let mut c = Command::new(env!("CARGO_BIN_EXE_keyfire"));
        c.env(OPENAI_VAR, OPENAI_ADMIN)
            .env(ANTHROPIC_VAR, ANTHROPIC_ADMIN)
            .env("KEYFIRE_DATA_DIR", self.dir.path().join("data"))
            .env("KEYFIRE_INVENTORY", self.inventory())
            .env_remove("KEYFIRE_CONFIG")
            .stdin(std::process::Stdio::null());
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Every request both simulators received was a read.
    fn assert_only_reads(&self) {
        let all: Vec<_> = self
            .openai
            .requests()
            .into_iter()
            .chain(self.anthropic.requests())
            .collect();
        assert!(!all.is_empty(), "nothing was listed");
        let writes: Vec<String> = all
            .iter()
            .filter(|r| r.is_write())
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(writes.is_empty(), "discovery sent writes: {writes:?}");
    }
}

/// No planted value, admin key or long part of one in any output or file.
fn assert_no_value(outputs: &[&Output], files: &[&Path]) {
    let mut texts: Vec<String> = outputs
        .iter()
        .flat_map(|o| [stdout(o), stderr(o)])
        .collect();
    for f in files {
        texts.push(std::fs::read_to_string(f).unwrap_or_default());
    }
    for text in &texts {
        for v in VALUES.iter().chain(&[OPENAI_ADMIN, ANTHROPIC_ADMIN]) {
            assert!(!text.contains(v), "a key value leaked:\n{text}");
        }
        assert!(
            !text.contains("CANARYdisc"),
            "part of a key value leaked:\n{text}"
        );
    }
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(out), stderr(out)))
}

#[test]
fn discover_reports_shadow_gone_and_drift_at_openai_and_anthropic_with_reads_only() {
    let f = Fleet::start();
    let out = f.run(&["inventory", "discover"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    for id in ["shadow", "svc_shadow", "ant_shadow"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("SHADOW") && l.contains(&f.ids[id])),
            "{id} not reported as a shadow key:\n{text}"
        );
    }
    assert!(text.contains("owner oncall@example.com"), "{text}");
    assert!(text.contains("owner service account ci-bot"), "{text}");
    assert!(text.contains("last used "), "{text}");
    assert!(
        !text.contains(&f.ids["ant_archived"]),
        "an archived key is no shadow key:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("GONE") && l.contains("research-openai")),
        "{text}"
    );
    for key in ["offboarded-openai", "paused-anthropic"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("DRIFT") && l.contains(key) && l.contains("disabled")),
            "{key}: {text}"
        );
    }
    assert!(
        text.contains("crm") && text.contains("skipped"),
        "the manual provider is named as skipped:\n{text}"
    );
    f.assert_only_reads();
    // Every OpenAI list call asked for keys whose owner lost access too.
    for r in f.openai.requests() {
        assert_eq!(r.method, "GET");
        if r.path.ends_with("/api_keys") {
            assert_eq!(r.query_values("owner_project_access"), ["any"]);
        }
    }
    assert_no_value(&[&out], &[]);
}

#[test]
fn discover_json_has_a_stable_shape() {
    let f = Fleet::start();
    let out = f.run(&["inventory", "discover", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    let providers = v["providers"].as_array().unwrap();
    let by_id = |id: &str| providers.iter().find(|p| p["id"] == id).unwrap().clone();
    assert_eq!(by_id("openai-prod")["status"], "listed");
    assert_eq!(by_id("openai-prod")["kind"], "openai");
    assert_eq!(by_id("openai-prod")["scope"], format!("project {PROJECT}"));
    assert_eq!(by_id("openai-prod")["keys"], 4);
    assert_eq!(by_id("anthropic")["status"], "listed");
    assert_eq!(by_id("crm")["status"], "skipped");

    let shadow = v["shadow"].as_array().unwrap();
    assert_eq!(shadow.len(), 3, "{shadow:#?}");
    let s = shadow
        .iter()
        .find(|s| s["id"] == f.ids["shadow"].as_str())
        .unwrap();
    assert_eq!(s["provider"], "openai-prod");
    assert_eq!(s["kind"], "openai");
    assert_eq!(s["name"], "laptop-test");
    assert_eq!(s["state"], "active");
    assert_eq!(s["owner"], "oncall@example.com");
    assert_eq!(s["within"], format!("project {PROJECT}"));
    assert!(s["hint"].as_str().unwrap().ends_with(tail(VALUES[2])));
    assert!(s["created_at"].is_string() && s["last_used_at"].is_string());
    assert!(s.get("scopes").is_none(), "OpenAI reports no scopes");

    let gone = v["gone"].as_array().unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0]["key"], "research-openai");
    assert_eq!(gone[0]["provider_key_id"], f.ids["removed"].as_str());
    let drift = v["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 2, "{drift:#?}");
    for d in drift {
        assert_eq!(d["field"], "status");
        assert_eq!(d["at_provider"], "disabled");
    }
    assert_eq!(v["unmatched"].as_array().unwrap().len(), 0);
    assert_eq!(
        v["summary"],
        serde_json::json!({ "shadow": 3, "gone": 1, "drift": 2, "unmatched": 0, "failed": 0, "clean": false })
    );
    assert_no_value(&[&out], &[]);
}

#[test]
fn discover_write_emits_entries_that_load_back_and_lint_names_what_is_missing() {
    let f = Fleet::start();
    let file = f.dir.path().join("shadow.toml");
    let out = f.run(&["inventory", "discover", "--write", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("wrote 3 shadow keys"),
        "{}",
        stdout(&out)
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("fill in `agents`"), "{written}");
    assert_eq!(written.matches("[[keys]]").count(), 3, "{written}");
    assert_eq!(written.matches("agents = []").count(), 3, "{written}");
    for id in ["shadow", "svc_shadow", "ant_shadow"] {
        assert!(
            written.contains(&format!("provider_key_id = \"{}\"", f.ids[id])),
            "{written}"
        );
    }
    assert!(written.contains(&format!("hint = \"sk-proj-CA...{}\"", tail(VALUES[2]))));
    assert_no_value(&[&out], &[&file]);

    // The file loads beside the inventory: lint reports the missing agents and stores (exit
    // 1), not an invalid file (exit 2).
    let inv = f.inventory();
    let both = [
        "--inventory",
        inv.to_str().unwrap(),
        "--inventory",
        file.to_str().unwrap(),
    ];
    let lint = f
        .cmd()
        .env_remove("KEYFIRE_INVENTORY")
        .args(["inventory", "lint", "--json"])
        .args(both)
        .output()
        .unwrap();
    assert_eq!(lint.status.code(), Some(1), "{}", stderr(&lint));
    let findings = json(&lint)["findings"].as_array().unwrap().clone();
    let shadow_ids: Vec<String> = ["shadow", "svc_shadow", "ant_shadow"]
        .iter()
        .map(|id| f.ids[*id].clone())
        .collect();
    for code in ["no-agent", "no-store"] {
        let n = findings
            .iter()
            .filter(|x| {
                x["code"] == code
                    && shadow_ids
                        .iter()
                        .any(|id| x["key"].as_str().unwrap().ends_with(id.as_str()))
            })
            .count();
        assert_eq!(n, 3, "{code}: {findings:#?}");
    }
    // With both files, the shadow keys are no longer shadows.
    let again = f
        .cmd()
        .env_remove("KEYFIRE_INVENTORY")
        .args(["inventory", "discover", "--json"])
        .args(both)
        .output()
        .unwrap();
    let v = json(&again);
    assert_eq!(v["summary"]["shadow"], 0, "{v:#}");
    assert_eq!(v["summary"]["gone"], 1);
    // A second --write never replaces a file: exit 2 before any call.
    let before = f.openai.requests().len();
    let refused = f.run(&["inventory", "discover", "--write", file.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("exists"), "{}", stderr(&refused));
    assert_eq!(f.openai.requests().len(), before, "nothing was listed");
    f.assert_only_reads();
}

#[test]
fn discover_exit_codes_clean_drifted_bad_input_and_unreadable() {
    let f = Fleet::start();
    // Only the exactly matching keys, and only OpenAI asked... which still holds shadows.
    std::fs::write(f.inventory(), f.inventory_text(false)).unwrap();
    let out = f.run(&["inventory", "discover", "--provider", "openai-prod"]);
    assert_eq!(out.status.code(), Some(1), "shadow keys: {}", stdout(&out));
    assert!(!stdout(&out).contains("anthropic"), "{}", stdout(&out));

    // A fleet where the provider holds exactly the inventory's keys: exit 0.
    let clean = OpenAiSim::start().unwrap();
    clean.add_admin_key(OPENAI_ADMIN);
    let id = clean.add_user_key(PROJECT, "support", VALUES[0]);
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("clean.toml");
    std::fs::write(
        &inv,
        format!(
            r#"schema = 1
[[providers]]
id = "openai-prod"
kind = "openai"
admin_credential = "env:{OPENAI_VAR}"
base_url = "{}"
settings = {{ project_id = "{PROJECT}" }}

[[keys]]
id = "support-openai"
agents = []
provider = "openai-prod"
provider_key_id = "{id}"
"#,
            clean.base_url()
        ),
    )
    .unwrap();
    let ok = f
        .cmd()
        .env("KEYFIRE_INVENTORY", &inv)
        .args(["inventory", "discover"])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&ok),
        stderr(&ok)
    );
    assert!(stdout(&ok).contains("0 shadow keys, 0 gone, 0 drift"));

    // Bad input: exit 2, nothing sent.
    let before = f.openai.requests().len() + f.anthropic.requests().len();
    for (args, says) in [
        (&["--provider", "nope"][..], "unknown provider `nope`"),
        (&["--provider", "crm"][..], "cannot list its keys"),
    ] {
        let out = f
            .cmd()
            .args(["inventory", "discover"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    assert_eq!(
        f.openai.requests().len() + f.anthropic.requests().len(),
        before
    );

    // A provider that cannot be listed is never clean: exit 1, and it says so.
    f.anthropic.revoke_admin_keys();
    let out = f.run(&["inventory", "discover", "--provider", "anthropic"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("NOT LISTED"), "{}", stdout(&out));
    let out = f.run(&["inventory", "discover", "--provider", "anthropic", "--json"]);
    let v = json(&out);
    assert_eq!(v["providers"][0]["status"], "failed");
    assert_eq!(v["summary"]["failed"], 1);
    assert_eq!(v["summary"]["clean"], false);
    assert_no_value(&[&out], &[]);
    f.assert_only_reads();
}

#[test]
fn lint_online_adds_shadow_and_provider_findings_and_offline_lint_sends_nothing() {
    let f = Fleet::start();
    let offline = f.run(&["inventory", "lint", "--json"]);
    assert!(f.openai.requests().is_empty() && f.anthropic.requests().is_empty());
    let offline = json(&offline);
    assert!(
        offline["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["code"] != "shadow-key")
    );

    let out = f.run(&["inventory", "lint", "--online", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let findings = json(&out)["findings"].as_array().unwrap().clone();
    let with = |code: &str| -> Vec<String> {
        findings
            .iter()
            .filter(|x| x["code"] == code)
            .map(|x| x["key"].as_str().unwrap().to_string())
            .collect()
    };
    let mut shadow = with("shadow-key");
    shadow.sort();
    let mut expected: Vec<String> = ["shadow", "svc_shadow", "ant_shadow"]
        .iter()
        .map(|k| f.ids[*k].clone())
        .collect();
    expected.sort();
    assert_eq!(shadow, expected);
    assert_eq!(with("unknown-at-provider"), ["research-openai"]);
    let mut drift = with("drift-at-provider");
    drift.sort();
    assert_eq!(drift, ["offboarded-openai", "paused-anthropic"]);

    let text = f.run(&["inventory", "lint", "--online"]);
    assert!(
        stdout(&text).lines().any(|l| l.starts_with("shadow-key")),
        "{}",
        stdout(&text)
    );
    assert_no_value(&[&out, &text], &[]);
    f.assert_only_reads();
}

#[test]
fn discover_reads_every_project_and_every_page_concurrently_across_projects() {
    let sim = OpenAiSim::start().unwrap();
    sim.add_admin_key(OPENAI_ADMIN);
    // 250 keys in the inventory's project (three pages of 100), one shadow key in each of
    // three other projects.
    let mut ids = Vec::new();
    for i in 0..250 {
        ids.push(sim.add_user_key(
            PROJECT,
            &format!("k{i}"),
            &format!("sk-proj-CANARYdiscMany{i:05}abcdefghijklmnop{i:04}"),
        ));
    }
    for p in ["proj_a", "proj_b", "proj_c"] {
        sim.add_project(p);
        sim.add_user_key(
            p,
            "stray",
            &format!("sk-proj-CANARYdiscStray{p}abcdefghijklmnopqrst"),
        );
    }
    sim.observer()
        .set_latency(std::time::Duration::from_millis(30));
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.toml");
    let mut text = format!(
        r#"schema = 1
[[providers]]
id = "openai-prod"
kind = "openai"
admin_credential = "env:{OPENAI_VAR}"
base_url = "{}"
settings = {{ project_id = "{PROJECT}", discover_projects = "all" }}
"#,
        sim.base_url()
    );
    for (i, id) in ids.iter().enumerate() {
        text.push_str(&format!(
            "\n[[keys]]\nid = \"k{i}\"\nagents = []\nprovider = \"openai-prod\"\nprovider_key_id = \"{id}\"\n"
        ));
    }
    std::fs::write(&inv, text).unwrap();
    let file = dir.path().join("shadow.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_keyfire"))
        .env(OPENAI_VAR, OPENAI_ADMIN)
        .env("KEYFIRE_INVENTORY", &inv)
        .env("KEYFIRE_DATA_DIR", dir.path().join("data"))
        .env_remove("KEYFIRE_CONFIG")
        .args(["inventory", "discover", "--json", "--write"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["providers"][0]["keys"], 253);
    assert_eq!(v["summary"]["shadow"], 3);
    assert_eq!(v["summary"]["gone"], 0);
    let within: Vec<&str> = v["shadow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["within"].as_str().unwrap())
        .collect();
    for p in ["proj_a", "proj_b", "proj_c"] {
        assert!(
            within.contains(&format!("project {p}").as_str()),
            "{within:?}"
        );
    }
    let requests = sim.requests();
    let project_lists = requests
        .iter()
        .filter(|r| r.path == "/v1/organization/projects")
        .count();
    assert_eq!(project_lists, 1);
    let main_pages: Vec<Vec<String>> = requests
        .iter()
        .filter(|r| r.path == format!("/v1/organization/projects/{PROJECT}/api_keys"))
        .map(|r| r.query_values("after"))
        .collect();
    assert_eq!(main_pages.len(), 3, "250 keys are three pages of 100");
    assert_eq!(
        main_pages[1],
        [ids[99].clone()],
        "page 2 starts after the 100th key"
    );
    assert_eq!(main_pages[2], [ids[199].clone()]);
    assert!(
        sim.observer().max_in_flight() > 1,
        "projects are listed concurrently"
    );
    assert!(requests.iter().all(|r| !r.is_write()));
    // Keys of other projects are written with a note: they need a provider of their own.
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        written
            .matches("# note: this key is in project proj_")
            .count(),
        3
    );
    assert_no_value(&[&out], &[&file]);
}

// ---- AWS IAM (moto) --------------------------------------------------------------------

const AWS_VAR: &str = "KF_DISCOVER_AWS";

#[test]
fn discover_lists_iam_users_and_their_keys_and_moto_receives_only_reads() {
    use aws_sdk_iam::types::StatusType;
    use keyfire::aws::{KeyPair, Target};
    use keyfire::secret::Secret;

    let test = "discover::discover_lists_iam_users_and_their_keys_and_moto_receives_only_reads";
    let Some(moto) = Moto::start(test) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = Target {
        region: Some("us-east-1".into()),
        profile: None,
        endpoint: Some(moto.url()),
    };
    let setup = KeyPair {
        access_key_id: "AKIASETUP".into(),
        secret_access_key: Secret::new("setup"),
        session_token: None,
    };
    // An admin, the agent's user (one key in the inventory, one inactive, one deleted), a
    // user under /contractors/ with a shadow key, and another user with a shadow key.
    let (admin, known, inactive, deleted, contractor, other) = rt.block_on(async {
        let cfg = target.config(Some(&setup)).await;
        let iam = aws_sdk_iam::Client::new(&cfg);
        let user = |name: &'static str, path: &'static str| {
            let iam = iam.clone();
            async move {
                iam.create_user()
                    .user_name(name)
                    .path(path)
                    .send()
                    .await
                    .unwrap();
            }
        };
        let key = |name: &'static str| {
            let iam = iam.clone();
            async move {
                let k = iam.create_access_key().user_name(name).send().await.unwrap();
                let k = k.access_key().unwrap();
                (
                    k.access_key_id().to_string(),
                    k.secret_access_key().to_string(),
                )
            }
        };
        user("keyfire-admin", "/").await;
        iam.put_user_policy()
            .user_name("keyfire-admin")
            .policy_name("everything")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
            .send()
            .await
            .unwrap();
        let admin = key("keyfire-admin").await;
        user("agent-support", "/agents/").await;
        let known = key("agent-support").await.0;
        let inactive = key("agent-support").await.0;
        iam.update_access_key()
            .user_name("agent-support")
            .access_key_id(&inactive)
            .status(StatusType::Inactive)
            .send()
            .await
            .unwrap();
        user("agent-old", "/agents/").await;
        let deleted = key("agent-old").await.0;
        iam.delete_access_key()
            .user_name("agent-old")
            .access_key_id(&deleted)
            .send()
            .await
            .unwrap();
        user("contractor", "/contractors/").await;
        let contractor = key("contractor").await.0;
        user("someone", "/").await;
        let other = key("someone").await.0;
        (admin, known, inactive, deleted, contractor, other)
    });
    moto.enforce_signatures();
    let admin_json = format!(
        r#"{{"AccessKeyId":"{}","SecretAccessKey":"{}"}}"#,
        admin.0, admin.1
    );
    let dir = tempfile::tempdir().unwrap();
    let write_inv = |settings: &str| {
        let inv = dir.path().join("inventory.toml");
        std::fs::write(
            &inv,
            format!(
                r#"schema = 1
[[providers]]
id = "aws"
kind = "aws-iam"
admin_credential = "env:{AWS_VAR}"
base_url = "{}"
settings = {{ region = "us-east-1"{settings} }}

[[keys]]
id = "support-aws"
agents = []
provider = "aws"
provider_key_id = "{known}"

[[keys]]
id = "support-aws-spare"
agents = []
provider = "aws"
provider_key_id = "{inactive}"

[[keys]]
id = "old-aws"
agents = []
provider = "aws"
provider_key_id = "{deleted}"

[[keys]]
id = "admin-aws"
agents = []
provider = "aws"
provider_key_id = "{}"
"#,
                moto.url(),
                admin.0
            ),
        )
        .unwrap();
        inv
    };
    let run = |inv: &Path| {
        Command::new(env!("CARGO_BIN_EXE_keyfire"))
            .env(AWS_VAR, &admin_json)
            .env("KEYFIRE_INVENTORY", inv)
            .env("KEYFIRE_DATA_DIR", dir.path().join("data"))
            .env_remove("KEYFIRE_CONFIG")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["inventory", "discover", "--json"])
            .output()
            .unwrap()
    };

    moto.start_recording();
    // Every user.
    let inv = write_inv("");
    let out = run(&inv);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["providers"][0]["status"], "listed", "{v:#}");
    let mut shadow: Vec<&str> = v["shadow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    shadow.sort();
    let mut expected = vec![contractor.as_str(), other.as_str()];
    expected.sort();
    assert_eq!(shadow, expected);
    let c = v["shadow"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == contractor.as_str())
        .unwrap();
    assert_eq!(c["owner"], "IAM user contractor");
    assert!(c["created_at"].is_string());
    assert_eq!(v["gone"][0]["key"], "old-aws");
    assert_eq!(v["drift"][0]["key"], "support-aws-spare");
    assert_eq!(v["drift"][0]["at_provider"], "disabled");
    assert_eq!(v["summary"]["gone"], 1);

    // Only the users under a path.
    let inv = write_inv(r#", path_prefix = "/contractors/""#);
    let v = json(&run(&inv));
    assert_eq!(
        v["providers"][0]["scope"],
        "1 IAM users under path /contractors/"
    );
    assert_eq!(v["shadow"].as_array().unwrap().len(), 1);
    assert_eq!(v["shadow"][0]["id"], contractor.as_str());

    // One user.
    let inv = write_inv(r#", user = "agent-support""#);
    let v = json(&run(&inv));
    assert_eq!(v["providers"][0]["scope"], "IAM user agent-support");
    assert_eq!(v["providers"][0]["keys"], 2);
    assert_eq!(v["shadow"].as_array().unwrap().len(), 0);

    let actions = moto.recorded_actions();
    assert!(actions.contains(&"ListUsers".to_string()), "{actions:?}");
    assert!(actions.contains(&"ListAccessKeys".to_string()));
    assert!(actions.contains(&"GetAccessKeyLastUsed".to_string()));
    let writes: Vec<&String> = actions
        .iter()
        .filter(|a| !(a.starts_with("List") || a.starts_with("Get")))
        .collect();
    assert!(writes.is_empty(), "moto received writes: {writes:?}");
    let out = run(&inv);
    for text in [stdout(&out), stderr(&out)] {
        assert!(!text.contains(&admin.1), "the admin secret leaked");
    }
}

// ---- paging under failures (in process) ------------------------------------------------

mod failures {
    use keyfire::http::{Http, RetryPolicy};
    use keyfire::inventory::{Origin, ProviderDef, ProviderKind};
    use keyfire::plan::SecretBag;
    use keyfire::provider::{AnyProvider, ProviderError};
    use keyfire::secret::{Redactor, Secret};
    use keyfire::sim::{Fault, OpenAiSim};

    use super::{OPENAI_ADMIN, PROJECT};

    fn setup(keys: usize) -> (OpenAiSim, AnyProvider, Http, SecretBag) {
        let sim = OpenAiSim::start().unwrap();
        sim.add_admin_key(OPENAI_ADMIN);
        for i in 0..keys {
            sim.add_user_key(
                PROJECT,
                &format!("k{i}"),
                &format!("sk-proj-faults{i:05}abcdefghijklmnopqrstuv"),
            );
        }
        let p = AnyProvider::from_def(&ProviderDef {
            id: "oa".into(),
            kind: ProviderKind::OpenAi,
            admin_credential: None,
            base_url: Some(sim.base_url()),
            settings: serde_json::json!({ "project_id": PROJECT })
                .as_object()
                .cloned()
                .unwrap(),
            origin: Origin { file: 0, line: 1 },
        });
        let http = keyfire::discover::client(Redactor::new())
            .unwrap()
            .with_retry(RetryPolicy {
                max_attempts: 3,
                base_delay: std::time::Duration::from_millis(10),
                max_delay: std::time::Duration::from_secs(2),
            });
        let bag = SecretBag {
            admin: Some(Secret::new(OPENAI_ADMIN)),
            ..SecretBag::default()
        };
        (sim, p, http, bag)
    }

    fn list(
        p: &AnyProvider,
        http: &Http,
        bag: &SecretBag,
    ) -> Result<keyfire::provider::KeyListing, ProviderError> {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let plan = p.list_plan().unwrap();
        rt.block_on(p.list_keys(&plan, http, bag))
    }

    const KEYS: &str = "/v1/organization/projects/proj_keyfire/api_keys";

    #[test]
    fn a_rate_limited_page_is_read_again_after_retry_after_and_the_list_completes() {
        let (sim, p, http, bag) = setup(150);
        sim.inject(Fault::rate_limit("GET", KEYS, 1, 1).after(1));
        let listing = list(&p, &http, &bag).unwrap();
        assert_eq!(listing.keys.len(), 150);
        assert_eq!(listing.calls, 2);
        assert_eq!(http.waits(), [std::time::Duration::from_secs(1)]);
        // The retried page asked for the same cursor.
        let afters: Vec<Vec<String>> = sim
            .requests()
            .iter()
            .map(|r| r.query_values("after"))
            .collect();
        assert_eq!(afters.len(), 3);
        assert_eq!(afters[1], afters[2]);
    }

    #[test]
    fn unreadable_pages_fail_the_listing_instead_of_shortening_it() {
        for (what, fault) in [
            (
                "a server error that outlasts the retries",
                Fault::fail("GET", KEYS, 500, 10).after(1),
            ),
            (
                "a body that is not JSON",
                Fault::malformed("GET", KEYS, 1).after(1),
            ),
            (
                "has_more without a cursor",
                Fault::raw(
                    "GET",
                    KEYS,
                    200,
                    r#"{"object":"list","data":[],"first_id":null,"last_id":null,"has_more":true}"#,
                    1,
                )
                .after(1),
            ),
            ("a forbidden admin key", Fault::fail("GET", KEYS, 403, 1)),
        ] {
            let (sim, p, http, bag) = setup(150);
            sim.inject(fault);
            let err = list(&p, &http, &bag).expect_err(what);
            assert!(!err.to_string().contains(OPENAI_ADMIN), "{what}: {err}");
            assert!(
                sim.requests().iter().all(|r| !r.is_write()),
                "{what}: only reads"
            );
        }
    }
}
