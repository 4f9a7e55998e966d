//! Step 4, report: report.md and report.json beside the record, rendered from the record.

use super::{ActionOutcome, Failure, Res};
use crate::record::event::Evidence;
use crate::runbook::action::{Action, StepId};
use crate::runbook::context::{Ctx, KeyRun};
use crate::runbook::gate::Sink;

impl Ctx {
    pub(super) fn write_report<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> Res {
        let key = run.key.id.clone();
        let dir = self.record.dir().to_path_buf();
        if self.params.keys.len() > 1 {
            // Rendering the whole campaign's report once per key would cost keys x entries.
            self.evidence(
                sink,
                step,
                &key,
                Action::WriteReport,
                Evidence::report_later(
                    dir.join("report.md").display().to_string(),
                    "the campaign's report is rendered once, when the incident closes",
                ),
            )?;
            return Ok(ActionOutcome::Done);
        }
        crate::failpoint::failpoint("write_report");
        let report = render_reports(self)
            .map_err(|e| Failure::failed(format!("{step}: cannot write the report: {e}"), true))?;
        self.evidence(
            sink,
            step,
            &key,
            Action::WriteReport,
            Evidence::report(
                dir.join("report.md").display().to_string(),
                dir.join("report.json").display().to_string(),
                report.notification.deadline,
            ),
        )?;
        Ok(ActionOutcome::Done)
    }
}

/// Write report.md and report.json beside the record, from the record.
pub(in crate::runbook) fn render_reports(ctx: &Ctx) -> std::io::Result<crate::report::Report> {
    let entries = crate::record::read_entries(&ctx.record.path()).map_err(std::io::Error::other)?;
    let report = crate::report::build(&ctx.id, &entries)
        .ok_or_else(|| std::io::Error::other("empty record"))?;
    let dir = ctx.record.dir();
    crate::fsutil::write_atomic(
        &dir.join("report.md"),
        crate::report::render_markdown(&report).as_bytes(),
    )?;
    crate::fsutil::write_atomic(
        &dir.join("report.json"),
        crate::report::render_json(&report).as_bytes(),
    )?;
    Ok(report)
}
