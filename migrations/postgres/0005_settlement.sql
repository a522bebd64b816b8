-- Many probers, one database (docs/many-regions.md "Many regions"). A write stores
-- attempts and their buckets and appends the minutes it touched here; the
-- minutes' verdicts are re-decided afterwards, under per-target locks, by
-- whichever prober takes them first. Rows are only ever inserted by writers
-- and deleted (by sequence number) by the re-decision that read them, so
-- writers and re-deciders never wait on each other's rows.
CREATE TABLE pending_minutes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target TEXT NOT NULL,
    minute BIGINT NOT NULL
);
CREATE INDEX pending_minutes_by_target ON pending_minutes (target, minute);

-- Per prober: everything it measured that started before
-- `complete_until_ms` is in the database (its watermark), as of
-- `reported_at_ms`. Announcements wait until every live prober has passed a
-- minute.
CREATE TABLE prober_watermarks (
    prober TEXT PRIMARY KEY,
    complete_until_ms BIGINT NOT NULL,
    reported_at_ms BIGINT NOT NULL
);
