"""Reading recordings back: files in hour order, the hourly split, a cut last file, a crash
followed by a restart in the same hour."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_collector.recording.files import HOUR_NS, Pending, VenueFiles, hour_path
from data_collector.recording.format import (
    ENDED,
    FRAME,
    LINK_STATE,
    OPENED,
    U32,
    Record,
)
from data_collector.recording.reader import RecordingFile, read_records, select, venue_files
from tests.helpers import Log, events

HOUR = 500_000  # an hour since the epoch (2027-01-15T08:00Z)
T0 = HOUR * HOUR_NS


def frames(start_ns: int, n: int, step_ns: int = 1_000_000, tid: int = 1) -> list[Pending]:
    return [(FRAME, start_ns + i * step_ns, tid, 0, b"gateio-0", b'{"n":%d}' % i) for i in range(n)]


def write(root: Path, *batches: list[Pending]) -> None:
    files = VenueFiles(root, "gateio")
    for batch in batches:
        files.write(batch)
    files.close()


def payloads(records: list[Record]) -> list[bytes]:
    return [r.payload for r in records if r.kind == FRAME]


def test_records_go_to_the_file_of_their_hour_and_read_back_in_order(tmp_path: Path) -> None:
    opened: list[Pending] = [(OPENED, T0 + HOUR_NS - 5_000_000, 7, 0, b"gateio-0", b"")]
    batch = opened + frames(T0 + HOUR_NS - 4_000_000, 8)  # 4 in one hour, 4 in the next
    write(tmp_path, batch)
    files = venue_files(tmp_path, "gateio")
    assert [f.path for f in files] == [
        tmp_path / "gateio" / "2027-01-15" / "08.rec.zst",
        tmp_path / "gateio" / "2027-01-15" / "09.rec.zst",
    ]
    assert [f.hour for f in files] == [HOUR, HOUR + 1]
    got = list(read_records("gateio", files))
    assert payloads(got) == [b'{"n":%d}' % i for i in range(8)]
    # the second file opens with the link's state, so a replay can start there
    second = list(read_records("gateio", files[1:]))
    assert (second[0].kind, second[0].link, second[0].transport) == (LINK_STATE, "gateio-0", 7)
    assert U32.unpack(second[0].payload) == (0,)
    assert got[-1].kind == ENDED and got[-1].time_ns == got[-2].time_ns + 1


def test_other_names_are_ignored_and_days_sort_by_hour(tmp_path: Path) -> None:
    write(tmp_path, frames(T0 - 25 * HOUR_NS, 1), frames(T0, 1))
    (tmp_path / "gateio" / "notes").mkdir()
    (tmp_path / "gateio" / "2027-01-15" / "readme.txt").write_text("x")
    (tmp_path / "gateio" / "2027-01-15" / "24.rec.zst").write_bytes(b"")  # no such hour
    files = venue_files(tmp_path, "gateio")
    assert [f.hour for f in files] == [HOUR - 25, HOUR]
    assert venue_files(tmp_path, "mexc") == []


def test_select_starts_at_the_hour_of_from_and_ends_after_the_hour_of_until() -> None:
    files = [RecordingFile("mexc", h, Path(f"{h}")) for h in range(HOUR, HOUR + 5)]
    picked = select(files, from_ns=T0 + HOUR_NS + 5, until_ns=T0 + 2 * HOUR_NS + 5)
    assert [f.hour for f in picked] == [HOUR + 1, HOUR + 2, HOUR + 3]
    assert select(files, None, None) == files


def test_a_cut_last_file_is_read_up_to_the_cut_with_a_warning(tmp_path: Path, logs: Log) -> None:
    write(tmp_path, frames(T0, 50), frames(T0 + 10**9, 50))
    path = hour_path(tmp_path, "gateio", HOUR)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 30])  # into the second block
    got = list(read_records("gateio", venue_files(tmp_path, "gateio")))
    assert payloads(got) == [b'{"n":%d}' % i for i in range(50)]
    assert got[-1].kind == ENDED
    (warning,) = events(logs, "recording_truncated")
    assert warning["file"] == str(path) and warning["log_level"] == "warning"


def test_a_crash_then_a_restart_in_the_same_hour_loses_only_the_cut_block(
    tmp_path: Path, logs: Log
) -> None:
    write(tmp_path, frames(T0, 20), frames(T0 + 10**9, 20, tid=2))
    path = hour_path(tmp_path, "gateio", HOUR)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 30])  # the crash cut the second block
    write(tmp_path, frames(T0 + 5 * 10**9, 3, tid=1))  # a new collector, same hour: appends
    got = list(read_records("gateio", venue_files(tmp_path, "gateio")))
    kinds = [r.kind for r in got]
    assert payloads(got) == [b'{"n":%d}' % i for i in range(20)] + [
        b'{"n":0}',
        b'{"n":1}',
        b'{"n":2}',
    ]
    # the old collector's recording ends right after its last readable record
    ended = kinds.index(ENDED)
    assert got[ended].time_ns == got[ended - 1].time_ns + 1 and got[ended + 1].transport == 1
    assert len(events(logs, "recording_damaged")) == 1


@pytest.mark.parametrize("cut", [5, 19])
def test_a_file_cut_inside_a_block_head_is_truncated_not_damaged(
    tmp_path: Path, logs: Log, cut: int
) -> None:
    write(tmp_path, frames(T0, 5))
    path = hour_path(tmp_path, "gateio", HOUR)
    block = path.read_bytes()
    path.write_bytes(block + block[:cut])
    got = list(read_records("gateio", venue_files(tmp_path, "gateio")))
    assert len(payloads(got)) == 5
    assert len(events(logs, "recording_truncated")) == 1
    assert not events(logs, "recording_damaged")
