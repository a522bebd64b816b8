//! improbe: independent, SLA-exact availability evidence for IM clouds.

pub mod accounting;
pub mod attempt;
pub mod capacity;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod minute;
pub mod notify;
pub mod probe;
pub mod report;
pub mod secret;
pub mod settlement;
pub mod simulator;
pub mod sla;
pub mod store;
pub mod sync;
pub mod text;
pub mod ticks;
pub mod verdict;
