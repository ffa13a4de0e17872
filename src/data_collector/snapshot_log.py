"""The ``[SNAPSHOT]`` log lines: what a tick captured and what the writer has done since.

A tick that captured rows logs ``snapshot`` at info level: the rows it queued for the writer
and, from the writer's progress, what happened since the previous line (rows stored,
duplicates the database already held, rows still waiting, or that the database is down). A
tick that captured nothing logs ``snapshot`` at debug level only; while that lasts, one calm
``snapshot_idle`` line says so when it starts and then every ``idle_every`` seconds.

The writer's progress comes through a plain callable returning :class:`WriterProgress`: this
module never sees the writer or the database driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from data_collector.wording import plural

log = structlog.get_logger("data_collector.scheduler")

#: seconds between two ``snapshot_idle`` lines while nothing is captured
IDLE_LOG_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class WriterProgress:
    """The snapshot writer's totals since it started, as the snapshot line reports them."""

    #: "up"; "down": the last write failed; "stalled": a write has not finished in time
    state: str
    #: rows committed that were new to the table
    rows_stored: int
    #: rows committed that the table already held (``ON CONFLICT DO NOTHING`` skipped them)
    rows_duplicate: int
    #: rows waiting in memory to be written
    backlog_rows: int


ProgressSource = Callable[[], WriterProgress]


@dataclass(frozen=True, slots=True)
class TickOutcome:
    """One tick as the scheduler recorded it."""

    tick: int
    tick_time: datetime
    pairs: int
    rows: int
    duration_s: float
    lateness_s: float


class SnapshotLog:
    """Words each tick; remembers the writer's totals at the previous line and the idle spell.

    ``progress`` is None when nothing reports on the writer (a bare scheduler in a test or a
    benchmark); ``dry_run`` says the rows are not stored at all.
    """

    def __init__(
        self,
        *,
        progress: ProgressSource | None = None,
        dry_run: bool = False,
        idle_every: float = IDLE_LOG_EVERY_S,
    ) -> None:
        self._progress = progress
        self._dry_run = dry_run
        self._idle_every = idle_every
        self._last: WriterProgress | None = None
        self._last_capture: datetime | None = None
        self._idle_since: datetime | None = None
        self._idle_logged: datetime | None = None
        self._idle_ticks = 0

    def tick(self, t: TickOutcome) -> None:
        if t.rows:
            self._captured(t)
        else:
            self._idle(t)

    def _captured(self, t: TickOutcome) -> None:
        self._last_capture, self._idle_since, self._idle_ticks = t.tick_time, None, 0
        ms = t.duration_s * 1000
        fields = self._writer_fields(t.rows)
        what = f"[SNAPSHOT #{t.tick:03d}] Captured {plural(t.pairs, 'pair')}, "
        if self._dry_run:
            text = f"{what}{plural(t.rows, 'record')} in {ms:.1f}ms (dry run: not stored)"
        else:
            text = f"{what}queued {plural(t.rows, 'record')} in {ms:.1f}ms{_writer_text(fields)}"
        log.info("snapshot", **_tick_fields(t), **fields, summary=text)

    def _idle(self, t: TickOutcome) -> None:
        log.debug("snapshot", **_tick_fields(t), **self._writer_fields(0))
        if self._idle_since is None:  # a spell without captures begins: say so at once
            self._idle_since, self._idle_logged = t.tick_time, None
        self._idle_ticks += 1
        logged = self._idle_logged
        if logged is not None and (t.tick_time - logged).total_seconds() < self._idle_every:
            return
        self._idle_logged = t.tick_time
        if self._last_capture is None:
            text = "[SNAPSHOT] No live quotes yet: nothing stored"
        else:
            since = self._last_capture.strftime("%H:%M:%S")
            text = f"[SNAPSHOT] No live quotes since {since} UTC: nothing stored"
        log.info(
            "snapshot_idle",
            tick=t.tick,
            tick_time=t.tick_time.isoformat(),
            idle_ticks=self._idle_ticks,
            idle_since=self._idle_since.isoformat(),
            last_capture=None if self._last_capture is None else self._last_capture.isoformat(),
            summary=text,
        )

    def _writer_fields(self, queued: int) -> dict[str, Any]:
        """The writer's part of the event: its state, and what it did since the last line."""
        if self._dry_run or self._progress is None:
            return {"queued": 0 if self._dry_run else queued}
        now = self._progress()
        last = self._last or WriterProgress(now.state, 0, 0, 0)
        if queued:  # an idle tick's debug event does not move the baseline
            self._last = now
        return {
            "queued": queued,
            "db_state": now.state,
            "rows_stored": now.rows_stored - last.rows_stored,
            "rows_duplicate": now.rows_duplicate - last.rows_duplicate,
            "backlog_rows": now.backlog_rows,
        }


def _tick_fields(t: TickOutcome) -> dict[str, Any]:
    return {
        "tick": t.tick,
        "tick_time": t.tick_time.isoformat(),  # "timestamp" is the log line's own time
        "pairs": t.pairs,
        "rows": t.rows,
        "ms": round(t.duration_s * 1000, 3),
        "lateness_ms": round(t.lateness_s * 1000, 3),
    }


def _writer_text(fields: dict[str, Any]) -> str:
    """``; database: 40 stored``, ``; database down: 1200 records waiting``, or nothing."""
    state = fields.get("db_state")
    if state is None:
        return ""
    waiting = fields["backlog_rows"]
    if state != "up":
        return f"; database {state}: {plural(waiting, 'record')} waiting"
    stored, duplicate = fields["rows_stored"], fields["rows_duplicate"]
    # this tick's rows were just queued: only rows beyond them are worth a word
    behind = waiting - fields["queued"]
    if not stored and not duplicate and behind <= 0:
        return ""  # nothing written since the last line, nothing behind: the first tick
    parts = [f"{stored} stored"]
    if duplicate:
        parts.append(f"{plural(duplicate, 'duplicate')} skipped")
    if behind > 0:
        parts.append(f"{waiting} waiting")
    return "; database: " + ", ".join(parts)
