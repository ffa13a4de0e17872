"""The replay loop: recorded records in time order, through the links' owners, with the
clocks' ticks among them, on a virtual clock, as fast as asked.

Every frame goes to its link's owner (the manager's feed: venue parser, cache, bookkeeping)
exactly as the live transport handed it over, with its recorded receive time; connection
events change the replay link's state and call the owner's callbacks as the live link did;
ticks capture the cache (snapshot clock) or summarise it (analytics clock), but only for
boundaries inside ``[from, until]``: records before ``from`` only warm the cache up.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import structlog

from data_collector.recording.format import (
    CLOCK_SNAPSHOT,
    ENDED,
    FLAG_STRAY,
    FRAME,
    SENT,
    Record,
)
from data_collector.replay.links import ReplayLinks
from data_collector.replay.ticks import Grid, Tick, TickPlacer

log = structlog.get_logger(__name__)

#: records replayed between two yields to the event loop at full speed (the writer runs then)
YIELD_EVERY = 2_000
#: a pause shorter than this is not worth a sleep at a finite speed
MIN_SLEEP_S = 0.002


class VirtualClock:
    """The replay's time: the recorded time of the record (or tick) being replayed."""

    def __init__(self) -> None:
        self.now_ns = 0

    def time(self) -> float:
        return self.now_ns / 1e9

    def time_ns(self) -> int:
        return self.now_ns


@dataclass
class Window:
    """The ticks a replay takes: boundaries in ``[from_ns, until_ns]`` (None: open)."""

    from_ns: int | None = None
    until_ns: int | None = None

    def holds(self, boundary_ns: int) -> bool:
        return (self.from_ns is None or boundary_ns >= self.from_ns) and (
            self.until_ns is None or boundary_ns <= self.until_ns
        )


@dataclass
class ReplayReport:
    frames: int = 0
    events: int = 0
    snapshots: int = 0
    summaries: int = 0
    wall_s: float = 0.0
    first_ns: int = 0
    last_ns: int = 0


class Replayer:
    """Replays ``records`` into ``links``; ``capture(boundary_s)`` and ``summarize()`` are the
    collector's snapshot and analytics steps; ``wait_for_writer`` (if any) is awaited after
    each snapshot so a replay at full speed never outruns the database."""

    def __init__(
        self,
        records: Iterator[Record],
        links: ReplayLinks,
        grids: list[Grid],
        *,
        clock: VirtualClock,
        capture: Callable[[float], object],
        summarize: Callable[[], object],
        window: Window,
        speed: float | None,
        wait_for_writer: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._placer = TickPlacer(records, grids)
        self._links = links
        self._clock = clock
        self._capture = capture
        self._summarize = summarize
        self._window = window
        self._speed = speed
        self._wait_for_writer = wait_for_writer
        longest = max((g.interval_ns for g in grids), default=0)
        self._stop_after = None if window.until_ns is None else window.until_ns + longest
        self._unknown_links: set[str] = set()
        self.report = ReplayReport()

    async def run(self) -> ReplayReport:
        report, clock = self.report, self._clock
        by_name = self._links.by_name
        from_ns = self._window.from_ns
        pace = _Pacer(self._speed, from_ns)
        started = time.perf_counter()
        count = 0
        stop_after = self._stop_after if self._stop_after is not None else math.inf
        for item in self._placer:
            now = item[0] if type(item) is Record else item.time_ns
            if now > stop_after:
                break
            clock.now_ns = now
            if not report.first_ns and (from_ns is None or now >= from_ns):
                report.first_ns = now
            if pace.active:
                await pace.until(now)
            if type(item) is Tick:
                await self._tick(item)
                continue
            count += 1
            _time, kind, transport, flags, name, payload = item
            if kind == FRAME:
                link = by_name.get(name)
                if link is None:
                    self._unknown(name)
                elif flags & FLAG_STRAY:
                    link.stray_frames += 1
                else:
                    link.on_frame(link, transport, payload, now)
                    report.frames += 1
            else:
                self._event(item)
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        report.wall_s = time.perf_counter() - started
        report.last_ns = clock.now_ns
        return report

    def _event(self, record: Record) -> None:
        self.report.events += 1
        if record.kind == ENDED:
            self._links.ended(record.payload.decode(errors="replace"))
            return
        if record.kind == SENT:
            return  # sent live; the replayed owner asked for its texts again when it connected
        link = self._links.by_name.get(record.link)
        if link is None:
            self._unknown(record.link)
            return
        link.replay_event(record)

    async def _tick(self, tick: Tick) -> None:
        if not self._window.holds(tick.boundary_ns):
            return
        if tick.clock == CLOCK_SNAPSHOT:
            self._capture(tick.boundary_ns / 1e9)
            self.report.snapshots += 1
            if self._wait_for_writer is not None:
                await self._wait_for_writer()
            else:
                await asyncio.sleep(0)
        else:
            self._summarize()
            self.report.summaries += 1

    def _unknown(self, name: str) -> None:
        if name in self._unknown_links:
            return
        self._unknown_links.add(name)
        log.warning(
            "replay_link_unknown",
            link=name,
            summary=f"Replay: the recording's link {name} has no counterpart in this "
            "configuration (other exchanges or symbols?): its records are skipped",
        )


class _Pacer:
    """Sleeps so that recorded time passes ``speed`` times as fast as the wall clock, from
    the first record at or after ``from_ns`` on (the warm-up before it runs at full speed)."""

    def __init__(self, speed: float | None, from_ns: int | None) -> None:
        self.active = speed is not None
        self._speed = speed or 1.0
        self._from_ns = from_ns
        self._origin: tuple[int, float] | None = None

    async def until(self, now_ns: int) -> None:
        if self._origin is None:
            if self._from_ns is not None and now_ns < self._from_ns:
                return
            self._origin = (now_ns, time.monotonic())
            return
        start_ns, start_wall = self._origin
        due = start_wall + (now_ns - start_ns) / 1e9 / self._speed
        delay = due - time.monotonic()
        if delay >= MIN_SLEEP_S:
            await asyncio.sleep(delay)
