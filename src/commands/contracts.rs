//! `improbe contracts show NAME`: a contract's rules in words, so people can
//! read what improbe will hold their provider to.

use std::path::Path;

use crate::config::Config;
use crate::sla::Contract;
use crate::sla::contract::DEFAULT_CONTRACT;

pub fn show(config_path: &Path, name: &str) -> anyhow::Result<()> {
    // The built-in contract needs no config file.
    if name == DEFAULT_CONTRACT && !config_path.exists() {
        print!("{}", Contract::tencent_im().describe());
        return Ok(());
    }
    let config = Config::load(config_path)?;
    let contract = config.contracts.get(name).ok_or_else(|| {
        let known: Vec<&str> = config.contracts.keys().map(String::as_str).collect();
        anyhow::anyhow!(
            "{}: no contract `{name}`; defined: {}",
            config_path.display(),
            known.join(", ")
        )
    })?;
    print!("{}", crate::text::for_terminal(&contract.describe()));
    Ok(())
}
