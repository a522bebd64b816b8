//! Attempt metrics and the Prometheus text exposition.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use tokio::time::Instant;

use crate::attempt::{Attempt, InconclusiveReason, Outcome};
use crate::sync::Locked;

/// Upper bounds (seconds) of the attempt-latency histogram.
pub const LATENCY_BUCKETS_SECONDS: [f64; 10] =
    [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Distinct unclassified error codes a target shows as labels.
pub const MAX_CODE_LABELS_PER_TARGET: usize = 20;
/// The label the codes beyond [`MAX_CODE_LABELS_PER_TARGET`] share.
pub const OTHER_CODES: &str = "other";

/// A cumulative histogram as Prometheus exposes it.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Per bucket of the bounds it was made with, plus the overflow.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
        }
        let slot = bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(bounds.len());
        self.counts[slot] += 1;
        self.sum += value;
    }

    /// Builds a histogram from per-bucket counts and a sum.
    pub fn from_counts(counts: Vec<u64>, sum: f64) -> Self {
        Self { counts, sum }
    }
}

#[derive(Debug, Default)]
struct Inner {
    attempts: BTreeMap<(String, String, String), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    inconclusive: BTreeMap<(String, String), u64>,
    unclassified: BTreeMap<(String, String), u64>,
    last_credentials_failure: BTreeMap<String, Instant>,
}

/// Counts of attempts by target, kind and outcome, kept by the scheduler.
#[derive(Debug, Default)]
pub struct AttemptMetrics {
    inner: Mutex<Inner>,
}

impl AttemptMetrics {
    pub fn record(&self, attempt: &Attempt) {
        let mut inner = self.inner.locked();
        let key = (attempt.target.clone(), attempt.kind.as_str().to_owned());
        *inner
            .attempts
            .entry((
                key.0.clone(),
                key.1.clone(),
                attempt.outcome.as_str().to_owned(),
            ))
            .or_default() += 1;
        let seconds = attempt.latency_ms.unwrap_or_default() as f64 / 1000.0;
        inner
            .latency
            .entry(key)
            .or_default()
            .observe(&LATENCY_BUCKETS_SECONDS, seconds);
        if attempt.outcome == Outcome::Inconclusive {
            if attempt.reason == Some(InconclusiveReason::Credentials) {
                inner
                    .last_credentials_failure
                    .insert(attempt.target.clone(), Instant::now());
            }
            *inner
                .inconclusive
                .entry((
                    attempt.target.clone(),
                    attempt
                        .reason
                        .map_or("", InconclusiveReason::as_str)
                        .to_owned(),
                ))
                .or_default() += 1;
        }
    }

    /// A failed attempt's error code is missing from its provider's
    /// classification table: it counts, and someone must check it.
    ///
    /// A target keeps at most [`MAX_CODE_LABELS_PER_TARGET`] distinct codes
    /// as labels; later ones count under `other`, so a provider inventing
    /// codes cannot grow the exposition without bound.
    pub fn record_unclassified_code(&self, target: &str, code: &str) {
        let mut inner = self.inner.locked();
        let key = (target.to_owned(), code.to_owned());
        let key = if inner.unclassified.contains_key(&key)
            || inner
                .unclassified
                .range((target.to_owned(), String::new())..)
                .take_while(|((t, _), _)| t == target)
                .count()
                < MAX_CODE_LABELS_PER_TARGET
        {
            key
        } else {
            (target.to_owned(), OTHER_CODES.to_owned())
        };
        *inner.unclassified.entry(key).or_default() += 1;
    }

    /// Targets whose credentials were rejected within `window`.
    pub fn credentials_failing(&self, window: std::time::Duration) -> Vec<String> {
        let inner = self.inner.locked();
        inner
            .last_credentials_failure
            .iter()
            .filter(|(_, at)| at.elapsed() < window)
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Writes the attempt metrics in the text exposition format.
    pub fn render(&self, out: &mut Exposition) {
        let inner = self.inner.locked();
        out.family(
            "improbe_attempts_total",
            "counter",
            "Probe attempts by target, operation and outcome.",
        );
        for ((target, kind, outcome), n) in &inner.attempts {
            out.sample(
                "improbe_attempts_total",
                &[("target", target), ("kind", kind), ("outcome", outcome)],
                *n as f64,
            );
        }
        out.family(
            "improbe_attempt_duration_seconds",
            "histogram",
            "Attempt latency, measured on a monotonic clock.",
        );
        for ((target, kind), h) in &inner.latency {
            out.histogram(
                "improbe_attempt_duration_seconds",
                &[("target", target), ("kind", kind)],
                &LATENCY_BUCKETS_SECONDS,
                h,
            );
        }
        out.family(
            "improbe_inconclusive_attempts_total",
            "counter",
            "Attempts whose fault is on our side, by reason; they hide real outages.",
        );
        for ((target, reason), n) in &inner.inconclusive {
            out.sample(
                "improbe_inconclusive_attempts_total",
                &[("target", target), ("reason", reason)],
                *n as f64,
            );
        }
        out.family(
            "improbe_unclassified_error_codes_total",
            "counter",
            "Failed attempts whose provider error code is not in the classification table; check them before claiming.",
        );
        for ((target, code), n) in &inner.unclassified {
            out.sample(
                "improbe_unclassified_error_codes_total",
                &[("target", target), ("code", code)],
                *n as f64,
            );
        }
        out.family(
            "improbe_provider_calls_total",
            "counter",
            "Calls made besides the attempts (history reads that confirm delivery), by target, call and result.",
        );
        for ((target, call, result), n) in crate::probe::calls::snapshot() {
            out.sample(
                "improbe_provider_calls_total",
                &[("target", &target), ("call", call), ("result", result)],
                n as f64,
            );
        }
    }
}

/// A Prometheus text-format document being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            let rendered: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.text, "{{{}}}", rendered.join(","));
        }
        let _ = writeln!(self.text, " {value}");
    }

    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        h: &Histogram,
    ) {
        let mut cumulative = 0;
        for (i, bound) in bounds
            .iter()
            .map(|b| b.to_string())
            .chain(["+Inf".to_owned()])
            .enumerate()
        {
            cumulative += h.counts.get(i).copied().unwrap_or_default();
            let mut with_le = labels.to_vec();
            with_le.push(("le", &bound));
            self.sample(&format!("{name}_bucket"), &with_le, cumulative as f64);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, cumulative as f64);
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// A label value as the text exposition format writes it: backslash, quote
/// and line feed escaped, and every other control character (which the
/// format has no escape for, and which some parsers split lines on)
/// replaced.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c if c.is_control() => escaped.push(char::REPLACEMENT_CHARACTER),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_cannot_break_a_line() {
        let mut out = Exposition::default();
        out.sample("m", &[("code", "a\r\nm{x=\"1\"} 9\\")], 1.0);
        let text = out.finish();
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert_eq!(text, "m{code=\"a\u{fffd}\\nm{x=\\\"1\\\"} 9\\\\\"} 1\n");
    }

    #[test]
    fn invented_error_codes_share_one_label_past_the_cap() {
        let metrics = AttemptMetrics::default();
        for code in 0..1_000 {
            metrics.record_unclassified_code("t", &code.to_string());
        }
        metrics.record_unclassified_code("t", "0");
        metrics.record_unclassified_code("u", "x");
        let mut out = Exposition::default();
        metrics.render(&mut out);
        let text = out.finish();
        let t_samples = text
            .lines()
            .filter(|l| l.starts_with("improbe_unclassified_error_codes_total{target=\"t\""))
            .count();
        assert_eq!(t_samples, MAX_CODE_LABELS_PER_TARGET + 1);
        assert!(
            text.contains(
                "improbe_unclassified_error_codes_total{target=\"t\",code=\"other\"} 980"
            ),
            "{text}"
        );
        assert!(text.contains("improbe_unclassified_error_codes_total{target=\"t\",code=\"0\"} 2"));
        assert!(text.contains("improbe_unclassified_error_codes_total{target=\"u\",code=\"x\"} 1"));
    }
}
