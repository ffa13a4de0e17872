"""SnapshotWriter when PostgreSQL goes away: retry, spill to files, recover, never lose rows.

The database is taken away with the ``pg_proxy`` fixture (see tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from structlog.testing import capture_logs

from data_collector.wording import plural
from db.writer import SnapshotWriter

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "Sup3r-S3cret-pw"


def tick_rows(tick: int, pairs: int = 10):
    ts = T0 + timedelta(seconds=tick)
    return [
        (ex, f"C{i}", "USDT", f"{100 + i}.{tick:04d}", "0.50", f"{101 + i}.5", "7", ts, None)
        for ex in ("mexc", "gate")
        for i in range(pairs)
    ]


def make_writer(dsn: str, spill_dir: Path, **kwargs) -> SnapshotWriter:
    options = {
        "max_buffer_rows": 10_000,
        "retry_initial": 0.02,
        "retry_max": 0.1,
        "connect_timeout": 0.25,
        "write_timeout": 2.0,
    }
    options.update(kwargs)
    return SnapshotWriter(dsn, spill_dir=spill_dir, **options)


async def writing(dsn: str, spill_dir: Path, pg_wait, **kwargs) -> SnapshotWriter:
    """A started writer that has written its first tick (tick_rows(0)) through ``dsn``."""
    writer = make_writer(dsn, spill_dir, **kwargs)
    await writer.start()
    writer.submit(tick_rows(0))
    await pg_wait(lambda: writer.stats.rows_written == 20, what="first tick written")
    return writer


async def stored_rows(dsn: str) -> list[tuple]:
    conn = await asyncpg.connect(dsn)
    try:
        records = await conn.fetch(
            """SELECT exchange, symbol_base, symbol_quote, bid_price::text, bid_qty::text,
                      ask_price::text, ask_qty::text, "timestamp", exchange_time
               FROM book_ticker_snapshots"""
        )
    finally:
        await conn.close()
    return [tuple(r) for r in records]


async def assert_exactly_once(dsn: str, expected: list[tuple]) -> None:
    stored = await stored_rows(dsn)
    assert len(stored) == len(expected)
    assert sorted(stored) == sorted(expected)


async def submit_while_failing(writer: SnapshotWriter, ticks: range, pg_wait) -> list[tuple]:
    """Submit one tick per failed write attempt, as the scheduler would while the db is down."""
    sent: list[tuple] = []
    for tick in ticks:
        failed = writer.stats.batches_failed
        rows = tick_rows(tick)
        writer.submit(rows)
        sent.extend(rows)
        await pg_wait(lambda f=failed: writer.stats.batches_failed > f, what="a failed attempt")
    return sent


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
async def test_outage_then_recovery_every_row_once(
    migrated, pg_proxy, tmp_path, pg_wait, mode
) -> None:
    writer = make_writer(pg_proxy.dsn(migrated.name), tmp_path)
    await writer.start()
    expected = tick_rows(0)
    writer.submit(expected)
    await pg_wait(lambda: writer.stats.rows_written == 20, what="first tick written")
    with capture_logs() as logs:
        getattr(pg_proxy, mode)()  # server down (refusing) or hung (never answering)
        expected += await submit_while_failing(writer, range(1, 6), pg_wait)
        assert not writer.stats.db_up
        assert writer.stats.backlog_rows == 100
        pg_proxy.resume()
        await pg_wait(lambda: writer.stats.rows_written == len(expected), what="backlog written")
    await writer.close()
    await assert_exactly_once(migrated.dsn, expected)
    stats = writer.stats
    assert stats.db_up and stats.backlog_rows == 0 and stats.rows_dropped == 0
    assert stats.rows_spilled == 0
    events = [e["event"] for e in logs]
    assert "writer_batch_failed" in events and "writer_recovered" in events
    failed = next(e for e in logs if e["event"] == "writer_batch_failed")
    assert failed["log_level"] == "warning" and failed["backlog_rows"] > 0 and failed["error"]
    recovered = next(e for e in logs if e["event"] == "writer_recovered")
    assert recovered["log_level"] == "info" and recovered["rows_written"] >= 20


async def test_backoff_is_capped_exponential(migrated, pg_proxy, tmp_path, pg_wait) -> None:
    pg_proxy.refuse()
    writer = make_writer(pg_proxy.dsn(migrated.name), tmp_path, retry_initial=0.01, retry_max=0.08)
    await writer.start()
    with capture_logs() as logs:
        writer.submit(tick_rows(0))
        await pg_wait(lambda: writer.stats.batches_failed >= 6, what="six failed attempts")
    await writer.close(timeout=0.5)
    delays = [e["retry_in_s"] for e in logs if e["event"] == "writer_retry"][:6]
    assert delays == [0.01, 0.02, 0.04, 0.08, 0.08, 0.08]


async def test_spill_past_bound_then_load_after_recovery(
    migrated, pg_proxy, tmp_path, pg_wait
) -> None:
    spill = tmp_path / "spill"
    writer = make_writer(pg_proxy.dsn(migrated.name), spill, max_buffer_rows=50)
    pg_proxy.refuse()
    await writer.start()
    expected: list[tuple] = []
    with capture_logs() as logs:
        for tick in range(12):  # 240 rows against a 50-row memory bound
            rows = tick_rows(tick)
            writer.submit(rows)
            expected.extend(rows)
            await pg_wait(lambda: writer.stats.backlog_rows <= 50 + 20, what="memory bounded")
        await pg_wait(lambda: writer.stats.rows_spilled >= 150, what="rows spilled")
        files = sorted(spill.glob("*.csv"))
        assert files and writer.stats.spill_files == len(files)
        assert not list(spill.glob(".*.tmp"))
        pg_proxy.resume()
        await pg_wait(lambda: writer.stats.rows_written == len(expected), what="all rows written")
        await pg_wait(lambda: not list(spill.glob("*.csv")), what="spill files deleted")
    await writer.close()
    await assert_exactly_once(migrated.dsn, expected)
    stats = writer.stats
    assert stats.rows_loaded_from_spill == stats.rows_spilled > 0
    assert stats.rows_dropped == 0 and stats.spill_files == 0
    spilled = [e for e in logs if e["event"] == "writer_spilled"]
    assert sum(e["rows"] for e in spilled) == stats.rows_spilled


async def test_spill_survives_writer_restart(migrated, pg_proxy, tmp_path, pg_wait) -> None:
    """Rows spilled by a writer closed during an outage are loaded by the next one."""
    spill = tmp_path / "spill"
    pg_proxy.refuse()
    first = make_writer(pg_proxy.dsn(migrated.name), spill, max_buffer_rows=30)
    await first.start()
    expected: list[tuple] = []
    for tick in range(5):
        rows = tick_rows(tick)
        first.submit(rows)
        expected.extend(rows)
    await first.close(timeout=1.0)
    assert first.stats.rows_spilled == len(expected) and first.stats.rows_written == 0
    assert list(spill.glob("*.csv"))
    # a crash in the middle of a spill leaves a temp file: its complete lines are kept
    partial = tick_rows(99)[:2]
    line = "{},{},{},{},{},{},{},{},\n"
    text = "".join(line.format(*r[:7], r[7].isoformat()) for r in partial)
    (spill / ".99999999999999999999-000000.csv.tmp").write_text(text + "mexc,TRUNC,US")
    expected.extend(partial)

    pg_proxy.resume()
    second = make_writer(pg_proxy.dsn(migrated.name), spill, max_buffer_rows=30)
    await second.start()
    await pg_wait(
        lambda: second.stats.rows_loaded_from_spill == len(expected), what="spill files loaded"
    )
    await second.close()
    await assert_exactly_once(migrated.dsn, expected)
    assert not list(spill.iterdir())


async def test_close_with_db_down_spills_within_timeout(
    migrated, pg_proxy, tmp_path, pg_wait
) -> None:
    spill = tmp_path / "spill"
    writer = make_writer(pg_proxy.dsn(migrated.name), spill, connect_timeout=5.0)
    await writer.start()
    writer.submit(tick_rows(0))
    await pg_wait(lambda: writer.stats.rows_written == 20, what="first tick written")
    pg_proxy.blackhole()  # connects hang for the whole 5 s connect timeout
    expected = []
    for tick in range(1, 4):
        rows = tick_rows(tick)
        writer.submit(rows)
        expected.extend(rows)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await writer.close(timeout=1.0)
    assert loop.time() - started < 1.5
    assert writer.stats.rows_spilled == len(expected)
    pg_proxy.resume()
    loader = make_writer(pg_proxy.dsn(migrated.name), spill)
    await loader.start()
    await pg_wait(lambda: loader.stats.rows_loaded_from_spill == len(expected), what="loaded")
    await loader.close()
    await assert_exactly_once(migrated.dsn, tick_rows(0) + expected)


async def test_rows_dropped_only_when_spilling_fails(migrated, pg_proxy, tmp_path, pg_wait):
    spill = tmp_path / "spill"
    pg_proxy.refuse()
    writer = make_writer(pg_proxy.dsn(migrated.name), spill, max_buffer_rows=15)
    await writer.start()
    spill.rmdir()
    spill.write_text("")  # the spill directory is gone (a disk unmounted, say)
    with capture_logs() as logs:
        writer.submit(tick_rows(0))
        writer.submit(tick_rows(1))
        await pg_wait(lambda: writer.stats.rows_dropped > 0, what="rows dropped")
        await writer.close(timeout=0.5)
    stats = writer.stats
    assert stats.rows_dropped == 40 and stats.rows_spilled == 0 and stats.rows_written == 0
    dropped = [e for e in logs if e["event"] == "writer_dropped"]
    assert dropped and all(e["log_level"] == "error" for e in dropped)
    assert sum(e["rows"] for e in dropped) == 40
    assert stats.drop_reasons == {
        f"spilling to {spill} failed: [Errno 17] File exists: '{spill}'": 40
    }
    [closed] = [e for e in logs if e["event"] == "writer_closed"]
    assert closed["log_level"] == "error" and "40 rows dropped (40 spilling to" in closed["summary"]


async def test_password_never_logged(migrated, pg_proxy, tmp_path, pg_wait) -> None:
    pg_proxy.refuse()
    dsn = pg_proxy.dsn(migrated.name, password=SECRET)
    writer = make_writer(dsn, tmp_path)
    with capture_logs() as logs:
        await writer.start()
        writer.submit(tick_rows(0))
        await pg_wait(lambda: writer.stats.batches_failed >= 2, what="failed attempts")
        await writer.close(timeout=0.5)
    assert writer.stats.last_error
    assert SECRET not in repr(logs)
    assert SECRET not in repr(writer.stats)
    started = next(e for e in logs if e["event"] == "writer_started")
    assert ":***@" in started["dsn"]


async def test_connection_killed_while_idle(migrated, pg_proxy, tmp_path, pg_wait) -> None:
    writer = make_writer(pg_proxy.dsn(migrated.name), tmp_path)
    await writer.start()
    writer.submit(tick_rows(0))
    await pg_wait(lambda: writer.stats.rows_written == 20, what="first tick")
    pg_proxy.refuse()  # kills the writer's connection...
    pg_proxy.resume()  # ...and the server is back before the next tick
    writer.submit(tick_rows(1))
    await pg_wait(lambda: writer.stats.rows_written == 40, what="second tick")
    await writer.close()
    await assert_exactly_once(migrated.dsn, tick_rows(0) + tick_rows(1))


async def test_many_small_submissions_also_bounded(migrated, pg_proxy, tmp_path, pg_wait) -> None:
    """queue_max_batches bounds the number of queued submissions, not just rows, while the
    writer is stuck (a failed write merges the queue into one chunk, a hung one cannot)."""
    spill = tmp_path / "spill"
    writer = make_writer(
        pg_proxy.dsn(migrated.name), spill, queue_max_batches=4, connect_timeout=30
    )
    pg_proxy.blackhole()
    await writer.start()
    writer.submit(tick_rows(0, pairs=1))
    await pg_wait(lambda: pg_proxy.accepted >= 1, what="writer stuck connecting")
    expected = tick_rows(0, pairs=1)
    for tick in range(1, 12):
        rows = tick_rows(tick, pairs=1)
        writer.submit(rows)
        expected.extend(rows)
    await pg_wait(lambda: writer.stats.rows_spilled >= 16, what="small batches spilled")
    assert writer.stats.rows_written == 0
    pg_proxy.resume()
    await pg_wait(lambda: writer.stats.rows_written == len(expected), what="all written")
    await writer.close()
    await assert_exactly_once(migrated.dsn, expected)


# ---------------------------------------------------------------- a frozen database, calm logs


async def test_a_frozen_database_is_stalled_at_once_and_the_outage_is_measured_in_full(
    migrated, pg_proxy, tmp_path, pg_wait
) -> None:
    dsn = pg_proxy.dsn(migrated.name)
    writer = await writing(dsn, tmp_path, pg_wait, stall_after=0.3, write_timeout=30)
    loop = asyncio.get_running_loop()
    with capture_logs() as logs:
        pg_proxy.freeze()  # the connection stays open; nothing comes back
        frozen_at = loop.time()
        writer.submit(tick_rows(1))
        await pg_wait(lambda: writer.stats.state == "stalled", what="stalled")
        stalled_after = loop.time() - frozen_at
        assert not writer.stats.db_up
        writer.submit(tick_rows(2))
        await asyncio.sleep(0.6)  # the freeze lasts on: one warning, not one per tick
        pg_proxy.thaw()
        thawed_at = loop.time()
        await pg_wait(lambda: writer.stats.rows_written == 60, what="backlog written")
    await writer.close()
    await assert_exactly_once(migrated.dsn, tick_rows(0) + tick_rows(1) + tick_rows(2))
    assert writer.stats.state == "up" and writer.stats.db_up
    assert 0.3 <= stalled_after < 10.0  # after stall_after, long before the write timeout
    [stalled] = [e for e in logs if e["event"] == "writer_stalled"]
    assert stalled["log_level"] == "warning"
    assert stalled["waiting_for"] in (
        "COPY of 20 rows into book_ticker_snapshots",
        "INSERT of 20 rows into book_ticker_snapshots",
    )
    assert "has not finished after 0.3 s" in stalled["summary"]
    [recovered] = [e for e in logs if e["event"] == "writer_recovered"]
    assert thawed_at - frozen_at <= recovered["outage_s"] <= loop.time() - frozen_at
    assert recovered["failed_attempts"] == 0


async def test_a_write_that_times_out_says_what_timed_out(
    migrated, pg_proxy, tmp_path, pg_wait
) -> None:
    writer = await writing(pg_proxy.dsn(migrated.name), tmp_path, pg_wait, write_timeout=0.5)
    loop = asyncio.get_running_loop()
    with capture_logs() as logs:
        pg_proxy.freeze()
        frozen_at = loop.time()
        writer.submit(tick_rows(1))
        await pg_wait(lambda: writer.stats.batches_failed >= 1, what="a write timed out")
        await pg_wait(lambda: writer.stats.batches_failed >= 2, what="a second attempt failed")
        pg_proxy.resume()
        resumed_at = loop.time()
        await pg_wait(lambda: writer.stats.rows_written == 40, what="backlog written")
    await writer.close()
    await assert_exactly_once(migrated.dsn, tick_rows(0) + tick_rows(1))
    failed = next(e for e in logs if e["event"] == "writer_batch_failed")
    assert failed["error"] in (
        "TimeoutError: COPY of 20 rows into book_ticker_snapshots did not finish within 0.5 s",
        "TimeoutError: INSERT of 20 rows into book_ticker_snapshots did not finish within 0.5 s",
    )
    [recovered] = [e for e in logs if e["event"] == "writer_recovered"]
    # from the start of the write that timed out, not from its failure half a second later
    assert failed["outage_s"] >= 0.5
    assert resumed_at - frozen_at - 0.1 <= recovered["outage_s"] <= loop.time() - frozen_at


async def test_a_hung_server_stalls_while_connecting(migrated, pg_proxy, tmp_path, pg_wait):
    dsn = pg_proxy.dsn(migrated.name, password=SECRET)
    writer = make_writer(dsn, tmp_path, stall_after=0.2, connect_timeout=0.6)
    pg_proxy.blackhole()
    await writer.start()
    with capture_logs() as logs:
        writer.submit(tick_rows(0))
        await pg_wait(lambda: writer.stats.state == "stalled", what="stalled")
        await pg_wait(lambda: writer.stats.batches_failed >= 1, what="connect timed out")
    await writer.close(timeout=0.5)
    [stalled] = [e for e in logs if e["event"] == "writer_stalled"]
    assert stalled["waiting_for"].startswith("connecting to postgresql://")
    failed = next(e for e in logs if e["event"] == "writer_batch_failed")
    assert failed["error"].startswith("TimeoutError: connecting to postgresql://")
    assert failed["error"].endswith(" did not finish within 0.6 s")
    assert SECRET not in repr(logs) and ":***@" in failed["error"]


async def test_a_long_outage_logs_at_a_calm_rate(migrated, pg_proxy, tmp_path, pg_wait):
    pg_proxy.refuse()
    writer = make_writer(
        pg_proxy.dsn(migrated.name), tmp_path, retry_initial=0.01, retry_max=0.01,
        failure_log_every=0.5,
    )  # fmt: skip
    await writer.start()
    loop = asyncio.get_running_loop()
    with capture_logs() as logs:
        started = loop.time()
        writer.submit(tick_rows(0))
        await pg_wait(lambda: writer.stats.batches_failed >= 30, what="30 failed attempts")
        await pg_wait(lambda: loop.time() - started > 1.1, what="over a second of outage")
        attempts = writer.stats.batches_failed
        elapsed = loop.time() - started
    await writer.close(timeout=0.5)
    failed = [e for e in logs if e["event"] == "writer_batch_failed"]
    assert 2 <= len(failed) <= 1 + elapsed / 0.5 < attempts
    assert failed[0]["attempt"] == 1 and failed[-1]["attempt"] > 1
    assert "still failing after" in failed[-1]["summary"]
    assert all(e["backlog_rows"] == 20 for e in failed)


async def test_closing_with_the_database_down_says_the_outcome_in_one_line(
    migrated, pg_proxy, tmp_path, pg_wait
) -> None:
    writer = await writing(pg_proxy.dsn(migrated.name), tmp_path, pg_wait, retry_initial=0.01)
    pg_proxy.refuse()
    for tick in range(1, 9):
        writer.submit(tick_rows(tick))
    with capture_logs() as logs:
        await writer.close(timeout=1.0)
    loud = [e for e in logs if e["log_level"] in ("warning", "error")]
    assert [e["event"] for e in loud] == ["writer_closed"], loud
    [closed] = loud
    assert closed["rows_spilled"] == 160 and closed["spill_files"] >= 1
    assert closed["summary"].startswith("book_ticker_snapshots writer closed: database down (")
    files = plural(closed["spill_files"], "spill file")
    assert f"20 rows written, {files} waiting in {tmp_path}" in closed["summary"]
