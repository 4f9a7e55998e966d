//! The store contract for the HTTP stores without an emulator here (Doppler, Infisical):
//! each passes the same tests against its loopback simulator. Store level: read, write with
//! the concurrency check, read back by version; someone else's change stops the write; a
//! drill sends reads only; 401/403/404/409/429 with `Retry-After`/5xx/timeouts/malformed
//! bodies map to error kinds with no secret in any text. Store-specific: Doppler names the
//! log entry (who, when) of a concurrent change and of its own write; Infisical renews an
//! expired token and refuses an approval answer as "not applied".

use std::time::Duration;

use keyfire::http::{FailureKind, Http, HttpConfig, HttpError, RetryPolicy};
use keyfire::inventory::{Origin, StoreDef, StoreKind};
use keyfire::plan::{SecretBag, SecretRef};
use keyfire::secret::{Redactor, Secret};
use keyfire::sim::{DopplerSim, Fault, InfisicalSim, LoggedRequest};
use keyfire::store::{AnyStore, SecretLocation, StoreError, StoreOp, StoreOutput, StoreVersion};

pub const DOPPLER_TOKEN: &str = "dp.st.prd.CANARYdopplerTok3n9Qw2Er5Ty8Ui1Op4";
pub const INFISICAL_SECRET: &str = "CANARYinfisicalS3cret7Hj4Kl1Zx8Cv5Bn2Mq9";
pub const INFISICAL_CLIENT: &str = "6f1c2d3e-keyfire-rotation";
pub const INFISICAL_PROJECT: &str = "proj-agents";
pub const DOPPLER_NAME: &str = "SUPPORT_LLM_KEY";
pub const INFISICAL_PATH: &str = "/agents/support/SUPPORT_LLM_KEY";
const OLD: &str = "fk-CANARYstoreold4Rt7Yu1Io3Pa6Sd9Fg2Hj5";
const NEW: &str = "fk-CANARYstorenew8Kl5Zx2Cv7Bn4Mq1We6Rt3";

pub const KINDS: [StoreKind; 2] = [StoreKind::Doppler, StoreKind::Infisical];

pub enum Sim {
    Doppler(DopplerSim),
    Infisical(InfisicalSim),
}

impl Sim {
    /// A simulator holding `old` at the test secret.
    pub fn start(kind: StoreKind, old: &str) -> Self {
        match kind {
            StoreKind::Doppler => {
                let sim = DopplerSim::start("agents", "prd", DOPPLER_TOKEN).expect("doppler sim");
                sim.put("OTHER_SETTING", "x");
                sim.put(DOPPLER_NAME, old);
                Self::Doppler(sim)
            }
            _ => {
                let sim = InfisicalSim::start(
                    INFISICAL_CLIENT,
                    INFISICAL_SECRET,
                    INFISICAL_PROJECT,
                    "prod",
                )
                .expect("infisical sim");
                sim.put(INFISICAL_PATH, old);
                Self::Infisical(sim)
            }
        }
    }

    pub fn address(&self) -> String {
        match self {
            Self::Doppler(s) => s.address(),
            Self::Infisical(s) => s.address(),
        }
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        match self {
            Self::Doppler(s) => s.requests(),
            Self::Infisical(s) => s.requests(),
        }
    }

    pub fn inject(&self, f: Fault) {
        match self {
            Self::Doppler(s) => s.observer().inject(f),
            Self::Infisical(s) => s.observer().inject(f),
        }
    }

    /// The value agents read now.
    pub fn current(&self) -> Option<String> {
        match self {
            Self::Doppler(s) => s.value(DOPPLER_NAME),
            Self::Infisical(s) => s.value(INFISICAL_PATH, None),
        }
    }

    /// Someone else changes the secret's config (Doppler: another secret of the config) or
    /// the secret itself (Infisical).
    pub fn someone_else_writes(&self) {
        match self {
            Self::Doppler(s) => {
                s.put_as("OTHER_SETTING", "y", "Dana Ops", "dana@example.com");
            }
            Self::Infisical(s) => {
                s.put(INFISICAL_PATH, "fk-someone-elses-value");
            }
        }
    }

    /// Requests that change something at the store (Infisical's login creates a token but
    /// changes no secret).
    pub fn writes(&self) -> Vec<LoggedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.is_write() && r.path != "/api/v1/auth/universal-auth/login")
            .collect()
    }

    /// The path of the write request.
    pub fn write_path(&self) -> &'static str {
        match self {
            Self::Doppler(_) => "/v3/configs/config/secrets",
            Self::Infisical(_) => "/api/v3/secrets/raw/",
        }
    }

    /// The path every read of the secret goes to.
    pub fn read_path(&self) -> &'static str {
        match self {
            Self::Doppler(_) => "/v3/configs/config/secret",
            Self::Infisical(_) => "/api/v3/secrets/raw/",
        }
    }
}

pub fn def(kind: StoreKind, address: String) -> StoreDef {
    let mut settings = serde_json::Map::new();
    match kind {
        StoreKind::Doppler => {
            settings.insert("project".into(), "agents".into());
            settings.insert("config".into(), "prd".into());
        }
        _ => {
            settings.insert("client_id".into(), INFISICAL_CLIENT.into());
            settings.insert("project_id".into(), INFISICAL_PROJECT.into());
            settings.insert("environment".into(), "prod".into());
        }
    }
    StoreDef {
        id: "s".into(),
        kind,
        address: Some(address),
        credential: None,
        settings,
        origin: Origin { file: 0, line: 1 },
    }
}

pub fn secret_path(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Doppler => DOPPLER_NAME,
        _ => INFISICAL_PATH,
    }
}

pub fn credential(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Doppler => DOPPLER_TOKEN,
        _ => INFISICAL_SECRET,
    }
}

struct Harness {
    kind: StoreKind,
    sim: Sim,
    store: AnyStore,
    loc: SecretLocation,
    bag: SecretBag,
    http: Http,
}

fn http(dry_run: bool, redactor: Redactor) -> Http {
    Http::with_config(
        dry_run,
        redactor,
        HttpConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_millis(700),
            retry: RetryPolicy {
                max_attempts: 2,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_secs(3),
            },
        },
    )
    .unwrap()
}

impl Harness {
    fn new(kind: StoreKind) -> Self {
        Self::with(kind, false)
    }

    fn with(kind: StoreKind, dry_run: bool) -> Self {
        let sim = Sim::start(kind, OLD);
        let store = AnyStore::from_def(&def(kind, sim.address()));
        let redactor = Redactor::new();
        let cred = Secret::new(credential(kind));
        redactor.learn(&cred);
        let bag = SecretBag {
            store_credential: Some(cred),
            new_key: Some(Secret::new(NEW)),
            ..SecretBag::default()
        };
        Self {
            kind,
            sim,
            store,
            loc: SecretLocation {
                path: secret_path(kind).into(),
                field: "value".into(),
            },
            bag,
            http: http(dry_run, redactor),
        }
    }

    async fn run(&self, op: StoreOp) -> Result<StoreOutput, StoreError> {
        let plan = self.store.plan(&op, &self.loc)?;
        self.store
            .execute(&op, &self.loc, &plan, &self.http, &self.bag)
            .await
    }

    async fn read(&self, version: Option<StoreVersion>) -> Result<StoreOutput, StoreError> {
        self.run(StoreOp::Read { version }).await
    }

    async fn write(&self, cas: StoreVersion) -> Result<StoreOutput, StoreError> {
        self.run(StoreOp::Write {
            cas: Some(cas),
            pending: false,
            token: "inc-1:support-llm:store:1".into(),
            value: SecretRef::NewKey,
        })
        .await
    }

    async fn current_version(&self) -> StoreVersion {
        match self.read(None).await {
            Ok(StoreOutput::Value { version, .. }) => version,
            other => panic!("{:?}: read: {other:?}", self.kind),
        }
    }

    fn assert_clean(&self, text: &str) {
        for secret in [OLD, NEW, credential(self.kind)] {
            assert!(
                !text.contains(&secret[4..secret.len() - 4]),
                "{:?}: a secret in {text}",
                self.kind
            );
        }
    }
}

fn value_of(out: &StoreOutput) -> (&str, StoreVersion) {
    match out {
        StoreOutput::Value { value, version } => (value.expose(), version.clone()),
        other => panic!("expected a value, got {other:?}"),
    }
}

#[tokio::test]
async fn read_write_and_read_back_by_version() {
    for kind in KINDS {
        let h = Harness::new(kind);
        let opened = h.read(None).await.unwrap();
        let (value, v0) = value_of(&opened);
        assert_eq!(value, OLD, "{kind:?}");
        let written = h.write(v0.clone()).await.unwrap();
        let StoreOutput::Written { version: v1 } = written else {
            panic!("{kind:?}: {written:?}")
        };
        assert_ne!(v1, v0, "{kind:?}: a new version");
        assert_eq!(h.sim.current().as_deref(), Some(NEW), "{kind:?}");
        let back = h.read(Some(v1.clone())).await.unwrap();
        let (value, version) = value_of(&back);
        assert_eq!(
            (value, &version),
            (NEW, &v1),
            "{kind:?}: read back by version"
        );
        assert_eq!(h.sim.writes().len(), 1, "{kind:?}: one write");
        match &h.sim {
            // The version is the log entry the write created: what a rollback names.
            Sim::Doppler(s) => assert_eq!(v1, StoreVersion::Id(s.log_ids()[0].clone())),
            Sim::Infisical(s) => {
                assert_eq!(v1, StoreVersion::Number(2));
                // The old value stays readable by its version (the way to restore it).
                let old = h.read(Some(v0.clone())).await.unwrap();
                assert_eq!(value_of(&old).0, OLD);
                assert_eq!(s.value(INFISICAL_PATH, Some(1)).as_deref(), Some(OLD));
                let write = h.sim.writes().remove(0);
                assert_eq!(write.method, "PATCH");
            }
        }
    }
}

#[tokio::test]
async fn a_change_by_someone_else_after_open_stops_the_write() {
    for kind in KINDS {
        let h = Harness::new(kind);
        let v0 = h.current_version().await;
        h.sim.someone_else_writes();
        let err = h.write(v0).await.unwrap_err();
        let text = err.to_string();
        match kind {
            StoreKind::Doppler => {
                assert!(matches!(err, StoreError::Changed(_)), "{err:?}");
                // Who and when, from the log entry.
                assert!(text.contains("Dana Ops (dana@example.com)"), "{text}");
                assert!(text.contains(" at 20"), "{text}");
            }
            _ => assert!(matches!(err, StoreError::CasMismatch { .. }), "{err:?}"),
        }
        assert!(h.sim.writes().is_empty(), "{kind:?}: nothing written");
        assert_ne!(h.sim.current().as_deref(), Some(NEW));
        h.assert_clean(&text);
    }
}

#[tokio::test]
async fn a_drill_sends_reads_only_and_the_write_is_refused() {
    for kind in KINDS {
        let h = Harness::with(kind, true);
        let opened = h.read(None).await.unwrap();
        let (value, v0) = value_of(&opened);
        assert_eq!(value, OLD);
        let err = h.write(v0).await.unwrap_err();
        assert!(
            matches!(err, StoreError::DryRunBlocked(_)),
            "{kind:?}: {err:?}"
        );
        let promote = h
            .run(StoreOp::Promote {
                version: StoreVersion::Number(9),
                from: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(promote, StoreError::DryRunBlocked(_)));
        assert!(!h.sim.requests().is_empty());
        assert!(h.sim.writes().is_empty(), "{kind:?}: {:?}", h.sim.writes());
        assert_eq!(h.sim.current().as_deref(), Some(OLD));
    }
}

#[tokio::test]
async fn a_missing_secret_reads_as_missing_and_is_created() {
    for kind in KINDS {
        let h = Harness::new(kind);
        let loc = SecretLocation {
            path: match kind {
                StoreKind::Doppler => "NEW_AGENT_KEY".into(),
                _ => "/agents/new/NEW_AGENT_KEY".into(),
            },
            field: "value".into(),
        };
        let read = StoreOp::Read { version: None };
        let plan = h.store.plan(&read, &loc).unwrap();
        let out = h.store.execute(&read, &loc, &plan, &h.http, &h.bag).await;
        assert!(matches!(out, Ok(StoreOutput::Missing)), "{kind:?}: {out:?}");
        let write = StoreOp::Write {
            cas: Some(StoreVersion::Number(0)),
            pending: false,
            token: "t".into(),
            value: SecretRef::NewKey,
        };
        let plan = h.store.plan(&write, &loc).unwrap();
        let out = h.store.execute(&write, &loc, &plan, &h.http, &h.bag).await;
        assert!(
            matches!(out, Ok(StoreOutput::Written { .. })),
            "{kind:?}: {out:?}"
        );
    }
}

#[tokio::test]
async fn a_wrong_credential_is_refused_and_named_without_echoing_it() {
    for kind in KINDS {
        let mut h = Harness::new(kind);
        h.bag.store_credential = Some(Secret::new("dp.st.prd.WRONGwrongWRONGwrong12345"));
        let err = h.read(None).await.unwrap_err();
        let text = err.to_string();
        match kind {
            StoreKind::Doppler => {
                let StoreError::Http(e) = &err else {
                    panic!("{err:?}")
                };
                assert_eq!(e.kind(), FailureKind::Unauthorized);
                // Doppler's own message, from `messages[0]`.
                assert!(text.contains("Invalid Auth token"), "{text}");
            }
            _ => {
                assert!(matches!(err, StoreError::Denied(_)), "{err:?}");
                assert!(text.contains("Universal Auth login"), "{text}");
            }
        }
        assert!(!text.contains("WRONGwrong"));
        h.assert_clean(&text);
    }
}

#[tokio::test]
async fn a_token_without_write_access_is_denied_with_what_it_needs() {
    let h = Harness::new(StoreKind::Doppler);
    let Sim::Doppler(sim) = &h.sim else {
        unreachable!()
    };
    sim.set_read_only(true);
    let v0 = h.current_version().await;
    let err = h.write(v0).await.unwrap_err();
    assert!(matches!(err, StoreError::Denied(_)), "{err:?}");
    assert!(err.to_string().contains("write access"), "{err}");
    assert_eq!(sim.value(DOPPLER_NAME).as_deref(), Some(OLD));
    // Infisical: a 403 on the secret routes names the role the identity needs.
    let h = Harness::new(StoreKind::Infisical);
    h.sim
        .inject(Fault::fail("GET", "/api/v3/secrets/raw/", 403, 2));
    let err = h.read(None).await.unwrap_err();
    assert!(matches!(err, StoreError::Denied(_)), "{err:?}");
    assert!(err.to_string().contains("project role"), "{err}");
}

#[tokio::test]
async fn every_failure_maps_to_an_error_kind() {
    for kind in KINDS {
        let h = Harness::new(kind);
        let read_path = h.sim.read_path();
        // 409 (not retried) on a read.
        h.sim.inject(Fault::fail("GET", read_path, 409, 1));
        let err = h.read(None).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Http(e) if e.kind() == FailureKind::Conflict),
            "{kind:?}: {err:?}"
        );
        // 429 with Retry-After: 1 is waited out, then the read succeeds.
        h.sim.inject(Fault::rate_limit("GET", read_path, 1, 1));
        let out = h.read(None).await.unwrap();
        assert_eq!(value_of(&out).0, OLD);
        assert!(
            h.http.waits().contains(&Duration::from_secs(1)),
            "{kind:?}: {:?}",
            h.http.waits()
        );
        // 5xx twice: retried, then given up on with the attempts named.
        h.sim.inject(Fault::fail("GET", read_path, 503, 2));
        let err = h.read(None).await.unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::Http(HttpError::Exhausted { attempts: 2, .. })
            ),
            "{kind:?}: {err:?}"
        );
        // A server that holds its answer past the timeout.
        h.sim
            .inject(Fault::hold("GET", read_path, Duration::from_secs(3)));
        h.sim
            .inject(Fault::hold("GET", read_path, Duration::from_secs(3)));
        let err = h.read(None).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Http(e) if e.kind() == FailureKind::Timeout),
            "{kind:?}: {err:?}"
        );
        // A body that is not the documented JSON.
        h.sim.inject(Fault::malformed("GET", read_path, 1));
        let err = h.read(None).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Http(HttpError::Malformed(_))),
            "{kind:?}: {err:?}"
        );
        // A 500 on the write is not retried (a write is not idempotent) and changes nothing.
        let v0 = h.current_version().await;
        h.sim.inject(Fault::fail(
            match kind {
                StoreKind::Doppler => "POST",
                _ => "PATCH",
            },
            h.sim.write_path(),
            500,
            1,
        ));
        let err = h.write(v0).await.unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::Http(HttpError::Status { status: 500, .. })
            ),
            "{kind:?}: {err:?}"
        );
        assert_eq!(h.sim.current().as_deref(), Some(OLD));
        h.assert_clean(&format!("{err} {err:?}"));
    }
}

#[tokio::test]
async fn doppler_serves_no_past_versions_and_says_who_changed_the_config() {
    let h = Harness::new(StoreKind::Doppler);
    let v0 = h.current_version().await;
    h.sim.someone_else_writes();
    // The current value is still the one of v0, but Doppler cannot prove it: refused, named.
    let err = h.read(Some(v0)).await.unwrap_err();
    assert!(matches!(err, StoreError::Changed(_)), "{err:?}");
    assert!(err.to_string().contains("Dana Ops"), "{err}");
    // The write's plan tells the operator how to undo it.
    let plan = h
        .store
        .plan(
            &StoreOp::Write {
                cas: Some(StoreVersion::Id("x".into())),
                pending: false,
                token: "t".into(),
                value: SecretRef::NewKey,
            },
            &h.loc,
        )
        .unwrap();
    assert!(
        plan.summary.contains(
            "doppler configs logs rollback <log id of this change> --project agents --config prd"
        ),
        "{}",
        plan.summary
    );
}

#[tokio::test]
async fn infisical_logs_in_again_when_its_token_expires_mid_incident() {
    let h = Harness::new(StoreKind::Infisical);
    let Sim::Infisical(sim) = &h.sim else {
        unreachable!()
    };
    let v0 = h.current_version().await;
    assert_eq!(sim.logins(), 1);
    // A second call reuses the token.
    h.read(None).await.unwrap();
    assert_eq!(sim.logins(), 1);
    // The incident outlives the token: the next call gets 401, logs in again, succeeds.
    sim.expire_tokens();
    let out = h.write(v0).await.unwrap();
    assert!(matches!(out, StoreOutput::Written { .. }), "{out:?}");
    assert_eq!(sim.logins(), 2);
    assert_eq!(sim.value(INFISICAL_PATH, None).as_deref(), Some(NEW));
}

#[tokio::test]
async fn infisical_approval_answers_mean_not_applied() {
    let h = Harness::new(StoreKind::Infisical);
    let Sim::Infisical(sim) = &h.sim else {
        unreachable!()
    };
    sim.require_approval("/agents/support");
    let v0 = h.current_version().await;
    let err = h.write(v0).await.unwrap_err();
    assert!(matches!(err, StoreError::NotApplied(_)), "{err:?}");
    assert!(err.to_string().contains("NOT live"), "{err}");
    assert_eq!(sim.version(INFISICAL_PATH), 1);
    assert_eq!(sim.value(INFISICAL_PATH, None).as_deref(), Some(OLD));
}

// ---- the simulators against the field lists of the API references -----------------------

fn reference(store: &str, call: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/spec/store-api-fields.json");
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let c = &all[store][call];
    assert!(
        c["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("https://")),
        "{store} {call} needs its source link"
    );
    c["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("{store} {call}: no fields"))
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

fn has(v: &serde_json::Value, path: &[&str]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    if let Some(name) = first.strip_suffix("[]") {
        return v
            .get(name)
            .and_then(serde_json::Value::as_array)
            .is_some_and(|items| !items.is_empty() && items.iter().all(|i| has(i, rest)));
    }
    v.get(*first).is_some_and(|child| has(child, rest))
}

fn check(store: &str, call: &str, body: &serde_json::Value) {
    let missing: Vec<String> = reference(store, call)
        .into_iter()
        .filter(|f| !has(body, &f.split('.').collect::<Vec<_>>()))
        .collect();
    assert!(
        missing.is_empty(),
        "{store} {call}: the simulator's answer lacks {missing:?}:\n{body:#}"
    );
}

async fn call(
    method: reqwest::Method,
    url: String,
    bearer: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut req = reqwest::Client::new()
        .request(method, url)
        .header("Authorization", format!("Bearer {bearer}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn simulator_answers_carry_the_fields_of_the_api_references() {
    use reqwest::Method;
    let sim = DopplerSim::start("agents", "prd", DOPPLER_TOKEN).unwrap();
    sim.put("SPEC_KEY", "v0");
    let base = sim.address();
    let q = "project=agents&config=prd";
    let (s, b) = call(
        Method::GET,
        format!("{base}/v3/configs/config/secret?{q}&name=SPEC_KEY"),
        DOPPLER_TOKEN,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    check("doppler", "retrieve_secret", &b);
    let (s, b) = call(
        Method::GET,
        format!("{base}/v3/configs/config/logs?{q}&page=1&per_page=5"),
        DOPPLER_TOKEN,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    check("doppler", "list_config_logs", &b);
    let (s, b) = call(
        Method::POST,
        format!("{base}/v3/configs/config/secrets"),
        DOPPLER_TOKEN,
        Some(serde_json::json!({ "project": "agents", "config": "prd", "secrets": { "SPEC_KEY": "v1" } })),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    check("doppler", "update_secrets", &b);
    let (s, b) = call(
        Method::GET,
        format!("{base}/v3/configs/config/secret?{q}&name=NOPE"),
        DOPPLER_TOKEN,
        None,
    )
    .await;
    assert_eq!(s, 404, "{b}");
    check("doppler", "error", &b);

    let sim = InfisicalSim::start(
        INFISICAL_CLIENT,
        INFISICAL_SECRET,
        INFISICAL_PROJECT,
        "prod",
    )
    .unwrap();
    sim.put(INFISICAL_PATH, "v0");
    let base = sim.address();
    let (s, login) = call(
        Method::POST,
        format!("{base}/api/v1/auth/universal-auth/login"),
        "",
        Some(serde_json::json!({ "clientId": INFISICAL_CLIENT, "clientSecret": INFISICAL_SECRET })),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    check("infisical", "universal_auth_login", &login);
    let token = login["accessToken"].as_str().unwrap().to_string();
    let url = format!("{base}/api/v3/secrets/raw/SUPPORT_LLM_KEY");
    let where_ =
        format!("workspaceId={INFISICAL_PROJECT}&environment=prod&secretPath=%2Fagents%2Fsupport");
    let (s, b) = call(
        Method::GET,
        format!("{url}?{where_}&type=shared"),
        &token,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    check("infisical", "get_secret_raw", &b);
    let body = serde_json::json!({ "workspaceId": INFISICAL_PROJECT, "environment": "prod", "secretPath": "/agents/support", "secretValue": "v1", "type": "shared" });
    let (s, b) = call(Method::PATCH, url.clone(), &token, Some(body.clone())).await;
    assert_eq!(s, 200, "{b}");
    check("infisical", "update_secret_raw", &b);
    sim.require_approval("/agents/support");
    let (s, b) = call(Method::PATCH, url.clone(), &token, Some(body)).await;
    assert_eq!(s, 200, "{b}");
    check("infisical", "update_secret_raw_approval", &b);
    let (s, b) = call(
        Method::GET,
        format!("{url}?{where_}&version=9"),
        &token,
        None,
    )
    .await;
    assert_eq!(s, 404, "{b}");
    check("infisical", "error", &b);
    sim.expire_tokens();
    let (s, b) = call(Method::GET, format!("{url}?{where_}"), &token, None).await;
    assert_eq!((s, b["error"].as_str()), (403, Some("TokenError")), "{b}");
    check("infisical", "error", &b);
}

#[tokio::test]
async fn doppler_will_not_replace_a_secret_reference_with_a_literal() {
    let h = Harness::new(StoreKind::Doppler);
    let Sim::Doppler(sim) = &h.sim else {
        unreachable!()
    };
    sim.set_raw(DOPPLER_NAME, "${shared.prd.OPENAI_KEY}");
    // The read gives what agents receive: the computed value.
    let v0 = h.current_version().await;
    let out = h.read(None).await.unwrap();
    assert_eq!(value_of(&out).0, OLD);
    let err = h.write(v0).await.unwrap_err();
    assert!(matches!(err, StoreError::Changed(_)), "{err:?}");
    assert!(
        err.to_string().contains("references another secret"),
        "{err}"
    );
    assert!(h.sim.writes().is_empty());
}

/// The store applied the write but its answer was lost: the retried write finds the value
/// already stored and reports that version instead of writing again or calling it a
/// concurrent change.
#[tokio::test]
async fn a_write_whose_answer_was_lost_is_recognised_on_retry() {
    for kind in KINDS {
        let h = Harness::new(kind);
        let v0 = h.current_version().await;
        let method = match kind {
            StoreKind::Doppler => "POST",
            _ => "PATCH",
        };
        h.sim
            .inject(Fault::lost_answer(method, h.sim.write_path(), 1));
        let err = h.write(v0.clone()).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Http(HttpError::Malformed(_))),
            "{kind:?}: {err:?}"
        );
        assert_eq!(h.sim.current().as_deref(), Some(NEW), "{kind:?}: applied");
        let out = h.write(v0).await.unwrap();
        let StoreOutput::Written { version } = out else {
            panic!("{kind:?}: {out:?}")
        };
        assert_eq!(h.sim.writes().len(), 1, "{kind:?}: not written twice");
        match &h.sim {
            Sim::Doppler(s) => assert_eq!(version, StoreVersion::Id(s.log_ids()[0].clone())),
            Sim::Infisical(_) => assert_eq!(version, StoreVersion::Number(2)),
        }
        let back = h.read(Some(version)).await.unwrap();
        assert_eq!(value_of(&back).0, NEW);
    }
}
