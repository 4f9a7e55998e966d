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
