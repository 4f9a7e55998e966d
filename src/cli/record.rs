//! `keyfire record verify [ID|PATH] [--public-key FILE]` and `keyfire record public-key`.

use super::{CliError, Context, Exit, RecordCommand};
use crate::record::{Signature, Signer, VerifyOptions, verify_with};

pub fn run(ctx: &Context, cmd: RecordCommand) -> Exit {
    let (target, json, public_key) = match cmd {
        RecordCommand::Verify {
            target,
            json,
            public_key,
        } => (target, json, public_key),
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
        None => VerifyOptions::local(),
    };
    let paths = match target {
        Some(t) => vec![crate::incidents::record_path(&ctx.data_dir, &t)],
        None => crate::incidents::list(&ctx.data_dir)
            .into_iter()
            .map(|i| i.path)
            .collect(),
    };
    let reports: Vec<_> = paths.iter().map(|p| verify_with(p, &opts)).collect();
    if json {
        let text =
            serde_json::to_string_pretty(&reports).map_err(|e| CliError::failed(e.to_string()))?;
        println!("{text}");
    } else {
        for r in &reports {
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
    }
    Ok(if reports.iter().all(|r| r.ok()) { 0 } else { 1 })
}
