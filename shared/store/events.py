"""How events are read and written (ADR 0001, 0015): the library's JSON
mapper, plus the actor. An event stored before actors were recorded has
none; reading it gives it the unknown actor (an upcast of every event class
at once: the actor is part of the envelope, not of any one event)."""

from typing import Any

import orjson
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, Mapper, UUIDAsHex

from taskjournal.shared.actor import UNKNOWN

MARKER = b'"_type_"'  # how the library's JSON marks a value of a registered type (a datetime, a UUID)


class ActorMapper(Mapper):
    def to_domain_event(self, stored_event):
        event = super().to_domain_event(stored_event)
        vars(event).setdefault("actor", dict(UNKNOWN))
        return event


class FastJSONTranscoder(JSONTranscoder):
    """The library's JSON, read faster: an event whose only typed value is a
    top-level one (its timestamp: every event of ours, ADR 0001) is parsed
    by orjson and that value decoded as the library does; anything else (or
    JSON orjson refuses) takes the library's own path. Writing is unchanged."""

    def decode(self, data: bytes) -> Any:
        if data.count(MARKER) == 1:
            try:
                state = orjson.loads(data)
            except orjson.JSONDecodeError:
                return super().decode(data)
            for key, value in state.items():
                if isinstance(value, dict) and "_type_" in value:
                    state[key] = self._decode_obj(value)
                    return state
        return super().decode(data)


def event_mapper(factory) -> Mapper:
    """The mapper the Journal writes with and every reader decodes with."""
    transcoder = FastJSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return factory.mapper(transcoder=transcoder, mapper_class=ActorMapper)


def stamp(events, actor: dict) -> None:
    """Record who caused these new events (before they are stored)."""
    for event in events:
        vars(event)["actor"] = actor
