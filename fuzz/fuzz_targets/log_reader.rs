//! The gateway-log reader on arbitrary bytes, as JSON Lines and as CSV (the first byte picks),
//! in both modes, with every event fed through the rules: it must return, never panic, hang
//! or grow without bound.
#![no_main]

use std::path::Path;

use chrono::{Duration, TimeZone, Utc};
use keyfire::audit::logs::{self, OnBadLine};
use keyfire::audit::{Evaluator, Expectations, Window};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let csv = first & 1 == 1;
    let path = Path::new(if csv { "fuzz.csv" } else { "fuzz.jsonl" });
    let start = Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap();
    for on_bad in [OnBadLine::Stop, OnBadLine::Count] {
        let mut eval = Evaluator::new(
            Window {
                baseline_start: start,
                start: start + Duration::days(14),
                end: start + Duration::days(17),
            },
            Expectations {
                networks: vec!["203.0.113.0/24".parse().unwrap()],
                active_hours: Vec::new(),
                volume_factor: 3.0,
                auth_failure_threshold: 10,
            },
        );
        let _ = logs::read_stream(body, path, csv, on_bad, |_| Some(0), |_, e| eval.feed(e));
        let _ = eval.finish();
    }
});
