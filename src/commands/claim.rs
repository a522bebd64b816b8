//! `improbe claim`: the credit claim's text for one target and Service Month.

use std::path::Path;

use chrono::Utc;

use super::{find_target, load_config, open_store};
use crate::accounting::{self, MonthSelection};
use crate::cli::{ClaimArgs, ClaimFormat};
use crate::report::claim_text::Claim;
use crate::report::evidence;

pub async fn run(config_path: &Path, args: &ClaimArgs) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let target = find_target(&config, config_path, &args.which.target)?;
    let now = Utc::now();
    let chosen = args.which.month.is_some() || args.which.date.is_some();
    let selection =
        MonthSelection::from_flags(args.which.month, args.which.date, MonthSelection::ToDate);
    let mut months = accounting::select_months(target, selection, now)?;
    if !chosen {
        // By default the latest month that has ended: only those can be claimed.
        months.retain(|m| m.end <= now);
    }
    let Some(month) = months.pop() else {
        anyhow::bail!(
            "target `{}` has no completed Service Month yet (service_start {}); pick one with --month or --date",
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
    let claim = Claim::from_evidence(&evidence, target.provider.kind().as_str());
    match args.format {
        ClaimFormat::Markdown => print!("{}", crate::text::for_terminal(&claim.text)),
        ClaimFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&claim).expect("a claim serialises")
        ),
    }
    Ok(())
}
