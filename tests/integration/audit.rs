//! Audit: each rule on crafted data (fires, stays quiet, or says it cannot see), gateway log
//! formats, the `audit` command, the breach report and scheduled rotation.

use std::io::Write;
use std::net::IpAddr;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use keyfire::audit::logs::{self, KeyMatch};
use keyfire::audit::{Evaluator, Event, Expectations, RuleStatus, SourceInfo, Window};
use keyfire::inventory::ActiveHours;
use keyfire::sim::Fault;

use crate::common::{OLD_PATH, TestEnv, stderr, stdout};

fn t(d: i64, h: u32) -> DateTime<Utc> {
    // Day 0 is Monday 2026-11-02.
    Utc.with_ymd_and_hms(2026, 11, 2, h, 0, 0).unwrap() + Duration::days(d)
}

fn window() -> Window {
    Window {
        baseline_start: t(0, 0),
        start: t(14, 0),
        end: t(17, 0),
    }
}

fn expect() -> Expectations {
    Expectations {
        networks: vec!["203.0.113.0/24".parse().unwrap()],
        active_hours: vec![ActiveHours {
            days: vec![
                chrono::Weekday::Mon,
                chrono::Weekday::Tue,
                chrono::Weekday::Wed,
                chrono::Weekday::Thu,
                chrono::Weekday::Fri,
            ],
            start: NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
        }],
        volume_factor: 3.0,
        auth_failure_threshold: 10,
    }
}

fn gateway() -> SourceInfo {
    SourceInfo {
        name: "gateway".into(),
        addresses: true,
        statuses: true,
        models: true,
        per_request: true,
    }
}

fn req(ts: DateTime<Utc>, ip: &str, status: u16, model: &str) -> Event {
    Event {
        ts,
        until: None,
        source_ip: Some(ip.parse::<IpAddr>().unwrap()),
        status: Some(status),
        model: Some(model.into()),
        requests: 1,
        tokens: 100,
        cost_usd: 0.01,
    }
}

/// A normal fortnight and window: weekdays 09:00-17:00, 20 requests an hour, from the
/// expected network, one model.
fn normal(eval: &mut Evaluator) {
    for d in 0..17 {
        if matches!(d % 7, 5 | 6) {
            continue;
        }
        for h in 9..17 {
            for _ in 0..20 {
                eval.feed(&req(t(d, h), "203.0.113.7", 200, "gpt-4o-mini"));
            }
        }
    }
}

fn run(extra: impl Fn(&mut Evaluator)) -> Vec<(String, RuleStatus, Vec<String>)> {
    let mut eval = Evaluator::new(window(), expect());
    eval.source(gateway());
    normal(&mut eval);
    extra(&mut eval);
    eval.finish()
        .rules
        .into_iter()
        .map(|r| (r.rule.to_string(), r.status, r.findings))
        .collect()
}

fn status(rules: &[(String, RuleStatus, Vec<String>)], rule: &str) -> RuleStatus {
    rules.iter().find(|r| r.0 == rule).unwrap().1
}

#[test]
fn a_normal_week_is_clean_on_every_rule() {
    let rules = run(|_| {});
    for (rule, s, f) in &rules {
        assert_eq!(*s, RuleStatus::Clean, "{rule}: {f:?}");
    }
}

#[test]
fn volume_fires_on_a_spike() {
    let rules = run(|e| {
        for _ in 0..3000 {
            e.feed(&req(t(15, 10), "203.0.113.7", 200, "gpt-4o-mini"));
        }
    });
    assert_eq!(status(&rules, "volume"), RuleStatus::Findings);
    assert_eq!(status(&rules, "network"), RuleStatus::Clean);
}

#[test]
fn network_fires_on_a_foreign_address() {
    let rules = run(|e| e.feed(&req(t(15, 10), "198.51.100.66", 200, "gpt-4o-mini")));
    assert_eq!(status(&rules, "network"), RuleStatus::Findings);
    let f = &rules.iter().find(|r| r.0 == "network").unwrap().2;
    assert!(f[0].starts_with("198.51.100.66: 1 requests"), "{f:?}");
}

#[test]
fn auth_failures_fire_at_the_threshold_only() {
    let nine =
        run(|e| (0..9).for_each(|_| e.feed(&req(t(15, 10), "203.0.113.7", 401, "gpt-4o-mini"))));
    assert_eq!(status(&nine, "auth_failures"), RuleStatus::Clean);
    let ten =
        run(|e| (0..10).for_each(|_| e.feed(&req(t(15, 10), "203.0.113.9", 403, "gpt-4o-mini"))));
    assert_eq!(status(&ten, "auth_failures"), RuleStatus::Findings);
}

#[test]
fn off_hours_fires_at_night_and_on_weekends() {
    let rules = run(|e| e.feed(&req(t(15, 3), "203.0.113.7", 200, "gpt-4o-mini")));
    assert_eq!(status(&rules, "off_hours"), RuleStatus::Findings);
    // Day 19 is a Saturday, outside the window end: nothing. Day 16 at noon is fine.
    let rules = run(|e| e.feed(&req(t(16, 12), "203.0.113.7", 200, "gpt-4o-mini")));
    assert_eq!(status(&rules, "off_hours"), RuleStatus::Clean);
}

#[test]
fn new_model_fires_for_a_model_never_seen_in_the_baseline() {
    let rules = run(|e| e.feed(&req(t(15, 10), "203.0.113.7", 200, "o1-pro")));
    assert_eq!(status(&rules, "new_model"), RuleStatus::Findings);
}

#[test]
fn rules_say_not_evaluable_when_no_source_can_see() {
    // Provider usage buckets: volume only.
    let mut eval = Evaluator::new(window(), expect());
    eval.source(SourceInfo::provider_usage("openai-prod"));
    for d in 0..17 {
        eval.feed(&Event::bucket(t(d, 0), t(d + 1, 0), 200, 1000, 1.0));
    }
    let s = eval.finish();
    let by = |r: &str| s.rules.iter().find(|x| x.rule == r).unwrap().clone();
    assert_eq!(by("volume").status, RuleStatus::Clean);
    for rule in ["network", "auth_failures", "off_hours", "new_model"] {
        assert_eq!(by(rule).status, RuleStatus::NotEvaluable, "{rule}");
        assert!(
            by(rule).source.contains("gateway logs"),
            "{}",
            by(rule).source
        );
    }
    // No source at all: nothing is evaluable, nothing is clean.
    let s = Evaluator::new(window(), expect()).finish();
    assert!(s.rules.iter().all(|r| r.status == RuleStatus::NotEvaluable));
    // Agents without declared networks or hours.
    let mut e = Evaluator::new(
        window(),
        Expectations {
            networks: vec![],
            active_hours: vec![],
            ..expect()
        },
    );
    e.source(gateway());
    normal(&mut e);
    let s = e.finish();
    assert_eq!(s.rules[1].status, RuleStatus::NotEvaluable);
    assert!(s.rules[1].source.contains("expected_networks"));
    assert_eq!(s.rules[3].status, RuleStatus::NotEvaluable);
}

#[test]
fn gateway_logs_read_jsonl_csv_and_litellm_spend_logs() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("gw.jsonl");
    std::fs::write(
        &jsonl,
        "{\"timestamp\":\"2026-11-20T03:04:05Z\",\"key_id\":\"support-llm\",\"source_ip\":\"198.51.100.1\",\"status\":401,\"model\":\"gpt-4o\",\"tokens\":50,\"cost\":0.5}\n\
         {\"timestamp\":1795000000,\"key_id\":\"other-key\",\"status\":200}\n\n",
    )
    .unwrap();
    let csv = dir.path().join("gw.csv");
    std::fs::write(&csv, "timestamp,key_id,source_ip,status,model,tokens,cost\n2026-11-20 03:04:05,support-llm,198.51.100.2,200,gpt-4o,10,0.1\n").unwrap();
    let litellm = dir.path().join("spend.jsonl");
    std::fs::write(
        &litellm,
        "{\"request_id\":\"r1\",\"call_type\":\"acompletion\",\"api_key\":\"88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b\",\"spend\":0.25,\"total_tokens\":300,\"prompt_tokens\":200,\"completion_tokens\":100,\"startTime\":\"2026-11-20T03:04:05.123\",\"endTime\":\"2026-11-20T03:04:06\",\"model\":\"gpt-4o\",\"requester_ip_address\":\"198.51.100.3\",\"status\":\"success\",\"metadata\":{}}\n",
    )
    .unwrap();
    let m = KeyMatch::new(
        "support-llm",
        Some("88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"),
        None,
    );
    let mut got = Vec::new();
    for p in [&jsonl, &csv, &litellm] {
        logs::read(p, &m, |e| got.push(e.clone())).unwrap();
    }
    assert_eq!(got.len(), 3, "the other key's line is skipped: {got:?}");
    assert_eq!(got[0].status, Some(401));
    assert_eq!(got[0].source_ip, Some("198.51.100.1".parse().unwrap()));
    assert_eq!(got[1].tokens, 10);
    assert_eq!(got[2].cost_usd, 0.25);
    assert_eq!(got[2].tokens, 300);
    assert_eq!(got[2].status, Some(200));
    assert_eq!(got[2].source_ip, Some("198.51.100.3".parse().unwrap()));

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"timestamp\":\"2026-11-20T03:04:05Z\"}\n{\"timestamp\":\"yesterday\"}\n",
    )
    .unwrap();
    let err = logs::read(&bad, &m, |_| {}).unwrap_err().to_string();
    assert!(
        err.ends_with(":2: timestamp is not RFC 3339, `YYYY-MM-DD HH:MM:SS` or Unix seconds"),
        "{err}"
    );
}

fn write_log(env: &TestEnv, name: &str, lines: &[String]) -> std::path::PathBuf {
    let path = env.dir.path().join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    path
}

#[test]
fn audit_command_exits_1_when_a_rule_fires_and_0_when_clean() {
    let env = TestEnv::new();
    let now = Utc::now();
    let line = |ts: DateTime<Utc>, ip: &str| {
        format!(
            "{{\"timestamp\":\"{}\",\"key_id\":\"sales-crm\",\"source_ip\":\"{ip}\",\"status\":200,\"model\":\"crm.read\"}}",
            ts.to_rfc3339()
        )
    };
    let clean = write_log(
        &env,
        "clean.jsonl",
        &[
            line(now - Duration::days(5), "10.0.0.1"),
            line(now - Duration::hours(2), "10.0.0.1"),
        ],
    );
    let out = env.run(&[
        "audit",
        "sales-crm",
        "--since",
        &(now - Duration::days(1)).to_rfc3339(),
        "--logs",
        clean.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("network        not evaluable"),
        "{}",
        stdout(&out)
    );

    let json = env.run(&[
        "audit",
        "sales-crm",
        "--json",
        "--since",
        &(now - Duration::days(1)).to_rfc3339(),
        "--logs",
        clean.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["summary"]["rules"][4]["rule"], "new_model");
    assert_eq!(v[0]["summary"]["rules"][4]["status"], "clean");

    let mut lines = vec![line(now - Duration::days(5), "10.0.0.1")];
    lines.push(line(now - Duration::hours(3), "10.0.0.1").replace("crm.read", "crm.export_all"));
    let noisy = write_log(&env, "noisy.jsonl", &lines);
    let out = env.run(&[
        "audit",
        "sales-crm",
        "--since",
        &(now - Duration::days(1)).to_rfc3339(),
        "--logs",
        noisy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("crm.export_all: 1 requests, never used in the baseline"),
        "{}",
        stdout(&out)
    );

    let missing = env.run(&["audit", "sales-crm", "--logs", "/nonexistent.jsonl"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn audit_all_reads_provider_usage_for_every_key() {
    let env = TestEnv::new();
    let now = Utc::now();
    let day = |d: i64| now - Duration::days(d);
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
    env.api.set_usage(&env.old_key_id, buckets);
    let out = env.run(&["audit", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let support = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "support-llm")
        .unwrap();
    assert_eq!(
        support["summary"]["rules"][0]["status"], "findings",
        "{support}"
    );
    assert!(
        env.api.requests().iter().all(|r| !r.is_write()),
        "audit only reads"
    );
}

#[test]
fn breach_report_has_every_section_matches_the_record_and_the_schema() {
    let env = TestEnv::new();
    let out = env.run(&[
        "incident",
        "start",
        "support-llm",
        "--yes",
        "--reason",
        "pasted in a gist",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let id = env.incident_ids().pop().unwrap();
    let json = env.run(&["report", &id, "--format", "json"]);
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let schema: serde_json::Value = serde_json::from_str(keyfire::report::JSON_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");

    let entries = env.entries(&id);
    let facts = entries
        .iter()
        .rev()
        .find_map(|e| e.data.get("facts"))
        .unwrap();
    let k = &report["keys"][0];
    assert_eq!(report["incident"]["reason"], "pasted in a gist");
    assert_eq!(report["incident"]["status"], "completed");
    assert_eq!(k["evidence"]["revoked"], true);
    assert_eq!(k["evidence"]["old_key_rejected"], true);
    assert_eq!(k["evidence"]["old_key_status"], 401);
    assert_eq!(k["evidence"]["new_key_id"], facts["new_key_id"]);
    assert_eq!(k["evidence"]["store_version"], facts["new_version"]);
    assert_eq!(k["evidence"]["new_key_verified"], true);
    assert_eq!(report["record"]["entries"], entries.len());
    assert_eq!(
        report["record"]["last_hash"],
        entries.last().unwrap().hash.as_str()
    );
    let opened = DateTime::parse_from_rfc3339(&entries[0].ts).unwrap();
    let deadline =
        DateTime::parse_from_rfc3339(report["notification"]["deadline"].as_str().unwrap()).unwrap();
    assert_eq!((deadline - opened).num_hours(), 72);

    let md = stdout(&env.run(&["report", &id]));
    for section in [
        "## Summary",
        "### Exposure window",
        "First suspicious use",
        "### Findings",
        "### Spend",
        "### Evidence",
        "### Customer data",
        "notification deadline",
        "## Timeline",
        "## Sign-off",
    ] {
        assert!(md.contains(section), "missing {section}:\n{md}");
    }
    assert!(md.contains("old key rejected by the provider (HTTP 401)"));
    // Written beside the record too.
    assert!(env.record_path(&id).with_file_name("report.json").exists());
}

#[test]
fn rotate_due_rotates_exactly_the_due_keys_and_survives_a_failure() {
    let env = TestEnv::new();
    let ops_old = "fk-opsOLDvalue000000000000000000000000";
    let ops_id = env.api.add_key("ops", ops_old);
    env.vault.put("agents/ops/llm", "value", ops_old);
    let mut text = std::fs::read_to_string(env.inventory_path()).unwrap();
    text.push_str(&format!(
        "\n[[keys]]\nid = \"ops-llm\"\nagents = [\"support-bot\"]\nprovider = \"llm\"\nprovider_key_id = \"{ops_id}\"\nstore = \"vault\"\nsecret_path = \"agents/ops/llm\"\nlast_rotated = 2026-01-01\n"
    ));
    std::fs::write(env.inventory_path(), &text).unwrap();
    // support-llm comes first and its replacement cannot be created.
    env.api
        .inject(Fault::fail("POST", "/v1/keys", 500, 5).exact());
    let out = env.run(&["rotate", "--due", "--yes"]);
    let text_out = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text_out}");
    assert!(text_out.contains("1 of 2 keys rotated"), "{text_out}");
    assert!(text_out.contains("FAILED support-llm"), "{text_out}");
    // The failed key still works; the other was rotated in the safe order.
    assert!(
        env.api.accepts(&env.canaries.old_key),
        "a failed rotation leaves the old key working"
    );
    assert!(!env.api.accepts(ops_old));
    assert_eq!(env.vault.version("agents/ops/llm"), 2);
    assert_eq!(
        env.vault.version(OLD_PATH),
        2,
        "nothing stored for the failed key"
    );
    // Keys not due were not touched.
    assert!(
        !env.api
            .requests()
            .iter()
            .any(|r| r.path.contains(&env.other_key_id))
    );
    let inv = std::fs::read_to_string(env.inventory_path()).unwrap();
    let today = Utc::now().date_naive();
    assert!(
        inv.contains(&format!("last_rotated = {today}\n")),
        "ops-llm rescheduled"
    );
    assert!(
        inv.contains("last_rotated = 2026-02-01   # rotated"),
        "support-llm unchanged"
    );
    assert!(
        !inv.lines().any(|l| l == "rotation_days = 30"),
        "a scheduled rotation keeps the interval"
    );
    let list = env.run(&["incident", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|i| i["kind"] == "rotation")
    );
    // The order was create, store, verify, then revoke.
    let rot = v
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["keys"][0] == "ops-llm")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let entries = env.entries(&rot);
    let pos = |a: &str| {
        entries
            .iter()
            .position(|e| e.kind == "action_done" && e.data["action"] == a)
            .unwrap()
    };
    assert!(
        pos("create") < pos("store_write")
            && pos("store_write") < pos("verify_new")
            && pos("verify_new") < pos("revoke")
    );
    assert!(
        !entries.iter().any(|e| e.step.as_deref() == Some("audit")),
        "rotations skip the audit"
    );
}

#[test]
fn a_rotation_that_fails_after_create_revokes_its_replacement() {
    let env = TestEnv::new();
    let before = env.vault.version(OLD_PATH);
    // The store refuses the write once (a write is never retried blindly).
    env.vault
        .observer()
        .inject(Fault::fail("POST", "/v1/secret/data/", 500, 1));
    let out = env.run(&["rotate", "support-llm", "--yes"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        env.api.accepts(&env.canaries.old_key),
        "the old key keeps working"
    );
    assert_eq!(env.vault.version(OLD_PATH), before, "nothing was stored");
    let live: Vec<_> = env
        .api
        .live_keys()
        .into_iter()
        .filter(|k| k.name.starts_with("keyfire-"))
        .collect();
    assert!(
        live.is_empty(),
        "no unknown replacement stays live: {live:?}"
    );
    assert!(
        text.contains("revoking the replacement, the old key stays in use"),
        "{text}"
    );
}
