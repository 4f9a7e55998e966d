//! DESIGN section 12: 1,000,000 gateway-log lines through all rules, streaming (target: under
//! 1 s and flat memory), twice: in keyfire's own JSON Lines format, and as LiteLLM writes its
//! spend logs (`LiteLLM_SpendLogs` rows: hashed `api_key`, `startTime`, `status` =
//! `success`/`failure`, an `X-Forwarded-For` list in `requester_ip_address`, and `metadata`
//! with `error_information` on failures; about 370 bytes a line). Prints, for each, the time,
//! and the process's peak resident memory while reading (reset before each run).
//!
//! Run: `cargo bench --bench audit_rules`.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use keyfire::audit::fingerprint;
use keyfire::audit::logs::{self, KeyMatch, OnBadLine};
use keyfire::audit::{Evaluator, Expectations, Window};

const LINES: u64 = 1_000_000;
const VIRTUAL_KEY: &str = "sk-bench-virtual-key-0001";

/// The peak resident set in MB since the last [`reset_peak`] (Linux `VmHWM`).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU time (user + system) this process has used, in ms: on a busy machine the wall time
/// measures the neighbours too.
fn cpu_ms() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage on our own process with a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// Writing 5 to `clear_refs` resets the peak RSS, so each run's peak is its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn ip(i: u64) -> String {
    if i.is_multiple_of(997) {
        format!("198.51.100.{}", i % 250)
    } else {
        format!("203.0.113.{}", i % 250)
    }
}

fn model(i: u64) -> &'static str {
    if i > 900_000 && i.is_multiple_of(101) {
        "o1-pro"
    } else {
        "gpt-4o-mini"
    }
}

fn keyfire_line(f: &mut impl Write, i: u64, ts: DateTime<Utc>) {
    let status = if i.is_multiple_of(5003) { 401 } else { 200 };
    writeln!(
        f,
        "{{\"timestamp\":\"{}\",\"key_id\":\"key-1\",\"source_ip\":\"{}\",\"status\":{status},\"model\":\"{}\",\"tokens\":{},\"cost\":0.0004}}",
        ts.to_rfc3339(),
        ip(i),
        model(i),
        100 + i % 400
    )
    .expect("write");
}

fn litellm_line(f: &mut impl Write, i: u64, ts: DateTime<Utc>, hash: &str) {
    let (status, meta) = if i.is_multiple_of(5003) {
        (
            "failure",
            "{\"status\":\"failure\",\"error_information\":{\"error_code\":\"401\",\"error_class\":\"AuthenticationError\"}}",
        )
    } else {
        ("success", "{\"status\":\"success\"}")
    };
    let t = ts.format("%Y-%m-%dT%H:%M:%S%.3f");
    writeln!(
        f,
        "{{\"request_id\":\"chatcmpl-{i:09}\",\"call_type\":\"acompletion\",\"api_key\":\"{hash}\",\"spend\":0.0004,\"total_tokens\":{},\"prompt_tokens\":{},\"completion_tokens\":50,\"startTime\":\"{t}\",\"model\":\"{}\",\"requester_ip_address\":\"{}, 10.0.0.1\",\"status\":\"{status}\",\"metadata\":{meta}}}",
        150 + i % 400,
        100 + i % 400,
        model(i),
        ip(i),
    )
    .expect("write");
}

fn write(path: &Path, line: impl Fn(&mut std::io::BufWriter<std::fs::File>, u64, DateTime<Utc>)) {
    let start = start();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    for i in 0..LINES {
        line(&mut f, i, start + Duration::seconds((i * 4) as i64));
    }
    // An audited log was written before the audit: its pages are on disk, and the kernel's
    // write-back of 376 MB does not run on the cores the measurement uses.
    let f = f.into_inner().expect("flush");
    f.sync_all().expect("sync");
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap()
}

fn measure(label: &str, path: &Path, m: &KeyMatch) {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let start = start();
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
    reset_peak();
    let before = peak_rss_mb();
    let cpu = cpu_ms();
    let t = Instant::now();
    let mut eval = Evaluator::new(window, expect);
    let stats = logs::read(path, m, OnBadLine::Count, |e| eval.feed(e)).expect("read");
    eval.log_source(logs::source_info(path), "key-1", m, &stats, stats.used);
    let summary = eval.finish();
    let elapsed = t.elapsed();
    let cpu = cpu_ms() - cpu;
    println!(
        "audit_rules [{label}]: {} lines ({:.0} MB, {:.0} bytes a line), {} for the key, through all five rules",
        stats.lines,
        size as f64 / 1e6,
        size as f64 / stats.lines.max(1) as f64,
        stats.used
    );
    println!(
        "  time {:.0} ms wall, {cpu:.0} ms CPU ({:.0} ns/line), peak RSS while reading {:.1} MB (at the start: {:.1} MB)",
        elapsed.as_secs_f64() * 1000.0,
        cpu * 1e6 / stats.lines.max(1) as f64,
        peak_rss_mb(),
        before
    );
    println!(
        "  rules with findings: {}, unreadable lines: {}",
        summary.fired(),
        stats.unreadable
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let own = dir.path().join("gateway.jsonl");
    write(&own, keyfire_line);
    measure("keyfire format", &own, &KeyMatch::new("key-1", None, None));
    std::fs::remove_file(&own).expect("remove");

    let hash = fingerprint::of_value(VIRTUAL_KEY);
    let litellm = dir.path().join("litellm_spend_logs.jsonl");
    write(&litellm, |f, i, ts| litellm_line(f, i, ts, &hash));
    let m = KeyMatch::new("key-1", None, None).with_fingerprint(&hash);
    measure("LiteLLM spend logs", &litellm, &m);
}
