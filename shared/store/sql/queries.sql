-- Queries served from the read models. Parameters use :name.

-- name: task_definition
SELECT definition FROM tj_tasks WHERE task_id = :task_id;

-- name: task_status
SELECT status FROM tj_tasks WHERE task_id = :task_id;

-- name: group_body
SELECT view AS body FROM tj_task_groups WHERE task_group_id = :task_group_id;

-- name: group_admission
SELECT scheduler_id, expires, sealed FROM tj_task_groups WHERE task_group_id = :task_group_id;

-- name: group_members
SELECT definition, status FROM tj_tasks WHERE task_group_id = :task_group_id
ORDER BY created_position LIMIT :limit OFFSET :offset;

-- name: group_member_ids
SELECT task_id FROM tj_tasks WHERE task_group_id = :task_group_id ORDER BY created_position;

-- name: group_states
-- Every member's state, in the group's order (the web view's counts and filter).
SELECT task_id, state FROM tj_tasks WHERE task_group_id = :task_group_id ORDER BY created_position;

-- name: group_size
SELECT COUNT(*) AS n FROM tj_tasks WHERE task_group_id = :task_group_id;

-- name: pending_count
SELECT COUNT(*) AS n FROM tj_pending WHERE task_queue_id = :task_queue_id AND deadline > :now;

-- name: pending_page
SELECT p.task_id, p.run_id, p.inserted, t.definition FROM tj_pending p JOIN tj_tasks t ON t.task_id = p.task_id
WHERE p.task_queue_id = :task_queue_id AND (p.inserted > :after_inserted OR (p.inserted = :after_inserted AND p.task_id > :after_task_id))
ORDER BY p.inserted, p.task_id LIMIT :limit;

-- name: claimed_page
SELECT c.task_id, c.run_id, c.worker_group, c.worker_id, c.claimed, t.definition FROM tj_claims c JOIN tj_tasks t ON t.task_id = c.task_id
WHERE c.task_queue_id = :task_queue_id AND (c.claimed > :after_claimed OR (c.claimed = :after_claimed AND c.task_id > :after_task_id))
ORDER BY c.claimed, c.task_id LIMIT :limit;

-- name: expired_claims
SELECT task_id, run_id, taken_until FROM tj_claims WHERE taken_until <= :now ORDER BY taken_until LIMIT :limit;

-- name: past_deadline
SELECT task_id FROM tj_tasks WHERE deadline <= :now AND state IN ('unscheduled', 'pending', 'running') LIMIT :limit;

-- name: lease_expired_claims [postgres]
-- Take up to :limit expired claims that no resolver holds, until :lease_until:
-- replicas take disjoint batches (SKIP LOCKED, and a leased row no longer
-- qualifies); the Task aggregate still decides each expiry (ADR 0017).
-- The ids come as an array: a join with them may hash the whole table
-- (projection_batch.sql says why).
UPDATE tj_claims SET leased_until = :lease_until
WHERE task_id = ANY(ARRAY(
    SELECT task_id FROM tj_claims WHERE taken_until <= :now AND leased_until < :now
    ORDER BY taken_until LIMIT :limit FOR UPDATE SKIP LOCKED
))
RETURNING task_id, run_id, taken_until;

-- name: lease_expired_claims [sqlite]
-- One process owns a SQLite store: nobody to share the work with.
SELECT task_id, run_id, taken_until FROM tj_claims WHERE taken_until <= :now
ORDER BY taken_until LIMIT :limit;

-- name: lease_past_deadline [postgres]
-- The deadline resolver's share, as lease_expired_claims.
UPDATE tj_tasks SET leased_until = :lease_until
WHERE task_id = ANY(ARRAY(
    SELECT task_id FROM tj_tasks
    WHERE deadline <= :now AND state IN ('unscheduled', 'pending', 'running') AND leased_until < :now
    ORDER BY deadline LIMIT :limit FOR UPDATE SKIP LOCKED
))
RETURNING task_id;

-- name: lease_past_deadline [sqlite]
SELECT task_id FROM tj_tasks WHERE deadline <= :now AND state IN ('unscheduled', 'pending', 'running')
ORDER BY deadline LIMIT :limit;

-- name: expired_claims_backlog
-- Expired claims not resolved yet (the autoscaler's gauge): an index range count.
SELECT COUNT(*) AS n FROM tj_claims WHERE taken_until <= :now;

-- name: position
SELECT position FROM tj_position WHERE name = 'inline';

-- name: lease_pending [postgres]
-- Take up to :limit claimable entries for a short lease, highest priority
-- first, oldest first; the Task aggregate decides whether each claim holds.
-- The ids come as an array: joined with them, a queue of many pending tasks
-- was scanned whole at every claimWork (projection_batch.sql says why).
UPDATE tj_pending SET leased_until = :lease_until
WHERE task_id = ANY(ARRAY(
    SELECT task_id FROM tj_pending
    WHERE task_queue_id = :task_queue_id AND leased_until < :now AND deadline > :now
    ORDER BY priority DESC, inserted, task_id LIMIT :limit FOR UPDATE SKIP LOCKED
))
RETURNING task_id, run_id, priority, inserted;

-- name: lease_pending [sqlite]
UPDATE tj_pending SET leased_until = :lease_until
WHERE task_id IN (
    SELECT task_id FROM tj_pending
    WHERE task_queue_id = :task_queue_id AND leased_until < :now AND deadline > :now
    ORDER BY priority DESC, inserted, task_id LIMIT :limit
)
RETURNING task_id, run_id, priority, inserted;

-- name: release_lease
UPDATE tj_pending SET leased_until = 0 WHERE task_id = :task_id AND run_id = :run_id;

-- name: dependents_page
SELECT t.definition, t.status FROM tj_dependencies d JOIN tj_tasks t ON t.task_id = d.dependent_task_id
WHERE d.required_task_id = :task_id ORDER BY d.dependent_task_id LIMIT :limit OFFSET :offset;

-- name: ready_dependents [postgres]
-- Unscheduled dependents of any of :task_ids (one query for a batch of
-- resolved tasks), none of whose dependencies is unsatisfied.
-- A dependency is satisfied once it ever completed (all-resolved: ever
-- resolved); a rerun does not unsatisfy it (spec §5). The same test as
-- unsatisfied_dependency and Journal.dependency_satisfied.
-- The ids come through a subquery the planner cannot see into: every plan
-- then costs the same, so PostgreSQL keeps one generic plan instead of
-- planning the four-table query again at each call (0.3 ms, ten times the run).
SELECT DISTINCT d.dependent_task_id AS task_id FROM tj_dependencies d JOIN tj_tasks t ON t.task_id = d.dependent_task_id
WHERE d.required_task_id = ANY(ARRAY(SELECT unnest(:task_ids::text[]))) AND t.state = 'unscheduled' AND NOT EXISTS (
    SELECT 1 FROM tj_dependencies o LEFT JOIN tj_tasks r ON r.task_id = o.required_task_id
    WHERE o.dependent_task_id = d.dependent_task_id
      AND NOT (COALESCE(r.ever_completed, 0) = 1 OR (o.requires = 'all-resolved' AND COALESCE(r.ever_resolved, 0) = 1))
)
ORDER BY d.dependent_task_id;

-- name: ready_dependents [sqlite]
-- As above; :task_ids is a JSON array.
SELECT DISTINCT d.dependent_task_id AS task_id FROM tj_dependencies d JOIN tj_tasks t ON t.task_id = d.dependent_task_id
WHERE d.required_task_id IN (SELECT value FROM json_each(:task_ids)) AND t.state = 'unscheduled' AND NOT EXISTS (
    SELECT 1 FROM tj_dependencies o LEFT JOIN tj_tasks r ON r.task_id = o.required_task_id
    WHERE o.dependent_task_id = d.dependent_task_id
      AND NOT (COALESCE(r.ever_completed, 0) = 1 OR (o.requires = 'all-resolved' AND COALESCE(r.ever_resolved, 0) = 1))
)
ORDER BY d.dependent_task_id;

-- name: unsatisfied_dependency
-- A dependency of :task_id that is not satisfied (the test of ready_dependents).
SELECT o.required_task_id AS task_id FROM tj_dependencies o LEFT JOIN tj_tasks r ON r.task_id = o.required_task_id
WHERE o.dependent_task_id = :task_id
  AND NOT (COALESCE(r.ever_completed, 0) = 1 OR (o.requires = 'all-resolved' AND COALESCE(r.ever_resolved, 0) = 1))
LIMIT 1;

-- name: group_has_unresolved
-- Whether a task of the group is unresolved, and the log position the read
-- model reflects: one statement, so both come from the same snapshot.
SELECT EXISTS (SELECT 1 FROM tj_tasks WHERE task_group_id = :task_group_id
                                        AND state IN ('unscheduled', 'pending', 'running')) AS unresolved,
       (SELECT position FROM tj_position WHERE name = 'inline') AS position;

-- name: expired_tasks
SELECT task_id FROM tj_tasks WHERE expires < :cutoff ORDER BY expires LIMIT :limit;

-- name: expired_groups
SELECT task_group_id FROM tj_task_groups WHERE expires < :cutoff ORDER BY expires LIMIT :limit;

-- name: tasks_by_id [postgres]
-- {columns} is filled in from a fixed list by the store.
SELECT task_id, {columns} FROM tj_tasks WHERE task_id = ANY(:task_ids);

-- name: tasks_by_id [sqlite]
-- :task_ids is a JSON array: any number of ids in one parameter.
SELECT task_id, {columns} FROM tj_tasks WHERE task_id IN (SELECT value FROM json_each(:task_ids));

-- name: artifact [postgres]
-- An artifact, and for an object artifact whether its object is finished and
-- until when (the object service's row: getArtifact checks it exists).
SELECT a.name, a.storage_type, a.content_type, a.expires, a.present, a.details,
       o.finished AS object_finished, o.expires AS object_expires
FROM tj_artifacts a
LEFT JOIN tj_objects o ON a.storage_type = 'object'
    AND o.name = ('t/' || a.task_id || '/' || a.run_id || '/' || a.name) COLLATE "default"
WHERE a.task_id = :task_id AND a.run_id = :run_id AND a.name = :artifact_name;

-- name: artifact [sqlite]
SELECT a.name, a.storage_type, a.content_type, a.expires, a.present, a.details,
       o.finished AS object_finished, o.expires AS object_expires
FROM tj_artifacts a
LEFT JOIN tj_objects o ON a.storage_type = 'object' AND o.name = 't/' || a.task_id || '/' || a.run_id || '/' || a.name
WHERE a.task_id = :task_id AND a.run_id = :run_id AND a.name = :artifact_name;

-- name: artifacts_page
-- Every artifact of a run (present or not), by name, after :after_name.
SELECT name, storage_type, content_type, expires FROM tj_artifacts
WHERE task_id = :task_id AND run_id = :run_id AND name > :after_name
ORDER BY name LIMIT :limit;

-- name: expired_artifacts
SELECT task_id, run_id, name, storage_type, details FROM tj_artifacts WHERE expires < :cutoff
ORDER BY expires LIMIT :limit;

-- name: latest_artifact [postgres]
-- The task's last run (-1: no runs; no row: no task) and the artifact of
-- that run named :artifact_name, if any, in one statement (getLatestArtifact).
SELECT t.run_id, a.name, a.storage_type, a.content_type, a.expires, a.present, a.details,
       o.finished AS object_finished, o.expires AS object_expires
FROM (SELECT json_array_length(status::json -> 'runs') - 1 AS run_id FROM tj_tasks WHERE task_id = :task_id) t
LEFT JOIN tj_artifacts a ON a.task_id = :task_id AND a.run_id = t.run_id AND a.name = :artifact_name
LEFT JOIN tj_objects o ON a.storage_type = 'object'
    AND o.name = ('t/' || a.task_id || '/' || a.run_id || '/' || a.name) COLLATE "default";

-- name: latest_artifact [sqlite]
SELECT t.run_id, a.name, a.storage_type, a.content_type, a.expires, a.present, a.details,
       o.finished AS object_finished, o.expires AS object_expires
FROM (SELECT json_array_length(status, '$.runs') - 1 AS run_id FROM tj_tasks WHERE task_id = :task_id) t
LEFT JOIN tj_artifacts a ON a.task_id = :task_id AND a.run_id = t.run_id AND a.name = :artifact_name
LEFT JOIN tj_objects o ON a.storage_type = 'object' AND o.name = 't/' || a.task_id || '/' || a.run_id || '/' || a.name;

-- name: object_with_upload
SELECT name FROM tj_objects WHERE upload_id = :upload_id;

-- name: expired_objects
-- Objects past their expiry, and uploads left unfinished past theirs (a day).
SELECT name FROM tj_objects WHERE expires <= :now
UNION
SELECT name FROM tj_objects WHERE upload_expires <= :now
LIMIT :limit;

-- name: task_queue
SELECT task_queue_id, expires, last_date_active, description, stability FROM tj_task_queues
WHERE task_queue_id = :task_queue_id AND expires > :now;

-- name: task_queues_page
SELECT task_queue_id, expires, last_date_active, description, stability FROM tj_task_queues
WHERE expires > :now ORDER BY task_queue_id LIMIT :limit OFFSET :offset;

-- name: provisioner_queues_page
SELECT task_queue_id, expires, last_date_active, description, stability FROM tj_task_queues
WHERE provisioner_id = :provisioner_id AND expires > :now ORDER BY task_queue_id LIMIT :limit OFFSET :offset;

-- name: provisioners
SELECT provisioner_id, MAX(expires) AS expires, MAX(last_date_active) AS last_date_active FROM tj_task_queues
WHERE expires > :now AND (:provisioner_id = '' OR provisioner_id = :provisioner_id)
GROUP BY provisioner_id ORDER BY provisioner_id LIMIT :limit;

-- name: worker
SELECT task_queue_id, worker_group, worker_id, first_claim, last_date_active, expires, quarantine_until,
       quarantine_details FROM tj_workers
WHERE task_queue_id = :task_queue_id AND worker_group = :worker_group AND worker_id = :worker_id;

-- name: workers_page
-- Every worker of the queue (the caller filters the page, as upstream), with its latest run.
SELECT w.worker_group, w.worker_id, w.first_claim, w.last_date_active, w.expires, w.quarantine_until,
       (SELECT r.task_id FROM tj_worker_runs r LEFT JOIN tj_tasks t ON t.task_id = r.task_id
        WHERE r.task_queue_id = w.task_queue_id AND r.worker_group = w.worker_group AND r.worker_id = w.worker_id
        ORDER BY r.started DESC, t.created_position DESC LIMIT 1) AS latest_task_id,
       (SELECT r.run_id FROM tj_worker_runs r LEFT JOIN tj_tasks t ON t.task_id = r.task_id
        WHERE r.task_queue_id = w.task_queue_id AND r.worker_group = w.worker_group AND r.worker_id = w.worker_id
        ORDER BY r.started DESC, t.created_position DESC LIMIT 1) AS latest_run_id
FROM tj_workers w WHERE w.task_queue_id = :task_queue_id
ORDER BY w.worker_group, w.worker_id LIMIT :limit OFFSET :offset;

-- name: recent_tasks
-- A worker's latest :limit runs, newest first; runs claimed in one call (same
-- instant) in queue order, which for one priority is creation order.
SELECT r.task_id, r.run_id FROM tj_worker_runs r LEFT JOIN tj_tasks t ON t.task_id = r.task_id
WHERE r.task_queue_id = :task_queue_id AND r.worker_group = :worker_group AND r.worker_id = :worker_id
ORDER BY r.started DESC, t.created_position DESC LIMIT :limit;

-- name: quarantined_workers
SELECT task_queue_id, worker_group, worker_id, quarantine_until FROM tj_workers WHERE quarantine_until > :now;

-- name: expired_task_queues
SELECT task_queue_id FROM tj_task_queues WHERE expires < :cutoff ORDER BY expires LIMIT :limit;

-- name: expired_workers
SELECT task_queue_id, worker_group, worker_id FROM tj_workers
WHERE expires < :cutoff AND quarantine_until < :cutoff ORDER BY expires LIMIT :limit;

-- name: claimed_count
SELECT COUNT(*) AS n FROM tj_claims WHERE task_queue_id = :task_queue_id;

-- name: pending_counts
-- /metrics (scheduler): pending_count of every task queue with pending work.
SELECT task_queue_id, COUNT(*) AS n FROM tj_pending WHERE deadline > :now GROUP BY task_queue_id;

-- name: claimed_counts
SELECT task_queue_id, COUNT(*) AS n FROM tj_claims GROUP BY task_queue_id;

-- name: queue_position
-- Our own API (journal): a task's state and, while it is pending and before
-- its deadline, how many claimable entries of its queue claimWork takes first
-- (lease_pending's order: priority DESC, inserted, task_id). No task: no row.
SELECT t.state, t.task_queue_id, p.run_id,
       CASE WHEN p.task_id IS NULL THEN NULL ELSE (
           SELECT COUNT(*) FROM tj_pending o
           WHERE o.task_queue_id = p.task_queue_id AND o.deadline > :now
             AND (o.priority > p.priority OR (o.priority = p.priority AND
                  (o.inserted < p.inserted OR (o.inserted = p.inserted AND o.task_id < p.task_id))))
       ) END AS ahead
FROM tj_tasks t LEFT JOIN tj_pending p ON p.task_id = t.task_id AND p.deadline > :now
WHERE t.task_id = :task_id;

-- name: recent_claims
-- Our own API (journal): the runs of a queue claimed since :since, with their
-- task's status (each run's `scheduled`: when it became pending).
SELECT r.run_id, r.started, t.status FROM tj_worker_runs r JOIN tj_tasks t ON t.task_id = r.task_id
WHERE r.task_queue_id = :task_queue_id AND r.started >= :since;

-- name: task_history
SELECT position, time, event, task_id AS "taskId", run_id AS "runId", actor, reason, changes FROM tj_history
WHERE task_id = :task_id ORDER BY position;

-- name: group_history
SELECT position, time, event, task_id AS "taskId", run_id AS "runId", actor, reason, changes FROM tj_history
WHERE task_group_id = :task_group_id AND position > :after ORDER BY position LIMIT :limit;
