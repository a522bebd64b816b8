//! `improbe check-config`: exactly the validation every other command runs
//! at start-up, the daemon's preflight (secrets, data_dir, database URL), and
//! unless `--offline` a connection to the database.

use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::daemon::preflight;
use crate::store;

pub async fn run(path: &Path, offline: bool) -> anyhow::Result<()> {
    let mut config = Config::load(path)?;
    for warning in &config.warnings {
        eprintln!("warning: {}: {warning}", path.display());
    }
    super::apply_env_overrides(&mut config);
    preflight::check(&config).with_context(|| format!("{}: not ready to run", path.display()))?;
    if !offline {
        let store = store::open_through(&config.database.url, config.database.pooler).await?;
        if let Some(file) = crate::capacity::sqlite_file(&config.database.url) {
            drop(store);
            warn_if_the_volume_is_short(&config, &file);
        }
    }
    println!(
        "{}: OK ({} target{}, {} exclusion window{}, prober `{}`)",
        path.display(),
        config.targets.len(),
        if config.targets.len() == 1 { "" } else { "s" },
        config.exclusions.len(),
        if config.exclusions.len() == 1 {
            ""
        } else {
            "s"
        },
        config.prober.id
    );
    Ok(())
}

/// Warns when the targets, their cadence and the retention need more than
/// the database's volume holds (an estimate: `capacity::bytes_needed`).
fn warn_if_the_volume_is_short(config: &Config, file: &Path) {
    let Ok(free) = crate::capacity::volume_free_bytes(file) else {
        return;
    };
    let stored = std::fs::metadata(file).map_or(0, |m| m.len());
    let needed = crate::capacity::bytes_needed(config);
    if needed > free + stored {
        eprintln!(
            "warning: {} targets at their cadence need about {} MB with raw_window_days = {} and \
             attempts_retention_days = {}, but the volume holding {} has {} MB free (the database holds {} MB): \
             grow the volume, or shorten the retention or the raw window (docs/operations.md \"Retention\")",
            config.targets.len(),
            needed / 1_000_000,
            config.database.raw_window_days,
            config.database.attempts_retention_days,
            file.display(),
            free / 1_000_000,
            stored / 1_000_000
        );
    }
}
