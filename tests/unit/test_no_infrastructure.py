"""The unit layer cannot reach PostgreSQL or RabbitMQ (tests/unit/conftest.py)."""

import pytest


@pytest.mark.parametrize("fixture", ["postgres_base_url", "postgres_url", "amqp_url"])
def test_a_unit_test_asking_for_infrastructure_fails(request, fixture):
    with pytest.raises(pytest.fail.Exception, match="unit tests use no infrastructure"):
        request.getfixturevalue(fixture)
