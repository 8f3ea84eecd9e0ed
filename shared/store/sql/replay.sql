-- Dropping read models before a rebuild (shared/store/replay.py): dropped, not
-- emptied, so a replay also moves a table to its current schema.

-- name: drop_tj_tasks
DROP TABLE IF EXISTS tj_tasks;

-- name: drop_tj_pending
DROP TABLE IF EXISTS tj_pending;

-- name: drop_tj_claims
DROP TABLE IF EXISTS tj_claims;

-- name: drop_tj_task_groups
DROP TABLE IF EXISTS tj_task_groups;

-- name: drop_tj_dependencies
DROP TABLE IF EXISTS tj_dependencies;

-- name: drop_tj_artifacts
DROP TABLE IF EXISTS tj_artifacts;

-- name: drop_tj_objects
DROP TABLE IF EXISTS tj_objects;

-- name: drop_tj_task_queues
DROP TABLE IF EXISTS tj_task_queues;

-- name: drop_tj_workers
DROP TABLE IF EXISTS tj_workers;

-- name: drop_tj_worker_runs
DROP TABLE IF EXISTS tj_worker_runs;

-- name: drop_tj_history
DROP TABLE IF EXISTS tj_history;

-- name: dump
-- Every row of a read model ({table}: one of replay.PROJECTIONS'), for `taskjournal audit`.
SELECT * FROM {table};
