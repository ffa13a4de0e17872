"""The Binance personality (personalities/binance.py) against a plain picows client: the
documented replies, raw and combined pushes, the message budget, the stream cap, server pings,
serverShutdown and the faults; every frame it pushes is decoded with the collector's parser
(an independent implementation of the same protocol)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
from picows import WSMsgType

from data_collector.simulator import Simulator, VenueServer, pairs_for
from data_collector.venues.base import (
    Malformed,
    QuoteUpdate,
    RestartNotice,
    SubscribeResult,
    VenueError,
)
from data_collector.venues.binance import Binance
from tests.conftest import wait_until
from tests.simulator.clients import BTC, SOL, Client, connect, drain, quiet_until

PARSER = Binance()
DOCUMENTED_SUBSCRIBE = (
    b'{"method":"SUBSCRIBE","params":["btcusdt@bookTicker","ethusdt@bookTicker"],"id":1}'
)


@asynccontextmanager
async def binance(**options: Any) -> AsyncIterator[VenueServer]:
    async with Simulator(
        pairs_for(5), rate_hz=40, seed=3, venues=("binance",), venue_options={"binance": options}
    ) as sim:
        yield sim.venues["binance"]


def send(client: Client, text: str | bytes) -> None:
    client.transport.send(WSMsgType.TEXT, text.encode() if isinstance(text, str) else text)


def request(client: Client, method: str, params: list[Any] | None = None, id: Any = 1) -> None:
    message: dict[str, Any] = {"method": method}
    if params is not None:
        message["params"] = params
    client.send_json(message | {"id": id})


def is_control(msg_type: WSMsgType, payload: bytes) -> bool:
    return msg_type == WSMsgType.TEXT and not isinstance(PARSER.parse(payload), QuoteUpdate)


def is_quote_for(symbol: str) -> Callable[[WSMsgType, bytes], bool]:
    def match(msg_type: WSMsgType, payload: bytes) -> bool:
        result = PARSER.parse(payload)
        return isinstance(result, QuoteUpdate) and result.symbol == symbol

    return match


async def quotes(client: Client, n: int) -> list[tuple[bytes, QuoteUpdate]]:
    """The next ``n`` book-ticker frames (control frames in between fail the test)."""
    frames = []
    for _ in range(n):
        msg_type, payload = await client.next()
        result = PARSER.parse(payload)
        assert msg_type == WSMsgType.TEXT and isinstance(result, QuoteUpdate), payload
        frames.append((payload, result))
    return frames


async def closed_with(client: Client, reason: str, timeout: float = 3.0) -> None:
    await asyncio.wait_for(client.disconnected.wait(), timeout)
    assert client.close_frames == 1 and client.close_reason == reason


# --- subscriptions and pushes ------------------------------------------------------------------


async def test_documented_subscribe_reply_and_raw_pushes() -> None:
    async with binance() as venue:
        client = await connect(venue.url)
        send(client, DOCUMENTED_SUBSCRIBE)
        _, reply = await client.next()
        assert reply == b'{"result":null,"id":1}'
        assert PARSER.parse(reply) == SubscribeResult(accepted=[], rejected=[])

        sequences: dict[str, list[int]] = {"BTCUSDT": [], "ETHUSDT": []}
        for payload, quote in await quotes(client, 16):
            frame = json.loads(payload)
            assert list(frame) == ["u", "s", "b", "B", "a", "A"]  # the documented payload
            assert quote == QuoteUpdate(frame["s"], *(frame[k] for k in "bBaA"), 0, frame["u"])
            assert Decimal(quote.bid_price) < Decimal(quote.ask_price)  # type: ignore[arg-type]
            sequences[quote.symbol].append(quote.sequence)
        for seen in sequences.values():
            assert len(seen) > 1 and all(a < b for a, b in itertools.pairwise(seen))
        last = venue.last_sent(BTC)
        assert last is not None and last["sequence"] == sequences["BTCUSDT"][-1]


@pytest.mark.parametrize(
    ("path", "live"),
    [
        ("/stream", True),
        ("/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker", False),
        ("/ws/btcusdt@bookTicker", False),
    ],
)
async def test_url_forms(path: str, live: bool) -> None:
    async with binance() as venue:
        client = await connect(venue.url.removesuffix("/ws") + path)
        if live:
            send(client, DOCUMENTED_SUBSCRIBE)
            assert (await client.next())[1] == b'{"result":null,"id":1}'
        combined = path.startswith("/stream")
        symbols = set()
        for payload, quote in await quotes(client, 8):
            frame = json.loads(payload)
            if combined:
                assert list(frame) == ["stream", "data"]
                assert frame["stream"] == quote.symbol.lower() + "@bookTicker"
                frame = frame["data"]
            assert list(frame) == ["u", "s", "b", "B", "a", "A"]
            assert frame["u"] == quote.sequence and frame["s"] == quote.symbol
            symbols.add(quote.symbol)
        assert symbols == ({"BTCUSDT", "ETHUSDT"} if combined else {"BTCUSDT"})
        request(client, "LIST_SUBSCRIPTIONS", id=3)
        _, reply = await client.until(is_control)
        streams = (
            ["btcusdt@bookTicker", "ethusdt@bookTicker"] if combined else ["btcusdt@bookTicker"]
        )
        assert json.loads(reply) == {"result": streams, "id": 3}


async def test_list_unsubscribe_and_silent_streams() -> None:
    async with binance() as venue:
        venue.reject(SOL)  # Binance's way: accepted, never quoted
        client = await connect(venue.url)
        streams = ["btcusdt@bookTicker", "gibberishusdt@bookTicker", "ETHUSDT@bookTicker"]
        request(client, "SUBSCRIBE", [*streams, "solusdt@bookTicker", "btcusdt@trade"], id=7)
        assert (await client.next())[1] == b'{"result":null,"id":7}'
        send(client, b'{"method":"LIST_SUBSCRIPTIONS","id":3}')
        _, reply = await client.until(is_control)
        listed = [*streams, "solusdt@bookTicker", "btcusdt@trade"]
        assert reply == json.dumps({"result": listed, "id": 3}, separators=(",", ":")).encode()
        assert venue.sessions[0].subscriptions == {"BTCUSDT"}  # only one stream is quoted
        assert {q.symbol for _, q in await quotes(client, 10)} == {"BTCUSDT"}

        request(client, "SUBSCRIBE", ["ethusdt@bookTicker"], id=8)
        await client.until(is_control)
        await client.until(is_quote_for("ETHUSDT"))
        send(client, b'{"method":"UNSUBSCRIBE","params":["btcusdt@bookTicker"],"id":312}')
        _, reply = await client.until(is_control)
        assert reply == b'{"result":null,"id":312}'
        # frames keep their order: whatever follows the ack is for ETH alone
        assert {q.symbol for _, q in await quotes(client, 10)} == {"ETHUSDT"}
        assert venue.sessions[0].subscriptions == {"ETHUSDT"}


async def test_set_and_get_property_switch_the_wrapping() -> None:
    async with binance() as venue:
        client = await connect(venue.url)
        request(client, "SUBSCRIBE", ["btcusdt@bookTicker"], id=1)
        request(client, "GET_PROPERTY", ["combined"], id=2)
        assert json.loads((await client.until(is_control))[1]) == {"result": None, "id": 1}
        assert json.loads((await client.until(is_control))[1]) == {"result": False, "id": 2}
        send(client, b'{"method":"SET_PROPERTY","params":["combined",true],"id":5}')
        assert (await client.until(is_control))[1] == b'{"result":null,"id":5}'
        _, payload = await client.next()
        assert payload.startswith(b'{"stream":"btcusdt@bookTicker","data":{"u":')
        request(client, "GET_PROPERTY", ["combined"], id=2)
        assert json.loads((await client.until(is_control))[1]) == {"result": True, "id": 2}


# --- errors ------------------------------------------------------------------------------------

ERRORS = [
    (b"not json", 3, None),
    (b"[1,2]", 2, None),
    (b'{"params":[],"id":4}', 2, 4),
    (b'{"method":"SUBSCRIBER","params":[],"id":"abc-123"}', 2, "abc-123"),
    (b'{"method":"SUBSCRIBE","params":"btcusdt@bookTicker","id":5}', 2, 5),
    (b'{"method":"SUBSCRIBE","params":[1],"id":6}', 2, 6),
    (b'{"method":"SUBSCRIBE","params":[],"id":1.5}', 2, None),
    (b'{"method":"SUBSCRIBE","params":[],"id":"x_y"}', 2, None),
    (b'{"method":"SET_PROPERTY","params":["combined","yes"],"id":9}', 1, 9),
    (b'{"method":"GET_PROPERTY","params":["other"],"id":9}', 0, 9),
]


@pytest.mark.parametrize("legacy", [False, True])
async def test_error_replies(legacy: bool) -> None:
    # a higher message budget: this test is about the replies, not the 5 messages/s limit
    async with binance(legacy_errors=legacy, max_messages_per_s=50) as venue:
        client = await connect(venue.url)
        for frame, code, request_id in ERRORS:
            send(client, frame)
            _, reply = await client.next()
            decoded = json.loads(reply)
            if legacy:  # the older form, without the ``error`` wrapper
                assert list(decoded) == ["code", "msg", "id"]
                error = {k: decoded[k] for k in ("code", "msg")}
            else:
                assert list(decoded) == ["error", "id"]
                error = decoded["error"]
            assert error["code"] == code and decoded["id"] == request_id, frame
            assert isinstance(error["msg"], str) and error["msg"]
            assert PARSER.parse(reply) == VenueError(f"code {code}: {error['msg']}")
        assert venue.malformed_messages == len(ERRORS)
        assert venue.subscription_count == 0


# --- limits ------------------------------------------------------------------------------------


async def test_five_messages_in_a_second_are_served() -> None:
    async with binance() as venue:
        client = await connect(venue.url)
        for i in range(5):
            request(client, "LIST_SUBSCRIPTIONS", id=i)
        for i in range(5):  # an answer to the 5th proves the venue kept the connection
            assert json.loads((await client.next())[1]) == {"result": [], "id": i}
        assert not client.disconnected.is_set() and len(venue.sessions) == 1


@pytest.mark.parametrize("kinds", [["text"] * 6, ["text", "ping", "pong", "ping", "pong", "text"]])
async def test_sixth_message_in_a_second_closes_the_connection(kinds: list[str]) -> None:
    async with binance() as venue:
        client = await connect(venue.url)
        for i, kind in enumerate(kinds):  # PING, PONG and JSON frames all count
            if kind == "text":
                request(client, "LIST_SUBSCRIPTIONS", id=i)
            elif kind == "ping":
                client.transport.send_ping(b"p")
            else:
                client.transport.send_pong(b"")
        await closed_with(client, "message_rate")
        await wait_until(lambda: not venue.sessions, what="session gone")


async def test_stream_cap() -> None:
    async with binance() as venue:
        client = await connect(venue.url)
        names = [f"t{i:04d}usdt@bookTicker" for i in range(1023)]
        request(client, "SUBSCRIBE", names, id=1)
        assert json.loads((await client.next())[1]) == {"result": None, "id": 1}
        request(client, "SUBSCRIBE", ["btcusdt@bookTicker", "ethusdt@bookTicker"], id=2)
        _, reply = await client.next()
        refused = json.loads(reply)
        assert refused["id"] == 2 and refused["error"]["code"] == 2
        assert "1024" in refused["error"]["msg"]
        assert isinstance(PARSER.parse(reply), VenueError)
        assert venue.subscription_count == 0  # refused whole
        request(client, "SUBSCRIBE", [names[0], "btcusdt@bookTicker", names[1]], id=3)
        assert json.loads((await client.next())[1]) == {"result": None, "id": 3}  # the 1024th
        await client.until(is_quote_for("BTCUSDT"))


async def test_stream_cap_in_the_url() -> None:
    # a small cap: a 1025-stream URL is longer than a WebSocket handshake may be
    async with binance(max_streams=2) as venue:
        base = venue.url.removesuffix("/ws")
        within = await connect(base + "/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker")
        await within.until(is_quote_for("ETHUSDT"))
        url = base + "/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker/solusdt@bookTicker"
        await closed_with(await connect(url), "too_many_streams")
        assert not within.disconnected.is_set()


# --- keepalive, restart notice, lifetime -------------------------------------------------------


async def test_server_pings_and_pong_timeout() -> None:
    async with binance(ping_interval=0.3, pong_timeout=1.0) as venue:
        silent = await connect(venue.url, auto_pong=False)
        polite = await connect(venue.url)  # picows answers each ping with its payload
        msg_type, _ = await silent.next()
        assert msg_type == WSMsgType.PING
        silent.transport.send_pong(b"unsolicited")  # keeps nothing alive
        await closed_with(silent, "pong_timeout")
        # pinged as long as the silent one, but it answered: still connected
        assert not polite.disconnected.is_set() and len(venue.sessions) == 1


async def test_server_shutdown_raw_and_combined() -> None:
    async with binance() as venue:
        raw = await connect(venue.url)
        combined = await connect(venue.url.removesuffix("/ws") + "/stream")
        await venue.wait_for_sessions(2)
        assert venue.send_restart_notice(close_after=0.2) == 2
        _, notice = await raw.next()
        event = json.loads(notice)
        assert list(event) == ["e", "E"] and event["e"] == "serverShutdown"
        _, wrapped = await combined.next()
        frame = json.loads(wrapped)
        assert frame == {
            "stream": "!serverShutdown",
            "data": {"e": "serverShutdown", "E": frame["data"]["E"]},
        }
        assert abs(frame["data"]["E"] - event["E"]) < 1000  # each stamped when sent
        for payload in (notice, wrapped):
            assert PARSER.parse(payload) == RestartNotice("serverShutdown")
        await closed_with(raw, "restart")
        await closed_with(combined, "restart")


async def test_lifetime() -> None:
    async with binance(max_lifetime=0.3) as venue:
        client = await connect(venue.url)
        await closed_with(client, "lifetime")


# --- faults ------------------------------------------------------------------------------------


async def test_exact_quotes_one_sided_and_out_of_order() -> None:
    async with binance() as venue:
        client = await connect(venue.url)
        request(client, "SUBSCRIBE", ["btcusdt@bookTicker"])
        await client.until(is_quote_for("BTCUSDT"))
        venue.pause()  # no random walk: the next frames are the injected ones
        await drain(venue, client)
        venue.set_quote(BTC, "97351.00000000", "3.19766000", None, None)
        sent = venue.last_sent(BTC)
        assert sent is not None
        _, payload = await client.next()
        assert json.loads(payload) == {"u": sent["sequence"], "s": "BTCUSDT"} | {
            "b": "97351.00000000",
            "B": "3.19766000",
            "a": "0.00000000",  # an empty side, the way Binance writes it
            "A": "0.00000000",
        }
        assert PARSER.parse(payload) == QuoteUpdate(
            "BTCUSDT", "97351.00000000", "3.19766000", None, None, 0, sent["sequence"]
        )
        venue.send_out_of_order(BTC)
        _, payload = await client.next()
        stale = PARSER.parse(payload)
        assert isinstance(stale, QuoteUpdate) and stale.symbol == "BTCUSDT"
        assert stale.sequence < sent["sequence"]


async def test_garbage_is_malformed_to_the_parser() -> None:
    async with binance() as venue:
        client = await connect(venue.url)
        await venue.wait_for_sessions(1)
        count = len(venue.personality.garbage_frames())
        venue.send_garbage(count)
        for _ in range(count):
            msg_type, payload = await client.next()
            assert msg_type == WSMsgType.TEXT
            assert isinstance(PARSER.parse(payload), Malformed), payload


async def test_stall_withholds_pushes_and_replies_then_disconnect_all() -> None:
    async with binance() as venue:
        client = await connect(venue.url)
        request(client, "SUBSCRIBE", ["btcusdt@bookTicker"])
        await client.until(is_quote_for("BTCUSDT"))
        stall_ends = time.monotonic() + 0.8
        venue.stall(0.8)
        await drain(venue, client)
        request(client, "LIST_SUBSCRIPTIONS", id=2)
        await quiet_until(client, stall_ends)  # no push, no reply while stalled
        assert venue.sessions[0].received[-1] == '{"method": "LIST_SUBSCRIPTIONS", "id": 2}'
        _, payload = await client.next(timeout=3)  # pushes resume; the request went unanswered
        assert isinstance(PARSER.parse(payload), QuoteUpdate)

        venue.disconnect_all()
        await asyncio.wait_for(client.disconnected.wait(), 3)
        assert client.close_frames == 0  # aborted: no close frame
