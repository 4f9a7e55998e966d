//! keyfire: incident response for leaked API keys held by AI agents.
//!
//! The engine (inventory, runbook, providers, stores, record, audit, report) knows nothing
//! about terminals; the console (`tui`, behind the default `tui` feature) and the headless
//! CLI are two front-ends over the same [`runbook::drive`] loop.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod audit;
pub mod aws;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credential;
pub mod demo;
pub mod describe;
pub mod discover;
mod failpoint;
pub mod http;
pub mod incidents;
pub mod inventory;
pub mod keyring;
pub mod notify;
pub mod paths;
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
