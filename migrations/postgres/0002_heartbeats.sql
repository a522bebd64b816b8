-- Per prober and UTC minute: the prober was alive, and what its scheduler
-- did. Tells a no-data minute caused by a prober that was down apart from
-- one where the prober ran but every attempt was inconclusive or skipped.
CREATE TABLE prober_heartbeats (
    prober TEXT NOT NULL,
    minute BIGINT NOT NULL,
    scheduled BIGINT NOT NULL,
    started BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    finished BIGINT NOT NULL,
    PRIMARY KEY (prober, minute)
);

CREATE VIEW prober_heartbeat_log AS
SELECT prober,
       to_timestamp(minute * 60) AS minute,
       scheduled,
       started,
       skipped,
       finished,
       minute * 60 AS minute_unix
FROM prober_heartbeats;
