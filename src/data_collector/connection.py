"""Venue-agnostic WebSocket links: keepalive, watchdogs, reconnects with backoff, rotation.

A :class:`Link` is one logical, subscription-carrying connection. It survives reconnects and
planned rotations, sends whatever subscribe texts its owner builds on every (re)connect, and
hands every received data frame to its owner as bytes plus a receive timestamp. It knows
nothing about any venue: the owner passes the ping text builder, the ping interval and the
venue's connection lifetime.

Rotation (before the lifetime ends, or on :meth:`Link.request_rotation`, e.g. a venue's
"upgrade" notice): the link opens and subscribes a replacement *first*, keeps delivering frames
from both transports (the cache drops the duplicates by sequence), and hands the pairs over the
moment the owner confirms the replacement (or after ``subscribe_timeout``): the old transport
is closed at once and frames it still had in flight are dropped, so the owner can reset its
per-pair sequences without the old connection's numbering creeping back. Not one quote is
missed, no backoff, no loss reported.

Readiness: the owner confirms every transport with :meth:`Link.transport_ready` (subscribe ack
or first quote). A transport carrying the pairs that stays unconfirmed for
``subscribe_timeout`` is dropped and replaced: a connection that is alive but carries no
subscription (a lost subscribe request) is as useless as a dead one.

A supervisor task that dies of an unexpected exception (a bug in a callback) is logged as
``link_crashed`` and restarted, subject to the same backoff and per-minute cap as reconnects.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
import structlog
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

log = structlog.get_logger(__name__)

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONTINUATION = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE
_time_ns = time.time_ns
_transport_ids = itertools.count(1)

#: a connection that lived this long is "stable": the backoff starts over after its loss
STABLE_AFTER = 60.0
#: biggest frame accepted (book tickers are tiny; this only guards against garbage)
MAX_FRAME_SIZE = 4 * 1024 * 1024


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


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Capped exponential backoff, full jitter: uniform(0, min(maximum, initial * 2**attempt))."""
    ceiling = min(maximum, initial * 2.0 ** min(attempt, 60))
    return rng.uniform(0.0, ceiling)


def rotation_after(lifetime: float | None, settings: ConnectionSettings) -> float | None:
    """Seconds after opening at which a transport is rotated (None: never)."""
    if settings.max_lifetime_override is not None:
        return settings.max_lifetime_override
    if lifetime is None:
        return None
    # A margin larger than the lifetime itself would rotate in a loop: keep half the lifetime.
    return max(lifetime - settings.rotation_margin, lifetime / 2.0)


class AttemptLimiter:
    """Sliding-window cap on connection attempts (``limit`` per ``window`` seconds)."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = max(1, limit)
        self.window = window
        self._stamps: deque[float] = deque()

    def wait_time(self, now: float) -> float:
        """Seconds to wait before the next attempt is allowed (0.0: go ahead)."""
        stamps = self._stamps
        while stamps and now - stamps[0] >= self.window:
            stamps.popleft()
        if len(stamps) < self.limit:
            return 0.0
        return stamps[0] + self.window - now

    def record(self, now: float) -> None:
        self._stamps.append(now)


FrameCallback = Callable[["Link", int, bytes, int], None]
ConnectedCallback = Callable[["Link"], list[str]]
LostCallback = Callable[["Link", str], None]


class _Conn(WSListener):
    """One transport of a link: the picows listener plus its liveness bookkeeping."""

    def __init__(self, link: Link, clock: Callable[[], float]) -> None:
        super().__init__()
        self.link = link
        self.tid = next(_transport_ids)
        self._on_frame = link._on_frame
        self._clock = clock
        self.transport: WSTransport | None = None
        self.opened_at = clock()
        self.last_frame = self.opened_at
        #: False once the transport is dead or handed its pairs over: its frames are dropped
        self.alive = True
        self.ping_sent = 0.0  # 0.0: no ping awaiting an answer
        self.rotate_at = float("inf")
        self.ready_deadline = float("inf")
        self.dead: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.watchdog: asyncio.Task[None] | None = None
        self._fragments: bytearray | None = None

    # --- picows callbacks: hot path, keep them minimal -------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        self.last_frame = self._clock()
        msg_type = frame.msg_type
        if msg_type is _BINARY or msg_type is _TEXT:
            if frame.fin:
                self._deliver(frame.get_payload_as_bytes())
            else:
                self._fragments = bytearray(frame.get_payload_as_memoryview())
        elif msg_type is _CONTINUATION:
            self._continue(frame)
        elif msg_type is _CLOSE:
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()
            self.fail(f"closed_by_peer:{int(frame.get_close_code())}")

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.fail("disconnected")

    # ---------------------------------------------------------------------------------------

    def _deliver(self, data: bytes) -> None:
        if not self.alive:  # late frames of a retired transport must not reach the cache
            self.link.stray_frames += 1
            return
        try:
            self._on_frame(self.link, self.tid, data, _time_ns())
        except Exception:
            # The owner's bug must not tear the connection down; say so loudly instead.
            log.exception("frame_handler_failed", link=self.link.name, transport=self.tid)

    def _continue(self, frame: WSFrame) -> None:
        if self._fragments is None:  # a continuation without a start: nothing to attach to
            return
        self._fragments += frame.get_payload_as_memoryview()
        if len(self._fragments) > MAX_FRAME_SIZE:
            self._fragments = None
        elif frame.fin:
            data = bytes(self._fragments)
            self._fragments = None
            self._deliver(data)

    def fail(self, reason: str) -> None:
        """Record why this transport ended (first reason wins)."""
        self.alive = False
        if not self.dead.done():
            self.dead.set_result(reason)

    def send_text(self, text: str) -> bool:
        transport = self.transport
        if transport is None or self.dead.done():
            return False
        transport.send(_TEXT, text.encode())
        return True

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


class Link:
    """A subscription-carrying connection that survives reconnects and rotations.

    Callbacks (all called on the event loop, none may block):

    - ``on_frame(link, transport_id, data, receive_ns)`` for every text/binary frame of every
      transport of the link (during a rotation both the old and the new one deliver);
    - ``on_connected(link) -> list[str]``: the subscribe texts to send on a transport that was
      just opened (asked each time, so the owner can leave out rejected pairs);
      :attr:`latest_id` is the id of that transport;
    - ``on_lost(link, reason)``: the transport carrying the pairs died (not called for the
      orderly close of a rotated-out transport, nor on :meth:`close`).

    Frames of a transport that is neither the current nor the replacement one (rotated out,
    or dead) are not delivered; :attr:`stray_frames` counts them.
    """

    def __init__(
        self,
        name: str,
        url: str,
        settings: ConnectionSettings,
        *,
        ping_message: Callable[[float], str],
        ping_interval: float,
        lifetime: float | None,
        on_frame: FrameCallback,
        on_connected: ConnectedCallback,
        on_lost: LostCallback,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.settings = settings
        self._ping_message = ping_message
        # A quiet but healthy link must get a pong before its silence deadline.
        self._ping_interval = min(ping_interval, settings.silence_timeout / 2.0)
        self._rotate_after = rotation_after(lifetime, settings)
        self._on_frame = on_frame
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._rng = rng or random.Random()
        self._limiter = AttemptLimiter(settings.max_reconnects_per_minute)
        self._attempt = 0
        self._current: _Conn | None = None
        self._replacement: _Conn | None = None
        self._all: set[_Conn] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None  # interrupts _carry's wait
        self._closed = False
        #: transport id on whose behalf ``on_connected`` runs (the newest transport)
        self.latest_id = 0
        #: successful re-connections after a loss (rotations not included)
        self.reconnects = 0
        self.rotations = 0
        #: frames that arrived on a retired transport and were dropped
        self.stray_frames = 0

    # --- public API -----------------------------------------------------------------------

    @property
    def current_id(self) -> int:
        """Id of the transport carrying the pairs (0 while there is none)."""
        conn = self._current
        return conn.tid if conn is not None and not conn.dead.done() else 0

    @property
    def replacement_id(self) -> int:
        """Id of the rotation replacement being brought up (0 while there is none)."""
        conn = self._replacement
        return conn.tid if conn is not None else 0

    @property
    def is_up(self) -> bool:
        return self.current_id != 0

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._spawn(self._run())

    def transport_ready(self, transport_id: int) -> bool:
        """The owner confirms a transport: its subscribe ack (or first quote) arrived.

        Returns True when this call handed the pairs to that transport: the first confirmation
        of the transport carrying them, or a rotation replacement taking over (the old one is
        closed at once and its late frames dropped). A venue may number updates afresh on a
        new connection, so the owner should then forget the pairs' last sequences."""
        conn = self._replacement
        if conn is not None and conn.tid == transport_id:
            if conn.ready.done() or not conn.alive:
                return False
            conn.ready.set_result(None)
            self._promote(conn)
            return True
        conn = self._current
        if conn is None or conn.tid != transport_id or conn.ready.done():
            return False
        conn.ready.set_result(None)
        return True

    def request_reconnect(self, reason: str, transport_id: int | None = None) -> None:
        """The transport (the current one by default) is unusable: close it and reconnect
        with backoff. For the replacement of a rotation in progress, the rotation is retried."""
        replacement = self._replacement
        if replacement is not None and transport_id == replacement.tid:
            replacement.close(reason)
            return
        current = self._current
        if current is None or (transport_id is not None and transport_id != current.tid):
            return
        log.info("reconnect_requested", link=self.name, transport=current.tid, reason=reason)
        current.close(reason)

    def request_rotation(self, reason: str, transport_id: int | None = None) -> None:
        """Replace the transport (the current one by default) make-before-break, like the
        lifetime rotation: no backoff, no reconnect counted, no loss reported. Asked of the
        replacement of a rotation in progress, that replacement is dropped and the rotation
        retried."""
        replacement = self._replacement
        if replacement is not None and transport_id == replacement.tid:
            replacement.close(reason)
            return
        current = self._current
        if current is None or not current.alive or transport_id not in (None, current.tid):
            return
        log.info("rotation_requested", link=self.name, transport=current.tid, reason=reason)
        if replacement is None:  # else one is already on its way
            current.rotate_at = 0.0
            if self._wake is not None and not self._wake.done():
                self._wake.set_result(None)

    def send(self, text: str, transport_id: int | None = None) -> bool:
        """Send a text frame on the current transport (or on the current or replacement one
        named by ``transport_id``); False when there is no such transport."""
        for conn in (self._current, self._replacement):
            if conn is not None and transport_id in (None, conn.tid):
                return conn.send_text(text)
        return False

    async def close(self) -> None:
        """Stop reconnecting and close every transport; waits (briefly) until they are shut."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        conns = list(self._all)
        for conn in conns:
            conn.close("closed")
        waits = [c.transport.wait_disconnected() for c in conns if c.transport is not None]
        if waits:
            try:
                await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), 2.0)
            except TimeoutError:
                log.warning("link_close_timeout", link=self.name)
        self._current = self._replacement = None
        self._all.clear()

    # --- supervisor -----------------------------------------------------------------------

    def _spawn(self, run: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(run, name=self.name)
        task.add_done_callback(self._run_ended)
        self._task = task

    def _run_ended(self, task: asyncio.Task[None]) -> None:
        """A supervisor that died of a bug must not end reconnection silently: restart it."""
        if task.cancelled() or self._closed:
            return
        exc = task.exception()
        if exc is None:
            return
        log.error(
            "link_crashed",
            link=self.name,
            error=repr(exc),
            exc_info=exc,
            summary=f"{self.name}: supervisor crashed ({exc!r}), restarting",
        )
        carrying = self._current
        self._current = self._replacement = None
        for conn in list(self._all):
            conn.abort("link_crashed")
        if carrying is not None:  # the owner must still learn that its pairs lost their feed
            try:
                self._on_lost(self, "link_crashed")
            except Exception:
                log.exception("lost_handler_failed", link=self.name)
        self._spawn(self._run(after_crash=True))

    async def _run(self, after_crash: bool = False) -> None:
        if after_crash:
            await self._backoff()
        conn = await self._establish(reconnect=after_crash)
        while True:
            lost, reason = await self._carry(conn)
            self._lost(lost, reason)
            if asyncio.get_running_loop().time() - lost.opened_at >= STABLE_AFTER:
                self._attempt = 0  # it was healthy: this loss is not part of a flapping streak
            await self._backoff()
            conn = await self._establish(reconnect=True)

    async def _establish(self, reconnect: bool = False) -> _Conn:
        """Connect (with backoff and the per-minute cap) until a transport is up and subscribed."""
        loop = asyncio.get_running_loop()
        while True:
            while (wait := self._throttle(loop.time())) > 0.0:
                await asyncio.sleep(wait)
            try:
                return await self._open(rotation=False, reconnect=reconnect)
            except Exception as exc:  # any connect failure is retried, never fatal
                log.warning("connection_failed", link=self.name, url=self.url, error=repr(exc))
                await self._backoff()

    def _next_delay(self) -> float:
        """The next backoff delay of the current streak of failures (and count the attempt)."""
        s = self.settings
        delay = backoff_delay(
            self._attempt, s.reconnect_initial_delay, s.reconnect_max_delay, self._rng
        )
        self._attempt += 1
        return delay

    async def _backoff(self) -> None:
        delay = self._next_delay()
        log.info(
            "reconnect_scheduled", link=self.name, delay=round(delay, 3), attempt=self._attempt
        )
        await asyncio.sleep(delay)

    async def _open(self, *, rotation: bool, reconnect: bool = False) -> _Conn:
        """Open a transport, register it, and send the owner's subscribe texts on it."""
        loop = asyncio.get_running_loop()
        holder: list[_Conn] = []

        def factory() -> _Conn:
            conn = _Conn(self, loop.time)
            holder.append(conn)
            return conn

        timeout = self.settings.pong_timeout
        try:
            async with asyncio.timeout(timeout):
                await ws_connect(
                    factory,
                    self.url,
                    websocket_handshake_timeout=timeout,
                    enable_auto_pong=True,
                    disconnect_on_exception=False,
                    max_frame_size=MAX_FRAME_SIZE,
                )
        except BaseException:
            for conn in holder:  # a half-open transport must not linger
                if conn.transport is not None:
                    conn.transport.disconnect(graceful=False)
            raise
        conn = holder[-1]
        self._all.add(conn)
        conn.dead.add_done_callback(lambda _f, c=conn: self._forget(c))
        if rotation:
            self._replacement = conn
        else:
            self._current = conn
            if reconnect:
                self.reconnects += 1
        if self._rotate_after is not None:
            conn.rotate_at = conn.opened_at + self._rotate_after
        conn.ready_deadline = conn.opened_at + self.settings.subscribe_timeout
        self.latest_id = conn.tid
        log.info(
            "connection_opened",
            link=self.name,
            transport=conn.tid,
            url=self.url,
            rotation=rotation,
            reconnect=reconnect,
        )
        try:
            texts = self._on_connected(self)
        except Exception:
            conn.abort("subscribe_failed")
            raise
        for text in texts:
            conn.send_text(text)
        conn.watchdog = loop.create_task(self._watch(conn), name=f"{self.name}-watchdog")
        return conn

    def _throttle(self, now: float) -> float:
        """Seconds to wait before the next connection attempt; 0.0: recorded, go ahead."""
        wait = self._limiter.wait_time(now)
        if wait > 0.0:
            log.warning(
                "reconnect_throttled",
                link=self.name,
                wait=round(wait, 3),
                limit=self._limiter.limit,
                summary=f"{self.name}: too many reconnects, waiting {wait:.1f}s",
            )
        else:
            self._limiter.record(now)
        return wait

    def _forget(self, conn: _Conn) -> None:
        conn.stop_watchdog()
        self._all.discard(conn)

    def _lost(self, conn: _Conn, reason: str) -> None:
        log.warning(
            "connection_lost",
            link=self.name,
            transport=conn.tid,
            reason=reason,
            summary=f"{self.name}: connection lost ({reason})",
        )
        if self._current is conn:
            self._current = None
        self._on_lost(self, reason)

    async def _carry(self, conn: _Conn) -> tuple[_Conn, str]:
        """Serve until the transport carrying the pairs dies, rotating it when it is due."""
        loop = asyncio.get_running_loop()
        while True:
            due = conn.rotate_at
            now = loop.time()
            if due > now:  # request_rotation() cuts the wait short
                wake = self._wake = loop.create_future()
                timeout = None if math.isinf(due) else due - now
                await asyncio.wait(
                    [conn.dead, wake], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                self._wake = None
            if conn.dead.done():
                return conn, conn.dead.result()
            if loop.time() >= conn.rotate_at:
                conn = await self._rotate(conn)

    async def _rotate(self, old: _Conn) -> _Conn:
        """Bring up a replacement of ``old``; return whichever transport now carries the pairs."""
        now = asyncio.get_running_loop().time()
        wait = self._throttle(now)
        if wait > 0.0:  # rotations open connections too: a flood of requests must not storm
            old.rotate_at = now + wait
            return old
        try:
            new = await self._open(rotation=True)
        except Exception as exc:
            return self._rotation_failed(old, repr(exc))
        await asyncio.wait(
            [new.ready, new.dead, old.dead],
            timeout=self.settings.subscribe_timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if self._current is new:  # confirmed: transport_ready() handed it the pairs
            return new
        if new.dead.done():
            return self._rotation_failed(old, new.dead.result())
        if old.dead.done():
            # The old one died while the new one was subscribing: a gap is possible.
            self._lost(old, old.dead.result())
        self._promote(new)  # unconfirmed after subscribe_timeout, or the old one is gone
        return new

    def _promote(self, new: _Conn) -> None:
        """Hand the pairs from the current transport (if any) to the replacement ``new``."""
        loop = asyncio.get_running_loop()
        old = self._current
        self._current = new
        self._replacement = None
        self.rotations += 1
        if not new.ready.done():  # promoted on timeout: it gets a full period of its own
            new.ready_deadline = loop.time() + self.settings.subscribe_timeout
        if old is not None:
            old.close("rotated")
        log.info(
            "connection_rotated",
            link=self.name,
            old_transport=old.tid if old is not None else 0,
            new_transport=new.tid,
            ready=new.ready.done(),
            overlap=round(loop.time() - new.opened_at, 3),
        )

    def _rotation_failed(self, old: _Conn, reason: str) -> _Conn:
        self._replacement = None
        delay = self._next_delay()
        old.rotate_at = asyncio.get_running_loop().time() + delay
        log.warning("rotation_failed", link=self.name, reason=reason, retry_in=round(delay, 3))
        return old

    async def _watch(self, conn: _Conn) -> None:
        """Application keepalive, pong deadline and silence watchdog of one transport."""
        loop = asyncio.get_running_loop()
        s = self.settings
        interval = self._ping_interval
        next_ping = conn.opened_at + interval
        while not conn.dead.done():
            now = loop.time()
            last = conn.last_frame
            if now - last >= s.silence_timeout:
                self._timed_out(conn, "silence", now - last)
                return
            ready_deadline = float("inf")
            if not conn.ready.done() and self._current is conn:
                if now >= conn.ready_deadline:
                    self._timed_out(conn, "subscribe_timeout", now - conn.opened_at)
                    return
                ready_deadline = conn.ready_deadline
            pong_deadline = float("inf")
            if conn.ping_sent:
                if last >= conn.ping_sent:
                    conn.ping_sent = 0.0  # answered (any frame counts)
                elif now - conn.ping_sent >= s.pong_timeout:
                    self._timed_out(conn, "pong_timeout", now - conn.ping_sent)
                    return
                else:
                    pong_deadline = conn.ping_sent + s.pong_timeout
            if now >= next_ping:
                conn.send_text(self._ping_message(time.time()))
                if not conn.ping_sent:
                    conn.ping_sent = now
                    pong_deadline = now + s.pong_timeout
                next_ping = now + interval
            wake = min(next_ping, last + s.silence_timeout, pong_deadline, ready_deadline)
            await asyncio.sleep(max(wake - now, 0.005))

    def _timed_out(self, conn: _Conn, reason: str, seconds: float) -> None:
        log.warning(
            "connection_timeout",
            link=self.name,
            transport=conn.tid,
            reason=reason,
            seconds=round(seconds, 3),
        )
        conn.abort(reason)
