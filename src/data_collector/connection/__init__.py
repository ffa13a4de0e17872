"""Venue-agnostic WebSocket links: keepalive, watchdogs, reconnects with backoff, rotation.

- :mod:`~data_collector.connection.settings`: :class:`ConnectionSettings` (the config's
  ``data_collector.connection``) and when a rotation is due;
- :mod:`~data_collector.connection.backoff`: reconnect backoff and the per-minute cap;
- :mod:`~data_collector.connection.attempts`: connection attempts counted, the failing streak;
- :mod:`~data_collector.connection.pacer`: a venue's control-message budget, per transport;
- :mod:`~data_collector.connection.transport`: one picows connection (listener, liveness
  bookkeeping, answers to the server's pings, the one way out for control messages);
- :mod:`~data_collector.connection.keepalive`: the venue's keepalive style and the watchdog;
- :mod:`~data_collector.connection.link`: :class:`Link`, the supervisor.
"""

from data_collector.connection.keepalive import (
    IdlePing,
    IntervalPing,
    Keepalive,
    NoPing,
    keepalive_for,
)
from data_collector.connection.link import Link
from data_collector.connection.pacer import MessageKind, Pacer
from data_collector.connection.settings import ConnectionSettings

__all__ = [
    "ConnectionSettings",
    "IdlePing",
    "IntervalPing",
    "Keepalive",
    "Link",
    "MessageKind",
    "NoPing",
    "Pacer",
    "keepalive_for",
]
