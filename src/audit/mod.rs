//! Audit: what was the key used for during the exposure window, and by whom? Sources become
//! one event stream; the rules of DESIGN section 7 run over it in one pass.

mod blocks;
pub mod event;
// Fingerprints live with the secret types (the inventory checks them too); kept here by name.
pub use crate::secret::fingerprint;
pub mod logs;
pub mod rules;

pub use event::{Event, SourceInfo};
pub use rules::{AuditSummary, Evaluator, Expectations, RuleStatus, Window};
#[cfg(feature = "testing")]
pub use rules::RuleResult;

use std::path::PathBuf;

use crate::inventory::{Inventory, Key};
use logs::{KeyMatch, LogError, OnBadLine};

/// Read every gateway log into `eval` for one key, registering each with what it held for
/// the key. With [`OnBadLine::Count`] (an incident) nothing here fails: unreadable lines are
/// counted and a log that cannot be opened is reported, and the audit goes on.
pub fn feed_logs(
    eval: &mut Evaluator,
    key: &str,
    matcher: &KeyMatch,
    paths: &[PathBuf],
    on_bad: OnBadLine,
) -> Result<(), LogError> {
    for path in paths {
        match logs::read(path, matcher, on_bad, |e| eval.feed(e)) {
            Ok(stats) => eval.log_source(logs::source_info(path), key, matcher, &stats, stats.used),
            Err(e) if on_bad == OnBadLine::Count => eval.unavailable(&e.to_string()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The agents' declared behaviour and the policy's thresholds for one key.
pub fn expectations(inv: &Inventory, key: &Key) -> Expectations {
    let mut networks = Vec::new();
    let mut active_hours = Vec::new();
    let mut all_have_hours = !key.agents.is_empty();
    let mut all_have_networks = !key.agents.is_empty();
    for a in key.agents.iter().filter_map(|a| inv.agent(a)) {
        if a.expected_networks.is_empty() {
            all_have_networks = false;
        }
        networks.extend(a.expected_networks.iter().copied());
        match &a.active_hours {
            Some(h) => {
                let mut h = h.clone();
                h.timezone.get_or_insert(inv.policy.tz());
                active_hours.push(h);
            }
            None => all_have_hours = false,
        }
    }
    // An agent without declared hours may run any time: off-hours cannot be judged.
    if !all_have_hours {
        active_hours.clear();
    }
    if !all_have_networks {
        networks.clear();
    }
    Expectations {
        networks,
        active_hours,
        volume_factor: inv.policy.volume_factor,
        auth_failure_threshold: u64::from(inv.policy.auth_failure_threshold),
    }
}
