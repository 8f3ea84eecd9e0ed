"""Fixtures shared by the integration tests: a Journal on each store, and
RabbitMQ connections."""

import aio_pika
import pytest

from taskjournal.shared.journal import open_journal


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def journal(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    journal = open_journal(url, str(tmp_path))
    yield journal
    journal.close()


@pytest.fixture
async def publisher(amqp_url):
    from taskjournal.shared.bus.rabbit import RabbitPublisher

    async with RabbitPublisher(amqp_url) as p:
        yield p


@pytest.fixture
async def channel(amqp_url):
    connection = await aio_pika.connect(amqp_url)
    yield await connection.channel()
    await connection.close()
