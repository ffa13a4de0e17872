"""Snapshot scheduler: wall-clock alignment, missed ticks, and which quotes become rows."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from data_collector.cache import QuoteCache
from data_collector.pairs import Pair
from data_collector.scheduler import SnapshotScheduler, TickStats, build_rows, wall_clock_ticks
from data_collector.startup import writer_progress
from data_collector.venues.base import QuoteUpdate
from db.writer import SnapshotWriter
from tests.helpers import Log, events, wait_until
from tests.pg import PgDatabase, PgProxy

BTC, ETH, SOL = Pair("BTC", "USDT"), Pair("ETH", "USDT"), Pair("SOL", "USDT")


def quote(symbol: str, bid: str | None, ask: str | None, seq: int = 1, ms: int = 0) -> QuoteUpdate:
    return QuoteUpdate(symbol, bid, "1.5" if bid else None, ask, "2.25" if ask else None, ms, seq)


async def test_ticks_land_on_wall_clock_multiples() -> None:
    interval = 0.1
    seen: list[tuple[float, float]] = []
    async for boundary, missed in wall_clock_ticks(interval):
        seen.append((boundary, time.time()))
        assert missed == 0
        if len(seen) == 4:
            break
    for boundary, woke in seen:
        assert math.isclose(boundary / interval, round(boundary / interval), abs_tol=1e-6)
        assert woke >= boundary  # never early
    steps = [b - a for (a, _), (b, _) in itertools.pairwise(seen)]
    assert all(math.isclose(step, interval, rel_tol=1e-6) for step in steps)


async def test_a_blocked_loop_reports_missed_ticks_and_realigns() -> None:
    interval = 0.1
    results: list[tuple[float, int]] = []
    async for boundary, missed in wall_clock_ticks(interval):
        results.append((boundary, missed))
        if len(results) == 1:
            time.sleep(0.35)  # deliberately block the event loop past three boundaries
        if len(results) == 2:
            break
    (first, _), (second, missed) = results
    assert missed >= 2
    assert math.isclose(second - first, (missed + 1) * interval, rel_tol=1e-6)


def test_rows_only_for_live_two_sided_quotes_with_exact_strings() -> None:
    cache = QuoteCache(["mexc", "gateio"], [BTC, ETH, SOL])
    cache.apply(0, 0, quote("BTCUSDT", "80535.880", "80535.89", ms=1789897517479), 1)
    cache.apply(1, 0, quote("BTC_USDT", "80535.10", "80536.00"), 1)
    cache.apply(0, 1, quote("ETHUSDT", None, "3000.1"), 1)  # one-sided: never stored
    cache.apply(1, 2, quote("SOL_USDT", "150.1", "150.2"), 1)
    cache.mark_not_live(1, [2])  # its connection dropped: not stored until refreshed
    tick = datetime(2026, 11, 23, 14, 0, 1, tzinfo=UTC)
    rows = build_rows(cache.snapshot(), tick)
    assert sorted(rows, key=lambda r: r[0]) == [
        ("gateio", "BTC", "USDT", "80535.10", "1.5", "80536.00", "2.25", tick, None),
        (
            "mexc", "BTC", "USDT", "80535.880", "1.5", "80535.89", "2.25", tick,
            datetime.fromtimestamp(1789897517.479, UTC),
        ),
    ]  # fmt: skip
    cache.apply(1, 2, quote("SOL_USDT", "150.3", "150.4", seq=2), 2)
    assert len(build_rows(cache.snapshot(), tick)) == 3


def test_capture_feeds_sinks_and_callbacks_with_the_tick_time() -> None:
    cache = QuoteCache(["mexc"], [BTC])
    cache.apply(0, 0, quote("BTCUSDT", "1", "2"), 1)
    got_rows: list[list[tuple]] = []
    got_ticks: list[datetime] = []
    scheduler = SnapshotScheduler(
        cache, 1.0, sinks=[got_rows.append], on_snapshot=[lambda _s, t: got_ticks.append(t)]
    )
    scheduler.capture(1_790_000_000.0)
    expected = datetime.fromtimestamp(1_790_000_000, UTC)
    assert got_ticks == [expected]
    assert [row[7] for row in got_rows[0]] == [expected]
    assert scheduler.stats.ticks == 1 and scheduler.stats.rows == 1


async def test_a_clock_stepped_back_reanchors_instead_of_stalling() -> None:
    readings = iter([2000.0, 1000.0, 1000.0, 1000.1, 1000.1])
    ticks = wall_clock_ticks(0.1, clock=lambda: next(readings))
    boundary, missed = await asyncio.wait_for(anext(ticks), 1)
    assert math.isclose(boundary, 1000.1) and missed == 0


def test_a_failing_consumer_does_not_stop_the_others() -> None:
    cache = QuoteCache(["mexc"], [BTC])
    cache.apply(0, 0, quote("BTCUSDT", "1", "2"), 1)
    got: list[int] = []

    def broken(_rows: list[tuple]) -> None:
        raise RuntimeError("boom")

    scheduler = SnapshotScheduler(cache, 1.0, sinks=[broken, lambda rows: got.append(len(rows))])
    with capture_logs() as logs:
        scheduler.capture(1_790_000_000.0)
    assert got == [1]
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["snapshot_consumer_failed"]
    [snapshot] = [e for e in logs if e["event"] == "snapshot"]
    assert snapshot["summary"].startswith("[SNAPSHOT #001] Captured 1 pair, queued 1 record in")


async def test_an_offset_shifts_every_boundary() -> None:
    interval, offset = 0.2, 0.1
    ticks = wall_clock_ticks(interval, offset=offset)
    for _ in range(2):
        boundary, _missed = await asyncio.wait_for(anext(ticks), 1)
        phase = (boundary - offset) / interval
        assert math.isclose(phase, round(phase), abs_tol=1e-6)


def test_sinks_and_observers_register_and_unregister() -> None:
    cache = QuoteCache(["mexc"], [BTC])
    cache.apply(0, 0, quote("BTCUSDT", "1", "2"), 1)
    scheduler = SnapshotScheduler(cache, 1.0)
    rows: list[list[tuple]] = []
    seen: list[int] = []

    def observer(_snap: object, stats: TickStats) -> None:
        seen.append(stats.ticks)  # called once the tick is recorded

    scheduler.add_sink(rows.append)
    scheduler.add_observer(observer)
    scheduler.capture(1_790_000_000.0)
    scheduler.remove_sink(rows.append)
    scheduler.remove_observer(observer)
    scheduler.capture(1_790_000_001.0)
    assert (len(rows), seen, scheduler.stats.ticks) == (1, [1], 2)


def test_capture_measures_lateness_on_the_clock_it_is_given() -> None:
    cache = QuoteCache(["mexc"], [BTC])
    cache.apply(0, 0, quote("BTCUSDT", "1", "2"), 1)
    virtual_now = 1_000_000_000.75  # a replay's clock, far from the wall clock
    scheduler = SnapshotScheduler(cache, 1.0, clock=lambda: virtual_now)
    [row] = scheduler.capture(1_000_000_000.0)
    stats = scheduler.stats
    assert row[7] == stats.last_tick_time == datetime.fromtimestamp(1_000_000_000, UTC)
    assert stats.last_lateness_s == pytest.approx(0.75 - stats.last_duration_s)


async def test_the_snapshot_line_says_what_the_writer_did_with_the_rows(
    tmp_path: Path, pg_database: PgDatabase, pg_proxy: PgProxy, logs: Log
) -> None:
    """Stored, duplicates skipped, or waiting for a database that is down: never "inserted"
    for rows that only went into a queue."""
    cache = QuoteCache(["mexc", "gateio"], [BTC])
    cache.apply(0, 0, quote("BTCUSDT", "80535.88", "80535.89"), 1)
    cache.apply(1, 0, quote("BTC_USDT", "80535.10", "80536.00"), 1)
    writer = SnapshotWriter(
        pg_proxy.dsn(pg_database.name),
        spill_dir=tmp_path / "spill",
        max_buffer_rows=10_000,
        retry_initial=0.02,
        retry_max=0.1,
        connect_timeout=0.5,
    )
    await writer.start()
    scheduler = SnapshotScheduler(
        cache, 1.0, sinks=[writer.submit], writer_progress=writer_progress(writer)
    )
    t0 = 1_790_000_000.0
    try:
        scheduler.capture(t0)
        await wait_until(lambda: writer.stats.rows_written == 2, 10, what="the first tick")
        scheduler.capture(t0)  # the same tick again: the table already holds these rows
        await wait_until(lambda: writer.stats.rows_duplicate == 2, 10, what="the duplicates")
        scheduler.capture(t0 + 1)
        await wait_until(lambda: writer.stats.rows_written == 6, 10, what="the third tick")
        pg_proxy.refuse()
        scheduler.capture(t0 + 2)
        await wait_until(lambda: writer.stats.batches_failed > 0, 10, what="a failed write")
        scheduler.capture(t0 + 3)
    finally:
        await writer.close(1.0)
    lines = events(logs, "snapshot")
    texts = [e["summary"] for e in lines]
    first = r"\[SNAPSHOT #001\] Captured 1 pair, queued 2 records in \d+\.\dms"
    assert re.fullmatch(first, texts[0])
    assert [text.partition("ms")[2] for text in texts] == [
        "",  # nothing written yet, nothing behind
        "; database: 2 stored",
        "; database: 0 stored, 2 duplicates skipped",
        "; database: 2 stored",
        "; database down: 4 records waiting",
    ]
    fields = ("queued", "db_state", "rows_stored", "rows_duplicate", "backlog_rows")
    assert [tuple(e[k] for k in fields) for e in lines] == [
        (2, "up", 0, 0, 2),
        (2, "up", 2, 0, 2),
        (2, "up", 0, 2, 2),
        (2, "up", 2, 0, 2),
        (2, "down", 0, 0, 4),
    ]
    assert all(e["rows"] == 2 and e["pairs"] == 1 for e in lines)  # the fields kept


def test_ticks_without_quotes_log_one_calm_line_every_30_seconds(logs: Log) -> None:
    cache = QuoteCache(["mexc"], [BTC, ETH])
    scheduler = SnapshotScheduler(cache, 1.0)
    t0 = 1_790_000_000.0
    for second in range(61):
        scheduler.capture(t0 + second)
    info = [e for e in logs if e["log_level"] != "debug"]
    assert [(e["event"], e["tick"]) for e in info] == [
        ("snapshot_idle", 1),
        ("snapshot_idle", 31),
        ("snapshot_idle", 61),
    ]
    assert {e["summary"] for e in info} == {"[SNAPSHOT] No live quotes yet: nothing stored"}
    assert info[-1]["idle_ticks"] == 61

    logs.clear()
    cache.apply(0, 0, quote("BTCUSDT", "1", "2"), 1)
    scheduler.capture(t0 + 61)
    cache.mark_not_live(0, [0])  # its connection dropped
    scheduler.capture(t0 + 62)
    scheduler.capture(t0 + 63)
    info = [e for e in logs if e["log_level"] != "debug"]
    assert [e["event"] for e in info] == ["snapshot", "snapshot_idle"]
    assert info[0]["summary"].startswith("[SNAPSHOT #062] Captured 1 pair, queued 1 record in")
    assert info[1]["summary"] == "[SNAPSHOT] No live quotes since 14:14:21 UTC: nothing stored"
    assert (info[1]["idle_ticks"], info[1]["last_capture"]) == (1, "2026-09-21T14:14:21+00:00")


def test_the_scheduler_imports_no_database_driver() -> None:
    """Domain code builds rows without pulling asyncpg in (checked in a fresh interpreter)."""
    code = "import sys, data_collector.scheduler; print('asyncpg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
