"""``arbitrage_opportunities``: the ledger row, its CSV encoding and its table spec.

Imports no database driver: the analytics build these rows, a
:class:`~db.writer.TableWriter` stores them through the same durable path as the snapshots.

One opportunity is written several times (when it opens, while it stays open, when it closes)
and any of those writes may be retried, spilled, or replayed out of order after an outage. The
upsert therefore only ever moves a row *forward*: a state replaces the stored one when it has
seen more ticks, or the same ticks and is the close of an open row. A stored close is final;
the one exception is a close made by the start-up recovery (``shutdown`` at ``last_seen_at``),
which a later state of the crashed run, loaded from its spill files, may still extend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from db.tables import staged_table

if TYPE_CHECKING:
    import asyncpg

TABLE = "arbitrage_opportunities"

#: (symbol_base, symbol_quote, buy_exchange, sell_exchange, opened_at, closed_at or None,
#:  open_net_pct, max_net_pct, max_gross_pct, buy_price_at_max, sell_price_at_max (exact
#:  strings), size_at_max (exact string or None), max_profit_quote (float or None), max_at,
#:  last_seen_at, ticks, close_reason or None); datetimes UTC-aware
LedgerRow = tuple[
    str,
    str,
    str,
    str,
    datetime,
    datetime | None,
    float,
    float,
    float,
    str,
    str,
    str | None,
    float | None,
    datetime,
    datetime,
    int,
    str | None,
]

COLUMN_TYPES = (
    ("symbol_base", "text"),
    ("symbol_quote", "text"),
    ("buy_exchange", "text"),
    ("sell_exchange", "text"),
    ("opened_at", "timestamptz"),
    ("closed_at", "timestamptz"),
    ("open_net_pct", "float8"),
    ("max_net_pct", "float8"),
    ("max_gross_pct", "float8"),
    ("buy_price_at_max", "numeric"),
    ("sell_price_at_max", "numeric"),
    ("size_at_max", "numeric"),
    ("max_profit_quote", "numeric"),
    ("max_at", "timestamptz"),
    ("last_seen_at", "timestamptz"),
    ("ticks", "int4"),
    ("close_reason", "text"),
)
COLUMNS = tuple(name for name, _type in COLUMN_TYPES)
KEY = ("symbol_base", "symbol_quote", "buy_exchange", "sell_exchange", "opened_at")

#: (payload, rows encoded, reasons of the rows left out)
Encoded = tuple[bytes, int, list[str]]


def _field(value: object) -> str:
    """One CSV field; raises ValueError for what COPY could misread."""
    if value is None:
        return ""  # NULL
    if isinstance(value, str):
        if not value or any(ch in value for ch in ',"\r\n'):
            raise ValueError(f"field {value!r:.60} is not a plain string")
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value} has no time zone")
        return value.isoformat()
    if isinstance(value, bool):
        raise ValueError(f"unexpected boolean {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"number {value!r} is not finite")
        return repr(value)
    raise ValueError(f"unexpected {type(value).__name__} {value!r:.60}")


def encode_ledger_rows(rows: Iterable[LedgerRow]) -> Encoded:
    """CSV for COPY, one line per row; malformed rows are left out with their reason."""
    lines: list[str] = []
    rejected: list[str] = []
    for row in rows:
        try:
            if not isinstance(row, tuple) or len(row) != len(COLUMNS):
                raise ValueError(f"not a {len(COLUMNS)}-tuple")
            lines.append(",".join(_field(value) for value in row) + "\n")
        except ValueError as exc:
            rejected.append(f"{exc}: {row!r:.200}")
    return "".join(lines).encode("utf-8", "surrogatepass"), len(lines), rejected


_NEWER = """
ON CONFLICT (symbol_base, symbol_quote, buy_exchange, sell_exchange, opened_at) DO UPDATE SET
    closed_at = CASE WHEN EXCLUDED.closed_at IS NOT NULL THEN EXCLUDED.closed_at
                     WHEN t.closed_at IS NOT NULL THEN EXCLUDED.last_seen_at END,
    close_reason = COALESCE(EXCLUDED.close_reason, t.close_reason),
    open_net_pct = EXCLUDED.open_net_pct,
    max_net_pct = EXCLUDED.max_net_pct,
    max_gross_pct = EXCLUDED.max_gross_pct,
    buy_price_at_max = EXCLUDED.buy_price_at_max,
    sell_price_at_max = EXCLUDED.sell_price_at_max,
    size_at_max = EXCLUDED.size_at_max,
    max_profit_quote = EXCLUDED.max_profit_quote,
    max_at = EXCLUDED.max_at,
    last_seen_at = EXCLUDED.last_seen_at,
    ticks = EXCLUDED.ticks
WHERE EXCLUDED.ticks > t.ticks
   OR (EXCLUDED.ticks = t.ticks AND t.closed_at IS NULL AND EXCLUDED.closed_at IS NOT NULL)
   OR (EXCLUDED.ticks = t.ticks AND t.close_reason = 'shutdown'
       AND EXCLUDED.close_reason IN ('converged', 'stale'))
"""

#: ``arbitrage_opportunities``: one row per opportunity, moved forward by each newer state
OPPORTUNITIES = staged_table(
    TABLE,
    COLUMN_TYPES,
    on_conflict=_NEWER,
    encode=encode_ledger_rows,
    distinct_on=KEY,
    # the same order as the WHERE above: more ticks, then closed, then a real close reason
    newest_first='"ticks" DESC, ("closed_at" IS NOT NULL) DESC, '
    "(\"close_reason\" = 'shutdown') ASC",
)

_CLOSE_ORPHANS = f"""
UPDATE {TABLE} SET closed_at = last_seen_at, close_reason = 'shutdown'
WHERE closed_at IS NULL AND opened_at < $1
  AND buy_exchange = ANY($2::text[]) AND sell_exchange = ANY($2::text[])
"""


async def close_orphans(conn: asyncpg.Connection, before: datetime, venues: Sequence[str]) -> int:
    """Close the rows an earlier run between ``venues`` left open (it crashed, or was killed)
    as ``shutdown`` at the last tick they were seen; returns how many. Rows opened from
    ``before`` on belong to this run and are left alone."""
    status = await conn.execute(_CLOSE_ORPHANS, before, list(venues))
    return int(status.rsplit(" ", 1)[-1])
