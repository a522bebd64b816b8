//! The config parser against good and bad files.

use super::*;

const MINIMAL: &str = r#"
[[targets]]
name = "t"
provider = "simulator"
[targets.sla]
service_start = "2026-03-17"
timezone = "Asia/Shanghai"
monthly_fee = "10"
"#;

fn problems(text: &str) -> Vec<String> {
    match Config::parse(text, "test.toml") {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(other) => vec![other.to_string()],
    }
}

#[test]
fn defaults_fill_what_is_left_out() {
    let config = Config::parse(MINIMAL, "test.toml").unwrap();
    let target = &config.targets[0];
    assert_eq!(target.interval, DEFAULT_INTERVAL);
    // The default timeout never exceeds the interval.
    assert_eq!(target.timeout, DEFAULT_INTERVAL.min(DEFAULT_TIMEOUT));
    assert_eq!(target.operations, Kind::ALL.to_vec());
    assert_eq!(target.sla.currency, "USD");
    assert_eq!(config.database.url, DEFAULT_DATABASE_URL);
    assert_eq!(
        config.database.attempts_retention_days,
        DEFAULT_RETENTION_DAYS
    );
    assert!(!config.prober.id.is_empty());
}

#[test]
fn each_problem_names_its_path_and_line() {
    let cases = [
        (
            MINIMAL.replace(
                "provider = \"simulator\"",
                "provider = \"simulator\"\ncolour = \"red\"",
            ),
            "line 5: targets[0].colour: unknown field `colour`",
        ),
        (
            MINIMAL.replace("\"10\"", "\"ten\""),
            "line 8: targets[0].sla.monthly_fee: `ten` is not a decimal amount",
        ),
        (
            MINIMAL.replace(
                "provider = \"simulator\"",
                "provider = \"simulator\"\ntimeout = \"60s\"\ninterval = \"90s\"",
            ),
            "line 5: targets[0].timeout: must be above zero and below 60s",
        ),
        (
            MINIMAL.replace(
                "provider = \"simulator\"",
                "provider = \"simulator\"\ninterval = \"5 seconds\"",
            ),
            "line 5: targets[0].interval: `5 seconds` is not a duration",
        ),
        (
            MINIMAL.replace("provider = \"simulator\"", "provider = \"icq\""),
            "line 4: targets[0].provider: unknown variant `icq`",
        ),
        (
            format!("[database]\nattempts_retention_days = 90\n{MINIMAL}"),
            "line 2: database.attempts_retention_days: 90 days is too short",
        ),
        (
            format!("[prober]\nstart_burst = 0\n{MINIMAL}"),
            "line 2: prober.start_burst: 0 is not a number of starts from 1 to 1000",
        ),
        (
            format!("[database]\npooler = \"transaction\"\n{MINIMAL}"),
            "line 2: database.pooler: a connection pooler stands in front of PostgreSQL only",
        ),
        (
            format!("[database]\nattempts_retention_days = 4294967295\n{MINIMAL}"),
            "line 2: database.attempts_retention_days: 4294967295 days is more than improbe can count back",
        ),
        (
            MINIMAL.replace(
                "provider = \"simulator\"",
                "provider = \"simulator\"\noperations = [\"login\", \"login\"]",
            ),
            "line 5: targets[0].operations: lists an operation twice",
        ),
        (format!("{MINIMAL}\n[targets.sla]\n"), "duplicate key"),
        (
            "[[targets]]\nname = \"t\"".to_owned(),
            "targets[0]: missing field `provider`",
        ),
        (String::new(), "targets: no [[targets]] configured"),
        (
            MINIMAL.replace("provider = \"simulator\"", "provider = \"tencent\""),
            "line 4: targets[0].tencent: provider = \"tencent\" needs a [targets.tencent] section",
        ),
        (
            format!(
                "{MINIMAL}[targets.matrix]\nhomeserver = \"https://m\"\nuser = \"@a:m\"\npassword = {{ env = \"P\" }}\ndirect_room = \"!d\"\ngroup_room = \"!g\"\n"
            ),
            "line 9: targets[0].matrix: [targets.matrix] is only for provider = \"matrix\"",
        ),
        (
            MINIMAL.replace("provider = \"simulator\"", "provider = \"tencent\"")
                + &format!(
                    "[targets.tencent]\nendpoint = \"adminapisgp.im.qcloud.com\"\nsdk_app_id = 1\nadmin = \"{}\"\nsecret_key = {{ env = \"K\" }}\nsender = \"s\"\nrecipient = \"r\"\ngroup = \"g\"\n",
                    "a".repeat(70_000)
                ),
            "line 9: targets[0].tencent.admin: must be a Tencent UserID of 1 to 32 bytes",
        ),
        (
            MINIMAL.replace("provider = \"simulator\"", "provider = \"tencent\"")
                + "[targets.tencent]\nendpoint = \"adminapisgp.im.qcloud.com\"\nsdk_app_id = 1\nadmin = \"a\"\nsecret_key = { env = \"K\" }\nsender = \"s\"\nrecipient = \"r\"\ngroup = \"g\"\n",
            "line 9: targets[0].tencent.endpoint: must be an http:// or https:// URL",
        ),
        (
            MINIMAL.replace(
                "provider = \"simulator\"",
                "provider = \"simulator\"\ninterval = \"10s\"\nlogin_interval = \"5s\"",
            ),
            "line 6: targets[0].login_interval: must be at least interval (10s) and at most 1d",
        ),
        (
            MINIMAL.replace(
                "provider = \"simulator\"",
                "provider = \"simulator\"\ndelivery = \"require\"\n[targets.simulator]\nendpoint = \"http://127.0.0.1:9480\"\nconfirm_delivery = false",
            ),
            "targets[0].delivery: \"require\" needs a provider that confirms delivery",
        ),
        (
            MINIMAL.replace("provider = \"simulator\"", "provider = \"matrix\"")
                + "[targets.matrix]\nhomeserver = \"https://m\"\nuser = \"@a:m\"\npassword = { env = \"P\" }\nrecipient = \"@b:m\"\n",
            "targets[0].matrix.recipient_password: is needed with recipient",
        ),
        (
            MINIMAL.replace("provider = \"simulator\"", "provider = \"xmpp\"")
                + "[targets.xmpp]\njid = \"improbe@example.org\"\npassword = { env = \"P\" }\ntls = \"none\"\n",
            "targets[0].xmpp.tls: \"none\" sends the password in clear text",
        ),
        (
            MINIMAL.replace("provider = \"simulator\"", "provider = \"xmpp\"")
                + "[targets.xmpp]\njid = \"improbe\"\npassword = { env = \"P\" }\n",
            "targets[0].xmpp.jid: must be a bare JID like improbe@example.org",
        ),
        (
            MINIMAL.replace("provider = \"simulator\"", "provider = \"xmpp\"")
                + "[targets.xmpp]\njid = \"a@example.org\"\npassword = { env = \"P\" }\nrecipient = \"b@example.org\"\n",
            "targets[0].xmpp.recipient_password: is needed with recipient",
        ),
        (
            MINIMAL.replace("provider = \"simulator\"", "provider = \"xmpp\"")
                + "[targets.xmpp]\njid = \"a@example.org\"\npassword = { env = \"P\" }\nserver = \"xmpp.example.org:port\"\n",
            "targets[0].xmpp.server: must be HOST or HOST:PORT",
        ),
        // Type errors found while reading the document, named by the path of
        // the key or value they point at: the second of two targets, a
        // nested table, an inline table, an array element.
        (
            format!(
                "{MINIMAL}{}",
                MINIMAL.replace(
                    "monthly_fee = \"10\"",
                    "monthly_fee = \"10\"\nholidays = [\"2026-05-01\", 5]"
                )
            ),
            "line 17: targets[1].sla.holidays[1]: invalid type: integer `5`",
        ),
        (
            MINIMAL.replace(
                "provider = \"simulator\"",
                "provider = \"simulator\"\nsimulator = { endpoint = 7 }",
            ),
            "line 5: targets[0].simulator.endpoint: invalid type: integer `7`",
        ),
        (
            MINIMAL.replace(
                "provider = \"simulator\"",
                "provider = \"simulator\"\noperations = [\"login\", 3]",
            ),
            "line 5: targets[0].operations[1]: wanted string or table",
        ),
        (
            format!(
                "{MINIMAL}{}",
                MINIMAL.replace("provider = \"simulator\"\n", "")
            ),
            "targets[1]: missing field `provider`",
        ),
    ];
    for (text, expected) in cases {
        let found = problems(&text);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "expected `{expected}` in {found:?}"
        );
    }
}

#[test]
fn a_matrix_target_takes_its_login_interval_and_delivery_mode() {
    let text = MINIMAL.replace(
        "provider = \"simulator\"",
        "provider = \"matrix\"\ninterval = \"10s\"\ntimeout = \"5s\"\nlogin_interval = \"6m\"\ndelivery = \"require\"",
    ) + "[targets.matrix]\nhomeserver = \"https://m\"\nuser = \"@a:m\"\npassword = { env = \"P\" }\n\
         recipient = \"@b:m\"\nrecipient_password = { env = \"Q\" }\ndirect_room = \"!d:m\"\ngroup_room = \"!g:m\"\n";
    let config = Config::parse(&text, "t").unwrap();
    let target = &config.targets[0];
    assert_eq!(target.login_interval, Some(Duration::from_secs(360)));
    assert_eq!(target.delivery, DeliveryMode::Require);
    // Matrix is probed now: no warning that it is skipped.
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let (plans, _) = crate::daemon::schedule::plan(target);
    let login = plans.iter().find(|p| p.kind == Kind::Login).unwrap();
    let send = plans.iter().find(|p| p.kind == Kind::SendGroup).unwrap();
    assert_eq!(login.interval, Duration::from_secs(360));
    assert_eq!(send.interval, Duration::from_secs(10));
}

#[test]
fn secrets_come_from_env_or_file_and_plain_ones_warn() {
    let tencent = |secret: &str| {
        MINIMAL.replace("provider = \"simulator\"", "provider = \"tencent\"")
            + &format!(
                "[targets.tencent]\nendpoint = \"https://x\"\nsdk_app_id = 1\nadmin = \"a\"\nsecret_key = {secret}\nsender = \"s\"\nrecipient = \"r\"\ngroup = \"g\"\n"
            )
    };
    let env = Config::parse(&tencent("{ env = \"TIM_KEY\" }"), "t").unwrap();
    let ProviderSettings::Tencent(settings) = &env.targets[0].provider else {
        panic!("a tencent target: {:?}", env.targets[0].provider);
    };
    assert_eq!(settings.secret_key, Secret::Env("TIM_KEY".into()));
    assert!(env.warnings.is_empty());
    let plain = Config::parse(&tencent("\"hunter2\""), "t").unwrap();
    assert_eq!(plain.warnings.len(), 1);
    assert!(
        plain.warnings[0]
            .to_string()
            .contains("targets[0].tencent.secret_key")
    );
    assert!(
        !format!("{:?}", plain.targets[0].provider).contains("hunter2"),
        "Debug leaks the secret"
    );
    let both = problems(&tencent("{ env = \"A\", file = \"/b\" }"));
    assert!(
        both.iter().any(|p| p.contains("either env or file")),
        "{both:?}"
    );
}

#[test]
fn a_tencent_timeout_under_its_answer_time_warns_with_its_line() {
    let tencent = |timeout: &str| {
        MINIMAL.replace(
            "provider = \"simulator\"",
            &format!("provider = \"tencent\"\ntimeout = \"{timeout}\""),
        ) + "[targets.tencent]\nendpoint = \"https://x\"\nsdk_app_id = 1\nadmin = \"a\"\nsecret_key = { env = \"K\" }\nsender = \"s\"\nrecipient = \"r\"\ngroup = \"g\"\n"
    };
    let short = Config::parse(&tencent("2500ms"), "t").unwrap();
    let warnings: Vec<String> = short.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("line 5: targets[0].timeout: 2500ms is shorter than the 3s"),
        "{warnings:?}"
    );
    let enough = Config::parse(&tencent("3s"), "t").unwrap();
    assert!(enough.warnings.is_empty(), "{:?}", enough.warnings);
    let simulator = Config::parse(
        &MINIMAL.replace(
            "provider = \"simulator\"",
            "provider = \"simulator\"\ntimeout = \"1s\"",
        ),
        "t",
    )
    .unwrap();
    assert!(
        simulator.warnings.is_empty(),
        "only Tencent's own answer time matters"
    );
}

#[test]
fn durations_parse_in_their_units() {
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
    assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    for bad in ["", "s", "5", "5 s", "-5s", "5d"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn a_bad_notify_entry_names_its_path() {
    let hook = "[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl = { env = \"HOOK\" }\n";
    let cases = [
        (
            format!("{MINIMAL}{hook}colour = \"red\"\n"),
            "line 13: notify[0].colour: unknown field `colour`",
        ),
        (
            format!("{MINIMAL}{}", hook.replace("webhook", "carrier-pigeon")),
            "line 11: notify[0].kind: unknown variant `carrier-pigeon`",
        ),
        (
            format!(
                "{MINIMAL}{}",
                hook.replace("url = { env = \"HOOK\" }\n", "")
            ),
            "line 11: notify[0].url: kind = \"webhook\" needs `url`",
        ),
        (
            format!("{MINIMAL}{hook}routing_key = {{ env = \"K\" }}\n"),
            "line 13: notify[0].routing_key: `routing_key` does not apply to kind = \"webhook\"",
        ),
        (
            format!("{MINIMAL}{hook}events = [\"incident_opened\", \"weather\"]\n"),
            "line 13: notify[0].events[1]: unknown variant `weather`",
        ),
        (
            format!("{MINIMAL}{hook}targets = [\"t\", \"nope\"]\n"),
            "line 13: notify[0].targets[1]: no target named `nope`",
        ),
        (
            format!("{MINIMAL}{hook}{hook}"),
            "line 14: notify[1].name: duplicate channel name `ops`",
        ),
        (
            format!(
                "{MINIMAL}[[notify]]\nname = \"mail\"\nkind = \"email\"\nserver = \"smtp.example.org\"\ntls = \"none\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\n"
            ),
            "line 13: notify[0].tls: \"none\" sends mail and passwords in clear text",
        ),
        (
            format!(
                "{MINIMAL}[[notify]]\nname = \"mail\"\nkind = \"email\"\nserver = \"smtp.example.org:587\"\nfrom = \"a@example.org\"\nto = [\"not an address\"]\n"
            ),
            "notify[0].to[0]: `not an address` is not an email address",
        ),
        (
            format!("{MINIMAL}[[notify]]\nname = \"pd\"\nkind = \"pagerduty\"\n"),
            "line 11: notify[0].routing_key: kind = \"pagerduty\" needs `routing_key`",
        ),
    ];
    for (text, expected) in cases {
        let found = problems(&text);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "expected `{expected}` in {found:?}"
        );
    }
}

#[test]
fn notify_entries_read_with_their_defaults() {
    let text = format!(
        "{MINIMAL}[[notify]]\nname = \"pd\"\nkind = \"pagerduty\"\nrouting_key = {{ env = \"PD_KEY\" }}\nevents = [\"incident_opened\", \"incident_resolved\"]\n\
         [[notify]]\nname = \"mail\"\nkind = \"email\"\nserver = \"smtp.example.org\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\n"
    );
    let config = Config::parse(&text, "t").unwrap();
    let pd = &config.notify[0];
    use crate::notify::channels::PAGERDUTY_EVENTS_URL;
    assert!(
        matches!(&pd.settings, ChannelSettings::Pagerduty { url, .. } if url == PAGERDUTY_EVENTS_URL)
    );
    assert!(pd.wants(EventKind::IncidentOpened, "t"));
    assert!(!pd.wants(EventKind::Budget, "t"));
    assert!(pd.wants(EventKind::Test, "t"), "a test always passes");
    let ChannelSettings::Email(mail) = &config.notify[1].settings else {
        panic!("not email");
    };
    assert_eq!((mail.port, mail.tls), (587, SmtpTls::Starttls));
    assert!(config.notify[1].wants(EventKind::ClaimReminder, "t"));
}
