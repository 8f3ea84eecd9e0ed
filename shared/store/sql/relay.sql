-- The relay's position in the log (services/relay). Parameters use :name.

-- name: relay_position
SELECT position FROM tj_relay_position WHERE name = :name;

-- name: record_relay_position
-- Never moves back: a relay that lost leadership may record late.
INSERT INTO tj_relay_position (name, position) VALUES (:name, :position)
ON CONFLICT (name) DO UPDATE SET position = excluded.position
WHERE tj_relay_position.position < excluded.position;

-- name: relayed_position
-- How far every relay got; NULL when no relay ever ran.
SELECT MIN(position) AS position FROM tj_relay_position;
