//! The integration tests, one binary: every module links the crate once
//! (docs/layout.md "Tests"). Modules are named after what they exercise;
//! `slow::slow_*` are the few that need real wall-clock minutes.

mod common;

mod alert_rules;
mod bad_input;
mod cli;
mod container;
mod daemon;
mod faults;
mod matrix;
mod no_panic;
mod notify;
mod pg_network;
mod probers;
mod regions;
mod report;
mod schedule;
mod slow;
mod storage;
mod store_contract;
mod tencent_simulator;
mod xmpp;
