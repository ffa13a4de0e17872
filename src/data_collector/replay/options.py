"""``--replay DIR [--from T] [--until T] [--speed S]``: checked and resolved before anything
starts. Every problem is one :class:`ConfigError` line (the CLI exits 2).

Times are ISO 8601 (``2026-11-23T14:40:00Z``, ``2026-11-23 14:40``; without a zone: UTC) or
relative: ``now-90s``, ``now-15m``, ``now-2h``, ``now-1d`` is that long before now (``-15m``
works too, written ``--from=-15m``); ``+10m`` is that long after the start of the recording
(``--from``) or after ``--from`` (``--until``).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from data_collector.config_schema import ConfigError
from data_collector.recording.format import FILE_SUFFIX
from data_collector.recording.reader import RecordingFile, read_records, venue_files

_RELATIVE = re.compile(r"^(?:now)?([+-])(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIME_HELP = (
    "an ISO time (2026-11-23T14:40:00Z; UTC without a zone), now-15m (before now) or +10m "
    "(after the recording's start for --from, after --from for --until)"
)
SPEED_HELP = "1 (as recorded), any factor > 0 (0.5, 10) or max (as fast as the CPU allows)"


@dataclass(frozen=True)
class ReplayOptions:
    directory: Path
    #: venue -> its recording files, oldest first (venues without any are left out)
    files: dict[str, list[RecordingFile]]
    from_ns: int | None
    until_ns: int | None
    #: None: as fast as possible
    speed: float | None


def resolve(
    directory: str,
    venues: list[str],
    *,
    start: str | None,
    until: str | None,
    speed: str | None,
    now_ns: int | None = None,
) -> ReplayOptions:
    """Check the directory, find each venue's files and resolve the times and the speed."""
    root = Path(directory).expanduser()
    files = find_recordings(root, venues)
    now_ns = time.time_ns() if now_ns is None else now_ns
    from_ns = None
    if start is not None:
        from_ns = parse_time(start, "--from", now_ns, lambda: _recording_start(files))
    until_ns = None
    if until is not None:
        base = from_ns
        until_ns = parse_time(until, "--until", now_ns, lambda: base or _recording_start(files))
    if from_ns is not None and until_ns is not None and until_ns < from_ns:
        raise ConfigError(f"--until: {until} is before --from ({start}); swap them")
    return ReplayOptions(root, files, from_ns, until_ns, parse_speed(speed))


def find_recordings(root: Path, venues: list[str]) -> dict[str, list[RecordingFile]]:
    """Each venue's files under ``root``; raises ConfigError when ``root`` is missing,
    unreadable, or holds no recording of any of ``venues``."""
    if not root.exists():
        raise ConfigError(f"--replay: {root} does not exist; name a directory made by --record")
    if not root.is_dir():
        raise ConfigError(f"--replay: {root} is not a directory; name one made by --record")
    found: dict[str, list[RecordingFile]] = {}
    for venue in venues:
        try:
            os.listdir(root)
            files = venue_files(root, venue)
        except OSError as exc:
            where = exc.filename or root
            raise ConfigError(
                f"--replay: {where} cannot be read ({exc.strerror or exc}); check its permissions"
            ) from None
        if files:
            found[venue] = files
    if not found:
        names = ", ".join(venues)
        raise ConfigError(
            f"--replay: {root} holds no recording of {names} (files "
            f"{root}/<venue>/<YYYY-MM-DD>/<HH>{FILE_SUFFIX}); check --replay and "
            "data_collector.exchanges"
        )
    return found


def parse_time(text: str, key: str, now_ns: int, base_ns: Callable[[], int]) -> int:
    """``text`` as ns since the epoch; ``base_ns()`` is what ``+`` counts from."""
    match = _RELATIVE.match(text.strip())
    if match and (match.group(1) == "-" or not text.strip().startswith("now")):
        sign, amount, unit = match.groups()
        span = round(float(amount) * _UNIT_S[unit] * 1e9)
        if sign == "-":
            return now_ns - span
        return base_ns() + span
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{key}: {text!r} is not a time; use {TIME_HELP}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def parse_speed(text: str | None) -> float | None:
    """``--speed``: None (``max``) or a finite factor > 0; 1 when not given."""
    if text is None:
        return 1.0
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"--speed: {text!r} is not allowed; use {SPEED_HELP}")
    return value


def _recording_start(files: dict[str, list[RecordingFile]]) -> int:
    """The time of the first record of the recording (any venue)."""
    starts = []
    for venue, venue_list in files.items():
        first = next(read_records(venue, venue_list[:1]), None)
        if first is not None:
            starts.append(first.time_ns)
    if not starts:
        raise ConfigError("--from: the recording holds no record to count +time from")
    return min(starts)
