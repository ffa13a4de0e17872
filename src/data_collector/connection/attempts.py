"""A link's connection attempts: counted (every attempt and every failed one, into the venue's
statistics) and, while they fail, the streak and the last error, for the "waiting for" line.

The first failure of a streak is a ``connection_failed`` warning; the rest are logged at debug
level only: the feed watch says calmly, once in a while, that the venue is still out of reach.
"""

from __future__ import annotations

from typing import Protocol

import structlog

log = structlog.get_logger("data_collector.connection.link")


class AttemptCounters(Protocol):
    """Where a link counts its connection attempts (a venue's statistics, shared by all of
    its links)."""

    connection_attempts: int
    connection_failures: int


class _OwnCounters:
    connection_attempts = 0
    connection_failures = 0


class Attempts:
    """Connection attempts of one link."""

    def __init__(self, link: str, url: str, counters: AttemptCounters | None = None) -> None:
        self._link = link
        self._url = url
        self.counters: AttemptCounters = counters if counters is not None else _OwnCounters()
        #: attempts that failed since the link last connected
        self.failure_streak = 0
        #: why the last of them failed (None while connected, or before any failure)
        self.last_failure: str | None = None

    def started(self) -> None:
        self.counters.connection_attempts += 1

    def connected(self) -> None:
        """An attempt to carry the pairs (not a rotation's) connected: the streak ends."""
        self.failure_streak = 0
        self.last_failure = None

    def failed(self, exc: BaseException) -> None:
        """A connection attempt to carry the pairs failed."""
        self.counters.connection_failures += 1
        self.failure_streak += 1
        self.last_failure = describe(exc)
        level = log.warning if self.failure_streak == 1 else log.debug
        level(
            "connection_failed",
            link=self._link,
            url=self._url,
            error=self.last_failure,
            attempt=self.failure_streak,
            summary=f"{self._link}: cannot connect to {self._url} ({self.last_failure}); "
            "trying again",
        )

    def rotation_failed(self, exc: BaseException) -> str:
        """A rotation's replacement did not connect (the current transport still carries the
        pairs): counted, not a streak; returns the reason."""
        self.counters.connection_failures += 1
        return describe(exc)


def describe(exc: BaseException) -> str:
    """An exception as one short line: its type and message (``TimeoutError`` alone if none)."""
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}"[:300] if text else name
