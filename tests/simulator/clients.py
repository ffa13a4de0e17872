"""Plain picows clients of the simulated venues, written here (not the project's venue code).

Tests pull frames with deadlines; the few "nothing arrives" checks first drain everything the
server says it sent (:func:`drain`), then judge each frame by when it arrived
(:func:`quiet_until`), so a test slowed down by a busy machine cannot fail them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from data_collector.pairs import Pair
from data_collector.simulator import Personality, VenueServer, pairs_for
from data_collector.simulator.market import Market
from tests.helpers import wait_until

BTC, ETH, SOL = Pair("BTC", "USDT"), Pair("ETH", "USDT"), Pair("SOL", "USDT")
# the aggre book-ticker frame quoted in EXCHANGES.md
MEXC_SAMPLE = (
    "CjRzcG90QHB1YmxpYy5hZ2dyZS5ib29rVGlja2VyLnYzLmFwaS5wYkAxMDBtc0BCVENVU0RUGgdCVENVU0RUMKfT0vGLNN"
    "oTPgoIODA1MzUuODgSCDAuMzgwNDk3Ggg4MDUzNS44OSIKMC4zMzMzNjM1NioLODE3MjE2NzYyMTcwjtPS8Ys0"
)
BLOCKED = "].  Reason： Blocked! "  # closes the bracketed channel list


def _load_pb2() -> ModuleType:
    try:
        from data_collector.venues.proto import mexc_push_pb2
    except ImportError:  # the venues package is being rewritten: load the generated file alone
        path = Path(__file__).parents[2] / "src/data_collector/venues/proto/mexc_push_pb2.py"
        spec = importlib.util.spec_from_file_location("_sim_test_mexc_push_pb2", path)
        assert spec is not None and spec.loader is not None
        mexc_push_pb2 = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mexc_push_pb2)
    return mexc_push_pb2


pb2 = _load_pb2()


class Client(WSListener):
    """Records every frame; tests pull them with deadlines."""

    def __init__(self) -> None:
        self.transport: WSTransport
        self.queue: asyncio.Queue[tuple[WSMsgType, bytes]] = asyncio.Queue()
        self.count = 0
        #: monotonic arrival time of every frame, in order
        self.arrivals: list[float] = []
        self.close_frames = 0
        #: the reason the server gave in its close frame ("" before one arrived)
        self.close_reason = ""
        self.disconnected = asyncio.Event()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            self.close_frames += 1
            self.close_reason = (frame.get_close_message() or b"").decode()
        self.count += 1
        self.arrivals.append(time.monotonic())
        self.queue.put_nowait((frame.msg_type, frame.get_payload_as_bytes()))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.disconnected.set()

    def send_json(self, message: dict[str, Any]) -> None:
        self.transport.send(WSMsgType.TEXT, json.dumps(message).encode())

    async def next(self, timeout: float = 3.0) -> tuple[WSMsgType, bytes]:
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def until(
        self, match: Callable[[WSMsgType, bytes], bool], timeout: float = 3.0
    ) -> tuple[WSMsgType, bytes]:
        """The first frame ``match`` accepts; frames before it are discarded."""
        deadline = time.monotonic() + timeout
        while True:
            msg_type, payload = await self.next(max(0.001, deadline - time.monotonic()))
            if match(msg_type, payload):
                return msg_type, payload


async def connect(url: str, *, auto_pong: bool = True) -> Client:
    """A connected client; without ``auto_pong`` it sees the server's pings and answers none."""
    _, client = await ws_connect(Client, url, enable_auto_pong=auto_pong)
    assert isinstance(client, Client)
    return client


@contextlib.asynccontextmanager
async def serving(personality: Personality, pairs: int = 3) -> AsyncIterator[VenueServer]:
    """One venue with ``personality`` (a test's variant of a real one) on loopback, paused."""
    venue = VenueServer(personality, Market(pairs_for(pairs)), rate_hz=0)
    await venue.start()
    try:
        yield venue
    finally:
        await venue.stop()


async def drain(venue: VenueServer, client: Client) -> None:
    """Wait until ``client`` received all the venue sent to it, then forget those frames."""
    await wait_until(lambda: client.count >= venue.sessions[0].frames_sent, what="drained")
    while not client.queue.empty():
        client.queue.get_nowait()


async def quiet_until(client: Client, end: float) -> None:
    """Fail if a frame arrives before monotonic time ``end``. A later frame stays queued for the
    test; it is judged by its arrival time, however late the test gets to look."""
    seen = client.count
    while client.count == seen and time.monotonic() < end:
        await asyncio.sleep(0.01)
    if client.count > seen:
        early = client.arrivals[seen] - end
        assert early >= 0, f"a frame arrived {-early:.3f} s before the quiet window ended"


def is_text(msg_type: WSMsgType, payload: bytes) -> bool:
    return msg_type == WSMsgType.TEXT


def mexc_channel(pair: Pair, interval: str = "100ms") -> str:
    return f"spot@public.aggre.bookTicker.v3.api.pb@{interval}@{pair.base}{pair.quote}"


def mexc_subscribe(client: Client, *channels: str) -> None:
    client.send_json({"method": "SUBSCRIPTION", "params": list(channels)})


def gate_subscribe(client: Client, *symbols: str, **overrides: Any) -> None:
    request = {
        "time": int(time.time()),
        "id": 123456789,
        "channel": "spot.book_ticker",
        "event": "subscribe",
        "payload": list(symbols),
    }
    client.send_json(request | overrides)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def wire_fields(data: bytes) -> list[tuple[int, bytes | int]]:
    """(field number, raw value) in the order they appear on the wire."""
    fields: list[tuple[int, bytes | int]] = []
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        if key & 7 == 0:
            value, pos = read_varint(data, pos)
            fields.append((key >> 3, value))
        elif key & 7 == 2:
            size, pos = read_varint(data, pos)
            fields.append((key >> 3, data[pos : pos + size]))
            pos += size
        else:
            raise AssertionError(f"unexpected wire type {key & 7}")
    return fields


def mexc_push(payload: bytes) -> Any:
    wrapper = pb2.PushDataV3ApiWrapper()
    wrapper.ParseFromString(payload)
    return wrapper


def is_push_for(symbol: str) -> Callable[[WSMsgType, bytes], bool]:
    def match(msg_type: WSMsgType, payload: bytes) -> bool:
        return msg_type == WSMsgType.BINARY and mexc_push(payload).symbol == symbol

    return match


def gate_update(payload: bytes) -> dict[str, Any] | None:
    message = json.loads(payload)
    return message["result"] if message.get("event") == "update" else None


def is_update_for(symbol: str) -> Callable[[WSMsgType, bytes], bool]:
    def match(msg_type: WSMsgType, payload: bytes) -> bool:
        update = gate_update(payload)
        return update is not None and update["s"] == symbol

    return match


# --- Bybit ---------------------------------------------------------------------------------------

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def bybit_symbol(pair: Pair) -> str:
    return f"{pair.base}{pair.quote}"


def send_text(client: Client, text: str) -> None:
    client.transport.send(WSMsgType.TEXT, text.encode())


def bybit_subscribe(client: Client, *symbols: str, req_id: str = "1") -> None:
    args = [f"orderbook.1.{s}" for s in symbols]
    client.send_json({"req_id": req_id, "op": "subscribe", "args": args})


def bybit_message(msg_type: WSMsgType, payload: bytes) -> dict[str, Any]:
    """The frame as a JSON object ({} when it is none: garbage, a binary frame)."""
    try:
        message = json.loads(payload) if msg_type == WSMsgType.TEXT else None
    except ValueError:
        message = None
    return message if isinstance(message, dict) else {}


def is_bybit_snapshot(venue_symbol: str) -> Callable[[WSMsgType, bytes], bool]:
    def match(msg_type: WSMsgType, payload: bytes) -> bool:
        return bybit_message(msg_type, payload).get("topic") == f"orderbook.1.{venue_symbol}"

    return match


def is_bybit_book(pair: Pair, bid: str) -> Callable[[WSMsgType, bytes], bool]:
    """A snapshot of ``pair`` whose best bid is ``bid``."""

    def match(msg_type: WSMsgType, payload: bytes) -> bool:
        if not is_bybit_snapshot(bybit_symbol(pair))(msg_type, payload):
            return False
        bids = bybit_message(msg_type, payload)["data"]["b"]
        return bool(bids) and bids[0][0] == bid

    return match


def is_bybit_reply(op: str) -> Callable[[WSMsgType, bytes], bool]:
    def match(msg_type: WSMsgType, payload: bytes) -> bool:
        message = bybit_message(msg_type, payload)
        return "topic" not in message and message.get("op") == op

    return match


def without_conn_id(payload: bytes) -> bytes:
    """The reply with its (random) conn_id replaced by ``"..."``, as the docs print it."""
    replaced, count = re.subn(rf'"conn_id":"{_UUID}"'.encode(), b'"conn_id":"..."', payload)
    assert count == 1, payload
    return replaced
