//! DESIGN section 12: `inventory lint` as a whole process on 10,000 keys (target < 100 ms)
//! and load + lint on 100,000 keys (target < 1 s, < 200 MB peak). Prints its figures.

#[path = "common.rs"]
mod common;

use std::process::{Command, Stdio};

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "inventory_scale: keyfire {} (release), whole process, median of runs",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "{:>8} {:>10} {:>12} {:>12} {:>6}",
        "keys", "file MB", "median ms", "peak MB", "runs"
    );
    for (keys, runs) in [(10_000usize, 15), (100_000, 5)] {
        let path = dir.path().join(format!("inv-{keys}.toml"));
        let text = common::inventory(keys);
        common::write(&path, &text);
        let mut walls = Vec::new();
        let mut peak = 0;
        for _ in 0..runs {
            let run = common::measure(
                Command::new(env!("CARGO_BIN_EXE_keyfire"))
                    .args(["inventory", "lint", "--inventory"])
                    .arg(&path)
                    .env("KEYFIRE_DATA_DIR", dir.path().join("data"))
                    .env_remove("KEYFIRE_CONFIG")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            );
            assert_eq!(run.code, Some(1), "lint finds the planted findings");
            walls.push(run.wall);
            peak = peak.max(run.max_rss_kib);
        }
        println!(
            "{keys:>8} {:>10.1} {:>12.1} {:>12.1} {runs:>6}",
            text.len() as f64 / 1e6,
            common::median(walls).as_secs_f64() * 1000.0,
            peak as f64 / 1024.0
        );
    }
}
