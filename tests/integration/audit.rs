//! Audit: each rule on crafted data (fires, stays quiet, or says it cannot see), gateway log
//! formats, the `audit` command, the breach report and scheduled rotation.

use std::io::Write;
use std::net::IpAddr;

use chrono::Datelike as _;
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use keyfire::audit::logs::{self, KeyMatch, OnBadLine};
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
            timezone: None,
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
        cost_usd: Some(0.01),
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
    // Day 16 (a Wednesday) at noon is within the agents' hours.
    let rules = run(|e| e.feed(&req(t(16, 12), "203.0.113.7", 200, "gpt-4o-mini")));
    assert_eq!(status(&rules, "off_hours"), RuleStatus::Clean);
    // A window over a weekend: day 12 is Saturday 14 November. Noon is within the hours of
    // the day but not within the days.
    let weekend = |hour: u32| {
        let mut eval = Evaluator::new(
            Window {
                baseline_start: t(0, 0),
                start: t(12, 0),
                end: t(17, 0),
            },
            expect(),
        );
        eval.source(gateway());
        normal(&mut eval);
        eval.feed(&req(t(12, hour), "203.0.113.7", 200, "gpt-4o-mini"));
        eval.finish()
            .rules
            .into_iter()
            .find(|r| r.rule == "off_hours")
            .unwrap()
    };
    assert_eq!(t(12, 12).weekday(), chrono::Weekday::Sat);
    let saturday = weekend(12);
    assert_eq!(
        saturday.status,
        RuleStatus::Findings,
        "{:?}",
        saturday.findings
    );
    assert_eq!(saturday.findings.len(), 1, "{:?}", saturday.findings);
}

/// Active hours are read on the agents' wall clock: 09:00 in Berlin is 07:00 UTC in summer and
/// 08:00 UTC in winter, and an agent may name its own zone over the policy's.
#[test]
fn off_hours_follow_the_agents_time_zone_across_daylight_saving_time() {
    let inv = keyfire::inventory::load_str(
        std::path::Path::new("inventory.toml"),
        r#"schema = 1
[policy]
timezone = "Europe/Berlin"

[[providers]]
id = "p"
kind = "fake"
base_url = "http://127.0.0.1:9"
admin_credential = "env:UNUSED"

[[agents]]
id = "berlin"
active_hours = { days = "mon-fri", start = "09:00", end = "17:00" }

[[agents]]
id = "new-york"
active_hours = { days = "mon-fri", start = "09:00", end = "17:00", timezone = "America/New_York" }

[[keys]]
id = "k-berlin"
agents = ["berlin"]
provider = "p"
provider_key_id = "key-1"

[[keys]]
id = "k-new-york"
agents = ["new-york"]
provider = "p"
provider_key_id = "key-2"
"#,
    )
    .unwrap();
    let hours = |key: &str| {
        let e = keyfire::audit::expectations(&inv, inv.key(key).unwrap());
        assert_eq!(e.active_hours.len(), 1);
        e.active_hours[0].clone()
    };
    let at = |y, m, d, h, min| Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap();
    let berlin = hours("k-berlin");
    let utc = chrono_tz::Tz::UTC;
    // Wednesday 1 July 2026, CEST (UTC+2): 07:30 UTC is 09:30 in Berlin.
    assert!(berlin.contains_at(at(2026, 7, 1, 7, 30), utc));
    // Tuesday 1 December 2026, CET (UTC+1): 07:30 UTC is 08:30 in Berlin, before the start.
    assert!(!berlin.contains_at(at(2026, 12, 1, 7, 30), utc));
    assert!(berlin.contains_at(at(2026, 12, 1, 8, 30), utc));
    // Friday 16:30 in Berlin is in; Saturday 00:30 in Berlin (Friday 22:30 UTC) is not.
    assert!(berlin.contains_at(at(2026, 12, 4, 15, 30), utc));
    assert!(!berlin.contains_at(at(2026, 12, 4, 23, 30), utc));
    let new_york = hours("k-new-york");
    // 14:00 UTC is 09:00 in New York in winter (EST, UTC-5), 10:00 in summer (EDT).
    assert!(new_york.contains_at(at(2026, 12, 1, 14, 0), utc));
    assert!(!new_york.contains_at(at(2026, 12, 1, 13, 30), utc));
    assert!(new_york.contains_at(at(2026, 7, 1, 13, 30), utc));

    // The finding names the agents' wall-clock time and UTC.
    let mut eval = Evaluator::new(
        window(),
        keyfire::audit::expectations(&inv, inv.key("k-berlin").unwrap()),
    );
    eval.source(gateway());
    eval.feed(&req(t(15, 3), "203.0.113.7", 200, "gpt-4o-mini"));
    let s = eval.finish();
    let off = s.rules.iter().find(|r| r.rule == "off_hours").unwrap();
    assert_eq!(off.status, RuleStatus::Findings);
    assert!(
        off.findings[0].contains("04:00:00 CET (2026-11-17 03:00:00Z)"),
        "{:?}",
        off.findings
    );
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
        logs::read(p, &m, OnBadLine::Stop, |e: &Event| got.push(e.clone())).unwrap();
    }
    assert_eq!(got.len(), 3, "the other key's line is skipped: {got:?}");
    assert_eq!(got[0].status, Some(401));
    assert_eq!(got[0].source_ip, Some("198.51.100.1".parse().unwrap()));
    assert_eq!(got[1].tokens, 10);
    assert_eq!(got[2].cost_usd, Some(0.25));
    assert_eq!(got[2].tokens, 300);
    assert_eq!(got[2].status, Some(200));
    assert_eq!(got[2].source_ip, Some("198.51.100.3".parse().unwrap()));

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"timestamp\":\"2026-11-20T03:04:05Z\"}\n{\"timestamp\":\"yesterday\"}\n",
    )
    .unwrap();
    let err = logs::read(&bad, &m, OnBadLine::Stop, |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(":2: timestamp is not RFC 3339, `YYYY-MM-DD HH:MM:SS` or Unix seconds"),
        "{err}"
    );
}

pub(crate) fn write_log(env: &TestEnv, name: &str, lines: &[String]) -> std::path::PathBuf {
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
    env.plant_usage_spike();
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

// ---- gateway logs as LiteLLM writes them, and logs that say nothing about the key ----------

/// The SHA-256 hex of the virtual key behind `tests/fixtures/litellm_spend_logs.jsonl`'s
/// `api_key` (LiteLLM's `hash_token`): rows r1-r5 and r7 are this key's, r6 another's.
const FIXTURE_KEY: &str = "sk-fixture-litellm-0001";

fn litellm_fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/litellm_spend_logs.jsonl")
}

fn read_all(path: &std::path::Path, m: &KeyMatch) -> Vec<Event> {
    let mut got = Vec::new();
    logs::read(path, m, OnBadLine::Stop, |e: &Event| got.push(e.clone())).unwrap();
    got
}

#[test]
fn litellm_spend_logs_match_by_fingerprint_read_failure_codes_and_forwarded_for_lists() {
    let fp = keyfire::audit::fingerprint::of_value(FIXTURE_KEY);
    let m = KeyMatch::new("litellm-key", None, None).with_fingerprint(&fp);
    let got = read_all(&litellm_fixture(), &m);
    assert_eq!(got.len(), 6, "the other key's row is skipped: {got:?}");
    let statuses: Vec<Option<u16>> = got.iter().map(|e| e.status).collect();
    // success; success; failure with error_information.error_code "401"; failure with
    // metadata.status_code 403; failure without a code (unknown, not a success); success.
    assert_eq!(
        statuses,
        [Some(200), Some(200), Some(401), Some(403), None, Some(200)]
    );
    assert_eq!(
        got[1].source_ip,
        Some("198.51.100.9".parse().unwrap()),
        "the first address of an X-Forwarded-For list"
    );
    assert_eq!(got[5].model.as_deref(), Some("café-model"));
    assert_eq!(got[0].cost_usd, Some(0.0012));
    assert_eq!(got[0].tokens, 150);

    // The same table exported as CSV (psql `\copy ... csv header`): `metadata` is JSON text,
    // times are PostgreSQL's `timestamp(3)` text, with or without an offset.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("spend.csv");
    std::fs::write(
        &csv,
        format!(
            "request_id,api_key,startTime,status,metadata,requester_ip_address,spend\n\
             r1,{fp},2026-11-16 11:00:00.123,failure,\"{{\"\"error_information\"\": {{\"\"error_code\"\": \"\"401\"\"}}}}\",\"198.51.100.9, 10.0.0.1\",0\n\
             r2,{fp},2026-11-16 11:00:01.5+00,success,{{}},203.0.113.7,0.002\n"
        ),
    )
    .unwrap();
    let got = read_all(&csv, &m);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].status, Some(401));
    assert_eq!(got[0].source_ip, Some("198.51.100.9".parse().unwrap()));
    assert_eq!(got[0].ts, t(14, 11) + Duration::milliseconds(123));
    assert_eq!(got[1].status, Some(200));
    assert_eq!(got[1].ts, t(14, 11) + Duration::milliseconds(1500));

    // Through the rules: the failures and the foreign address are findings, not "clean".
    let mut eval = Evaluator::new(
        window(),
        Expectations {
            auth_failure_threshold: 2,
            ..expect()
        },
    );
    let stats = logs::read(&litellm_fixture(), &m, OnBadLine::Stop, |e| eval.feed(e)).unwrap();
    assert_eq!((stats.lines, stats.used), (7, 6));
    eval.log_source(
        logs::source_info(&litellm_fixture()),
        "litellm-key",
        &m,
        &stats,
        stats.used,
    );
    let s = eval.finish();
    let by = |r: &str| s.rules.iter().find(|x| x.rule == r).unwrap().clone();
    assert_eq!(by("auth_failures").status, RuleStatus::Findings);
    assert!(by("auth_failures").findings[0].starts_with("2 failed authentications"));
    assert_eq!(by("network").status, RuleStatus::Findings);
    assert!(by("network").findings[0].starts_with("198.51.100.9: 1 requests"));
    assert_eq!(by("new_model").status, RuleStatus::Findings);
}

#[test]
fn a_fingerprint_from_the_inventory_matches_hashed_keys_and_a_bad_one_is_a_lint_error() {
    let fp = keyfire::audit::fingerprint::of_value(FIXTURE_KEY);
    let env = TestEnv::with_inventory_extra(&format!("fingerprint = \"sha256:{fp}\"\n"));
    let out = env.run(&[
        "audit",
        "sales-crm",
        "--json",
        "--since",
        "2026-11-16T00:00:00Z",
        "--logs",
        litellm_fixture().to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v[0]["summary"];
    assert_eq!(
        s["sources"][0]["name"], "gateway log litellm_spend_logs.jsonl",
        "{s}"
    );
    // Rows r1-r5 and r7 are the key's (r1 in the baseline days, the others in the window).
    assert!(s["events"].as_u64().unwrap() >= 5, "{s}");
    assert!(s.get("notes").is_none(), "{s}");
    for r in s["rules"].as_array().unwrap() {
        assert!(!r["source"].as_str().unwrap().contains("none of"), "{r}");
    }

    // Anything but `sha256:` and 64 lowercase hex digits is refused, with file and line, and
    // without repeating the value (it may be a pasted key).
    for bad in [
        "sk-proj-AbCdEf0123456789".to_string(),
        fp.clone(),
        format!("sha256:{}", fp.to_uppercase()),
        format!("sha256:{fp}00"),
    ] {
        let env = TestEnv::with_inventory_extra(&format!("fingerprint = \"{bad}\"\n"));
        let out = env.run(&["inventory", "lint"]);
        let err = stderr(&out) + &stdout(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("fingerprint must be `sha256:`"), "{err}");
        assert!(err.contains("inventory.toml:"), "{err}");
        assert!(!err.contains(&bad), "the value is echoed: {err}");
    }
}

#[test]
fn a_log_with_no_line_for_the_key_makes_every_rule_not_evaluable() {
    // The fixture's keys are hashes; sales-crm has no fingerprint: nothing belongs to it.
    let env = TestEnv::new();
    let out = env.run(&[
        "audit",
        "sales-crm",
        "--since",
        "2026-11-16T00:00:00Z",
        "--logs",
        litellm_fixture().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(!text.contains("clean"), "{text}");
    // Nothing could be checked: the audit does not pass.
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("1 not audited: no rule could be evaluated for sales-crm"),
        "{text}"
    );
    for rule in [
        "volume",
        "network",
        "auth_failures",
        "off_hours",
        "new_model",
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(rule))
            .unwrap_or_else(|| panic!("{rule}: {text}"));
        assert!(
            line.contains("not evaluable")
                && line.contains("none of 7 lines in litellm_spend_logs.jsonl belong to sales-crm")
                && line.contains("look like SHA-256 hashes; set `fingerprint` on the key"),
            "{line}"
        );
    }

    // A plain log of other keys: the same, without the hash hint.
    let other = write_log(
        &env,
        "other.jsonl",
        &[format!(
            "{{\"timestamp\":\"{}\",\"key_id\":\"other-key\",\"source_ip\":\"10.0.0.1\",\"status\":200,\"model\":\"m\"}}",
            Utc::now().to_rfc3339()
        )],
    );
    let json = env.run(&[
        "audit",
        "sales-crm",
        "--json",
        "--logs",
        other.to_str().unwrap(),
    ]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    for r in v[0]["summary"]["rules"].as_array().unwrap() {
        assert_eq!(r["status"], "not_evaluable", "{r}");
        assert_eq!(
            r["source"],
            "none of 1 lines in other.jsonl belong to sales-crm"
        );
    }
    assert_eq!(
        v[0]["summary"]["requests_in_window"],
        serde_json::Value::Null
    );
}

#[test]
fn a_rule_that_saw_nothing_of_its_kind_is_not_evaluable() {
    // Lines with times only: no address, no status, no model.
    let mut eval = Evaluator::new(window(), expect());
    eval.source(gateway());
    for d in 0..17 {
        eval.feed(&Event {
            ts: t(d, 10),
            until: None,
            source_ip: None,
            status: None,
            model: None,
            requests: 1,
            tokens: 0,
            cost_usd: None,
        });
    }
    let s = eval.finish();
    let by = |r: &str| s.rules.iter().find(|x| x.rule == r).unwrap().clone();
    for (rule, what) in [
        ("network", "a client address"),
        ("auth_failures", "a response status"),
        ("new_model", "model names"),
    ] {
        assert_eq!(by(rule).status, RuleStatus::NotEvaluable, "{rule}");
        assert!(by(rule).source.contains(what), "{}", by(rule).source);
    }
    assert_eq!(
        by("off_hours").status,
        RuleStatus::Clean,
        "per-request times were seen"
    );
    assert_eq!(s.spend_in_window_usd, None, "no line carried a cost");

    // Daily buckets only, with a source that claims per-request times: off-hours cannot judge.
    let mut eval = Evaluator::new(window(), expect());
    eval.source(gateway());
    for d in 0..17 {
        eval.feed(&Event::bucket(t(d, 0), t(d + 1, 0), 5, 0, 0.0));
    }
    let s = eval.finish();
    assert_eq!(s.rules[3].rule, "off_hours");
    assert_eq!(s.rules[3].status, RuleStatus::NotEvaluable);
}

#[test]
fn spend_with_no_source_is_unknown_in_the_audit_and_the_report() {
    let env = TestEnv::new();
    // sales-crm's provider (manual) has no usage API, and no logs are given.
    let json = env.run(&["audit", "sales-crm", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        v[0]["summary"]["spend_in_window_usd"],
        serde_json::Value::Null
    );
    assert_eq!(
        v[0]["summary"]["requests_in_window"],
        serde_json::Value::Null
    );
    let text = stdout(&env.run(&["audit", "sales-crm"]));
    assert!(text.contains("spend unknown"), "{text}");
    assert!(!text.contains("$0.00"), "{text}");

    let out = env.run(&["incident", "start", "sales-crm", "--dry-run", "--no-tui"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let id = env.incident_ids().pop().unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&env.run(&["report", &id, "--format", "json"]).stdout).unwrap();
    assert_eq!(report["keys"][0]["spend_usd"], serde_json::Value::Null);
    assert_eq!(report["keys"][0]["requests"], serde_json::Value::Null);
    let md = stdout(&env.run(&["report", &id]));
    assert!(md.contains("unknown: no usage source answered"), "{md}");
    assert!(!md.contains("$0.00 over 0 requests"), "{md}");
}

#[test]
fn an_incident_matches_hashed_log_keys_by_the_stored_value_and_reads_past_bad_lines() {
    let env = TestEnv::new();
    let fp = keyfire::audit::fingerprint::of_value(&env.canaries.old_key);
    let now = Utc::now();
    let row = |mins: i64, ip: &str, status: &str, meta: &str| {
        format!(
            "{{\"request_id\":\"r{mins}\",\"call_type\":\"acompletion\",\"api_key\":\"{fp}\",\"spend\":0.5,\"total_tokens\":10,\"prompt_tokens\":5,\"completion_tokens\":5,\"startTime\":\"{}\",\"model\":\"gpt-4o-mini\",\"requester_ip_address\":\"{ip}\",\"status\":\"{status}\",\"metadata\":{meta}}}",
            (now - Duration::minutes(mins)).to_rfc3339()
        )
    };
    let mut lines = vec!["this line is not JSON".to_string()];
    for i in 0..12 {
        lines.push(row(
            30 + i,
            "198.51.100.4, 10.0.0.2",
            "failure",
            "{\"error_information\":{\"error_code\":\"401\"}}",
        ));
    }
    let log = write_log(&env, "spend.jsonl", &lines);
    let out = env.run(&[
        "incident",
        "start",
        "support-llm",
        "--yes",
        "--no-tui",
        "--logs",
        log.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let id = env.incident_ids().pop().unwrap();
    let rules = env
        .entries(&id)
        .into_iter()
        .rev()
        .find(|e| e.kind == "evidence" && e.data["action"] == "evaluate_rules")
        .expect("rules evidence");
    let d = &rules.data;
    let names: Vec<&str> = d["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"gateway log spend.jsonl"), "{d}");
    let auth = d["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "auth_failures")
        .unwrap();
    assert_eq!(auth["status"], "findings", "{auth}");
    assert!(
        auth["findings"][0]
            .as_str()
            .unwrap()
            .contains("from 198.51.100.4 (12)"),
        "{auth}"
    );
    assert_eq!(d["unreadable_lines"], 1);
    assert!(
        d["text"]
            .as_str()
            .unwrap()
            .contains("1 unreadable line(s) in spend.jsonl skipped (first: line 1"),
        "{d}"
    );
    // The key's value is never written: only what the log already held.
    let record = std::fs::read_to_string(env.record_path(&id)).unwrap();
    assert!(!record.contains(&env.canaries.old_key));
}

// ---- hostile input ---------------------------------------------------------------------------

#[test]
fn json_escapes_in_key_address_and_model_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("esc.jsonl");
    std::fs::write(
        &p,
        "{\"timestamp\":\"2026-11-20T03:04:05Z\",\"key_id\":\"support\\u002dllm\",\"source_ip\":\"198.51.100.\\u0031\",\"status\":200,\"model\":\"caf\\u00e9-model\"}\n",
    )
    .unwrap();
    let got = read_all(&p, &KeyMatch::new("support-llm", None, None));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].model.as_deref(), Some("café-model"));
    assert_eq!(got[0].source_ip, Some("198.51.100.1".parse().unwrap()));
}

#[test]
fn a_line_over_1_mib_is_a_clear_error_or_counted_in_an_incident() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("long.jsonl");
    let ok = "{\"timestamp\":\"2026-11-20T03:04:05Z\",\"key_id\":\"k\"}";
    let long = format!(
        "{{\"timestamp\":\"2026-11-20T03:04:05Z\",\"model\":\"{}\"}}",
        "x".repeat(2 << 20)
    );
    std::fs::write(&p, format!("{ok}\n{long}\n{ok}\n")).unwrap();
    let m = KeyMatch::new("k", None, None);
    let err = logs::read(&p, &m, OnBadLine::Stop, |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("long.jsonl:2: line is longer than 1048576 bytes"),
        "{err}"
    );
    let mut n = 0;
    let stats = logs::read(&p, &m, OnBadLine::Count, |_| n += 1).unwrap();
    assert_eq!(
        (n, stats.unreadable, stats.first_unreadable.unwrap().0),
        (2, 1, 2)
    );

    let csv = dir.path().join("long.csv");
    std::fs::write(
        &csv,
        format!(
            "timestamp,key_id,model\n2026-11-20T03:04:05Z,k,{}\n",
            "x".repeat(2 << 20)
        ),
    )
    .unwrap();
    let err = logs::read(&csv, &m, OnBadLine::Stop, |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("long.csv:2: line is longer than 1048576 bytes"),
        "{err}"
    );
}

#[test]
fn request_counts_saturate_instead_of_wrapping() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.jsonl");
    let line = "{\"timestamp\":\"2026-11-17T10:00:00Z\",\"key_id\":\"k\",\"requests\":18446744073709551615,\"tokens\":1e30}";
    std::fs::write(&p, format!("{line}\n{line}\n")).unwrap();
    let m = KeyMatch::new("k", None, None);
    let mut eval = Evaluator::new(window(), expect());
    let stats = logs::read(&p, &m, OnBadLine::Stop, |e| eval.feed(e)).unwrap();
    eval.log_source(logs::source_info(&p), "k", &m, &stats, stats.used);
    let s = eval.finish();
    assert_eq!(s.requests_in_window, Some(u64::MAX));
    assert_eq!(s.tokens_in_window, Some(u64::MAX));
}

#[test]
fn csv_errors_name_the_physical_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("gw.csv");
    // Record 2 spans lines 3-4 (a quoted newline); record 3, on line 5, is bad.
    std::fs::write(
        &p,
        "timestamp,key_id,model\n2026-11-20T03:04:05Z,k,a\n2026-11-20T03:04:06Z,k,\"two\nlines\"\nyesterday,k,b\n",
    )
    .unwrap();
    let err = logs::read(&p, &KeyMatch::new("k", None, None), OnBadLine::Stop, |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("gw.csv:5: timestamp is not RFC 3339, `YYYY-MM-DD HH:MM:SS` or Unix seconds"),
        "{err}"
    );
}

#[test]
fn audit_names_the_first_bad_line_without_its_value_and_exits_2() {
    let env = TestEnv::new();
    let log = write_log(
        &env,
        "bad.jsonl",
        &[
            format!("{{\"timestamp\":\"{}\",\"key_id\":\"sales-crm\"}}", Utc::now().to_rfc3339()),
            "{\"timestamp\":\"2026-11-20T03:04:05Z\",\"key_id\":\"sales-crm\",\"tokens\":\"sk-proj-Zz9Yy8Xx7Ww6\"}".into(),
            "not json either".into(),
        ],
    );
    let out = env.run(&["audit", "sales-crm", "--logs", log.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.jsonl:2:"), "{err}");
    assert!(
        !err.contains("sk-proj-Zz9Yy8Xx7Ww6"),
        "the value is echoed: {err}"
    );
}

mod log_reader_properties {
    use super::*;
    use proptest::prelude::*;

    /// Lines that look like log lines: the documented fields with values of any JSON type.
    fn field_line() -> impl Strategy<Value = String> {
        let names = prop::sample::select(vec![
            "timestamp",
            "ts",
            "startTime",
            "key_id",
            "api_key",
            "source_ip",
            "requester_ip_address",
            "status",
            "status_code",
            "model",
            "tokens",
            "prompt_tokens",
            "cost",
            "spend",
            "requests",
            "metadata",
        ]);
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| if f.is_finite() {
                f.to_string()
            } else {
                "1e308".into()
            }),
            ".{0,40}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("null".to_string()),
            Just("{\"error_information\":{\"error_code\":\"401\"}}".to_string()),
            Just("\"{\\\"status_code\\\":99999}\"".to_string()),
            Just("[1,{\"a\":[]}]".to_string()),
            Just("\"1.2.3.4, ::1\"".to_string()),
        ];
        prop::collection::vec((names, value), 0..8).prop_map(|fields| {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", body.join(","))
        })
    }

    fn any_line() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            field_line().prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..200),
            ".{0,120}".prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn the_log_reader_never_panics_on_arbitrary_lines(
            lines in prop::collection::vec(any_line(), 0..12),
            csv in any::<bool>(),
        ) {
            let mut data = Vec::new();
            if csv {
                data.extend_from_slice(b"timestamp,key_id,source_ip,status,model,metadata\n");
            }
            for l in &lines {
                data.extend_from_slice(l);
                data.push(b'\n');
            }
            let path = std::path::Path::new(if csv { "p.csv" } else { "p.jsonl" });
            for on_bad in [OnBadLine::Stop, OnBadLine::Count] {
                let mut eval = Evaluator::new(window(), expect());
                let r = logs::read_stream(&data[..], path, csv, on_bad, |_| Some(0), |_, e| eval.feed(e));
                if on_bad == OnBadLine::Count && !csv {
                    prop_assert!(r.is_ok(), "{r:?}");
                }
                let _ = eval.finish();
            }
        }
    }
}
