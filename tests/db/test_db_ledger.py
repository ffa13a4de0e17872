"""The ledger table (migration 002) and its upsert, through a real TableWriter into PostgreSQL:
states only move forward, one batch may hold every state of an opportunity, the start-up
recovery closes what a crashed run left open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from db.ledger import COLUMNS, OPPORTUNITIES, close_orphans, encode_ledger_rows
from db.migrations import default_migrations_dir
from db.writer import TableWriter

T0 = datetime(2030, 1, 1, 12, tzinfo=UTC)
MIGRATION_004 = "004_arbitrage_opportunities_duration"


def state(
    ticks: int,
    *,
    closed: float | None = None,
    reason: str | None = None,
    opened: datetime = T0,
    base: str = "SOL",
    venues: tuple[str, str] = ("mexc", "gateio"),
    sell: str = "107.00",
) -> tuple:
    """One state of an opportunity that opened at ``opened``, seen open for ``ticks`` ticks."""
    last_seen = opened + timedelta(seconds=ticks - 1)
    closed_at = None if closed is None else opened + timedelta(seconds=closed)
    return (
        base, "USDT", *venues, opened, closed_at,
        6.75, 6.0 + ticks / 10, 6.25 + ticks / 10,
        "100.00", sell, "1.50", 10.125, opened, last_seen, ticks, reason,
    )  # fmt: skip


async def stored(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(
            "SELECT symbol_base, buy_exchange, opened_at, closed_at, duration_s, ticks,"
            " close_reason, last_seen_at, sell_price_at_max::text AS sell,"
            " buy_price_at_max::text AS buy, size_at_max::text AS size, max_net_pct"
            " FROM arbitrage_opportunities ORDER BY symbol_base, opened_at"
        )
    finally:
        await conn.close()


async def write(writer: TableWriter, rows: list[tuple], pg_wait) -> None:
    target = writer.stats.rows_written + len(rows)
    writer.submit(rows)
    await pg_wait(lambda: writer.stats.rows_written >= target, what="ledger rows written")


async def test_the_migration_creates_the_contract_columns(migrated) -> None:
    conn = await asyncpg.connect(migrated.dsn)
    try:
        types = dict(
            await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = 'arbitrage_opportunities'"
            )
        )
    finally:
        await conn.close()
    assert set(COLUMNS) | {"id", "duration_s"} == set(types)
    for name in ("buy_price_at_max", "sell_price_at_max", "size_at_max", "max_profit_quote"):
        assert types[name] == "numeric"
    assert types["closed_at"] == "timestamp with time zone"


#: a row as an analyst's script writes it: every column the issue names, duration_s included
HAND_BUILT = """
INSERT INTO arbitrage_opportunities (symbol_base, symbol_quote, buy_exchange, sell_exchange,
    opened_at, closed_at, duration_s, open_net_pct, max_net_pct, max_gross_pct,
    buy_price_at_max, sell_price_at_max, size_at_max, max_profit_quote, max_at, last_seen_at,
    ticks, close_reason)
VALUES ($1, 'USDT', 'mexc', 'okx', $2, $3, $4, 5.5, 6.0, 6.2, '100.0', '106.5', '2', '12.6',
        $2, $2, 3, $5)
"""


async def test_a_hand_built_row_may_name_duration_s_and_gets_the_true_one(migrated) -> None:
    conn = await asyncpg.connect(migrated.dsn)
    try:
        closed = T0 + timedelta(seconds=9)
        await conn.execute(HAND_BUILT, "BTC", T0, closed, Decimal(9), "converged")
        await conn.execute(HAND_BUILT, "ETH", T0, None, None, None)
        # a value that disagrees with the times is corrected, not stored
        await conn.execute(HAND_BUILT, "SOL", T0, closed, Decimal(1), "stale")
        durations = dict(
            await conn.fetch(
                "SELECT symbol_base, duration_s FROM arbitrage_opportunities ORDER BY 1"
            )
        )
        assert durations == {"BTC": Decimal(9), "ETH": None, "SOL": Decimal(9)}
        # an update that closes a row computes its duration too
        await conn.execute(
            "UPDATE arbitrage_opportunities SET closed_at = $1, close_reason = 'shutdown'"
            " WHERE symbol_base = 'ETH'",
            T0 + timedelta(seconds=4),
        )
        ended = "SELECT duration_s FROM arbitrage_opportunities WHERE symbol_base = 'ETH'"
        assert await conn.fetchval(ended) == Decimal(4)
        # migration 004 run again changes nothing
        await conn.execute((default_migrations_dir() / f"{MIGRATION_004}.sql").read_text())
        await conn.execute(HAND_BUILT, "ADA", T0, closed, None, "converged")
        assert await conn.fetchval(ended.replace("ETH", "ADA")) == Decimal(9)
    finally:
        await conn.close()


async def test_a_hand_built_row_may_leave_out_max_at_and_last_seen_at(migrated) -> None:
    """The issue names neither column: a row written from its list alone is taken."""
    insert = HAND_BUILT.replace(", max_at, last_seen_at", "").replace("$2, $2, 3, $5", "3, $5")
    conn = await asyncpg.connect(migrated.dsn)
    try:
        await conn.execute(insert, "BTC", T0, T0 + timedelta(seconds=9), None, "converged")
        await conn.execute(insert, "ETH", T0, None, None, None)
        rows = await conn.fetch(
            "SELECT symbol_base, max_at, last_seen_at, duration_s"
            " FROM arbitrage_opportunities ORDER BY 1"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [
        ("BTC", T0, T0 + timedelta(seconds=9), Decimal(9)),
        ("ETH", T0, T0, None),
    ]


async def test_states_only_move_forward(migrated, tmp_path, pg_wait) -> None:
    writer = TableWriter(migrated.dsn, OPPORTUNITIES, spill_dir=tmp_path, max_buffer_rows=100)
    await writer.start()
    opened, checkpoint = state(1), state(5, sell="107.50")
    closed = state(7, closed=7.0, reason="converged")
    for row in (opened, checkpoint):
        await write(writer, [row], pg_wait)
    [row] = await stored(migrated.dsn)
    assert (row["ticks"], row["closed_at"], row["duration_s"]) == (5, None, None)
    assert row["sell"] == "107.50"
    await write(writer, [closed], pg_wait)
    # a replay of older states (an outage's spill file loaded late) changes nothing
    await write(writer, [checkpoint, opened, state(7)], pg_wait)
    await writer.close()
    [row] = await stored(migrated.dsn)
    assert (row["ticks"], row["close_reason"]) == (7, "converged")
    assert row["closed_at"] == T0 + timedelta(seconds=7)
    assert row["duration_s"] == Decimal(7)
    assert (row["buy"], row["sell"], row["size"]) == ("100.00", "107.00", "1.50")  # exact
    assert writer.stats.rows_dropped == 0


async def test_one_batch_with_every_state_keeps_the_newest(migrated, tmp_path, pg_wait) -> None:
    writer = TableWriter(migrated.dsn, OPPORTUNITIES, spill_dir=tmp_path, max_buffer_rows=100)
    await writer.start()
    later = T0 + timedelta(minutes=1)
    batch = [
        state(1),
        state(4),
        state(4, closed=4.2, reason="shutdown"),
        state(1, opened=later),
        state(3, opened=later),
        state(3, opened=later, closed=3.0, reason="stale"),
        state(2, opened=later),  # older, listed after the close
    ]
    await write(writer, batch, pg_wait)
    await writer.close()
    rows = await stored(migrated.dsn)
    assert [(r["opened_at"], r["ticks"], r["close_reason"]) for r in rows] == [
        (T0, 4, "shutdown"),
        (later, 3, "stale"),
    ]
    assert writer.stats.batches_failed == 0 and writer.stats.rows_dropped == 0


async def test_recovery_closes_what_a_crashed_run_left_open(migrated, tmp_path, pg_wait) -> None:
    crashed = TableWriter(migrated.dsn, OPPORTUNITIES, spill_dir=tmp_path, max_buffer_rows=100)
    await crashed.start()
    other_venues = state(2, base="ETH", venues=("binance", "okx"))
    await write(crashed, [state(3), other_venues], pg_wait)
    await crashed.close()

    restart = T0 + timedelta(minutes=5)
    ours = state(1, base="BTC", opened=restart)  # this run's: opened after its start

    async def recover(conn: asyncpg.Connection) -> None:
        assert await close_orphans(conn, restart, ["mexc", "gateio"]) == 1

    writer = TableWriter(
        migrated.dsn, OPPORTUNITIES, spill_dir=tmp_path, max_buffer_rows=100, on_connect=recover
    )
    await writer.start()
    await write(writer, [ours], pg_wait)
    rows = {r["symbol_base"]: r for r in await stored(migrated.dsn)}
    sol = rows["SOL"]
    # closed where it was last seen open, with the reason a clean shutdown gives
    assert (sol["close_reason"], sol["closed_at"]) == ("shutdown", T0 + timedelta(seconds=2))
    assert rows["BTC"]["closed_at"] is None  # this run's row stays open
    assert rows["ETH"]["closed_at"] is None  # another collector's venues: not ours to close
    # the crashed run's spill file held a later state: it extends the row, which stays closed
    await write(writer, [state(6)], pg_wait)
    [sol] = [r for r in await stored(migrated.dsn) if r["symbol_base"] == "SOL"]
    assert (sol["ticks"], sol["close_reason"]) == (6, "shutdown")
    assert sol["closed_at"] == sol["last_seen_at"] == T0 + timedelta(seconds=5)
    # ... and its real close, with the same ticks, beats the recovery's guess
    await write(writer, [state(6, closed=6.0, reason="converged")], pg_wait)
    await writer.close()
    [sol] = [r for r in await stored(migrated.dsn) if r["symbol_base"] == "SOL"]
    assert (sol["close_reason"], sol["closed_at"]) == ("converged", T0 + timedelta(seconds=6))


def test_the_encoder_leaves_out_malformed_rows_with_a_reason() -> None:
    good = state(1)
    naive = (*good[:4], datetime(2030, 1, 1), *good[5:])
    comma = (*good[:9], "1,5", *good[10:])
    infinite = (*good[:6], float("inf"), *good[7:])
    payload, n, rejected = encode_ledger_rows([good, naive, comma, infinite, good[:3]])
    assert n == 1 and payload.count(b"\n") == 1
    assert payload.decode().startswith("SOL,USDT,mexc,gateio,2030-01-01T12:00:00+00:00,,6.75,")
    assert [reason.split(":")[0] for reason in rejected] == [
        "timestamp 2030-01-01 00",
        "field '1,5' is not a plain string",
        "number inf is not finite",
        "not a 17-tuple",
    ]


@pytest.mark.parametrize(
    "row",
    [
        state(2, closed=2.0, reason="soon"),  # not a close reason
        state(2, closed=2.0),  # closed without a reason
        state(2, reason="stale"),  # a reason but open
        state(2, venues=("mexc", "mexc")),  # a venue against itself
    ],
)
async def test_postgresql_refuses_an_inconsistent_row(migrated, tmp_path, pg_wait, row) -> None:
    writer = TableWriter(migrated.dsn, OPPORTUNITIES, spill_dir=tmp_path, max_buffer_rows=100)
    await writer.start()
    writer.submit([row, state(1, base="ETH")])
    await pg_wait(lambda: writer.stats.rows_dropped == 1, what="the bad row refused")
    await pg_wait(lambda: writer.stats.rows_written == 1, what="the good row stored")
    await writer.close()
    assert [r["symbol_base"] for r in await stored(migrated.dsn)] == ["ETH"]
