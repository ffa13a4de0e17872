"""The DuckDB side of the archive: load a day's rows as PostgreSQL printed them (CSV), write the
rows the archive lacks as sorted zstd Parquet, read files back into counts and checksums.

DuckDB runs in-process from its wheel, which has Parquet and ICU (time zones) built in: no
extension is ever downloaded (autoinstall and autoload are off). Every call blocks; the
collector runs them in a worker thread. Imports no PostgreSQL driver.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from db.archive_schema import ArchivedTable, Column, duck_fingerprint, quote

PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd"
#: hive directory values we write (exchange names): safe in any file system and URL
_SAFE_VALUE = re.compile(r"[a-z0-9][a-z0-9_.-]*")

#: called with each file right after it was written (tests inject failures here)
FileHook = Callable[[Path], None]


@dataclass(frozen=True)
class Summary:
    rows: int
    checksum: int


@dataclass(frozen=True)
class ReadBack:
    """What a set of archive files holds."""

    #: every row of the files
    total: Summary
    #: the rows whose key is among the loaded source rows
    matching: Summary
    #: distinct keys over every row (fewer than ``total.rows``: a row is archived twice)
    keys: int


def connect(
    *, threads: int | None = None, temp_dir: Path | None = None, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB in UTC that never fetches extensions; past ``memory_limit``
    ("1GB") it spills to ``temp_dir``."""
    con = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if temp_dir is not None:
        con.execute(f"SET temp_directory = {literal(str(temp_dir))}")
    if memory_limit is not None:
        con.execute(f"SET memory_limit = {literal(memory_limit)}")
    return con


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_csv(
    con: duckdb.DuckDBPyConnection,
    table: str,
    path: Path | Sequence[Path],
    columns: Sequence[Column],
) -> int:
    """Load PostgreSQL's CSV (``COPY ... TO STDOUT (FORMAT csv)``, one file or several) into
    ``table``, typed; return its rows. An unquoted empty field is NULL, a quoted one an empty
    string."""
    paths = [str(path)] if isinstance(path, Path) else [str(p) for p in path]
    types = {c.name: c.duck_type for c in columns}
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT * FROM read_csv(?, columns = ?, "
        "header = false, auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        "nullstr = '', allow_quoted_nulls = false)",
        [paths, types],
    )
    return _scalar(con, f"SELECT count(*) FROM {quote(table)}")


def read_files(spec: ArchivedTable, columns: Sequence[Column], files: Sequence[Path]) -> str:
    """A subquery over archive files, with the table's columns (the split column comes from
    the hive path)."""
    paths = ", ".join(literal(str(p)) for p in files)
    hive = "hive_partitioning = true, union_by_name = true"
    if spec.split_by:
        hive += f", hive_types = {{{literal(spec.split_by)}: 'VARCHAR'}}"
    cols = ", ".join(c.quoted for c in columns)
    return f"(SELECT {cols} FROM read_parquet([{paths}], {hive}))"


def write_missing(
    con: duckdb.DuckDBPyConnection,
    spec: ArchivedTable,
    columns: Sequence[Column],
    *,
    source: str,
    existing: Sequence[Path],
    staging: Path,
    name: str,
    after_write: FileHook | None = None,
) -> list[Path]:
    """Write the rows of ``source`` whose key no ``existing`` file holds, one sorted file per
    ``split_by`` value under ``staging``; return the files written."""
    keys = ", ".join(quote(k) for k in spec.key)
    rows = quote(source)
    if existing:
        rows = "_missing"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _missing AS SELECT * FROM {quote(source)} "
            f"ANTI JOIN {read_files(spec, columns, existing)} a USING ({keys})"
        )
    stored = ", ".join(c.quoted for c in columns if c.name != spec.split_by)
    order = ", ".join(quote(c) for c in spec.sort)
    targets: list[tuple[str, Path]] = []
    if spec.split_by is None:
        if _scalar(con, f"SELECT count(*) FROM {rows}"):
            targets.append(("TRUE", staging / f"part-{name}.parquet"))
    else:
        split = quote(spec.split_by)
        for (value,) in con.execute(f"SELECT DISTINCT {split} FROM {rows} ORDER BY 1").fetchall():
            if not isinstance(value, str) or not _SAFE_VALUE.fullmatch(value):
                raise ValueError(f"{spec.split_by} value {value!r} cannot name a directory")
            where = f"{split} = {literal(value)}"
            targets.append((where, staging / f"{spec.split_by}={value}" / f"part-{name}.parquet"))
    written: list[Path] = []
    for where, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"COPY (SELECT {stored} FROM {rows} WHERE {where} ORDER BY {order}) "
            f"TO {literal(str(target))} ({PARQUET_OPTIONS})"
        )
        written.append(target)
        if after_write is not None:
            after_write(target)
    return written


def read_back(
    con: duckdb.DuckDBPyConnection,
    spec: ArchivedTable,
    columns: Sequence[Column],
    files: Sequence[Path],
    *,
    source: str,
) -> ReadBack:
    """Count and checksum ``files`` as read from disk, in all and for the keys of ``source``."""
    if not files:
        return ReadBack(Summary(0, 0), Summary(0, 0), 0)
    keys = ", ".join(quote(k) for k in spec.key)
    row = con.execute(
        f"""SELECT count(*), coalesce(sum(fp), 0),
                   count(*) FILTER (WHERE matched), coalesce(sum(fp) FILTER (WHERE matched), 0),
                   count(DISTINCT row({keys}))
            FROM (SELECT {duck_fingerprint(columns)} AS fp, {keys}, s.matched
                  FROM {read_files(spec, columns, files)} f
                  LEFT JOIN (SELECT DISTINCT {keys}, true AS matched FROM {quote(source)}) s
                  USING ({keys}))"""
    ).fetchone()
    assert row is not None
    return ReadBack(Summary(row[0], int(row[1])), Summary(row[2], int(row[3])), row[4])


def footer_rows(con: duckdb.DuckDBPyConnection, files: Sequence[Path]) -> int:
    """Rows of ``files`` from their Parquet footers (no data read)."""
    if not files:
        return 0
    paths = ", ".join(literal(str(p)) for p in files)
    return _scalar(con, f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata([{paths}])")


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    assert row is not None
    return int(row[0])
