"""The comparison clients, run in ``bench/.venv-ccxt`` (ccxt needs protobuf 5, we use 7).

    python -m bench.client_ext --kind ccxt|naive --venue binance --url ws://... \
        --symbols BTCUSDT,ETHUSDT,... [--shard 30]

* ``ccxt``: ccxt.pro pointed at the simulator (:mod:`bench.ext_ccxt`).
* ``naive``: ``websockets`` + ``json.loads`` / protobuf ``MessageToDict``
  (:mod:`bench.ext_naive`).

Both answer the same measurement commands (:mod:`bench.ext_base`). Imports only the standard
library and the venv's packages: the project is not installed here.
"""

from __future__ import annotations

import argparse
import asyncio

from bench.ext_base import Base
from bench.proto import emit, serve

VENUES = ("gateio", "mexc", "binance", "okx", "bybit")


async def main(args: argparse.Namespace) -> None:
    client: Base
    if args.kind == "ccxt":
        from bench.ext_ccxt import CcxtClient

        client = CcxtClient(args)
    else:
        from bench.ext_naive import NaiveClient

        client = NaiveClient(args)
    await client.start()
    emit({"ready": True})
    try:
        await serve(client.handle)
    finally:
        await client.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.client_ext")
    parser.add_argument("--kind", choices=("ccxt", "naive"), required=True)
    parser.add_argument("--venue", choices=VENUES, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--symbols", required=True)
    parser.add_argument("--shard", type=int, default=30)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    ns = parser.parse_args()
    if ns.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            asyncio.run(main(ns))
        else:
            uvloop.run(main(ns))
    else:
        asyncio.run(main(ns))
