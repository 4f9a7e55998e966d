//! The fixed vocabulary of steps and actions a runbook may use.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum StepId {
    /// Implicit step 0: credentials, locate, snapshot before anything changes.
    Open,
    Revoke,
    Redeploy,
    Audit,
    Report,
    Reschedule,
}

impl StepId {
    /// The five steps a runbook file defines, in their contain-first order.
    pub const RUNBOOK: [StepId; 5] = [
        Self::Revoke,
        Self::Redeploy,
        Self::Audit,
        Self::Report,
        Self::Reschedule,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Revoke => "revoke",
            Self::Redeploy => "redeploy",
            Self::Audit => "audit",
            Self::Report => "report",
            Self::Reschedule => "reschedule",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Open,
            Self::Revoke,
            Self::Redeploy,
            Self::Audit,
            Self::Report,
            Self::Reschedule,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for StepId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    ResolveCredentials,
    Locate,
    ReadStore,
    SnapshotUsage,
    Disable,
    Revoke,
    ProveRevoked,
    Create,
    StoreWrite,
    StoreReadBack,
    VerifyNew,
    Promote,
    FetchUsage,
    EvaluateRules,
    WriteReport,
    UpdateInventory,
}

/// (action, its step, required in a runbook, name) in canonical order.
const TABLE: &[(Action, StepId, bool, &str)] = &[
    (
        Action::ResolveCredentials,
        StepId::Open,
        true,
        "resolve_credentials",
    ),
    (Action::Locate, StepId::Open, true, "locate"),
    (Action::ReadStore, StepId::Open, true, "read_store"),
    (Action::SnapshotUsage, StepId::Open, true, "snapshot_usage"),
    (Action::Disable, StepId::Revoke, false, "disable"),
    (Action::Revoke, StepId::Revoke, true, "revoke"),
    (Action::ProveRevoked, StepId::Revoke, false, "prove_revoked"),
    (Action::Create, StepId::Redeploy, true, "create"),
    (Action::StoreWrite, StepId::Redeploy, true, "store_write"),
    (
        Action::StoreReadBack,
        StepId::Redeploy,
        false,
        "store_read_back",
    ),
    (Action::VerifyNew, StepId::Redeploy, false, "verify_new"),
    // Optional so that runbooks written before stages existed still load; without it a
    // staged store gets the replacement as current at once.
    (Action::Promote, StepId::Redeploy, false, "promote"),
    (Action::FetchUsage, StepId::Audit, true, "fetch_usage"),
    (
        Action::EvaluateRules,
        StepId::Audit,
        false,
        "evaluate_rules",
    ),
    (Action::WriteReport, StepId::Report, true, "write_report"),
    (
        Action::UpdateInventory,
        StepId::Reschedule,
        true,
        "update_inventory",
    ),
];

impl Action {
    pub fn as_str(self) -> &'static str {
        TABLE.iter().find(|r| r.0 == self).map_or("?", |r| r.3)
    }

    pub fn parse(s: &str) -> Option<Self> {
        TABLE.iter().find(|r| r.3 == s).map(|r| r.0)
    }

    pub fn step(self) -> StepId {
        TABLE
            .iter()
            .find(|r| r.0 == self)
            .map_or(StepId::Open, |r| r.1)
    }

    pub fn required(self) -> bool {
        TABLE.iter().find(|r| r.0 == self).is_some_and(|r| r.2)
    }

    /// Canonical position, which runbooks must keep.
    pub fn rank(self) -> usize {
        TABLE.iter().position(|r| r.0 == self).unwrap_or(usize::MAX)
    }

    pub fn of_step(step: StepId) -> impl Iterator<Item = Action> {
        TABLE.iter().filter(move |r| r.1 == step).map(|r| r.0)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
