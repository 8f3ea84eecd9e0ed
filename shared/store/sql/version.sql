-- The schema's version (shared/store/schema.py, docs/adr/0018): recorded by
-- `taskjournal migrate`, and at start by processes with TASKJOURNAL_SCHEMA=auto.

-- name: version_table_exists [postgres]
SELECT to_regclass('tj_schema_version') IS NOT NULL AS present;

-- name: version_table_exists [sqlite]
SELECT COUNT(*) > 0 AS present FROM sqlite_master WHERE type = 'table' AND name = 'tj_schema_version';

-- name: create_version_table
-- One row, name 'taskjournal'; migrated: epoch milliseconds.
CREATE TABLE IF NOT EXISTS tj_schema_version (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    migrated BIGINT NOT NULL
);

-- name: schema_version
SELECT version FROM tj_schema_version WHERE name = 'taskjournal';

-- name: record_schema_version
INSERT INTO tj_schema_version (name, version, migrated) VALUES ('taskjournal', :version, :migrated)
ON CONFLICT (name) DO UPDATE SET version = excluded.version, migrated = excluded.migrated;
