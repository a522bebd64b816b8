//! `improbe run`: the daemon. Stops cleanly on SIGINT or SIGTERM.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

use super::load_config;
use crate::clock::SystemClock;
use crate::daemon;
use crate::store;

pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    // The daemon migrates itself, and waits for a database that is down.
    let store = store::open_or_wait(&config.database.url, config.database.pooler).await?;
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(
            "stopping: no new attempts; finishing those in flight and writing everything measured"
        );
        let _ = stop.send(true);
    });
    daemon::run(&config, store, Arc::new(SystemClock), stopped).await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
