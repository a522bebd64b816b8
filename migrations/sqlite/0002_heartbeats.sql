-- Per prober and UTC minute: the prober was alive, and what its scheduler
-- did. Tells a no-data minute caused by a prober that was down apart from
-- one where the prober ran but every attempt was inconclusive or skipped.
CREATE TABLE prober_heartbeats (
    prober TEXT NOT NULL,
    minute INTEGER NOT NULL,
    scheduled INTEGER NOT NULL,
    started INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    finished INTEGER NOT NULL,
    PRIMARY KEY (prober, minute)
) WITHOUT ROWID;

CREATE VIEW prober_heartbeat_log AS
SELECT prober,
       strftime('%Y-%m-%dT%H:%M:%SZ', minute * 60, 'unixepoch') AS minute,
       scheduled,
       started,
       skipped,
       finished,
       minute * 60 AS minute_unix
FROM prober_heartbeats;
