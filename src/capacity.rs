//! How long the database's volume lasts (docs/operations.md "Retention"):
//! what the database gained per target per day lately, the free space of
//! the volume an SQLite file lives on, and the days until it is full.
//! Read by `improbe storage`, `/metrics` and `check-config`.

use std::path::PathBuf;

use crate::store::StorageUse;

/// The period the growth rate is taken over.
pub const GROWTH_DAYS: i64 = 7;

/// Bytes the database gained per target per day over the last
/// [`GROWTH_DAYS`] days: each table's bytes per row times the rows it
/// gained, over the targets and days. The raw window's successes count in
/// full although they shrink to rollups once they leave it, so on a
/// database older than the raw window this is an upper bound.
pub fn bytes_per_target_day(usage: &StorageUse, targets: usize) -> i64 {
    let gained: f64 = usage
        .tables
        .iter()
        .filter(|t| t.rows > 0)
        .filter_map(|t| {
            t.recent_rows
                .map(|recent| t.bytes as f64 / t.rows as f64 * recent as f64)
        })
        .sum();
    (gained / GROWTH_DAYS as f64 / targets.max(1) as f64).round() as i64
}

/// SQLite bytes one attempt costs while its day is raw, the day's minute
/// tables included (bench/storage.sh 30 10 at 61d47ce: 1,745,742 bytes for
/// a target's 51,840 attempts a day).
pub const RAW_BYTES_PER_ATTEMPT: u64 = 34;
/// SQLite bytes one minute of one target costs once its successes are
/// folded: its bucket, its rollups, its verdict, its share of the hourly
/// roll-up (bench/storage.sh 30 10 at 61d47ce: 231 KB a folded day, less
/// its evidence, is 132 KB).
pub const FOLDED_BYTES_PER_MINUTE: u64 = 92;
/// SQLite bytes one failed or inconclusive attempt costs, kept raw for the
/// whole evidence period (63e01fd: 98 KB for 1,296 a day, `dbstat`).
pub const EVIDENCE_BYTES_PER_ATTEMPT: u64 = 76;
/// The share of attempts, per thousand, assumed to be evidence when sizing
/// ahead: bench/storage.sh's 2 % failed and 0.5 % inconclusive.
pub const ASSUMED_EVIDENCE_PER_MILLE: u64 = 25;

/// Bytes the configured targets need on SQLite once `attempts_retention_days`
/// of them are stored: the raw window at the raw rate, every other day
/// folded. An estimate from the figures above, for `check-config`.
pub fn bytes_needed(config: &crate::config::Config) -> u64 {
    let database = &config.database;
    let retention = u64::from(database.attempts_retention_days);
    let raw_days = u64::from(database.raw_window_days).min(retention);
    config
        .targets
        .iter()
        .map(|target| {
            let per_second =
                |interval: std::time::Duration| 1.0 / interval.as_secs_f64().max(0.001);
            let attempts_per_day: f64 = target
                .operations
                .iter()
                .map(|kind| {
                    let interval = match kind {
                        crate::attempt::Kind::Login => {
                            target.login_interval.unwrap_or(target.interval)
                        }
                        _ => target.interval,
                    };
                    per_second(interval) * 86_400.0
                })
                .sum();
            let attempts_per_day = attempts_per_day as u64;
            let folded_day = 1_440 * FOLDED_BYTES_PER_MINUTE
                + attempts_per_day * ASSUMED_EVIDENCE_PER_MILLE / 1_000
                    * EVIDENCE_BYTES_PER_ATTEMPT;
            raw_days * attempts_per_day * RAW_BYTES_PER_ATTEMPT
                + (retention - raw_days) * folded_day
        })
        .sum()
}

/// Days until `free` bytes are used at `daily` bytes a day (`None`: the
/// database does not grow).
pub fn days_until_full(free: u64, daily: i64) -> Option<i64> {
    (daily > 0).then(|| (free / daily as u64) as i64)
}

/// The file an `sqlite:` URL names (`None` for PostgreSQL or memory).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// Bytes an unprivileged writer may still use on the volume holding `file`.
pub fn volume_free_bytes(file: &std::path::Path) -> std::io::Result<u64> {
    let dir = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let c_path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and a buffer of the right type;
    // statvfs writes the buffer only on success, checked before reading.
    let result = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the buffer.
    let stats = unsafe { stats.assume_init() };
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TableUse;

    fn table(bytes: i64, rows: i64, recent: Option<i64>) -> TableUse {
        TableUse {
            table: "t".into(),
            bytes,
            rows,
            recent_rows: recent,
        }
    }

    #[test]
    fn growth_counts_each_table_at_its_own_row_size() {
        let usage = StorageUse {
            tables: vec![
                // 100 bytes a row, 700 rows in the week.
                table(100_000, 1_000, Some(700)),
                // No time column: not growth.
                table(50_000, 10, None),
                // Empty.
                table(4_096, 0, Some(0)),
            ],
            database_bytes: 160_000,
        };
        assert_eq!(bytes_per_target_day(&usage, 2), 100 * 700 / 7 / 2);
        assert_eq!(days_until_full(1_000_000, 5_000), Some(200));
        assert_eq!(days_until_full(1_000_000, 0), None);
    }

    #[test]
    fn a_default_target_needs_what_the_benchmark_measured() {
        let text = "[[targets]]\nname = \"t\"\nprovider = \"simulator\"\ninterval = \"5s\"\ntimeout = \"5s\"\n\
                    [targets.sla]\nservice_start = \"2026-01-01\"\ntimezone = \"UTC\"\nmonthly_fee = \"1\"\n";
        let config = crate::config::Config::parse(text, "test").unwrap();
        // 7 raw days at 1.75 MB and 393 folded at 0.23 MB: about 103 MB.
        let needed = bytes_needed(&config);
        assert!((98_000_000..107_000_000).contains(&needed), "{needed}");
    }

    #[test]
    fn only_sqlite_files_have_a_volume() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/improbe/improbe.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/improbe/improbe.db"))
        );
        assert_eq!(
            sqlite_file("sqlite://improbe.db"),
            Some(PathBuf::from("improbe.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
        assert!(volume_free_bytes(std::path::Path::new("improbe.db")).unwrap() > 0);
    }
}
