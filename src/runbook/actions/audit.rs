//! Step 3, audit: the provider's usage and audit log over the exposure window (with a
//! baseline before it), then every rule over them and the gateway logs in one pass.

use chrono::{DateTime, Duration, NaiveTime, Utc};

use super::{ActionOutcome, Failure, Res, skipped};
use crate::provider::{Op, OpOutput, UsageReport};
use crate::record::event::{Evidence, UsageSeen};
use crate::runbook::action::{Action, StepId};
use crate::runbook::context::{Ctx, KeyRun};
use crate::runbook::gate::Sink;

/// Individual access events kept in the record per key (the count is always recorded).
const EVIDENCE_EVENTS: usize = 500;

/// The start of the baseline before a window. The window's start can come back from a
/// record (`exposed_since`), so the subtraction is checked: a crafted date near chrono's
/// limits gives an empty baseline, never a panic.
fn baseline_start(start: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    start
        .checked_sub_signed(Duration::days(i64::from(days)))
        .unwrap_or(start)
}

impl Ctx {
    /// Exposure window: `--exposed-since`, else the key's last rotation, else 30 days; to the
    /// revocation (or now).
    fn exposure_window(&self, run: &KeyRun) -> (DateTime<Utc>, DateTime<Utc>) {
        let end = run.facts.revoked_at.unwrap_or_else(|| self.now());
        let start = self
            .params
            .exposed_since
            .or_else(|| {
                run.key
                    .issued_on()
                    .map(|d| d.and_time(NaiveTime::MIN).and_utc())
            })
            .unwrap_or_else(|| baseline_start(end, 30));
        (start.min(end), end)
    }

    pub(super) async fn usage<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        sink: &mut S,
    ) -> Result<Option<UsageReport>, Failure> {
        let Some(id) = run.facts.provider_key_id.clone() else {
            return Ok(None);
        };
        match self
            .provider_read(run, step, action, Op::Usage { id, start, end }, sink)
            .await?
        {
            OpOutput::Usage(r) => Ok(Some(r)),
            _ => Ok(None),
        }
    }

    pub(super) async fn fetch_usage<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> Res {
        if !run.caps.usage {
            return skipped(format!(
                "{} has no usage API in keyfire: the rules use gateway logs only (pass --logs)",
                run.provider_def.kind
            ));
        }
        if run.facts.provider_key_id.is_none() {
            return skipped("the key was not located: no provider usage");
        }
        let (start, end) = self.exposure_window(run);
        let baseline_start = baseline_start(start, self.setup.inventory.policy.baseline_days);
        let key = run.key.id.clone();
        let report = match self
            .usage(run, step, Action::FetchUsage, baseline_start, end, sink)
            .await
        {
            Ok(Some(report)) => report,
            Ok(None) => return skipped("no usage returned"),
            Err(f) => return self.unavailable(sink, step, &key, Action::FetchUsage, f),
        };
        // Baseline events are kept too: the rules compare the window with them.
        let seen = UsageSeen::of(&report, start, end, baseline_start, EVIDENCE_EVENTS);
        let (requests, cost, in_window_events) =
            (seen.requests, seen.cost_usd, seen.events_in_window);
        let mut text = format!(
            "{requests} requests costing ${cost:.2} from {} to {} ({} buckets incl. {} baseline days, {} pages)",
            start.format("%Y-%m-%d %H:%M"),
            end.format("%Y-%m-%d %H:%M"),
            report.buckets.len(),
            self.setup.inventory.policy.baseline_days,
            report.pages
        );
        if let Some(src) = &report.events_source {
            text.push_str(&format!(
                "; {}: {in_window_events} event(s) in the window",
                src.name
            ));
        }
        for note in &report.notes {
            text.push_str("; ");
            text.push_str(note);
        }
        self.evidence(
            sink,
            step,
            &key,
            Action::FetchUsage,
            Evidence::usage(&report, seen, text),
        )?;
        run.usage = Some(report);
        if run.caps.audit {
            self.fetch_audit_log(run, step, start, end, sink).await?;
        }
        Ok(ActionOutcome::Done)
    }

    /// The provider's audit-log events about the key over the exposure window. An audit log
    /// the organization never enabled (or a failure to read it) is recorded and does not
    /// stop the audit: usage has been fetched and the rules can still run.
    async fn fetch_audit_log<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        sink: &mut S,
    ) -> Result<(), Failure> {
        let Some(id) = run.facts.provider_key_id.clone() else {
            return Ok(());
        };
        let key = run.key.id.clone();
        let op = Op::AuditLog { id, start, end };
        match self
            .provider_read(run, step, Action::FetchUsage, op, sink)
            .await
        {
            Ok(OpOutput::AuditEvents { events, pages }) => {
                let mut text = format!(
                    "{} audit-log event(s) about the key in the window ({pages} page(s))",
                    events.len()
                );
                for e in events.iter().take(10) {
                    text.push_str(&format!(
                        "; {} {} by {}{}",
                        e.at.format("%Y-%m-%d %H:%M"),
                        e.kind,
                        e.actor.as_deref().unwrap_or("unknown"),
                        e.ip_address
                            .as_deref()
                            .map(|ip| format!(" from {ip}"))
                            .unwrap_or_default()
                    ));
                }
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::FetchUsage,
                    Evidence::audit_log(events, pages, text),
                )?;
                Ok(())
            }
            Ok(_) => Ok(()),
            // Evidence unavailable like any other source (the summary, report and drills list
            // it); the usage already fetched still feeds the rules.
            Err(Failure::Failed { error, status, .. }) => {
                let error = self.http.redactor().scrub(&error);
                let unavailable = Evidence::audit_log_unavailable(error, status);
                self.evidence(sink, step, &key, Action::FetchUsage, unavailable)?;
                Ok(())
            }
            Err(other) => Err(other),
        }
    }

    /// Run every rule over the provider's usage (recorded by fetch_usage) and the gateway
    /// logs given when the incident opened, in one streaming pass.
    pub(super) fn evaluate_rules<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> Res {
        use crate::audit::{Evaluator, Event, SourceInfo, Window, expectations, logs};
        let inv = self.setup.inventory.clone();
        let (start, end) = self.exposure_window(run);
        let window = Window {
            baseline_start: baseline_start(start, inv.policy.baseline_days),
            start,
            end,
        };
        let mut eval = Evaluator::new(window, expectations(&inv, &run.key));
        // In memory when this process fetched it; after a resume, from the record (the usage
        // evidence, not the audit-log evidence the same action may add after it).
        let usage = match run.usage.take() {
            Some(r) => Some(r),
            None => crate::record::read_entries(&self.record.path())?
                .iter()
                .rev()
                .filter_map(|e| match crate::record::Event::of(e) {
                    crate::record::Event::Evidence(ev)
                        if ev.key.as_deref() == Some(run.key.id.as_str())
                            && ev.action.as_deref() == Some("fetch_usage") =>
                    {
                        ev.usage_report()
                    }
                    _ => None,
                })
                .next(),
        };
        if let Some(usage) = usage {
            eval.source(SourceInfo::provider_usage(&run.provider_def.id));
            for b in &usage.buckets {
                eval.feed(&Event::bucket(
                    b.start,
                    b.end,
                    b.requests,
                    b.tokens(),
                    b.cost_usd,
                ));
            }
            // Per-request sources that come with usage: CloudTrail calls, database sessions.
            if let Some(src) = usage.events_source {
                for ev in &usage.events {
                    eval.feed(&Event {
                        ts: ev.time,
                        until: None,
                        source_ip: ev.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
                        status: src.statuses.then(|| ev.status()),
                        model: src.models.then(|| ev.action.as_str().into()),
                        requests: 1,
                        tokens: 0,
                        cost_usd: None,
                    });
                }
                eval.source(src);
            }
        }
        // The store's value (read in memory by the redeploy step) also matches by its SHA-256:
        // gateways such as LiteLLM log that instead of the key.
        let matcher = logs::KeyMatch::for_key(
            &run.key,
            run.facts.provider_key_id.as_deref(),
            run.bag.old_key.as_ref().map(|v| v.expose()),
        );
        let paths = self.params.logs.clone();
        crate::audit::feed_logs(
            &mut eval,
            &run.key.id,
            &matcher,
            &paths,
            logs::OnBadLine::Count,
        )
        .map_err(|e| Failure::failed(format!("{step}: {e}"), true))?;
        let summary = eval.finish();
        let text = summary
            .rules
            .iter()
            .map(|r| match r.status {
                crate::audit::RuleStatus::Findings => {
                    format!("{}: {} finding(s)", r.rule, r.findings.len())
                }
                crate::audit::RuleStatus::Clean => format!("{}: clean", r.rule),
                crate::audit::RuleStatus::NotEvaluable => format!("{}: not evaluable", r.rule),
            })
            .chain(summary.notes.iter().cloned())
            .collect::<Vec<_>>()
            .join("; ");
        let key = run.key.id.clone();
        let verdicts = Evidence::rules(&summary, text);
        self.evidence(sink, step, &key, Action::EvaluateRules, verdicts)?;
        Ok(ActionOutcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_start_at_the_edge_of_time_gives_an_empty_baseline_not_a_panic() {
        let edge = DateTime::<Utc>::MIN_UTC;
        assert_eq!(baseline_start(edge, 365), edge);
        let t = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        assert_eq!(baseline_start(t, 14), t - Duration::days(14));
    }
}
