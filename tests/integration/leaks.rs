//! No error path quotes a value that looks like a key: each input mistake that used to print
//! a pasted key, run through the binary with a canary, still names file, line and column
//! and prints nothing of the canary on stdout or stderr.

use std::path::Path;
use std::process::Output;

use crate::common::{TestEnv, stderr, stdout};
use crate::corpus;

/// A fake OpenAI project key in the published shape (see `corpus`).
fn canary() -> String {
    corpus::samples()
        .into_iter()
        .find(|s| s.format == "openai-project-key")
        .map(|s| s.value)
        .unwrap()
}

fn keyfire() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_keyfire"));
    c.env_remove("KEYFIRE_INVENTORY")
        .env_remove("KEYFIRE_CONFIG")
        .env(
            "KEYFIRE_DATA_DIR",
            std::env::temp_dir().join("keyfire-test-nodata"),
        )
        .stdin(std::process::Stdio::null());
    c
}

fn lint(path: &Path) -> Output {
    keyfire()
        .args(["inventory", "lint", "--inventory"])
        .arg(path)
        .output()
        .unwrap()
}

/// Exit 2, the place named, nothing of `secret` anywhere in the output.
fn assert_refused_without_echo(out: &Output, place: &str, secret: &str) {
    let (o, e) = (stdout(out), stderr(out));
    assert_eq!(out.status.code(), Some(2), "stdout: {o}\nstderr: {e}");
    assert!(e.contains(place), "expected {place:?} in {e}");
    // The middle of the value: a format's public prefix may be named.
    let middle = &secret[secret.len() / 4..secret.len() - 4];
    assert!(!e.contains(middle), "the value is echoed on stderr: {e}");
    assert!(!o.contains(middle), "the value is echoed on stdout: {o}");
}

fn inventory_with(key_lines: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.toml");
    std::fs::write(
        &path,
        format!(
            "schema = 1\n[[providers]]\nid = \"p\"\nkind = \"manual\"\n[[agents]]\nid = \"a\"\n[[keys]]\nid = \"k\"\nagents = [\"a\"]\nprovider = \"p\"\n{key_lines}\n"
        ),
    )
    .unwrap();
    (dir, path)
}

#[test]
fn an_unquoted_pasted_key_is_not_echoed_by_the_syntax_error() {
    let key = canary();
    let (_dir, path) = inventory_with(&format!("hint = {key}"));
    let out = lint(&path);
    assert_refused_without_echo(&out, &format!("{}:11:8: ", path.display()), &key);
    assert!(
        stderr(&out).contains("OpenAI project key"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_key_in_a_typed_field_is_not_echoed_by_the_type_error() {
    let key = canary();
    let (_dir, path) = inventory_with(&format!("rotation_days = \"{key}\""));
    let out = lint(&path);
    assert_refused_without_echo(&out, &format!("{}:11:17: ", path.display()), &key);
    assert!(stderr(&out).contains("rotation_days"), "{}", stderr(&out));
}

#[test]
fn a_key_pasted_as_a_field_name_is_not_echoed() {
    let key = canary();
    let (_dir, path) = inventory_with(&format!("{key} = 1"));
    let out = lint(&path);
    assert_refused_without_echo(&out, &format!("{}:11:1: ", path.display()), &key);
}

#[test]
fn an_address_with_a_password_is_an_inventory_error_that_hides_it() {
    let password = "FAKEpassw0rd-in-a-url";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.toml");
    std::fs::write(
        &path,
        format!(
            "schema = 1\n[[providers]]\nid = \"p\"\nkind = \"fake\"\nadmin_credential = \"env:X\"\nbase_url = \"https://admin:{password}@api.example.test\"\n[[stores]]\nid = \"v\"\nkind = \"vault-kv2\"\ncredential = \"env:Y\"\naddress = \"https://root:{password}@vault.example.test\"\n"
        ),
    )
    .unwrap();
    let out = lint(&path);
    assert_refused_without_echo(
        &out,
        &format!(
            "{}:6:12: base_url holds a user name or password",
            path.display()
        ),
        password,
    );
    assert!(
        stderr(&out).contains(&format!(
            "{}:11:11: address holds a user name or password",
            path.display()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn plain_http_is_refused_except_to_loopback_or_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.toml");
    let write = |extra: &str| {
        std::fs::write(
            &path,
            format!(
                "schema = 1\n[[providers]]\nid = \"p\"\nkind = \"fake\"\nadmin_credential = \"env:X\"\nbase_url = \"http://api.example.test\"\n{extra}\n[[providers]]\nid = \"local\"\nkind = \"fake\"\nadmin_credential = \"env:X\"\nbase_url = \"http://127.0.0.1:9/v1\"\n[[providers]]\nid = \"local6\"\nkind = \"fake\"\nadmin_credential = \"env:X\"\nbase_url = \"http://[::1]:9\"\n[[stores]]\nid = \"v\"\nkind = \"vault-kv2\"\ncredential = \"env:Y\"\naddress = \"http://localhost:8200\"\n"
            ),
        )
        .unwrap();
    };
    write("");
    let out = lint(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{}:6:12: base_url uses plain http:// to api.example.test",
            path.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("1 problem"),
        "loopback addresses are accepted: {err}"
    );

    write("allow_insecure_http = true");
    let out = lint(&path);
    assert!(
        !stderr(&out).contains("http://") && out.status.code() != Some(2),
        "allow_insecure_http = true accepts it: {}",
        stderr(&out)
    );
}

#[test]
fn an_inventory_that_is_not_utf8_gets_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.toml");
    let mut bytes = b"schema = 1\n[[agents]]\nid = \"caf".to_vec();
    bytes.extend_from_slice(&[0xe9, b'"', b'\n']);
    std::fs::write(&path, bytes).unwrap();
    let out = lint(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}:3:10: not valid UTF-8", path.display())),
        "{err}"
    );
}

#[test]
fn config_and_runbook_errors_do_not_echo_a_key() {
    let key = canary();
    let env = TestEnv::new();
    let config = env.dir.path().join("config.toml");
    std::fs::write(&config, format!("data_dir = \"/tmp\"\n{key} = 1\n")).unwrap();
    let out = env
        .cmd()
        .args(["inventory", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_refused_without_echo(&out, &format!("{}", config.display()), &key);
    assert!(stderr(&out).contains("2:1:"), "{}", stderr(&out));

    let runbook = env.dir.path().join("runbook.toml");
    std::fs::write(&runbook, format!("schema = \"{key}\"\n")).unwrap();
    let out = env
        .cmd()
        .args(["drill", "support-llm", "--runbook"])
        .arg(&runbook)
        .output()
        .unwrap();
    assert_refused_without_echo(&out, &format!("{}:1:10", runbook.display()), &key);
}

#[test]
fn a_gateway_log_line_holding_a_key_is_not_echoed() {
    let key = canary();
    let env = TestEnv::new();
    let logs = env.dir.path().join("gateway.jsonl");
    std::fs::write(
        &logs,
        format!(
            "{{\"timestamp\":\"2026-11-26T03:00:00Z\",\"key_id\":\"support-llm\",\"requests\":1}}\n{{\"timestamp\":\"2026-11-26T03:00:01Z\",\"key_id\":\"support-llm\",\"requests\":\"{key}\"}}\n"
        ),
    )
    .unwrap();
    let out = env
        .cmd()
        .args(["audit", "support-llm", "--since", "2026-11-01", "--logs"])
        .arg(&logs)
        .output()
        .unwrap();
    assert_refused_without_echo(&out, &format!("{}:2: ", logs.display()), &key);
}

/// Every corpus format, in every placement, given as an incident's `--reason`: nothing of
/// any value reaches the record, the report, stdout or stderr.
#[test]
fn no_corpus_value_survives_in_a_drill_reason() {
    let env = TestEnv::new();
    let mut reason = String::from("leak report:");
    for s in corpus::samples() {
        for (_, text) in corpus::placements(&s.text()) {
            reason.push('\n');
            reason.push_str(&text);
        }
    }
    let out = env.run(&[
        "incident",
        "start",
        "support-llm",
        "--dry-run",
        "--no-tui",
        "--reason",
        &reason,
    ]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "the drill ran: {}",
        stderr(&out)
    );
    let mut outputs = vec![("stdout", stdout(&out)), ("stderr", stderr(&out))];
    for id in env.incident_ids() {
        let show = env.run(&["incident", "show", &id, "--json"]);
        assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
        outputs.push(("incident show", stdout(&show) + &stderr(&show)));
    }
    let files = crate::common::files_under(&env.data_dir());
    assert!(files.iter().any(|p| p.ends_with("record.jsonl")));
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        if let Some(which) = corpus::survivor(&text) {
            panic!("{which} survived in {}", f.display());
        }
    }
    for (what, text) in outputs {
        if let Some(which) = corpus::survivor(&text) {
            panic!("{which} survived in {what}");
        }
    }
}
