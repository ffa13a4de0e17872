"""``--archive``, ``--query`` and the storage part of ``--status``, run as a user runs them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.cli_process import run_cli, write_config
from tests.pg import PgDatabase
from tests.storage_helpers import three_homes

COUNT = "SELECT exchange, count(*) AS n FROM book_ticker_snapshots GROUP BY 1 ORDER BY 1"


async def prepared(tmp_path: Path, pg_database: PgDatabase) -> tuple[Path, list[tuple]]:
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        rows = await three_homes(conn, tmp_path, datetime.now(UTC).date())
    finally:
        await conn.close()
    config = write_config(
        tmp_path / "etc",
        f'database: {{dsn: "{pg_database.dsn}", retention_days: 3}}\n'
        'archive: {dir: "./parquet"}\n'  # disabled: --archive runs anyway
        "monitoring: {enabled: false}\n",
    )
    return config, rows


@pytest.mark.slow
async def test_archive_then_query_and_status(tmp_path: Path, pg_database: PgDatabase) -> None:
    config, rows = await prepared(tmp_path, pg_database)
    today = datetime.now(UTC).date()
    archived = run_cli("--config", str(config), "--archive", cwd=tmp_path)
    assert archived.returncode == 0, archived.stderr
    out = archived.stdout
    assert f"Archive run into {tmp_path / 'etc' / 'parquet'}" in out
    for days_ago in (5, 4, 3):
        day = today - timedelta(days=days_ago)
        assert re.search(rf"book_ticker_snapshots {day}: \d+ rows verified", out), out
    assert f"dropped {today - timedelta(days=5)} from PostgreSQL" in out
    assert out.rstrip().endswith("Result: ok")
    assert "[ARCHIVE]" in archived.stderr and "[ARCHIVE]" not in out  # logs on stderr
    assert any((tmp_path / "etc" / "parquet" / "book_ticker_snapshots").rglob("*.parquet"))

    per_exchange: dict[str, int] = {}
    for row in rows:
        per_exchange[row[0]] = per_exchange.get(row[0], 0) + 1
    # the formats themselves are tested in test_tabular.py; here: both tiers, once each
    as_json = run_cli("--config", str(config), "--query", COUNT, "--format", "json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [
        {"exchange": e, "n": n} for e, n in sorted(per_exchange.items())
    ]
    prices = run_cli(
        "--config", str(config),
        "--query", "SELECT bid_price FROM book_ticker_snapshots WHERE bid_price = '80535.880'",
        cwd=tmp_path,
    )  # fmt: skip
    lines = prices.stdout.splitlines()
    assert lines[0] == "bid_price" and set(lines[1]) == {"-"}
    assert set(lines[2:-1]) == {"80535.880"} and lines[-1] == f"({len(lines) - 3} rows)"

    status = run_cli("--config", str(config), "--status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    report = status.stdout
    assert re.search(r"partitions:\s+\d+", report), report
    assert re.search(r"book_ticker_snapshots_default\s+rows no other partition covers", report)
    assert re.search(rf"book_ticker_snapshots_p{today:%Y%m%d}\s+{today}\s+1 day\s+12 rows", report)
    assert re.search(
        r"book_ticker_snapshots\s+3 days \(.*\), \d{2,} rows, [\d,]+ bytes \([\d.]+ bytes/row\)",
        report,
    ), report


async def test_a_bad_query_is_one_line_and_exit_2(tmp_path: Path, pg_database: PgDatabase) -> None:
    config = write_config(
        tmp_path, f'database: {{dsn: "{pg_database.dsn}"}}\nmonitoring: {{enabled: false}}\n'
    )
    bad = run_cli("--config", str(config), "--query", "SELEC 1", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "--query: Parser Error" in bad.stderr
    empty = run_cli("--config", str(config), "--query", " ", cwd=tmp_path)
    assert empty.returncode == 2
    assert empty.stderr.strip().splitlines() == [
        "config error: --query: empty; give an SQL statement, e.g. "
        '--query "SELECT count(*) FROM book_ticker_snapshots"'
    ]
