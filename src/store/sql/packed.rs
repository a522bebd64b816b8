//! Settled hours packed, where the dialect packs them (PostgreSQL,
//! migration 0014): once an hour has left the raw window, the storage round
//! moves its rows of `verdicts` and `minute_buckets` into one row per
//! target and hour (`packed_verdicts`) and per target, hour and prober
//! (`packed_buckets`). A verdict row cost about 100 bytes with its key, a
//! bucket as much; a packed hour costs 10 and 8 bytes a minute. SQLite
//! stores its small rows compactly already and keeps them
//! (docs/database.md "What it costs").
//!
//! Two rules keep every figure exact. A write of verdicts (re-decision:
//! late attempts, exclusions, latency rules) moves the hours it touches
//! back into the rows first ([`Self::unpack_range`]), under the target's
//! lock, which packing holds too. Fresh attempts of a packed hour are
//! counted in `minute_buckets` as ever, without waiting for any lock: a
//! bucket is the sum of its row and its packed counts, which the
//! re-decision of the minute they mark pending adds together.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{QueryBuilder, Row};

use crate::minute::{Minute, MinuteRange};
use crate::store::connection::Tx;
use crate::store::{CompactSummary, MinuteVerdict, StoreResult, keep_prepared};
use crate::verdict::{OutcomeCounts, Verdict};

const MINUTES_PER_HOUR: i64 = 60;
/// A packed verdict: code, probers, then four two-byte counts.
const VERDICT_BYTES: usize = 10;
/// A packed bucket: four two-byte counts.
const BUCKET_BYTES: usize = 8;
/// The code of a minute without a verdict.
const NO_VERDICT: u8 = 255;
/// Hours of one target packed in one transaction: a day, about 1,440
/// verdict and as many bucket rows per prober moved.
const PACK_SLICE_HOURS: i64 = 24;
/// Rows per insert: 8 columns each, well under both backends' limits.
const ROW_BATCH: usize = 500;

/// The UTC hour (hours since the epoch) of `minute`.
fn hour_of(minute: Minute) -> i64 {
    minute.0.div_euclid(MINUTES_PER_HOUR)
}

/// The hours `[first, end)` that hold a minute of `range` (empty for an
/// empty range).
fn hours_of(range: MinuteRange) -> (i64, i64) {
    if range.end.0 <= range.start.0 {
        return (0, 0);
    }
    (hour_of(range.start), hour_of(Minute(range.end.0 - 1)) + 1)
}

fn put_counts(out: &mut [u8], counts: &OutcomeCounts) -> Option<()> {
    for (slot, value) in
        out.chunks_exact_mut(2)
            .zip([counts.ok, counts.fail, counts.inconclusive, counts.slow_ok])
    {
        slot.copy_from_slice(&u16::try_from(value).ok()?.to_be_bytes());
    }
    Some(())
}

fn get_counts(bytes: &[u8]) -> OutcomeCounts {
    let count = |i: usize| i64::from(u16::from_be_bytes([bytes[2 * i], bytes[2 * i + 1]]));
    OutcomeCounts {
        ok: count(0),
        fail: count(1),
        inconclusive: count(2),
        slow_ok: count(3),
    }
}

/// The packed form of the verdicts of `hour`, or `None` where one does not
/// fit it (a count above 65,535, more than 254 probers): that hour stays
/// in rows.
fn encode_verdict_hour(hour: i64, minutes: &[MinuteVerdict]) -> Option<Vec<u8>> {
    let mut out = vec![0; VERDICT_BYTES * MINUTES_PER_HOUR as usize];
    for slot in out.chunks_exact_mut(VERDICT_BYTES) {
        slot[0] = NO_VERDICT;
    }
    for minute in minutes {
        let offset = usize::try_from(minute.minute.0 - hour * MINUTES_PER_HOUR).ok()?;
        let slot = out.get_mut(offset * VERDICT_BYTES..(offset + 1) * VERDICT_BYTES)?;
        slot[0] = u8::try_from(minute.verdict.code()).ok()?;
        slot[1] = u8::try_from(minute.probers)
            .ok()
            .filter(|p| *p != NO_VERDICT)?;
        put_counts(&mut slot[2..], &minute.counts)?;
    }
    Some(out)
}

/// The verdicts [`encode_verdict_hour`] packed into `bytes` for `hour`.
fn decode_verdict_hour(hour: i64, bytes: &[u8]) -> StoreResult<Vec<MinuteVerdict>> {
    if bytes.len() != VERDICT_BYTES * MINUTES_PER_HOUR as usize {
        return Err(
            anyhow::anyhow!("a packed hour of verdicts holds {} bytes", bytes.len()).into(),
        );
    }
    let mut minutes = Vec::new();
    for (offset, slot) in bytes.chunks_exact(VERDICT_BYTES).enumerate() {
        if slot[0] == NO_VERDICT {
            continue;
        }
        minutes.push(MinuteVerdict {
            minute: Minute(hour * MINUTES_PER_HOUR + offset as i64),
            verdict: Verdict::from_code(i16::from(slot[0])).map_err(anyhow::Error::msg)?,
            probers: i64::from(slot[1]),
            counts: get_counts(&slot[2..]),
        });
    }
    Ok(minutes)
}

/// The packed form of one prober's buckets of `hour`, or `None` where one
/// does not fit it (a count above 65,535; a bucket without any count,
/// which would read back as none).
fn encode_bucket_hour(hour: i64, buckets: &BTreeMap<Minute, OutcomeCounts>) -> Option<Vec<u8>> {
    let mut out = vec![0; BUCKET_BYTES * MINUTES_PER_HOUR as usize];
    for (minute, counts) in buckets {
        if *counts == OutcomeCounts::default() {
            return None;
        }
        let offset = usize::try_from(minute.0 - hour * MINUTES_PER_HOUR).ok()?;
        put_counts(
            out.get_mut(offset * BUCKET_BYTES..(offset + 1) * BUCKET_BYTES)?,
            counts,
        )?;
    }
    Some(out)
}

/// The buckets [`encode_bucket_hour`] packed into `bytes` for `hour`.
fn decode_bucket_hour(hour: i64, bytes: &[u8]) -> StoreResult<BTreeMap<Minute, OutcomeCounts>> {
    if bytes.len() != BUCKET_BYTES * MINUTES_PER_HOUR as usize {
        return Err(anyhow::anyhow!("a packed hour of buckets holds {} bytes", bytes.len()).into());
    }
    Ok(bytes
        .chunks_exact(BUCKET_BYTES)
        .enumerate()
        .map(|(offset, slot)| {
            (
                Minute(hour * MINUTES_PER_HOUR + offset as i64),
                get_counts(slot),
            )
        })
        .filter(|(_, counts)| *counts != OutcomeCounts::default())
        .collect())
}

fn add_counts(to: &mut OutcomeCounts, more: &OutcomeCounts) {
    to.ok += more.ok;
    to.fail += more.fail;
    to.inconclusive += more.inconclusive;
    to.slow_ok += more.slow_ok;
}

/// One target's buckets: (prober id, minute) -> counts.
type Buckets = BTreeMap<(i64, Minute), OutcomeCounts>;

/// What one hour of one target holds: its verdicts, and each prober's
/// buckets (prober id -> minute -> counts).
type Hour = (
    Vec<MinuteVerdict>,
    BTreeMap<i64, BTreeMap<Minute, OutcomeCounts>>,
);

sql_impl! {
    /// Packs every hour of every target that ends at or before `before`
    /// and still has verdict rows, a day of one target per transaction.
    pub(super) async fn pack_settled(&self, before: Minute, summary: &mut CompactSummary) -> StoreResult<()> {
        if !DB::PACKS_SETTLED_HOURS {
            return Ok(());
        }
        let end_hour = hour_of(before);
        for target in self.stored_targets().await? {
            let mut from = i64::MIN;
            loop {
                let first: Option<i64> = sqlx::query_scalar(concat!(
                    "SELECT MIN(minute) FROM verdicts WHERE target_id = ",
                    target_id!("$1"),
                    " AND minute >= $2 AND minute < $3"
                ))
                .bind(&target)
                .bind(from)
                .bind(end_hour * MINUTES_PER_HOUR)
                .fetch_one(&self.readers)
                .await?;
                let Some(first) = first else {
                    break;
                };
                let first_hour = hour_of(Minute(first));
                let to_hour = (first_hour + PACK_SLICE_HOURS).min(end_hour);
                let started = std::time::Instant::now();
                summary.packed_hours += self.pack_hours(&target, first_hour, to_hour).await?;
                summary.longest_transaction = summary.longest_transaction.max(started.elapsed());
                from = to_hour * MINUTES_PER_HOUR;
            }
        }
        Ok(())
    }

    /// Moves the rows of `target`'s hours `[from_hour, to_hour)` into their
    /// packed rows, merged with what those hold already. Returns the hours
    /// packed.
    pub(super) async fn pack_hours(&self, target: &str, from_hour: i64, to_hour: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        Self::lock_target(&mut tx, target).await?;
        let (target_id, mut verdicts, mut buckets) = Self::take_hours(&mut tx, target, from_hour, to_hour).await?;
        let Some(target_id) = target_id else {
            tx.commit().await?;
            return Ok(0);
        };
        let mut hours: BTreeMap<i64, Hour> = BTreeMap::new();
        for minute in verdicts.drain(..) {
            hours.entry(hour_of(minute.minute)).or_default().0.push(minute);
        }
        for ((prober_id, minute), counts) in std::mem::take(&mut buckets) {
            hours.entry(hour_of(minute)).or_default().1.entry(prober_id).or_default().insert(minute, counts);
        }
        let mut packed_verdicts = Vec::new();
        let mut packed_buckets = Vec::new();
        for (hour, (minutes, probers)) in hours {
            let verdict_bytes = if minutes.is_empty() {
                None
            } else {
                encode_verdict_hour(hour, &minutes)
            };
            let bucket_bytes: Option<Vec<(i64, Vec<u8>)>> = probers
                .iter()
                .map(|(prober_id, minutes)| encode_bucket_hour(hour, minutes).map(|bytes| (*prober_id, bytes)))
                .collect();
            match (verdict_bytes, bucket_bytes) {
                (Some(verdict_bytes), Some(bucket_bytes)) => {
                    packed_verdicts.push((hour, verdict_bytes));
                    packed_buckets.extend(bucket_bytes.into_iter().map(|(prober, bytes)| (prober, hour, bytes)));
                }
                (None, Some(bucket_bytes)) if minutes.is_empty() => {
                    packed_buckets.extend(bucket_bytes.into_iter().map(|(prober, bytes)| (prober, hour, bytes)));
                }
                _ => {
                    // Does not fit: the hour stays in rows.
                    verdicts.extend(minutes);
                    for (prober_id, minutes) in probers {
                        buckets.extend(minutes.into_iter().map(|(minute, counts)| ((prober_id, minute), counts)));
                    }
                }
            }
        }
        Self::put_verdict_rows(&mut tx, target_id, &verdicts).await?;
        Self::add_bucket_rows(&mut tx, target_id, &buckets).await?;
        for chunk in packed_verdicts.chunks(ROW_BATCH) {
            let mut insert = QueryBuilder::<DB>::new("INSERT INTO packed_verdicts (target_id, hour, verdicts) ");
            insert.push_values(chunk, |mut row, (hour, bytes)| {
                row.push_bind(target_id).push_bind(*hour).push_bind(bytes.clone());
            });
            insert.build().persistent(keep_prepared(chunk.len())).execute(tx.on()).await?;
        }
        for chunk in packed_buckets.chunks(ROW_BATCH) {
            let mut insert =
                QueryBuilder::<DB>::new("INSERT INTO packed_buckets (target_id, prober_id, hour, buckets) ");
            insert.push_values(chunk, |mut row, (prober_id, hour, bytes)| {
                row.push_bind(target_id).push_bind(*prober_id).push_bind(*hour).push_bind(bytes.clone());
            });
            insert.build().persistent(keep_prepared(chunk.len())).execute(tx.on()).await?;
        }
        tx.commit().await?;
        Ok(packed_verdicts.len() as u64)
    }

    /// Moves `target`'s packed hours that hold a minute of `range` back
    /// into rows, before a write of their verdicts or buckets. The caller
    /// holds the target's lock.
    pub(super) async fn unpack_range(tx: &mut Tx<'_, DB>, target: &str, range: MinuteRange) -> StoreResult<()> {
        if !DB::PACKS_SETTLED_HOURS {
            return Ok(());
        }
        let (from_hour, to_hour) = hours_of(range);
        if from_hour >= to_hour {
            return Ok(());
        }
        let (target_id, verdicts, buckets) = Self::take_packed(tx, target, from_hour, to_hour).await?;
        if let Some(target_id) = target_id {
            Self::put_verdict_rows(tx, target_id, &verdicts).await?;
            Self::add_bucket_rows(tx, target_id, &buckets).await?;
        }
        Ok(())
    }

    /// Deletes and returns the rows `target` holds of the hours
    /// `[from_hour, to_hour)`, merged with the packed rows of the hours
    /// they fall in: a verdict row wins over a packed verdict of its
    /// minute, and bucket counts add up. Deleting first reads each row as
    /// it is at the deletion, so fresh attempts counted meanwhile are never
    /// lost. The target's id is `None` where nothing was held.
    pub(super) async fn take_hours(
        tx: &mut Tx<'_, DB>,
        target: &str,
        from_hour: i64,
        to_hour: i64,
    ) -> StoreResult<(Option<i64>, Vec<MinuteVerdict>, Buckets)> {
        let mut target_id = None;
        let mut verdicts: BTreeMap<Minute, MinuteVerdict> = BTreeMap::new();
        let mut buckets = Buckets::new();
        let (from, to) = (from_hour * MINUTES_PER_HOUR, to_hour * MINUTES_PER_HOUR);
        for row in sqlx::query(concat!(
            "DELETE FROM verdicts WHERE target_id = ",
            target_id!("$1"),
            " AND minute >= $2 AND minute < $3 RETURNING CAST(target_id AS BIGINT), minute, verdict, \
             CAST(probers AS BIGINT), CAST(ok_attempts AS BIGINT), CAST(fail_attempts AS BIGINT), \
             CAST(inconclusive_attempts AS BIGINT), CAST(slow_ok_attempts AS BIGINT)"
        ))
        .bind(target)
        .bind(from)
        .bind(to)
        .fetch_all(tx.on())
        .await?
        {
            target_id = Some(row.try_get(0)?);
            let code: i16 = row.try_get(2)?;
            let minute = MinuteVerdict {
                minute: Minute(row.try_get(1)?),
                verdict: Verdict::from_code(code).map_err(anyhow::Error::msg)?,
                probers: row.try_get(3)?,
                counts: OutcomeCounts {
                    ok: row.try_get(4)?,
                    fail: row.try_get(5)?,
                    inconclusive: row.try_get(6)?,
                    slow_ok: row.try_get(7)?,
                },
            };
            verdicts.insert(minute.minute, minute);
        }
        let mut hours: BTreeSet<i64> = verdicts.keys().map(|m| hour_of(*m)).collect();
        for row in sqlx::query(concat!(
            "DELETE FROM minute_buckets WHERE target_id = ",
            target_id!("$1"),
            " AND minute >= $2 AND minute < $3 RETURNING CAST(target_id AS BIGINT), CAST(prober_id AS BIGINT), \
             minute, CAST(ok_attempts AS BIGINT), CAST(fail_attempts AS BIGINT), \
             CAST(inconclusive_attempts AS BIGINT), CAST(slow_ok_attempts AS BIGINT)"
        ))
        .bind(target)
        .bind(from)
        .bind(to)
        .fetch_all(tx.on())
        .await?
        {
            target_id = Some(row.try_get(0)?);
            let counts = OutcomeCounts {
                ok: row.try_get(3)?,
                fail: row.try_get(4)?,
                inconclusive: row.try_get(5)?,
                slow_ok: row.try_get(6)?,
            };
            let minute = Minute(row.try_get(2)?);
            hours.insert(hour_of(minute));
            add_counts(buckets.entry((row.try_get(1)?, minute)).or_default(), &counts);
        }
        // The hours in runs of consecutive ones: a statement per run.
        let mut runs: Vec<(i64, i64)> = Vec::new();
        for hour in hours {
            match runs.last_mut() {
                Some(run) if run.1 == hour => run.1 = hour + 1,
                _ => runs.push((hour, hour + 1)),
            }
        }
        for (first, end) in runs {
            let (_, packed_verdicts, packed_buckets) = Self::take_packed(tx, target, first, end).await?;
            for packed in packed_verdicts {
                verdicts.entry(packed.minute).or_insert(packed);
            }
            for (key, counts) in packed_buckets {
                add_counts(buckets.entry(key).or_default(), &counts);
            }
        }
        Ok((target_id, verdicts.into_values().collect(), buckets))
    }

    /// Deletes and returns `target`'s packed rows of the hours
    /// `[from_hour, to_hour)`, unpacked.
    pub(super) async fn take_packed(
        tx: &mut Tx<'_, DB>,
        target: &str,
        from_hour: i64,
        to_hour: i64,
    ) -> StoreResult<(Option<i64>, Vec<MinuteVerdict>, Buckets)> {
        let mut target_id = None;
        let mut verdicts = Vec::new();
        for row in sqlx::query(concat!(
            "DELETE FROM packed_verdicts WHERE target_id = ",
            target_id!("$1"),
            " AND hour >= $2 AND hour < $3 RETURNING CAST(target_id AS BIGINT), hour, verdicts"
        ))
        .bind(target)
        .bind(from_hour)
        .bind(to_hour)
        .fetch_all(tx.on())
        .await?
        {
            target_id = Some(row.try_get(0)?);
            let bytes: Vec<u8> = row.try_get(2)?;
            verdicts.extend(decode_verdict_hour(row.try_get(1)?, &bytes)?);
        }
        let mut buckets = Buckets::new();
        for row in sqlx::query(concat!(
            "DELETE FROM packed_buckets WHERE target_id = ",
            target_id!("$1"),
            " AND hour >= $2 AND hour < $3 RETURNING CAST(target_id AS BIGINT), CAST(prober_id AS BIGINT), hour, buckets"
        ))
        .bind(target)
        .bind(from_hour)
        .bind(to_hour)
        .fetch_all(tx.on())
        .await?
        {
            target_id = Some(row.try_get(0)?);
            let prober_id: i64 = row.try_get(1)?;
            let bytes: Vec<u8> = row.try_get(3)?;
            for (minute, counts) in decode_bucket_hour(row.try_get(2)?, &bytes)? {
                add_counts(buckets.entry((prober_id, minute)).or_default(), &counts);
            }
        }
        Ok((target_id, verdicts, buckets))
    }

    /// Writes verdicts back as rows; a row already there wins.
    pub(super) async fn put_verdict_rows(
        tx: &mut Tx<'_, DB>,
        target_id: i64,
        verdicts: &[MinuteVerdict],
    ) -> StoreResult<()> {
        for chunk in verdicts.chunks(ROW_BATCH) {
            let mut insert = QueryBuilder::<DB>::new(
                "INSERT INTO verdicts (target_id, minute, verdict, probers, ok_attempts, fail_attempts, \
                 inconclusive_attempts, slow_ok_attempts) ",
            );
            insert.push_values(chunk, |mut row, v| {
                row.push_bind(target_id)
                    .push_bind(v.minute.0)
                    .push_bind(v.verdict.code())
                    .push_bind(v.probers)
                    .push_bind(v.counts.ok)
                    .push_bind(v.counts.fail)
                    .push_bind(v.counts.inconclusive)
                    .push_bind(v.counts.slow_ok);
            });
            insert.push(" ON CONFLICT (target_id, minute) DO NOTHING");
            insert.build().persistent(keep_prepared(chunk.len())).execute(tx.on()).await?;
        }
        Ok(())
    }

    /// Adds bucket counts to `target_id`'s bucket rows.
    pub(super) async fn add_bucket_rows(tx: &mut Tx<'_, DB>, target_id: i64, buckets: &Buckets) -> StoreResult<()> {
        let rows: Vec<((i64, i64, Minute), OutcomeCounts)> = buckets
            .iter()
            .map(|((prober_id, minute), counts)| ((target_id, *prober_id, *minute), *counts))
            .collect();
        Self::add_bucket_counts(tx, &rows).await
    }

    /// The packed verdicts of `target` within `range`, in minute order.
    pub(super) async fn packed_verdicts_in(&self, target: &str, range: MinuteRange) -> StoreResult<Vec<MinuteVerdict>> {
        let (from_hour, to_hour) = hours_of(range);
        if !DB::PACKS_SETTLED_HOURS || from_hour >= to_hour {
            return Ok(Vec::new());
        }
        let mut minutes = Vec::new();
        for row in sqlx::query(concat!(
            "SELECT hour, verdicts FROM packed_verdicts WHERE target_id = ",
            target_id!("$1"),
            " AND hour >= $2 AND hour < $3 ORDER BY hour"
        ))
        .bind(target)
        .bind(from_hour)
        .bind(to_hour)
        .fetch_all(&self.readers)
        .await?
        {
            let bytes: Vec<u8> = row.try_get(1)?;
            minutes.extend(
                decode_verdict_hour(row.try_get(0)?, &bytes)?
                    .into_iter()
                    .filter(|v| range.contains(v.minute)),
            );
        }
        Ok(minutes)
    }

    /// Every target's packed verdict of `minute`: (target, verdict).
    pub(super) async fn packed_verdicts_at(&self, minute: Minute) -> StoreResult<Vec<(String, MinuteVerdict)>> {
        if !DB::PACKS_SETTLED_HOURS {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for row in sqlx::query(
            "SELECT t.name, p.hour, p.verdicts FROM packed_verdicts AS p JOIN target_names AS t ON t.id = p.target_id \
             WHERE p.hour = $1",
        )
        .bind(hour_of(minute))
        .fetch_all(&self.readers)
        .await?
        {
            let bytes: Vec<u8> = row.try_get(2)?;
            let target: String = row.try_get(0)?;
            if let Some(verdict) = decode_verdict_hour(row.try_get(1)?, &bytes)?
                .into_iter()
                .find(|v| v.minute == minute)
            {
                found.push((target, verdict));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(minute: i64, verdict: Verdict, ok: i64, fail: i64, probers: i64) -> MinuteVerdict {
        MinuteVerdict {
            minute: Minute(minute),
            verdict,
            counts: OutcomeCounts {
                ok,
                fail,
                inconclusive: 3,
                slow_ok: ok / 2,
            },
            probers,
        }
    }

    #[test]
    fn an_hour_of_verdicts_reads_back_as_packed() {
        let hour = 29_000_000;
        let minutes = vec![
            verdict(hour * 60, Verdict::Available, 36, 0, 1),
            verdict(hour * 60 + 7, Verdict::Failure, 0, 65_535, 254),
            verdict(hour * 60 + 59, Verdict::Excluded, 1_000, 2, 3),
        ];
        let bytes = encode_verdict_hour(hour, &minutes).unwrap();
        assert_eq!(bytes.len(), 600);
        assert_eq!(decode_verdict_hour(hour, &bytes).unwrap(), minutes);
        assert_eq!(
            decode_verdict_hour(hour, &bytes[1..]).map(|_| ()).ok(),
            None
        );
    }

    #[test]
    fn what_does_not_fit_an_hour_is_not_packed() {
        let hour = 10;
        for minutes in [
            vec![verdict(hour * 60, Verdict::Available, 65_536, 0, 1)],
            vec![verdict(hour * 60, Verdict::Available, 1, 0, 255)],
            vec![verdict(hour * 60 + 60, Verdict::Available, 1, 0, 1)],
            vec![verdict(hour * 60 - 1, Verdict::Available, 1, 0, 1)],
        ] {
            assert_eq!(encode_verdict_hour(hour, &minutes), None, "{minutes:?}");
        }
        let bucket = |minute: i64, ok: i64| {
            BTreeMap::from([(
                Minute(minute),
                OutcomeCounts {
                    ok,
                    ..Default::default()
                },
            )])
        };
        assert_eq!(encode_bucket_hour(hour, &bucket(hour * 60, 0)), None);
        assert_eq!(encode_bucket_hour(hour, &bucket(hour * 60, 70_000)), None);
        assert_eq!(encode_bucket_hour(hour, &bucket(hour * 60 + 60, 1)), None);
    }

    #[test]
    fn an_hour_of_buckets_reads_back_as_packed() {
        let hour = -3;
        let buckets = BTreeMap::from([
            (
                Minute(hour * 60 + 1),
                OutcomeCounts {
                    ok: 35,
                    fail: 1,
                    inconclusive: 0,
                    slow_ok: 4,
                },
            ),
            (
                Minute(hour * 60 + 58),
                OutcomeCounts {
                    ok: 0,
                    fail: 0,
                    inconclusive: 2,
                    slow_ok: 0,
                },
            ),
        ]);
        let bytes = encode_bucket_hour(hour, &buckets).unwrap();
        assert_eq!(bytes.len(), 480);
        assert_eq!(decode_bucket_hour(hour, &bytes).unwrap(), buckets);
    }

    #[test]
    fn a_range_covers_the_hours_of_its_minutes() {
        assert_eq!(hours_of(MinuteRange::new(Minute(60), Minute(120))), (1, 2));
        assert_eq!(hours_of(MinuteRange::new(Minute(59), Minute(121))), (0, 3));
        assert_eq!(hours_of(MinuteRange::new(Minute(-1), Minute(0))), (-1, 0));
        assert_eq!(hours_of(MinuteRange::new(Minute(5), Minute(5))), (0, 0));
    }
}
