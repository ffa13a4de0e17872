"""The snapshot scheduler: capture the cache on wall-clock multiples of the interval.

It sleeps to the next boundary (never ``sleep(interval)`` after the work, which drifts), stamps
every row of one capture with that boundary, hands the rows to the writer without waiting on
the database, and tells the analytics. A boundary that passed while the loop was blocked is
logged as missed, never skipped silently.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import numpy as np
import structlog

from data_collector.cache import QuoteCache, Snapshot
from data_collector.snapshot_log import ProgressSource, SnapshotLog, TickOutcome
from data_collector.wording import plural
from db.rows import SnapshotRow

log = structlog.get_logger(__name__)

RowSink = Callable[[list[SnapshotRow]], None]
SnapshotConsumer = Callable[[Snapshot, datetime], None]
TickObserver = Callable[[Snapshot, "TickStats"], None]


class TickStats:
    """Counters the monitoring and the tests read."""

    def __init__(self) -> None:
        self.ticks = 0
        self.missed = 0
        self.rows = 0
        self.last_tick_time: datetime | None = None
        self.last_duration_s = 0.0
        self.last_lateness_s = 0.0


async def wall_clock_ticks(
    interval: float, *, offset: float = 0.0, clock: Callable[[], float] = time.time
) -> AsyncIterator[tuple[float, int]]:
    """Yield (boundary, missed) at each wall-clock multiple of ``interval`` (plus ``offset``).

    ``missed`` counts the boundaries that passed unobserved since the previous yield (the
    consumer or the event loop was blocked for longer than an interval).
    """

    def next_boundary() -> float:
        return math.floor((clock() - offset) / interval + 1) * interval + offset

    boundary = next_boundary()
    while True:
        while (delay := boundary - clock()) > 0:  # the loop's timer may wake a hair early
            if delay > interval:  # the wall clock was stepped back: re-anchor, don't stall
                boundary = next_boundary()
                back = round(delay - interval, 3)
                log.warning(
                    "clock_stepped_back",
                    by_s=back,
                    summary=f"[SNAPSHOT] The wall clock stepped back {back:.3f} s: "
                    "snapshot ticks follow it",
                )
                continue
            await asyncio.sleep(delay)
        now = clock()
        missed = max(0, math.floor((now - boundary) / interval + 1e-9))
        boundary += missed * interval
        yield boundary, missed
        boundary += interval


def build_rows(snap: Snapshot, tick_time: datetime) -> list[SnapshotRow]:
    """One row per (venue, pair) whose quote is live and two-sided, exact strings."""
    rows: list[SnapshotRow] = []
    venue_idx, pair_idx = np.nonzero(snap.usable)
    exchange_ms = snap.exchange_time_ms[venue_idx, pair_idx].tolist()
    n_pairs = len(snap.pairs)
    for v, p, ms in zip(venue_idx.tolist(), pair_idx.tolist(), exchange_ms, strict=True):
        q = snap.quotes[v * n_pairs + p]
        if q is None:  # usable implies a stored quote; guard anyway
            continue
        pair = snap.pairs[p]
        exchange_time = datetime.fromtimestamp(ms / 1000, UTC) if ms > 0 else None
        rows.append(
            (
                snap.venues[v],
                pair.base,
                pair.quote,
                q.bid_price,
                q.bid_qty,
                q.ask_price,
                q.ask_qty,
                tick_time,
                exchange_time,
            )  # type: ignore[arg-type]  # two-sided: none of the strings is None
        )
    return rows


class SnapshotScheduler:
    """Every ``interval`` seconds on the wall clock: capture, queue for the writer, analyse.

    Three kinds of consumer, each called in registration order and each guarded (one failing
    never stops the others or the snapshots): sinks get the rows, snapshot consumers get the
    snapshot and its tick time (the analytics), observers get the snapshot and the updated
    :class:`TickStats` once the tick is recorded (metrics, benchmarks). :meth:`capture` stamps
    its rows with the boundary it is given and measures lateness against ``clock``, never the
    wall clock itself, so a replay can drive it from recorded times. ``writer_progress`` tells
    the log line what the writer has done (see :mod:`data_collector.snapshot_log`).
    """

    def __init__(
        self,
        cache: QuoteCache,
        interval: float,
        *,
        sinks: Sequence[RowSink] = (),
        on_snapshot: Sequence[SnapshotConsumer] = (),
        observers: Sequence[TickObserver] = (),
        dry_run: bool = False,
        writer_progress: ProgressSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.interval = interval
        self._sinks = list(sinks)
        self._on_snapshot = list(on_snapshot)
        self._observers = list(observers)
        self.dry_run = dry_run
        self.clock = clock
        self.stats = TickStats()
        self._log = SnapshotLog(progress=writer_progress, dry_run=dry_run)

    def add_sink(self, sink: RowSink) -> None:
        self._sinks.append(sink)

    def remove_sink(self, sink: RowSink) -> None:
        self._sinks.remove(sink)

    def add_observer(self, observer: TickObserver) -> None:
        self._observers.append(observer)

    def remove_observer(self, observer: TickObserver) -> None:
        self._observers.remove(observer)

    async def run(self) -> None:
        async for boundary, missed in wall_clock_ticks(self.interval, clock=self.clock):
            if missed:
                self._log_missed(boundary, missed)
            self.capture(boundary)

    def capture(self, boundary: float) -> list[SnapshotRow]:
        """Take the snapshot of the tick at ``boundary`` (seconds since the epoch)."""
        started = time.perf_counter()
        tick_time = datetime.fromtimestamp(boundary, UTC)
        snap = self.cache.snapshot()
        rows = build_rows(snap, tick_time)
        for sink in self._sinks:
            _guarded(sink, rows)
        for callback in self._on_snapshot:
            _guarded(callback, snap, tick_time)
        self._record(boundary, tick_time, rows, started)
        for observer in self._observers:
            _guarded(observer, snap, self.stats)
        return rows

    def _record(
        self, boundary: float, tick_time: datetime, rows: list[SnapshotRow], started: float
    ) -> None:
        stats = self.stats
        stats.ticks += 1
        stats.rows += len(rows)
        stats.last_tick_time = tick_time
        stats.last_duration_s = time.perf_counter() - started
        stats.last_lateness_s = self.clock() - boundary - stats.last_duration_s
        self._log.tick(
            TickOutcome(
                tick=stats.ticks,
                tick_time=tick_time,
                pairs=len({(row[1], row[2]) for row in rows}),
                rows=len(rows),
                duration_s=stats.last_duration_s,
                lateness_s=stats.last_lateness_s,
            )
        )

    def _log_missed(self, boundary: float, missed: int) -> None:
        self.stats.missed += missed
        first = datetime.fromtimestamp(boundary - missed * self.interval, UTC)
        log.warning(
            "snapshot_missed",
            missed=missed,
            first_missed=first.isoformat(),
            total_missed=self.stats.missed,
            summary=f"[SNAPSHOT] Missed {plural(missed, 'tick')} from {first.isoformat()}: "
            "the event loop was blocked",
        )


def _guarded(consumer: Callable[..., None], *args: object) -> None:
    """One failing consumer (writer, analytics, metrics) must not stop the snapshots."""
    try:
        consumer(*args)
    except Exception:
        name = getattr(consumer, "__qualname__", "?")
        log.exception(
            "snapshot_consumer_failed",
            consumer=name,
            summary=f"[SNAPSHOT] {name} failed on this tick; the snapshots go on",
        )
