//! Properties over arbitrary input, run by `cargo test` (the fuzz targets under `fuzz/` push
//! the same code further on a nightly toolchain).

use proptest::prelude::*;

use crate::corpus::{self, json_escaped, needles, percent};

/// Characters that end a token (the recognizers' boundaries).
const SEPARATORS: &[&str] = &[" ", "=", ":", "/", ",", ";", "\"", "'", "\n", "\t"];

fn sample_and_placement() -> impl Strategy<Value = (usize, usize)> {
    let n = corpus::samples().len();
    (0..n, 0..7usize)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    /// No recognized format survives the scrubber inside arbitrary surrounding text, as is,
    /// JSON-escaped or percent-encoded.
    #[test]
    fn no_format_survives_the_scrubber_in_arbitrary_text(
        (which, placement) in sample_and_placement(),
        before in "\\PC{0,40}",
        after in "\\PC{0,40}",
        left in 0..SEPARATORS.len(),
        right in 0..SEPARATORS.len(),
    ) {
        let samples = corpus::samples();
        let s = &samples[which];
        let placements = corpus::placements(&s.text());
        let (name, placed) = &placements[placement];
        let text = format!("{before}{}{placed}{}{after}", SEPARATORS[left], SEPARATORS[right]);
        let r = keyfire::secret::Redactor::new();
        let encode = corpus::encoding_of(name);
        let out = r.scrub(&text);
        for needle in needles(&s.value, encode) {
            prop_assert!(!out.contains(&needle), "{} ({name}) survived: {out}", s.format);
        }
        let out = r.scrub(&json_escaped(&text));
        for needle in needles(&s.value, |v| json_escaped(&encode(v))) {
            prop_assert!(!out.contains(&needle), "{} ({name}, JSON-escaped) survived: {out}", s.format);
        }
        let out = r.scrub(&percent(&text));
        for needle in needles(&s.value, |v| percent(&encode(v))) {
            prop_assert!(!out.contains(&needle), "{} ({name}, percent-encoded) survived: {out}", s.format);
        }
    }

    /// Learned values are scrubbed in whatever text surrounds them, in their encoded forms.
    #[test]
    fn learned_values_never_survive(
        value in "[ -~]{8,40}",
        before in "[a-z ]{0,30}",
        after in "[a-z ]{0,30}",
    ) {
        let r = keyfire::secret::Redactor::new();
        r.learn(&keyfire::secret::Secret::new(value.clone()));
        for text in [
            format!("{before}{value}{after}"),
            format!("{before}{}{after}", json_escaped(&value)),
            format!("{before}{}{after}", percent(&value)),
        ] {
            // Markers become NUL, which no value holds, so a value cannot seem to re-form
            // across a marker and the text around it.
            let out = r.scrub(&text).replace("[REDACTED]", "\0");
            let around = |v: &str| before.contains(v) || after.contains(v);
            for form in [value.clone(), json_escaped(&value), percent(&value)] {
                prop_assert!(!out.contains(&form) || around(&form), "{form:?} survived in {out:?}");
            }
        }
    }
}
