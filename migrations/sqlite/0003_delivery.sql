-- Delivery confirmation (docs/providers.md "Delivery confirmation"): whether the
-- recipient account saw a send, and how long after the send started.
ALTER TABLE attempts ADD COLUMN delivery TEXT;
ALTER TABLE attempts ADD COLUMN delivered_ms BIGINT;

DROP VIEW attempt_log;
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
       reason,
       delivery,
       delivered_ms
FROM attempts;
