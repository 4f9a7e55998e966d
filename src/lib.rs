//! keyfire: incident response for leaked API keys held by AI agents.
//!
//! The engine (inventory, runbook, providers, stores, record, audit, report) knows nothing
//! about terminals; the console (`tui`, behind the default `tui` feature) and the headless
//! CLI are two front-ends over the same [`runbook::drive`] loop.

// Inside the crate every item says who reaches it: `pub` for the curated API below, the
// binary, and the test suite; `pub(crate)` for everything else. The lint holds that line in
// builds with the `testing` feature (where the modules are open, so a `pub` that nothing
// outside reaches is flagged); without it every module is closed and the lint would flag the
// suite's hooks, so it is left to the testing build.
#![cfg_attr(feature = "testing", warn(unreachable_pub))]
#![cfg_attr(not(feature = "testing"), allow(unreachable_pub))]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
// A build that leaves back-end families out (see the features in Cargo.toml) leaves unused
// the helpers only they share (key listing, pacing, wire formats, the console's imports).
// The full build, which CI checks with warnings as errors, is where dead code is caught.
#![cfg_attr(
    not(all(
        feature = "tui",
        feature = "demo",
        feature = "openai",
        feature = "anthropic",
        feature = "sendgrid",
        feature = "litellm",
        feature = "aws",
        feature = "postgres",
        feature = "vault",
        feature = "doppler",
        feature = "infisical",
        feature = "keyring-store"
    )),
    allow(dead_code, unused_imports, unused_macros)
)]
// Docs are required on what an embedding program sees. Without `testing` the modules are
// closed, so the lint covers exactly the curated API below and what it reaches; with
// `testing` every module is open and the lint would cover the whole crate, suite hooks
// included, so it is tied to the feature being off.
#![cfg_attr(not(feature = "testing"), warn(missing_docs))]

/// Declares modules that are internal to the crate, except in builds with the `testing`
/// feature: the integration tests and benches drive emulators, simulators, plans and the
/// record below the curated API, and that feature opens the modules to them (hidden from the
/// documentation). A program embedding keyfire sees only the re-exports below.
macro_rules! internal_modules {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {$(
        $(#[$attr])*
        #[cfg(feature = "testing")]
        #[doc(hidden)]
        pub mod $name;
        $(#[$attr])*
        #[cfg(not(feature = "testing"))]
        pub(crate) mod $name;
    )*};
}

internal_modules!(
    audit,
    #[cfg(feature = "aws")]
    aws,
    cli,
    clock,
    credential,
    #[cfg(feature = "demo")]
    demo,
    discover,
    http,
    incidents,
    inventory,
    key_view,
    keyring,
    notify,
    plan,
    provider,
    record,
    report,
    runbook,
    scan,
    secret,
    #[cfg(any(feature = "demo", feature = "testing"))]
    sim,
    store,
    #[cfg(feature = "tui")]
    tui,
);
pub(crate) mod config;
pub(crate) mod debug_log;
pub(crate) mod describe;
mod failpoint;
pub(crate) mod fsutil;
pub(crate) mod paths;
mod textpos;

// The API a program embedding keyfire starts from: load an inventory, open or resume an
// incident, drive it with a gate and a sink, and read its record back through the
// projection. The command line is here too, for the `keyfire` binary.
pub use cli::{Cli, CliError, Exit, run as run_cli};
pub use clock::{Clock, SystemClock};
pub use inventory::{Inventory, InventoryError, Key, load as load_inventory};
pub use record::event::CustomerDataAnswer;
pub use record::{Entry, Event, IncidentKind, IncidentState, Proof, Status, read_entries};
pub use report::Report;
pub use runbook::{
    ApprovalRequest, CustomerDataReply, CustomerDataRequest, Decision, Engine, EngineError,
    FailureChoice, FailureView, Gate, IncidentParams, ManualRequest, Order, Outcome, PasteRequest,
    Purpose, Runbook, Setup, Sink, drive,
};
pub use secret::scrub_formats;
pub use secret::{Redactor, Secret};
