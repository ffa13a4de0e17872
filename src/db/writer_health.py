"""How a table writer is doing: its counters, the outage bookkeeping (failed attempts, outage
length, backoff) and the log lines that report them. Imports no database driver."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from datetime import datetime

import msgspec
import structlog

from db.dsn import redact_text

log = structlog.get_logger(__name__)


class WriterStats(msgspec.Struct):
    """Counters since the writer was created (a copy; read it as often as you like)."""

    rows_submitted: int = 0
    #: rows committed to the table, from memory or from spill files (including rows that
    #: were already stored, see rows_duplicate)
    rows_written: int = 0
    rows_duplicate: int = 0
    rows_spilled: int = 0
    rows_loaded_from_spill: int = 0
    #: rows given up: rejected by PostgreSQL, malformed, submitted after close, or spilling failed
    rows_dropped: int = 0
    #: rows in memory not yet committed
    backlog_rows: int = 0
    #: spill files waiting to be loaded
    spill_files: int = 0
    batches_written: int = 0
    batches_failed: int = 0
    last_error: str | None = None
    db_up: bool = False
    last_write_at: datetime | None = None


class WriterHealth:
    """Outcome bookkeeping of one writer's attempts to reach the database.

    ``backlog`` reports (rows in memory, spill files waiting) for the log lines.
    """

    def __init__(
        self,
        dsn: str,
        backlog: Callable[[], tuple[int, int]],
        *,
        retry_initial: float,
        retry_max: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stats = WriterStats()
        self._dsn = dsn
        self._backlog = backlog
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._clock = clock
        #: consecutive failed attempts
        self.failures = 0
        self._outage_since: float | None = None

    def succeeded(self, rows: int) -> None:
        self.stats.db_up = True
        if not self.failures:
            return
        outage = self._clock() - (self._outage_since or self._clock())
        backlog_rows, spill_files = self._backlog()
        log.info(
            "writer_recovered",
            outage_s=round(outage, 3),
            failed_attempts=self.failures,
            rows_written=rows,  # by the first write after the outage: the backlog's head
            backlog_rows=backlog_rows,
            spill_files=spill_files,
            summary=f"database writes resumed after {outage:.1f} s ({rows} rows written)",
        )
        self.failures = 0
        self._outage_since = None

    def failed(self, exc: BaseException, *, expected: bool, closing: bool) -> None:
        """One attempt failed; ``expected``: an outage, not a bug of ours."""
        self.failures += 1
        if self._outage_since is None:
            self._outage_since = self._clock()
        error = redact_text(f"{type(exc).__name__}: {exc}", self._dsn)
        self.stats.batches_failed += 1
        self.stats.db_up = False
        self.stats.last_error = error
        backlog_rows, spill_files = self._backlog()
        extra = {} if expected else {"traceback": self.traceback(exc)}  # where a bug came from
        log.warning(
            "writer_batch_failed",
            error=error,
            attempt=self.failures,
            backlog_rows=backlog_rows,
            spill_files=spill_files,
            retry_in_s=round(self.delay(closing), 3),
            summary=f"database write failed ({error}); {backlog_rows} rows waiting",
            **extra,
        )

    def delay(self, closing: bool) -> float:
        """Seconds to wait before the next attempt: capped exponential, short when closing."""
        delay = min(self._retry_max, self._retry_initial * 2 ** min(self.failures - 1, 30))
        return min(delay, 0.1) if closing else delay

    def dropped(self, rows: int, reason: str, sample: str | None = None) -> None:
        self.stats.rows_dropped += rows
        log.error(
            "writer_dropped",
            rows=rows,
            reason=reason,
            sample=sample,
            summary=f"dropped {rows} rows: {reason}",
        )

    def traceback(self, exc: BaseException) -> str:
        """A traceback for the log, with the DSN's password masked."""
        return redact_text("".join(traceback.format_exception(exc)), self._dsn)
