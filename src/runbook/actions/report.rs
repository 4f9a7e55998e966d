//! Step 4, report: the operator's answer to "could customer data have been reached?", then
//! report.md and report.json beside the record, rendered from the record.

use super::{ActionOutcome, Failure, Res};
use crate::record::event::{Evidence, OperatorInput};
use crate::runbook::action::{Action, StepId};
use crate::runbook::context::{Ctx, KeyRun, Purpose};
use crate::runbook::gate::{CustomerDataRequest, Gate, Sink};

impl Ctx {
    pub(super) async fn write_report<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        self.ask_customer_data(run, step, gate, sink).await?;
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

impl Ctx {
    /// Ask the operator whether customer data could have been reached (drills too), and
    /// record the answer before the report is rendered, so the report states it. An answer
    /// already in the record (a resumed incident) is not asked again.
    async fn ask_customer_data<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Result<(), Failure> {
        if self.params.purpose != Purpose::Incident || run.customer_data.is_some() {
            return Ok(());
        }
        let reaching = crate::report::reaching_scopes(&run.key.scopes);
        let req = CustomerDataRequest {
            incident: &self.id,
            key: &run.key.id,
            drill: self.params.dry_run,
            reaching_scopes: Some(&reaching),
        };
        let reply = gate.customer_data(&req).await;
        // Free text can hold anything, a pasted key included: scrubbed before it is kept
        // (the record writer scrubs again).
        let note = reply
            .note
            .as_deref()
            .map(|n| self.http.redactor().scrub(n.trim()))
            .filter(|n| !n.is_empty());
        let input =
            OperatorInput::customer_data(Action::WriteReport, reply.answer, note).via(reply.via);
        let key = run.key.id.clone();
        self.record(sink, Some(step), &key, &input)?;
        run.customer_data = Some(reply.answer);
        Ok(())
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
