//! improbe: independent, SLA-exact availability evidence for IM clouds.

pub mod accounting;
pub mod attempt;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod control;
pub mod daemon;
pub mod heartbeat;
pub mod import;
pub mod metrics;
pub mod minute;
pub mod probe;
pub mod report;
pub mod retention;
pub mod schedule;
pub mod server;
pub mod simulator;
pub mod sla;
pub mod spool;
pub mod store;
pub mod verdict;
pub mod writer;
