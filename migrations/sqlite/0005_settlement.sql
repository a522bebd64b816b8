-- Many probers, one database (docs/many-regions.md "Many regions"). A write stores
-- attempts and their buckets and appends the minutes it touched here; the
-- minutes' verdicts are re-decided afterwards by whichever prober takes
-- them first, and only the rows that re-decision read are deleted.
CREATE TABLE pending_minutes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    minute INTEGER NOT NULL
);
CREATE INDEX pending_minutes_by_target ON pending_minutes (target, minute);

-- Per prober: everything it measured that started before
-- `complete_until_ms` is in the database (its watermark), as of
-- `reported_at_ms`.
CREATE TABLE prober_watermarks (
    prober TEXT PRIMARY KEY,
    complete_until_ms INTEGER NOT NULL,
    reported_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
