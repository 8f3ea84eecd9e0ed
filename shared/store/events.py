"""How events are read and written (ADR 0001, 0015): the library's JSON
mapper, plus the actor. An event stored before actors were recorded has
none; reading it gives it the unknown actor (an upcast of every event class
at once: the actor is part of the envelope, not of any one event)."""

from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, Mapper, UUIDAsHex

from taskjournal.shared.actor import UNKNOWN


class ActorMapper(Mapper):
    def to_domain_event(self, stored_event):
        event = super().to_domain_event(stored_event)
        vars(event).setdefault("actor", dict(UNKNOWN))
        return event


def event_mapper(factory) -> Mapper:
    """The mapper the Journal writes with and every reader decodes with."""
    transcoder = factory.transcoder()
    if isinstance(transcoder, JSONTranscoder):
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            transcoder.register(transcoding)
    return factory.mapper(transcoder=transcoder, mapper_class=ActorMapper)


def stamp(events, actor: dict) -> None:
    """Record who caused these new events (before they are stored)."""
    for event in events:
        vars(event)["actor"] = actor
