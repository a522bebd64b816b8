//! Three `improbe run` processes with different prober ids writing the same
//! targets into one PostgreSQL database: every minute's verdict is the one
//! docs/sla.md prescribes over all probers' attempts, and no attempt is lost or
//! counted twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use crate::common::{ConfigBuilder, TestDb, answered, spawn_run, terminate, wait};
use improbe::attempt::Kind;
use improbe::simulator::{Behaviour, Simulator};

/// Starts prober `id` with `config`, its data kept in `dir`.
fn spawn(dir: &Path, id: &str, config: ConfigBuilder) -> Child {
    let path = dir.join(format!("{id}.toml"));
    std::fs::write(&path, config.data_dir(dir).build()).unwrap();
    spawn_run(&path)
}

// A second thread: the daemons are child processes probing servers that
// run on this test's runtime, while the test blocks waiting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_probers_on_one_postgres_aggregate_per_the_sla() {
    three_probers_aggregate_per_the_sla(|url| url.to_owned(), &[]).await;
}

/// The probers reach the database at `through(url)` (a pooler in front of
/// it), with `database` lines in their configs; the test reads it directly.
pub async fn three_probers_aggregate_per_the_sla(
    through: impl Fn(&str) -> String,
    database: &[&str],
) {
    let db = TestDb::postgres().await;
    db.store().await;
    let url = through(&db.url);
    let config = |id: &str| {
        database
            .iter()
            .fold(ConfigBuilder::new(id, &url), |config, line| {
                config.database(line)
            })
    };
    let healthy = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let failing = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let behind_broken_network = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for sim in [&failing, &behind_broken_network] {
        for kind in Kind::ALL {
            sim.set_behaviour(kind, Behaviour::http(503));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    // `a` sees t1 healthy; `b` sees t1 and t2 failing; `c` sees them failing
    // too, but its own network fails the control check, so its failures are
    // inconclusive and must never decide a minute.
    let probers = vec![
        spawn(
            dir.path(),
            "a",
            config("a").simulator_target("t1", &healthy.endpoint(), "1s", "1s"),
        ),
        spawn(
            dir.path(),
            "b",
            config("b")
                .simulator_target("t1", &failing.endpoint(), "1s", "1s")
                .simulator_target("t2", &failing.endpoint(), "1s", "1s"),
        ),
        spawn(
            dir.path(),
            "c",
            config("c")
                .prober("control_url = \"http://127.0.0.1:9/\"")
                .simulator_target("t1", &behind_broken_network.endpoint(), "1s", "1s")
                .simulator_target("t2", &behind_broken_network.endpoint(), "1s", "1s"),
        ),
    ];

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    wait::until_true("every prober to write", Duration::from_secs(30), || async {
        let per_prober: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT prober FROM attempt_log ORDER BY prober")
                .fetch_all(&pool)
                .await
                .unwrap();
        per_prober.len() == 3 && answered(&healthy) >= 15
    })
    .await;
    for prober in probers {
        let _ = terminate(prober);
    }

    // Nothing lost, nothing counted twice.
    let attempts: Vec<(String, String, i64, String, Option<String>)> =
        sqlx::query_as(
            "SELECT t.name, p.name, a.started_at_ms, a.outcome, a.reason FROM attempts AS a \
             JOIN target_names AS t ON t.id = a.target_id JOIN prober_names AS p ON p.id = a.prober_id",
        )
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .map(
                |(target, prober, started_at_ms, outcome, reason): (_, _, _, i16, _)| {
                    let outcome = improbe::attempt::Outcome::from_code(outcome).unwrap();
                    (
                        target,
                        prober,
                        started_at_ms,
                        outcome.as_str().to_owned(),
                        reason,
                    )
                },
            )
            .collect();
    let made = answered(&healthy) + answered(&failing) + answered(&behind_broken_network);
    assert_eq!(attempts.len() as u64, made);
    for (_, prober, _, outcome, reason) in &attempts {
        if prober == "c" {
            assert_eq!(
                (outcome.as_str(), reason.as_deref()),
                ("inconclusive", Some("local_network"))
            );
        }
    }

    // The verdicts docs/sla.md prescribes, computed here from the raw attempts.
    #[derive(Default, Debug, PartialEq)]
    struct Expected {
        ok: i64,
        fail: i64,
        inconclusive: i64,
        probers: BTreeSet<String>,
    }
    let mut expected: BTreeMap<(String, i64), Expected> = BTreeMap::new();
    for (target, prober, started_at_ms, outcome, _) in attempts {
        let minute = started_at_ms.div_euclid(60_000) * 60;
        let e = expected.entry((target, minute)).or_default();
        match outcome.as_str() {
            "ok" => e.ok += 1,
            "fail" => e.fail += 1,
            _ => e.inconclusive += 1,
        }
        e.probers.insert(prober);
    }
    let stored: Vec<(String, i64, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT target, minute_unix, verdict, ok_attempts, fail_attempts, inconclusive_attempts, probers \
         FROM minute_verdicts ORDER BY target, minute_unix",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), expected.len(), "{stored:?}");
    let mut seen = BTreeSet::new();
    for (target, minute, verdict, ok, fail, inconclusive, probers) in stored {
        let e = &expected[&(target.clone(), minute)];
        let sla_verdict = if e.ok > 0 {
            "available"
        } else if e.fail > 0 {
            "failure"
        } else {
            "no_data"
        };
        assert_eq!(verdict, sla_verdict, "{target} at {minute}: {e:?}");
        assert_eq!(
            (ok, fail, inconclusive, probers),
            (e.ok, e.fail, e.inconclusive, e.probers.len() as i64),
            "{target} at {minute}"
        );
        seen.insert((target, verdict, e.probers.len()));
    }
    // t1 was available while `b` failed it (docs/sla.md: one ok is enough), and
    // t2, which only `b` and `c` probe, was a failure despite `c`.
    assert!(
        seen.contains(&("t1".into(), "available".into(), 3)),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("t2".into(), "failure".into(), 2)),
        "{seen:?}"
    );
}
