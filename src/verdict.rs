//! The one place that turns a minute's attempts into its verdict (docs/sla.md).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The verdict of one target's UTC minute, over the attempts of every prober.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// At least one attempt succeeded: the whole minute is available.
    Available,
    /// An Apparent Failure: at least one failed attempt and none succeeded.
    Failure,
    /// No conclusive attempt: a coverage gap, never a failure.
    NoData,
    /// Inside a declared exclusion window: never a failure, whatever happened.
    Excluded,
}

impl Verdict {
    const ALL: [Verdict; 4] = [
        Verdict::Available,
        Verdict::Failure,
        Verdict::NoData,
        Verdict::Excluded,
    ];

    /// The small integer `verdicts.verdict` stores (migration 0010): 0
    /// available, 1 failure, 2 no_data, 3 excluded.
    pub fn code(self) -> i16 {
        self as i16
    }

    pub fn from_code(code: i16) -> Result<Verdict, String> {
        Verdict::ALL
            .into_iter()
            .find(|verdict| verdict.code() == code)
            .ok_or_else(|| format!("unknown stored verdict code {code}"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Available => "available",
            Verdict::Failure => "failure",
            Verdict::NoData => "no_data",
            Verdict::Excluded => "excluded",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "available" => Ok(Verdict::Available),
            "failure" => Ok(Verdict::Failure),
            "no_data" => Ok(Verdict::NoData),
            "excluded" => Ok(Verdict::Excluded),
            other => Err(format!("unknown verdict `{other}`")),
        }
    }
}

/// How many attempts of each outcome a minute holds, summed over probers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    pub ok: i64,
    pub fail: i64,
    pub inconclusive: i64,
    /// Of `ok`, how many were slower than the target's latency rule
    /// (`slow_after`); 0 for a target without one. Only a contract's
    /// interval verdict reads it (`Contract::interval_verdict`): a minute's
    /// verdict here does not.
    pub slow_ok: i64,
}

/// Decides one minute.
///
/// Exclusion wins over everything: the contract never counts downtime inside
/// an announced window, so an excluded minute cannot become a failure. Then a
/// single success anywhere makes the whole minute available (a minute with a
/// successful login and only failed sends is available). Inconclusive attempts
/// are invisible: they neither rescue nor condemn a minute.
pub fn decide(counts: OutcomeCounts, excluded: bool) -> Verdict {
    if excluded {
        Verdict::Excluded
    } else if counts.ok > 0 {
        Verdict::Available
    } else if counts.fail > 0 {
        Verdict::Failure
    } else {
        Verdict::NoData
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(ok: i64, fail: i64, inconclusive: i64) -> OutcomeCounts {
        OutcomeCounts {
            ok,
            fail,
            inconclusive,
            slow_ok: 0,
        }
    }

    #[test]
    fn worked_examples_from_the_sla() {
        let cases = [
            // login fail, direct send fail, group send ok: available
            (counts(1, 2, 0), false, Verdict::Available),
            // login timeout, both sends fail: failure
            (counts(0, 3, 0), false, Verdict::Failure),
            // only inconclusive attempts: no data
            (counts(0, 0, 4), false, Verdict::NoData),
            // two probers: A saw only failures, B one ok: available
            (counts(1, 5, 0), false, Verdict::Available),
            // nothing at all
            (counts(0, 0, 0), false, Verdict::NoData),
            // failures next to inconclusive attempts still fail the minute
            (counts(0, 1, 9), false, Verdict::Failure),
            // exclusion wins over failures and successes alike
            (counts(0, 3, 0), true, Verdict::Excluded),
            (counts(2, 0, 0), true, Verdict::Excluded),
            (counts(0, 0, 0), true, Verdict::Excluded),
        ];
        for (c, excluded, expected) in cases {
            assert_eq!(decide(c, excluded), expected, "{c:?} excluded={excluded}");
        }
    }

    #[test]
    fn verdict_words_round_trip() {
        for v in [
            Verdict::Available,
            Verdict::Failure,
            Verdict::NoData,
            Verdict::Excluded,
        ] {
            assert_eq!(v.as_str().parse::<Verdict>().unwrap(), v);
        }
    }
}
