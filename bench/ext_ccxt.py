"""ccxt.pro as a bench client (run in ``bench/.venv-ccxt``), pointed at the simulator.

Markets are given with ``set_markets`` (no REST endpoint is reachable) and each exchange's
WebSocket URL is replaced by the simulator's. Every venue uses ``watch_bids_asks`` except MEXC,
whose ``watch_bids_asks`` never resolves on protobuf frames in ccxt 4.5 (``watch_ticker`` per
symbol instead). The stream each one asks for, from ccxt 4.5's source:

- Gate: ``spot.book_ticker``; Binance: ``<symbol>@bookTicker`` (on ``<ws url>/<n>``, raw
  payloads); OKX: ``bbo-tbt``; Bybit: ``orderbook.1.<SYMBOL>`` — the channels the project
  subscribes too, so the simulator serves both clients the same frames.
- Bybit: ccxt sends all of one call's topics in one request, and Bybit refuses a spot request
  with more than 10 args, so symbols are watched in calls of 10 (one connection, as ccxt keeps
  one per URL).
- MEXC allows 30 subscriptions per connection and ccxt does not shard, so MEXC symbols are
  spread over one instance per ``--shard`` symbols, the same split the project uses.

A book-ticker update counts once ccxt's handler for it has stored it (``bidsasks`` or
``tickers``): the handler is wrapped to count its completed calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bench.ext_base import Base, Counter, chunks, split_symbol

#: ccxt's handler that stores one book-ticker frame, per venue
HANDLERS = {
    "gateio": "handle_bid_ask",
    "mexc": "handle_ticker",
    "binance": "handle_bids_asks",
    "okx": "handle_bid_ask",
    "bybit": "handle_order_book",
}
#: ccxt.pro class name per venue
CLASSES = {"gateio": "gate", "mexc": "mexc", "binance": "binance", "okx": "okx", "bybit": "bybit"}
BYBIT_ARGS_PER_REQUEST = 10
OKX_PUBLIC_SUFFIX = "/public"


def ccxt_market(venue: str, symbol: str) -> dict[str, Any]:
    base, quote = split_symbol(venue, symbol)
    return {
        "id": symbol,
        "lowercaseId": symbol.lower(),  # Binance builds stream names from it
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


def point_at(ex: Any, venue: str, url: str) -> None:
    """Replace the exchange's public spot WebSocket URL by the simulator's."""
    api = ex.urls["api"]
    if venue == "gateio":
        api["spot"] = url
    elif venue == "okx":
        api["ws"] = url.removesuffix(OKX_PUBLIC_SUFFIX)  # ccxt appends "/public" itself
    elif venue == "bybit":
        api["ws"]["public"]["spot"] = url
    else:  # MEXC, Binance (which appends "/<stream index>"; the simulator accepts /ws/<x>)
        api["ws"]["spot"] = url


class CcxtClient(Base):
    async def start(self) -> None:
        import ccxt.pro as ccxtpro

        self.instances: list[Any] = []
        markets = [ccxt_market(self.venue, s) for s in self.symbols]
        self.unified = {m["id"]: m["symbol"] for m in markets}
        make = getattr(ccxtpro, CLASSES[self.venue])
        shard = self.args.shard if self.venue == "mexc" else len(self.symbols)
        for ids in chunks(self.symbols, shard):
            ex = make({"newUpdates": True})
            point_at(ex, self.venue, self.args.url)
            ex.set_markets([m for m in markets if m["id"] in ids])
            handler = HANDLERS[self.venue]
            setattr(ex, handler, count_calls(getattr(ex, handler), self.counter))
            self.instances.append(ex)
            unified = [self.unified[i] for i in ids]
            if self.venue == "mexc":
                for symbol in unified:
                    self._keep(self._loop(ex.watch_ticker, symbol))
            elif self.venue == "bybit":
                for group in chunks(unified, BYBIT_ARGS_PER_REQUEST):
                    self._keep(self._loop(ex.watch_bids_asks, group))
            else:
                self._keep(self._loop(ex.watch_bids_asks, unified))

    @staticmethod
    async def _loop(watch: Callable[..., Any], what: Any) -> None:
        while True:
            await watch(what)

    def sample(self, symbol: str) -> dict[str, Any] | None:
        unified = self.unified[symbol]
        for ex in self.instances:
            book = ex.tickers if self.venue == "mexc" else ex.bidsasks
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
