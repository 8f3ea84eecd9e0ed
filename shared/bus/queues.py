"""The service queues on the internal exchange, defined once: the consumer
(FastStream) and the relay's publisher both declare them from here, so the
queue a service will read exists before the relay publishes anything for it
(an event published before would route nowhere), and the two declarations
carry identical arguments (RabbitMQ refuses a re-declaration with other
arguments: PRECONDITION_FAILED).

No aio-pika or FastStream import here: both sides use this module."""

from collections.abc import Iterable
from dataclasses import dataclass, field

# Do not change these for an existing queue: RabbitMQ refuses the declaration
# (PRECONDITION_FAILED). A change needs a new queue name.
QUEUE_ARGUMENTS: dict = {"x-queue-type": "quorum"}
DEAD_LETTER_SUFFIX = ".dead"


def internal_key(instance: str, routing_key: str) -> str:
    """The routing key of an internal event of one deployment (`<instance>.Task.RunResolved`)."""
    return f"{instance}.{routing_key}" if instance else routing_key


@dataclass(frozen=True)
class ServiceQueue:
    """A durable quorum queue bound to the internal exchange by `routing_keys`
    (full keys, instance prefix included), plus its dead-letter queue."""

    name: str
    routing_keys: tuple[str, ...]
    arguments: dict = field(default_factory=lambda: dict(QUEUE_ARGUMENTS))
    durable: bool = True

    @property
    def dead_letter_name(self) -> str:
        return self.name + DEAD_LETTER_SUFFIX


def service_queue(instance: str, service: str, routing_keys: Iterable[str]) -> ServiceQueue:
    """The queue of one service of a deployment, e.g. `taskjournal.<instance>.dependency-resolver`."""
    keys = tuple(internal_key(instance, key) for key in routing_keys)
    if not keys:
        raise ValueError(f"the {service} queue needs at least one routing key")
    return ServiceQueue(f"taskjournal.{instance}.{service}", keys)
