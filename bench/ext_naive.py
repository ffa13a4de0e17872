"""The naive floor as a bench client (run in ``bench/.venv-ccxt``): what a straightforward
hand-written client reaches.

``websockets`` + ``json.loads`` for the JSON venues, protobuf ``ParseFromString`` +
``MessageToDict`` for MEXC (with the message classes ccxt ships for protobuf 5). Each decoded
book-ticker update is stored in a dict per symbol and counted. Connections follow the venue's
rules: MEXC's 30 subscriptions per connection (``--shard``), Bybit's 10 args per request, the
application pings of Gate, MEXC, OKX and Bybit (Binance pings from the server; ``websockets``
answers those itself).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.ext_base import Base, chunks

MEXC_PREFIX = "spot@public.aggre.bookTicker.v3.api.pb@100ms@"
PING_EVERY = 10.0


def subscribe_frames(venue: str, symbols: list[str]) -> list[str]:
    """The JSON venues' subscribe requests for ``symbols``."""
    if venue == "gateio":
        request: Any = {"time": int(time.time()), "id": 1, "channel": "spot.book_ticker"}
        return [json.dumps(request | {"event": "subscribe", "payload": symbols})]
    if venue == "binance":
        streams = [s.lower() + "@bookTicker" for s in symbols]
        return [json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1})]
    if venue == "okx":
        args = [{"channel": "bbo-tbt", "instId": s} for s in symbols]
        return [json.dumps({"op": "subscribe", "args": args})]
    if venue == "bybit":
        return [
            json.dumps({"op": "subscribe", "args": ["orderbook.1." + s for s in group]})
            for group in chunks(symbols, 10)
        ]
    raise ValueError(f"no naive client for {venue}")


def ping_frame(venue: str) -> str | None:
    return {
        "gateio": json.dumps({"time": int(time.time()), "channel": "spot.ping"}),
        "okx": "ping",
        "bybit": json.dumps({"op": "ping"}),
    }.get(venue)


def book_ticker(venue: str, data: Any) -> tuple[str, Any] | None:
    """(symbol, the update as decoded) for a book-ticker frame, None for anything else."""
    if not isinstance(data, dict):
        return None
    if venue == "gateio":
        return (data["result"]["s"], data["result"]) if data.get("event") == "update" else None
    if venue == "binance":
        return (data["s"], data) if "u" in data else None
    if venue == "okx":
        return (data["arg"]["instId"], data["data"][0]) if "data" in data else None
    if venue == "bybit":
        return (data["data"]["s"], data["data"]) if "topic" in data else None
    raise ValueError(f"no naive client for {venue}")


def bid_ask(venue: str, item: dict[str, Any]) -> dict[str, Any]:
    if venue in ("gateio", "binance"):
        return {"bid": item.get("b"), "ask": item.get("a")}
    if venue == "mexc":
        return {"bid": item.get("bidPrice"), "ask": item.get("askPrice")}
    sides = ("bids", "asks") if venue == "okx" else ("b", "a")
    bids, asks = (item.get(side) or [[None]] for side in sides)
    return {"bid": bids[0][0], "ask": asks[0][0]}


class NaiveClient(Base):
    async def start(self) -> None:
        self.book: dict[str, Any] = {}
        if self.venue == "mexc":
            for shard in chunks(self.symbols, self.args.shard):
                self._keep(self._mexc(shard))
        else:
            self._keep(self._json(self.symbols))

    async def _json(self, symbols: list[str]) -> None:
        from websockets.asyncio.client import connect

        venue = self.venue
        async with connect(self.args.url, compression=None, max_size=None) as ws:
            for frame in subscribe_frames(venue, symbols):
                await ws.send(frame)
            ping = ping_frame(venue)
            if ping is not None:
                self._keep(self._pinger(ws, ping))
            book, counter, loads = self.book, self.counter, json.loads
            async for message in ws:
                if message == "pong":  # OKX's reply to the text ping: not JSON
                    continue
                found = book_ticker(venue, loads(message))
                if found is not None:
                    book[found[0]] = found[1]
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
            await asyncio.sleep(PING_EVERY)
            await ws.send(text)

    def sample(self, symbol: str) -> dict[str, Any] | None:
        item = self.book.get(symbol)
        return None if item is None else bid_ask(self.venue, item)
