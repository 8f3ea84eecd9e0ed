"""The named-statement loader of shared/store/sql: names, parameter style per
dialect and dialect-only statements."""

import pytest

from taskjournal.shared.store.sql import DIALECTS, _HERE, statements

FILES = sorted(p.name for p in _HERE.glob("*.sql"))


def test_statements_are_found_by_name_without_comments_or_semicolons():
    sql = statements("queries.sql", "sqlite")
    assert sql["task_status"] == "SELECT status FROM tj_tasks WHERE task_id = :task_id"
    assert "ready_dependents" in sql and "lease_pending" in sql
    assert not any(s.rstrip().endswith(";") or "-- " in s for s in sql.values())


def test_parameters_become_pyformat_on_postgres_and_stay_named_on_sqlite():
    assert statements("relay.sql", "postgres")["relay_position"] == (
        "SELECT position FROM tj_relay_position WHERE name = %(name)s")
    assert statements("relay.sql", "sqlite")["relay_position"] == (
        "SELECT position FROM tj_relay_position WHERE name = :name")


def test_dialect_tagged_statements_appear_only_for_their_dialect():
    postgres, sqlite = statements("queries.sql", "postgres"), statements("queries.sql", "sqlite")
    assert "= ANY(%(task_ids)s)" in postgres["tasks_by_id"]
    assert "json_each(:task_ids)" in sqlite["tasks_by_id"]
    assert "MAX(notification_id)" in statements("retention.sql", "postgres")["last_event"]
    assert "MAX(rowid)" in statements("retention.sql", "sqlite")["last_event"]
    assert statements("notify.sql", "sqlite") == {}
    assert set(statements("notify.sql", "postgres")) == {"notify", "listen", "try_lock", "lock", "unlock"}


def test_casts_and_colons_inside_words_are_not_parameters(tmp_path, monkeypatch):
    (tmp_path / "t.sql").write_text("-- name: cast\nSELECT :a::text, 'x:y' AS b;\n")
    monkeypatch.setattr("taskjournal.shared.store.sql._HERE", tmp_path)
    statements.cache_clear()
    try:
        assert statements("t.sql", "postgres")["cast"] == "SELECT %(a)s::text, 'x:y' AS b"
    finally:
        statements.cache_clear()


@pytest.mark.parametrize("file", FILES)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_file_loads_for_every_dialect_with_unique_names(file, dialect):
    text = (_HERE / file).read_text()
    tagged = [line for line in text.splitlines() if line.startswith("-- name:")]
    names = [line.split()[2] for line in tagged if "[" not in line or f"[{dialect}]" in line]
    assert len(names) == len(set(names)), f"{file} names a statement twice for {dialect}"
    assert sorted(statements(file, dialect)) == sorted(names)


def test_unknown_dialect_is_refused():
    with pytest.raises(ValueError):
        statements("queries.sql", "mysql")


def test_the_relay_table_is_in_the_schema():
    assert "tj_relay_position" in statements("schema.sql", "sqlite")["create_relay_position"]


def test_every_projection_statement_has_a_batch_form_on_postgres():
    """The PostgreSQL recorder runs each kind of read-model row as one
    statement per commit; a kind without its batch form would fail there."""
    batch = statements("projection_batch.sql", "postgres")
    assert set(batch) == set(statements("projection.sql", "postgres"))
    assert all("%(rows)s::jsonb" in sql for name, sql in batch.items() if name != "advance_position")
