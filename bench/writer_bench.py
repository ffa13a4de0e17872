"""Case 3: snapshot write, the project's SnapshotWriter versus a bare asyncpg COPY.

Both write the same rows (one tick of N (venue, pair) snapshots, the venue's exact decimal
strings, as the scheduler builds them) into the same ``book_ticker_snapshots`` table of the
same server. The table is emptied before every measurement and the two sides alternate which
goes first. Writer: from ``submit(rows)`` until ``stats.rows_written`` covers them (the writer's
own task encodes, COPYs into its staging table and INSERTs ... ON CONFLICT DO NOTHING).
Bare: ``copy_records_to_table`` of the same tuples straight into the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import CaseResult, median
from data_collector.simulator import Market, pairs_for
from db.pool import connect
from db.rows import COLUMNS, SnapshotRow
from db.writer import SnapshotWriter

TABLE = "book_ticker_snapshots"
POLL = 0.001
#: the bench's ticks follow each other from here (all within one UTC day)
FIRST_TICK = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class WriterSettings:
    sizes: tuple[int, ...] = (4_000, 20_000)
    reps: int = 7


@contextlib.contextmanager
def database(tmp: str, log) -> Iterator[str]:
    """DSN of a scratch database: a schema of $DATABASE_URL (dropped afterwards) or an
    embedded PostgreSQL in a temp directory."""
    url = os.environ.get("DATABASE_URL")
    if url:
        schema = f"bench_{os.getpid()}"
        sep = "&" if "?" in url else "?"
        log(f"PostgreSQL: $DATABASE_URL, scratch schema {schema}")
        yield f"{url}{sep}search_path={schema}"
        return
    from db.embedded import EmbeddedPostgres

    log("PostgreSQL: embedded (pgserver) in a temp directory")
    pg = EmbeddedPostgres.start(Path(tmp) / "pg")
    try:
        yield pg.dsn
    finally:
        pg.stop()


async def prepare(dsn: str) -> None:
    """Create the scratch schema when there is one, apply the project's migrations and create
    the daily partition the bench's ticks go to (as the collector does ahead of each day)."""
    from db.migrations import apply_migrations
    from db.partitions import ensure_partitions

    schema = _schema(dsn)
    base = dsn.split(f"search_path={schema}")[0].rstrip("?&") if schema else dsn
    if schema:
        conn = await connect(base)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        finally:
            await conn.close()
    conn = await connect(dsn)
    try:
        await apply_migrations(conn)
        await ensure_partitions(conn, FIRST_TICK.date(), days_ahead=0)
    finally:
        await conn.close()


async def drop_scratch(dsn: str) -> None:
    schema = _schema(dsn)
    if not schema:
        return
    conn = await connect(dsn.split(f"search_path={schema}")[0].rstrip("?&"))
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def _schema(dsn: str) -> str:
    marker = "search_path="
    return dsn.split(marker, 1)[1].split("&", 1)[0] if marker in dsn else ""


def make_rows(n: int, tick: datetime) -> list[SnapshotRow]:
    """One tick of ``n`` rows over two venues, quotes formatted like the simulator's."""
    per_venue = (n + 1) // 2
    pairs = pairs_for(per_venue)
    market = Market(pairs)
    rows: list[SnapshotRow] = []
    import random

    rng = random.Random(7)
    ex_time = tick - timedelta(milliseconds=37)
    for venue in ("mexc", "gateio"):
        for i, pair in enumerate(pairs):
            if len(rows) == n:
                break
            bid, bid_qty, ask, ask_qty = market.quote(i, rng)
            rows.append((venue, pair.base, pair.quote, bid, bid_qty, ask, ask_qty, tick, ex_time))
    return rows


def _retick(rows: list[SnapshotRow], tick: datetime) -> list[SnapshotRow]:
    return [(*r[:7], tick, r[8]) for r in rows]


async def _writer_once(writer: SnapshotWriter, rows: list[SnapshotRow]) -> float:
    target = writer.stats.rows_written + len(rows)
    t0 = time.perf_counter()
    writer.submit(rows)
    while writer.stats.rows_written < target:
        if writer.stats.last_error and writer.stats.batches_failed:
            raise RuntimeError(f"writer failed: {writer.stats.last_error}")
        await asyncio.sleep(POLL)
    return time.perf_counter() - t0


async def _bare_once(conn, rows: list[SnapshotRow]) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    await conn.copy_records_to_table(TABLE, records=rows, columns=COLUMNS)
    return time.perf_counter() - t0


async def run_case(s: WriterSettings, dsn: str, tmp: str, log) -> CaseResult:
    await prepare(dsn)
    writer = SnapshotWriter(dsn, spill_dir=Path(tmp) / "spill", max_buffer_rows=1_000_000)
    await writer.start()
    conn = await connect(dsn)
    results: dict[int, dict[str, list[float]]] = {}
    stored_ok = True
    try:
        tick = FIRST_TICK
        warm = make_rows(100, tick)
        await _writer_once(writer, warm)  # connect, migrations check, staging table
        await _bare_once(conn, _retick(warm, tick + timedelta(seconds=1)))
        for n in s.sizes:
            log(f"case 3: {n:,} rows x {s.reps}")
            base = make_rows(n, tick)
            times: dict[str, list[float]] = {"writer": [], "bare": []}
            for rep in range(s.reps):
                order = ("writer", "bare") if rep % 2 == 0 else ("bare", "writer")
                for side in order:
                    await conn.execute(f"TRUNCATE {TABLE}")
                    tick += timedelta(seconds=1)
                    rows = _retick(base, tick)
                    if side == "writer":
                        elapsed = await _writer_once(writer, rows)
                    else:
                        elapsed = await _bare_once(conn, rows)
                    stored = await conn.fetchval(f"SELECT count(*) FROM {TABLE}")
                    stored_ok &= stored == n
                    times[side].append(elapsed)
            results[n] = times
    finally:
        await conn.close()
        await writer.close()
        await drop_scratch(dsn)
    return _table(s, results, stored_ok, writer.stats.rows_dropped)


def _table(
    s: WriterSettings, results: dict[int, dict[str, list[float]]], stored_ok: bool, dropped: int
) -> CaseResult:
    rows: list[list[str]] = []
    figures: dict[str, float] = {}
    for n, times in results.items():
        w = n / median(times["writer"])
        b = n / median(times["bare"])
        figures[f"ratio_{n}"] = w / b
        rows.append(
            [
                f"{n:,}",
                f"{w:,.0f}",
                f"{median(times['writer']) * 1e3:,.1f}",
                f"{b:,.0f}",
                f"{median(times['bare']) * 1e3:,.1f}",
                f"{w / b:.2f}",
            ]
        )
    notes = [
        f"Medians over {s.reps} repetitions per side, alternating which side goes first; the "
        "table is truncated before every measurement (one unique index on exchange, pair and "
        "tick; the table is partitioned by day and the rows go to that day's partition).",
        "Both sides get the same Python tuples (exact decimal strings; asyncpg's binary COPY "
        "encodes the strings as NUMERIC). The writer additionally deduplicates (staging table "
        "+ INSERT ... ON CONFLICT DO NOTHING), which the bare COPY does not.",
        f"Every measurement stored exactly the rows given: {'yes' if stored_ok else 'NO'}; "
        f"writer rows dropped: {dropped}.",
    ]
    return CaseResult(
        title="3. Snapshot write into PostgreSQL: SnapshotWriter vs bare asyncpg COPY",
        description="",
        headers=[
            "rows",
            "writer rows/s",
            "writer ms",
            "bare COPY rows/s",
            "bare COPY ms",
            "writer / bare",
        ],
        rows=rows,
        notes=notes,
        figures=figures,
    )
