//! `improbe migrate`: apply migrations and exit.

use std::path::Path;

use super::{load_config, open_store};
use crate::store::redact_url;

pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let store = open_store(&config).await?;
    println!(
        "{} database at {} is up to date",
        store.backend(),
        redact_url(&config.database.url)
    );
    Ok(())
}
