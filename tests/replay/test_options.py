"""``--replay DIR --from --until --speed``: resolved before anything starts, or one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_collector.config import ConfigError
from data_collector.recording.files import VenueFiles
from data_collector.recording.format import FRAME
from data_collector.replay.options import parse_speed, parse_time, resolve

S = 10**9
NOW = 1_800_000_000 * S
START = 1_790_000_000 * S  # the recording's first record


def record(root: Path, venue: str = "mexc") -> None:
    files = VenueFiles(root, venue)
    files.write([(FRAME, START + i * S, 1, 0, b"mexc-0", b"x") for i in range(3)])
    files.close()


def never() -> int:
    raise AssertionError("the recording's start was not needed")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T14:40:00Z", 1_795_444_800 * S),
        ("2026-11-23T14:40:00+01:00", 1_795_441_200 * S),
        ("2026-11-23 14:40", 1_795_444_800 * S),  # no zone: UTC
        ("2026-11-23T14:40:00.25", 1_795_444_800 * S + S // 4),
        ("now-90s", NOW - 90 * S),
        ("-15m", NOW - 900 * S),  # --from=-15m
        ("-1.5h", NOW - 5400 * S),
        ("-2d", NOW - 2 * 86400 * S),
    ],
)
def test_times_iso_or_before_now(text: str, expected: int) -> None:
    assert parse_time(text, "--from", NOW, never) == expected


def test_plus_counts_from_what_it_is_given() -> None:
    assert parse_time("+10m", "--until", NOW, lambda: START) == START + 600 * S


@pytest.mark.parametrize("text", ["yesterday", "10m", "-10x", "+", "now+5m", "2026-13-01"])
def test_a_time_that_is_none_is_refused_naming_the_flag(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^--from: .* is not a time; use an ISO time"):
        parse_time(text, "--from", NOW, never)


def test_speeds() -> None:
    assert parse_speed(None) == 1.0
    assert parse_speed("max") is None and parse_speed("MAX") is None
    assert parse_speed("10") == 10.0 and parse_speed("0.5") == 0.5
    for bad in ("0", "-1", "nan", "inf", "fast"):
        with pytest.raises(ConfigError, match=r"^--speed: .* is not allowed; use 1 \(as "):
            parse_speed(bad)


def test_resolve_finds_the_configured_venues_and_counts_plus_from_the_recording(
    tmp_path: Path,
) -> None:
    record(tmp_path, "mexc")
    options = resolve(
        str(tmp_path), ["mexc", "gateio"], start="+1s", until="+1s", speed="max", now_ns=NOW
    )
    assert list(options.files) == ["mexc"]  # gateio has no recording: left out
    assert options.from_ns == START + S and options.until_ns == START + 2 * S
    assert options.speed is None and options.directory == tmp_path


def test_until_before_from_is_refused(tmp_path: Path) -> None:
    record(tmp_path)
    with pytest.raises(ConfigError, match=r"--until: .* is before --from"):
        resolve(str(tmp_path), ["mexc"], start="now-1h", until="now-2h", speed=None, now_ns=NOW)


def test_a_missing_directory_file_or_empty_recording_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--replay: .*/nope does not exist; name a dir"):
        resolve(str(tmp_path / "nope"), ["mexc"], start=None, until=None, speed=None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"^--replay: .*/file is not a directory"):
        resolve(str(tmp_path / "file"), ["mexc"], start=None, until=None, speed=None)
    record(tmp_path, "okx")
    with pytest.raises(ConfigError, match=r"holds no recording of mexc, gateio \(files "):
        resolve(str(tmp_path), ["mexc", "gateio"], start=None, until=None, speed=None)
