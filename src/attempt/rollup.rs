//! Successes folded into per-minute rollups (docs/operations.md
//! "Retention"): once a successful attempt leaves the raw window, what it
//! adds to the evidence is a count and a latency, so it is kept as one of
//! the counts and histograms of its target, minute, prober and kind.
//!
//! Failed and inconclusive attempts, and sends whose delivery is missing,
//! are never folded ([`is_foldable`]): they are what a claim quotes.
//!
//! The report reads raw successes through the same histograms (see
//! [`Folder`]), so every figure it prints is the same before and after a
//! day is folded.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::attempt::{Attempt, Delivery, Kind, Outcome};
use crate::minute::Minute;

/// Exact buckets below this value, then [`SUB_BUCKETS`] per power of two.
const EXACT_BELOW: i64 = 16;
/// Buckets per power of two above [`EXACT_BELOW`]: each is at most 1/8 of
/// its lower bound wide, so a value read back as the bucket's midpoint is
/// within 1/16 (6.25 %) of the true value (Prometheus' native histograms
/// use the same resolution, schema 3).
const SUB_BUCKETS: i64 = 8;
/// log2 of [`SUB_BUCKETS`].
const SUB_BITS: u32 = 3;

/// How far a value read back from a histogram may be from the true value,
/// as a share of it (stated in docs/operations.md "Retention").
pub const RELATIVE_ERROR: &str = "6.25 %";

/// The bucket a value (milliseconds) falls in. Negative values count as 0.
pub fn bucket_of(value: i64) -> u32 {
    let v = value.max(0);
    if v < EXACT_BELOW {
        return v as u32;
    }
    let exponent = 63 - v.leading_zeros(); // 2^exponent <= v, exponent >= 4
    let sub = (v >> (exponent - SUB_BITS)) & (SUB_BUCKETS - 1);
    (EXACT_BELOW as u32) + (exponent - 4) * SUB_BUCKETS as u32 + sub as u32
}

/// The lowest value of a bucket and its width.
pub fn bucket_bounds(bucket: u32) -> (i64, i64) {
    if i64::from(bucket) < EXACT_BELOW {
        return (i64::from(bucket), 1);
    }
    let above = bucket - EXACT_BELOW as u32;
    let exponent = above / SUB_BUCKETS as u32 + 4;
    let sub = i64::from(above % SUB_BUCKETS as u32);
    let width = 1_i64 << (exponent - SUB_BITS);
    ((SUB_BUCKETS + sub) * width, width)
}

/// The value a bucket reads back as: its midpoint, rounded down.
pub fn bucket_value(bucket: u32) -> i64 {
    let (low, width) = bucket_bounds(bucket);
    low + (width - 1) / 2
}

/// Counts of values per bucket. The same type holds a minute's values and
/// a month's, so a figure read from it does not depend on whether the
/// values were folded yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: BTreeMap<u32, u64>,
}

impl Histogram {
    pub fn add(&mut self, value: i64) {
        *self.counts.entry(bucket_of(value)).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (bucket, count) in &other.counts {
            *self.counts.entry(*bucket).or_default() += count;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Nearest rank: the value of the bucket holding the smallest value
    /// with at least `percent` % of the values at or below it.
    pub fn percentile(&self, percent: u64) -> Option<i64> {
        let n = self.total();
        if n == 0 {
            return None;
        }
        let rank = (n * percent).div_ceil(100).max(1);
        let mut seen = 0;
        for (bucket, count) in &self.counts {
            seen += count;
            if seen >= rank {
                return Some(bucket_value(*bucket));
            }
        }
        None
    }

    pub fn max(&self) -> Option<i64> {
        self.counts.keys().next_back().map(|b| bucket_value(*b))
    }

    /// Values above `threshold`: whole buckets above it, and the bucket it
    /// falls in when that bucket's value is above it. Exact whenever the
    /// threshold is a bucket boundary minus one, or below [`EXACT_BELOW`].
    pub fn count_above(&self, threshold: i64) -> u64 {
        self.counts
            .iter()
            .filter(|(bucket, _)| bucket_value(**bucket) > threshold)
            .map(|(_, count)| count)
            .sum()
    }

    /// The byte form of migration 0008, still read ([`Self::decode`]): for
    /// each non-empty bucket in ascending order, the step from the previous
    /// bucket (the first from 0), doubled, plus one when more than one
    /// value is in it, as an unsigned LEB128 varint; then, for those, the
    /// count less two.
    #[cfg(test)]
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.counts.len() + 2);
        let mut previous = 0;
        for (bucket, count) in &self.counts {
            let step = u64::from(bucket - previous) << 1;
            if *count > 1 {
                put_varint(&mut bytes, step | 1);
                put_varint(&mut bytes, count - 2);
            } else {
                put_varint(&mut bytes, step);
            }
            previous = *bucket;
        }
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<Histogram, String> {
        let mut counts = BTreeMap::new();
        let mut at = 0;
        let mut bucket: u64 = 0;
        while at < bytes.len() {
            let token = get_varint(bytes, &mut at)?;
            bucket += token >> 1;
            let count = if token & 1 == 1 {
                get_varint(bytes, &mut at)?.saturating_add(2)
            } else {
                1
            };
            let bucket = u32::try_from(bucket).map_err(|_| "histogram bucket out of range")?;
            counts.insert(bucket, count);
        }
        Ok(Histogram { counts })
    }

    /// The canonical text: `{"lower bound": count, ...}` in ascending order.
    fn canonical(&self) -> BTreeMap<i64, u64> {
        self.counts
            .iter()
            .map(|(bucket, count)| (bucket_bounds(*bucket).0, *count))
            .collect()
    }
}

#[cfg(test)]
fn put_varint(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push((value as u8) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0_u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or("histogram ends inside a number")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("histogram number too long".into())
}

/// Whether an attempt is folded once it leaves the raw window: a success
/// whose delivery, if checked, was confirmed.
pub fn is_foldable(attempt: &Attempt) -> bool {
    attempt.outcome == Outcome::Ok && !matches!(attempt.delivery, Some(Delivery::Missing))
}

/// What identifies a rollup within one target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RollupKey {
    pub minute: Minute,
    pub prober: String,
    pub kind: Kind,
}

/// The folded successes of one target, minute, prober and kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollup {
    /// Successful attempts, with or without a latency.
    pub ok: u64,
    /// Latencies of those that had one.
    pub latency: Histogram,
    /// Sends whose delivery was confirmed.
    pub confirmed: u64,
    /// Delivery times of those confirmed with a time.
    pub delivered: Histogram,
}

impl Rollup {
    pub fn add(&mut self, attempt: &Attempt) {
        self.add_success(attempt.latency_ms, attempt.delivery);
    }

    /// Adds one success given by its latency and delivery.
    pub fn add_success(&mut self, latency_ms: Option<i64>, delivery: Option<Delivery>) {
        self.ok += 1;
        if let Some(latency) = latency_ms {
            self.latency.add(latency);
        }
        if let Some(Delivery::Confirmed { after_ms }) = delivery {
            self.confirmed += 1;
            if let Some(after) = after_ms {
                self.delivered.add(after);
            }
        }
    }

    pub fn merge(&mut self, other: &Rollup) {
        self.ok += other.ok;
        self.latency.merge(&other.latency);
        self.confirmed += other.confirmed;
        self.delivered.merge(&other.delivered);
    }

    /// One line of a report digest's canonical form (docs/operations.md
    /// "Report digest"): the JSON object with fields in this order.
    pub fn canonical_line(&self, target: &str, key: &RollupKey) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            target: &'a str,
            prober: &'a str,
            kind: &'static str,
            minute: String,
            ok: u64,
            latency_ms: BTreeMap<i64, u64>,
            confirmed: u64,
            delivered_ms: BTreeMap<i64, u64>,
        }
        serde_json::to_string(&Line {
            target,
            prober: &key.prober,
            kind: key.kind.as_str(),
            minute: key.minute.start().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ok: self.ok,
            latency_ms: self.latency.canonical(),
            confirmed: self.confirmed,
            delivered_ms: self.delivered.canonical(),
        })
        .expect("a rollup serialises")
    }
}

/// A prober's folded minute: its rollups by kind.
pub type FoldedMinute = BTreeMap<Kind, Rollup>;

/// Minutes per row of `folded_spans`: a prober's folded minutes are
/// stored [`FOLD_SPAN_MINUTES`] to a row. At the default cadence a folded
/// minute takes about 50 bytes, so a row takes about 550: seven fill a
/// page of SQLite's, thirteen one of PostgreSQL's, each stored whole
/// (a row of an hour, about 3.3 KB, spilled into a page of its own on
/// SQLite and into PostgreSQL's TOAST table). docs/database.md "What it
/// costs".
pub const FOLD_SPAN_MINUTES: i64 = 10;

/// A prober's folded minutes of one span of [`FOLD_SPAN_MINUTES`], by
/// minute within the span (from 0): what one row of `folded_spans` holds.
pub type FoldedSpan = BTreeMap<u32, FoldedMinute>;

/// The first minute of the span that holds `minute`.
pub fn span_start(minute: Minute) -> Minute {
    Minute(minute.0 - minute.0.rem_euclid(FOLD_SPAN_MINUTES))
}

/// The stored form of a [`FoldedSpan`]: `minutes`, whose bit `m` says
/// minute `m` of the span has rollups, and `rollups`, for each such
/// minute in ascending order its [`encode_folded`] form after that
/// form's length (two bytes, big-endian). A row of its own instead of a
/// column in each minute's bucket: folding adds rows instead of
/// rewriting buckets, which on PostgreSQL left a dead version of every
/// bucket behind.
pub fn encode_folded_span(span: &FoldedSpan) -> (i64, Vec<u8>) {
    let mut minutes = 0i64;
    let mut rollups = Vec::new();
    for (&minute, folded) in span {
        assert!(
            i64::from(minute) < FOLD_SPAN_MINUTES,
            "minute {minute} of a span"
        );
        minutes |= 1 << minute;
        let bytes = encode_folded(folded);
        let len = u16::try_from(bytes.len()).expect("a folded minute is far below 64 KiB");
        rollups.extend(len.to_be_bytes());
        rollups.extend(bytes);
    }
    (minutes, rollups)
}

/// Reads back what [`encode_folded_span`] wrote.
pub fn decode_folded_span(minutes: i64, mut rollups: &[u8]) -> Result<FoldedSpan, String> {
    let mut span = FoldedSpan::new();
    for minute in (0..FOLD_SPAN_MINUTES as u32).filter(|m| minutes >> m & 1 == 1) {
        let (len, rest) = rollups
            .split_first_chunk::<2>()
            .ok_or_else(|| format!("the folded span ends before minute {minute}"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len {
            return Err(format!("the folded span ends inside minute {minute}"));
        }
        let (folded, rest) = rest.split_at(len);
        span.insert(minute, decode_folded(folded)?);
        rollups = rest;
    }
    if minutes >> FOLD_SPAN_MINUTES != 0 || !rollups.is_empty() {
        return Err("the folded span holds more than its minutes".to_owned());
    }
    Ok(span)
}

/// The first byte of a folded minute in the bit-packed form. The byte form
/// written before it (migration 0008's) begins with a kind code, 0 to 2,
/// and is still read.
const PACKED: u8 = 0xB1;

/// The stored form of a prober's folded minute (within [`encode_folded_span`]'s):
/// the byte [`PACKED`], then a bit stream (most significant bit first,
/// zero-padded to a byte). For each kind in [`Kind::ALL`] order, one bit
/// says whether it is there; if it is: its success count, its latency
/// histogram, its confirmed count and its delivery-time histogram. Counts
/// are Exp-Golomb codes of order 2. A histogram is the number of its
/// non-empty buckets (order 1), and if there are any: an order `k` (3
/// bits, the one that makes it shortest), then per bucket in ascending
/// order the step from the previous one less one (the first: the bucket
/// itself), order `k`, and its count less one, order 0. A minute's dozen
/// latencies, about four buckets apart, cost about four bits each
/// (docs/database.md "What it costs" gives the measured bytes).
pub fn encode_folded(minute: &FoldedMinute) -> Vec<u8> {
    let mut bits = BitWriter::default();
    for kind in Kind::ALL {
        let Some(rollup) = minute.get(&kind) else {
            bits.bit(false);
            continue;
        };
        bits.bit(true);
        bits.exp_golomb(rollup.ok, 2);
        put_histogram(&mut bits, &rollup.latency);
        bits.exp_golomb(rollup.confirmed, 2);
        put_histogram(&mut bits, &rollup.delivered);
    }
    let mut bytes = vec![PACKED];
    bytes.extend(bits.bytes);
    bytes
}

pub fn decode_folded(bytes: &[u8]) -> Result<FoldedMinute, String> {
    let Some((&PACKED, packed)) = bytes.split_first() else {
        return decode_folded_bytes(bytes);
    };
    let mut bits = BitReader {
        bytes: packed,
        at: 0,
    };
    let mut minute = FoldedMinute::new();
    for kind in Kind::ALL {
        if !bits.bit()? {
            continue;
        }
        let ok = bits.exp_golomb(2)?;
        let latency = get_histogram(&mut bits)?;
        let confirmed = bits.exp_golomb(2)?;
        let delivered = get_histogram(&mut bits)?;
        minute.insert(
            kind,
            Rollup {
                ok,
                latency,
                confirmed,
                delivered,
            },
        );
    }
    if bits.at.div_ceil(8) != packed.len() {
        return Err("a folded minute has bytes past its end".into());
    }
    Ok(minute)
}

fn put_histogram(bits: &mut BitWriter, histogram: &Histogram) {
    bits.exp_golomb(histogram.counts.len() as u64, 1);
    if histogram.counts.is_empty() {
        return;
    }
    let steps: Vec<u64> = histogram
        .counts
        .keys()
        .scan(None, |previous: &mut Option<u32>, bucket| {
            let step = match *previous {
                Some(p) => u64::from(bucket - p - 1),
                None => u64::from(*bucket),
            };
            *previous = Some(*bucket);
            Some(step)
        })
        .collect();
    let order = (0..8)
        .min_by_key(|k| steps.iter().map(|s| exp_golomb_bits(*s, *k)).sum::<u32>())
        .expect("eight orders");
    bits.bits(u64::from(order), 3);
    for (step, count) in steps.iter().zip(histogram.counts.values()) {
        bits.exp_golomb(*step, order);
        bits.exp_golomb(count - 1, 0);
    }
}

fn get_histogram(bits: &mut BitReader) -> Result<Histogram, String> {
    let buckets = bits.exp_golomb(1)?;
    let mut counts = BTreeMap::new();
    if buckets == 0 {
        return Ok(Histogram { counts });
    }
    let order = bits.bits(3)? as u32;
    let mut previous: Option<u64> = None;
    for _ in 0..buckets {
        let step = bits.exp_golomb(order)?;
        let bucket = match previous {
            Some(p) => p.checked_add(step + 1),
            None => Some(step),
        }
        .filter(|b| *b <= u64::from(u32::MAX))
        .ok_or("histogram bucket out of range")?;
        let count = bits
            .exp_golomb(0)?
            .checked_add(1)
            .ok_or("count too large")?;
        counts.insert(bucket as u32, count);
        previous = Some(bucket);
    }
    Ok(Histogram { counts })
}

/// `value + 2^k`, which an Exp-Golomb code of order `k` writes, and its
/// width in bits.
fn exp_golomb_shifted(value: u64, k: u32) -> (u128, u32) {
    let shifted = u128::from(value) + (1_u128 << k);
    (shifted, 128 - shifted.leading_zeros())
}

/// Bits of `value` as an Exp-Golomb code of order `k`.
fn exp_golomb_bits(value: u64, k: u32) -> u32 {
    let (_, width) = exp_golomb_shifted(value, k);
    2 * width - k - 1
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte, 0 when it is full (or there is none).
    used: u32,
}

impl BitWriter {
    fn bit(&mut self, one: bool) {
        if self.used == 0 {
            self.bytes.push(0);
        }
        if one {
            *self.bytes.last_mut().expect("pushed") |= 0x80 >> self.used;
        }
        self.used = (self.used + 1) % 8;
    }

    /// The low `count` bits of `value`, most significant first.
    fn bits(&mut self, value: u64, count: u32) {
        for at in (0..count).rev() {
            self.bit((value >> at) & 1 == 1);
        }
    }

    /// `value + 2^k` in binary, after as many zeros as it has bits beyond
    /// `k + 1`.
    fn exp_golomb(&mut self, value: u64, k: u32) {
        let (shifted, width) = exp_golomb_shifted(value, k);
        for _ in 0..width - k - 1 {
            self.bit(false);
        }
        for at in (0..width).rev() {
            self.bit((shifted >> at) & 1 == 1);
        }
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    /// The next bit's index.
    at: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Result<bool, String> {
        let byte = self
            .bytes
            .get(self.at / 8)
            .ok_or("a folded minute ends inside a number")?;
        let one = byte & (0x80 >> (self.at % 8)) != 0;
        self.at += 1;
        Ok(one)
    }

    fn bits(&mut self, count: u32) -> Result<u64, String> {
        let mut value = 0;
        for _ in 0..count {
            value = value << 1 | u64::from(self.bit()?);
        }
        Ok(value)
    }

    fn exp_golomb(&mut self, k: u32) -> Result<u64, String> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros + k > 63 {
                return Err("a folded minute's number is too long".into());
            }
        }
        let rest = self.bits(zeros + k)?;
        let shifted = (1_u64 << (zeros + k)) | rest;
        Ok(shifted - (1 << k))
    }
}

/// The byte form of migration 0008: for each kind in order, its code (0
/// login, 1 send_direct, 2 send_group), then the success count, the
/// confirmed count, and each histogram's length and bytes
/// ([`Histogram::decode`]), all as varints.
fn decode_folded_bytes(bytes: &[u8]) -> Result<FoldedMinute, String> {
    let mut minute = FoldedMinute::new();
    let mut at = 0;
    while at < bytes.len() {
        let code = get_varint(bytes, &mut at)?;
        let kind = *Kind::ALL
            .get(code as usize)
            .ok_or_else(|| format!("unknown kind code {code} in a folded minute"))?;
        let ok = get_varint(bytes, &mut at)?;
        let confirmed = get_varint(bytes, &mut at)?;
        let mut histograms = [Histogram::default(), Histogram::default()];
        for histogram in &mut histograms {
            let len = get_varint(bytes, &mut at)? as usize;
            let end = at
                .checked_add(len)
                .filter(|end| *end <= bytes.len())
                .ok_or("a folded minute ends inside a histogram")?;
            *histogram = Histogram::decode(&bytes[at..end])?;
            at = end;
        }
        let [latency, delivered] = histograms;
        minute.insert(
            kind,
            Rollup {
                ok,
                latency,
                confirmed,
                delivered,
            },
        );
    }
    Ok(minute)
}

/// Folds successes as they stream past, beside rollups read back from the
/// database: the one place both the storage round and the report turn
/// attempts into rollups.
#[derive(Debug, Default)]
pub struct Folder {
    rollups: BTreeMap<RollupKey, Rollup>,
    /// The minute and prober the last stored success was of, with what
    /// it added per kind (in [`Kind::ALL`] order): the storage round reads
    /// a target's successes in the order of their key, so a minute's
    /// dozens of rows cost one map entry per kind, not one lookup (and one
    /// copy of the prober's name) each.
    staged: Option<(Minute, String, [Rollup; 3])>,
}

/// A success as the storage round reads it from the `attempts` table.
#[derive(Debug, Clone, Copy)]
pub struct StoredSuccess<'r> {
    pub prober: &'r str,
    pub minute: Minute,
    pub kind: Kind,
    pub latency_ms: Option<i64>,
    pub delivery: Option<Delivery>,
}

impl Folder {
    /// Takes a foldable attempt; returns it back when it is evidence.
    pub fn offer(&mut self, attempt: Attempt) -> Option<Attempt> {
        if !is_foldable(&attempt) {
            return Some(attempt);
        }
        let key = RollupKey {
            minute: attempt.minute(),
            prober: attempt.prober.clone(),
            kind: attempt.kind,
        };
        self.rollups.entry(key).or_default().add(&attempt);
        None
    }

    /// Takes a success the storage round read (a row its query chose as
    /// foldable).
    pub fn offer_stored(&mut self, success: StoredSuccess<'_>) {
        let same = matches!(&self.staged, Some((minute, prober, _))
            if *minute == success.minute && prober == success.prober);
        if !same {
            self.flush();
            self.staged = Some((
                success.minute,
                success.prober.to_owned(),
                Default::default(),
            ));
        }
        let (_, _, kinds) = self.staged.as_mut().expect("staged above");
        kinds[success.kind.code() as usize].add_success(success.latency_ms, success.delivery);
    }

    fn flush(&mut self) {
        let Some((minute, prober, kinds)) = self.staged.take() else {
            return;
        };
        for (kind, rollup) in Kind::ALL.into_iter().zip(kinds) {
            if rollup.ok > 0 {
                let key = RollupKey {
                    minute,
                    prober: prober.clone(),
                    kind,
                };
                self.rollups.entry(key).or_default().merge(&rollup);
            }
        }
    }

    /// Adds a rollup read back from the database.
    pub fn merge(&mut self, key: RollupKey, rollup: &Rollup) {
        self.rollups.entry(key).or_default().merge(rollup);
    }

    /// Everything folded, by minute, prober and kind.
    pub fn into_rollups(mut self) -> BTreeMap<RollupKey, Rollup> {
        self.flush();
        self.rollups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use proptest::prelude::*;

    #[test]
    fn small_values_are_exact_and_buckets_tile_the_line() {
        for v in 0..EXACT_BELOW {
            assert_eq!(bucket_value(bucket_of(v)), v);
        }
        // Every value lies in its bucket, and consecutive buckets touch.
        let mut expected_low = 0;
        for bucket in 0..200 {
            let (low, width) = bucket_bounds(bucket);
            assert_eq!(low, expected_low, "bucket {bucket}");
            assert_eq!(bucket_of(low), bucket);
            assert_eq!(bucket_of(low + width - 1), bucket);
            expected_low = low + width;
        }
        assert_eq!(bucket_of(-5), 0);
    }

    fn success(prober: &str, started_at_ms: i64, kind: Kind, latency_ms: i64) -> Attempt {
        Attempt {
            target: "t".into(),
            prober: prober.into(),
            kind,
            started_at: DateTime::from_timestamp_millis(started_at_ms).unwrap(),
            latency_ms: Some(latency_ms),
            outcome: Outcome::Ok,
            http_status: Some(200),
            error_code: None,
            error: None,
            reason: None,
            delivery: (kind != Kind::Login).then_some(Delivery::Confirmed {
                after_ms: Some(latency_ms / 2),
            }),
        }
    }

    proptest! {
        /// The storage round's rows and the report's attempts fold alike,
        /// whatever order the rows come in (probers interleaved, minutes
        /// revisited).
        #[test]
        fn stored_rows_fold_as_attempts_do(
            rows in proptest::collection::vec((0_usize..3, 0_i64..300_000, 0_usize..3, 0_i64..5_000), 0..80)
        ) {
            let probers = ["a", "b", "c"];
            let mut from_attempts = Folder::default();
            let mut from_rows = Folder::default();
            for (prober, ms, kind, latency) in rows {
                let attempt = success(probers[prober], ms, Kind::ALL[kind], latency);
                from_rows.offer_stored(StoredSuccess {
                    prober: &attempt.prober,
                    minute: Minute::containing_ms(ms),
                    kind: attempt.kind,
                    latency_ms: attempt.latency_ms,
                    delivery: attempt.delivery,
                });
                prop_assert!(from_attempts.offer(attempt).is_none());
            }
            prop_assert_eq!(from_rows.into_rollups(), from_attempts.into_rollups());
        }

        #[test]
        fn a_value_reads_back_within_the_stated_error(v in 0_i64..10_000_000_000) {
            let back = bucket_value(bucket_of(v));
            // 6.25 %: |back - v| * 16 <= v.
            prop_assert!((back - v).abs() * 16 <= v.max(1), "{v} read back as {back}");
        }

        #[test]
        fn histograms_survive_their_encoding(values in proptest::collection::vec(0_i64..100_000_000, 0..50)) {
            let mut h = Histogram::default();
            for v in &values {
                h.add(*v);
            }
            prop_assert_eq!(Histogram::decode(&h.encode()).unwrap(), h.clone());
            prop_assert_eq!(h.total(), values.len() as u64);
        }
    }

    #[test]
    fn percentiles_use_nearest_rank_over_buckets() {
        let mut h = Histogram::default();
        for v in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] {
            h.add(v);
        }
        assert_eq!(h.percentile(50), Some(5));
        assert_eq!(h.percentile(95), Some(10));
        assert_eq!(h.max(), Some(10));
        assert_eq!(Histogram::default().percentile(50), None);
    }

    #[test]
    fn counts_above_a_boundary_are_exact() {
        let mut h = Histogram::default();
        for v in [100, 150, 199, 200, 201, 250, 900] {
            h.add(v);
        }
        // 191 is the last value of the bucket [176, 192): a boundary.
        assert_eq!(h.count_above(191), 5);
        assert_eq!(h.count_above(10_000), 0);
        assert_eq!(h.count_above(-1), 7);
    }

    /// The byte form of migration 0008, as it was written.
    fn encode_folded_bytes(minute: &FoldedMinute) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (kind, rollup) in minute {
            put_varint(&mut bytes, kind.code() as u64);
            put_varint(&mut bytes, rollup.ok);
            put_varint(&mut bytes, rollup.confirmed);
            for histogram in [&rollup.latency, &rollup.delivered] {
                let encoded = histogram.encode();
                put_varint(&mut bytes, encoded.len() as u64);
                bytes.extend_from_slice(&encoded);
            }
        }
        bytes
    }

    fn rollup_strategy() -> impl Strategy<Value = Rollup> {
        (
            0_u64..1 << 40,
            proptest::collection::vec(0_i64..100_000_000, 0..40),
            0_u64..1 << 40,
            proptest::collection::vec(0_i64..1_000_000, 0..40),
        )
            .prop_map(|(ok, latencies, confirmed, delivery_times)| {
                let mut rollup = Rollup {
                    ok,
                    confirmed,
                    ..Rollup::default()
                };
                latencies.iter().for_each(|v| rollup.latency.add(*v));
                delivery_times.iter().for_each(|v| rollup.delivered.add(*v));
                rollup
            })
    }

    proptest! {
        #[test]
        fn folded_minutes_survive_both_forms(
            rollups in proptest::collection::btree_map(0_usize..3, rollup_strategy(), 0..=3)
        ) {
            let minute: FoldedMinute = rollups
                .into_iter()
                .map(|(k, rollup)| (Kind::ALL[k], rollup))
                .collect();
            prop_assert_eq!(decode_folded(&encode_folded(&minute)).unwrap(), minute.clone());
            prop_assert_eq!(decode_folded(&encode_folded_bytes(&minute)).unwrap(), minute);
        }

        #[test]
        fn folded_spans_survive_their_encoding(
            minutes in proptest::collection::btree_map(
                0_u32..FOLD_SPAN_MINUTES as u32,
                proptest::collection::btree_map(0_usize..3, rollup_strategy(), 1..=3),
                0..=4,
            )
        ) {
            let span: FoldedSpan = minutes
                .into_iter()
                .map(|(m, kinds)| (m, kinds.into_iter().map(|(k, r)| (Kind::ALL[k], r)).collect()))
                .collect();
            let (mask, bytes) = encode_folded_span(&span);
            prop_assert_eq!(mask.count_ones() as usize, span.len());
            prop_assert_eq!(decode_folded_span(mask, &bytes).unwrap(), span);
            // A row cut short, or with more than its minutes, is an error.
            if !bytes.is_empty() {
                prop_assert!(decode_folded_span(mask, &bytes[..bytes.len() - 1]).is_err());
                prop_assert!(decode_folded_span(mask, &[bytes.as_slice(), &[0]].concat()).is_err());
            }
            prop_assert!(decode_folded_span(mask | 1 << FOLD_SPAN_MINUTES, &bytes).is_err());
        }
    }

    #[test]
    fn a_minute_of_default_cadence_packs_into_two_thirds_of_the_byte_form() {
        // 12 successes per kind, latencies log-uniform over 30 ms..3 s as
        // bench/gen_history.py draws them, sends with their delivery times.
        let mut minute = FoldedMinute::new();
        let mut seed = 7_u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1_u64 << 53) as f64
        };
        for kind in Kind::ALL {
            let rollup = minute.entry(kind).or_default();
            for _ in 0..12 {
                let latency = (30_f64.ln() + next() * (100_f64).ln()).exp() as i64;
                rollup.ok += 1;
                rollup.latency.add(latency);
                if kind != Kind::Login {
                    rollup.confirmed += 1;
                    rollup.delivered.add(latency + 20 + (next() * 380.0) as i64);
                }
            }
        }
        let packed = encode_folded(&minute).len();
        let bytes = encode_folded_bytes(&minute).len();
        assert!(
            packed * 3 <= bytes * 2,
            "packed {packed} bytes, byte form {bytes}"
        );
    }

    #[test]
    fn a_folded_minute_survives_its_encoding() {
        let mut latency = Histogram::default();
        for v in [90, 120, 4_000] {
            latency.add(v);
        }
        let mut delivered = Histogram::default();
        delivered.add(300);
        let minute: FoldedMinute = [
            (
                Kind::Login,
                Rollup {
                    ok: 3,
                    latency: latency.clone(),
                    ..Rollup::default()
                },
            ),
            (
                Kind::SendGroup,
                Rollup {
                    ok: 2,
                    latency,
                    confirmed: 1,
                    delivered,
                },
            ),
        ]
        .into_iter()
        .collect();
        let packed = encode_folded(&minute);
        assert_eq!(decode_folded(&packed).unwrap(), minute);
        assert_eq!(
            decode_folded(&encode_folded_bytes(&minute)).unwrap(),
            minute
        );
        // Cut short, or with a byte too many: an error, never another minute.
        assert!(decode_folded(&packed[..packed.len() - 1]).is_err());
        assert!(decode_folded(&[packed.as_slice(), &[0]].concat()).is_err());
        assert!(decode_folded(&[7, 1, 0, 0, 0]).is_err());
        assert!(decode_folded(&[0, 1, 0, 5, 1]).is_err());
    }

    #[test]
    fn a_damaged_histogram_is_an_error() {
        assert!(Histogram::decode(&[0x80]).is_err());
        // A bucket whose count should follow, and does not.
        assert!(Histogram::decode(&[1]).is_err());
    }
}
