-- Statements the inline projection runs inside the transaction that appends
-- the events (shared/store/recorders.py). Parameters use :name.

-- name: insert_task
INSERT INTO tj_tasks (task_id, task_group_id, task_queue_id, created_position, state, ever_completed, ever_resolved,
                      deadline, expires, definition, status)
VALUES (:task_id, :task_group_id, :task_queue_id, :position, :state, :ever_completed, :ever_resolved,
        :deadline, :expires, :definition, :status)
ON CONFLICT (task_id) DO UPDATE SET state = excluded.state, status = excluded.status;

-- name: update_task
UPDATE tj_tasks SET state = :state, ever_completed = :ever_completed, ever_resolved = :ever_resolved, status = :status
WHERE task_id = :task_id;

-- name: insert_dependency
INSERT INTO tj_dependencies (required_task_id, dependent_task_id, requires)
VALUES (:required_task_id, :dependent_task_id, :requires)
ON CONFLICT (required_task_id, dependent_task_id) DO NOTHING;

-- name: upsert_pending
INSERT INTO tj_pending (task_id, run_id, task_queue_id, priority, inserted, deadline)
VALUES (:task_id, :run_id, :task_queue_id, :priority, :inserted, :deadline)
ON CONFLICT (task_id) DO UPDATE SET run_id = excluded.run_id, inserted = excluded.inserted,
    priority = excluded.priority,
    leased_until = CASE WHEN tj_pending.run_id <> excluded.run_id THEN 0 ELSE tj_pending.leased_until END
WHERE tj_pending.run_id <> excluded.run_id OR tj_pending.priority <> excluded.priority;

-- name: delete_pending
DELETE FROM tj_pending WHERE task_id = :task_id;

-- name: upsert_claim
INSERT INTO tj_claims (task_id, run_id, task_queue_id, worker_group, worker_id, claimed, taken_until)
VALUES (:task_id, :run_id, :task_queue_id, :worker_group, :worker_id, :claimed, :taken_until)
ON CONFLICT (task_id) DO UPDATE SET run_id = excluded.run_id, worker_group = excluded.worker_group,
    worker_id = excluded.worker_id, claimed = excluded.claimed, taken_until = excluded.taken_until;

-- name: delete_claim
DELETE FROM tj_claims WHERE task_id = :task_id;

-- name: upsert_task_group
INSERT INTO tj_task_groups (task_group_id, scheduler_id, expires, sealed, view)
VALUES (:task_group_id, :scheduler_id, :expires, :sealed, :view)
ON CONFLICT (task_group_id) DO UPDATE SET expires = excluded.expires, sealed = excluded.sealed, view = excluded.view;

-- name: advance_position
INSERT INTO tj_position (name, position) VALUES ('inline', :position)
ON CONFLICT (name) DO UPDATE SET position = excluded.position;

-- name: upsert_artifact
INSERT INTO tj_artifacts (task_id, run_id, name, storage_type, content_type, expires, present, details)
VALUES (:task_id, :run_id, :artifact_name, :storage_type, :content_type, :expires, :present, :details)
ON CONFLICT (task_id, run_id, name) DO UPDATE SET storage_type = excluded.storage_type,
    expires = excluded.expires, present = excluded.present, details = excluded.details;

-- name: upsert_object
INSERT INTO tj_objects (name, project_id, upload_id, expires, upload_expires, finished)
VALUES (:object_name, :project_id, :upload_id, :expires, :upload_expires, :finished)
ON CONFLICT (name) DO UPDATE SET project_id = excluded.project_id, upload_id = excluded.upload_id,
    expires = excluded.expires, upload_expires = excluded.upload_expires, finished = excluded.finished;

-- name: upsert_task_queue
INSERT INTO tj_task_queues (task_queue_id, provisioner_id, expires, last_date_active, description, stability)
VALUES (:task_queue_id, :provisioner_id, :expires, :last_date_active, :description, :stability)
ON CONFLICT (task_queue_id) DO UPDATE SET expires = excluded.expires, last_date_active = excluded.last_date_active,
    description = excluded.description, stability = excluded.stability;

-- name: upsert_worker
INSERT INTO tj_workers (task_queue_id, worker_group, worker_id, first_claim, last_date_active, expires,
                        quarantine_until, quarantine_details)
VALUES (:task_queue_id, :worker_group, :worker_id, :first_claim, :last_date_active, :expires, :quarantine_until,
        :quarantine_details)
ON CONFLICT (task_queue_id, worker_group, worker_id) DO UPDATE SET last_date_active = excluded.last_date_active,
    expires = excluded.expires, quarantine_until = excluded.quarantine_until,
    quarantine_details = excluded.quarantine_details;

-- name: insert_worker_run
INSERT INTO tj_worker_runs (task_id, run_id, task_queue_id, worker_group, worker_id, started)
VALUES (:task_id, :run_id, :task_queue_id, :worker_group, :worker_id, :started)
ON CONFLICT (task_id, run_id) DO NOTHING;

-- name: insert_history
INSERT INTO tj_history (position, task_id, task_group_id, run_id, event, time, actor, reason, changes)
VALUES (:position, :task_id, :task_group_id, :run_id, :event, :time, :actor, :reason, :changes)
ON CONFLICT (position) DO NOTHING;
