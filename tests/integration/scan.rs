//! `keyfire scan` on the built binary: a repository built here (planted keys in a committed
//! `.env` later removed, a config file, a side branch, an ignored file), scanner report
//! fixtures, `--with-stores`, `--start-incident`, and a grep of everything written for the
//! planted values.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{OTHER_PATH, TestEnv, files_under, stderr, stdout};

const FIRST_DATE: &str = "2026-03-01T10:00:00Z";
const SECOND_DATE: &str = "2026-03-05T10:00:00Z";
const SIDE_DATE: &str = "2026-03-07T10:00:00Z";

/// A fake value in a published format, generated per run: `prefix` + `len` characters drawn
/// from `[A-Za-z0-9]`, always spelling FAKE first so nobody mistakes it for a real key.
pub(crate) fn generated(prefix: &str, len: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(prefix.as_bytes());
    let mut x = h.finish() | 1;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = format!("{prefix}FAKE");
    while s.len() < prefix.len() + len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push(char::from(ALPHABET[(x % ALPHABET.len() as u64) as usize]));
    }
    s
}

pub(crate) struct Planted {
    pub(crate) repo: PathBuf,
    _dir: tempfile::TempDir,
    /// Unmanaged values: OpenAI project key in config.py, GitHub token on a side branch,
    /// one in an ignored file.
    openai: String,
    github: String,
    ignored: String,
    first_commit: String,
    second_commit: String,
}

impl Planted {
    fn values<'a>(&'a self, env: &'a TestEnv) -> Vec<&'a str> {
        vec![
            &env.canaries.old_key,
            &env.canaries.other_key,
            &self.openai,
            &self.github,
            &self.ignored,
        ]
    }
}

fn git(repo: &Path, date: &str, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=Dev Example",
            "-c",
            "user.email=dev@example.com",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// The repository: commit 1 adds `.env` (support-llm's value) and `config.py` (an unmanaged
/// OpenAI key); commit 2 removes `.env`; a side branch adds a Dockerfile with a GitHub token;
/// the working tree adds `settings.toml` (research-llm's value) and an ignored `local.log`.
pub(crate) fn planted(env: &TestEnv) -> Planted {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("fleet");
    std::fs::create_dir(&repo).unwrap();
    let openai = generated("sk-proj-", 60);
    let github = generated("ghp_", 36);
    let ignored = generated("sk-proj-", 48);
    git(&repo, FIRST_DATE, &["init", "-q"]);
    std::fs::write(
        repo.join(".env"),
        format!("LLM_API_KEY={}\nMODEL=gpt-test\n", env.canaries.old_key),
    )
    .unwrap();
    std::fs::write(
        repo.join("config.py"),
        format!("import os\n\nOPENAI_KEY = \"{openai}\"\n"),
    )
    .unwrap();
    git(&repo, FIRST_DATE, &["add", "-A"]);
    git(&repo, FIRST_DATE, &["commit", "-q", "-m", "add the agent"]);
    let first_commit = git(&repo, FIRST_DATE, &["rev-parse", "HEAD"]);
    git(&repo, SECOND_DATE, &["rm", "-q", ".env"]);
    std::fs::write(repo.join(".gitignore"), "local.log\n").unwrap();
    git(&repo, SECOND_DATE, &["add", "-A"]);
    git(
        &repo,
        SECOND_DATE,
        &["commit", "-q", "-m", "remove .env, ignore logs"],
    );
    let second_commit = git(&repo, SECOND_DATE, &["rev-parse", "HEAD"]);
    git(&repo, SIDE_DATE, &["checkout", "-q", "-b", "side"]);
    std::fs::write(
        repo.join("Dockerfile"),
        format!("FROM scratch\nENV GH_TOKEN={github}\n"),
    )
    .unwrap();
    git(&repo, SIDE_DATE, &["add", "Dockerfile"]);
    git(&repo, SIDE_DATE, &["commit", "-q", "-m", "image"]);
    git(&repo, SIDE_DATE, &["checkout", "-q", "main"]);
    std::fs::write(
        repo.join("settings.toml"),
        format!("[llm]\napi_key = \"{}\"\n", env.canaries.other_key),
    )
    .unwrap();
    std::fs::write(repo.join("local.log"), format!("debug key {ignored}\n")).unwrap();
    Planted {
        repo,
        _dir: dir,
        openai,
        github,
        ignored,
        first_commit,
        second_commit,
    }
}

/// The test fleet with support-llm's fingerprint in the inventory.
pub(crate) fn env_with_fingerprint() -> TestEnv {
    let env = TestEnv::new();
    let fp = keyfire::audit::fingerprint::of_value(&env.canaries.old_key);
    let text = std::fs::read_to_string(env.inventory_path())
        .unwrap()
        .replacen(
            "secret_path = \"agents/support-bot/llm\"",
            &format!("secret_path = \"agents/support-bot/llm\"\nfingerprint = \"sha256:{fp}\""),
            1,
        );
    std::fs::write(env.inventory_path(), text).unwrap();
    env
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(out), stderr(out)))
}

fn findings(v: &Value) -> &Vec<Value> {
    v["findings"].as_array().expect("findings")
}

fn assert_no_value(values: &[&str], what: &str, text: &str) {
    for v in values {
        let needle = &v[4..v.len() - 4];
        assert!(!text.contains(needle), "a planted value is in {what}");
    }
}

#[test]
fn finds_planted_keys_in_the_working_tree_and_every_branch_of_history() {
    let env = env_with_fingerprint();
    let p = planted(&env);
    let repo = p.repo.to_str().unwrap();
    let out = env.run(&["scan", repo, "--git", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json_of(&out);
    let all = findings(&v);

    // The committed .env, found in history only (it is gone from the tree), by fingerprint.
    let env_hits: Vec<&Value> = all
        .iter()
        .filter(|f| f["location"]["path"] == ".env")
        .collect();
    assert_eq!(env_hits.len(), 1, "{all:#?}");
    let e = env_hits[0];
    assert_eq!(e["source"], "git");
    assert_eq!(e["file_kind"], "env");
    assert_eq!(e["location"]["line"], 1);
    assert_eq!(e["location"]["commit"], p.first_commit.as_str());
    assert_eq!(e["location"]["author_date"], FIRST_DATE);
    assert_eq!(e["key"], "support-llm");
    assert_eq!(e["matched_by"], "fingerprint");
    assert_eq!(e["status"], "unverified");
    assert_eq!(e["format"], "keyfire-training-key");
    let tail = &env.canaries.old_key[env.canaries.old_key.len() - 4..];
    assert_eq!(e["hint"], format!("fk-...{tail}"));

    // The working tree's settings.toml, by research-llm's hint.
    let settings: Vec<&Value> = all
        .iter()
        .filter(|f| {
            f["location"]["path"]
                .as_str()
                .unwrap()
                .ends_with("settings.toml")
        })
        .collect();
    assert_eq!(settings.len(), 1, "{all:#?}");
    assert_eq!(settings[0]["source"], "file");
    assert_eq!(settings[0]["key"], "research-llm");
    assert_eq!(settings[0]["matched_by"], "hint");
    assert_eq!(settings[0]["location"]["line"], 2);

    // The unmanaged OpenAI key: in the tree and in commit 1.
    let openai: Vec<&Value> = all
        .iter()
        .filter(|f| {
            f["location"]["path"]
                .as_str()
                .unwrap()
                .ends_with("config.py")
        })
        .collect();
    assert_eq!(openai.len(), 2, "{all:#?}");
    for f in &openai {
        assert_eq!(f["status"], "unmanaged");
        assert_eq!(f["format"], "openai-project-key");
        assert!(f.get("key").is_none());
        assert_eq!(f["location"]["line"], 3);
    }
    // The side branch's Dockerfile: reachable from a ref that is not checked out.
    let docker: Vec<&Value> = all
        .iter()
        .filter(|f| f["location"]["path"] == "Dockerfile")
        .collect();
    assert_eq!(docker.len(), 1, "{all:#?}");
    assert_eq!(docker[0]["source"], "git");
    assert_eq!(docker[0]["file_kind"], "dockerfile");
    assert_eq!(docker[0]["status"], "unmanaged");
    // The ignored file is not read.
    assert!(!all.iter().any(|f| {
        f["location"]["path"]
            .as_str()
            .unwrap()
            .ends_with("local.log")
    }));
    assert_eq!(all.len(), 5, "{all:#?}");

    // Per key: live, first exposed at the commit, with its agents' blast radius.
    let keys = v["keys"].as_array().unwrap();
    let support = keys.iter().find(|k| k["id"] == "support-llm").unwrap();
    assert_eq!(support["live"], true);
    assert_eq!(support["first_exposed"], FIRST_DATE);
    assert_eq!(
        support["blast_radius"]["agents"][0]["oncall"],
        "#support-oncall"
    );
    let research = keys.iter().find(|k| k["id"] == "research-llm").unwrap();
    assert_eq!(
        research["blast_radius"]["other_keys"][0]["id"], "sales-crm",
        "the agent's other keys are exposed with it"
    );
    assert_eq!(v["totals"]["live_keys"], 2);
    assert_eq!(v["totals"]["unmanaged"], 3);
    assert_eq!(v["coverage"]["commits"], 3);

    // The text view says the same without a value.
    let text = env.run(&["scan", repo, "--git"]);
    assert_eq!(text.status.code(), Some(1));
    let t = stdout(&text);
    assert!(t.contains("LIVE"), "{t}");
    assert!(
        t.contains("support-llm (not compared with the store, matched by fingerprint)"),
        "{t}"
    );
    assert!(t.contains("UNMANAGED"), "{t}");
    assert!(
        t.contains("agent support-bot (owner support@example.com"),
        "{t}"
    );
    assert!(
        t.contains("keyfire incident start research-llm support-llm"),
        "{t}"
    );

    // --no-ignore reads the ignored file; --since leaves out what REV already had.
    let all_files = env.run(&["scan", repo, "--no-ignore", "--json"]);
    let v = json_of(&all_files);
    assert!(findings(&v).iter().any(|f| {
        f["location"]["path"]
            .as_str()
            .unwrap()
            .ends_with("local.log")
    }));
    let since = env.run(&["scan", repo, "--git", "--since", &p.second_commit, "--json"]);
    let v = json_of(&since);
    let history: Vec<&Value> = findings(&v)
        .iter()
        .filter(|f| f["source"] == "git")
        .collect();
    assert_eq!(history.len(), 1, "{history:#?}");
    assert_eq!(history[0]["location"]["path"], "Dockerfile");
    assert_eq!(v["coverage"]["commits"], 1);

    // Two paths in one repository: its history is read once.
    let config = p.repo.join("config.py");
    let twice = env.run(&["scan", repo, config.to_str().unwrap(), "--git", "--json"]);
    let v = json_of(&twice);
    assert_eq!(v["coverage"]["commits"], 3);
    assert_eq!(
        findings(&v).iter().filter(|f| f["source"] == "git").count(),
        3,
        "{v:#?}"
    );
    assert_eq!(findings(&v).len(), 5, "each place once: {v:#?}");

    for o in [&out, &text, &all_files, &since, &twice] {
        assert_no_value(
            &p.values(&env),
            "the scan output",
            &(stdout(o) + &stderr(o)),
        );
    }
}

#[test]
fn with_stores_tells_a_current_key_from_one_already_rotated() {
    let env = TestEnv::new();
    let p = planted(&env);
    // research-llm was rotated since: its store holds another value now.
    env.vault
        .put(OTHER_PATH, "value", "fk-FAKErotatedFAKE0123456789abcd");
    let out = env.run(&[
        "scan",
        p.repo.to_str().unwrap(),
        "--git",
        "--with-stores",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json_of(&out);
    let of = |key: &str| -> Vec<&Value> {
        findings(&v)
            .iter()
            .filter(|f| f["key"] == key)
            .collect::<Vec<_>>()
    };
    let support = of("support-llm");
    assert_eq!(support.len(), 1);
    assert_eq!(support[0]["status"], "current");
    assert_eq!(
        support[0]["matched_by"], "store_fingerprint",
        "no fingerprint in this inventory: the store's value matched it"
    );
    let research = of("research-llm");
    assert_eq!(research[0]["status"], "rotated");
    assert_eq!(research[0]["matched_by"], "hint");
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(
        keys.iter().find(|k| k["id"] == "research-llm").unwrap()["live"],
        false
    );
    assert_eq!(v["totals"]["rotated"], 1);
    assert_no_value(
        &p.values(&env),
        "the scan output",
        &(stdout(&out) + &stderr(&out)),
    );
}

pub(crate) fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scan")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn reads_gitleaks_trufflehog_and_github_reports() {
    let env = env_with_fingerprint();
    let out = env.run(&[
        "scan",
        "--report",
        &fixture("gitleaks.json"),
        "--report",
        &fixture("trufflehog.jsonl"),
        "--report",
        &fixture("github-alerts.json"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json_of(&out);
    let all = findings(&v);
    let by =
        |source: &str| -> Vec<&Value> { all.iter().filter(|f| f["source"] == source).collect() };

    let g = by("gitleaks");
    assert_eq!(g.len(), 1);
    assert_eq!(g[0]["key"], "support-llm");
    assert_eq!(g[0]["matched_by"], "fingerprint");
    assert_eq!(g[0]["location"]["path"], "deploy/.env");
    assert_eq!(g[0]["location"]["line"], 4);
    assert_eq!(g[0]["location"]["author_date"], "2026-02-14T09:30:00Z");
    assert_eq!(g[0]["format"], "gitleaks:generic-api-key");

    let t = by("trufflehog");
    assert_eq!(t.len(), 2, "{t:#?}");
    let research = t.iter().find(|f| f["key"] == "research-llm").unwrap();
    assert_eq!(research["matched_by"], "hint");
    assert_eq!(research["location"]["path"], "agents/research/config.yaml");
    assert_eq!(research["location"]["line"], 12);
    assert_eq!(
        research["location"]["author_date"], "2026-02-20T11:00:00Z",
        "TruffleHog's git timestamp"
    );
    let openai = t.iter().find(|f| f.get("key").is_none()).unwrap();
    assert_eq!(openai["status"], "unmanaged");
    assert!(openai["hint"].as_str().unwrap().starts_with("sk-proj-..."));

    let h = by("github");
    assert_eq!(h.len(), 2, "{h:#?}");
    let alert3 = h.iter().find(|f| f["key"] == "support-llm").unwrap();
    assert_eq!(alert3["location"]["path"], "services/support/settings.py");
    assert_eq!(
        alert3["location"]["commit"],
        "f14d7debf9775f957cf4f1e8176da0786431f72b"
    );
    let hidden = h.iter().find(|f| f["status"] == "withheld").unwrap();
    assert_eq!(hidden["location"]["path"], "scripts/try_model.py");
    assert_eq!(v["coverage"]["reports"], 3);
    assert_eq!(v["coverage"]["report_entries"], 5);
    let values = [
        env.canaries.old_key.as_str(),
        env.canaries.other_key.as_str(),
        "sk-proj-FAKEtruffleFAKEtruffle0123456789abcdEFGH",
    ];
    assert_no_value(&values, "the scan output", &(stdout(&out) + &stderr(&out)));
}

#[test]
fn a_clean_scan_exits_0_and_bad_input_exits_2_without_echoing_a_value() {
    let env = TestEnv::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.md"), "nothing to see\n").unwrap();
    std::fs::write(dir.path().join("empty.json"), "[]").unwrap();
    let root = dir.path().to_str().unwrap();
    let empty = dir.path().join("empty.json");
    let clean = env.run(&["scan", root, "--report", empty.to_str().unwrap()]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));
    assert!(stdout(&clean).contains("0 findings"), "{}", stdout(&clean));

    let value = generated("sk-proj-", 60);
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        format!("[{{\"RuleID\": \"x\",\n \"StartLine\": \"{value}\"}}]"),
    )
    .unwrap();
    let out = env.run(&["scan", "--report", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.json:2:"), "{err}");
    assert_no_value(&[&value], "stderr", &(stdout(&out) + &err));

    let missing = env.run(&["scan", "/no/such/path"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("/no/such/path"));
    let not_repo = env.run(&["scan", root, "--git"]);
    assert_eq!(not_repo.status.code(), Some(2), "{}", stderr(&not_repo));
    assert!(stderr(&not_repo).contains("not a git repository"));
    let p = planted(&env);
    let bad_rev = env.run(&[
        "scan",
        p.repo.to_str().unwrap(),
        "--git",
        "--since",
        "no-such-rev",
    ]);
    assert_eq!(bad_rev.status.code(), Some(2));
    assert!(stderr(&bad_rev).contains("--since no-such-rev"));
    let no_yes = env.run(&["scan", root, "--start-incident"]);
    assert_eq!(no_yes.status.code(), Some(2));
    assert!(stderr(&no_yes).contains("pass --yes"));
    assert!(env.incident_ids().is_empty());
}

#[test]
fn start_incident_opens_one_campaign_naming_places_not_values() {
    let env = env_with_fingerprint();
    let p = planted(&env);
    let out = env.run(&[
        "scan",
        p.repo.to_str().unwrap(),
        "--git",
        "--start-incident",
        "--yes",
    ]);
    let text = stdout(&out);
    // The scan found leaks (exit 1) and the incident ran to the end.
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(text.contains("revoke: sent DELETE"), "{text}");
    assert!(!env.api.accepts(&env.canaries.old_key));
    assert!(!env.api.accepts(&env.canaries.other_key));
    let ids = env.incident_ids();
    assert_eq!(ids.len(), 1, "one campaign");
    let list = env.run(&["incident", "list", "--json"]);
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["status"], "completed");
    let keys: Vec<&str> = v[0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, ["research-llm", "support-llm"]);
    let reason = v[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("support-llm found in .env:1 (commit"),
        "{reason}"
    );
    assert!(reason.contains("settings.toml:2"), "{reason}");
    let opened = &env.entries(&ids[0])[0];
    assert_eq!(
        opened.data["exposed_since"], FIRST_DATE,
        "the earliest commit that contained a found key"
    );
    // Nothing keyfire wrote or printed holds a planted value.
    let mut outputs = vec![stdout(&out) + &stderr(&out)];
    for args in [
        &["incident", "show", ids[0].as_str(), "--json"][..],
        &["report", ids[0].as_str()],
    ] {
        let o = env.run(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        outputs.push(stdout(&o) + &stderr(&o));
    }
    let files = files_under(env.dir.path());
    assert!(files.iter().any(|f| f.ends_with("record.jsonl")));
    // The scan is kept for the console's Leaks view (the grep below covers it), private.
    let last = env.data_dir().join("scans").join("last.json");
    assert!(files.contains(&last), "{files:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&last).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // The console, started from that saved scan on its live findings, opens the same campaign.
    let saved = keyfire::scan::saved::load(&env.data_dir())
        .unwrap()
        .unwrap();
    assert_eq!(saved.findings.len(), 5);
    assert!(saved.git);
    assert_eq!(saved.paths, [p.repo.display().to_string()]);
    let setup = env.setup();
    let mut app =
        keyfire::tui::app::App::new(setup.inventory.clone(), Vec::new(), chrono::Utc::now());
    use keyfire::tui::action::{Action, Effect};
    app.update(Action::ShowLeaks);
    app.leaks.set(Ok(Some(saved)));
    app.update(Action::MarkLive);
    app.update(Action::StartIncident);
    let effects = app.update(Action::Yes);
    let [Effect::Open(params)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(params.keys, keys);
    assert_eq!(params.reason.as_deref(), Some(reason));
    assert_eq!(
        params
            .exposed_since
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        Some(FIRST_DATE.to_string())
    );
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        assert_no_value(&p.values(&env), &f.display().to_string(), &text);
    }
    for o in &outputs {
        assert_no_value(&p.values(&env), "an output", o);
    }
}

/// A loopback stand-in for GitHub's REST API: serves `alerts` to `Bearer <token>` on the
/// repository alerts path and records each request's path, query and headers.
struct GithubStub {
    base: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
}

fn github_stub(token: &str, alerts: String) -> GithubStub {
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::IntoResponse;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let expected = format!("Bearer {token}");
    let log = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/repos/example/fleet/secret-scanning/alerts",
                axum::routing::get(move |headers: HeaderMap, uri: Uri| {
                    let log = log.clone();
                    let expected = expected.clone();
                    let alerts = alerts.clone();
                    async move {
                        let h = |n: &str| {
                            headers
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string()
                        };
                        log.lock().unwrap().push((
                            uri.to_string(),
                            h("accept"),
                            h("x-github-api-version"),
                        ));
                        if h("authorization") != expected {
                            return (
                                StatusCode::UNAUTHORIZED,
                                r#"{"message":"Bad credentials","status":"401"}"#,
                            )
                                .into_response();
                        }
                        (
                            StatusCode::OK,
                            [("content-type", "application/json")],
                            alerts,
                        )
                            .into_response()
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    GithubStub {
        base: format!("http://{addr}"),
        seen,
    }
}

#[test]
fn fetches_github_alerts_with_a_token_reference() {
    let env = env_with_fingerprint();
    let token = generated("ghp_", 36);
    let alerts = std::fs::read_to_string(fixture("github-alerts.json")).unwrap();
    let stub = github_stub(&token, alerts);
    let run = |token_value: &str| {
        env.cmd()
            .env("KF_TEST_GITHUB", token_value)
            .args([
                "scan",
                "--github",
                "example/fleet",
                "--github-token",
                "env:KF_TEST_GITHUB",
                "--github-api",
                &stub.base,
                "--json",
            ])
            .output()
            .unwrap()
    };
    let out = run(&token);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json_of(&out);
    let all = findings(&v);
    assert_eq!(all.len(), 2, "{all:#?}");
    let matched = all.iter().find(|f| f["key"] == "support-llm").unwrap();
    assert_eq!(matched["source"], "github");
    assert_eq!(
        matched["location"]["report"], "github:example/fleet",
        "{matched:#?}"
    );
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "fewer than 100 alerts: one page");
    assert_eq!(
        seen[0].0,
        "/repos/example/fleet/secret-scanning/alerts?per_page=100&page=1"
    );
    assert_eq!(seen[0].1, "application/vnd.github+json");
    assert_eq!(seen[0].2, "2022-11-28");

    // A token GitHub refuses: the scan fails (exit 1), says why, never shows the token.
    let wrong = generated("ghp_", 36);
    let refused = run(&wrong);
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(err.contains("401"), "{err}");
    let outputs = stdout(&out) + &stderr(&out) + &stdout(&refused) + &err;
    assert_no_value(
        &[&token, &wrong, &env.canaries.old_key],
        "the scan output",
        &outputs,
    );
    let bad = env.run(&["scan", "--github", "not-a-repo"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("expected OWNER/REPO"));
}
