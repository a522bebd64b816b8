//! The decisions the store makes around its SQL, as plain functions: how a
//! batch of attempts adds to the per-prober minute buckets, how a batch of
//! re-decided minutes moves the hourly roll-up, and which config exclusion
//! windows to delete and insert. The SQL in `sql/` only
//! carries them out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::attempt::{Attempt, Outcome};
use crate::config::ConfiguredExclusion;
use crate::minute::Minute;
use crate::sla::ObservedMinutes;
use crate::verdict::{OutcomeCounts, Verdict};

/// A `minute_buckets` row's key: target, minute, prober.
pub type BucketKey = (String, Minute, String);

/// Each target's latency threshold (`slow_after`, milliseconds), as stored
/// in `latency_rules`.
pub type LatencyRules = HashMap<String, i64>;

/// Whether an attempt is an `ok` slower than its target's latency rule. An
/// `ok` without a recorded latency cannot be shown slow, so it is not.
pub fn is_slow_ok(attempt: &Attempt, rules: &LatencyRules) -> bool {
    attempt.outcome == Outcome::Ok
        && matches!(
            (attempt.latency_ms, rules.get(&attempt.target)),
            (Some(latency), Some(limit)) if latency > *limit
        )
}

/// What a batch of new attempts adds to each (target, minute, prober) bucket.
pub fn bucket_counts<'a>(
    attempts: impl IntoIterator<Item = &'a Attempt>,
    rules: &LatencyRules,
) -> BTreeMap<BucketKey, OutcomeCounts> {
    let mut buckets: BTreeMap<BucketKey, OutcomeCounts> = BTreeMap::new();
    for a in attempts {
        let counts = buckets
            .entry((a.target.clone(), a.minute(), a.prober.clone()))
            .or_default();
        if is_slow_ok(a, rules) {
            counts.slow_ok += 1;
        }
        match a.outcome {
            Outcome::Ok => counts.ok += 1,
            Outcome::Fail => counts.fail += 1,
            Outcome::Inconclusive => counts.inconclusive += 1,
        }
    }
    buckets
}

/// The target minutes the buckets touch, each once, in order: those whose
/// verdicts must be re-decided.
pub fn touched_minutes(buckets: &BTreeMap<BucketKey, OutcomeCounts>) -> Vec<(String, Minute)> {
    let touched: BTreeSet<(String, Minute)> = buckets
        .keys()
        .map(|(target, minute, _)| (target.clone(), *minute))
        .collect();
    touched.into_iter().collect()
}

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
    use crate::attempt::Kind;
    use crate::sla::ExclusionWindow;
    use chrono::{TimeZone, Utc};

    fn attempt(prober: &str, minute: u32, second: u32, outcome: Outcome) -> Attempt {
        Attempt {
            target: "t".into(),
            prober: prober.into(),
            kind: Kind::Login,
            started_at: Utc
                .with_ymd_and_hms(2026, 3, 17, 0, minute, second)
                .unwrap(),
            latency_ms: None,
            outcome,
            http_status: None,
            error_code: None,
            error: None,
            reason: None,
            delivery: None,
        }
    }

    #[test]
    fn only_an_ok_slower_than_its_targets_rule_counts_slow() {
        let timed = |outcome, latency: Option<i64>| Attempt {
            latency_ms: latency,
            ..attempt("a", 0, 0, outcome)
        };
        let rules = LatencyRules::from([("t".to_owned(), 200)]);
        assert!(is_slow_ok(&timed(Outcome::Ok, Some(201)), &rules));
        assert!(
            !is_slow_ok(&timed(Outcome::Ok, Some(200)), &rules),
            "at the limit is not slower"
        );
        assert!(
            !is_slow_ok(&timed(Outcome::Ok, None), &rules),
            "no latency, not shown slow"
        );
        assert!(
            !is_slow_ok(&timed(Outcome::Fail, Some(900)), &rules),
            "a failure is a failure already"
        );
        assert!(
            !is_slow_ok(&timed(Outcome::Ok, Some(900)), &LatencyRules::new()),
            "no rule"
        );
        let buckets = bucket_counts(
            &[
                timed(Outcome::Ok, Some(201)),
                timed(Outcome::Ok, Some(5)),
                timed(Outcome::Fail, Some(900)),
            ],
            &rules,
        );
        let counts = buckets.values().next().unwrap();
        assert_eq!((counts.ok, counts.slow_ok, counts.fail), (2, 1, 1));
    }

    #[test]
    fn attempts_count_in_their_own_minute_and_probers_bucket() {
        let attempts = [
            attempt("a", 0, 0, Outcome::Ok),
            attempt("a", 0, 59, Outcome::Fail),
            attempt("b", 0, 30, Outcome::Inconclusive),
            attempt("a", 1, 0, Outcome::Ok),
        ];
        let buckets = bucket_counts(&attempts, &LatencyRules::new());
        let first = attempts[0].minute();
        let next = Minute(first.0 + 1);
        let key = |prober: &str, minute| ("t".to_owned(), minute, prober.to_owned());
        assert_eq!(buckets.len(), 3);
        assert_eq!(
            buckets[&key("a", first)],
            OutcomeCounts {
                ok: 1,
                fail: 1,
                inconclusive: 0,
                slow_ok: 0
            }
        );
        assert_eq!(
            buckets[&key("b", first)],
            OutcomeCounts {
                ok: 0,
                fail: 0,
                inconclusive: 1,
                slow_ok: 0
            }
        );
        assert_eq!(
            buckets[&key("a", next)],
            OutcomeCounts {
                ok: 1,
                fail: 0,
                inconclusive: 0,
                slow_ok: 0
            }
        );
        assert_eq!(
            touched_minutes(&buckets),
            vec![("t".to_owned(), first), ("t".to_owned(), next)]
        );
    }

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
