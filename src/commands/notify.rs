//! `improbe notify test --channel NAME`: one `test` event, sent at once.

use std::path::Path;

use chrono::Utc;

use super::load_config;
use crate::notify::{Channel, decider};

pub async fn test(config_path: &Path, name: &str) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let Some(settings) = config.notify.iter().find(|c| c.name == name) else {
        let known: Vec<&str> = config.notify.iter().map(|c| c.name.as_str()).collect();
        anyhow::bail!(
            "no [[notify]] channel named `{name}` in {}; configured: {}",
            config_path.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    };
    let channel = Channel::build(settings)?;
    let target = config
        .targets
        .first()
        .map_or("improbe", |t| t.name.as_str());
    let event = decider::test_event(target, &config.prober.id, Utc::now());
    channel.send(&event).await.map_err(|e| {
        anyhow::anyhow!(
            "channel `{name}` ({}) did not take the test event: {e}",
            settings.settings.kind().as_str()
        )
    })?;
    println!(
        "channel `{name}` ({}) accepted test event {}",
        settings.settings.kind().as_str(),
        event.id
    );
    Ok(())
}
