//! `improbe import FILE|-`: all-or-nothing load of JSON Lines attempts.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use anyhow::Context;

use super::{load_config, open_store};
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
    let mut attempts = read_attempts(reader, &targets);
    let summary = store
        .ingest(&mut attempts)
        .await
        .with_context(|| format!("{}: nothing was imported", display_name(&args.file)))?;
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
