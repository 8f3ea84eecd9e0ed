"""The bus: how events leave the log (ADR 0005). `Publisher` is what the
relay needs; `InProcessBus` serves `taskjournal dev` without a broker. The
AMQP side lives in `shared.bus.rabbit` (RabbitPublisher) and
`shared.bus.consumer` (internal_subscriber, FastStream), imported on demand
so the embedded mode never loads aio-pika or FastStream."""

import asyncio
from typing import Protocol

from taskjournal.shared.messages import InternalEvent, PulseMessage

from .inprocess import InProcessBus


class Publisher(Protocol):
    async def send(self, messages: list[PulseMessage], internal: list[InternalEvent]) -> asyncio.Future[None]:
        """Write the batch (after every batch sent before it); return what to
        await for its confirms, which raises if one failed."""


__all__ = ["Publisher", "InProcessBus", "PulseMessage", "InternalEvent"]
