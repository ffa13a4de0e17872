"""The comparison clients, run in ``bench/.venv-ccxt`` (ccxt needs protobuf 5, we use 7).

    python -m bench.client_ext --kind ccxt|naive --venue gateio|mexc --url ws://... \
        --symbols BTC_USDT,ETH_USDT,... [--shard 30]

* ``ccxt``: ccxt.pro (async WebSocket) with its URL pointed at the simulator and markets given
  with ``set_markets`` (no REST endpoint is reachable). Gate: ``watch_bids_asks``; MEXC:
  ``watch_ticker`` per symbol (ccxt 4.5's ``watch_bids_asks`` never resolves on MEXC protobuf
  frames). ccxt keeps one connection per exchange instance and does not shard, while MEXC
  allows 30 subscriptions per connection, so MEXC symbols are spread over one instance per
  ``--shard`` symbols, the same split the project uses.
* ``naive``: ``websockets`` + ``json.loads`` (Gate) or protobuf ``ParseFromString`` +
  ``MessageToDict`` (MEXC, with the message classes ccxt ships for protobuf 5): the floor a
  straightforward hand-written client reaches.

Every decoded book-ticker update is counted after it is stored in the client's own cache
(ccxt: ``bidsasks``/``tickers``; naive: a dict per symbol). Imports only the standard library
and the venv's packages: the project is not installed here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from bench.proto import cpu_seconds, emit, peak_rss_mb, serve

POLL = 0.002
MEXC_PREFIX = "spot@public.aggre.bookTicker.v3.api.pb@100ms@"


def chunks(items: list[str], cap: int) -> list[list[str]]:
    """Fewest near-equal chunks of at most ``cap`` (the project's shard rule)."""
    count = max(1, -(-len(items) // cap))
    size, extra = divmod(len(items), count)
    out, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def split_symbol(venue: str, symbol: str) -> tuple[str, str]:
    if venue == "gateio":
        base, _, quote = symbol.partition("_")
        return base, quote
    for quote in ("USDT", "USDC", "BTC", "ETH"):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"cannot split {symbol}")


class Counter:
    def __init__(self) -> None:
        self.updates = 0


class Base:
    """Shared measurement commands; subclasses fill ``counter`` and ``sample``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.venue = args.venue
        self.symbols: list[str] = args.symbols.split(",")
        self.counter = Counter()
        self.cpu0 = 0.0
        self.count0 = 0
        self.t0 = 0.0
        self.tasks: list[asyncio.Task[Any]] = []
        self.errors: list[str] = []

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def sample(self, symbol: str) -> dict[str, Any] | None:
        raise NotImplementedError

    async def handle(self, c: dict[str, Any]) -> dict[str, Any]:
        cmd = c["cmd"]
        if cmd == "arm":
            self.count0, self.cpu0 = self.counter.updates, cpu_seconds()
            self.t0 = time.perf_counter()
            return {}
        if cmd == "await":
            return await self._await(int(c["n"]), float(c.get("timeout", 60)))
        if cmd == "count":
            return {
                "updates": self.counter.updates,
                "cpu": cpu_seconds(),
                "rss_mb": peak_rss_mb(),
                "errors": self.errors[:5],
            }
        if cmd == "sample":
            return {"quotes": {s: self.sample(s) for s in c["symbols"]}}
        raise ValueError(f"unknown command {cmd!r}")

    async def _await(self, n: int, timeout: float) -> dict[str, Any]:
        counter, target = self.counter, self.count0 + n
        deadline = time.monotonic() + timeout
        while counter.updates < target and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
        cpu, wall = cpu_seconds() - self.cpu0, time.perf_counter() - self.t0
        got = counter.updates - self.count0
        return {"frames": got, "cpu": cpu, "wall": wall, "complete": got >= n}

    def _keep(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        task.add_done_callback(self._note_failure)
        self.tasks.append(task)

    def _note_failure(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(repr(task.exception()))


# --- ccxt ---------------------------------------------------------------------------------


def ccxt_market(venue: str, symbol: str) -> dict[str, Any]:
    base, quote = split_symbol(venue, symbol)
    return {
        "id": symbol,
        "symbol": f"{base}/{quote}",
        "base": base,
        "quote": quote,
        "baseId": base,
        "quoteId": quote,
        "type": "spot",
        "spot": True,
        "margin": False,
        "swap": False,
        "future": False,
        "option": False,
        "contract": False,
        "linear": None,
        "inverse": None,
        "active": True,
        "precision": {"amount": 1e-8, "price": 1e-8},
        "limits": {},
        "info": {},
    }


def count_calls(method: Callable[..., Any], counter: Counter) -> Callable[..., Any]:
    """Count a handler's completed calls (one per decoded book-ticker frame)."""

    def counted(*args: Any) -> Any:
        result = method(*args)
        counter.updates += 1
        return result

    return counted


class CcxtClient(Base):
    async def start(self) -> None:
        import ccxt.pro as ccxtpro

        self.instances: list[Any] = []
        markets = [ccxt_market(self.venue, s) for s in self.symbols]
        self.unified = {m["id"]: m["symbol"] for m in markets}
        if self.venue == "gateio":
            ex = ccxtpro.gate({"newUpdates": True})
            ex.urls["api"]["spot"] = self.args.url
            ex.set_markets(markets)
            ex.handle_bid_ask = count_calls(ex.handle_bid_ask, self.counter)
            self.instances.append(ex)
            self._keep(self._gate_loop(ex, [m["symbol"] for m in markets]))
        else:
            for shard in chunks(self.symbols, self.args.shard):
                ex = ccxtpro.mexc({"newUpdates": True})
                ex.urls["api"]["ws"]["spot"] = self.args.url
                ex.set_markets([m for m in markets if m["id"] in shard])
                ex.handle_ticker = count_calls(ex.handle_ticker, self.counter)
                self.instances.append(ex)
                for symbol in shard:
                    self._keep(self._mexc_loop(ex, self.unified[symbol]))

    @staticmethod
    async def _gate_loop(ex: Any, symbols: list[str]) -> None:
        while True:
            await ex.watch_bids_asks(symbols)

    @staticmethod
    async def _mexc_loop(ex: Any, symbol: str) -> None:
        while True:
            await ex.watch_ticker(symbol)

    def sample(self, symbol: str) -> dict[str, Any] | None:
        unified = self.unified[symbol]
        for ex in self.instances:
            book = ex.bidsasks if self.venue == "gateio" else ex.tickers
            item = book.get(unified)
            if item is not None:
                return {"bid": item.get("bid"), "ask": item.get("ask")}
        return None

    async def stop(self) -> None:
        await super().stop()
        for ex in self.instances:
            try:
                await asyncio.wait_for(ex.close(), 5)
            except Exception as exc:  # closing is best effort at the end of a run
                self.errors.append(f"close: {exc!r}")


# --- naive: websockets + json / MessageToDict ----------------------------------------------


class NaiveClient(Base):
    async def start(self) -> None:
        self.book: dict[str, dict[str, Any]] = {}
        if self.venue == "gateio":
            self._keep(self._gate(self.symbols))
        else:
            for shard in chunks(self.symbols, self.args.shard):
                self._keep(self._mexc(shard))

    async def _gate(self, symbols: list[str]) -> None:
        from websockets.asyncio.client import connect

        async with connect(self.args.url, compression=None, max_size=None) as ws:
            request = {
                "time": int(time.time()),
                "id": 1,
                "channel": "spot.book_ticker",
                "event": "subscribe",
                "payload": symbols,
            }
            await ws.send(json.dumps(request))
            ping = json.dumps({"time": int(time.time()), "channel": "spot.ping"})
            self._keep(self._pinger(ws, ping))
            book, counter, loads = self.book, self.counter, json.loads
            async for message in ws:
                data = loads(message)
                if data.get("event") == "update":
                    result = data["result"]
                    book[result["s"]] = result
                    counter.updates += 1

    async def _mexc(self, symbols: list[str]) -> None:
        from ccxt.protobuf.mexc import PushDataV3ApiWrapper_pb2
        from google.protobuf.json_format import MessageToDict
        from websockets.asyncio.client import connect

        wrapper_cls = PushDataV3ApiWrapper_pb2.PushDataV3ApiWrapper
        async with connect(self.args.url, compression=None, max_size=None) as ws:
            request = {"method": "SUBSCRIPTION", "params": [MEXC_PREFIX + s for s in symbols]}
            await ws.send(json.dumps(request))
            self._keep(self._pinger(ws, json.dumps({"method": "PING"})))
            book, counter = self.book, self.counter
            async for message in ws:
                if isinstance(message, bytes):
                    wrapper = wrapper_cls()
                    wrapper.ParseFromString(message)
                    data = MessageToDict(wrapper)
                    ticker = data.get("publicAggreBookTicker")
                    if ticker is not None:
                        book[data["symbol"]] = ticker
                        counter.updates += 1

    @staticmethod
    async def _pinger(ws: Any, text: str) -> None:
        while True:
            await asyncio.sleep(10)
            await ws.send(text)

    def sample(self, symbol: str) -> dict[str, Any] | None:
        item = self.book.get(symbol)
        if item is None:
            return None
        if self.venue == "gateio":
            return {"bid": item.get("b"), "ask": item.get("a")}
        return {"bid": item.get("bidPrice"), "ask": item.get("askPrice")}


async def main(args: argparse.Namespace) -> None:
    client: Base = CcxtClient(args) if args.kind == "ccxt" else NaiveClient(args)
    await client.start()
    emit({"ready": True})
    try:
        await serve(client.handle)
    finally:
        await client.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.client_ext")
    parser.add_argument("--kind", choices=("ccxt", "naive"), required=True)
    parser.add_argument("--venue", choices=("gateio", "mexc"), required=True)
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
