//! Bad input to every command: one clear error line naming the thing and
//! what to do, exit 1 (2 for usage errors), never a panic, never a secret.

use std::path::Path;
use std::process::Output;

const GOOD: &str = r#"
[prober]
id = "bad-input"

[database]
url = "sqlite://improbe.db"

[[targets]]
name = "t"
provider = "simulator"
[targets.sla]
service_start = "2026-01-01"
timezone = "UTC"
monthly_fee = "1"
"#;

struct Case {
    args: &'static [&'static str],
    config: String,
    env: Vec<(&'static str, String)>,
    code: i32,
    says: &'static str,
}

fn case(args: &'static [&'static str], code: i32, says: &'static str) -> Case {
    Case {
        args,
        config: GOOD.to_owned(),
        env: Vec::new(),
        code,
        says,
    }
}

fn run(dir: &Path, c: &Case) -> Output {
    std::fs::write(dir.join("improbe.toml"), &c.config).unwrap();
    let mut cmd = crate::common::improbe_command();
    cmd.current_dir(dir).args(c.args);
    for (k, v) in &c.env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn check(c: &Case) {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), c);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let what = format!("improbe {}:\n{stderr}", c.args.join(" "));
    assert_eq!(out.status.code(), Some(c.code), "{what}");
    assert!(!stderr.contains("panicked"), "{what}");
    assert!(!stderr.contains("stack backtrace"), "{what}");
    assert!(!stderr.contains("hunter2"), "a secret leaked: {what}");
    assert!(stderr.contains(c.says), "should say `{}`: {what}", c.says);
    if c.code == 1 {
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "one error line: {what}");
        assert!(errors[0].contains(c.says), "{what}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for c in [
        case(&["frobnicate"], 2, "unrecognized subcommand"),
        case(&["report"], 2, "--target"),
        case(&["sla", "--month", "abc"], 2, "invalid value 'abc'"),
        case(
            &["sla", "--date", "2026-02-30"],
            2,
            "invalid value '2026-02-30'",
        ),
        case(
            &["sla", "--month", "1", "--date", "2026-01-05"],
            2,
            "cannot be used with",
        ),
        case(
            &["report", "--target", "t", "--format", "pdf"],
            2,
            "invalid value 'pdf'",
        ),
        case(&["exclusions", "remove", "x"], 2, "invalid value 'x'"),
        case(&["demo", "--minutes", "abc"], 2, "invalid value 'abc'"),
        case(
            &["simulate", "--listen", "nonsense"],
            2,
            "invalid value 'nonsense'",
        ),
    ] {
        check(&c);
    }
}

#[test]
fn a_bad_config_is_named_by_every_command() {
    let bad = GOOD.replace(
        "provider = \"simulator\"",
        "provider = \"simulator\"\ninterval = \"5 parsecs\"",
    );
    for args in [
        &["check-config"][..],
        &["migrate"],
        &["run"],
        &["sla"],
        &["report", "--target", "t"],
        &["import", "attempts.jsonl"],
        &["exclusions", "list"],
        &["tencent", "setup"],
        &["setup"],
        &["healthcheck"],
    ] {
        check(&Case {
            config: bad.clone(),
            ..case(args, 1, "targets[0].interval")
        });
    }
    check(&case(
        &["--config", "missing.toml", "sla"],
        1,
        "missing.toml",
    ));
}

#[tokio::test]
async fn unusable_databases_say_which_and_hide_passwords() {
    let mut cases = vec![
        Case {
            env: vec![(
                "IMPROBE_DATABASE_URL",
                "mysql://u:hunter2@127.0.0.1/db".into(),
            )],
            ..case(&["sla"], 1, "unsupported database URL")
        },
        Case {
            env: vec![(
                "IMPROBE_DATABASE_URL",
                "sqlite:///nonexistent/dir/improbe.db".into(),
            )],
            ..case(&["sla"], 1, "cannot open SQLite database")
        },
    ];
    // A server that answers and refuses is an error even for the daemon,
    // which waits only for a server that does not answer.
    for args in [&["sla"][..], &["run"]] {
        cases.push(Case {
            env: vec![(
                "IMPROBE_DATABASE_URL",
                "postgres://nosuchrole:hunter2@127.0.0.1:5432/postgres".into(),
            )],
            ..case(args, 1, "nosuchrole")
        });
    }
    for c in cases {
        check(&c);
    }
}

#[test]
fn out_of_range_dates_and_unknown_names() {
    for c in [
        case(
            &["sla", "--date", "1990-01-01"],
            1,
            "before target `t` started",
        ),
        case(&["sla", "--month", "0"], 1, "--month must be 1 or more"),
        // Its claim deadline lies past the last representable date: once a panic.
        case(
            &["sla", "--month", "3121404"],
            1,
            "Service Month 3121404 of target `t` lies beyond the dates improbe can represent",
        ),
        case(
            &["report", "--target", "t", "--month", "4000000000"],
            1,
            "Service Month 4000000000",
        ),
        case(
            &["report", "--target", "nosuch"],
            1,
            "no target named `nosuch`",
        ),
        case(
            &["sla", "--target", "nosuch"],
            1,
            "no target named `nosuch`",
        ),
        case(
            &[
                "exclusions",
                "add",
                "--target",
                "t",
                "--start",
                "yesterday",
                "--end",
                "2026-01-02T00:00:00Z",
                "--reason",
                "x",
            ],
            1,
            "--start `yesterday` is not an RFC 3339 instant",
        ),
        case(
            &[
                "exclusions",
                "add",
                "--target",
                "t",
                "--start",
                "2026-01-02T00:00:00Z",
                "--end",
                "2026-01-01T00:00:00Z",
                "--reason",
                "x",
            ],
            1,
            "--end",
        ),
        case(&["exclusions", "remove", "999"], 1, "999"),
        case(&["import", "missing.jsonl"], 1, "missing.jsonl"),
        case(
            &[
                "report",
                "--target",
                "t",
                "--month",
                "1",
                "--output",
                "/nonexistent/dir/r.html",
            ],
            1,
            "cannot write the report to /nonexistent/dir/r.html",
        ),
        case(&["healthcheck"], 1, "[prober] listen is not set"),
        case(
            &["healthcheck", "--url", "nonsense"],
            1,
            "--url `nonsense` is not an http:// URL",
        ),
        case(
            &["healthcheck", "--url", "http://127.0.0.1:9/healthz"],
            1,
            "did not answer (error sending request",
        ),
        case(
            &["demo", "--minutes", "0"],
            1,
            "--minutes must be between 1 and 60",
        ),
        case(
            &["tencent", "setup"],
            1,
            "no target in improbe.toml has a provider to set up",
        ),
        case(
            &["setup", "--target", "t"],
            1,
            "target `t`: the simulator provider has nothing to set up",
        ),
    ] {
        check(&c);
    }
}

#[test]
fn a_corrupt_spool_line_stops_the_daemon_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("improbe-spool-bad-input.jsonl"),
        "{\"target\":\"t\",\"kind\":\"login\",\"started_at\":\"2026-01-01T00:00:00Z\",\"outcome\":\"ok\"}\nnot json\n",
    )
    .unwrap();
    let c = case(
        &["run"],
        1,
        "spool file ./improbe-spool-bad-input.jsonl line 2 is corrupt",
    );
    let out = run(dir.path(), &c);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(c.says), "{stderr}");
    assert!(
        stderr.contains("improbe import"),
        "says what to do: {stderr}"
    );
    // The spool is left as it was for the user to repair.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("improbe-spool-bad-input.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );
}

#[test]
fn a_missing_data_dir_is_named() {
    for args in [&["run"][..], &["check-config", "--offline"]] {
        check(&Case {
            config: GOOD.replace(
                "id = \"bad-input\"",
                "id = \"bad-input\"\ndata_dir = \"/nonexistent/spool\"",
            ),
            ..case(
                args,
                1,
                "prober.data_dir: cannot use the spool file /nonexistent/spool",
            )
        });
    }
}

#[test]
fn check_config_runs_the_daemons_preflight() {
    let tencent = GOOD.replace(
        "provider = \"simulator\"",
        "provider = \"tencent\"\ninterval = \"5s\"\ntimeout = \"4s\"",
    ) + "[targets.tencent]\nendpoint = \"https://adminapisgp.im.qcloud.com\"\nsdk_app_id = 1400000000\nadmin = \"administrator\"\nsecret_key = { env = \"IMPROBE_TEST_UNSET_KEY\" }\nsender = \"a\"\nrecipient = \"b\"\ngroup = \"g\"\n";
    for args in [
        &["check-config", "--offline"][..],
        &["check-config"],
        &["run"],
    ] {
        check(&Case {
            config: tencent.clone(),
            ..case(
                args,
                1,
                "targets[0].tencent.secret_key: environment variable IMPROBE_TEST_UNSET_KEY is not set",
            )
        });
    }
    check(&Case {
        config: GOOD.replace("sqlite://improbe.db", "mysql://root@localhost/improbe"),
        ..case(
            &["check-config", "--offline"],
            1,
            "database.url: unsupported database URL",
        )
    });
}

#[tokio::test]
async fn a_busy_simulator_port_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let args: &'static [&'static str] = Box::leak(Box::new([
        "simulate",
        "--listen",
        Box::leak(addr.into_boxed_str()),
    ]));
    check(&case(args, 1, "127.0.0.1"));
}
