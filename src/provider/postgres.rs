//! `postgres`: a database role's password is the "key". The admin credential resolves to an
//! admin connection URL (`postgresql://admin:PASSWORD@host:5432/db`), `provider_key_id` is
//! the role name, and the stored value is the role's password.
//!
//! | op | statement | spec (PostgreSQL 15 documentation) |
//! |---|---|---|
//! | locate | `SELECT rolcanlogin FROM pg_roles WHERE rolname = $1` | [`pg_roles`](https://www.postgresql.org/docs/15/view-pg-roles.html) |
//! | verify | log in as the role with the password, `SELECT 1`; only SQLSTATE 28P01 `invalid_password` proves the password dead; other errors (28000 `invalid_authorization_specification`: a `pg_hba.conf` refusal or `NOLOGIN` with the right password; network; timeouts) are inconclusive | [Password Authentication](https://www.postgresql.org/docs/15/auth-password.html), [Error Codes](https://www.postgresql.org/docs/15/errcodes-appendix.html) |
//! | disable | `ALTER ROLE ... NOLOGIN` | [ALTER ROLE](https://www.postgresql.org/docs/15/sql-alterrole.html) |
//! | revoke | set a random password nobody knows, then `pg_terminate_backend` on the role's live sessions (a password change does not end them: the trap this closes) and check none survived | [ALTER ROLE](https://www.postgresql.org/docs/15/sql-alterrole.html), [Server Signaling Functions](https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-ADMIN-SIGNAL) |
//! | create | `ALTER ROLE ... WITH LOGIN PASSWORD` with a newly generated password. Only its SCRAM-SHA-256 verifier, computed here, goes over the wire, so the password cannot end up in the server's statement log | [ALTER ROLE](https://www.postgresql.org/docs/15/sql-alterrole.html), [SCRAM-SHA-256 (RFC 7677)](https://www.rfc-editor.org/rfc/rfc7677) |
//! | usage | a snapshot of the role's sessions in `pg_stat_activity` (client address, application, start time) | [`pg_stat_activity`](https://www.postgresql.org/docs/15/monitoring-stats.html#MONITORING-PG-STAT-ACTIVITY-VIEW) |
//!
//! A role has one password, so there is no overlap: zero-downtime rotation is refused for
//! this kind.
//!
//! Every connection (the admin's for locate, disable, revoke and the session check, create
//! and usage; the role's for the proof) is made with one set of TLS settings: the admin URL's
//! `sslmode` and `sslrootcert` (libpq's parameters), else the provider's settings of those
//! names, else the default; see [`tls`]. The proof logs in as the role to the same host over
//! the same TLS, and a TLS failure there is inconclusive, never proof: only 28P01 is.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::Identity;
use super::traits::{Capabilities, Provider};
use super::{
    KeyState, LocatedKey, Op, OpOutput, Probe, ProviderError, UsageEvent, UsageReport, Which,
};
use crate::http::Http;
use crate::inventory::ProviderDef;
use crate::inventory::ProviderKind;
use crate::plan::{Access, RequestPlan, SecretBag, SecretRef};
use crate::secret::{Redactor, Secret};

mod tls;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long terminated sessions get to disappear from `pg_stat_activity`.
const TERMINATE_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("the admin credential is not a PostgreSQL connection URL: {0}")]
    Url(String),
    #[error("PostgreSQL: cannot connect to {host} as {role} (sslmode={sslmode}): {message}")]
    Connect {
        role: String,
        host: String,
        sslmode: tls::SslMode,
        message: String,
    },
    /// The admin URL's TLS parameters: wrong, or their CA file unusable. Retrying cannot help
    /// until the URL or the file is fixed.
    #[error("PostgreSQL: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("PostgreSQL: {what} failed{}: {message}", code.as_ref().map(|c| format!(" (SQLSTATE {c})")).unwrap_or_default())]
    Query {
        what: String,
        code: Option<String>,
        message: String,
    },
}

impl PgError {
    pub fn transient(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }
}

#[derive(Debug, Clone)]
pub struct PostgresProvider {
    /// `settings.database`: where the role logs in for `verify` (default: the admin URL's).
    database: Option<String>,
    /// The inventory key's role (`provider_key_id`): verify and create act on it.
    role: Option<String>,
    /// `settings.sslmode` and `settings.sslrootcert`: the TLS settings when the admin URL
    /// names none, as libpq's `PGSSLMODE` and `PGSSLROOTCERT` are.
    tls_defaults: tls::Defaults,
}

/// `"name"` with embedded quotes doubled: role names go into DDL, which takes no parameters.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A password of 32 letters and digits (about 190 bits) from the OS's random source.
fn generate_password() -> Result<Secret, ProviderError> {
    use ring::rand::SecureRandom;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let rng = ring::rand::SystemRandom::new();
    let mut out = String::with_capacity(32);
    while out.len() < 32 {
        let mut buf = [0u8; 64];
        rng.fill(&mut buf)
            .map_err(|_| ProviderError::Malformed("the OS random source failed".into()))?;
        // Reject bytes past the largest multiple of the alphabet size: no modulo bias.
        let limit = 256 - 256 % ALPHABET.len();
        for b in buf {
            if usize::from(b) < limit && out.len() < 32 {
                out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
            }
        }
    }
    Ok(Secret::new(out))
}

fn db_error(what: &str, e: &tokio_postgres::Error, r: &Redactor) -> PgError {
    PgError::Query {
        what: what.into(),
        code: e.code().map(|c| c.code().to_string()),
        message: r.scrub(
            &e.as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string()),
        ),
    }
}

impl Provider for PostgresProvider {
    const KIND: ProviderKind = ProviderKind::Postgres;
    // A role has one password: the replacement replaces it, so there is no overlap.
    const CAPABILITIES: Capabilities = Capabilities {
        locate: true,
        verify: true,
        disable: true,
        revoke: true,
        create: true,
        usage: true,
        audit: false,
        create_idempotent: false,
        single_live_key: true,
        usage_destroyed_by_revoke: true,
    };

    fn from_def(def: &ProviderDef) -> Self {
        Self::new(def)
    }

    /// A password has no public hint: it belongs to the role the probe logs in as.
    fn identity(_value: &Secret, _key_id: Option<&str>) -> Option<Identity> {
        Some(Identity::Matches {
            by: "the role the probe logs in as (a password has no public hint)".into(),
        })
    }

    fn for_key(mut self, key: &crate::inventory::Key) -> Self {
        self.role = key.provider_key_id.clone();
        self
    }

    fn plan(&self, op: &Op) -> Result<RequestPlan, ProviderError> {
        Ok(match op {
            Op::FindReplacement(q) => return self.plan(&q.as_locate()),
            Op::Locate { id: Some(role), .. } => Self::admin(
                format!("Look up role {role}"),
                format!("SELECT rolcanlogin, rolvaliduntil FROM pg_roles WHERE rolname = '{role}'"),
                Access::Read,
            ),
            Op::Locate { .. } => Self::admin(
                "PostgreSQL roles are found by name only (provider_key_id)".into(),
                "(no query)".into(),
                Access::Read,
            ),
            Op::Verify { which } => {
                let (secret, label) = match which {
                    Which::Old => (SecretRef::OldKey, "old"),
                    Which::New => (SecretRef::NewKey, "new"),
                };
                RequestPlan::read(
                    format!("Log in as the role with the {label} password"),
                    "SQL",
                    "connect as the role; SELECT 1".to_string(),
                )
                .declared_read()
                .secret_header("Password", "", secret)
            }
            Op::Disable { id } => Self::admin(
                format!("Refuse new logins for role {id} (reversible)"),
                format!("ALTER ROLE {} NOLOGIN", ident(id)),
                Access::Write,
            )
            .idempotent(true),
            Op::Revoke { id } => Self::admin(
                format!("Replace role {id}'s password with a random one nobody knows, then terminate its live sessions"),
                format!(
                    "ALTER ROLE {} PASSWORD '[verifier of a random, discarded password]'; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{id}'",
                    ident(id)
                ),
                Access::Write,
            )
            .destructive()
            .idempotent(true),
            Op::Create { .. } => Self::admin(
                "Give the role a newly generated password (only its SCRAM verifier is sent) and allow logins".into(),
                "ALTER ROLE [role] WITH LOGIN PASSWORD '[SCRAM-SHA-256 verifier of the new key]'".into(),
                Access::Write,
            ),
            Op::AuditLog { id, .. } => Self::admin(
                format!("No audit log for role {id}: sessions come with usage"),
                "(no query)".into(),
                Access::Read,
            ),
            Op::Usage { id, .. } => Self::admin(
                format!("Snapshot role {id}'s live sessions"),
                format!(
                    "SELECT pid, client_addr, application_name, backend_start FROM pg_stat_activity WHERE usename = '{id}'"
                ),
                Access::Read,
            ),
        })
    }

    async fn execute(
        &self,
        op: &Op,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<OpOutput, ProviderError> {
        self.run(op, plan, http, secrets).await
    }
}

// The body of `Provider::execute`. It lives outside the trait impl because a replacement
// search is sent again as the named locate it is, and that recursion cannot be checked
// against the trait's `Send` bound from inside the recursive future's own definition.
impl PostgresProvider {
    async fn run(
        &self,
        op: &Op,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<OpOutput, ProviderError> {
        let r = http.redactor();
        match op {
            // Replacements carry keyfire's name here: found like any named key.
            Op::FindReplacement(q) => Box::pin(self.run(&q.as_locate(), plan, http, secrets)).await,
            Op::Verify { which } => {
                let secret = match which {
                    Which::Old => secrets.old_key.as_ref(),
                    Which::New => secrets.new_key.as_ref(),
                }
                .ok_or_else(|| {
                    ProviderError::Malformed("the password to verify is not in memory".into())
                })?;
                let mut target = match self.admin_target(secrets, r) {
                    Ok(target) => target,
                    // The proof connects as the application would; when that connection
                    // cannot even be set up (a TLS setting, its CA file), nothing is known
                    // about the password.
                    Err(e) => {
                        return Ok(OpOutput::Verified(Probe::Inconclusive {
                            status: None,
                            reason: e.to_string(),
                        }));
                    }
                };
                let role = self.role()?;
                target.config.user(&role).password(secret.expose());
                if let Some(db) = &self.database {
                    target.config.dbname(db);
                }
                Ok(OpOutput::Verified(match target.connect().await {
                    Ok(client) => {
                        logged("SELECT 1 as the role", client.simple_query("SELECT 1"))
                            .await
                            .map_err(|e| db_error("SELECT 1 as the role", &e, r))?;
                        Probe::Accepted
                    }
                    Err(e) if e.code() == Some(&SqlState::INVALID_PASSWORD) => Probe::Rejected {
                        status: None,
                        signal: "SQLSTATE 28P01 invalid_password".into(),
                    },
                    // A TLS failure lands here too: it says nothing about the password.
                    Err(e) => Probe::Inconclusive {
                        status: None,
                        reason: target.connect_error(&role, &e, r).to_string(),
                    },
                }))
            }
            Op::Locate { id: Some(role), .. } => {
                let client = self.admin_client(secrets, r).await?;
                Ok(OpOutput::Located(
                    Self::role_state(&client, role, r)
                        .await?
                        .map(|can_login| LocatedKey {
                            id: role.clone(),
                            name: Some(role.clone()),
                            state: if can_login {
                                KeyState::Active
                            } else {
                                KeyState::Disabled
                            },
                            hint: None,
                            created_at: None,
                            last_used_at: None,
                        }),
                ))
            }
            // Passwords have no names: a replacement lost in a crash is simply replaced.
            Op::Locate { .. } => Ok(OpOutput::Located(None)),
            Op::Disable { id } => {
                let client = self.admin_client(secrets, r).await?;
                let sql = format!("ALTER ROLE {} NOLOGIN", ident(id));
                logged("ALTER ROLE NOLOGIN", client.batch_execute(&sql))
                    .await
                    .map_err(|e| db_error("ALTER ROLE NOLOGIN", &e, r))?;
                match Self::role_state(&client, id, r).await? {
                    Some(false) => Ok(OpOutput::Disabled),
                    _ => Err(ProviderError::Malformed(format!(
                        "role {id} can still log in after NOLOGIN"
                    ))),
                }
            }
            Op::Revoke { id } => {
                let client = self.admin_client(secrets, r).await?;
                if Self::role_state(&client, id, r).await?.is_none() {
                    return Ok(OpOutput::Revoked { already: true });
                }
                let throwaway = generate_password()?;
                let verifier =
                    postgres_protocol::password::scram_sha_256(throwaway.expose().as_bytes());
                let sql = format!("ALTER ROLE {} PASSWORD '{verifier}'", ident(id));
                logged("ALTER ROLE PASSWORD", client.batch_execute(&sql))
                    .await
                    .map_err(|e| db_error("ALTER ROLE PASSWORD", &e, r))?;
                logged(
                    "pg_terminate_backend",
                    client.query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
                        &[id],
                    ),
                )
                .await
                    .map_err(|e| db_error("pg_terminate_backend", &e, r))?;
                let deadline = tokio::time::Instant::now() + TERMINATE_WAIT;
                loop {
                    let left = Self::sessions(&client, id, r).await?;
                    if left == 0 {
                        crate::failpoint::failpoint("pg:revoked");
                        return Ok(OpOutput::Revoked { already: false });
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ProviderError::Malformed(format!(
                            "{left} session(s) of role {id} survived pg_terminate_backend"
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Op::Create { .. } => {
                let role = self.role()?;
                let client = self.admin_client(secrets, r).await?;
                if Self::role_state(&client, &role, r).await?.is_none() {
                    return Err(ProviderError::Refused(format!(
                        "role {role} does not exist; keyfire replaces passwords of existing roles only"
                    )));
                }
                let password = generate_password()?;
                r.learn(&password);
                let verifier =
                    postgres_protocol::password::scram_sha_256(password.expose().as_bytes());
                let sql = format!(
                    "ALTER ROLE {} WITH LOGIN PASSWORD '{verifier}'",
                    ident(&role)
                );
                logged("ALTER ROLE PASSWORD", client.batch_execute(&sql))
                    .await
                    .map_err(|e| db_error("ALTER ROLE PASSWORD", &e, r))?;
                // Crash tests: the password changed, the answer never reaches the record.
                crate::failpoint::failpoint("pg:created");
                Ok(OpOutput::Created {
                    id: role,
                    value: password,
                })
            }
            Op::AuditLog { .. } => Err(ProviderError::Unsupported {
                kind: crate::inventory::ProviderKind::Postgres,
                op: "audit_log",
            }),
            Op::Usage { id, .. } => {
                let client = self.admin_client(secrets, r).await?;
                let rows = logged(
                    "pg_stat_activity",
                    client.query(
                        "SELECT client_addr::text, application_name, extract(epoch FROM backend_start)::float8 \
                         FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid() ORDER BY backend_start",
                        &[id],
                    ),
                )
                .await
                    .map_err(|e| db_error("pg_stat_activity", &e, r))?;
                let mut report = UsageReport {
                    pages: 1,
                    events_source: Some(crate::audit::SourceInfo {
                        name: "pg_stat_activity".into(),
                        addresses: true,
                        statuses: false,
                        models: false,
                        per_request: true,
                    }),
                    ..UsageReport::default()
                };
                for row in rows {
                    let started: Option<f64> = row.get(2);
                    let Some(time) = started
                        .and_then(|s| DateTime::<Utc>::from_timestamp_millis((s * 1000.0) as i64))
                    else {
                        continue;
                    };
                    let app: Option<String> = row.get(1);
                    report.events.push(UsageEvent {
                        time,
                        action: "session".into(),
                        source_ip: row.get::<_, Option<String>>(0),
                        user_agent: app.filter(|a| !a.is_empty()),
                        error_code: None,
                    });
                }
                report.notes.push(format!(
                    "PostgreSQL: {} live session(s) of role {id} now (pg_stat_activity); past connections need log_connections in the server log",
                    report.events.len()
                ));
                Ok(OpOutput::Usage(report))
            }
        }
    }
}

impl PostgresProvider {
    pub fn new(def: &ProviderDef) -> Self {
        Self {
            database: def
                .settings
                .get("database")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            role: None,
            tls_defaults: tls::Defaults {
                sslmode: super::setting(def, "sslmode"),
                sslrootcert: super::setting(def, "sslrootcert"),
            },
        }
    }

    fn admin(summary: String, sql: String, access: Access) -> RequestPlan {
        let plan = match access {
            // Reads are `SELECT`s (a login with `SELECT 1` for the probe).
            Access::Read => RequestPlan::read(summary, "SQL", sql).declared_read(),
            Access::Write => RequestPlan::write(summary, "SQL", sql),
        };
        plan.secret_header("Connection", "", SecretRef::AdminCredential)
    }

    /// The admin URL as a connection: its settings and its TLS. Every connection starts here,
    /// the proof's too, so all of them use the same TLS settings.
    fn admin_target(&self, secrets: &SecretBag, r: &Redactor) -> Result<Target, PgError> {
        let url = secrets
            .admin
            .as_ref()
            .ok_or_else(|| PgError::Url("no admin credential was resolved".into()))?;
        // tokio-postgres knows neither `sslrootcert` nor the `verify-*` modes: keyfire takes
        // them out and handles TLS itself.
        let split = tls::split(url.expose())?;
        let mut config = Config::from_str(split.rest.expose())
            // The parser's message may quote the URL; never show it.
            .map_err(|_| {
                PgError::Url("expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE".into())
            })?;
        // The whole URL is known to the redactor; its password alone must be too.
        if let Some(pw) = config.get_password() {
            r.learn(&Secret::new(String::from_utf8_lossy(pw)));
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("keyfire");
        let tls = split.settings(config.get_hosts(), config.get_hostaddrs(), &self.tls_defaults)?;
        // With `hostaddr` alone, libpq still does TLS (verify-ca, require), but tokio-postgres
        // refuses TLS without a host name: the addresses stand in as the names, so verify-full
        // then needs them in the certificate (libpq refuses verify-full outright there).
        if config.get_hosts().is_empty() {
            let addrs: Vec<String> = config.get_hostaddrs().iter().map(|a| a.to_string()).collect();
            for addr in addrs {
                config.host(&addr);
            }
        }
        let connector = tls.apply(&mut config)?;
        Ok(Target {
            config,
            tls,
            connector,
        })
    }

    async fn admin_client(&self, secrets: &SecretBag, r: &Redactor) -> Result<Client, PgError> {
        let target = self.admin_target(secrets, r)?;
        let user = target.config.get_user().unwrap_or("?").to_string();
        target
            .connect()
            .await
            .map_err(|e| target.connect_error(&user, &e, r))
    }

    async fn role_state(
        client: &Client,
        role: &str,
        r: &Redactor,
    ) -> Result<Option<bool>, PgError> {
        let rows = logged(
            "role lookup",
            client.query(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
                &[&role],
            ),
        )
        .await
            .map_err(|e| db_error("role lookup", &e, r))?;
        Ok(rows.first().map(|row| row.get::<_, bool>(0)))
    }

    async fn sessions(client: &Client, role: &str, r: &Redactor) -> Result<i64, PgError> {
        let row = logged(
            "session count",
            client.query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
                &[&role],
            ),
        )
        .await
            .map_err(|e| db_error("session count", &e, r))?;
        Ok(row.get(0))
    }

    /// The role verify and create act on.
    fn role(&self) -> Result<String, ProviderError> {
        self.role
            .clone()
            .ok_or_else(|| ProviderError::Malformed("the role is unknown (provider_key_id)".into()))
    }
}

/// Where and how to connect: the admin URL's settings, its TLS and the connector for it.
struct Target {
    config: Config,
    tls: tls::TlsSettings,
    connector: MakeRustlsConnect,
}

impl Target {
    async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let started = std::time::Instant::now();
        let connected = self.config.connect(self.connector.clone()).await;
        if tracing::enabled!(target: LOG_TARGET, tracing::Level::DEBUG) {
            let user = self.config.get_user().unwrap_or("?");
            let hosts = self.hosts();
            let ms = started.elapsed().as_millis();
            match &connected {
                Ok(_) => tracing::debug!(target: LOG_TARGET, %hosts, user, ms, "connected"),
                Err(e) => tracing::debug!(
                    target: LOG_TARGET,
                    %hosts,
                    user,
                    ms,
                    sqlstate = e.code().map(|c| c.code()),
                    "connection failed"
                ),
            }
        }
        let (client, connection) = connected?;
        tokio::spawn(async move {
            // Ends when the client is dropped; errors then are of no interest.
            let _ = connection.await;
        });
        Ok(client)
    }

    /// `host:port` for each host of the URL, for messages (host names are not secret).
    fn hosts(&self) -> String {
        let ports = self.config.get_ports();
        self.config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                match h {
                    tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(dir) => {
                        format!("{}/.s.PGSQL.{port}", dir.display())
                    }
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A failed connection as the operator reads it: the host, the sslmode, what failed (the
    /// causes too: tokio-postgres's own text is only "error performing TLS handshake"), and
    /// what to change when it is a TLS problem. Scrubbed: a server's message may quote input.
    fn connect_error(&self, role: &str, e: &tokio_postgres::Error, r: &Redactor) -> PgError {
        let mut message = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => {
                let mut text = e.to_string();
                let mut cause = std::error::Error::source(e);
                while let Some(c) = cause {
                    text.push_str(": ");
                    text.push_str(&c.to_string());
                    cause = c.source();
                }
                text
            }
        };
        if let Some(hint) = tls::hint(e, &self.tls) {
            message.push_str(" (");
            message.push_str(&hint);
            message.push(')');
        }
        PgError::Connect {
            role: role.to_string(),
            host: self.hosts(),
            sslmode: self.tls.mode,
            message: crate::http::truncate(&r.scrub(&message), 400),
        }
    }
}


/// The debug log's target for connections and statements.
const LOG_TARGET: &str = "keyfire::postgres";

/// Run one statement with a debug-log line: its label (never its text, which holds a password
/// verifier in `ALTER ROLE ... PASSWORD`), its time and, when it failed, its SQLSTATE.
async fn logged<T>(
    what: &str,
    statement: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    let started = std::time::Instant::now();
    let result = statement.await;
    tracing::debug!(
        target: LOG_TARGET,
        statement = what,
        ms = started.elapsed().as_millis(),
        sqlstate = result.as_ref().err().and_then(|e| e.code()).map(|c| c.code()),
        "statement"
    );
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_is_never_executed_in_a_drill() {
        // Through the dispatcher, which holds the one drill guard.
        let p = crate::provider::AnyProvider::Postgres(PostgresProvider {
            database: None,
            role: Some("agent".into()),
            tls_defaults: tls::Defaults::default(),
        });
        let http = Http::new(true, Redactor::new()).unwrap();
        let bag = SecretBag {
            // Nothing listens here: reaching the server would fail differently.
            admin: Some(Secret::new("postgresql://admin:pw@127.0.0.1:9/postgres")),
            ..SecretBag::default()
        };
        for op in [
            Op::Revoke { id: "agent".into() },
            Op::Disable { id: "agent".into() },
            Op::Create {
                name: "n".into(),
                idempotency_key: "k".into(),
            },
        ] {
            let plan = p.plan(&op).unwrap();
            assert_eq!(plan.access, Access::Write);
            assert!(!plan.render().contains("pw@"));
            let err = p.execute(&op, &plan, &http, &bag).await.unwrap_err();
            assert!(matches!(err, ProviderError::DryRunBlocked(_)), "{err}");
        }
    }

    /// The proof connects with the admin URL's TLS settings; when TLS cannot be set up or
    /// the server will not speak it, the old password is not proven dead.
    #[tokio::test]
    async fn a_tls_failure_in_the_proof_is_inconclusive_never_dead() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A server that answers PostgreSQL's SSLRequest with "N" (no TLS); a plain login
        // would follow, which `require` must never send.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut request = [0u8; 8];
                if sock.read_exact(&mut request).await.is_ok() {
                    let _ = sock.write_all(b"N").await;
                }
            }
        });
        let p = PostgresProvider {
            database: None,
            role: Some("agent".into()),
            tls_defaults: tls::Defaults::default(),
        };
        let http = Http::new(false, Redactor::new()).unwrap();
        let url = format!("postgresql://admin:pw@127.0.0.1:{port}/postgres");
        for (query, says) in [
            ("sslmode=require", "server does not support TLS"),
            (
                "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
                "/nonexistent/ca.pem",
            ),
        ] {
            let bag = SecretBag {
                admin: Some(Secret::new(format!("{url}?{query}"))),
                old_key: Some(Secret::new("old-password")),
                ..SecretBag::default()
            };
            let op = Op::Verify { which: Which::Old };
            let plan = p.plan(&op).unwrap();
            match p.execute(&op, &plan, &http, &bag).await.unwrap() {
                OpOutput::Verified(Probe::Inconclusive { reason, .. }) => {
                    assert!(reason.contains(says), "{reason}");
                    assert!(!reason.contains("old-password"), "{reason}");
                }
                other => panic!("{query}: {other:?}"),
            }
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("agent"), "\"agent\"");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn generated_passwords_are_long_distinct_and_alphanumeric() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.expose().len(), 32);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose(), b.expose());
    }
}
