//! SIGKILL in the middle of each step, then `incident resume`: the record stays valid and the
//! incident finishes without repeating a completed write.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use keyfire::sim::Fault;

use crate::common::{OLD_PATH, TestEnv, stdout};

enum Point {
    /// The server handles this request, then holds the answer until keyfire is killed.
    Request {
        method: &'static str,
        path: &'static str,
        after: u32,
        server: Server,
    },
    /// keyfire stops at a failpoint inside a local action.
    Failpoint(&'static str),
}

#[derive(Clone, Copy)]
enum Server {
    Provider,
    Vault,
}

fn start(env: &TestEnv, failpoint: Option<&str>) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = env.cmd();
    cmd.args(["incident", "start", "support-llm", "--yes", "--no-tui"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(f) = failpoint {
        cmd.env("KEYFIRE_FAILPOINT", f);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn crash_and_resume(point: Point) -> TestEnv {
    let env = TestEnv::new();
    let old_version = env.vault.version(OLD_PATH);
    let (mut child, stderr) = match &point {
        Point::Request {
            method,
            path,
            after,
            server,
        } => {
            let mut fault = Fault::hold(method, path, Duration::from_secs(60)).after(*after);
            if *path == "/v1/keys" {
                fault = fault.exact();
            }
            let observer = match server {
                Server::Provider => env.api.observer(),
                Server::Vault => env.vault.observer(),
            };
            observer.inject(fault);
            let started = start(&env, None);
            wait_until(&format!("{method} {path}"), || {
                observer
                    .requests()
                    .iter()
                    .filter(|r| {
                        r.method == *method
                            && if *path == "/v1/keys" {
                                r.path == *path
                            } else {
                                r.path.starts_with(path)
                            }
                    })
                    .count()
                    > *after as usize
            });
            // The server has handled the request; its answer never reaches keyfire.
            std::thread::sleep(Duration::from_millis(300));
            started
        }
        Point::Failpoint(name) => {
            let started = start(&env, Some(name));
            let rx = &started.1;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let line = rx
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .expect("failpoint reached");
                if line.contains("paused at failpoint") {
                    break;
                }
            }
            started
        }
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(stderr);

    let ids = env.incident_ids();
    assert_eq!(ids.len(), 1);
    let id = &ids[0];
    let verify = env.run(&["record", "verify", id]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "record valid after SIGKILL: {}",
        stdout(&verify)
    );
    let entries = env.entries(id);
    assert!(
        !entries.iter().any(|e| e.kind == "incident_closed"),
        "killed before the end"
    );

    let resumed = env.run(&["incident", "resume", id, "--yes", "--no-tui"]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "resume: {}",
        stdout(&resumed)
    );
    assert_eq!(env.run(&["record", "verify", id]).status.code(), Some(0));

    // The old key is gone, exactly one replacement exists, is live, and is what the store holds.
    assert!(!env.api.accepts(&env.canaries.old_key));
    let created: Vec<_> = env
        .api
        .live_keys()
        .into_iter()
        .chain(env.api.key(&env.old_key_id))
        .collect();
    let replacements: Vec<_> = created
        .iter()
        .filter(|k| k.name.starts_with("keyfire-"))
        .collect();
    assert_eq!(
        replacements.len(),
        1,
        "exactly one replacement: {replacements:?}"
    );
    let replacement = replacements[0];
    assert!(!replacement.deleted);
    assert_eq!(
        env.vault.version(OLD_PATH),
        old_version + 1,
        "exactly one new store version"
    );
    assert_eq!(
        env.vault.value(OLD_PATH, "value", None).as_deref(),
        Some(replacement.value())
    );
    let deletes = env
        .api
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.ends_with(&env.old_key_id))
        .count();
    assert_eq!(deletes, 1, "the revoke is sent once");
    let store_writes = env.vault.requests().iter().filter(|r| r.is_write()).count();
    assert_eq!(store_writes, 1, "the store write is sent once");
    let inventory = std::fs::read_to_string(env.inventory_path()).unwrap();
    assert_eq!(
        inventory
            .lines()
            .filter(|l| *l == "rotation_days = 30")
            .count(),
        1,
        "the inventory is edited once"
    );
    let closed = env
        .entries(id)
        .into_iter()
        .rev()
        .find(|e| e.kind == "incident_closed")
        .unwrap();
    assert_eq!(closed.data["outcome"], "completed");
    env
}

#[test]
fn killed_during_open() {
    crash_and_resume(Point::Request {
        method: "GET",
        path: "/v1/usage",
        after: 0,
        server: Server::Provider,
    });
}

#[test]
fn killed_during_revoke_after_the_provider_deleted_the_key() {
    let env = crash_and_resume(Point::Request {
        method: "DELETE",
        path: "/v1/keys/",
        after: 0,
        server: Server::Provider,
    });
    let id = &env.incident_ids()[0];
    let skipped = env
        .entries(id)
        .into_iter()
        .find(|e| e.kind == "action_done" && e.data["action"] == "revoke")
        .unwrap();
    assert_eq!(skipped.data["status"], "skipped");
    assert!(
        skipped.data["reason"]
            .as_str()
            .unwrap()
            .contains("already revoked")
    );
}

#[test]
fn killed_during_create_after_the_provider_made_the_key() {
    let env = crash_and_resume(Point::Request {
        method: "POST",
        path: "/v1/keys",
        after: 0,
        server: Server::Provider,
    });
    // The resumed create carries the same Idempotency-Key and gets the same key back.
    let creates = env
        .api
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/keys")
        .count();
    assert_eq!(creates, 2);
}

#[test]
fn killed_during_the_store_write() {
    crash_and_resume(Point::Request {
        method: "POST",
        path: "/v1/secret/data/",
        after: 0,
        server: Server::Vault,
    });
}

#[test]
fn killed_during_audit() {
    crash_and_resume(Point::Request {
        method: "GET",
        path: "/v1/usage",
        after: 1,
        server: Server::Provider,
    });
}

#[test]
fn killed_during_report() {
    crash_and_resume(Point::Failpoint("write_report"));
}

#[test]
fn killed_during_reschedule_after_the_inventory_was_written() {
    let env = crash_and_resume(Point::Failpoint("update_inventory:written"));
    let id = &env.incident_ids()[0];
    let done = env
        .entries(id)
        .into_iter()
        .rev()
        .find(|e| e.kind == "action_done" && e.data["action"] == "update_inventory")
        .unwrap();
    assert_eq!(done.data["status"], "skipped");
}
