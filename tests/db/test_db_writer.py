"""SnapshotWriter against a healthy PostgreSQL: exactness, idempotence, bad rows, flushing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from structlog.testing import capture_logs

from db.rows import SnapshotRow
from db.spill import SpillDirectoryError
from db.tables import staged_table
from db.writer import SnapshotWriter, TableWriter

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def tick_rows(tick: int, pairs: int = 5, exchanges: tuple[str, ...] = ("mexc", "gate")):
    ts = T0 + timedelta(seconds=tick)
    return [
        (ex, f"C{i}", "USDT", f"{100 + i}.{tick:03d}0", "1.500", f"{101 + i}.5", "2", ts,
         ts - timedelta(milliseconds=7 + i))
        for ex in exchanges
        for i in range(pairs)
    ]  # fmt: skip


async def fetch_all(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(
            """SELECT exchange, symbol_base, symbol_quote, bid_price::text AS bid_price,
                      bid_qty::text AS bid_qty, ask_price::text AS ask_price,
                      ask_qty::text AS ask_qty, "timestamp", exchange_time
               FROM book_ticker_snapshots ORDER BY id"""
        )
    finally:
        await conn.close()


def as_tuples(records: list[asyncpg.Record]) -> list[tuple]:
    return [tuple(r) for r in records]


async def written(writer: SnapshotWriter, rows: int, pg_wait, timeout: float = 10.0) -> None:
    await pg_wait(lambda: writer.stats.rows_written >= rows, timeout, what=f"{rows} rows written")


EXACT_VALUES = [
    "123456789.12345678",
    "0.000000001234",
    "80535.880",
    "12345678901234567.123456789",  # 26 significant digits
    "0.10000000000000000000000000000000000001",
    "3",
    "0.0",
    "99999999999999999999999999999999999999.99999999999999999999",
]


async def test_copy_round_trip_is_exact(migrated, tmp_path, pg_wait) -> None:
    rows: list[SnapshotRow] = []
    for i, value in enumerate(EXACT_VALUES):
        ts = T0 + timedelta(microseconds=i)
        qty = value
        price = value if value not in ("0.0",) else "0.5"  # prices must be > 0
        ex_time = None if i % 2 else ts - timedelta(microseconds=123457)
        rows.append(("mexc", f"P{i}", "USDT", price, qty, price, qty, ts, ex_time))
    writer = SnapshotWriter(migrated.dsn, spill_dir=tmp_path / "spill", max_buffer_rows=1000)
    await writer.start()
    writer.submit(rows)
    await written(writer, len(rows), pg_wait)
    await writer.close()
    assert as_tuples(await fetch_all(migrated.dsn)) == rows
    stats = writer.stats
    assert (stats.rows_dropped, stats.batches_failed, stats.backlog_rows) == (0, 0, 0)
    assert stats.db_up and stats.last_write_at is not None


async def test_duplicate_batch_is_skipped_without_error(migrated, tmp_path, pg_wait) -> None:
    rows = tick_rows(0)
    writer = SnapshotWriter(migrated.dsn, spill_dir=tmp_path, max_buffer_rows=1000)
    await writer.start()
    writer.submit(rows)
    await written(writer, len(rows), pg_wait)
    writer.submit(list(rows))  # the same tick again (e.g. a retried batch)
    # and a batch holding the same row twice
    writer.submit([*tick_rows(1)[:1], *tick_rows(1)[:1]])
    await written(writer, 2 * len(rows) + 2, pg_wait)
    await writer.close()
    stored = as_tuples(await fetch_all(migrated.dsn))
    assert stored == [*rows, tick_rows(1)[0]]
    stats = writer.stats
    assert stats.batches_failed == 0 and stats.rows_dropped == 0
    assert stats.rows_duplicate == len(rows) + 1


async def test_bad_rows_are_dropped_alone(migrated, tmp_path, pg_wait) -> None:
    good = tick_rows(0, pairs=20)
    ts = good[0][7]
    bad: list = [
        ("mexc", "BAD1", "USDT", "abc", "1", "2", "1", ts, None),  # not a number
        ("mexc", "BAD2", "USDT", "1", "NaN", "2", "1", ts, None),  # NaN size
        ("mexc", "BAD3", "USDT", "-1", "1", "2", "1", ts, None),  # negative price
        ("mexc", "BAD4", "USDT", "1", "1", "Infinity", "1", ts, None),
        ("MEXC", "BAD5", "USDT", "1", "1", "2", "1", ts, None),  # not lowercase
        ("mexc", "BAD6", "USDT", "1,5", "1", "2", "1", ts, None),  # would shift columns
        ("mexc", "BAD7", "USDT", '"1"', "1", "2", "1", ts, None),  # CSV quote
        ("mexc", "BAD8", "USDT", "1\n", "1", "2", "1", ts, None),  # line break
        ("mexc", "BAD9", "USDT", "1", "1", "2", "1", "2024-05-01", None),  # not a datetime
        ("mexc", "BAD10", "USDT", "1", "1", "2"),  # short row
        ("mexc", "BAD11", "USDT", None, "1", "2", "1", ts, None),  # missing side
    ]
    mixed = [*good[:7], *bad[:5], *good[7:15], *bad[5:], *good[15:]]
    writer = SnapshotWriter(migrated.dsn, spill_dir=tmp_path, max_buffer_rows=1000)
    await writer.start()
    with capture_logs() as logs:
        writer.submit(mixed)
        await pg_wait(
            lambda: writer.stats.rows_written + writer.stats.rows_dropped == len(mixed),
            what="every row written or dropped",
        )
        writer.submit(tick_rows(1))  # the writer carries on normally
        await written(writer, len(good) + 10, pg_wait)
    await writer.close()
    stored = as_tuples(await fetch_all(migrated.dsn))
    assert stored == [*good, *tick_rows(1)]
    stats = writer.stats
    assert stats.rows_dropped == len(bad)
    assert stats.batches_failed == 0
    dropped = [e for e in logs if e["event"] == "writer_dropped"]
    assert sum(e["rows"] for e in dropped) == len(bad)
    assert all(e["log_level"] == "error" for e in dropped)


async def test_close_flushes_pending_rows(migrated, tmp_path) -> None:
    writer = SnapshotWriter(
        migrated.dsn, spill_dir=tmp_path, max_buffer_rows=100_000, batch_max_rows=1_000
    )
    await writer.start()
    expected = []
    for tick in range(30):  # 3,000 rows queued faster than they are written
        rows = tick_rows(tick, pairs=50)
        expected.extend(rows)
        writer.submit(rows)
    await writer.close(timeout=10)
    assert len(await fetch_all(migrated.dsn)) == len(expected)
    assert writer.stats.rows_written == len(expected)
    assert not list(tmp_path.iterdir())  # nothing had to be spilled


async def test_large_tick_is_split_and_exact(migrated, tmp_path, pg_wait) -> None:
    """20,000 rows in one submission (encoded in a worker thread, split into COPY batches)."""
    rows = tick_rows(0, pairs=10_000)
    writer = SnapshotWriter(migrated.dsn, spill_dir=tmp_path, max_buffer_rows=50_000,
                            batch_max_rows=8_000)  # fmt: skip
    await writer.start()
    writer.submit(rows)
    await written(writer, len(rows), pg_wait, timeout=20)
    await writer.close()
    assert writer.stats.batches_written == 3
    stored = as_tuples(await fetch_all(migrated.dsn))
    assert sorted(stored) == sorted(rows)


async def test_submit_after_close_is_counted(migrated, tmp_path) -> None:
    writer = SnapshotWriter(migrated.dsn, spill_dir=tmp_path, max_buffer_rows=10)
    await writer.start()
    await writer.close()
    with capture_logs() as logs:
        writer.submit(tick_rows(0))
    assert writer.stats.rows_dropped == 10
    assert [e["event"] for e in logs] == ["writer_dropped"]


async def test_start_refuses_a_spill_directory_it_cannot_write(migrated, tmp_path) -> None:
    """Without a usable spill directory an outage would lose rows: refuse up front."""
    (tmp_path / "data").write_text("")  # data_dir's place is taken by a regular file
    writer = SnapshotWriter(migrated.dsn, spill_dir=tmp_path / "data" / "spill", max_buffer_rows=10)
    with pytest.raises(SpillDirectoryError, match=r"spill directory .*/data/spill is unusable"):
        await writer.start()


async def test_writer_migrates_a_fresh_database(pg_database, tmp_path, pg_wait) -> None:
    writer = SnapshotWriter(pg_database.dsn, spill_dir=tmp_path, max_buffer_rows=100)
    await writer.start()
    writer.submit(tick_rows(0))
    await written(writer, 10, pg_wait)
    await writer.close()
    assert len(await fetch_all(pg_database.dsn)) == 10


# ---------------------------------------------------------------- a second table, same path

LEDGER_DDL = """CREATE TABLE test_ledger (
    key text PRIMARY KEY, value numeric NOT NULL CHECK (value >= 0), seen_at timestamptz NOT NULL
)"""


def encode_ledger(rows) -> tuple[bytes, int, list[str]]:
    payload = "".join(f"{key},{value},{at.isoformat()}\n" for key, value, at in rows)
    return payload.encode(), len(rows), []


LEDGER = staged_table(
    "test_ledger",
    [("key", "text"), ("value", "numeric"), ("seen_at", "timestamptz")],
    on_conflict="ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, "
    "seen_at = EXCLUDED.seen_at",
    encode=encode_ledger,
)


async def ledger_db(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(LEDGER_DDL)
    finally:
        await conn.close()


async def ledger_rows(dsn: str) -> list[tuple]:
    conn = await asyncpg.connect(dsn)
    try:
        records = await conn.fetch("SELECT key, value::text, seen_at FROM test_ledger ORDER BY 1")
    finally:
        await conn.close()
    return [tuple(r) for r in records]


async def test_a_writer_for_another_table_upserts_through_the_same_path(
    migrated, tmp_path, pg_wait
) -> None:
    await ledger_db(migrated.dsn)
    writer = TableWriter(migrated.dsn, LEDGER, spill_dir=tmp_path, max_buffer_rows=100)
    await writer.start()
    writer.submit([("a", "1.50", T0), ("b", "2", T0)])
    await written(writer, 2, pg_wait)
    later = T0 + timedelta(seconds=5)
    # the same key again (an opportunity updated), a bad row, and a new key
    writer.submit([("a", "1.75", later), ("bad", "-1", later), ("c", "3", later)])
    await pg_wait(lambda: writer.stats.rows_written + writer.stats.rows_dropped == 5)
    await writer.close()
    assert await ledger_rows(migrated.dsn) == [
        ("a", "1.75", later),
        ("b", "2", T0),
        ("c", "3", later),
    ]
    assert writer.stats.rows_dropped == 1 and writer.stats.batches_failed == 0
    assert not list(tmp_path.iterdir())


async def test_two_tables_spilling_into_one_directory_each_load_their_own(
    migrated, pg_proxy, tmp_path, pg_wait
) -> None:
    await ledger_db(migrated.dsn)
    dsn = pg_proxy.dsn(migrated.name)
    options = {"spill_dir": tmp_path, "max_buffer_rows": 5, "connect_timeout": 0.25}
    pg_proxy.refuse()
    snapshots, ledger = SnapshotWriter(dsn, **options), TableWriter(dsn, LEDGER, **options)
    for writer in (snapshots, ledger):
        await writer.start()
    snapshot_rows = tick_rows(0)
    ledger_in = [(f"k{i}", str(i), T0) for i in range(12)]
    snapshots.submit(snapshot_rows)
    ledger.submit(ledger_in)
    for writer in (snapshots, ledger):
        await writer.close(timeout=0.5)
    assert snapshots.stats.rows_spilled == 10 and ledger.stats.rows_spilled == 12
    pg_proxy.resume()
    # the database is up: a connect slowed down by a busy machine is no failure here
    options["connect_timeout"] = 10.0
    snapshots, ledger = SnapshotWriter(dsn, **options), TableWriter(dsn, LEDGER, **options)
    for writer in (snapshots, ledger):
        await writer.start()
    await pg_wait(lambda: snapshots.stats.rows_loaded_from_spill == 10, what="snapshots loaded")
    await pg_wait(lambda: ledger.stats.rows_loaded_from_spill == 12, what="ledger loaded")
    for writer in (snapshots, ledger):
        await writer.close()
        assert writer.stats.rows_dropped == 0 and writer.stats.batches_failed == 0
    assert as_tuples(await fetch_all(migrated.dsn)) == snapshot_rows
    assert await ledger_rows(migrated.dsn) == sorted(ledger_in)
    assert not list(tmp_path.iterdir())
