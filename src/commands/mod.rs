//! One module per subcommand, plus the start-up steps they share.

pub mod check_config;
pub mod claim;
pub mod compact;
pub mod contracts;
pub mod demo;
pub mod exclusions;
pub mod healthcheck;
pub mod import;
pub mod migrate;
pub mod notify;
pub mod report;
pub mod run;
pub mod setup;
pub mod simulate;
pub mod sla;
pub mod storage;

use std::path::Path;
use std::sync::Arc;

use crate::cli::{Cli, Command, ContractsCommand, NotifyCommand, TencentCommand};
use crate::config::Config;
use crate::store::{self, Store};

/// Overrides `[database] url`, e.g. to keep credentials out of the file.
pub const DATABASE_URL_ENV: &str = "IMPROBE_DATABASE_URL";

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckConfig(args) => check_config::run(&cli.config, args.offline).await,
        Command::Migrate => migrate::run(&cli.config).await,
        Command::Compact(args) => compact::run(&cli.config, args.format).await,
        Command::Storage(args) => storage::run(&cli.config, args.format).await,
        Command::Import(args) => import::run(&cli.config, &args).await,
        Command::Sla(args) => sla::run(&cli.config, &args).await,
        Command::Report(args) => report::run(&cli.config, &args).await,
        Command::Claim(args) => claim::run(&cli.config, &args).await,
        Command::Contracts(ContractsCommand::Show(args)) => {
            contracts::show(&cli.config, &args.name)
        }
        Command::Notify(NotifyCommand::Test(args)) => {
            notify::test(&cli.config, &args.channel).await
        }
        Command::Run => run::run(&cli.config).await,
        Command::Healthcheck(args) => healthcheck::run(&cli.config, args.url.as_deref()).await,
        Command::Exclusions(command) => exclusions::run(&cli.config, &command).await,
        Command::Demo(args) => demo::run(args.minutes).await,
        Command::Simulate(args) => simulate::run(args.listen).await,
        Command::Setup(args) | Command::Tencent(TencentCommand::Setup(args)) => {
            setup::run(&cli.config, args.target.as_deref()).await
        }
    }
}

/// Loads and validates the config, applying environment overrides and
/// logging its warnings.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    let mut config = Config::load(path)?;
    apply_env_overrides(&mut config);
    for warning in &config.warnings {
        tracing::warn!(file = %path.display(), "{warning}");
    }
    Ok(config)
}

/// `IMPROBE_DATABASE_URL` over the config's `[database] url`.
pub fn apply_env_overrides(config: &mut Config) {
    if let Ok(url) = std::env::var(DATABASE_URL_ENV) {
        config.database.url = url;
    }
}

/// The target `name`, or an error listing the ones the config defines.
pub fn find_target<'c>(
    config: &'c Config,
    config_path: &Path,
    name: &str,
) -> anyhow::Result<&'c crate::config::Target> {
    config.target(name).ok_or_else(|| {
        let known: Vec<_> = config.targets.iter().map(|t| t.name.as_str()).collect();
        anyhow::anyhow!(
            "no target named `{name}` in {}; known: {}",
            config_path.display(),
            known.join(", ")
        )
    })
}

/// Opens the configured database, brings its schema up to date and makes
/// the config's exclusion windows the database's.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::open_through(&config.database.url, config.database.pooler).await?;
    store::prepare(store.as_ref(), config, chrono::Utc::now()).await?;
    Ok(store)
}
