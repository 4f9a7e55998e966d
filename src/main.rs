use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = keyfire::cli::Cli::parse();
    match keyfire::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("keyfire: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
