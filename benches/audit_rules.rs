//! DESIGN section 12: 1,000,000 gateway-log events through all rules, streaming (target:
//! under 1 s, under 200 MB). Prints time and the process's peak resident memory.

use std::io::Write;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use keyfire::audit::logs::{self, KeyMatch};
use keyfire::audit::{Evaluator, Expectations, Window};

fn peak_rss_mb() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage on our own process with a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.jsonl");
    let start = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        for i in 0..1_000_000u64 {
            let ts = start + Duration::seconds((i * 4) as i64);
            let ip = if i % 997 == 0 {
                format!("198.51.100.{}", i % 250)
            } else {
                format!("203.0.113.{}", i % 250)
            };
            let status = if i % 5003 == 0 { 401 } else { 200 };
            let model = if i > 900_000 && i % 101 == 0 {
                "o1-pro"
            } else {
                "gpt-4o-mini"
            };
            writeln!(
                f,
                "{{\"timestamp\":\"{}\",\"key_id\":\"key-1\",\"source_ip\":\"{ip}\",\"status\":{status},\"model\":\"{model}\",\"tokens\":{},\"cost\":0.0004}}",
                ts.to_rfc3339(),
                100 + i % 400
            )
            .expect("write");
        }
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let before = peak_rss_mb();
    let window = Window {
        baseline_start: start,
        start: start + Duration::days(30),
        end: start + Duration::days(47),
    };
    let expect = Expectations {
        networks: vec!["203.0.113.0/24".parse().expect("net")],
        active_hours: Vec::new(),
        volume_factor: 3.0,
        auth_failure_threshold: 10,
    };
    let t = Instant::now();
    let mut eval = Evaluator::new(window, expect);
    eval.source(logs::source_info(&path));
    let m = KeyMatch::new("key-1", None, None);
    let n = logs::read(&path, &m, |e| eval.feed(e)).expect("read");
    let summary = eval.finish();
    let elapsed = t.elapsed();
    println!(
        "audit_rules: {n} gateway-log events ({:.0} MB JSON Lines) through all five rules",
        size as f64 / 1e6
    );
    println!(
        "  time {:.0} ms ({:.0} ns/event), peak RSS {:.1} MB (before reading: {:.1} MB)",
        elapsed.as_secs_f64() * 1000.0,
        elapsed.as_nanos() as f64 / n as f64,
        peak_rss_mb(),
        before
    );
    println!("  rules with findings: {}", summary.fired());
}
