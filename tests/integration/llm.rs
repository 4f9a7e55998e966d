//! A test fleet on a real provider kind (openai or anthropic) against its loopback server,
//! with the Vault sim as the store: canary secrets, a leaked key among many, daily usage
//! across more than one page, and the keyfire binary.

#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Output, Stdio};

use chrono::{Duration, NaiveTime, Utc};
use keyfire::provider::UsageBucket;
use keyfire::sim::{AnthropicSim, LiteLlmSim, LoggedRequest, OpenAiSim, SendGridSim, VaultSim};

pub const ADMIN_VAR: &str = "KF_TEST_LLM_ADMIN";
pub const VAULT_VAR: &str = "KF_TEST_LLM_VAULT";
pub const KEY: &str = "support-llm";
pub const PATH: &str = "agents/support-bot/llm";
/// Days since the key's last rotation: with the 14-day baseline, usage spans two pages.
pub const AGE_DAYS: i64 = 40;
pub const PROJECT: &str = "proj_keyfire";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    OpenAi,
    Anthropic,
    SendGrid,
    LiteLlm,
}

/// Recognizable canary values in each provider's key format.
pub struct Canaries {
    pub admin: String,
    pub vault_token: String,
    pub old_key: String,
    /// Anthropic: the replacement the operator made in the Console and pastes.
    pub replacement: String,
}

impl Canaries {
    pub fn new(kind: Kind) -> Self {
        match kind {
            Kind::OpenAi => Self {
                admin: "sk-admin-CANARYoaAdmin7Q2x9LmZ4bV8nR1tY6wK3xx".into(),
                vault_token: "hvs.CANARYoaVault5Hj8Kp2Lm9Qr4St7Uv1Wx".into(),
                old_key: "sk-proj-CANARYoaOldKey3Fg6Hj9Kl2Mn5Pq8Rs1Tu4Vw7T3BlbkFJ".into(),
                replacement: String::new(),
            },
            Kind::Anthropic => Self {
                admin: "sk-ant-admin01-CANARYanAdmin7Q2x9LmZ4bV8nR1tY6wK3-AA".into(),
                vault_token: "hvs.CANARYanVault5Hj8Kp2Lm9Qr4St7Uv1Wx".into(),
                old_key: "sk-ant-api03-CANARYanOldKey3Fg6Hj9Kl2Mn5Pq8Rs1Tu4Vw7-igAA".into(),
                replacement: "sk-ant-api03-CANARYanNewKey8Zx5Cv2Bn9Mq6Wp3Er7Ty1Ui4-QxAA".into(),
            },
            Kind::SendGrid => Self {
                admin: "SG.CANARYsgAdmin7Q2x9LmZ4b.CANARYsgAdminSecret8nR1tY6wK3xxFg6Hj9Kl2Mn5Pq"
                    .into(),
                vault_token: "hvs.CANARYsgVault5Hj8Kp2Lm9Qr4St7Uv1Wx".into(),
                old_key: "SG.CANARYsgOldKey3Fg6Hj9K.CANARYsgOldSecret2Mn5Pq8Rs1Tu4Vw7Zx5Cv2Bn9Mq"
                    .into(),
                replacement: String::new(),
            },
            Kind::LiteLlm => Self {
                admin: "sk-CANARYllMaster7Q2x9LmZ4bV8nR1tY6wK3".into(),
                vault_token: "hvs.CANARYllVault5Hj8Kp2Lm9Qr4St7Uv1Wx".into(),
                old_key: "sk-CANARYllOldKey3Fg6Hj9Kl2Mn5Pq8Rs1".into(),
                replacement: String::new(),
            },
        }
    }

    pub fn all(&self) -> Vec<String> {
        [
            &self.admin,
            &self.vault_token,
            &self.old_key,
            &self.replacement,
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect()
    }
}

pub enum Sim {
    OpenAi(OpenAiSim),
    Anthropic(AnthropicSim),
    SendGrid(SendGridSim),
    LiteLlm(LiteLlmSim),
}

pub struct LlmEnv {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    pub sim: Sim,
    pub vault: VaultSim,
    pub canaries: Canaries,
    pub old_key_id: String,
    /// Anthropic: the id of the Console-made replacement.
    pub replacement_id: Option<String>,
}

/// Daily usage from `AGE_DAYS + 20` days ago to today, with an abuse spike in the last two.
pub fn planted_usage() -> Vec<UsageBucket> {
    let today = Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc();
    let days = AGE_DAYS + 20;
    (0..=days)
        .map(|i| {
            let start = today - Duration::days(days - i);
            let requests = if i >= days - 1 { 9_000 } else { 200 };
            UsageBucket {
                start,
                end: start + Duration::days(1),
                requests,
                input_tokens: requests * 900,
                output_tokens: requests * 300,
                cost_usd: requests as f64 * 0.01,
            }
        })
        .collect()
}

impl LlmEnv {
    /// The leaked key is found by its hint among more keys than fit one list page.
    pub fn openai() -> Self {
        let canaries = Canaries::new(Kind::OpenAi);
        let sim = OpenAiSim::start().expect("openai sim");
        sim.add_admin_key(&canaries.admin);
        for i in 0..130 {
            sim.add_user_key(
                PROJECT,
                &format!("filler-{i}"),
                &format!("sk-proj-filler{i:04}abcdefghijklmnopqrstuvwxyz{i:04}"),
            );
        }
        let old_key_id = sim.add_user_key(PROJECT, "support-bot", &canaries.old_key);
        sim.set_usage(&old_key_id, planted_usage());
        Self::finish(Kind::OpenAi, Sim::OpenAi(sim), canaries, old_key_id, None)
    }

    /// A leaked key owned by a service account (revoked by deleting the account).
    pub fn openai_service_account() -> Self {
        let canaries = Canaries::new(Kind::OpenAi);
        let sim = OpenAiSim::start().expect("openai sim");
        sim.add_admin_key(&canaries.admin);
        let (_, old_key_id) = sim.add_service_account(PROJECT, "support-bot-sa", &canaries.old_key);
        sim.set_usage(&old_key_id, planted_usage());
        Self::finish(Kind::OpenAi, Sim::OpenAi(sim), canaries, old_key_id, None)
    }

    pub fn anthropic() -> Self {
        let canaries = Canaries::new(Kind::Anthropic);
        let sim = AnthropicSim::start().expect("anthropic sim");
        sim.add_admin_key(&canaries.admin);
        for i in 0..5 {
            sim.add_key(
                &format!("other-{i}"),
                &format!("sk-ant-api03-other{i:04}abcdefghijklmnopqrstuvwxyz-{i:02}AA"),
            );
        }
        let old_key_id = sim.add_key("support-bot", &canaries.old_key);
        sim.set_usage(&old_key_id, planted_usage());
        // The operator creates the replacement in the Console during the incident; it exists
        // at the provider before keyfire asks for it.
        let replacement_id = sim.add_key("support-bot (replacement)", &canaries.replacement);
        Self::finish(
            Kind::Anthropic,
            Sim::Anthropic(sim),
            canaries,
            old_key_id,
            Some(replacement_id),
        )
    }

    /// A SendGrid key with send-only scopes among a few others, located by its id.
    pub fn sendgrid() -> Self {
        let canaries = Canaries::new(Kind::SendGrid);
        let sim = SendGridSim::start().expect("sendgrid sim");
        sim.add_admin_key(&canaries.admin);
        for i in 0..5 {
            sim.add_key(
                &format!("other-{i}"),
                &format!(
                    "SG.other{i:04}abcdefghijklm.other{i:04}abcdefghijklmnopqrstuvwxyz0123456"
                ),
                &["mail.send"],
            );
        }
        let old_key_id = sim.add_key(
            "support-bot",
            &canaries.old_key,
            &["mail.send", "stats.read"],
        );
        Self::finish(
            Kind::SendGrid,
            Sim::SendGrid(sim),
            canaries,
            old_key_id,
            None,
        )
    }

    /// A LiteLLM virtual key (by its hashed token) among others, with spend logs.
    pub fn litellm() -> Self {
        let canaries = Canaries::new(Kind::LiteLlm);
        let sim = LiteLlmSim::start().expect("litellm sim");
        sim.add_master_key(&canaries.admin);
        for i in 0..5 {
            sim.add_key(
                Some(&format!("other-{i}")),
                &format!("sk-other{i:04}abcdefghijklmnop{i:04}"),
                &["gpt-4o-mini"],
            );
        }
        let old_key_id = sim.add_key(Some("support-bot"), &canaries.old_key, &["gpt-4o"]);
        sim.set_usage(&old_key_id, &planted_usage());
        Self::finish(Kind::LiteLlm, Sim::LiteLlm(sim), canaries, old_key_id, None)
    }

    pub fn sendgrid_sim(&self) -> &SendGridSim {
        match &self.sim {
            Sim::SendGrid(s) => s,
            _ => panic!("not a sendgrid env"),
        }
    }

    pub fn litellm_sim(&self) -> &LiteLlmSim {
        match &self.sim {
            Sim::LiteLlm(s) => s,
            _ => panic!("not a litellm env"),
        }
    }

    fn finish(
        kind: Kind,
        sim: Sim,
        canaries: Canaries,
        old_key_id: String,
        replacement_id: Option<String>,
    ) -> Self {
        crate::common::hermetic_signing_key();
        let vault = VaultSim::start("secret", &canaries.vault_token).expect("vault sim");
        vault.put(PATH, "value", &canaries.old_key);
        let env = Self {
            kind,
            dir: tempfile::tempdir().expect("tempdir"),
            sim,
            vault,
            canaries,
            old_key_id,
            replacement_id,
        };
        std::fs::write(env.inventory_path(), env.inventory_text()).expect("inventory");
        env
    }

    pub fn openai_sim(&self) -> &OpenAiSim {
        match &self.sim {
            Sim::OpenAi(s) => s,
            _ => panic!("not an openai env"),
        }
    }

    pub fn anthropic_sim(&self) -> &AnthropicSim {
        match &self.sim {
            Sim::Anthropic(s) => s,
            _ => panic!("not an anthropic env"),
        }
    }

    pub fn base_url(&self) -> String {
        match &self.sim {
            Sim::OpenAi(s) => s.base_url(),
            Sim::Anthropic(s) => s.base_url(),
            Sim::SendGrid(s) => s.base_url(),
            Sim::LiteLlm(s) => s.base_url(),
        }
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        match &self.sim {
            Sim::OpenAi(s) => s.requests(),
            Sim::Anthropic(s) => s.requests(),
            Sim::SendGrid(s) => s.requests(),
            Sim::LiteLlm(s) => s.requests(),
        }
    }

    pub fn inject(&self, fault: keyfire::sim::Fault) {
        match &self.sim {
            Sim::OpenAi(s) => s.inject(fault),
            Sim::Anthropic(s) => s.inject(fault),
            Sim::SendGrid(s) => s.inject(fault),
            Sim::LiteLlm(s) => s.inject(fault),
        }
    }

    /// Whether the provider would accept this key value now.
    pub fn accepts(&self, value: &str) -> bool {
        match &self.sim {
            Sim::OpenAi(s) => s.accepts(value),
            Sim::Anthropic(s) => s.accepts(value),
            Sim::SendGrid(s) => s.accepts(value),
            Sim::LiteLlm(s) => s.accepts(value),
        }
    }

    /// The provider's usage endpoint (first of the paginated usage reads).
    pub fn usage_path(&self) -> &'static str {
        match self.kind {
            Kind::OpenAi => "/v1/organization/usage/completions",
            Kind::Anthropic => "/v1/organizations/usage_report/messages",
            Kind::LiteLlm => "/spend/logs",
            // No usage API: the key read stands in.
            Kind::SendGrid => "/v3/api_keys/",
        }
    }

    pub fn inventory_path(&self) -> PathBuf {
        self.dir.path().join("inventory.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn inventory_text(&self) -> String {
        let rotated = (Utc::now() - Duration::days(AGE_DAYS)).date_naive();
        let (provider, locate) = match self.kind {
            Kind::OpenAi => (
                format!(
                    "id = \"openai-prod\"\nkind = \"openai\"\nadmin_credential = \"env:{ADMIN_VAR}\"\nbase_url = \"{}/v1\"\nsettings = {{ project_id = \"{PROJECT}\", organization = \"{}\" }}",
                    self.base_url(),
                    keyfire::sim::openai::ORGANIZATION
                ),
                if self.openai_sim().key(&self.old_key_id).is_some_and(|k| {
                    matches!(k.owner, keyfire::sim::openai::KeyOwner::ServiceAccount(_))
                }) {
                    format!("provider_key_id = \"{}\"", self.old_key_id)
                } else {
                    let tail = &self.canaries.old_key[self.canaries.old_key.len() - 4..];
                    format!("hint = \"sk-proj-...{tail}\"")
                },
            ),
            Kind::Anthropic => (
                format!(
                    "id = \"claude\"\nkind = \"anthropic\"\nadmin_credential = \"env:{ADMIN_VAR}\"\nbase_url = \"{}\"\nsettings = {{ workspace_id = \"{}\" }}",
                    self.base_url(),
                    keyfire::sim::anthropic::WORKSPACE
                ),
                format!("provider_key_id = \"{}\"", self.old_key_id),
            ),
            Kind::SendGrid => (
                format!(
                    "id = \"mail\"\nkind = \"sendgrid\"\nadmin_credential = \"env:{ADMIN_VAR}\"\nbase_url = \"{}\"",
                    self.base_url()
                ),
                format!("provider_key_id = \"{}\"", self.old_key_id),
            ),
            Kind::LiteLlm => (
                format!(
                    "id = \"gateway\"\nkind = \"litellm\"\nadmin_credential = \"env:{ADMIN_VAR}\"\nbase_url = \"{}\"",
                    self.base_url()
                ),
                format!("provider_key_id = \"{}\"", self.old_key_id),
            ),
        };
        let provider_id = match self.kind {
            Kind::OpenAi => "openai-prod",
            Kind::Anthropic => "claude",
            Kind::SendGrid => "mail",
            Kind::LiteLlm => "gateway",
        };
        format!(
            r##"schema = 1

[policy]
rotation_days = 90
after_incident_rotation_days = 30

[[providers]]
{provider}

[[stores]]
id = "vault"
kind = "vault-kv2"
address = "{vault}"
credential = "env:{VAULT_VAR}"
settings = {{ mount = "secret" }}

[[agents]]
id = "support-bot"
owner = "support@example.com"
oncall = "#support-oncall"

[[keys]]
id = "{KEY}"
agents = ["support-bot"]
provider = "{provider_id}"
{locate}
scopes = {scopes}
store = "vault"
secret_path = "{PATH}"
created_at = {rotated}
last_rotated = {rotated}
"##,
            vault = self.vault.address(),
            scopes = match self.kind {
                Kind::SendGrid => r#"["mail.send", "stats.read"]"#,
                Kind::LiteLlm => r#"["gpt-4o"]"#,
                _ => r#"["model.request"]"#,
            },
        )
    }

    pub fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_keyfire"));
        c.env(ADMIN_VAR, &self.canaries.admin)
            .env(VAULT_VAR, &self.canaries.vault_token)
            .env("KEYFIRE_DATA_DIR", self.data_dir())
            .env("KEYFIRE_INVENTORY", self.inventory_path())
            .env_remove("KEYFIRE_CONFIG")
            .env_remove("KEYFIRE_FAILPOINT")
            .stdin(Stdio::null());
        c
    }

    /// Run keyfire; `stdin` is piped (the headless paste reads one line) when given.
    pub fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.cmd();
        c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        if stdin.is_some() {
            c.stdin(Stdio::piped());
        }
        let mut child = c.spawn().expect("spawn keyfire");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("keyfire output")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None)
    }

    /// A live incident on the leaked key, headless; Anthropic's replacement is pasted.
    pub fn live_incident(&self) -> Output {
        let paste =
            (self.kind == Kind::Anthropic).then(|| format!("{}\n", self.canaries.replacement));
        self.run_with(
            &["incident", "start", KEY, "--yes", "--no-tui"],
            paste.as_deref(),
        )
    }

    pub fn drill(&self) -> Output {
        self.run(&["incident", "start", KEY, "--dry-run", "--no-tui"])
    }

    pub fn incident_ids(&self) -> Vec<String> {
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

    pub fn entries(&self, id: &str) -> Vec<keyfire::record::Entry> {
        let path = self
            .data_dir()
            .join("incidents")
            .join(id)
            .join("record.jsonl");
        keyfire::record::read_entries(&path).expect("record")
    }

    /// The evidence entries of one action.
    pub fn evidence(&self, id: &str, action: &str) -> Vec<serde_json::Value> {
        self.entries(id)
            .into_iter()
            .filter(|e| e.kind == "evidence" && e.data["action"] == action)
            .map(|e| e.data)
            .collect()
    }
}
