//! `improbe sla`: availability, credit and claim window per target and Service Month.

use std::path::Path;

use chrono::Utc;

use super::{find_target, load_config, open_store};
use crate::accounting::{self, MonthSelection};
use crate::cli::{SlaArgs, SlaFormat};
use crate::report;

pub async fn run(config_path: &Path, args: &SlaArgs) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let targets: Vec<_> = match &args.target {
        Some(name) => vec![find_target(&config, config_path, name)?],
        None => config.targets.iter().collect(),
    };
    let selection = MonthSelection::from_flags(args.month, args.date, MonthSelection::ToDate);
    let now = Utc::now();
    let store = open_store(&config).await?;

    let mut statements = Vec::new();
    for target in targets {
        let months = accounting::select_months(target, selection, now)?;
        statements.extend(accounting::statements(store.as_ref(), target, months, now).await?);
    }

    let output = match args.format {
        SlaFormat::Table => report::sla_table::table(&statements, now),
        SlaFormat::Json => report::sla_table::json(&statements),
        SlaFormat::Csv => report::sla_table::csv(&statements),
    };
    print!("{}", crate::text::for_terminal(&output));
    Ok(())
}
