"""The service queue definition both sides declare, and the relay's retry delay."""

from hypothesis import given
from hypothesis import strategies as st

from taskjournal.services.relay.relay import MAX_BACKOFF, next_backoff
from taskjournal.shared.bus.consumer import rabbit_queue
from taskjournal.shared.bus.queues import service_queue


def test_the_consumer_declares_the_queue_with_the_publishers_arguments():
    queue = service_queue("prod", "dependency-resolver", ["Task.RunResolved"])
    declared = rabbit_queue(queue, queue.routing_keys[0])
    assert (declared.name, declared.durable, declared.arguments) == (queue.name, True, queue.arguments)
    assert queue.arguments == {"x-queue-type": "quorum"}
    assert rabbit_queue(queue, name=queue.dead_letter_name).arguments == queue.arguments


def test_service_queue_names_and_keys_carry_the_instance():
    queue = service_queue("prod", "dependency-resolver", ["Task.RunResolved"])
    assert queue.name == "taskjournal.prod.dependency-resolver"
    assert queue.dead_letter_name == "taskjournal.prod.dependency-resolver.dead"
    assert queue.routing_keys == ("prod.Task.RunResolved",)


def test_relay_retry_delay_grows_to_the_cap_and_stays_there():
    delays, delay = [], 0.0
    for _ in range(20):  # a long outage: twenty failed batches in a row
        delay = next_backoff(delay)
        delays.append(delay)
    assert delays[:5] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert max(delays) == MAX_BACKOFF == 1.0


@given(st.floats(min_value=0, max_value=1e6))
def test_relay_retry_delay_never_exceeds_the_cap(previous):
    assert 0 < next_backoff(previous) <= MAX_BACKOFF
