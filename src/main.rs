use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = keyfire::Cli::parse();
    if cli.only_prints() {
        restore_default_sigpipe();
    }
    match keyfire::run_cli(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Every error path avoids quoting a value that looks like a key; this is the net
            // under all of them.
            eprintln!("keyfire: {}", keyfire::scrub_formats(&e.message));
            ExitCode::from(e.code)
        }
    }
}

/// Rust ignores SIGPIPE, so a closed pipe turns the next print into a panic; a command that
/// only prints should end silently instead, as `cat` does.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
