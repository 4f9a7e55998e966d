//! End to end: the real binary in a real terminal (tmux on a private socket), driven with
//! send-keys and read back with capture-pane.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{ADMIN_VAR, TestEnv, VAULT_VAR};

fn tmux_ready() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        // The shared loud skip: straight to stderr (the harness captures eprintln!), and a
        // failure when emulators are required.
        crate::emulators::skip(
            "tui_tmux",
            "tmux is not installed, the console end-to-end tests did not run",
        );
    }
    ok
}

struct Tmux {
    socket: String,
    captures: Vec<String>,
}

impl Tmux {
    fn start(env: &TestEnv, name: &str) -> Self {
        Self::start_args(env, name, &[])
    }

    /// The binary with `args` (each single-quoted by the script) instead of the console.
    fn start_args(env: &TestEnv, name: &str, args: &[&str]) -> Self {
        let args: String = args.iter().map(|a| format!(" '{a}'")).collect();
        let socket = format!("keyfire-test-{}-{name}", std::process::id());
        let script = env.dir.path().join(format!("{name}.sh"));
        let bin = env!("CARGO_BIN_EXE_keyfire");
        let text = format!(
            "#!/bin/sh\nexport {ADMIN_VAR}='{}' {VAULT_VAR}='{}' KEYFIRE_DATA_DIR='{}' KEYFIRE_INVENTORY='{}' KEYFIRE_SIGNING_KEY_FILE='{}' NO_COLOR=1\nunset KEYFIRE_CONFIG KEYFIRE_LOG\n'{bin}'{args}\necho EXITED rc=$?\nstty -a | tr ' ;' '\\n\\n' | grep -x -- '-\\{{0,1\\}}icanon'\nsleep 60\n",
            env.canaries.admin,
            env.canaries.vault_token,
            env.data_dir().display(),
            env.inventory_path().display(),
            env.signing_key_path().display()
        );
        std::fs::write(&script, text).unwrap();
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "main",
                "-x",
                "100",
                "-y",
                "30",
                "sh",
            ])
            .arg(script_path(&script))
            .status()
            .unwrap();
        assert!(status.success());
        Self {
            socket,
            captures: Vec::new(),
        }
    }

    fn capture(&mut self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "main"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        self.captures.push(text.clone());
        text
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "main"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(80));
    }

    fn literal(&self, text: &str) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-l", "-t", "main", text])
            .status()
            .unwrap();
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(80));
    }

    /// The whole pane, scrolled-off lines included.
    fn scrollback(&self) -> String {
        let out = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "capture-pane",
                "-p",
                "-S",
                "-",
                "-t",
                "main",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.capture();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {text:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn script_path(p: &Path) -> String {
    p.display().to_string()
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn console_drill_from_filter_to_quit_restores_the_terminal() {
    if !tmux_ready() {
        return;
    }
    let env = TestEnv::new();
    let mut t = Tmux::start(&env, "drill");
    t.wait_for("Inventory");
    t.keys(&["/"]);
    t.literal("support");
    let screen = t.wait_for("/ support");
    assert!(screen.contains("support-llm"));
    assert!(
        !screen.contains("sales-crm"),
        "the filter hides other keys:\n{screen}"
    );
    t.keys(&["Enter", "Enter"]);
    t.wait_for("Blast radius");
    t.keys(&["d"]);
    t.wait_for("Start a drill");
    t.keys(&["y"]);
    // Drills ask the report step's question too, marked as a drill.
    let asked = t.wait_for("CUSTOMER DATA");
    assert!(asked.contains("[DRILL] Could customer data"), "{asked}");
    t.keys(&["u", "Enter"]);
    let done = t.wait_for("COMPLETED");
    assert!(done.contains("DRY RUN"), "{done}");
    assert!(
        env.api.requests().iter().all(|r| !r.is_write()),
        "the console's drill sent no write"
    );
    // Esc backs out screen by screen and never quits; q quits.
    t.keys(&["Escape"]);
    t.wait_for("Blast radius");
    t.keys(&["Escape"]);
    t.wait_for("Inventory");
    t.keys(&["Escape", "Escape"]);
    t.wait_for("Inventory");
    t.keys(&["q"]);
    let end = t.wait_for("EXITED rc=0");
    let tail: Vec<&str> = end
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mode = tail
        .iter()
        .position(|l| l.starts_with("EXITED"))
        .and_then(|i| tail.get(i + 1))
        .copied();
    assert_eq!(
        mode,
        Some("icanon"),
        "the terminal is back in cooked mode:\n{end}"
    );
}

#[test]
fn console_live_incident_with_a_pasted_replacement_never_shows_it() {
    if !tmux_ready() {
        return;
    }
    let env = TestEnv::with_inventory_extra(
        "\n[[keys]]\nid = \"crm-stored\"\nagents = [\"research\"]\nprovider = \"crm\"\nscopes = [\"contacts.read\"]\nstore = \"vault\"\nsecret_path = \"agents/research/crm\"\ncreated_at = 2026-11-01\n",
    );
    env.vault
        .put("agents/research/crm", "value", "crm-old-value-0000000000");
    let pasted = "crm-PASTEDcanary7Hk2Lp9Qz4Wm1";
    let mut t = Tmux::start(&env, "live");
    t.wait_for("Inventory");
    t.keys(&["/"]);
    t.literal("crm-stored");
    t.keys(&["Enter", "i"]);
    t.wait_for("LIVE incident");
    t.keys(&["y"]);
    t.wait_for("MANUAL STEP");
    t.literal("done");
    t.keys(&["Enter"]);
    t.wait_for("REPLACEMENT KEY");
    for chunk in pasted.as_bytes().chunks(7) {
        t.literal(std::str::from_utf8(chunk).unwrap());
        t.capture();
    }
    t.wait_for(&format!("({} characters, hidden)", pasted.len()));
    t.keys(&["Enter"]);
    t.wait_for("store_write");
    t.keys(&["y"]);
    t.wait_for("verify_new");
    t.literal("done");
    t.keys(&["Enter"]);
    t.wait_for("CUSTOMER DATA");
    t.keys(&["y"]);
    t.literal("contacts were readable");
    t.keys(&["Enter"]);
    // The inventory edit is shown as a diff, not as an escaped JSON string.
    let edit = t.wait_for("update_inventory");
    assert!(!edit.contains("{\"diff\""), "{edit}");
    assert!(edit.contains("+rotation_days = 30"), "{edit}");
    t.keys(&["y"]);
    t.wait_for("COMPLETED");
    assert_eq!(
        env.vault
            .value("agents/research/crm", "value", None)
            .as_deref(),
        Some(pasted),
        "the pasted key reached the store"
    );
    for screen in &t.captures {
        assert!(
            !screen.contains("PASTED"),
            "the pasted secret appeared on screen:\n{screen}"
        );
    }
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
}

/// A headless campaign in a real terminal: the progress display (keys done / failed /
/// running, containment and the fleet's time to contain) and the closing summary, without a
/// status line per record entry; `-v` brings those lines back.
#[test]
fn headless_campaign_on_a_terminal_shows_progress_and_the_summary_not_the_lines() {
    if !tmux_ready() {
        return;
    }
    // A status line starts with the entry's time: `10:00:00  support-llm ...`.
    let status_line = |l: &str| {
        let b = l.as_bytes();
        b.len() > 10
            && b[2] == b':'
            && b[5] == b':'
            && l[..8].bytes().all(|c| c.is_ascii_digit() || c == b':')
    };
    let campaign = [
        "incident",
        "start",
        "support-llm",
        "research-llm",
        "--yes",
        "--no-tui",
    ];
    let env = TestEnv::new();
    let mut t = Tmux::start_args(&env, "campaign", &campaign);
    let end = t.wait_for("EXITED rc=0");
    assert!(
        end.contains("2/2 keys: 2 done, 0 failed, 0 running"),
        "the final counts stay on the screen:\n{end}"
    );
    assert!(
        end.contains("contained 2/2, fleet time to contain "),
        "{end}"
    );
    assert!(end.contains(": completed"), "the summary follows:\n{end}");
    assert!(end.contains("fleet time to contain: "), "{end}");
    assert!(
        !end.lines().any(status_line),
        "no per-entry status line without -v:\n{end}"
    );
    drop(t);

    let env = TestEnv::new();
    let mut verbose = vec!["-v"];
    verbose.extend(campaign);
    let mut t = Tmux::start_args(&env, "campaign-v", &verbose);
    let end = t.wait_for("EXITED rc=0");
    assert!(end.contains("2/2 keys: 2 done"), "{end}");
    assert!(end.contains(": completed"), "{end}");
    // The debug log's path is the last thing keyfire says.
    assert!(end.contains("debug log written to"), "{end}");
    assert!(
        t.scrollback().lines().any(status_line),
        "-v shows the status lines on a terminal:\n{}",
        t.scrollback()
    );
}

/// `audit --all` on a terminal counts the keys as their usage is read, then prints the same
/// report as anywhere else.
#[test]
fn audit_of_every_key_on_a_terminal_counts_the_keys_then_reports() {
    if !tmux_ready() {
        return;
    }
    let env = TestEnv::new();
    let total = env.run(&["inventory", "list", "--json"]);
    let keys = serde_json::from_slice::<serde_json::Value>(&total.stdout)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .expect("inventory list --json is an array");
    assert!(keys > 1, "the test fleet has several keys");
    let mut t = Tmux::start_args(&env, "audit", &["audit", "--all"]);
    let end = t.wait_for("EXITED rc=");
    assert!(end.contains(&format!("{keys} keys audited, ")), "{end}");
    // The report scrolls the counter off the screen; it is above it.
    let all = t.scrollback();
    assert!(
        all.contains(&format!("{keys}/{keys} keys audited: usage read")),
        "{all}"
    );
}
