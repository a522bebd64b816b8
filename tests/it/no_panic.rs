//! Arbitrary input to the three parsers that read what users and crashes
//! leave behind (the config file, import lines, spool files): a clear error
//! naming the place, or a value, and never a panic.

use std::io::Write as _;

use improbe::attempt::jsonl;
use improbe::config::{Config, ConfigError};
use improbe::daemon::spool::{Spool, SpoolError};
use proptest::prelude::*;

const VALID_CONFIG: &str = r#"[prober]
id = "fuzz"
[database]
url = "sqlite://improbe.db"
[[targets]]
name = "t"
provider = "tencent"
interval = "5s"
timeout = "4s"
operations = ["login", "send_direct"]
[targets.tencent]
endpoint = "https://adminapisgp.im.qcloud.com"
sdk_app_id = 1400000000
admin = "administrator"
secret_key = { env = "TIM_SECRET_KEY" }
sender = "improbe_a"
recipient = "improbe_b"
group = "@TGS#improbe"
[targets.sla]
service_start = "2026-03-17"
timezone = "Asia/Shanghai"
monthly_fee = "1200.00"
holidays = ["2026-05-01"]
[[exclusions]]
target = "t"
start = "2026-04-02T02:00:00+08:00"
end = "2026-04-02T04:00:00+08:00"
reason = "upgrade"
"#;

const VALID_LINE: &str = r#"{"target":"tim-sgp","prober":"sgp-1","kind":"login","started_at":"2026-03-17T00:00:05Z","latency_ms":812,"outcome":"fail","http_status":502,"error_code":"70500","error":"upstream timeout"}"#;

/// Text made by replacing a slice of `base` with arbitrary text: mostly
/// well-formed, wrong in one place, which reaches the validation behind the
/// syntax.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    (0..base.len(), 0usize..40, ".{0,40}").prop_map(move |(at, cut, insert)| {
        let at = (0..=at)
            .rev()
            .find(|i| base.is_char_boundary(*i))
            .unwrap_or(0);
        let end = (at + cut).min(base.len());
        let end = (end..=base.len())
            .find(|i| base.is_char_boundary(*i))
            .unwrap_or(base.len());
        format!("{}{insert}{}", &base[..at], &base[end..])
    })
}

fn check_config(text: &str) -> Result<(), TestCaseError> {
    match Config::parse(text, "fuzz.toml") {
        Ok(_) => {}
        Err(ConfigError::Invalid { problems, .. }) => {
            prop_assert!(!problems.is_empty());
            for problem in problems {
                prop_assert!(
                    !problem.path.is_empty() || problem.line.is_some(),
                    "a problem that names no place: {problem}"
                );
                prop_assert!(!problem.message.is_empty());
            }
        }
        Err(other) => prop_assert!(!other.to_string().is_empty()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_config_text_is_parsed_or_named(text in ".{0,300}") {
        check_config(&text)?;
    }

    #[test]
    fn a_config_wrong_in_one_place_is_named(text in mutated(VALID_CONFIG)) {
        check_config(&text)?;
    }

    #[test]
    fn any_import_line_is_parsed_or_named_by_its_number(
        text in prop_oneof![".{0,200}", mutated(VALID_LINE)],
        line in 1usize..1_000_000,
    ) {
        if let Err(e) = jsonl::parse_record(line, &text) {
            prop_assert_eq!(e.line, line);
            let shown = e.to_string();
            prop_assert!(shown.starts_with(&format!("line {line}: ")), "{}", shown);
        }
    }

    #[test]
    fn any_spool_file_opens_or_names_its_bad_line(
        lines in proptest::collection::vec(prop_oneof![Just(VALID_LINE.to_owned()), mutated(VALID_LINE), ".{0,80}"], 0..6),
        torn in proptest::option::of(".{1,30}"),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("improbe-spool-fuzz.jsonl");
        let mut file = std::fs::File::create(&path).unwrap();
        for line in &lines {
            writeln!(file, "{}", line.replace('\n', " ")).unwrap();
        }
        if let Some(tail) = &torn {
            // A record cut short by a crash: no newline at the end.
            write!(file, "{}", tail.replace('\n', " ")).unwrap();
        }
        drop(file);
        match Spool::open(&path) {
            Ok(spool) => prop_assert!(spool.pending() <= lines.len() as u64),
            Err(SpoolError::Corrupt { line, .. }) => prop_assert!((1..=lines.len()).contains(&line)),
            Err(other) => prop_assert!(false, "not a line error: {other}"),
        }
    }
}

/// A config with extreme values where numbers and names go.
fn extreme_config(fee: &str, retention: u64, name: &str, currency: &str, start: &str) -> String {
    format!(
        "[database]\nattempts_retention_days = {retention}\n[[targets]]\nname = \"{name}\"\nprovider = \"simulator\"\n\
         [targets.sla]\nservice_start = \"{start}\"\ntimezone = \"Asia/Kathmandu\"\nmonthly_fee = \"{fee}\"\ncurrency = \"{currency}\"\n"
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever numbers `check-config` accepts, every figure computed from
    /// them (the worst month's credit, its table and claim window, the
    /// retention cut-off, the months an import of year 9999 touches) comes
    /// out without a panic.
    #[test]
    fn any_accepted_number_computes_without_a_panic(
        fee in prop_oneof![
            "[0-9]{1,29}(\\.[0-9]{1,28})?",
            Just("79228162514264337593543950335".to_owned()),
            Just("1000000000000".to_owned()),
        ],
        retention in prop_oneof![0u64..=u64::from(u32::MAX), Just(u64::from(u32::MAX))],
        name in prop_oneof!["[a-z.]{1,3}", "[a-z_.-]{60,70}", Just("n".repeat(100_000))],
        currency in prop_oneof!["[A-Z]{3}", ".{0,5}"],
        start in prop_oneof![Just("2026-03-31"), Just("1970-01-01"), Just("9999-12-01"), Just("2000-02-29")],
    ) {
        use improbe::sla::{ExcludedMinutes, MonthStatement, ObservedMinutes};
        let text = extreme_config(&fee, retention, &name, &currency.replace(['"', '\\', '\n'], ""), start);
        let Ok(config) = Config::parse(&text, "extreme.toml") else {
            return Ok(());
        };
        prop_assert!(name.len() <= improbe::attempt::MAX_NAME_BYTES && name.chars().any(|c| c != '.'));
        let target = &config.targets[0];
        let now = chrono::Utc::now();
        let far = "9999-12-31T23:59:00Z".parse().unwrap();
        let months = improbe::accounting::months_touched(target, now, far, now);
        prop_assert!(months.len() <= 2);
        if let Some(month) = target.sla.calendar.month(1) {
            let total = month.minutes().len();
            let mut observed = ObservedMinutes::default();
            observed.add(improbe::verdict::Verdict::Failure, total);
            let statement = MonthStatement::compute(
                &target.name, &target.sla, month, observed, &ExcludedMinutes::default(), now,
            );
            prop_assert!(statement.credit_amount <= target.sla.monthly_fee);
            let table = improbe::report::sla_table::table(&[statement], now);
            prop_assert!(table.contains(&target.sla.currency));
        }
        let _ = improbe::daemon::retention::prune_before(target, config.database.attempts_retention_days, now);
    }
}
