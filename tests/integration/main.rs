//! keyfire's integration tests: one binary (faster to build), one module per area.

mod common;

mod audit;
mod canary;
mod cli_incident;
mod cli_inventory;
mod crash;
mod engine;
mod record;
mod tui;
mod tui_tmux;
