"""``--report``'s flags: the window (``--since``, ``--until``), ``--detail`` and ``--plot``
(``--format`` it shares with ``--query``), checked before anything is read.

A time is a duration ago (``90m``, ``24h``, ``7d``; also ``s`` and ``w``) or an ISO time
(``2026-11-23T14:00:00Z``; without a zone it is UTC). A duration in ``--until`` is counted
back from now; one in ``--since`` from the end of the window, so ``--until 2026-11-23`` alone
reports the 24 hours before it. ``now-90m`` (as ``--replay`` writes it) is always counted back
from now.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from data_collector.config import ConfigError

DEFAULT_SINCE = "24h"
#: flags that only mean something with --report
#: (``--until`` is --replay's too: the CLI's check_flags sees to it)
REPORT_FLAGS = {"since": "--since", "detail": "--detail", "plot": "--plot"}
INSTALL_PLOT = "pip install 'cex-arb-collector[report]' (in a checkout: pip install -e '.[report]')"

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class ReportOptions:
    since: datetime
    until: datetime
    detail: bool
    format: str
    plot: Path | None


def _when(flag: str, text: str, reference: datetime, now: datetime) -> datetime:
    """A duration before ``reference`` (before ``now`` when written ``now-90m``, as
    ``--replay`` does), or an absolute time (UTC when it names no zone)."""
    cleaned = text.strip().lower()
    if cleaned.startswith("now-"):
        cleaned, reference = cleaned.removeprefix("now-"), now
    match = _DURATION.match(cleaned)
    if match:
        amount = float(match[1])
        if amount > 0:
            return reference - timedelta(seconds=amount * _UNIT_S[match[2]])
    else:
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            pass
        else:
            return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    raise ConfigError(
        f"{flag}: {text!r} is neither a duration ago (such as 90m, 24h or 7d) nor an ISO time "
        "(such as 2026-11-23T14:00:00Z)"
    )


def parse_window(since: str | None, until: str | None, now: datetime) -> tuple[datetime, datetime]:
    """[since, until) from the flags' texts; raises ConfigError naming the flag."""
    end = now if until is None else _when("--until", until, now, now)
    start = _when("--since", DEFAULT_SINCE if since is None else since, end, now)
    if start >= end:
        raise ConfigError(
            f"--since: {start.isoformat()} is not before --until {end.isoformat()}; "
            "give a window that ends after it starts"
        )
    return start, end


def plot_available() -> bool:
    """matplotlib imports (a broken install counts as absent)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def report_options(args: argparse.Namespace, now: datetime) -> ReportOptions | None:
    """The report's options, or None when ``--report`` is not given (then its flags are an
    error). Raises ConfigError with one line saying what to fix."""
    if not args.report:
        given = [flag for dest, flag in REPORT_FLAGS.items() if getattr(args, dest)]
        if given:
            raise ConfigError(f"{given[0]} only applies to --report; add --report or leave it out")
        return None
    since, until = parse_window(args.since, args.until, now)
    plot = None
    if args.plot is not None:
        plot = Path(args.plot).expanduser()
        if not plot_available():
            raise ConfigError(f"--plot needs matplotlib, which is not installed: {INSTALL_PLOT}")
        if not plot.parent.is_dir():
            raise ConfigError(
                f"--plot: {args.plot!r}: directory {plot.parent} does not exist; "
                "give a path in an existing directory"
            )
    return ReportOptions(since, until, bool(args.detail), args.format, plot)
