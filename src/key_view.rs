//! One key as every front-end shows it: a plain view model built from the inventory key and
//! the facts around it (status, what the provider can do by API, blast radius, incidents and
//! drills). `keyfire inventory show` prints it as text or JSON; the console's key screen draws
//! it. Building it does no I/O and needs no terminal, so the headless build uses it too.

use chrono::NaiveDate;

use crate::incidents::IncidentSummary;
use crate::inventory::view::{BlastRadius, KeyRow, blast_radius};
use crate::inventory::{Inventory, Key, ProviderDef};
use crate::provider::{Capabilities, capabilities_of};

/// The last drills around one key. The console knows them from its incident list; the CLI
/// does not show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrillFacts {
    /// The last drill on this key.
    pub key: Option<NaiveDate>,
    /// The last drill on any key of the same provider.
    pub provider: Option<NaiveDate>,
    /// The provider has had no drill within `policy.drill_every_days`.
    pub provider_due: bool,
}

/// Everything shown about one key.
#[derive(Debug, Clone)]
pub struct KeyView<'a> {
    pub key: &'a Key,
    /// `None` when the key names a provider the inventory does not define.
    pub provider: Option<&'a ProviderDef>,
    /// Age, due date and status.
    pub row: KeyRow,
    pub capabilities: Option<Capabilities>,
    pub radius: BlastRadius,
    /// Incidents and drills that touched the key, in the order of the list given.
    pub history: Vec<&'a IncidentSummary>,
    /// The last drill over the key; only the console shows it (`inventory show` prints the
    /// same lines it always has).
    #[cfg_attr(not(feature = "tui"), allow(dead_code))]
    pub drills: Option<DrillFacts>,
}

/// Whether a provider can do one operation by API.
type Has = fn(&Capabilities) -> bool;

/// The operations listed under "by API", in display order.
const BY_API: [(&str, Has); 6] = [
    ("locate", |c| c.locate),
    ("verify", |c| c.verify),
    ("disable", |c| c.disable),
    ("revoke", |c| c.revoke),
    ("create", |c| c.create),
    ("usage", |c| c.usage),
];

impl<'a> KeyView<'a> {
    /// The view of `key`, whose row (status) the caller computed, with the incidents among
    /// `incidents` that touched it.
    pub fn new(
        inv: &'a Inventory,
        key: &'a Key,
        row: KeyRow,
        incidents: &'a [IncidentSummary],
    ) -> Self {
        let provider = inv.provider_of(key);
        Self {
            key,
            provider,
            row,
            capabilities: provider.map(|p| capabilities_of(p.kind)),
            radius: blast_radius(inv, key),
            history: incidents
                .iter()
                .filter(|i| i.keys.contains(&key.id))
                .collect(),
            drills: None,
        }
    }

    #[cfg_attr(not(feature = "tui"), allow(dead_code))]
    pub fn with_drills(mut self, drills: DrillFacts) -> Self {
        self.drills = Some(drills);
        self
    }

    /// The provider's kind, `?` when the provider is not defined.
    pub fn provider_kind(&self) -> &'static str {
        self.provider.map_or("?", |p| p.kind.as_str())
    }

    /// The steps keyfire can take through the provider's API (empty: every step is manual);
    /// `None` when the provider is not defined.
    pub fn by_api(&self) -> Option<Vec<&'static str>> {
        self.capabilities.map(|c| {
            BY_API
                .iter()
                .filter(|(_, has)| has(&c))
                .map(|(name, _)| *name)
                .collect()
        })
    }

    /// Where the replacement is written: the store and its path, when both are set.
    pub fn redeploy_target(&self) -> Option<(&str, &str)> {
        match (&self.radius.store, &self.radius.secret_path) {
            (Some(s), Some(p)) => Some((s, p)),
            _ => None,
        }
    }
}
