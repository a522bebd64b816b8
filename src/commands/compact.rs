//! `improbe compact`: the daemon's storage round, once (docs/operations.md
//! "Retention").

use std::path::Path;

use super::{load_config, open_store};
use crate::cli::ListFormat;
use crate::daemon::retention;

pub async fn run(config_path: &Path, format: ListFormat) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let store = open_store(&config).await?;
    let done = retention::round(store.as_ref(), &config, chrono::Utc::now()).await?;
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&done)?),
        ListFormat::Table => {
            println!(
                "folded {} successful attempts into {} rollups (raw window {} days); longest transaction {} ms, \
                 longest a write waited {} ms",
                done.folded_attempts,
                done.rollups,
                config.database.raw_window_days,
                done.longest_transaction_ms,
                done.longest_writer_wait_ms
            );
            println!(
                "pruned {} attempts past retention ({} days)",
                done.pruned_attempts, config.database.attempts_retention_days
            );
            println!(
                "packed the minute verdicts and buckets of {} target hours",
                done.packed_hours
            );
            println!(
                "database {} bytes before, {} bytes after, in {} ms",
                done.database_bytes_before, done.database_bytes_after, done.elapsed_ms
            );
        }
    }
    Ok(())
}
