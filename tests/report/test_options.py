"""``--report``'s flags: the window (--since, --until) and its errors, the other flags."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from data_collector.cli import build_parser
from data_collector.config import ConfigError
from data_collector.report.options import parse_window, report_options

NOW = datetime(2026, 11, 24, 14, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (None, None, (NOW - timedelta(hours=24), NOW)),
        ("7d", None, (NOW - timedelta(days=7), NOW)),
        ("90m", None, (NOW - timedelta(minutes=90), NOW)),
        ("45s", "15m", (NOW - timedelta(minutes=15, seconds=45), NOW - timedelta(minutes=15))),
        ("1.5h", None, (NOW - timedelta(minutes=90), NOW)),
        ("now-90m", "now-30m", (NOW - timedelta(minutes=90), NOW - timedelta(minutes=30))),
        ("2w", None, (NOW - timedelta(days=14), NOW)),
        # an ISO time, with or without zone (UTC), in another zone (converted)
        ("2026-11-23T14:00:00Z", None, (datetime(2026, 11, 23, 14, tzinfo=UTC), NOW)),
        ("2026-11-23 14:00", None, (datetime(2026, 11, 23, 14, tzinfo=UTC), NOW)),
        ("2026-11-23T16:00:00+02:00", None, (datetime(2026, 11, 23, 14, tzinfo=UTC), NOW)),
        # a relative --since counts back from --until
        (
            None,
            "2026-11-20",
            (datetime(2026, 11, 19, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)),
        ),
    ],
)
def test_window(since: str | None, until: str | None, expected: tuple[datetime, datetime]) -> None:
    assert parse_window(since, until, NOW) == expected


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("5x", None, "--since: '5x' is neither a duration ago"),
        ("yesterday", None, "--since: 'yesterday' is neither"),
        ("0h", None, "--since: '0h' is neither"),
        ("-3h", None, "--since: '-3h' is neither"),
        (None, "soon", "--until: 'soon' is neither"),
        ("2026-11-25", None, "--since: 2026-11-25T00:00:00+00:00 is not before --until"),
        ("1h", "2h", None),  # fine: 3 h ago to 2 h ago
    ],
)
def test_window_errors_name_the_flag(since: str, until: str | None, message: str | None) -> None:
    if message is None:
        parse_window(since, until, NOW)
        return
    with pytest.raises(ConfigError) as caught:
        parse_window(since, until, NOW)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_report_flags_without_report_are_refused() -> None:
    for argv in (["--since", "1h"], ["--detail"], ["--plot", "x.png"]):
        with pytest.raises(ConfigError, match="only applies to --report"):
            report_options(args(*argv), NOW)
    assert report_options(args(), NOW) is None


def test_report_options(tmp_path) -> None:
    options = report_options(
        args("--report", "--since", "2h", "--detail", "--format", "csv",
             "--plot", str(tmp_path / "r.png")),
        NOW,
    )  # fmt: skip
    assert options is not None
    assert (options.since, options.until) == (NOW - timedelta(hours=2), NOW)
    assert (options.detail, options.format, options.plot) == (True, "csv", tmp_path / "r.png")


def test_a_plot_into_a_missing_directory_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        report_options(args("--report", "--plot", str(tmp_path / "nope" / "r.png")), NOW)


def test_report_excludes_the_other_modes() -> None:
    for other in ("--status", "--dry-run"):
        with pytest.raises(SystemExit):
            args("--report", other)
