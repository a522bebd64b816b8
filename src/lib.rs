//! improbe: independent, SLA-exact availability evidence for IM clouds.

pub mod accounting;
pub mod attempt;
pub mod cli;
pub mod commands;
pub mod config;
pub mod import;
pub mod minute;
pub mod report;
pub mod sla;
pub mod store;
pub mod verdict;
pub mod clock;
pub mod probe;
pub mod simulator;
