//! `keyfire scan`: find leaked values in files, git history or scanner reports, match them to
//! inventory keys (never printing a value), and open the incident for the live ones.
//!
//! Exit codes: 0 clean; 1 a live (or not provably dead) inventory key, an unmanaged or
//! ambiguous secret, a withheld value, or an unreadable file (an incomplete scan is never
//! clean); 2 bad input, nothing scanned. With `--start-incident`, the incident's own failure
//! also exits 1.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::{CliError, Context, Exit, TerminalGate, parse_start, runtime};
use std::sync::Mutex;

use crate::inventory::{CredentialRef, Inventory};
use crate::scan::saved::SavedScan;
use crate::scan::summary::{KeySummary, Totals, summarize_keys, totals};
use crate::scan::{Finding, Found, KeyState, Matcher, ScanError, ScanOutcome, ScanRequest};

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files and directories to read (`.env*`, configuration files, Dockerfiles, notebooks
    /// and every other text file); with --git, each one's repository history too.
    #[arg(value_name = "PATH", required_unless_present_any = ["reports", "github"])]
    pub paths: Vec<PathBuf>,
    /// Also read every line added by every commit reachable from any ref.
    #[arg(long)]
    pub git: bool,
    /// With --git: only commits not reachable from this revision.
    #[arg(long, value_name = "REV", requires = "git")]
    pub since: Option<String>,
    /// A scanner's report: gitleaks JSON, TruffleHog JSON lines, or GitHub secret-scanning
    /// alerts (repeatable; the format is recognized from the content).
    #[arg(long = "report", value_name = "FILE")]
    pub reports: Vec<PathBuf>,
    /// Also this GitHub repository's secret-scanning alerts, fetched from the REST API.
    #[arg(long, value_name = "OWNER/REPO")]
    pub github: Option<String>,
    /// The token for --github, as a credential reference (never the token itself).
    #[arg(
        long,
        value_name = "REF",
        default_value = "env:GITHUB_TOKEN",
        requires = "github"
    )]
    pub github_token: String,
    /// The REST API root for --github (GitHub Enterprise Server: https://HOST/api/v3).
    #[arg(long, value_name = "URL", default_value = crate::scan::github::DEFAULT_API, requires = "github")]
    pub github_api: String,
    /// Machine-readable findings (never values), as described by assets/scan.schema.json.
    #[arg(long, conflicts_with = "start_incident")]
    pub json: bool,
    /// Open one incident (a campaign) for every live inventory key found.
    #[arg(long)]
    pub start_incident: bool,
    /// Read files that .gitignore and .ignore exclude too.
    #[arg(long)]
    pub no_ignore: bool,
    /// Read each key's current value from its store (in memory, digest only) to tell a
    /// current key from one already rotated, and to match by it.
    #[arg(long)]
    pub with_stores: bool,
    /// With --start-incident: approve every write without asking.
    #[arg(long, requires = "start_incident")]
    pub yes: bool,
    /// With --start-incident: drill instead (writes are shown, never sent).
    #[arg(long, requires = "start_incident")]
    pub dry_run: bool,
    /// With --start-incident: start of the exposure window; default: the earliest commit
    /// that contained a found key, else the key's last rotation.
    #[arg(long, value_name = "TIME", requires = "start_incident")]
    pub exposed_since: Option<String>,
}

#[derive(Serialize)]
struct JsonOut<'a> {
    findings: &'a [Finding],
    keys: &'a [KeySummary],
    totals: &'a Totals,
    coverage: &'a crate::scan::Coverage,
}

fn scan_error(e: ScanError) -> CliError {
    // Scanner errors never quote input, but the last pass before stderr is the scrubber.
    let message = crate::secret::scrub_formats(&e.to_string());
    if e.is_input_error() {
        CliError::input(message)
    } else {
        CliError::failed(message)
    }
}

pub(super) fn run(ctx: &Context, args: ScanArgs) -> Exit {
    let inv = ctx.inventory()?;
    if args.start_incident && !args.dry_run && !TerminalGate::new(args.yes).can_approve() {
        return Err(CliError::input(
            "--start-incident opens a live incident, which needs approval for every write, but stdin is not a terminal: pass --yes to approve them, or --dry-run to drill",
        ));
    }
    let exposed_override = args.exposed_since.as_deref().map(|t| parse_start(ctx, t)).transpose()?;
    let stores = if args.with_stores {
        let rt = runtime()?;
        let http = crate::http::Http::new(true, crate::secret::Redactor::new())
            .map_err(|e| CliError::failed(format!("cannot start the HTTP client: {e}")))?;
        rt.block_on(crate::scan::matcher::read_stores(&inv, &http))
    } else {
        Vec::new()
    };
    let matcher = Matcher::new(&inv, stores);
    let github = match &args.github {
        Some(repo) => {
            if crate::scan::github::parse_repo(repo).is_none() {
                return Err(scan_error(ScanError::BadGithubRepo(repo.clone())));
            }
            let token = CredentialRef::parse(&args.github_token)
                .map_err(|e| CliError::input(format!("--github-token: {e}")))?;
            Some((repo.as_str(), token))
        }
        None => None,
    };
    let req = ScanRequest {
        paths: args.paths.clone(),
        git: args.git,
        since: args.since.clone(),
        reports: args.reports.clone(),
        no_ignore: args.no_ignore,
    };
    let mut outcome = crate::scan::scan(&req, &matcher).map_err(scan_error)?;
    if let Some((repo, token)) = github {
        let (findings, alerts) = fetch_github(&inv, &matcher, repo, &token, &args.github_api)?;
        outcome.findings.extend(findings);
        outcome.coverage.reports += 1;
        outcome.coverage.report_entries += alerts;
        crate::scan::sort_findings(&mut outcome.findings);
    }
    let keys = summarize_keys(&inv, &outcome.findings);
    let totals = totals(&outcome.findings, &keys);
    save_last(
        ctx,
        &SavedScan::of(
            ctx.clock.now(),
            &req,
            args.github.clone(),
            &outcome,
            &keys,
            &totals,
        ),
    );
    let alarm =
        outcome.findings.iter().any(Finding::is_alarm) || !outcome.coverage.unreadable.is_empty();
    if args.json {
        let text = serde_json::to_string_pretty(&JsonOut {
            findings: &outcome.findings,
            keys: &keys,
            totals: &totals,
            coverage: &outcome.coverage,
        })
        .map_err(|e| CliError::failed(e.to_string()))?;
        // Defence in depth: a report can put anything in a path field; the recognizers'
        // pass leaves JSON valid (a value becomes its prefix and `[REDACTED]`).
        println!("{}", crate::secret::scrub_formats(&text));
        return Ok(u8::from(alarm));
    }
    print!(
        "{}",
        crate::secret::scrub_formats(&render(&outcome, &keys, &totals, args.start_incident))
    );
    let scan_exit = u8::from(alarm);
    if !args.start_incident {
        return Ok(scan_exit);
    }
    // The same campaign the console's Leaks view opens from these findings.
    let Some(leak) = crate::scan::incident_for(&inv, &outcome.findings) else {
        println!("no live inventory key was found: no incident opened");
        return Ok(scan_exit);
    };
    let params = crate::runbook::IncidentParams {
        keys: leak.keys,
        dry_run: args.dry_run,
        exposed_since: exposed_override.or(leak.exposed_since),
        reason: Some(leak.reason),
        ..Default::default()
    };
    let setup = super::incident::setup(ctx)?;
    let mut gate = TerminalGate::new(args.yes);
    let mut engine = crate::runbook::Engine::open(setup, params).map_err(|e| {
        if e.is_input_error() {
            CliError::input(e.to_string())
        } else {
            CliError::failed(e.to_string())
        }
    })?;
    let incident_exit = super::incident::drive_headless(&mut engine, &mut gate)?;
    Ok(scan_exit.max(incident_exit))
}

/// Keep this scan for the console's Leaks view. A data directory keyfire cannot write to
/// costs the view, not the scan: the findings are on stdout either way.
fn save_last(ctx: &Context, saved: &SavedScan) {
    if let Err(e) = crate::scan::saved::save(&ctx.data_dir, saved) {
        eprintln!("warning: {e} (the console's Leaks view will not show this scan)");
    }
}

/// `--github`: resolve the token reference, fetch the alerts, judge each one.
fn fetch_github(
    inv: &Inventory,
    matcher: &Matcher,
    repo: &str,
    token: &CredentialRef,
    api: &str,
) -> Result<(Vec<Finding>, u64), CliError> {
    let rt = runtime()?;
    let http = crate::http::Http::new(true, crate::secret::Redactor::new())
        .map_err(|e| CliError::failed(format!("cannot start the HTTP client: {e}")))?;
    let token = rt
        .block_on(crate::credential::resolve(token, inv, &http))
        .map_err(|e| CliError::input(format!("--github-token: {e}")))?;
    let found = Mutex::new(Vec::new());
    let on = |f: Found<'_>| {
        if let Some(finding) = crate::scan::judge(&f, matcher)
            && let Ok(mut all) = found.lock()
        {
            all.push(finding);
        }
    };
    let alerts = rt
        .block_on(crate::scan::github::fetch_alerts(
            &http, api, repo, token, &on,
        ))
        .map_err(scan_error)?;
    let findings = found
        .into_inner()
        .map_err(|_| CliError::failed("a scanner thread failed"))?;
    Ok((findings, alerts))
}

pub(super) fn render(
    outcome: &ScanOutcome,
    keys: &[KeySummary],
    totals: &Totals,
    starting: bool,
) -> String {
    let c = &outcome.coverage;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scanned {} files ({} bytes), {} commits ({} bytes of patches), {} reports ({} entries)",
        c.files, c.bytes, c.commits, c.history_bytes, c.reports, c.report_entries
    );
    if c.skipped_binary > 0 {
        let _ = writeln!(out, "  skipped {} binary files", c.skipped_binary);
    }
    for p in &c.skipped_large {
        let _ = writeln!(
            out,
            "  NOT READ (larger than {} MiB): {p}",
            crate::scan::files::MAX_FILE_BYTES >> 20
        );
    }
    for p in &c.unreadable {
        let _ = writeln!(out, "  UNREADABLE (the scan is incomplete): {p}");
    }
    for f in &outcome.findings {
        let who = match (&f.verdict.key, f.verdict.status) {
            (Some(k), _) => format!(
                "{k} ({}, matched by {})",
                f.verdict.status.as_str(),
                f.verdict.matched_by.map_or("?", |b| b.as_str())
            ),
            (None, KeyState::Ambiguous) => {
                format!("one of {}", f.verdict.candidates.join(", "))
            }
            (None, _) => "unmanaged".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<9} {}  {} {}  -> {who}",
            crate::scan::summary::label(f),
            f.location.display(),
            f.what,
            f.hint
        );
        if let Some(n) = &f.verdict.note {
            let _ = writeln!(out, "          {n}");
        }
    }
    for k in keys {
        let _ = writeln!(
            out,
            "\n{}: {} in {} place(s){}",
            k.id,
            if k.live {
                format!("LIVE ({})", k.status.as_str())
            } else {
                "already rotated".to_string()
            },
            k.places,
            k.first_exposed
                .map(|t| format!(", first exposed {}", t.to_rfc3339()))
                .unwrap_or_default()
        );
        let b = &k.blast_radius;
        for a in &b.agents {
            let _ = writeln!(
                out,
                "  agent {} (owner {}, on-call {})",
                a.id,
                a.owner.as_deref().unwrap_or("unknown"),
                a.oncall.as_deref().unwrap_or("unknown")
            );
        }
        if !b.other_keys.is_empty() {
            let _ = writeln!(
                out,
                "  the same agents also hold: {}",
                b.other_keys
                    .iter()
                    .map(|o| format!("{} ({})", o.id, o.provider))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let (Some(s), Some(p)) = (&b.store, &b.secret_path) {
            let _ = writeln!(out, "  stored in {s} at {p}");
        }
    }
    let _ = writeln!(
        out,
        "\n{} findings: {} live inventory key(s), {} unmanaged secret(s), {} ambiguous, {} withheld by a report, {} already rotated",
        totals.findings,
        totals.live_keys,
        totals.unmanaged,
        totals.ambiguous,
        totals.withheld,
        totals.rotated
    );
    if totals.live_keys > 0 && !starting {
        let ids: Vec<&str> = keys
            .iter()
            .filter(|k| k.live)
            .map(|k| k.id.as_str())
            .collect();
        let _ = writeln!(
            out,
            "contain now: rerun with --start-incident, or `keyfire incident start {}`",
            ids.join(" ")
        );
    }
    if totals.unmanaged > 0 {
        let _ = writeln!(
            out,
            "unmanaged secrets: revoke them at their provider, move them to a secrets manager and add them to the inventory"
        );
    }
    out
}
