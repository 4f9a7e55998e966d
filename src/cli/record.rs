//! `keyfire record verify [ID|PATH]`.

use super::{CliError, Context, Exit, RecordCommand};
use crate::record::verify_file;

pub fn run(ctx: &Context, cmd: RecordCommand) -> Exit {
    let RecordCommand::Verify { target, json } = cmd;
    let paths = match target {
        Some(t) => vec![crate::incidents::record_path(&ctx.data_dir, &t)],
        None => crate::incidents::list(&ctx.data_dir)
            .into_iter()
            .map(|i| i.path)
            .collect(),
    };
    let reports: Vec<_> = paths.iter().map(|p| verify_file(p)).collect();
    if json {
        let text =
            serde_json::to_string_pretty(&reports).map_err(|e| CliError::failed(e.to_string()))?;
        println!("{text}");
    } else {
        for r in &reports {
            match &r.first_bad {
                None => println!("ok        {} ({} entries)", r.path, r.entries),
                Some(bad) => println!("TAMPERED  {} line {}: {}", r.path, bad.line, bad.reason),
            }
        }
        if reports.is_empty() {
            println!("no incident records in {}", ctx.data_dir.display());
        }
    }
    Ok(if reports.iter().all(|r| r.ok()) { 0 } else { 1 })
}
