//! `improbe sla`: availability, credit and claim window per target and Service Month.

use std::path::Path;

use chrono::Utc;

use super::{load_config, open_store};
use crate::accounting::{self, MonthSelection};
use crate::cli::{SlaArgs, SlaFormat};
use crate::report;

pub async fn run(config_path: &Path, args: &SlaArgs) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let targets: Vec<_> = match &args.target {
        Some(name) => vec![config.target(name).ok_or_else(|| {
            let known: Vec<_> = config.targets.iter().map(|t| t.name.as_str()).collect();
            anyhow::anyhow!(
                "no target named `{name}` in {}; known: {}",
                config_path.display(),
                known.join(", ")
            )
        })?],
        None => config.targets.iter().collect(),
    };
    let selection = match (args.month, args.date) {
        (Some(k), _) => MonthSelection::Index(k),
        (None, Some(date)) => MonthSelection::Containing(date),
        (None, None) => MonthSelection::ToDate,
    };
    let now = Utc::now();
    let store = open_store(&config).await?;

    let mut statements = Vec::new();
    for target in targets {
        let months = accounting::select_months(target, selection, now)?;
        statements.extend(accounting::statements(store.as_ref(), target, months, now).await?);
    }
    store.save_service_months(&statements, now).await?;

    let output = match args.format {
        SlaFormat::Table => report::sla::table(&statements, now),
        SlaFormat::Json => report::sla::json(&statements),
        SlaFormat::Csv => report::sla::csv(&statements),
    };
    print!("{output}");
    Ok(())
}
