//! The binary end to end: config errors, import, and `sla --format json`
//! against hand-computed months, on SQLite and PostgreSQL.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Output;

use crate::common::{TestDb, at};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sqlx::Connection;

fn improbe(config: &Path, db: Option<&TestDb>, args: &[&str]) -> Output {
    let mut cmd = crate::common::improbe_command();
    cmd.arg("--config").arg(config).args(args);
    if let Some(db) = db {
        cmd.env("IMPROBE_DATABASE_URL", &db.url);
    }
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const TARGETS: &str = r#"
[prober]
id = "cli-test"

[[targets]]
name = "thirty-432"
provider = "simulator"
[targets.sla]
service_start = "2026-04-17"
timezone = "UTC"
monthly_fee = "100.00"

[[targets]]
name = "thirty-433"
provider = "simulator"
[targets.sla]
service_start = "2026-04-17"
timezone = "UTC"
monthly_fee = "100.00"

[[targets]]
name = "shanghai-446"
provider = "simulator"
[targets.sla]
service_start = "2026-03-17"
timezone = "Asia/Shanghai"
monthly_fee = "1200.00"
currency = "CNY"
holidays = ["2026-05-01"]
workdays = ["2026-05-09"]

[[targets]]
name = "shanghai-447"
provider = "simulator"
[targets.sla]
service_start = "2026-03-17"
timezone = "Asia/Shanghai"
monthly_fee = "1200.00"
holidays = ["2026-05-01"]

[[targets]]
name = "berlin-dst"
provider = "simulator"
[targets.sla]
service_start = "2026-03-10"
timezone = "Europe/Berlin"
monthly_fee = "333.35"
currency = "EUR"

[[exclusions]]
target = "berlin-dst"
start = "2026-03-20T10:00:00+01:00"
end = "2026-03-20T12:00:00+01:00"
reason = "announced upgrade"
announced_at = "2026-03-01T00:00:00Z"
"#;

/// `n` consecutive failure minutes from `start`, one failed login each.
fn failures(out: &mut String, target: &str, start: DateTime<Utc>, n: i64) {
    for m in 0..n {
        let t = start + Duration::minutes(m) + Duration::seconds(3);
        writeln!(
            out,
            r#"{{"target":"{target}","prober":"p1","kind":"login","started_at":"{}","outcome":"fail","http_status":502}}"#,
            t.to_rfc3339()
        )
        .unwrap();
    }
}

fn month_one(records: &[Value], target: &str) -> Value {
    records
        .iter()
        .find(|r| r["target"] == target && r["month"] == 1)
        .cloned()
        .unwrap()
}

async fn sla_json_matches_hand_computed_months(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("improbe.toml");
    std::fs::write(&config, TARGETS).unwrap();
    let mut lines = String::new();
    failures(&mut lines, "thirty-432", at("2026-04-20T00:00:00Z"), 432);
    failures(&mut lines, "thirty-433", at("2026-04-20T00:00:00Z"), 433);
    failures(&mut lines, "shanghai-446", at("2026-04-01T00:00:00Z"), 446);
    failures(&mut lines, "shanghai-447", at("2026-04-01T00:00:00Z"), 447);
    // 30 failures, 10 of them inside the excluded 09:00-11:00 UTC window.
    failures(&mut lines, "berlin-dst", at("2026-03-20T08:40:00Z"), 30);
    let file = dir.path().join("attempts.jsonl");
    std::fs::write(&file, &lines).unwrap();

    let import = improbe(&config, Some(&db), &["import", file.to_str().unwrap()]);
    assert!(
        import.status.success(),
        "{}: {}",
        db.backend,
        stderr(&import)
    );
    let sla = improbe(&config, Some(&db), &["sla", "--format", "json"]);
    assert!(sla.status.success(), "{}: {}", db.backend, stderr(&sla));
    let records: Vec<Value> = serde_json::from_str(&stdout(&sla)).unwrap();

    // (target, total, failure, availability, meets, credit %, credit amount)
    let expected = [
        ("thirty-432", 43_200, 432, "99.0000", true, 0, "0.00"),
        ("thirty-433", 43_200, 433, "98.9976", false, 10, "10.00"),
        ("shanghai-446", 44_640, 446, "99.0008", true, 0, "0.00"),
        ("shanghai-447", 44_640, 447, "98.9986", false, 10, "120.00"),
        ("berlin-dst", 31 * 1440 - 60, 20, "99.9551", true, 0, "0.00"),
    ];
    for (target, total, failure, availability, meets, credit, amount) in expected {
        let r = month_one(&records, target);
        let context = format!("{} {target}: {r}", db.backend);
        assert_eq!(r["total_minutes"], total, "{context}");
        assert_eq!(r["failure_minutes"], failure, "{context}");
        assert_eq!(r["availability_percent"], availability, "{context}");
        assert_eq!(r["meets_commitment"], meets, "{context}");
        assert_eq!(r["credit_percent"], credit, "{context}");
        assert_eq!(r["credit_amount"], amount, "{context}");
        assert_eq!(r["complete"], true, "{context}");
        let excluded = r["excluded_minutes"].as_i64().unwrap();
        let no_data = r["no_data_minutes"].as_i64().unwrap();
        let available = r["available_minutes"].as_i64().unwrap();
        assert_eq!(available, 0, "{context}");
        assert_eq!(failure + excluded + no_data + available, total, "{context}");
    }

    let shanghai = month_one(&records, "shanghai-446");
    assert_eq!(shanghai["first_day"], "2026-03-17");
    assert_eq!(shanghai["last_day"], "2026-04-16");
    assert_eq!(shanghai["start"], "2026-03-17T00:00:00+08:00");
    assert_eq!(shanghai["end"], "2026-04-17T00:00:00+08:00");
    assert_eq!(shanghai["currency"], "CNY");
    // 1 May is a holiday: business days 4-8 May, so the window opens on the 9th.
    assert_eq!(shanghai["claim_opens"], "2026-05-09T00:00:00+08:00");
    assert_eq!(shanghai["claim_deadline"], "2026-06-15T23:59:59+08:00");

    let berlin = month_one(&records, "berlin-dst");
    assert_eq!(berlin["excluded_minutes"], 120);
    assert_eq!(berlin["start"], "2026-03-10T00:00:00+01:00");
    assert_eq!(berlin["end"], "2026-04-10T00:00:00+02:00");
    // Last day 9 April, so the following month is May: 1, 4, 5, 6, 7 are
    // business days 1-5 (no holidays configured), opening on the 8th.
    assert_eq!(berlin["claim_opens"], "2026-05-08T00:00:00+02:00");
    assert_eq!(berlin["claim_deadline"], "2026-06-08T23:59:59+02:00");

    // The daemon's dashboards read the same figures from `service_months`.
    let sql = "SELECT CAST(failure_minutes AS BIGINT), CAST(credit_amount AS TEXT), CAST(credit_percent AS BIGINT) \
               FROM service_months WHERE target = 'thirty-433' AND month = 1";
    let row: (i64, String, i64) = match db.backend {
        "sqlite" => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(sql).fetch_one(&mut c).await.unwrap()
        }
        _ => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(sql).fetch_one(&mut c).await.unwrap()
        }
    };
    assert_eq!(row, (433, "10.00".to_owned(), 10), "{}", db.backend);

    // --month and --date select one month; the table renders the same figures.
    let one = improbe(
        &config,
        Some(&db),
        &[
            "sla",
            "--target",
            "thirty-433",
            "--date",
            "2026-05-16",
            "--format",
            "json",
        ],
    );
    let one: Vec<Value> = serde_json::from_str(&stdout(&one)).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        (one[0]["month"].as_i64(), one[0]["failure_minutes"].as_i64()),
        (Some(1), Some(433))
    );
    let table = improbe(
        &config,
        Some(&db),
        &["sla", "--target", "thirty-433", "--month", "1"],
    );
    assert!(
        stdout(&table).contains("98.9976% below 99%"),
        "{}",
        stdout(&table)
    );
    let csv = improbe(
        &config,
        Some(&db),
        &[
            "sla",
            "--target",
            "thirty-433",
            "--month",
            "1",
            "--format",
            "csv",
        ],
    );
    let csv = stdout(&csv);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("thirty-433,1,2026-04-17,2026-05-16,"),
        "{csv}"
    );
}

/// [`TARGETS`] with a SQLite database in `dir`; the config's path.
fn targets_on_sqlite(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("improbe.toml");
    let db_path = dir.join("x.db");
    let url = format!("sqlite://{}", db_path.display());
    let text = TARGETS.replace(
        "id = \"cli-test\"",
        &format!("id = \"cli-test\"\n[database]\nurl = \"{url}\""),
    );
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn a_bad_import_line_is_named_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = targets_on_sqlite(dir.path());
    let mut lines = String::new();
    failures(&mut lines, "thirty-433", at("2026-04-20T00:00:00Z"), 1_500);
    lines.push_str(r#"{"target":"thirty-433","kind":"login","started_at":"2026-04-21T00:00:00Z","outcome":"maybe"}"#);
    lines.push('\n');
    let file = dir.path().join("attempts.jsonl");
    std::fs::write(&file, &lines).unwrap();

    let out = improbe(&config, None, &["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 1501"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown variant `maybe`"),
        "{}",
        stderr(&out)
    );

    let sla = improbe(
        &config,
        None,
        &[
            "sla",
            "--target",
            "thirty-433",
            "--month",
            "1",
            "--format",
            "json",
        ],
    );
    let records: Vec<Value> = serde_json::from_str(&stdout(&sla)).unwrap();
    assert_eq!(
        records[0]["failure_minutes"], 0,
        "a failed import left minutes behind"
    );
}

#[test]
fn improbe_log_sets_the_level_per_target() {
    let dir = tempfile::tempdir().unwrap();
    let config = targets_on_sqlite(dir.path());
    // sqlx logs every statement at DEBUG; the migrations run some.
    let migrate = |log: Option<&str>| {
        let mut cmd = crate::common::improbe_command();
        cmd.arg("--config").arg(&config).arg("migrate");
        match log {
            Some(log) => cmd.env("IMPROBE_LOG", log),
            None => cmd.env_remove("IMPROBE_LOG"),
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let statements = |logs: &str| logs.lines().filter(|l| l.contains("DEBUG")).count();
    assert_eq!(statements(&migrate(None)), 0, "INFO by default");
    assert!(
        statements(&migrate(Some("debug"))) > 0,
        "a level for everything"
    );
    assert_eq!(
        statements(&migrate(Some("debug,sqlx=info"))),
        0,
        "a level per target"
    );
}

#[test]
fn check_config_names_path_and_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    let broken = TARGETS.replace(
        "timezone = \"Europe/Berlin\"",
        "timezone = \"Europe/Berlín\"",
    );
    std::fs::write(&config, &broken).unwrap();
    let out = improbe(&config, None, &["check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let line = broken.lines().position(|l| l.contains("Berlín")).unwrap() + 1;
    let expected =
        format!("line {line}: targets[4].sla.timezone: `Europe/Berlín` is not an IANA time zone");
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));

    let missing = improbe(&dir.path().join("nope.toml"), None, &["check-config"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("cannot read config file"),
        "{}",
        stderr(&missing)
    );

    let usage = improbe(&config, None, &["sla", "--month", "x"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn the_example_configs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cwd = tempfile::tempdir().unwrap();
    let check = |name: &str| {
        crate::common::improbe_command()
            .arg("--config")
            .arg(root.join(name))
            .args(["check-config", "--offline"])
            .current_dir(cwd.path())
            .env("TIM_SECRET_KEY", "a key")
            .output()
            .unwrap()
    };
    let sample = check("config/sample.toml");
    assert!(sample.status.success(), "{}", stderr(&sample));
    assert!(stdout(&sample).contains("OK"));
    // The example is valid as a file; what `run` would miss here is exactly
    // the Matrix password file it names, which this machine does not have.
    let example = check("config/improbe.example.toml");
    assert_eq!(example.status.code(), Some(1), "{}", stderr(&example));
    let said = stderr(&example);
    assert!(said.contains("not ready to run"), "{said}");
    assert!(
        said.contains("targets[1].matrix.password: cannot read secret file /run/secrets/matrix"),
        "{said}"
    );
    let errors: Vec<&str> = said.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{said}");
    assert_eq!(
        errors[0].matches("targets[").count(),
        1,
        "only that problem: {said}"
    );
    assert!(
        std::fs::read_dir(cwd.path()).unwrap().next().is_none(),
        "--offline leaves nothing behind (no database, no spool)"
    );
}

async fn exclusions_recorded_from_the_command_line_move_minutes_and_back(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("improbe.toml");
    std::fs::write(&config, TARGETS).unwrap();
    let mut lines = String::new();
    failures(&mut lines, "thirty-433", at("2026-04-20T00:00:00Z"), 433);
    let file = dir.path().join("attempts.jsonl");
    std::fs::write(&file, &lines).unwrap();
    let month = |db: &TestDb| {
        let out = improbe(
            &config,
            Some(db),
            &[
                "sla",
                "--target",
                "thirty-433",
                "--month",
                "1",
                "--format",
                "json",
            ],
        );
        let records: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
        (
            records[0]["failure_minutes"].as_i64().unwrap(),
            records[0]["excluded_minutes"].as_i64().unwrap(),
            records[0]["credit_percent"].as_i64().unwrap(),
        )
    };

    assert!(
        improbe(&config, Some(&db), &["import", file.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(month(&db), (433, 0, 10), "{}", db.backend);

    // Two minutes of the outage fall inside an unannounced window.
    let add = improbe(
        &config,
        Some(&db),
        &[
            "exclusions",
            "add",
            "--target",
            "thirty-433",
            "--start",
            "2026-04-20T08:00:30+08:00",
            "--end",
            "2026-04-20T08:02:00+08:00",
            "--reason",
            "emergency fix",
            "--recorded-by",
            "sre",
        ],
    );
    assert!(add.status.success(), "{}", stderr(&add));
    assert!(
        stdout(&add).contains("no notice before its start"),
        "{}",
        stdout(&add)
    );
    assert_eq!(
        month(&db),
        (431, 2, 0),
        "{}: 431 failure minutes meet the commitment",
        db.backend
    );

    let list = improbe(
        &config,
        Some(&db),
        &["exclusions", "list", "--format", "json"],
    );
    let list: Vec<Value> = serde_json::from_str(&stdout(&list)).unwrap();
    let cli: Vec<_> = list.iter().filter(|e| e["source"] == "cli").collect();
    assert_eq!(cli.len(), 1);
    assert_eq!(
        (
            cli[0]["prior_notice"].as_bool(),
            cli[0]["recorded_by"].as_str()
        ),
        (Some(false), Some("sre"))
    );
    let config_window = list.iter().find(|e| e["source"] == "config").unwrap();
    assert_eq!(config_window["prior_notice"], true);

    let id = cli[0]["id"].as_i64().unwrap().to_string();
    let refused = improbe(
        &config,
        Some(&db),
        &["exclusions", "remove", &config_window["id"].to_string()],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("comes from the config file"),
        "{}",
        stderr(&refused)
    );
    assert!(
        improbe(&config, Some(&db), &["exclusions", "remove", &id])
            .status
            .success()
    );
    assert_eq!(
        month(&db),
        (433, 0, 10),
        "{}: removing the window restores the failures",
        db.backend
    );
    let missing = improbe(&config, Some(&db), &["exclusions", "remove", &id]);
    assert_eq!(missing.status.code(), Some(1));

    let bad = improbe(
        &config,
        Some(&db),
        &[
            "exclusions",
            "add",
            "--target",
            "thirty-433",
            "--start",
            "yesterday",
            "--end",
            "2026-04-20T08:02:00Z",
            "--reason",
            "x",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("--start `yesterday` is not an RFC 3339 instant"),
        "{}",
        stderr(&bad)
    );
}

const VENDOR5: &str = r#"
[prober]
id = "contracts-test"

[[targets]]
name = "kolkata-5m"
provider = "simulator"
[targets.sla]
contract = "vendor5"
service_start = "2026-03-10"
timezone = "Asia/Kolkata"
monthly_fee = "1000.00"
currency = "USD"

[contracts.vendor5]
period = "calendar_month"
interval = "5m"
down_when = "error_rate"
error_rate_above = "5"
commitment = "99.95"
credits = [{ below = "99.95", percent = 10 }, { below = "99", percent = 30 }]
claim_opens = "period_end"
claim_days = 30
"#;

/// Import lines for `target`'s attempts from `start`, `spacing_ms` apart, in
/// groups of `(outcome, latency_ms, how many)` (no latency: `None`).
fn attempt_lines(
    out: &mut String,
    (target, kind): (&str, &str),
    start: DateTime<Utc>,
    spacing_ms: i64,
    groups: &[(&str, Option<i64>, usize)],
) {
    let attempts = groups
        .iter()
        .flat_map(|(outcome, latency, n)| std::iter::repeat_n((*outcome, *latency), *n));
    for (i, (outcome, latency)) in attempts.enumerate() {
        let t = start + Duration::milliseconds(i as i64 * spacing_ms);
        let latency = latency.map_or(String::new(), |ms| format!(r#","latency_ms":{ms}"#));
        let reason = if outcome == "inconclusive" {
            r#","reason":"credentials""#
        } else {
            ""
        };
        writeln!(
            out,
            r#"{{"target":"{target}","prober":"p1","kind":"{kind}","started_at":"{}"{latency},"outcome":"{outcome}"{reason}}}"#,
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
        .unwrap();
    }
}

/// `ok` and `fail` attempts (and `inconclusive` ones) spread over the
/// 5-minute interval starting at `start`, two seconds apart.
fn interval(out: &mut String, start: DateTime<Utc>, ok: usize, fail: usize, inconclusive: usize) {
    let groups = [
        ("ok", None, ok),
        ("fail", None, fail),
        ("inconclusive", None, inconclusive),
    ];
    attempt_lines(out, ("kolkata-5m", "login"), start, 2_000, &groups);
}

/// A calendar-month contract with 5-minute error-rate intervals in a zone
/// half an hour off UTC, against hand-computed figures, on both backends.
async fn a_calendar_month_error_rate_contract_is_computed_per_interval(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("improbe.toml");
    std::fs::write(&config, VENDOR5).unwrap();
    let mut lines = String::new();
    // 2026-03-15 00:00 +05:30, on the 5-minute grid.
    let base = at("2026-03-14T18:30:00Z");
    let slot = |k: i64| base + Duration::minutes(5 * k);
    interval(&mut lines, slot(0), 94, 6, 0); // 6 % failed: down
    interval(&mut lines, slot(1), 95, 5, 0); // 5 %: not above, available
    interval(&mut lines, slot(2), 0, 10, 0); // all failed: down
    interval(&mut lines, slot(3), 3, 0, 50); // inconclusive ignored: available
    interval(&mut lines, slot(4), 47, 3, 0); // 6 %: down
    interval(&mut lines, slot(5), 0, 1, 0); // down
    interval(&mut lines, slot(6), 1, 0, 0); // available
    interval(&mut lines, slot(7), 9, 1, 0); // 10 %: down
    let file = dir.path().join("attempts.jsonl");
    std::fs::write(&file, &lines).unwrap();

    let b = db.backend;
    let import = improbe(&config, Some(&db), &["import", file.to_str().unwrap()]);
    assert!(import.status.success(), "{b}: {}", stderr(&import));
    let sla = improbe(
        &config,
        Some(&db),
        &["sla", "--month", "1", "--format", "json"],
    );
    assert!(sla.status.success(), "{b}: {}", stderr(&sla));
    let records: Vec<Value> = serde_json::from_str(&stdout(&sla)).unwrap();
    let m = &records[0];
    // March 2026 in Kolkata: 31 days = 44,640 minutes = 8,928 intervals.
    assert_eq!(m["contract"], "vendor5", "{b}");
    assert_eq!(m["start"], "2026-03-01T00:00:00+05:30", "{b}");
    assert_eq!(m["end"], "2026-04-01T00:00:00+05:30", "{b}");
    assert_eq!(m["unit_minutes"], 5, "{b}");
    assert_eq!(m["total_units"], 8_928, "{b}");
    assert_eq!(m["down_units"], 5, "{b}");
    assert_eq!(m["available_units"], 3, "{b}");
    assert_eq!(m["no_data_units"], 8_920, "{b}");
    assert_eq!(m["excluded_units"], 0, "{b}");
    assert_eq!(m["total_minutes"], 44_640, "{b}");
    assert_eq!(m["failure_minutes"], 25, "{b}");
    // (8,928 - 5) / 8,928 = 99.94399... %: below 99.95, above 99.
    assert_eq!(m["availability_percent"], "99.9439", "{b}");
    assert_eq!(m["meets_commitment"], false, "{b}");
    assert_eq!(m["credit_percent"], 10, "{b}");
    assert_eq!(m["credit_amount"], "100.00", "{b}");
    assert_eq!(m["claim_opens"], "2026-04-01T00:00:00+05:30", "{b}");
    assert_eq!(m["claim_deadline"], "2026-04-30T23:59:59+05:30", "{b}");

    // The report and the claim state the same figures, in intervals.
    let month = ["--target", "kolkata-5m", "--month", "1"];
    let report = improbe(
        &config,
        Some(&db),
        &[&["report"][..], &month, &["--format", "json"]].concat(),
    );
    assert!(report.status.success(), "{b}: {}", stderr(&report));
    let report: Value = serde_json::from_str(&stdout(&report)).unwrap();
    assert_eq!(report["figures"]["contract"], "vendor5", "{b}");
    assert_eq!(report["figures"]["down_units"], 5, "{b}");
    assert_eq!(report["figures"]["credit_amount"], "100.00", "{b}");
    // Incidents and the day table count whole down intervals, so they
    // add up to the figures: runs [0], [2], [4, 5], [7].
    let incidents = report["incidents"].as_array().unwrap();
    let lengths: Vec<i64> = incidents
        .iter()
        .map(|i| i["minutes"].as_i64().unwrap())
        .collect();
    assert_eq!(lengths, [5, 5, 10, 5], "{b}");
    assert_eq!(incidents[2]["start"], "2026-03-15T00:20:00+05:30", "{b}");
    let day = report["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == "2026-03-15")
        .unwrap();
    assert_eq!(
        (
            day["failure_minutes"].as_i64(),
            day["available_minutes"].as_i64()
        ),
        (Some(25), Some(15)),
        "{b}"
    );
    let table = stdout(&improbe(&config, Some(&db), &["sla", "--month", "1"]));
    assert!(table.contains("25 (5×5m)"), "{b}: {table}");
    let csv = stdout(&improbe(
        &config,
        Some(&db),
        &["sla", "--month", "1", "--format", "csv"],
    ));
    assert!(csv.lines().next().unwrap().ends_with(",contract,unit_minutes,total_units,down_units,excluded_units,no_data_units,available_units"), "{b}: {csv}");
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .ends_with(",vendor5,5,8928,5,0,8920,3"),
        "{b}: {csv}"
    );
    let markdown = stdout(&improbe(
        &config,
        Some(&db),
        &[&["report"][..], &month].concat(),
    ));
    assert!(
        markdown.contains("| Down 5-minute intervals | 5 |"),
        "{b}: {markdown}"
    );
    assert!(
        markdown.contains("| Meets the 99.95% commitment | no |"),
        "{b}"
    );
    let claim = stdout(&improbe(
        &config,
        Some(&db),
        &[&["claim"][..], &month].concat(),
    ));
    assert!(claim.contains("contract `vendor5`"), "{b}: {claim}");
    assert!(
        claim.contains("share of the period's 5-minute intervals that were not down"),
        "{b}"
    );
    assert!(
        claim.contains("**10% of the period's fee: 100.00 USD**"),
        "{b}"
    );
    assert!(
        claim.contains("# Service credit claim: kolkata-5m, Month 1"),
        "{b}: {claim}"
    );
    assert!(
        claim.contains("| Down 5-minute intervals | 5 |"),
        "{b}: {claim}"
    );
    assert!(
        !claim.contains("Apparent Failure") && !claim.contains("clause"),
        "{b}: {claim}"
    );
    assert!(
        markdown.contains("# Availability evidence: `kolkata-5m`, Month 1"),
        "{b}"
    );
    // The figures the daemon keeps for dashboards, in intervals too.
    let sql = "SELECT contract, CAST(unit_minutes AS BIGINT), CAST(total_units AS BIGINT), CAST(down_units AS BIGINT) \
               FROM service_months WHERE target = 'kolkata-5m' AND month = 1";
    let row: (String, i64, i64, i64) = match db.backend {
        "sqlite" => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(sql).fetch_one(&mut c).await.unwrap()
        }
        _ => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(sql).fetch_one(&mut c).await.unwrap()
        }
    };
    assert_eq!(row, ("vendor5".to_owned(), 5, 8_928, 5), "{b}");
}

#[test]
fn a_contract_that_cannot_be_evaluated_is_refused_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("improbe.toml");
    let cases: [(&str, &str, &str); 7] = [
        (
            "interval = \"5m\"",
            "interval = \"7m\"",
            "contracts.vendor5.interval",
        ),
        (
            "credits = [{ below = \"99.95\", percent = 10 }, { below = \"99\", percent = 30 }]",
            "credits = [{ below = \"99\", percent = 10 }, { below = \"99.95\", percent = 30 }]",
            "contracts.vendor5.credits[1]",
        ),
        (
            "credits = [{ below = \"99.95\", percent = 10 }, { below = \"99\", percent = 30 }]",
            "credits = [{ below = \"99.95\", percent = 10 }, { below = \"99.95\", percent = 30 }]",
            "contracts.vendor5.credits[1]",
        ),
        (
            "percent = 30",
            "percent = 130",
            "contracts.vendor5.credits[1].percent",
        ),
        (
            "contract = \"vendor5\"",
            "contract = \"vendor6\"",
            "targets[0].sla.contract",
        ),
        // 5-minute intervals fit +05:30, 30-minute ones do not fit +05:45.
        ("interval = \"5m\"\n", "interval = \"30m\"\n", ""),
        (
            "[contracts.vendor5]",
            "[contracts.tencent-im]",
            "contracts.tencent-im",
        ),
    ];
    for (from, to, path) in cases {
        let mut text = VENDOR5.replacen(from, to, 1);
        let path = if path.is_empty() {
            text = text.replace("Asia/Kolkata", "Asia/Kathmandu");
            "targets[0].sla.contract"
        } else {
            path
        };
        if path == "contracts.tencent-im" {
            text = text.replace("contract = \"vendor5\"", "contract = \"tencent-im\"");
        }
        std::fs::write(&config, &text).unwrap();
        let out = improbe(&config, None, &["check-config", "--offline"]);
        assert_eq!(out.status.code(), Some(1), "{to}: {}", stdout(&out));
        assert!(stderr(&out).contains(path), "{to}: {}", stderr(&out));
    }
    // The rules in words.
    std::fs::write(&config, VENDOR5).unwrap();
    let shown = improbe(&config, None, &["contracts", "show", "vendor5"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let words = stdout(&shown);
    assert!(
        words.contains(
            "5-minute interval is down when more than 5 % of its conclusive attempts failed"
        ),
        "{words}"
    );
    assert!(
        words.contains("Availability below 99 %: a credit of 30 %"),
        "{words}"
    );
    assert!(
        words.contains("close 30 days after the period's last day"),
        "{words}"
    );
}

/// Every example contract in `config/contracts/` is valid when a target
/// names it, and reads back in words.
#[test]
fn the_example_contracts_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/contracts");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("improbe.toml");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("Check against your own agreement"),
            "{}",
            path.display()
        );
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("[contracts.")?.strip_suffix(']'))
            .unwrap()
            .to_owned();
        std::fs::write(
            &config,
            format!(
                "[[targets]]\nname = \"t\"\nprovider = \"simulator\"\n[targets.sla]\ncontract = \"{name}\"\n\
                 service_start = \"2026-01-01\"\ntimezone = \"Asia/Kolkata\"\nmonthly_fee = \"100\"\n\n{text}"
            ),
        )
        .unwrap();
        let check = improbe(&config, None, &["check-config", "--offline"]);
        assert!(check.status.success(), "{name}: {}", stderr(&check));
        let shown = improbe(&config, None, &["contracts", "show", &name]);
        assert!(
            stdout(&shown).contains(&format!("Contract `{name}`")),
            "{name}"
        );
        seen += 1;
    }
    assert!(seen >= 5);
}

const LATENCY: &str = r#"
[prober]
id = "latency-test"

[[targets]]
name = "kolkata-1m"
provider = "simulator"
[targets.sla]
contract = "chat"
service_start = "2026-03-10"
timezone = "Asia/Kolkata"
monthly_fee = "500.00"
currency = "USD"

[contracts.chat]
period = "calendar_month"
interval = "1m"
down_when = "error_rate"
error_rate_above = "1"
slow_after = "200ms"
commitment = "99.9"
credits = []
claim_opens = "period_end"
claim_days = 30
"#;

/// Attempts spread over the minute starting at `start`, half a second apart:
/// `(outcome, latency_ms, how many)`.
fn timed_minute(out: &mut String, start: DateTime<Utc>, groups: &[(&str, i64, usize)]) {
    let groups: Vec<_> = groups
        .iter()
        .map(|(o, ms, n)| (*o, Some(*ms), *n))
        .collect();
    attempt_lines(out, ("kolkata-1m", "send_direct"), start, 500, &groups);
}

/// A 1-minute latency contract (an `ok` slower than 200 ms is a failure,
/// down above 1 % failed) in a zone half an hour off UTC, on both backends:
/// figures from imported attempts, a re-import changes nothing, and a
/// changed `slow_after` recounts the stored minutes.
async fn a_latency_contract_counts_slow_successes_as_failures(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("improbe.toml");
    std::fs::write(&config, LATENCY).unwrap();
    let mut lines = String::new();
    // 2026-03-15 00:00 +05:30.
    let base = at("2026-03-14T18:30:00Z");
    let minute = |k: i64| base + Duration::minutes(k);
    timed_minute(&mut lines, minute(0), &[("ok", 50, 100)]); // available
    timed_minute(&mut lines, minute(1), &[("ok", 50, 99), ("ok", 201, 1)]); // 1 %: available
    timed_minute(&mut lines, minute(2), &[("ok", 50, 98), ("ok", 201, 2)]); // 2 %: down
    timed_minute(&mut lines, minute(3), &[("ok", 200, 100)]); // at the limit: available
    timed_minute(&mut lines, minute(4), &[("ok", 900, 3)]); // every success slow: down
    timed_minute(&mut lines, minute(5), &[("ok", 50, 1), ("fail", 30, 1)]); // 50 %: down
    timed_minute(&mut lines, minute(6), &[("inconclusive", 10, 5)]); // no data
    let file = dir.path().join("attempts.jsonl");
    std::fs::write(&file, &lines).unwrap();

    let figures = |db: &TestDb| {
        let sla = improbe(
            &config,
            Some(db),
            &["sla", "--date", "2026-03-15", "--format", "json"],
        );
        assert!(sla.status.success(), "{}: {}", db.backend, stderr(&sla));
        let records: Vec<Value> = serde_json::from_str(&stdout(&sla)).unwrap();
        records[0].clone()
    };
    std::fs::write(&config, LATENCY).unwrap();
    let b = db.backend;
    for _ in 0..2 {
        let import = improbe(&config, Some(&db), &["import", file.to_str().unwrap()]);
        assert!(import.status.success(), "{b}: {}", stderr(&import));
    }
    let m = figures(&db);
    // March 2026 in Kolkata: 44,640 one-minute intervals.
    assert_eq!(m["contract"], "chat", "{b}");
    assert_eq!(m["start"], "2026-03-01T00:00:00+05:30", "{b}");
    assert_eq!(m["unit_minutes"], 1, "{b}");
    assert_eq!(m["total_units"], 44_640, "{b}");
    assert_eq!(m["down_units"], 3, "{b}");
    assert_eq!(m["available_units"], 3, "{b}");
    assert_eq!(m["no_data_units"], 44_634, "{b}");
    // (44,640 - 3) / 44,640 = 99.99327... %.
    assert_eq!(m["availability_percent"], "99.9932", "{b}");
    assert_eq!(m["meets_commitment"], true, "{b}");
    assert_eq!(m["credit_percent"], 0, "{b}");

    // The report's figures agree; the claim states the rule.
    let month = ["--target", "kolkata-1m", "--date", "2026-03-15"];
    let report = improbe(
        &config,
        Some(&db),
        &[&["report"][..], &month, &["--format", "json"]].concat(),
    );
    assert!(report.status.success(), "{b}: {}", stderr(&report));
    let report: Value = serde_json::from_str(&stdout(&report)).unwrap();
    assert_eq!(report["figures"]["down_units"], 3, "{b}");
    let shown = stdout(&improbe(&config, None, &["contracts", "show", "chat"]));
    assert!(
        shown.contains("slower than 200 ms counts as a failure"),
        "{shown}"
    );

    // A looser rule: only the minute with a failed attempt stays down.
    std::fs::write(&config, LATENCY.replace("\"200ms\"", "\"1000ms\"")).unwrap();
    assert_eq!(
        figures(&db)["down_units"],
        1,
        "{b}: recounted against 1000 ms"
    );
    // And back: the same figures as before.
    std::fs::write(&config, LATENCY).unwrap();
    assert_eq!(
        figures(&db)["down_units"],
        3,
        "{b}: recounted against 200 ms"
    );
}

crate::on_both_backends!(
    flavor = "current_thread";
    sla_json_matches_hand_computed_months,
    exclusions_recorded_from_the_command_line_move_minutes_and_back,
    a_calendar_month_error_rate_contract_is_computed_per_interval,
    a_latency_contract_counts_slow_successes_as_failures,
);
