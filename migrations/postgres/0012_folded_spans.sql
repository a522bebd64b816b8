-- Folded successes move out of the minute buckets into one row per
-- target, prober and ten minutes (src/attempt/rollup.rs `FOLD_SPAN_MINUTES`
-- and `encode_folded_span`): `first_minute` is a multiple of ten,
-- `minutes` has bit m set when minute `first_minute + m` has rollups, and
-- `rollups` holds each such minute's folded form after its length (two
-- bytes, big-endian), in ascending order. Folding then adds rows where it
-- rewrote every bucket, which left a dead version of each behind.
CREATE TABLE folded_spans (
    target_id INTEGER NOT NULL,
    prober_id INTEGER NOT NULL,
    first_minute BIGINT NOT NULL,
    minutes BIGINT NOT NULL,
    rollups BYTEA NOT NULL,
    PRIMARY KEY (target_id, first_minute, prober_id)
);

INSERT INTO folded_spans (target_id, prober_id, first_minute, minutes, rollups)
SELECT target_id, prober_id, minute - minute % 10, bit_or(CAST(1 AS BIGINT) << CAST(minute % 10 AS INTEGER)),
       string_agg(int2send(CAST(length(folded) AS SMALLINT)) || folded, ''::bytea ORDER BY minute)
FROM minute_buckets
WHERE folded IS NOT NULL
GROUP BY target_id, minute - minute % 10, prober_id
ORDER BY 1, 3, 2;

DROP VIEW attempt_rollup_log;

-- Rebuilt without the column: a dropped column's bytes would stay in
-- every row kept so far.
CREATE TABLE minute_buckets_counted (
    target_id INTEGER NOT NULL,
    prober_id INTEGER NOT NULL,
    minute BIGINT NOT NULL,
    ok_attempts BIGINT NOT NULL,
    fail_attempts BIGINT NOT NULL,
    inconclusive_attempts BIGINT NOT NULL,
    slow_ok_attempts BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (target_id, minute, prober_id)
);
INSERT INTO minute_buckets_counted
SELECT target_id, prober_id, minute, ok_attempts, fail_attempts, inconclusive_attempts, slow_ok_attempts
FROM minute_buckets
ORDER BY 1, 3, 2;
DROP TABLE minute_buckets;
ALTER TABLE minute_buckets_counted RENAME TO minute_buckets;

CREATE VIEW attempt_rollup_log AS
SELECT t.name AS target,
       p.name AS prober,
       to_timestamp(b.minute * 60) AS minute,
       b.ok_attempts,
       b.minute * 60 AS minute_unix
FROM minute_buckets AS b
JOIN folded_spans AS f
  ON f.target_id = b.target_id AND f.first_minute = b.minute - b.minute % 10 AND f.prober_id = b.prober_id
JOIN target_names AS t ON t.id = b.target_id
JOIN prober_names AS p ON p.id = b.prober_id
WHERE (f.minutes >> CAST(b.minute % 10 AS INTEGER)) & 1 = 1;
