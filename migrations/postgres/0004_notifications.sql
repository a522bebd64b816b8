-- The notifications outbox (docs/notifications.md "Notifications"). Every event is written
-- here, once per channel, before anything is sent: UNIQUE (event_key,
-- channel) makes each decision once across probers, and a lease
-- (claimed_by, claimed_until_ms) makes each sending once.
CREATE TABLE notifications (
    id BIGSERIAL PRIMARY KEY,
    event_key TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    next_try_ms BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_until_ms BIGINT,
    sent_at_ms BIGINT,
    sent_by TEXT,
    last_error TEXT,
    UNIQUE (event_key, channel)
);

CREATE INDEX notifications_unsent ON notifications (channel, id) WHERE sent_at_ms IS NULL;

CREATE VIEW notification_log AS
SELECT id,
       event_key,
       channel,
       target,
       event,
       to_timestamp(created_at_ms / 1000.0) AS created_at,
       tries,
       to_timestamp(sent_at_ms / 1000.0) AS sent_at,
       sent_by,
       last_error
FROM notifications;
