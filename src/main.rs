use std::process::ExitCode;

use clap::Parser;
use improbe::cli::{Cli, LogFormat};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

fn main() -> ExitCode {
    one_allocator_arena();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates an arena of its own (up to eight
/// per core), and each keeps its freed memory: the SQLite connections' threads
/// held about 3 MiB of a prober's 20 at 100 targets. The prober's work runs on
/// one thread, so one arena costs no contention worth measuring
/// (docs/performance.md, memory). Called before any thread exists.
fn one_allocator_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets an allocator parameter; it is called before
    // the runtime or any other thread starts, so nothing allocates meanwhile.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

async fn run() -> ExitCode {
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
