//! The provider contract: every HTTP provider kind passes the same tests against its
//! loopback server. To add a kind, add it to `KINDS` and teach `Backend` to start and seed
//! its server.
//!
//! Provider level: plan shapes, authentication seen by the server, each capability's happy
//! path, each failure mapped to an error kind and a retryable or terminal step, no secret in
//! any error. Engine level (through the binary): a 429 with `Retry-After` is waited out, five
//! 500s fail the step as retryable and say why, a malformed answer fails it as terminal.

use std::time::Duration;

use chrono::{NaiveTime, Utc};
use keyfire::http::{FailureKind, Http, HttpConfig, HttpError, RetryPolicy};
use keyfire::inventory::{Origin, ProviderDef, ProviderKind};
use keyfire::plan::{Access, HeaderValue, SecretBag, SecretRef};
use keyfire::provider::{AnyProvider, KeyState, Op, OpOutput, Probe, ProviderError, Which};
use keyfire::secret::{Redactor, Secret};
use keyfire::sim::{
    AnthropicSim, FakeApi, Fault, LiteLlmSim, LoggedRequest, OpenAiSim, SendGridSim,
};

use crate::common::{TestEnv, stdout};
use crate::llm::{LlmEnv, planted_usage};

/// Every provider kind with an HTTP integration.
const KINDS: [ProviderKind; 5] = [
    ProviderKind::Fake,
    ProviderKind::OpenAi,
    ProviderKind::Anthropic,
    ProviderKind::SendGrid,
    ProviderKind::LiteLlm,
];

enum Backend {
    Fake(FakeApi),
    OpenAi(OpenAiSim),
    Anthropic(AnthropicSim),
    SendGrid(SendGridSim),
    LiteLlm(LiteLlmSim),
}

struct Secrets {
    admin: String,
    old_key: String,
}

fn secrets(kind: ProviderKind) -> Secrets {
    match kind {
        ProviderKind::OpenAi => Secrets {
            admin: "sk-admin-CANARYctAdmin7Q2x9LmZ4bV8nR1tY6wK3xx".into(),
            old_key: "sk-proj-CANARYctOldKey3Fg6Hj9Kl2Mn5Pq8Rs1T3BlbkFJ".into(),
        },
        ProviderKind::Anthropic => Secrets {
            admin: "sk-ant-admin01-CANARYctAdmin7Q2x9LmZ4bV8nR1tY6-AA".into(),
            old_key: "sk-ant-api03-CANARYctOldKey3Fg6Hj9Kl2Mn5Pq8Rs1-igAA".into(),
        },
        ProviderKind::SendGrid => Secrets {
            admin: "SG.CANARYctAdmin7Q2x9LmZ4b.CANARYctAdminSecret8nR1tY6wK3xxFg6Hj9Kl2Mn5Pq"
                .into(),
            old_key: "SG.CANARYctOldKey3Fg6Hj9K.CANARYctOldSecret2Mn5Pq8Rs1Tu4Vw7Zx5Cv2Bn9Mq"
                .into(),
        },
        ProviderKind::LiteLlm => Secrets {
            admin: "sk-CANARYctMaster7Q2x9LmZ4bV8nR1tY6wK3".into(),
            old_key: "sk-CANARYctOldKey3Fg6Hj9Kl2Mn5Pq8Rs1".into(),
        },
        _ => Secrets {
            admin: "fk-admin-CANARYctAdmin7Q2x9LmZ4bV8nR1tY6wK3".into(),
            old_key: "fk-CANARYctOldKey3Fg6Hj9Kl2Mn5Pq8Rs1Tu4Vw7".into(),
        },
    }
}

impl Backend {
    /// Start the kind's server with an admin credential, the old key after `others` keys,
    /// and planted usage for it. Returns the old key's id.
    fn start(kind: ProviderKind, s: &Secrets, others: usize) -> (Self, String) {
        match kind {
            ProviderKind::OpenAi => {
                let sim = OpenAiSim::start().unwrap();
                sim.add_admin_key(&s.admin);
                for i in 0..others {
                    sim.add_user_key(
                        "proj_keyfire",
                        &format!("other-{i}"),
                        &format!("sk-proj-other{i:04}abcdefghijklmnopqrstuvwxyz{i:04}"),
                    );
                }
                let id = sim.add_user_key("proj_keyfire", "old", &s.old_key);
                sim.set_usage(&id, planted_usage());
                (Self::OpenAi(sim), id)
            }
            ProviderKind::Anthropic => {
                let sim = AnthropicSim::start().unwrap();
                sim.add_admin_key(&s.admin);
                for i in 0..others {
                    sim.add_key(
                        &format!("other-{i}"),
                        &format!("sk-ant-api03-other{i:04}abcdefghijklmnopqrstuvw-{i:02}AA"),
                    );
                }
                let id = sim.add_key("old", &s.old_key);
                sim.set_usage(&id, planted_usage());
                (Self::Anthropic(sim), id)
            }
            ProviderKind::SendGrid => {
                let sim = SendGridSim::start().unwrap();
                sim.add_admin_key(&s.admin);
                for i in 0..others {
                    sim.add_key(
                        &format!("other-{i}"),
                        &format!("SG.other{i:04}abcdefghijklm.other{i:04}abcdefghijklmnopqrstuvwxyz0123456"),
                        &["mail.send"],
                    );
                }
                let id = sim.add_key("old", &s.old_key, &["mail.send", "stats.read"]);
                (Self::SendGrid(sim), id)
            }
            ProviderKind::LiteLlm => {
                let sim = LiteLlmSim::start().unwrap();
                sim.add_master_key(&s.admin);
                for i in 0..others {
                    sim.add_key(
                        Some(&format!("other-{i}")),
                        &format!("sk-other{i:04}abcdefghijklmnop{i:04}"),
                        &["gpt-4o-mini"],
                    );
                }
                let id = sim.add_key(Some("old"), &s.old_key, &["gpt-4o"]);
                sim.set_usage(&id, &planted_usage());
                (Self::LiteLlm(sim), id)
            }
            _ => {
                let api = FakeApi::start().unwrap();
                api.add_admin_token(&s.admin);
                for i in 0..others {
                    api.add_key(
                        &format!("other-{i}"),
                        &format!("fk-other{i:04}abcdefghijklmnopq"),
                    );
                }
                let id = api.add_key("old", &s.old_key);
                api.set_usage(&id, planted_usage());
                (Self::Fake(api), id)
            }
        }
    }

    fn base_url(&self) -> String {
        match self {
            Self::Fake(a) => a.base_url(),
            Self::OpenAi(s) => s.base_url(),
            Self::Anthropic(s) => s.base_url(),
            Self::SendGrid(s) => s.base_url(),
            Self::LiteLlm(s) => s.base_url(),
        }
    }

    fn inject(&self, f: Fault) {
        match self {
            Self::Fake(a) => a.inject(f),
            Self::OpenAi(s) => s.inject(f),
            Self::Anthropic(s) => s.inject(f),
            Self::SendGrid(s) => s.inject(f),
            Self::LiteLlm(s) => s.inject(f),
        }
    }

    fn requests(&self) -> Vec<LoggedRequest> {
        match self {
            Self::Fake(a) => a.requests(),
            Self::OpenAi(s) => s.requests(),
            Self::Anthropic(s) => s.requests(),
            Self::SendGrid(s) => s.requests(),
            Self::LiteLlm(s) => s.requests(),
        }
    }

    fn accepts(&self, value: &str) -> bool {
        match self {
            Self::Fake(a) => a.accepts(value),
            Self::OpenAi(s) => s.accepts(value),
            Self::Anthropic(s) => s.accepts(value),
            Self::SendGrid(s) => s.accepts(value),
            Self::LiteLlm(s) => s.accepts(value),
        }
    }
}

/// The path the usage read starts at, for each kind (faults are injected there).
fn usage_path(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "/v1/organization/usage/completions",
        ProviderKind::Anthropic => "/v1/organizations/usage_report/messages",
        ProviderKind::LiteLlm => "/spend/logs",
        // No usage API: the failure tests read the key list instead.
        ProviderKind::SendGrid => "/v3/api_keys",
        _ => "/v1/usage",
    }
}

/// The path the locate read starts at in the binary-level fleets (faults are injected there):
/// the one read the revoke cannot do without.
fn locate_path(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "/v1/organization/projects/",
        ProviderKind::Anthropic => "/v1/organizations/api_keys",
        ProviderKind::SendGrid => "/v3/api_keys/",
        ProviderKind::LiteLlm => "/key/info",
        _ => "/v1/keys/",
    }
}

/// The header carrying a credential, for each kind.
fn auth_header(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Anthropic => "x-api-key",
        _ => "authorization",
    }
}

/// Headers every request of the kind must carry, with their value.
fn required_headers(kind: ProviderKind) -> Vec<(&'static str, &'static str)> {
    match kind {
        ProviderKind::Anthropic => vec![("anthropic-version", "2023-06-01")],
        _ => Vec::new(),
    }
}

fn def(kind: ProviderKind, base_url: String) -> ProviderDef {
    let settings = match kind {
        ProviderKind::OpenAi => serde_json::json!({ "project_id": "proj_keyfire" }),
        _ => serde_json::json!({}),
    };
    ProviderDef {
        id: format!("contract-{kind}"),
        kind,
        admin_credential: None,
        base_url: Some(base_url),
        settings: settings.as_object().cloned().unwrap_or_default(),
        origin: Origin { file: 0, line: 1 },
    }
}

struct Case {
    kind: ProviderKind,
    backend: Backend,
    provider: AnyProvider,
    http: Http,
    bag: SecretBag,
    secrets: Secrets,
    old_id: String,
}

/// Fast retries and a short timeout, so that failure tests take little time.
fn test_http(redactor: Redactor) -> Http {
    Http::with_config(
        false,
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

/// Keys per page of each kind's key list, as keyfire asks for them.
fn key_page(kind: ProviderKind) -> usize {
    match kind {
        ProviderKind::OpenAi => 100,
        ProviderKind::Anthropic => 1000,
        ProviderKind::LiteLlm | ProviderKind::SendGrid => 100,
        _ => 20,
    }
}

impl Case {
    fn new(kind: ProviderKind) -> Self {
        Self::with_others(kind, 3)
    }

    fn with_others(kind: ProviderKind, others: usize) -> Self {
        let s = secrets(kind);
        let (backend, old_id) = Backend::start(kind, &s, others);
        let provider = AnyProvider::from_def(&def(kind, backend.base_url()));
        // As the engine does: every secret it resolves is learned by the redactor.
        let redactor = Redactor::new();
        let bag = SecretBag {
            admin: Some(Secret::new(s.admin.clone())),
            old_key: Some(Secret::new(s.old_key.clone())),
            ..SecretBag::default()
        };
        for secret in [&bag.admin, &bag.old_key].into_iter().flatten() {
            redactor.learn(secret);
        }
        Self {
            kind,
            provider,
            http: test_http(redactor),
            bag,
            backend,
            secrets: s,
            old_id,
        }
    }

    async fn run(&self, op: Op) -> Result<OpOutput, ProviderError> {
        let plan = self.provider.plan(&op)?;
        self.provider
            .execute(&op, &plan, &self.http, &self.bag)
            .await
    }

    fn hint(&self) -> String {
        let v = &self.secrets.old_key;
        if self.kind == ProviderKind::SendGrid {
            // The id segment's start, as a hint shows it.
            return format!("{}...{}", &v[..15], &v[v.len() - 4..]);
        }
        let prefix = match self.kind {
            ProviderKind::OpenAi => "sk-proj-",
            ProviderKind::Anthropic => "sk-ant-api03-",
            ProviderKind::LiteLlm => "sk-",
            _ => "fk-",
        };
        format!("{prefix}...{}", &v[v.len() - 4..])
    }

    fn window() -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
        let end = Utc::now();
        let start = (end - chrono::Duration::days(45))
            .date_naive()
            .and_time(NaiveTime::MIN)
            .and_utc();
        (start, end)
    }

    /// The read the failure tests break: usage, or the key list where there is no usage.
    fn read_op(&self) -> Op {
        if self.kind == ProviderKind::SendGrid {
            return Op::Locate {
                id: None,
                name: None,
                hint: Some(self.hint()),
            };
        }
        self.usage_op()
    }

    fn usage_op(&self) -> Op {
        let (start, end) = Self::window();
        Op::Usage {
            id: self.old_id.clone(),
            start,
            end,
        }
    }

    /// No secret value in a text keyfire produced.
    fn assert_clean(&self, what: &str, text: &str) {
        for s in [&self.secrets.admin, &self.secrets.old_key] {
            assert!(
                !text.contains(&s[4..s.len() - 4]),
                "{}: a secret leaked into {what}: {text}",
                self.kind
            );
        }
    }
}

fn all_ops(old_id: &str) -> Vec<Op> {
    let (start, end) = Case::window();
    vec![
        Op::Locate {
            id: Some(old_id.into()),
            name: None,
            hint: None,
        },
        Op::Locate {
            id: None,
            name: None,
            hint: Some("sk-...abcd".into()),
        },
        Op::Verify { which: Which::Old },
        Op::Verify { which: Which::New },
        Op::Disable { id: old_id.into() },
        Op::Revoke { id: old_id.into() },
        Op::Create {
            name: "keyfire-inc-1-k".into(),
            idempotency_key: "inc-1:k:create:1".into(),
        },
        Op::Usage {
            id: old_id.into(),
            start,
            end,
        },
        Op::AuditLog {
            id: old_id.into(),
            start,
            end,
        },
    ]
}

#[test]
fn plans_are_data_that_name_secrets_only_by_placeholder() {
    for kind in KINDS {
        let case = Case::new(kind);
        let caps = case.provider.capabilities();
        for op in all_ops(&case.old_id) {
            let plan = match case.provider.plan(&op) {
                Ok(p) => p,
                // SendGrid and LiteLLM copy the leaked key's scopes or models: before it was
                // located there is nothing to copy, and an unrestricted key is never made.
                Err(ProviderError::Refused(why))
                    if matches!(op, Op::Create { .. })
                        && matches!(kind, ProviderKind::SendGrid | ProviderKind::LiteLlm) =>
                {
                    assert!(why.contains("not located"), "{kind}: {why}");
                    continue;
                }
                Err(ProviderError::Unsupported { .. }) => {
                    assert!(!caps.allows(&op), "{kind}: {} is a capability", op.name());
                    continue;
                }
                Err(e) => panic!("{kind}: {}: {e}", op.name()),
            };
            assert!(
                caps.allows(&op),
                "{kind}: planned {} without the capability",
                op.name()
            );
            let what = format!("{kind} {}", op.name());
            assert!(
                plan.url.starts_with(&case.backend.base_url()),
                "{what}: {}",
                plan.url
            );
            case.assert_clean(&what, &plan.render());
            case.assert_clean(&what, &serde_json::to_string(&plan).unwrap());
            // Authentication is a placeholder the HTTP layer fills at send time.
            let secret_headers: Vec<SecretRef> = plan
                .headers
                .iter()
                .filter_map(|(name, v)| match v {
                    HeaderValue::Secret { secret, .. }
                        if name.eq_ignore_ascii_case(auth_header(kind)) =>
                    {
                        Some(*secret)
                    }
                    _ => None,
                })
                .collect();
            let expected = match &op {
                Op::Verify { which: Which::Old } => SecretRef::OldKey,
                Op::Verify { which: Which::New } => SecretRef::NewKey,
                _ => SecretRef::AdminCredential,
            };
            assert_eq!(secret_headers, [expected], "{what}");
            for (name, value) in required_headers(kind) {
                assert!(
                    plan.headers
                        .iter()
                        .any(|(n, v)| n.eq_ignore_ascii_case(name)
                            && v == &HeaderValue::Plain(value.into())),
                    "{what}: {name}"
                );
            }
            match &op {
                Op::Disable { .. } | Op::Revoke { .. } | Op::Create { .. } => {
                    assert_eq!(plan.access, Access::Write, "{what}");
                }
                _ => {
                    assert_eq!(plan.access, Access::Read, "{what}");
                    assert!(plan.idempotent, "{what}: reads are retried");
                }
            }
            if let Op::Revoke { .. } = op {
                assert!(
                    plan.destructive,
                    "{what}: a revoke needs a typed confirmation"
                );
                assert!(
                    plan.idempotent,
                    "{what}: a revoke of a fixed id may be retried"
                );
            }
            if let Op::Create { .. } = op {
                assert_eq!(
                    plan.idempotent, caps.create_idempotent,
                    "{what}: a create is retried only when the provider replays it"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_capability_works_against_the_loopback_server() {
    for kind in KINDS {
        let mut case = Case::new(kind);
        let caps = case.provider.capabilities();
        let old = case.old_id.clone();

        let by_id = case
            .run(Op::Locate {
                id: Some(old.clone()),
                name: None,
                hint: None,
            })
            .await
            .unwrap();
        assert!(
            matches!(&by_id, OpOutput::Located(Some(k)) if k.id == old && k.state == KeyState::Active),
            "{kind}: {by_id:?}"
        );
        let by_hint = case
            .run(Op::Locate {
                id: None,
                name: None,
                hint: Some(case.hint()),
            })
            .await
            .unwrap();
        assert!(
            matches!(&by_hint, OpOutput::Located(Some(k)) if k.id == old),
            "{kind}: {by_hint:?}"
        );
        let nobody = case
            .run(Op::Locate {
                id: None,
                name: None,
                hint: Some("zz-...none".into()),
            })
            .await
            .unwrap();
        assert!(matches!(nobody, OpOutput::Located(None)), "{kind}");

        let alive = case.run(Op::Verify { which: Which::Old }).await.unwrap();
        assert!(
            matches!(alive, OpOutput::Verified(Probe::Accepted)),
            "{kind}: {alive:?}"
        );

        match case.run(case.usage_op()).await {
            Err(ProviderError::Unsupported { .. }) => assert!(!caps.usage, "{kind}"),
            // LiteLLM's spend logs come in one answer (no pagination).
            Ok(OpOutput::Usage(r)) => {
                assert!(
                    r.pages >= 2 || kind == ProviderKind::LiteLlm,
                    "{kind}: 46 daily buckets span pages: {}",
                    r.pages
                );
                assert!(r.buckets.len() >= 40, "{kind}: {}", r.buckets.len());
                assert!(r.requests() > 0 || r.tokens() > 0, "{kind}");
                let days: std::collections::BTreeSet<_> =
                    r.buckets.iter().map(|b| b.start).collect();
                assert_eq!(days.len(), r.buckets.len(), "{kind}: no bucket twice");
            }
            Ok(other) => panic!("{kind}: {other:?}"),
            Err(e) => panic!("{kind}: {e}"),
        }

        if caps.audit {
            let (start, end) = Case::window();
            match case
                .run(Op::AuditLog {
                    id: old.clone(),
                    start,
                    end,
                })
                .await
                .unwrap()
            {
                OpOutput::AuditEvents { events, .. } => {
                    assert!(
                        events.iter().any(|e| e.kind == "api_key.created"),
                        "{kind}: {events:?}"
                    );
                }
                other => panic!("{kind}: {other:?}"),
            }
        }

        if caps.create {
            let name = format!("keyfire-contract-{kind}");
            let (id, value) = match case
                .run(Op::Create {
                    name: name.clone(),
                    idempotency_key: "contract:create:1".into(),
                })
                .await
                .unwrap()
            {
                OpOutput::Created { id, value } => (id, value),
                other => panic!("{kind}: {other:?}"),
            };
            assert!(case.backend.accepts(value.expose()), "{kind}");
            case.assert_clean("a created key's debug form", &format!("{value:?}"));
            case.bag.new_key = Some(value);
            let works = case.run(Op::Verify { which: Which::New }).await.unwrap();
            assert!(
                matches!(works, OpOutput::Verified(Probe::Accepted)),
                "{kind}"
            );
            let found = case
                .run(Op::Locate {
                    id: None,
                    name: Some(name),
                    hint: None,
                })
                .await
                .unwrap();
            assert!(
                matches!(&found, OpOutput::Located(Some(k)) if k.id == id),
                "{kind}: a resumed incident finds its replacement by name: {found:?}"
            );
        }

        if caps.disable {
            let out = case.run(Op::Disable { id: old.clone() }).await.unwrap();
            assert!(matches!(out, OpOutput::Disabled), "{kind}");
            let dead = case.run(Op::Verify { which: Which::Old }).await.unwrap();
            assert!(
                matches!(
                    dead,
                    OpOutput::Verified(Probe::Rejected {
                        status: Some(401),
                        ..
                    })
                ),
                "{kind}: {dead:?}"
            );
        }

        let out = case.run(Op::Revoke { id: old.clone() }).await.unwrap();
        assert!(matches!(out, OpOutput::Revoked { .. }), "{kind}: {out:?}");
        assert!(!case.backend.accepts(&case.secrets.old_key), "{kind}");
        let dead = case.run(Op::Verify { which: Which::Old }).await.unwrap();
        assert!(
            matches!(
                dead,
                OpOutput::Verified(Probe::Rejected {
                    status: Some(401),
                    ..
                })
            ),
            "{kind}: {dead:?}"
        );
        let gone = case
            .run(Op::Locate {
                id: Some(old.clone()),
                name: None,
                hint: None,
            })
            .await
            .unwrap();
        assert!(
            matches!(&gone, OpOutput::Located(None))
                || matches!(&gone, OpOutput::Located(Some(k)) if k.state == KeyState::Revoked),
            "{kind}: {gone:?}"
        );
        let again = case.run(Op::Revoke { id: old.clone() }).await;
        assert!(
            matches!(again, Ok(OpOutput::Revoked { .. })),
            "{kind}: revoking twice is not an error: {again:?}"
        );

        // What the server saw: a credential on every request, keyfire's User-Agent, and the
        // kind's required headers.
        let requests = case.backend.requests();
        assert!(requests.len() >= 10, "{kind}");
        for r in &requests {
            assert!(r.has_header(auth_header(kind)), "{kind}: {r:?}");
            assert_eq!(
                r.header("user-agent"),
                Some(format!("keyfire/{}", env!("CARGO_PKG_VERSION")).as_str()),
                "{kind}"
            );
            for (name, value) in required_headers(kind) {
                assert_eq!(r.header(name), Some(value), "{kind}: {r:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locating_by_hint_reads_every_page_of_the_key_list() {
    // SendGrid's list has no cursor and an account holds at most 100 keys: one page.
    for kind in KINDS.into_iter().filter(|k| *k != ProviderKind::SendGrid) {
        let mut case = Case::with_others(kind, key_page(kind) + 5);
        // A page of a thousand keys on a loaded machine: no retry must blur the count.
        case.http = Http::with_config(
            false,
            Redactor::new(),
            HttpConfig {
                request_timeout: Duration::from_secs(30),
                ..HttpConfig::default()
            },
        )
        .unwrap();
        let found = case
            .run(Op::Locate {
                id: None,
                name: None,
                hint: Some(case.hint()),
            })
            .await
            .unwrap();
        assert!(
            matches!(&found, OpOutput::Located(Some(k)) if k.id == case.old_id),
            "{kind}: {found:?}"
        );
        let lists = case
            .backend
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && !r.query.is_empty())
            .count();
        assert_eq!(lists, 2, "{kind}: the key is on the second page");
    }
}

/// How one failure must surface.
struct Expect {
    label: &'static str,
    kind: FailureKind,
    status: Option<u16>,
    retryable: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_maps_to_an_error_kind_and_a_retryable_or_terminal_step() {
    let table = |kind: ProviderKind| -> Vec<(Fault, Expect)> {
        let p = usage_path(kind);
        let mut timeout = Fault::hold("GET", p, Duration::from_secs(3));
        timeout.times = 10;
        vec![
            (
                Fault::fail("GET", p, 401, 10),
                Expect {
                    label: "401",
                    kind: FailureKind::Unauthorized,
                    status: Some(401),
                    retryable: true,
                },
            ),
            (
                Fault::fail("GET", p, 403, 10),
                Expect {
                    label: "403",
                    kind: FailureKind::Forbidden,
                    status: Some(403),
                    retryable: true,
                },
            ),
            (
                Fault::fail("GET", p, 404, 10),
                Expect {
                    label: "404",
                    kind: FailureKind::NotFound,
                    status: Some(404),
                    retryable: false,
                },
            ),
            (
                Fault::fail("GET", p, 409, 10),
                Expect {
                    label: "409",
                    kind: FailureKind::Conflict,
                    status: Some(409),
                    retryable: false,
                },
            ),
            (
                Fault::rate_limit("GET", p, 1, 10),
                Expect {
                    label: "429",
                    kind: FailureKind::RateLimited,
                    status: Some(429),
                    retryable: true,
                },
            ),
            (
                Fault::fail("GET", p, 500, 10),
                Expect {
                    label: "500",
                    kind: FailureKind::ServerError,
                    status: Some(500),
                    retryable: true,
                },
            ),
            (
                timeout,
                Expect {
                    label: "timeout",
                    kind: FailureKind::Timeout,
                    status: None,
                    retryable: true,
                },
            ),
            (
                Fault::malformed("GET", p, 10),
                Expect {
                    label: "malformed JSON",
                    kind: FailureKind::Malformed,
                    status: None,
                    retryable: false,
                },
            ),
        ]
    };
    for kind in KINDS {
        for (fault, expect) in table(kind) {
            let case = Case::new(kind);
            let what = format!("{kind} {}", expect.label);
            case.backend.inject(fault);
            let err = case.run(case.read_op()).await.expect_err(&what);
            let ProviderError::Http(http) = &err else {
                panic!("{what}: {err:?}");
            };
            assert_eq!(http.kind(), expect.kind, "{what}: {err}");
            assert_eq!(err.status(), expect.status, "{what}");
            assert_eq!(err.retryable(), expect.retryable, "{what}");
            case.assert_clean(&what, &err.to_string());
            case.assert_clean(&what, &format!("{err:?}"));
            if let Some(status) = expect.status {
                assert!(
                    err.to_string().contains("injected failure"),
                    "{what}: the provider's message is parsed from its error body: {err}"
                );
                let attempts = case
                    .backend
                    .requests()
                    .iter()
                    .filter(|r| r.path == usage_path(kind))
                    .count();
                let retried = matches!(status, 429 | 500);
                assert_eq!(attempts, if retried { 2 } else { 1 }, "{what}: attempts");
                if retried {
                    assert!(
                        err.to_string().contains("gave up after 2 attempts"),
                        "{what}: {err}"
                    );
                }
                // The wait the client decided, not a wall clock: Retry-After says 1 s.
                let waits = case.http.waits();
                if status == 429 {
                    assert_eq!(
                        waits,
                        [Duration::from_secs(1)],
                        "{what}: Retry-After honoured"
                    );
                } else if retried {
                    assert_eq!(waits.len(), 1, "{what}: one backoff before the retry");
                }
            }
        }
        // Nothing listens on a closed port.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let mut case = Case::new(kind);
        case.provider = AnyProvider::from_def(&def(kind, format!("http://127.0.0.1:{port}")));
        let err = case.run(case.read_op()).await.expect_err("refused");
        let ProviderError::Http(http) = &err else {
            panic!("{kind}: {err:?}");
        };
        assert_eq!(http.kind(), FailureKind::Transport, "{kind}: {err}");
        assert!(err.retryable(), "{kind}");
        case.assert_clean("connection refused", &err.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_body_that_echoes_a_secret_is_redacted() {
    for kind in KINDS {
        let case = Case::new(kind);
        let message = format!(
            "key {} is not allowed here; admin {} lacks scopes; also saw sk-proj-NEVERLEARNED1234567890abcdef",
            case.secrets.old_key, case.secrets.admin
        );
        let body = match kind {
            ProviderKind::Anthropic => {
                serde_json::json!({ "type": "error", "error": { "type": "invalid_request_error", "message": message } })
            }
            ProviderKind::SendGrid => {
                serde_json::json!({ "errors": [{ "field": null, "message": message }] })
            }
            _ => {
                serde_json::json!({ "error": { "message": message, "type": "invalid_request_error", "code": null } })
            }
        };
        case.backend.inject(Fault::raw(
            "GET",
            usage_path(kind),
            400,
            &body.to_string(),
            1,
        ));
        let err = case.run(case.read_op()).await.expect_err("400");
        let text = err.to_string();
        case.assert_clean("an echoing error body", &text);
        assert!(
            !text.contains("NEVERLEARNED1234567890"),
            "{kind}: key shapes are scrubbed: {text}"
        );
        assert!(text.contains("[REDACTED]"), "{kind}: {text}");
        assert!(
            matches!(
                &err,
                ProviderError::Http(HttpError::Status { status: 400, .. })
            ),
            "{kind}"
        );
        assert!(!err.retryable(), "{kind}: a rejected request is terminal");
    }
}

// ---- engine level, through the binary ----------------------------------------------------

/// A fleet of one kind on disk, driven through the keyfire binary.
enum Fleet {
    Fake(TestEnv),
    Llm(LlmEnv),
}

impl Fleet {
    fn new(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::OpenAi => Self::Llm(LlmEnv::openai()),
            ProviderKind::Anthropic => Self::Llm(LlmEnv::anthropic()),
            ProviderKind::SendGrid => Self::Llm(LlmEnv::sendgrid()),
            ProviderKind::LiteLlm => Self::Llm(LlmEnv::litellm()),
            _ => Self::Fake(TestEnv::new()),
        }
    }

    fn inject(&self, f: Fault) {
        match self {
            Self::Fake(e) => e.api.inject(f),
            Self::Llm(e) => e.inject(f),
        }
    }

    fn requests(&self) -> Vec<LoggedRequest> {
        match self {
            Self::Fake(e) => e.api.requests(),
            Self::Llm(e) => e.requests(),
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        match self {
            Self::Fake(e) => e.run(args),
            Self::Llm(e) => e.run(args),
        }
    }

    fn drill(&self) -> std::process::Output {
        // Both fleets call the leaked key `support-llm`.
        self.run(&["incident", "start", "support-llm", "--dry-run", "--no-tui"])
    }

    fn entries(&self) -> Vec<keyfire::record::Entry> {
        match self {
            Self::Fake(e) => e.entries(&e.incident_ids()[0]),
            Self::Llm(e) => e.entries(&e.incident_ids()[0]),
        }
    }

    fn record_dir(&self) -> std::path::PathBuf {
        let id = self.incident_id();
        let data = match self {
            Self::Fake(e) => e.data_dir(),
            Self::Llm(e) => e.data_dir(),
        };
        data.join("incidents").join(id)
    }

    fn incident_id(&self) -> String {
        match self {
            Self::Fake(e) => e.incident_ids()[0].clone(),
            Self::Llm(e) => e.incident_ids()[0].clone(),
        }
    }
}

/// Run one closure per kind on its own thread: these tests wait on real clocks.
fn for_each_kind(f: impl Fn(ProviderKind) + Sync) {
    for_each_kind_where(|_| true, f);
}

/// The same, for the kinds with a usage API (the usage tests).
fn for_each_kind_with_usage(f: impl Fn(ProviderKind) + Sync) {
    for_each_kind_where(|k| keyfire::provider::capabilities_of(k).usage, f);
}

fn for_each_kind_where(keep: impl Fn(ProviderKind) -> bool, f: impl Fn(ProviderKind) + Sync) {
    std::thread::scope(|s| {
        let handles: Vec<_> = KINDS
            .iter()
            .filter(|k| keep(**k))
            .map(|k| s.spawn(|| f(*k)))
            .collect();
        for h in handles {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

#[test]
fn a_429_with_retry_after_2_delays_the_retry_about_2s_and_the_step_succeeds() {
    for_each_kind_with_usage(|kind| {
        let fleet = Fleet::new(kind);
        fleet.inject(Fault::rate_limit("GET", usage_path(kind), 2, 1));
        let out = fleet.drill();
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", stdout(&out));
        let usage: Vec<_> = fleet
            .requests()
            .into_iter()
            .filter(|r| r.path == usage_path(kind))
            .collect();
        // A sleep is never shorter than asked: this lower bound cannot flake on a busy
        // machine (no upper bound here; the wait itself is checked without a clock in
        // every_failure_maps_to_an_error_kind_and_a_retryable_or_terminal_step).
        let gap = usage[1].at.duration_since(usage[0].at);
        assert!(
            gap >= Duration::from_millis(1900),
            "{kind}: the retry came {gap:?} after the 429"
        );
        let entries = fleet.entries();
        assert!(!entries.iter().any(|e| e.kind == "step_failed"), "{kind}");
        assert!(
            entries.iter().any(|e| e.kind == "action_done"
                && e.data["action"] == "snapshot_usage"
                && e.data["status"] == "done"),
            "{kind}"
        );
    });
}

#[test]
fn five_500s_in_a_row_fail_the_step_as_retryable_and_the_record_says_why() {
    for_each_kind(|kind| {
        let fleet = Fleet::new(kind);
        fleet.inject(Fault::fail("GET", locate_path(kind), 500, 5));
        let out = fleet.drill();
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{kind}: {text}");
        assert!(text.contains("STEP FAILED (HTTP 500)"), "{kind}: {text}");
        assert!(text.contains("[retryable]"), "{kind}: {text}");
        let attempts = fleet
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.starts_with(locate_path(kind)))
            .count();
        assert_eq!(attempts, 5, "{kind}: one try and four retries");
        let entries = fleet.entries();
        let failed = entries
            .iter()
            .find(|e| e.kind == "step_failed")
            .expect("step_failed");
        assert_eq!(failed.step.as_deref(), Some("open"), "{kind}");
        assert_eq!(failed.data["action"], "locate", "{kind}");
        assert_eq!(failed.data["status"], 500, "{kind}");
        assert_eq!(failed.data["retryable"], true, "{kind}");
        let why = failed.data["error"].as_str().unwrap();
        assert!(why.contains("server error 500"), "{kind}: {why}");
        assert!(why.contains("gave up after 5 attempts"), "{kind}: {why}");
        assert!(
            !entries
                .iter()
                .any(|e| e.kind == "action_done" && e.data["action"] == "locate"),
            "{kind}"
        );
        // The faults are spent: resuming finishes the drill.
        let id = fleet.incident_id();
        let resumed = fleet.run(&["incident", "resume", &id, "--yes", "--no-tui"]);
        assert_eq!(
            resumed.status.code(),
            Some(0),
            "{kind}: {}",
            stdout(&resumed)
        );
    });
}

#[test]
fn a_malformed_answer_fails_the_step_as_terminal() {
    for_each_kind(|kind| {
        let fleet = Fleet::new(kind);
        fleet.inject(Fault::malformed("GET", locate_path(kind), 1));
        let out = fleet.drill();
        assert_eq!(out.status.code(), Some(1), "{kind}: {}", stdout(&out));
        let entries = fleet.entries();
        let failed = entries
            .iter()
            .find(|e| e.kind == "step_failed")
            .expect("step_failed");
        assert_eq!(failed.data["retryable"], false, "{kind}: {}", failed.data);
        assert!(
            failed.data["error"]
                .as_str()
                .unwrap()
                .contains("unexpected response"),
            "{kind}: {}",
            failed.data
        );
    });
}

#[test]
fn a_failing_evidence_read_is_recorded_as_unavailable_and_the_runbook_goes_on() {
    for_each_kind_with_usage(|kind| {
        let fleet = Fleet::new(kind);
        // Usage is evidence: five 500s (every retry) and then a malformed answer.
        fleet.inject(Fault::fail("GET", usage_path(kind), 500, 5));
        fleet.inject(Fault::malformed("GET", usage_path(kind), 1));
        let out = fleet.drill();
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{kind}: a drill counts it as a problem: {text}"
        );
        assert!(
            text.contains("evidence unavailable (snapshot_usage)"),
            "{kind}: the summary names it: {text}"
        );
        let entries = fleet.entries();
        assert!(
            !entries.iter().any(|e| e.kind == "step_failed"),
            "{kind}: no step failed"
        );
        let unavailable: Vec<&keyfire::record::Entry> = entries
            .iter()
            .filter(|e| e.kind == "evidence" && e.data.get("unavailable").is_some())
            .collect();
        assert_eq!(
            unavailable.len(),
            2,
            "{kind}: the snapshot and the audit's read"
        );
        assert_eq!(unavailable[0].data["action"], "snapshot_usage", "{kind}");
        assert_eq!(unavailable[0].data["status"], 500, "{kind}");
        assert_eq!(unavailable[1].data["action"], "fetch_usage", "{kind}");
        assert!(
            unavailable[1].data["unavailable"]
                .as_str()
                .unwrap()
                .contains("unexpected response"),
            "{kind}: {}",
            unavailable[1].data
        );
        let state = keyfire::record::IncidentState::fold(&entries).unwrap();
        assert_eq!(state.status, keyfire::record::Status::Completed, "{kind}");
        let closed = entries.last().unwrap();
        assert_eq!(closed.kind, "incident_closed", "{kind}");
        let report = std::fs::read_to_string(fleet.record_dir().join("report.md")).unwrap();
        assert!(
            report.contains("### Evidence unavailable"),
            "{kind}: {report}"
        );
    });
}
