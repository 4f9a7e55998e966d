//! `keyfire completions SHELL` and `keyfire man [--dir DIR]`: generated from the same clap
//! definition as the parser (clap_complete, clap_mangen), so they never drift from it.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::{Cli, CliError, Exit};

/// Print the completion script for `shell` to stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> Exit {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "keyfire", &mut out);
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| CliError::failed(format!("cannot write the completion script: {e}")))?;
    Ok(0)
}

/// Without `dir`: the main page on stdout. With it: one page per command and subcommand
/// (`keyfire.1`, `keyfire-incident.1`, `keyfire-incident-start.1`, …) written there.
pub(super) fn man(dir: Option<&Path>) -> Exit {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let mut out = Vec::new();
        render(&cmd, "keyfire", &mut out)?;
        std::io::stdout()
            .write_all(&out)
            .map_err(|e| CliError::failed(format!("cannot write the manual page: {e}")))?;
        return Ok(0);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::input(format!("--dir {}: {e}", dir.display())))?;
    let mut written = 0;
    write_pages(&cmd, "keyfire", dir, &mut written)?;
    println!("{written} manual pages written to {}", dir.display());
    Ok(0)
}

fn render(cmd: &clap::Command, title: &str, out: &mut Vec<u8>) -> Result<(), CliError> {
    clap_mangen::Man::new(cmd.clone())
        .title(title)
        .render(out)
        .map_err(|e| CliError::failed(format!("cannot render the manual page: {e}")))
}

fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut usize,
) -> Result<(), CliError> {
    // A subcommand's page is titled with its full name, as `man keyfire-incident-start` finds it.
    let mut out = Vec::new();
    let page = cmd
        .clone()
        .display_name(name)
        .bin_name(name.replace('-', " "));
    render(&page, name, &mut out)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, out)
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))?;
    *written += 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
