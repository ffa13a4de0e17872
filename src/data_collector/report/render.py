"""The report as text (aligned tables for a terminal), JSON (one document) or CSV (one section
per table, each with its header row)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
import numpy as np

from data_collector.analytics.formatting import format_duration, format_price
from data_collector.report.tables import Kind, Table, all_tables
from db.report_model import Report

NONE = "-"


def _sig(value: float, digits: int) -> str:
    """``digits`` significant digits, positional, trailing zeros kept (6.000, 0.09995)."""
    return np.format_float_positional(
        value, precision=digits, unique=False, fractional=False, trim="k"
    )


def when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


_TEXT: dict[Kind, Callable[[object], str]] = {
    "text": str,
    "int": lambda v: f"{v:,}",
    "pct": lambda v: f"{_sig(float(v), 4)}%",  # type: ignore[arg-type]
    "share": lambda v: f"{v:.2f}%",
    "seconds": lambda v: format_duration(float(v)),  # type: ignore[arg-type]
    "time": lambda v: when(v),  # type: ignore[arg-type]
    "money": lambda v: format_price(float(v)),  # type: ignore[arg-type]
}


def _cell(value: object, kind: Kind) -> str:
    return NONE if value is None else _TEXT[kind](value)


def format_table(table: Table, indent: str = "  ") -> list[str]:
    """Aligned columns: text to the left, numbers to the right."""
    cells = [
        [_cell(v, c.kind) for v, c in zip(row, table.columns, strict=True)] for row in table.rows
    ]
    headers = [c.title for c in table.columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    left = [c.kind == "text" for c in table.columns]

    def line(values: list[str]) -> str:
        parts = [
            v.ljust(w) if is_left else v.rjust(w)
            for v, w, is_left in zip(values, widths, left, strict=True)
        ]
        return (indent + "  ".join(parts)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)]


def _span(seconds: float) -> str:
    """A window's length: ``24h``, ``7d``, ``1h30m``, ``90.0s``."""
    text = format_duration(seconds)
    for zero in ("00s", "00m", "00h"):
        text = text.removesuffix(zero)
    return text


def _heading(report: Report) -> list[str]:
    w = report.window
    pairs = "all pairs" if report.symbols is None else ", ".join(report.symbols)
    length = _span((w.until - w.since).total_seconds())
    rows = f"{report.rows:,} snapshot rows in the window"
    if report.archived_rows:
        rows += f" ({report.archived_rows:,} read back from the Parquet archive)"
    return [
        f"Report from {when(w.since)} to {when(w.until)} ({length}, ticks every "
        f"{w.step_s} s), {pairs}",
        rows,
    ]


def _sampling_note(report: Report) -> str:
    s = report.sampling
    if s.every <= 1:
        return f"every second of the window, {s.rows:,} rows"
    return (
        f"about 1 second in {s.every} of the window (the same ones on every run), "
        f"{s.rows:,} of {report.rows:,} rows"
    )


def render_text(report: Report) -> str:
    if not report.has_data:
        w = report.window
        return (
            f"No data from {when(w.since)} to {when(w.until)}: nothing was stored in this window.\n"
        )
    out = _heading(report)
    for table in all_tables(report):
        title = table.title
        if table.key in ("spreads", "mid_differences"):
            title += f" ({_sampling_note(report)})"
        out += ["", title]
        out += format_table(table) if table.rows else ["  (none)"]
    return "\n".join(out) + "\n"


def render_json(report: Report) -> str:
    return msgspec.json.format(msgspec.json.encode(report).decode(), indent=2) + "\n"


def _csv_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else value


def render_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for i, table in enumerate(all_tables(report)):
        if i:
            buffer.write("\n")
        buffer.write(f"# {table.key}\n")
        writer.writerow([c.key for c in table.columns])
        writer.writerows([_csv_value(v) for v in row] for row in table.rows)
    return buffer.getvalue()


RENDERERS: dict[str, Callable[[Report], str]] = {
    "text": render_text,
    "json": render_json,
    "csv": render_csv,
}
