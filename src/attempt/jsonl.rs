//! The attempt as one JSON Lines record (docs/commands.md "Import format"): what `improbe import`
//! reads, what the spool writes and replays, and what the evidence digest
//! hashes in its canonical form.

use std::collections::HashSet;
use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::attempt::{
    Attempt, Delivery, InconclusiveReason, Kind, MAX_NAME_BYTES, Outcome, to_millis,
};

/// The prober recorded for lines that do not name one.
pub const DEFAULT_IMPORT_PROBER: &str = "import";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportLine {
    target: String,
    #[serde(default)]
    prober: Option<String>,
    kind: Kind,
    started_at: String,
    outcome: Outcome,
    #[serde(default)]
    latency_ms: Option<i64>,
    #[serde(default)]
    http_status: Option<i32>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    reason: Option<InconclusiveReason>,
    #[serde(default)]
    delivery: Option<DeliveryWord>,
    #[serde(default)]
    delivered_ms: Option<i64>,
}

/// `delivery` as the format spells it; `delivered_ms` is a field of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DeliveryWord {
    Confirmed,
    Missing,
}

impl From<Delivery> for DeliveryWord {
    fn from(delivery: Delivery) -> Self {
        match delivery {
            Delivery::Confirmed { .. } => DeliveryWord::Confirmed,
            Delivery::Missing => DeliveryWord::Missing,
        }
    }
}

/// A line that cannot be imported, with its 1-based number.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// The same shape written out: the spool uses it, so a spool file can also
/// be loaded with `improbe import`.
#[derive(Serialize)]
struct ExportLine<'a> {
    target: &'a str,
    prober: &'a str,
    kind: Kind,
    started_at: String,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    // Absent when delivery was not checked, so lines of attempts without it
    // (and the digest over them) are what they were before delivery existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<DeliveryWord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_ms: Option<i64>,
}

/// One attempt as a line of the import format, without the newline.
pub fn to_line(attempt: &Attempt) -> String {
    let line = ExportLine {
        target: &attempt.target,
        prober: &attempt.prober,
        kind: attempt.kind,
        started_at: attempt
            .started_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        outcome: attempt.outcome,
        latency_ms: attempt.latency_ms,
        http_status: attempt.http_status,
        error_code: attempt.error_code.as_deref(),
        error: attempt.error.as_deref(),
        reason: attempt.reason.map(InconclusiveReason::as_str),
        delivery: attempt.delivery.map(DeliveryWord::from),
        delivered_ms: attempt.delivery.and_then(Delivery::delivered_ms),
    };
    serde_json::to_string(&line).expect("an attempt always serialises")
}

/// Parses one line. `targets` are the configured target names.
pub fn parse_line(
    line: usize,
    text: &str,
    targets: &HashSet<String>,
) -> Result<Attempt, LineError> {
    let attempt = parse_record(line, text)?;
    if !targets.contains(&attempt.target) {
        let mut known: Vec<_> = targets.iter().map(String::as_str).collect();
        known.sort_unstable();
        return Err(LineError {
            line,
            message: format!(
                "unknown target `{}`; the config defines: {}",
                attempt.target,
                known.join(", ")
            ),
        });
    }
    Ok(attempt)
}

/// Parses one line whatever target it names (the spool keeps attempts of
/// targets a later config may have dropped).
pub fn parse_record(line: usize, text: &str) -> Result<Attempt, LineError> {
    let fail = |message: String| LineError { line, message };
    let raw: ImportLine = serde_json::from_str(text).map_err(|e| fail(e.to_string()))?;
    let started_at = DateTime::parse_from_rfc3339(&raw.started_at)
        .map_err(|e| {
            fail(format!(
                "started_at `{}` is not an RFC 3339 instant: {e}",
                raw.started_at
            ))
        })?
        .with_timezone(&Utc);
    if raw.latency_ms.is_some_and(|l| l < 0) {
        return Err(fail("latency_ms must not be negative".into()));
    }
    if raw.http_status.is_some_and(|s| !(100..=599).contains(&s)) {
        return Err(fail("http_status must be between 100 and 599".into()));
    }
    if raw.delivered_ms.is_some_and(|d| d < 0) {
        return Err(fail("delivered_ms must not be negative".into()));
    }
    if raw.delivered_ms.is_some() && raw.delivery != Some(DeliveryWord::Confirmed) {
        return Err(fail(
            "delivered_ms is only for delivery = \"confirmed\"".into(),
        ));
    }
    if raw.delivery.is_some() && raw.kind == Kind::Login {
        return Err(fail("delivery is only for sends, not login".into()));
    }
    let prober = raw
        .prober
        .unwrap_or_else(|| DEFAULT_IMPORT_PROBER.to_owned());
    if prober.trim().is_empty() {
        return Err(fail("prober must not be empty".into()));
    }
    if prober.len() > MAX_NAME_BYTES {
        return Err(fail(format!(
            "prober must be at most {MAX_NAME_BYTES} bytes"
        )));
    }
    Ok(Attempt {
        target: raw.target,
        prober,
        kind: raw.kind,
        started_at: to_millis(started_at),
        latency_ms: raw.latency_ms,
        outcome: raw.outcome,
        http_status: raw.http_status,
        error_code: raw.error_code,
        error: raw.error,
        reason: raw.reason,
        delivery: raw.delivery.map(|word| match word {
            DeliveryWord::Confirmed => Delivery::Confirmed {
                after_ms: raw.delivered_ms,
            },
            DeliveryWord::Missing => Delivery::Missing,
        }),
    }
    .with_bounded_text())
}

/// Reads attempts line by line; blank lines are skipped, the first bad line
/// ends the stream with its error.
pub fn read_attempts<'a, R: BufRead + Send + 'a>(
    reader: R,
    targets: &'a HashSet<String>,
) -> impl Iterator<Item = anyhow::Result<Attempt>> + Send + 'a {
    reader.lines().enumerate().filter_map(move |(index, line)| {
        let line_no = index + 1;
        match line {
            Err(e) => Some(Err(anyhow::anyhow!("line {line_no}: cannot read: {e}"))),
            Ok(text) if text.trim().is_empty() => None,
            Ok(text) => Some(parse_line(line_no, &text, targets).map_err(anyhow::Error::from)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> HashSet<String> {
        ["tim-sgp".to_owned()].into()
    }

    #[test]
    fn the_contract_example_parses() {
        let line = r#"{"target":"tim-sgp","prober":"sgp-1","kind":"login","started_at":"2026-03-17T00:00:05Z","latency_ms":812,"outcome":"fail","http_status":502,"error_code":"70500","error":"upstream timeout"}"#;
        let a = parse_line(1, line, &targets()).unwrap();
        assert_eq!(a.kind, Kind::Login);
        assert_eq!(a.outcome, Outcome::Fail);
        assert_eq!(a.started_at.to_rfc3339(), "2026-03-17T00:00:05+00:00");
        assert_eq!(a.http_status, Some(502));
        assert_eq!(a.error_code.as_deref(), Some("70500"));
    }

    #[test]
    fn prober_defaults_to_import_and_offsets_become_utc() {
        let line = r#"{"target":"tim-sgp","kind":"send_group","started_at":"2026-03-17T08:00:05.1234+08:00","outcome":"ok"}"#;
        let a = parse_line(1, line, &targets()).unwrap();
        assert_eq!(a.prober, "import");
        assert_eq!(
            a.started_at_ms(),
            "2026-03-17T00:00:05.123Z"
                .parse::<DateTime<Utc>>()
                .unwrap()
                .timestamp_millis()
        );
    }

    #[test]
    fn delivery_is_for_sends_and_delivered_ms_only_when_confirmed() {
        let base = r#"{"target":"tim-sgp","kind":"send_group","started_at":"2026-03-17T00:00:05Z","outcome":"ok""#;
        let a = parse_line(
            1,
            &format!(r#"{base},"delivery":"confirmed","delivered_ms":120}}"#),
            &targets(),
        )
        .unwrap();
        assert_eq!(
            a.delivery,
            Some(Delivery::Confirmed {
                after_ms: Some(120)
            })
        );
        assert_eq!(parse_line(1, &to_line(&a), &targets()).unwrap(), a);
        for (extra, expected) in [
            (
                r#","delivery":"missing","delivered_ms":5"#,
                "only for delivery = \"confirmed\"",
            ),
            (r#","delivery":"lost""#, "unknown variant `lost`"),
            (
                r#","delivery":"confirmed","delivered_ms":-1"#,
                "must not be negative",
            ),
        ] {
            let error = parse_line(7, &format!("{base}{extra}}}"), &targets()).unwrap_err();
            assert_eq!(error.line, 7);
            assert!(error.message.contains(expected), "{error}");
        }
        let login = r#"{"target":"tim-sgp","kind":"login","started_at":"2026-03-17T00:00:05Z","outcome":"ok","delivery":"missing"}"#;
        assert!(
            parse_line(1, login, &targets())
                .unwrap_err()
                .message
                .contains("only for sends")
        );
    }

    #[test]
    fn written_lines_read_back_as_the_same_attempt() {
        let line = r#"{"target":"tim-sgp","prober":"sgp-1","kind":"send_direct","started_at":"2026-03-17T00:00:05.123Z","latency_ms":812,"outcome":"inconclusive","http_status":200,"error_code":"70001","error":"sig \"expired\"","reason":"credentials"}"#;
        let attempt = parse_line(1, line, &targets()).unwrap();
        let written = to_line(&attempt);
        assert_eq!(parse_line(1, &written, &targets()).unwrap(), attempt);
        assert!(!written.contains('\n'));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let cases = [
            (
                r#"{"target":"tim-sgp","kind":"login","started_at":"2026-03-17T00:00:05Z"}"#,
                "missing field `outcome`",
            ),
            (
                r#"{"target":"other","kind":"login","started_at":"2026-03-17T00:00:05Z","outcome":"ok"}"#,
                "unknown target `other`",
            ),
            (
                r#"{"target":"tim-sgp","kind":"logon","started_at":"2026-03-17T00:00:05Z","outcome":"ok"}"#,
                "unknown variant `logon`",
            ),
            (
                r#"{"target":"tim-sgp","kind":"login","started_at":"yesterday","outcome":"ok"}"#,
                "not an RFC 3339 instant",
            ),
            (
                r#"{"target":"tim-sgp","kind":"login","started_at":"2026-03-17T00:00:05Z","outcome":"ok","latency":5}"#,
                "unknown field `latency`",
            ),
            (
                r#"{"target":"tim-sgp","kind":"login","started_at":"2026-03-17T00:00:05Z","outcome":"ok","http_status":9}"#,
                "http_status",
            ),
            (
                r#"{"target":"tim-sgp","kind":"login","started_at":"2026-03-17T00:00:05Z","outcome":"inconclusive","reason":"upstream timeout"}"#,
                "unknown variant `upstream timeout`, expected one of `credentials`, `request_rejected`",
            ),
            ("not json", "expected"),
        ];
        for (line, expected) in cases {
            let err = parse_line(7, line, &targets()).unwrap_err();
            assert_eq!(err.line, 7);
            assert!(
                err.to_string().contains(expected),
                "{err} should mention {expected}"
            );
        }
    }
}
