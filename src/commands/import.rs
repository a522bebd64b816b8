//! `improbe import FILE|-`: all-or-nothing load of JSON Lines attempts.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::{load_config, open_store};
use crate::accounting;
use crate::attempt::jsonl::read_attempts;
use crate::cli::ImportArgs;

pub async fn run(config_path: &Path, args: &ImportArgs) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let store = open_store(&config).await?;

    let reader: Box<dyn BufRead + Send> = if args.file == "-" {
        Box::new(BufReader::new(io::stdin()))
    } else {
        let file = File::open(&args.file).with_context(|| format!("cannot open {}", args.file))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let targets: HashSet<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    // The span of instants per target, for the Service Months to refresh.
    let mut spans: HashMap<String, (DateTime<Utc>, DateTime<Utc>)> = HashMap::new();
    let mut attempts = read_attempts(reader, &targets).inspect(|attempt| {
        if let Ok(a) = attempt {
            match spans.get_mut(&a.target) {
                Some((from, to)) => {
                    *from = (*from).min(a.started_at);
                    *to = (*to).max(a.started_at);
                }
                None => {
                    spans.insert(a.target.clone(), (a.started_at, a.started_at));
                }
            }
        }
    });
    let summary = store
        .ingest(&mut attempts)
        .await
        .with_context(|| format!("{}: nothing was imported", display_name(&args.file)))?;
    drop(attempts);
    let now = Utc::now();
    for target in &config.targets {
        if let Some((from, to)) = spans.get(&target.name) {
            let months = accounting::months_touched(target, *from, *to, now);
            accounting::refresh_service_months(store.as_ref(), target, months, now).await?;
        }
    }
    println!(
        "{}: {} attempts read, {} new, {} already stored; {} minutes re-decided",
        display_name(&args.file),
        summary.attempts,
        summary.inserted,
        summary.attempts - summary.inserted,
        summary.minutes_touched
    );
    Ok(())
}

fn display_name(file: &str) -> &str {
    if file == "-" { "<stdin>" } else { file }
}
