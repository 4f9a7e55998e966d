//! keyfire's integration tests: one binary (faster to build), one module per area.

mod common;
mod emulators;

mod aws;
mod canary;
mod cli_incident;
mod cli_inventory;
mod crash;
mod engine;
mod keyring;
mod openbao;
mod postgres;
mod record;
