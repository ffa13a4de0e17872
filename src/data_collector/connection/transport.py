"""One WebSocket transport of a link: the picows listener and its liveness bookkeeping.

The listener reassembles fragmented messages, stamps every text or binary frame with its
receive time and hands it to the link's owner. It answers the server's protocol pings itself
(picows's ``enable_auto_pong`` is off): a ping is activity like any frame, and its pong passes
the transport's :class:`~data_collector.connection.pacer.Pacer` like every control message, so
a venue that counts pongs against its message budget (Binance) sees them counted. It never
decides on its own that the connection is dead: the link's watchdog
(:mod:`data_collector.connection.keepalive`) reads :attr:`Transport.last_frame`,
:attr:`Transport.ping_sent` and :attr:`Transport.ready_deadline` and aborts it.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import structlog
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from data_collector.connection.pacer import MessageKind, Pacer
from data_collector.connection.tap import NO_TAP, LinkTap
from data_collector.venues.base import ControlBudget

log = structlog.get_logger(__name__)

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONTINUATION = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE
_PING = WSMsgType.PING
_PONG_KIND = MessageKind.PONG
_SUBSCRIPTION = MessageKind.SUBSCRIPTION
_time_ns = time.time_ns
_transport_ids = itertools.count(1)

#: biggest frame accepted (book tickers are tiny; this only guards against garbage)
MAX_FRAME_SIZE = 4 * 1024 * 1024

#: ``on_frame(owner, transport_id, data, receive_ns)``; the owner is the link, passed through
#: untouched (typed loosely so that this module need not import the link)
FrameCallback = Callable[[Any, int, bytes, int], None]


class TransportOwner(Protocol):
    """What a transport needs of the link it belongs to."""

    name: str
    #: frames that arrived on a retired transport and were dropped
    stray_frames: int
    #: told every frame, subscribe request and the transport's end (``NO_TAP``: not recorded)
    tap: LinkTap
    #: protocol pings of the server answered with a pong
    pings_answered: int


class Transport(WSListener):
    """One connection of a link: the picows listener plus its liveness bookkeeping.

    ``budget`` is the venue's control-message budget (None: none), ``subscribe_timeout`` how
    long the transport may stay unconfirmed once its last subscribe request went out.
    """

    def __init__(
        self,
        owner: TransportOwner,
        on_frame: FrameCallback,
        clock: Callable[[], float],
        *,
        budget: ControlBudget | None = None,
        subscribe_timeout: float = math.inf,
    ) -> None:
        super().__init__()
        self.owner = owner
        self.tid = next(_transport_ids)
        self._on_frame = on_frame
        self._clock = clock
        self.transport: WSTransport | None = None
        self.opened_at = clock()
        self.last_frame = self.opened_at
        #: False once the transport is dead or handed its pairs over: its frames are dropped
        self.alive = True
        self.ping_sent = 0.0  # 0.0: no ping awaiting an answer
        self.rotate_at = float("inf")
        self._subscribe_timeout = subscribe_timeout
        self._ready_from = self.opened_at
        self.pacer = Pacer(budget, self._write, clock)
        self.dead: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.watchdog: asyncio.Task[None] | None = None
        self._fragments: bytearray | None = None
        self._fragments_binary = False
        self._tap = owner.tap if owner.tap is not NO_TAP else None  # the hot path skips it

    # --- picows callbacks: hot path, keep them minimal -------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        self.last_frame = self._clock()
        msg_type = frame.msg_type
        if msg_type is _BINARY or msg_type is _TEXT:
            if frame.fin:
                self._deliver(frame.get_payload_as_bytes(), msg_type is _BINARY)
            else:
                self._fragments = bytearray(frame.get_payload_as_memoryview())
                self._fragments_binary = msg_type is _BINARY
        elif msg_type is _CONTINUATION:
            self._continue(frame)
        elif msg_type is _PING:
            self.owner.pings_answered += 1
            self.pacer.send(_PONG_KIND, frame.get_payload_as_bytes())
        elif msg_type is _CLOSE:
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()
            self.fail(f"closed_by_peer:{int(frame.get_close_code())}")

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.fail("disconnected")

    # ---------------------------------------------------------------------------------------

    def _deliver(self, data: bytes, binary: bool = False) -> None:
        tap = self._tap
        if not self.alive:  # late frames of a retired transport must not reach the cache
            self.owner.stray_frames += 1
            if tap is not None:
                tap.stray(self.tid, data, _time_ns(), binary)
            return
        receive_ns = _time_ns()
        if tap is not None:  # before the owner: a recording keeps the order things happened in
            tap.frame(self.tid, data, receive_ns, binary)
        try:
            self._on_frame(self.owner, self.tid, data, receive_ns)
        except Exception:
            # The owner's bug must not tear the connection down; say so loudly instead.
            log.exception(
                "frame_handler_failed",
                link=self.owner.name,
                transport=self.tid,
                summary=f"{self.owner.name}: handling a frame failed; the connection stays up",
            )

    def _continue(self, frame: WSFrame) -> None:
        if self._fragments is None:  # a continuation without a start: nothing to attach to
            return
        self._fragments += frame.get_payload_as_memoryview()
        if len(self._fragments) > MAX_FRAME_SIZE:
            self._fragments = None
        elif frame.fin:
            data = bytes(self._fragments)
            self._fragments = None
            self._deliver(data, self._fragments_binary)

    def fail(self, reason: str) -> None:
        """Record why this transport ended (first reason wins)."""
        self.alive = False
        self.pacer.close()
        if not self.dead.done():
            self.dead.set_result(reason)
            if self._tap is not None:
                self._tap.closed(self.tid, reason)

    # --- control messages: every one leaves through the pacer --------------------------------

    def send_control(self, text: str, kind: MessageKind) -> bool:
        """Send one control message (a subscribe request or an application ping) as the venue's
        budget allows: at once, or queued until the window has room; False when the transport
        is not open."""
        if self.transport is None or self.dead.done():
            return False
        self.pacer.send(kind, text.encode())
        return True

    def send_subscriptions(self, texts: Iterable[str]) -> int:
        """Send subscribe requests (paced); how many were accepted for sending."""
        texts = list(texts)
        if self._tap is not None:
            self._tap.sent(self.tid, texts)
        return sum(self.send_control(text, _SUBSCRIPTION) for text in texts)

    def _write(self, kind: MessageKind, payload: bytes) -> None:
        """The pacer's way out to the wire."""
        transport = self.transport
        if transport is None or self.dead.done():
            return
        if kind is _PONG_KIND:
            transport.send_pong(payload)
            return
        transport.send(_TEXT, payload)
        if kind is _SUBSCRIPTION:
            self._ready_from = self._clock()

    @property
    def ready_deadline(self) -> float:
        """When an unconfirmed transport is given up: ``subscribe_timeout`` after its last
        subscribe request went out (never while requests still wait for the budget)."""
        if self.pacer.pending(_SUBSCRIPTION):
            return math.inf
        return self._ready_from + self._subscribe_timeout

    @property
    def subscriptions_waiting(self) -> bool:
        """Subscribe requests are waiting for room in the venue's budget."""
        return self.pacer.pending(_SUBSCRIPTION) > 0

    def restart_ready_clock(self) -> None:
        """Give the transport a full ``subscribe_timeout`` from now (a promoted replacement
        that is still unconfirmed)."""
        self._ready_from = self._clock()

    def abort(self, reason: str) -> None:
        """Kill an unresponsive transport at once (no close handshake)."""
        self.fail(reason)
        if self.transport is not None:
            self.transport.disconnect(graceful=False)

    def close(self, reason: str) -> None:
        """Orderly close: CLOSE frame, then let the socket flush and shut."""
        self.fail(reason)
        self.stop_watchdog()
        if self.transport is not None:
            self.transport.send_close(WSCloseCode.OK)
            self.transport.disconnect(graceful=True)

    def stop_watchdog(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()


async def connect(url: str, make: Callable[[], Transport], timeout: float) -> Transport:
    """Open a WebSocket to ``url`` served by the listener ``make()`` builds, connect and
    handshake within ``timeout``; a half-open transport never lingers after a failure."""
    made: list[Transport] = []

    def factory() -> Transport:
        listener = make()
        made.append(listener)
        return listener

    try:
        async with asyncio.timeout(timeout):
            await ws_connect(
                factory,
                url,
                websocket_handshake_timeout=timeout,
                enable_auto_pong=False,  # Transport answers pings: activity, and budgeted
                disconnect_on_exception=False,
                max_frame_size=MAX_FRAME_SIZE,
            )
    except BaseException:
        for listener in made:
            if listener.transport is not None:
                listener.transport.disconnect(graceful=False)
        raise
    return made[-1]
