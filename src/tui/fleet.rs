//! What every screen reads and none owns: the inventory, the incident list the loop refreshes,
//! and the drill facts derived from it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate};

use crate::incidents::IncidentSummary;
use crate::inventory::Inventory;
use crate::key_view::DrillFacts;

#[derive(Debug)]
pub struct Fleet {
    pub inventory: Arc<Inventory>,
    /// Incidents and drills, as `keyfire incident list` orders them.
    pub incidents: Vec<IncidentSummary>,
    /// The last drill on each key.
    pub last_drill: HashMap<String, NaiveDate>,
    /// Providers with keys but no drill within `policy.drill_every_days`.
    pub drill_due_providers: Vec<String>,
    pub open_incidents: usize,
}

impl Fleet {
    pub fn new(
        inventory: Arc<Inventory>,
        incidents: Vec<IncidentSummary>,
        today: NaiveDate,
    ) -> Self {
        let mut fleet = Self {
            inventory,
            incidents: Vec::new(),
            last_drill: HashMap::new(),
            drill_due_providers: Vec::new(),
            open_incidents: 0,
        };
        fleet.set_incidents(incidents, today);
        fleet
    }

    /// The loop's refreshed incident list. Drill dates only ever move forward.
    pub fn set_incidents(&mut self, incidents: Vec<IncidentSummary>, today: NaiveDate) {
        for i in incidents.iter().filter(|i| i.drill) {
            if let Ok(t) = DateTime::parse_from_rfc3339(&i.opened) {
                for k in &i.keys {
                    let d = t.date_naive();
                    let e = self.last_drill.entry(k.clone()).or_insert(d);
                    if d > *e {
                        *e = d;
                    }
                }
            }
        }
        self.compute_drill_due(today);
        self.open_incidents = incidents
            .iter()
            .filter(|i| i.kind == crate::record::IncidentKind::Incident && i.is_open())
            .count();
        self.incidents = incidents;
    }

    /// The inventory as reloaded after an edit.
    pub fn set_inventory(&mut self, inventory: Arc<Inventory>, today: NaiveDate) {
        self.inventory = inventory;
        self.compute_drill_due(today);
    }

    /// Keys with an open (live) incident.
    pub fn open_keys(&self) -> HashSet<String> {
        open_keys(&self.incidents)
    }

    /// The open (live) incident on this key, if any.
    pub fn open_incident_of(&self, key_id: &str) -> Option<&IncidentSummary> {
        self.incidents
            .iter()
            .filter(|i| i.kind == crate::record::IncidentKind::Incident && i.is_open())
            .find(|i| i.keys.iter().any(|k| k == key_id))
    }

    fn compute_drill_due(&mut self, today: NaiveDate) {
        let mut last: HashMap<&str, NaiveDate> = HashMap::new();
        let mut used: Vec<&str> = Vec::new();
        for k in &self.inventory.keys {
            if !used.contains(&k.provider.as_str()) {
                used.push(&k.provider);
            }
            if let Some(d) = self.last_drill.get(&k.id) {
                let e = last.entry(&k.provider).or_insert(*d);
                if d > e {
                    *e = *d;
                }
            }
        }
        let every = i64::from(self.inventory.policy.drill_every_days);
        self.drill_due_providers = used
            .into_iter()
            .filter(|p| last.get(p).is_none_or(|d| (today - *d).num_days() > every))
            .map(str::to_string)
            .collect();
    }

    pub fn days_since_last_drill(&self, today: NaiveDate) -> Option<i64> {
        self.last_drill
            .values()
            .max()
            .map(|d| (today - *d).num_days())
    }

    /// The last drills around one key (for its key screen).
    pub fn drill_facts(&self, key_id: &str, provider: &str) -> DrillFacts {
        DrillFacts {
            key: self.last_drill.get(key_id).copied(),
            provider: self
                .inventory
                .keys
                .iter()
                .filter(|k| k.provider == provider)
                .filter_map(|k| self.last_drill.get(&k.id))
                .max()
                .copied(),
            provider_due: self.drill_due_providers.iter().any(|p| p == provider),
        }
    }
}

/// Keys with an open (live) incident in `incidents`.
pub fn open_keys(incidents: &[IncidentSummary]) -> HashSet<String> {
    incidents
        .iter()
        .filter(|i| i.kind == crate::record::IncidentKind::Incident && i.is_open())
        .flat_map(|i| i.keys.clone())
        .collect()
}
