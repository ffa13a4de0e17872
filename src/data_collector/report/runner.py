"""``python run.py --report``: read the database (never the venues), print the report on
stdout, draw it with ``--plot``.

Exit codes: 0 once the report is printed (also for a window without data), 1 when the
database cannot be read or the plot cannot be written (one line on stderr each).
"""

from __future__ import annotations

import contextlib
import sys

import msgspec
import structlog

from data_collector.config import Config
from data_collector.database_target import database_target
from data_collector.report.options import ReportOptions
from data_collector.report.render import RENDERERS
from db.report_model import Report, ReportQuery, Sampling, window_ticks

log = structlog.get_logger("data_collector.report")

EXIT_UNREADABLE = 1


class Unreadable(Exception):
    """The report cannot be read or written; the message is the one line to show."""


def build_query(config: Config, options: ReportOptions, *, symbols_given: bool) -> ReportQuery:
    """What to read: the window, the pairs (only those of ``--symbols`` when given), the
    configured venues (listed even without data), and the archive days PostgreSQL no longer
    holds (read back from ``archive.dir`` when it exists)."""
    pairs = tuple((p.base, p.quote) for p in config.pairs) if symbols_given else None
    return ReportQuery(
        since=options.since,
        until=options.until,
        step_s=int(config.data_collector.snapshot_interval),
        pairs=pairs,
        venues=tuple(config.data_collector.exchanges),
        per_pair=options.detail or options.plot is not None,
        timeline=options.plot is not None,
        archive_dir=str(config.archive_dir),
    )


async def run_report(config: Config, options: ReportOptions, *, symbols_given: bool) -> int:
    query = build_query(config, options, symbols_given=symbols_given)
    try:
        report = await _read(config, query)
        # coverage per pair was read for the plot alone unless --detail asked to show it
        shown = report if options.detail else msgspec.structs.replace(report, coverage_by_pair=None)
        sys.stdout.write(RENDERERS[options.format](shown))
        sys.stdout.flush()
        if options.plot is not None:
            _plot(report, options)
    except Unreadable as exc:
        print(exc, file=sys.stderr, flush=True)
        return EXIT_UNREADABLE
    return 0


async def _read(config: Config, query: ReportQuery) -> Report:
    from db.report_queries import ReportUnavailable, read_report

    with contextlib.ExitStack() as stack:
        try:
            target = stack.enter_context(database_target(config))
        except Exception as exc:  # pgserver raises whatever went wrong
            raise Unreadable(
                f"cannot read the database: the embedded PostgreSQL in "
                f"{config.embedded_pgdata} did not start ({exc})"
            ) from exc
        if target.dsn is None:
            return _empty(query)
        try:
            return await read_report(target.dsn, query)
        except ReportUnavailable as exc:
            raise Unreadable(f"cannot read the database ({target.label}): {exc}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _plot(report: Report, options: ReportOptions) -> None:
    from data_collector.report.plot import write_plot

    assert options.plot is not None
    try:
        write_plot(report, options.plot)
    except OSError as exc:
        raise Unreadable(f"cannot write the plot to {options.plot}: {exc.strerror or exc}") from exc
    log.info("report_plot_written", path=str(options.plot), summary=f"Plot: {options.plot}")


def _empty(query: ReportQuery) -> Report:
    """The report of a database that was never created: no data."""
    _first, _last, window = window_ticks(query)
    symbols = None if query.pairs is None else [f"{b}/{q}" for b, q in query.pairs]
    return Report(window, symbols, 0, False, [], [], None, [], [], Sampling(1, 0))
