//! Anomaly rules over usage (DESIGN section 7), first form: the provider's usage buckets.
//! A rule that no source can evaluate says so; it never reports "clean" by default.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::provider::UsageBucket;

/// Days before the exposure window used as the baseline.
pub const BASELINE_DAYS: i64 = 14;
/// A day above this multiple of the baseline's daily average is a volume finding.
pub const VOLUME_FACTOR: f64 = 3.0;

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

fn volume_rule(buckets: &[UsageBucket], window_start: DateTime<Utc>) -> RuleResult {
    let (baseline, window): (Vec<&UsageBucket>, Vec<&UsageBucket>) =
        buckets.iter().partition(|b| b.end <= window_start);
    if baseline.is_empty() {
        return not_evaluable(
            "volume",
            "provider usage, but no baseline days before the exposure window",
        );
    }
    // Some providers (Anthropic's usage report) count tokens but not requests: measure
    // volume in tokens there rather than calling a key with no request counts "clean".
    let by_tokens = buckets.iter().all(|b| b.requests == 0)
        && buckets.iter().any(|b| b.input_tokens + b.output_tokens > 0);
    let (unit, measure): (&str, fn(&UsageBucket) -> f64) = if by_tokens {
        ("tokens", |b| (b.input_tokens + b.output_tokens) as f64)
    } else {
        ("requests", |b| b.requests as f64)
    };
    let avg = baseline.iter().map(|b| measure(b)).sum::<f64>() / baseline.len() as f64;
    let threshold = (avg * VOLUME_FACTOR).max(1.0);
    let findings: Vec<String> = window
        .iter()
        .filter(|b| measure(b) > threshold)
        .map(|b| {
            format!(
                "{}: {} {unit}, {:.1}x the baseline daily average of {:.0} (cost ${:.2})",
                b.start.format("%Y-%m-%d"),
                measure(b),
                measure(b) / avg.max(1.0),
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
        source: if by_tokens {
            "provider usage buckets (tokens: the provider reports no request counts)".into()
        } else {
            "provider usage buckets".into()
        },
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
    fn volume_falls_back_to_tokens_when_no_requests_are_counted() {
        let mut b: Vec<_> = (0..10)
            .map(|i| UsageBucket {
                input_tokens: 1_000,
                output_tokens: 200,
                ..day(i, 0)
            })
            .collect();
        b.push(UsageBucket {
            input_tokens: 90_000,
            output_tokens: 9_000,
            ..day(10, 0)
        });
        let start = Utc.with_ymd_and_hms(2026, 11, 11, 0, 0, 0).unwrap();
        let r = volume_rule(&b, start);
        assert_eq!(r.status, RuleStatus::Findings);
        assert!(r.findings[0].contains("99000 tokens"), "{:?}", r.findings);
        assert!(r.source.contains("tokens"));
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
