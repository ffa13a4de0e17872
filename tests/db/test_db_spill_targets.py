"""Spill files belong to the database they were meant for: target ids, per-target directories,
what is kept for other targets and for the old flat layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from db.spill import SpillDirectoryError, SpillStore
from db.spill_targets import (
    inventory,
    prepare_target,
    table_spill_dir,
    target_of_dsn,
    target_of_embedded,
)

LINES = b"mexc,BTC,USDT,1,2,3,4,2024-05-01T12:00:00+00:00,\n"
A = "postgresql://collector:Sup3r-S3cret-pw@db-a.example:5432/cex"


def test_a_target_is_its_host_port_database_and_user_never_the_password() -> None:
    a = target_of_dsn(A)
    assert a == target_of_dsn("host=db-a.example user=collector dbname=cex password=other")
    assert a.label == "collector@db-a.example:5432/cex"
    assert "Sup3r" not in a.label and len(a.id) == 12
    others = {
        target_of_dsn(A.replace("/cex", "/cex2")).id,
        target_of_dsn(A.replace(":5432", ":5433")).id,
        target_of_dsn(A.replace("db-a", "db-b")).id,
        target_of_dsn(A.replace("collector:", "reader:")).id,
    }
    assert a.id not in others and len(others) == 4


def test_the_embedded_server_is_known_by_its_data_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    here = target_of_embedded(Path("data/postgres"))
    assert here == target_of_embedded(tmp_path / "data" / "postgres")
    assert here.label == f"embedded PostgreSQL in {tmp_path / 'data' / 'postgres'}"
    assert here.id != target_of_embedded(tmp_path / "elsewhere" / "postgres").id
    assert here.id != target_of_dsn("postgresql://postgres@/postgres").id


def spill(root: Path, target, table: str, rows: int) -> Path:
    return SpillStore(table_spill_dir(root, target, table)).write(LINES * rows)


def test_inventory_and_the_start_up_notice_name_what_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "spill"
    a, embedded = target_of_dsn(A), target_of_embedded(tmp_path / "postgres")
    prepare_target(root, a)
    spill(root, a, "book_ticker_snapshots", 3)
    spill(root, a, "book_ticker_snapshots", 2)
    SpillStore(root).write(LINES * 4)  # a file of the old flat layout
    with capture_logs() as logs:
        prepare_target(root, embedded)  # the next run uses the embedded server
    assert (root / embedded.id / "target.txt").read_text() == f"{embedded.label}\n"
    assert [(e["event"], e["files"]) for e in logs] == [
        ("spill_files_unknown_target", 1),
        ("spill_files_other_database", 2),
    ]
    assert logs[1]["target"] == a.label and "Sup3r" not in repr(logs)

    found = inventory(root, embedded)
    assert [(g.target, g.table, g.files, g.rows, g.current) for g in found.groups] == [
        (None, None, 1, 4, False),
        (a, "book_ticker_snapshots", 2, 5, False),
    ]
    assert found.groups[1].directory == table_spill_dir(root, a, "book_ticker_snapshots")
    mine = inventory(root, a)
    assert [g.current for g in mine.groups] == [False, True]
    assert [g.target for g in mine.kept()] == [None]


def test_no_spill_directory_yet(tmp_path: Path) -> None:
    assert inventory(tmp_path / "nothing", None).groups == []


def test_an_unwritable_target_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")
    with pytest.raises(SpillDirectoryError, match=r"spill directory .*/data/spill/.* is unusable"):
        prepare_target(tmp_path / "data" / "spill", target_of_dsn(A))
