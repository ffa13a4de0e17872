"""Reconnect pacing of a link: capped exponential backoff with full jitter, and a sliding cap
on connection attempts per minute (a flapping venue never causes a reconnect storm); and the
venue's own limit on connection attempts per IP, shared by all of its links
(:class:`ConnectGate`)."""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque

import structlog

from data_collector.connection.pacer import BUDGET_SHARE
from data_collector.connection.settings import ConnectionSettings
from data_collector.venues.base import ConnectBudget

log = structlog.get_logger(__name__)

#: a connection that lived this long is "stable": the backoff starts over after its loss
STABLE_AFTER = 60.0


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Capped exponential backoff, full jitter: uniform(0, min(maximum, initial * 2**attempt))."""
    ceiling = min(maximum, initial * 2.0 ** min(attempt, 60))
    return rng.uniform(0.0, ceiling)


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


class ConnectGate:
    """A venue's connection-attempt budget per IP (OKX: 3 a second), shared by its links: an
    attempt waits for its turn, so that links starting, rotating or reconnecting together do
    not exceed it. Like the pacer, it uses ``BUDGET_SHARE`` of the budget (the venue counts
    arrivals)."""

    def __init__(self, budget: ConnectBudget) -> None:
        usable = max(1, math.floor(budget.attempts * BUDGET_SHARE))
        self._limiter = AttemptLimiter(usable, budget.per_seconds)

    async def wait_turn(self) -> None:
        """Return once an attempt may start now, and count it."""
        loop = asyncio.get_running_loop()
        while (wait := self._limiter.wait_time(loop.time())) > 0.0:
            await asyncio.sleep(wait)
        self._limiter.record(loop.time())


class Backoff:
    """The reconnect pacing of one link: the delay grows over a streak of failures, and every
    connection attempt (reconnects, rotations, crash restarts) counts against the cap."""

    def __init__(self, link: str, settings: ConnectionSettings, rng: random.Random) -> None:
        self._link = link
        self._settings = settings
        self._rng = rng
        self._limiter = AttemptLimiter(settings.max_reconnects_per_minute)
        self._attempt = 0
        #: loop time at which the current wait before a connection attempt ends (None: none)
        self._resume_at: float | None = None

    def lost_after(self, lived: float) -> None:
        """A connection was lost after ``lived`` seconds: if it was stable, the loss is not part
        of a flapping streak, and the delays start small again."""
        if lived >= STABLE_AFTER:
            self._attempt = 0

    def next_delay(self) -> float:
        """The next delay of the current streak of failures (and count the attempt)."""
        s = self._settings
        delay = backoff_delay(
            self._attempt, s.reconnect_initial_delay, s.reconnect_max_delay, self._rng
        )
        self._attempt += 1
        return delay

    async def sleep(self) -> None:
        delay = self.next_delay()
        # Debug: people read connection_lost / connection_failed and the feed watch's calm
        # "waiting for venues" line; one line per attempt would flood an outage.
        log.debug(
            "reconnect_scheduled", link=self._link, delay=round(delay, 3), attempt=self._attempt
        )
        await self.wait(delay)

    async def wait(self, seconds: float) -> None:
        """Sleep before a connection attempt, exposing when it ends (:meth:`next_attempt_in`)."""
        loop = asyncio.get_running_loop()
        self._resume_at = loop.time() + seconds
        try:
            await asyncio.sleep(seconds)
        finally:
            self._resume_at = None

    def next_attempt_in(self, now: float) -> float | None:
        """Seconds left of the current wait before a connection attempt (None: not waiting)."""
        return None if self._resume_at is None else max(0.0, self._resume_at - now)

    def throttle(self, now: float) -> float:
        """Seconds to wait before the next connection attempt; 0.0: recorded, go ahead."""
        wait = self._limiter.wait_time(now)
        if wait > 0.0:
            log.warning(
                "reconnect_throttled",
                link=self._link,
                wait=round(wait, 3),
                limit=self._limiter.limit,
                summary=f"{self._link}: too many reconnects, waiting {wait:.1f}s",
            )
        else:
            self._limiter.record(now)
        return wait
