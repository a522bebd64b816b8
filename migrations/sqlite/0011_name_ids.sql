-- Each target and prober named once (docs/database.md "What it costs"):
-- the rows written for every attempt and every minute (`attempts`,
-- `minute_buckets`, `verdicts`) carry small integer ids instead of the
-- names, which SQLite stores in one byte (0 and 1 in the record header
-- alone). The views still show the names. Ids are never reused or deleted.
CREATE TABLE target_names (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE prober_names (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
INSERT INTO target_names (name)
SELECT target FROM attempts UNION SELECT target FROM minute_buckets UNION SELECT target FROM verdicts ORDER BY 1;
INSERT INTO prober_names (name)
SELECT prober FROM attempts UNION SELECT prober FROM minute_buckets ORDER BY 1;

DROP VIEW attempt_log;
DROP VIEW attempt_rollup_log;
DROP VIEW minute_verdicts;

CREATE TABLE attempts_named (
    target_id INTEGER NOT NULL,
    started_at_ms INTEGER NOT NULL,
    prober_id INTEGER NOT NULL,
    kind INTEGER NOT NULL CHECK (kind IN (0, 1, 2)),
    latency_ms INTEGER,
    outcome INTEGER NOT NULL CHECK (outcome IN (0, 1, 2)),
    http_status INTEGER,
    error_code TEXT,
    error TEXT,
    reason TEXT,
    delivery INTEGER CHECK (delivery IN (0, 1)),
    delivered_ms INTEGER,
    PRIMARY KEY (target_id, started_at_ms, prober_id, kind)
) WITHOUT ROWID;
INSERT INTO attempts_named
SELECT t.id, a.started_at_ms, p.id, a.kind, a.latency_ms, a.outcome, a.http_status, a.error_code, a.error,
       a.reason, a.delivery, a.delivered_ms
FROM attempts AS a JOIN target_names AS t ON t.name = a.target JOIN prober_names AS p ON p.name = a.prober
ORDER BY 1, 2, 3, 4;
DROP TABLE attempts;
ALTER TABLE attempts_named RENAME TO attempts;

CREATE TABLE minute_buckets_named (
    target_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    prober_id INTEGER NOT NULL,
    ok_attempts INTEGER NOT NULL,
    fail_attempts INTEGER NOT NULL,
    inconclusive_attempts INTEGER NOT NULL,
    slow_ok_attempts BIGINT NOT NULL DEFAULT 0,
    folded BLOB,
    PRIMARY KEY (target_id, minute, prober_id)
) WITHOUT ROWID;
INSERT INTO minute_buckets_named
SELECT t.id, b.minute, p.id, b.ok_attempts, b.fail_attempts, b.inconclusive_attempts, b.slow_ok_attempts, b.folded
FROM minute_buckets AS b JOIN target_names AS t ON t.name = b.target JOIN prober_names AS p ON p.name = b.prober
ORDER BY 1, 2, 3;
DROP TABLE minute_buckets;
ALTER TABLE minute_buckets_named RENAME TO minute_buckets;

CREATE TABLE verdicts_named (
    target_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    verdict INTEGER NOT NULL CHECK (verdict IN (0, 1, 2, 3)),
    ok_attempts INTEGER NOT NULL,
    fail_attempts INTEGER NOT NULL,
    inconclusive_attempts INTEGER NOT NULL,
    probers INTEGER NOT NULL,
    slow_ok_attempts BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (target_id, minute)
) WITHOUT ROWID;
INSERT INTO verdicts_named
SELECT t.id, v.minute, v.verdict, v.ok_attempts, v.fail_attempts, v.inconclusive_attempts, v.probers,
       v.slow_ok_attempts
FROM verdicts AS v JOIN target_names AS t ON t.name = v.target
ORDER BY 1, 2;
DROP TABLE verdicts;
ALTER TABLE verdicts_named RENAME TO verdicts;

CREATE VIEW attempt_log AS
SELECT t.name AS target,
       p.name AS prober,
       CASE a.kind WHEN 0 THEN 'login' WHEN 1 THEN 'send_direct' ELSE 'send_group' END AS kind,
       strftime('%Y-%m-%dT%H:%M:%fZ', a.started_at_ms / 1000.0, 'unixepoch') AS started_at,
       a.latency_ms,
       CASE a.outcome WHEN 0 THEN 'ok' WHEN 1 THEN 'fail' ELSE 'inconclusive' END AS outcome,
       a.http_status,
       a.error_code,
       a.error,
       a.reason,
       CASE a.delivery WHEN 0 THEN 'confirmed' WHEN 1 THEN 'missing' END AS delivery,
       a.delivered_ms
FROM attempts AS a
JOIN target_names AS t ON t.id = a.target_id
JOIN prober_names AS p ON p.id = a.prober_id;

CREATE VIEW attempt_rollup_log AS
SELECT t.name AS target,
       p.name AS prober,
       strftime('%Y-%m-%dT%H:%M:%SZ', b.minute * 60, 'unixepoch') AS minute,
       b.ok_attempts,
       b.minute * 60 AS minute_unix
FROM minute_buckets AS b
JOIN target_names AS t ON t.id = b.target_id
JOIN prober_names AS p ON p.id = b.prober_id
WHERE b.folded IS NOT NULL;

CREATE VIEW minute_verdicts AS
SELECT t.name AS target,
       strftime('%Y-%m-%dT%H:%M:%SZ', v.minute * 60, 'unixepoch') AS minute,
       CASE v.verdict WHEN 0 THEN 'available' WHEN 1 THEN 'failure' WHEN 2 THEN 'no_data' ELSE 'excluded' END
           AS verdict,
       v.ok_attempts,
       v.fail_attempts,
       v.inconclusive_attempts,
       v.probers,
       v.minute * 60 AS minute_unix,
       v.slow_ok_attempts
FROM verdicts AS v
JOIN target_names AS t ON t.id = v.target_id;
