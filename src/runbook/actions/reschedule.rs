//! Step 5, reschedule: record the rotation in the inventory file (`last_rotated`, and a
//! shorter `rotation_days` after an incident), approved like any other write.

use chrono::NaiveDate;
use serde::Serialize;

use super::{ActionOutcome, Failure, Res, skipped};
use crate::plan::RequestPlan;
use crate::record::event::{Evidence, Response, Rotation};
use crate::runbook::action::{Action, StepId};
use crate::runbook::context::{Ctx, KeyRun, Purpose};
use crate::runbook::gate::{Gate, Sink};

/// The edit's body as the plan shows it for approval.
#[derive(Serialize)]
struct EditBody {
    last_rotated: NaiveDate,
    rotation_days: Option<u32>,
    diff: String,
}

impl Ctx {
    pub(super) async fn update_inventory<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        use crate::inventory::edit::{Reschedule, apply_locked, read_and_plan};
        let inv = self.setup.inventory.clone();
        let Some(file) = inv.files.get(run.key.origin.file) else {
            return skipped("the inventory was not loaded from a file");
        };
        let r = Reschedule {
            key: run.key.id.clone(),
            last_rotated: self.now().date_naive(),
            // An incident shortens the interval; a scheduled rotation keeps it.
            rotation_days: match self.params.purpose {
                Purpose::Incident => Some(inv.policy.after_incident_rotation_days),
                Purpose::Rotation => None,
            },
        };
        let reason = match self.params.purpose {
            Purpose::Incident => "incident",
            Purpose::Rotation => "scheduled",
        };
        let interval = r
            .rotation_days
            .map_or("keep rotation_days".to_string(), |d| {
                format!("rotation_days = {d}")
            });
        let edit = read_and_plan(&file.path, &r)
            .map_err(|e| Failure::failed(format!("{step}: {e}"), true))?;
        let key = run.key.id.clone();
        if !edit.changed() {
            return skipped("the inventory already has this rotation");
        }
        let body = serde_json::to_value(EditBody {
            last_rotated: r.last_rotated,
            rotation_days: r.rotation_days,
            diff: edit.diff(),
        })
        .map_err(|e| Failure::failed(format!("{step}: {e}"), false))?;
        let plan = RequestPlan::write(
            format!(
                "Set last_rotated = {} and {interval} for {key} in {}",
                r.last_rotated,
                file.path.display()
            ),
            "EDIT",
            file.path.display().to_string(),
        )
        .json(body);
        if !self
            .gate_plan(run, step, Action::UpdateInventory, &plan, gate, sink)
            .await?
        {
            return Ok(ActionOutcome::Done);
        }
        // The approval showed the edit on the file as it was; other keys of the campaign (or
        // a person) may have edited it since. Apply it, under the file's lock, to the file as
        // it is now.
        let written = apply_locked(&file.path, &r)
            .map_err(|e| Failure::failed(format!("{step}: {e}"), true))?;
        crate::failpoint::failpoint("update_inventory:written");
        let wrote = Response::wrote(Action::UpdateInventory, file.path.display().to_string());
        self.record(sink, Some(step), &key, &wrote)?;
        if written.before != edit.before {
            let changed = Evidence::changed_since_approval(
                "the file changed between the approval and the write: the edit was applied to it as it is now",
            );
            self.evidence(sink, step, &key, Action::UpdateInventory, changed)?;
        }
        let rotation = Rotation {
            key: key.clone(),
            last_rotated: Some(r.last_rotated),
            rotation_days: r.rotation_days,
            reason: reason.into(),
        };
        self.evidence(
            sink,
            step,
            &key,
            Action::UpdateInventory,
            Evidence::rescheduled(rotation),
        )?;
        Ok(ActionOutcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The body the approval shows is the one the old `json!` literal built.
    #[test]
    fn the_edit_body_keeps_its_shape() {
        let last_rotated = NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
        let diff = "- last_rotated = 2026-01-01\n+ last_rotated = 2026-11-27\n".to_string();
        for rotation_days in [Some(30u32), None] {
            let body = EditBody {
                last_rotated,
                rotation_days,
                diff: diff.clone(),
            };
            assert_eq!(
                serde_json::to_value(body).expect("body"),
                json!({ "last_rotated": last_rotated, "rotation_days": rotation_days, "diff": diff })
            );
        }
    }
}
