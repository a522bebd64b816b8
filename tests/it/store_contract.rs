//! One contract suite for the Store, run against SQLite and PostgreSQL alike.

use std::collections::BTreeMap;

use crate::common::{TestDb, at, attempt, ingest};
use chrono::Duration;
use improbe::attempt::Kind::{Login, SendDirect, SendGroup};
use improbe::attempt::Outcome::{Fail, Inconclusive, Ok as Success};
use improbe::attempt::{Attempt, InconclusiveReason};
use improbe::config::ConfiguredExclusion;
use improbe::minute::{Minute, MinuteRange};
use improbe::sla::{ExclusionWindow, ObservedMinutes};
use improbe::store::Store;
use improbe::verdict::Verdict;

fn range(start: &str, end: &str) -> MinuteRange {
    MinuteRange::new(Minute::containing(&at(start)), Minute::containing(&at(end)))
}

async fn verdicts(store: &dyn Store, target: &str, r: MinuteRange) -> Vec<(String, Verdict)> {
    store
        .minute_verdicts(target, r)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.minute.to_string(), v.verdict))
        .collect()
}

/// The roll-up must always agree with a minute-by-minute count.
async fn assert_rollup_matches(store: &dyn Store, target: &str, r: MinuteRange) {
    let rows = store.minute_verdicts(target, r).await.unwrap();
    let brute = ObservedMinutes {
        available: rows
            .iter()
            .filter(|v| v.verdict == Verdict::Available)
            .count() as i64,
        failure: rows
            .iter()
            .filter(|v| v.verdict == Verdict::Failure)
            .count() as i64,
    };
    assert_eq!(
        store.observed_minutes(target, r).await.unwrap(),
        brute,
        "{target} {r:?}"
    );
}

async fn worked_examples_become_the_sla_verdicts(db: TestDb) {
    let store = db.store().await;
    let attempts = [
        // 00:00 login fail, direct fail, group ok: available
        attempt("t", "a", Login, "2026-03-17T00:00:05Z", Fail),
        attempt("t", "a", SendDirect, "2026-03-17T00:00:20Z", Fail),
        attempt("t", "a", SendGroup, "2026-03-17T00:00:35Z", Success),
        // 00:01 login timeout, both sends fail: failure
        attempt("t", "a", Login, "2026-03-17T00:01:05Z", Fail),
        attempt("t", "a", SendDirect, "2026-03-17T00:01:20Z", Fail),
        attempt("t", "a", SendGroup, "2026-03-17T00:01:35Z", Fail),
        // 00:02 only inconclusive: no data
        attempt("t", "a", Login, "2026-03-17T00:02:05Z", Inconclusive),
        // 00:03 two probers, A only failures, B one ok: available
        attempt("t", "a", Login, "2026-03-17T00:03:05Z", Fail),
        attempt("t", "b", SendDirect, "2026-03-17T00:03:59.999Z", Success),
        // 00:04 a successful login with only failed sends: available
        attempt("t", "a", Login, "2026-03-17T00:04:00Z", Success),
        attempt("t", "a", SendDirect, "2026-03-17T00:04:01Z", Fail),
    ];
    let summary = ingest(store.as_ref(), &attempts).await;
    assert_eq!(
        (summary.attempts, summary.inserted, summary.minutes_touched),
        (11, 11, 5),
        "{}",
        db.backend
    );

    let r = range("2026-03-17T00:00:00Z", "2026-03-17T00:05:00Z");
    let got = verdicts(store.as_ref(), "t", r).await;
    let expected = [
        ("2026-03-17T00:00Z", Verdict::Available),
        ("2026-03-17T00:01Z", Verdict::Failure),
        ("2026-03-17T00:02Z", Verdict::NoData),
        ("2026-03-17T00:03Z", Verdict::Available),
        ("2026-03-17T00:04Z", Verdict::Available),
    ];
    let expected: Vec<_> = expected.iter().map(|(m, v)| (m.to_string(), *v)).collect();
    assert_eq!(got, expected, "{}", db.backend);
    let two_probers = &store.minute_verdicts("t", r).await.unwrap()[3];
    assert_eq!(
        (
            two_probers.probers,
            two_probers.counts.ok,
            two_probers.counts.fail
        ),
        (2, 1, 1)
    );
    assert_eq!(
        store.observed_minutes("t", r).await.unwrap(),
        ObservedMinutes {
            available: 3,
            failure: 1
        }
    );
}

async fn re_ingesting_the_same_attempts_changes_nothing(db: TestDb) {
    let store = db.store().await;
    let attempts = [
        attempt("t", "a", Login, "2026-03-17T00:00:05Z", Fail),
        attempt("t", "a", SendDirect, "2026-03-17T00:00:06Z", Fail),
    ];
    ingest(store.as_ref(), &attempts).await;
    let again = ingest(store.as_ref(), &attempts).await;
    assert_eq!(
        (again.attempts, again.inserted, again.minutes_touched),
        (2, 0, 0),
        "{}",
        db.backend
    );
    let rows = store
        .minute_verdicts("t", range("2026-03-17T00:00:00Z", "2026-03-17T00:01:00Z"))
        .await
        .unwrap();
    assert_eq!(rows[0].counts.fail, 2, "{}: counted twice", db.backend);
    assert_eq!(store.attempt_count().await.unwrap(), 2);
    // A later success in the same minute flips the verdict and the roll-up.
    ingest(
        store.as_ref(),
        &[attempt(
            "t",
            "b",
            SendGroup,
            "2026-03-17T00:00:50Z",
            Success,
        )],
    )
    .await;
    let r = range("2026-03-17T00:00:00Z", "2026-03-17T01:00:00Z");
    assert_eq!(
        store.observed_minutes("t", r).await.unwrap(),
        ObservedMinutes {
            available: 1,
            failure: 0
        }
    );
}

async fn a_failed_ingest_commits_nothing(db: TestDb) {
    let store = db.store().await;
    ingest(
        store.as_ref(),
        &[attempt("t", "a", Login, "2026-03-17T00:00:05Z", Success)],
    )
    .await;
    // 2,500 good attempts spread over several batches, then a bad one.
    let good: Vec<_> = (0..2_500)
        .map(|i| {
            let started = at("2026-03-18T00:00:00Z") + Duration::seconds(i);
            let mut a = attempt("t", "a", Login, "2026-03-18T00:00:00Z", Fail);
            a.started_at = started;
            Ok(a)
        })
        .collect();
    let mut source = good
        .into_iter()
        .chain([Err(anyhow::anyhow!("line 2501: bad"))]);
    let err = store.ingest(&mut source).await.unwrap_err();
    assert!(err.to_string().contains("line 2501"), "{err}");
    assert_eq!(
        store.attempt_count().await.unwrap(),
        1,
        "{}: partial commit",
        db.backend
    );
    let day = range("2026-03-18T00:00:00Z", "2026-03-19T00:00:00Z");
    assert!(store.minute_verdicts("t", day).await.unwrap().is_empty());
    assert_eq!(
        store.observed_minutes("t", day).await.unwrap(),
        ObservedMinutes::default()
    );
}

async fn exclusion_windows_turn_minutes_excluded_and_back(db: TestDb) {
    let store = db.store().await;
    let attempts: Vec<_> = (0..10)
        .map(|m| {
            let mut a = attempt("t", "a", Login, "2026-04-01T18:00:00Z", Fail);
            a.started_at = at("2026-03-31T23:55:30Z") + Duration::minutes(m);
            a
        })
        .collect();
    ingest(store.as_ref(), &attempts).await;
    let all = range("2026-03-31T23:00:00Z", "2026-04-01T01:00:00Z");
    assert_eq!(store.observed_minutes("t", all).await.unwrap().failure, 10);

    // 23:58:30 .. 00:01:10 overlaps minutes 23:58, 23:59, 00:00, 00:01.
    let maintenance = ConfiguredExclusion {
        target: "t".into(),
        window: ExclusionWindow {
            start: at("2026-03-31T23:58:30Z"),
            end: at("2026-04-01T00:01:10Z"),
        },
        reason: "upgrade".into(),
        announced_at: Some(at("2026-03-30T00:00:00Z")),
    };
    let now = at("2026-04-02T00:00:00Z");
    store
        .sync_config_exclusions(std::slice::from_ref(&maintenance), "test", now)
        .await
        .unwrap();
    let excluded: Vec<_> = verdicts(store.as_ref(), "t", all)
        .await
        .into_iter()
        .filter(|(_, v)| *v == Verdict::Excluded)
        .map(|(m, _)| m)
        .collect();
    assert_eq!(
        excluded,
        [
            "2026-03-31T23:58Z",
            "2026-03-31T23:59Z",
            "2026-04-01T00:00Z",
            "2026-04-01T00:01Z"
        ]
    );
    assert_eq!(
        store.observed_minutes("t", all).await.unwrap().failure,
        6,
        "{}",
        db.backend
    );
    assert_rollup_matches(
        store.as_ref(),
        "t",
        range("2026-03-31T23:58:00Z", "2026-04-01T00:00:00Z"),
    )
    .await;

    // Syncing the same set again keeps one row; removing it restores the failures.
    store
        .sync_config_exclusions(std::slice::from_ref(&maintenance), "test", now)
        .await
        .unwrap();
    let stored = store.exclusions(Some("t")).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].has_prior_notice());
    store
        .sync_config_exclusions(&[], "test", now)
        .await
        .unwrap();
    assert!(store.exclusions(None).await.unwrap().is_empty());
    assert_eq!(
        store.observed_minutes("t", all).await.unwrap().failure,
        10,
        "{}",
        db.backend
    );
    assert_rollup_matches(store.as_ref(), "t", all).await;
}

async fn month_sums_agree_with_minutes_at_odd_offsets(db: TestDb) {
    let store = db.store().await;
    // Every 7th minute fails, the rest succeed, over two days.
    let attempts: Vec<_> = (0..2 * 1440)
        .map(|m| {
            let outcome = if m % 7 == 0 { Fail } else { Success };
            let mut a = attempt("t", "a", SendDirect, "2026-05-01T00:00:00Z", outcome);
            a.started_at = at("2026-05-01T00:00:10Z") + Duration::minutes(m);
            a
        })
        .collect();
    ingest(store.as_ref(), &attempts).await;
    // Kathmandu (+05:45) months start at 18:15 UTC: ranges that cut hours.
    for (start, end) in [
        ("2026-05-01T18:15:00Z", "2026-05-02T18:15:00Z"),
        ("2026-05-01T00:10:00Z", "2026-05-01T00:50:00Z"),
        ("2026-04-30T00:00:00Z", "2026-05-03T00:00:00Z"),
        ("2026-05-01T05:59:00Z", "2026-05-01T07:01:00Z"),
    ] {
        assert_rollup_matches(store.as_ref(), "t", range(start, end)).await;
    }
}

async fn concurrent_probers_never_lose_or_double_count(db: TestDb) {
    let store = db.store().await;
    // Eight probers write the same ten minutes at once, each in small batches.
    let mut tasks = Vec::new();
    for p in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for m in 0..10 {
                let prober = format!("p{p}");
                // Prober 0 sees successes in even minutes; everyone else fails.
                let outcome = if p == 0 && m % 2 == 0 { Success } else { Fail };
                let mut a = attempt("t", &prober, Login, "2026-06-01T00:00:00Z", outcome);
                a.started_at = at("2026-06-01T00:00:01Z") + Duration::minutes(m);
                let mut b = a.clone();
                b.kind = SendGroup;
                ingest(store.as_ref(), &[a, b]).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = range("2026-06-01T00:00:00Z", "2026-06-01T00:10:00Z");
    let rows = store.minute_verdicts("t", r).await.unwrap();
    assert_eq!(rows.len(), 10);
    for row in &rows {
        assert_eq!(row.probers, 8, "{}", db.backend);
        assert_eq!(row.counts.ok + row.counts.fail, 16, "{}", db.backend);
    }
    assert_eq!(
        store.observed_minutes("t", r).await.unwrap(),
        ObservedMinutes {
            available: 5,
            failure: 5
        }
    );
    assert_eq!(store.attempt_count().await.unwrap(), 160);
}

async fn heartbeats_add_up_per_prober_and_minute(db: TestDb) {
    use improbe::store::Heartbeat;
    let store = db.store().await;
    let minute = Minute::containing(&at("2026-04-01T10:00:00Z"));
    let beat = |prober: &str, minute: Minute, finished: i64| Heartbeat {
        prober: prober.into(),
        minute,
        scheduled: finished + 1,
        started: finished,
        skipped: 1,
        finished,
    };
    store
        .record_heartbeats(&[beat("a", minute, 10), beat("b", minute, 7)])
        .await
        .unwrap();
    // The last minute is recorded in parts when the prober stops.
    store
        .record_heartbeats(&[beat("a", minute, 2), beat("a", minute.next(), 12)])
        .await
        .unwrap();
    let beats = store
        .heartbeats(MinuteRange::new(minute, minute.next().next()))
        .await
        .unwrap();
    assert_eq!(
        beats,
        vec![
            Heartbeat {
                prober: "a".into(),
                minute,
                scheduled: 14,
                started: 12,
                skipped: 2,
                finished: 12
            },
            beat("b", minute, 7),
            beat("a", minute.next(), 12),
        ],
        "{}",
        db.backend
    );
}

async fn pruning_removes_raw_attempts_but_keeps_every_verdict(db: TestDb) {
    let store = db.store().await;
    let attempts = [
        attempt("t", "p", Login, "2026-01-10T10:00:05Z", Fail),
        attempt("t", "p", SendDirect, "2026-01-10T10:00:25Z", Fail),
        attempt("t", "p", Login, "2026-01-10T10:01:05Z", Success),
        attempt("t", "p", Login, "2026-03-10T10:00:05Z", Success),
        attempt("other", "p", Login, "2026-01-10T10:00:05Z", Fail),
    ];
    ingest(store.as_ref(), &attempts).await;
    let month = range("2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z");
    let before = verdicts(store.as_ref(), "t", month).await;
    let observed = store.observed_minutes("t", month).await.unwrap();

    let pruned = store
        .prune_attempts("t", at("2026-02-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(pruned, 3, "{}", db.backend);
    assert_eq!(store.attempt_count().await.unwrap(), 2, "{}", db.backend);
    assert_eq!(verdicts(store.as_ref(), "t", month).await, before);
    assert_eq!(store.observed_minutes("t", month).await.unwrap(), observed);
    assert_eq!(
        store
            .prune_attempts("t", at("2026-02-01T00:00:00Z"))
            .await
            .unwrap(),
        0
    );
}

/// Slow successes (latency contracts): the daemon's write (one statement on
/// PostgreSQL, re-decided later) and the import's (re-decided at once)
/// count them alike against the stored rule, re-imports count nothing
/// twice, and a changed rule recounts every stored minute.
async fn slow_successes_are_counted_alike_on_every_write_path_and_recounted_when_the_rule_changes(
    db: TestDb,
) {
    let timed = |target: &str, prober: &str, second: u32, outcome, latency: Option<i64>| Attempt {
        latency_ms: latency,
        ..attempt(
            target,
            prober,
            Login,
            &format!("2026-03-17T00:00:{second:02}Z"),
            outcome,
        )
    };
    let batch = |target: &str| {
        vec![
            timed(target, "a", 1, Success, Some(201)), // slow
            timed(target, "a", 2, Success, Some(200)), // at the limit: not slow
            timed(target, "b", 3, Success, Some(950)), // slow, other prober
            timed(target, "b", 4, Success, None),      // no latency: not shown slow
            timed(target, "b", 5, Fail, Some(990)),    // a failure already
        ]
    };
    let minute = range("2026-03-17T00:00:00Z", "2026-03-17T00:01:00Z");
    let b = db.backend;
    let store = db.store().await;
    let rules = BTreeMap::from([("daemon".to_owned(), 200), ("import".to_owned(), 200)]);
    let mut recounted = store
        .apply_latency_rules(&rules, at("2026-03-17T00:00:00Z"))
        .await
        .unwrap();
    recounted.sort();
    assert_eq!(recounted, ["daemon", "import"], "{b}");
    assert!(
        store
            .apply_latency_rules(&rules, at("2026-03-17T00:00:00Z"))
            .await
            .unwrap()
            .is_empty(),
        "{b}: an unchanged rule recounts nothing"
    );

    store.store_attempts(&batch("daemon"), None).await.unwrap();
    store.settle_pending().await.unwrap();
    ingest(store.as_ref(), &batch("import")).await;
    ingest(store.as_ref(), &batch("import")).await;
    for target in ["daemon", "import"] {
        let rows = store.minute_verdicts(target, minute).await.unwrap();
        assert_eq!(rows.len(), 1, "{b} {target}");
        let counts = rows[0].counts;
        assert_eq!(
            (counts.ok, counts.slow_ok, counts.fail),
            (4, 2, 1),
            "{b} {target}"
        );
        assert_eq!(
            rows[0].verdict,
            Verdict::Available,
            "{b} {target}: the minute verdict ignores latency"
        );
    }

    // A stricter rule for one target recounts its stored minutes only.
    let stricter = BTreeMap::from([("daemon".to_owned(), 100), ("import".to_owned(), 200)]);
    let recounted = store
        .apply_latency_rules(&stricter, at("2026-03-17T01:00:00Z"))
        .await
        .unwrap();
    assert_eq!(recounted, ["daemon"], "{b}");
    let slow = |rows: Vec<improbe::store::MinuteVerdict>| rows[0].counts.slow_ok;
    assert_eq!(
        slow(store.minute_verdicts("daemon", minute).await.unwrap()),
        3,
        "{b}"
    );
    assert_eq!(
        slow(store.minute_verdicts("import", minute).await.unwrap()),
        2,
        "{b}"
    );
    // Later writes count against the new rule.
    store
        .store_attempts(&[timed("daemon", "c", 30, Success, Some(150))], None)
        .await
        .unwrap();
    store.settle_pending().await.unwrap();
    let rows = store.minute_verdicts("daemon", minute).await.unwrap();
    assert_eq!((rows[0].counts.ok, rows[0].counts.slow_ok), (5, 4), "{b}");
    assert_eq!(rows[0].probers, 3, "{b}");
}

async fn a_reason_an_earlier_import_stored_as_free_text_reads_as_none(db: TestDb) {
    let store = db.store().await;
    let mut inconclusive = attempt("tim", "import", Login, "2026-03-17T00:00:05Z", Inconclusive);
    inconclusive.reason = Some(InconclusiveReason::Throttled);
    ingest(store.as_ref(), &[inconclusive]).await;
    let read = crate::common::all_attempts(store.as_ref(), "tim").await;
    assert_eq!(
        read[0].reason,
        Some(InconclusiveReason::Throttled),
        "{}",
        db.backend
    );
    // What imports accepted before the reason was one of the words.
    let legacy = "UPDATE attempts SET reason = 'upstream said so'";
    if db.backend == "sqlite" {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query(legacy).execute(&pool).await.unwrap();
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query(legacy).execute(&pool).await.unwrap();
    }
    let read = crate::common::all_attempts(store.as_ref(), "tim").await;
    assert_eq!(read.len(), 1, "{}", db.backend);
    assert_eq!(read[0].reason, None, "{}", db.backend);
    assert_eq!(read[0].outcome, Inconclusive, "{}", db.backend);
}

crate::on_both_backends!(
    flavor = "current_thread";
    worked_examples_become_the_sla_verdicts,
    re_ingesting_the_same_attempts_changes_nothing,
    a_failed_ingest_commits_nothing,
    exclusion_windows_turn_minutes_excluded_and_back,
    month_sums_agree_with_minutes_at_odd_offsets,
    concurrent_probers_never_lose_or_double_count,
    heartbeats_add_up_per_prober_and_minute,
    pruning_removes_raw_attempts_but_keeps_every_verdict,
    slow_successes_are_counted_alike_on_every_write_path_and_recounted_when_the_rule_changes,
    a_reason_an_earlier_import_stored_as_free_text_reads_as_none,
    the_buckets_a_write_counts_are_those_changes_bucket_counts,
);

/// The minute buckets every write path counts (the daemon's and the
/// import's; on PostgreSQL the daemon's is one SQL statement) are those
/// `changes::bucket_counts` computes, and a replay adds nothing.
async fn the_buckets_a_write_counts_are_those_changes_bucket_counts(db: TestDb) {
    let store = db.store().await;
    let rules = BTreeMap::from([("t0".to_owned(), 150), ("t1".to_owned(), 1_000)]);
    store
        .apply_latency_rules(&rules, at("2026-03-17T00:00:00Z"))
        .await
        .unwrap();
    // Three targets (one without a rule), two probers, five minutes, every
    // outcome, latencies with and without, in a scrambled order.
    let mut batch = Vec::new();
    let mut seed = 11_u64;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for i in 0..600_u64 {
        let kind = [Login, SendDirect, SendGroup][(i % 3) as usize];
        let outcome = [Success, Success, Success, Fail, Inconclusive][next(5) as usize];
        let mut a = attempt(
            &format!("t{}", next(3)),
            ["a", "b"][next(2) as usize],
            kind,
            &format!("2026-03-17T00:0{}:{:02}.{:03}Z", next(5), next(60), i),
            outcome,
        );
        a.latency_ms = (next(4) > 0).then(|| next(2_000) as i64);
        batch.push(a);
    }
    let (daemon, import) = batch.split_at(400);
    for chunk in daemon.chunks(150) {
        store.store_attempts(chunk, None).await.unwrap();
    }
    store.store_attempts(&daemon[..150], None).await.unwrap();
    ingest(store.as_ref(), import).await;
    ingest(store.as_ref(), import).await;
    store.settle_pending().await.unwrap();

    let rust_rules = rules.iter().map(|(t, ms)| (t.clone(), *ms)).collect();
    type Buckets = BTreeMap<(String, i64, String), (i64, i64, i64, i64)>;
    let expected: Buckets = improbe::store::changes::bucket_counts(&batch, &rust_rules)
        .into_iter()
        .map(|((target, minute, prober), c)| {
            let counts = (c.ok, c.fail, c.inconclusive, c.slow_ok);
            ((target, minute.0, prober), counts)
        })
        .collect();
    let read = "SELECT t.name, b.minute, p.name, CAST(b.ok_attempts AS BIGINT), \
                CAST(b.fail_attempts AS BIGINT), CAST(b.inconclusive_attempts AS BIGINT), \
                CAST(b.slow_ok_attempts AS BIGINT) \
                FROM minute_buckets AS b JOIN target_names AS t ON t.id = b.target_id \
                JOIN prober_names AS p ON p.id = b.prober_id";
    type Row = (String, i64, String, i64, i64, i64, i64);
    let rows: Vec<Row> = if db.backend == "sqlite" {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query_as(read).fetch_all(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query_as(read).fetch_all(&pool).await.unwrap()
    };
    let stored: Buckets = rows
        .into_iter()
        .map(|(t, m, p, ok, fail, inc, slow)| ((t, m, p), (ok, fail, inc, slow)))
        .collect();
    assert_eq!(stored, expected, "{}", db.backend);
    assert!(expected.values().any(|c| c.3 > 0), "some slow successes");
}
