-- Deleting an expired aggregate's events and read-model rows (shared/store/retention.py).
-- {events} is the event store's table, filled in by the store.

-- name: last_event [postgres]
SELECT MAX(notification_id) AS last FROM {events} WHERE originator_id = :originator_id;

-- name: last_event [sqlite]
SELECT MAX(rowid) AS last FROM {events} WHERE originator_id = :originator_id;

-- name: delete_events
DELETE FROM {events} WHERE originator_id = :originator_id;

-- name: delete_task
DELETE FROM tj_tasks WHERE task_id = :task_id;

-- name: delete_task_pending
DELETE FROM tj_pending WHERE task_id = :task_id;

-- name: delete_task_claim
DELETE FROM tj_claims WHERE task_id = :task_id;

-- name: delete_task_dependencies
-- Dependency rows go with the dependent.
DELETE FROM tj_dependencies WHERE dependent_task_id = :task_id;

-- name: delete_task_group
DELETE FROM tj_task_groups WHERE task_group_id = :task_group_id;

-- name: delete_artifact
DELETE FROM tj_artifacts WHERE task_id = :task_id AND run_id = :run_id AND name = :name;

-- name: delete_object
DELETE FROM tj_objects WHERE name = :name;

-- name: delete_task_worker_runs
DELETE FROM tj_worker_runs WHERE task_id = :task_id;

-- name: delete_task_queue
DELETE FROM tj_task_queues WHERE task_queue_id = :task_queue_id;

-- name: delete_worker
DELETE FROM tj_workers WHERE task_queue_id = :task_queue_id AND worker_group = :worker_group
    AND worker_id = :worker_id;

-- name: delete_task_history
-- A task's history goes with it; its group's own rows go with the group.
DELETE FROM tj_history WHERE task_id = :task_id;

-- name: delete_group_history
DELETE FROM tj_history WHERE task_group_id = :task_group_id AND task_id IS NULL;
