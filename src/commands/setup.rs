//! `improbe setup [--target NAME]` (alias `improbe tencent setup`): prepares
//! what probing needs on each target's provider, idempotently, and prints
//! what to put in the config.

use std::path::Path;

use super::load_config;

pub async fn run(config_path: &Path, only: Option<&str>) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let mut prepared = 0;
    for target in config
        .targets
        .iter()
        .filter(|t| only.is_none_or(|name| t.name == name))
    {
        let Some(result) = target.provider.setup().await else {
            if only.is_some() {
                anyhow::bail!(
                    "target `{}`: the {} provider has nothing to set up",
                    target.name,
                    target.provider.kind().as_str()
                );
            }
            continue;
        };
        let report = result.map_err(|e| anyhow::anyhow!("target `{}`: {e}", target.name))?;
        for (i, line) in report.iter().enumerate() {
            let lead = if i == 0 { "target " } else { "  " };
            let name = if i == 0 {
                format!("{}: ", target.name)
            } else {
                String::new()
            };
            println!("{lead}{name}{line}");
        }
        prepared += 1;
    }
    if prepared == 0 {
        anyhow::bail!(
            "no target{} in {} has a provider to set up",
            only.map(|n| format!(" named `{n}`")).unwrap_or_default(),
            config_path.display()
        );
    }
    Ok(())
}
