//! What `improbe run` needs before it probes, checked the same way by
//! `improbe check-config`: every secret readable, the database URL one improbe
//! understands, and the data directory writable (with any spool an earlier
//! run left readable). Each problem names its TOML path and what to do.

use crate::config::Config;
use crate::daemon::spool::Spool;
use crate::store::redact_url;

/// Every problem found, each on its own line; `Ok` when there is none.
pub fn check(config: &Config) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for (i, target) in config.targets.iter().enumerate() {
        let section = target.provider.kind().as_str();
        for (field, secret) in target.provider.secrets() {
            if let Err(e) = secret.reveal() {
                problems.push(format!("targets[{i}].{section}.{field}: {e}"));
            }
        }
    }
    for (i, channel) in config.notify.iter().enumerate() {
        for (field, secret) in channel.settings.secrets() {
            if let Err(e) = secret.reveal() {
                problems.push(format!("notify[{i}].{field}: {e}"));
            }
        }
        if let crate::notify::ChannelSettings::Email(email) = &channel.settings
            && let Some(path) = &email.ca_file
            && let Err(e) = std::fs::read(path)
        {
            problems.push(format!(
                "notify[{i}].ca_file: cannot read {}: {e}",
                path.display()
            ));
        }
    }
    let url = &config.database.url;
    if !["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        problems.push(format!(
            "database.url: unsupported database URL `{}`: use sqlite://FILE or postgres://USER@HOST/DB",
            redact_url(url)
        ));
    }
    if let Some(problem) = crate::store::url_problem(url) {
        problems.push(format!("database.url: {problem}"));
    }
    let spool = config.prober.spool_path();
    let existed = spool.exists();
    match Spool::open(&spool) {
        Ok(_) if !existed => crate::daemon::spool::remove_if_empty(&spool),
        Ok(_) => {}
        Err(e) => problems.push(format!("prober.data_dir: {e}")),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", problems.join("\n"))
    }
}
