-- Folded successes move out of the minute buckets into one row per
-- target, UTC hour and prober (src/attempt/rollup.rs `encode_folded_hour`):
-- `minutes` has bit m set for each minute m of the hour with rollups, and
-- `rollups` holds each such minute's folded form after its length (two
-- bytes, big-endian), in ascending order.
CREATE TABLE folded_hours (
    target_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    prober_id INTEGER NOT NULL,
    minutes INTEGER NOT NULL,
    rollups BLOB NOT NULL,
    PRIMARY KEY (target_id, hour, prober_id)
) WITHOUT ROWID;

INSERT INTO folded_hours (target_id, hour, prober_id, minutes, rollups)
SELECT target_id, minute / 60, prober_id, SUM(1 << (minute % 60)),
       CAST(group_concat(unhex(printf('%04x', length(folded))) || folded, '' ORDER BY minute) AS BLOB)
FROM minute_buckets
WHERE folded IS NOT NULL
GROUP BY target_id, minute / 60, prober_id
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
JOIN folded_hours AS f ON f.target_id = b.target_id AND f.hour = b.minute / 60 AND f.prober_id = b.prober_id
JOIN target_names AS t ON t.id = b.target_id
JOIN prober_names AS p ON p.id = b.prober_id
WHERE (f.minutes >> (b.minute % 60)) & 1 = 1;
