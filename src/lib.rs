//! keyfire: incident response for leaked API keys held by AI agents.
//!
//! The engine (inventory, runbook, providers, stores, record, audit, report) knows nothing
//! about terminals; the console (`tui`, behind the default `tui` feature) and the headless
//! CLI are two front-ends over the same [`runbook::drive`] loop.

#![warn(unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod audit;
pub mod aws;
pub mod cli;
pub mod clock;
pub(crate) mod config;
pub mod credential;
pub mod demo;
pub(crate) mod describe;
pub mod discover;
mod failpoint;
pub(crate) mod fsutil;
pub mod http;
pub mod incidents;
pub mod inventory;
pub mod key_view;
pub mod keyring;
pub mod notify;
pub(crate) mod paths;
pub mod plan;
pub mod provider;
pub mod record;
pub mod report;
pub mod runbook;
pub mod scan;
pub mod secret;
pub mod sim;
pub mod store;
mod textpos;
#[cfg(feature = "tui")]
pub mod tui;

// The API a program embedding keyfire starts from: load an inventory, open or resume an
// incident, drive it with a gate and a sink, and read its record back through the
// projection. The modules stay public for the test suite's contract and emulator tests;
// modules nothing outside the crate needs are `pub(crate)`.
pub use inventory::{Inventory, InventoryError, Key, load as load_inventory};
pub use record::{Entry, Event, IncidentKind, IncidentState, Proof, Status, read_entries};
pub use report::Report;
pub use runbook::{Engine, EngineError, Gate, IncidentParams, Order, Outcome, Setup, Sink, drive};
pub use secret::{Redactor, Secret};
