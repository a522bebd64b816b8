-- Latency contracts (docs/contracts.md): of each bucket's and minute's ok
-- attempts, how many were slower than the target's `slow_after`. Counted
-- as attempts are stored, against the threshold in `latency_rules`; when a
-- target's threshold changes, the counts of every minute whose attempts are
-- still stored are recounted (`Store::apply_latency_rules`).
ALTER TABLE minute_buckets ADD COLUMN slow_ok_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE verdicts ADD COLUMN slow_ok_attempts BIGINT NOT NULL DEFAULT 0;

-- The threshold each target's slow counts are taken against. A row stays
-- when the config drops the rule (the counts are then ignored), so they are
-- still right if the rule comes back; a target that never had a rule has
-- no row, and its slow counts are 0.
CREATE TABLE latency_rules (
    target TEXT PRIMARY KEY,
    slow_after_ms BIGINT NOT NULL,
    recorded_at_ms BIGINT NOT NULL
);

DROP VIEW minute_verdicts;
CREATE VIEW minute_verdicts AS
SELECT target,
       strftime('%Y-%m-%dT%H:%M:%SZ', minute * 60, 'unixepoch') AS minute,
       verdict,
       ok_attempts,
       fail_attempts,
       inconclusive_attempts,
       probers,
       minute * 60 AS minute_unix,
       slow_ok_attempts
FROM verdicts;

-- Each period's figures in the contract's own intervals (docs/contracts.md
-- "Contracts"), beside the minute figures; under `tencent-im` they are equal.
ALTER TABLE service_months ADD COLUMN contract TEXT NOT NULL DEFAULT 'tencent-im';
ALTER TABLE service_months ADD COLUMN unit_minutes BIGINT NOT NULL DEFAULT 1;
ALTER TABLE service_months ADD COLUMN total_units BIGINT;
ALTER TABLE service_months ADD COLUMN down_units BIGINT;
ALTER TABLE service_months ADD COLUMN excluded_units BIGINT;
ALTER TABLE service_months ADD COLUMN no_data_units BIGINT;
ALTER TABLE service_months ADD COLUMN available_units BIGINT;
UPDATE service_months SET total_units = total_minutes, down_units = failure_minutes,
    excluded_units = excluded_minutes, no_data_units = no_data_minutes,
    available_units = available_minutes;
