-- The inline projection's statements on PostgreSQL, one per kind of row and
-- commit: `:rows` is a JSON array of the parameter sets projection.sql takes
-- one at a time (shared/store/recorders.py). A commit shared by many saves
-- then runs a dozen statements, not a dozen per save. Where a key may come
-- twice (an upsert's conflict may not touch a row twice) the last row wins,
-- as it would one statement after another.
--
-- The whole commit goes to the server at once, so an event's notification
-- id is not known to the client when these are sent: a row names its event
-- (event_id, event_version) and the statement looks the id up in {events},
-- the event store's table, which the same transaction has just appended to.
--
-- Every table is reached through its index, never by a join the planner may
-- choose for the JSON rows: it takes any set-returning function for 100 rows
-- and a statement's cached generic plan then hashes the whole table (the
-- event log, all tasks, the pending queue) on every commit, under the event
-- store's lock. So the notification id is a scalar subquery (one index probe
-- per row) and the task ids of rows to delete are given as `= ANY(ARRAY(...))`
-- (an index scan). tests/integration/test_plans.py checks the plans.

-- name: insert_task [postgres]
INSERT INTO tj_tasks (task_id, task_group_id, task_queue_id, created_position, state, ever_completed, ever_resolved,
                      deadline, expires, definition, status)
SELECT DISTINCT ON (r.task_id) r.task_id, r.task_group_id, r.task_queue_id,
       (SELECT e.notification_id FROM {events} e
        WHERE e.originator_id = r.event_id AND e.originator_version = r.event_version), r.state,
       r.ever_completed, r.ever_resolved, r.deadline, r.expires, r.definition, r.status
FROM ROWS FROM (jsonb_to_recordset(:rows::jsonb) AS (task_id text, task_group_id text, task_queue_id text,
     event_id uuid, event_version bigint, state text, ever_completed integer, ever_resolved integer,
     deadline bigint, expires bigint, definition text, status text)) WITH ORDINALITY AS r
ORDER BY r.task_id, r.ordinality DESC
ON CONFLICT (task_id) DO UPDATE SET state = excluded.state, status = excluded.status;

-- name: update_task [postgres]
UPDATE tj_tasks t SET state = r.state, ever_completed = r.ever_completed, ever_resolved = r.ever_resolved,
    status = r.status
FROM (SELECT DISTINCT ON (task_id) * FROM ROWS FROM (jsonb_to_recordset(:rows::jsonb) AS (task_id text,
      state text, ever_completed integer, ever_resolved integer, status text)) WITH ORDINALITY AS s
      ORDER BY task_id, ordinality DESC) r
WHERE t.task_id = r.task_id;

-- name: insert_dependency [postgres]
INSERT INTO tj_dependencies (required_task_id, dependent_task_id, requires)
SELECT required_task_id, dependent_task_id, requires
FROM jsonb_to_recordset(:rows::jsonb) AS r(required_task_id text, dependent_task_id text, requires text)
ON CONFLICT (required_task_id, dependent_task_id) DO NOTHING;

-- name: upsert_pending [postgres]
INSERT INTO tj_pending (task_id, run_id, task_queue_id, priority, inserted, deadline)
SELECT DISTINCT ON (task_id) task_id, run_id, task_queue_id, priority, inserted, deadline
FROM ROWS FROM (jsonb_to_recordset(:rows::jsonb) AS (task_id text, run_id integer, task_queue_id text,
     priority integer, inserted bigint, deadline bigint)) WITH ORDINALITY AS r
ORDER BY task_id, ordinality DESC
ON CONFLICT (task_id) DO UPDATE SET run_id = excluded.run_id, inserted = excluded.inserted,
    priority = excluded.priority,
    leased_until = CASE WHEN tj_pending.run_id <> excluded.run_id THEN 0 ELSE tj_pending.leased_until END
WHERE tj_pending.run_id <> excluded.run_id OR tj_pending.priority <> excluded.priority;

-- name: delete_pending [postgres]
DELETE FROM tj_pending WHERE task_id = ANY(ARRAY(SELECT task_id FROM jsonb_to_recordset(:rows::jsonb) AS r(task_id text)));

-- name: upsert_claim [postgres]
INSERT INTO tj_claims (task_id, run_id, task_queue_id, worker_group, worker_id, claimed, taken_until)
SELECT DISTINCT ON (task_id) task_id, run_id, task_queue_id, worker_group, worker_id, claimed, taken_until
FROM ROWS FROM (jsonb_to_recordset(:rows::jsonb) AS (task_id text, run_id integer, task_queue_id text,
     worker_group text, worker_id text, claimed bigint, taken_until bigint)) WITH ORDINALITY AS r
ORDER BY task_id, ordinality DESC
ON CONFLICT (task_id) DO UPDATE SET run_id = excluded.run_id, worker_group = excluded.worker_group,
    worker_id = excluded.worker_id, claimed = excluded.claimed, taken_until = excluded.taken_until;

-- name: delete_claim [postgres]
DELETE FROM tj_claims WHERE task_id = ANY(ARRAY(SELECT task_id FROM jsonb_to_recordset(:rows::jsonb) AS r(task_id text)));

-- name: upsert_task_group [postgres]
INSERT INTO tj_task_groups (task_group_id, scheduler_id, expires, sealed, view)
SELECT DISTINCT ON (task_group_id) task_group_id, scheduler_id, expires, sealed, view
FROM ROWS FROM (jsonb_to_recordset(:rows::jsonb) AS (task_group_id text, scheduler_id text, expires bigint,
     sealed bigint, view text)) WITH ORDINALITY AS r
ORDER BY task_group_id, ordinality DESC
ON CONFLICT (task_group_id) DO UPDATE SET expires = excluded.expires, sealed = excluded.sealed, view = excluded.view;

-- name: upsert_artifact [postgres]
INSERT INTO tj_artifacts (task_id, run_id, name, storage_type, content_type, expires, present, details)
SELECT DISTINCT ON (task_id, run_id, artifact_name) task_id, run_id, artifact_name, storage_type, content_type,
       expires, present, details
FROM ROWS FROM (jsonb_to_recordset(:rows::jsonb) AS (task_id text, run_id integer, artifact_name text,
     storage_type text, content_type text, expires bigint, present integer, details text)) WITH ORDINALITY AS r
ORDER BY task_id, run_id, artifact_name, ordinality DESC
ON CONFLICT (task_id, run_id, name) DO UPDATE SET storage_type = excluded.storage_type,
    expires = excluded.expires, present = excluded.present, details = excluded.details;

-- name: upsert_object [postgres]
INSERT INTO tj_objects (name, project_id, upload_id, expires, upload_expires, finished)
SELECT DISTINCT ON (object_name) object_name, project_id, upload_id, expires, upload_expires, finished
FROM ROWS FROM (jsonb_to_recordset(:rows::jsonb) AS (object_name text, project_id text, upload_id text,
     expires bigint, upload_expires bigint, finished bigint)) WITH ORDINALITY AS r
ORDER BY object_name, ordinality DESC
ON CONFLICT (name) DO UPDATE SET project_id = excluded.project_id, upload_id = excluded.upload_id,
    expires = excluded.expires, upload_expires = excluded.upload_expires, finished = excluded.finished;

-- name: upsert_task_queue [postgres]
INSERT INTO tj_task_queues (task_queue_id, provisioner_id, expires, last_date_active, description, stability)
SELECT DISTINCT ON (task_queue_id) task_queue_id, provisioner_id, expires, last_date_active, description, stability
FROM ROWS FROM (jsonb_to_recordset(:rows::jsonb) AS (task_queue_id text, provisioner_id text, expires bigint,
     last_date_active bigint, description text, stability text)) WITH ORDINALITY AS r
ORDER BY task_queue_id, ordinality DESC
ON CONFLICT (task_queue_id) DO UPDATE SET expires = excluded.expires, last_date_active = excluded.last_date_active,
    description = excluded.description, stability = excluded.stability;

-- name: upsert_worker [postgres]
INSERT INTO tj_workers (task_queue_id, worker_group, worker_id, first_claim, last_date_active, expires,
                        quarantine_until, quarantine_details)
SELECT DISTINCT ON (task_queue_id, worker_group, worker_id) task_queue_id, worker_group, worker_id, first_claim,
       last_date_active, expires, quarantine_until, quarantine_details
FROM ROWS FROM (jsonb_to_recordset(:rows::jsonb) AS (task_queue_id text, worker_group text, worker_id text,
     first_claim bigint, last_date_active bigint, expires bigint, quarantine_until bigint,
     quarantine_details text)) WITH ORDINALITY AS r
ORDER BY task_queue_id, worker_group, worker_id, ordinality DESC
ON CONFLICT (task_queue_id, worker_group, worker_id) DO UPDATE SET last_date_active = excluded.last_date_active,
    expires = excluded.expires, quarantine_until = excluded.quarantine_until,
    quarantine_details = excluded.quarantine_details;

-- name: insert_worker_run [postgres]
INSERT INTO tj_worker_runs (task_id, run_id, task_queue_id, worker_group, worker_id, started)
SELECT task_id, run_id, task_queue_id, worker_group, worker_id, started
FROM jsonb_to_recordset(:rows::jsonb) AS r(task_id text, run_id integer, task_queue_id text, worker_group text,
     worker_id text, started bigint)
ON CONFLICT (task_id, run_id) DO NOTHING;

-- name: insert_history [postgres]
INSERT INTO tj_history (position, task_id, task_group_id, run_id, event, time, actor, reason, changes)
SELECT (SELECT e.notification_id FROM {events} e
        WHERE e.originator_id = r.event_id AND e.originator_version = r.event_version),
       r.task_id, r.task_group_id, r.run_id, r.event, r.time, r.actor, r.reason, r.changes
FROM jsonb_to_recordset(:rows::jsonb) AS r(event_id uuid, event_version bigint, task_id text, task_group_id text,
     run_id integer, event text, time text, actor text, reason text, changes text)
ON CONFLICT (position) DO NOTHING;

-- name: advance_position [postgres]
-- Under the event store's lock the newest event is this commit's last.
INSERT INTO tj_position (name, position) SELECT 'inline', max(notification_id) FROM {events}
ON CONFLICT (name) DO UPDATE SET position = excluded.position;
