//! PostgreSQL across a network as operators run it (docs/many-regions.md):
//! TLS with verified certificates and client certificates against a private
//! server with its own CA, and PgBouncer in session and transaction mode in
//! front of one. Servers of their own, run as the `postgres` user: root.

use std::path::Path;
use std::time::Duration;

use crate::common::postgres::{PgBouncer, PrivatePostgres, ServerSettings};
use crate::common::tls::TestCa;
use crate::common::{
    ConfigBuilder, TestDb, answered, attempt, improbe_command, ingest, succeeded, wait,
};
use improbe::attempt::{Kind, Outcome};
use improbe::config::Pooler;
use improbe::simulator::Simulator;
use improbe::store;
use sqlx::Connection;

/// A server that takes TLS connections only, with `ca`'s server certificate;
/// with `client_certificates`, only those that show a certificate `ca`
/// signed for their user name.
fn tls_only_server(ca: &TestCa, client_certificates: bool) -> PrivatePostgres {
    let method = if client_certificates {
        "trust clientcert=verify-full"
    } else {
        "trust"
    };
    PrivatePostgres::start_with(ServerSettings {
        conf: vec![
            "ssl = on".into(),
            "ssl_cert_file = 'server.pem'".into(),
            "ssl_key_file = 'server.key'".into(),
            "ssl_ca_file = 'ca.pem'".into(),
        ],
        hba: Some(format!(
            "local all all trust\nhostssl all all 127.0.0.1/32 {method}\n"
        )),
        files: vec![
            (ca.server_cert(), "server.pem"),
            (ca.server_key(), "server.key"),
            (ca.ca_pem(), "ca.pem"),
        ],
    })
}

fn with_tls(pg: &PrivatePostgres, parameters: &str) -> String {
    format!("{}?{parameters}", pg.url())
}

/// Opens the store at `url` (migrating it) or says why not, as a user reads it.
async fn open(url: &str) -> Result<std::sync::Arc<dyn store::Store>, String> {
    match store::open(url).await {
        Ok(store) => {
            store.migrate().await.map_err(|e| format!("{e:#}"))?;
            Ok(store)
        }
        Err(e) => Err(format!("{e:#}")),
    }
}

/// Why the store at `url` cannot be opened; `why` says why it must not.
async fn refused(url: &str, why: &str) -> String {
    open(url).await.err().expect(why)
}

/// One attempt written and read back: the store works over this connection.
async fn writes_and_reads(store: &dyn store::Store) {
    let one = attempt(
        "t",
        "p",
        Kind::SendDirect,
        "2026-03-02T10:00:00Z",
        Outcome::Ok,
    );
    assert_eq!(ingest(store, &[one]).await.inserted, 1);
    assert_eq!(store.attempt_count().await.unwrap(), 1);
}

#[tokio::test]
async fn verify_full_with_the_right_ca_connects_writes_and_reads_encrypted() {
    let ca = TestCa::generate();
    let pg = tls_only_server(&ca, false);
    let url = with_tls(
        &pg,
        &format!("sslmode=verify-full&sslrootcert={}", ca.ca_pem().display()),
    );
    let store = open(&url).await.unwrap();
    writes_and_reads(store.as_ref()).await;
    // The session really is TLS: the server says so.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(encrypted);
    // `require` with a CA file verifies it, as in libpq: a CA that did not
    // sign the server's certificate is refused there too.
    let stranger = TestCa::generate();
    let other_ca = refused(
        &with_tls(
            &pg,
            &format!(
                "sslmode=require&sslrootcert={}",
                stranger.ca_pem().display()
            ),
        ),
        "require with another CA's file must not connect",
    )
    .await;
    assert!(
        other_ca.contains("not signed by a CA improbe trusts"),
        "{other_ca}"
    );
}

// A second thread: the daemons are child processes probing servers that
// run on this test's runtime, while the test blocks waiting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_host_name_is_refused_and_named_never_as_an_outage() {
    let ca = TestCa::generate_for("DNS:db.example.org");
    let pg = tls_only_server(&ca, false);
    let stranger = TestCa::generate();
    let wrong_ca = refused(
        &with_tls(
            &pg,
            &format!(
                "sslmode=verify-full&sslrootcert={}",
                stranger.ca_pem().display()
            ),
        ),
        "another CA must not verify",
    )
    .await;
    assert!(
        wrong_ca.contains("the database's certificate is not signed by a CA improbe trusts"),
        "{wrong_ca}"
    );
    assert!(!wrong_ca.contains("does not answer"), "{wrong_ca}");
    let right_ca = format!("sslrootcert={}", ca.ca_pem().display());
    let wrong_name = refused(
        &with_tls(&pg, &format!("sslmode=verify-full&{right_ca}")),
        "a certificate for db.example.org must not do for 127.0.0.1",
    )
    .await;
    assert!(
        wrong_name.contains("not valid for the host name in the URL"),
        "{wrong_name}"
    );
    // verify-ca checks the signature and not the name.
    let store = open(&with_tls(&pg, &format!("sslmode=verify-ca&{right_ca}")))
        .await
        .unwrap();
    writes_and_reads(store.as_ref()).await;

    // `check-config` names it too.
    let dir = tempfile::tempdir().unwrap();
    let bad_url = with_tls(
        &pg,
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            stranger.ca_pem().display()
        ),
    );
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let config = dir.path().join("improbe.toml");
    std::fs::write(
        &config,
        ConfigBuilder::new("tls", &bad_url)
            .data_dir(dir.path())
            .prober("listen = \"127.0.0.1:0\"")
            .simulator_target("t", &sim.endpoint(), "1s", "1s")
            .build(),
    )
    .unwrap();
    let check = improbe_command()
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!check.status.success());
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(said.contains("not signed by a CA improbe trusts"), "{said}");

    // The daemon probes on into its spool meanwhile, and /readyz says why
    // it is not ready.
    daemon_spools_and_names_the_certificate(dir.path(), &config, &sim).await;
}

async fn daemon_spools_and_names_the_certificate(dir: &Path, config: &Path, sim: &Simulator) {
    let port = crate::common::free_port();
    let text = std::fs::read_to_string(config).unwrap().replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    std::fs::write(config, text).unwrap();
    let daemon = improbe_command()
        .args(["run", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let reason = wait::until(Duration::from_secs(30), || async {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            if status == 503 && body.contains("database TLS") && answered(sim) >= 6 {
                return Ok(body);
            }
        }
        Err("the daemon to say why it is not ready".to_owned())
    })
    .await;
    crate::common::terminate(daemon);
    assert!(
        reason.contains("the database's certificate is not signed by a CA improbe trusts"),
        "{reason}"
    );
    assert!(!reason.contains("unreachable"), "{reason}");
    let spool = std::fs::read_to_string(dir.join("improbe-spool-tls.jsonl")).unwrap();
    assert!(
        spool.lines().count() as u64 >= 6,
        "every attempt measured waits in the spool: {spool}"
    );
}

#[tokio::test]
async fn a_hostssl_server_asking_for_client_certificates_takes_ours_and_refuses_none() {
    let ca = TestCa::generate();
    let pg = tls_only_server(&ca, true);
    let (cert, key) = ca.issue_client("postgres");
    let verified = format!("sslmode=verify-full&sslrootcert={}", ca.ca_pem().display());
    let store = open(&with_tls(
        &pg,
        &format!(
            "{verified}&sslcert={}&sslkey={}",
            cert.display(),
            key.display()
        ),
    ))
    .await
    .unwrap();
    writes_and_reads(store.as_ref()).await;

    let without = refused(&with_tls(&pg, &verified), "no certificate, no entry").await;
    assert!(without.contains("certificate"), "{without}");
    assert!(!without.contains("does not answer"), "{without}");

    // Another CA's client certificate is not one the server trusts.
    let stranger = TestCa::generate();
    let (other_cert, other_key) = stranger.issue_client("postgres");
    let other = refused(
        &with_tls(
            &pg,
            &format!(
                "{verified}&sslcert={}&sslkey={}",
                other_cert.display(),
                other_key.display()
            ),
        ),
        "a certificate the server's CA did not sign",
    )
    .await;
    assert!(
        other.contains("refused improbe's client certificate"),
        "{other}"
    );
    // The key's path may be shown, its content never.
    let key_text = std::fs::read_to_string(&other_key).unwrap();
    let body = key_text.lines().nth(1).unwrap();
    assert!(!other.contains(body), "{other}");

    let plain = refused(
        &with_tls(&pg, "sslmode=disable"),
        "a hostssl-only server refuses a connection in clear",
    )
    .await;
    assert!(plain.contains("takes TLS connections only"), "{plain}");
}

/// `count` import lines a second apart from 2026-03-02T10:00Z, every kind,
/// one in ten a failure, for target `t`.
fn some_attempts(count: i64) -> String {
    let start = crate::common::at("2026-03-02T10:00:00Z");
    (0..count)
        .map(|i| {
            let t = (start + chrono::Duration::seconds(i))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let kind = Kind::ALL[(i % 3) as usize];
            let outcome = if i % 10 == 0 {
                r#""fail","http_status":503,"error":"unavailable""#
            } else {
                r#""ok","http_status":200"#
            };
            format!(
                r#"{{"target":"t","prober":"p","kind":"{kind}","started_at":"{t}","latency_ms":{},"outcome":{outcome}}}"#,
                30 + i
            ) + "\n"
        })
        .collect()
}

#[tokio::test]
async fn every_command_works_through_pgbouncer_in_transaction_mode() {
    let db = TestDb::postgres().await;
    let bouncer = PgBouncer::start(5432, "transaction", 2);
    let dir = tempfile::tempdir().unwrap();
    let config = |url: &str, name: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            ConfigBuilder::new("cli", url)
                .data_dir(dir.path())
                .database("pooler = \"transaction\"")
                .simulator_target("t", "http://127.0.0.1:9", "5s", "1s")
                .build(),
        )
        .unwrap();
        path
    };
    let pooled = config(&bouncer.url_for(&db.url), "pooled.toml");
    let direct = config(&db.url, "direct.toml");
    let run = |config: &Path, args: &[&str]| {
        succeeded(
            improbe_command()
                .arg("--config")
                .arg(config)
                .args(args)
                .output()
                .unwrap(),
        )
    };
    run(&pooled, &["check-config"]);
    run(&pooled, &["migrate"]);
    let lines = dir.path().join("attempts.jsonl");
    std::fs::write(&lines, some_attempts(600)).unwrap();
    let lines = lines.display().to_string();
    let imported = run(&pooled, &["import", &lines]);
    assert!(imported.contains("600"), "{imported}");
    // Again: nothing doubled.
    run(&pooled, &["import", &lines]);
    let sla = run(&pooled, &["sla", "--format", "json"]);
    assert_eq!(sla, run(&direct, &["sla", "--format", "json"]));
    let report = [
        "report", "--target", "t", "--month", "3", "--format", "json",
    ];
    let before: serde_json::Value = serde_json::from_str(&run(&pooled, &report)).unwrap();
    assert_eq!(before["figures"]["failure_minutes"], 0, "{before}");
    run(&pooled, &["compact"]);
    let storage = run(&pooled, &["storage", "--format", "json"]);
    assert!(storage.contains("attempts"), "{storage}");
    // The same figures through the pooler after folding, and directly.
    assert_eq!(sla, run(&pooled, &["sla", "--format", "json"]));
    let after: serde_json::Value = serde_json::from_str(&run(&direct, &report)).unwrap();
    assert_eq!(before["digest"], after["digest"]);
    let failures: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM attempt_log WHERE outcome = 'fail'")
            .fetch_one(&mut sqlx::PgConnection::connect(&db.url).await.unwrap())
            .await
            .unwrap();
    assert_eq!(failures, 60, "every failure stored once, and kept raw");
}

#[tokio::test]
async fn transaction_mode_without_the_setting_is_named() {
    let db = TestDb::postgres().await;
    db.store().await;
    // One server connection for every client: two clients' statements meet
    // on it at once.
    let bouncer = PgBouncer::start(5432, "transaction", 1);
    let through = bouncer.url_for(&db.url);
    let first = store::open(&through).await.unwrap();
    let second = store::open(&through).await.unwrap();
    first.attempt_count().await.unwrap();
    let error = second
        .attempt_count()
        .await
        .expect_err("sqlx_s_1 prepared twice on one server connection");
    let said = format!("{:#}", anyhow::Error::from(error));
    assert!(said.contains("pooler = \"transaction\""), "{said}");
    // With it, both work, as often as they like.
    let first = store::open_through(&through, Pooler::Transaction)
        .await
        .unwrap();
    let second = store::open_through(&through, Pooler::Transaction)
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(first.attempt_count().await.unwrap(), 0);
        assert_eq!(second.attempt_count().await.unwrap(), 0);
    }
}

// A second thread: the daemons are child processes probing servers that
// run on this test's runtime, while the test blocks waiting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_probers_through_pgbouncer_in_session_mode() {
    let bouncer = PgBouncer::start(5432, "session", 20);
    crate::probers::three_probers_aggregate_per_the_sla(|url| bouncer.url_for(url), &[]).await;
}

// A second thread: the daemons are child processes probing servers that
// run on this test's runtime, while the test blocks waiting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_probers_through_pgbouncer_in_transaction_mode() {
    // Fewer server connections than the probers have clients, so that
    // transactions of different probers share them.
    let bouncer = PgBouncer::start(5432, "transaction", 4);
    crate::probers::three_probers_aggregate_per_the_sla(
        |url| bouncer.url_for(url),
        &["pooler = \"transaction\""],
    )
    .await;
}

#[tokio::test]
async fn notifications_are_decided_and_sent_once_through_pgbouncer_in_transaction_mode() {
    let db = TestDb::postgres().await;
    db.store().await;
    // The three deciders' outbox claims and leases share two server
    // connections, a transaction at a time.
    let bouncer = PgBouncer::start(5432, "transaction", 2);
    let store = store::open_through(&bouncer.url_for(&db.url), Pooler::Transaction)
        .await
        .unwrap();
    crate::notify::three_deciders_send_each_event_once(&db, store).await;
}
