-- PostgreSQL only: cross-process signals (NOTIFY/LISTEN) and advisory locks.

-- name: notify [postgres]
SELECT pg_notify(:channel, :payload);

-- name: listen [postgres]
-- {channel} is an identifier, quoted by the store.
LISTEN {channel};

-- name: try_lock [postgres]
SELECT pg_try_advisory_lock(:key) AS locked;

-- name: lock [postgres]
SELECT pg_advisory_lock(:key);

-- name: unlock [postgres]
SELECT pg_advisory_unlock(:key);
