//! The pure state machine of one key's run through the runbook: which action comes next,
//! what is done, what was skipped. No I/O; the drive loop feeds it outcomes.

use serde::{Deserialize, Serialize};

use super::action::{Action, StepId};
use super::spec::Runbook;

/// In which order each key is revoked and replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    #[default]
    /// Revoke first, then redeploy (agents are down in between).
    ContainFirst,
    /// Create, store and verify the replacement, then revoke at once.
    ZeroDowntime,
}

impl Order {
    /// The order as the record and `--json` output spell it: `contain-first`,
    /// `zero-downtime`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContainFirst => "contain-first",
            Self::ZeroDowntime => "zero-downtime",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Running,
    Done,
    Skipped,
    Failed,
}

#[derive(Debug, Clone)]
pub struct StepState {
    pub id: StepId,
    pub status: Status,
    pub actions: Vec<(Action, Status)>,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub key: String,
    pub order: Order,
    pub steps: Vec<StepState>,
}

/// The position of the next action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub step: usize,
    pub action: usize,
}

impl Session {
    /// The key's runbook in `order`. Containment never waits on evidence (DESIGN
    /// non-negotiable 7): the usage snapshot runs at the end of the revoke step, after the
    /// proof, unless the revoke itself destroys that evidence (see
    /// [`Session::snapshot_before_revoke`]).
    pub fn new(key: &str, runbook: &Runbook, order: Order) -> Self {
        let mut s = Self::with_open_snapshot(key, runbook, order);
        s.defer_snapshot();
        s
    }

    /// Keep the usage snapshot in the open step, before anything changes: for providers
    /// whose revoke destroys what the snapshot reads (PostgreSQL's live sessions).
    pub fn snapshot_before_revoke(mut self) -> Self {
        let Some(revoke) = self.steps.iter_mut().find(|s| s.id == StepId::Revoke) else {
            return self;
        };
        revoke.actions.retain(|(a, _)| *a != Action::SnapshotUsage);
        if let Some(open) = self.steps.iter_mut().find(|s| s.id == StepId::Open)
            && !open
                .actions
                .iter()
                .any(|(a, _)| *a == Action::SnapshotUsage)
        {
            open.actions.push((Action::SnapshotUsage, Status::Pending));
        }
        self
    }

    fn defer_snapshot(&mut self) {
        let Some(open) = self.steps.iter_mut().find(|s| s.id == StepId::Open) else {
            return;
        };
        let before = open.actions.len();
        open.actions.retain(|(a, _)| *a != Action::SnapshotUsage);
        if open.actions.len() == before {
            return;
        }
        if let Some(revoke) = self.steps.iter_mut().find(|s| s.id == StepId::Revoke) {
            revoke
                .actions
                .push((Action::SnapshotUsage, Status::Pending));
        }
    }

    fn with_open_snapshot(key: &str, runbook: &Runbook, order: Order) -> Self {
        let mut ids = vec![StepId::Open];
        match order {
            Order::ContainFirst => ids.extend([StepId::Revoke, StepId::Redeploy]),
            Order::ZeroDowntime => ids.extend([StepId::Redeploy, StepId::Revoke]),
        }
        ids.extend([StepId::Audit, StepId::Report, StepId::Reschedule]);
        let steps = ids
            .into_iter()
            .map(|id| {
                let actions: Vec<Action> = match id {
                    StepId::Open => Action::of_step(StepId::Open).collect(),
                    other => runbook
                        .step(other)
                        .map(|s| s.actions.clone())
                        .unwrap_or_default(),
                };
                StepState {
                    id,
                    status: Status::Pending,
                    actions: actions.into_iter().map(|a| (a, Status::Pending)).collect(),
                }
            })
            .collect();
        Self {
            key: key.to_string(),
            order,
            steps,
        }
    }

    /// A scheduled rotation: open, redeploy the replacement, revoke the old key, reschedule.
    /// No audit and no breach report: nothing leaked.
    pub fn rotation(key: &str, runbook: &Runbook) -> Self {
        let mut s = Self::new(key, runbook, Order::ZeroDowntime);
        s.steps
            .retain(|st| !matches!(st.id, StepId::Audit | StepId::Report));
        s
    }

    /// The next action to run, or `None` when every step is finished.
    pub fn next(&self) -> Option<Cursor> {
        for (si, step) in self.steps.iter().enumerate() {
            if matches!(step.status, Status::Done | Status::Skipped) {
                continue;
            }
            for (ai, (_, status)) in step.actions.iter().enumerate() {
                if matches!(status, Status::Pending | Status::Running | Status::Failed) {
                    return Some(Cursor {
                        step: si,
                        action: ai,
                    });
                }
            }
            // Every action settled but the step was not closed yet.
            return Some(Cursor {
                step: si,
                action: step.actions.len(),
            });
        }
        None
    }

    pub fn step_id(&self, c: Cursor) -> StepId {
        self.steps[c.step].id
    }

    pub fn action(&self, c: Cursor) -> Option<Action> {
        self.steps[c.step].actions.get(c.action).map(|(a, _)| *a)
    }

    pub fn step_started(&self, c: Cursor) -> bool {
        self.steps[c.step].status != Status::Pending
    }

    pub fn start_step(&mut self, c: Cursor) {
        self.steps[c.step].status = Status::Running;
    }

    pub fn settle(&mut self, c: Cursor, status: Status) {
        if let Some(a) = self.steps[c.step].actions.get_mut(c.action) {
            a.1 = status;
        }
        if status == Status::Failed {
            self.steps[c.step].status = Status::Failed;
        } else if self.steps[c.step].status == Status::Failed {
            self.steps[c.step].status = Status::Running;
        }
    }

    pub fn finish_step(&mut self, c: Cursor) {
        let step = &mut self.steps[c.step];
        let all_skipped =
            !step.actions.is_empty() && step.actions.iter().all(|(_, s)| *s == Status::Skipped);
        step.status = if all_skipped {
            Status::Skipped
        } else {
            Status::Done
        };
    }

    /// Mark an action as done from the record (resume).
    pub fn replay_action(&mut self, step: StepId, action: Action, status: Status) {
        // Records written before the usage snapshot moved behind the revoke name it in the
        // open step: settle it wherever this session runs it.
        let step = if self
            .steps
            .iter()
            .any(|s| s.id == step && s.actions.iter().any(|(a, _)| *a == action))
        {
            step
        } else {
            match self
                .steps
                .iter()
                .find(|s| s.actions.iter().any(|(a, _)| *a == action))
            {
                Some(s) => s.id,
                None => return,
            }
        };
        if let Some(s) = self.steps.iter_mut().find(|s| s.id == step) {
            if s.status == Status::Pending {
                s.status = Status::Running;
            }
            if let Some(a) = s.actions.iter_mut().find(|(a, _)| *a == action) {
                a.1 = status;
            }
        }
    }

    /// The status of an action, if the runbook has it.
    pub fn status_of(&self, step: StepId, action: Action) -> Option<Status> {
        self.steps
            .iter()
            .find(|s| s.id == step)?
            .actions
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, st)| *st)
    }

    /// Run `action` and everything after it in `step` again (the step too, if it had
    /// finished): a replacement that must be made anew needs storing, reading back, verifying
    /// and promoting anew. A step the operator skipped stays skipped.
    pub fn reopen_from(&mut self, step: StepId, action: Action) -> bool {
        let Some(s) = self
            .steps
            .iter_mut()
            .find(|s| s.id == step && s.status != Status::Skipped)
        else {
            return false;
        };
        let Some(at) = s.actions.iter().position(|(a, _)| *a == action) else {
            return false;
        };
        for a in &mut s.actions[at..] {
            a.1 = Status::Pending;
        }
        s.status = Status::Pending;
        true
    }

    pub fn replay_step_finished(&mut self, step: StepId) {
        if let Some(s) = self.steps.iter_mut().find(|s| s.id == step) {
            let all_skipped =
                !s.actions.is_empty() && s.actions.iter().all(|(_, st)| *st == Status::Skipped);
            s.status = if all_skipped {
                Status::Skipped
            } else {
                Status::Done
            };
        }
    }

    /// Whether the revoke step's own actions (everything but the deferred evidence read)
    /// are settled: containment is over, proven or not.
    pub fn containment_settled(&self) -> bool {
        self.steps
            .iter()
            .find(|s| s.id == StepId::Revoke)
            .is_some_and(|s| {
                s.actions
                    .iter()
                    .filter(|(a, _)| *a != Action::SnapshotUsage)
                    .all(|(_, st)| matches!(st, Status::Done | Status::Skipped))
            })
    }

    pub fn is_finished(&self) -> bool {
        self.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rb() -> Runbook {
        Runbook::builtin().unwrap()
    }

    #[test]
    fn contain_first_revokes_before_redeploy() {
        let s = Session::new("k", &rb(), Order::ContainFirst);
        let ids: Vec<StepId> = s.steps.iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            vec![
                StepId::Open,
                StepId::Revoke,
                StepId::Redeploy,
                StepId::Audit,
                StepId::Report,
                StepId::Reschedule
            ]
        );
    }

    #[test]
    fn zero_downtime_redeploys_first() {
        let s = Session::new("k", &rb(), Order::ZeroDowntime);
        assert_eq!(s.steps[1].id, StepId::Redeploy);
        assert_eq!(s.steps[2].id, StepId::Revoke);
    }

    #[test]
    fn walks_every_action_then_finishes() {
        let mut s = Session::new("k", &rb(), Order::ContainFirst);
        let mut seen = Vec::new();
        while let Some(c) = s.next() {
            if !s.step_started(c) {
                s.start_step(c);
            }
            match s.action(c) {
                Some(a) => {
                    seen.push(a);
                    s.settle(c, Status::Done);
                }
                None => s.finish_step(c),
            }
        }
        assert_eq!(seen.first(), Some(&Action::ResolveCredentials));
        assert_eq!(seen.last(), Some(&Action::UpdateInventory));
        assert_eq!(seen.len(), 4 + 3 + 5 + 2 + 1 + 1);
    }

    #[test]
    fn failed_action_is_offered_again() {
        let mut s = Session::new("k", &rb(), Order::ContainFirst);
        let c = s.next().unwrap();
        s.start_step(c);
        s.settle(c, Status::Failed);
        assert_eq!(s.next(), Some(c));
        assert_eq!(s.steps[0].status, Status::Failed);
    }

    #[test]
    fn replay_skips_done_actions() {
        let mut s = Session::new("k", &rb(), Order::ContainFirst);
        for a in Action::of_step(StepId::Open) {
            s.replay_action(StepId::Open, a, Status::Done);
        }
        s.replay_step_finished(StepId::Open);
        s.replay_action(StepId::Revoke, Action::Disable, Status::Done);
        let c = s.next().unwrap();
        assert_eq!(s.step_id(c), StepId::Revoke);
        assert_eq!(s.action(c), Some(Action::Revoke));
    }
}
