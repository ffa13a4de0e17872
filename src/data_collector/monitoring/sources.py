"""What monitoring may read of a collector, and the plain status struct it reads into.

Monitoring never sees the collector itself: the orchestrator hands it a
:class:`MonitoringSources` of explicit providers (live counters and small functions), and every
endpoint works on one :class:`CollectorStatus` read from them at request time. Tests build
either one by hand, without PostgreSQL, venues or a simulator. A new view of the collector
(a dashboard's quote matrix, silent pairs per venue) is one more provider here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import msgspec

from data_collector.cache import VenueStats
from data_collector.scheduler import TickStats

if TYPE_CHECKING:
    from data_collector.alerts.service import AlertCounters


class WriterCounters(Protocol):
    """The part of the snapshot writer's statistics that monitoring shows."""

    @property
    def state(self) -> str: ...
    @property
    def backlog_rows(self) -> int: ...
    @property
    def rows_written(self) -> int: ...
    @property
    def rows_spilled(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    #: "up", "down" (the last write failed) or "stalled" (a write is not finishing)
    state: str
    #: rows waiting for PostgreSQL (memory and spill files)
    backlog_rows: int
    rows_written: int
    rows_spilled: int
    last_error: str | None

    @classmethod
    def of(cls, stats: WriterCounters) -> DatabaseStatus:
        s = stats
        return cls(s.state, s.backlog_rows, s.rows_written, s.rows_spilled, s.last_error)


class ServerCounters(Protocol):
    """What monitoring shows of the watch over an embedded PostgreSQL."""

    @property
    def state(self) -> str: ...
    @property
    def restarts(self) -> int: ...
    @property
    def problem(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DatabaseServerStatus:
    """The embedded PostgreSQL the collector runs itself."""

    #: "running" or "down" (being restarted)
    state: str
    #: restarts during this run
    restarts: int
    #: what is wrong, in words; None while it runs
    problem: str | None

    @classmethod
    def of(cls, server: ServerCounters) -> DatabaseServerStatus:
        return cls(server.state, server.restarts, server.problem)


@dataclass(frozen=True, slots=True)
class VenueStatus:
    connections_up: int
    connections_expected: int
    #: the venue's counters (a copy taken when the status was read)
    stats: VenueStats
    #: venue symbols subscribed but silent while their connection delivers others
    silent_pairs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CollectorStatus:
    """A collector as seen at ``now_ns``: plain data, read in one go."""

    now_ns: int
    venues: dict[str, VenueStatus]
    #: snapshot ticks taken and missed, rows captured, time of the last tick
    ticks: int
    missed: int
    rows: int
    last_tick_time: datetime | None
    #: None: a dry run, no database
    database: DatabaseStatus | None
    open_opportunities: int
    #: essential background task -> what ended it (the collector is stopping)
    crashed_tasks: dict[str, str] = field(default_factory=dict)
    #: the embedded PostgreSQL; None when the database is configured (or in a dry run)
    database_server: DatabaseServerStatus | None = None
    #: None: no alert targets configured
    alerts: AlertCounters | None = None


@dataclass(frozen=True)
class MonitoringSources:
    """The collector's parts monitoring reads, as narrow providers."""

    #: venue -> live counters (updated in place by the feeds)
    venue_stats: Mapping[str, VenueStats]
    #: venue -> (connections up, connections expected)
    connections: Callable[[], Mapping[str, tuple[int, int]]]
    #: the snapshot scheduler's live counters
    ticks: TickStats
    #: the writer's statistics; None in a dry run
    database: Callable[[], WriterCounters | None]
    open_opportunities: Callable[[], int]
    #: venue -> symbols of its silent pairs
    silent_pairs: Callable[[], Mapping[str, Sequence[str]]] = dict
    #: the alerts' counters; None when no target is configured
    alerts: Callable[[], AlertCounters | None] = lambda: None
    clock_ns: Callable[[], int] = time.time_ns
    #: essential background task -> what ended it
    crashed_tasks: Callable[[], Mapping[str, str]] = dict
    #: the embedded PostgreSQL's watch; None when the database is not embedded
    database_server: Callable[[], ServerCounters | None] = lambda: None

    @property
    def venues(self) -> tuple[str, ...]:
        return tuple(self.venue_stats)

    def read(self) -> CollectorStatus:
        connections = self.connections()
        silent = self.silent_pairs()
        venues = {}
        for venue in dict.fromkeys([*self.venue_stats, *connections]):
            up, expected = connections.get(venue, (0, 0))
            stats = self.venue_stats.get(venue)
            copy = msgspec.structs.replace(stats) if stats is not None else VenueStats()
            venues[venue] = VenueStatus(up, expected, copy, tuple(silent.get(venue, ())))
        ticks = self.ticks
        database = self.database()
        server = self.database_server()
        return CollectorStatus(
            now_ns=self.clock_ns(),
            venues=venues,
            ticks=ticks.ticks,
            missed=ticks.missed,
            rows=ticks.rows,
            last_tick_time=ticks.last_tick_time,
            database=None if database is None else DatabaseStatus.of(database),
            open_opportunities=self.open_opportunities(),
            crashed_tasks=dict(self.crashed_tasks()),
            database_server=None if server is None else DatabaseServerStatus.of(server),
            alerts=self.alerts(),
        )
