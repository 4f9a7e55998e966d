//! Notifiers: a real loopback receiver stands in for Slack, PagerDuty and a webhook; every
//! request is checked (HMAC over the raw body, the Events API v2 request schema) and grepped
//! for canaries.

use keyfire::notify::webhook;
use keyfire::sim::{Receiver, Reply};

use crate::common::{TestEnv, files_under, stderr, stdout};

const SLACK_VAR: &str = "KF_TEST_SLACK_URL";
const PD_VAR: &str = "KF_TEST_PD_KEY";
const HOOK_VAR: &str = "KF_TEST_HOOK_SECRET";
/// The incoming-webhook path is the credential: it must never be printed or recorded.
const SLACK_PATH: &str = "/services/T0KFTEST/B0KFTEST/CANARYslackpath7Wq2Lm9Zx";
const PD_KEY: &str = "CANARYroutingkey0123456789abcdef";
const HOOK_SECRET: &str = "whsec-CANARYhooksecret-4Hk8Lp2Qx6";
/// A key-shaped value in the operator's --reason: the scrubber must catch it.
const REASON_KEY: &str = "sk-proj-CANARYreasonKEY7f3Hk9Lp2Qx6Zt8Vb1Nm4";

struct Receivers {
    slack: Receiver,
    pd: Receiver,
    hook: Receiver,
}

impl Receivers {
    fn start() -> Self {
        Self {
            slack: Receiver::start(Reply::Slack).unwrap(),
            pd: Receiver::start(Reply::PagerDuty).unwrap(),
            hook: Receiver::start(Reply::Ok).unwrap(),
        }
    }

    /// Three notifiers on the given routes, plus `policy` lines for the notifier timeout.
    fn inventory(&self, routes: &str) -> String {
        format!(
            r#"
[[notifiers]]
id = "oncall-slack"
kind = "slack"
url = "env:{SLACK_VAR}"
route = {routes}

[[notifiers]]
id = "pager"
kind = "pagerduty"
routing_key = "env:{PD_VAR}"
url = "{pd}"
route = {routes}

[[notifiers]]
id = "hook"
kind = "webhook"
url = "{hook}"
secret = "env:{HOOK_VAR}"
route = {routes}
owners = true
"#,
            pd = self.pd.url("/v2/enqueue"),
            hook = self.hook.url("/keyfire"),
        )
    }

    fn run(&self, env: &TestEnv, args: &[&str]) -> std::process::Output {
        env.cmd()
            .env(SLACK_VAR, self.slack.url(SLACK_PATH))
            .env(PD_VAR, PD_KEY)
            .env(HOOK_VAR, HOOK_SECRET)
            .args(args)
            .output()
            .unwrap()
    }
}

/// Every body the PagerDuty notifier sent, validated against the Events API v2 request schema.
fn assert_pagerduty_valid(pd: &Receiver) -> Vec<serde_json::Value> {
    let schema: serde_json::Value = serde_json::from_str(include_str!(
        "../fixtures/spec/pagerduty/events-v2-request.schema.json"
    ))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut out = Vec::new();
    for r in pd.received() {
        assert_eq!(r.path, "/v2/enqueue");
        let body = r.json().expect("PagerDuty body is JSON");
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?} in {body}");
        assert_eq!(body["routing_key"], PD_KEY);
        out.push(body);
    }
    out
}

/// Every webhook request carries a valid signature over its exact bytes and names its event.
fn assert_webhooks_signed(hook: &Receiver) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for r in hook.received() {
        let sig = r.signature.as_deref().expect("X-Keyfire-Signature");
        assert!(
            webhook::verify(HOOK_SECRET.as_bytes(), &r.body, sig),
            "bad signature on {:?}",
            r.event
        );
        assert!(!webhook::verify(b"another secret", &r.body, sig));
        let body = r.json().expect("webhook body is JSON");
        let event = r.event.clone().expect("X-Keyfire-Event");
        assert_eq!(body["event"], event.as_str());
        out.push((event, body));
    }
    out
}

fn assert_no_canary(env: &TestEnv, texts: &[(&str, String)], extra: &[&str]) {
    let mut canaries = vec![
        env.canaries.admin.as_str(),
        env.canaries.vault_token.as_str(),
        env.canaries.old_key.as_str(),
        SLACK_PATH,
        HOOK_SECRET,
        REASON_KEY,
    ];
    canaries.extend_from_slice(extra);
    let live: Vec<String> = env
        .api
        .live_keys()
        .iter()
        .map(|k| k.value().to_string())
        .collect();
    for (what, text) in texts {
        for c in canaries
            .iter()
            .copied()
            .chain(live.iter().map(String::as_str))
        {
            assert!(!text.contains(c), "{what} holds a canary ({}…)", &c[..8]);
        }
    }
}

#[test]
fn a_live_incident_reaches_slack_pagerduty_and_the_webhook_without_a_secret() {
    let r = Receivers::start();
    let env = TestEnv::with_inventory_extra(&r.inventory(r#"["incident"]"#));
    let reason = format!("key {REASON_KEY} found in a public gist");
    let out = r.run(
        &env,
        &[
            "incident",
            "start",
            "support-llm",
            "--yes",
            "--no-tui",
            "--reason",
            &reason,
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let id = env.incident_ids().pop().unwrap();
    let entries = env.entries(&id);
    let closing = entries
        .iter()
        .find(|e| e.kind == "incident_closed")
        .unwrap();

    // The webhook: signed, every event, the owners addressed, the closing hash as an anchor.
    let hooks = assert_webhooks_signed(&r.hook);
    let names: Vec<&str> = hooks.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        ["incident.opened", "incident.key_revoked", "incident.closed"],
        "in order, one per event"
    );
    let opened = &hooks[0].1;
    assert_eq!(opened["incident"], id.as_str());
    assert_eq!(opened["drill"], false);
    assert_eq!(opened["detail"]["keys"][0]["key"], "support-llm");
    assert_eq!(opened["detail"]["keys"][0]["agents"][0], "support-bot");
    assert!(opened["detail"]["started_by"].is_string());
    assert_eq!(opened["recipients"][0]["owner"], "support@example.com");
    assert_eq!(opened["recipients"][0]["oncall"], "#support-oncall");
    assert!(
        opened["text"].as_str().unwrap().contains("[REDACTED]"),
        "{opened}"
    );
    assert_eq!(hooks[1].1["detail"]["proof"], "proven");
    let closed = &hooks[2].1;
    assert_eq!(closed["detail"]["closing_hash"], closing.hash.as_str());
    assert_eq!(closed["detail"]["outcome"], "completed");
    assert!(closed["detail"]["time_to_revoke_ms"]["support-llm"].is_i64());
    assert!(
        closed["detail"]["report"]
            .as_str()
            .unwrap()
            .ends_with("report.md")
    );

    // Slack: the same story in text, to the secret URL.
    let slack = r.slack.received();
    assert_eq!(slack.len(), 3);
    assert!(slack.iter().all(|m| m.path == SLACK_PATH));
    let text = |i: usize| {
        slack[i].json().unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        text(0).contains("leaked key response started for support-llm"),
        "{}",
        text(0)
    );
    assert!(text(1).contains("proven dead"), "{}", text(1));
    assert!(text(2).contains(&closing.hash), "{}", text(2));

    // PagerDuty: trigger at open, resolve at close, one dedup key (the incident id); a
    // revocation proven dead pages nobody.
    let pd = assert_pagerduty_valid(&r.pd);
    let actions: Vec<&str> = pd
        .iter()
        .map(|b| b["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "resolve"]);
    assert!(pd.iter().all(|b| b["dedup_key"] == id.as_str()));
    assert_eq!(pd[0]["payload"]["severity"], "critical");

    // Outcomes are in the record (no secret there), shown, and the record still verifies.
    let notes: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == "notification")
        .collect();
    assert_eq!(notes.len(), 3 + 3 + 2, "one entry per message");
    assert!(
        notes.iter().all(|e| e.data["delivered"] == true),
        "{notes:?}"
    );
    assert!(notes.iter().all(|e| e.data.get("key").is_none()));
    assert!(
        stdout(&out)
            .contains("notification: pager incident.closed (resolve): delivered (HTTP 202)")
    );
    let verify = env.run(&["record", "verify", &id]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));

    let mut texts = vec![
        ("slack receiver", r.slack.log_text()),
        ("webhook receiver", r.hook.log_text()),
        ("stdout", stdout(&out)),
        ("stderr", stderr(&out)),
    ];
    for f in files_under(&env.data_dir()) {
        texts.push((
            "data file",
            String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned(),
        ));
    }
    // The routing key rides in PagerDuty's bodies only; everywhere else it is a leak.
    assert_no_canary(&env, &texts, &[PD_KEY]);
    assert_no_canary(&env, &[("pagerduty receiver", r.pd.log_text())], &[]);
}

#[test]
fn a_failed_step_is_notified_and_the_incident_goes_on() {
    let r = Receivers::start();
    let env = TestEnv::with_inventory_extra(&r.inventory(r#"["incident"]"#));
    env.api.revoke_admin_tokens();
    let out = r.run(
        &env,
        &["incident", "start", "support-llm", "--yes", "--no-tui"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let hooks = assert_webhooks_signed(&r.hook);
    let failed = hooks
        .iter()
        .find(|(e, _)| e == "incident.step_failed")
        .expect("a step_failed message");
    assert_eq!(failed.1["detail"]["key"], "support-llm");
    assert_eq!(failed.1["severity"], "error");
    assert!(
        hooks
            .iter()
            .any(|(e, b)| e == "incident.closed" && b["detail"]["outcome"] == "failed")
    );
    // PagerDuty: the failure re-triggers the incident's alert; the close acknowledges it
    // (not resolved: the key may still be live).
    let pd = assert_pagerduty_valid(&r.pd);
    let last = pd.last().unwrap();
    assert_eq!(last["event_action"], "acknowledge");
    assert!(
        pd.iter()
            .any(|b| b["event_action"] == "trigger" && b["payload"]["severity"] == "error")
    );
}

#[test]
fn a_dead_receiver_is_recorded_and_shown_and_never_holds_the_runbook() {
    let r = Receivers::start();
    r.hook.set_reply(Reply::Hold);
    r.slack.set_reply(Reply::Status(500));
    let extra = r.inventory(r#"["incident"]"#);
    let env = TestEnv::with_inventory_extra(&extra);
    // A three-second send timeout (policy): short for the held requests, long enough for
    // Slack's three attempts (200 and 400 ms apart) to end on a loaded machine.
    let text = std::fs::read_to_string(env.inventory_path())
        .unwrap()
        .replace(
            "after_incident_rotation_days = 30",
            "after_incident_rotation_days = 30\nnotify_timeout_seconds = 3",
        );
    std::fs::write(env.inventory_path(), text).unwrap();
    let out = r.run(
        &env,
        &["incident", "start", "support-llm", "--yes", "--no-tui"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "the runbook's outcome ignores notifications: {}",
        stdout(&out)
    );
    let id = env.incident_ids().pop().unwrap();
    let entries = env.entries(&id);
    assert!(entries.iter().any(|e| e.kind == "incident_closed"));
    // The webhook never answered anything, yet the incident closed, and every message to it
    // is recorded as not delivered (in flight or still queued when keyfire finished).
    assert_eq!(r.hook.answered(), 0);
    assert!(!r.hook.received().is_empty());
    let hook_notes: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == "notification" && e.data["notifier"] == "hook")
        .collect();
    assert_eq!(hook_notes.len(), 3, "{hook_notes:?}");
    assert!(hook_notes.iter().all(|e| e.data["delivered"] == false));
    // Slack answered 500 to every attempt: retried, then recorded with the status.
    let slack_notes: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == "notification" && e.data["notifier"] == "oncall-slack")
        .collect();
    assert!(!slack_notes.is_empty());
    assert!(slack_notes.iter().all(|e| e.data["delivered"] == false));
    assert!(
        slack_notes.iter().any(|e| e.data["status"] == 500),
        "{slack_notes:?}"
    );
    assert!(
        r.slack.received().len() > slack_notes.len(),
        "failed sends are retried"
    );
    // The operator sees it; nothing secret is in what they see.
    assert!(
        stdout(&out).contains("notification: hook incident.opened: NOT delivered"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("notification: oncall-slack incident.opened: NOT delivered"));
    assert_no_canary(
        &env,
        &[("stdout", stdout(&out)), ("stderr", stderr(&out))],
        &[PD_KEY],
    );
    let verify = env.run(&["record", "verify", &id]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbook_closes_while_every_notification_is_still_unanswered() {
    use keyfire::notify::{Notifier, NotifyGate, NotifySink, Options};
    use keyfire::runbook::{ApproveAll, CollectSink, Engine, Order, drive};
    use std::sync::Arc;

    let hook = Receiver::start(Reply::Hold).unwrap();
    let env = TestEnv::with_inventory_extra(&format!(
        "\n[[notifiers]]\nid = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"env:{HOOK_VAR}\"\n",
        hook.url("/hook")
    ));
    // SAFETY: this test's own variable, set before anything reads it.
    unsafe { std::env::set_var(HOOK_VAR, HOOK_SECRET) };
    let setup = env.setup();
    let inv = setup.inventory.clone();
    let mut engine = Engine::open(
        setup,
        crate::common::params(&["support-llm"], false, Order::ContainFirst),
    )
    .unwrap();
    let recorder: Arc<dyn keyfire::notify::Recorder> = Arc::new(engine.appender());
    let options = Options {
        send_timeout: std::time::Duration::from_secs(1),
        attempts: 2,
    };
    let notifier = Notifier::start(
        inv.clone(),
        engine.http().redactor().clone(),
        options,
        Some(recorder),
    )
    .unwrap();
    let mut sink = NotifySink::new(
        CollectSink::default(),
        notifier.clone(),
        inv.clone(),
        &engine.record_dir(),
    );
    let mut approve = ApproveAll::default();
    let mut gate = NotifyGate::new(&mut approve, notifier.clone(), inv, false);
    drive(&mut engine, &mut gate, &mut sink).await.unwrap();
    // The runbook is over and no notification has been answered: it never waited on one.
    assert_eq!(hook.answered(), 0);
    let path = engine.record_dir().join("record.jsonl");
    let before = keyfire::record::read_entries(&path).unwrap();
    assert!(before.iter().any(|e| e.kind == "incident_closed"));
    assert!(
        before
            .iter()
            .all(|e| !(e.kind == "notification" && e.data["delivered"] == true))
    );
    let deliveries = notifier.finish().await;
    assert_eq!(deliveries.len(), 3, "{deliveries:?}");
    assert!(deliveries.iter().all(|d| !d.delivered && d.error.is_some()));
    let after = keyfire::record::read_entries(&path).unwrap();
    assert_eq!(after.iter().filter(|e| e.kind == "notification").count(), 3);
}

#[test]
fn a_drill_notifies_only_with_notify_and_says_drill() {
    let r = Receivers::start();
    let env = TestEnv::with_inventory_extra(&r.inventory(r#"["incident", "drill"]"#));
    let quiet = r.run(&env, &["drill", "support-llm"]);
    assert!(quiet.status.code().is_some(), "{}", stderr(&quiet));
    assert!(r.slack.received().is_empty());
    assert!(r.pd.received().is_empty());
    assert!(r.hook.received().is_empty());
    let ids = env.incident_ids();
    let entries = env.entries(ids.last().unwrap());
    assert!(entries.iter().all(|e| e.kind != "notification"));

    let loud = r.run(&env, &["drill", "support-llm", "--notify"]);
    assert!(loud.status.code().is_some(), "{}", stderr(&loud));
    let slack = r.slack.received();
    assert!(!slack.is_empty());
    for m in &slack {
        let text = m.json().unwrap()["text"].as_str().unwrap().to_string();
        assert!(text.starts_with("[DRILL] "), "{text}");
        assert!(text.contains("This is a DRILL"), "{text}");
    }
    for (_, body) in assert_webhooks_signed(&r.hook) {
        assert_eq!(body["drill"], true);
        assert_eq!(body["severity"], "info");
    }
    for body in assert_pagerduty_valid(&r.pd) {
        if body["event_action"] == "trigger" {
            assert_eq!(body["payload"]["severity"], "info");
            assert!(
                body["payload"]["summary"]
                    .as_str()
                    .unwrap()
                    .starts_with("[DRILL]")
            );
        }
    }
    // A notifier not routed "drill" hears nothing of drills, even with --notify.
    let r2 = Receivers::start();
    let env2 = TestEnv::with_inventory_extra(&r2.inventory(r#"["incident"]"#));
    let out = r2.run(&env2, &["drill", "support-llm", "--notify"]);
    assert!(out.status.code().is_some());
    assert!(r2.hook.received().is_empty() && r2.slack.received().is_empty());
}

#[test]
fn notify_test_sends_to_each_notifier_and_reports_its_answer() {
    let r = Receivers::start();
    let env = TestEnv::with_inventory_extra(&r.inventory(r#"["finding"]"#));
    let out = r.run(&env, &["notify", "test"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("3 of 3 test messages delivered"),
        "{}",
        stdout(&out)
    );
    assert_eq!(r.slack.received().len(), 1);
    assert_eq!(assert_webhooks_signed(&r.hook)[0].0, "test");
    // PagerDuty: a test alert is triggered at info severity.
    let pd = assert_pagerduty_valid(&r.pd);
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["payload"]["severity"], "info");

    r.slack.set_reply(Reply::Status(404));
    let one = r.run(&env, &["notify", "test", "oncall-slack"]);
    assert_eq!(one.status.code(), Some(1), "{}", stdout(&one));
    assert!(
        stdout(&one).contains("oncall-slack test: NOT delivered"),
        "{}",
        stdout(&one)
    );
    assert!(stdout(&one).contains("0 of 1"));
    assert_no_canary(
        &env,
        &[("stdout", stdout(&one)), ("stderr", stderr(&one))],
        &[PD_KEY],
    );

    let unknown = r.run(&env, &["notify", "test", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("unknown notifier `nope`"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn audit_notify_sends_findings_and_respond_opens_an_incident() {
    let r = Receivers::start();
    let env = TestEnv::with_inventory_extra(&r.inventory(r#"["incident", "finding"]"#));
    env.plant_usage_spike();
    let out = r.run(&env, &["audit", "--all", "--notify"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let hooks = assert_webhooks_signed(&r.hook);
    let finding = hooks
        .iter()
        .find(|(e, b)| e == "audit.findings" && b["detail"]["key"] == "support-llm")
        .expect("the volume finding is sent");
    assert_eq!(finding.1["detail"]["rules"][0]["rule"], "volume");
    assert!(
        env.incident_ids().is_empty(),
        "--notify alone opens nothing"
    );
    assert!(stdout(&out).contains("notification: hook audit.findings: delivered"));

    // --respond without a terminal and without --yes: refused before anything is opened.
    let refused = r.run(&env, &["audit", "--all", "--respond"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
    assert!(env.incident_ids().is_empty());

    let responded = r.run(&env, &["audit", "--all", "--respond", "--yes"]);
    assert_eq!(
        responded.status.code(),
        Some(1),
        "findings still exit 1: {}",
        stdout(&responded)
    );
    let ids = env.incident_ids();
    assert_eq!(
        ids.len(),
        1,
        "one incident, for the key with a volume finding"
    );
    let entries = env.entries(&ids[0]);
    assert_eq!(entries[0].data["keys"][0], "support-llm");
    assert!(
        entries[0].data["reason"]
            .as_str()
            .unwrap()
            .contains("volume")
    );
    assert!(
        entries
            .iter()
            .any(|e| e.kind == "incident_closed" && e.data["outcome"] == "completed")
    );
    assert!(
        !env.api.accepts(&env.canaries.old_key),
        "the key was revoked"
    );
    let hooks = assert_webhooks_signed(&r.hook);
    assert!(
        hooks
            .iter()
            .any(|(e, b)| e == "incident.opened" && b["incident"] == ids[0].as_str())
    );
    assert!(
        hooks
            .iter()
            .any(|(e, b)| e == "audit.findings" && b["detail"]["incident"] == ids[0].as_str())
    );
}

const BASE: &str = r#"schema = 1

[[agents]]
id = "bot"
owner = "team@example.com"

[[providers]]
id = "p"
kind = "manual"

[[keys]]
id = "k"
agents = ["bot"]
provider = "p"
"#;

fn problems(extra: &str) -> Vec<keyfire::inventory::Problem> {
    match keyfire::inventory::load_str(std::path::Path::new("inv.toml"), &format!("{BASE}{extra}"))
    {
        Ok(_) => Vec::new(),
        Err(keyfire::inventory::InventoryError::Invalid(p)) => p,
        Err(e) => panic!("{e}"),
    }
}

/// The line of `needle` in BASE + extra (1-based).
fn line_of(extra: &str, needle: &str) -> usize {
    let text = format!("{BASE}{extra}");
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn notifiers_load_with_their_routes_agents_and_references() {
    let extra = r#"
[policy]
respond_to = ["volume", "auth_failures"]
notify_timeout_seconds = 3

[[notifiers]]
id = "slack"
kind = "slack"
url = "keyring:slack-webhook"
route = ["incident", "drill"]
agents = ["bot"]
owners = true

[[notifiers]]
id = "pd"
kind = "pagerduty"
routing_key = "env:PD_KEY"

[[notifiers]]
id = "hook"
kind = "webhook"
url = "https://hooks.example.com/keyfire"
secret = "env:HOOK_SECRET"
route = ["finding", "rotation"]
"#;
    let inv =
        keyfire::inventory::load_str(std::path::Path::new("inv.toml"), &format!("{BASE}{extra}"))
            .unwrap();
    use keyfire::inventory::{CredentialRef, Endpoint, NotifierKind, Route};
    assert_eq!(inv.policy.respond_to, ["volume", "auth_failures"]);
    assert_eq!(inv.policy.notify_timeout_seconds, 3);
    let slack = inv.notifier("slack").unwrap();
    assert_eq!(slack.kind, NotifierKind::Slack);
    assert_eq!(
        slack.url,
        Some(Endpoint::Secret(CredentialRef::Keyring {
            name: "slack-webhook".into()
        }))
    );
    assert_eq!(slack.routes, [Route::Incident, Route::Drill]);
    assert!(slack.owners);
    assert_eq!(slack.agents, ["bot"]);
    let pd = inv.notifier("pd").unwrap();
    assert_eq!(pd.routes, [Route::Incident], "the default route");
    assert!(pd.url.is_none(), "PagerDuty's own endpoint by default");
    let hook = inv.notifier("hook").unwrap();
    assert_eq!(
        hook.url,
        Some(Endpoint::Url("https://hooks.example.com/keyfire".into()))
    );
    // Without a [policy] respond_to, the guide's two rules.
    let plain = keyfire::inventory::load_str(std::path::Path::new("inv.toml"), BASE).unwrap();
    assert_eq!(plain.policy.respond_to, ["volume", "network"]);
}

#[test]
fn bad_notifiers_are_reported_with_file_line_and_column_and_no_secret() {
    let slack_url = "https://hooks.slack.com/services/T0AAAA/B0BBBB/CANARYplainslackurl123";
    let extra = format!(
        r#"
[[notifiers]]
id = "plain-slack"
kind = "slack"
url = "{slack_url}"

[[notifiers]]
id = "pd"
kind = "pagerduty"
secret = "env:X"

[[notifiers]]
id = "hook"
kind = "webhook"
url = "http://hooks.example.com/x"
secret = "env:S"
route = ["incident", "pager"]
agents = ["ghost"]
colour = "red"

[[notifiers]]
id = "teams"
kind = "teams"
"#
    );
    let p = problems(&extra);
    let text: Vec<String> = p.iter().map(ToString::to_string).collect();
    let all = text.join("\n");
    assert!(!all.contains("CANARYplainslackurl"), "{all}");
    let find = |needle: &str| {
        p.iter()
            .find(|x| x.message.contains(needle))
            .unwrap_or_else(|| panic!("no problem saying {needle:?} in\n{all}"))
    };
    let slack = find("incoming-webhook URL is itself a secret");
    assert_eq!(slack.line, line_of(&extra, "url = \"https://hooks.slack"));
    assert_eq!(slack.column, 7);
    assert_eq!(slack.path, std::path::Path::new("inv.toml"));
    let pd = find("needs routing_key");
    assert_eq!(pd.line, line_of(&extra, "id = \"pd\""));
    let pd_secret = find("takes no secret");
    assert_eq!(pd_secret.line, line_of(&extra, "secret = \"env:X\""));
    assert_eq!(
        find("plain http://").line,
        line_of(&extra, "http://hooks.example.com")
    );
    let route = find("unknown route \"pager\"");
    assert_eq!(
        route.line,
        line_of(&extra, "route = [\"incident\", \"pager\"]")
    );
    assert_eq!(route.column, 22);
    assert_eq!(
        find("agent `ghost`").line,
        line_of(&extra, "agents = [\"ghost\"]")
    );
    assert_eq!(
        find("unknown field `colour`").line,
        line_of(&extra, "colour")
    );
    assert_eq!(
        find("unknown notifier kind \"teams\"").line,
        line_of(&extra, "kind = \"teams\"")
    );

    let bad_rule = problems("\n[policy]\nrespond_to = [\"volume\", \"vibes\"]\n");
    assert!(
        bad_rule[0]
            .message
            .contains("unknown rule \"vibes\" in respond_to"),
        "{bad_rule:?}"
    );
}

#[test]
fn a_bad_notifier_stops_every_command_with_exit_2() {
    let env = TestEnv::with_inventory_extra(
        "\n[[notifiers]]\nid = \"s\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T0/B0/CANARYcliSlackUrl42\"\n",
    );
    for args in [
        vec!["inventory", "list"],
        vec!["notify", "test"],
        vec!["incident", "start", "support-llm", "--yes"],
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("inventory.toml:"), "{err}");
        assert!(err.contains("is itself a secret"), "{err}");
        assert!(
            !err.contains("CANARYcliSlackUrl42") && !stdout(&out).contains("CANARYcliSlackUrl42")
        );
    }
    assert!(env.incident_ids().is_empty());
}

#[test]
fn pagerduty_summaries_are_cut_to_1024_characters_and_stay_valid() {
    use keyfire::notify::{Detail, Event, Message, pagerduty};
    let inv = keyfire::inventory::load_str(std::path::Path::new("inv.toml"), BASE).unwrap();
    let keys: Vec<keyfire::notify::KeyBlast> = (0..400)
        .map(|i| keyfire::notify::KeyBlast {
            key: format!("a-rather-long-key-name-number-{i:04}"),
            provider: "p".into(),
            agents: vec!["bot".into()],
            other_keys: Vec::new(),
        })
        .collect();
    let detail = Detail::IncidentOpened {
        keys,
        order: "contain_first".into(),
        started_by: "tester".into(),
        reason: None,
    };
    let mut event = Event::new(detail, chrono::Utc::now()).in_incident(&"i".repeat(300), false);
    // A title far past the limit, and a dedup key past 255.
    if let Detail::IncidentOpened { keys, .. } = &mut event.detail {
        keys[0].key = "x".repeat(3000);
    }
    let msg = Message::render(&event, &inv, true, &keyfire::secret::Redactor::new());
    assert!(msg.title.chars().count() > 1024);
    let action = pagerduty::action(&event).unwrap();
    let dedup = pagerduty::dedup_key(&event, "pd");
    let out = pagerduty::request(
        pagerduty::DEFAULT_URL,
        &keyfire::secret::Secret::new("routing-key-0123456789"),
        action,
        &dedup,
        &msg,
    );
    let body: serde_json::Value = serde_json::from_str(out.body.expose()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(include_str!(
        "../fixtures/spec/pagerduty/events-v2-request.schema.json"
    ))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        body["payload"]["summary"].as_str().unwrap().chars().count(),
        1024
    );
    assert_eq!(body["dedup_key"].as_str().unwrap().chars().count(), 255);
    assert_eq!(body["event_action"], "trigger");
    // The schema itself refuses what PagerDuty refuses.
    let mut long = body.clone();
    long["payload"]["summary"] = serde_json::Value::String("s".repeat(1025));
    assert!(!validator.is_valid(&long));
    let mut no_dedup = body.clone();
    no_dedup["event_action"] = "resolve".into();
    no_dedup.as_object_mut().unwrap().remove("dedup_key");
    assert!(!validator.is_valid(&no_dedup));
}

#[test]
fn the_training_environment_pages_its_oncall_channel() {
    let env = TestEnv::new();
    let out = env.run(&["demo", "--no-tui"]);
    let text = stdout(&out);
    assert!(
        text.contains("The on-call channel (a loopback Slack stand-in) received"),
        "{text}"
    );
    assert!(
        text.contains("leaked key response started for support-openai"),
        "{text}"
    );
    assert!(
        text.contains("notification: training-oncall incident.closed: delivered (HTTP 200)"),
        "{text}"
    );
    assert!(
        !text.contains("/services/TTRAINING/"),
        "the webhook URL is a secret"
    );
}

#[test]
fn a_failed_scheduled_rotation_is_sent_to_the_rotation_route_only() {
    use keyfire::sim::Fault;
    let r = Receivers::start();
    let env = TestEnv::with_inventory_extra(&r.inventory(r#"["rotation"]"#));
    env.api
        .inject(Fault::fail("POST", "/v1/keys", 500, 5).exact());
    let out = r.run(&env, &["rotate", "support-llm", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let hooks = assert_webhooks_signed(&r.hook);
    let names: Vec<&str> = hooks.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        ["rotation.failed"],
        "a rotation sends only its failure"
    );
    assert_eq!(hooks[0].1["detail"]["key"], "support-llm");
    assert!(
        hooks[0].1["text"]
            .as_str()
            .unwrap()
            .contains("The old key was not revoked")
    );
    let pd = assert_pagerduty_valid(&r.pd);
    assert_eq!(pd.len(), 1);
    assert_eq!(pd[0]["payload"]["severity"], "error");
    assert_eq!(r.slack.received().len(), 1);

    // A successful rotation, and notifiers not routed "rotation", hear nothing.
    let r2 = Receivers::start();
    let env2 = TestEnv::with_inventory_extra(&r2.inventory(r#"["incident", "finding"]"#));
    env2.api
        .inject(Fault::fail("POST", "/v1/keys", 500, 5).exact());
    let failed = r2.run(&env2, &["rotate", "support-llm", "--yes"]);
    assert_eq!(failed.status.code(), Some(1));
    let ok = r.run(&env, &["rotate", "research-llm", "--yes"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert_eq!(
        r.hook.received().len(),
        1,
        "nothing for the rotation that worked"
    );
    assert!(
        r2.hook.received().is_empty()
            && r2.slack.received().is_empty()
            && r2.pd.received().is_empty()
    );
}
