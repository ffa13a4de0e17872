"""Where the collector's clocks tick in a replayed stream of records.

A replay has two clocks, as a live collector does: the snapshot scheduler's (every
``snapshot_interval`` on the second) and the analytics summaries' (every
``analytics_interval``, half a snapshot interval later). Their boundaries fall at recorded
times, never the wall clock's.

A live collector that records also notes each of its ticks (a ``TICK`` record) at the very
place in the stream where it read the cache: after the frames it had applied, before the
ones it had not. A boundary of a replay clock is placed there when the recording holds that
tick, so the replay reads the same cache the live run read; otherwise at the boundary itself,
before the first record of that time or later. A live tick is recorded within one interval of
its boundary (a later one is a missed tick), so one interval of look-ahead decides. Once the
recording's ticks are seen to cover every boundary of a replay clock (recorded on the same
interval, or one that divides it), a boundary they lack is one the live run did not tick
(missed, or stopped): the replay skips it as well.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from data_collector.recording.format import TICK, TICK_PAYLOAD, Record


@dataclass
class Grid:
    """One clock: boundaries at ``k * interval_ns + offset_ns`` (ns since the epoch)."""

    clock: int
    interval_ns: int
    offset_ns: int = 0
    #: the next boundary (-1 until the first record sets it)
    next_ns: int = -1
    #: the recording's tick for ``next_ns`` lies ahead: wait for it
    waiting: bool = False
    #: the recording's ticks cover every boundary of this clock
    covered: bool = False

    def floor(self, time_ns: int) -> int:
        """The latest boundary at or before ``time_ns``."""
        return (time_ns - self.offset_ns) // self.interval_ns * self.interval_ns + self.offset_ns


@dataclass(frozen=True, slots=True)
class Tick:
    """A clock's boundary, reached at ``time_ns`` of the replayed stream."""

    clock: int
    boundary_ns: int
    time_ns: int


class TickPlacer:
    """Iterating yields the records (recorded ticks excepted) with the clocks' ticks placed
    among them."""

    def __init__(self, records: Iterator[Record], grids: list[Grid]) -> None:
        self._source = records
        self._grids = grids
        self._by_clock = {g.clock: g for g in grids}
        self._ahead: deque[Record] = deque()
        self._due_ns = -math.inf  # the earliest boundary not waiting for its recorded tick

    def __iter__(self) -> Iterator[Record | Tick]:
        ahead, source = self._ahead, self._source
        while True:
            record = ahead.popleft() if ahead else next(source, None)
            if record is None:
                return
            if record[0] >= self._due_ns:  # time_ns; a clock is due: look from this record on
                ahead.appendleft(record)
                yield from self._due(record[0])
                record = ahead.popleft()
            if record[1] == TICK:  # kind
                tick = self._recorded(record)
                if tick is not None:
                    yield tick
                continue
            yield record

    def _due(self, time_ns: int) -> Iterator[Tick]:
        """Every boundary at or before ``time_ns`` that no recorded tick ahead will place."""
        while True:
            pending = [g for g in self._grids if not g.waiting]
            grid = min(pending, key=_next_boundary, default=None)
            if grid is None or (grid.next_ns >= 0 and grid.next_ns > time_ns):
                break
            if grid.next_ns < 0:
                self._start(grid, time_ns)
                continue
            boundary = grid.next_ns
            if self._recorded_ahead(grid, boundary):
                grid.waiting = True
                continue
            grid.next_ns += grid.interval_ns
            if not grid.covered:
                yield Tick(grid.clock, boundary, boundary)
        self._update_due()

    def _start(self, grid: Grid, time_ns: int) -> None:
        """The first boundary: the one at or before the first record if the recording ticked
        it (its tick comes a little after), else the next one."""
        first = grid.floor(time_ns)
        if first < time_ns and not self._recorded_ahead(grid, first):
            first += grid.interval_ns
        grid.next_ns = first

    def _recorded(self, record: Record) -> Tick | None:
        """The tick a recorded ``TICK`` places, if it is the one its clock waits for (each
        venue's files hold a copy; other clocks' and other intervals' ticks place nothing)."""
        grid = self._by_clock.get(record.flags)
        if grid is None or not grid.waiting:
            return None
        boundary, interval = TICK_PAYLOAD.unpack(record.payload)
        if boundary != grid.next_ns:
            return None
        grid.waiting = False
        grid.next_ns += grid.interval_ns
        grid.covered = interval > 0 and grid.interval_ns % interval == 0
        self._update_due()
        return Tick(grid.clock, boundary, record.time_ns)

    def _recorded_ahead(self, grid: Grid, boundary: int) -> bool:
        """Whether the recording's tick of ``boundary`` on this clock lies within one interval
        ahead (reading further records into the look-ahead as needed)."""
        limit = boundary + grid.interval_ns
        for record in self._ahead:
            if record.time_ns >= limit:
                return False
            if _ticks(record, grid.clock, boundary):
                return True
        for record in self._source:
            self._ahead.append(record)
            if record.time_ns >= limit:
                return False
            if _ticks(record, grid.clock, boundary):
                return True
        return False

    def _update_due(self) -> None:
        self._due_ns = min(
            (_next_boundary(g) for g in self._grids if not g.waiting), default=math.inf
        )


def _next_boundary(grid: Grid) -> float:
    return -math.inf if grid.next_ns < 0 else grid.next_ns


def _ticks(record: Record, clock: int, boundary: int) -> bool:
    return (
        record.kind == TICK
        and record.flags == clock
        and TICK_PAYLOAD.unpack(record.payload)[0] == boundary
    )
