//! `keyfire completions SHELL` and `keyfire man`: generated from the parser, for every shell
//! and every subcommand, without an inventory.

use std::process::Command;

fn keyfire(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keyfire"))
        .args(args)
        .env_remove("KEYFIRE_INVENTORY")
        .env_remove("KEYFIRE_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = keyfire(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        for sub in ["incident", "drill", "rotate", "record", "completions"] {
            assert!(text.contains(sub), "{shell} completes {sub}");
        }
    }
    // The bash script is valid bash.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("keyfire.bash");
    std::fs::write(&script, keyfire(&["completions", "bash"]).stdout).unwrap();
    if let Ok(check) = Command::new("bash").arg("-n").arg(&script).output() {
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    assert_eq!(keyfire(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_writes_one_page_per_command() {
    let out = keyfire(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH keyfire 1"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let out = keyfire(&["man", "--dir", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(0));
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for expected in [
        "keyfire.1",
        "keyfire-incident.1",
        "keyfire-incident-start.1",
        "keyfire-record-verify.1",
        "keyfire-completions.1",
    ] {
        assert!(
            pages.iter().any(|p| p == expected),
            "{expected} in {pages:?}"
        );
    }
    let start = std::fs::read_to_string(dir.path().join("keyfire-incident-start.1")).unwrap();
    assert!(
        start.contains("keyfire\\-incident\\-start"),
        "titled with its full name"
    );
    assert!(
        start.contains("exposed\\-since"),
        "its options are documented"
    );
}
