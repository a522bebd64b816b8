//! `improbe storage`: what the database costs on disk, and how long its
//! volume lasts (docs/operations.md "Retention").

use std::path::Path;

use serde::Serialize;

use super::{load_config, open_store};
use crate::capacity;
use crate::cli::ListFormat;

#[derive(Serialize)]
struct Report {
    backend: &'static str,
    database_bytes: i64,
    tables: Vec<Table>,
    targets: usize,
    /// Over the last `capacity::GROWTH_DAYS` days.
    bytes_per_target_per_day: i64,
    /// SQLite only: the volume the file lives on.
    volume_free_bytes: Option<u64>,
    days_until_full: Option<i64>,
}

#[derive(Serialize)]
struct Table {
    table: String,
    bytes: i64,
    rows: i64,
}

pub async fn run(config_path: &Path, format: ListFormat) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let store = open_store(&config).await?;
    let now = chrono::Utc::now();
    let usage = store
        .storage_use(now - chrono::Duration::days(capacity::GROWTH_DAYS))
        .await?;
    let targets = config.targets.len();
    let per_target_day = capacity::bytes_per_target_day(&usage, targets);
    let free = match capacity::sqlite_file(&config.database.url) {
        Some(file) => Some(capacity::volume_free_bytes(&file).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the free space of the volume holding {}: {e}",
                file.display()
            )
        })?),
        None => None,
    };
    let report = Report {
        backend: store.backend(),
        database_bytes: usage.database_bytes,
        tables: usage
            .tables
            .into_iter()
            .map(|t| Table {
                table: t.table,
                bytes: t.bytes,
                rows: t.rows,
            })
            .collect(),
        targets,
        bytes_per_target_per_day: per_target_day,
        volume_free_bytes: free,
        days_until_full: free
            .and_then(|f| capacity::days_until_full(f, per_target_day * targets as i64)),
    };
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ListFormat::Table => print_table(&report),
    }
    Ok(())
}

fn print_table(report: &Report) {
    println!("{:<20} {:>14} {:>12}", "table", "bytes", "rows");
    for t in &report.tables {
        println!("{:<20} {:>14} {:>12}", t.table, t.bytes, t.rows);
    }
    println!(
        "{} database: {} bytes on disk",
        report.backend, report.database_bytes
    );
    println!(
        "{} bytes per target per day over the last {} days ({} targets configured)",
        report.bytes_per_target_per_day,
        capacity::GROWTH_DAYS,
        report.targets
    );
    if let Some(free) = report.volume_free_bytes {
        match report.days_until_full {
            Some(days) => println!("volume: {free} bytes free, full in {days} days at that rate"),
            None => println!("volume: {free} bytes free; the database is not growing"),
        }
    }
}
