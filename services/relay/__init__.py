"""The relay service: the log-to-bus publisher (ADR 0005)."""

from .relay import Relay, run_relay

__all__ = ["Relay", "run_relay"]
