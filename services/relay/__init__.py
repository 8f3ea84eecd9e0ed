"""The relay service: the log-to-bus publisher (ADR 0005)."""

from .relay import Relay

__all__ = ["Relay"]
