//! keyfire's integration tests: one binary (faster to build), one module per area.

mod common;
mod corpus;
mod emulators;
mod llm;

mod anthropic;
mod audit;
mod aws;
mod campaign;
mod canary;
mod claims;
mod cli_docs;
mod cli_incident;
mod cli_inventory;
mod contain_first;
mod contract;
mod crash;
mod crash_providers;
mod demo;
mod discover;
mod engine;
mod keyring;
mod leaks;
mod openai;
mod openbao;
mod postgres;
mod props;
mod record;
mod sendlite;
mod signing;
mod spec_conformance;
mod tui;
mod tui_tmux;
