-- Settled hours packed (docs/database.md "What it costs"): once an hour
-- has left the raw window, the storage round moves its rows of `verdicts`
-- and `minute_buckets` into one row per target and hour (and prober, for
-- the buckets), about a tenth of their bytes (src/store/sql/packed.rs).
-- `verdicts` (the 60 minutes of `hour`, ten bytes each): verdict code
-- (255: no verdict), probers, then the ok, fail, inconclusive and slow ok
-- counts, two bytes each, big-endian. `buckets`: the four counts, two
-- bytes each; a minute with none has no bucket. A write that changes a
-- packed hour's verdicts moves the hour back into the rows first; fresh
-- attempts of a packed hour add to `minute_buckets`, whose rows add to
-- the packed counts until the hour is re-decided.
CREATE TABLE packed_verdicts (
    target_id INTEGER NOT NULL,
    hour BIGINT NOT NULL,
    verdicts BYTEA NOT NULL CHECK (length(verdicts) = 600),
    PRIMARY KEY (target_id, hour)
);
CREATE TABLE packed_buckets (
    target_id INTEGER NOT NULL,
    prober_id INTEGER NOT NULL,
    hour BIGINT NOT NULL,
    buckets BYTEA NOT NULL CHECK (length(buckets) = 480),
    PRIMARY KEY (target_id, hour, prober_id)
);

-- A rebuild is also due when the key has grown to more than twice its
-- table (and 128 KB more): the rows were packed away, their pages empty.
ALTER TABLE index_rebuilds ADD COLUMN index_bytes BIGINT NOT NULL DEFAULT 0;

DROP VIEW minute_verdicts;
DROP VIEW attempt_rollup_log;

-- The 60 minutes of each packed hour, as the rows they were.
CREATE VIEW packed_minute_verdicts AS
SELECT p.target_id,
       p.hour * 60 + m AS minute,
       CAST(get_byte(p.verdicts, m * 10) AS SMALLINT) AS verdict,
       CAST(get_byte(p.verdicts, m * 10 + 1) AS SMALLINT) AS probers,
       get_byte(p.verdicts, m * 10 + 2) * 256 + get_byte(p.verdicts, m * 10 + 3) AS ok_attempts,
       get_byte(p.verdicts, m * 10 + 4) * 256 + get_byte(p.verdicts, m * 10 + 5) AS fail_attempts,
       get_byte(p.verdicts, m * 10 + 6) * 256 + get_byte(p.verdicts, m * 10 + 7) AS inconclusive_attempts,
       get_byte(p.verdicts, m * 10 + 8) * 256 + get_byte(p.verdicts, m * 10 + 9) AS slow_ok_attempts
FROM packed_verdicts AS p
CROSS JOIN generate_series(0, 59) AS m
WHERE get_byte(p.verdicts, m * 10) <> 255;

CREATE VIEW packed_minute_buckets AS
SELECT p.target_id,
       p.prober_id,
       p.hour * 60 + m AS minute,
       get_byte(p.buckets, m * 8) * 256 + get_byte(p.buckets, m * 8 + 1) AS ok_attempts,
       get_byte(p.buckets, m * 8 + 2) * 256 + get_byte(p.buckets, m * 8 + 3) AS fail_attempts,
       get_byte(p.buckets, m * 8 + 4) * 256 + get_byte(p.buckets, m * 8 + 5) AS inconclusive_attempts,
       get_byte(p.buckets, m * 8 + 6) * 256 + get_byte(p.buckets, m * 8 + 7) AS slow_ok_attempts
FROM packed_buckets AS p
CROSS JOIN generate_series(0, 59) AS m
WHERE substring(p.buckets FROM m * 8 + 1 FOR 8) <> '\x0000000000000000'::bytea;

CREATE VIEW minute_verdicts AS
SELECT t.name AS target,
       to_timestamp(v.minute * 60) AS minute,
       CASE v.verdict WHEN 0 THEN 'available' WHEN 1 THEN 'failure' WHEN 2 THEN 'no_data' ELSE 'excluded' END
           AS verdict,
       CAST(v.ok_attempts AS BIGINT) AS ok_attempts,
       CAST(v.fail_attempts AS BIGINT) AS fail_attempts,
       CAST(v.inconclusive_attempts AS BIGINT) AS inconclusive_attempts,
       CAST(v.probers AS BIGINT) AS probers,
       v.minute * 60 AS minute_unix,
       CAST(v.slow_ok_attempts AS BIGINT) AS slow_ok_attempts
FROM (SELECT target_id, minute, verdict, probers, ok_attempts, fail_attempts, inconclusive_attempts,
             slow_ok_attempts FROM verdicts
      UNION ALL
      SELECT target_id, minute, verdict, probers, ok_attempts, fail_attempts, inconclusive_attempts,
             slow_ok_attempts FROM packed_minute_verdicts) AS v
JOIN target_names AS t ON t.id = v.target_id;

-- A packed bucket and the rows fresh attempts added to it are one bucket.
CREATE VIEW attempt_rollup_log AS
SELECT t.name AS target,
       p.name AS prober,
       to_timestamp(b.minute * 60) AS minute,
       CAST(SUM(b.ok_attempts) AS BIGINT) AS ok_attempts,
       b.minute * 60 AS minute_unix
FROM (SELECT target_id, prober_id, minute, ok_attempts FROM minute_buckets
      UNION ALL
      SELECT target_id, prober_id, minute, ok_attempts FROM packed_minute_buckets) AS b
JOIN folded_spans AS f
  ON f.target_id = b.target_id AND f.first_minute = b.minute - b.minute % 10 AND f.prober_id = b.prober_id
JOIN target_names AS t ON t.id = b.target_id
JOIN prober_names AS p ON p.id = b.prober_id
WHERE (f.minutes >> CAST(b.minute % 10 AS INTEGER)) & 1 = 1
GROUP BY t.name, p.name, b.minute;
