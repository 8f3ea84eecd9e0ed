-- Read models derived from the event log (see docs/adr/0003). Every row can be
-- dropped and rebuilt by `taskjournal replay`; times are epoch milliseconds.

-- name: create_tasks
CREATE TABLE IF NOT EXISTS tj_tasks (
    task_id TEXT PRIMARY KEY,
    task_group_id TEXT NOT NULL,
    task_queue_id TEXT NOT NULL,
    created_position BIGINT NOT NULL,
    state TEXT NOT NULL,
    ever_completed INTEGER NOT NULL DEFAULT 0,
    ever_resolved INTEGER NOT NULL DEFAULT 0,
    deadline BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    definition TEXT NOT NULL,
    status TEXT NOT NULL,
    leased_until BIGINT NOT NULL DEFAULT 0  -- a deadline resolver's lease (ADR 0017), not rebuilt by replay
);

-- name: create_tasks_group_index
CREATE INDEX IF NOT EXISTS tj_tasks_group ON tj_tasks (task_group_id, created_position);

-- name: create_tasks_expiry_index
CREATE INDEX IF NOT EXISTS tj_tasks_expires ON tj_tasks (expires);

-- name: create_tasks_unresolved_index
CREATE INDEX IF NOT EXISTS tj_tasks_unresolved ON tj_tasks (task_group_id) WHERE state IN ('unscheduled', 'pending', 'running');

-- name: create_tasks_deadline_index
CREATE INDEX IF NOT EXISTS tj_tasks_deadline ON tj_tasks (deadline) WHERE state IN ('unscheduled', 'pending', 'running');

-- name: create_dependencies
-- One row per (task, dependency); whether it is satisfied follows from the
-- required task's ever_completed / ever_resolved flags.
CREATE TABLE IF NOT EXISTS tj_dependencies (
    required_task_id TEXT NOT NULL,
    dependent_task_id TEXT NOT NULL,
    requires TEXT NOT NULL,
    PRIMARY KEY (required_task_id, dependent_task_id)
);

-- name: create_dependencies_dependent_index
CREATE INDEX IF NOT EXISTS tj_dependencies_dependent ON tj_dependencies (dependent_task_id);

-- name: create_pending
CREATE TABLE IF NOT EXISTS tj_pending (
    task_id TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL,
    task_queue_id TEXT NOT NULL,
    priority INTEGER NOT NULL,
    inserted BIGINT NOT NULL,
    deadline BIGINT NOT NULL,
    leased_until BIGINT NOT NULL DEFAULT 0
);

-- name: create_pending_index
CREATE INDEX IF NOT EXISTS tj_pending_order ON tj_pending (task_queue_id, priority DESC, inserted, task_id);

-- name: create_claims
CREATE TABLE IF NOT EXISTS tj_claims (
    task_id TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL,
    task_queue_id TEXT NOT NULL,
    worker_group TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    claimed BIGINT NOT NULL,
    taken_until BIGINT NOT NULL,
    leased_until BIGINT NOT NULL DEFAULT 0  -- a claim-resolver's lease (ADR 0017), not rebuilt by replay
);

-- name: create_claims_queue_index
CREATE INDEX IF NOT EXISTS tj_claims_queue ON tj_claims (task_queue_id, claimed, task_id);

-- name: create_claims_expiry_index
CREATE INDEX IF NOT EXISTS tj_claims_expiry ON tj_claims (taken_until);

-- name: add_claims_lease [postgres]
-- Databases made before the resolvers leased their work (ADR 0017) gain the
-- column; looked up first, so a start never waits for the table's lock.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'tj_claims'::regclass
                   AND attname = 'leased_until' AND NOT attisdropped) THEN
        ALTER TABLE tj_claims ADD COLUMN leased_until BIGINT NOT NULL DEFAULT 0;
    END IF;
END $$;

-- name: add_tasks_lease [postgres]
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'tj_tasks'::regclass
                   AND attname = 'leased_until' AND NOT attisdropped) THEN
        ALTER TABLE tj_tasks ADD COLUMN leased_until BIGINT NOT NULL DEFAULT 0;
    END IF;
END $$;

-- name: create_task_groups
CREATE TABLE IF NOT EXISTS tj_task_groups (
    task_group_id TEXT PRIMARY KEY,
    scheduler_id TEXT NOT NULL,
    expires BIGINT NOT NULL,
    sealed BIGINT,
    view TEXT NOT NULL  -- the group's public body (getTaskGroup); the column keeps its first name
);

-- name: create_position
CREATE TABLE IF NOT EXISTS tj_position (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);

-- name: create_relay_position
-- How far each relay got in the log (ADR 0005); no row: that relay never ran.
CREATE TABLE IF NOT EXISTS tj_relay_position (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);

-- name: create_artifacts [postgres]
-- One row per artifact (shared/domain/artifact.py); listings page by name.
CREATE TABLE IF NOT EXISTS tj_artifacts (
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    name TEXT COLLATE "C" NOT NULL,  -- listings in byte order, as in SQLite
    storage_type TEXT NOT NULL,
    content_type TEXT NOT NULL,
    expires BIGINT NOT NULL,
    present INTEGER NOT NULL,
    details TEXT NOT NULL,
    PRIMARY KEY (task_id, run_id, name)
);

-- name: create_artifacts [sqlite]
CREATE TABLE IF NOT EXISTS tj_artifacts (
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    storage_type TEXT NOT NULL,
    content_type TEXT NOT NULL,
    expires BIGINT NOT NULL,
    present INTEGER NOT NULL,
    details TEXT NOT NULL,
    PRIMARY KEY (task_id, run_id, name)
);

-- name: create_artifacts_expiry_index
CREATE INDEX IF NOT EXISTS tj_artifacts_expires ON tj_artifacts (expires);

-- name: create_objects
-- The object service's objects (shared/domain/object.py), one row per name.
-- upload_id is set while the upload is in progress: unique among those, as upstream.
CREATE TABLE IF NOT EXISTS tj_objects (
    name TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    upload_id TEXT,
    expires BIGINT NOT NULL,
    upload_expires BIGINT,
    finished BIGINT
);

-- name: create_objects_upload_index
CREATE UNIQUE INDEX IF NOT EXISTS tj_objects_upload ON tj_objects (upload_id) WHERE upload_id IS NOT NULL;

-- name: create_objects_expiry_index
CREATE INDEX IF NOT EXISTS tj_objects_expires ON tj_objects (expires);

-- name: create_objects_upload_expiry_index
CREATE INDEX IF NOT EXISTS tj_objects_upload_expires ON tj_objects (upload_expires) WHERE upload_expires IS NOT NULL;

-- name: create_task_queues
-- Task queues (shared/domain/worker.py); provisioners are synthesised from them.
CREATE TABLE IF NOT EXISTS tj_task_queues (
    task_queue_id TEXT PRIMARY KEY,
    provisioner_id TEXT NOT NULL,
    expires BIGINT NOT NULL,
    last_date_active BIGINT NOT NULL,
    description TEXT NOT NULL,
    stability TEXT NOT NULL
);

-- name: create_task_queues_provisioner_index
CREATE INDEX IF NOT EXISTS tj_task_queues_provisioner ON tj_task_queues (provisioner_id, task_queue_id);

-- name: create_workers
CREATE TABLE IF NOT EXISTS tj_workers (
    task_queue_id TEXT NOT NULL,
    worker_group TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    first_claim BIGINT NOT NULL,
    last_date_active BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    quarantine_until BIGINT NOT NULL,
    quarantine_details TEXT NOT NULL,
    PRIMARY KEY (task_queue_id, worker_group, worker_id)
);

-- name: create_workers_quarantine_index
CREATE INDEX IF NOT EXISTS tj_workers_quarantine ON tj_workers (quarantine_until);

-- name: create_worker_runs
-- Every run a worker claimed (from the Task aggregates): a worker's recentTasks.
CREATE TABLE IF NOT EXISTS tj_worker_runs (
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    task_queue_id TEXT NOT NULL,
    worker_group TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    started BIGINT NOT NULL,
    PRIMARY KEY (task_id, run_id)
);

-- name: create_worker_runs_worker_index
CREATE INDEX IF NOT EXISTS tj_worker_runs_worker ON tj_worker_runs (task_queue_id, worker_group, worker_id, started);

-- name: create_history
-- One row per event of a task, of its artifacts and of its task group (ADR 0015):
-- who did it and what changed, so histories need no decoding of the log.
CREATE TABLE IF NOT EXISTS tj_history (
    position BIGINT PRIMARY KEY,  -- the event's notification id
    task_id TEXT,  -- NULL for the group's own events
    task_group_id TEXT NOT NULL,
    run_id INTEGER,
    event TEXT NOT NULL,  -- e.g. Task.RunClaimed
    time TEXT NOT NULL,  -- when it was recorded (ISO 8601, as entries show it)
    actor TEXT NOT NULL,  -- JSON (shared/actor.py)
    reason TEXT,
    changes TEXT NOT NULL  -- JSON
);

-- name: create_history_task_index
CREATE INDEX IF NOT EXISTS tj_history_task ON tj_history (task_id, position);

-- name: create_history_group_index
CREATE INDEX IF NOT EXISTS tj_history_group ON tj_history (task_group_id, position);
