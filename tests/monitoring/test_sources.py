"""Reading a collector's status through its providers."""

from __future__ import annotations

from datetime import UTC, datetime

from data_collector.cache import VenueStats
from data_collector.embedded_watch import ServerWatchStatus
from data_collector.monitoring.sources import DatabaseServerStatus, DatabaseStatus
from data_collector.scheduler import TickStats
from db.writer_health import WriterStats
from tests.monitoring.helpers import NOW_NS, Clock, sources


def test_a_status_is_a_copy_taken_at_one_moment() -> None:
    stats = {"mexc": VenueStats(frames=5, last_message_ns=NOW_NS)}
    ticks = TickStats()
    ticks.ticks, ticks.missed, ticks.rows = 3, 1, 12
    ticks.last_tick_time = datetime(2026, 1, 1, tzinfo=UTC)
    writer = WriterStats(
        rows_written=12, backlog_rows=4, rows_spilled=2, state="stalled", db_up=False
    )
    clock = Clock()
    view = sources(
        stats, {"mexc": (1, 1)}, ticks=ticks, database=writer, open_opportunities=2, clock=clock
    )
    status = view.read()
    stats["mexc"].frames = 99  # the feeds keep counting after the read
    assert status.venues["mexc"].stats.frames == 5
    assert (status.now_ns, status.ticks, status.missed, status.rows) == (NOW_NS, 3, 1, 12)
    assert status.last_tick_time == ticks.last_tick_time
    assert status.database == DatabaseStatus("stalled", 4, 12, 2, None)
    assert status.open_opportunities == 2
    clock.now_ns += 10**9
    later = view.read()
    assert (later.now_ns, later.venues["mexc"].stats.frames) == (NOW_NS + 10**9, 99)


def test_every_venue_appears_whichever_side_knows_it() -> None:
    view = sources({"mexc": VenueStats(updates=7)}, {"mexc": (2, 2), "gateio": (0, 1)})
    status = view.read()
    assert list(status.venues) == ["mexc", "gateio"]
    gate = status.venues["gateio"]
    assert (gate.connections_up, gate.connections_expected, gate.stats) == (0, 1, VenueStats())
    assert status.database is None  # a dry run
    assert view.venues == ("mexc",)


def test_crashed_tasks_are_read_as_a_copy() -> None:
    crashed: dict[str, str] = {}
    view = sources({}, {}, crashed_tasks=crashed)
    assert view.read().crashed_tasks == {}
    crashed["analytics"] = "CancelledError"
    status = view.read()
    crashed["snapshot-scheduler"] = "OverflowError: boom"
    assert status.crashed_tasks == {"analytics": "CancelledError"}


def test_the_embedded_server_watch_is_read_when_there_is_one() -> None:
    problem = "embedded PostgreSQL not running for 2.0 s, restart attempt 1 under way"
    view = sources({}, {}, database_server=ServerWatchStatus("down", 0, problem))
    assert view.read().database_server == DatabaseServerStatus("down", 0, problem)
    assert sources({}, {}).read().database_server is None  # a configured database
