-- The event store's hot reads, as plain text rendered once per process
-- (shared/store/recorders.py): the library builds its statements anew for
-- every call. {events} is the event store's table, {channel} its NOTIFY
-- channel, filled in by the recorder.

-- name: select_events [postgres]
SELECT originator_id, originator_version, topic, state FROM {events}
WHERE originator_id = :originator_id ORDER BY originator_version;

-- name: select_events_after [postgres]
SELECT originator_id, originator_version, topic, state FROM {events}
WHERE originator_id = :originator_id AND originator_version > :after ORDER BY originator_version;

-- name: select_aggregates [postgres]
-- Every event of several aggregates at once (claimWork loads its batch so).
SELECT originator_id, originator_version, topic, state FROM {events}
WHERE originator_id = ANY(:originator_ids) ORDER BY originator_id, originator_version;

-- name: select_notifications [postgres]
SELECT notification_id, originator_id, originator_version, topic, state FROM {events}
WHERE notification_id >= :start ORDER BY notification_id LIMIT :limit;

-- name: notify_events [postgres]
NOTIFY {channel};
