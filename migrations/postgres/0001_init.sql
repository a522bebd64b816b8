-- improbe schema, PostgreSQL flavour. Instants are integers (Unix
-- milliseconds, or whole minutes/hours since the epoch) so both backends store
-- and compare them identically; the views below show them as timestamptz.

CREATE TABLE attempts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target TEXT NOT NULL,
    prober TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('login', 'send_direct', 'send_group')),
    started_at_ms BIGINT NOT NULL,
    latency_ms BIGINT,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'fail', 'inconclusive')),
    http_status INTEGER,
    error_code TEXT,
    error TEXT,
    reason TEXT,
    -- Leads with target and time, so it also serves evidence queries by period.
    UNIQUE (target, started_at_ms, prober, kind)
);

CREATE TABLE minute_buckets (
    target TEXT NOT NULL,
    minute BIGINT NOT NULL,
    prober TEXT NOT NULL,
    ok_attempts BIGINT NOT NULL,
    fail_attempts BIGINT NOT NULL,
    inconclusive_attempts BIGINT NOT NULL,
    PRIMARY KEY (target, minute, prober)
);

CREATE TABLE verdicts (
    target TEXT NOT NULL,
    minute BIGINT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('available', 'failure', 'no_data', 'excluded')),
    ok_attempts BIGINT NOT NULL,
    fail_attempts BIGINT NOT NULL,
    inconclusive_attempts BIGINT NOT NULL,
    probers BIGINT NOT NULL,
    PRIMARY KEY (target, minute)
);

CREATE TABLE verdict_hours (
    target TEXT NOT NULL,
    hour BIGINT NOT NULL,
    available_minutes BIGINT NOT NULL,
    failure_minutes BIGINT NOT NULL,
    PRIMARY KEY (target, hour)
);

CREATE TABLE exclusions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL CHECK (end_ms > start_ms),
    reason TEXT NOT NULL,
    announced_at_ms BIGINT,
    source TEXT NOT NULL CHECK (source IN ('config', 'cli')),
    recorded_at_ms BIGINT NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE INDEX exclusions_by_target ON exclusions (target, start_ms);

CREATE TABLE service_months (
    target TEXT NOT NULL,
    month INTEGER NOT NULL,
    first_day DATE NOT NULL,
    last_day DATE NOT NULL,
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ NOT NULL,
    total_minutes BIGINT NOT NULL,
    available_minutes BIGINT NOT NULL,
    failure_minutes BIGINT NOT NULL,
    excluded_minutes BIGINT NOT NULL,
    no_data_minutes BIGINT NOT NULL,
    availability_percent NUMERIC(8, 4) NOT NULL,
    meets_commitment BOOLEAN NOT NULL,
    credit_percent INTEGER NOT NULL,
    credit_amount NUMERIC NOT NULL,
    currency TEXT NOT NULL,
    claim_opens TIMESTAMPTZ NOT NULL,
    claim_deadline TIMESTAMPTZ NOT NULL,
    complete BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (target, month)
);

CREATE VIEW minute_verdicts AS
SELECT target,
       to_timestamp(minute * 60) AS minute,
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
       to_timestamp(started_at_ms / 1000.0) AS started_at,
       latency_ms,
       outcome,
       http_status,
       error_code,
       error,
       reason
FROM attempts;
