"""How a table writer is doing: its counters, its state (up, down, stalled), the outage
bookkeeping (failed attempts, outage length, backoff) and the log lines that report them, at a
calm rate. Imports no database driver."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Literal

import msgspec
import structlog

from data_collector.wording import plural
from db.dsn import redact_text

log = structlog.get_logger(__name__)

#: up: writes succeed (or none has failed yet); down: the last attempt failed; stalled: the
#: attempt in flight has not finished within ``stall_after`` seconds
State = Literal["up", "down", "stalled"]


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
    #: rows_dropped by reason
    drop_reasons: dict[str, int] = msgspec.field(default_factory=dict)
    #: rows in memory not yet committed
    backlog_rows: int = 0
    #: spill files waiting to be loaded
    spill_files: int = 0
    batches_written: int = 0
    batches_failed: int = 0
    #: why the last attempt failed or what has not finished
    last_error: str | None = None
    state: State = "up"
    #: state == "up"
    db_up: bool = True
    last_write_at: datetime | None = None


class WriterHealth:
    """Outcome bookkeeping of one writer's attempts to reach the database.

    ``backlog`` reports (rows in memory, spill files waiting) for the log lines. While an
    outage lasts, the first failure is logged, then at most one line per
    ``failure_log_every`` seconds; every attempt is logged at debug level. Once
    :attr:`closing` is set, failed attempts and stalls are not logged at all: :meth:`closed`
    reports the outcome in one line.
    """

    def __init__(
        self,
        dsn: str,
        backlog: Callable[[], tuple[int, int]],
        *,
        retry_initial: float,
        retry_max: float,
        failure_log_every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stats = WriterStats()
        self.closing = False
        #: consecutive failed attempts
        self.failures = 0
        self._dsn = dsn
        self._backlog = backlog
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._failure_log_every = failure_log_every
        self._clock = clock
        self._attempt_at = clock()
        self._outage_since: float | None = None
        self._stall_logged = False
        self._failure_logged_at = float("-inf")

    def attempt_started(self) -> None:
        """An attempt (connect, write or load) begins: an outage would date from now."""
        self._attempt_at = self._clock()

    def stalled(self, what: str, after: float) -> None:
        """The attempt in flight has been ``what`` for ``after`` seconds without finishing."""
        self._outage_began("stalled")
        message = f"{what} has not finished after {after:.1f} s"
        self.stats.last_error = message
        if self.closing or self._stall_logged:
            return
        self._stall_logged = True
        rows, files = self._backlog()
        log.warning(
            "writer_stalled",
            waiting_for=what,
            after_s=round(after, 3),
            backlog_rows=rows,
            spill_files=files,
            summary=f"database stalled: {message}; {plural(rows, 'row')} waiting",
        )

    def succeeded(self, rows: int) -> None:
        self._set_state("up")
        if self._outage_since is None:
            return
        outage = self._clock() - self._outage_since
        backlog_rows, spill_files = self._backlog()
        log.info(
            "writer_recovered",
            outage_s=round(outage, 3),
            failed_attempts=self.failures,
            rows_written=rows,  # by the first write after the outage: the backlog's head
            backlog_rows=backlog_rows,
            spill_files=spill_files,
            summary=f"database writes resumed after {outage:.1f} s ({plural(rows, 'row')} written)",
        )
        self.failures = 0
        self._outage_since = None
        self._stall_logged = False
        self._failure_logged_at = float("-inf")

    def failed(self, exc: BaseException, *, expected: bool, during: str = "") -> None:
        """One attempt failed while ``during``; ``expected``: an outage, not a bug of ours."""
        self.failures += 1
        self._outage_began("down")
        detail = str(exc) or f"no message, during {during or 'a database write'}"
        error = redact_text(f"{type(exc).__name__}: {detail}", self._dsn)
        self.stats.batches_failed += 1
        self.stats.last_error = error
        delay = round(self.delay(), 3)
        log.debug("writer_retry", error=error, attempt=self.failures, retry_in_s=delay)
        now = self._clock()
        if self.closing or now - self._failure_logged_at < self._failure_log_every:
            return
        self._failure_logged_at = now
        rows, files = self._backlog()
        extra = {} if expected else {"traceback": self.traceback(exc)}  # where a bug came from
        outage = now - (self._outage_since or now)
        log.warning(
            "writer_batch_failed",
            error=error,
            attempt=self.failures,
            outage_s=round(outage, 3),
            backlog_rows=rows,
            spill_files=files,
            retry_in_s=delay,
            summary=(
                f"database write failed ({error}); {plural(rows, 'row')} waiting"
                if self.failures == 1
                else f"database writes still failing after {self.failures} attempts in "
                f"{outage:.0f} s ({error}); {plural(rows, 'row')} waiting, "
                f"{plural(files, 'spill file')}"
            ),
            **extra,
        )

    def delay(self) -> float:
        """Seconds to wait before the next attempt: capped exponential, short when closing."""
        delay = min(self._retry_max, self._retry_initial * 2 ** min(self.failures - 1, 30))
        return min(delay, 0.1) if self.closing else delay

    def dropped(self, rows: int, reason: str, sample: str | None = None) -> None:
        self.stats.rows_dropped += rows
        reasons = self.stats.drop_reasons
        reasons[reason] = reasons.get(reason, 0) + rows
        log.error(
            "writer_dropped",
            rows=rows,
            reason=reason,
            sample=sample,
            summary=f"dropped {plural(rows, 'row')}: {reason}",
        )

    def closed(self, spill_dir: Path, table: str) -> None:
        """The one line that says how closing ended: written, spilled (where), dropped."""
        s = self.stats
        _rows, files = self._backlog()
        parts = [f"{plural(s.rows_written, 'row')} written"]
        if files:
            parts.append(f"{plural(files, 'spill file')} waiting in {spill_dir} for the next run")
        if s.rows_dropped:
            why = ", ".join(f"{n} {reason}" for reason, n in s.drop_reasons.items())
            parts.append(f"{plural(s.rows_dropped, 'row')} dropped ({why})")
        level = "error" if s.rows_dropped else "warning" if files else "info"
        cause = f"database {s.state} ({s.last_error}); " if s.state != "up" else ""
        getattr(log, level)(
            "writer_closed",
            table=table,
            rows_written=s.rows_written,
            rows_spilled=s.rows_spilled,
            rows_dropped=s.rows_dropped,
            spill_files=files,
            spill_dir=str(spill_dir),
            state=s.state,
            summary=f"{table} writer closed: {cause}{', '.join(parts)}",
        )

    def traceback(self, exc: BaseException) -> str:
        """A traceback for the log, with the DSN's password masked."""
        return redact_text("".join(traceback.format_exception(exc)), self._dsn)

    def _outage_began(self, state: State) -> None:
        self._set_state(state)
        if self._outage_since is None:
            self._outage_since = self._attempt_at

    def _set_state(self, state: State) -> None:
        self.stats.state = state
        self.stats.db_up = state == "up"
