-- Storage over years (docs/database.md "What it costs"): the raw attempts
-- keyed by their natural key alone, and successes folded into per-minute
-- rollups once they leave the raw window.

-- The natural key is the table's key: no rowid, no second copy of the key
-- in a unique index (which was as large as the table).
CREATE TABLE attempts_keyed (
    target TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    prober TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('login', 'send_direct', 'send_group')),
    latency_ms INTEGER,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'fail', 'inconclusive')),
    http_status INTEGER,
    error_code TEXT,
    error TEXT,
    reason TEXT,
    delivery TEXT,
    delivered_ms INTEGER,
    PRIMARY KEY (target, started_at_ms, prober, kind)
) WITHOUT ROWID;

INSERT INTO attempts_keyed (target, started_at_ms, prober, kind, latency_ms, outcome, http_status,
                            error_code, error, reason, delivery, delivered_ms)
SELECT target, started_at_ms, prober, kind, latency_ms, outcome, http_status,
       error_code, error, reason, delivery, delivered_ms
FROM attempts;

DROP VIEW attempt_log;
DROP TABLE attempts;
ALTER TABLE attempts_keyed RENAME TO attempts;

-- Successful attempts past the raw window, folded into the bucket of
-- their target, minute and prober: per kind, how many, and histograms of
-- their latency and of their confirmed deliveries' times
-- (src/attempt/rollup.rs gives the encoding); NULL while none is folded.
-- Failed and inconclusive attempts, and sends whose delivery is missing,
-- are never folded: they stay in `attempts` as the evidence.
ALTER TABLE minute_buckets ADD COLUMN folded BLOB;

-- Per target: every minute before `before_minute` may have folded
-- successes. A success written into a prober's minute whose successes are
-- folded is taken as counted already, so a re-import is not counted twice.
CREATE TABLE fold_horizons (
    target TEXT PRIMARY KEY,
    before_minute INTEGER NOT NULL
) WITHOUT ROWID;

CREATE VIEW attempt_log AS
SELECT target,
       prober,
       kind,
       strftime('%Y-%m-%dT%H:%M:%fZ', started_at_ms / 1000.0, 'unixepoch') AS started_at,
       latency_ms,
       outcome,
       http_status,
       error_code,
       error,
       reason,
       delivery,
       delivered_ms
FROM attempts;

CREATE VIEW attempt_rollup_log AS
SELECT target,
       prober,
       strftime('%Y-%m-%dT%H:%M:%SZ', minute * 60, 'unixepoch') AS minute,
       ok_attempts,
       minute * 60 AS minute_unix
FROM minute_buckets
WHERE folded IS NOT NULL;
