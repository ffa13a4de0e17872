"""Connection timeouts and limits (``data_collector.connection``), and when a rotation is due."""

from __future__ import annotations

import msgspec


class ConnectionSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Timeouts and limits shared by every link: ``data_collector.connection`` in the config
    decodes straight into this."""

    #: no frame at all for this long => the connection is dead
    silence_timeout: float = 30.0
    #: after a ping, some frame must arrive within this; also bounds connect + handshake
    pong_timeout: float = 10.0
    reconnect_initial_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    #: sliding cap on connection attempts per minute and link: a flapping venue never causes a
    #: reconnect storm
    max_reconnects_per_minute: int = 10
    #: rotate this many seconds before the venue's connection lifetime ends
    rotation_margin: float = 600.0
    #: rotate after this many seconds regardless of the venue (tests, operations)
    max_lifetime_override: float | None = None
    #: a new transport must be confirmed (subscribe ack or first quote) within this
    subscribe_timeout: float = 10.0
    #: a pair without an accepted update (or a repeat) for this long while its connection
    #: delivers other pairs is reported as silent (read by the manager, not the link)
    pair_silence_timeout: float = 120.0


def rotation_after(lifetime: float | None, settings: ConnectionSettings) -> float | None:
    """Seconds after opening at which a transport is rotated (None: never)."""
    if settings.max_lifetime_override is not None:
        return settings.max_lifetime_override
    if lifetime is None:
        return None
    # A margin larger than the lifetime itself would rotate in a loop: keep half the lifetime.
    return max(lifetime - settings.rotation_margin, lifetime / 2.0)
