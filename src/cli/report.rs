//! `keyfire report ID [--format md|json] [--force]`: verify the record, render the breach
//! report from it, print it and keep a copy beside the record. A record that fails
//! verification is refused (exit 1, naming the first bad line) unless `--force`, which
//! marks every page UNVERIFIED.

use super::{CliError, Context, Exit, ReportFormat};
use crate::record::{read_entries, verify_with};

pub(super) fn run(ctx: &Context, id: &str, format: ReportFormat, force: bool) -> Exit {
    // With a shared location, an incident this machine does not have is read (and verified)
    // from the store.
    let (path, shared_check) = super::records::existing_record(ctx, id)?;
    let check = match shared_check {
        Some(c) => c,
        None => verify_with(&path, &super::records::verify_options(ctx)?),
    };
    let unverified = match &check.first_bad {
        None => None,
        Some(bad) if force => {
            eprintln!(
                "keyfire: incident {id}: the record FAILS verification at line {}: {}; rendering it anyway (--force), marked UNVERIFIED",
                bad.line, bad.reason
            );
            Some(format!("line {}: {}", bad.line, bad.reason))
        }
        Some(bad) => {
            return Err(CliError::failed(format!(
                "incident {id}: the record fails verification at line {}: {}. No report was rendered (use --force to render it marked UNVERIFIED)",
                bad.line, bad.reason
            )));
        }
    };
    let entries =
        read_entries(&path).map_err(|e| CliError::input(format!("incident {id}: {e}")))?;
    let mut report = crate::report::build(id, &entries)
        .ok_or_else(|| CliError::input(format!("incident {id}: empty record")))?;
    report.record.unverified = unverified;
    report.record.signature = Some(check.signature);
    let (text, name) = match format {
        ReportFormat::Md => (crate::report::render_markdown(&report), "report.md"),
        ReportFormat::Json => (crate::report::render_json(&report), "report.json"),
    };
    if let Some(dir) = path.parent() {
        crate::record::files::write_atomic(&dir.join(name), text.as_bytes())
            .map_err(|e| CliError::failed(format!("cannot write {name}: {e}")))?;
    }
    println!("{text}");
    Ok(0)
}
