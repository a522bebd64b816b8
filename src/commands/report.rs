//! `improbe report`: the evidence for one target and Service Month.

use std::path::Path;

use anyhow::Context;
use chrono::Utc;

use super::{find_target, load_config, open_store};
use crate::accounting::{self, MonthSelection};
use crate::cli::{ReportArgs, ReportFormat};
use crate::report::{evidence, html, markdown};

pub async fn run(config_path: &Path, args: &ReportArgs) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let target = find_target(&config, config_path, &args.which.target)?;
    let now = Utc::now();
    let selection =
        MonthSelection::from_flags(args.which.month, args.which.date, MonthSelection::Current);
    let Some(month) = accounting::select_months(target, selection, now)?.pop() else {
        anyhow::bail!(
            "target `{}` has no Service Month yet: its service_start is {}; pick one with --month or --date",
            target.name,
            target.sla.calendar.service_start
        );
    };
    let store = open_store(&config).await?;
    let evidence = evidence::for_month(
        store.as_ref(),
        target,
        month,
        now,
        evidence::Depth::WithAttempts,
    )
    .await?;
    let text = match args.format {
        ReportFormat::Markdown => markdown::render(&evidence),
        ReportFormat::Html => html::render(&evidence),
        ReportFormat::Json => {
            serde_json::to_string_pretty(&evidence).expect("evidence serialises") + "\n"
        }
    };
    match &args.output {
        None => print!("{}", crate::text::for_terminal(&text)),
        Some(path) => write_atomically(path, &text)
            .with_context(|| format!("cannot write the report to {}", path.display()))?,
    }
    Ok(())
}

/// Writes next to `path` and renames, so a reader never sees half a report.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}
