"""The link supervisor: one subscription-carrying connection through reconnects and rotations.

A :class:`Link` is one logical, subscription-carrying connection. It survives reconnects and
planned rotations, sends whatever subscribe texts its owner builds on every (re)connect, and
hands every received data frame to its owner as bytes plus a receive timestamp. It knows
nothing about any venue: the owner passes the venue's keepalive style
(:class:`~data_collector.connection.keepalive.Keepalive`) and connection lifetime.

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
import math
import random
from collections.abc import Callable, Coroutine
from typing import Any

import data_collector.connection.link_log as link_log
from data_collector.connection.attempts import AttemptCounters, Attempts
from data_collector.connection.backoff import Backoff, ConnectGate
from data_collector.connection.keepalive import Keepalive, watch
from data_collector.connection.settings import ConnectionSettings, rotation_after
from data_collector.connection.tap import NO_TAP, LinkTap
from data_collector.connection.transport import Transport, connect
from data_collector.venues.base import ControlBudget

#: seconds ``close()`` waits for the transports to disconnect before giving up on them
CLOSE_WAIT_S = 2.0

FrameCallback = Callable[["Link", int, bytes, int], None]
ConnectedCallback = Callable[["Link"], list[str]]
LostCallback = Callable[["Link", str], None]


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

    ``budget`` is the venue's control-message budget, honoured on every transport (each has its
    own pacer: the venues count per connection); ``counters`` receives every connection attempt
    and every failed one; ``connect_gate`` (shared by the venue's links) paces the attempts
    within the venue's per-IP limit.

    Frames of a transport that is neither the current nor the replacement one (rotated out,
    or dead) are not delivered; :attr:`stray_frames` counts them. ``tap`` hears all (--record).
    """

    def __init__(
        self,
        name: str,
        url: str,
        settings: ConnectionSettings,
        *,
        keepalive: Keepalive,
        lifetime: float | None,
        on_frame: FrameCallback,
        on_connected: ConnectedCallback,
        on_lost: LostCallback,
        budget: ControlBudget | None = None,
        counters: AttemptCounters | None = None,
        rng: random.Random | None = None,
        tap: LinkTap | None = None,
        connect_gate: ConnectGate | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.settings = settings
        self._keepalive = keepalive
        self._budget = budget
        self.attempts = Attempts(name, url, counters)
        self._rotate_after = rotation_after(lifetime, settings)
        self._on_frame = on_frame
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._backoff = Backoff(name, settings, rng or random.Random())
        self._connect_gate = connect_gate
        self._current: Transport | None = None
        self._replacement: Transport | None = None
        self._all: set[Transport] = set()
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
        self.tap: LinkTap = tap or NO_TAP
        #: protocol pings of the server answered with a pong (by every transport)
        self.pings_answered = 0

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
        link_log.rotation_requested(self.name, current.tid, reason)
        if replacement is None:  # else one is already on its way
            current.rotate_at = 0.0
            if self._wake is not None and not self._wake.done():
                self._wake.set_result(None)

    @property
    def next_attempt_in(self) -> float | None:
        """Seconds until the next connection attempt while the link waits to reconnect."""
        return self._backoff.next_attempt_in(asyncio.get_running_loop().time())

    def send_subscriptions(self, texts: list[str], transport_id: int | None = None) -> int:
        """Send subscribe requests on the current transport (or on the current or replacement
        one named by ``transport_id``), paced by the venue's budget; how many were queued."""
        for conn in (self._current, self._replacement):
            if conn is not None and transport_id in (None, conn.tid):
                return conn.send_subscriptions(texts)
        return 0

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
                await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), CLOSE_WAIT_S)
            except TimeoutError:
                link_log.close_timeout(self.name, CLOSE_WAIT_S)
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
        link_log.crashed(self.name, exc)
        carrying = self._current
        self._current = self._replacement = None
        for conn in list(self._all):
            conn.abort("link_crashed")
        if carrying is not None:  # the owner must still learn that its pairs lost their feed
            self.tap.lost(carrying.tid, "link_crashed")
            try:
                self._on_lost(self, "link_crashed")
            except Exception:
                link_log.lost_handler_failed(self.name)
        self._spawn(self._run(after_crash=True))

    async def _run(self, after_crash: bool = False) -> None:
        if after_crash:
            await self._backoff.sleep()
        conn = await self._establish(reconnect=after_crash)
        while True:
            lost, reason = await self._carry(conn)
            self._lost(lost, reason)
            self._backoff.lost_after(asyncio.get_running_loop().time() - lost.opened_at)
            await self._backoff.sleep()
            conn = await self._establish(reconnect=True)

    async def _establish(self, reconnect: bool = False) -> Transport:
        """Connect (with backoff and the per-minute cap) until a transport is up and subscribed."""
        loop = asyncio.get_running_loop()
        while True:
            while (wait := self._backoff.throttle(loop.time())) > 0.0:
                await self._backoff.wait(wait)
            try:
                return await self._open(rotation=False, reconnect=reconnect)
            except Exception as exc:  # any connect failure is retried, never fatal
                self.attempts.failed(exc)
                await self._backoff.sleep()

    async def _open(self, *, rotation: bool, reconnect: bool = False) -> Transport:
        """Open a transport, register it, and send the owner's subscribe texts on it."""
        loop = asyncio.get_running_loop()
        if self._connect_gate is not None:
            await self._connect_gate.wait_turn()
        self.attempts.started()
        conn = await connect(self.url, self._new_transport, self.settings.pong_timeout)
        if not rotation:
            self.attempts.connected()
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
        self.latest_id = conn.tid
        self.tap.opened(conn.tid, rotation, reconnect)
        link_log.opened(self.name, conn.tid, self.url, rotation=rotation, reconnect=reconnect)
        try:
            texts = self._on_connected(self)
        except Exception:
            conn.abort("subscribe_failed")
            raise
        conn.send_subscriptions(texts)
        watchdog = watch(conn, self._keepalive, self.settings, self._carries_pairs)
        conn.watchdog = loop.create_task(watchdog, name=f"{self.name}-watchdog")
        return conn

    def _new_transport(self) -> Transport:
        return Transport(
            self,
            self._on_frame,
            asyncio.get_running_loop().time,
            budget=self._budget,
            subscribe_timeout=self.settings.subscribe_timeout,
        )

    def _carries_pairs(self, conn: Transport) -> bool:
        return self._current is conn

    def _forget(self, conn: Transport) -> None:
        conn.stop_watchdog()
        self._all.discard(conn)

    def _lost(self, conn: Transport, reason: str) -> None:
        link_log.lost(self.name, conn.tid, reason)
        if self._current is conn:
            self._current = None
        self.tap.lost(conn.tid, reason)
        self._on_lost(self, reason)

    async def _carry(self, conn: Transport) -> tuple[Transport, str]:
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

    async def _rotate(self, old: Transport) -> Transport:
        """Bring up a replacement of ``old``; return whichever transport now carries the pairs."""
        now = asyncio.get_running_loop().time()
        wait = self._backoff.throttle(now)
        if wait > 0.0:  # rotations open connections too: a flood of requests must not storm
            old.rotate_at = now + wait
            return old
        try:
            new = await self._open(rotation=True)
        except Exception as exc:
            return self._rotation_failed(old, self.attempts.rotation_failed(exc))
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

    def _promote(self, new: Transport) -> None:
        """Hand the pairs from the current transport (if any) to the replacement ``new``."""
        loop = asyncio.get_running_loop()
        old = self._current
        self._current = new
        self._replacement = None
        self.rotations += 1
        if not new.ready.done():  # promoted on timeout: it gets a full period of its own
            new.restart_ready_clock()
        self.tap.promoted(old.tid if old is not None else 0, new.tid)
        if old is not None:
            old.close("rotated")
        overlap = round(loop.time() - new.opened_at, 3)
        old_tid = old.tid if old is not None else 0
        link_log.rotated(self.name, old_tid, new.tid, ready=new.ready.done(), overlap=overlap)

    def _rotation_failed(self, old: Transport, reason: str) -> Transport:
        self._replacement = None
        delay = self._backoff.next_delay()
        old.rotate_at = asyncio.get_running_loop().time() + delay
        link_log.rotation_failed(self.name, reason, round(delay, 3))
        return old
