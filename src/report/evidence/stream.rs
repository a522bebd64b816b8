//! A month's evidence as it is kept for years: every attempt that is
//! evidence (failed, inconclusive, a missing delivery) as it was measured,
//! and the successes as per-minute rollups, whether they are still raw
//! (folded here, as the storage round would) or folded already. So a
//! report reads the same before and after its days are folded.

use crate::attempt::Attempt;
use crate::attempt::rollup::{Folder, Rollup, RollupKey};
use crate::minute::{Minute, MinuteRange};
use crate::store::Store;

/// Minutes read per pass: a day's rollups of a few probers and the day's
/// raw attempts stay small in memory whatever the month's length.
const SLICE_MINUTES: i64 = 1_440;

/// One item of the evidence, in canonical order: minute by minute, the
/// raw attempts (by start, prober, kind), then the rollups (by prober, kind).
pub enum Item {
    Raw(Attempt),
    Folded(RollupKey, Rollup),
}

/// Hands the evidence of `target` within `range` to `visit` in canonical
/// order. Returns how many attempts it stands for.
pub async fn visit(
    store: &dyn Store,
    target: &str,
    range: MinuteRange,
    visit: &mut (dyn FnMut(Item) + Send),
) -> anyhow::Result<u64> {
    let mut attempts = 0;
    let mut from = range.start;
    while from < range.end {
        let slice = MinuteRange::new(from, Minute((from.0 + SLICE_MINUTES).min(range.end.0)));
        let mut folder = Folder::default();
        let mut raw: Vec<Attempt> = Vec::new();
        let stored = store
            .visit_evidence(target, slice, &mut |attempt: Attempt| {
                if let Some(evidence) = folder.offer(attempt) {
                    raw.push(evidence);
                }
            })
            .await?;
        for (key, rollup) in stored {
            folder.merge(key, &rollup);
        }
        let mut rollups = folder.into_rollups().into_iter().peekable();
        let mut raw = raw.into_iter().peekable();
        loop {
            // The earlier minute first; within a minute, raw before folded.
            let raw_minute = raw.peek().map(Attempt::minute);
            let folded_minute = rollups.peek().map(|(key, _)| key.minute);
            let take_raw = match (raw_minute, folded_minute) {
                (Some(r), Some(f)) => r <= f,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_raw {
                let attempt = raw.next().expect("peeked");
                attempts += 1;
                visit(Item::Raw(attempt));
            } else {
                let (key, rollup) = rollups.next().expect("peeked");
                attempts += rollup.ok;
                visit(Item::Folded(key, rollup));
            }
        }
        from = slice.end;
    }
    Ok(attempts)
}
