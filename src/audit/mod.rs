//! Audit: what was the key used for during the exposure window, and by whom? Sources become
//! one event stream; the rules of DESIGN section 7 run over it in one pass.

pub mod event;
pub mod logs;
pub mod rules;
pub mod run;

pub use event::{Event, SourceInfo};
pub use rules::{AuditSummary, Evaluator, Expectations, RuleResult, RuleStatus, Window};

use crate::inventory::{Inventory, Key};

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
            Some(h) => active_hours.push(h.clone()),
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
