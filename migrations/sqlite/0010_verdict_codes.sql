-- A minute's verdict as a small integer code (docs/database.md "What it
-- costs"): 0 available, 1 failure, 2 no_data, 3 excluded. SQLite stores 0
-- and 1 in the record header alone. `minute_verdicts` still shows the words.
CREATE TABLE verdicts_coded (
    target TEXT NOT NULL,
    minute INTEGER NOT NULL,
    verdict INTEGER NOT NULL CHECK (verdict IN (0, 1, 2, 3)),
    ok_attempts INTEGER NOT NULL,
    fail_attempts INTEGER NOT NULL,
    inconclusive_attempts INTEGER NOT NULL,
    probers INTEGER NOT NULL,
    slow_ok_attempts BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (target, minute)
) WITHOUT ROWID;

INSERT INTO verdicts_coded (target, minute, verdict, ok_attempts, fail_attempts, inconclusive_attempts,
                            probers, slow_ok_attempts)
SELECT target, minute,
       CASE verdict WHEN 'available' THEN 0 WHEN 'failure' THEN 1 WHEN 'no_data' THEN 2 ELSE 3 END,
       ok_attempts, fail_attempts, inconclusive_attempts, probers, slow_ok_attempts
FROM verdicts;

DROP VIEW minute_verdicts;
DROP TABLE verdicts;
ALTER TABLE verdicts_coded RENAME TO verdicts;

CREATE VIEW minute_verdicts AS
SELECT target,
       strftime('%Y-%m-%dT%H:%M:%SZ', minute * 60, 'unixepoch') AS minute,
       CASE verdict WHEN 0 THEN 'available' WHEN 1 THEN 'failure' WHEN 2 THEN 'no_data' ELSE 'excluded' END
           AS verdict,
       ok_attempts,
       fail_attempts,
       inconclusive_attempts,
       probers,
       minute * 60 AS minute_unix,
       slow_ok_attempts
FROM verdicts;
