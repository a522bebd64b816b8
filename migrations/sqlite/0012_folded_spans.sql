-- Folded successes move out of the minute buckets into one row per
-- target, prober and ten minutes (src/attempt/rollup.rs `FOLD_SPAN_MINUTES`
-- and `encode_folded_span`): `first_minute` is a multiple of ten,
-- `minutes` has bit m set when minute `first_minute + m` has rollups, and
-- `rollups` holds each such minute's folded form after its length (two
-- bytes, big-endian), in ascending order.
CREATE TABLE folded_spans (
    target_id INTEGER NOT NULL,
    first_minute INTEGER NOT NULL,
    prober_id INTEGER NOT NULL,
    minutes INTEGER NOT NULL,
    rollups BLOB NOT NULL,
    PRIMARY KEY (target_id, first_minute, prober_id)
) WITHOUT ROWID;

INSERT INTO folded_spans (target_id, first_minute, prober_id, minutes, rollups)
SELECT target_id, minute - minute % 10, prober_id, SUM(1 << (minute % 10)),
       CAST(group_concat(unhex(printf('%04x', length(folded))) || folded, '' ORDER BY minute) AS BLOB)
FROM minute_buckets
WHERE folded IS NOT NULL
GROUP BY target_id, minute - minute % 10, prober_id
ORDER BY 1, 2, 3;

DROP VIEW attempt_rollup_log;
ALTER TABLE minute_buckets DROP COLUMN folded;

CREATE VIEW attempt_rollup_log AS
SELECT t.name AS target,
       p.name AS prober,
       strftime('%Y-%m-%dT%H:%M:%SZ', b.minute * 60, 'unixepoch') AS minute,
       b.ok_attempts,
       b.minute * 60 AS minute_unix
FROM minute_buckets AS b
JOIN folded_spans AS f
  ON f.target_id = b.target_id AND f.first_minute = b.minute - b.minute % 10 AND f.prober_id = b.prober_id
JOIN target_names AS t ON t.id = b.target_id
JOIN prober_names AS p ON p.id = b.prober_id
WHERE (f.minutes >> (b.minute % 10)) & 1 = 1;
