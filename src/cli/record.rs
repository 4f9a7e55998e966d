//! `keyfire record verify [ID|PATH] [--public-key FILE] [--against URL]` and `keyfire record
//! public-key`. With a shared location, a record this machine does not have is verified from
//! the store; `--against URL` compares a local record with its shared copy line by line.

use super::{CliError, Context, Exit, RecordCommand};
use crate::fsutil;
use crate::record::shared::{self, Location, SharedStore, adopt};
use crate::record::{Signature, Signer, VerifyOptions, VerifyReport, verify_with};

pub(super) fn run(ctx: &Context, cmd: RecordCommand) -> Exit {
    let (target, json, public_key, against) = match cmd {
        RecordCommand::Verify {
            target,
            json,
            public_key,
            against,
        } => (target, json, public_key, against),
        RecordCommand::PublicKey => {
            let signer = Signer::load_or_create(&ctx.data_dir)
                .map_err(|e| CliError::failed(e.to_string()))?;
            println!("{}", signer.public().to_text());
            return Ok(0);
        }
    };
    let opts = match public_key {
        Some(file) => VerifyOptions {
            trusted: crate::record::signing::read_public_keys(&file).map_err(CliError::input)?,
            required: true,
        },
        None => super::records::verify_options(ctx)?,
    };
    if let Some(url) = against {
        let id = target.ok_or_else(|| {
            CliError::input(
                "--against needs the incident id (keyfire record verify ID --against URL)",
            )
        })?;
        return against_shared(ctx, &id, &url, &opts, json);
    }
    let mut reports: Vec<VerifyReport> = Vec::new();
    match target {
        Some(t) => match super::records::existing_record(ctx, &t)? {
            (_, Some(shared)) => reports.push(shared),
            (path, None) => reports.push(verify_with(&path, &opts)),
        },
        None => {
            for i in super::records::list_with_shared(ctx)? {
                if i.path.is_file() {
                    reports.push(verify_with(&i.path, &opts));
                } else if let Some((_, Some(shared))) = super::records::readable_record(ctx, &i.id)?
                {
                    reports.push(shared);
                }
            }
        }
    }
    print_reports(ctx, &reports, json)?;
    Ok(if reports.iter().all(|r| r.ok()) { 0 } else { 1 })
}

fn print_reports(ctx: &Context, reports: &[VerifyReport], json: bool) -> Result<(), CliError> {
    if json {
        let text =
            serde_json::to_string_pretty(&reports).map_err(|e| CliError::failed(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    for r in reports {
        match &r.first_bad {
            None => {
                let how = match r.signature {
                    Signature::Signed => "signed",
                    Signature::SignedUnanchored => "signed, key not anchored",
                    Signature::Unsigned => "unsigned (older keyfire)",
                    Signature::NoHead => "not signed yet",
                    Signature::NotChecked => "signature not checked",
                };
                println!("ok        {} ({} entries, {how})", r.path, r.entries);
                if let Some(h) = &r.last_hash {
                    println!("          last hash {h}");
                }
            }
            Some(bad) => println!("TAMPERED  {} line {}: {}", r.path, bad.line, bad.reason),
        }
        for note in &r.notes {
            println!("          note: {note}");
        }
    }
    if reports.is_empty() {
        println!("no incident records in {}", ctx.data_dir.display());
    }
    Ok(())
}

/// How a local record and its shared copy compare.
#[derive(Debug, serde::Serialize)]
struct Comparison {
    incident: String,
    local: VerifyReport,
    shared: VerifyReport,
    local_entries: u64,
    shared_entries: u64,
    /// The first line that differs (`None`: one is a prefix of the other).
    first_difference: Option<usize>,
    verdict: String,
}

fn against_shared(ctx: &Context, id: &str, url: &str, opts: &VerifyOptions, json: bool) -> Exit {
    let table = ctx
        .records
        .as_ref()
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    let location = Location::parse(url, &table).map_err(|e| CliError::input(e.to_string()))?;
    let store = shared::block_on(SharedStore::open(location, table))
        .map_err(|e| CliError::input(e.to_string()))?;
    let path = crate::incidents::record_path(&ctx.data_dir, id);
    let local_bytes = fsutil::read(&path)
        .map_err(|e| CliError::input(format!("incident {id}: {}: {e}", path.display())))?;
    let fetched = shared::block_on(store.fetch(id)).map_err(|e| CliError::failed(e.to_string()))?;
    let local = verify_with(&path, opts);
    let shared_report = adopt::verify_fetched(&store, id, &fetched, opts);
    let local_entries = adopt::line_count(&local_bytes);
    let diff = adopt::first_difference(&local_bytes, &fetched.record);
    let verdict = match diff {
        Some(n) => format!(
            "line {n} differs between the local record and the shared copy: one of them was edited (the shared copy is write-once: trust it when it verifies)"
        ),
        None if local_entries > fetched.entries => format!(
            "the same up to line {}; lines {}..{local_entries} are only local (not yet shared)",
            fetched.entries,
            fetched.entries + 1
        ),
        None if local_entries < fetched.entries => format!(
            "the same up to line {local_entries}; the shared copy goes on to line {} (another machine continued)",
            fetched.entries
        ),
        None => format!("identical ({local_entries} entries)"),
    };
    let same = diff.is_none() && local.ok() && shared_report.ok();
    let cmp = Comparison {
        incident: id.to_string(),
        local,
        shared: shared_report,
        local_entries,
        shared_entries: fetched.entries,
        first_difference: diff,
        verdict,
    };
    if json {
        let text =
            serde_json::to_string_pretty(&cmp).map_err(|e| CliError::failed(e.to_string()))?;
        println!("{text}");
    } else {
        print_reports(ctx, &[cmp.local.clone(), cmp.shared.clone()], false)?;
        println!(
            "{}  {} against {}: {}",
            if same { "same    " } else { "DIFFERENT" },
            path.display(),
            store.display(),
            cmp.verdict
        );
    }
    Ok(if same { 0 } else { 1 })
}
