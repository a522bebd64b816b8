//! `improbe check-config`: exactly the validation every other command runs at start-up.

use std::path::Path;

use crate::config::Config;

pub fn run(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    for warning in &config.warnings {
        eprintln!("warning: {}: {warning}", path.display());
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
