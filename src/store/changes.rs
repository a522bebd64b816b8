//! The decisions the store makes around its SQL, as plain functions: how a
//! batch of re-decided minutes moves the hourly roll-up, and which config
//! exclusion windows to delete and insert. The SQL in `shared.rs` only
//! carries them out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::ConfiguredExclusion;
use crate::minute::Minute;
use crate::sla::ObservedMinutes;
use crate::verdict::Verdict;

/// How each hour's counts in the `verdict_hours` roll-up move when minutes
/// get the `decided` verdicts, given the verdicts they had (`previous`, by
/// target and minute; absent for a minute that had none). Hours that do not
/// move are left out.
pub fn hourly_deltas<'a>(
    decided: impl IntoIterator<Item = (&'a str, Minute, Verdict)>,
    previous: &HashMap<(String, i64), Verdict>,
) -> Vec<((&'a str, i64), ObservedMinutes)> {
    let mut hours: BTreeMap<(&str, i64), ObservedMinutes> = BTreeMap::new();
    for (target, minute, new) in decided {
        let delta = hours.entry((target, minute.hour())).or_default();
        delta.add(new, 1);
        if let Some(old) = previous.get(&(target.to_owned(), minute.0)) {
            delta.add(*old, -1);
        }
    }
    hours.into_iter().filter(|(_, d)| !d.is_zero()).collect()
}

/// What identifies a config exclusion window: target, start and end
/// (Unix milliseconds), reason, and when it was announced.
pub type WindowKey = (String, i64, i64, String, Option<i64>);

pub fn window_key(e: &ConfiguredExclusion) -> WindowKey {
    (
        e.target.clone(),
        e.window.start.timestamp_millis(),
        e.window.end.timestamp_millis(),
        e.reason.clone(),
        e.announced_at.map(|a| a.timestamp_millis()),
    )
}

/// Makes the stored config windows (`stored`: id and key) the `wanted` ones:
/// the ids to delete (changed, removed or duplicated windows) with their
/// keys, and the wanted windows not stored yet, each once.
pub fn config_window_changes(
    stored: Vec<(i64, WindowKey)>,
    wanted: &[ConfiguredExclusion],
) -> (Vec<(i64, WindowKey)>, Vec<&ConfiguredExclusion>) {
    let wanted_keys: BTreeSet<WindowKey> = wanted.iter().map(window_key).collect();
    let mut kept = BTreeSet::new();
    let mut delete = Vec::new();
    for (id, key) in stored {
        if wanted_keys.contains(&key) && kept.insert(key.clone()) {
            continue;
        }
        delete.push((id, key));
    }
    let insert = wanted
        .iter()
        .filter(|e| kept.insert(window_key(e)))
        .collect();
    (delete, insert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::ExclusionWindow;

    #[test]
    fn only_hours_whose_counts_move_are_touched() {
        let hour = |h: i64, m: i64| Minute(h * 60 + m);
        let previous: HashMap<(String, i64), Verdict> = [
            (("t".to_owned(), hour(10, 1).0), Verdict::Failure),
            (("t".to_owned(), hour(11, 0).0), Verdict::Available),
        ]
        .into();
        let deltas = hourly_deltas(
            [
                ("t", hour(10, 0), Verdict::Available), // new minute
                ("t", hour(10, 1), Verdict::Available), // failure -> available
                ("t", hour(11, 0), Verdict::Available), // unchanged
                ("u", hour(10, 0), Verdict::NoData),    // counts nothing
            ],
            &previous,
        );
        assert_eq!(
            deltas,
            vec![(
                ("t", 10),
                ObservedMinutes {
                    available: 2,
                    failure: -1
                }
            )]
        );
    }

    fn window(target: &str, hour: u32, reason: &str) -> ConfiguredExclusion {
        let start = format!("2026-04-02T{hour:02}:00:00Z").parse().unwrap();
        let end = format!("2026-04-02T{hour:02}:30:00Z").parse().unwrap();
        ConfiguredExclusion {
            target: target.to_owned(),
            window: ExclusionWindow { start, end },
            reason: reason.to_owned(),
            announced_at: None,
        }
    }

    #[test]
    fn config_windows_change_only_where_the_config_did() {
        let kept = window("t", 1, "upgrade");
        let edited_before = window("t", 2, "drill");
        let edited_after = window("t", 2, "failover drill");
        let removed = window("u", 3, "gone");
        let stored = vec![
            (1, window_key(&kept)),
            (2, window_key(&edited_before)),
            (3, window_key(&removed)),
            (4, window_key(&kept)), // a duplicate row goes too
        ];
        let wanted = vec![kept.clone(), edited_after.clone(), edited_after.clone()];
        let (delete, insert) = config_window_changes(stored, &wanted);
        let deleted: Vec<i64> = delete.iter().map(|(id, _)| *id).collect();
        assert_eq!(deleted, vec![2, 3, 4]);
        assert_eq!(insert.len(), 1, "a window wanted twice is stored once");
        assert_eq!(insert[0], &edited_after);
    }
}
