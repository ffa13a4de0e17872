"""Storage lifecycle benchmark, runnable on its own:

    python -m bench.storage_bench [--rows 10000000]

1. Migration 003 of a plain ``book_ticker_snapshots`` holding ``--rows`` rows (the seed's 20
   pairs x 2 venues, one row each per second, realistic decimal strings), timed.
2. Bytes per row in each tier: PostgreSQL before (plain table, ``id`` primary key) and after
   (the migrated partition), and the Parquet archive.
3. The archive run over those days (export, verify), timed.
4. Parquet types for prices and sizes compared on the same rows.
5. Tick lateness of a snapshot scheduler (SnapshotScheduler.stats) with and without the
   archive job running in its child process, as in the collector.
6. The writer against a bare COPY into the partitioned table (bench/writer_bench.py).

Writes its section of bench/RESULTS.md (between the storage markers; ``python -m bench``
keeps it) and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import storage_data as data
from bench import writer_bench
from bench.common import BENCH_DIR, percentiles
from data_collector.logsetup import configure_logging
from data_collector.storage_job import JOB_DUCKDB_MEMORY, JOB_DUCKDB_THREADS, run_in_child
from db.archive_layout import ArchiveLayout
from db.maintenance import MaintenanceSettings, run_maintenance_blocking
from db.migrations import apply_migrations, migration_files
from db.pool import connect

RESULTS = BENCH_DIR / "RESULTS.md"
BEGIN, END = "<!-- storage:begin -->", "<!-- storage:end -->"
SCHEMA = "storage_bench"


def log(message: str) -> None:
    print(f"[storage {time.strftime('%H:%M:%S')}] {message}", flush=True)


async def migrate_case(dsn: str, rows: int, tmp: Path) -> dict[str, object]:
    conn = await connect(dsn, command_timeout=None)
    try:
        await apply_migrations(conn, _migrations_up_to(tmp, "001"))
        log(f"case 1: filling the plain table with {rows:,} rows")
        t0 = time.perf_counter()
        filled = await data.fill_old_table(conn, rows, data.utc_midnight(data.days_back(6)), log)
        fill_s = time.perf_counter() - t0
        await conn.execute("VACUUM ANALYZE book_ticker_snapshots")
        before = await data.table_bytes(conn, "book_ticker_snapshots")
        before_idx = await data.index_bytes(conn, "book_ticker_snapshots")
        log("case 1: migration 003")
        t0 = time.perf_counter()
        # up to 004: the figures are those of 003 (005's index: README, "Storage")
        applied = await apply_migrations(conn, _migrations_up_to(tmp, "004"))
        migrate_s = time.perf_counter() - t0
        after = await data.table_bytes(conn, "book_ticker_snapshots_legacy")
        after_idx = await data.index_bytes(conn, "book_ticker_snapshots_legacy")
        count = await conn.fetchval("SELECT count(*) FROM book_ticker_snapshots")
    finally:
        await conn.close()
    return {
        "rows": filled, "fill_s": fill_s, "migrate_s": migrate_s, "applied": applied,
        "count_after": count, "before": before, "after": after,
        "before_idx": before_idx, "after_idx": after_idx,
    }  # fmt: skip


def _migrations_up_to(tmp: Path, last: str) -> Path:
    """A directory with the project's migrations up to ``last`` (its number) only."""
    directory = tmp / f"migrations-{last}"
    directory.mkdir()
    for _version, path in migration_files():
        if path.name[:3] <= last:
            shutil.copy(path, directory)
    return directory


async def archive_case(dsn: str, archive: Path) -> dict[str, object]:
    log("case 3: archive run over every completed day")
    settings = MaintenanceSettings(archive_enabled=True, archive_dir=archive, after_days=2)
    t0 = time.perf_counter()
    report = await asyncio.to_thread(run_maintenance_blocking, dsn, settings, data.days_back(0))
    seconds = time.perf_counter() - t0
    days = [d for d in report.archived if d.verified]
    return {
        "ok": report.ok, "seconds": seconds, "days": len(days),
        "rows": sum(d.source_rows for d in days), "bytes": sum(d.bytes for d in days),
        "full_day": max(days, key=lambda d: d.source_rows) if days else None,
    }  # fmt: skip


async def lateness_case(dsn: str, archive: Path) -> dict[str, object]:
    log("case 5: tick lateness, first alone, then beside the archive job")
    alone, missed_alone = await data.tick_lateness(0.1, lambda: False, 10.0)
    shutil.rmtree(archive, ignore_errors=True)  # the job has everything to export again
    settings = MaintenanceSettings(
        archive_enabled=True,
        archive_dir=archive,
        duckdb_threads=JOB_DUCKDB_THREADS,
        duckdb_memory=JOB_DUCKDB_MEMORY,
    )
    job = asyncio.ensure_future(run_in_child(dsn, settings, data.days_back(0)))
    t0 = time.perf_counter()
    beside, missed_beside = await data.tick_lateness(0.1, job.done, 600.0)
    job_s = time.perf_counter() - t0
    report = await job
    return {
        "alone": percentiles(alone), "beside": percentiles(beside), "ticks": (len(alone),
        len(beside)), "missed": (missed_alone, missed_beside), "job_s": job_s, "ok": report.ok,
    }  # fmt: skip


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def section(m: dict, a: dict, enc: list, lat: dict, writer) -> str:  # type: ignore[type-arg]
    rows = m["rows"]
    b, af = m["before"], m["after"]
    parquet_per_row = a["bytes"] / a["rows"] if a["rows"] else float("nan")
    idx_before = ", ".join(f"{k} {v / rows:.1f}" for k, v in sorted(m["before_idx"].items()))
    idx_after = ", ".join(f"{k} {v / rows:.1f}" for k, v in sorted(m["after_idx"].items()))
    full = a["full_day"]
    lines = [
        BEGIN,
        "## 8. Storage lifecycle: partitions, migration, Parquet archive",
        "",
        f"Generated by `python -m bench.storage_bench --rows {rows}` on "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC (embedded PostgreSQL 16, "
        "DuckDB; the seed's 20 pairs x 2 venues, one row each per second, realistic strings).",
        "",
        "| measure | result |",
        "|---|---|",
        f"| migration 003 of {rows:,} rows (plain table -> partitioned) | "
        f"{m['migrate_s']:.1f} s, {m['count_after']:,} rows after, none lost or doubled |",
        f"| PostgreSQL before (plain table, id primary key) | {b['total'] / rows:.1f} bytes/row "
        f"(heap {b['heap'] / rows:.1f}, indexes {b['indexes'] / rows:.1f}: {idx_before}) |",
        f"| PostgreSQL after (partition; no id index) | {af['total'] / rows:.1f} bytes/row "
        f"(heap {af['heap'] / rows:.1f}, indexes {af['indexes'] / rows:.1f}: {idx_after}) |",
        f"| Parquet archive (zstd, exact strings) | {parquet_per_row:.1f} bytes/row "
        f"({a['rows']:,} rows in {_mb(a['bytes'])}) |",
        f"| archive run: export, write, verify ({a['days']} days) | {a['seconds']:.1f} s, "
        f"{a['rows'] / a['seconds']:,.0f} rows/s, with 2 DuckDB threads |",
    ]
    if full is not None:
        lines.append(
            f"| one full day ({full.source_rows:,} rows) in Parquet | {_mb(full.bytes)}, "
            f"{full.bytes / full.source_rows:.1f} bytes/row |"
        )
    lines += ["", "Parquet types for prices and sizes, same rows of one day:", ""]
    lines += ["| type of bid_price, bid_qty, ask_price, ask_qty | bytes/row | of which the 4 "]
    lines[-1] += "columns | file size |"
    lines += ["|---|---|---|---|"]
    lines += [
        f"| {label} | {size / n:.2f} | {numeric / n:.2f} | {_mb(size)} |"
        for label, size, numeric, n in enc
    ]
    if full is not None:
        per_col = a["columns"]
        lines += ["", "Where the bytes of that day go (bytes/row per column, exact strings):", ""]
        lines += ["| " + " | ".join(per_col) + " |", "|" + "---|" * len(per_col)]
        lines += ["| " + " | ".join(f"{v / full.source_rows:.2f}" for v in per_col.values()) + " |"]
    al, be = lat["alone"], lat["beside"]
    lines += [
        "",
        "Tick lateness of a SnapshotScheduler (0.1 s ticks, 40 quotes) from its stats:",
        "",
        "| | ticks | p50 ms | p99 ms | max ms | missed |",
        "|---|---|---|---|---|---|",
        f"| alone | {lat['ticks'][0]} | {al['p50']:.2f} | {al['p99']:.2f} | {al['max']:.2f} | "
        f"{lat['missed'][0]} |",
        f"| beside the archive job ({lat['job_s']:.0f} s; child process at nice 10, 1 DuckDB "
        "thread, as in the collector) | "
        f"{lat['ticks'][1]} | {be['p50']:.2f} | {be['p99']:.2f} | {be['max']:.2f} | "
        f"{lat['missed'][1]} |",
        "",
        "Writer into the partitioned table (rows routed to a daily partition) against a bare "
        "COPY of the same rows (case 3's method):",
        "",
        "| rows | writer / bare COPY |",
        "|---|---|",
    ]
    lines += [f"| {n:,} | {ratio:.2f} |" for n, ratio in writer]
    lines += [
        "",
        f"- Filling the plain table took {m['fill_s']:.0f} s (INSERT ... SELECT in "
        "PostgreSQL). Migration 003 attaches the old table as one partition: it renames, "
        "drops the id primary key and validates the range in one scan, copying no row.",
        "- PostgreSQL bytes are pg_table_size (heap with its TOAST and free-space maps) and "
        "pg_indexes_size after VACUUM; Parquet bytes are the files' sizes.",
        "- Run in a thread of the scheduler's process instead of a child process, the same "
        "job made the scheduler miss 44 ticks of 0.1 s (max lateness 492 ms): DuckDB holds "
        "Python's GIL for stretches of a Parquet write.",
        END,
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _m: text, current)
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    RESULTS.write_text(updated)


async def run(rows: int, tmp: Path) -> str:
    with writer_bench.database(str(tmp), log) as base:
        writer = await writer_case(base, tmp)
        dsn = await scratch(base)
        m = await migrate_case(dsn, rows, tmp)
        archive = tmp / "archive"
        a = await archive_case(dsn, archive)
        layout = ArchiveLayout(archive)
        full = a["full_day"]
        files = layout.day_files("book_ticker_snapshots", full.day) if full else []
        log("case 4: Parquet types")
        enc = data.compare_encodings(files, tmp)
        a["columns"] = data.bytes_per_column(files) if files else {}
        lat = await lateness_case(dsn, archive)
    return section(m, a, enc, lat, writer)


async def writer_case(dsn: str, tmp: Path) -> list[tuple[int, float]]:
    log("case 6: writer vs bare COPY into the partitioned table")
    result = await writer_bench.run_case(writer_bench.WriterSettings(), dsn, str(tmp), log)
    return [(int(k.split("_")[1]), v) for k, v in sorted(result.figures.items())]


async def scratch(base: str) -> str:
    """A schema of its own, so that nothing else's tables are counted."""
    conn = await connect(base)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    finally:
        await conn.close()
    return f"{base}{'&' if '?' in base else '?'}search_path={SCHEMA}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage_bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md")
    args = parser.parse_args()
    configure_logging("warning", "console", stream=sys.stderr)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cex-storage-bench-") as tmp:
        import uvloop

        text = uvloop.run(run(args.rows, Path(tmp)))
    print(text)
    if not args.no_write:
        write_section(text)
        log(f"wrote its section of {RESULTS}")
    log(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
