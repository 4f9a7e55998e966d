//! `keyfire audit`: the rules over a window outside any incident, for one key or every key
//! (a cron job). Read-only by construction: its HTTP client refuses any write plan. It sits
//! with the command rather than in `audit`, which providers use (source facts, log parsing)
//! and so must not call back into them.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveTime, Utc};

use crate::audit::logs::{self, KeyMatch, LogError, OnBadLine};
use crate::audit::{AuditSummary, Evaluator, Event, SourceInfo, Window, expectations};
use crate::http::Http;
use crate::inventory::{Inventory, Key};
use crate::plan::SecretBag;
use crate::provider::{AnyProvider, Op, OpOutput};

/// One key's audit: the summary, and why a source could not be read.
#[derive(Debug, serde::Serialize)]
pub(super) struct KeyAudit {
    pub key: String,
    pub summary: AuditSummary,
    pub problems: Vec<String>,
}

/// The window for a key: `since`, else its last rotation (or 30 days), to now.
pub(super) fn window_for(
    inv: &Inventory,
    key: &Key,
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Window {
    let start = since
        .or_else(|| {
            key.issued_on()
                .map(|d| d.and_time(NaiveTime::MIN).and_utc())
        })
        .unwrap_or(now - Duration::days(30))
        .min(now);
    Window {
        baseline_start: start - Duration::days(i64::from(inv.policy.baseline_days)),
        start,
        end: now,
    }
}

/// The provider's usage for the key over the window, as events. Errors are returned as text:
/// a source that cannot be read makes rules "not evaluable", it does not stop the audit.
async fn provider_usage(
    inv: &Inventory,
    key: &Key,
    window: &Window,
    http: &Http,
) -> Result<Option<(String, Vec<Event>)>, String> {
    let Some(def) = inv.provider_of(key) else {
        return Ok(None);
    };
    let provider = AnyProvider::from_def(def);
    if !provider.capabilities().usage {
        return Ok(None);
    }
    let mut bag = SecretBag::default();
    if let Some(cref) = &def.admin_credential {
        bag.admin = Some(
            crate::credential::resolve(cref, inv, http)
                .await
                .map_err(|e| format!("admin credential: {e}"))?,
        );
    }
    let locate = Op::Locate {
        id: key.provider_key_id.clone(),
        name: None,
        hint: key.hint.clone(),
    };
    let plan = provider.plan(&locate).map_err(|e| e.to_string())?;
    let id = match provider
        .execute(&locate, &plan, http, &bag)
        .await
        .map_err(|e| format!("locate: {e}"))?
    {
        OpOutput::Located(Some(k)) => k.id,
        _ => return Err(format!("key not found at provider `{}`", def.id)),
    };
    let op = Op::Usage {
        id,
        start: window.baseline_start,
        end: window.end,
    };
    let plan = provider.plan(&op).map_err(|e| e.to_string())?;
    match provider
        .execute(&op, &plan, http, &bag)
        .await
        .map_err(|e| format!("usage: {e}"))?
    {
        OpOutput::Usage(r) => Ok(Some((
            def.id.clone(),
            r.buckets
                .iter()
                .map(|b| Event::bucket(b.start, b.end, b.requests, b.tokens(), b.cost_usd))
                .collect(),
        ))),
        _ => Ok(None),
    }
}

/// Audit keys over their windows: provider usage for each, and every gateway log read once.
pub(super) async fn audit_keys(
    inv: &Inventory,
    keys: &[&Key],
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    log_files: &[PathBuf],
    http: &Http,
    progress: Option<&crate::cli::progress::Counter>,
) -> Result<Vec<KeyAudit>, LogError> {
    let mut evals: Vec<Evaluator> = Vec::with_capacity(keys.len());
    let mut problems: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
    for (i, key) in keys.iter().enumerate() {
        if let Some(p) = progress {
            p.at(i, format!("reading the usage of {}", key.id));
        }
        let window = window_for(inv, key, since, now);
        let mut eval = Evaluator::new(window, expectations(inv, key));
        match provider_usage(inv, key, &window, http).await {
            Ok(Some((provider, events))) => {
                eval.source(SourceInfo::provider_usage(&provider));
                events.iter().for_each(|e| eval.feed(e));
            }
            Ok(None) => {}
            Err(e) => problems[i].push(format!(
                "provider usage unavailable: {}",
                http.redactor().scrub(&e)
            )),
        }
        evals.push(eval);
    }
    let matchers: Vec<KeyMatch> = keys
        .iter()
        .map(|k| KeyMatch::for_key(k, None, None))
        .collect();
    let mut exact: HashMap<&str, usize> = HashMap::new();
    for (i, m) in matchers.iter().enumerate() {
        for n in m.names.iter().chain(&m.fingerprints) {
            exact.entry(n.as_str()).or_insert(i);
        }
    }
    let single = keys.len() == 1;
    for path in log_files {
        let mut used = vec![0u64; keys.len()];
        let stats = logs::read_routed(
            path,
            OnBadLine::Stop,
            |k| match k {
                // A log without key ids belongs to the one key being audited.
                None => single.then_some(0),
                Some(k) => exact
                    .get(k)
                    .copied()
                    .or_else(|| matchers.iter().position(|m| m.matches(Some(k)))),
            },
            |i, e| {
                used[i] = used[i].saturating_add(1);
                evals[i].feed(e)
            },
        )?;
        for (i, e) in evals.iter_mut().enumerate() {
            e.log_source(
                logs::source_info(path),
                &keys[i].id,
                &matchers[i],
                &stats,
                used[i],
            );
        }
    }
    Ok(keys
        .iter()
        .zip(evals)
        .zip(problems)
        .map(|((k, e), p)| KeyAudit {
            key: k.id.clone(),
            summary: e.finish(),
            problems: p,
        })
        .collect())
}
