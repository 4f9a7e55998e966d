//! What keyfire asks of the kernel when it makes something durable, seen with `strace`: the
//! order of `fsync`, `rename` and the directory syncs cannot be observed from the files
//! themselves, only from the system calls (or a power cut).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{TestEnv, stderr, stdout};
use crate::emulators::{skip, which};

/// One traced call: its name, its arguments as strace printed them (with `-y`, file
/// descriptors carry their path: `7</data/incidents/inc-.../head>`) and whether it succeeded.
#[derive(Debug, Clone)]
struct Call {
    name: String,
    args: String,
    ok: bool,
}

impl Call {
    /// The path of the file descriptor in the first argument (`fsync(7</a/b>)` → `/a/b`).
    fn fd_path(&self) -> Option<&str> {
        let start = self.args.find('<')? + 1;
        let end = self.args[start..].find('>')? + start;
        Some(&self.args[start..end])
    }

    /// The quoted strings among the arguments, in order (paths of `openat`, `rename`, ...).
    fn quoted(&self) -> Vec<&str> {
        self.args.split('"').skip(1).step_by(2).collect()
    }
}

/// Runs `cmd` under `strace -f -y` tracing `calls`, and returns its output and the calls of
/// every thread and child, in the order they finished. `None` (after a loud skip) when strace
/// is missing or the kernel refuses to trace.
fn traced(test: &str, cmd: &Command, calls: &str) -> Option<(Output, Vec<Call>)> {
    let Some(strace) = which("strace") else {
        skip(test, "strace is not installed");
        return None;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("trace");
    let mut traced = Command::new(strace);
    traced
        .args(["-f", "-y", "-qq", "-e", &format!("trace={calls}"), "-o"])
        .arg(&log)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(std::process::Stdio::null());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => traced.env(k, v),
            None => traced.env_remove(k),
        };
    }
    let out = traced.output().expect("run strace");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if text.is_empty() {
        skip(
            test,
            &format!("strace could not trace keyfire: {}", stderr(&out)),
        );
        return None;
    }
    Some((out, parse(&text)))
}

/// Parses strace's `-f` output, joining calls that another thread interrupted
/// (`<unfinished ...>` / `<... fsync resumed>`).
fn parse(text: &str) -> Vec<Call> {
    let mut open: HashMap<String, (String, String)> = HashMap::new();
    let mut calls = Vec::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.trim().split_once(char::is_whitespace) else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            if let Some((name, args)) = head.split_once('(') {
                open.insert(pid.to_string(), (name.to_string(), args.to_string()));
            }
            continue;
        }
        let (name, args_and_result) = if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((name, tail)) = resumed.split_once(" resumed>") else {
                continue;
            };
            let (_, start) = open.remove(pid).unwrap_or_default();
            (name.to_string(), format!("{start}{tail}"))
        } else if let Some((name, args)) = rest.split_once('(') {
            (name.to_string(), args.to_string())
        } else {
            continue;
        };
        // strace pads short calls before the result: `fsync(15</dir>)        = 0`.
        let Some((args, result)) = args_and_result
            .rsplit_once(" = ")
            .and_then(|(lhs, result)| Some((lhs.trim_end().strip_suffix(')')?, result)))
        else {
            continue;
        };
        calls.push(Call {
            name,
            args: args.to_string(),
            ok: !result.trim_start().starts_with('-'),
        });
    }
    calls
}

fn is_fsync(c: &Call) -> bool {
    c.ok && (c.name == "fsync" || c.name == "fdatasync")
}

fn is_rename(c: &Call) -> bool {
    c.ok && c.name.starts_with("rename")
}

/// `(from, to)` of a rename.
fn rename_paths(c: &Call) -> (PathBuf, PathBuf) {
    let q = c.quoted();
    assert_eq!(q.len(), 2, "a rename names two paths: {c:?}");
    (PathBuf::from(q[0]), PathBuf::from(q[1]))
}

fn synced_before(calls: &[Call], until: usize, path: &Path) -> bool {
    calls[..until]
        .iter()
        .any(|c| is_fsync(c) && c.fd_path().map(Path::new) == Some(path))
}

fn synced_after(calls: &[Call], from: usize, path: &Path) -> bool {
    calls[from..]
        .iter()
        .any(|c| is_fsync(c) && c.fd_path().map(Path::new) == Some(path))
}

const FILE_CALLS: &str = "openat,mkdir,mkdirat,fsync,fdatasync,rename,renameat,renameat2";

#[test]
fn the_record_head_and_the_incident_folder_are_fsynced_around_every_rename() {
    let env = TestEnv::new();
    let mut cmd = env.cmd();
    cmd.args(["incident", "start", "support-llm", "--yes"]);
    let test =
        "durability::the_record_head_and_the_incident_folder_are_fsynced_around_every_rename";
    let Some((out, calls)) = traced(test, &cmd, FILE_CALLS) else {
        return;
    };
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let id = env.incident_ids().pop().expect("one incident");
    let incident = env.data_dir().join("incidents").join(&id);
    let incidents = env.data_dir().join("incidents");

    // The incident folder is created, and its creation made durable by syncing the folder
    // that holds it; the record file's creation by syncing the incident folder.
    let made = calls
        .iter()
        .position(|c| {
            c.ok && c.name.starts_with("mkdir")
                && c.quoted().first().map(Path::new) == Some(incident.as_path())
        })
        .expect("the incident folder is created");
    assert!(
        synced_after(&calls, made, &incidents),
        "the incidents folder is fsynced after the incident folder is created"
    );
    let record = incident.join("record.jsonl");
    let created = calls
        .iter()
        .position(|c| {
            c.ok && c.name == "openat"
                && c.args.contains("O_CREAT")
                && c.quoted().first().map(Path::new) == Some(record.as_path())
        })
        .expect("the record is created");
    assert!(
        synced_after(&calls, created, &incident),
        "the incident folder is fsynced after the record is created"
    );
    assert!(
        calls
            .iter()
            .any(|c| is_fsync(c) && c.fd_path().map(Path::new) == Some(record.as_path())),
        "the record's lines are fsynced"
    );

    // Every head replaces the previous one by rename: the new file is fsynced before the
    // rename, and the folder after it, so a crash leaves one whole head or the other.
    let head = incident.join("head");
    let renames: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| is_rename(c) && rename_paths(c).1 == head)
        .map(|(i, _)| i)
        .collect();
    assert!(
        renames.len() >= 3,
        "a head per durable point: {} renames",
        renames.len()
    );
    for (n, &at) in renames.iter().enumerate() {
        let (from, _) = rename_paths(&calls[at]);
        assert_eq!(
            from.parent(),
            Some(incident.as_path()),
            "the new head is written beside the old one"
        );
        assert!(
            synced_before(&calls, at, &from),
            "head {n}: its temporary file is fsynced before the rename"
        );
        let next = renames.get(n + 1).copied().unwrap_or(calls.len());
        assert!(
            calls[at..next]
                .iter()
                .any(|c| is_fsync(c) && c.fd_path().map(Path::new) == Some(incident.as_path())),
            "head {n}: the incident folder is fsynced after the rename, before the next head"
        );
    }
}

#[test]
fn the_inventory_edit_goes_through_an_exclusive_unpredictable_temporary_file() {
    let env = TestEnv::new();
    let test =
        "durability::the_inventory_edit_goes_through_an_exclusive_unpredictable_temporary_file";
    let inventory = env.inventory_path();
    let mut temps = Vec::new();
    for key in ["support-llm", "research-llm"] {
        let mut cmd = env.cmd();
        cmd.args(["incident", "start", key, "--yes"]);
        let Some((out, calls)) = traced(test, &cmd, FILE_CALLS) else {
            return;
        };
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        // Step 5 replaces the inventory by rename from a file created beside it.
        let at = calls
            .iter()
            .position(|c| is_rename(c) && rename_paths(c).1 == inventory)
            .expect("step 5 replaces the inventory by rename");
        let (from, _) = rename_paths(&calls[at]);
        assert_eq!(
            from.parent(),
            inventory.parent(),
            "the temporary file is beside the inventory"
        );
        let opened = calls[..at]
            .iter()
            .find(|c| {
                c.name == "openat"
                    && c.ok
                    && c.quoted().first().map(Path::new) == Some(from.as_path())
            })
            .expect("the temporary file is opened before the rename");
        assert!(
            opened.args.contains("O_CREAT") && opened.args.contains("O_EXCL"),
            "created exclusively, so nothing planted at its name is written through: {}",
            opened.args
        );
        assert!(
            synced_before(&calls, at, &from),
            "the new inventory is fsynced before the rename"
        );
        assert!(
            synced_after(&calls, at, inventory.parent().expect("folder")),
            "the inventory's folder is fsynced after the rename"
        );
        temps.push(from);
    }
    // The name cannot be guessed ahead of the edit: it is random, not the process id or a
    // counter (two edits from two processes share no more than the fixed prefix and suffix).
    let names: Vec<String> = temps
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_ne!(names[0], names[1]);
    let random = |n: &str| {
        n.trim_start_matches(".inventory.toml.")
            .trim_end_matches(".keyfire-tmp")
            .to_string()
    };
    let (a, b) = (random(&names[0]), random(&names[1]));
    assert!(a.len() >= 6, "at least six random characters: {}", names[0]);
    let shared = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    assert!(
        shared < a.len() / 2,
        "the names share no long prefix: {names:?}"
    );
}
