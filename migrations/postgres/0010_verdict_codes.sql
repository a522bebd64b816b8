-- A minute's verdict as a small integer code (docs/database.md "What it
-- costs"): 0 available, 1 failure, 2 no_data, 3 excluded.
-- `minute_verdicts` still shows the words.
DROP VIEW minute_verdicts;
ALTER TABLE verdicts DROP CONSTRAINT verdicts_verdict_check;
ALTER TABLE verdicts ALTER COLUMN verdict TYPE SMALLINT
    USING CASE verdict WHEN 'available' THEN 0 WHEN 'failure' THEN 1 WHEN 'no_data' THEN 2 ELSE 3 END;
ALTER TABLE verdicts ADD CONSTRAINT verdicts_verdict_check CHECK (verdict IN (0, 1, 2, 3));

CREATE VIEW minute_verdicts AS
SELECT target,
       to_timestamp(minute * 60) AS minute,
       CASE verdict WHEN 0 THEN 'available' WHEN 1 THEN 'failure' WHEN 2 THEN 'no_data' ELSE 'excluded' END
           AS verdict,
       ok_attempts,
       fail_attempts,
       inconclusive_attempts,
       probers,
       minute * 60 AS minute_unix,
       slow_ok_attempts
FROM verdicts;
