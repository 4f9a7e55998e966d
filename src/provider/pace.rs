//! Pacing for APIs with a documented request rate: calls under the same key (a region) start
//! at least `1 / rate` apart, whatever the number of tasks asking. The clock is injectable so
//! that tests see the pacer's decisions without sleeping.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Time as the pacer sees it: an offset from an origin, and a way to wait.
pub trait PaceClock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Duration;
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The process's monotonic clock and tokio's timer.
#[derive(Debug)]
pub struct SystemPaceClock(std::time::Instant);

impl Default for SystemPaceClock {
    fn default() -> Self {
        Self(std::time::Instant::now())
    }
}

impl PaceClock for SystemPaceClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that moves only when someone sleeps on it (tests): every wait returns at once
/// and advances the time by its length.
#[derive(Debug, Default)]
#[cfg(feature = "testing")]
pub struct ManualPaceClock(Mutex<Duration>);

#[cfg(feature = "testing")]
impl PaceClock for ManualPaceClock {
    fn now(&self) -> Duration {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += d;
        Box::pin(std::future::ready(()))
    }
}

/// Decisions kept for inspection; older ones are dropped.
const KEEP_DECISIONS: usize = 10_000;

#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    clock: Arc<dyn PaceClock>,
    state: Mutex<PacerState>,
}

#[derive(Debug, Default)]
struct PacerState {
    /// Key → the earliest time the next call may start.
    next_free: HashMap<String, Duration>,
    /// (key, time the call was released), in the order the calls asked.
    decisions: VecDeque<(String, Duration)>,
}

impl Pacer {
    /// At most `per_second` call starts per second under each key.
    pub fn per_second(per_second: u32, clock: Arc<dyn PaceClock>) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            clock,
            state: Mutex::default(),
        }
    }

    /// The process-wide pacer of CloudTrail `LookupEvents`: "The rate of lookup requests is
    /// limited to two per second, per account, per Region" (LookupEvents API reference;
    /// botocore `cloudtrail/2013-11-01/service-2.json`, `LookupEvents.documentation`). Shared
    /// by every key of every aws-iam provider, since campaigns audit keys of one account at
    /// once; keyed by endpoint and region.
    pub fn cloudtrail() -> Arc<Self> {
        static PACER: OnceLock<Arc<Pacer>> = OnceLock::new();
        PACER
            .get_or_init(|| Arc::new(Self::per_second(2, Arc::new(SystemPaceClock::default()))))
            .clone()
    }

    /// Wait until a call under `key` may start, and claim that slot.
    pub async fn wait_turn(&self, key: &str) {
        let wait = self.reserve(key);
        if !wait.is_zero() {
            self.clock.sleep(wait).await;
        }
    }

    /// Claim the next free slot under `key`; how long to wait for it.
    fn reserve(&self, key: &str) -> Duration {
        let now = self.clock.now();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let slot = s.next_free.get(key).copied().unwrap_or_default().max(now);
        s.next_free.insert(key.to_string(), slot + self.interval);
        if s.decisions.len() == KEEP_DECISIONS {
            s.decisions.pop_front();
        }
        s.decisions.push_back((key.to_string(), slot));
        slot - now
    }

    /// When each call was released, per key, in the order they asked.
    #[cfg(feature = "testing")]
    pub fn decisions(&self) -> Vec<(String, Duration)> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.decisions.iter().cloned().collect()
    }

    #[cfg(feature = "testing")]
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_under_one_key_are_spaced_and_other_keys_are_not_held_up() {
        let clock = Arc::new(ManualPaceClock::default());
        let pacer = Pacer::per_second(2, clock.clone());
        for _ in 0..3 {
            pacer.wait_turn("us-east-1").await;
        }
        pacer.wait_turn("eu-west-1").await;
        let ms = |key: &str| -> Vec<u128> {
            pacer
                .decisions()
                .into_iter()
                .filter(|(k, _)| k == key)
                .map(|(_, t)| t.as_millis())
                .collect()
        };
        assert_eq!(ms("us-east-1"), [0, 500, 1000]);
        // The other region's first call goes at once, although time moved on for the first.
        assert_eq!(ms("eu-west-1"), [1000]);
        assert_eq!(clock.now(), Duration::from_millis(1000));
    }

    #[test]
    fn a_call_after_a_quiet_spell_does_not_wait() {
        let clock = Arc::new(ManualPaceClock::default());
        let pacer = Pacer::per_second(2, clock.clone());
        assert_eq!(pacer.reserve("r"), Duration::ZERO);
        assert_eq!(pacer.reserve("r"), Duration::from_millis(500));
        drop(clock.sleep(Duration::from_secs(5)));
        assert_eq!(pacer.reserve("r"), Duration::ZERO);
    }
}
