//! `keyfire report ID [--format md|json]`: render the breach report from the record, print
//! it and keep a copy beside the record.

use super::{CliError, Context, Exit, ReportFormat};
use crate::record::read_entries;

pub fn run(ctx: &Context, id: &str, format: ReportFormat) -> Exit {
    let path = crate::incidents::record_path(&ctx.data_dir, id);
    let entries =
        read_entries(&path).map_err(|e| CliError::input(format!("incident {id}: {e}")))?;
    let report = crate::report::build(id, &entries)
        .ok_or_else(|| CliError::input(format!("incident {id}: empty record")))?;
    let (text, name) = match format {
        ReportFormat::Md => (crate::report::render_markdown(&report), "report.md"),
        ReportFormat::Json => (crate::report::render_json(&report), "report.json"),
    };
    if let Some(dir) = path.parent() {
        crate::runbook::write_private(&dir.join(name), text.as_bytes())
            .map_err(|e| CliError::failed(format!("cannot write {name}: {e}")))?;
    }
    println!("{text}");
    Ok(0)
}
