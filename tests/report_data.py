"""A small hand-built data set with known report answers, shared by the report tests.

Window: 2030-01-01 00:00:00 to 00:02:00 UTC (120 one-second ticks), venues mexc and gateio
(binance is configured but never stored anything), pairs BTC/USDT and ETH/USDT:

* mexc BTC: every second but 30..39 (a 10 s gap); mexc ETH: every second -> mexc as a venue
  has all 120 seconds, no gap.
* gateio BTC and ETH: seconds 0..99 (the last 20 s missing); ETH also misses 50..52 (3 s,
  too short to list) -> gateio as a venue: 100 s, one 20 s gap at the end.
* Spreads: mexc ETH quotes 1999/2001 (0.1 %) for seconds 0..59 and 1998/2002 (0.2 %) after:
  median 0.15 %, p95 0.2 %. mexc BTC 99.95/100.05 (0.1 %), gateio BTC 100/100.1, gateio ETH
  2001/2003: constant spreads.
* Mid differences gateio -> mexc (b = mexc): BTC (100 - 100.05) / 100.025, on the 90 seconds
  both quoted; ETH (2000 - 2002) / 2001, on 97 seconds. The 97 ETH values are the lower ones,
  so the median of the 187 is ETH's.
* Ledger: SOL/USDT mexc->gateio three closed opportunities (2 s, 4 s, 10 s; max net 6, 7,
  5 %; profit 1.5, 2.5 and unknown); SOL/USDT gateio->mexc one still open (seen for 5 s);
  ETH/USDT mexc->gateio one that opened before the window and closed inside it (15 s); one
  that closed before the window (left out).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from db.migrations import apply_migrations

T0 = datetime(2030, 1, 1, tzinfo=UTC)
SINCE, UNTIL = T0, T0 + timedelta(seconds=120)
VENUES = ("binance", "gateio", "mexc")
ETH_MEDIAN_SPREAD, ETH_P95_SPREAD = 0.15, 0.2
BTC_DIFF = (100 - 100.05) / 100.025 * 100
ETH_DIFF = (2000 - 2002) / 2001 * 100


def _ticks(seconds: range, skip: range = range(0)) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds if s not in skip]


def snapshot_rows() -> list[tuple]:
    rows = []
    for ts in _ticks(range(120), skip=range(30, 40)):
        rows.append(("mexc", "BTC", "USDT", "99.95", "1", "100.05", "1", ts))
    for i, ts in enumerate(_ticks(range(120))):
        bid, ask = ("1999", "2001") if i < 60 else ("1998", "2002")
        rows.append(("mexc", "ETH", "USDT", bid, "2", ask, "2", ts))
    for ts in _ticks(range(100)):
        rows.append(("gateio", "BTC", "USDT", "100.00", "3", "100.10", "3", ts))
    for ts in _ticks(range(100), skip=range(50, 53)):
        rows.append(("gateio", "ETH", "USDT", "2001", "4", "2003", "4", ts))
    return rows


def _opportunity(
    base: str,
    buy: str,
    sell: str,
    opened_s: float,
    seconds: float,
    max_net: float,
    profit: float | None,
    *,
    open_: bool = False,
) -> tuple:
    opened = T0 + timedelta(seconds=opened_s)
    last_seen = opened + timedelta(seconds=seconds - (0 if open_ else 1))
    closed = None if open_ else opened + timedelta(seconds=seconds)
    return (
        base, "USDT", buy, sell, opened, closed, max_net - 0.5, max_net, max_net + 0.25,
        "100", "107", "1", profit, opened, last_seen, max(1, int(seconds)),
        None if open_ else "converged",
    )  # fmt: skip


def ledger_rows() -> list[tuple]:
    return [
        _opportunity("SOL", "mexc", "gateio", 10, 2, 6.0, 1.5),
        _opportunity("SOL", "mexc", "gateio", 30, 4, 7.0, 2.5),
        _opportunity("SOL", "mexc", "gateio", 60, 10, 5.0, None),
        _opportunity("SOL", "gateio", "mexc", 110, 5, 5.5, 0.5, open_=True),
        _opportunity("ETH", "mexc", "gateio", -10, 15, 8.0, 4.0),
        _opportunity("ETH", "mexc", "gateio", -100, 20, 9.0, 9.0),  # closed before the window
    ]


async def fill_known_data(dsn: str) -> None:
    """Migrate the database at ``dsn`` and store the data set."""
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
        await conn.copy_records_to_table(
            "book_ticker_snapshots",
            records=snapshot_rows(),
            columns=(
                "exchange", "symbol_base", "symbol_quote", "bid_price", "bid_qty",
                "ask_price", "ask_qty", "timestamp",
            ),
        )  # fmt: skip
        await conn.executemany(
            "INSERT INTO arbitrage_opportunities (symbol_base, symbol_quote, buy_exchange,"
            " sell_exchange, opened_at, closed_at, open_net_pct, max_net_pct, max_gross_pct,"
            " buy_price_at_max, sell_price_at_max, size_at_max, max_profit_quote, max_at,"
            " last_seen_at, ticks, close_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
            " $10::numeric, $11::numeric, $12::numeric, $13, $14, $15, $16, $17)",
            ledger_rows(),
        )
    finally:
        await conn.close()
