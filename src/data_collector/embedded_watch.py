"""Keeps the embedded PostgreSQL the collector started running: if its postmaster dies (killed,
out of memory), it is started again in place, with capped exponential backoff and full jitter.

The check (read ``postmaster.pid``, look the process up) and the restart (``pg_ctl start``)
block, so both run in a worker thread; the event loop only sleeps between checks. While the
server is down the writer buffers rows as in any outage, and :meth:`EmbeddedWatch.status`
says what is going on (``/health`` lists it under ``degraded``). Once the server is back the
``on_restarted`` callbacks run (the writer retries at once instead of finishing its backoff).

Logs stay calm: one line when the server is found dead, the first failed restart attempt and
then at most one line every ``log_every`` seconds, one line when it is back.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import structlog

from data_collector.connection.backoff import backoff_delay
from data_collector.wording import plural

log = structlog.get_logger("data_collector.collector")

ServerState = Literal["running", "down"]


class RestartableServer(Protocol):
    """What the watch needs of :class:`db.embedded.EmbeddedPostgres`."""

    data_dir: Path

    @property
    def pid(self) -> int | None: ...
    def is_running(self) -> bool: ...
    def restart(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ServerWatchStatus:
    """The embedded server as the watch last saw it."""

    state: ServerState
    #: times it was restarted during this run
    restarts: int
    #: what is wrong, for people ("embedded PostgreSQL not running for 12 s, restart attempt
    #: 3 in 8.0 s; attempt 2 failed: FATAL: ..."); None while it runs
    problem: str | None


class EmbeddedWatch:
    """Watches one embedded server; :meth:`start` the task, :meth:`stop` it before the server
    is released (a release is not a death to recover from)."""

    def __init__(
        self,
        server: RestartableServer,
        *,
        check_every: float = 1.0,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        log_every: float = 30.0,
        on_restarted: list[Callable[[], None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._server = server
        self._check_every = check_every
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._log_every = log_every
        self.on_restarted: list[Callable[[], None]] = list(on_restarted or [])
        self._clock = clock
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0
        #: the current outage: since when, attempts made, the next one's time, the last error
        self._down_since: float | None = None
        self._attempts = 0
        self._next_attempt_at: float | None = None
        self._last_error = ""
        self._failure_logged_at = float("-inf")

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="embedded-pg-watch")
        return self._task

    async def stop(self) -> None:
        """Stop watching (a restart in flight finishes in its thread; releasing the server
        waits for it)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def status(self) -> ServerWatchStatus:
        if self._down_since is None:
            return ServerWatchStatus("running", self.restarts, None)
        return ServerWatchStatus("down", self.restarts, self._problem())

    def _problem(self) -> str:
        now = self._clock()
        down = f"embedded PostgreSQL not running for {_seconds(now - (self._down_since or now))}"
        if self._next_attempt_at is None:
            return f"{down}, restart attempt {self._attempts} under way"
        wait = _seconds(max(0.0, self._next_attempt_at - now))
        failed = f"attempt {self._attempts} failed: {self._last_error}"
        return f"{down}, restart attempt {self._attempts + 1} in {wait}; {failed}"

    async def _watch(self) -> None:
        server = self._server
        while True:
            await asyncio.sleep(self._check_every)
            if not await asyncio.to_thread(server.is_running):
                await self._recover()

    async def _recover(self) -> None:
        """Restart the server until it runs again."""
        server = self._server
        self._down_since = self._clock()
        self._attempts = 0
        self._failure_logged_at = float("-inf")
        log.warning(
            "embedded_pg_down",
            data_dir=str(server.data_dir),
            pid=server.pid,
            summary=f"embedded PostgreSQL in {server.data_dir} is not running (postmaster pid "
            f"{server.pid} gone): restarting it; rows wait in memory meanwhile",
        )
        while True:
            self._attempts += 1
            self._next_attempt_at = None
            try:
                await asyncio.to_thread(server.restart)
            except Exception as exc:  # any reason it did not start: try again later
                await self._wait_after_failure(exc)
            else:
                self._restarted()
                return

    async def _wait_after_failure(self, exc: Exception) -> None:
        self._last_error = str(exc) or type(exc).__name__
        delay = backoff_delay(self._attempts - 1, self._retry_initial, self._retry_max, self._rng)
        now = self._clock()
        self._next_attempt_at = now + delay
        log.debug(
            "embedded_pg_restart_retry",
            attempt=self._attempts,
            error=self._last_error,
            retry_in_s=round(delay, 3),
        )
        if now - self._failure_logged_at >= self._log_every:
            self._failure_logged_at = now
            log.warning(
                "embedded_pg_restart_failed",
                attempt=self._attempts,
                error=self._last_error,
                down_s=round(now - (self._down_since or now), 3),
                retry_in_s=round(delay, 3),
                summary=f"embedded PostgreSQL did not start "
                f"({plural(self._attempts, 'attempt')} so far: {self._last_error}); "
                f"next attempt in {_seconds(delay)}",
            )
        await asyncio.sleep(delay)

    def _restarted(self) -> None:
        down = self._clock() - (self._down_since or self._clock())
        self.restarts += 1
        self._down_since = self._next_attempt_at = None
        log.info(
            "embedded_pg_restarted",
            attempts=self._attempts,
            down_s=round(down, 3),
            pid=self._server.pid,
            restarts=self.restarts,
            summary=f"embedded PostgreSQL restarted after {_seconds(down)} "
            f"({plural(self._attempts, 'attempt')}); waiting rows are being written",
        )
        for callback in self.on_restarted:
            callback()


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"
