//! The debug log (`-v`, `-vv`, `KEYFIRE_LOG`): the real binary against the simulators, then
//! the file it says it wrote is read back: private, holding the requests, actions and record
//! appends a bug report needs, and none of the canary values.

use std::path::Path;

use crate::common::{TestEnv, debug_log_path, stderr, stdout};

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The distinctive middle of each value (a hint, prefix and last four, is allowed).
fn assert_no_secret(text: &str, secrets: &[String], what: &str) {
    for secret in secrets {
        let needle = &secret[4..secret.len() - 4];
        assert!(!text.contains(needle), "a secret value is in {what}");
    }
}

#[test]
fn a_live_campaign_with_vv_writes_a_private_scrubbed_log_of_requests_actions_and_appends() {
    let env = TestEnv::new();
    // A key pasted into the command line (here, the reason) must not reach the log either.
    let reason = format!("found {} in a public gist", env.canaries.old_key);
    let out = env.run(&[
        "-vv",
        "incident",
        "start",
        "support-llm",
        "research-llm",
        "--yes",
        "--no-tui",
        "--reason",
        &reason,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let path = debug_log_path(&out);
    assert_eq!(path.parent(), Some(env.data_dir().join("logs").as_path()));
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("keyfire-") && name.ends_with(".log"),
        "{name}"
    );
    assert_eq!(mode(&path), 0o600, "the log is private");
    assert_eq!(mode(path.parent().unwrap()), 0o700, "its folder too");
    let log = std::fs::read_to_string(&path).unwrap();

    // What a bug report opens with.
    assert!(log.contains("keyfire started"), "{log}");
    assert!(log.contains(env!("CARGO_PKG_VERSION")), "{log}");
    assert!(
        log.contains("incident start support-llm research-llm"),
        "{log}"
    );
    assert!(
        log.contains(&env.inventory_path().display().to_string()),
        "the inventory path: {log}"
    );
    // Every HTTP request: method, URL on the simulator, status, latency.
    let base = env.api.base_url();
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("keyfire::http") && l.contains(" request "))
        .collect();
    assert!(
        requests.len() >= 6,
        "requests to the provider and the store: {log}"
    );
    for line in &requests {
        assert!(line.contains("method="), "{line}");
        assert!(line.contains("status="), "{line}");
        assert!(line.contains("ms="), "{line}");
    }
    assert!(
        requests
            .iter()
            .any(|l| l.contains("method=DELETE") && l.contains(&base) && l.contains("status=")),
        "the revoke call to the fake provider: {log}"
    );
    assert!(
        requests.iter().any(|l| l.contains(&env.vault.address())),
        "the store's calls: {log}"
    );
    // Each action's start and end with its outcome, for both keys; each record append.
    for key in ["support-llm", "research-llm"] {
        assert!(
            log.lines()
                .any(|l| l.contains("action started") && l.contains(key) && l.contains("revoke")),
            "{key}: {log}"
        );
        assert!(
            log.lines().any(|l| l.contains("action finished")
                && l.contains(key)
                && l.contains("revoke")
                && l.contains("outcome=\"done\"")),
            "{key}: {log}"
        );
    }
    let id = env.incident_ids().pop().unwrap();
    let appends = log.lines().filter(|l| l.contains("record append")).count();
    assert_eq!(
        appends,
        env.entries(&id).len(),
        "one log line per record entry"
    );
    assert!(log.contains("command finished code=0"), "{log}");

    // No secret value: the canaries and the replacements the provider created.
    let mut secrets = vec![
        env.canaries.admin.clone(),
        env.canaries.vault_token.clone(),
        env.canaries.old_key.clone(),
        env.canaries.other_key.clone(),
    ];
    let made: Vec<String> = env
        .api
        .live_keys()
        .into_iter()
        .filter(|k| k.name.starts_with("keyfire-"))
        .map(|k| k.value().to_string())
        .collect();
    assert_eq!(made.len(), 2, "both keys were replaced");
    secrets.extend(made);
    assert_no_secret(&log, &secrets, "the debug log");
    assert!(
        log.contains("[REDACTED]"),
        "the pasted key was scrubbed: {log}"
    );
}

#[test]
fn without_v_or_keyfire_log_no_log_is_written() {
    let env = TestEnv::new();
    let out = env
        .cmd()
        .env_remove("KEYFIRE_LOG")
        .args(["incident", "start", "support-llm", "--dry-run", "--no-tui"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("debug log"), "{}", stderr(&out));
    assert!(!env.data_dir().join("logs").exists());
}

#[test]
fn keyfire_log_turns_the_log_on_and_a_bad_value_is_refused_unquoted() {
    let env = TestEnv::new();
    let out = env
        .cmd()
        .env("KEYFIRE_LOG", "debug")
        .args(["inventory", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = std::fs::read_to_string(debug_log_path(&out)).unwrap();
    assert!(log.contains("inventory loaded"), "{log}");

    let bad = env
        .cmd()
        .env("KEYFIRE_LOG", &env.canaries.old_key)
        .args(["inventory", "list"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = stderr(&bad);
    assert!(err.contains("KEYFIRE_LOG must be one of"), "{err}");
    assert_no_secret(&err, std::slice::from_ref(&env.canaries.old_key), "stderr");
}

/// The real provider kinds: OpenAI (the replacement it creates) and Anthropic (the
/// replacement the operator pastes on stdin) with `-vv`.
#[test]
fn the_log_of_a_live_incident_on_openai_and_anthropic_holds_no_secret() {
    use crate::llm::{KEY, Kind, LlmEnv, Sim};
    for env in [LlmEnv::openai(), LlmEnv::anthropic()] {
        let paste =
            (env.kind == Kind::Anthropic).then(|| format!("{}\n", env.canaries.replacement));
        let out = env.run_with(
            &["-vv", "incident", "start", KEY, "--yes", "--no-tui"],
            paste.as_deref(),
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{:?}: {}",
            env.kind,
            stdout(&out)
        );
        let log = std::fs::read_to_string(debug_log_path(&out)).unwrap();
        assert!(
            log.lines()
                .any(|l| l.contains("keyfire::http") && l.contains(&env.base_url())),
            "{:?}: {log}",
            env.kind
        );
        let mut secrets = env.canaries.all();
        if let Sim::OpenAi(sim) = &env.sim {
            secrets.extend(
                sim.live_keys()
                    .into_iter()
                    .filter(|k| k.value().starts_with("sk-svcacct-"))
                    .map(|k| k.value().to_string()),
            );
        }
        assert_no_secret(&log, &secrets, "the debug log");
    }
}
