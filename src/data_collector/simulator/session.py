"""What a simulated venue sends (:class:`Quote`) and to whom (:class:`ClientSession`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from picows import WSCloseCode, WSMsgType, WSTransport


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Quote:
    """One top-of-book state as a venue pushes it. A side is missing when its fields are falsy."""

    __slots__ = ("ask", "ask_qty", "bid", "bid_qty", "sequence", "time_ms")

    def __init__(
        self,
        bid: str | None,
        bid_qty: str | None,
        ask: str | None,
        ask_qty: str | None,
        sequence: int,
        time_ms: int,
    ) -> None:
        self.bid = bid
        self.bid_qty = bid_qty
        self.ask = ask
        self.ask_qty = ask_qty
        self.sequence = sequence
        self.time_ms = time_ms

    def as_dict(self) -> dict[str, Any]:
        return {
            "bid": self.bid,
            "bid_qty": self.bid_qty,
            "ask": self.ask,
            "ask_qty": self.ask_qty,
            "sequence": self.sequence,
            "time_ms": self.time_ms,
        }


class ClientSession:
    """One client connection as the venue sees it."""

    __slots__ = (
        "_buffer_size",
        "_writable",
        "channels",
        "closed",
        "connected_at",
        "dirty",
        "frames_sent",
        "last_client_at",
        "last_push_at",
        "path",
        "received",
        "state",
        "subscriptions",
        "transport",
        "unsubscribed_since",
        "write_paused",
    )

    def __init__(self, transport: WSTransport, now: float, path: str = "") -> None:
        self.transport = transport
        #: the request target the client connected to, query string included ("/ws", "/stream?x")
        self.path = path
        #: venue symbols this client is subscribed to ("BTCUSDT" / "BTC_USDT")
        self.subscriptions: set[str] = set()
        #: every text frame the client sent, in order
        self.received: list[str] = []
        self.connected_at = now
        #: pair index -> push keys (MEXC: channel names; Gate: [""])
        self.channels: dict[int, list[str]] = {}
        self.last_client_at = now
        self.last_push_at = now
        #: monotonic time since which the session holds no subscription (None: it holds some)
        self.unsubscribed_since: float | None = now
        self.frames_sent = 0
        self.write_paused = False
        #: pairs whose latest quote this session still has to receive (skipped under backpressure)
        self.dirty: set[int] = set()
        self.closed = False
        #: scratch space for the personality and its helpers (rate windows, pings in flight)
        self.state: dict[str, Any] = {}
        self._writable = asyncio.Event()
        self._writable.set()
        self._buffer_size: Callable[[], int] = transport.underlying_transport.get_write_buffer_size

    @property
    def channel_count(self) -> int:
        return sum(len(keys) for keys in self.channels.values())

    def send_text(self, text: str) -> None:
        self.transport.send(WSMsgType.TEXT, text.encode())
        self.frames_sent += 1

    def send_frame(self, msg_type: WSMsgType, payload: bytes) -> None:
        self.transport.send(msg_type, payload)
        self.frames_sent += 1

    def send_ping(self, payload: bytes) -> None:
        """A protocol-level (RFC 6455) ping, for venues whose server drives the keepalive.

        Not counted in ``frames_sent``: clients answer pings inside their WebSocket library and
        may never see them as frames."""
        self.transport.send_ping(payload)

    def backlogged(self, limit: int) -> bool:
        return self.write_paused or self._buffer_size() > limit

    def pause_writing(self) -> None:
        """The transport's buffer is full: stop handing it frames until it drains."""
        self.write_paused = True
        self._writable.clear()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._writable.set()

    async def wait_writable(self) -> None:
        """Return once the transport takes frames again (at once if it does now or is gone)."""
        await self._writable.wait()

    def mark_closed(self) -> None:
        self.closed = True
        self._writable.set()  # wake a sender waiting on this session

    def close(self, code: WSCloseCode = WSCloseCode.GOING_AWAY, reason: str = "") -> None:
        """Close politely: a close frame, then the TCP connection once the buffer drains."""
        self.transport.send_close(code, reason.encode() if reason else None)
        self.transport.disconnect()
