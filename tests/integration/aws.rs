//! aws-iam and aws-secrets-manager against moto (signature checking on, so a deleted key's
//! calls fail as at AWS), CloudTrail through the loopback stand-in, and OpenBao as the other
//! store: live incidents, a drill that must leave every server as it was, and kill -9
//! between create and promote.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_iam::types::StatusType;
use chrono::Utc;
use keyfire::aws::{KeyPair, Target};
use keyfire::secret::Secret;
use keyfire::sim::{CloudTrailSim, StsMode, StsStandIn, TrailEvent};

use crate::common::{files_under, stderr, stdout};
use crate::emulators::{Bao, Moto};

const ADMIN_VAR: &str = "KF_AWS_ADMIN";
const BAO_VAR: &str = "KF_BAO_SECRET_ID";
const AGENT_USER: &str = "agent-support";
const SM_PATH: &str = "agents/support/aws";
const BAO_PATH: &str = "agents/support/aws";

struct Fleet {
    dir: tempfile::TempDir,
    moto: Moto,
    bao: Option<Bao>,
    trail: CloudTrailSim,
    rt: tokio::runtime::Runtime,
    admin: KeyPair,
    old: KeyPair,
    bao_secret_id: String,
    old_bao_version: u64,
}

fn pair(id: &str, secret: &str) -> KeyPair {
    KeyPair {
        access_key_id: id.into(),
        secret_access_key: Secret::new(secret),
        session_token: None,
    }
}

fn json_of(p: &KeyPair) -> String {
    p.to_json().expose().to_string()
}

impl Fleet {
    /// moto seeded with an admin user (allowed everything), the agent's user and its key,
    /// and the key in Secrets Manager; then signature checking is switched on.
    fn start(test: &str, with_bao: bool) -> Option<Self> {
        let moto = Moto::start(test)?;
        let bao = if with_bao {
            Some(Bao::start(test)?)
        } else {
            None
        };
        let rt = tokio::runtime::Runtime::new().unwrap();
        let trail = rt.block_on(async { CloudTrailSim::start() }).unwrap();
        let target = Target {
            region: Some("us-east-1".into()),
            profile: None,
            endpoint: Some(moto.url()),
        };
        let (admin, old) = rt.block_on(async {
            let cfg = target.config(Some(&pair("AKIASETUP", "setup"))).await;
            let iam = aws_sdk_iam::Client::new(&cfg);
            iam.create_user().user_name("keyfire-admin").send().await.unwrap();
            iam.put_user_policy()
                .user_name("keyfire-admin")
                .policy_name("everything")
                .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
                .send()
                .await
                .unwrap();
            let a = iam.create_access_key().user_name("keyfire-admin").send().await.unwrap();
            let a = a.access_key().unwrap();
            iam.create_user().user_name(AGENT_USER).send().await.unwrap();
            let o = iam.create_access_key().user_name(AGENT_USER).send().await.unwrap();
            let o = o.access_key().unwrap();
            let old = pair(o.access_key_id(), o.secret_access_key());
            aws_sdk_secretsmanager::Client::new(&cfg)
                .create_secret()
                .name(SM_PATH)
                .secret_string(json_of(&old))
                .send()
                .await
                .unwrap();
            (pair(a.access_key_id(), a.secret_access_key()), old)
        });
        moto.enforce_signatures();
        let now = Utc::now();
        for (ago, ip, err) in [
            (30, "203.0.113.7", None),
            (20, "203.0.113.7", None),
            (3, "198.51.100.23", None),
            (2, "198.51.100.23", Some("AccessDenied")),
        ] {
            trail.add(TrailEvent {
                region: "us-east-1".into(),
                access_key_id: old.access_key_id.clone(),
                time: now - chrono::Duration::hours(ago),
                name: "ListBuckets".into(),
                source_ip: ip.into(),
                user_agent: "aws-cli/2.15".into(),
                error_code: err.map(str::to_string),
            });
        }
        let (bao_secret_id, old_bao_version, role_id) = match &bao {
            Some(b) => {
                let v = b.put(
                    None,
                    BAO_PATH,
                    serde_json::json!({ "value": json_of(&old) }),
                );
                let (role, secret) = b.approle(None);
                (secret, v, role)
            }
            None => (String::new(), 0, String::new()),
        };
        let dir = tempfile::tempdir().unwrap();
        let mut inv = format!(
            r#"schema = 1

[[providers]]
id = "aws"
kind = "aws-iam"
admin_credential = "env:{ADMIN_VAR}"
base_url = "{moto}"
settings = {{ region = "us-east-1", user = "{AGENT_USER}", cloudtrail_url = "{trail}" }}

[[stores]]
id = "asm"
kind = "aws-secrets-manager"
address = "{moto}"
credential = "env:{ADMIN_VAR}"
settings = {{ region = "us-east-1" }}

[[agents]]
id = "support-bot"
owner = "support@example.com"
expected_networks = ["203.0.113.0/24"]

[[keys]]
id = "support-aws"
agents = ["support-bot"]
provider = "aws"
provider_key_id = "{old_id}"
scopes = ["s3:ListBuckets"]
store = "asm"
secret_path = "{SM_PATH}"
created_at = 2026-10-01
"#,
            moto = moto.url(),
            trail = trail.address(),
            old_id = old.access_key_id,
        );
        if let Some(b) = &bao {
            inv.push_str(&format!(
                r#"
[[stores]]
id = "bao"
kind = "vault-kv2"
address = "{}"
credential = "env:{BAO_VAR}"
settings = {{ mount = "secret", auth = "approle", role_id = "{role_id}" }}

[[keys]]
id = "support-aws-bao"
agents = ["support-bot"]
provider = "aws"
provider_key_id = "{}"
store = "bao"
secret_path = "{BAO_PATH}"
created_at = 2026-10-01
"#,
                b.url(),
                old.access_key_id
            ));
        }
        std::fs::write(dir.path().join("inventory.toml"), inv).unwrap();
        Some(Self {
            dir,
            moto,
            bao,
            trail,
            rt,
            admin,
            old,
            bao_secret_id,
            old_bao_version,
        })
    }

    fn cmd(&self) -> Command {
        crate::common::hermetic_signing_key();
        let mut c = Command::new(env!("CARGO_BIN_EXE_keyfire"));
        c.env(ADMIN_VAR, json_of(&self.admin))
            .env(BAO_VAR, &self.bao_secret_id)
            .env("KEYFIRE_DATA_DIR", self.dir.path().join("data"))
            .env("KEYFIRE_INVENTORY", self.dir.path().join("inventory.toml"))
            .env_remove("KEYFIRE_CONFIG")
            .env_remove("KEYFIRE_FAILPOINT")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn target(&self) -> Target {
        Target {
            region: Some("us-east-1".into()),
            profile: None,
            endpoint: Some(self.moto.url()),
        }
    }

    fn iam(&self) -> aws_sdk_iam::Client {
        let cfg = self.rt.block_on(self.target().config(Some(&self.admin)));
        aws_sdk_iam::Client::new(&cfg)
    }

    fn sm(&self) -> aws_sdk_secretsmanager::Client {
        let cfg = self.rt.block_on(self.target().config(Some(&self.admin)));
        aws_sdk_secretsmanager::Client::new(&cfg)
    }

    /// `Ok(arn)` when STS accepts the key, `Err(code)` when it does not.
    fn sts_with(&self, key: &KeyPair) -> Result<String, String> {
        self.rt.block_on(async {
            let cfg = self.target().config(Some(key)).await;
            match aws_sdk_sts::Client::new(&cfg)
                .get_caller_identity()
                .send()
                .await
            {
                Ok(o) => Ok(o.arn().unwrap_or_default().to_string()),
                Err(e) => Err(keyfire::aws::sdk_error("sts", &e, &Default::default())
                    .code()
                    .unwrap_or("?")
                    .to_string()),
            }
        })
    }

    fn agent_keys(&self) -> Vec<(String, bool)> {
        let iam = self.iam();
        self.rt.block_on(async {
            let out = iam
                .list_access_keys()
                .user_name(AGENT_USER)
                .send()
                .await
                .unwrap();
            let mut keys: Vec<(String, bool)> = out
                .access_key_metadata()
                .iter()
                .map(|k| {
                    (
                        k.access_key_id().unwrap().to_string(),
                        k.status() == Some(&StatusType::Active),
                    )
                })
                .collect();
            keys.sort();
            keys
        })
    }

    /// (AWSCURRENT value, its version id, version id → stages).
    fn secret(&self) -> (String, String, Vec<(String, Vec<String>)>) {
        let sm = self.sm();
        self.rt.block_on(async {
            let cur = sm
                .get_secret_value()
                .secret_id(SM_PATH)
                .version_stage("AWSCURRENT")
                .send()
                .await
                .unwrap();
            let d = sm
                .describe_secret()
                .secret_id(SM_PATH)
                .send()
                .await
                .unwrap();
            let mut stages: Vec<(String, Vec<String>)> = d
                .version_ids_to_stages()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let mut v = v.clone();
                    v.sort();
                    (k.clone(), v)
                })
                .collect();
            stages.sort();
            (
                cur.secret_string().unwrap().to_string(),
                cur.version_id().unwrap().to_string(),
                stages,
            )
        })
    }

    /// Everything a drill could change in moto, as comparable text.
    fn moto_listing(&self) -> String {
        let iam = self.iam();
        let users = self.rt.block_on(async {
            let mut out = Vec::new();
            let users = iam.list_users().send().await.unwrap();
            for u in users.users() {
                let keys = iam
                    .list_access_keys()
                    .user_name(u.user_name())
                    .send()
                    .await
                    .unwrap();
                let mut ks: Vec<String> = keys
                    .access_key_metadata()
                    .iter()
                    .map(|k| format!("{}:{:?}", k.access_key_id().unwrap(), k.status()))
                    .collect();
                ks.sort();
                out.push(format!("{} {}", u.user_name(), ks.join(",")));
            }
            out.sort();
            out
        });
        format!("{users:?} {:?}", self.secret())
    }

    fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.dir.path().join("data/incidents"))
            .map(|r| {
                r.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    fn entries(&self, id: &str) -> Vec<keyfire::record::Entry> {
        keyfire::record::read_entries(
            &self
                .dir
                .path()
                .join("data/incidents")
                .join(id)
                .join("record.jsonl"),
        )
        .unwrap()
    }

    /// No secret value in any file keyfire wrote or in what it printed.
    fn assert_no_leak(&self, outputs: &[&Output], extra: &[&str]) {
        let mut secrets = vec![
            self.admin.secret_access_key.expose().to_string(),
            self.old.secret_access_key.expose().to_string(),
            self.bao_secret_id.clone(),
        ];
        secrets.extend(extra.iter().map(|s| s.to_string()));
        secrets.retain(|s| !s.is_empty());
        for f in files_under(&self.dir.path().join("data")) {
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
            for s in &secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "a secret leaked into {}",
                    f.display()
                );
            }
        }
        for o in outputs {
            for s in &secrets {
                assert!(
                    !stdout(o).contains(s.as_str()) && !stderr(o).contains(s.as_str()),
                    "a secret leaked into the output"
                );
            }
        }
    }
}

fn evidence<'a>(
    entries: &'a [keyfire::record::Entry],
    key: &str,
    action: &str,
) -> Vec<&'a keyfire::record::Entry> {
    entries
        .iter()
        .filter(|e| e.kind == "evidence" && e.data["key"] == key && e.data["action"] == action)
        .collect()
}

fn new_pair(value: &str) -> KeyPair {
    KeyPair::parse(&Secret::new(value)).unwrap()
}

#[test]
fn live_incident_replaces_an_iam_key_through_secrets_manager() {
    let Some(f) = Fleet::start(
        "aws::live_incident_replaces_an_iam_key_through_secrets_manager",
        false,
    ) else {
        return;
    };
    assert!(
        f.sts_with(&f.old).is_ok(),
        "the old key works before the incident"
    );
    let (_, old_version, _) = f.secret();
    // With the debug log on at its most detailed (the SDK's own events too): every AWS call
    // must be in it, and no secret (checked with the other files below).
    let out = f.run(&[
        "-vv",
        "incident",
        "start",
        "support-aws",
        "--yes",
        "--no-tui",
        "--reason",
        "key in a public repo",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let log = std::fs::read_to_string(crate::common::debug_log_path(&out)).unwrap();
    for api in [
        "iam:ListAccessKeys",
        "iam:CreateAccessKey",
        "iam:DeleteAccessKey",
        "sts:GetCallerIdentity",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "cloudtrail:LookupEvents",
    ] {
        assert!(
            log.lines().any(|l| l.contains("keyfire::aws")
                && l.contains(&format!("api={api} "))
                && l.contains(" status=")),
            "{api} is not in the debug log:\n{log}"
        );
    }

    // The old key is gone and AWS (moto, checking signatures) refuses it.
    assert_eq!(f.sts_with(&f.old), Err("InvalidClientTokenId".to_string()));
    // Exactly one key remains: the replacement, which is AWSCURRENT and works.
    let keys = f.agent_keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_ne!(keys[0].0, f.old.access_key_id);
    let (value, version, stages) = f.secret();
    let new = new_pair(&value);
    assert_eq!(new.access_key_id, keys[0].0);
    assert!(f.sts_with(&new).is_ok(), "the replacement authenticates");
    assert_ne!(version, old_version);
    // Staged: written AWSPENDING, promoted, pending label cleared; the old one is AWSPREVIOUS.
    assert!(
        stages
            .iter()
            .all(|(_, s)| !s.contains(&"AWSPENDING".to_string())),
        "{stages:?}"
    );
    assert!(
        stages
            .iter()
            .any(|(id, s)| *id == old_version && s.contains(&"AWSPREVIOUS".to_string()))
    );

    let id = &f.ids()[0];
    let entries = f.entries(id);
    let proof = evidence(&entries, "support-aws", "prove_revoked");
    assert_eq!(proof.len(), 1);
    assert_eq!(proof[0].data["old_key_rejected"], true);
    assert_eq!(proof[0].data["status"], 403);
    let write = evidence(&entries, "support-aws", "store_write");
    assert_eq!(write[0].data["pending"], true);
    assert_eq!(write[0].data["version"], version.as_str());
    let promote = evidence(&entries, "support-aws", "promote");
    assert_eq!(promote[0].data["version"], version.as_str());
    assert_eq!(promote[0].data["previous_version"], old_version.as_str());
    let created: Vec<_> = evidence(&entries, "support-aws", "create")
        .into_iter()
        .filter(|e| e.data.get("new_key_id").is_some())
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].data["new_key_id"], new.access_key_id.as_str());
    // CloudTrail: the call from outside the agent's network and the failure are in the audit.
    let usage = evidence(&entries, "support-aws", "fetch_usage");
    assert_eq!(usage[0].data["events_total"], 4);
    let rules = evidence(&entries, "support-aws", "evaluate_rules");
    let network = rules[0].data["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "network")
        .unwrap()
        .clone();
    assert_eq!(network["status"], "findings", "{network}");
    assert!(
        network["findings"][0]
            .as_str()
            .unwrap()
            .starts_with("198.51.100.23")
    );
    assert!(
        f.trail
            .observer()
            .requests()
            .iter()
            .all(|r| r.method == "POST")
    );
    // What CloudTrail covered is said beside its count: in the usage notes, the findings'
    // source and the report. The default region is the provider's.
    let coverage = "management events, region us-east-1, last 90 days; data events not searched";
    assert!(
        usage[0].data["notes"].to_string().contains(coverage),
        "{}",
        usage[0].data
    );
    assert!(
        network["source"].as_str().unwrap().contains(coverage),
        "{network}"
    );
    let lookups = f.trail.lookups();
    assert!(!lookups.is_empty());
    assert!(
        lookups.iter().all(|l| l.region == "us-east-1"),
        "{lookups:?}"
    );
    let report = std::fs::read_to_string(
        f.dir
            .path()
            .join("data")
            .join("incidents")
            .join(id)
            .join("report.md"),
    )
    .unwrap();
    assert!(
        report.contains(&format!("CloudTrail coverage: {coverage}")),
        "{report}"
    );
    let verify = f.run(&["record", "verify", id]);
    assert_eq!(verify.status.code(), Some(0));
    f.assert_no_leak(&[&out], &[new.secret_access_key.expose()]);
}

#[test]
fn zero_downtime_with_openbao_store_adds_exactly_one_version() {
    let Some(f) = Fleet::start(
        "aws::zero_downtime_with_openbao_store_adds_exactly_one_version",
        true,
    ) else {
        return;
    };
    let bao = f.bao.as_ref().unwrap();
    let out = f.run(&[
        "incident",
        "start",
        "support-aws-bao",
        "--zero-downtime",
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
    let listing = bao.listing(None, BAO_PATH);
    assert_eq!(listing["current_version"], f.old_bao_version + 1);
    let (_, v) = bao.api(
        "GET",
        &format!("/v1/secret/data/{BAO_PATH}"),
        None,
        serde_json::Value::Null,
    );
    let new = new_pair(v["data"]["data"]["value"].as_str().unwrap());
    assert!(f.sts_with(&new).is_ok());
    assert_eq!(f.sts_with(&f.old), Err("InvalidClientTokenId".to_string()));
    assert_eq!(f.agent_keys(), vec![(new.access_key_id.clone(), true)]);
    let entries = f.entries(&f.ids()[0]);
    // KV v2 has no stages: promote is recorded as a no-op, and the restore came before the revoke.
    let promote = evidence(&entries, "support-aws-bao", "promote");
    assert_eq!(promote[0].data["noop"], true);
    let pos = |kind: &str, action: &str| {
        entries
            .iter()
            .position(|e| e.kind == kind && e.data["action"] == action)
            .unwrap()
    };
    assert!(pos("evidence", "verify_new") < pos("request_sent", "revoke"));
    f.assert_no_leak(&[&out], &[new.secret_access_key.expose()]);
}

#[test]
fn zero_downtime_is_refused_when_the_user_already_has_two_keys() {
    let Some(f) = Fleet::start(
        "aws::zero_downtime_is_refused_when_the_user_already_has_two_keys",
        false,
    ) else {
        return;
    };
    let iam = f.iam();
    f.rt.block_on(async {
        iam.create_access_key()
            .user_name(AGENT_USER)
            .send()
            .await
            .unwrap();
    });
    let before = f.agent_keys();
    let out = f.run(&[
        "incident",
        "start",
        "support-aws",
        "--zero-downtime",
        "--yes",
        "--no-tui",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("already holds 2 access keys"), "{text}");
    assert!(text.contains("contain-first"), "{text}");
    // Nothing changed: the leaked key still exists (and is still the one agents read).
    assert_eq!(f.agent_keys(), before);
}

#[test]
fn drill_leaves_moto_and_openbao_exactly_as_they_were() {
    let Some(f) = Fleet::start(
        "aws::drill_leaves_moto_and_openbao_exactly_as_they_were",
        true,
    ) else {
        return;
    };
    let bao = f.bao.as_ref().unwrap();
    let moto_before = f.moto_listing();
    let bao_before = bao.listing(None, BAO_PATH);
    let out = f.run(&[
        "incident",
        "start",
        "support-aws",
        "support-aws-bao",
        "--dry-run",
        "--no-tui",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(f.moto_listing(), moto_before);
    assert_eq!(bao.listing(None, BAO_PATH), bao_before);
    assert!(
        f.sts_with(&f.old).is_ok(),
        "the drill did not touch the key"
    );

    let entries = f.entries(&f.ids()[0]);
    let plans: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == "plan" && e.data["plan"]["access"] == "write")
        .collect();
    // Per key: disable, revoke, create, store write; promote for the ASM key (Vault has no
    // stages); every one is followed at once by its not_sent entry.
    assert!(plans.len() >= 9, "{} write plans", plans.len());
    for p in &plans {
        let next = entries.iter().find(|e| e.seq == p.seq + 1).unwrap();
        assert_eq!(next.kind, "not_sent", "{}", p.data["rendered"]);
        assert_eq!(next.data["action"], p.data["action"]);
    }
    for e in &entries {
        if e.kind == "request_sent" {
            let seq = e.seq;
            let plan = entries
                .iter()
                .rev()
                .find(|p| p.seq < seq && p.kind == "plan")
                .unwrap();
            assert_eq!(
                plan.data["plan"]["access"], "read",
                "a write was sent in a drill: {}",
                plan.data["rendered"]
            );
        }
    }
    let rendered: Vec<String> = plans
        .iter()
        .map(|p| p.data["rendered"].as_str().unwrap().to_string())
        .collect();
    assert!(rendered.iter().any(|r| r.contains("iam:DeleteAccessKey")));
    assert!(
        rendered
            .iter()
            .any(|r| r.contains("secretsmanager:PutSecretValue")
                && r.contains("VersionStages=[AWSPENDING]"))
    );
    assert!(
        rendered
            .iter()
            .any(|r| r.contains("secretsmanager:UpdateSecretVersionStage"))
    );
    // The drill proved the admin credentials, the AppRole login and the proof call work.
    let proof = evidence(&entries, "support-aws", "prove_revoked");
    assert_eq!(proof[0].data["old_key_authenticates"], true);
    f.assert_no_leak(&[&out], &[]);
}

fn run_until_failpoint(f: &Fleet, args: &[&str], point: &str) {
    let mut child = f
        .cmd()
        .args(args)
        .env("KEYFIRE_FAILPOINT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("failpoint {point} not reached"));
        if line.contains("paused at failpoint") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

fn crash_then_resume(point: &str) {
    let test = format!("aws::kill_9_at_{point}_then_resume");
    let Some(f) = Fleet::start(&test, false) else {
        return;
    };
    let (_, old_version, _) = f.secret();
    run_until_failpoint(
        &f,
        &[
            "incident",
            "start",
            "support-aws",
            "--zero-downtime",
            "--yes",
            "--no-tui",
        ],
        point,
    );
    let id = f.ids()[0].clone();
    assert_eq!(f.run(&["record", "verify", &id]).status.code(), Some(0));
    // Killed before promote: the agents still read the leaked key, which still works.
    let (_, current, _) = f.secret();
    assert_eq!(current, old_version);
    assert!(f.sts_with(&f.old).is_ok());

    let out = f.run(&["incident", "resume", &id, "--yes", "--no-tui"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    // Exactly one key exists: the replacement, which is the one promoted; the old is revoked.
    let keys = f.agent_keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (value, version, stages) = f.secret();
    let new = new_pair(&value);
    assert_eq!(keys[0], (new.access_key_id.clone(), true));
    assert_ne!(version, old_version);
    assert!(
        stages
            .iter()
            .all(|(_, s)| !s.contains(&"AWSPENDING".to_string())),
        "{stages:?}"
    );
    assert!(f.sts_with(&new).is_ok());
    assert_eq!(f.sts_with(&f.old), Err("InvalidClientTokenId".to_string()));
    let entries = f.entries(&id);
    let closed = entries
        .iter()
        .rev()
        .find(|e| e.kind == "incident_closed")
        .unwrap();
    assert_eq!(closed.data["outcome"], "completed");
    assert_eq!(
        closed.data["keys"]["support-aws"]["new_key_id"],
        new.access_key_id.as_str()
    );
    assert_eq!(f.run(&["record", "verify", &id]).status.code(), Some(0));
    f.assert_no_leak(&[&out], &[new.secret_access_key.expose()]);
}

#[test]
fn kill_9_between_store_and_promote_then_resume() {
    crash_then_resume("promote");
}

#[test]
fn kill_9_between_create_and_store_then_resume() {
    // The replacement's value is lost with the process: resume deletes it and makes another.
    crash_then_resume("store_write");
}

/// kill -9 at `point` while `args` runs, then `resume`: exactly one key of the agent's user
/// is left (the replacement, stored and promoted once), the old key is dead, no orphan.
fn crash_then_resume_with(test: &str, args: &[&str], point: &str, resume: &[&str]) {
    let Some(f) = Fleet::start(test, false) else {
        return;
    };
    let (_, old_version, _) = f.secret();
    run_until_failpoint(&f, args, point);
    let id = f.ids()[0].clone();
    assert_eq!(f.run(&["record", "verify", &id]).status.code(), Some(0));
    let resume: Vec<&str> = resume
        .iter()
        .map(|a| if *a == "ID" { id.as_str() } else { a })
        .collect();
    let out = f.run(&resume);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let keys = f.agent_keys();
    assert_eq!(keys.len(), 1, "exactly one key, no orphan: {keys:?}");
    let (value, version, stages) = f.secret();
    let new = new_pair(&value);
    assert_eq!(keys[0], (new.access_key_id.clone(), true));
    assert_ne!(version, old_version);
    let versions_made = stages.len();
    assert!(versions_made <= 2, "one store write: {stages:?}");
    assert!(f.sts_with(&new).is_ok());
    assert_eq!(f.sts_with(&f.old), Err("InvalidClientTokenId".to_string()));
    assert_eq!(f.ids().len(), 1, "resumed, not reopened");
    assert_eq!(f.run(&["record", "verify", &id]).status.code(), Some(0));
    f.assert_no_leak(&[&out], &[new.secret_access_key.expose()]);
}

const ZERO_DOWNTIME: &[&str] = &[
    "incident",
    "start",
    "support-aws",
    "--zero-downtime",
    "--yes",
    "--no-tui",
];
const RESUME: &[&str] = &["incident", "resume", "ID", "--yes", "--no-tui"];

#[test]
fn kill_9_after_iam_made_the_replacement_then_resume() {
    // IAM made the key; its answer died with the process. Access keys have no names: the
    // resume finds it by the recorded create's time window and deletes it before making
    // another (else the user's two-key limit would refuse the next create).
    crash_then_resume_with(
        "aws::kill_9_after_iam_made_the_replacement_then_resume",
        ZERO_DOWNTIME,
        "aws:created",
        RESUME,
    );
}

#[test]
fn kill_9_after_iam_deleted_the_old_key_then_resume() {
    crash_then_resume_with(
        "aws::kill_9_after_iam_deleted_the_old_key_then_resume",
        ZERO_DOWNTIME,
        "aws:deleted",
        RESUME,
    );
}

#[test]
fn kill_9_during_report_and_reschedule_then_resume() {
    for point in ["write_report", "update_inventory:written"] {
        crash_then_resume_with(
            &format!("aws::kill_9_during_{point}_then_resume"),
            ZERO_DOWNTIME,
            point,
            RESUME,
        );
    }
}

#[test]
fn a_rotation_killed_after_iam_made_the_replacement_is_finished_by_rotate_resume() {
    // The replacement is named after a `rot-` id, which the orphan search understands.
    crash_then_resume_with(
        "aws::a_rotation_killed_after_iam_made_the_replacement_is_finished_by_rotate_resume",
        &["rotate", "support-aws", "--yes"],
        "aws:created",
        &["rotate", "--resume", "ID", "--yes"],
    );
}

impl Fleet {
    /// Point CloudTrail at moto itself, which has no `LookupEvents` (as for a response role
    /// without `cloudtrail:LookupEvents`).
    fn without_cloudtrail(&self) {
        let path = self.dir.path().join("inventory.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace(
            &format!(", cloudtrail_url = \"{}\"", self.trail.address()),
            "",
        );
        assert!(!text.contains("cloudtrail_url"));
        std::fs::write(&path, text).unwrap();
    }
}

#[test]
fn a_missing_audit_api_never_keeps_a_leaked_key_alive() {
    let Some(f) = Fleet::start(
        "aws::a_missing_audit_api_never_keeps_a_leaked_key_alive",
        false,
    ) else {
        return;
    };
    f.without_cloudtrail();
    let out = f.run(&[
        "-v",
        "incident",
        "start",
        "support-aws",
        "--yes",
        "--no-tui",
    ]);
    let text = stdout(&out);
    // The SDK's retries are in the debug log, one line per attempt sent.
    let log = std::fs::read_to_string(crate::common::debug_log_path(&out)).unwrap();
    let lookups: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("keyfire::aws") && l.contains("api=cloudtrail:LookupEvents "))
        .collect();
    for attempt in 1..=3 {
        assert!(
            lookups
                .iter()
                .any(|l| l.contains(" status=500 ") && l.contains(&format!("attempt={attempt}"))),
            "attempt {attempt}: {lookups:#?}"
        );
    }
    // The leaked key is gone although every CloudTrail read failed.
    assert!(
        !f.agent_keys()
            .iter()
            .any(|(id, _)| *id == f.old.access_key_id),
        "the leaked key was deleted: {text}"
    );
    assert_eq!(
        f.sts_with(&f.old).unwrap_err(),
        "InvalidClientTokenId",
        "STS no longer knows it"
    );
    let id = f.ids().pop().unwrap();
    let entries = f.entries(&id);
    let revoked = entries
        .iter()
        .position(|e| e.kind == "response" && e.data["action"] == "revoke" && e.data["ok"] == true)
        .expect("the revoke was answered");
    // Nothing about usage or CloudTrail was asked before the revoke.
    let usage_before = entries[..revoked]
        .iter()
        .filter(|e| e.kind == "request_sent")
        .filter(|e| {
            matches!(
                e.data["action"].as_str(),
                Some("snapshot_usage" | "fetch_usage")
            )
        })
        .count();
    assert_eq!(usage_before, 0, "evidence waited for the revoke");
    let unavailable: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == "evidence" && e.data.get("unavailable").is_some())
        .collect();
    assert!(
        !unavailable.is_empty(),
        "the failed reads are recorded: {text}"
    );
    assert!(
        text.contains("evidence unavailable"),
        "the summary says so: {text}"
    );
    assert!(
        !entries.iter().any(|e| e.kind == "step_failed"
            && matches!(
                e.data["action"].as_str(),
                Some("snapshot_usage" | "fetch_usage")
            )),
        "no evidence read failed a step"
    );
    let report = std::fs::read_to_string(
        f.dir
            .path()
            .join("data/incidents")
            .join(&id)
            .join("report.md"),
    )
    .unwrap();
    assert!(report.contains("### Evidence unavailable"), "{report}");
    f.assert_no_leak(&[&out], &[]);
}

#[test]
fn a_drill_without_cloudtrail_still_reaches_the_revoke_and_names_the_problem() {
    let Some(f) = Fleet::start(
        "aws::a_drill_without_cloudtrail_still_reaches_the_revoke_and_names_the_problem",
        false,
    ) else {
        return;
    };
    f.without_cloudtrail();
    let before = f.moto_listing();
    let out = f.run(&["drill", "support-aws"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("would send: "),
        "the writes were planned: {text}"
    );
    assert!(
        text.contains("PROBLEM: evidence unavailable"),
        "the drill names the missing audit source: {text}"
    );
    assert_eq!(f.moto_listing(), before, "the drill changed nothing");
}

impl Fleet {
    /// Send STS calls to a stand-in (moto cannot disable STS in a region, nor lag behind a
    /// deletion), with one second of IAM backoff.
    fn sts_stand_in(&self, mode: StsMode) -> StsStandIn {
        let sts = self.rt.block_on(async { StsStandIn::start(mode) }).unwrap();
        let path = self.dir.path().join("inventory.toml");
        let before = std::fs::read_to_string(&path).unwrap();
        let trail = format!("cloudtrail_url = \"{}\" }}", self.trail.address());
        let after = before.replace(
            &trail,
            &format!(
                "cloudtrail_url = \"{}\", sts_url = \"{}\", proof_wait_seconds = 1 }}",
                self.trail.address(),
                sts.address()
            ),
        );
        assert_ne!(before, after);
        std::fs::write(&path, after).unwrap();
        sts
    }
}

#[test]
fn a_key_still_accepted_after_the_iam_wait_is_not_proven_and_the_incident_goes_on() {
    let Some(f) = Fleet::start(
        "aws::a_key_still_accepted_after_the_iam_wait_is_not_proven_and_the_incident_goes_on",
        false,
    ) else {
        return;
    };
    // STS still authenticates the deleted key (IAM has not caught up) for the whole wait.
    let sts = f.sts_stand_in(StsMode::Lagging);
    let out = f.run(&["incident", "start", "support-aws", "--yes", "--no-tui"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("revocation NOT proven"), "{text}");
    assert!(
        f.agent_keys()
            .iter()
            .all(|(id, _)| *id != f.old.access_key_id),
        "the key was deleted at IAM"
    );
    let entries = f.entries(&f.ids()[0]);
    let proof = evidence(&entries, "support-aws", "prove_revoked");
    assert_eq!(proof[0].data["proof"], "inconclusive", "{}", proof[0].data);
    assert_eq!(proof[0].data["answer"]["verdict"], "accepted");
    // The redeploy went on: the replacement was stored and verified.
    assert_eq!(
        evidence(&entries, "support-aws", "verify_new")[0].data["new_key_works"],
        true
    );
    let asked = sts.observer().requests().len();
    assert!(
        asked >= 3,
        "two proof attempts and the replacement's check: {asked}"
    );
}

#[test]
fn sts_region_disabled_is_not_proof_that_the_key_is_dead() {
    let Some(f) = Fleet::start(
        "aws::sts_region_disabled_is_not_proof_that_the_key_is_dead",
        false,
    ) else {
        return;
    };
    // moto cannot switch STS off in a region: STS calls go to a stand-in that answers
    // RegionDisabledException (HTTP 403), as AWS does there. One second of IAM backoff.
    let sts = f.sts_stand_in(StsMode::RegionDisabled);

    let out = f.run(&["incident", "start", "support-aws", "--yes", "--no-tui"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("revocation NOT proven"), "{text}");
    // Containment happened: the leaked key is gone at IAM.
    assert!(
        f.agent_keys()
            .iter()
            .all(|(id, _)| *id != f.old.access_key_id),
        "{:?}",
        f.agent_keys()
    );
    let entries = f.entries(&f.ids()[0]);
    let proof = evidence(&entries, "support-aws", "prove_revoked");
    assert_eq!(proof.len(), 1);
    let data = &proof[0].data;
    assert_eq!(data["proof"], "inconclusive", "{data}");
    assert_eq!(data["status"], 403, "{data}");
    assert!(
        data["reason"]
            .as_str()
            .unwrap()
            .contains("RegionDisabledException"),
        "{data}"
    );
    assert!(data.get("old_key_rejected").is_none(), "{data}");
    // Asked twice: once, then again after the one second of backoff.
    let asked = sts
        .observer()
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert!(asked >= 2, "{asked}");
}

/// A rotation that fails after Secrets Manager made the replacement current (here: the old
/// key's disable fails before it is sent) moves AWSCURRENT back to the old version and deletes
/// the replacement at IAM: the agents read the old key again, which still works.
#[test]
fn a_rotation_failing_after_promotion_moves_awscurrent_back_and_deletes_the_replacement() {
    let Some(f) = Fleet::start(
        "aws::a_rotation_failing_after_promotion_moves_awscurrent_back_and_deletes_the_replacement",
        false,
    ) else {
        return;
    };
    let (old_value, old_version, _) = f.secret();
    let out = f
        .cmd()
        .env("KEYFIRE_FAILPOINT", "fail:disable")
        .args(["rotate", "support-aws", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let (value, version, stages) = f.secret();
    assert_eq!(
        version, old_version,
        "AWSCURRENT is the old version again: {stages:?}"
    );
    assert_eq!(value, old_value);
    assert_eq!(
        f.agent_keys(),
        vec![(f.old.access_key_id.clone(), true)],
        "only the old key is left, active"
    );
    assert!(f.sts_with(&f.old).is_ok(), "the old key still works");
    let id = f.ids().pop().unwrap();
    let entries = f.entries(&id);
    let restored = evidence(&entries, "support-aws", "store_write");
    assert!(
        restored.iter().any(|e| e.data["restored"] == true),
        "{:?}",
        restored.iter().map(|e| &e.data).collect::<Vec<_>>()
    );
    // Finished later with a fresh replacement, stored and promoted anew.
    let resumed = f.run(&["rotate", "--resume", &id, "--yes"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stdout(&resumed));
    let keys = f.agent_keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_ne!(keys[0].0, f.old.access_key_id, "the old key is gone");
    let (value, version, _) = f.secret();
    assert_ne!(version, old_version);
    assert!(value.contains(&keys[0].0), "AWSCURRENT holds the live key");
    f.assert_no_leak(&[&out, &resumed], &[]);
}
