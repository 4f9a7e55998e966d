//! The postgres provider against a real PostgreSQL on loopback: a live incident ends the
//! sessions a password change would leave running, and a drill changes nothing.

use std::process::{Command, Output, Stdio};

use keyfire::sim::VaultSim;

use crate::common::{files_under, stderr, stdout};
use crate::emulators::{Postgres, ServerTls, pg_connect, pg_connect_tls};

const ROLE: &str = "agent_support";
const OLD_PASSWORD: &str = "old-Passw0rd-CANARY-9f8e7d";
const PATH: &str = "agents/support/db";
const VAULT_TOKEN: &str = "hvs.CANARYpgvault5Hj8Kp2Lm9Qr4";

struct Db {
    dir: tempfile::TempDir,
    pg: Postgres,
    vault: VaultSim,
    rt: tokio::runtime::Runtime,
    /// The admin URL keyfire is given (`KF_PG_ADMIN`).
    admin: String,
    /// The CA of a server started with TLS.
    pki: Option<Pki>,
}

/// A CA and a server certificate it signed for `localhost` and `127.0.0.1`, made for the test.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    server: ServerTls,
}

impl Pki {
    fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "keyfire test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        Self {
            dir,
            ca_pem,
            server: ServerTls {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            },
        }
    }

    fn ca_path(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }
}

async fn connect(
    pki: Option<&Pki>,
    url: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    match pki {
        Some(pki) => pg_connect_tls(url, &pki.ca_pem).await,
        None => pg_connect(url).await,
    }
}

impl Db {
    fn start(test: &str) -> Option<Self> {
        Self::start_with(test, None)
    }

    /// A PostgreSQL that takes TCP connections over TLS only, with a certificate from a CA
    /// made for the test; keyfire is given the plain admin URL until a test adds `sslmode`.
    fn start_tls(test: &str) -> Option<Self> {
        Self::start_with(test, Some(Pki::new()))
    }

    fn start_with(test: &str, pki: Option<Pki>) -> Option<Self> {
        let pg = match &pki {
            Some(pki) => Postgres::start_tls(test, &pki.server)?,
            None => Postgres::start(test)?,
        };
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let admin = connect(pki.as_ref(), &pg.admin_url()).await.unwrap();
            admin
                .batch_execute(&format!(
                    "CREATE ROLE {ROLE} LOGIN PASSWORD '{OLD_PASSWORD}'"
                ))
                .await
                .unwrap();
        });
        let vault = VaultSim::start("secret", VAULT_TOKEN).unwrap();
        vault.put(PATH, "value", OLD_PASSWORD);
        let dir = tempfile::tempdir().unwrap();
        let inv = format!(
            r#"schema = 1

[[providers]]
id = "db"
kind = "postgres"
admin_credential = "env:KF_PG_ADMIN"

[[stores]]
id = "vault"
kind = "vault-kv2"
address = "{}"
credential = "env:KF_PG_VAULT"

[[agents]]
id = "support-bot"
expected_networks = ["127.0.0.0/8"]

[[keys]]
id = "support-db"
agents = ["support-bot"]
provider = "db"
provider_key_id = "{ROLE}"
store = "vault"
secret_path = "{PATH}"
created_at = 2026-10-01
"#,
            vault.address()
        );
        std::fs::write(dir.path().join("inventory.toml"), inv).unwrap();
        let admin = pg.admin_url();
        Some(Self {
            dir,
            pg,
            vault,
            rt,
            admin,
            pki,
        })
    }

    /// Give the provider a `settings` table (inline TOML).
    fn provider_settings(&self, table: &str) {
        let path = self.dir.path().join("inventory.toml");
        let text = std::fs::read_to_string(&path).unwrap().replacen(
            "admin_credential = \"env:KF_PG_ADMIN\"\n",
            &format!("admin_credential = \"env:KF_PG_ADMIN\"\nsettings = {table}\n"),
            1,
        );
        std::fs::write(path, text).unwrap();
    }

    /// The admin URL with libpq parameters added (`sslmode=...&sslrootcert=...`).
    fn admin_with(&self, params: &str) -> String {
        format!("{}?{params}", self.pg.admin_url())
    }

    /// A connection from the test itself, over TLS to a TLS server.
    fn connect(&self, url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        self.rt.block_on(connect(self.pki.as_ref(), url))
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn cmd(&self) -> Command {
        crate::common::hermetic_signing_key();
        let mut c = Command::new(env!("CARGO_BIN_EXE_keyfire"));
        c.env("KF_PG_ADMIN", &self.admin)
            .env("KF_PG_VAULT", VAULT_TOKEN)
            .env("KEYFIRE_DATA_DIR", self.dir.path().join("data"))
            .env("KEYFIRE_INVENTORY", self.dir.path().join("inventory.toml"))
            .env_remove("KEYFIRE_CONFIG")
            .env_remove("KEYFIRE_FAILPOINT")
            .stdin(Stdio::null());
        c
    }

    fn login(&self, password: &str) -> Result<(), String> {
        self.rt.block_on(async {
            let text = |e: tokio_postgres::Error| {
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string())
            };
            match connect(self.pki.as_ref(), &self.pg.url_for(ROLE, password)).await {
                Ok(c) => c.simple_query("SELECT 1").await.map(|_| ()).map_err(text),
                Err(e) => Err(text(e)),
            }
        })
    }

    /// Roles with their login flag and password verifier, and the role's sessions: what a
    /// drill must leave alone.
    fn listing(&self) -> Vec<String> {
        self.rt.block_on(async {
            let admin = connect(self.pki.as_ref(), &self.pg.admin_url())
                .await
                .unwrap();
            let mut out: Vec<String> = admin
                .query(
                    "SELECT rolname, rolcanlogin, coalesce(rolpassword, ''), coalesce(rolvaliduntil::text, '') FROM pg_authid ORDER BY rolname",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| format!("{}|{}|{}|{}", r.get::<_, String>(0), r.get::<_, bool>(1), r.get::<_, String>(2), r.get::<_, String>(3)))
                .collect();
            let n: i64 = admin
                .query_one("SELECT count(*) FROM pg_stat_activity WHERE usename = $1", &[&ROLE])
                .await
                .unwrap()
                .get(0);
            out.push(format!("sessions of {ROLE}: {n}"));
            out
        })
    }

    fn entries(&self) -> Vec<keyfire::record::Entry> {
        let dir = self.dir.path().join("data/incidents");
        let id = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .file_name();
        keyfire::record::read_entries(&dir.join(id).join("record.jsonl")).unwrap()
    }
}

#[test]
fn live_incident_terminates_sessions_and_rotates_the_password() {
    let Some(db) =
        Db::start("postgres::live_incident_terminates_sessions_and_rotates_the_password")
    else {
        return;
    };
    // An agent (or an attacker) holding a session open under the leaked password.
    let session = db
        .rt
        .block_on(pg_connect(&db.pg.url_for(ROLE, OLD_PASSWORD)))
        .unwrap();
    db.rt.block_on(session.simple_query("SELECT 1")).unwrap();

    // With the debug log at its most detailed (checked for secrets with the other files).
    let out = db.run(&[
        "-vv",
        "incident",
        "start",
        "support-db",
        "--yes",
        "--no-tui",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    // Each connection and statement is in the log by its label, never by its text (a
    // password verifier is in `ALTER ROLE ... PASSWORD`).
    let log = std::fs::read_to_string(crate::common::debug_log_path(&out)).unwrap();
    let pg: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("keyfire::postgres"))
        .collect();
    for wanted in [
        "statement statement=\"ALTER ROLE PASSWORD\"",
        "statement statement=\"pg_terminate_backend\"",
        "statement statement=\"pg_stat_activity\"",
        "connected",
        // The proof: the old password refused.
        "connection failed",
    ] {
        assert!(
            pg.iter().any(|l| l.contains(wanted)),
            "{wanted} is not in the debug log:\n{log}"
        );
    }
    assert!(
        pg.iter()
            .any(|l| l.contains("connection failed") && l.contains("sqlstate=\"28P01\"")),
        "{log}"
    );
    assert!(!log.contains("SCRAM-SHA-256$"), "{log}");
    assert!(!log.to_ascii_uppercase().contains("PASSWORD '"), "{log}");

    // The live session was terminated by the server.
    let err = db
        .rt
        .block_on(session.simple_query("SELECT 1"))
        .expect_err("the old session must be gone");
    assert!(session.is_closed(), "{err}");
    // The old password no longer logs in; the one in the store (a new version) does.
    assert!(
        db.login(OLD_PASSWORD)
            .unwrap_err()
            .contains("password authentication failed")
    );
    assert_eq!(db.vault.version(PATH), 2);
    let new = db.vault.value(PATH, "value", None).unwrap();
    assert_ne!(new, OLD_PASSWORD);
    assert!(new.len() >= 32);
    db.login(&new)
        .expect("the new password from the store logs in");

    let entries = db.entries();
    let proof = entries
        .iter()
        .find(|e| e.kind == "evidence" && e.data["action"] == "prove_revoked")
        .unwrap();
    assert_eq!(proof.data["old_key_rejected"], true);
    // The audit saw the session before anything changed.
    let snap = entries
        .iter()
        .find(|e| e.kind == "evidence" && e.data["action"] == "snapshot_usage")
        .unwrap();
    assert_eq!(snap.data["events"], 1, "{}", snap.data);
    // No password or the admin URL anywhere keyfire wrote or printed.
    for f in files_under(&db.dir.path().join("data")) {
        // Bytes, not UTF-8: a file that is not text is scanned too, never read as empty.
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        for s in [
            OLD_PASSWORD,
            new.as_str(),
            db.pg.super_password.as_str(),
            VAULT_TOKEN,
        ] {
            assert!(!text.contains(s), "secret in {}", f.display());
        }
    }
    for s in [OLD_PASSWORD, new.as_str(), db.pg.super_password.as_str()] {
        assert!(!stdout(&out).contains(s) && !stderr(&out).contains(s));
    }
}

#[test]
fn zero_downtime_is_refused_for_a_role_with_one_password() {
    let Some(db) = Db::start("postgres::zero_downtime_is_refused_for_a_role_with_one_password")
    else {
        return;
    };
    let out = db.run(&[
        "incident",
        "start",
        "support-db",
        "--zero-downtime",
        "--yes",
        "--no-tui",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("allows only one live key"),
        "{}",
        stderr(&out)
    );
    db.login(OLD_PASSWORD).unwrap();
}

#[test]
fn drill_leaves_postgres_exactly_as_it_was() {
    let Some(db) = Db::start("postgres::drill_leaves_postgres_exactly_as_it_was") else {
        return;
    };
    let before = db.listing();
    let out = db.run(&["incident", "start", "support-db", "--dry-run", "--no-tui"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(db.listing(), before);
    assert_eq!(db.vault.version(PATH), 1);
    db.login(OLD_PASSWORD).unwrap();
    let entries = db.entries();
    let writes: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == "plan" && e.data["plan"]["access"] == "write")
        .collect();
    assert!(
        writes.len() >= 4,
        "disable, revoke, create, store write: {}",
        writes.len()
    );
    for p in &writes {
        let next = entries.iter().find(|e| e.seq == p.seq + 1).unwrap();
        assert_eq!(next.kind, "not_sent", "{}", p.data["rendered"]);
    }
    // The drill logged in with the old password to prove the proof call works.
    let proof = entries
        .iter()
        .find(|e| e.kind == "evidence" && e.data["action"] == "prove_revoked")
        .unwrap();
    assert_eq!(proof.data["old_key_authenticates"], true);
}

enum Kill {
    Failpoint(&'static str),
    /// The store handles the write, then holds its answer until keyfire is killed.
    StoreWrite,
}

/// kill -9 at `point` during a live incident, then resume: the role logs in with exactly the
/// password the store holds (written once), the leaked password is dead, and no password
/// keyfire made and lost still logs in (a role has one password: a lost one is overwritten).
fn crash_then_resume(test: &str, point: Kill) {
    let Some(db) = Db::start(test) else {
        return;
    };
    let mut cmd = db.cmd();
    cmd.args(["incident", "start", "support-db", "--yes", "--no-tui"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match point {
        Kill::Failpoint(name) => {
            cmd.env("KEYFIRE_FAILPOINT", name);
        }
        Kill::StoreWrite => db.vault.observer().inject(keyfire::sim::Fault::hold(
            "POST",
            "/v1/secret/data/",
            std::time::Duration::from_secs(60),
        )),
    }
    let mut child = cmd.spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "kill point not reached"
        );
        let reached = match point {
            Kill::Failpoint(_) => rx
                .recv_timeout(std::time::Duration::from_millis(50))
                .is_ok_and(|l| l.contains("paused at failpoint")),
            Kill::StoreWrite => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                db.vault.requests().iter().any(|r| r.is_write())
            }
        };
        if reached {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let dir = db.dir.path().join("data/incidents");
    let id = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    assert_eq!(db.run(&["record", "verify", &id]).status.code(), Some(0));
    let out = db.run(&["incident", "resume", &id, "--yes", "--no-tui"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        db.login(OLD_PASSWORD)
            .unwrap_err()
            .contains("password authentication failed"),
        "the old password is dead"
    );
    assert_eq!(db.vault.version(PATH), 2, "one new store version");
    let writes = db.vault.requests().iter().filter(|r| r.is_write()).count();
    assert_eq!(writes, 1, "the store write is sent once");
    let new = db.vault.value(PATH, "value", None).unwrap();
    db.login(&new)
        .expect("the password the store holds is the live one");
    let closed = db
        .entries()
        .into_iter()
        .rev()
        .find(|e| e.kind == "incident_closed")
        .unwrap();
    assert_eq!(closed.data["outcome"], "completed");
}

#[test]
fn kill_9_after_the_revoke_then_resume() {
    crash_then_resume(
        "postgres::kill_9_after_the_revoke_then_resume",
        Kill::Failpoint("pg:revoked"),
    );
}

#[test]
fn kill_9_after_the_new_password_was_set_then_resume() {
    crash_then_resume(
        "postgres::kill_9_after_the_new_password_was_set_then_resume",
        Kill::Failpoint("pg:created"),
    );
}

#[test]
fn kill_9_during_the_store_write_then_resume() {
    crash_then_resume(
        "postgres::kill_9_during_the_store_write_then_resume",
        Kill::StoreWrite,
    );
}

#[test]
fn kill_9_during_report_then_resume() {
    crash_then_resume(
        "postgres::kill_9_during_report_then_resume",
        Kill::Failpoint("write_report"),
    );
}

#[test]
fn kill_9_during_reschedule_then_resume() {
    crash_then_resume(
        "postgres::kill_9_during_reschedule_then_resume",
        Kill::Failpoint("update_inventory:written"),
    );
}

// ---- TLS ---------------------------------------------------------------------------------

/// The lines of the server's log for connections keyfire made (it names itself
/// `application_name=keyfire`) that got past authentication.
fn keyfire_logins(db: &Db) -> Vec<String> {
    db.pg
        .log()
        .lines()
        .filter(|l| l.contains("connection authorized") && l.contains("application_name=keyfire"))
        .map(str::to_string)
        .collect()
}

/// A drill with the current admin URL succeeds, and every login keyfire made was over TLS.
fn drill_logs_in_over_tls(db: &Db) {
    let out = db.run(&["incident", "start", "support-db", "--dry-run", "--no-tui"]);
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    let logins = keyfire_logins(db);
    assert!(!logins.is_empty());
    assert!(
        logins.iter().all(|l| l.contains("SSL enabled")),
        "{logins:#?}"
    );
}

/// Nothing at the server or in the store changed, and the leaked password still logs in.
fn assert_untouched(db: &Db, before: &[String]) {
    assert_eq!(db.listing(), before);
    assert_eq!(db.vault.version(PATH), 1);
    db.login(OLD_PASSWORD).unwrap();
}

fn output(out: &Output) -> String {
    format!("{}\n{}", stdout(out), stderr(out))
}

#[test]
fn tls_verify_full_with_the_ca_runs_the_whole_incident_over_tls() {
    let Some(mut db) =
        Db::start_tls("postgres::tls_verify_full_with_the_ca_runs_the_whole_incident_over_tls")
    else {
        return;
    };
    // channel_binding=require: tokio-postgres refuses to log in unless SCRAM is bound to
    // the TLS session (SCRAM-SHA-256-PLUS), which the connector must support.
    db.admin = db.admin_with(&format!(
        "sslmode=verify-full&sslrootcert={}&channel_binding=require",
        db.pki.as_ref().unwrap().ca_path()
    ));
    let session = db.connect(&db.pg.url_for(ROLE, OLD_PASSWORD)).unwrap();
    db.rt.block_on(session.simple_query("SELECT 1")).unwrap();

    let refused = format!("password authentication failed for user \"{ROLE}\"");
    let refused_before = db.pg.log().matches(&refused).count();
    let out = db.run(&["incident", "start", "support-db", "--yes", "--no-tui"]);
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    // Read before this test logs in with the old password itself (below), so the refusal
    // counted here is keyfire's proof.
    let refused_by_the_run = db.pg.log().matches(&refused).count() - refused_before;

    db.rt
        .block_on(session.simple_query("SELECT 1"))
        .expect_err("the old session must be gone");
    assert!(
        db.login(OLD_PASSWORD)
            .unwrap_err()
            .contains("password authentication failed")
    );
    let new = db.vault.value(PATH, "value", None).unwrap();
    db.login(&new).expect("the new password logs in");
    let entries = db.entries();
    let proof = entries
        .iter()
        .find(|e| e.kind == "evidence" && e.data["action"] == "prove_revoked")
        .unwrap();
    assert_eq!(proof.data["old_key_rejected"], true, "{}", proof.data);

    // The server's side: it takes TCP connections over TLS only (hostssl), and logs each.
    let logins = keyfire_logins(&db);
    assert!(
        logins.iter().any(|l| l.contains("user=postgres ")),
        "the admin connected: {logins:#?}"
    );
    for l in &logins {
        assert!(l.contains("SSL enabled"), "{l}");
    }
    // The proof logged in as the role, over TLS too (the only TCP line in pg_hba.conf is
    // hostssl), and was refused for the password, the one answer that proves it dead.
    assert!(refused_by_the_run >= 1, "{}", db.pg.log());
    for s in [OLD_PASSWORD, new.as_str(), db.pg.super_password.as_str()] {
        assert!(!output(&out).contains(s));
    }
}

#[test]
fn tls_verify_full_without_the_ca_fails_and_revokes_nothing() {
    let Some(mut db) =
        Db::start_tls("postgres::tls_verify_full_without_the_ca_fails_and_revokes_nothing")
    else {
        return;
    };
    // The system's trust store does not hold the test's CA.
    db.admin = db.admin_with("sslmode=verify-full");
    let before = db.listing();
    let out = db.run(&["incident", "start", "support-db", "--yes", "--no-tui"]);
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    let text = output(&out);
    assert!(
        text.contains(&format!(
            "cannot connect to 127.0.0.1:{} as postgres (sslmode=verify-full)",
            db.pg.port
        )),
        "{text}"
    );
    assert!(
        text.contains("not signed by a CA in the system's trust store"),
        "{text}"
    );
    assert!(!text.contains(&db.pg.super_password));
    assert!(keyfire_logins(&db).is_empty());
    assert_untouched(&db, &before);

    // No sslmode at all, to 127.0.0.1: the loopback default, `prefer`, takes the TLS the
    // server offers (a drill: reads only).
    db.admin = db.pg.admin_url();
    drill_logs_in_over_tls(&db);
    assert_untouched(&db, &before);
}

/// `verify-ca` checks the chain: a CA file from another authority is refused before any login.
/// `require` without a CA file encrypts and checks nothing, as libpq does: the same server
/// (whose CA keyfire does not know) is accepted.
#[test]
fn tls_verify_ca_refuses_another_authority_and_require_alone_checks_nothing() {
    let Some(mut db) = Db::start_tls(
        "postgres::tls_verify_ca_refuses_another_authority_and_require_alone_checks_nothing",
    ) else {
        return;
    };
    let other = Pki::new();
    db.admin = db.admin_with(&format!(
        "sslmode=verify-ca&sslrootcert={}",
        other.ca_path()
    ));
    let before = db.listing();
    let out = db.run(&["incident", "start", "support-db", "--dry-run", "--no-tui"]);
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    let text = output(&out);
    assert!(
        text.contains("sslmode=verify-ca") && text.contains("not signed by"),
        "{text}"
    );
    assert!(keyfire_logins(&db).is_empty());
    assert_untouched(&db, &before);

    db.admin = db.admin_with("sslmode=require");
    drill_logs_in_over_tls(&db);
    assert_untouched(&db, &before);
}

/// Over a Unix domain socket libpq ignores `sslmode` (nothing crosses a network, and the server
/// offers no TLS there): keyfire connects where `verify-full` would otherwise refuse.
#[test]
fn a_unix_socket_ignores_sslmode_as_libpq_does() {
    let Some(mut db) = Db::start_tls("postgres::a_unix_socket_ignores_sslmode_as_libpq_does")
    else {
        return;
    };
    db.admin = format!(
        "host={} port={} user=postgres password={} dbname=postgres sslmode=verify-full",
        db.pg.socket_dir().display(),
        db.pg.port,
        db.pg.super_password
    );
    let before = db.listing();
    let out = db.run(&["incident", "start", "support-db", "--dry-run", "--no-tui"]);
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    let logins = keyfire_logins(&db);
    assert!(!logins.is_empty(), "{}", db.pg.log());
    assert!(
        logins.iter().all(|l| !l.contains("SSL enabled")),
        "{logins:#?}"
    );
    assert!(!output(&out).contains(&db.pg.super_password));
    assert_untouched(&db, &before);
}

/// `hostaddr` without a host name: libpq does TLS with `verify-ca` there (no name to check);
/// keyfire does too, and `verify-full` checks the address against the certificate, which
/// names 127.0.0.1.
#[test]
fn tls_with_only_a_hostaddr_verifies_the_chain_and_the_address() {
    let Some(mut db) =
        Db::start_tls("postgres::tls_with_only_a_hostaddr_verifies_the_chain_and_the_address")
    else {
        return;
    };
    let before = db.listing();
    for mode in ["verify-ca", "verify-full"] {
        db.admin = format!(
            "hostaddr=127.0.0.1 port={} user=postgres password={} dbname=postgres sslmode={mode} sslrootcert={}",
            db.pg.port,
            db.pg.super_password,
            db.pki.as_ref().unwrap().ca_path()
        );
        drill_logs_in_over_tls(&db);
    }
    assert_untouched(&db, &before);
}

#[test]
fn tls_wrong_host_name_fails_under_verify_full_and_passes_verify_ca() {
    let Some(mut db) =
        Db::start_tls("postgres::tls_wrong_host_name_fails_under_verify_full_and_passes_verify_ca")
    else {
        return;
    };
    // The certificate names localhost and 127.0.0.1; the URL names another host, reached at
    // 127.0.0.1 through libpq's `hostaddr`.
    db.admin = format!(
        "postgresql://postgres:{}@db.wrong.test:{}/postgres?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}",
        db.pg.super_password,
        db.pg.port,
        db.pki.as_ref().unwrap().ca_path()
    );
    let before = db.listing();
    let out = db.run(&["incident", "start", "support-db", "--yes", "--no-tui"]);
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    let text = output(&out);
    assert!(
        text.contains("db.wrong.test") && text.contains("sslmode=verify-full"),
        "{text}"
    );
    assert!(
        text.contains("the server's certificate does not name this host"),
        "{text}"
    );
    assert!(keyfire_logins(&db).is_empty());
    assert_untouched(&db, &before);

    // verify-ca checks the chain only: the same server is accepted (a drill: reads only).
    // Given in the inventory this time: the provider's settings apply when the URL names
    // no sslmode or sslrootcert.
    db.admin = format!(
        "postgresql://postgres:{}@db.wrong.test:{}/postgres?hostaddr=127.0.0.1",
        db.pg.super_password, db.pg.port
    );
    db.provider_settings(&format!(
        "{{ sslmode = \"verify-ca\", sslrootcert = \"{}\" }}",
        db.pki.as_ref().unwrap().ca_path()
    ));
    drill_logs_in_over_tls(&db);
    assert_untouched(&db, &before);
}

#[test]
fn tls_require_against_a_server_without_tls_fails() {
    let Some(mut db) = Db::start("postgres::tls_require_against_a_server_without_tls_fails") else {
        return;
    };
    db.admin = db.admin_with("sslmode=require");
    let before = db.listing();
    let out = db.run(&["incident", "start", "support-db", "--yes", "--no-tui"]);
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    let text = output(&out);
    assert!(
        text.contains(&format!("127.0.0.1:{}", db.pg.port))
            && text.contains("sslmode=require")
            && text.contains("server does not support TLS"),
        "{text}"
    );
    assert!(!text.contains(&db.pg.super_password));
    assert_untouched(&db, &before);
}

#[test]
fn tls_disable_still_works_against_a_plain_server() {
    let Some(mut db) = Db::start("postgres::tls_disable_still_works_against_a_plain_server") else {
        return;
    };
    db.admin = db.admin_with("sslmode=disable");
    let out = db.run(&["incident", "start", "support-db", "--yes", "--no-tui"]);
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    assert!(
        db.login(OLD_PASSWORD)
            .unwrap_err()
            .contains("password authentication failed")
    );
    db.login(&db.vault.value(PATH, "value", None).unwrap())
        .unwrap();
}

#[test]
fn tls_a_bad_sslmode_is_named_and_changes_nothing() {
    let Some(mut db) = Db::start("postgres::tls_a_bad_sslmode_is_named_and_changes_nothing") else {
        return;
    };
    db.admin = db.admin_with("sslmode=verify_full");
    let before = db.listing();
    // In the admin URL, known once the credential is resolved: the first step fails, before
    // any change, naming the parameter but not the value (the URL holds the password).
    let out = db.run(&["incident", "start", "support-db", "--yes", "--no-tui"]);
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    let text = output(&out);
    assert!(
        text.contains("the admin URL's sslmode must be one of"),
        "{text}"
    );
    assert!(!text.contains("verify_full") && !text.contains(&db.pg.super_password));
    assert_untouched(&db, &before);

    // In the inventory: refused when it loads, with file, line and field; nothing opens.
    db.admin = db.pg.admin_url();
    db.provider_settings("{ sslmode = \"verify_full\" }");
    let out = db.run(&["incident", "start", "support-db", "--yes", "--no-tui"]);
    assert_eq!(out.status.code(), Some(2), "{}", output(&out));
    let text = stderr(&out);
    assert!(
        text.contains("inventory.toml:7:24:")
            && text.contains(
                "setting `sslmode` must be one of disable, prefer, require, verify-ca, verify-full"
            ),
        "{text}"
    );
    assert_untouched(&db, &before);
}
