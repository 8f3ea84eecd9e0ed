"""Both store classes implement every operation of the port, with the port's
parameters, so callers never need to know which dialect they talk to."""

import inspect

import pytest

from taskjournal.shared.store.port import Store
from taskjournal.shared.store.stores import PostgresStore, SQLiteStore

OPERATIONS = [name for name, member in vars(Store).items() if inspect.isfunction(member) and not name.startswith("_")]


def test_the_port_names_its_operations():
    assert {"tasks_by_id", "relay_position", "record_relay_position", "relayed_position", "listen",
            "delete_if_relayed", "rebuild"} <= set(OPERATIONS)


@pytest.mark.parametrize("store_class", [PostgresStore, SQLiteStore])
@pytest.mark.parametrize("name", OPERATIONS)
def test_each_store_implements_each_operation(store_class, name):
    implementation = getattr(store_class, name, None)
    assert implementation is not None, f"{store_class.__name__} lacks {name}"
    wanted = list(inspect.signature(getattr(Store, name)).parameters)
    assert list(inspect.signature(implementation).parameters) == wanted

