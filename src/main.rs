use std::process::ExitCode;

use clap::Parser;
use improbe::cli::{Cli, LogFormat};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // `IMPROBE_LOG`: a level (`debug`) or `target=level` directives
    // (`info,sqlx=warn`); a filter without regular expressions keeps them
    // out of the binary (docs/performance.md, memory).
    let filter = std::env::var("IMPROBE_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(|| improbe::text::OneLinePerEvent(std::io::stderr()));
    let registry = tracing_subscriber::registry();
    match cli.log_format {
        LogFormat::Json => registry.with(logs.json().with_filter(filter)).init(),
        LogFormat::Pretty => registry.with(logs.with_filter(filter)).init(),
    }
    match improbe::commands::dispatch(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "error: {}",
                improbe::text::for_terminal(&format!("{error:#}"))
            );
            ExitCode::FAILURE
        }
    }
}
