//! Renderers: turning statements into tables, JSON and CSV for people and scripts.

pub mod claim;
pub mod evidence;
pub mod html;
pub mod markdown;
pub mod sla;
pub mod status;
