use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = keyfire::cli::Cli::parse();
    match keyfire::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Every error path avoids quoting a value that looks like a key; this is the net
            // under all of them.
            eprintln!("keyfire: {}", keyfire::secret::scrub_formats(&e.message));
            ExitCode::from(e.code)
        }
    }
}
