//! The real OS keyrings. The kernel keyring (keyutils) needs a session keyring: CI runs the
//! tests under `keyctl session -`. The Secret Service tests start a private D-Bus session bus
//! and GNOME Keyring on it (see [`SecretServiceSession`]). Elsewhere these tests skip loudly.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use keyfire::keyring::{KEYRING_VAR, Keyring, KeyringError};
use keyfire::secret::Secret;

use crate::common::{ADMIN_VAR, TestEnv, files_under, stderr, stdout};
use crate::emulators::{skip, which};

/// The kernel keyring, whatever this machine would choose on its own (a desktop session
/// would pick the Secret Service).
fn kernel() -> Keyring {
    Keyring::keyutils("forced by the test")
}

/// keyfire, told to use the kernel keyring.
fn kernel_cmd(env: &TestEnv) -> Command {
    let mut c = env.cmd();
    c.env(KEYRING_VAR, "keyutils");
    c
}

fn usable(test: &str) -> bool {
    let k = kernel();
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
    auth_with(kernel_cmd(env), args, stdin)
}

fn auth_with(mut cmd: Command, args: &[&str], stdin: Option<&str>) -> Output {
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
    let out = kernel_cmd(&env)
        .env_remove(ADMIN_VAR)
        .args([
            "-v",
            "incident",
            "start",
            "support-llm",
            "--dry-run",
            "--no-tui",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    // The debug log names the keyring read (store, entry, outcome), never the value.
    let log = std::fs::read_to_string(crate::common::debug_log_path(&out)).unwrap();
    assert!(
        log.lines().any(|l| l.contains("keyfire::keyring")
            && l.contains("op=\"read\"")
            && l.contains("store=\"keyutils\"")
            && l.contains(&format!("name=\"{name}\""))
            && l.contains("outcome=\"ok\"")),
        "{log}"
    );
    assert!(
        !log.contains(&env.canaries.admin),
        "the value is not in the log"
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
    let again = kernel_cmd(&env)
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
    let k = kernel();
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
    let out = kernel_cmd(&env)
        .args(["incident", "start", "support-llm", "--yes", "--no-tui"])
        .output()
        .unwrap();
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
    let k = kernel();
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
    let mut child = kernel_cmd(&env)
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
    let out = kernel_cmd(&env)
        .args(["incident", "resume", &id, "--yes", "--no-tui"])
        .output()
        .unwrap();
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
        kernel_cmd(&env)
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
    let k = kernel();
    let stored = k.get("keyfire-record-signing", "record-signing-key");
    assert!(stored.is_ok(), "the key is in the kernel keyring");
    let _ = k.delete("keyfire-record-signing", "record-signing-key");
}

// ---- the Secret Service (D-Bus) -------------------------------------------------------------

/// A private D-Bus session bus with GNOME Keyring's Secret Service on it, its login keyring
/// created and unlocked with a throwaway password, in throwaway XDG directories (HOME is left
/// alone: cargo lives there). Both daemons are killed by PID when it drops.
struct SecretServiceSession {
    dir: tempfile::TempDir,
    address: String,
    bus: Child,
    daemon: Child,
}

impl SecretServiceSession {
    /// `None` after a loud skip when dbus-daemon, gnome-keyring or secret-tool is missing.
    fn start(test: &str) -> Option<Self> {
        for program in [
            "dbus-daemon",
            "dbus-send",
            "gnome-keyring-daemon",
            "secret-tool",
        ] {
            if which(program).is_none() {
                skip(
                    test,
                    &format!(
                        "`{program}` is not installed (Debian: dbus gnome-keyring libsecret-tools)"
                    ),
                );
                return None;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        for sub in ["run", "data"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
            std::fs::set_permissions(
                dir.path().join(sub),
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )
            .unwrap();
        }
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!(
                "--address=unix:path={}",
                dir.path().join("bus").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The daemon prints its address once it listens.
        let mut address = String::new();
        std::io::BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("XDG_RUNTIME_DIR", dir.path().join("run"))
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The first unlock creates the login keyring with this password.
        daemon
            .stdin
            .take()
            .unwrap()
            .write_all(b"throwaway-keyring-password")
            .unwrap();
        let session = Self {
            dir,
            address,
            bus,
            daemon,
        };
        session.wait_for_the_service();
        Some(session)
    }

    /// Until GNOME Keyring owns its bus name (else the first call would D-Bus-activate a
    /// second daemon). A readiness wait, bounded so a broken install fails instead of hanging.
    fn wait_for_the_service(&self) {
        for _ in 0..200 {
            let out = self
                .tool("dbus-send")
                .args([
                    "--session",
                    "--print-reply=literal",
                    "--dest=org.freedesktop.DBus",
                    "/",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("true") {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("gnome-keyring-daemon never registered org.freedesktop.secrets on the test bus");
    }

    /// The session's environment on a command: its bus and XDG directories, and no forced
    /// store, so keyfire chooses on its own.
    fn apply(&self, cmd: &mut Command) {
        cmd.env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env_remove(KEYRING_VAR);
    }

    fn tool(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        self.apply(&mut cmd);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// What `secret-tool lookup` finds for keyfire's attributes (`None`: no such item).
    fn lookup(&self, service: &str, name: &str) -> Option<String> {
        let out = self
            .tool("secret-tool")
            .args(["lookup", "service", service, "username", name])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Locks the login collection through the Secret Service API (`Service.Lock`).
    fn lock(&self) {
        let out = self
            .tool("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.secrets",
                "/org/freedesktop/secrets",
                "org.freedesktop.Secret.Service.Lock",
                "array:objpath:/org/freedesktop/secrets/collection/login",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

impl Drop for SecretServiceSession {
    fn drop(&mut self) {
        // Only the two daemons this session started, by their PIDs.
        for child in [&mut self.daemon, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// keyfire in the test environment, on the session's bus.
fn ss_cmd(env: &TestEnv, session: &SecretServiceSession) -> Command {
    let mut c = env.cmd();
    session.apply(&mut c);
    c
}

#[test]
fn secret_service_holds_admin_credentials_from_auth_set_to_a_provider_call() {
    let test = "keyring::secret_service_holds_admin_credentials_from_auth_set_to_a_provider_call";
    let Some(session) = SecretServiceSession::start(test) else {
        return;
    };
    let env = TestEnv::new();
    let name = "openai-admin";
    let text = std::fs::read_to_string(env.inventory_path())
        .unwrap()
        .replace(&format!("env:{ADMIN_VAR}"), &format!("keyring:{name}"));
    std::fs::write(env.inventory_path(), text).unwrap();
    let canary = env.canaries.admin.clone();

    let set = auth_with(
        ss_cmd(&env, &session),
        &["set", name],
        Some(&format!("{canary}\n")),
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    assert!(stdout(&set).contains("Secret Service"), "{}", stdout(&set));
    // The item really is in the Secret Service, under the attributes other tools search by.
    assert!(
        session.lookup("keyfire", name).as_deref() == Some(canary.as_str()),
        "secret-tool finds the value keyfire stored"
    );

    let list = auth_with(ss_cmd(&env, &session), &["list"], None);
    assert_eq!(list.status.code(), Some(0), "{}", stderr(&list));
    let listed = stdout(&list);
    assert!(listed.contains(&format!("keyring:{name}")), "{listed}");
    assert!(
        listed.contains("backend: Secret Service keyring")
            && listed.contains("chosen automatically"),
        "{listed}"
    );
    assert!(!listed.contains("missing"), "{listed}");
    let json = auth_with(ss_cmd(&env, &session), &["list", "--json"], None);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["store"], "secret-service");
    assert_eq!(json["credentials"][0]["present"], true);

    // The admin credential now comes from the Secret Service only (the variable is gone); the
    // fake provider accepts nothing else, so a located key proves the stored value was used.
    let call = ss_cmd(&env, &session)
        .env_remove(ADMIN_VAR)
        .args(["incident", "start", "support-llm", "--dry-run", "--no-tui"])
        .output()
        .unwrap();
    assert_eq!(
        call.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&call),
        stderr(&call)
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

    let removed = auth_with(ss_cmd(&env, &session), &["remove", name], None);
    assert_eq!(removed.status.code(), Some(0), "{}", stderr(&removed));
    assert!(stdout(&removed).contains("Secret Service"));
    assert_eq!(session.lookup("keyfire", name), None, "the item is gone");
    let after = auth_with(ss_cmd(&env, &session), &["list"], None);
    assert!(!stdout(&after).contains(name), "{}", stdout(&after));

    // The canary never reached keyfire's output or any file it wrote.
    for o in [&set, &list, &call, &removed, &after] {
        assert!(!stdout(o).contains(&canary) && !stderr(o).contains(&canary));
    }
    for file in files_under(env.dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&canary),
            "the admin key leaked into {}",
            file.display()
        );
    }
}

#[test]
fn a_locked_secret_service_is_refused_at_once_naming_the_lock() {
    let test = "keyring::a_locked_secret_service_is_refused_at_once_naming_the_lock";
    let Some(session) = SecretServiceSession::start(test) else {
        return;
    };
    let env = TestEnv::new();
    let set = auth_with(
        ss_cmd(&env, &session),
        &["set", "before-lock"],
        Some("v1\n"),
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    session.lock();
    // keyfire reads the lock state and refuses before any call that would raise an unlock
    // prompt (headless, gnome-keyring's own prompt would be dismissed with a vaguer error).
    for (args, stdin) in [
        (&["set", "after-lock"][..], Some("v2\n")),
        (&["list"][..], None),
    ] {
        let out = auth_with(ss_cmd(&env, &session), args, stdin);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("Secret Service keyring")
                && err.contains("is locked")
                && err.contains("does not wait for an unlock prompt")
                && err.contains("KEYFIRE_KEYRING=keyutils"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(session.lookup("keyfire", "after-lock"), None);
}

#[test]
fn keyfire_keyring_forces_the_kernel_keyring_beside_a_secret_service() {
    let test = "keyring::keyfire_keyring_forces_the_kernel_keyring_beside_a_secret_service";
    let Some(session) = SecretServiceSession::start(test) else {
        return;
    };
    let env = TestEnv::new();
    let mut cmd = ss_cmd(&env, &session);
    cmd.env(KEYRING_VAR, "keyutils");
    let out = auth_with(cmd, &["list", "--json"], None);
    // Outside a session keyring the kernel may refuse; either way it is the kernel keyring
    // that answers, never the Secret Service on the bus.
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("kernel keyring"), "{text}");
    assert!(!text.contains("Secret Service keyring"), "{text}");
    if out.status.success() {
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["store"], "keyutils");
        assert_eq!(json["chosen"], "set by KEYFIRE_KEYRING");
    }
}

/// No bus at all: the address points at nothing and the runtime directory is empty.
fn without_a_bus(cmd: &mut Command, dir: &Path) {
    cmd.env(
        "DBUS_SESSION_BUS_ADDRESS",
        format!("unix:path={}", dir.join("no-bus").display()),
    )
    .env("XDG_RUNTIME_DIR", dir);
}

#[test]
fn without_a_session_bus_the_choice_falls_back_to_the_kernel_keyring() {
    let env = TestEnv::new();
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = env.cmd();
    without_a_bus(&mut cmd, empty.path());
    cmd.env_remove(KEYRING_VAR);
    let out = auth_with(cmd, &["list"], None);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("kernel keyring"), "{text}");
    if out.status.success() {
        assert!(
            text.contains("chosen automatically: no Secret Service on a D-Bus session bus"),
            "{text}"
        );
    }
}

#[test]
fn forcing_the_secret_service_without_a_bus_fails_with_what_to_do() {
    let env = TestEnv::new();
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = env.cmd();
    without_a_bus(&mut cmd, empty.path());
    cmd.env(KEYRING_VAR, "secret-service");
    let out = auth_with(cmd, &["set", "x"], Some("value\n"));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "the Secret Service keyring (D-Bus session: GNOME Keyring, KWallet) is not usable"
        ) && err.contains("KEYFIRE_KEYRING=keyutils"),
        "{err}"
    );
}

#[test]
fn an_unknown_keyfire_keyring_value_is_an_input_error_naming_the_variable() {
    let env = TestEnv::new();
    let mut cmd = env.cmd();
    cmd.env(KEYRING_VAR, "gnome-CANARYvalue");
    let out = auth_with(cmd, &["list"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("KEYFIRE_KEYRING must be `secret-service` or `keyutils`"),
        "{err}"
    );
    assert!(
        !err.contains("CANARYvalue"),
        "the value is not echoed: {err}"
    );
    // Any command, not only `auth`: the choice is checked before anything runs.
    let mut cmd = env.cmd();
    cmd.env(KEYRING_VAR, "kwallet");
    let out = cmd.args(["inventory", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
