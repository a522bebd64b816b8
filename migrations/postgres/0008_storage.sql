-- Storage over years (docs/database.md "What it costs"): raw attempts in
-- one partition per UTC day, keyed by their natural key alone, so that
-- folding and retention replace or drop whole partitions instead of
-- deleting rows one by one; successes folded into per-minute rollups once
-- they leave the raw window.

-- Creates the missing day partitions of `attempts` for the UTC `days`
-- (days since the epoch). Each is made apart and
-- attached, which takes a lock on `attempts` that writers do not wait for
-- (CREATE TABLE ... PARTITION OF would take one they do). Probers creating
-- the same day are serialised by an advisory lock, taken only when a day
-- is missing.
CREATE FUNCTION improbe_attempt_days(days BIGINT[]) RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
    day BIGINT;
    name TEXT;
    created INTEGER := 0;
BEGIN
    FOREACH day IN ARRAY days LOOP
        name := 'attempts_' || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD');
        IF to_regclass(quote_ident(name)) IS NULL THEN
            PERFORM pg_advisory_xact_lock(29675202278285926);
            -- The advisory lock refreshes no catalogue snapshot: a day
            -- another prober created meanwhile shows as a duplicate.
            BEGIN
                EXECUTE format('CREATE TABLE %I (LIKE attempts INCLUDING ALL)', name);
                EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (started_at_ms >= %s AND started_at_ms < %s)',
                               name, name || '_day', day * 86400000, (day + 1) * 86400000);
                EXECUTE format('ALTER TABLE attempts ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                               name, day * 86400000, (day + 1) * 86400000);
                created := created + 1;
            EXCEPTION WHEN duplicate_table THEN
                NULL;
            END;
        END IF;
    END LOOP;
    RETURN created;
END
$$;

-- Locks one day partition against writes until the transaction ends.
CREATE FUNCTION improbe_lock_day(name TEXT) RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('LOCK TABLE %I IN SHARE MODE', name);
END
$$;

-- Replaces the partition of UTC day `day` by a copy without its successes
-- (when `fold`: they were just folded into their minute buckets) and
-- without the attempts of the targets in `prune` (target -> milliseconds)
-- that started before their instant. The old partition's file goes at
-- once. Detaching takes a lock writers wait for, held only for the swap
-- itself and given up after 1 s (the round then fails and is retried)
-- rather than queue every writer behind a long reader.
CREATE FUNCTION improbe_rewrite_day(day BIGINT, fold BOOLEAN, prune JSONB)
RETURNS TABLE (total BIGINT, kept BIGINT, swap_us BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    name TEXT := 'attempts_' || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD');
    copy TEXT := name || '_rewrite';
    swap_start TIMESTAMPTZ;
BEGIN
    EXECUTE format('SELECT count(*) FROM %I', name) INTO total;
    EXECUTE format('CREATE TABLE %I (LIKE attempts INCLUDING ALL)', copy);
    EXECUTE format('INSERT INTO %I SELECT a.* FROM %I AS a WHERE NOT ($1 AND a.outcome = ''ok'' '
                   'AND (a.delivery IS NULL OR a.delivery <> ''missing'')) AND NOT EXISTS '
                   '(SELECT 1 FROM jsonb_each_text($2) AS p WHERE p.key = a.target AND a.started_at_ms < CAST(p.value AS BIGINT))',
                   copy, name) USING fold, prune;
    GET DIAGNOSTICS kept = ROW_COUNT;
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (started_at_ms >= %s AND started_at_ms < %s)',
                   copy, name || '_day', day * 86400000, (day + 1) * 86400000);
    PERFORM set_config('lock_timeout', '1s', true);
    swap_start := clock_timestamp();
    EXECUTE format('ALTER TABLE attempts DETACH PARTITION %I', name);
    EXECUTE format('DROP TABLE %I', name);
    EXECUTE format('ALTER TABLE %I RENAME TO %I', copy, name);
    EXECUTE format('ALTER TABLE attempts ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                   name, day * 86400000, (day + 1) * 86400000);
    PERFORM set_config('lock_timeout', '0', true);
    -- From asking for the lock writers wait for to holding everything the
    -- commit needs: how long a writer of another day could wait.
    swap_us := CAST(EXTRACT(EPOCH FROM clock_timestamp() - swap_start) * 1000000 AS BIGINT);
    RETURN NEXT;
END
$$;

CREATE TABLE attempts_keyed (
    target TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    prober TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('login', 'send_direct', 'send_group')),
    latency_ms BIGINT,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'fail', 'inconclusive')),
    http_status INTEGER,
    error_code TEXT,
    error TEXT,
    reason TEXT,
    delivery TEXT,
    delivered_ms BIGINT,
    PRIMARY KEY (target, started_at_ms, prober, kind)
) PARTITION BY RANGE (started_at_ms);

DROP VIEW attempt_log;
ALTER TABLE attempts RENAME TO attempts_unpartitioned;
ALTER TABLE attempts_keyed RENAME TO attempts;

DO $$
DECLARE
    first_day BIGINT;
    last_day BIGINT;
BEGIN
    SELECT floor(min(started_at_ms) / 86400000.0), floor(max(started_at_ms) / 86400000.0)
      INTO first_day, last_day FROM attempts_unpartitioned;
    IF first_day IS NOT NULL THEN
        PERFORM improbe_attempt_days(ARRAY(SELECT DISTINCT CAST(floor(started_at_ms / 86400000.0) AS BIGINT)
                                           FROM attempts_unpartitioned));
    END IF;
END
$$;

INSERT INTO attempts (target, started_at_ms, prober, kind, latency_ms, outcome, http_status,
                      error_code, error, reason, delivery, delivered_ms)
SELECT target, started_at_ms, prober, kind, latency_ms, outcome, http_status,
       error_code, error, reason, delivery, delivered_ms
FROM attempts_unpartitioned;
DROP TABLE attempts_unpartitioned;

-- Successful attempts past the raw window, folded into the bucket of
-- their target, minute and prober: per kind, how many, and histograms of
-- their latency and of their confirmed deliveries' times
-- (src/attempt/rollup.rs gives the encoding); NULL while none is folded.
-- Failed and inconclusive attempts, and sends whose delivery is missing,
-- are never folded: they stay in `attempts` as the evidence.
ALTER TABLE minute_buckets ADD COLUMN folded BYTEA;

-- Per target: every minute before `before_minute` may have folded
-- successes. A success written into a prober's minute whose successes are
-- folded is taken as counted already, so a re-import is not counted twice.
CREATE TABLE fold_horizons (
    target TEXT PRIMARY KEY,
    before_minute BIGINT NOT NULL
);

CREATE VIEW attempt_log AS
SELECT target,
       prober,
       kind,
       to_timestamp(started_at_ms / 1000.0) AS started_at,
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
       to_timestamp(minute * 60) AS minute,
       ok_attempts,
       minute * 60 AS minute_unix
FROM minute_buckets
WHERE folded IS NOT NULL;
