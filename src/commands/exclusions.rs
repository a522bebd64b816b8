//! `improbe exclusions add|list|remove`: exclusion windows kept in the
//! database, beside those in the config, each with its reason and notice.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{load_config, open_store};
use crate::cli::{ExclusionsAddArgs, ExclusionsCommand, ListFormat};
use crate::sla::ExclusionWindow;
use crate::store::{ExclusionSource, NewExclusion, StoredExclusion};

pub async fn run(config_path: &Path, command: &ExclusionsCommand) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let store = open_store(&config).await?;
    match command {
        ExclusionsCommand::Add(args) => {
            let exclusion = new_exclusion(args, &config, config_path)?;
            let id = store.add_exclusion(&exclusion).await?;
            refresh_months(store.as_ref(), &config, &exclusion.target, exclusion.window).await?;
            let minutes = exclusion.window.minutes().len();
            println!(
                "exclusion {id} added: {} {} .. {} ({minutes} minutes), {}",
                exclusion.target,
                exclusion.window.start.to_rfc3339(),
                exclusion.window.end.to_rfc3339(),
                exclusion.reason
            );
            if exclusion
                .announced_at
                .is_none_or(|at| at >= exclusion.window.start)
            {
                println!(
                    "note: no notice before its start; it is applied, but reports flag it: the SLA excludes only maintenance announced in advance"
                );
            }
        }
        ExclusionsCommand::List(args) => {
            let list = store.exclusions(args.target.as_deref()).await?;
            match args.format {
                ListFormat::Table => print!("{}", crate::text::for_terminal(&table(&list))),
                ListFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&list.iter().map(to_json).collect::<Vec<_>>())?
                ),
            }
        }
        ExclusionsCommand::Remove(args) => match store.remove_exclusion(args.id).await? {
            Some(removed) => {
                refresh_months(store.as_ref(), &config, &removed.target, removed.window).await?;
                println!(
                    "exclusion {} removed: {} {} .. {}",
                    removed.id,
                    removed.target,
                    removed.window.start.to_rfc3339(),
                    removed.window.end.to_rfc3339()
                )
            }
            None => anyhow::bail!(
                "no exclusion with id {}; `improbe exclusions list` shows them",
                args.id
            ),
        },
    }
    Ok(())
}

/// Keeps `service_months` current for the months a window touches.
async fn refresh_months(
    store: &dyn crate::store::Store,
    config: &crate::config::Config,
    target: &str,
    window: ExclusionWindow,
) -> anyhow::Result<()> {
    // A window of a target since removed from the config changes no figure shown.
    let Some(target) = config.targets.iter().find(|t| t.name == target) else {
        return Ok(());
    };
    let months = crate::accounting::months_touched(target, window.start, window.end, Utc::now());
    crate::accounting::refresh_service_months(store, target, months, Utc::now()).await?;
    Ok(())
}

fn new_exclusion(
    args: &ExclusionsAddArgs,
    config: &crate::config::Config,
    config_path: &Path,
) -> anyhow::Result<NewExclusion> {
    super::find_target(config, config_path, &args.target)?;
    let instant = |flag: &str, text: &str| -> anyhow::Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| anyhow::anyhow!("--{flag} `{text}` is not an RFC 3339 instant such as 2026-04-02T02:00:00+08:00: {e}"))
    };
    let window = ExclusionWindow {
        start: instant("start", &args.start)?,
        end: instant("end", &args.end)?,
    };
    anyhow::ensure!(window.end > window.start, "--end must be after --start");
    anyhow::ensure!(
        !args.reason.trim().is_empty(),
        "--reason must say why the window is excluded"
    );
    let announced_at = args
        .announced_at
        .as_deref()
        .map(|a| instant("announced-at", a))
        .transpose()?;
    let recorded_by = args
        .recorded_by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| config.prober.id.clone());
    Ok(NewExclusion {
        target: args.target.clone(),
        window,
        reason: args.reason.clone(),
        announced_at,
        recorded_at: Utc::now(),
        recorded_by,
    })
}

fn notice(e: &StoredExclusion) -> String {
    match e.announced_at {
        Some(at) if e.has_prior_notice() => format!("announced {}", at.to_rfc3339()),
        Some(at) => format!("NO PRIOR NOTICE (announced {})", at.to_rfc3339()),
        None => "NO PRIOR NOTICE".to_owned(),
    }
}

fn source(e: &StoredExclusion) -> &'static str {
    match e.source {
        ExclusionSource::Config => "config",
        ExclusionSource::Cli => "cli",
    }
}

fn to_json(e: &StoredExclusion) -> serde_json::Value {
    json!({
        "id": e.id,
        "target": e.target,
        "start": e.window.start.to_rfc3339(),
        "end": e.window.end.to_rfc3339(),
        "minutes": e.window.minutes().len(),
        "reason": e.reason,
        "announced_at": e.announced_at.map(|a| a.to_rfc3339()),
        "prior_notice": e.has_prior_notice(),
        "source": source(e),
        "recorded_at": e.recorded_at.to_rfc3339(),
        "recorded_by": e.recorded_by,
    })
}

fn table(list: &[StoredExclusion]) -> String {
    if list.is_empty() {
        return "No exclusion windows.\n".to_owned();
    }
    let mut out = String::new();
    for e in list {
        out.push_str(&format!(
            "{:>4}  {}  {} .. {}  {} min  {}  [{}; {}, recorded {} by {}]\n",
            e.id,
            e.target,
            e.window.start.to_rfc3339(),
            e.window.end.to_rfc3339(),
            e.window.minutes().len(),
            e.reason,
            notice(e),
            source(e),
            e.recorded_at.format("%Y-%m-%d %H:%M UTC"),
            e.recorded_by
        ));
    }
    out
}
