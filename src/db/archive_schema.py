"""What the archive holds and how a row is compared across PostgreSQL and Parquet. No driver.

**Types.** Each column keeps its PostgreSQL meaning in Parquet: ``text`` -> string,
``timestamptz`` -> timestamp (UTC, microseconds, PostgreSQL's own precision), integers,
booleans and ``double precision`` as such. ``numeric`` (prices, sizes) is stored as the
**exact decimal string** PostgreSQL prints ("80535.880"): a Parquet DECIMAL has one scale per
column, and a venue's sizes do not share one ("0.5", "0.125"), so a DECIMAL would give back
"0.500", a different value to anyone who compares text; and it saves little (README, "Storage
lifecycle"). Any other type is kept as its exact text. ``id`` (a surrogate of one database)
is not archived.

**Checksum.** A row's fingerprint is the first 60 bits of the MD5 of its values as text,
joined by U+001F (NULL as ``\\N``): every value as PostgreSQL prints it (``column::text``; the
exact decimal string of a price), except timestamps, as whole microseconds since the epoch
(PostgreSQL's own precision, and cheap for both engines to print). A set of rows is summarised
by its count and the sum of the fingerprints (order-independent, so neither engine sorts).
PostgreSQL computes it over the rows it holds, DuckDB over the values read back from the
Parquet files (:func:`duck_text` prints them the same way), so equal checksums mean every
value came back exactly as PostgreSQL held it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: a row's fields are joined with this before hashing (never in a venue string)
SEPARATOR_CODE = 31
NULL_MARK = "\\N"


@dataclass(frozen=True)
class ArchivedTable:
    """A table whose completed days are archived."""

    name: str
    #: a row belongs to the UTC day of this column
    time_column: str
    #: identifies a row in both tiers (the union view keeps one row per key)
    key: tuple[str, ...]
    #: row order inside a Parquet file
    sort: tuple[str, ...]
    #: hive level below ``date=``, e.g. ``exchange=mexc`` (that column is not in the files)
    split_by: str | None = None
    #: SQL condition every row of a day must meet before the day is exported (rows that can
    #: still change, like an opportunity still open, must not be archived yet)
    ready: str | None = None
    #: partitioned by day (retention drops partitions; other tables are only archived)
    partitioned: bool = False


SNAPSHOTS = ArchivedTable(
    name="book_ticker_snapshots",
    time_column="timestamp",
    key=("exchange", "symbol_base", "symbol_quote", "timestamp"),
    sort=("symbol_base", "symbol_quote", "timestamp"),
    split_by="exchange",
    partitioned=True,
)

OPPORTUNITIES = ArchivedTable(
    name="arbitrage_opportunities",
    time_column="opened_at",
    key=("symbol_base", "symbol_quote", "buy_exchange", "sell_exchange", "opened_at"),
    sort=("symbol_base", "symbol_quote", "buy_exchange", "sell_exchange", "opened_at"),
    ready="closed_at IS NOT NULL",
)

#: every table the archive knows, in the order they are archived; a table that does not
#: exist in the database is skipped
ARCHIVED_TABLES = (SNAPSHOTS, OPPORTUNITIES)
NOT_ARCHIVED = frozenset({"id"})

#: PostgreSQL type (format_type) -> DuckDB / Parquet type; anything else is kept as text
_DUCK_TYPES = {
    "text": "VARCHAR",
    "numeric": "VARCHAR",
    "timestamp with time zone": "TIMESTAMPTZ",
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "boolean": "BOOLEAN",
    "double precision": "DOUBLE",
}


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str

    @property
    def duck_type(self) -> str:
        if self.pg_type.startswith(("character varying", "numeric")):
            return "VARCHAR"
        return _DUCK_TYPES.get(self.pg_type, "VARCHAR")

    @property
    def quoted(self) -> str:
        return quote(self.name)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def archived_columns(columns: Sequence[Column]) -> list[Column]:
    return [c for c in columns if c.name not in NOT_ARCHIVED]


def pg_fingerprint(columns: Sequence[Column]) -> str:
    """PostgreSQL expression: the row's 60-bit fingerprint as a bigint."""
    parts = ", ".join(f"coalesce({pg_text(c)}, '{NULL_MARK}')" for c in columns)
    text = f"concat_ws(chr({SEPARATOR_CODE}), {parts})"
    return f"('x' || substr(md5({text}), 1, 15))::bit(60)::bigint"


def duck_fingerprint(columns: Sequence[Column]) -> str:
    """DuckDB expression: the same fingerprint from typed values (TimeZone must be UTC)."""
    parts = ", ".join(f"coalesce({duck_text(c)}, '{NULL_MARK}')" for c in columns)
    text = f"concat_ws(chr({SEPARATOR_CODE}), {parts})"
    return f"('0x' || substr(md5({text}), 1, 15))::BIGINT"


def pg_text(column: Column) -> str:
    """PostgreSQL expression: ``column`` as the fingerprint's text."""
    if column.duck_type == "TIMESTAMPTZ":
        # exact: extract(epoch) is numeric from PostgreSQL 14 on; round() covers older ones
        return f"round(extract(epoch FROM {column.quoted}) * 1000000)::bigint::text"
    return f"{column.quoted}::text"


def duck_text(column: Column) -> str:
    """DuckDB expression: ``column`` as :func:`pg_text` prints it."""
    name = column.quoted
    kind = column.duck_type
    if kind == "TIMESTAMPTZ":
        return f"epoch_us({name})::VARCHAR"
    if kind == "BOOLEAN":
        return f"(CASE WHEN {name} THEN 't' WHEN NOT {name} THEN 'f' END)"
    if kind == "DOUBLE":
        # both print the shortest exact digits; PostgreSQL drops DuckDB's ".0" of a whole
        # number. (From 1e15 to 1e16 PostgreSQL writes an exponent and DuckDB does not: such
        # a value fails the verification, which keeps the rows in PostgreSQL, never loses one.)
        return (
            f"(CASE WHEN isnan({name}) THEN 'NaN' "
            f"WHEN isinf({name}) THEN (CASE WHEN {name} > 0 THEN 'Infinity' ELSE '-Infinity' END) "
            f"ELSE regexp_replace({name}::VARCHAR, '\\.0$', '') END)"
        )
    if kind == "VARCHAR":
        return name
    return f"{name}::VARCHAR"
