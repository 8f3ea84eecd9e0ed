"""The domain: aggregates (Task, TaskGroup), their events and the rules they decide."""

import sys

from eventsourcing.utils import register_topic

# Events stored before the package moved under `taskjournal` name their
# classes `shared.domain.<module>:<Class>.<Event>`; they still resolve here
# without importing whatever else may be called `shared` (ADR 0009).
register_topic("shared.domain", sys.modules[__name__])
