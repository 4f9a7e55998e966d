//! `keyfire inventory list | show | lint` on the built binary: output, JSON and exit codes.

use std::path::PathBuf;

use crate::common::{TestEnv, stderr, stdout};

fn keyfire() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_keyfire"));
    c.env_remove("KEYFIRE_INVENTORY")
        .env_remove("KEYFIRE_CONFIG")
        .env(
            "KEYFIRE_DATA_DIR",
            std::env::temp_dir().join("keyfire-test-nodata"),
        );
    c
}

fn fixtures(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inventory")
        .join(kind)
}

#[test]
fn every_invalid_inventory_exits_2_naming_file_line_and_column() {
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures("invalid")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("# expect: ")
            .expect("fixture starts with # expect:");
        let (pos, message) = expect.split_at(expect.find(": ").unwrap());
        let message = &message[2..];
        for cmd in [
            &["inventory", "lint"][..],
            &["inventory", "list"],
            &["inventory", "show", "k1"],
        ] {
            let out = keyfire()
                .args(cmd)
                .arg("--inventory")
                .arg(&path)
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{}: {cmd:?} should exit 2, stderr: {err}",
                path.display()
            );
            let located = format!("{}:{pos}: ", path.display());
            assert!(
                err.contains(&located),
                "{}: expected {located:?} in {err}",
                path.display()
            );
            assert!(
                err.contains(message),
                "{}: expected {message:?} in {err}",
                path.display()
            );
            assert!(
                stdout(&out).is_empty(),
                "nothing is printed on stdout for invalid input"
            );
            assert!(
                !err.contains("pasted-by-mistake"),
                "a value pasted where a reference belongs is never echoed: {err}"
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 10,
        "expected a fixture per invalid case, found {checked}"
    );
}

#[test]
fn all_problems_are_reported_not_just_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.toml");
    std::fs::write(
        &path,
        "schema = 1\n[[agents]]\nid = \"a\"\nexpected_networks = [\"nope\"]\n[[keys]]\nid = \"k\"\nprovider = \"ghost\"\nagents = [\"nobody\"]\n",
    )
    .unwrap();
    let out = keyfire()
        .args(["inventory", "lint", "--inventory"])
        .arg(&path)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains(":4:22: invalid network \"nope\""), "{err}");
    assert!(
        err.contains(":7:12: key `k` names provider `ghost`"),
        "{err}"
    );
    assert!(err.contains(":8:11: key `k` names agent `nobody`"), "{err}");
    assert!(err.contains("3 problems"), "{err}");
}

#[test]
fn missing_inventory_is_an_input_error() {
    let out = keyfire()
        .args(["inventory", "list", "--inventory", "/nonexistent/inv.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/inv.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn valid_fixture_lists_and_lints() {
    let path = fixtures("valid").join("base.toml");
    let out = keyfire()
        .args(["inventory", "list", "--json", "--inventory"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["id"], "bot-llm");
    assert_eq!(rows[0]["provider"], "llm");
    assert_eq!(rows[0]["agents"][0], "bot");
}

#[test]
fn list_shows_age_due_and_status_relative_to_today() {
    let today = chrono::Utc::now().date_naive();
    let overdue = today - chrono::Days::new(100);
    let soon = today - chrono::Days::new(80);
    let fresh = today - chrono::Days::new(5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.toml");
    std::fs::write(
        &path,
        format!(
            "schema = 1\n[[providers]]\nid = \"p\"\nkind = \"manual\"\n[[agents]]\nid = \"a\"\nowner = \"o\"\noncall = \"c\"\n\
             [[keys]]\nid = \"old\"\nagents = [\"a\"]\nprovider = \"p\"\nlast_rotated = {overdue}\n\
             [[keys]]\nid = \"soon\"\nagents = [\"a\"]\nprovider = \"p\"\nlast_rotated = {soon}\n\
             [[keys]]\nid = \"fresh\"\nagents = [\"a\"]\nprovider = \"p\"\ncreated_at = {fresh}\nrotation_days = 30\n"
        ),
    )
    .unwrap();
    let out = keyfire()
        .args(["inventory", "list", "--json", "--inventory"])
        .arg(&path)
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(row("old")["age_days"], 100);
    assert_eq!(row("old")["due_in_days"], -10);
    assert_eq!(row("old")["status"], "overdue");
    assert_eq!(row("soon")["due_in_days"], 10);
    assert_eq!(row("soon")["status"], "due-soon");
    assert_eq!(row("fresh")["due_in_days"], 25);
    assert_eq!(row("fresh")["status"], "ok");

    let text = keyfire()
        .args(["inventory", "list", "--inventory"])
        .arg(&path)
        .output()
        .unwrap();
    let text = stdout(&text);
    assert!(text.contains("3 keys, 1 overdue"), "{text}");
}

#[test]
fn lint_reports_each_finding_code_and_exits_1() {
    // Due in 5 days with the 90-day interval: inside the default due-soon window.
    let due_soon = chrono::Utc::now().date_naive() - chrono::Duration::days(85);
    let env = TestEnv::with_inventory_extra(&format!(
        "\n[[agents]]\nid = \"orphan-agent\"\n\n[[keys]]\nid = \"shared-wide\"\nagents = [\"support-bot\", \"orphan-agent\"]\nprovider = \"llm\"\nprovider_key_id = \"key_x\"\nscopes = [\"model.request\", \"files.write\"]\nneeds = [\"model.request\"]\nlast_rotated = 2025-01-01\n\
         \n[[keys]]\nid = \"nobody-holds\"\nagents = []\nprovider = \"llm\"\nprovider_key_id = \"key_y\"\ncreated_at = 2026-11-01\n\
         \n[[keys]]\nid = \"due-soon\"\nagents = [\"support-bot\"]\nprovider = \"llm\"\nprovider_key_id = \"key_z\"\nlast_rotated = {due_soon}\n\
         \n[[keys]]\nid = \"ageless\"\nagents = [\"support-bot\"]\nprovider = \"llm\"\nprovider_key_id = \"key_w\"\n"
    ));
    let out = env.run(&["inventory", "lint", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<(String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |key: &str, code: &str| codes.iter().any(|(k, c)| k == key && c == code);
    assert!(has("shared-wide", "shared-key"), "{codes:?}");
    assert!(has("shared-wide", "scope-beyond-needs"), "{codes:?}");
    assert!(has("shared-wide", "rotation-overdue"), "{codes:?}");
    assert!(has("shared-wide", "no-owner"), "{codes:?}");
    assert!(has("shared-wide", "no-oncall"), "{codes:?}");
    assert!(has("shared-wide", "no-store"), "{codes:?}");
    assert!(has("sales-crm", "manual-revoke"), "{codes:?}");
    assert!(has("support-llm", "rotation-overdue"), "{codes:?}");
    assert!(has("nobody-holds", "no-agent"), "{codes:?}");
    assert!(has("due-soon", "rotation-due-soon"), "{codes:?}");
    assert!(!has("due-soon", "rotation-overdue"), "{codes:?}");
    assert!(has("ageless", "unknown-age"), "{codes:?}");
    assert!(
        !has("research-llm", "rotation-overdue"),
        "fresh key is not overdue: {codes:?}"
    );
    assert!(!has("support-llm", "shared-key"));
}

#[test]
fn lint_is_clean_with_exit_0_on_a_healthy_inventory() {
    let today = chrono::Utc::now().date_naive();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.toml");
    std::fs::write(
        &path,
        format!(
            "schema = 1\n[[providers]]\nid = \"p\"\nkind = \"fake\"\nadmin_credential = \"env:X\"\n[[stores]]\nid = \"s\"\nkind = \"memory\"\n\
             [[agents]]\nid = \"a\"\nowner = \"o\"\noncall = \"c\"\n[[keys]]\nid = \"k\"\nagents = [\"a\"]\nprovider = \"p\"\nprovider_key_id = \"key_1\"\n\
             scopes = [\"x\"]\nneeds = [\"x\"]\nstore = \"s\"\nsecret_path = \"a/k\"\nlast_rotated = {today}\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    // Never drilled: the provider gets a drill-overdue finding.
    let out = keyfire()
        .env("KEYFIRE_DATA_DIR", &data)
        .args(["inventory", "lint", "--json", "--inventory"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["code"], "drill-overdue");
    assert_eq!(v["findings"][0]["provider"], "p");
    // A drill (even one whose reads fail: nothing listens there) is a drill.
    let drill = keyfire()
        .env("KEYFIRE_DATA_DIR", &data)
        .env("X", "token")
        .args(["drill", "--all", "--inventory"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(drill.status.code(), Some(1), "{}", stdout(&drill));
    assert!(
        stdout(&drill).contains("PROBLEM: provider unreachable"),
        "{}",
        stdout(&drill)
    );
    let out = keyfire()
        .env("KEYFIRE_DATA_DIR", &data)
        .args(["inventory", "lint", "--inventory"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("1 key checked, 0 findings"));
}

#[test]
fn show_gives_the_blast_radius() {
    let env = TestEnv::new();
    let out = env.run(&["inventory", "show", "research-llm", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let radius = &v["blast_radius"];
    assert_eq!(radius["agents"][0]["id"], "research");
    assert_eq!(radius["agents"][0]["oncall"], "#research");
    assert_eq!(
        radius["other_keys"][0]["id"], "sales-crm",
        "the research agent also holds the CRM key"
    );
    assert_eq!(radius["store"], "vault");
    assert_eq!(radius["secret_path"], crate::common::OTHER_PATH);
    assert_eq!(radius["owners"][0], "research@example.com");

    let text = stdout(&env.run(&["inventory", "show", "research-llm"]));
    assert!(text.contains("also holds  sales-crm"), "{text}");
    assert!(text.contains("on-call #research"), "{text}");

    let missing = env.run(&["inventory", "show", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn inventory_split_over_a_directory_loads_as_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("10-providers.toml"),
        "schema = 1\n[[providers]]\nid = \"p\"\nkind = \"manual\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("20-keys.toml"), "schema = 1\n[[agents]]\nid = \"a\"\n[[keys]]\nid = \"k\"\nagents = [\"a\"]\nprovider = \"p\"\n").unwrap();
    let out = keyfire()
        .args(["inventory", "list", "--json", "--inventory"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 1);
    // The same id in two files is a duplicate, named with both places.
    std::fs::write(
        dir.path().join("30-dup.toml"),
        "schema = 1\n[[keys]]\nid = \"k\"\nprovider = \"p\"\n",
    )
    .unwrap();
    let out = keyfire()
        .args(["inventory", "list", "--inventory"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("30-dup.toml:3:6: duplicate key id `k` (first defined at"),
        "{}",
        stderr(&out)
    );
}
