"""``python -m data_collector.simulator``: serve the simulated venues (all of them unless
``--venues`` says otherwise) until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence

from data_collector.logsetup import LEVELS, configure_logging
from data_collector.simulator import PERSONALITIES, Simulator, pairs_for
from data_collector.wording import plural


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = ", ".join(PERSONALITIES)
    parser = argparse.ArgumentParser(
        prog="python -m data_collector.simulator",
        description=f"Local book-ticker WebSocket servers speaking venues' protocols ({names}).",
    )
    parser.add_argument("--pairs", type=int, default=35, help="number of pairs (default 35)")
    parser.add_argument("--rate", type=float, default=5.0, help="updates per pair per second")
    parser.add_argument(
        "--venues", default=",".join(PERSONALITIES), help=f"comma-separated (default: {names})"
    )
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="VENUE=PORT",
        help="a venue's port, repeatable (default: any free port)",
    )
    parser.add_argument("--mexc-port", type=int, default=0, help="the same as --port mexc=PORT")
    parser.add_argument("--gate-port", type=int, default=0, help="the same as --port gateio=PORT")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-level", choices=LEVELS, default="info")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.rate <= 0:
        parser.error("--pairs must be >= 1 and --rate > 0")
    args.venues = [v.strip() for v in args.venues.split(",") if v.strip()]
    unknown = [v for v in args.venues if v not in PERSONALITIES]
    if unknown or not args.venues:
        parser.error(f"--venues: choose among {names}")
    args.ports = {"mexc": args.mexc_port, "gateio": args.gate_port}
    for item in args.port:
        venue, _, port = item.partition("=")
        if venue not in PERSONALITIES or not port.isdigit():
            parser.error(f"--port {item!r}: write VENUE=PORT with VENUE among {names}")
        args.ports[venue] = int(port)
    return args


async def _serve(args: argparse.Namespace) -> None:
    simulator = Simulator(
        pairs_for(args.pairs),
        rate_hz=args.rate,
        seed=args.seed,
        host=args.host,
        ports=args.ports,
        venues=args.venues,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with simulator:
        for name, url in simulator.urls.items():
            print(f"{name}: {url}", flush=True)
        print(f"{plural(args.pairs, 'pair')} at {args.rate:g} Hz each; Ctrl-C to stop", flush=True)
        await stop.wait()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    configure_logging(args.log_level, "console", stream=sys.stderr)  # stdout: URLs only
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(args))


if __name__ == "__main__":
    main()
