"""The version of the database schema, and what a process may do about it
(docs/adr/0018-schema-migrations-and-deployment.md).

`taskjournal migrate` (and every process with TASKJOURNAL_SCHEMA=auto, the
default) creates the tables and upgrades an older schema, then records
SCHEMA_VERSION. With `require` a process does no DDL: it starts only against
a schema recorded at exactly this build's version. A schema newer than this
build knows is refused in both modes: this code might misread it."""

from taskjournal.shared.config import PREFIX, SettingError

from .sql import statements

MODES = ("auto", "require")
SETTING = PREFIX + "SCHEMA"


def upgrades(dialect: str) -> list[tuple[int, str]]:
    """(version, statement) of sql/upgrades.sql, oldest first; a statement is named to_<version>_<what>."""
    found = [(int(name.split("_")[1]), name, sql) for name, sql in statements("upgrades.sql", dialect).items()]
    return [(version, sql) for version, _, sql in sorted(found)]


# The first release is version 1; each upgrade statement names the version it makes.
SCHEMA_VERSION = max([1, *(version for version, _ in upgrades("postgres"))])


class SchemaMismatch(SettingError):
    """The database's schema is not one this process may use; one line, like any setting error."""


def refuse_newer(recorded: int | None) -> None:
    if recorded is not None and recorded > SCHEMA_VERSION:
        raise SchemaMismatch(PREFIX + "DATABASE_URL",
                             f"the database's schema is version {recorded}, newer than this build knows "
                             f"({SCHEMA_VERSION}): run a taskjournal at least as new as the one that migrated it")


def require(recorded: int | None) -> None:
    """SchemaMismatch unless the recorded version is exactly this build's."""
    refuse_newer(recorded)
    if recorded is None:
        raise SchemaMismatch(SETTING, f"require: the database has no taskjournal schema; run "
                                      f"`taskjournal migrate` first (this build's schema is version {SCHEMA_VERSION})")
    if recorded != SCHEMA_VERSION:
        raise SchemaMismatch(SETTING, f"require: the database's schema is version {recorded}, this build needs "
                                      f"{SCHEMA_VERSION}; run `taskjournal migrate` first")
