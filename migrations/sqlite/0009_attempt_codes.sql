-- Small integer codes for the words every raw attempt repeats (docs/database.md
-- "What it costs"): kind 0 login, 1 send_direct, 2 send_group; outcome 0 ok,
-- 1 fail, 2 inconclusive; delivery 0 confirmed, 1 missing. SQLite stores
-- 0 and 1 in the record header alone, so a success's three words cost
-- nothing. `attempt_log` still shows the words.
CREATE TABLE attempts_coded (
    target TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    prober TEXT NOT NULL,
    kind INTEGER NOT NULL CHECK (kind IN (0, 1, 2)),
    latency_ms INTEGER,
    outcome INTEGER NOT NULL CHECK (outcome IN (0, 1, 2)),
    http_status INTEGER,
    error_code TEXT,
    error TEXT,
    reason TEXT,
    delivery INTEGER CHECK (delivery IN (0, 1)),
    delivered_ms INTEGER,
    PRIMARY KEY (target, started_at_ms, prober, kind)
) WITHOUT ROWID;

INSERT INTO attempts_coded (target, started_at_ms, prober, kind, latency_ms, outcome, http_status,
                            error_code, error, reason, delivery, delivered_ms)
SELECT target, started_at_ms, prober,
       CASE kind WHEN 'login' THEN 0 WHEN 'send_direct' THEN 1 ELSE 2 END,
       latency_ms,
       CASE outcome WHEN 'ok' THEN 0 WHEN 'fail' THEN 1 ELSE 2 END,
       http_status, error_code, error, reason,
       CASE delivery WHEN 'confirmed' THEN 0 WHEN 'missing' THEN 1 END,
       delivered_ms
FROM attempts;

DROP VIEW attempt_log;
DROP TABLE attempts;
ALTER TABLE attempts_coded RENAME TO attempts;

CREATE VIEW attempt_log AS
SELECT target,
       prober,
       CASE kind WHEN 0 THEN 'login' WHEN 1 THEN 'send_direct' ELSE 'send_group' END AS kind,
       strftime('%Y-%m-%dT%H:%M:%fZ', started_at_ms / 1000.0, 'unixepoch') AS started_at,
       latency_ms,
       CASE outcome WHEN 0 THEN 'ok' WHEN 1 THEN 'fail' ELSE 'inconclusive' END AS outcome,
       http_status,
       error_code,
       error,
       reason,
       CASE delivery WHEN 0 THEN 'confirmed' WHEN 1 THEN 'missing' END AS delivery,
       delivered_ms
FROM attempts;
