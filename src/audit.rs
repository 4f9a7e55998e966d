//! Anomaly rules over usage (DESIGN section 7), first form: the provider's usage buckets.
//! A rule that no source can evaluate says so; it never reports "clean" by default.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::provider::{UsageBucket, UsageEvent};

/// Days before the exposure window used as the baseline.
pub const BASELINE_DAYS: i64 = 14;
/// A day above this multiple of the baseline's daily average is a volume finding.
pub const VOLUME_FACTOR: f64 = 3.0;
/// Failed calls (CloudTrail error codes) in the window at or above this are a finding.
pub const AUTH_FAILURE_THRESHOLD: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    Findings,
    Clean,
    NotEvaluable,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    pub rule: &'static str,
    pub status: RuleStatus,
    /// The source that evaluated the rule, or why none could.
    pub source: String,
    pub findings: Vec<String>,
}

fn not_evaluable(rule: &'static str, why: &str) -> RuleResult {
    RuleResult {
        rule,
        status: RuleStatus::NotEvaluable,
        source: why.into(),
        findings: Vec::new(),
    }
}

/// Evaluate the rules that usage buckets can speak to; the others are not evaluable.
pub fn evaluate_usage(
    buckets: &[UsageBucket],
    window_start: DateTime<Utc>,
    have_usage: bool,
) -> Vec<RuleResult> {
    let volume = if !have_usage {
        not_evaluable("volume", "no usage source for this provider")
    } else {
        volume_rule(buckets, window_start)
    };
    vec![
        volume,
        not_evaluable(
            "network",
            "provider usage buckets carry no source addresses; import gateway logs",
        ),
        not_evaluable(
            "auth_failures",
            "provider usage buckets carry no authentication failures",
        ),
        not_evaluable(
            "off_hours",
            "daily usage buckets are too coarse for active hours",
        ),
        not_evaluable("new_model", "provider usage buckets carry no model names"),
    ]
}

/// Rules that per-access events can settle (CloudTrail, database sessions): source addresses
/// against the agents' `expected_networks`, and failed calls. Replaces the "not evaluable"
/// results of [`evaluate_usage`] for those rules.
pub fn evaluate_events(
    results: &mut [RuleResult],
    events: &[UsageEvent],
    networks: &[ipnet::IpNet],
) {
    for r in results.iter_mut() {
        match r.rule {
            "network" if networks.is_empty() => {
                *r = not_evaluable(
                    "network",
                    "access events have source addresses, but the key's agents declare no expected_networks",
                );
            }
            "network" => {
                let mut outside: std::collections::BTreeMap<String, usize> = Default::default();
                let mut seen = 0;
                for e in events {
                    let Some(ip) = e
                        .source_ip
                        .as_deref()
                        .and_then(|s| s.parse::<std::net::IpAddr>().ok())
                    else {
                        continue;
                    };
                    seen += 1;
                    if !networks.iter().any(|n| n.contains(&ip)) {
                        *outside.entry(ip.to_string()).or_default() += 1;
                    }
                }
                if seen == 0 {
                    *r = not_evaluable("network", "the access events carry no IP source addresses");
                    continue;
                }
                let findings: Vec<String> = outside
                    .into_iter()
                    .map(|(ip, n)| format!("{ip}: {n} call(s) from outside the expected networks"))
                    .collect();
                *r = RuleResult {
                    rule: "network",
                    status: if findings.is_empty() {
                        RuleStatus::Clean
                    } else {
                        RuleStatus::Findings
                    },
                    source: "access events (source addresses)".into(),
                    findings,
                };
            }
            "auth_failures" => {
                let failed: Vec<&UsageEvent> =
                    events.iter().filter(|e| e.error_code.is_some()).collect();
                let mut by_code: std::collections::BTreeMap<&str, usize> = Default::default();
                for e in &failed {
                    *by_code
                        .entry(e.error_code.as_deref().unwrap_or("?"))
                        .or_default() += 1;
                }
                let findings = if failed.len() >= AUTH_FAILURE_THRESHOLD {
                    by_code
                        .into_iter()
                        .map(|(c, n)| format!("{n} call(s) failed with {c}"))
                        .collect()
                } else {
                    Vec::new()
                };
                *r = RuleResult {
                    rule: "auth_failures",
                    status: if findings.is_empty() {
                        RuleStatus::Clean
                    } else {
                        RuleStatus::Findings
                    },
                    source: format!(
                        "access events ({} failed, threshold {AUTH_FAILURE_THRESHOLD})",
                        failed.len()
                    ),
                    findings,
                };
            }
            _ => {}
        }
    }
}

fn volume_rule(buckets: &[UsageBucket], window_start: DateTime<Utc>) -> RuleResult {
    let (baseline, window): (Vec<&UsageBucket>, Vec<&UsageBucket>) =
        buckets.iter().partition(|b| b.end <= window_start);
    if baseline.is_empty() {
        return not_evaluable(
            "volume",
            "provider usage, but no baseline days before the exposure window",
        );
    }
    let avg = baseline.iter().map(|b| b.requests as f64).sum::<f64>() / baseline.len() as f64;
    let threshold = (avg * VOLUME_FACTOR).max(1.0);
    let findings: Vec<String> = window
        .iter()
        .filter(|b| b.requests as f64 > threshold)
        .map(|b| {
            format!(
                "{}: {} requests, {:.1}x the baseline daily average of {:.0} (cost ${:.2})",
                b.start.format("%Y-%m-%d"),
                b.requests,
                b.requests as f64 / avg.max(1.0),
                avg,
                b.cost_usd
            )
        })
        .collect();
    RuleResult {
        rule: "volume",
        status: if findings.is_empty() {
            RuleStatus::Clean
        } else {
            RuleStatus::Findings
        },
        source: "provider usage buckets".into(),
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn day(i: i64, requests: u64) -> UsageBucket {
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::days(i);
        UsageBucket {
            start,
            end: start + Duration::days(1),
            requests,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
        }
    }

    #[test]
    fn volume_fires_on_spike_only() {
        let mut b: Vec<_> = (0..10).map(|i| day(i, 100)).collect();
        b.push(day(10, 120));
        b.push(day(11, 900));
        let start = Utc.with_ymd_and_hms(2026, 11, 11, 0, 0, 0).unwrap();
        let r = volume_rule(&b, start);
        assert_eq!(r.status, RuleStatus::Findings);
        assert_eq!(r.findings.len(), 1);
        assert!(r.findings[0].starts_with("2026-11-12"));
    }

    #[test]
    fn events_settle_network_and_auth_failure_rules() {
        let t = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
        let ev = |ip: &str, err: Option<&str>| UsageEvent {
            time: t,
            action: "ListBuckets".into(),
            source_ip: Some(ip.into()),
            user_agent: None,
            error_code: err.map(str::to_string),
        };
        let mut events = vec![ev("203.0.113.7", None), ev("198.51.100.9", None)];
        for _ in 0..AUTH_FAILURE_THRESHOLD {
            events.push(ev("203.0.113.8", Some("AccessDenied")));
        }
        let nets: Vec<ipnet::IpNet> = vec!["203.0.113.0/24".parse().unwrap()];
        let mut r = evaluate_usage(&[], t, false);
        evaluate_events(&mut r, &events, &nets);
        let net = r.iter().find(|x| x.rule == "network").unwrap();
        assert_eq!(net.status, RuleStatus::Findings);
        assert_eq!(net.findings.len(), 1);
        assert!(net.findings[0].starts_with("198.51.100.9"));
        let auth = r.iter().find(|x| x.rule == "auth_failures").unwrap();
        assert_eq!(auth.status, RuleStatus::Findings);
        let mut r2 = evaluate_usage(&[], t, false);
        evaluate_events(&mut r2, &events[..1], &[]);
        assert_eq!(
            r2.iter().find(|x| x.rule == "network").unwrap().status,
            RuleStatus::NotEvaluable
        );
        assert_eq!(
            r2.iter()
                .find(|x| x.rule == "auth_failures")
                .unwrap()
                .status,
            RuleStatus::Clean
        );
    }

    #[test]
    fn normal_week_is_clean_and_missing_baseline_is_not_evaluable() {
        let b: Vec<_> = (0..14).map(|i| day(i, 100 + i as u64)).collect();
        let start = Utc.with_ymd_and_hms(2026, 11, 8, 0, 0, 0).unwrap();
        assert_eq!(volume_rule(&b, start).status, RuleStatus::Clean);
        let early = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
        assert_eq!(volume_rule(&b, early).status, RuleStatus::NotEvaluable);
        assert_eq!(
            evaluate_usage(&[], start, false)[0].status,
            RuleStatus::NotEvaluable
        );
    }
}
