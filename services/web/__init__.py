"""The web view (ADR 0019): server-rendered pages of task groups, tasks and
task queues under the root URL, kept live by server-sent events that follow
the event log. Mounted on the api-gateway's app by `add_web_routes`."""

from .routes import add_web_routes

__all__ = ["add_web_routes"]
