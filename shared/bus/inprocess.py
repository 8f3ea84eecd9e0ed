"""The bus of `taskjournal dev` without RabbitMQ: subscribers are callables
in this process, called in log order before `publish` returns."""

import asyncio
import inspect
from collections.abc import Callable

from taskjournal.shared.messages import InternalEvent, PulseMessage, topic_matches


class InProcessBus:
    def __init__(self):
        self._internal: list[tuple[tuple[str, ...], Callable]] = []
        self._pulse: list[tuple[str | None, str, Callable]] = []

    def subscribe_internal(self, routing_keys, handler: Callable) -> None:
        """`handler(body: dict)` (sync or async) for internal events whose
        routing key matches one of `routing_keys` (topic patterns)."""
        self._internal.append((tuple(routing_keys), handler))

    def subscribe_pulse(self, handler: Callable, exchange: str | None = None, routing_key: str = "#") -> None:
        """`handler(message: PulseMessage)` for messages of `exchange` (all
        when None) whose routing key or one of its CC keys matches, as a
        RabbitMQ binding would (once per message)."""
        self._pulse.append((exchange, routing_key, handler))

    async def send(self, messages: list[PulseMessage], internal: list[InternalEvent]) -> asyncio.Future[None]:
        """Deliver at once; nothing is left to confirm."""
        await self.publish(messages, internal)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def publish(self, messages: list[PulseMessage], internal: list[InternalEvent]) -> None:
        # A handler that raises fails the batch: the relay retries it, so
        # nothing is dropped and handlers must be idempotent, as with RabbitMQ.
        for message in messages:
            keys = [message.routing_key, *message.cc]
            for exchange, pattern, handler in self._pulse:
                if exchange in (None, message.exchange) and any(topic_matches(pattern, k) for k in keys):
                    await _call(handler, message)
        for event in internal:
            for patterns, handler in self._internal:
                if any(topic_matches(p, event.routing_key) for p in patterns):
                    await _call(handler, event.body)


async def _call(handler: Callable, argument) -> None:
    result = handler(argument)
    if inspect.isawaitable(result):
        await result
