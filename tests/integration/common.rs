//! Shared test environment: the fake provider and the Vault sim on loopback, an inventory
//! pointing at them, a private data directory, and the keyfire binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use keyfire::sim::{FakeApi, VaultSim};

pub const ADMIN_VAR: &str = "KF_TEST_ADMIN";
pub const VAULT_VAR: &str = "KF_TEST_VAULT_TOKEN";

/// Recognizable canary values: any of them in a file or output is a leak.
pub struct Canaries {
    pub admin: String,
    pub vault_token: String,
    pub old_key: String,
    pub other_key: String,
}

impl Canaries {
    pub fn new() -> Self {
        Self {
            admin: "fk-admin-CANARYadmin7Q2x9LmZ4bV8nR1tY6wK3".into(),
            vault_token: "hvs.CANARYvault5Hj8Kp2Lm9Qr4St7Uv1Wx".into(),
            old_key: "fk-CANARYoldkey3Fg6Hj9Kl2Mn5Pq8Rs1Tu4Vw7".into(),
            other_key: "fk-CANARYotherkey8Zx5Cv2Bn9Mq6Wp3Er7Ty1".into(),
        }
    }
}

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub api: FakeApi,
    pub vault: VaultSim,
    pub canaries: Canaries,
    pub old_key_id: String,
    pub other_key_id: String,
}

/// Every keyfire this test process runs, in-process or as a child, signs its records with a
/// key in a scratch directory of this process, never the tester's keyring or config.
pub fn hermetic_signing_key() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        // SAFETY: set once, before any keyfire code of this process reads it; std's env
        // functions are serialized, and nothing here calls C getenv concurrently.
        unsafe {
            std::env::set_var(
                "KEYFIRE_SIGNING_KEY_FILE",
                dir.join("config").join("record-signing.key"),
            )
        };
    });
}

/// Every record a test leaves behind is read by every front-end, which must agree on it.
impl Drop for TestEnv {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            crate::projection::assert_all_views_agree(&self.data_dir());
        }
    }
}

/// Removes a folder when dropped: the training environment writes one under the system's
/// temporary directory and, on purpose, leaves it for the person who ran `keyfire demo`.
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub const OLD_PATH: &str = "agents/support-bot/llm";
pub const OTHER_PATH: &str = "agents/research/llm";

impl TestEnv {
    /// Plant 20 days of provider usage on the leaked key whose last day is 50 times the
    /// others, so an audit's volume rule fires and spend is known.
    pub fn plant_usage_spike(&self) {
        let now = chrono::Utc::now();
        let day = |d: i64| now - chrono::Duration::days(d);
        let buckets = (0..20)
            .map(|d| keyfire::provider::UsageBucket {
                start: day(20 - d),
                end: day(19 - d),
                requests: if d >= 19 { 5000 } else { 100 },
                input_tokens: 0,
                output_tokens: 0,
                cost_usd: 1.0,
            })
            .collect();
        self.api.set_usage(&self.old_key_id, buckets);
    }

    /// Sims started and seeded; the inventory written with `extra` appended.
    pub fn new() -> Self {
        Self::with_inventory_extra("")
    }

    pub fn with_inventory_extra(extra: &str) -> Self {
        hermetic_signing_key();
        let canaries = Canaries::new();
        let api = FakeApi::start().expect("fake api");
        api.add_admin_token(&canaries.admin);
        let old_key_id = api.add_key("support-bot", &canaries.old_key);
        let other_key_id = api.add_key("research", &canaries.other_key);
        let vault = VaultSim::start("secret", &canaries.vault_token).expect("vault sim");
        vault.put(OLD_PATH, "value", &canaries.old_key);
        vault.put(OLD_PATH, "model", "gpt-test");
        vault.put(OTHER_PATH, "value", &canaries.other_key);
        let dir = tempfile::tempdir().expect("tempdir");
        let env = Self {
            dir,
            api,
            vault,
            canaries,
            old_key_id,
            other_key_id,
        };
        std::fs::write(env.inventory_path(), env.inventory_text() + extra)
            .expect("write inventory");
        env
    }

    pub fn inventory_path(&self) -> PathBuf {
        self.dir.path().join("inventory.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The record signing key of the CLI runs, outside the data directory.
    pub fn signing_key_path(&self) -> PathBuf {
        self.dir.path().join("config").join("record-signing.key")
    }

    pub fn inventory_text(&self) -> String {
        format!(
            r##"# Test fleet. This comment and the odd spacing below must survive step 5.
schema = 1

[policy]
rotation_days = 90
after_incident_rotation_days = 30

[[providers]]
id = "llm"
kind = "fake"
admin_credential = "env:{ADMIN_VAR}"
base_url = "{api}"

[[providers]]
id = "crm"
kind = "manual"

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

[[agents]]
id = "research"
owner = "research@example.com"
oncall = "#research"

[[keys]]
id     = "support-llm"      # aligned by hand
agents = ["support-bot"]
provider = "llm"
provider_key_id = "{old_id}"
scopes = ["model.request"]
store = "vault"
secret_path = "{OLD_PATH}"
created_at = 2026-01-10
last_rotated = 2026-02-01   # rotated after the January review

[[keys]]
id = "research-llm"
agents = ["research"]
provider = "llm"
hint = "fk-...{other_tail}"
scopes = ["model.request"]
store = "vault"
secret_path = "{OTHER_PATH}"
created_at = 2026-11-01

[[keys]]
id = "sales-crm"
agents = ["research"]
provider = "crm"
scopes = ["contacts.read"]
created_at = 2026-11-01
"##,
            api = self.api.base_url(),
            vault = self.vault.address(),
            old_id = self.old_key_id,
            other_tail = &self.canaries.other_key[self.canaries.other_key.len() - 4..],
        )
    }

    pub fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_keyfire"));
        c.env(ADMIN_VAR, &self.canaries.admin)
            .env(VAULT_VAR, &self.canaries.vault_token)
            .env("KEYFIRE_DATA_DIR", self.data_dir())
            .env("KEYFIRE_SIGNING_KEY_FILE", self.signing_key_path())
            .env("KEYFIRE_INVENTORY", self.inventory_path())
            // What keyfire leaves in the temporary directory (the training environment's
            // folder) goes with the test's own folder.
            .env("TMPDIR", self.dir.path())
            .env_remove("KEYFIRE_CONFIG")
            .env_remove("KEYFIRE_FAILPOINT")
            .stdin(std::process::Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run keyfire")
    }

    /// The only incident id in the data directory.
    pub fn incident_ids(&self) -> Vec<String> {
        let dir = self.data_dir().join("incidents");
        let mut ids: Vec<String> = std::fs::read_dir(dir)
            .map(|r| {
                r.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    pub fn record_path(&self, id: &str) -> PathBuf {
        self.data_dir()
            .join("incidents")
            .join(id)
            .join("record.jsonl")
    }

    pub fn entries(&self, id: &str) -> Vec<keyfire::record::Entry> {
        keyfire::record::read_entries(&self.record_path(id)).expect("record")
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The debug log keyfire said it wrote (its path is the last line of stderr with `-v`).
pub fn debug_log_path(out: &Output) -> PathBuf {
    let err = stderr(out);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("keyfire: debug log written to "))
        .unwrap_or_else(|| panic!("no debug log path on stderr: {err}"));
    PathBuf::from(line.trim())
}

/// Every file under a directory, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out
}

static NEXT_CREDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl TestEnv {
    /// An engine set-up for in-process tests: the same fleet, with credentials held in a
    /// process-local memory store instead of environment variables.
    pub fn setup(&self) -> keyfire::runbook::Setup {
        let n = NEXT_CREDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let store = format!("creds-{}-{n}", std::process::id());
        let creds = keyfire::store::MemoryStore::named(&store);
        creds.seed(
            "admin",
            "value",
            keyfire::secret::Secret::new(self.canaries.admin.clone()),
        );
        creds.seed(
            "vault",
            "value",
            keyfire::secret::Secret::new(self.canaries.vault_token.clone()),
        );
        let text = std::fs::read_to_string(self.inventory_path())
            .unwrap()
            .replace(&format!("env:{ADMIN_VAR}"), &format!("store:{store}:admin"))
            .replace(&format!("env:{VAULT_VAR}"), &format!("store:{store}:vault"))
            + &format!("\n[[stores]]\nid = \"{store}\"\nkind = \"memory\"\n");
        std::fs::write(self.inventory_path(), text).unwrap();
        keyfire::runbook::Setup {
            inventory: std::sync::Arc::new(
                keyfire::inventory::load(&[self.inventory_path()]).expect("inventory"),
            ),
            runbook: std::sync::Arc::new(keyfire::runbook::Runbook::builtin().unwrap()),
            data_dir: self.data_dir(),
            clock: std::sync::Arc::new(keyfire::clock::SystemClock),
            records: None,
        }
    }
}

pub fn params(
    keys: &[&str],
    dry_run: bool,
    order: keyfire::runbook::Order,
) -> keyfire::runbook::IncidentParams {
    keyfire::runbook::IncidentParams {
        keys: keys.iter().map(|k| k.to_string()).collect(),
        dry_run,
        order,
        exposed_since: None,
        reason: Some("test".into()),
        ..Default::default()
    }
}
