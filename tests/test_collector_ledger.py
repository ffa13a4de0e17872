"""The opportunity ledger end to end: simulator venues -> collector -> arbitrage_opportunities
in a real PostgreSQL, through a planted price gap, a database outage and a shutdown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from data_collector.collector import Collector
from data_collector.pairs import Pair
from data_collector.simulator import Simulator, pairs_for
from db.migrations import apply_migrations
from tests.helpers import (
    GATE_FEE,
    MEXC_FEE,
    fetch,
    make_config,
    running,
    wait_for_ticks,
    wait_until,
)
from tests.pg import PgDatabase, PgProxy

LEDGER = (
    "SELECT symbol_base, symbol_quote, buy_exchange, sell_exchange, opened_at, closed_at,"
    " duration_s, ticks, close_reason, open_net_pct, max_net_pct, max_gross_pct,"
    " buy_price_at_max::text AS buy, sell_price_at_max::text AS sell, size_at_max::text AS size,"
    " max_profit_quote, last_seen_at FROM arbitrage_opportunities ORDER BY opened_at"
)
NET_PCT = 7.0 - 100 * (MEXC_FEE + GATE_FEE)


def open_gap(sim: Simulator, pair: Pair) -> None:
    """Buy MEXC at 100.00, sell Gate at 107.00: 7 % gross, 6.75 % net of both fees."""
    sim.venues["mexc"].set_quote(pair, "99.99", "3", "100.00", "2.50")
    sim.venues["gateio"].set_quote(pair, "107.00", "1.5", "107.02", "4")


def close_gap(sim: Simulator, pair: Pair) -> None:
    sim.venues["gateio"].set_quote(pair, "99.98", "1.5", "100.01", "4")


async def ledger_rows(dsn: str) -> list[asyncpg.Record]:
    return await fetch(dsn, LEDGER)


def assert_planted_gap(row: asyncpg.Record, pair: Pair) -> None:
    assert (row["symbol_base"], row["symbol_quote"]) == (pair.base, pair.quote)
    assert (row["buy_exchange"], row["sell_exchange"]) == ("mexc", "gateio")
    assert (row["buy"], row["sell"], row["size"]) == ("100.00", "107.00", "1.5")  # exact
    assert row["open_net_pct"] == pytest.approx(NET_PCT)
    assert row["max_net_pct"] == pytest.approx(NET_PCT)
    assert row["max_gross_pct"] == pytest.approx(7.0)
    sold, bought = 107.0 * (1 - GATE_FEE), 100.0 * (1 + MEXC_FEE)
    assert float(row["max_profit_quote"]) == pytest.approx(1.5 * (sold - bought))


async def run_gap(collector: Collector, sim: Simulator, pair: Pair, ticks: int) -> None:
    open_gap(sim, pair)
    await wait_until(lambda: collector.analytics.open_opportunities == 1, 10, what="gap open")
    await wait_for_ticks(collector, ticks)
    close_gap(sim, pair)
    await wait_until(lambda: collector.analytics.open_opportunities == 0, 10, what="gap closed")


@pytest.mark.timeout(90)
async def test_a_planted_gap_lands_as_one_row(tmp_path: Path, pg_database: PgDatabase) -> None:
    pairs = pairs_for(3)
    gap = pairs[1]
    async with Simulator(pairs, rate_hz=4) as sim:
        config = make_config(tmp_path, sim, pairs, pg_database.dsn, analytics_interval="1")
        async with running(config) as collector:
            await wait_until(collector.manager.flowing, 15, what="feeds flowing")
            await wait_for_ticks(collector, 1)
            open_gap(sim, gap)
            # written when it opens and again at each summary while open
            await wait_until(
                lambda: _open_row_with_ticks(pg_database.dsn, 3), 15, what="an open row"
            )
            close_gap(sim, gap)
            await wait_until(lambda: collector.analytics.open_opportunities == 0, 10)
            await wait_until(lambda: _closed_rows(pg_database.dsn), 10, what="the closed row")
    [row] = await ledger_rows(pg_database.dsn)
    assert_planted_gap(row, gap)
    assert row["close_reason"] == "converged"
    assert row["ticks"] >= 3
    # one row per second open: opened on a tick, closed on the first tick without it
    assert row["duration_s"] == Decimal(row["ticks"])
    assert row["last_seen_at"] == row["closed_at"] - timedelta(seconds=1)


async def _open_row_with_ticks(dsn: str, ticks: int) -> bool:
    rows = await ledger_rows(dsn)
    return bool(rows) and rows[0]["closed_at"] is None and rows[0]["ticks"] >= ticks


async def _closed_rows(dsn: str) -> bool:
    return any(r["closed_at"] is not None for r in await ledger_rows(dsn))


@pytest.mark.timeout(120)
async def test_a_database_outage_during_the_gap_loses_nothing_and_stores_it_once(
    tmp_path: Path, pg_database: PgDatabase, pg_proxy: PgProxy
) -> None:
    pairs = pairs_for(3)
    gap = pairs[2]
    async with Simulator(pairs, rate_hz=4) as sim:
        config = make_config(
            tmp_path, sim, pairs, pg_proxy.dsn(pg_database.name), analytics_interval="1"
        )
        async with running(config) as collector:
            await wait_until(collector.manager.flowing, 15, what="feeds flowing")
            await wait_for_ticks(collector, 1)
            ledger = collector.ledger_writer
            assert ledger is not None
            pg_proxy.refuse()
            await run_gap(collector, sim, gap, ticks=3)
            assert ledger.stats.backlog_rows >= 3  # opened, checkpoints, closed: waiting
            assert ledger.stats.rows_written == 0
            pg_proxy.resume()
            await wait_until(lambda: ledger.stats.backlog_rows == 0, 30, what="ledger backlog")
    [row] = await ledger_rows(pg_database.dsn)
    assert_planted_gap(row, gap)
    assert row["close_reason"] == "converged" and row["ticks"] >= 3
    assert row["duration_s"] == Decimal(row["ticks"])


@pytest.mark.timeout(90)
async def test_shutdown_closes_what_is_open_and_start_up_closes_a_crashed_runs_rows(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    pairs = pairs_for(3)
    gap = pairs[0]
    crashed_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await _left_open_by_a_crash(pg_database.dsn, crashed_at)
    async with Simulator(pairs, rate_hz=4) as sim:
        config = make_config(tmp_path, sim, pairs, pg_database.dsn)
        async with running(config) as collector:
            await wait_until(collector.manager.flowing, 15, what="feeds flowing")
            open_gap(sim, gap)
            await wait_until(lambda: collector.analytics.open_opportunities == 1, 10)
            await wait_for_ticks(collector, 2)
            stopping = datetime.now(UTC)
    crashed, ours = await ledger_rows(pg_database.dsn)
    # the crashed run's row: closed at start-up where it was last seen
    assert (crashed["close_reason"], crashed["closed_at"]) == (
        "shutdown",
        crashed_at + timedelta(seconds=9),
    )
    assert_planted_gap(ours, gap)
    assert ours["close_reason"] == "shutdown" and ours["ticks"] >= 2
    assert ours["closed_at"] >= stopping > ours["last_seen_at"]


async def _left_open_by_a_crash(dsn: str, opened_at: datetime) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
        await conn.execute(
            "INSERT INTO arbitrage_opportunities (symbol_base, symbol_quote, buy_exchange,"
            " sell_exchange, opened_at, open_net_pct, max_net_pct, max_gross_pct,"
            " buy_price_at_max, sell_price_at_max, max_at, last_seen_at, ticks)"
            " VALUES ('XRP', 'USDT', 'gateio', 'mexc', $1, 5.5, 6, 6.25, 0.5, 0.53, $1, $2, 10)",
            opened_at,
            opened_at + timedelta(seconds=9),
        )
    finally:
        await conn.close()
