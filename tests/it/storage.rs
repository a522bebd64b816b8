//! Storage over years: `improbe compact` folds successes into per-minute
//! rollups and no figure changes; failures stay quotable; late imports,
//! exclusions and latency rules keep working on folded minutes; `improbe
//! storage` reports what the database costs. Each test runs once per
//! backend, named after it.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::common::{TestDb, at};

crate::on_both_backends!(
    flavor = "current_thread";
    figures_and_evidence_are_identical_across_compact,
    late_imports_and_exclusions_re_decide_folded_minutes,
    the_daemons_success_in_a_folded_minute_is_taken_as_stored,
    slow_counts_survive_folding_and_a_changed_rule_recounts_them,
    storage_reports_each_table_and_the_growth,
    a_long_name_is_stored_once_not_with_every_row,
    an_earlier_database_reads_the_same_after_the_word_codes,
    folded_minutes_of_an_earlier_database_read_the_same_from_their_spans,
    successes_weeks_apart_are_all_folded_in_one_round,
    retention_trims_the_folded_span_its_cutoff_falls_inside,
);

const CONFIG: &str = r#"
[prober]
id = "storage-test"

[database]
raw_window_days = 0

[[targets]]
name = "tim"
provider = "simulator"
[targets.sla]
service_start = "2026-03-01"
timezone = "Asia/Shanghai"
monthly_fee = "500.00"
currency = "EUR"
"#;

use crate::common::{improbe_in as improbe, succeeded as ok};

fn line(prober: &str, kind: &str, t: DateTime<Utc>, outcome: &str, extra: &str) -> String {
    format!(
        r#"{{"target":"tim","prober":"{prober}","kind":"{kind}","started_at":"{}","outcome":"{outcome}"{extra}}}"#,
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    ) + "\n"
}

/// Two days from 2026-03-03T00:00Z (crossing a local midnight), every
/// 15 s by `p1` and every 30 s by `p2`, latencies spread over two orders of
/// magnitude; sends confirm delivery. Failures at 10:20-10:23 (with varied
/// errors), inconclusive minutes at 11:50-11:54, a group send never
/// delivered every hour at :30, and slow successes around 14:00.
fn attempts() -> String {
    let mut out = String::new();
    let start = at("2026-03-03T00:00:00Z");
    for second in (0..2 * 86_400).step_by(15) {
        let t = start + Duration::seconds(second);
        let minute_of_day = (second / 60) % 1_440;
        for (i, kind) in ["login", "send_direct", "send_group"].iter().enumerate() {
            let latency = 20 + (second * 7 + i as i64 * 13) % 2_000;
            let delivery = if *kind == "login" {
                String::new()
            } else {
                format!(r#","delivery":"confirmed","delivered_ms":{}"#, latency + 50)
            };
            let row = match minute_of_day {
                620..=623 => line(
                    "p1",
                    kind,
                    t,
                    "fail",
                    &format!(
                        r#","http_status":502,"error_code":"70{}","error":"internal error {second}""#,
                        500 + i
                    ),
                ),
                710..=714 => line(
                    "p1",
                    kind,
                    t,
                    "inconclusive",
                    r#","http_status":200,"error_code":"70001","error":"sig expired","reason":"credentials""#,
                ),
                m if m % 60 == 30 && *kind == "send_group" => line(
                    "p1",
                    kind,
                    t,
                    "ok",
                    &format!(r#","latency_ms":{latency},"delivery":"missing""#),
                ),
                840..=845 => line(
                    "p1",
                    kind,
                    t,
                    "ok",
                    &format!(
                        r#","http_status":200,"latency_ms":{}{delivery}"#,
                        3_000 + latency
                    ),
                ),
                _ => line(
                    "p1",
                    kind,
                    t,
                    "ok",
                    &format!(r#","http_status":200,"latency_ms":{latency}{delivery}"#),
                ),
            };
            out.push_str(&row);
            if second % 30 == 0 && !(620..=623).contains(&minute_of_day) {
                out.push_str(&line(
                    "p2",
                    kind,
                    t + Duration::milliseconds(3),
                    "ok",
                    &format!(r#","latency_ms":{}"#, latency / 2),
                ));
            }
        }
    }
    out
}

fn prepare(db: &TestDb, dir: &Path, config: &str, attempts: &str) {
    std::fs::write(dir.join("improbe.toml"), config).unwrap();
    std::fs::write(dir.join("attempts.jsonl"), attempts).unwrap();
    ok(improbe(
        dir,
        db,
        &["import", dir.join("attempts.jsonl").to_str().unwrap()],
    ));
}

/// Everything a user reads: the SLA table in every format, the report in
/// every format (its generation time aside) and the claim.
fn figures(db: &TestDb, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for format in ["json", "csv", "table"] {
        out.push(ok(improbe(dir, db, &["sla", "--format", format])));
    }
    for format in ["json", "markdown", "html"] {
        let report = ok(improbe(
            dir,
            db,
            &[
                "report", "--target", "tim", "--month", "1", "--format", format,
            ],
        ));
        out.push(
            report
                .lines()
                .filter(|l| !l.contains("generated_at") && !l.contains("Generated"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    out.push(
        ok(improbe(
            dir,
            db,
            &[
                "claim", "--target", "tim", "--month", "1", "--format", "json",
            ],
        ))
        .lines()
        .filter(|l| !l.contains("generated_at"))
        .collect::<Vec<_>>()
        .join("\n"),
    );
    out
}

fn compact(db: &TestDb, dir: &Path) -> Value {
    serde_json::from_str(&ok(improbe(dir, db, &["compact", "--format", "json"]))).unwrap()
}

fn report(db: &TestDb, dir: &Path) -> Value {
    serde_json::from_str(&ok(improbe(
        dir,
        db,
        &[
            "report", "--target", "tim", "--month", "1", "--format", "json",
        ],
    )))
    .unwrap()
}

async fn raw_successes(db: &TestDb) -> i64 {
    let store = db.store().await;
    let mut n = 0;
    store
        .visit_attempts("tim", crate::common::all_time(), &mut |a| {
            if improbe::attempt::rollup::is_foldable(&a) {
                n += 1;
            }
        })
        .await
        .unwrap();
    n
}

async fn figures_and_evidence_are_identical_across_compact(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    prepare(&db, dir.path(), CONFIG, &attempts());
    let before = figures(&db, dir.path());
    let evidence = report(&db, dir.path());
    assert!(raw_successes(&db).await > 30_000);

    let done = compact(&db, dir.path());
    assert!(done["folded_attempts"].as_u64().unwrap() > 30_000, "{done}");
    assert_eq!(raw_successes(&db).await, 0, "every success was folded");
    let after = figures(&db, dir.path());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "{}: a figure changed across compact", db.backend);
    }

    // The failures are still quoted word for word, with their attempts.
    let incident = &report(&db, dir.path())["incidents"][0];
    assert_eq!(incident, &evidence["incidents"][0]);
    let samples = incident["errors"][0]["samples"].as_array().unwrap();
    assert!(
        samples[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("internal error"),
        "{samples:?}"
    );
    // A group send every 15 s at :30 of each of 48 hours.
    assert_eq!(evidence["undelivered_total"], 192, "{}", db.backend);

    // A second round has nothing left to fold and changes nothing.
    let again = compact(&db, dir.path());
    assert_eq!(again["folded_attempts"], 0);
    assert_eq!(figures(&db, dir.path()), before);
}

/// An hour probed on 2026-03-03 and another seven weeks later (a prober
/// that was away): one round folds both, and the weeks between cost it
/// nothing to walk (the round steps from one success to the next).
async fn successes_weeks_apart_are_all_folded_in_one_round(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let mut history = String::new();
    for first in [at("2026-03-03T10:00:00Z"), at("2026-04-21T10:00:00Z")] {
        for second in (0..3_600).step_by(20) {
            let t = first + Duration::seconds(second);
            history.push_str(&line("p1", "login", t, "ok", r#","latency_ms":40"#));
        }
    }
    prepare(&db, dir.path(), CONFIG, &history);
    assert_eq!(raw_successes(&db).await, 360);
    let before = figures(&db, dir.path());
    let done = compact(&db, dir.path());
    assert_eq!(done["folded_attempts"], 360, "{done}");
    assert_eq!(raw_successes(&db).await, 0);
    assert_eq!(figures(&db, dir.path()), before);
    let again = compact(&db, dir.path());
    assert_eq!(again["folded_attempts"], 0, "{again}");
}

async fn late_imports_and_exclusions_re_decide_folded_minutes(db: TestDb) {
    // The same history and the same late changes on a database that never
    // folded: both must end with the same figures.
    let control = crate::common::another_like(&db).await;
    let (dir, control_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let history = attempts();
    prepare(&db, dir.path(), CONFIG, &history);
    prepare(&control, control_dir.path(), CONFIG, &history);
    compact(&db, dir.path());

    // The whole file again: every attempt is recognised, none counted twice.
    let again = ok(improbe(
        dir.path(),
        &db,
        &[
            "import",
            dir.path().join("attempts.jsonl").to_str().unwrap(),
        ],
    ));
    assert!(again.contains(" 0 new"), "{again}");

    // A third prober's late attempts: one success in the failure minute
    // 10:21 makes it available; its other successes land in folded minutes.
    let mut late = String::new();
    for second in (0..300).step_by(20) {
        let t = at("2026-03-03T10:15:00Z") + Duration::seconds(second);
        late.push_str(&line("p3", "login", t, "ok", r#","latency_ms":70"#));
    }
    let rescue = at("2026-03-03T10:21:05Z");
    late.push_str(&line("p3", "login", rescue, "ok", r#","latency_ms":70"#));
    let exclusion = [
        "exclusions",
        "add",
        "--target",
        "tim",
        "--start",
        "2026-03-04T10:20:00Z",
        "--end",
        "2026-03-04T10:22:00Z",
        "--reason",
        "announced upgrade",
        "--announced-at",
        "2026-03-01T00:00:00Z",
    ];
    for (store, d) in [(&db, dir.path()), (&control, control_dir.path())] {
        std::fs::write(d.join("late.jsonl"), &late).unwrap();
        ok(improbe(
            d,
            store,
            &["import", d.join("late.jsonl").to_str().unwrap()],
        ));
        ok(improbe(d, store, &exclusion));
    }
    let folded = ok(improbe(dir.path(), &db, &["sla", "--format", "json"]));
    let never = ok(improbe(
        control_dir.path(),
        &control,
        &["sla", "--format", "json"],
    ));
    assert_eq!(folded, never, "{}", db.backend);
    let month: Value = serde_json::from_str(&folded).unwrap();
    // 2 × 4 failure minutes, less 10:21 rescued by p3, less 2 excluded.
    assert_eq!(month[0]["failure_minutes"], 5, "{month}");
    assert_eq!(month[0]["excluded_minutes"], 2);
}

/// The daemon's write (on PostgreSQL its one statement) takes a success in
/// a prober's folded minute as stored, as an import does, and stores one
/// in a minute that prober never had: its rollups are found in the spans
/// folding wrote.
async fn the_daemons_success_in_a_folded_minute_is_taken_as_stored(db: TestDb) {
    use improbe::attempt::{Attempt, Kind, Outcome};
    let dir = tempfile::tempdir().unwrap();
    prepare(&db, dir.path(), CONFIG, &attempts());
    compact(&db, dir.path());
    let store = db.store().await;
    let success = |prober: &str, t: &str| Attempt {
        target: "tim".into(),
        prober: prober.into(),
        kind: Kind::Login,
        started_at: at(t),
        latency_ms: Some(75),
        outcome: Outcome::Ok,
        http_status: Some(200),
        error_code: None,
        error: None,
        reason: None,
        delivery: None,
    };
    // p1's successes of 10:19, the last minute of its span, are folded: one
    // more at :05 is taken as counted. In 10:20, the first minute of the
    // next span, p1 only failed: nothing of it is folded, and a success
    // there is stored, as is one of a prober never seen.
    for (prober, t, inserted) in [
        ("p1", "2026-03-03T10:19:05Z", 0),
        ("p1", "2026-03-03T10:20:05Z", 1),
        ("p9", "2026-03-03T10:19:05Z", 1),
    ] {
        let done = store
            .store_attempts(&[success(prober, t)], None)
            .await
            .unwrap();
        assert_eq!(done.inserted, inserted, "{prober} {t} on {}", db.backend);
    }
}

/// Retention forgets folded successes minute by minute, though they are
/// stored ten minutes to a row: a cutoff inside a span keeps that span's
/// later minutes as they were, one at a span's first minute keeps the span.
async fn retention_trims_the_folded_span_its_cutoff_falls_inside(db: TestDb) {
    use improbe::minute::{Minute, MinuteRange};
    let dir = tempfile::tempdir().unwrap();
    prepare(&db, dir.path(), CONFIG, &attempts());
    compact(&db, dir.path());
    let store = db.store().await;
    let both_days = MinuteRange::new(
        Minute::containing(&at("2026-03-03T00:00:00Z")),
        Minute::containing(&at("2026-03-05T00:00:00Z")),
    );
    let folded = async || {
        store
            .visit_evidence("tim", both_days, &mut |_| {})
            .await
            .unwrap()
    };
    let all = folded().await;
    let minute = |t: &str| Minute::containing(&at(t));
    for (cutoff, first_kept, span) in [
        // Inside the span of 10:10 to 10:19; 10:15 itself has begun.
        (
            "2026-03-03T10:15:30Z",
            "2026-03-03T10:16:00Z",
            "2026-03-03T10:10:00Z",
        ),
        (
            "2026-03-03T10:40:00Z",
            "2026-03-03T10:40:00Z",
            "2026-03-03T10:40:00Z",
        ),
    ] {
        let (first_kept, span) = (minute(first_kept), minute(span));
        let in_span = |m: Minute| m.0 >= span.0 && m.0 < span.0 + 10;
        assert!(
            all.iter()
                .any(|(k, _)| in_span(k.minute) && k.minute < first_kept)
                || first_kept == span,
            "nothing folded to forget before {first_kept:?} in its span"
        );
        assert!(
            all.iter()
                .any(|(k, _)| in_span(k.minute) && k.minute >= first_kept)
        );
        store.prune_attempts("tim", at(cutoff)).await.unwrap();
        let expected: Vec<_> = all
            .iter()
            .filter(|(k, _)| k.minute >= first_kept)
            .cloned()
            .collect();
        let kept = folded().await;
        let minutes = |rollups: &[(improbe::attempt::rollup::RollupKey, _)]| {
            let mut minutes: Vec<i64> = rollups.iter().map(|(k, _)| k.minute.0).collect();
            minutes.dedup();
            minutes
        };
        assert_eq!(
            minutes(&kept)[..2],
            minutes(&expected)[..2],
            "cutoff {cutoff} on {}",
            db.backend
        );
        assert!(
            kept == expected,
            "cutoff {cutoff} on {}: a kept rollup changed",
            db.backend
        );
    }
}

/// On PostgreSQL the storage round rebuilds the keys of `verdicts` and
/// `minute_buckets` beside the writes once their tables have grown by half
/// since the last rebuild: the minutes of several targets, appended in the
/// middle of those indexes, leave their pages half full.
#[tokio::test]
async fn the_minute_indexes_are_rebuilt_once_their_tables_grow_by_half() {
    use improbe::attempt::{Kind, Outcome};
    let db = TestDb::postgres().await;
    let store = db.store().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let keys = async || -> Vec<(String, i64, i64)> {
        sqlx::query_as(
            "SELECT relname::text, CAST(oid AS BIGINT), pg_relation_size(oid) FROM pg_class \
             WHERE relname IN ('verdicts_pkey', 'minute_buckets_pkey') ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    // Three targets' minutes in time order, as the daemon writes them.
    let start = at("2026-03-03T00:00:00Z");
    let write = async |from: i64, minutes: i64| {
        let mut batch = Vec::new();
        for m in from..from + minutes {
            let t = (start + Duration::minutes(m)).to_rfc3339();
            for target in ["a", "b", "c"] {
                batch.push(crate::common::attempt(
                    target,
                    "p1",
                    Kind::Login,
                    &t,
                    Outcome::Ok,
                ));
            }
        }
        crate::common::ingest(store.as_ref(), &batch).await;
    };
    write(0, 1_000).await;
    let appended = keys().await;
    store.reclaim_space().await.unwrap();
    let rebuilt = keys().await;
    for ((name, before, bytes_before), (_, after, bytes_after)) in appended.iter().zip(&rebuilt) {
        assert_ne!(before, after, "{name} not rebuilt");
        assert!(
            bytes_after * 10 < bytes_before * 8,
            "{name}: {bytes_before} -> {bytes_after} bytes"
        );
    }
    store.reclaim_space().await.unwrap();
    assert_eq!(keys().await, rebuilt, "rebuilt again before its table grew");
    write(1_000, 400).await;
    store.reclaim_space().await.unwrap();
    assert_eq!(
        keys().await.iter().map(|k| k.1).collect::<Vec<_>>(),
        rebuilt.iter().map(|k| k.1).collect::<Vec<_>>(),
        "rebuilt again when its table grew by 40 %"
    );
    write(1_400, 200).await;
    // What a rebuild interrupted by a failure leaves: an invalid index,
    // which every write would still update.
    let invalid = "SELECT CAST(COUNT(*) AS BIGINT) FROM pg_index WHERE NOT indisvalid";
    let unique = "CREATE UNIQUE INDEX CONCURRENTLY verdicts_pkey_ccnew ON verdicts (verdict)";
    assert!(sqlx::raw_sql(unique).execute(&pool).await.is_err());
    let left: i64 = sqlx::query_scalar(invalid).fetch_one(&pool).await.unwrap();
    assert_eq!(left, 1);
    store.reclaim_space().await.unwrap();
    let left: i64 = sqlx::query_scalar(invalid).fetch_one(&pool).await.unwrap();
    assert_eq!(left, 0, "an interrupted rebuild's index stayed");
    for ((name, before, _), (_, after, _)) in rebuilt.iter().zip(&keys().await) {
        assert_ne!(
            before, after,
            "{name} not rebuilt when its table grew by half"
        );
    }
    let all = improbe::minute::MinuteRange::new(
        improbe::minute::Minute::containing(&start),
        improbe::minute::Minute::containing(&(start + Duration::minutes(1_600))),
    );
    for target in ["a", "b", "c"] {
        let verdicts = store.minute_verdicts(target, all).await.unwrap();
        assert_eq!(verdicts.len(), 1_600, "{target}");
        assert!(verdicts.iter().all(|v| v.counts.ok == 1));
    }
}

/// On PostgreSQL the storage round packs each settled hour's verdicts and
/// buckets into one row per target (and prober): the views and every
/// figure read the same, the rows' pages are given back, and a write to a
/// packed hour (the daemon's, which waits for no lock) is counted and
/// re-decided, its hour packed again by the next round.
#[tokio::test]
async fn settled_hours_are_packed_and_read_the_same() {
    use improbe::attempt::{Kind, Outcome};
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    prepare(&db, dir.path(), CONFIG, &attempts());
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let count = async |table: &str| -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    // The tables' rows, without their keys (the round rebuilds a key
    // only from 128 KB) and the few empty pages of a table's maps.
    let bytes_of = async |table: &str| -> i64 {
        sqlx::query_scalar("SELECT pg_relation_size(CAST($1 AS regclass))")
            .bind(table)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let bytes = async || -> i64 {
        let mut sum = 0;
        for table in [
            "verdicts",
            "minute_buckets",
            "packed_verdicts",
            "packed_buckets",
        ] {
            sum += bytes_of(table).await;
        }
        sum
    };
    let view = async |sql: &str| -> Vec<String> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(v AS TEXT) FROM ({sql}) AS v"
        )))
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let verdict_view = "SELECT * FROM minute_verdicts ORDER BY minute";
    let buckets_as_rows = "SELECT t.name AS target, p.name AS prober, to_timestamp(b.minute * 60) AS minute, \
         CAST(b.ok_attempts AS BIGINT) AS ok_attempts, b.minute * 60 AS minute_unix FROM minute_buckets AS b \
         JOIN target_names AS t ON t.id = b.target_id JOIN prober_names AS p ON p.id = b.prober_id \
         WHERE b.ok_attempts > 0 ORDER BY 2, 3";
    let before = (
        figures(&db, dir.path()),
        view(verdict_view).await,
        view(buckets_as_rows).await,
    );
    assert_eq!(before.1.len(), 2 * 1_440);
    let rows_bytes = bytes().await;

    let done = compact(&db, dir.path());
    assert_eq!(done["packed_hours"], 48, "{done}");
    assert_eq!(
        (count("verdicts").await, count("minute_buckets").await),
        (0, 0)
    );
    assert_eq!(count("packed_verdicts").await, 48);
    assert_eq!(
        count("packed_buckets").await,
        96,
        "an hour of each of two probers"
    );
    let packed_bytes = bytes().await;
    assert!(
        packed_bytes * 4 < rows_bytes,
        "{rows_bytes} -> {packed_bytes} bytes"
    );
    assert_eq!(
        bytes_of("verdicts").await + bytes_of("minute_buckets").await,
        0,
        "pages given back"
    );
    assert_eq!(figures(&db, dir.path()), before.0);
    assert_eq!(view(verdict_view).await, before.1);
    let rollups = "SELECT * FROM attempt_rollup_log ORDER BY prober, minute";
    assert_eq!(view(rollups).await, before.2, "the folded minutes' buckets");

    // A failure of p1 at 09:00:30, written by the daemon: counted beside
    // the packed bucket at once, re-decided by the settle loop.
    let store = db.store().await;
    let minute = improbe::minute::Minute::containing(&at("2026-03-03T09:00:00Z"));
    let late = crate::common::attempt(
        "tim",
        "p1",
        Kind::Login,
        "2026-03-03T09:00:30.123Z",
        Outcome::Fail,
    );
    assert_eq!(
        store.store_attempts(&[late], None).await.unwrap().inserted,
        1
    );
    assert_eq!(count("minute_buckets").await, 1);
    assert_eq!(view(rollups).await, before.2);
    let one = improbe::minute::MinuteRange::new(minute, improbe::minute::Minute(minute.0 + 1));
    let was = store.minute_verdicts("tim", one).await.unwrap()[0].counts;
    assert!(store.settle_pending().await.unwrap() >= 1);
    assert_eq!(count("verdicts").await, 60, "the hour back in rows");
    assert_eq!(count("packed_verdicts").await, 47);
    let now = store.minute_verdicts("tim", one).await.unwrap()[0].counts;
    assert_eq!((now.fail, now.ok), (was.fail + 1, was.ok));
    let later = view(verdict_view).await;
    assert_ne!(later, before.1);
    assert_eq!(view(rollups).await, before.2);

    let again = compact(&db, dir.path());
    assert_eq!(again["packed_hours"], 1, "{again}");
    assert_eq!(
        (count("verdicts").await, count("minute_buckets").await),
        (0, 0)
    );
    assert_eq!(view(verdict_view).await, later);
    assert_eq!(
        store.minute_verdicts("tim", one).await.unwrap()[0].counts,
        now
    );
}

async fn slow_counts_survive_folding_and_a_changed_rule_recounts_them(db: TestDb) {
    let contract = |slow_after: &str| {
        CONFIG.replace("monthly_fee", "contract = \"fast\"\nmonthly_fee")
            + &format!(
                "[contracts.fast]\nperiod = \"service_month\"\ninterval = \"1m\"\ndown_when = \"error_rate\"\n\
             error_rate_above = \"20\"\nslow_after = \"{slow_after}\"\ncommitment = \"99.9\"\n\
             credits = [{{ below = \"99.9\", percent = 10 }}]\nclaim_opens = \"period_end\"\nclaim_days = 30\n"
            )
    };
    let control = crate::common::another_like(&db).await;
    let (dir, control_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let history = attempts();
    prepare(&db, dir.path(), &contract("1500ms"), &history);
    prepare(&control, control_dir.path(), &contract("1500ms"), &history);
    let sla = |db: &TestDb, dir: &Path| ok(improbe(dir, db, &["sla", "--format", "json"]));
    let before = sla(&db, dir.path());
    compact(&db, dir.path());
    assert_eq!(
        sla(&db, dir.path()),
        before,
        "slow counts changed by folding"
    );
    let month: Value = serde_json::from_str(&before).unwrap();
    assert!(month[0]["down_units"].as_i64().unwrap() > 8, "{month}");

    // Another rule: recounted from the histograms of the folded
    // minutes, exactly, since 1,791 ms is the last value of a bucket
    // ([1,664, 1,792)), as from the raw attempts of the control.
    for (store, d) in [(&db, dir.path()), (&control, control_dir.path())] {
        std::fs::write(d.join("improbe.toml"), contract("1791ms")).unwrap();
        ok(improbe(d, store, &["migrate"]));
    }
    let changed = sla(&db, dir.path());
    assert_eq!(changed, sla(&control, control_dir.path()), "{}", db.backend);
    assert_ne!(changed, before);
}

async fn storage_reports_each_table_and_the_growth(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    // A day ending now: its rows count as the last week's growth.
    let mut recent = String::new();
    let start = Utc::now() - Duration::hours(2);
    for second in (0..3_600).step_by(5) {
        let t = start + Duration::seconds(second);
        write!(
            recent,
            "{}",
            line("p1", "login", t, "ok", r#","latency_ms":80"#)
        )
        .unwrap();
    }
    prepare(&db, dir.path(), CONFIG, &recent);
    let usage: Value = serde_json::from_str(&ok(improbe(
        dir.path(),
        &db,
        &["storage", "--format", "json"],
    )))
    .unwrap();
    let attempts = usage["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "attempts")
        .unwrap();
    assert_eq!(attempts["rows"], 720, "{usage}");
    assert!(attempts["bytes"].as_i64().unwrap() > 720 * 20, "{usage}");
    assert!(
        usage["bytes_per_target_per_day"].as_i64().unwrap() > 0,
        "{usage}"
    );
    assert!(usage["database_bytes"].as_i64().unwrap() > 0);
    if db.backend == "sqlite" {
        assert!(usage["volume_free_bytes"].as_u64().unwrap() > 0);
        assert!(usage["days_until_full"].as_i64().unwrap() > 0, "{usage}");
    } else {
        assert!(usage["volume_free_bytes"].is_null());
    }
    let table = ok(improbe(dir.path(), &db, &["storage"]));
    assert!(table.contains("bytes per target per day"), "{table}");
}

/// Rows written for every attempt name their target and prober by id: an
/// hour of attempts under the longest names a config allows costs about
/// what it costs under short ones.
async fn a_long_name_is_stored_once_not_with_every_row(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let target = "t".repeat(64);
    let prober = "p".repeat(64);
    let mut hour = String::new();
    let start = Utc::now() - Duration::hours(2);
    for second in (0..3_600).step_by(5) {
        let t = start + Duration::seconds(second);
        let row = line(&prober, "login", t, "ok", r#","latency_ms":80"#);
        hour.push_str(&row.replace(r#""target":"tim""#, &format!(r#""target":"{target}""#)));
    }
    prepare(
        &db,
        dir.path(),
        &CONFIG.replace(r#"name = "tim""#, &format!(r#"name = "{target}""#)),
        &hour,
    );
    let usage: Value = serde_json::from_str(&ok(improbe(
        dir.path(),
        &db,
        &["storage", "--format", "json"],
    )))
    .unwrap();
    let bytes = |table: &str| {
        usage["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == table)
            .unwrap_or_else(|| panic!("{table}: {usage}"))["bytes"]
            .as_i64()
            .unwrap()
    };
    // With the names in every row and key: 720 attempts x 130 bytes more,
    // over 119 KB on SQLite and 327 KB on PostgreSQL (24 and 139 KB by id).
    let bound = if db.backend == "sqlite" {
        720 * 80
    } else {
        720 * 280
    };
    assert!(bytes("attempts") < bound, "{usage}");
    let log: Value = serde_json::from_str(&ok(improbe(
        dir.path(),
        &db,
        &["report", "--target", &target, "--format", "json"],
    )))
    .unwrap();
    assert!(
        log.to_string().contains(&target),
        "the report names the target"
    );
}

/// A fleet that cannot fit its volume for its retention is warned about by
/// `check-config`, with the figures; a small one is not.
#[test]
fn check_config_warns_when_the_volume_cannot_hold_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("improbe.db");
    let mut many = format!(
        "[prober]\nid = \"sizing\"\n[database]\nurl = \"sqlite://{}\"\nattempts_retention_days = 36525\n",
        db.display()
    );
    for t in 0..200 {
        write!(
            many,
            "[[targets]]\nname = \"t{t}\"\nprovider = \"simulator\"\ninterval = \"1s\"\ntimeout = \"1s\"\n\
             [targets.sla]\nservice_start = \"2026-03-01\"\ntimezone = \"UTC\"\nmonthly_fee = \"1\"\n"
        )
        .unwrap();
    }
    let check = |config: &str| {
        std::fs::write(dir.path().join("improbe.toml"), config).unwrap();
        let output = crate::common::improbe_command()
            .arg("--config")
            .arg(dir.path().join("improbe.toml"))
            .arg("check-config")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stderr).unwrap()
    };
    let warned = check(&many);
    assert!(
        warned.contains("200 targets at their cadence need about")
            && warned.contains("MB free")
            && warned.contains("attempts_retention_days = 36525"),
        "{warned}"
    );
    let one = many
        .split("[[targets]]")
        .take(2)
        .collect::<Vec<_>>()
        .join("[[targets]]");
    let one = one.replace(
        "attempts_retention_days = 36525",
        "attempts_retention_days = 400",
    );
    let quiet = check(&one);
    assert!(!quiet.contains("need about"), "{quiet}");
}

/// A database written before attempts stored kind, outcome and delivery,
/// and verdicts their verdict, as codes (migrations 0009 and 0010), and
/// before rows named their target and prober by id (0011), reads back the
/// same attempts, buckets and verdicts, and its views show the same words.
async fn an_earlier_database_reads_the_same_after_the_word_codes(db: TestDb) {
    use improbe::attempt::{Attempt, Delivery, InconclusiveReason, Kind, Outcome};
    let start = at("2026-03-03T10:00:00Z");
    let ms = start.timestamp_millis();
    let rows = format!(
        "INSERT INTO attempts (target, prober, kind, started_at_ms, latency_ms, outcome, http_status, \
         error_code, error, reason, delivery, delivered_ms) VALUES \
         ('tim', 'p1', 'login', {ms}, 80, 'ok', 200, NULL, NULL, NULL, NULL, NULL), \
         ('tim', 'p1', 'send_direct', {}, 90, 'ok', 200, NULL, NULL, NULL, 'confirmed', 150), \
         ('tim', 'p1', 'send_group', {}, 700, 'fail', 502, '70500', 'internal error', NULL, NULL, NULL), \
         ('tim', 'p1', 'send_group', {}, 40, 'inconclusive', 200, '70001', 'sig expired', 'credentials', NULL, NULL), \
         ('tim', 'p1', 'send_direct', {}, 95, 'ok', 200, NULL, NULL, NULL, 'missing', NULL)",
        ms + 1_000,
        ms + 2_000,
        ms + 3_000,
        ms + 4_000
    );
    let minute = ms.div_euclid(60_000);
    let verdict_row = format!(
        "INSERT INTO verdicts (target, minute, verdict, ok_attempts, fail_attempts, \
         inconclusive_attempts, probers, slow_ok_attempts) VALUES ('tim', {minute}, 'failure', 0, 3, 1, 1, 0)"
    );
    let bucket_row = format!(
        "INSERT INTO minute_buckets (target, minute, prober, ok_attempts, fail_attempts, inconclusive_attempts) \
         VALUES ('tim', {minute}, 'p1', 2, 1, 1)"
    );
    let bucket = "SELECT t.name, b.minute, p.name, CAST(b.ok_attempts AS BIGINT), \
                  CAST(b.fail_attempts AS BIGINT), CAST(b.inconclusive_attempts AS BIGINT) \
                  FROM minute_buckets AS b JOIN target_names AS t ON t.id = b.target_id \
                  JOIN prober_names AS p ON p.id = b.prober_id";
    let day = ms.div_euclid(86_400_000);
    let log = "SELECT kind, outcome, delivery FROM attempt_log ORDER BY started_at";
    let verdict_word = "SELECT verdict FROM minute_verdicts";
    // On either backend's pool: migrate to 0008, write `statements` there,
    // migrate the rest of the way, read the views.
    macro_rules! written_before_the_codes {
        ($pool:expr, $migrator:expr, $statements:expr) => {{
            let pool = $pool;
            $migrator.run_to(8, &pool).await.unwrap();
            for statement in $statements {
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            db.store().await;
            let words: Vec<(String, String, Option<String>)> =
                sqlx::query_as(log).fetch_all(&pool).await.unwrap();
            let verdict: String = sqlx::query_scalar(verdict_word)
                .fetch_one(&pool)
                .await
                .unwrap();
            let buckets: Vec<(String, i64, String, i64, i64, i64)> =
                sqlx::query_as(bucket).fetch_all(&pool).await.unwrap();
            (words, verdict, buckets)
        }};
    }
    let (words, verdict, buckets) = if db.backend == "sqlite" {
        let options = std::str::FromStr::from_str(&db.url)
            .map(|o: sqlx::sqlite::SqliteConnectOptions| o.create_if_missing(true))
            .unwrap();
        written_before_the_codes!(
            sqlx::SqlitePool::connect_with(options).await.unwrap(),
            sqlx::migrate!("migrations/sqlite"),
            [rows, verdict_row, bucket_row]
        )
    } else {
        let partition = format!("SELECT improbe_attempt_days(ARRAY[{day}::bigint])");
        written_before_the_codes!(
            sqlx::PgPool::connect(&db.url).await.unwrap(),
            sqlx::migrate!("migrations/postgres"),
            [partition, rows, verdict_row, bucket_row]
        )
    };
    assert_eq!(verdict, "failure");
    assert_eq!(
        buckets,
        [("tim".to_owned(), minute, "p1".to_owned(), 2, 1, 1)]
    );
    let word = |s: &str| s.to_owned();
    assert_eq!(
        words,
        [
            (word("login"), word("ok"), None),
            (word("send_direct"), word("ok"), Some(word("confirmed"))),
            (word("send_group"), word("fail"), None),
            (word("send_group"), word("inconclusive"), None),
            (word("send_direct"), word("ok"), Some(word("missing"))),
        ]
    );

    let mut read = Vec::new();
    db.store()
        .await
        .visit_attempts(
            "tim",
            improbe::minute::MinuteRange::new(
                improbe::minute::Minute::containing(&start),
                improbe::minute::Minute::containing(&start).next(),
            ),
            &mut |a| read.push(a),
        )
        .await
        .unwrap();
    let attempt = |second: i64, kind, latency, outcome, http_status| Attempt {
        target: "tim".into(),
        prober: "p1".into(),
        kind,
        started_at: start + Duration::seconds(second),
        latency_ms: Some(latency),
        outcome,
        http_status: Some(http_status),
        error_code: None,
        error: None,
        reason: None,
        delivery: None,
    };
    let expected = vec![
        attempt(0, Kind::Login, 80, Outcome::Ok, 200),
        Attempt {
            delivery: Some(Delivery::Confirmed {
                after_ms: Some(150),
            }),
            ..attempt(1, Kind::SendDirect, 90, Outcome::Ok, 200)
        },
        Attempt {
            error_code: Some("70500".into()),
            error: Some("internal error".into()),
            ..attempt(2, Kind::SendGroup, 700, Outcome::Fail, 502)
        },
        Attempt {
            error_code: Some("70001".into()),
            error: Some("sig expired".into()),
            reason: Some(InconclusiveReason::Credentials),
            ..attempt(3, Kind::SendGroup, 40, Outcome::Inconclusive, 200)
        },
        Attempt {
            delivery: Some(Delivery::Missing),
            ..attempt(4, Kind::SendDirect, 95, Outcome::Ok, 200)
        },
    ];
    assert_eq!(read, expected);

    // The minute's verdict, stored as a word before migration 0010, reads
    // back as the same verdict with its counts.
    let one_minute = improbe::minute::MinuteRange::new(
        improbe::minute::Minute::containing(&start),
        improbe::minute::Minute::containing(&start).next(),
    );
    let verdicts = db
        .store()
        .await
        .minute_verdicts("tim", one_minute)
        .await
        .unwrap();
    assert_eq!(verdicts.len(), 1);
    assert_eq!(verdicts[0].verdict, improbe::verdict::Verdict::Failure);
    assert_eq!(
        (verdicts[0].counts.fail, verdicts[0].counts.inconclusive),
        (3, 1)
    );
}

/// Successes folded into their minute buckets (migrations 0008 to 0011)
/// move into one row per ten minutes and prober (0012) and read back the
/// same: two minutes of one span, one of the next, and a bucket never
/// folded.
async fn folded_minutes_of_an_earlier_database_read_the_same_from_their_spans(db: TestDb) {
    use improbe::attempt::Kind;
    use improbe::attempt::rollup::{FoldedMinute, Rollup, encode_folded};
    use improbe::minute::{Minute, MinuteRange};
    let first = Minute::containing(&at("2026-03-03T10:58:00Z"));
    let folded_minute = |ok: u64, latency: i64| -> FoldedMinute {
        let mut rollup = Rollup::default();
        for i in 0..ok {
            rollup.add_success(Some(latency + i as i64), None);
        }
        [(Kind::Login, rollup)].into_iter().collect()
    };
    // (minute, ok, its folded form if folded)
    let minutes = [
        (first, 3, Some(folded_minute(3, 80))),
        (Minute(first.0 + 1), 2, Some(folded_minute(2, 900))),
        (Minute(first.0 + 2), 4, Some(folded_minute(4, 15))),
        (Minute(first.0 + 3), 1, None),
    ];
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut statements = vec![
        "INSERT INTO target_names (id, name) VALUES (1, 'tim')".to_owned(),
        "INSERT INTO prober_names (id, name) VALUES (1, 'p1')".to_owned(),
    ];
    for (minute, ok, folded) in &minutes {
        let blob = match (folded, db.backend) {
            (None, _) => "NULL".to_owned(),
            (Some(f), "sqlite") => format!("X'{}'", hex(&encode_folded(f))),
            (Some(f), _) => format!("decode('{}', 'hex')", hex(&encode_folded(f))),
        };
        statements.push(format!(
            "INSERT INTO minute_buckets (target_id, minute, prober_id, ok_attempts, fail_attempts, \
             inconclusive_attempts, folded) VALUES (1, {}, 1, {ok}, 0, 0, {blob})",
            minute.0
        ));
    }
    let view = "SELECT minute_unix, ok_attempts FROM attempt_rollup_log ORDER BY minute_unix";
    macro_rules! folded_before_the_hours {
        ($pool:expr, $migrator:expr) => {{
            let pool = $pool;
            $migrator.run_to(11, &pool).await.unwrap();
            for statement in &statements {
                sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            db.store().await;
            let rows: Vec<(i64, i64)> = sqlx::query_as(view).fetch_all(&pool).await.unwrap();
            rows
        }};
    }
    let listed = if db.backend == "sqlite" {
        let options = std::str::FromStr::from_str(&db.url)
            .map(|o: sqlx::sqlite::SqliteConnectOptions| o.create_if_missing(true))
            .unwrap();
        folded_before_the_hours!(
            sqlx::SqlitePool::connect_with(options).await.unwrap(),
            sqlx::migrate!("migrations/sqlite")
        )
    } else {
        folded_before_the_hours!(
            sqlx::PgPool::connect(&db.url).await.unwrap(),
            sqlx::migrate!("migrations/postgres")
        )
    };
    let expected_listed: Vec<(i64, i64)> = minutes
        .iter()
        .filter(|(_, _, folded)| folded.is_some())
        .map(|(minute, ok, _)| (minute.0 * 60, *ok))
        .collect();
    assert_eq!(listed, expected_listed);

    let range = MinuteRange::new(Minute(first.0 - 60), Minute(first.0 + 120));
    let rollups = db
        .store()
        .await
        .visit_evidence("tim", range, &mut |_| {})
        .await
        .unwrap();
    let read: Vec<(Minute, String, Kind, Rollup)> = rollups
        .into_iter()
        .map(|(key, rollup)| (key.minute, key.prober, key.kind, rollup))
        .collect();
    let expected: Vec<(Minute, String, Kind, Rollup)> = minutes
        .iter()
        .filter_map(|(minute, _, folded)| {
            let rollup = folded.as_ref()?.get(&Kind::Login)?.clone();
            Some((*minute, "p1".to_owned(), Kind::Login, rollup))
        })
        .collect();
    assert_eq!(read, expected);
}
