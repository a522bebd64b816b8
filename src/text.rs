//! Text from outside (provider answers, imported lines) made safe for where
//! it is shown: a terminal, a log line. Markdown, HTML, Slack and the
//! Prometheus exposition escape in their own renderers.

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::Duration;

/// Text for a terminal: every control character except newline and tab
/// replaced, so provider text cannot move the cursor, recolour or retitle
/// the terminal (ESC sequences) or rewrite a line (CR).
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_on_terminal) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if is_unsafe_on_terminal(c) {
                    char::REPLACEMENT_CHARACTER
                } else {
                    c
                }
            })
            .collect(),
    )
}

fn is_unsafe_on_terminal(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// A log writer that keeps one event on one line: a CR or LF inside an
/// event (from provider text in a field) is written as `\r` or `\n`, so no
/// text can forge a log line. The formatter hands each event over in one
/// write ending in its own newline, which is kept.
pub struct OneLinePerEvent<W>(pub W);

impl<W: Write> Write for OneLinePerEvent<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        if !body.iter().any(|b| *b == b'\n' || *b == b'\r') {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut line = Vec::with_capacity(buf.len() + 8);
        for byte in body {
            match byte {
                b'\n' => line.extend_from_slice(b"\\n"),
                b'\r' => line.extend_from_slice(b"\\r"),
                other => line.push(*other),
            }
        }
        line.extend_from_slice(end);
        self.0.write_all(&line)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Parses `"500ms"`, `"5s"`, `"2m"`, `"1h"`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

/// Formats a duration the way the config spells it.
pub fn humanize(d: Duration) -> String {
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

/// Whether a host name or address stays on this machine: where a config may
/// allow a connection without TLS.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_do_not_reach_the_terminal() {
        let hostile = "ok\u{1b}]0;pwned\u{7}\u{1b}[2J\rFAKE\nnext\tcol";
        let shown = for_terminal(hostile);
        assert!(!shown.contains('\u{1b}') && !shown.contains('\r') && !shown.contains('\u{7}'));
        assert!(shown.contains("\nnext\tcol"));
        assert!(matches!(for_terminal("plain\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_field_with_newlines_stays_on_its_event_line() {
        let mut out = OneLinePerEvent(Vec::new());
        out.write_all(b"ERROR error=\"x\nINFO forged\r\"\n")
            .unwrap();
        out.write_all(b"INFO plain\n").unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            "ERROR error=\"x\\nINFO forged\\r\"\nINFO plain\n"
        );
    }
}
