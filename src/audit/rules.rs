//! The anomaly rules of DESIGN section 7, evaluated in one streaming pass: memory grows with
//! the number of days, addresses and models seen, never with the number of events.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use ipnet::IpNet;
use serde::Serialize;

use super::event::{Event, SourceInfo};
use crate::inventory::ActiveHours;

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
    /// The sources that evaluated the rule, or why none could.
    pub source: String,
    pub findings: Vec<String>,
}

/// What the rules compare against: the agents' declared behaviour and the policy thresholds.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub networks: Vec<IpNet>,
    /// Activity is expected when it falls in any of these (a shared key has several agents).
    pub active_hours: Vec<ActiveHours>,
    pub volume_factor: f64,
    pub auth_failure_threshold: u64,
}

/// The exposure window and the baseline before it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Window {
    pub baseline_start: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditSummary {
    pub window: Window,
    pub sources: Vec<SourceInfo>,
    pub rules: Vec<RuleResult>,
    pub events: u64,
    pub requests_in_window: u64,
    pub tokens_in_window: u64,
    pub spend_in_window_usd: f64,
    pub first_suspicious: Option<DateTime<Utc>>,
    pub last_suspicious: Option<DateTime<Utc>>,
}

impl AuditSummary {
    pub fn fired(&self) -> usize {
        self.rules
            .iter()
            .filter(|r| r.status == RuleStatus::Findings)
            .count()
    }
}

#[derive(Default, Clone, Copy)]
struct Seen {
    count: u64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

impl Seen {
    fn add(&mut self, ts: DateTime<Utc>, n: u64) {
        self.count += n;
        self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));
    }
}

#[derive(Default, Clone, Copy)]
struct Day {
    requests: u64,
    tokens: u64,
    cost: f64,
}

/// Feed events, then `finish`.
pub struct Evaluator {
    window: Window,
    expect: Expectations,
    sources: Vec<SourceInfo>,
    days: BTreeMap<NaiveDate, Day>,
    baseline_events: u64,
    foreign: HashMap<IpAddr, Seen>,
    auth_failures: Seen,
    auth_by_ip: HashMap<IpAddr, u64>,
    off_hours: Seen,
    baseline_models: BTreeSet<String>,
    window_models: BTreeMap<String, Seen>,
    events: u64,
    requests: u64,
    tokens: u64,
    spend: f64,
    suspicious: Seen,
}

impl Evaluator {
    pub fn new(window: Window, expect: Expectations) -> Self {
        Self {
            window,
            expect,
            sources: Vec::new(),
            days: BTreeMap::new(),
            baseline_events: 0,
            foreign: HashMap::new(),
            auth_failures: Seen::default(),
            auth_by_ip: HashMap::new(),
            off_hours: Seen::default(),
            baseline_models: BTreeSet::new(),
            window_models: BTreeMap::new(),
            events: 0,
            requests: 0,
            tokens: 0,
            spend: 0.0,
            suspicious: Seen::default(),
        }
    }

    /// Register a source before feeding its events.
    pub fn source(&mut self, info: SourceInfo) {
        if !self.sources.contains(&info) {
            self.sources.push(info);
        }
    }

    pub fn feed(&mut self, e: &Event) {
        let w = self.window;
        if e.ts < w.baseline_start || e.ts > w.end {
            return;
        }
        self.events += 1;
        let day = self.days.entry(e.ts.date_naive()).or_default();
        day.requests += e.requests;
        day.tokens += e.tokens;
        day.cost += e.cost_usd;
        if e.ts < w.start {
            self.baseline_events += 1;
            if let Some(m) = &e.model
                && !self.baseline_models.contains(m)
            {
                self.baseline_models.insert(m.clone());
            }
            return;
        }
        // Inside the exposure window.
        self.requests += e.requests;
        self.tokens += e.tokens;
        self.spend += e.cost_usd;
        if let Some(ip) = e.source_ip
            && !self.expect.networks.is_empty()
            && !self.expect.networks.iter().any(|n| n.contains(&ip))
        {
            self.foreign
                .entry(ip)
                .or_default()
                .add(e.ts, e.requests.max(1));
            self.suspicious.add(e.ts, 1);
        }
        if matches!(e.status, Some(401 | 403)) {
            self.auth_failures.add(e.ts, e.requests.max(1));
            if let Some(ip) = e.source_ip {
                *self.auth_by_ip.entry(ip).or_default() += 1;
            }
        }
        if e.until.is_none() && !self.expect.active_hours.is_empty() {
            let (d, t) = (e.ts.weekday(), e.ts.time());
            if !self.expect.active_hours.iter().any(|h| h.contains(d, t)) {
                self.off_hours.add(e.ts, e.requests.max(1));
                self.suspicious.add(e.ts, 1);
            }
        }
        if let Some(m) = &e.model {
            match self.window_models.get_mut(m) {
                Some(s) => s.add(e.ts, e.requests.max(1)),
                None => {
                    let mut s = Seen::default();
                    s.add(e.ts, e.requests.max(1));
                    self.window_models.insert(m.clone(), s);
                }
            }
        }
    }

    fn names(&self, pick: impl Fn(&SourceInfo) -> bool) -> Option<String> {
        let names: Vec<&str> = self
            .sources
            .iter()
            .filter(|s| pick(s))
            .map(|s| s.name.as_str())
            .collect();
        (!names.is_empty()).then(|| names.join(", "))
    }

    pub fn finish(mut self) -> AuditSummary {
        let mut rules = vec![
            self.volume(),
            self.network(),
            self.auth(),
            self.off_hours_rule(),
            self.new_model(),
        ];
        if self.auth_failures.count >= self.expect.auth_failure_threshold
            && self.auth_failures.count > 0
            && let (Some(f), Some(l)) = (self.auth_failures.first, self.auth_failures.last)
        {
            self.suspicious.add(f, 0);
            self.suspicious.add(l, 0);
        }
        for r in &mut rules {
            r.findings.truncate(50);
        }
        AuditSummary {
            window: self.window,
            sources: self.sources,
            rules,
            events: self.events,
            requests_in_window: self.requests,
            tokens_in_window: self.tokens,
            spend_in_window_usd: self.spend + 0.0,
            first_suspicious: self.suspicious.first,
            last_suspicious: self.suspicious.last,
        }
    }

    fn volume(&mut self) -> RuleResult {
        let Some(source) = self.names(|_| true) else {
            return not_evaluable(
                "volume",
                "no usage source: the provider has no usage API in keyfire; import gateway logs with --logs",
            );
        };
        if self.baseline_events == 0 {
            return not_evaluable(
                "volume",
                &format!(
                    "{source}, but no activity recorded in the baseline days before the window"
                ),
            );
        }
        // Some providers (Anthropic's usage report) count tokens, not requests: measure volume
        // in tokens there rather than calling a key with no request counts "clean".
        let by_tokens =
            self.days.values().all(|d| d.requests == 0) && self.days.values().any(|d| d.tokens > 0);
        let (unit, measure): (&str, fn(&Day) -> u64) = if by_tokens {
            ("tokens", |d| d.tokens)
        } else {
            ("requests", |d| d.requests)
        };
        let start = self.window.start.date_naive();
        let base_start = self.window.baseline_start.date_naive();
        let base_days = (start - base_start).num_days().max(1) as f64;
        let base_total: u64 = self.days.range(..start).map(|(_, d)| measure(d)).sum();
        let avg = base_total as f64 / base_days;
        let threshold = (avg * self.expect.volume_factor).max(1.0);
        let mut findings = Vec::new();
        let window_days: Vec<(NaiveDate, Day)> =
            self.days.range(start..).map(|(d, v)| (*d, *v)).collect();
        for (d, v) in window_days {
            let n = measure(&v);
            if n as f64 > threshold {
                if let Some(ts) = d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()) {
                    self.suspicious.add(ts, 0);
                }
                findings.push(format!(
                    "{d}: {n} {unit}, {:.1}x the baseline daily average of {avg:.0} (cost ${:.2})",
                    n as f64 / avg.max(1.0),
                    v.cost
                ));
            }
        }
        let source = if by_tokens {
            format!("{source} (in tokens: no request counts)")
        } else {
            source
        };
        result("volume", source, findings)
    }

    fn network(&self) -> RuleResult {
        let Some(source) = self.names(|s| s.addresses) else {
            return not_evaluable(
                "network",
                "no source with client addresses (provider usage has none): import gateway logs with --logs",
            );
        };
        if self.expect.networks.is_empty() {
            return not_evaluable(
                "network",
                &format!("{source}, but the agents declare no expected_networks"),
            );
        }
        let mut ips: Vec<(&IpAddr, &Seen)> = self.foreign.iter().collect();
        ips.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        let findings = ips
            .iter()
            .map(|(ip, s)| {
                format!(
                    "{ip}: {} requests from outside the expected networks, {} to {}",
                    s.count,
                    fmt(s.first),
                    fmt(s.last)
                )
            })
            .collect();
        result("network", source, findings)
    }

    fn auth(&self) -> RuleResult {
        let Some(source) = self.names(|s| s.statuses) else {
            return not_evaluable(
                "auth_failures",
                "no source with response statuses: import gateway logs with --logs",
            );
        };
        let s = self.auth_failures;
        let findings = if s.count >= self.expect.auth_failure_threshold && s.count > 0 {
            let mut top: Vec<(&IpAddr, &u64)> = self.auth_by_ip.iter().collect();
            top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let from: Vec<String> = top
                .iter()
                .take(5)
                .map(|(ip, n)| format!("{ip} ({n})"))
                .collect();
            vec![format!(
                "{} failed authentications (threshold {}), {} to {}{}",
                s.count,
                self.expect.auth_failure_threshold,
                fmt(s.first),
                fmt(s.last),
                if from.is_empty() {
                    String::new()
                } else {
                    format!(", from {}", from.join(", "))
                }
            )]
        } else {
            Vec::new()
        };
        result("auth_failures", source, findings)
    }

    fn off_hours_rule(&self) -> RuleResult {
        let Some(source) = self.names(|s| s.per_request) else {
            return not_evaluable(
                "off_hours",
                "no per-request timestamps (daily usage buckets are too coarse): import gateway logs with --logs",
            );
        };
        if self.expect.active_hours.is_empty() {
            return not_evaluable(
                "off_hours",
                &format!("{source}, but the agents declare no active_hours"),
            );
        }
        let s = self.off_hours;
        let findings = if s.count > 0 {
            vec![format!(
                "{} requests outside the agents' active hours, {} to {}",
                s.count,
                fmt(s.first),
                fmt(s.last)
            )]
        } else {
            Vec::new()
        };
        result("off_hours", source, findings)
    }

    fn new_model(&self) -> RuleResult {
        let Some(source) = self.names(|s| s.models) else {
            return not_evaluable(
                "new_model",
                "no source with model names: import gateway logs with --logs",
            );
        };
        if self.baseline_models.is_empty() {
            return not_evaluable(
                "new_model",
                &format!("{source}, but no model names in the baseline days"),
            );
        }
        let findings = self
            .window_models
            .iter()
            .filter(|(m, _)| !self.baseline_models.contains(*m))
            .map(|(m, s)| {
                format!(
                    "{m}: {} requests, never used in the baseline, first at {}",
                    s.count,
                    fmt(s.first)
                )
            })
            .collect();
        result("new_model", source, findings)
    }
}

fn fmt(t: Option<DateTime<Utc>>) -> String {
    t.map_or("?".into(), |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
}

fn not_evaluable(rule: &'static str, why: &str) -> RuleResult {
    RuleResult {
        rule,
        status: RuleStatus::NotEvaluable,
        source: why.into(),
        findings: Vec::new(),
    }
}

fn result(rule: &'static str, source: String, findings: Vec<String>) -> RuleResult {
    RuleResult {
        rule,
        status: if findings.is_empty() {
            RuleStatus::Clean
        } else {
            RuleStatus::Findings
        },
        source,
        findings,
    }
}
