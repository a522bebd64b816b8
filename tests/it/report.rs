//! `improbe report` on a month with scripted incidents, a gap and
//! exclusions, on SQLite and PostgreSQL; the HTML checked in headless
//! Chromium.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{TestDb, at, backends};
use chrono::{DateTime, Datelike, Duration, Utc};
use improbe::minute::Minute;
use improbe::store::Heartbeat;
use serde_json::Value;

const CONFIG: &str = r#"
[prober]
id = "report-test"

[[targets]]
name = "tim"
provider = "simulator"
[targets.sla]
service_start = "2026-03-01"
timezone = "UTC"
monthly_fee = "500.00"
currency = "EUR"

[[exclusions]]
target = "tim"
start = "2026-03-03T12:00:00Z"
end = "2026-03-03T12:30:00Z"
reason = "announced upgrade"
announced_at = "2026-03-01T09:00:00Z"
"#;

use crate::common::{improbe_in as improbe, succeeded as ok};

fn line(prober: &str, kind: &str, t: DateTime<Utc>, outcome: &str, extra: &str) -> String {
    format!(
        r#"{{"target":"tim","prober":"{prober}","kind":"{kind}","started_at":"{}","outcome":"{outcome}"{extra}}}"#,
        t.to_rfc3339()
    ) + "\n"
}

/// 2026-03-03, 10:00 to 11:00 UTC, probed every 20 s by `p1` (and `p2` in
/// the first incident):
/// - 10:20 to 10:23: both probers fail with HTTP 502 / 70500;
/// - 10:40: login gets HTTP 503, one-to-one sends time out, group sends get
///   an error code missing from the classification table;
/// - 10:50 to 11:00: only inconclusive attempts (credentials);
/// - everything else succeeds.
fn scripted_attempts() -> String {
    let mut out = String::new();
    let start = at("2026-03-03T10:00:00Z");
    for second in (0..3600).step_by(20) {
        let t = start + Duration::seconds(second);
        let minute = second / 60;
        for kind in ["login", "send_direct", "send_group"] {
            let row = match minute {
                20..=22 => {
                    let fail = r#","http_status":502,"error_code":"70500","error":"Internal error | retry""#;
                    line("p2", kind, t + Duration::milliseconds(7), "fail", fail)
                        + &line("p1", kind, t, "fail", fail)
                }
                40 if kind == "login" => line(
                    "p1",
                    kind,
                    t,
                    "fail",
                    r#","http_status":503,"error":"<html>Service Unavailable</html>""#,
                ),
                40 if kind == "send_group" => line(
                    "p1",
                    kind,
                    t,
                    "fail",
                    r#","http_status":200,"error_code":"77777","error":"mystery""#,
                ),
                40 => line("p1", kind, t, "fail", r#","error":"timed out after 10s""#),
                50..=59 => line(
                    "p1",
                    kind,
                    t,
                    "inconclusive",
                    r#","http_status":200,"error_code":"70001","error":"sig expired","reason":"credentials""#,
                ),
                _ => line("p1", kind, t, "ok", r#","http_status":200,"latency_ms":80"#),
            };
            out.push_str(&row);
        }
    }
    out
}

/// `config` for a daemon probing the simulator at `sim` every second, with
/// its HTTP surface on a free port and its spool in `dir`.
fn daemon_config(config: &str, dir: &Path, sim: std::net::SocketAddr, db: &TestDb) -> String {
    config
        .replace(
            "id = \"report-test\"",
            &format!(
                "id = \"report-test\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"",
                dir.display()
            ),
        )
        .replace(
            "provider = \"simulator\"\n",
            &format!(
                "provider = \"simulator\"\ninterval = \"1s\"\ntimeout = \"1s\"\n[targets.simulator]\nendpoint = \"http://{sim}\"\n"
            ),
        )
        + &format!("[database]\nurl = \"{}\"\n", db.url)
}

async fn prepare(db: &TestDb, dir: &Path, attempts: &str) {
    std::fs::write(dir.join("improbe.toml"), CONFIG).unwrap();
    std::fs::write(dir.join("attempts.jsonl"), attempts).unwrap();
    ok(improbe(
        dir,
        db,
        &["import", dir.join("attempts.jsonl").to_str().unwrap()],
    ));
    // Exclusion without notice, recorded from the command line.
    ok(improbe(
        dir,
        db,
        &[
            "exclusions",
            "add",
            "--target",
            "tim",
            "--start",
            "2026-03-04T08:00:00Z",
            "--end",
            "2026-03-04T08:10:00Z",
            "--reason",
            "emergency fix",
        ],
    ));
    // The prober was up during the inconclusive stretch.
    let store = db.store().await;
    let beats: Vec<Heartbeat> = (50..60)
        .map(|m| Heartbeat {
            prober: "p1".into(),
            minute: Minute::containing(&(at("2026-03-03T10:00:00Z") + Duration::minutes(m))),
            scheduled: 9,
            started: 9,
            skipped: 0,
            finished: 9,
        })
        .collect();
    store.record_heartbeats(&beats).await.unwrap();
}

fn report_json(db: &TestDb, dir: &Path) -> Value {
    serde_json::from_str(&ok(improbe(
        dir,
        db,
        &[
            "report", "--target", "tim", "--month", "1", "--format", "json",
        ],
    )))
    .unwrap()
}

#[tokio::test]
async fn a_scripted_month_reports_its_incidents_coverage_exclusions_and_digest() {
    let mut digests = Vec::new();
    for db in backends().await {
        let dir = tempfile::tempdir().unwrap();
        prepare(&db, dir.path(), &scripted_attempts()).await;
        let report = report_json(&db, dir.path());
        let b = db.backend;

        assert_eq!(report["figures"]["failure_minutes"], 4, "{b}");
        assert_eq!(report["figures"]["excluded_minutes"], 40, "{b}");
        let incidents = report["incidents"].as_array().unwrap();
        assert_eq!(incidents.len(), 2, "{b}: {incidents:#?}");

        let first = &incidents[0];
        assert_eq!(first["start"], "2026-03-03T10:20:00+00:00");
        assert_eq!(first["end"], "2026-03-03T10:23:00+00:00");
        assert_eq!(first["minutes"], 3);
        assert_eq!(first["probers"], serde_json::json!(["p1", "p2"]));
        // 3 minutes x 3 starts x 2 probers per operation.
        for kind in ["login", "send_direct", "send_group"] {
            assert_eq!(
                first["attempts"][kind],
                serde_json::json!({"ok": 0, "fail": 18, "inconclusive": 0}),
                "{b} {kind}"
            );
        }
        let errors = first["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0]["http_status"], 502);
        assert_eq!(errors[0]["error_code"], "70500");
        assert_eq!(errors[0]["count"], 54);
        assert_eq!(errors[0]["samples"].as_array().unwrap().len(), 3);
        assert_eq!(errors[0]["samples"][0]["error"], "Internal error | retry");
        assert_eq!(
            errors[0]["samples"][0]["started_at"],
            "2026-03-03T10:20:00+00:00"
        );

        let second = &incidents[1];
        assert_eq!(second["start"], "2026-03-03T10:40:00+00:00");
        assert_eq!(second["minutes"], 1);
        let errors = second["errors"].as_array().unwrap();
        let by_status = |status: Value| {
            errors
                .iter()
                .find(|e| e["http_status"] == status)
                .unwrap_or_else(|| panic!("{b}: no {status} in {errors:#?}"))
        };
        assert_eq!(by_status(Value::from(503))["count"], 3);
        assert_eq!(by_status(Value::Null)["count"], 3);
        assert_eq!(by_status(Value::from(200))["error_code"], "77777");
        assert_eq!(by_status(Value::from(200))["unclassified_code"], true);
        assert_eq!(by_status(Value::from(503))["unclassified_code"], false);
        assert_eq!(
            first["errors"][0]["unclassified_code"], false,
            "70500 is listed"
        );
        assert_eq!(
            by_status(Value::from(503))["samples"][0]["error"],
            "<html>Service Unavailable</html>"
        );

        let coverage = &report["coverage"];
        let gaps = coverage["gaps"].as_array().unwrap();
        let inconclusive_gap = gaps
            .iter()
            .find(|g| g["start"] == "2026-03-03T10:50:00+00:00")
            .unwrap_or_else(|| panic!("{b}: no gap at 10:50 in {gaps:#?}"));
        // It runs on to the exclusion at 12:00: nothing was measured after 11:00.
        assert_eq!(inconclusive_gap["end"], "2026-03-03T12:00:00+00:00");
        assert_eq!(inconclusive_gap["minutes"], 70);
        assert_eq!(inconclusive_gap["inconclusive_attempts"], 90);
        assert_eq!(inconclusive_gap["probers"][0]["minutes_alive"], 10);
        assert_eq!(inconclusive_gap["probers"][0]["finished"], 90);
        assert_eq!(
            inconclusive_gap["heartbeat"],
            "a prober was up in 10 of 70 minutes; 90 attempts finished, 90 of them inconclusive (our side, not the provider)"
        );
        // Before 10:00 nobody probed: a gap with no heartbeat at all.
        assert!(
            gaps[0]["heartbeat"]
                .as_str()
                .unwrap()
                .starts_with("no prober heartbeat"),
            "{gaps:#?}"
        );
        assert_eq!(coverage["observed_minutes"], 50);

        let exclusions = report["exclusions"].as_array().unwrap();
        assert_eq!(exclusions.len(), 2);
        assert_eq!(exclusions[0]["prior_notice"], true);
        assert_eq!(exclusions[0]["minutes_in_month"], 30);
        assert_eq!(exclusions[1]["prior_notice"], false);
        assert_eq!(exclusions[1]["reason"], "emergency fix");
        assert_eq!(exclusions[1]["source"], "cli");

        let day = report["days"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["date"] == "2026-03-03")
            .unwrap();
        assert_eq!(day["failure_minutes"], 4);
        assert_eq!(day["available_minutes"], 46);
        assert_eq!(day["excluded_minutes"], 30);

        let digest = &report["digest"];
        assert_eq!(digest["attempts"], 180 * 3 + 9 * 3);
        digests.push(digest["value"].as_str().unwrap().to_owned());

        let markdown = ok(improbe(
            dir.path(),
            &db,
            &["report", "--target", "tim", "--month", "1"],
        ));
        assert!(markdown.contains("## Incidents (2)"), "{markdown}");
        assert!(markdown.contains("**no prior notice**"), "{markdown}");
        assert!(
            markdown
                .contains("**77777 (not in the classification table — check before claiming)**"),
            "{markdown}"
        );
        assert!(
            markdown.contains("Internal error \\| retry"),
            "table cells stay intact: {markdown}"
        );
    }
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "the digest depends on the backend: {digests:?}"
    );
}

#[tokio::test]
async fn the_digest_shows_whether_the_evidence_changed() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let attempts = scripted_attempts();
    prepare(&db, dir.path(), &attempts).await;
    let original = report_json(&db, dir.path())["digest"]["value"].clone();

    // The same attempts imported in another order give the same digest.
    let shuffled = TestDb::sqlite();
    let other = tempfile::tempdir().unwrap();
    let mut lines: Vec<&str> = attempts.lines().collect();
    lines.reverse();
    let mut reversed = lines.join("\n");
    reversed.push('\n');
    prepare(&shuffled, other.path(), &reversed).await;
    assert_eq!(
        report_json(&shuffled, other.path())["digest"]["value"],
        original
    );

    // One altered error message (of a failure: outcome code 1) changes it.
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let changed = sqlx::query("UPDATE attempts SET error = 'edited' WHERE (target_id, started_at_ms, prober_id, kind) = \
        (SELECT target_id, started_at_ms, prober_id, kind FROM attempts WHERE outcome = 1 ORDER BY started_at_ms LIMIT 1)")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    assert_ne!(report_json(&db, dir.path())["digest"]["value"], original);
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.exists())
            })
        })
}

/// Chromium on PATH; its absence fails the test.
fn require_chromium() -> PathBuf {
    let browser = chromium();
    crate::common::require(browser.is_some(), "Chromium (Debian's chromium)");
    browser.unwrap()
}

/// A PNG screenshot's pixels.
struct Shot {
    pixels: Vec<u8>,
    channels: usize,
    width: u32,
    height: u32,
}

impl Shot {
    /// Renders `url` in headless Chromium into `file`.
    fn take(browser: &Path, url: &str, file: &Path, size: &str) -> Shot {
        let out = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
            ])
            .arg(format!("--window-size={size}"))
            .arg(format!("--screenshot={}", file.display()))
            .arg(url)
            .output()
            .unwrap();
        assert!(
            out.status.success() && file.exists(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(file).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        pixels.truncate(frame.buffer_size());
        Shot {
            pixels,
            channels: frame.color_type.samples(),
            width: frame.width,
            height: frame.height,
        }
    }

    /// Pixels of exactly this `#rrggbb` colour.
    fn count(&self, hex: &str) -> usize {
        let rgb: Vec<u8> = (1..7)
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        self.pixels
            .chunks(self.channels)
            .filter(|px| px[..3] == rgb[..])
            .count()
    }

    /// Checks each (name, colour, at least) is drawn and that at most
    /// `white_percent` of the page is white.
    fn assert_drawn(&self, expected: &[(&str, &str, usize)], white_percent: usize) {
        let mut summary = String::new();
        for (name, color, at_least) in expected {
            let n = self.count(color);
            let _ = writeln!(summary, "{name} {color}: {n} px");
            assert!(n >= *at_least, "{name} not drawn:\n{summary}");
        }
        let white = self.count("#ffffff");
        assert!(
            white < self.width as usize * self.height as usize * white_percent / 100,
            "the page is (almost) blank:\n{summary}"
        );
    }
}

#[tokio::test]
async fn the_html_report_renders_in_headless_chromium() {
    let browser = require_chromium();
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    prepare(&db, dir.path(), &scripted_attempts()).await;
    let html = dir.path().join("report.html");
    ok(improbe(
        dir.path(),
        &db,
        &[
            "report",
            "--target",
            "tim",
            "--month",
            "1",
            "--format",
            "html",
            "--output",
            html.to_str().unwrap(),
        ],
    ));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("<script") && !page.contains("src=\"http"),
        "the report must be self-contained"
    );
    assert!(page.contains("&lt;html&gt;Service Unavailable&lt;/html&gt;"));

    // The calendar is drawn: the day with 4 failure minutes, the fully
    // healthy-looking days without data, and the figures' text.
    let shot = Shot::take(
        &browser,
        &format!("file://{}", html.display()),
        &dir.path().join("shot.png"),
        "1200,1400",
    );
    shot.assert_drawn(
        &[
            (
                "failure day",
                improbe::report::html::COLOR_FAILURE_FEW,
                2_000,
            ),
            ("no-data days", improbe::report::html::COLOR_NO_DATA, 20_000),
            (
                "available minutes",
                improbe::report::html::COLOR_AVAILABLE,
                100,
            ),
        ],
        90,
    );
}

/// The same month under a 5-minute error-rate contract: the live page and
/// `/metrics` count the contract's intervals, in its words.
#[tokio::test]
async fn the_live_pages_speak_the_targets_contract() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    prepare(&db, dir.path(), &scripted_attempts()).await;
    let sim = improbe::simulator::Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let config = CONFIG.replace(
        "currency = \"EUR\"\n",
        "currency = \"EUR\"\ncontract = \"five\"\n",
    );
    let text = daemon_config(&config, dir.path(), sim.addr(), &db)
        + "[contracts.five]\nperiod = \"calendar_month\"\ninterval = \"5m\"\ndown_when = \"error_rate\"\n\
           error_rate_above = \"5\"\ncommitment = \"99.9\"\ncredits = []\n";
    let clock = crate::common::ScriptedClock::starting_at(at("2026-03-03T10:45:00Z"));
    let daemon = crate::common::InProcessDaemon::start_with_clock(&text, clock).await;
    let base = format!("http://{}", daemon.addr.unwrap());
    let page = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // 10:20-10:25 (three failing minutes) and 10:40-10:45 (one in five)
    // are down; March has 8,928 intervals, 99.9 % tolerates 8.
    assert!(
        page.contains("2 of 8 tolerated down 5-minute intervals used (25%)"),
        "{page}"
    );
    assert!(
        page.contains("<p>Month 1: 2026-03-01 to 2026-03-31"),
        "{page}"
    );
    assert!(
        page.contains("each minute showing its 5-minute interval"),
        "{page}"
    );
    assert!(!page.contains("Service Month"), "{page}");
    let report = reqwest::get(format!("{base}/report/tim"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        report.contains("Availability evidence: tim, Month 1"),
        "{report}"
    );
    assert!(report.contains("Down 5-minute intervals"), "{report}");
    let series = "improbe_service_month_down_intervals{target=\"tim\",contract=\"five\",interval_minutes=\"5\"} 2";
    let metrics = crate::common::wait::until(std::time::Duration::from_secs(30), || async {
        let metrics = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains(series) {
            Ok(metrics)
        } else {
            Err(format!("{series}: {metrics}"))
        }
    })
    .await;
    assert!(metrics.contains("improbe_service_month_tolerated_down_intervals{target=\"tim\",contract=\"five\",interval_minutes=\"5\"} 8"), "{metrics}");
    assert!(
        metrics.contains("improbe_service_month_failure_minutes{target=\"tim\"} 10"),
        "{metrics}"
    );
    daemon.stop().await;
}

// Chromium runs as a blocking child while the in-process daemon serves
// the page it loads: the daemon needs a thread of its own here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_status_page_shows_the_figures_of_sla_and_renders_in_chromium() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    prepare(&db, dir.path(), &scripted_attempts()).await;
    let sla: Value = serde_json::from_str(&ok(improbe(
        dir.path(),
        &db,
        &["sla", "--month", "1", "--format", "json"],
    )))
    .unwrap();

    // The daemon's clock stands at 10:45, in a minute that already holds
    // successes, so its own (healthy) attempts change no figure, and the
    // last hour holds both incidents.
    let sim = improbe::simulator::Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let text = daemon_config(CONFIG, dir.path(), sim.addr(), &db);
    let clock = crate::common::ScriptedClock::starting_at(at("2026-03-03T10:45:00Z"));
    let daemon = crate::common::InProcessDaemon::start_with_clock(&text, clock).await;
    let base = format!("http://{}", daemon.addr.unwrap());
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(page.headers()[name], value);
    }
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    let page = page.text().await.unwrap();
    let availability = sla[0]["availability_percent"].as_str().unwrap();
    assert!(page.contains(&format!("{availability}%")), "{page}");
    // March has 44,640 minutes: the budget is 446 of them.
    assert!(
        page.contains("4 of 446 tolerated failure minutes used (0%)"),
        "{page}"
    );
    assert!(page.contains("0% = 0.00 EUR"), "{page}");
    assert!(page.contains("<td>none</td>"), "no open incident: {page}");
    assert!(page.contains("href=\"/report/tim\""));
    assert!(
        page.contains("coverage "),
        "coverage beside availability: {page}"
    );
    assert!(
        page.contains("low coverage"),
        "two measured hours of a month: {page}"
    );
    assert!(!page.contains("<script") && !page.contains("src=\"http"));
    let report = reqwest::get(format!("{base}/report/tim")).await.unwrap();
    assert_eq!(report.status(), 200);
    assert!(
        report
            .text()
            .await
            .unwrap()
            .contains("Availability evidence: tim, Service Month 1")
    );
    assert_eq!(
        reqwest::get(format!("{base}/report/nope"))
            .await
            .unwrap()
            .status(),
        404
    );

    let browser = require_chromium();
    // Kept where the README's screenshot is refreshed from.
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let shot = Shot::take(&browser, &format!("{base}/"), &file, "900,1300");
    // The page is mostly white by design; the day, the incidents' minutes
    // and the good minutes of the last hour must be drawn.
    shot.assert_drawn(
        &[
            (
                "failure day",
                improbe::report::html::COLOR_FAILURE_FEW,
                2_000,
            ),
            (
                "last hour's failures",
                improbe::report::html::COLOR_FAILURE_SOME,
                4 * 150,
            ),
            (
                "last hour's good minutes",
                improbe::report::html::COLOR_AVAILABLE,
                30 * 150,
            ),
        ],
        97,
    );
    daemon.stop().await;
}

/// What a time in milliseconds reads back as from a delivery or latency histogram.
fn read_back(ms: i64) -> i64 {
    use improbe::attempt::rollup::{bucket_of, bucket_value};
    bucket_value(bucket_of(ms))
}

/// Sends with delivery checked: every 20 s on 2026-03-05 from 10:00 for an
/// hour, delivered after 100 + (second / 20) ms; at 10:30 the group sends are
/// accepted but never delivered, and at 10:45 a failure minute whose sends
/// were still delivered late.
fn delivery_attempts() -> String {
    let mut out = String::new();
    let start = at("2026-03-05T10:00:00Z");
    for second in (0..3600).step_by(20) {
        let t = start + Duration::seconds(second);
        let minute = second / 60;
        for kind in ["send_direct", "send_group"] {
            let delivered = format!(
                r#","latency_ms":50,"delivery":"confirmed","delivered_ms":{}"#,
                100 + second / 20
            );
            let row = match minute {
                30 if kind == "send_group" => line(
                    "p1",
                    kind,
                    t,
                    "ok",
                    r#","latency_ms":50,"delivery":"missing""#,
                ),
                45 => line(
                    "p1",
                    kind,
                    t,
                    "fail",
                    r#","latency_ms":50,"delivery":"confirmed","delivered_ms":5000,"error":"slow""#,
                ),
                _ => line("p1", kind, t, "ok", &delivered),
            };
            out.push_str(&row);
        }
    }
    out
}

async fn delivery_is_reported_per_day_per_incident_and_sends_never_delivered_are_listed(
    db: TestDb,
) {
    let dir = tempfile::tempdir().unwrap();
    prepare(&db, dir.path(), &delivery_attempts()).await;
    let report = report_json(&db, dir.path());
    let day = report["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == "2026-03-05")
        .unwrap();
    // 180 slots × 2 sends: 3 group sends missing, 6 sends at 10:45 late.
    assert_eq!(day["delivery"]["confirmed"], 357, "{}", db.backend);
    assert_eq!(day["delivery"]["missing"], 3);
    // Delivery times are read from the histogram folding keeps.
    let late = read_back(5000);
    assert_eq!(day["delivery"]["max_ms"], late);
    let p50 = day["delivery"]["p50_ms"].as_i64().unwrap();
    assert!((180..=195).contains(&p50), "p50 {p50}");
    let incident = report["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["start"].as_str().unwrap().starts_with("2026-03-05T10:45"))
        .unwrap();
    assert_eq!(incident["delivery"]["confirmed"], 6);
    assert_eq!(incident["delivery"]["p50_ms"], late);
    assert_eq!(report["undelivered_total"], 3);
    let listed = report["undelivered"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|s| {
        s["kind"] == "send_group"
            && s["started_at"]
                .as_str()
                .unwrap()
                .starts_with("2026-03-05T10:30")
    }));

    let markdown = ok(improbe(
        dir.path(),
        &db,
        &["report", "--target", "tim", "--month", "1"],
    ));
    assert!(
        markdown.contains("## Accepted but not delivered (3)"),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!(
            "Delivery to the recipient: 6 confirmed (p50 {late} ms, p95 {late} ms, max {late} ms)"
        )),
        "{markdown}"
    );
    assert!(markdown.contains("357 confirmed (p50"), "{markdown}");
}

/// One login a minute through Service Month 1 (March 2026, 44,640 minutes):
/// failing from 2026-03-10 00:00 UTC for 300 minutes, then one good minute,
/// then failing for 200 more: 500 failure minutes, a 10% credit.
fn a_month_with_a_credit() -> String {
    let start = at("2026-03-01T00:00:00Z");
    let outage = at("2026-03-10T00:00:00Z");
    let mut out = String::new();
    for m in 0..44_640 {
        let t = start + Duration::minutes(m);
        let into = (t - outage).num_minutes();
        let failing = (0..300).contains(&into) || (301..501).contains(&into);
        out.push_str(&if failing {
            line(
                "p1",
                "login",
                t,
                "fail",
                r#","http_status":502,"error_code":"70500""#,
            )
        } else {
            line("p1", "login", t, "ok", "")
        });
    }
    out
}

async fn the_claim_states_the_clauses_figures_incidents_exclusions_and_digest(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    prepare(&db, dir.path(), &a_month_with_a_credit()).await;
    let sla: Value = serde_json::from_str(&ok(improbe(
        dir.path(),
        &db,
        &["sla", "--month", "1", "--format", "json"],
    )))
    .unwrap();
    let claim: Value = serde_json::from_str(&ok(improbe(
        dir.path(),
        &db,
        &[
            "claim", "--target", "tim", "--month", "1", "--format", "json",
        ],
    )))
    .unwrap();
    let b = db.backend;
    assert_eq!(claim["failure_minutes"], 500, "{b}");
    assert_eq!(claim["credit_percent"], 10, "{b}");
    assert_eq!(claim["credit_amount"], "50.00");
    for field in [
        "availability_percent",
        "claim_opens",
        "claim_deadline",
        "total_minutes",
        "excluded_minutes",
    ] {
        assert_eq!(claim[field], sla[0][field], "{b} {field}");
    }
    let incidents = claim["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 2);
    assert_eq!(incidents[0]["start"], "2026-03-10T00:00:00+00:00");
    assert_eq!(incidents[0]["minutes"], 300);
    assert_eq!(incidents[1]["start"], "2026-03-10T05:01:00+00:00");
    assert_eq!(incidents[1]["minutes"], 200);
    assert_eq!(claim["exclusions"].as_array().unwrap().len(), 2);
    assert_eq!(claim["cautions"], serde_json::json!([]), "{b}");
    let digest = report_json(&db, dir.path())["digest"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(claim["digest"].as_str().unwrap().contains(&digest));

    let text = ok(improbe(
        dir.path(),
        &db,
        &["claim", "--target", "tim", "--month", "1"],
    ));
    assert!(
        text.contains("credit of **10% of the month's fee: 50.00 EUR** (clause 5)"),
        "{text}"
    );
    assert!(
        text.contains("| 1 | 2026-03-10T00:00:00+00:00 | 2026-03-10T05:00:00+00:00 | 300 |"),
        "{text}"
    );
    assert!(text.contains("| emergency fix |"), "{text}");
    assert!(text.contains(&digest), "{text}");

    // Without --month: the latest Service Month that has ended, here an
    // unmeasured one, whose claim says so.
    let latest: Value = serde_json::from_str(&ok(improbe(
        dir.path(),
        &db,
        &["claim", "--target", "tim", "--format", "json"],
    )))
    .unwrap();
    assert!(latest["month"].as_u64().unwrap() > 1);
    assert_eq!(latest["credit_percent"], 0);
    assert!(
        latest["cautions"][0]
            .as_str()
            .unwrap()
            .starts_with("Low coverage"),
        "{latest}"
    );
}

/// Twenty failing minutes on 2026-03-05 whose provider answered 2 MB of
/// hostile text, and one attempt dated 9999-12-31.
fn hostile_attempts(error: &str) -> String {
    let start = at("2026-03-05T00:00:00Z");
    let fail = format!(
        r#","http_status":502,"error_code":"70500","error":{}"#,
        serde_json::to_string(error).unwrap()
    );
    let mut out: String = (0..20)
        .map(|m| line("p1", "login", start + Duration::minutes(m), "fail", &fail))
        .collect();
    out.push_str(&line("p1", "login", at("9999-12-31T23:59:00Z"), "ok", ""));
    out
}

/// Provider text reaches every output bounded and as text: stored cut at
/// its documented bound, quoted per sample, escaped for Markdown, HTML and
/// the terminal; and a date far in the future writes no month rows up to it.
async fn hostile_provider_text_is_bounded_and_shown_as_text(db: TestDb) {
    let hostile = format!(
        "[x](javascript:alert(1)) ![i](http://evil.example/i.png) *bold* \u{1b}]0;pwned\u{7}\u{1b}[2J\rforged <script>alert(1)</script> {}",
        "A".repeat(2 << 20)
    );
    let b = db.backend;
    let dir = tempfile::tempdir().unwrap();
    prepare(&db, dir.path(), &hostile_attempts(&hostile)).await;
    let store = db.store().await;
    let stored = crate::common::all_attempts(store.as_ref(), "tim").await;
    let errors: Vec<&str> = stored.iter().filter_map(|a| a.error.as_deref()).collect();
    assert_eq!(errors.len(), 20, "{b}");
    for error in errors {
        assert!(error.len() <= improbe::attempt::MAX_ERROR_BYTES, "{b}");
        assert!(error.ends_with(improbe::attempt::CUT_MARK), "{b}");
    }

    let month = |format: &str, command: &str| {
        let out = improbe(
            dir.path(),
            &db,
            &[
                command, "--target", "tim", "--month", "1", "--format", format,
            ],
        );
        ok(out)
    };
    let markdown = month("markdown", "report");
    let html = month("html", "report");
    let json = month("json", "report");
    let claim = month("markdown", "claim");
    for (name, text) in [
        ("markdown", &markdown),
        ("html", &html),
        ("json", &json),
        ("claim", &claim),
    ] {
        assert!(text.len() < 256 * 1024, "{b} {name}: {} bytes", text.len());
        assert!(
            !text.contains('\u{1b}') && !text.contains('\r'),
            "{b} {name} carries terminal controls"
        );
    }
    assert!(markdown.contains(r"\[x\](javascript:alert(1))"), "{b}");
    assert!(
        !markdown.contains("x](javascript") && !markdown.contains("![i]"),
        "{b}"
    );
    assert!(!markdown.contains("*bold*"), "{b}");
    assert!(!html.contains("<script>alert"), "{b}");
    assert!(html.contains("&lt;script&gt;"), "{b}");

    // The attempt dated 9999 is kept, but months stop one after today's.
    let sql = "SELECT CAST(MAX(month) AS BIGINT) FROM service_months WHERE target = 'tim'";
    let last: i64 = match db.backend {
        "sqlite" => {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
        _ => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
    };
    let today = Utc::now();
    let current = (today.year() - 2026) * 12 + today.month0() as i32 - 1;
    assert!(last <= i64::from(current) + 1, "{b}: month {last} written");
    assert!(stored.iter().any(|a| a.started_at.year() == 9999), "{b}");
}

crate::on_both_backends!(
    flavor = "current_thread";
    delivery_is_reported_per_day_per_incident_and_sends_never_delivered_are_listed,
    the_claim_states_the_clauses_figures_incidents_exclusions_and_digest,
    hostile_provider_text_is_bounded_and_shown_as_text,
);
