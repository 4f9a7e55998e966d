//! Shared by the benchmarks: synthetic inventories and whole-process measurement.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// An inventory of `keys` keys over 8 providers, 2 stores and keys/10 agents, with shared
/// keys, over-broad scopes and overdue rotations sprinkled in (so lint has work to do).
pub fn inventory(keys: usize) -> String {
    let agents = (keys / 10).max(1);
    let mut s = String::with_capacity(keys * 330);
    s.push_str("schema = 1\n\n[policy]\nrotation_days = 90\n\n");
    for p in 0..8 {
        let kind = if p == 7 { "manual" } else { "fake" };
        let _ = writeln!(s, "[[providers]]\nid = \"provider-{p}\"\nkind = \"{kind}\"");
        if kind != "manual" {
            let _ = writeln!(
                s,
                "admin_credential = \"env:PROVIDER_{p}_ADMIN\"\nbase_url = \"http://127.0.0.1:9\""
            );
        }
        s.push('\n');
    }
    s.push_str("[[stores]]\nid = \"vault\"\nkind = \"vault-kv2\"\naddress = \"http://127.0.0.1:8200\"\ncredential = \"env:VAULT_TOKEN\"\n\n");
    s.push_str("[[stores]]\nid = \"local\"\nkind = \"memory\"\n\n");
    for a in 0..agents {
        let _ = writeln!(
            s,
            "[[agents]]\nid = \"agent-{a}\"\nowner = \"team-{}@example.com\"\noncall = \"#oncall-{}\"\nexpected_networks = [\"203.0.113.0/24\"]\n",
            a % 50,
            a % 50
        );
    }
    for k in 0..keys {
        let a = k % agents;
        let shared = if k % 17 == 0 {
            format!(", \"agent-{}\"", (a + 1) % agents)
        } else {
            String::new()
        };
        let month = 1 + k % 11;
        let day = 1 + k % 28;
        let _ = writeln!(
            s,
            "[[keys]]\nid = \"key-{k}\"\nagents = [\"agent-{a}\"{shared}]\nprovider = \"provider-{}\"\nprovider_key_id = \"key_{k:08}\"\n\
             scopes = [\"model.request\"{}]\nneeds = [\"model.request\"]\nstore = \"vault\"\nsecret_path = \"agents/agent-{a}/key-{k}\"\n\
             created_at = 2026-{month:02}-{day:02}\n",
            k % 8,
            if k % 5 == 0 { ", \"files.write\"" } else { "" }
        );
    }
    s
}

pub struct Run {
    pub wall: Duration,
    pub max_rss_kib: i64,
    pub code: Option<i32>,
}

/// Run a command to completion; wall time and the child's peak resident memory.
pub fn measure(cmd: &mut Command) -> Run {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child with valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(r, pid, "wait4 failed");
    // The child is reaped; keep std from waiting on it again.
    std::mem::forget(child.stdin.take());
    let code = if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    let _ = &mut child;
    std::mem::forget(child);
    Run {
        wall,
        max_rss_kib: usage.ru_maxrss,
        code,
    }
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}
