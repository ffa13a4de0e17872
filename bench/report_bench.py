"""Case 10, run on its own (``python -m bench report``): ``--report`` over a big table.

Fills ``book_ticker_snapshots`` with at least 10 million synthetic rows (60 pairs x 2 venues
x 86,400 one-second ticks, minus two planted outages), generated inside PostgreSQL with
``generate_series`` (prices with each pair's own decimals, sizes with three, as venues write
them), plus a day of opportunities in ``arbitrage_opportunities``; then times the report's
reading (``db.report_queries.fetch_report``, what ``run.py --report`` runs) for the 24 h
window, with and without ``--detail``, and for the last hour, and records the plan
PostgreSQL chose for each statement (EXPLAIN ANALYZE).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import CaseResult, median
from db.pool import connect
from db.report_model import ReportQuery
from db.report_queries import Trace, fetch_report

TABLE = "book_ticker_snapshots"
DAY = datetime(2030, 1, 1, tzinfo=UTC)
#: real tickers first, then made-up ones
TICKERS = [
    "BTC",
    "ETH",
    "SOL",
    "XRP",
    "DOGE",
    "ADA",
    "TRX",
    "LINK",
    "AVAX",
    "DOT",
    "LTC",
    "BCH",
    "UNI",
    "ATOM",
    "ETC",
    "FIL",
    "NEAR",
    "APT",
    "ARB",
    "OP",
    "PEPE",
    "SHIB",
    "TON",
    "SUI",
    "SEI",
    "INJ",
    "TIA",
    "WIF",
    "BONK",
    "JUP",
]


@dataclass
class ReportSettings:
    pairs: int = 60
    hours: int = 24
    reps: int = 3
    opportunities: int = 2_000
    #: concurrent INSERT ... SELECT connections while filling
    fillers: int = 2


# One hour of two venues' rows. Prices are whole numbers of the pair's tick, written as text
# with the pair's decimals (cheaper than rounding floats to NUMERIC, and exactly what a venue
# sends); gateio's prices drift a little from mexc's; two outages are left out.
_FILL = f"""
WITH p AS MATERIALIZED (  -- once per statement: the pairs, their price level and decimals
    SELECT i, coalesce((string_to_array($4, ' '))[i + 1], 'C' || lpad(i::text, 3, '0')) AS base,
           price, dec, power(10::float8, dec)::int8 AS sc
    FROM (SELECT i, power(10::float8, -4 + 9 * ((i * 37) % 60) / 60.0::float8) AS price
          FROM generate_series(0, $3 - 1) AS i) AS q
    CROSS JOIN LATERAL (SELECT greatest(2, 6 - floor(log(q.price)))::int AS dec) AS d
)
INSERT INTO {TABLE} (exchange, symbol_base, symbol_quote, bid_price, bid_qty, ask_price,
                     ask_qty, "timestamp", exchange_time)
SELECT v.exchange, p.base, 'USDT',
       ((k.bid / p.sc)::text || '.' || lpad((k.bid % p.sc)::text, p.dec, '0'))::numeric,
       ((k.q1 / 1000)::text || '.' || lpad((k.q1 % 1000)::text, 3, '0'))::numeric,
       ((k.ask / p.sc)::text || '.' || lpad((k.ask % p.sc)::text, p.dec, '0'))::numeric,
       ((k.q2 / 1000)::text || '.' || lpad((k.q2 % 1000)::text, 3, '0'))::numeric,
       ts, ts - interval '37 milliseconds'
FROM generate_series($1::timestamptz, $2::timestamptz - interval '1 second',
                     interval '1 second') AS ts
CROSS JOIN p
CROSS JOIN (VALUES (0, 'mexc'), (1, 'gateio')) AS v(vi, exchange)
CROSS JOIN LATERAL (SELECT extract(epoch FROM ts)::float8 AS t) AS e
CROSS JOIN LATERAL (SELECT
    p.price * p.sc * (1 + 0.02 * sin(e.t / (3600 + p.i * 13) + p.i))
        * (1 + v.vi * 0.0003 * sin(e.t / 600 + p.i)) AS mid,
    0.0002 * (1 + p.i % 5) * (1 + 0.5 * sin(e.t / 97 + p.i)) AS s) AS m
CROSS JOIN LATERAL (SELECT
    floor(m.mid * (1 - m.s / 2))::int8 AS bid, ceil(m.mid * (1 + m.s / 2))::int8 AS ask,
    (random() * 1e6)::int8 AS q1, (random() * 1e6)::int8 AS q2) AS k
WHERE NOT (v.exchange = 'gateio' AND ts >= $5 AND ts < $5 + interval '2 minutes')
  AND NOT (v.exchange = 'mexc' AND p.i = 7 AND ts >= $6 AND ts < $6 + interval '30 seconds')
"""

_LEDGER = """
INSERT INTO arbitrage_opportunities (symbol_base, symbol_quote, buy_exchange, sell_exchange,
    opened_at, closed_at, open_net_pct, max_net_pct, max_gross_pct, buy_price_at_max,
    sell_price_at_max, size_at_max, max_profit_quote, max_at, last_seen_at, ticks, close_reason)
SELECT b.base, 'USDT', CASE WHEN n % 2 = 0 THEN 'mexc' ELSE 'gateio' END,
       CASE WHEN n % 2 = 0 THEN 'gateio' ELSE 'mexc' END,
       t, t + d * interval '1 second', 5.1, 5.1 + (n % 30) / 10.0, 5.35 + (n % 30) / 10.0,
       100.00, 105.50, 1.5, round((n % 97) / 7.0, 4), t, t + (d - 1) * interval '1 second', d,
       CASE WHEN n % 9 = 0 THEN 'stale' ELSE 'converged' END
FROM generate_series(1, $3) AS n
CROSS JOIN LATERAL (SELECT $1::timestamptz + (n * 86399 / $3) * interval '1 second' AS t,
                           1 + (n * 7) % 30 AS d) AS o
CROSS JOIN LATERAL (SELECT (string_to_array($2, ' '))[1 + n % 20] AS base) AS b
"""


async def _indexes(conn: Any) -> list[tuple[str, str]]:
    """(name, definition) of the snapshot table's indexes other than its primary key. On the
    partitioned table (migration 003) a definition reads ``ON ONLY``: built without it, the
    index covers every partition again."""
    rows = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 "
        "AND indexname NOT LIKE '%pkey'",
        TABLE,
    )
    return [(r["indexname"], r["indexdef"].replace(" ON ONLY ", " ON ")) for r in rows]


async def fill(dsn: str, s: ReportSettings, log: Any) -> dict[str, float]:
    """Fill both tables (the day in its own daily partition, as the collector would have
    it); returns rows and the seconds each step took."""
    from db.partitions import ensure_partitions

    days = max(1, -(-s.hours // 24))
    conn = await connect(dsn, command_timeout=None)
    t0 = time.perf_counter()
    try:
        await conn.execute(f"TRUNCATE {TABLE}, arbitrage_opportunities")
        await ensure_partitions(conn, DAY.date(), days_ahead=days - 1)
        indexes = await _indexes(conn)
        for name, _definition in indexes:  # built once at the end: faster than row by row
            await conn.execute(f'DROP INDEX "{name}"')
        hours = asyncio.Queue[int]()
        for hour in range(s.hours):
            hours.put_nowait(hour)
        await asyncio.gather(*(_filler(dsn, s, hours) for _ in range(s.fillers)))
        filled = time.perf_counter()
        log(f"case 10: rows inserted in {filled - t0:.0f} s; building indexes")
        for _name, definition in indexes:
            await conn.execute(definition)
        indexed = time.perf_counter()
        tickers = " ".join(TICKERS)
        await conn.execute(_LEDGER, DAY, tickers, s.opportunities)
        await conn.execute(f"VACUUM ANALYZE {TABLE}")
        await conn.execute("VACUUM ANALYZE arbitrage_opportunities")
        rows = await conn.fetchval(f"SELECT count(*) FROM {TABLE}")
    finally:
        await conn.close()
    done = time.perf_counter()
    return {"rows": rows, "insert_s": filled - t0, "index_s": indexed - filled, "all_s": done - t0}


async def _filler(dsn: str, s: ReportSettings, hours: asyncio.Queue[int]) -> None:
    conn = await connect(dsn, command_timeout=None)
    try:
        await conn.execute("SET synchronous_commit = off")
        outage, pair_gap = DAY + timedelta(hours=3), DAY + timedelta(hours=12)
        while not hours.empty():
            start = DAY + timedelta(hours=hours.get_nowait())
            end = start + timedelta(hours=1)
            await conn.execute(_FILL, start, end, s.pairs, " ".join(TICKERS), outage, pair_gap)
    finally:
        await conn.close()


_AGGREGATES = {"Hashed": "HashAggregate", "Sorted": "GroupAggregate", "Mixed": "MixedAggregate"}


def _label(node: dict[str, Any]) -> str:
    name = node["Node Type"]
    if name == "Aggregate":
        name = _AGGREGATES.get(node.get("Strategy", ""), name)
    if node.get("Parallel Aware"):
        name = f"Parallel {name}"
    if "Partial Mode" in node and node["Partial Mode"] != "Simple":
        name = f"{node['Partial Mode']} {name}"
    if "Index Name" in node:
        name += f" using {node['Index Name']}"
    elif "Relation Name" in node:
        name += f" on {node['Relation Name']}"
    if "Workers Launched" in node:
        name += f" ({node['Workers Launched']} workers)"
    return name


def plan_outline(node: dict[str, Any]) -> str:
    """A plan as ``top <- child <- ...``, branches in brackets."""
    children = [plan_outline(child) for child in node.get("Plans", [])]
    label = _label(node)
    if not children:
        return label
    if len(children) == 1:
        return f"{label} <- {children[0]}"
    return f"{label} <- [{'; '.join(children)}]"


async def explain(dsn: str, trace: Trace) -> list[tuple[str, float, str]]:
    """(statement, ms, plan outline) of each traced statement, by EXPLAIN ANALYZE."""
    conn = await connect(dsn, command_timeout=None)
    out = []
    try:
        await conn.execute("SET work_mem = '128MB'")
        for name, statement, args in trace:
            raw = await conn.fetchval(
                f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {statement}", *args
            )
            plan = json.loads(raw)[0]
            out.append((name, plan["Execution Time"], plan_outline(plan["Plan"])))
    finally:
        await conn.close()
    return out


async def _time_report(dsn: str, query: ReportQuery, reps: int) -> tuple[list[float], Any, Trace]:
    times, report, trace = [], None, []
    for rep in range(reps):
        t0 = time.perf_counter()
        report = await fetch_report(dsn, query, trace=trace if rep == 0 else None)
        times.append(time.perf_counter() - t0)
    return times, report, trace


async def run_case(s: ReportSettings, dsn: str, log: Any) -> CaseResult:
    log(f"case 10: filling {s.pairs} pairs x 2 venues x {s.hours} h of 1 s ticks")
    filled = await fill(dsn, s, log)
    end = DAY + timedelta(hours=s.hours)
    variants = [
        (f"{s.hours} h", ReportQuery(DAY, end, venues=("gateio", "mexc"))),
        (f"{s.hours} h --detail", ReportQuery(DAY, end, venues=("gateio", "mexc"), per_pair=True)),
        ("last 1 h", ReportQuery(end - timedelta(hours=1), end, venues=("gateio", "mexc"))),
    ]
    rows, notes, figures = [], [], {}
    plans: list[str] = []
    load = os.getloadavg()  # other processes share these cores: say how busy they were
    for label, query in variants:
        log(f"case 10: report for {label} x {s.reps}")
        times, report, trace = await _time_report(dsn, query, s.reps)
        t = median(times)
        rows.append(
            [label, f"{report.rows:,}", f"{t:.2f}", f"{min(times):.2f}-{max(times):.2f}",
             f"{report.rows / t:,.0f}", f"1 in {report.sampling.every}"]
        )  # fmt: skip
        figures[f"seconds_{label}"] = t
        if label != "last 1 h":
            for name, ms, outline in await explain(dsn, trace):
                plans.append(f"`{label}` {name}: {ms / 1000:.2f} s: {outline}")
    notes.append(
        f"Table: {filled['rows']:,} rows ({s.pairs} pairs x 2 venues x {s.hours} h of 1 s "
        "ticks, less a 2 min gateio outage and a 30 s gap of one mexc pair), generated in "
        f"PostgreSQL in {filled['all_s']:.0f} s ({filled['insert_s']:.0f} s INSERT ... "
        f"SELECT generate_series on {s.fillers} connections, {filled['index_s']:.0f} s "
        f"building the indexes, then VACUUM ANALYZE); {s.opportunities:,} opportunities."
    )
    notes.append(
        f"Time: `fetch_report` (everything `run.py --report` reads), median of {s.reps} "
        "runs, warm cache; rows/s = snapshot rows in the window / time. Spreads and mid "
        "differences read a fixed sample of the window's seconds once it holds more than "
        "500,000 rows (column 'prices from'); coverage, gaps and opportunities read everything."
    )
    after = os.getloadavg()
    notes.append(
        f"Load average (1 min) of the machine when the timings began: {load[0]:.1f}, when "
        f"they ended: {after[0]:.1f} (on {os.cpu_count()} cores; other programs were running)."
    )
    notes.append("Plans (EXPLAIN ANALYZE, TIMING OFF; `a <- b`: a reads from b):")
    notes += [f"  {plan}" for plan in plans]
    return CaseResult(
        title="10. --report over a big table",
        description="",
        headers=["window", "rows in window", "seconds", "min-max", "rows/s", "prices from"],
        rows=rows,
        notes=notes,
        figures=figures,
    )
