//! The digest over a month's attempts, in the documented canonical form,
//! identical whichever backend stored them.

use super::*;

/// Hashes attempts in canonical order. The database orders by start only
/// as far as collations agree, so attempts sharing a millisecond are sorted
/// here, by bytes, before they are hashed.
#[derive(Default)]
pub(super) struct CanonicalDigest {
    hasher: Sha256,
    same_instant: Vec<Attempt>,
}

impl CanonicalDigest {
    pub(super) fn add(&mut self, attempt: Attempt) {
        if self
            .same_instant
            .first()
            .is_some_and(|a| a.started_at != attempt.started_at)
        {
            self.flush();
        }
        self.same_instant.push(attempt);
    }

    fn flush(&mut self) {
        self.same_instant.sort_by(|a, b| {
            (a.prober.as_bytes(), a.kind.as_str()).cmp(&(b.prober.as_bytes(), b.kind.as_str()))
        });
        for attempt in self.same_instant.drain(..) {
            self.hasher.update(jsonl::to_line(&attempt).as_bytes());
            self.hasher.update(b"\n");
        }
    }

    /// A minute's folded successes, after its raw attempts.
    pub(super) fn add_folded(&mut self, target: &str, key: &RollupKey, rollup: &Rollup) {
        self.flush();
        self.hasher
            .update(rollup.canonical_line(target, key).as_bytes());
        self.hasher.update(b"\n");
    }

    pub(super) fn finish(mut self, attempts: u64) -> AttemptsDigest {
        self.flush();
        let value = self
            .hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        AttemptsDigest {
            algorithm: "sha256",
            attempts,
            value,
            canonical_form: CANONICAL_FORM,
        }
    }
}
