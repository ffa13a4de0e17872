"""Spill files on a real file system: atomic writes, salvage of interrupted files, one table's
files never seen by another table's store."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from db.spill import SpillDirectoryError, SpillStore, count_rows, write_atomic

LINES = b"mexc,BTC,USDT,1,2,3,4,2024-05-01T12:00:00+00:00,\n" * 3


def test_write_is_complete_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = write_atomic(tmp_path / "new", "a.csv", LINES)
    assert path.read_bytes() == LINES
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["a.csv"]


def test_files_are_listed_oldest_first_and_deleted(tmp_path: Path) -> None:
    store = SpillStore(tmp_path)
    written = [store.write(LINES[: 50 * (i + 1)]) for i in range(3)]
    found = SpillStore(tmp_path).scan()  # a new store: what the next run sees
    assert found == written
    assert [count_rows(SpillStore.read(p)) for p in found] == [1, 2, 3]
    SpillStore.delete(found[0])
    SpillStore.delete(found[0])  # already gone: no error
    assert SpillStore(tmp_path).scan() == written[1:]


def test_an_interrupted_spill_is_cut_to_its_last_complete_line(tmp_path: Path) -> None:
    (tmp_path / ".00000000000000000001-000000.csv.tmp").write_bytes(LINES + b"mexc,ETH,US")
    (tmp_path / ".00000000000000000002-000000.csv.tmp").write_bytes(b"mexc,nothing-complete")
    with capture_logs() as logs:
        found = SpillStore(tmp_path).scan()
    assert [p.name for p in found] == ["00000000000000000001-000000.csv"]
    assert found[0].read_bytes() == LINES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000000000000000001-000000.csv"]
    salvaged = [e for e in logs if e["event"] == "writer_spill_salvaged"]
    assert sorted(e["rows"] for e in salvaged) == [0, 3]


def test_stores_of_two_tables_in_one_directory_never_see_each_others_files(
    tmp_path: Path,
) -> None:
    snapshots, ledger = SpillStore(tmp_path, ""), SpillStore(tmp_path, "ledger-")
    mine, theirs = snapshots.write(LINES), ledger.write(LINES[:50])
    interrupted = "ledger-99999999999999999999-000000.csv"
    (tmp_path / f".{interrupted}.tmp").write_bytes(LINES)
    assert snapshots.scan() == [mine]
    assert [p.name for p in ledger.scan()] == [theirs.name, interrupted]
    assert snapshots.scan() == [mine]


def test_a_directory_that_cannot_exist_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    store = SpillStore(blocker / "spill")
    with pytest.raises(OSError):
        store.scan()
    with pytest.raises(OSError):
        store.write(LINES)


def test_check_proves_the_directory_usable_and_leaves_nothing_behind(tmp_path: Path) -> None:
    store = SpillStore(tmp_path / "a" / "b")
    kept = SpillStore(tmp_path / "a" / "b").write(LINES)
    assert store.check() == [kept]
    assert list(store.directory.iterdir()) == [kept]


def test_check_names_an_unusable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SpillDirectoryError) as raised:
        SpillStore(blocker / "spill").check()
    assert str(raised.value) == f"spill directory {blocker / 'spill'} is unusable (Not a directory)"
