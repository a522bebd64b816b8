-- improbe schema, SQLite flavour. Instants are integers (Unix milliseconds,
-- or whole minutes/hours since the epoch) so both backends store and compare
-- them identically; the views below show them as readable UTC timestamps.

-- Every attempt, as measured. The unique key makes re-imports idempotent.
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    prober TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('login', 'send_direct', 'send_group')),
    started_at_ms INTEGER NOT NULL,
    latency_ms INTEGER,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'fail', 'inconclusive')),
    http_status INTEGER,
    error_code TEXT,
    error TEXT,
    reason TEXT,
    -- Leads with target and time, so it also serves evidence queries by period.
    UNIQUE (target, started_at_ms, prober, kind)
);

-- Per prober and minute: how many attempts ended each way. Kept when raw
-- attempts are pruned.
CREATE TABLE minute_buckets (
    target TEXT NOT NULL,
    minute INTEGER NOT NULL,
    prober TEXT NOT NULL,
    ok_attempts INTEGER NOT NULL,
    fail_attempts INTEGER NOT NULL,
    inconclusive_attempts INTEGER NOT NULL,
    PRIMARY KEY (target, minute, prober)
) WITHOUT ROWID;

-- Per target and minute, over all probers: the verdict improbe decided.
-- Minutes without a row are no_data (or excluded, inside a window).
CREATE TABLE verdicts (
    target TEXT NOT NULL,
    minute INTEGER NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('available', 'failure', 'no_data', 'excluded')),
    ok_attempts INTEGER NOT NULL,
    fail_attempts INTEGER NOT NULL,
    inconclusive_attempts INTEGER NOT NULL,
    probers INTEGER NOT NULL,
    PRIMARY KEY (target, minute)
) WITHOUT ROWID;

-- Available and failure minutes per UTC hour, so a Service Month is summed
-- from at most ~750 rows instead of ~44,000.
CREATE TABLE verdict_hours (
    target TEXT NOT NULL,
    hour INTEGER NOT NULL,
    available_minutes INTEGER NOT NULL,
    failure_minutes INTEGER NOT NULL,
    PRIMARY KEY (target, hour)
) WITHOUT ROWID;

CREATE TABLE exclusions (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL CHECK (end_ms > start_ms),
    reason TEXT NOT NULL,
    announced_at_ms INTEGER,
    source TEXT NOT NULL CHECK (source IN ('config', 'cli')),
    recorded_at_ms INTEGER NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE INDEX exclusions_by_target ON exclusions (target, start_ms);

-- The figures of `improbe sla --format json`, one row per target and month.
CREATE TABLE service_months (
    target TEXT NOT NULL,
    month INTEGER NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    total_minutes INTEGER NOT NULL,
    available_minutes INTEGER NOT NULL,
    failure_minutes INTEGER NOT NULL,
    excluded_minutes INTEGER NOT NULL,
    no_data_minutes INTEGER NOT NULL,
    availability_percent TEXT NOT NULL,
    meets_commitment INTEGER NOT NULL,
    credit_percent INTEGER NOT NULL,
    credit_amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    claim_opens TEXT NOT NULL,
    claim_deadline TEXT NOT NULL,
    complete INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (target, month)
);

CREATE VIEW minute_verdicts AS
SELECT target,
       strftime('%Y-%m-%dT%H:%M:%SZ', minute * 60, 'unixepoch') AS minute,
       verdict,
       ok_attempts,
       fail_attempts,
       inconclusive_attempts,
       probers,
       minute * 60 AS minute_unix
FROM verdicts;

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
       reason
FROM attempts;
