"""What a link tells a listener that records it (``--record``): every frame its transports
receive and every connection event, in the order they happen on the event loop.

The connection layer only calls these methods; what is done with them (a recording on disk,
see :mod:`data_collector.recording`) is the listener's business. Every call is made on the
event loop, from the hot path for frames: an implementation must only note the call and
return (no I/O, no blocking).
"""

from __future__ import annotations

from typing import Protocol


class LinkTap(Protocol):
    """Receives one link's traffic and connection events."""

    def frame(self, transport_id: int, data: bytes, receive_ns: int, binary: bool) -> None:
        """A text or binary message (reassembled), right before its owner gets it."""

    def stray(self, transport_id: int, data: bytes, receive_ns: int, binary: bool) -> None:
        """A message that arrived on a retired transport and was dropped undelivered."""

    def opened(self, transport_id: int, rotation: bool, reconnect: bool) -> None:
        """A transport was connected; ``rotation``: it is a make-before-break replacement;
        ``reconnect``: it replaces one that was lost."""

    def sent(self, transport_id: int, texts: list[str]) -> None:
        """Subscribe requests were sent (or queued to be sent) on the transport."""

    def promoted(self, old_id: int, new_id: int) -> None:
        """A rotation replacement took the link's pairs over from ``old_id`` (0: none)."""

    def lost(self, transport_id: int, reason: str) -> None:
        """The transport carrying the link's pairs died: its owner stops trusting them."""

    def closed(self, transport_id: int, reason: str) -> None:
        """A transport ended (any transport, for any reason, first reason only)."""


class NoTap:
    """The tap of a link nobody records: every call does nothing."""

    def frame(self, transport_id: int, data: bytes, receive_ns: int, binary: bool) -> None:
        pass

    def stray(self, transport_id: int, data: bytes, receive_ns: int, binary: bool) -> None:
        pass

    def opened(self, transport_id: int, rotation: bool, reconnect: bool) -> None:
        pass

    def sent(self, transport_id: int, texts: list[str]) -> None:
        pass

    def promoted(self, old_id: int, new_id: int) -> None:
        pass

    def lost(self, transport_id: int, reason: str) -> None:
        pass

    def closed(self, transport_id: int, reason: str) -> None:
        pass


NO_TAP = NoTap()
