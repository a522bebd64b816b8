-- Small integer codes for the words every raw attempt repeats (docs/database.md
-- "What it costs"): kind 0 login, 1 send_direct, 2 send_group; outcome 0 ok,
-- 1 fail, 2 inconclusive; delivery 0 confirmed, 1 missing. `attempt_log`
-- still shows the words. Every day partition is rewritten once.
DROP VIEW attempt_log;

-- The day partitions were made LIKE attempts, so each holds its own copy
-- of the word checks beside the one it inherits: both go.
ALTER TABLE attempts DROP CONSTRAINT attempts_keyed_kind_check;
ALTER TABLE attempts DROP CONSTRAINT attempts_keyed_outcome_check;
DO $$
DECLARE
    word_check RECORD;
BEGIN
    FOR word_check IN
        SELECT c.conrelid::regclass AS day, c.conname AS name
        FROM pg_constraint AS c JOIN pg_inherits AS i ON i.inhrelid = c.conrelid
        WHERE i.inhparent = to_regclass('attempts')
          AND c.conname IN ('attempts_keyed_kind_check', 'attempts_keyed_outcome_check')
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', word_check.day, word_check.name);
    END LOOP;
END
$$;
ALTER TABLE attempts
    ALTER COLUMN kind TYPE SMALLINT
        USING CASE kind WHEN 'login' THEN 0 WHEN 'send_direct' THEN 1 ELSE 2 END,
    ALTER COLUMN outcome TYPE SMALLINT
        USING CASE outcome WHEN 'ok' THEN 0 WHEN 'fail' THEN 1 ELSE 2 END,
    ALTER COLUMN delivery TYPE SMALLINT
        USING CASE delivery WHEN 'confirmed' THEN 0 WHEN 'missing' THEN 1 END;
ALTER TABLE attempts ADD CONSTRAINT attempts_kind_check CHECK (kind IN (0, 1, 2));
ALTER TABLE attempts ADD CONSTRAINT attempts_outcome_check CHECK (outcome IN (0, 1, 2));
ALTER TABLE attempts ADD CONSTRAINT attempts_delivery_check CHECK (delivery IN (0, 1));

-- The day rewrite keeps what is not foldable: as src/store/rollups.rs's
-- `foldable!`, in codes.
CREATE OR REPLACE FUNCTION improbe_rewrite_day(day BIGINT, fold BOOLEAN, prune JSONB)
RETURNS TABLE (total BIGINT, kept BIGINT, swap_us BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    name TEXT := 'attempts_' || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD');
    copy TEXT := name || '_rewrite';
    swap_start TIMESTAMPTZ;
BEGIN
    EXECUTE format('SELECT count(*) FROM %I', name) INTO total;
    EXECUTE format('CREATE TABLE %I (LIKE attempts INCLUDING ALL)', copy);
    EXECUTE format('INSERT INTO %I SELECT a.* FROM %I AS a WHERE NOT ($1 AND a.outcome = 0 '
                   'AND (a.delivery IS NULL OR a.delivery <> 1)) AND NOT EXISTS '
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

CREATE VIEW attempt_log AS
SELECT target,
       prober,
       CASE kind WHEN 0 THEN 'login' WHEN 1 THEN 'send_direct' ELSE 'send_group' END AS kind,
       to_timestamp(started_at_ms / 1000.0) AS started_at,
       latency_ms,
       CASE outcome WHEN 0 THEN 'ok' WHEN 1 THEN 'fail' ELSE 'inconclusive' END AS outcome,
       http_status,
       error_code,
       error,
       reason,
       CASE delivery WHEN 0 THEN 'confirmed' WHEN 1 THEN 'missing' END AS delivery,
       delivered_ms
FROM attempts;
