//! Renderers: turning statements into tables, JSON and CSV for people and scripts.

pub mod claim_text;
pub mod evidence;
pub mod html;
pub mod markdown;
pub mod sla_table;
pub mod status;
