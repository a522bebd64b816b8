-- A receiver that refuses an event for good (a 4xx other than 408 and 429)
-- would otherwise hold every later event of its channel behind it: the
-- event is marked given up instead, and the channel moves on (docs/notifications.md
-- "Notifications").
ALTER TABLE notifications ADD COLUMN gave_up_at_ms BIGINT;

DROP INDEX notifications_unsent;
CREATE INDEX notifications_unsent ON notifications (channel, id)
    WHERE sent_at_ms IS NULL AND gave_up_at_ms IS NULL;

DROP VIEW notification_log;
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
       to_timestamp(gave_up_at_ms / 1000.0) AS gave_up_at,
       last_error
FROM notifications;
