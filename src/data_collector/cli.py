"""Command line: ``python run.py [--config PATH] [--status | --dry-run | --simulate] ...``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from data_collector import __version__
from data_collector.config import ConfigError, load_config
from data_collector.logsetup import FORMATS, LEVELS, configure_logging

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description=(
            "Collect best bid/ask quotes from MEXC and Gate.io over WebSocket, snapshot them "
            "every second into PostgreSQL and log cross-exchange arbitrage analytics."
        ),
    )
    parser.add_argument(
        "--config",
        default="config.yaml",
        metavar="PATH",
        help="configuration file (default: ./config.yaml)",
    )
    parser.add_argument(
        "--log-level", type=str.lower, choices=LEVELS, default="info", help="default: info"
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default="console",
        help="console: readable lines; json: one JSON object per line (default: console)",
    )
    parser.add_argument(
        "--symbols",
        metavar="LIST",
        help="comma-separated pairs overriding data_collector.symbols, e.g. BTC/USDT,ETH/USDT",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--status",
        action="store_true",
        help="print the effective configuration (secrets redacted), the database in use and "
        "its contents, the spill files waiting, and a running collector's health; never "
        "connects to the venues",
    )
    mode.add_argument(
        "--dry-run",
        action="store_true",
        help="run feeds, snapshots and analytics without any database connection or write",
    )
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="run against the built-in venue simulator instead of the live venues (offline "
        "demo: injects a cross-venue price gap now and then)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop by itself after this many seconds (default: run until SIGINT/SIGTERM)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        config = load_config(args.config, symbols_override=args.symbols)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.status:
        from data_collector.status import print_status

        return asyncio.run(print_status(config, config_path=args.config))
    from data_collector.collector import run_collector

    return run_collector(
        config, dry_run=args.dry_run, simulate=args.simulate, duration=args.duration
    )


if __name__ == "__main__":
    sys.exit(main())
