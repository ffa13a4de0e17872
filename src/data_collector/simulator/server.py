"""A simulated venue on loopback: :class:`VenueServer`, its lifecycle, loop and controls.

The server wires the parts together: ``connections.Connections`` accepts clients, routes their
frames to the venue's ``Personality`` and keeps the subscription table; ``push.Pusher`` sends
book-ticker updates (random walk, backpressure); ``faults.Faults`` and ``flood.Flood`` hold the
controls tests, ``--simulate`` and ``bench/`` use through the methods below. The server's loop
pushes what is due every ~10 ms and drops the sessions the venue would drop every ~50 ms.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any

import structlog
from picows import WSCloseCode, ws_create_server

from data_collector.pairs import Pair
from data_collector.simulator.book import VenueBook
from data_collector.simulator.connections import Connections
from data_collector.simulator.faults import Faults
from data_collector.simulator.flood import Flood, FloodObserver
from data_collector.simulator.market import Market
from data_collector.simulator.personality import Personality
from data_collector.simulator.push import Pusher, PushObserver, SendStats
from data_collector.simulator.session import ClientSession
from data_collector.wording import plural

log = structlog.get_logger(__name__)

#: the push loop's period (seconds)
PUSH_INTERVAL = 0.01
#: how often idle/lifetime timeouts and server pings are checked (seconds)
HOUSEKEEPING_INTERVAL = 0.05
#: a tick this much later than the last one found the process unscheduled (a busy machine):
#: the clients' answers may still sit unread in the sockets, so it judges no timeout yet
LATE_TICK = 0.25
#: a session whose transport buffers more than this many bytes is skipped until it drains
DEFAULT_MAX_WRITE_BUFFER = 1 << 20


class VenueServer:
    """A simulated venue: one listening socket, its sessions and its view of the market."""

    def __init__(
        self,
        personality: Personality,
        market: Market,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_hz: float = 5.0,
        seed: int = 1,
        max_write_buffer: int = DEFAULT_MAX_WRITE_BUFFER,
    ) -> None:
        self.personality = personality
        self.name = personality.name
        self.market = market
        self.host = host
        self.port = port
        #: the open sessions, one list shared by every part
        self.sessions: list[ClientSession] = []
        self.book = VenueBook(personality, market, random.Random(f"{seed}:{self.name}"))
        self.stats = SendStats()
        self.pusher = Pusher(
            self.book, self.stats, rate_hz=rate_hz, max_write_buffer=max_write_buffer
        )
        self.faults = Faults(self.book, self.pusher, self.sessions)
        self.flooder = Flood(self.book, self.stats, self.sessions)
        self.connections = Connections(self.book, self.sessions, stalled_at=self.faults.stalled_at)
        self._server: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{self.personality.path}"

    async def start(self) -> None:
        self._server = await ws_create_server(
            self.connections.listener_for,
            self.host,
            self.port,
            enable_auto_pong=False,  # we answer pings ourselves so stall() can withhold them
            logger_name=f"simulator.{self.name}",
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._task = asyncio.create_task(self._run(), name=f"simulator-{self.name}")
        pairs = len(self.book)
        log.info(
            "simulator_venue_started",
            venue=self.name,
            url=self.url,
            pairs=pairs,
            summary=f"simulated {self.name} serving {plural(pairs, 'pair')} at {self.url}",
        )

    async def stop(self) -> None:
        self.faults.cancel_pending()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._server is not None:
            self._server.close()
            for session in tuple(self.sessions):
                if session.backlogged(self.max_write_buffer):
                    session.transport.disconnect(graceful=False)  # it would never drain
                else:
                    session.close(WSCloseCode.GOING_AWAY)
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except TimeoutError:
                log.warning(
                    "simulator_close_slow",
                    venue=self.name,
                    summary=f"simulated {self.name}: clients still connected 2 s after closing",
                )
            self._server = None
        log.info(
            "simulator_venue_stopped", venue=self.name, summary=f"simulated {self.name} stopped"
        )

    # ------------------------------------------------------ clients (connections)

    @property
    def total_connections(self) -> int:
        return self.connections.total_connections

    @property
    def malformed_messages(self) -> int:
        """Client messages the venue could not make sense of."""
        return self.connections.malformed_messages

    @property
    def subscription_count(self) -> int:
        return self.connections.subscription_count

    async def wait_for_subscriptions(self, n: int, timeout: float = 5.0) -> None:
        await self.connections.wait_until(
            lambda: self.subscription_count >= n, timeout, plural(n, "subscription")
        )

    async def wait_for_sessions(self, n: int, timeout: float = 5.0) -> None:
        await self.connections.wait_until(
            lambda: len(self.sessions) >= n, timeout, plural(n, "session")
        )

    def close_session(self, session: ClientSession, reason: str) -> None:
        self.connections.close_session(session, reason)

    # -------------------------------------------------------------- the loop

    async def _run(self) -> None:
        last = time.monotonic()
        next_housekeeping = last
        while True:
            await asyncio.sleep(PUSH_INTERVAL)
            now = time.monotonic()
            elapsed, last = now - last, now
            housekeeping_due = now >= next_housekeeping and elapsed < LATE_TICK
            try:
                self._tick(now, elapsed, housekeeping_due)
            except Exception:  # keep serving: one bad tick must not end the simulation
                log.exception(
                    "simulator_tick_failed",
                    venue=self.name,
                    summary=f"simulated {self.name}: a push tick failed; serving goes on",
                )
            if housekeeping_due:
                next_housekeeping = now + HOUSEKEEPING_INTERVAL

    def _tick(self, now: float, elapsed: float, housekeeping_due: bool) -> None:
        pusher = self.pusher
        if self.faults.stalled_at(now):
            pusher.idle()
            return
        if housekeeping_due:
            self._housekeeping(now)
        if self.flooder.running:
            pusher.idle()
            return
        pusher.flush_dirty(self.sessions, now)
        if self.faults.paused:
            pusher.idle()
            return
        pusher.random_walk(now, elapsed)

    def _housekeeping(self, now: float) -> None:
        personality = self.personality
        pings = personality.server_pings
        for session in tuple(self.sessions):
            reason = personality.expiry_reason(session, now)
            if not reason and pings is not None:
                reason = pings.check(session, now)
            if reason:
                self.close_session(session, reason)

    # ------------------------------------------------- pushes, floods and their hooks

    @property
    def rate_hz(self) -> float:
        """Per-pair update rate of the random walk (settable at any time)."""
        return self.pusher.rate_hz

    @rate_hz.setter
    def rate_hz(self, value: float) -> None:
        self.pusher.rate_hz = value

    @property
    def max_write_buffer(self) -> int:
        return self.pusher.max_write_buffer

    @property
    def updates_sent(self) -> int:
        return self.stats.updates_sent

    @property
    def skipped_backpressure(self) -> int:
        return self.stats.skipped_backpressure

    def observe_pushes(self, observer: PushObserver | None) -> None:
        """Call ``observer(session, pair index, quote)`` right before each book-ticker frame of
        a push (random walk, :meth:`set_quote`, ...) is handed to a client's transport; None
        removes it. Benchmarks stamp send times with it."""
        self.pusher.observer = observer

    def observe_floods(self, observer: FloodObserver | None) -> None:
        """Call ``observer([(pair index, quote), ...])`` with each batch a flood generates,
        before it is sent; None removes it."""
        self.flooder.observer = observer

    async def flood(
        self, frames: int | None = None, *, pairs: Sequence[Pair] | None = None, chunk: int = 4096
    ) -> int:
        """Push updates to every subscribed session as fast as it reads them (see
        :meth:`Flood.run`); returns frames sent, summed over sessions."""
        return await self.flooder.run(frames, pairs=pairs, chunk=chunk)

    def stop_flood(self) -> None:
        """End a running :meth:`flood` after the frame it is sending."""
        self.flooder.stop()

    def last_sent(self, pair: Pair) -> dict[str, Any] | None:
        """The last quote pushed (or held) for ``pair``; ``time_ms`` is the venue's event time
        (MEXC ``sendTime``, Gate ``t``)."""
        quote = self.book.last[self.book.index(pair)]
        return None if quote is None else quote.as_dict()

    # ------------------------------------------------- fault controls (faults.Faults)

    def set_quote(
        self,
        pair: Pair,
        bid: str | None,
        bid_qty: str | None,
        ask: str | None,
        ask_qty: str | None,
        *,
        hold: bool = True,
    ) -> None:
        """Push this exact quote now (see :meth:`Faults.set_quote`)."""
        self.faults.set_quote(pair, bid, bid_qty, ask, ask_qty, hold=hold)

    def release(self, pair: Pair) -> None:
        self.faults.release(pair)

    def pause(self) -> None:
        self.faults.pause()

    def resume(self) -> None:
        self.faults.resume()

    def disconnect_all(self) -> None:
        self.faults.disconnect_all()

    def stall(self, seconds: float) -> None:
        self.faults.stall(seconds)

    @property
    def stalled(self) -> bool:
        return self.faults.stalled

    def send_garbage(self, count: int = 1) -> None:
        self.faults.send_garbage(count)

    def send_out_of_order(self, pair: Pair) -> None:
        self.faults.send_out_of_order(pair)

    def reject(self, pair: Pair) -> None:
        self.faults.reject(pair)

    def send_restart_notice(self, close_after: float | None = None) -> int:
        return self.faults.send_restart_notice(close_after)

    def send_upgrade(self) -> None:
        """Gate's name for :meth:`send_restart_notice` (``"event":"upgrade"``)."""
        self.faults.send_restart_notice()
