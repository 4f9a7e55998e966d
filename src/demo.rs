//! The training environment behind `keyfire demo`: loopback OpenAI, Anthropic, SendGrid,
//! LiteLLM and gateway services that follow the providers' APIs, an in-memory store, a
//! throw-away directory, and a fleet with problems planted for practice (see
//! `assets/demo/inventory.toml`). The LiteLLM proxy also holds a virtual key the inventory
//! does not list (`SHADOW_KEY_ALIAS`): a shadow key for `inventory discover` to find.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{Duration, NaiveTime, Utc};

use crate::clock::SystemClock;
use crate::provider::UsageBucket;
use crate::runbook::{Runbook, RunbookError, Setup};
use crate::secret::Secret;
use crate::sim::anthropic::AnthropicSim;
use crate::sim::infisical::InfisicalSim;
use crate::sim::openai::OpenAiSim;
use crate::sim::{FakeApi, LiteLlmSim, Receiver, Reply, SendGridSim, token};
use crate::store::MemoryStore;

pub const INVENTORY: &str = include_str!("../assets/demo/inventory.toml");
pub const BANNER: &str =
    "TRAINING ENVIRONMENT: loopback services, throw-away data; no real key is touched";
/// The key whose leak the scripted scenario plays, with a usage spike planted on it.
pub const SCENARIO_KEY: &str = "support-openai";
const PROJECT: &str = "proj_training";
const STORE: &str = "training-vault";
/// The alias of the virtual key planted at the LiteLLM proxy and left out of the inventory.
pub const SHADOW_KEY_ALIAS: &str = "notebook-experiment";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the training environment: {0}")]
    Io(#[from] std::io::Error),
    #[error("the training inventory is invalid: {0}")]
    Inventory(#[from] crate::inventory::InventoryError),
    #[error(transparent)]
    Runbook(#[from] RunbookError),
}

/// A running training environment. Dropping it stops the services.
pub struct Training {
    pub openai: OpenAiSim,
    pub anthropic: AnthropicSim,
    pub gateway: FakeApi,
    pub sendgrid: SendGridSim,
    pub litellm: LiteLlmSim,
    pub dir: PathBuf,
    pub inventory_path: PathBuf,
    pub setup: Setup,
    /// Values of the seeded keys by inventory id (to check, after a run, what still works).
    pub values: HashMap<String, Secret>,
    /// The secrets manager the training agents read their keys from (the test suite reads
    /// it to check what the agents would get).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub vault: MemoryStore,
    /// Planted: a repository whose history holds a committed `.env` with the scenario key
    /// (removed by a later commit, as people do), for `keyfire scan --git`. `None` when `git`
    /// is not installed.
    pub repo: Option<PathBuf>,
    /// A loopback Infisical (self-hosted style) holding one agent's key: the research
    /// agent's gateway key, at `/agents/research/GATEWAY_KEY`. Held so the server lives as
    /// long as the environment; the test suite also inspects it.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub infisical: InfisicalSim,
    /// The on-call channel's stand-in (a Slack incoming webhook on loopback).
    pub oncall: Receiver,
}

/// The Infisical project and environment of the training environment.
const INFISICAL_PROJECT: &str = "training-project";

/// Twenty-one days of usage: a quiet baseline, then the last two days at forty times that.
pub fn planted_usage() -> Vec<UsageBucket> {
    let today = Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc();
    (0..21)
        .map(|i| {
            let start = today - Duration::days(20 - i);
            let abuse = i >= 19;
            let requests = if abuse {
                9_000 + 700 * i as u64
            } else {
                180 + (i as u64 * 37) % 60
            };
            UsageBucket {
                start,
                end: start + Duration::days(1),
                requests,
                input_tokens: requests * 900,
                output_tokens: requests * 300,
                cost_usd: requests as f64 * 0.012,
            }
        })
        .collect()
}

fn quiet_usage() -> Vec<UsageBucket> {
    let today = Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc();
    (0..21)
        .map(|i| {
            let start = today - Duration::days(20 - i);
            let requests = 120 + (i as u64 * 13) % 40;
            UsageBucket {
                start,
                end: start + Duration::days(1),
                requests,
                input_tokens: requests * 700,
                output_tokens: requests * 200,
                cost_usd: requests as f64 * 0.008,
            }
        })
        .collect()
}

impl Training {
    /// Start the services, seed them and the store, and write the inventory.
    pub fn start() -> Result<Self, DemoError> {
        let openai = OpenAiSim::start()?;
        let anthropic = AnthropicSim::start()?;
        let gateway = FakeApi::start()?;
        let sendgrid = SendGridSim::start()?;
        let litellm = LiteLlmSim::start()?;
        let oncall = Receiver::start(Reply::Slack)?;
        openai.add_project(PROJECT);
        let dir =
            std::env::temp_dir().join(format!("keyfire-demo-{}-{}", std::process::id(), token(6)));
        std::fs::create_dir_all(&dir)?;
        let instance = format!("{STORE}-{}", token(8));
        let vault = MemoryStore::named(&instance);

        let openai_admin = format!("sk-admin-{}", token(40));
        openai.add_admin_key(&openai_admin);
        vault.seed("admin/openai", "value", Secret::new(openai_admin));
        // Planted: the stored Anthropic admin key is not one the provider knows.
        anthropic.add_admin_key(&format!("sk-ant-admin01-{}", token(40)));
        vault.seed(
            "admin/anthropic",
            "value",
            Secret::new(format!("sk-ant-admin01-{}", token(40))),
        );
        let infisical_client = format!("training-identity-{}", token(8));
        let infisical_secret = token(40);
        let infisical = InfisicalSim::start(
            &infisical_client,
            &infisical_secret,
            INFISICAL_PROJECT,
            "prod",
        )?;
        vault.seed("admin/infisical", "value", Secret::new(infisical_secret));
        vault.seed(
            "notify/slack-oncall",
            "value",
            Secret::new(oncall.url(&format!("/services/TTRAINING/BTRAINING/{}", token(24)))),
        );
        let gateway_admin = format!("fk-admin-{}", token(32));
        gateway.add_admin_token(&gateway_admin);
        vault.seed("admin/gateway", "value", Secret::new(gateway_admin));
        let (_, email_admin) = crate::sim::sendgrid::new_value();
        sendgrid.add_admin_key(&email_admin);
        vault.seed("admin/email", "value", Secret::new(email_admin));
        let litellm_master = format!("sk-{}", token(32));
        litellm.add_master_key(&litellm_master);
        vault.seed("admin/litellm", "value", Secret::new(litellm_master));
        // Planted: a virtual key someone made for an experiment and never inventoried.
        let shadow = litellm.add_key(
            Some(SHADOW_KEY_ALIAS),
            &format!("sk-{}", token(22)),
            &["gpt-4o", "claude-sonnet-4-5"],
        );
        litellm.set_usage(&shadow, &quiet_usage());

        let mut ids = HashMap::new();
        let mut values = HashMap::new();
        let seeded: &[(&str, &str, &str)] = &[
            ("support-openai", "openai", "agents/support-bot/openai"),
            ("research-openai", "openai", "agents/research/openai"),
            ("sales-openai", "openai", "agents/sales/openai"),
            ("ops-openai", "openai", "agents/ops/openai"),
            ("email-openai", "openai", "agents/email/openai"),
            (
                "support-anthropic",
                "anthropic",
                "agents/support-bot/anthropic",
            ),
            (
                "research-anthropic",
                "anthropic",
                "agents/research/anthropic",
            ),
            ("ops-anthropic", "anthropic", "agents/ops/anthropic"),
            ("support-gateway", "gateway", "agents/support-bot/gateway"),
            // An Infisical path (folder and name): this key lives in the Infisical store.
            (
                "research-gateway",
                "gateway",
                "/agents/research/GATEWAY_KEY",
            ),
            ("billing-gateway", "gateway", "agents/billing/gateway"),
            ("ops-gateway", "gateway", "agents/ops/gateway"),
            ("email-gateway", "gateway", "agents/email/gateway"),
            ("legacy-gateway", "gateway", "agents/legacy/gateway"),
            ("email-sendgrid", "sendgrid", "agents/email/sendgrid"),
            ("sales-email", "sendgrid", "agents/sales/sendgrid"),
            ("support-litellm", "litellm", "agents/support-bot/litellm"),
        ];
        for (key, provider, path) in seeded {
            let (value, id) = match *provider {
                "openai" => {
                    let v = format!("sk-proj-{}", token(48));
                    let id = openai.add_user_key(PROJECT, key, &v);
                    openai.set_usage(
                        &id,
                        if *key == SCENARIO_KEY {
                            planted_usage()
                        } else {
                            quiet_usage()
                        },
                    );
                    (v, id)
                }
                "anthropic" => {
                    let v = format!("sk-ant-api03-{}", token(48));
                    let id = anthropic.add_key(key, &v);
                    anthropic.set_usage(&id, quiet_usage());
                    (v, id)
                }
                "sendgrid" => {
                    let (_, v) = crate::sim::sendgrid::new_value();
                    // What the keys really allow: the email agent's key can also manage
                    // contacts (lint's scope-beyond-needs, from SendGrid's own answer).
                    let scopes: &[&str] = if *key == "email-sendgrid" {
                        &[
                            "mail.send",
                            "marketing.contacts.read",
                            "marketing.contacts.update",
                        ]
                    } else {
                        &["mail.send"]
                    };
                    let id = sendgrid.add_key(key, &v, scopes);
                    (v, id)
                }
                "litellm" => {
                    let v = format!("sk-{}", token(22));
                    let id = litellm.add_key(Some(key), &v, &["gpt-4o"]);
                    litellm.set_usage(&id, &quiet_usage());
                    (v, id)
                }
                _ => {
                    let v = format!("fk-{}", token(40));
                    let id = gateway.add_key(key, &v);
                    gateway.set_usage(&id, quiet_usage());
                    (v, id)
                }
            };
            if path.starts_with('/') {
                infisical.put(path, &value);
            } else {
                vault.seed(path, "value", Secret::new(value.clone()));
            }
            ids.insert(key.to_string(), id);
            values.insert(key.to_string(), Secret::new(value));
        }
        for (key, path) in [
            ("support-crm", "agents/support-bot/crm"),
            ("billing-db", "agents/billing/db"),
            ("billing-openai", "agents/billing/openai"),
        ] {
            let v = Secret::new(format!("train-{}", token(32)));
            vault.seed(path, "value", v.clone());
            values.insert(key.to_string(), v);
        }

        let mut text = INVENTORY
            .replace("@INSTANCE@", &instance)
            .replace("@OPENAI@", &openai.base_url())
            .replace("@ANTHROPIC@", &anthropic.base_url())
            .replace("@GATEWAY@", &gateway.base_url())
            .replace("@SENDGRID@", &sendgrid.base_url())
            .replace("@LITELLM@", &litellm.base_url())
            .replace("@INFISICAL@", &infisical.address())
            .replace("@INFISICAL_CLIENT@", &infisical_client);
        for (key, id) in &ids {
            text = text.replace(&format!("@KEY:{key}@"), id);
        }
        let today = Utc::now().date_naive();
        while let Some(at) = text.find("@DAYS_AGO:") {
            let end = text[at + 10..]
                .find('@')
                .map_or(text.len(), |e| at + 10 + e);
            let days: u64 = text[at + 10..end].parse().unwrap_or(0);
            let date = (today - chrono::Days::new(days)).to_string();
            text.replace_range(at..(end + 1).min(text.len()), &date);
        }
        let inventory_path = dir.join("inventory.toml");
        std::fs::write(&inventory_path, text)?;
        let repo = values
            .get(SCENARIO_KEY)
            .and_then(|v| plant_leak(&dir.join("fleet-repo"), v));
        let inventory = crate::inventory::load(std::slice::from_ref(&inventory_path))?;
        let setup = Setup {
            inventory: Arc::new(inventory),
            runbook: Arc::new(Runbook::builtin()?),
            data_dir: dir.join("data"),
            clock: Arc::new(SystemClock),
            records: None,
        };
        Ok(Self {
            openai,
            anthropic,
            gateway,
            sendgrid,
            litellm,
            dir,
            inventory_path,
            setup,
            values,
            vault,
            repo,
            infisical,
            oncall,
        })
    }

    /// Whether a seeded key's original value still authenticates at its provider.
    pub fn still_works(&self, key: &str) -> bool {
        let Some(v) = self.values.get(key) else {
            return false;
        };
        self.openai.accepts(v.expose())
            || self.anthropic.accepts(v.expose())
            || self.gateway.accepts(v.expose())
            || self.sendgrid.accepts(v.expose())
            || self.litellm.accepts(v.expose())
    }
}

/// A training repository: the support bot's `.env` committed three days ago with the scenario
/// key in it, then removed (the key stays in history), and the agent's code beside it.
/// Written in the throw-away training directory; `None` when git is missing or fails.
fn plant_leak(repo: &std::path::Path, value: &Secret) -> Option<PathBuf> {
    use std::process::{Command, Stdio};
    let when = (Utc::now() - Duration::days(3)).to_rfc3339();
    let later = (Utc::now() - Duration::days(2)).to_rfc3339();
    let git = |date: &str, args: &[&str]| -> Option<()> {
        let ok = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args([
                "-c",
                "user.name=Training Dev",
                "-c",
                "user.email=dev@training.invalid",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "core.hooksPath=/dev/null",
            ])
            .args(args)
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        ok.then_some(())
    };
    std::fs::create_dir_all(repo).ok()?;
    git(&when, &["init", "-q"])?;
    std::fs::write(
        repo.join(".env"),
        format!("OPENAI_API_KEY={}\nMODEL=gpt-4o-mini\n", value.expose()),
    )
    .ok()?;
    std::fs::write(
        repo.join("bot.py"),
        "import os\n\nclient_key = os.environ[\"OPENAI_API_KEY\"]\n",
    )
    .ok()?;
    git(&when, &["add", "-A"])?;
    git(&when, &["commit", "-q", "-m", "support bot: first version"])?;
    git(&later, &["rm", "-q", "--cached", ".env"])?;
    std::fs::remove_file(repo.join(".env")).ok()?;
    std::fs::write(repo.join(".gitignore"), ".env\n").ok()?;
    git(&later, &["add", "-A"])?;
    git(&later, &["commit", "-q", "-m", "stop tracking .env"])?;
    Some(repo.to_path_buf())
}
