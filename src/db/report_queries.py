"""Runs ``--report``'s statements (:mod:`db.report_sql`) in one read-only snapshot of the
database and assembles the :class:`~db.report_model.Report`.

Only a few rows per venue, pair or venue pair come back; the edges of the window (a gap at its
start or end) are the only arithmetic done here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import msgspec

from db import report_sql as sql
from db.dsn import redact_text
from db.pool import connect
from db.report_model import (
    Coverage,
    Gap,
    Longest,
    MidDiff,
    OpportunityStats,
    Report,
    ReportQuery,
    Sampling,
    SpreadStats,
    TimelineEntry,
    window_ticks,
)
from db.staged_copy import is_outage_error

#: memory for the hash aggregates of one report (a session setting, this transaction only)
WORK_MEM = "128MB"
#: opportunities drawn on the timeline at most (the latest)
TIMELINE_LIMIT = 5_000


class ReportUnavailable(Exception):
    """The database could not be read; the message names why, never a password."""


async def read_report(dsn: str, query: ReportQuery, *, connect_timeout: float = 5.0) -> Report:
    """:func:`fetch_report`, with every way of failing to read the database turned into
    :class:`ReportUnavailable`."""
    try:
        return await fetch_report(dsn, query, connect_timeout=connect_timeout)
    except Exception as exc:
        if not is_outage_error(exc):
            raise  # a bug of ours: let it show
        raise ReportUnavailable(redact_text(f"{type(exc).__name__}: {exc}", dsn)) from exc


#: (statement name, SQL, parameters) of each statement a report ran
Trace = list[tuple[str, str, list[object]]]


async def fetch_report(
    dsn: str, query: ReportQuery, *, connect_timeout: float = 5.0, trace: Trace | None = None
) -> Report:
    """Read the report for ``query``. Raises OSError, TimeoutError or asyncpg errors when
    the database cannot be read. ``trace`` collects the statements run (for EXPLAIN)."""
    conn = await connect(dsn, timeout=connect_timeout, application_name="cex-arb-collector-report")
    try:
        archived = await _attach_archive(conn, query)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            report = await _ReportReader(conn, query, trace).read()
    finally:
        await conn.close()
    return msgspec.structs.replace(report, archived_rows=archived) if archived else report


async def _attach_archive(conn: asyncpg.Connection, query: ReportQuery) -> int:
    """Make the session's tables include the window's archived rows (temporary views of the
    same names, before the read-only transaction); the snapshot rows added."""
    if query.archive_dir is None or not Path(query.archive_dir).is_dir():
        return 0
    from db.archive_attach import attach_archive

    attached = await attach_archive(conn, Path(query.archive_dir), query.since, query.until)
    return sum(table.rows for table in attached if table.table == sql.SNAPSHOTS)


class _ReportReader:
    def __init__(self, conn: asyncpg.Connection, query: ReportQuery, trace: Trace | None) -> None:
        self.conn = conn
        self.trace = trace
        self.q = query
        self.first, self.last, self.window = window_ticks(query)
        self.step = timedelta(seconds=query.step_s)

    def sample(self, every: int) -> sql.Sample:
        return sql.Sample(self.first, self.last, self.q.step_s, every)

    def scope(self) -> sql.Scope:
        return sql.Scope(self.q.since, self.q.until, self.q.pairs)

    async def fetch(self, build: Callable[..., str], *args: object) -> list[asyncpg.Record]:
        """Build a statement on a fresh scope (its parameters) and run it."""
        scope = self.scope()
        statement = build(scope, *args)
        if self.trace is not None:
            self.trace.append((build.__name__, statement, list(scope.args)))
        return await self.conn.fetch(statement, *scope.args)

    async def read(self) -> Report:
        q = self.q
        has_snapshots = await self._exists(sql.SNAPSHOTS)
        venue_rows = await self.fetch(sql.venue_coverage, q.step_s) if has_snapshots else []
        rows = sum(r["rows"] for r in venue_rows)
        every = max(1, math.ceil(rows / q.sample_rows)) if q.sample_rows > 0 else 1
        found = sorted({r["exchange"] for r in venue_rows})
        coverage = self._venue_coverage(venue_rows, sorted(set(q.venues) | set(found)))
        by_pair = None
        if q.per_pair:
            by_pair = await self._pair_coverage(coverage) if has_snapshots else []
        spreads: list[SpreadStats] = []
        diffs: list[MidDiff] = []
        if rows:
            spreads = await self._spreads(every)
            diffs = await self._mid_differences(every, found) if len(found) > 1 else []
        opportunities, timeline = await self._ledger()
        return Report(
            window=self.window,
            symbols=None if q.pairs is None else [f"{b}/{qq}" for b, qq in q.pairs],
            rows=rows,
            has_data=bool(rows or opportunities),
            opportunities=opportunities,
            coverage=coverage,
            coverage_by_pair=by_pair,
            spreads=spreads,
            mid_differences=diffs,
            sampling=Sampling(every=every, rows=sum(s.samples for s in spreads)),
            timeline=timeline,
        )

    async def _exists(self, table: str) -> bool:
        return bool(await self.conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table))

    # ------------------------------------------------------------------ coverage

    def _coverage(self, exchange: str, symbol: str | None, r: asyncpg.Record | None) -> Coverage:
        seconds = self.window.seconds
        if r is None:
            end = self.last + self.step
            whole = Gap(self.first, end, (end - self.first).total_seconds())
            return Coverage(exchange, symbol, 0, seconds, 0.0, 0, self._long([whole]))
        inner = [
            Gap(after + self.step, until, (until - after - self.step).total_seconds())
            for after, until in zip(r["gap_after"], r["gap_until"], strict=True)
        ]
        head, tail = self._edge_gaps(r["first"], r["last"])
        stored = r["stored"] * self.q.step_s
        pct = min(100.0, stored / seconds * 100.0) if seconds else 0.0
        return Coverage(exchange, symbol, stored, seconds, pct, r["rows"], head + inner + tail)

    def _edge_gaps(self, first: datetime, last: datetime) -> tuple[list[Gap], list[Gap]]:
        """The gaps before the first stored tick and after the last one, if long enough."""
        end = self.last + self.step
        head = Gap(self.first, first, (first - self.first).total_seconds())
        tail = Gap(last + self.step, end, (end - last - self.step).total_seconds())
        return self._long([head]), self._long([tail])

    @staticmethod
    def _long(gaps: list[Gap]) -> list[Gap]:
        return [g for g in gaps if g.seconds > sql.GAP_S]

    def _venue_coverage(
        self, records: Sequence[asyncpg.Record], venues: Sequence[str]
    ) -> list[Coverage]:
        by_venue = {r["exchange"]: r for r in records}
        return [self._coverage(v, None, by_venue.get(v)) for v in venues]

    async def _pair_coverage(self, venues: list[Coverage]) -> list[Coverage]:
        counts = {
            (r["exchange"], r["symbol_base"], r["symbol_quote"]): r
            for r in await self.fetch(sql.pair_counts)
        }
        of_venue = {c.exchange: c for c in venues}
        step = self.q.step_s
        # fewer ticks than its venue: it has gaps of its own, walk it
        own = [
            key for key, r in counts.items() if r["stored"] * step < of_venue[key[0]].seconds_stored
        ]
        walked = {}
        if own:
            walked = {
                (r["exchange"], r["symbol_base"], r["symbol_quote"]): r
                for r in await self.fetch(sql.pair_gaps, step, own)
            }
        if self.q.pairs is not None:
            pairs = list(self.q.pairs)
        else:
            pairs = sorted({(base, quote) for _venue, base, quote in counts})
        out = []
        for venue in venues:
            for base, quote in pairs:
                key = (venue.exchange, base, quote)
                symbol = f"{base}/{quote}"
                if key in walked:
                    out.append(self._coverage(venue.exchange, symbol, walked[key]))
                elif key in counts:  # the same ticks as its venue
                    out.append(
                        msgspec.structs.replace(venue, symbol=symbol, rows=counts[key]["stored"])
                    )
                else:
                    out.append(self._coverage(venue.exchange, symbol, None))
        return out

    # ------------------------------------------------------------------ prices

    async def _spreads(self, every: int) -> list[SpreadStats]:
        records = await self.fetch(sql.spreads, self.sample(every))
        return [
            SpreadStats(
                r["exchange"],
                f"{r['symbol_base']}/{r['symbol_quote']}",
                r["samples"],
                r["median"],
                r["p95"],
            )
            for r in records
        ]

    async def _mid_differences(self, every: int, venues: list[str]) -> list[MidDiff]:
        records = await self.fetch(sql.mid_differences, self.sample(every), venues)
        return [
            MidDiff(r["a"], r["b"], r["samples"], r["median"], r["median_abs"]) for r in records
        ]

    # ------------------------------------------------------------------ the ledger

    async def _ledger(self) -> tuple[list[OpportunityStats], list[TimelineEntry]]:
        if not await self._exists(sql.LEDGER):
            return [], []
        records = await self.fetch(sql.opportunities, self.q.step_s)
        stats = [
            OpportunityStats(
                symbol=r["symbol"],
                buy_exchange=r["buy_exchange"],
                sell_exchange=r["sell_exchange"],
                count=r["n"],
                open=r["open"],
                total_duration_s=r["total"],
                median_duration_s=r["median_dur"],
                median_net_pct=r["median_net"],
                max_net_pct=r["max_net"],
                profit_quote=r["profit"],
                longest=Longest(r["longest_at"], r["longest_dur"], r["longest_net"]),
            )
            for r in records
        ]
        timeline: list[TimelineEntry] = []
        if self.q.timeline:
            entries = await self.fetch(sql.timeline, self.q.step_s, TIMELINE_LIMIT)
            timeline = [TimelineEntry(*r.values()) for r in reversed(entries)]
        return stats, timeline
