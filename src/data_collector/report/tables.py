"""The report's sections as tables of typed cells, shared by the text and CSV renderers (JSON
encodes the report itself)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from db.report_model import Report

#: how a cell is shown: text; whole number; price percentage (significant digits); share of
#: time (two decimals); duration in seconds; UTC time; amount of money
Kind = Literal["text", "int", "pct", "share", "seconds", "time", "money"]


@dataclass(frozen=True)
class Column:
    #: the text header
    title: str
    #: the CSV header
    key: str
    kind: Kind = "text"


@dataclass(frozen=True)
class Table:
    #: the CSV section name
    key: str
    #: the text heading
    title: str
    columns: tuple[Column, ...]
    rows: list[tuple[object, ...]]


def _pair_ends(symbol_title: str = "pair") -> tuple[Column, ...]:
    return (Column("venue", "exchange"), Column(symbol_title, "symbol"))


def _venues_only(table: Table) -> Table:
    """The table without its pair column (every row is a whole venue)."""
    keep = [i for i, c in enumerate(table.columns) if c.key != "symbol"]
    return Table(
        table.key,
        table.title,
        tuple(table.columns[i] for i in keep),
        [tuple(row[i] for i in keep) for row in table.rows],
    )


def opportunities(report: Report) -> Table:
    columns = (
        Column("pair", "symbol"),
        Column("buy", "buy_exchange"),
        Column("sell", "sell_exchange"),
        Column("count", "count", "int"),
        Column("open", "open", "int"),
        Column("total", "total_duration_s", "seconds"),
        Column("median", "median_duration_s", "seconds"),
        Column("median net", "median_net_pct", "pct"),
        Column("max net", "max_net_pct", "pct"),
        Column("profit", "profit_quote", "money"),
        Column("longest from", "longest_opened_at", "time"),
        Column("longest", "longest_duration_s", "seconds"),
    )
    rows = [
        (
            o.symbol,
            o.buy_exchange,
            o.sell_exchange,
            o.count,
            o.open,
            o.total_duration_s,
            o.median_duration_s,
            o.median_net_pct,
            o.max_net_pct,
            o.profit_quote,
            o.longest.opened_at,
            o.longest.duration_s,
        )
        for o in report.opportunities
    ]
    return Table("opportunities", "Opportunities per pair and venue pair", columns, rows)


def coverage(report: Report) -> Table:
    columns = (
        *_pair_ends(),
        Column("stored s", "seconds_stored", "int"),
        Column("window s", "seconds", "int"),
        Column("coverage", "coverage_pct", "share"),
        Column("rows", "rows", "int"),
        Column("gaps > 5 s", "gaps", "int"),
    )
    entries = [*report.coverage, *(report.coverage_by_pair or [])]
    rows = [
        (c.exchange, c.symbol, c.seconds_stored, c.seconds, c.pct, c.rows, len(c.gaps))
        for c in entries
    ]
    if report.coverage_by_pair is None:
        title = "Coverage: seconds with a stored row, per venue"
        return _venues_only(Table("coverage", title, columns, rows))
    title = "Coverage: seconds with a stored row, per venue (pair -), then per venue and pair"
    return Table("coverage", title, columns, rows)


def gaps(report: Report) -> Table:
    columns = (
        *_pair_ends(),
        Column("from", "start", "time"),
        Column("to", "end", "time"),
        Column("length", "seconds", "seconds"),
    )
    entries = [*report.coverage, *(report.coverage_by_pair or [])]
    rows = [(c.exchange, c.symbol, g.start, g.end, g.seconds) for c in entries for g in c.gaps]
    table = Table("gaps", "Gaps longer than 5 s without a stored row", columns, rows)
    return table if report.coverage_by_pair is not None else _venues_only(table)


def spreads(report: Report) -> Table:
    columns = (
        *_pair_ends(),
        Column("samples", "samples", "int"),
        Column("median", "median_pct", "pct"),
        Column("p95", "p95_pct", "pct"),
    )
    rows = [(s.exchange, s.symbol, s.samples, s.median_pct, s.p95_pct) for s in report.spreads]
    return Table("spreads", "Quoted spread, (ask - bid) / mid", columns, rows)


def mid_differences(report: Report) -> Table:
    columns = (
        Column("venue a", "venue_a"),
        Column("venue b", "venue_b"),
        Column("samples", "samples", "int"),
        Column("median b - a", "median_pct", "pct"),
        Column("median |b - a|", "median_abs_pct", "pct"),
    )
    rows = [
        (d.venue_a, d.venue_b, d.samples, d.median_pct, d.median_abs_pct)
        for d in report.mid_differences
    ]
    title = "Cross-venue mid-price difference, (mid b - mid a) / mean mid, same pair and second"
    return Table("mid_differences", title, columns, rows)


def all_tables(report: Report) -> list[Table]:
    return [
        opportunities(report),
        coverage(report),
        gaps(report),
        spreads(report),
        mid_differences(report),
    ]
