//! Record verification on arbitrary bytes: `verify` must answer (ok or the first bad line),
//! never panic, whatever the record and its head contain. Seed the corpus with real
//! records (`record.jsonl` + `\0` + `head`) to reach the signature checks quickly.
#![no_main]

use keyfire::record::{VerifyOptions, verify_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `record \0 head`; no NUL: no head file at all.
    let (record, head) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Ok(Some(data[i + 1..].to_vec()))),
        None => (data, Ok(None)),
    };
    let report = verify_bytes("fuzz", record, head, &VerifyOptions::default());
    // A report that passes names no bad line, and one that fails names a line in range.
    if let Some(bad) = &report.first_bad {
        assert!(bad.line <= record.len() + 1);
    }
});
