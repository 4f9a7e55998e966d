//! The anomaly rules of DESIGN section 7, evaluated in one streaming pass: memory grows with
//! the number of days, addresses and models seen, never with the number of events.
//!
//! Silence is never clean (DESIGN non-negotiable 8): a rule that saw no event of the kind it
//! needs (no statuses, no addresses, no per-request times, no model names) is "not evaluable";
//! a log in which no line belongs to the key makes every rule "not evaluable"; spend and
//! request counts with no source that answered are unknown (`null`), not 0. Every counter
//! saturates: a log cannot overflow it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
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
    /// `None` when no source answered for the key.
    pub requests_in_window: Option<u64>,
    pub tokens_in_window: Option<u64>,
    /// `None` when no source that reports money answered: unknown, not $0.
    pub spend_in_window_usd: Option<f64>,
    pub first_suspicious: Option<DateTime<Utc>>,
    pub last_suspicious: Option<DateTime<Utc>>,
    /// What the audit could not read (unreadable log lines, logs without the key), in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Log lines that could not be read, over every log.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unreadable_lines: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
        self.count = self.count.saturating_add(n);
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
    /// Some event (baseline or window) carried a cost.
    cost_known: bool,
    /// A source answered for the key (provider usage, or a log with lines for it).
    answered: bool,
    /// Window events that carried what each rule needs.
    window_events: u64,
    window_addresses: u64,
    window_statuses: u64,
    window_per_request: u64,
    suspicious: Seen,
    /// Logs in which no line belongs to the key: every rule is then not evaluable.
    uncovered: Vec<String>,
    notes: Vec<String>,
    unreadable_lines: u64,
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
            cost_known: false,
            answered: false,
            window_events: 0,
            window_addresses: 0,
            window_statuses: 0,
            window_per_request: 0,
            suspicious: Seen::default(),
            uncovered: Vec::new(),
            notes: Vec::new(),
            unreadable_lines: 0,
        }
    }

    /// Register a source that answered for the key (provider usage, CloudTrail, sessions).
    pub fn source(&mut self, info: SourceInfo) {
        self.answered = true;
        if !self.sources.contains(&info) {
            self.sources.push(info);
        }
    }

    /// Register a gateway log after reading it: `used` of its lines belonged to `key`. A log
    /// with none is no evidence of silence, it is evidence that keyfire could not tell which
    /// lines are the key's: every rule becomes "not evaluable".
    pub fn log_source(
        &mut self,
        info: SourceInfo,
        key: &str,
        matcher: &super::logs::KeyMatch,
        stats: &super::logs::LogStats,
        used: u64,
    ) {
        self.unreadable_lines = self.unreadable_lines.saturating_add(stats.unreadable);
        if let Some(note) = stats.unreadable_note() {
            self.notes.push(note);
        }
        if used > 0 {
            self.source(info);
            return;
        }
        let mut why = format!(
            "none of {} lines in {} belong to {key}",
            stats.lines, stats.file
        );
        if stats.hashed_keys {
            why.push_str(if matcher.fingerprints.is_empty() {
                " (the log's key values look like SHA-256 hashes; set `fingerprint` on the key)"
            } else {
                " (the log's key values look like SHA-256 hashes, and none is this key's fingerprint)"
            });
        }
        self.notes.push(why.clone());
        self.uncovered.push(why);
    }

    /// A source that could not be read at all: every rule it could have informed is unknown.
    pub fn unavailable(&mut self, why: &str) {
        let why = format!("evidence unavailable: {why}");
        self.notes.push(why.clone());
        self.uncovered.push(why);
    }

    pub fn feed(&mut self, e: &Event) {
        let w = self.window;
        if e.ts < w.baseline_start || e.ts > w.end {
            return;
        }
        self.events = self.events.saturating_add(1);
        let cost = e.cost_usd.filter(|c| c.is_finite());
        self.cost_known |= cost.is_some();
        let cost = cost.unwrap_or(0.0);
        let day = self.days.entry(e.ts.date_naive()).or_default();
        day.requests = day.requests.saturating_add(e.requests);
        day.tokens = day.tokens.saturating_add(e.tokens);
        day.cost += cost;
        if e.ts < w.start {
            self.baseline_events = self.baseline_events.saturating_add(1);
            if let Some(m) = &e.model
                && !self.baseline_models.contains(m.as_str())
            {
                self.baseline_models.insert(m.to_string());
            }
            return;
        }
        // Inside the exposure window.
        self.requests = self.requests.saturating_add(e.requests);
        self.tokens = self.tokens.saturating_add(e.tokens);
        self.spend += cost;
        self.window_events = self.window_events.saturating_add(1);
        self.window_addresses = self
            .window_addresses
            .saturating_add(u64::from(e.source_ip.is_some()));
        self.window_statuses = self
            .window_statuses
            .saturating_add(u64::from(e.status.is_some()));
        self.window_per_request = self
            .window_per_request
            .saturating_add(u64::from(e.until.is_none()));
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
                let n = self.auth_by_ip.entry(ip).or_default();
                *n = n.saturating_add(1);
            }
        }
        if e.until.is_none()
            && !self.expect.active_hours.is_empty()
            && !self
                .expect
                .active_hours
                .iter()
                .any(|h| h.contains_at(e.ts, chrono_tz::Tz::UTC))
        {
            self.off_hours.add(e.ts, e.requests.max(1));
            self.suspicious.add(e.ts, 1);
        }
        if let Some(m) = &e.model {
            match self.window_models.get_mut(m.as_str()) {
                Some(s) => s.add(e.ts, e.requests.max(1)),
                None => {
                    let mut s = Seen::default();
                    s.add(e.ts, e.requests.max(1));
                    self.window_models.insert(m.to_string(), s);
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
        if !self.uncovered.is_empty() {
            let why = self.uncovered.join("; ");
            for r in &mut rules {
                match r.status {
                    // Findings stand: what was seen was seen.
                    RuleStatus::Findings => r.source = format!("{}; but {why}", r.source),
                    RuleStatus::Clean => {
                        r.status = RuleStatus::NotEvaluable;
                        r.source = why.clone();
                    }
                    // With no other source, "import gateway logs" would mislead: they were.
                    RuleStatus::NotEvaluable if self.sources.is_empty() => r.source = why.clone(),
                    RuleStatus::NotEvaluable => r.source = format!("{why}; {}", r.source),
                }
            }
        }
        let answered = self.answered;
        AuditSummary {
            window: self.window,
            sources: self.sources,
            rules,
            events: self.events,
            requests_in_window: answered.then_some(self.requests),
            tokens_in_window: answered.then_some(self.tokens),
            spend_in_window_usd: (answered && self.cost_known).then_some(self.spend + 0.0),
            first_suspicious: self.suspicious.first,
            last_suspicious: self.suspicious.last,
            notes: self.notes,
            unreadable_lines: self.unreadable_lines,
        }
    }

    /// "SOURCE, but no event in the window carried WHAT": the rule has nothing to judge.
    fn nothing_seen(
        &self,
        rule: &'static str,
        source: &str,
        seen: u64,
        what: &str,
    ) -> Option<RuleResult> {
        (seen == 0).then(|| {
            let why = if self.window_events == 0 {
                format!("{source}, but no event in the exposure window")
            } else {
                format!(
                    "{source}, but none of the {} events in the exposure window carries {what}",
                    self.window_events
                )
            };
            not_evaluable(rule, &why)
        })
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
        let base_total: u64 = self
            .days
            .range(..start)
            .fold(0u64, |a, (_, d)| a.saturating_add(measure(d)));
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
        if let Some(r) = self.nothing_seen(
            "network",
            &source,
            self.window_addresses,
            "a client address",
        ) {
            return r;
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
        if let Some(r) = self.nothing_seen(
            "auth_failures",
            &source,
            self.window_statuses,
            "a response status",
        ) {
            return r;
        }
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
        if let Some(r) = self.nothing_seen(
            "off_hours",
            &source,
            self.window_per_request,
            "its own timestamp (only daily buckets)",
        ) {
            return r;
        }
        let s = self.off_hours;
        let findings = if s.count > 0 {
            // Told on the agents' wall clock (the zone their hours are written in) and in UTC.
            let zone = self
                .expect
                .active_hours
                .first()
                .and_then(|h| h.timezone)
                .unwrap_or(chrono_tz::Tz::UTC);
            let at = |t: Option<DateTime<Utc>>| match t {
                Some(t) if zone != chrono_tz::Tz::UTC => format!(
                    "{} ({})",
                    t.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %Z"),
                    fmt(Some(t))
                ),
                t => fmt(t),
            };
            vec![format!(
                "{} requests outside the agents' active hours, {} to {}",
                s.count,
                at(s.first),
                at(s.last)
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
        let with_models = self
            .window_models
            .values()
            .fold(0u64, |a, s| a.saturating_add(s.count));
        if let Some(r) = self.nothing_seen("new_model", &source, with_models, "a model name") {
            return r;
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
