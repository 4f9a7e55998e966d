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

/// How far ahead of this machine's clock an operator's time may be: another machine's clock
/// (where the leak was seen) can run a little fast.
const SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// [`parse_time`] for a start (`--exposed-since`, `--since`): a time after `now` is refused,
/// since an exposure or an audit window that starts in the future would look at nothing.
pub fn parse_start(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = parse_time(text)?;
    if t > now + SKEW {
        return Err(format!(
            "{} is in the future (now is {}): a start time must be in the past",
            t.format("%Y-%m-%dT%H:%M:%SZ"),
            now.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_in_the_future_is_refused_with_a_little_skew_allowed() {
        let now = parse_time("2026-11-28T08:00:00Z").unwrap();
        assert!(parse_start("2026-11-28T08:04:00Z", now).is_ok());
        assert!(parse_start("2026-11-28", now).is_ok());
        let err = parse_start("2026-11-29", now).unwrap_err();
        assert!(err.contains("2026-11-29T00:00:00Z is in the future"), "{err}");
        assert!(parse_start("2026-11-28T08:06:00Z", now).is_err());
        assert!(parse_start("soon", now).unwrap_err().contains("invalid time"));
    }

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
