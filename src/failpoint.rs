//! Crash-test hooks: named points where a test can stop or fail the process
//! (`KEYFIRE_FAILPOINT`). Compiled in only with the `testing` feature (the test suite's),
//! never in a release build. Kept outside the runbook so backends can mark their own points.

/// When `KEYFIRE_FAILPOINT` names this point, stop here until killed, so a test can SIGKILL
/// the process at an exact place in a local (non-HTTP) action.
#[cfg(feature = "testing")]
pub(crate) fn failpoint(name: &str) {
    if std::env::var("KEYFIRE_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("keyfire: paused at failpoint {name}");
        std::thread::sleep(std::time::Duration::from_secs(600));
    }
}

#[cfg(not(feature = "testing"))]
#[inline(always)]
pub(crate) fn failpoint(_name: &str) {}
