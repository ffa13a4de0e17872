"""Command line: ``python run.py [--config PATH] [--status | --report | --archive |
--query SQL | --test-alerts | --dry-run] [--simulate] [--record DIR | --replay DIR [--from T]
[--until T] [--speed S]] ...``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

import structlog

from data_collector import __version__
from data_collector.config import (
    Config,
    ConfigError,
    RecordConfig,
    check_duration,
    config_warnings,
    load_config,
)
from data_collector.datadir_lock import DataDirBusy, DataDirLock
from data_collector.logsetup import FORMATS as LOG_FORMATS
from data_collector.logsetup import LEVELS, configure_logging, point_at_devnull
from data_collector.replay.options import SPEED_HELP, TIME_HELP, ReplayOptions
from data_collector.replay.options import resolve as resolve_replay
from data_collector.report.options import DEFAULT_SINCE, INSTALL_PLOT, report_options
from data_collector.tabular import FORMATS

log = structlog.get_logger("data_collector.cli")

EXIT_CONFIG = 2
EXIT_REPORT_NOT_WRITTEN = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description=(
            f"Collect best bid/ask quotes from {_venue_list()} over WebSocket, snapshot them "
            "every second into PostgreSQL and log cross-exchange arbitrage analytics; "
            "--report answers from what was stored."
        ),
    )
    parser.add_argument(
        "--config",
        default="config.yaml",
        metavar="PATH",
        help="configuration file (default: ./config.yaml); relative paths in it are relative "
        "to its own directory",
    )
    parser.add_argument(
        "--log-level", type=str.lower, choices=LEVELS, default="info", help="default: info"
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="console",
        help="console: readable lines; json: one JSON object per line (default: console)",
    )
    parser.add_argument(
        "--symbols",
        metavar="LIST",
        help="comma-separated pairs overriding data_collector.symbols, e.g. BTC/USDT,ETH/USDT "
        "(with --report: report on these pairs only)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--status",
        action="store_true",
        help="print the effective configuration (secrets redacted), the database in use and "
        "its contents (each partition: days, rows, bytes), the archive (days, rows, bytes), "
        "the spill files waiting, and the running collector (from the data directory's lock "
        "file) with its health; never connects to the venues. The report goes to stdout, log "
        "lines to stderr",
    )
    mode.add_argument(
        "--archive",
        action="store_true",
        help="export every completed UTC day older than archive.after_days to the Parquet "
        "archive now (whatever archive.enabled says), verify it, apply "
        "database.retention_days, print what was done and exit (1 if a day could not be "
        "archived)",
    )
    mode.add_argument(
        "--query",
        metavar="SQL",
        help="run SQL in DuckDB over views book_ticker_snapshots and arbitrage_opportunities "
        "that union the Parquet archive with the live PostgreSQL rows (each row once); print "
        "the result (see --format) and exit",
    )
    mode.add_argument(
        "--test-alerts",
        action="store_true",
        help="send one test message to every alerts.targets entry and report which worked "
        "(targets shown as scheme and host only); exit 0 when all did, 1 otherwise",
    )
    mode.add_argument(
        "--report",
        action="store_true",
        help="read the database (never the venues) and print, for a window: opportunities per "
        "pair and venue pair, coverage per venue (seconds stored, gaps over 5 s), quoted "
        "spreads and cross-venue mid-price differences. The report goes to stdout, log lines "
        "to stderr",
    )
    mode.add_argument(
        "--dry-run",
        action="store_true",
        help="run feeds, snapshots and analytics without any database connection or write "
        "(and without taking the data directory's lock)",
    )
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="run against the built-in venue simulator instead of the live venues (offline "
        "demo: injects a cross-venue price gap now and then)",
    )
    parser.add_argument(
        "--record",
        metavar="DIR",
        help="record every frame and connection event to hourly zstd files under DIR "
        "(DIR/<venue>/<YYYY-MM-DD>/<HH>.rec.zst); overrides record.enabled and record.dir",
    )
    parser.add_argument(
        "--replay",
        metavar="DIR",
        help="instead of connecting to the venues, replay a recording made with --record "
        "through the same parsers, cache, snapshots, database writer and analytics, on the "
        "recording's clock; stops at its end",
    )
    parser.add_argument("--from", dest="start", metavar="TIME", help=f"replay from: {TIME_HELP}")
    parser.add_argument(
        "--until",
        metavar="TIME",
        help=f"with --replay: replay until {TIME_HELP}; with --report: the end of the window "
        "(excluded), a duration back from now (15m, 2h, now-15m) or an ISO time; default now",
    )
    parser.add_argument("--speed", metavar="SPEED", help=f"replay speed: {SPEED_HELP}; default 1")
    parser.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop by itself after this many seconds, > 0 (default: run until SIGINT/SIGTERM)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="how --query and --report print: text (aligned tables, the default), csv "
        "(--query: a header row, then the rows; --report: one section per table, each with "
        "its header row) or json (--query: a list of objects, exact decimals as strings; "
        "--report: one document)",
    )
    _report_arguments(parser)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("--report options")
    group.add_argument(
        "--since",
        metavar="WHEN",
        help=f"start of the window: a duration back from --until (90m, 24h, 7d) or an ISO "
        f"time (2026-11-23T14:00:00Z; UTC when no zone is given); default {DEFAULT_SINCE}",
    )
    group.add_argument(
        "--detail",
        action="store_true",
        help="coverage and gaps per venue and pair as well",
    )
    group.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw a PNG: coverage heat map (venue x pair) and opportunity timeline; "
        f"needs matplotlib: {INSTALL_PLOT}",
    )


def _venue_list() -> str:
    """The registered venues as a reader names them: ``MEXC, Gate.io and Binance``."""
    from data_collector.venues import VENUES

    names = [venue.display_name for venue in VENUES.values()]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


#: commands that print a report; the report alone goes to stdout, their log lines to stderr
ReportRunner = Callable[[Config, argparse.Namespace], Awaitable[int]]


async def _status_report(config: Config, args: argparse.Namespace) -> int:
    from data_collector.status import print_status

    return await print_status(config, config_path=args.config)


async def _opportunity_report(config: Config, args: argparse.Namespace) -> int:
    from data_collector.report.runner import run_report

    return await run_report(config, args.report_options, symbols_given=args.symbols is not None)


async def _archive_report(config: Config, _args: argparse.Namespace) -> int:
    from data_collector.storage_commands import archive_now

    return await archive_now(config)


async def _query_report(config: Config, args: argparse.Namespace) -> int:
    from data_collector.storage_commands import query

    return await query(config, args.query, args.format)


async def _test_alerts_report(config: Config, _args: argparse.Namespace) -> int:
    from data_collector.alerts.check import send_test_alerts

    return await send_test_alerts(config.alerts)


#: argparse dest of the flag -> the report it prints (a new report command adds a line here)
REPORTS: dict[str, ReportRunner] = {
    "status": _status_report,
    "report": _opportunity_report,
    "archive": _archive_report,
    "query": _query_report,
    "test_alerts": _test_alerts_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.query is not None and not args.query.strip():
        print(
            "config error: --query: empty; give an SQL statement, e.g. "
            '--query "SELECT count(*) FROM book_ticker_snapshots"',
            file=sys.stderr,
        )
        return EXIT_CONFIG
    report = next(
        (run for dest, run in REPORTS.items() if getattr(args, dest, None) not in (None, False)),
        None,
    )
    configure_logging(args.log_level, args.log_format, sys.stderr if report else sys.stdout)
    try:
        check_flags(args)
        config = load_config(args.config, symbols_override=args.symbols)
        check_duration(args.duration)
        args.report_options = report_options(args, datetime.now(UTC))
        if args.record is not None:
            record_dir = os.path.abspath(os.path.expanduser(args.record))  # as --replay reads it
            config.record = RecordConfig(enabled=True, dir=record_dir)
        replay = _replay_options(args, config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    for key, message in config_warnings(config):
        log.warning("config_warning", key=key, summary=f"Config: {key}: {message}")
    if report is not None:
        return _print_report(report, config, args)
    return _collect(config, args, replay)


def check_flags(args: argparse.Namespace) -> None:
    """Flags that make no sense together: one :class:`ConfigError` line."""
    command = _one_shot_command(args)
    if command is not None:  # it collects nothing: flags that shape a collection are refused
        for flag, given in (
            ("--simulate", args.simulate),
            ("--record", args.record is not None),
            ("--duration", args.duration is not None),
        ):
            if given:
                raise ConfigError(f"{flag}: only when collecting, not with {command}")
    if args.replay is None:
        for flag, value in (
            ("--from", args.start),
            ("--until", None if args.report else args.until),  # --report's window ends there
            ("--speed", args.speed),
        ):
            if value is not None:
                also = " or --report" if flag == "--until" else ""
                raise ConfigError(f"{flag}: only with --replay DIR{also}")
        return
    for flag, given in (
        ("--simulate", args.simulate),
        ("--record", args.record is not None),
        (command, command is not None),
    ):
        if given:
            raise ConfigError(f"--replay: cannot be combined with {flag}")


def _one_shot_command(args: argparse.Namespace) -> str | None:
    """The one-shot command given (--status, --report, ...; argparse lets only one through),
    or None when the run collects."""
    for flag, given in (
        ("--status", args.status),
        ("--report", args.report),
        ("--archive", args.archive),
        ("--query", args.query is not None),
        ("--test-alerts", args.test_alerts),
    ):
        if given:
            return flag
    return None


def _replay_options(args: argparse.Namespace, config: Config) -> ReplayOptions | None:
    if args.replay is None:
        return None
    return resolve_replay(
        args.replay,
        config.data_collector.exchanges,
        start=args.start,
        until=args.until,
        speed=args.speed,
    )


def _print_report(report: ReportRunner, config: Config, args: argparse.Namespace) -> int:
    """Run a report command. Its reader going away (``| head``) ends it quietly; any other
    failure to write it (a full disk) is one line on stderr. Both exit 1: the report is
    incomplete."""
    out = sys.stdout
    try:
        with contextlib.redirect_stdout(_ReportStream(out)):
            code = asyncio.run(report(config, args))
            sys.stdout.flush()
    except ReportNotWritten as exc:
        if not isinstance(exc.cause, BrokenPipeError):
            reason = exc.cause.strerror or str(exc.cause)
            log.error(
                "report_not_written", error=reason, summary=f"Cannot write the report: {reason}"
            )
        point_at_devnull(out)  # nothing left to flush at exit, no "Exception ignored"
        return EXIT_REPORT_NOT_WRITTEN
    return code


class ReportNotWritten(Exception):
    """Writing the report to stdout failed (as opposed to anything the report itself ran)."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _ReportStream:
    """stdout for a report, telling a failed write apart from the report's own errors."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise ReportNotWritten(exc) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise ReportNotWritten(exc) from exc


def _collect(config: Config, args: argparse.Namespace, replay: ReplayOptions | None) -> int:
    from data_collector.runner import EXIT_STARTUP_FAILED, run_collector

    def run() -> int:
        if replay is not None:
            from data_collector.replay.session import run_replay

            return run_replay(config, replay, dry_run=args.dry_run, duration=args.duration)
        return run_collector(
            config, dry_run=args.dry_run, simulate=args.simulate, duration=args.duration
        )

    # A dry run writes nothing to the data directory (no database, no spill file), so it
    # takes no lock: it can try a configuration beside the collector that owns the directory.
    if args.dry_run:
        return run()
    monitoring = config.monitoring
    serves = monitoring.enabled and monitoring.port and replay is None  # a replay serves none
    url = monitoring.url if serves else None
    try:
        lock = DataDirLock.acquire(config.data_dir, monitoring_url=url)
    except (DataDirBusy, OSError) as exc:
        error = str(exc) if isinstance(exc, DataDirBusy) else _unusable(config, exc)
        log.error("startup_failed", error=error, summary=f"Cannot start: {error}")
        return EXIT_STARTUP_FAILED
    with lock:
        return run()


def _unusable(config: Config, exc: OSError) -> str:
    return (
        f"data directory {config.data_dir} cannot be used ({exc.strerror or exc}); "
        "set data_collector.data_dir to a writable directory"
    )


if __name__ == "__main__":
    sys.exit(main())
