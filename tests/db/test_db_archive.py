"""Export -> verify -> drop against a real PostgreSQL and real Parquet files."""

from __future__ import annotations

import errno
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import duckdb
import pytest

from db.archive_layout import ArchiveLayout
from db.archive_query import run_query
from db.archiver import ArchiveHooks
from db.maintenance import MaintenanceSettings, run_maintenance
from db.partitions import daily_name, list_partitions
from tests.storage_helpers import (
    DEFAULT_DAY,
    LEGACY_DAY,
    OPPORTUNITY_TEXT,
    PARTITION_DAY,
    TABLE,
    TODAY,
    all_rows,
    archived_rows,
    by_key,
    day_rows,
    in_days,
    insert_opportunities,
    insert_rows,
    opportunity_rows,
    three_homes,
)


def settings(tmp_path: Path, **overrides) -> MaintenanceSettings:
    values = {"archive_enabled": True, "archive_dir": tmp_path / "archive", "after_days": 2}
    return MaintenanceSettings(**(values | overrides))


async def test_export_verify_drop_keeps_every_value(pg_database, tmp_path) -> None:
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        before = await three_homes(conn, tmp_path)
        config = settings(tmp_path, retention_days=3)
        report = await run_maintenance(pg_database.dsn, config, TODAY)
        assert report.ok, report
        exported = {(o.day, o.status) for o in report.archived}
        assert exported == {(d, "exported") for d in (LEGACY_DAY, PARTITION_DAY, DEFAULT_DAY)}
        # compared decimal by decimal, as strings: "80535.880" is not "80535.88"
        old = in_days(before, LEGACY_DAY, PARTITION_DAY, DEFAULT_DAY)
        assert archived_rows(config.archive_dir) == old
        assert any(r[3] == "80535.880" for r in old) and any(r[4].endswith("0001") for r in old)
        # retention 3: the legacy and the partition day went; the default day stays
        assert {d.day for d in report.dropped} == {LEGACY_DAY, PARTITION_DAY}
        assert await all_rows(conn) == in_days(before, DEFAULT_DAY, TODAY)
        names = [p.name for p in await list_partitions(conn)]
        assert "book_ticker_snapshots_legacy" not in names
        assert daily_name(TABLE, PARTITION_DAY) not in names

        again = await run_maintenance(pg_database.dsn, config, TODAY)
        assert again.ok and again.archived == [] and again.dropped == []
        assert archived_rows(config.archive_dir) == old  # nothing written twice
    finally:
        await conn.close()


async def test_files_are_hive_laid_out_zstd_and_sorted(pg_database, tmp_path) -> None:
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        before = await three_homes(conn, tmp_path)
    finally:
        await conn.close()
    config = settings(tmp_path)
    assert (await run_maintenance(pg_database.dsn, config, TODAY)).ok
    layout = ArchiveLayout(config.archive_dir)
    day_dir = config.archive_dir / TABLE / f"date={DEFAULT_DAY.isoformat()}"
    files = layout.day_files(TABLE, DEFAULT_DAY)
    assert [p.parent.name for p in files] == ["exchange=gateio", "exchange=mexc", "exchange=okx"]
    assert all(p.parent.parent == day_dir and p.name.startswith("part-") for p in files)
    manifest = layout.manifest(TABLE, DEFAULT_DAY)
    assert manifest is not None and manifest.rows == manifest.source_rows == 12
    assert sorted(manifest.files) == [str(p.relative_to(day_dir)) for p in files]
    con = duckdb.connect()
    for path in files:
        meta = con.execute(
            "SELECT DISTINCT compression FROM parquet_metadata(?)", [str(path)]
        ).fetchall()
        assert meta == [("ZSTD",)]
        schema = con.execute("SELECT name FROM parquet_schema(?)", [str(path)]).fetchall()
        names = [r[0] for r in schema]
        assert "exchange" not in names and "id" not in names and "timestamp" in names
        order = con.execute(
            'SELECT symbol_base, symbol_quote, "timestamp" FROM read_parquet(?)', [str(path)]
        ).fetchall()
        assert order == sorted(order)
    assert len(in_days(before, DEFAULT_DAY)) == 12


class Crash(BaseException):
    """The process dies here (not an error the archiver could handle)."""


def _remove(paths: list[Path]) -> None:
    paths[0].unlink()


def _truncate(paths: list[Path]) -> None:
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) // 2])


def _same_number_other_text(paths: list[Path]) -> None:
    """Rewrite a staged file with every price one trailing zero longer: the same numbers,
    not the same values ("80535.880" -> "80535.8800")."""
    path = paths[0]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT * EXCLUDE (bid_price), CASE WHEN contains(bid_price, '.') "
        "THEN bid_price || '0' ELSE bid_price END AS bid_price "
        "FROM read_parquet(?, hive_partitioning = false)",
        [str(path)],
    )
    path.unlink()
    con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    con.close()


def _disk_full(path: Path) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", str(path))


@pytest.mark.parametrize(
    "hooks",
    [
        ArchiveHooks(after_write=_disk_full),
        ArchiveHooks(before_verify=_remove),
        ArchiveHooks(before_verify=_truncate),
        ArchiveHooks(before_verify=_same_number_other_text),
    ],
    ids=["disk-full", "file-removed-before-verification", "file-cut-short", "decimal-altered"],
)
async def test_a_failed_export_drops_nothing(pg_database, tmp_path, hooks, logs) -> None:
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        before = await three_homes(conn, tmp_path)
        config = settings(tmp_path, retention_days=3, hooks=hooks)
        report = await run_maintenance(pg_database.dsn, config, TODAY)
        assert not report.ok
        assert report.archived and all(o.status == "failed" for o in report.archived)
        assert report.dropped == []
        assert await all_rows(conn) == before  # every row still in PostgreSQL
        assert archived_rows(config.archive_dir) == []  # nothing published
        layout = ArchiveLayout(config.archive_dir)
        assert all(layout.manifest(TABLE, d) is None for d in (LEGACY_DAY, DEFAULT_DAY))
        assert not any((config.archive_dir / ".staging" / TABLE).rglob("*.parquet"))
        errors = {e["error"].split(":")[0] for e in logs if e["event"] == "archive_day_failed"}
        expected = {
            _disk_full: "OSError",
            _remove: "IOException",
            _truncate: "InvalidInputException",
            _same_number_other_text: "VerificationFailed",
        }
        assert errors == {expected[hooks.after_write or hooks.before_verify]}
    finally:
        await conn.close()


async def test_a_restart_mid_export_resumes_cleanly(pg_database, tmp_path) -> None:
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        before = await three_homes(conn, tmp_path)

        def die_after_first(path: Path) -> None:
            raise Crash(path)

        config = settings(tmp_path, retention_days=3)
        with pytest.raises(Crash):
            await run_maintenance(
                pg_database.dsn,
                settings(tmp_path, hooks=ArchiveHooks(after_publish=die_after_first)),
                TODAY,
            )
        layout = ArchiveLayout(config.archive_dir)
        assert len(layout.day_files(TABLE, LEGACY_DAY)) == 1  # one of two files made it
        assert layout.manifest(TABLE, LEGACY_DAY) is None
        # what a killed process leaves in the staging area
        stale = layout.staging_dir(TABLE, DEFAULT_DAY) / "exchange=mexc" / "part-x.parquet"
        stale.parent.mkdir(parents=True)
        stale.write_bytes(b"PAR1 cut short")

        report = await run_maintenance(pg_database.dsn, config, TODAY)
        assert report.ok, report
        first = next(o for o in report.archived if o.day == LEGACY_DAY)
        assert first.status == "exported" and 0 < first.new_rows < first.source_rows
        old = in_days(before, LEGACY_DAY, PARTITION_DAY, DEFAULT_DAY)
        assert archived_rows(config.archive_dir) == old  # every row once
        assert not stale.exists()
        assert await all_rows(conn) == in_days(before, DEFAULT_DAY, TODAY)
    finally:
        await conn.close()


async def test_rows_arriving_late_for_an_archived_day_are_added(pg_database, tmp_path) -> None:
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        before = await three_homes(conn, tmp_path)
        config = settings(tmp_path, retention_days=3)
        assert (await run_maintenance(pg_database.dsn, config, TODAY)).ok
        # a spill file from an old outage lands rows of a dropped and of a kept day
        late = day_rows(LEGACY_DAY, ticks=1, hour=23) + day_rows(DEFAULT_DAY, ticks=1, hour=22)
        await insert_rows(conn, late)
        late_text = await all_rows(conn, "\"timestamp\" < '2026-11-21'")
        report = await run_maintenance(pg_database.dsn, config, TODAY)
        assert report.ok, report
        assert {(o.day, o.new_rows) for o in report.archived} == {
            (LEGACY_DAY, 4),
            (DEFAULT_DAY, 4),
        }
        assert [d.day for d in report.dropped] == [LEGACY_DAY]
        layout = ArchiveLayout(config.archive_dir)
        assert len(layout.day_files(TABLE, LEGACY_DAY)) == 4  # a second part per exchange
        archived = archived_rows(config.archive_dir)
        assert in_days(archived, LEGACY_DAY) == sorted(
            in_days(before, LEGACY_DAY) + in_days(late_text, LEGACY_DAY), key=by_key
        )
        assert in_days(archived, DEFAULT_DAY) == in_days(late_text, DEFAULT_DAY)
        assert layout.manifest(TABLE, LEGACY_DAY).rows == 20
    finally:
        await conn.close()


async def test_retention_without_archive_needs_the_explicit_setting(
    pg_database, tmp_path, logs
) -> None:
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        before = await three_homes(conn, tmp_path)
        keep = MaintenanceSettings(archive_enabled=False, archive_dir=tmp_path / "unused")
        report = await run_maintenance(pg_database.dsn, keep, TODAY)
        assert report.ok and report.dropped == [] and await all_rows(conn) == before
        assert not (tmp_path / "unused").exists()

        drop = MaintenanceSettings(archive_enabled=False, retention_days=3)
        report = await run_maintenance(pg_database.dsn, drop, TODAY)
        assert report.ok
        assert {(d.day, d.rows) for d in report.dropped} == {(LEGACY_DAY, 16), (PARTITION_DAY, 30)}
        assert await all_rows(conn) == in_days(before, DEFAULT_DAY, TODAY)
        dropped = [e for e in logs if e["event"] == "partition_dropped" and "date" in e]
        assert {(e["date"], e["rows"], e["archived"]) for e in dropped} == {
            (LEGACY_DAY.isoformat(), 16, False),
            (PARTITION_DAY.isoformat(), 30, False),
        }
    finally:
        await conn.close()


def test_archive_dates_are_utc_days() -> None:
    assert datetime(2026, 11, 20, 23, 59, tzinfo=UTC).date() == DEFAULT_DAY


async def test_opportunities_are_archived_once_closed(migrated, tmp_path) -> None:
    closed_day, open_day = LEGACY_DAY, PARTITION_DAY
    conn = await asyncpg.connect(migrated.dsn)
    try:
        await insert_opportunities(
            conn, opportunity_rows(closed_day) + opportunity_rows(open_day, open_last=True)
        )
        order = "ORDER BY symbol_base, opened_at"
        expected = [
            tuple(r)
            for r in await conn.fetch(
                f"SELECT {OPPORTUNITY_TEXT} FROM arbitrage_opportunities "
                f"WHERE opened_at < '{open_day}' {order}"
            )
        ]
        total = await conn.fetchval("SELECT count(*) FROM arbitrage_opportunities")
    finally:
        await conn.close()
    config = settings(tmp_path)
    report = await run_maintenance(migrated.dsn, config, TODAY)
    assert report.ok, report
    statuses = {(o.table, o.day): o.status for o in report.archived}
    assert statuses == {
        ("arbitrage_opportunities", closed_day): "exported",
        ("arbitrage_opportunities", open_day): "not_ready",  # one is still open
    }
    [path] = ArchiveLayout(config.archive_dir).day_files("arbitrage_opportunities", closed_day)
    assert path.parent.name == f"date={closed_day}"  # no exchange level for this table
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    back = con.execute(
        f"SELECT {OPPORTUNITY_TEXT.replace('::text', '')} FROM read_parquet(?) {order}",
        [str(path)],
    ).fetchall()
    assert back == expected  # exact strings, doubles, times, NULLs
    result = await run_query(
        migrated.dsn, config.archive_dir, "SELECT count(*) FROM arbitrage_opportunities"
    )
    assert result.rows == [(total,)]  # archived and still in PostgreSQL: counted once
