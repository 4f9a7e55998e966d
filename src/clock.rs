//! Time comes from a `Clock` so that records, due dates and snapshots are testable.

use chrono::{DateTime, Utc};

/// Where keyfire reads the time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always reads the same instant (tests, snapshots).
#[derive(Debug, Clone, Copy)]
#[cfg(feature = "testing")]
pub struct FixedClock(pub DateTime<Utc>);

#[cfg(feature = "testing")]
impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// A time an operator gave (`--exposed-since`, `--since`, the console's start dialog):
/// RFC 3339, or a date meaning midnight UTC. The error says what was expected.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err(format!(
        "invalid time {text:?}: expected RFC 3339 (2026-11-26T03:00:00Z) or a date (2026-11-26)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_times_take_rfc3339_or_a_date() {
        assert_eq!(
            parse_time("2026-11-26").unwrap().to_rfc3339(),
            "2026-11-26T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-11-26T05:00:00+02:00")
                .unwrap()
                .to_rfc3339(),
            "2026-11-26T03:00:00+00:00"
        );
        let e = parse_time("yesterday").unwrap_err();
        assert!(e.contains("expected RFC 3339"), "{e}");
    }
}
