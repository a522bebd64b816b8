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
        store::open(&config.database.url).await?;
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
