//! The real kernel keyring (keyutils). It needs a session keyring: CI runs the tests under
//! `keyctl session -`; elsewhere these tests skip loudly.

use std::io::Write;
use std::process::{Output, Stdio};

use keyfire::keyring::{Keyring, KeyringError};
use keyfire::secret::Secret;

use crate::common::{ADMIN_VAR, TestEnv, stderr, stdout};
use crate::emulators::skip;

fn usable(test: &str) -> bool {
    let k = Keyring::system();
    let probe = format!("keyfire-probe-{}", std::process::id());
    match k.set("keyfire-test", &probe, &Secret::new("probe")) {
        Ok(()) => {
            let _ = k.delete("keyfire-test", &probe);
            true
        }
        Err(e @ KeyringError::Unusable { .. }) => {
            skip(test, &format!("the kernel keyring is not usable here: {e}"));
            false
        }
        Err(e) => panic!("{e}"),
    }
}

fn auth(env: &TestEnv, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = env.cmd();
    cmd.arg("auth")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

#[test]
fn auth_set_then_a_provider_call_uses_the_kernel_keyring() {
    let test = "keyring::auth_set_then_a_provider_call_uses_the_kernel_keyring";
    if !usable(test) {
        return;
    }
    let env = TestEnv::new();
    let name = format!("kf-test-admin-{}", std::process::id());
    let text = std::fs::read_to_string(env.inventory_path())
        .unwrap()
        .replace(&format!("env:{ADMIN_VAR}"), &format!("keyring:{name}"));
    std::fs::write(env.inventory_path(), text).unwrap();

    let set = auth(
        &env,
        &["set", &name],
        Some(&format!("{}\n", env.canaries.admin)),
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    assert!(stdout(&set).contains("kernel keyring"), "{}", stdout(&set));
    let list = auth(&env, &["list"], None);
    assert!(
        stdout(&list).contains(&format!("keyring:{name}")),
        "{}",
        stdout(&list)
    );
    for o in [&set, &list] {
        assert!(
            !stdout(o).contains(&env.canaries.admin) && !stderr(o).contains(&env.canaries.admin)
        );
    }

    // The admin credential now comes from the keyring only (the variable is gone); the fake
    // provider accepts nothing else, so a located key proves the keyring value was used.
    let out = env
        .cmd()
        .env_remove(ADMIN_VAR)
        .args(["incident", "start", "support-llm", "--dry-run", "--no-tui"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let id = &env.incident_ids()[0];
    let entries = env.entries(id);
    let resolved = entries
        .iter()
        .find(|e| e.kind == "evidence" && e.data["action"] == "resolve_credentials")
        .unwrap();
    assert_eq!(
        resolved.data["resolved"][0]["reference"],
        format!("keyring:{name}")
    );
    let located = entries
        .iter()
        .find(|e| e.kind == "evidence" && e.data["action"] == "locate")
        .unwrap();
    assert_eq!(located.data["found"]["id"], env.old_key_id.as_str());

    let removed = auth(&env, &["remove", &name], None);
    assert_eq!(removed.status.code(), Some(0), "{}", stderr(&removed));
    assert!(!stdout(&auth(&env, &["list"], None)).contains(&name));
    let again = env
        .cmd()
        .env_remove(ADMIN_VAR)
        .args(["incident", "start", "support-llm", "--dry-run", "--no-tui"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stdout(&again).contains(&format!("keyring entry `{name}`")),
        "{}",
        stdout(&again)
    );
}

#[test]
fn keyring_store_receives_the_replacement_in_a_live_incident() {
    let test = "keyring::keyring_store_receives_the_replacement_in_a_live_incident";
    if !usable(test) {
        return;
    }
    let env = TestEnv::new();
    let service = format!("keyfire-test-agents-{}", std::process::id());
    let path = "agents/support-bot/llm";
    let k = Keyring::system();
    k.set(&service, path, &Secret::new(env.canaries.old_key.clone()))
        .unwrap();
    let text = std::fs::read_to_string(env.inventory_path())
        .unwrap()
        .replace(
            "store = \"vault\"\nsecret_path = \"agents/support-bot/llm\"",
            &format!("store = \"local\"\nsecret_path = \"{path}\""),
        )
        + &format!(
            "\n[[stores]]\nid = \"local\"\nkind = \"keyring\"\nsettings = {{ service = \"{service}\" }}\n"
        );
    std::fs::write(env.inventory_path(), text).unwrap();
    let out = env.run(&["incident", "start", "support-llm", "--yes", "--no-tui"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let new = k.get(&service, path).unwrap();
    assert_ne!(new.expose(), env.canaries.old_key);
    assert!(
        env.api.accepts(new.expose()),
        "the stored replacement works at the provider"
    );
    assert!(!env.api.accepts(&env.canaries.old_key));
    assert_eq!(
        k.get(&service, &format!("{path}#version"))
            .unwrap()
            .expose(),
        "2"
    );
    let _ = k.delete(&service, path);
    let _ = k.delete(&service, &format!("{path}#version"));
}

/// kill -9 between the keyring store's steps (counter marked pending; value written), then
/// resume: the value in the entry is read as the version it is, so the new value is never
/// taken for the leaked key, and the incident ends with one replacement, stored once.
fn killed_inside_the_keyring_write(test: &str, failpoint: &str) {
    if !usable(test) {
        return;
    }
    let env = TestEnv::new();
    let service = format!("keyfire-test-crash-{}-{failpoint}", std::process::id());
    let path = "agents/support-bot/llm";
    let k = Keyring::system();
    k.set(&service, path, &Secret::new(env.canaries.old_key.clone()))
        .unwrap();
    let text = std::fs::read_to_string(env.inventory_path())
        .unwrap()
        .replace(
            "store = \"vault\"\nsecret_path = \"agents/support-bot/llm\"",
            &format!("store = \"local\"\nsecret_path = \"{path}\""),
        )
        + &format!(
            "\n[[stores]]\nid = \"local\"\nkind = \"keyring\"\nsettings = {{ service = \"{service}\" }}\n"
        );
    std::fs::write(env.inventory_path(), text).unwrap();
    let mut child = env
        .cmd()
        .args(["incident", "start", "support-llm", "--yes", "--no-tui"])
        .env("KEYFIRE_FAILPOINT", failpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr_pipe));
    loop {
        let line = lines.next().expect("failpoint reached").unwrap();
        if line.contains("paused at failpoint") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let id = env.incident_ids().pop().unwrap();
    let out = env.run(&["incident", "resume", &id, "--yes", "--no-tui"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let stored = k.get(&service, path).unwrap();
    assert_ne!(stored.expose(), env.canaries.old_key);
    assert!(
        !env.api.accepts(&env.canaries.old_key),
        "the old key is dead"
    );
    let live: Vec<_> = env
        .api
        .live_keys()
        .into_iter()
        .filter(|key| key.name.starts_with("keyfire-"))
        .collect();
    assert_eq!(live.len(), 1, "exactly one replacement: {live:?}");
    assert_eq!(live[0].value(), stored.expose(), "the store holds it");
    // One store write: version 2 (after a kill past the value, the counter may still say
    // the write to 2 is pending; reads take the value's fingerprint for it).
    let counter = k.get(&service, &format!("{path}#version")).unwrap();
    assert!(
        counter.expose() == "2" || counter.expose().starts_with("1->2:"),
        "one store write: {}",
        counter.expose()
    );
    let writes = env
        .entries(&id)
        .iter()
        .filter(|e| e.kind == "request_sent" && e.data["action"] == "store_write")
        .count();
    let expected = if failpoint == "keyring:value_written" {
        1
    } else {
        2
    };
    assert_eq!(
        writes, expected,
        "the write is repeated only if it never landed"
    );
    let _ = k.delete(&service, path);
    let _ = k.delete(&service, &format!("{path}#version"));
}

#[test]
fn killed_after_the_keyring_counter_was_marked_pending() {
    killed_inside_the_keyring_write(
        "keyring::killed_after_the_keyring_counter_was_marked_pending",
        "keyring:counter_pending",
    );
}

#[test]
fn killed_after_the_keyring_value_was_written() {
    killed_inside_the_keyring_write(
        "keyring::killed_after_the_keyring_value_was_written",
        "keyring:value_written",
    );
}

/// Without `KEYFIRE_SIGNING_KEY_FILE`, the record signing key lives in the OS keyring (here
/// the kernel keyring), not in a file: no key file is written, and the record it signed
/// verifies.
#[test]
fn without_a_key_file_the_record_signing_key_lives_in_the_kernel_keyring() {
    let test = "keyring::without_a_key_file_the_record_signing_key_lives_in_the_kernel_keyring";
    if !usable(test) {
        return;
    }
    let env = TestEnv::new();
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        env.cmd()
            .env("KEYFIRE_SIGNING_KEY_FILE", "")
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["incident", "start", "support-llm", "--dry-run", "--no-tui"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let id = env.incident_ids()[0].clone();
    let verify = run(&["record", "verify", &id]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    // Only the public half is written (the list of keys this machine trusts).
    let files = crate::common::files_under(home.path());
    assert!(
        files
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "pub")),
        "no private key file under the home directory: {files:?}"
    );
    assert!(
        !env.signing_key_path().exists(),
        "the test's key file was not used either"
    );
    let k = Keyring::system();
    let stored = k.get("keyfire-record-signing", "record-signing-key");
    assert!(stored.is_ok(), "the key is in the kernel keyring");
    let _ = k.delete("keyfire-record-signing", "record-signing-key");
}
