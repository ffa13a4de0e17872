"""What a :class:`db.writer.TableWriter` needs to know about the table it writes.

Every table goes the same durable path (memory, spill files, retries, staging table): rows are
COPYed as CSV into a temporary staging table and moved into the table by one
``INSERT ... SELECT ... ON CONFLICT`` in the same transaction, so a retried batch is never
stored twice. The ON CONFLICT clause is the table's own: ``DO NOTHING`` for snapshots, an
upsert (``DO UPDATE``) for a ledger keyed on something else. Imports no database driver.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from db.rows import COLUMNS, encode_rows

#: rows -> (CSV payload with one line per row in ``columns`` order, rows encoded, reasons of
#: the malformed rows left out)
Encoder = Callable[[Sequence[Any]], tuple[bytes, int, list[str]]]


@dataclass(frozen=True)
class TableSpec:
    #: the table rows end up in
    name: str
    #: CSV field order of the encoder, as COPY column list
    columns: tuple[str, ...]
    #: temporary table the CSV is COPYed into
    staging: str
    #: ``CREATE TEMP TABLE IF NOT EXISTS <staging> ... ON COMMIT DELETE ROWS``
    staging_ddl: str
    #: moves the staging rows into the table; its status tag counts the rows it stored
    insert: str
    encode: Encoder
    #: spill file names of this table start with this, so that a directory shared by mistake
    #: never feeds one table's files into another
    spill_prefix: str


def staged_table(
    name: str,
    columns: Sequence[tuple[str, str]],
    *,
    on_conflict: str,
    encode: Encoder,
    spill_prefix: str | None = None,
    distinct_on: Sequence[str] = (),
    newest_first: str = "",
) -> TableSpec:
    """A spec from ``(column, staging type)`` pairs and the INSERT's ON CONFLICT clause.

    An upsert (``DO UPDATE``) may not touch one row twice in a statement, so a table whose
    batches can hold several states of one key names that key in ``distinct_on``: only the
    first row per key in ``newest_first`` order (an ORDER BY list) is inserted.
    """
    names = tuple(column for column, _type in columns)
    quoted = ", ".join(f'"{c}"' for c in names)
    staging = f"_{name}_staging"
    fields = ", ".join(f'"{column}" {sql_type}' for column, sql_type in columns)
    select = f"SELECT {quoted} FROM pg_temp.{staging}"
    if distinct_on:
        key = ", ".join(f'"{c}"' for c in distinct_on)
        order = f"{key}, {newest_first}" if newest_first else key
        select = f"SELECT DISTINCT ON ({key}) {quoted} FROM pg_temp.{staging} ORDER BY {order}"
    return TableSpec(
        name=name,
        columns=names,
        staging=staging,
        staging_ddl=f"CREATE TEMP TABLE IF NOT EXISTS {staging} ({fields}) ON COMMIT DELETE ROWS",
        insert=f"INSERT INTO {name} AS t ({quoted}) {select} {on_conflict}",
        encode=encode,
        spill_prefix=f"{name}-" if spill_prefix is None else spill_prefix,
    )


_SNAPSHOT_TYPES = dict.fromkeys(COLUMNS[:3], "text") | {
    "bid_price": "numeric",
    "bid_qty": "numeric",
    "ask_price": "numeric",
    "ask_qty": "numeric",
    "timestamp": "timestamptz",
    "exchange_time": "timestamptz",
}

#: ``book_ticker_snapshots``: one row per venue, pair and tick; a row already stored is skipped
SNAPSHOTS = staged_table(
    "book_ticker_snapshots",
    [(column, _SNAPSHOT_TYPES[column]) for column in COLUMNS],
    on_conflict='ON CONFLICT (exchange, symbol_base, symbol_quote, "timestamp") DO NOTHING',
    encode=encode_rows,
    # unprefixed: the names spill files had before tables were told apart
    spill_prefix="",
)
