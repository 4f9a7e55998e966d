//! Incident records on a shared location (`[records]`, `--records`): write-once objects,
//! a lease per incident, resume from another data directory. Each scenario runs on
//! `file://`, against moto's S3 (conditional puts and Object Lock), and against Azurite's
//! Blob service (`az://`, conditional puts with `If-None-Match: *`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use keyfire::sim::Fault;

use crate::common::{TestEnv, stderr, stdout};
use crate::emulators::{Azurite, Moto, http};

/// A shared location for one test: a folder, or a bucket in moto.
pub(crate) enum Store {
    File(PathBuf),
    S3 { moto: Moto, bucket: String },
    Azure { azurite: Azurite, container: String },
}

impl Store {
    pub(crate) fn file(env: &TestEnv) -> Self {
        Self::File(env.dir.path().join("team-share"))
    }

    /// A bucket with Object Lock on and a default compliance retention of one day.
    fn s3(test: &str, object_lock: bool) -> Option<Self> {
        let moto = Moto::start(test)?;
        let bucket = "team-records".to_string();
        let mut headers = vec![];
        if object_lock {
            headers.push(("x-amz-bucket-object-lock-enabled", "true"));
        }
        let (status, body) = http(moto.port, "PUT", &format!("/{bucket}"), &headers, "").unwrap();
        assert_eq!(status, 200, "create bucket: {body}");
        if object_lock {
            let xml = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
            let (status, body) = http(
                moto.port,
                "PUT",
                &format!("/{bucket}?object-lock"),
                &[],
                xml,
            )
            .unwrap();
            assert_eq!(status, 200, "object lock configuration: {body}");
        }
        Some(Self::S3 { moto, bucket })
    }

    /// A container in Azurite (no immutability policy: Azurite does not enforce one).
    fn azure(test: &str) -> Option<Self> {
        let azurite = Azurite::start(test)?;
        let container = "team-records".to_string();
        azurite.create_container(&container);
        Some(Self::Azure { azurite, container })
    }

    /// What keyfire's object_store client needs to find the emulator.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Azure { azurite, .. } => vec![
                ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
                ("AZURITE_BLOB_STORAGE_URL", azurite.url()),
            ],
            _ => vec![],
        }
    }

    pub(crate) fn url(&self) -> String {
        match self {
            Self::Azure { container, .. } => format!("az://{container}/keyfire"),
            Self::File(p) => format!("file://{}", p.display()),
            Self::S3 { moto, bucket } => format!(
                "s3://{bucket}/keyfire?endpoint={}&region=us-east-1",
                moto.url()
            ),
        }
    }

    /// The shared entries of `id`, by listing the store.
    fn entry_names(&self, id: &str) -> Vec<String> {
        match self {
            Self::File(p) => {
                let dir = p.join("incidents").join(id).join("entries");
                let mut names: Vec<String> = std::fs::read_dir(dir)
                    .map(|r| {
                        r.filter_map(Result::ok)
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                names.sort();
                names
            }
            Self::S3 { moto, bucket } => {
                let (_, body) = http(
                    moto.port,
                    "GET",
                    &format!("/{bucket}?list-type=2&prefix=keyfire/incidents/{id}/entries/"),
                    &[],
                    "",
                )
                .unwrap();
                let mut names: Vec<String> = body
                    .split("<Key>")
                    .skip(1)
                    .filter_map(|k| k.split("</Key>").next())
                    .filter_map(|k| k.rsplit('/').next())
                    .map(str::to_string)
                    .collect();
                names.sort();
                names
            }
            Self::Azure { azurite, container } => {
                let prefix = format!("keyfire/incidents/{id}/entries/");
                let (status, body) = azurite.request(
                    "GET",
                    container,
                    &[
                        ("restype", "container"),
                        ("comp", "list"),
                        ("prefix", &prefix),
                    ],
                );
                assert_eq!(status, 200, "list blobs: {body}");
                let mut names: Vec<String> = body
                    .split("<Name>")
                    .skip(1)
                    .filter_map(|k| k.split("</Name>").next())
                    .filter_map(|k| k.rsplit('/').next())
                    .map(str::to_string)
                    .collect();
                names.sort();
                names
            }
        }
    }
}

/// A machine: its own data directory and signing key, the shared location in its config.
pub(crate) struct Machine<'a> {
    env: &'a TestEnv,
    name: &'static str,
    /// What the store's client needs in the environment (set up by [`Machine::setup`]).
    vars: std::cell::RefCell<Vec<(&'static str, String)>>,
}

impl<'a> Machine<'a> {
    pub(crate) fn new(env: &'a TestEnv, name: &'static str) -> Self {
        Self {
            env,
            name,
            vars: Default::default(),
        }
    }

    fn root(&self) -> PathBuf {
        self.env.dir.path().join(format!("machine-{}", self.name))
    }

    fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }

    fn config(&self) -> PathBuf {
        self.root().join("config.toml")
    }

    pub(crate) fn setup(&self, store: &Store) {
        *self.vars.borrow_mut() = store.env();
        std::fs::create_dir_all(self.root()).unwrap();
        let team = self.env.dir.path().join("team.pub");
        std::fs::write(
            self.config(),
            format!(
                "[records]\nlocation = \"{}\"\nlease_seconds = 2\npublic_keys = \"{}\"\n",
                store.url(),
                team.display()
            ),
        )
        .unwrap();
        // The team's keys file lists every machine's record signing key.
        let key = self.run(&["record", "public-key"]);
        assert_eq!(key.status.code(), Some(0), "{}", stderr(&key));
        let mut keys = std::fs::read_to_string(&team).unwrap_or_default();
        keys.push_str(&stdout(&key));
        std::fs::write(&team, keys).unwrap();
    }

    fn cmd(&self) -> Command {
        let mut c = self.env.cmd();
        c.env("KEYFIRE_DATA_DIR", self.data_dir())
            .env(
                "KEYFIRE_SIGNING_KEY_FILE",
                self.root().join("keys").join("record-signing.key"),
            )
            .env("KEYFIRE_CONFIG", self.config())
            .env_remove("KEYFIRE_RECORDS")
            // moto takes any key pair; no instance metadata to wait for on a test machine.
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "moto-accepts-anything")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .envs(self.vars.borrow().iter().map(|(k, v)| (*k, v.as_str())));
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run keyfire")
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.data_dir().join("incidents"))
            .map(|r| {
                r.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    pub(crate) fn record(&self, id: &str) -> PathBuf {
        self.data_dir()
            .join("incidents")
            .join(id)
            .join("record.jsonl")
    }

    fn queue(&self, id: &str) -> serde_json::Value {
        std::fs::read(
            self.data_dir()
                .join("incidents")
                .join(id)
                .join("shared.json"),
        )
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
    }
}

fn lines(path: &Path) -> u64 {
    std::fs::read(path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count() as u64)
        .unwrap_or(0)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- scenarios, each run on both stores ---------------------------------------------------

/// A drill in machine A's data directory is shared, marked as a drill, and listed,
/// verified and reported from machine B.
fn drill_is_shared_and_read_elsewhere(store: &Store, env: &TestEnv) {
    let a = Machine::new(env, "a");
    let b = Machine::new(env, "b");
    a.setup(store);
    b.setup(store);
    let out = a.run(&[
        "-v",
        "incident",
        "start",
        "support-llm",
        "--dry-run",
        "--no-tui",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    let id = a.ids().pop().expect("drill id");
    assert!(id.starts_with("drill-"));
    let local_lines = lines(&a.record(&id));
    assert!(
        text.contains(&format!("shared: {local_lines} entries in")),
        "{text}"
    );
    assert_eq!(store.entry_names(&id).len() as u64, local_lines);
    // The debug log has one line per call to the shared location: each entry's create.
    let log = std::fs::read_to_string(crate::common::debug_log_path(&out)).unwrap();
    let creates = log
        .lines()
        .filter(|l| {
            l.contains("keyfire::shared")
                && l.contains("op=\"create\"")
                && l.contains(&format!("incidents/{id}/entries/"))
                && l.contains("outcome=\"ok\"")
        })
        .count() as u64;
    assert_eq!(creates, local_lines, "{log}");
    assert_eq!(store.entry_names(&id)[0], "00000001.json");

    let list = b.run(&["incident", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let row = v
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} listed on machine B: {v}"));
    assert_eq!(row["drill"], true);
    assert_eq!(row["kind"], "drill");
    assert_eq!(row["shared"], "verified");
    let verify = b.run(&["record", "verify", &id]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    assert!(stdout(&verify).contains("signed"), "{}", stdout(&verify));
    let report = b.run(&["report", &id]);
    assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
    let show = b.run(&["incident", "show", &id]);
    assert!(stdout(&show).contains("verified"), "{}", stdout(&show));
}

/// Killed with SIGKILL on machine A in the middle of the revoke; machine B (another data
/// directory, another signing key) waits out A's lease, fetches and verifies the shared copy,
/// and finishes the incident.
fn killed_on_a_resumed_on_b(store: &Store, env: &TestEnv) {
    let a = Machine::new(env, "a");
    let b = Machine::new(env, "b");
    a.setup(store);
    b.setup(store);
    let observer = env.api.observer();
    observer.inject(Fault::hold("DELETE", "/v1/keys/", Duration::from_secs(120)));
    let mut child = a
        .cmd()
        .args(["incident", "start", "support-llm", "--yes", "--no-tui"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the revoke request", || {
        observer
            .requests()
            .iter()
            .any(|r| r.method == "DELETE" && r.path.starts_with("/v1/keys/"))
    });
    let id = a.ids().pop().expect("incident id");
    // Everything A made durable before the revoke reaches the store while A waits.
    wait_until("the shared copy to catch up", || {
        a.queue(&id)["shared"].as_u64() == Some(lines(&a.record(&id)))
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let resumed = b.run(&["incident", "resume", &id, "--yes", "--no-tui"]);
    let text = stdout(&resumed);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{text}\n{}",
        stderr(&resumed)
    );
    assert!(text.contains("incident resumed"), "{text}");
    assert!(!env.api.accepts(&env.canaries.old_key));
    let entries = keyfire::record::read_entries(&b.record(&id)).unwrap();
    let resumed_line = entries
        .iter()
        .find(|e| e.kind == "incident_resumed")
        .unwrap();
    assert!(
        resumed_line.data["shared"]["fetched_entries"]
            .as_u64()
            .unwrap()
            > 3
    );
    assert_eq!(entries.last().unwrap().kind, "incident_closed");
    // The whole record, A's lines and B's, is in the store and verifies from a third machine.
    let c = Machine::new(env, "c");
    c.setup(store);
    assert_eq!(store.entry_names(&id).len(), entries.len());
    let verify = c.run(&["record", "verify", &id]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    // A's copy stops where A was killed: it is a prefix of the shared one.
    let against = a.run(&["record", "verify", &id, "--against", &store.url()]);
    assert!(
        stdout(&against).contains("the shared copy goes on to line"),
        "{}",
        stdout(&against)
    );
}

/// A second writer of the same incident stops before writing: the lease is held.
fn a_second_writer_stops_cleanly(store: &Store, env: &TestEnv) {
    let a = Machine::new(env, "a");
    let b = Machine::new(env, "b");
    a.setup(store);
    b.setup(store);
    let observer = env.api.observer();
    observer.inject(Fault::hold("DELETE", "/v1/keys/", Duration::from_secs(120)));
    let mut child = a
        .cmd()
        .args(["incident", "start", "support-llm", "--yes", "--no-tui"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the revoke request", || {
        observer.requests().iter().any(|r| r.method == "DELETE")
    });
    let id = a.ids().pop().expect("incident id");
    wait_until("the shared copy to catch up", || {
        a.queue(&id)["shared"].as_u64() == Some(lines(&a.record(&id)))
    });
    let before = store.entry_names(&id);
    // A is alive and renews its lease: B waits one lease period, sees it renewed, and stops.
    let out = b.run(&["incident", "resume", &id, "--yes", "--no-tui"]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("is being run by") && stderr(&out).contains("--take-over"),
        "{}",
        stderr(&out)
    );
    assert!(b.ids().is_empty(), "B wrote no record");
    assert_eq!(store.entry_names(&id), before, "B shared nothing");
}

/// The store is unreachable while the drill runs: it completes, says how many entries are
/// not shared, keeps them queued, and `records flush` shares them in order once it is back.
fn unreachable_then_back(store: &Store, env: &TestEnv, block: impl Fn(bool)) {
    let a = Machine::new(env, "a");
    a.setup(store);
    block(true);
    let out = a.run(&["incident", "start", "support-llm", "--dry-run", "--no-tui"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    let id = a.ids().pop().expect("drill id");
    let local = lines(&a.record(&id));
    assert!(
        text.contains(&format!("NOT YET SHARED: {local} entries")),
        "{text}"
    );
    assert!(text.contains("drill "), "the drill itself ran: {text}");
    block(false);
    let flush = a.run(&["records", "flush"]);
    assert_eq!(flush.status.code(), Some(0), "{}", stdout(&flush));
    assert!(
        stdout(&flush).contains(&format!("{id}: {local} entries shared")),
        "{}",
        stdout(&flush)
    );
    let names = store.entry_names(&id);
    let want: Vec<String> = (1..=local).map(|n| format!("{n:08}.json")).collect();
    assert_eq!(names, want);
    let same = a.run(&["record", "verify", &id, "--against", &store.url()]);
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
}

/// `record verify --against` names the first line where an edited local record differs.
fn against_catches_a_local_edit(store: &Store, env: &TestEnv) {
    let a = Machine::new(env, "a");
    a.setup(store);
    let out = a.run(&["incident", "start", "support-llm", "--dry-run", "--no-tui"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let id = a.ids().pop().unwrap();
    let path = a.record(&id);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 2 {
                l.replacen("\"ts\":\"", "\"ts\":\"1", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&path, edited.join("\n") + "\n").unwrap();
    let cmp = a.run(&["record", "verify", &id, "--against", &store.url()]);
    assert_eq!(cmp.status.code(), Some(1));
    let t = stdout(&cmp);
    assert!(t.contains("DIFFERENT"), "{t}");
    assert!(t.contains("line 3 differs"), "{t}");
}

// ---- file:// ------------------------------------------------------------------------------

#[test]
fn file_drill_is_shared_and_read_elsewhere() {
    let env = TestEnv::new();
    drill_is_shared_and_read_elsewhere(&Store::file(&env), &env);
}

#[test]
fn file_killed_on_a_resumed_on_b() {
    let env = TestEnv::new();
    killed_on_a_resumed_on_b(&Store::file(&env), &env);
}

#[test]
fn file_a_second_writer_stops_cleanly() {
    let env = TestEnv::new();
    a_second_writer_stops_cleanly(&Store::file(&env), &env);
}

#[test]
fn file_unreachable_then_back() {
    let env = TestEnv::new();
    let store = Store::file(&env);
    let Store::File(root) = &store else {
        unreachable!()
    };
    let root = root.clone();
    // A plain file where the share's folder should be: nothing can be created under it.
    unreachable_then_back(&store, &env, |blocked| {
        let _ = std::fs::remove_dir_all(&root);
        let _ = std::fs::remove_file(&root);
        if blocked {
            std::fs::write(&root, "not a folder").unwrap();
        } else {
            std::fs::create_dir_all(&root).unwrap();
        }
    });
}

#[test]
fn file_against_catches_a_local_edit() {
    let env = TestEnv::new();
    against_catches_a_local_edit(&Store::file(&env), &env);
}

#[test]
fn file_records_check_says_a_plain_folder_does_not_enforce_retention() {
    let env = TestEnv::new();
    let store = Store::file(&env);
    let a = Machine::new(&env, "a");
    a.setup(&store);
    let out = a.run(&["records", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("create-only"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("retention NOT enforced"),
        "{}",
        stdout(&out)
    );
}

// ---- moto S3 ------------------------------------------------------------------------------

#[test]
fn s3_drill_is_shared_and_read_elsewhere() {
    let env = TestEnv::new();
    let Some(store) = Store::s3("s3_drill_is_shared_and_read_elsewhere", true) else {
        return;
    };
    drill_is_shared_and_read_elsewhere(&store, &env);
}

#[test]
fn s3_killed_on_a_resumed_on_b() {
    let env = TestEnv::new();
    let Some(store) = Store::s3("s3_killed_on_a_resumed_on_b", true) else {
        return;
    };
    killed_on_a_resumed_on_b(&store, &env);
}

#[test]
fn s3_a_second_writer_stops_cleanly() {
    let env = TestEnv::new();
    let Some(store) = Store::s3("s3_a_second_writer_stops_cleanly", true) else {
        return;
    };
    a_second_writer_stops_cleanly(&store, &env);
}

#[test]
fn s3_unreachable_then_back() {
    let env = TestEnv::new();
    let Some(store) = Store::s3("s3_unreachable_then_back", false) else {
        return;
    };
    let Store::S3 { moto, bucket } = &store else {
        unreachable!()
    };
    let port = moto.port;
    let bucket = bucket.clone();
    // The bucket disappears (NoSuchBucket on every put), then comes back.
    unreachable_then_back(&store, &env, |blocked| {
        let method = if blocked { "DELETE" } else { "PUT" };
        let (status, body) = http(port, method, &format!("/{bucket}"), &[], "").unwrap();
        assert!(status < 300, "{method} bucket: {status} {body}");
    });
}

#[test]
fn s3_against_catches_a_local_edit() {
    let env = TestEnv::new();
    let Some(store) = Store::s3("s3_against_catches_a_local_edit", true) else {
        return;
    };
    against_catches_a_local_edit(&store, &env);
}

#[test]
fn s3_object_lock_refuses_deleting_or_overwriting_a_shared_entry() {
    let env = TestEnv::new();
    let Some(store) = Store::s3(
        "s3_object_lock_refuses_deleting_or_overwriting_a_shared_entry",
        true,
    ) else {
        return;
    };
    let a = Machine::new(&env, "a");
    a.setup(&store);
    let check = a.run(&["records", "check"]);
    let t = stdout(&check);
    assert_eq!(check.status.code(), Some(0), "{t}\n{}", stderr(&check));
    assert!(t.contains("retention enforced"), "{t}");
    assert!(t.contains("delete    refused"), "{t}");

    // A shared entry itself: its version cannot be deleted, nor the key created again.
    let out = a.run(&["incident", "start", "support-llm", "--dry-run", "--no-tui"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let id = a.ids().pop().unwrap();
    let Store::S3 { moto, bucket } = &store else {
        unreachable!()
    };
    let key = format!("keyfire/incidents/{id}/entries/00000001.json");
    let (_, versions) = http(
        moto.port,
        "GET",
        &format!("/{bucket}?versions&prefix={key}"),
        &[],
        "",
    )
    .unwrap();
    let version = versions
        .split("<VersionId>")
        .nth(1)
        .and_then(|v| v.split("</VersionId>").next())
        .expect("a version id")
        .to_string();
    let (status, body) = http(
        moto.port,
        "DELETE",
        &format!("/{bucket}/{key}?versionId={version}"),
        &[],
        "",
    )
    .unwrap();
    assert_eq!(status, 403, "delete of a locked version: {body}");
    let (_, before) = http(moto.port, "GET", &format!("/{bucket}/{key}"), &[], "").unwrap();
    let (status, body) = http(
        moto.port,
        "PUT",
        &format!("/{bucket}/{key}"),
        &[
            ("If-None-Match", "*"),
            ("x-amz-sdk-checksum-algorithm", "SHA256"),
        ],
        "{\"forged\": true}\n",
    )
    .unwrap();
    assert!(
        status == 412 || status == 403,
        "a create over a shared entry is refused: {status} {body}"
    );
    let (_, after) = http(moto.port, "GET", &format!("/{bucket}/{key}"), &[], "").unwrap();
    assert_eq!(before, after, "the entry kept its bytes");
    let verify = a.run(&["record", "verify", &id, "--against", &store.url()]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
}

/// (In-process, so `file://` only: the S3 variant would need AWS credentials in this test
/// process's environment; the S3 path of the same conditional create is exercised by the
/// lease race above.)
/// Two writers of one incident id with different lines: the second uploader finds line 1
/// there with other bytes, stops, and its writer refuses every further entry. The store
/// keeps the first writer's lines.
fn racing_writers_one_wins(store: &Store) {
    use keyfire::record::shared::{self, Location, RecordsConfig, SharedStore, Uploader};
    use keyfire::record::{RecordWriter, Signer};
    let tmp = tempfile::tempdir().unwrap();
    let open = || {
        let loc = Location::parse(&store.url(), &RecordsConfig::default()).unwrap();
        shared::block_on(SharedStore::open(loc, RecordsConfig::default())).unwrap()
    };
    let clock = keyfire::clock::SystemClock;
    let mut writers = Vec::new();
    for name in ["first", "second"] {
        let dir = tmp.path().join(name).join("incidents").join("inc-race");
        let (signer, _) = Signer::generate().unwrap();
        let mut w =
            RecordWriter::create_signed(&dir, keyfire::secret::Redactor::new(), signer).unwrap();
        w.share(Uploader::start(
            open(),
            "inc-race",
            &dir,
            0,
            shared::upload::LeaseStart::None,
        ));
        w.append(
            &clock,
            "incident_opened",
            None,
            serde_json::json!({ "by": name }),
        )
        .unwrap();
        wait_until("the upload to settle", || {
            let st = w.share_status().unwrap();
            st.shared == 1 || st.stopped.is_some()
        });
        writers.push(w);
    }
    let first = writers[0].share_status().unwrap();
    let second = writers[1].share_status().unwrap();
    assert_eq!(first.shared, 1);
    assert!(first.stopped.is_none());
    let why = second.stopped.expect("the second writer stops");
    assert!(
        why.contains("another keyfire process is writing incident inc-race"),
        "{why}"
    );
    let err = writers[1]
        .append(&clock, "step_failed", None, serde_json::json!({}))
        .unwrap_err();
    assert!(err.to_string().contains("overwrites nothing"), "{err}");
    let fetched = shared::block_on(open().fetch("inc-race")).unwrap();
    assert!(String::from_utf8_lossy(&fetched.record).contains("\"by\":\"first\""));
}

#[test]
fn file_racing_writers_one_wins() {
    let env = TestEnv::new();
    racing_writers_one_wins(&Store::file(&env));
}

// ---- Azurite (Azure Blob Storage) ---------------------------------------------------------

#[test]
fn azure_drill_is_shared_and_read_elsewhere() {
    let env = TestEnv::new();
    let Some(store) = Store::azure("azure_drill_is_shared_and_read_elsewhere") else {
        return;
    };
    drill_is_shared_and_read_elsewhere(&store, &env);
}

#[test]
fn azure_killed_on_a_resumed_on_b() {
    let env = TestEnv::new();
    let Some(store) = Store::azure("azure_killed_on_a_resumed_on_b") else {
        return;
    };
    killed_on_a_resumed_on_b(&store, &env);
}

#[test]
fn azure_a_second_writer_stops_cleanly() {
    let env = TestEnv::new();
    let Some(store) = Store::azure("azure_a_second_writer_stops_cleanly") else {
        return;
    };
    a_second_writer_stops_cleanly(&store, &env);
}

#[test]
fn azure_unreachable_then_back() {
    let env = TestEnv::new();
    let Some(store) = Store::azure("azure_unreachable_then_back") else {
        return;
    };
    let Store::Azure { azurite, container } = &store else {
        unreachable!()
    };
    // The container disappears (ContainerNotFound on every put), then comes back.
    unreachable_then_back(&store, &env, |blocked| {
        if blocked {
            let (status, body) = azurite.request("DELETE", container, &[("restype", "container")]);
            assert_eq!(status, 202, "delete container: {body}");
        } else {
            azurite.create_container(container);
        }
    });
}

#[test]
fn azure_against_catches_a_local_edit() {
    let env = TestEnv::new();
    let Some(store) = Store::azure("azure_against_catches_a_local_edit") else {
        return;
    };
    against_catches_a_local_edit(&store, &env);
}

/// A container without an immutability policy: the create-only put holds (a second create of
/// the probe is refused), and the check says retention is not enforced, exit 1.
#[test]
fn azure_records_check_says_a_container_without_a_policy_does_not_enforce_retention() {
    let env = TestEnv::new();
    let Some(store) = Store::azure(
        "azure_records_check_says_a_container_without_a_policy_does_not_enforce_retention",
    ) else {
        return;
    };
    let a = Machine::new(&env, "a");
    a.setup(&store);
    let out = a.run(&["records", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("create-only"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("retention NOT enforced"),
        "{}",
        stdout(&out)
    );
}
