//! `keyfire records check | flush`, and the shared-copy helpers the incident, record and
//! report commands use when a shared location is configured.

use std::path::PathBuf;
use std::sync::Arc;

use super::{CliError, Context, Exit, RecordsCommand};
use crate::fsutil;
use crate::record::shared::{self, Sharing, adopt};
use crate::record::{RECORD_FILE, VerifyOptions, VerifyReport};

fn sharing(ctx: &Context) -> Result<Arc<Sharing>, CliError> {
    ctx.sharing()?.ok_or_else(|| {
        CliError::input(
            "no shared record location: pass --records URL, set KEYFIRE_RECORDS, or add [records] location to the config file",
        )
    })
}

/// How records are verified here: this machine's keys, plus the team's when a shared
/// location names them.
pub(super) fn verify_options(ctx: &Context) -> Result<VerifyOptions, CliError> {
    match ctx.sharing()? {
        Some(s) => s
            .trust()
            .map_err(|e| CliError::input(format!("[records] public_keys: {e}"))),
        None => Ok(VerifyOptions::local()),
    }
}

/// The record of `id` to read: the local one, or else the shared copy, fetched into
/// `DATA/shared-cache/ID/` (never into `incidents/`, which holds only this machine's
/// incidents) and verified. `None`: no shared location and no local record.
pub(super) fn readable_record(
    ctx: &Context,
    id: &str,
) -> Result<Option<(PathBuf, Option<VerifyReport>)>, CliError> {
    let local = crate::incidents::record_path(&ctx.data_dir, id);
    if local.is_file() {
        return Ok(Some((local, None)));
    }
    let Some(s) = ctx.sharing()? else {
        return Ok(None);
    };
    if !shared::valid_id(id) {
        return Ok(None);
    }
    let fetched = match shared::block_on(s.store.fetch(id)) {
        Ok(f) => f,
        Err(shared::SharedError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(CliError::failed(e.to_string())),
    };
    let opts = verify_options(ctx)?;
    let report = adopt::verify_fetched(&s.store, id, &fetched, &opts);
    let dir = ctx.data_dir.join("shared-cache").join(id);
    let io = |e: std::io::Error| CliError::failed(format!("cannot write {}: {e}", dir.display()));
    fsutil::private_dir(&dir).map_err(io)?;
    fsutil::write_atomic(&dir.join(RECORD_FILE), &fetched.record).map_err(io)?;
    let head = dir.join(crate::record::HEAD_FILE);
    match &fetched.head {
        Some(h) => fsutil::write_atomic(&head, h).map_err(io)?,
        None => {
            let _ = std::fs::remove_file(&head);
        }
    }
    Ok(Some((dir.join(RECORD_FILE), Some(report))))
}

/// [`readable_record`] for a command that needs the record: an incident found nowhere is an
/// input error (exit 2) saying where keyfire looked, not a record that "fails verification".
pub(super) fn existing_record(
    ctx: &Context,
    id: &str,
) -> Result<(PathBuf, Option<VerifyReport>), CliError> {
    readable_record(ctx, id)?.ok_or_else(|| {
        let shared = match &ctx.records {
            // Shown as the debug log shows a URL: no credential in a query or user part.
            Some((location, _)) => format!(
                ", nor at the shared location {}",
                crate::debug_log::shown_url(location)
            ),
            None => String::new(),
        };
        CliError::input(format!(
            "no incident `{id}` in {} (and no record file at that path){shared}: `keyfire incident list` shows them",
            crate::paths::incidents_dir(&ctx.data_dir).display()
        ))
    })
}

pub(super) fn run(ctx: &Context, cmd: RecordsCommand) -> Exit {
    match cmd {
        RecordsCommand::Check { json } => check(ctx, json),
        RecordsCommand::Flush => flush(ctx),
    }
}

fn check(ctx: &Context, json: bool) -> Exit {
    let s = sharing(ctx)?;
    let report =
        shared::block_on(s.store.check_retention()).map_err(|e| CliError::failed(e.to_string()))?;
    if json {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "location": s.store.display(),
            "enforced": report.enforced(),
            "check": report,
        }))
        .map_err(|e| CliError::failed(e.to_string()))?;
        println!("{text}");
    } else {
        println!("location  {}", s.store.display());
        println!("probe     {}", report.probe);
        println!(
            "create    {}",
            if report.create_only {
                "create-only: a second create of the probe was refused and it kept its content"
            } else {
                "NOT create-only: the probe was replaced"
            }
        );
        match (&report.delete_error, report.delete_refused) {
            (Some(e), true) => println!(
                "delete    refused ({e}): {} is kept",
                if report.versioned {
                    "the probe's version"
                } else {
                    "the probe"
                }
            ),
            _ => println!(
                "delete    ALLOWED: the probe was deleted, so a record could be deleted too"
            ),
        }
        if report.enforced() {
            println!("retention enforced: records here can be neither overwritten nor deleted");
        } else {
            println!(
                "retention NOT enforced: see Team set-up in the README (S3 Object Lock in compliance mode with a default retention; a GCS bucket lock; Azure immutable storage)"
            );
        }
    }
    Ok(if report.enforced() { 0 } else { 1 })
}

/// Share what the incident folders here still queue, in order.
fn flush(ctx: &Context) -> Exit {
    let s = sharing(ctx)?;
    let mut left = 0u64;
    let mut stopped = false;
    for i in crate::incidents::list(&ctx.data_dir) {
        let Some(dir) = i.path.parent().map(PathBuf::from) else {
            continue;
        };
        let lines = fsutil::read(&i.path)
            .map(|b| adopt::line_count(&b))
            .unwrap_or(0);
        let queue = shared::upload::QueueFile::read(&dir, s.store.display());
        if queue.shared >= lines {
            continue;
        }
        let mut up = shared::Uploader::start(
            s.store.clone(),
            &i.id,
            &dir,
            lines,
            shared::upload::LeaseStart::None,
        );
        let st = up.finish(std::time::Duration::from_secs(60));
        match (&st.stopped, st.pending()) {
            (Some(why), _) => {
                stopped = true;
                println!("{}: STOPPED: {why}", i.id);
            }
            (None, 0) => println!("{}: {} entries shared", i.id, st.shared),
            (None, n) => {
                left += n;
                println!(
                    "{}: {n} entries not yet shared ({})",
                    i.id,
                    st.last_error.as_deref().unwrap_or("store unreachable")
                );
            }
        }
    }
    if left == 0 && !stopped {
        println!("nothing queued for {}", s.store.display());
    }
    Ok(if left == 0 && !stopped { 0 } else { 1 })
}

/// `incident list` with a shared location: this machine's incidents and the store's, each
/// shared record verified.
pub(super) fn list_with_shared(
    ctx: &Context,
) -> Result<Vec<crate::incidents::IncidentSummary>, CliError> {
    let mut list = crate::incidents::list(&ctx.data_dir);
    let Some(s) = ctx.sharing()? else {
        return Ok(list);
    };
    let opts = verify_options(ctx)?;
    let ids =
        shared::block_on(s.store.list_incidents()).map_err(|e| CliError::failed(e.to_string()))?;
    for i in list.iter_mut() {
        i.shared = Some(if ids.contains(&i.id) {
            let lines = fsutil::read(&i.path)
                .map(|b| adopt::line_count(&b))
                .unwrap_or(0);
            let dir = i.path.parent().map(PathBuf::from).unwrap_or_default();
            let q = shared::upload::QueueFile::read(&dir, s.store.display());
            match lines.saturating_sub(q.shared) {
                0 => "shared".into(),
                n => format!("{n} queued"),
            }
        } else {
            "local only".into()
        });
    }
    for id in ids {
        if list.iter().any(|i| i.id == id) {
            continue;
        }
        let path = PathBuf::from(format!("{}/incidents/{id}", s.store.display()));
        let fetched = shared::block_on(s.store.fetch(&id));
        let summary = fetched.as_ref().ok().and_then(|f| {
            let entries = adopt::parse_entries(&f.record).ok()?;
            let mut sum = crate::incidents::summarize(&id, &path, &entries)?;
            let report = adopt::verify_fetched(&s.store, &id, f, &opts);
            sum.shared = Some(match &report.first_bad {
                None => "verified".into(),
                Some(bad) => format!("TAMPERED at line {}: {}", bad.line, bad.reason),
            });
            Some(sum)
        });
        list.push(
            summary.unwrap_or_else(|| crate::incidents::IncidentSummary {
                id: id.clone(),
                kind: crate::record::IncidentKind::Incident,
                drill: false,
                opened: String::new(),
                keys: Vec::new(),
                status: "damaged".into(),
                reason: None,
                entries: 0,
                path,
                total_ms: None,
                shared: Some(match fetched {
                    Err(e) => e.to_string(),
                    Ok(_) => "not a record".into(),
                }),
            }),
        );
    }
    list.sort_by(|a, b| b.opened.cmp(&a.opened).then(b.id.cmp(&a.id)));
    Ok(list)
}
