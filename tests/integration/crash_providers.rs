//! SIGKILL at the crash points of `crash.rs`, on providers whose create is not idempotent
//! (OpenAI's service-account create takes no idempotency key), and lost create answers. Each
//! resume must end with exactly one replacement live, one store write, the old key dead and
//! no orphan.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use keyfire::sim::Fault;
use keyfire::sim::openai::KeyOwner;

use crate::common::{stderr, stdout};
use crate::llm::{KEY, LlmEnv, PATH, PROJECT};

fn service_accounts_path() -> String {
    format!("/v1/organization/projects/{PROJECT}/service_accounts")
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(env: &LlmEnv, args: &[&str]) -> Child {
    let mut c = env.cmd();
    c.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    c.spawn().expect("spawn keyfire")
}

/// Run `args` until the server has handled the `n`th request `method path…` (whose answer it
/// holds back), then SIGKILL keyfire.
fn kill_after(env: &LlmEnv, args: &[&str], method: &str, path: &str, n: usize, vault: bool) {
    let hold = Fault::hold(method, path, Duration::from_secs(60)).after(n as u32 - 1);
    let count = || {
        let reqs = if vault {
            env.vault.requests()
        } else {
            env.requests()
        };
        reqs.iter()
            .filter(|r| r.method == method && r.path.starts_with(path))
            .count()
    };
    let before = count();
    if vault {
        env.vault.observer().inject(hold);
    } else {
        env.inject(hold);
    }
    let mut child = spawn(env, args);
    wait_until(&format!("{method} {path}"), || count() >= before + n);
    // The server has handled the request; its answer never reaches keyfire.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// The state every resume must end in.
fn exactly_one_replacement_live(env: &LlmEnv) {
    let sim = env.openai_sim();
    assert!(!env.accepts(&env.canaries.old_key), "the old key is dead");
    let live: Vec<_> = sim
        .live_keys()
        .into_iter()
        .filter(|k| matches!(&k.owner, KeyOwner::ServiceAccount(_)))
        .collect();
    assert_eq!(live.len(), 1, "exactly one replacement is live: {live:?}");
    assert_eq!(
        env.vault.value(PATH, "value", None).as_deref(),
        Some(live[0].value()),
        "the store holds the live replacement"
    );
    let KeyOwner::ServiceAccount(sa) = &live[0].owner else {
        unreachable!()
    };
    let orphans: Vec<_> = sim
        .service_accounts()
        .into_iter()
        .filter(|a| a.name.starts_with("keyfire-") && !a.deleted && a.id != *sa)
        .collect();
    assert!(orphans.is_empty(), "no orphan: {orphans:?}");
    assert_eq!(env.vault.version(PATH), 2, "exactly one new store version");
    let writes = env.vault.requests().iter().filter(|r| r.is_write()).count();
    assert_eq!(writes, 1, "the store write is sent once");
}

fn resume_ok(env: &LlmEnv, args: &[&str]) {
    let out = env.run(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
}

fn the_incident(env: &LlmEnv) -> String {
    let ids = env.incident_ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = ids[0].clone();
    assert_eq!(env.run(&["record", "verify", &id]).status.code(), Some(0));
    id
}

const START: &[&str] = &["incident", "start", KEY, "--yes", "--no-tui"];

#[test]
fn openai_killed_during_create_after_the_service_account_was_made() {
    let env = LlmEnv::openai();
    kill_after(&env, START, "POST", &service_accounts_path(), 1, false);
    let id = the_incident(&env);
    resume_ok(&env, &["incident", "resume", &id, "--yes", "--no-tui"]);
    exactly_one_replacement_live(&env);
    // The lost service account was found by its name and deleted, then made again.
    let accounts = env.openai_sim().service_accounts();
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    assert!(accounts[0].deleted);
}

#[test]
fn openai_killed_during_revoke() {
    let env = LlmEnv::openai();
    let path = format!("/v1/organization/projects/{PROJECT}/api_keys/");
    kill_after(&env, START, "DELETE", &path, 1, false);
    let id = the_incident(&env);
    resume_ok(&env, &["incident", "resume", &id, "--yes", "--no-tui"]);
    exactly_one_replacement_live(&env);
}

#[test]
fn openai_killed_during_the_store_write() {
    let env = LlmEnv::openai();
    kill_after(&env, START, "POST", "/v1/secret/data/", 1, true);
    let id = the_incident(&env);
    resume_ok(&env, &["incident", "resume", &id, "--yes", "--no-tui"]);
    exactly_one_replacement_live(&env);
}

/// The first replacement's value is lost (its store write fails), the resume makes a second
/// one and is killed while OpenAI holds that create's answer: the next resume must find the
/// second attempt's service account too, not only the first.
#[test]
fn openai_killed_during_the_second_create_attempt() {
    let env = LlmEnv::openai();
    env.vault
        .observer()
        .inject(Fault::fail("POST", "/v1/secret/data/", 500, 1));
    let out = env.live_incident();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let id = the_incident(&env);
    let resume = ["incident", "resume", id.as_str(), "--yes", "--no-tui"];
    kill_after(&env, &resume, "POST", &service_accounts_path(), 1, false);
    assert_eq!(env.openai_sim().service_accounts().len(), 2);
    resume_ok(&env, &resume);
    assert!(!env.accepts(&env.canaries.old_key));
    let sim = env.openai_sim();
    let live: Vec<_> = sim
        .live_keys()
        .into_iter()
        .filter(|k| matches!(&k.owner, KeyOwner::ServiceAccount(_)))
        .collect();
    assert_eq!(live.len(), 1, "exactly one replacement is live: {live:?}");
    assert_eq!(
        env.vault.value(PATH, "value", None).as_deref(),
        Some(live[0].value())
    );
    let accounts = sim.service_accounts();
    assert_eq!(
        accounts.iter().filter(|a| !a.deleted).count(),
        1,
        "{accounts:?}"
    );
}

/// A scheduled rotation whose create answer is lost (the service account is made, the reply
/// is garbled) leaves no replacement live; `rotate --due` then finishes it first.
#[test]
fn openai_rotation_whose_create_answer_was_lost_is_cleaned_up_and_finished() {
    let env = LlmEnv::openai();
    env.inject(Fault::lost_answer("POST", &service_accounts_path(), 1));
    let out = env.run(&["rotate", KEY, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let sim = env.openai_sim();
    let accounts = sim.service_accounts();
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert!(
        accounts[0].deleted,
        "the lost replacement was found and revoked"
    );
    assert!(
        env.accepts(&env.canaries.old_key),
        "the old key keeps working"
    );
    assert_eq!(env.vault.version(PATH), 1, "nothing stored");
    // The key is not due; the interrupted rotation is finished anyway, before anything new.
    let due = env.run(&["rotate", "--due", "--yes"]);
    let text = stdout(&due);
    assert_eq!(due.status.code(), Some(0), "{text}\n{}", stderr(&due));
    assert!(
        text.contains("finishing interrupted rotation rot-"),
        "{text}"
    );
    exactly_one_replacement_live(&env);
    assert_eq!(env.incident_ids().len(), 1, "no second rotation was opened");
}

/// kill -9 during a rotation's create; `rotate --resume ID` finishes it.
#[test]
fn openai_rotation_killed_during_create_resumes() {
    let env = LlmEnv::openai();
    kill_after(
        &env,
        &["rotate", KEY, "--yes"],
        "POST",
        &service_accounts_path(),
        1,
        false,
    );
    let id = the_incident(&env);
    assert!(id.starts_with("rot-"), "{id}");
    // A second rotation of the key is refused while this one is open.
    let again = env.run(&["rotate", KEY, "--yes"]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    resume_ok(&env, &["rotate", "--resume", &id, "--yes"]);
    exactly_one_replacement_live(&env);
}

/// The live replacement keys of the key's service accounts.
fn live_replacements(env: &LlmEnv) -> Vec<String> {
    env.openai_sim()
        .live_keys()
        .into_iter()
        .filter(|k| matches!(&k.owner, KeyOwner::ServiceAccount(_)))
        .map(|k| k.value().to_string())
        .collect()
}

/// A scheduled rotation that fails after storing its replacement (the new key is refused at
/// verification) puts the previous key back in the store and revokes the replacement: the
/// agents read the old key again, which still works, and nothing else is left live.
#[test]
fn rotation_failing_after_storing_restores_the_previous_version_and_revokes_the_replacement() {
    let env = LlmEnv::openai();
    // The replacement's verification (five tries) is refused; the old key is not used
    // before it, so nothing else sees the fault.
    env.inject(Fault::fail("GET", "/v1/models", 401, 5));
    let out = env.run(&["rotate", KEY, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        env.vault.version(PATH),
        3,
        "replacement, then the old value"
    );
    let replacement = env.vault.value(PATH, "value", Some(2)).expect("version 2");
    assert_ne!(replacement, env.canaries.old_key);
    assert_eq!(
        env.vault.value(PATH, "value", None).as_deref(),
        Some(env.canaries.old_key.as_str()),
        "agents read the old key again"
    );
    assert!(
        env.accepts(&env.canaries.old_key),
        "the old key keeps working"
    );
    assert!(
        !env.accepts(&replacement),
        "the replacement nobody reads is revoked"
    );
    assert!(live_replacements(&env).is_empty());
    let id = the_incident(&env);
    let restored = env.evidence(&id, "store_write");
    assert!(
        restored
            .iter()
            .any(|e| e["restored"] == true && e["version"] == 3),
        "{restored:?}"
    );
    assert!(
        !restored.iter().any(|e| e.get("both_keys_live").is_some()),
        "{restored:?}"
    );
    // The failed rotation is finished later with a fresh replacement.
    let resumed = env.run(&["rotate", "--resume", &id, "--yes"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stdout(&resumed));
    assert!(!env.accepts(&env.canaries.old_key), "the old key is dead");
    let live = live_replacements(&env);
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(env.vault.value(PATH, "value", None), Some(live[0].clone()));
    assert_eq!(env.vault.version(PATH), 4);
}

/// When the store refuses the restore (here every write after the replacement's fails), both
/// keys stay live and the record says so, naming the command that finishes the rotation.
#[test]
fn rotation_whose_restore_fails_leaves_both_keys_live_loudly() {
    let env = LlmEnv::openai();
    env.inject(Fault::fail("GET", "/v1/models", 401, 1000));
    env.vault
        .observer()
        .inject(Fault::fail("POST", "/v1/secret/data/", 403, 1000).after(1));
    let out = env.run(&["rotate", KEY, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(env.vault.version(PATH), 2, "only the replacement is stored");
    let replacement = env.vault.value(PATH, "value", None).expect("current");
    assert!(env.accepts(&env.canaries.old_key));
    assert!(
        env.accepts(&replacement),
        "the replacement the store serves stays live"
    );
    let id = the_incident(&env);
    let evidence = env.evidence(&id, "store_write");
    let loud = evidence
        .iter()
        .find(|e| e["both_keys_live"] == true)
        .unwrap_or_else(|| panic!("{evidence:?}"));
    let text = loud["text"].as_str().unwrap_or("");
    assert!(
        text.contains("was not restored") && text.contains("rotate --resume"),
        "{text}"
    );
}

/// The store did the write but its answer was lost (no kill: the connection answered with a
/// proxy's page). Nothing may treat the replacement the store now serves as unstored: the
/// resume reads the store back, adopts what it finds, and never writes or revokes it again.
#[test]
fn a_store_write_whose_answer_was_lost_is_adopted_not_revoked() {
    let env = LlmEnv::openai();
    env.vault
        .observer()
        .inject(Fault::lost_answer("POST", "/v1/secret/data/", 1));
    let out = env.run(START);
    let id = the_incident(&env);
    if out.status.code() != Some(0) {
        let served = env.vault.value(PATH, "value", None).expect("current");
        assert_ne!(served, env.canaries.old_key, "the write did happen");
        assert!(
            env.accepts(&served),
            "the value the store serves is never revoked while it is served"
        );
        resume_ok(&env, &["incident", "resume", &id, "--yes", "--no-tui"]);
    }
    exactly_one_replacement_live(&env);
}

/// SIGKILL while the store holds the restore's answer (a rotation whose replacement failed
/// verification after it was stored): the old value is back in the store, the replacement is
/// not yet revoked, and the record never learned the restore's version. The resume finishes
/// the restore and then the rotation, leaving exactly one live key, the one the store serves.
#[test]
fn a_rotation_killed_during_its_restore_resumes_to_one_live_key() {
    let env = LlmEnv::openai();
    env.inject(Fault::fail("GET", "/v1/models", 401, 5));
    // The replacement is the first write, the restore the second.
    kill_after(
        &env,
        &["rotate", KEY, "--yes"],
        "POST",
        "/v1/secret/data/",
        2,
        true,
    );
    let id = the_incident(&env);
    assert_eq!(env.vault.version(PATH), 3, "the restore reached the store");
    assert_eq!(
        env.vault.value(PATH, "value", None).as_deref(),
        Some(env.canaries.old_key.as_str())
    );
    // One resume finishes the restore (the replacement nobody reads is revoked) and then
    // the rotation, writing over the version that holds the old key again.
    let out = env.run(&["rotate", "--resume", &id, "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!env.accepts(&env.canaries.old_key), "the old key is dead");
    let live = live_replacements(&env);
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(env.vault.value(PATH, "value", None), Some(live[0].clone()));
}
