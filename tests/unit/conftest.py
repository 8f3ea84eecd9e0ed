"""Unit tests touch no infrastructure: no PostgreSQL, no RabbitMQ, no server
process. The fixtures that reach them are replaced here by a failure (not a
skip), so a unit test that asks for one cannot pass; it belongs in
tests/integration or tests/e2e. `make test-unit` also points the URLs at a
closed port."""

import pytest

NO_INFRASTRUCTURE = "unit tests use no infrastructure: move a test that needs {} to tests/integration"


@pytest.fixture
def postgres_base_url():
    pytest.fail(NO_INFRASTRUCTURE.format("PostgreSQL"), pytrace=False)


@pytest.fixture
def amqp_url():
    pytest.fail(NO_INFRASTRUCTURE.format("RabbitMQ"), pytrace=False)
