//! The signed record (DESIGN section 5): full rewrites are caught, a record verifies
//! elsewhere with its public key, a crash never turns into "TAMPERED", a failed append stops
//! the incident resumably, and files in the data directory are private and never followed
//! through symlinks.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use keyfire::record::entry_hash;
use serde_json::Value;

use crate::common::{TestEnv, stderr, stdout};

/// A completed live incident over the given keys; its id.
fn finished(env: &TestEnv, keys: &[&str]) -> String {
    let mut args = vec!["incident", "start"];
    args.extend_from_slice(keys);
    args.extend_from_slice(&["--yes", "--no-tui"]);
    let out = env.run(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    env.incident_ids().pop().expect("an incident")
}

/// An incident killed (SIGKILL) while paused at a failpoint: open, resumable.
fn killed_at(env: &TestEnv, failpoint: &str) -> String {
    let mut child = env
        .cmd()
        .args(["incident", "start", "support-llm", "--yes", "--no-tui"])
        .env("KEYFIRE_FAILPOINT", failpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in lines.map_while(Result::ok) {
        if line.contains("paused at failpoint") {
            break;
        }
        assert!(Instant::now() < deadline, "failpoint not reached");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    env.incident_ids().pop().expect("an incident")
}

fn lines_of(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Recompute every `prev` and `hash` after an edit, as a forger would.
fn rechain(entries: &mut [Value]) {
    let mut prev = keyfire::record::GENESIS.to_string();
    for e in entries.iter_mut() {
        e["prev"] = Value::String(prev.clone());
        let h = entry_hash(
            e["seq"].as_u64().unwrap(),
            e["ts"].as_str().unwrap(),
            e["kind"].as_str().unwrap(),
            e["step"].as_str(),
            &e["data"],
            &prev,
        );
        e["hash"] = Value::String(h.clone());
        prev = h;
    }
}

fn write_record(path: &Path, entries: &[Value]) {
    let mut text = String::new();
    for e in entries {
        text.push_str(&serde_json::to_string(e).unwrap());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// Rewrite the head to name the last line, keeping whatever signature it had.
fn rewrite_head(dir: &Path, entries: &[Value]) {
    let head_path = dir.join("head");
    let mut head: Value =
        serde_json::from_str(&std::fs::read_to_string(&head_path).unwrap()).unwrap();
    let last = entries.last().unwrap();
    head["seq"] = last["seq"].clone();
    head["hash"] = last["hash"].clone();
    std::fs::write(&head_path, serde_json::to_string(&head).unwrap()).unwrap();
}

fn verify(env: &TestEnv, id: &str) -> (i32, String) {
    let out = env.run(&["record", "verify", id]);
    (
        out.status.code().unwrap_or(-1),
        stdout(&out) + &stderr(&out),
    )
}

#[test]
fn a_record_cut_to_20_lines_with_a_rewritten_head_is_caught() {
    let env = TestEnv::new();
    let id = finished(&env, &["support-llm", "research-llm"]);
    let path = env.record_path(&id);
    let mut entries = lines_of(&path);
    assert!(
        entries.len() > 20,
        "a long enough record ({})",
        entries.len()
    );
    assert_eq!(verify(&env, &id).0, 0);
    entries.truncate(20);
    write_record(&path, &entries);
    rewrite_head(path.parent().unwrap(), &entries);
    let (code, text) = verify(&env, &id);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("TAMPERED") && text.contains("signature"),
        "{text}"
    );
    // Without any signature in the head either.
    std::fs::write(
        path.with_file_name("head"),
        serde_json::json!({"seq": 20, "hash": entries[19]["hash"]}).to_string(),
    )
    .unwrap();
    let (code, text) = verify(&env, &id);
    assert_eq!(code, 1, "{text}");
}

#[test]
fn an_edited_field_with_every_hash_and_the_head_recomputed_is_caught() {
    let env = TestEnv::new();
    let id = finished(&env, &["support-llm"]);
    let path = env.record_path(&id);
    let mut entries = lines_of(&path);
    entries[0]["data"]["reason"] = Value::String("nothing happened".into());
    rechain(&mut entries);
    write_record(&path, &entries);
    rewrite_head(path.parent().unwrap(), &entries);
    let (code, text) = verify(&env, &id);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("signature"), "{text}");

    // A forger who also re-signs with a key of their own (declared at line 1) is caught by
    // the key this machine trusts.
    let forger = keyfire::record::Signer::generate().unwrap().0;
    entries[0]["data"]["signing_key"] = Value::String(forger.public().to_text());
    rechain(&mut entries);
    write_record(&path, &entries);
    let last = entries.last().unwrap();
    let (seq, hash) = (
        last["seq"].as_u64().unwrap(),
        last["hash"].as_str().unwrap(),
    );
    let sig = forger.sign_hex(&keyfire::record::signing::head_message(seq, hash, &[]));
    std::fs::write(
        path.with_file_name("head"),
        serde_json::json!({"seq": seq, "hash": hash, "sig": sig}).to_string(),
    )
    .unwrap();
    let (code, text) = verify(&env, &id);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("re-signed by someone else"), "{text}");
}

#[test]
fn a_record_copied_elsewhere_verifies_with_its_public_key_alone() {
    let env = TestEnv::new();
    let id = finished(&env, &["support-llm"]);
    let out = env.run(&["record", "public-key"]);
    assert_eq!(out.status.code(), Some(0));
    let public = stdout(&out);
    assert!(public.trim().starts_with("ed25519:"), "{public}");
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for f in ["record.jsonl", "head"] {
        std::fs::copy(env.record_path(&id).with_file_name(f), copy.join(f)).unwrap();
    }
    let pubfile = elsewhere.path().join("keyfire.pub");
    std::fs::write(&pubfile, &public).unwrap();
    // Another machine: no private key of this one, an empty config.
    let other_key = elsewhere.path().join("other").join("key");
    let run = |pubfile: &Path| {
        env.cmd()
            .env("KEYFIRE_SIGNING_KEY_FILE", &other_key)
            .args(["record", "verify"])
            .arg(copy.join("record.jsonl"))
            .arg("--public-key")
            .arg(pubfile)
            .output()
            .unwrap()
    };
    let out = run(&pubfile);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("signed"), "{}", stdout(&out));
    assert!(!other_key.exists(), "verify never creates a key");
    // The wrong public key: refused.
    let stranger = keyfire::record::Signer::generate().unwrap().0;
    let wrong = elsewhere.path().join("wrong.pub");
    std::fs::write(&wrong, stranger.public().to_text()).unwrap();
    let out = run(&wrong);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("--public-key"), "{}", stdout(&out));
}

#[test]
fn a_missing_or_empty_head_after_a_crash_is_rebuilt_by_resume_and_verify_says_so() {
    for state in ["missing", "empty"] {
        let env = TestEnv::new();
        let id = killed_at(&env, "write_report");
        let head = env.record_path(&id).with_file_name("head");
        // A kill before the first head write, a lost head, or the empty head an older
        // keyfire created before writing it: not tampering.
        if state == "missing" {
            std::fs::remove_file(&head).unwrap();
        } else {
            std::fs::write(&head, "").unwrap();
        }
        let (code, text) = verify(&env, &id);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains(&format!("head file is {state}")), "{text}");
        let out = env.run(&["incident", "resume", &id, "--yes", "--no-tui"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        let (code, text) = verify(&env, &id);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("rebuilt") && text.contains(state), "{text}");
    }
}

#[test]
fn a_lagging_head_is_rebuilt_by_resume_and_verify_says_so() {
    let env = TestEnv::new();
    let id = killed_at(&env, "write_report");
    let path = env.record_path(&id);
    // A line written after the last signed head (a non-durable entry, then a crash).
    let mut entries = lines_of(&path);
    let last = entries.last().unwrap().clone();
    let seq = last["seq"].as_u64().unwrap() + 1;
    let mut extra = serde_json::json!({
        "seq": seq, "ts": last["ts"], "kind": "evidence", "step": last["step"],
        "data": {"key": "support-llm", "action": "note", "text": "written before the crash"},
        "prev": last["hash"], "hash": ""
    });
    extra["hash"] = Value::String(entry_hash(
        seq,
        extra["ts"].as_str().unwrap(),
        "evidence",
        extra["step"].as_str(),
        &extra["data"],
        last["hash"].as_str().unwrap(),
    ));
    entries.push(extra);
    write_record(&path, &entries);
    let (code, text) = verify(&env, &id);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("after the last signed head"), "{text}");
    let out = env.run(&["incident", "resume", &id, "--yes", "--no-tui"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let (code, text) = verify(&env, &id);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("rebuilt") && text.contains("lagging"),
        "{text}"
    );
}

/// keyfire under a file-size limit (a full disk's substitute): writes past it fail with
/// EFBIG (SIGXFSZ ignored, as the shell passes it on through exec).
fn limited_cmd(env: &TestEnv, blocks: u64) -> std::process::Command {
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_keyfire"));
    // The same environment as env.cmd().
    let template = env.cmd();
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.stdin(Stdio::null());
    c
}

#[test]
fn a_failed_append_stops_the_campaign_resumably() {
    let env = TestEnv::new();
    // 24 blocks of 512 bytes: the record outgrows it in the middle of the campaign.
    let out = limited_cmd(&env, 24)
        .args([
            "incident",
            "start",
            "support-llm",
            "research-llm",
            "--yes",
            "--no-tui",
        ])
        .output()
        .unwrap();
    let text = stdout(&out) + &stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("stopped accepting entries"), "{text}");
    let id = env.incident_ids().pop().unwrap();
    let path = env.record_path(&id);
    // No partial line, no duplicate seq: the chain verifies as it stands.
    let (code, vtext) = verify(&env, &id);
    assert_eq!(code, 0, "{vtext}");
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() <= 24 * 512 && bytes.ends_with(b"\n"));
    assert!(
        !lines_of(&path)
            .iter()
            .any(|e| e["kind"] == "incident_closed")
    );
    // With room again, the incident resumes and finishes.
    let out = env.run(&["incident", "resume", &id, "--yes", "--no-tui"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let (code, vtext) = verify(&env, &id);
    assert_eq!(code, 0, "{vtext}");
    assert!(
        lines_of(&path)
            .iter()
            .any(|e| e["kind"] == "incident_closed")
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn torn_fragments_are_kept_private_under_umask_000() {
    let env = TestEnv::new();
    let id = killed_at(&env, "write_report");
    let path = env.record_path(&id);
    let dir = path.parent().unwrap().to_path_buf();
    let resume = |env: &TestEnv| {
        let mut c = std::process::Command::new("sh");
        c.arg("-c")
            .arg("umask 000; exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_keyfire"))
            .args(["incident", "resume", &id, "--yes", "--no-tui"]);
        for (k, v) in env.cmd().get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.stdin(Stdio::null()).output().unwrap()
    };
    let append = |bytes: &[u8]| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(bytes).unwrap();
    };
    append(b"{\"seq\": 99, \"first fragment");
    let out = resume(&env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    append(b"{\"seq\": 100, \"second fragment");
    // Closed now: resume refuses, but sets the fragment aside first.
    let _ = resume(&env);
    let first = dir.join("record.jsonl.torn.1");
    let second = dir.join("record.jsonl.torn.2");
    assert_eq!(
        std::fs::read(&first).unwrap(),
        b"{\"seq\": 99, \"first fragment"
    );
    assert_eq!(
        std::fs::read(&second).unwrap(),
        b"{\"seq\": 100, \"second fragment"
    );
    for f in [
        &first,
        &second,
        &path,
        &dir.join("head"),
        &dir.join("report.md"),
        &dir.join("lock"),
    ] {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(verify(&env, &id).0, 0);
}

#[test]
fn symlinked_head_lock_and_report_are_refused() {
    let env = TestEnv::new();
    let id = finished(&env, &["support-llm"]);
    let dir: PathBuf = env.record_path(&id).parent().unwrap().to_path_buf();
    let target = env.dir.path().join("victim");
    std::fs::write(&target, "untouched").unwrap();

    // report.md
    std::fs::remove_file(dir.join("report.md")).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("report.md")).unwrap();
    let out = env.run(&["report", &id]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");

    // report.json
    std::fs::remove_file(dir.join("report.json")).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("report.json")).unwrap();
    let out = env.run(&["report", &id, "--format", "json"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");

    // head
    std::fs::rename(dir.join("head"), dir.join("head.real")).unwrap();
    std::os::unix::fs::symlink(dir.join("head.real"), dir.join("head")).unwrap();
    let (code, text) = verify(&env, &id);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("symbolic link"), "{text}");

    // lock (on an open incident, so resume gets as far as the lock)
    let env = TestEnv::new();
    let id = killed_at(&env, "write_report");
    let dir = env.record_path(&id).parent().unwrap().to_path_buf();
    std::fs::remove_file(dir.join("lock")).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("lock")).unwrap();
    let out = env.run(&["incident", "resume", &id, "--yes", "--no-tui"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
}

#[test]
fn report_refuses_a_tampered_record_and_force_marks_it_unverified() {
    let env = TestEnv::new();
    let id = finished(&env, &["support-llm"]);
    let out = env.run(&["report", &id]);
    assert_eq!(out.status.code(), Some(0));
    let closing = lines_of(&env.record_path(&id)).last().unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(stdout(&out).contains(&format!("Closing hash: `{closing}`")));

    let path = env.record_path(&id);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("support-llm", "support-xyz", 1)).unwrap();
    let out = env.run(&["report", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());

    let out = env.run(&["report", &id, "--force"]);
    assert_eq!(out.status.code(), Some(0));
    let md = stdout(&out);
    assert!(md.starts_with("> **UNVERIFIED"), "{md}");
    assert!(md.contains("# UNVERIFIED Breach report"));
    let out = env.run(&["report", &id, "--force", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(json["UNVERIFIED"].as_str().unwrap().contains("line 1"));
    assert!(json["record"]["unverified"].is_string());
}

#[test]
fn the_closing_hash_is_printed_at_close() {
    let env = TestEnv::new();
    let out = env.run(&["incident", "start", "support-llm", "--yes", "--no-tui"]);
    assert_eq!(out.status.code(), Some(0));
    let id = env.incident_ids().pop().unwrap();
    let closing = lines_of(&env.record_path(&id)).last().unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        stdout(&out).contains(&format!("closing hash: {closing}")),
        "{}",
        stdout(&out)
    );
    let report = std::fs::read_to_string(env.record_path(&id).with_file_name("report.md")).unwrap();
    assert!(report.contains(&closing));
}

#[test]
fn a_resume_after_the_signing_key_was_lost_declares_the_new_key() {
    let env = TestEnv::new();
    let id = killed_at(&env, "write_report");
    let key = env.signing_key_path();
    let old = std::fs::read_to_string(&key).unwrap();
    // A kernel keyring emptied by a reboot, or another machine: the key is gone.
    std::fs::remove_file(&key).unwrap();
    let out = env.run(&["incident", "resume", &id, "--yes", "--no-tui"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_ne!(std::fs::read_to_string(&key).unwrap(), old, "a new key");
    let entries = lines_of(&env.record_path(&id));
    let declared: Vec<&Value> = entries
        .iter()
        .filter_map(|e| e["data"].get("signing_key"))
        .collect();
    assert_eq!(
        declared.len(),
        2,
        "opened and resumed each declare their key"
    );
    assert_ne!(declared[0], declared[1]);
    let (code, text) = verify(&env, &id);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("(") && text.contains("signed)"), "{text}");
}

/// Several first uses at once (no signing key yet) agree on one key: none reads a key file
/// another is still writing, and every record they sign verifies. (A race: this can miss it;
/// the suite, where every test process shares one new key file, hit it before the fix.)
#[test]
fn first_uses_at_once_agree_on_one_signing_key() {
    let env = TestEnv::new();
    assert!(!env.signing_key_path().exists());
    let children: Vec<_> = (0..6)
        .map(|_| {
            env.cmd()
                .args(["incident", "start", "support-llm", "--dry-run", "--no-tui"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let ids = env.incident_ids();
    assert_eq!(ids.len(), 6);
    for id in &ids {
        let (code, text) = verify(&env, id);
        assert_eq!(code, 0, "{text}");
    }
}
