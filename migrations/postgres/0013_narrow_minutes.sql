-- The per-minute rows in four-byte counts (two for the verdict and the
-- probers), ordered so no column waits on padding: a verdict row's data
-- goes from 56 bytes to 32, a bucket's from 48 to 32, and the copy below
-- leaves their keys' index pages full. On one folded target-day of
-- bench/gen_history.py: verdicts 1,147 KB -> about 830 KB for 8,640 rows,
-- buckets 1,212 KB -> about 870 KB (docs/database.md "What it costs").
-- SQLite stores integers in as few bytes as they need already.
--
-- Their keys' index pages fill only half as the minutes of many targets
-- are appended in the middle of them: the storage round rebuilds each
-- such index beside the writes once its table has grown by half since the
-- last rebuild, which `index_rebuilds` remembers (src/store/postgres/mod.rs
-- `MINUTE_INDEXES_DUE`).
CREATE TABLE index_rebuilds (
    relation TEXT PRIMARY KEY,
    heap_bytes BIGINT NOT NULL
);

DROP VIEW minute_verdicts;
DROP VIEW attempt_rollup_log;

CREATE TABLE verdicts_narrow (
    target_id INTEGER NOT NULL,
    verdict SMALLINT NOT NULL CHECK (verdict IN (0, 1, 2, 3)),
    probers SMALLINT NOT NULL,
    minute BIGINT NOT NULL,
    ok_attempts INTEGER NOT NULL,
    fail_attempts INTEGER NOT NULL,
    inconclusive_attempts INTEGER NOT NULL,
    slow_ok_attempts INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT verdicts_pkey PRIMARY KEY (target_id, minute)
);
INSERT INTO verdicts_narrow (target_id, verdict, probers, minute, ok_attempts, fail_attempts,
                             inconclusive_attempts, slow_ok_attempts)
SELECT target_id, verdict, probers, minute, ok_attempts, fail_attempts, inconclusive_attempts, slow_ok_attempts
FROM verdicts
ORDER BY target_id, minute;
DROP TABLE verdicts;
ALTER TABLE verdicts_narrow RENAME TO verdicts;
ALTER TABLE verdicts RENAME CONSTRAINT verdicts_narrow_verdict_check TO verdicts_verdict_check;

CREATE TABLE minute_buckets_narrow (
    target_id INTEGER NOT NULL,
    prober_id INTEGER NOT NULL,
    minute BIGINT NOT NULL,
    ok_attempts INTEGER NOT NULL,
    fail_attempts INTEGER NOT NULL,
    inconclusive_attempts INTEGER NOT NULL,
    slow_ok_attempts INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT minute_buckets_pkey PRIMARY KEY (target_id, minute, prober_id)
);
INSERT INTO minute_buckets_narrow
SELECT target_id, prober_id, minute, ok_attempts, fail_attempts, inconclusive_attempts, slow_ok_attempts
FROM minute_buckets
ORDER BY target_id, minute, prober_id;
DROP TABLE minute_buckets;
ALTER TABLE minute_buckets_narrow RENAME TO minute_buckets;

-- The views keep the column types dashboards have read so far.
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
FROM verdicts AS v
JOIN target_names AS t ON t.id = v.target_id;

CREATE VIEW attempt_rollup_log AS
SELECT t.name AS target,
       p.name AS prober,
       to_timestamp(b.minute * 60) AS minute,
       CAST(b.ok_attempts AS BIGINT) AS ok_attempts,
       b.minute * 60 AS minute_unix
FROM minute_buckets AS b
JOIN folded_spans AS f
  ON f.target_id = b.target_id AND f.first_minute = b.minute - b.minute % 10 AND f.prober_id = b.prober_id
JOIN target_names AS t ON t.id = b.target_id
JOIN prober_names AS p ON p.id = b.prober_id
WHERE (f.minutes >> CAST(b.minute % 10 AS INTEGER)) & 1 = 1;
