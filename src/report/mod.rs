//! Renderers: turning statements into tables, JSON and CSV for people and scripts.

pub mod sla;
