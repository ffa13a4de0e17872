"""The venue simulator against plain picows clients written here (not the project's venue code).

Every check waits on frames with deadlines; the few "nothing arrives" checks bound a quiet window
after first draining everything the server says it sent.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytest_asyncio
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from data_collector.pairs import Pair
from data_collector.simulator import DEFAULT_PAIRS, Simulator, VenueServer, pairs_for
from data_collector.simulator.market import Market, format_qty, format_units, start_price

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


# ---------------------------------------------------------------------------- client helpers


class Client(WSListener):
    """Records every frame; tests pull them with deadlines."""

    def __init__(self) -> None:
        self.transport: WSTransport
        self.queue: asyncio.Queue[tuple[WSMsgType, bytes]] = asyncio.Queue()
        self.count = 0
        self.close_frames = 0
        self.disconnected = asyncio.Event()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            self.close_frames += 1
        self.count += 1
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


async def connect(url: str) -> Client:
    _, client = await ws_connect(Client, url)
    assert isinstance(client, Client)
    return client


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def drain(venue: VenueServer, client: Client) -> None:
    """Wait until ``client`` received all the venue sent to it, then forget those frames."""
    await eventually(lambda: client.count >= venue.sessions[0].frames_sent)
    while not client.queue.empty():
        client.queue.get_nowait()


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


@pytest_asyncio.fixture(loop_scope="function")
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(pairs_for(35), rate_hz=20, seed=7) as simulator:
        yield simulator


# ------------------------------------------------------------------------------------ MEXC


async def test_mexc_ack_and_push_wire_format(sim: Simulator) -> None:
    client = await connect(sim.urls["mexc"])
    channels = [mexc_channel(BTC), mexc_channel(ETH, "10ms")]
    mexc_subscribe(client, *channels)
    _, ack = await client.until(is_text)
    assert ack.decode() == '{"id":0,"code":0,"msg":"' + ",".join(channels) + '"}'

    sample = wire_fields(base64.b64decode(MEXC_SAMPLE))
    body = sample[3][1]
    assert isinstance(body, bytes)
    assert [n for n, _ in sample] == [1, 3, 6, 315]
    assert [n for n, _ in wire_fields(body)] == [1, 2, 3, 4, 5, 6]

    versions: dict[str, list[int]] = {"BTCUSDT": [], "ETHUSDT": []}
    while min(len(v) for v in versions.values()) < 3:
        msg_type, payload = await client.next()
        assert msg_type == WSMsgType.BINARY
        fields = wire_fields(payload)
        assert [number for number, _ in fields] == [1, 3, 6, 315]
        body = fields[3][1]
        assert isinstance(body, bytes)
        assert [number for number, _ in wire_fields(body)] == [1, 2, 3, 4, 5, 6]
        wrapper = mexc_push(payload)
        assert wrapper.SerializeToString() == payload  # canonical encoding of the schema
        assert wrapper.channel == channels[wrapper.symbol == "ETHUSDT"]
        assert abs(wrapper.sendTime - time.time() * 1000) < 5000
        ticker = wrapper.publicAggreBookTicker
        assert Decimal(ticker.bidPrice) < Decimal(ticker.askPrice)
        assert Decimal(ticker.bidQuantity) > 0 and Decimal(ticker.askQuantity) > 0
        assert 0 <= wrapper.sendTime - ticker.lastOrderCreateTime < 25
        versions[wrapper.symbol].append(int(ticker.version))
    for seen in versions.values():
        assert seen == sorted(set(seen))


async def test_mexc_subscription_limit(sim: Simulator) -> None:
    venue = sim.venues["mexc"]
    client = await connect(sim.urls["mexc"])
    channels = [mexc_channel(pair) for pair in pairs_for(32)]
    mexc_subscribe(client, *channels[:31])
    _, ack = await client.until(is_text)
    expected = (
        f"Subscribed successful! [{','.join(channels[:30])}]. "
        f"Not Subscribed successfully! [{channels[30]}{BLOCKED}"
    )
    assert json.loads(ack) == {"id": 0, "code": 0, "msg": expected}
    await venue.wait_for_subscriptions(30)

    mexc_subscribe(client, channels[31])
    _, ack = await client.until(is_text)
    msg = f"Not Subscribed successfully! [{channels[31]}{BLOCKED}"
    assert ack.decode() == '{"id":0,"code":0,"msg":"' + msg + '"}'  # raw UTF-8, no escapes
    mexc_subscribe(client, channels[0])  # already held: still fine
    _, ack = await client.until(is_text)
    assert json.loads(ack)["msg"] == channels[0]
    assert len(venue.sessions[0].subscriptions) == 30


async def test_mexc_ping_and_rejections(sim: Simulator) -> None:
    venue = sim.venues["mexc"]
    client = await connect(sim.urls["mexc"])
    for method in ("PING", "ping"):
        client.send_json({"method": method})
        _, pong = await client.until(is_text)
        assert pong == b'{"id":0,"code":0,"msg":"PONG"}'

    client.transport.send_ping(b"rfc")
    _, payload = await client.until(lambda t, p: t == WSMsgType.PONG)
    assert payload == b"rfc"

    venue.reject(SOL)
    json_channel = "spot@public.aggre.bookTicker.v3.api@100ms@ETHUSDT"
    unknown = mexc_channel(Pair("NOPE", "USDT"))
    mexc_subscribe(client, mexc_channel(BTC), json_channel, mexc_channel(SOL), unknown)
    _, ack = await client.until(is_text)
    rejected = ",".join([json_channel, mexc_channel(SOL), unknown])
    expected = (
        f"Subscribed successful! [{mexc_channel(BTC)}]. "
        f"Not Subscribed successfully! [{rejected}{BLOCKED}"
    )
    assert json.loads(ack) == {"id": 0, "code": 0, "msg": expected}
    assert venue.sessions[0].subscriptions == {"BTCUSDT"}

    mexc_subscribe(client, mexc_channel(SOL))
    _, ack = await client.until(is_text)
    assert json.loads(ack)["msg"] == f"Not Subscribed successfully! [{mexc_channel(SOL)}{BLOCKED}"


async def test_mexc_timeouts() -> None:
    options = {"mexc": {"no_subscription_timeout": 0.3, "idle_timeout": 0.8}}
    async with Simulator(pairs_for(3), venues=("mexc",), venue_options=options) as sim:
        venue = sim.venues["mexc"]
        venue.pause()  # no data flow: only client messages keep a session alive
        started = time.monotonic()
        silent_unsubscribed = await connect(sim.urls["mexc"])
        silent_subscribed = await connect(sim.urls["mexc"])
        pinging = await connect(sim.urls["mexc"])
        mexc_subscribe(silent_subscribed, mexc_channel(BTC))
        mexc_subscribe(pinging, mexc_channel(ETH))
        await venue.wait_for_subscriptions(2)

        async def keep_pinging() -> None:
            while True:
                pinging.send_json({"method": "PING"})
                await asyncio.sleep(0.1)

        pinger = asyncio.create_task(keep_pinging())
        try:
            await asyncio.wait_for(silent_unsubscribed.disconnected.wait(), 3)
            assert time.monotonic() - started >= 0.3
            assert not silent_subscribed.disconnected.is_set()
            await asyncio.wait_for(silent_subscribed.disconnected.wait(), 3)
            assert time.monotonic() - started >= 0.8
            assert not pinging.disconnected.is_set()
        finally:
            pinger.cancel()
        await asyncio.wait_for(pinging.disconnected.wait(), 3)  # silent now: dropped too


# ------------------------------------------------------------------------------------- Gate


async def test_gate_ack_and_rising_updates(sim: Simulator) -> None:
    client = await connect(sim.urls["gateio"])
    gate_subscribe(client, "BTC_USDT", "ETH_USDT")
    _, ack = await client.until(is_text)
    reply = json.loads(ack)
    assert list(reply) == ["time", "time_ms", "id", "channel", "event", "error", "result"]
    assert reply["id"] == 123456789 and reply["channel"] == "spot.book_ticker"
    assert reply["event"] == "subscribe" and reply["error"] is None
    assert reply["result"] == {"status": "success"}
    assert reply["time"] == reply["time_ms"] // 1000

    seen: dict[str, list[int]] = {"BTC_USDT": [], "ETH_USDT": []}
    while min(len(v) for v in seen.values()) < 6:
        _, payload = await client.next()
        frame = json.loads(payload)
        assert list(frame) == ["time", "time_ms", "channel", "event", "result"]
        assert frame["channel"] == "spot.book_ticker" and frame["event"] == "update"
        result = frame["result"]
        assert list(result) == ["t", "u", "s", "b", "B", "a", "A"]
        assert all(isinstance(result[k], str) for k in "bBaA")
        assert Decimal(result["b"]) < Decimal(result["a"])
        assert frame["time"] == frame["time_ms"] // 1000 and result["t"] <= frame["time_ms"]
        seen[result["s"]].append(result["u"])
    for updates in seen.values():
        assert all(a < b for a, b in itertools.pairwise(updates))
    deltas = [b - a for u in seen.values() for a, b in itertools.pairwise(u)]
    assert max(deltas) > 1  # `u` skips values


async def test_gate_errors_ping_and_upgrade(sim: Simulator) -> None:
    venue = sim.venues["gateio"]
    client = await connect(sim.urls["gateio"])

    gate_subscribe(client, "BTC_USDT", "GIBBERISH_USD")
    _, reply = await client.until(is_text)
    error = json.loads(reply)
    assert error["error"] == {"code": 2, "message": "unknown currency pair GIBBERISH_USD"}
    assert error["result"] is None and error["event"] == "subscribe"
    await client.until(is_update_for("BTC_USDT"))  # the valid pair was subscribed anyway

    def not_update(msg_type: WSMsgType, payload: bytes) -> bool:
        return gate_update(payload) is None

    for bad in ({"time": int(time.time()) - 120}, {"id": 2**31}, {"payload": "BTC_USDT"}):
        gate_subscribe(client, "ETH_USDT", **bad)
        _, reply = await client.until(not_update)
        assert json.loads(reply)["error"]["code"] == 2, bad

    venue.reject(ETH)
    gate_subscribe(client, "ETH_USDT")
    _, reply = await client.until(not_update)
    assert json.loads(reply)["error"] == {"code": 2, "message": "unknown currency pair ETH_USDT"}
    assert venue.sessions[0].subscriptions == {"BTC_USDT"}

    client.send_json({"time": int(time.time()), "channel": "spot.ping"})
    _, pong = await client.until(not_update)
    frame = json.loads(pong)
    assert list(frame) == ["time", "channel", "event", "error", "result"]
    assert frame == {"time": frame["time"], "channel": "spot.pong", "event": ""} | {
        "error": None,
        "result": None,
    }

    venue.send_upgrade()
    _, upgrade = await client.until(not_update)
    frame = json.loads(upgrade)
    assert list(frame) == ["time", "time_ms", "channel", "event", "error", "result"]
    assert (frame["channel"], frame["event"], frame["error"], frame["result"]) == (
        "",
        "upgrade",
        None,
        None,
    )


# ------------------------------------------------------------------------ fault injection


async def test_set_quote_exact_strings_and_hold(sim: Simulator) -> None:
    mexc, gate = sim.venues["mexc"], sim.venues["gateio"]
    m_client, g_client = await connect(sim.urls["mexc"]), await connect(sim.urls["gateio"])
    mexc_subscribe(m_client, mexc_channel(BTC), mexc_channel(ETH))
    gate_subscribe(g_client, "BTC_USDT", "ETH_USDT")
    await mexc.wait_for_subscriptions(2)
    await gate.wait_for_subscriptions(2)

    for venue in (mexc, gate):
        venue.set_quote(BTC, "12345.67", "0.001200", "12345.68", "3")
    wanted = mexc.last_sent(BTC)
    assert wanted is not None and wanted["bid_qty"] == "0.001200"
    _, payload = await m_client.until(is_push_for("BTCUSDT"))
    ticker = mexc_push(payload).publicAggreBookTicker
    assert (ticker.bidPrice, ticker.bidQuantity, ticker.askPrice, ticker.askQuantity) == (
        "12345.67",
        "0.001200",
        "12345.68",
        "3",
    )
    assert int(ticker.version) == wanted["sequence"]
    _, payload = await g_client.until(is_update_for("BTC_USDT"))
    result = gate_update(payload)
    assert result is not None and gate.last_sent(BTC) is not None
    assert [result[k] for k in "bBaA"] == ["12345.67", "0.001200", "12345.68", "3"]
    assert result["u"] == gate.last_sent(BTC)["sequence"]  # type: ignore[index]

    # one-sided book: the bid is missing (proto3 omits the fields; Gate omits the keys)
    mexc.set_quote(BTC, None, None, "12345.70", "1.5")
    gate.set_quote(BTC, None, None, "12345.70", "1.5")
    _, payload = await m_client.until(is_push_for("BTCUSDT"))
    body = wire_fields(payload)[3][1]
    assert isinstance(body, bytes) and [n for n, _ in wire_fields(body)] == [3, 4, 5, 6]
    _, payload = await g_client.until(is_update_for("BTC_USDT"))
    assert list(gate_update(payload) or {}) == ["t", "u", "s", "a", "A"]

    # held: ETH keeps moving, BTC stays silent until released
    for _ in range(4):
        _, payload = await m_client.next()
        assert mexc_push(payload).symbol == "ETHUSDT"
    held_version = mexc.last_sent(BTC)["sequence"]  # type: ignore[index]
    mexc.release(BTC)
    _, payload = await m_client.until(is_push_for("BTCUSDT"))
    assert int(mexc_push(payload).publicAggreBookTicker.version) > held_version


async def test_disconnect_all_is_abrupt_and_book_survives(sim: Simulator) -> None:
    gate = sim.venues["gateio"]
    client, other = await connect(sim.urls["gateio"]), await connect(sim.urls["mexc"])
    gate_subscribe(client, "BTC_USDT")
    _, payload = await client.until(is_update_for("BTC_USDT"))
    last_u = json.loads(payload)["result"]["u"]

    gate.disconnect_all()
    await asyncio.wait_for(client.disconnected.wait(), 3)
    assert client.close_frames == 0 and client.transport.close_handshake is None
    assert not other.disconnected.is_set()  # the other venue is untouched
    await eventually(lambda: gate.sessions == [])

    again = await connect(sim.urls["gateio"])
    gate_subscribe(again, "BTC_USDT")
    _, payload = await again.until(is_update_for("BTC_USDT"))
    assert json.loads(payload)["result"]["u"] > last_u
    assert gate.total_connections == 2


async def test_stall_goes_silent_then_recovers(sim: Simulator) -> None:
    gate = sim.venues["gateio"]
    client = await connect(sim.urls["gateio"])
    gate_subscribe(client, "BTC_USDT", "ETH_USDT")
    await client.until(is_update_for("BTC_USDT"))

    gate.stall(0.8)
    stalled_at = time.monotonic()
    await drain(gate, client)
    client.send_json({"time": int(time.time()), "channel": "spot.ping"})
    client.transport.send_ping(b"x")
    with pytest.raises(TimeoutError):
        await client.next(timeout=max(0.05, 0.6 - (time.monotonic() - stalled_at)))
    assert gate.stalled
    msg_type, payload = await client.next(timeout=3)  # pushes resume after the stall
    assert msg_type == WSMsgType.TEXT and gate_update(payload) is not None
    assert gate.sessions[0].received[-1].endswith('"spot.ping"}')  # heard, not answered


async def test_out_of_order_sequences(sim: Simulator) -> None:
    mexc, gate = sim.venues["mexc"], sim.venues["gateio"]
    m_client, g_client = await connect(sim.urls["mexc"]), await connect(sim.urls["gateio"])
    mexc_subscribe(m_client, mexc_channel(BTC))
    gate_subscribe(g_client, "BTC_USDT")
    await m_client.until(is_push_for("BTCUSDT"))
    await g_client.until(is_update_for("BTC_USDT"))

    def mexc_version(payload: bytes) -> int:
        return int(mexc_push(payload).publicAggreBookTicker.version)

    def gate_u(payload: bytes) -> int:
        return json.loads(payload)["result"]["u"]

    cases = ((mexc, m_client, mexc_version), (gate, g_client, gate_u))
    for venue, client, sequence in cases:
        venue.pause()
        await drain(venue, client)
        last = venue.last_sent(BTC)
        assert last is not None
        venue.send_out_of_order(BTC)
        _, payload = await client.next()
        assert sequence(payload) < last["sequence"]
        venue.resume()
        _, payload = await client.next()
        assert sequence(payload) > last["sequence"]  # the walk continues above it


async def test_garbage_is_undecodable_but_connection_stays(sim: Simulator) -> None:
    mexc, gate = sim.venues["mexc"], sim.venues["gateio"]
    m_client, g_client = await connect(sim.urls["mexc"]), await connect(sim.urls["gateio"])
    mexc_subscribe(m_client, mexc_channel(BTC))
    gate_subscribe(g_client, "BTC_USDT")
    await m_client.until(is_push_for("BTCUSDT"))
    await g_client.until(is_update_for("BTC_USDT"))
    mexc.send_garbage(4)
    gate.send_garbage(4)

    def mexc_valid(msg_type: WSMsgType, payload: bytes) -> bool:
        try:
            if msg_type == WSMsgType.TEXT:
                return isinstance(json.loads(payload), dict)
            return bool(mexc_push(payload).symbol)
        except Exception:
            return False

    def gate_valid(msg_type: WSMsgType, payload: bytes) -> bool:
        try:
            result = json.loads(payload)["result"]
            return isinstance(result["u"], int) and isinstance(result["s"], str)
        except Exception:
            return False

    for client, valid in ((m_client, mexc_valid), (g_client, gate_valid)):
        bad = 0
        while bad < 4:
            bad += not valid(*await client.next())
        assert valid(*await client.next())  # still connected and pushing
        assert not client.disconnected.is_set()


async def test_flood_delivers_every_frame_in_order() -> None:
    async with Simulator(pairs_for(3), rate_hz=0, venues=("mexc",)) as sim:
        venue = sim.venues["mexc"]
        client = await connect(sim.urls["mexc"])
        mexc_subscribe(client, *(mexc_channel(pair) for pair in (BTC, ETH, SOL)))
        await client.until(is_text)
        sent = await venue.flood(frames=3000)
        assert sent == 3000 and venue.updates_sent == 3000
        versions: dict[str, int] = {}
        for _ in range(3000):
            _, payload = await client.next()
            ticker = mexc_push(payload)
            version = int(ticker.publicAggreBookTicker.version)
            assert version > versions.get(ticker.symbol, 0)
            versions[ticker.symbol] = version
        assert versions["BTCUSDT"] == venue.last_sent(BTC)["sequence"]  # type: ignore[index]


async def test_backpressure_bounds_memory_and_coalesces() -> None:
    async with Simulator(pairs_for(3), rate_hz=0, venues=("mexc",)) as sim:
        venue = sim.venues["mexc"]
        client = await connect(sim.urls["mexc"])
        mexc_subscribe(client, mexc_channel(BTC), mexc_channel(ETH))
        await client.until(is_text)
        client.transport.underlying_transport.pause_reading()
        flood = asyncio.create_task(venue.flood(frames=None))
        session = venue.sessions[0]
        await eventually(lambda: session.write_paused, timeout=5)
        buffered = session.transport.underlying_transport.get_write_buffer_size()
        assert buffered < 1 << 20

        venue.set_quote(BTC, "1.00", "2", "1.01", "3")  # skipped now, delivered once drained
        assert venue.skipped_backpressure >= 1 and session.dirty == {0}
        venue.stop_flood()
        client.transport.underlying_transport.resume_reading()
        assert await asyncio.wait_for(flood, 5) > 0
        _, payload = await client.until(
            lambda t, p: mexc_push(p).publicAggreBookTicker.bidPrice == "1.00", timeout=5
        )
        assert (
            int(mexc_push(payload).publicAggreBookTicker.version)
            == (
                venue.last_sent(BTC)["sequence"]  # type: ignore[index]
            )
        )


# ---------------------------------------------------------------------- pairs, market, CLI


def test_pairs_and_market_are_deterministic() -> None:
    assert DEFAULT_PAIRS[:3] == [BTC, ETH, SOL]
    pairs = pairs_for(len(DEFAULT_PAIRS) + 2)
    assert pairs[-2:] == [Pair("T001", "USDT"), Pair("T002", "USDT")]
    assert len(set(pairs)) == len(pairs)
    assert start_price(BTC) == 80_000.0  # well-known pairs start at a realistic price
    unknown = [pair for pair in pairs if pair.base.startswith("T0")]
    assert all(0.5 <= start_price(pair) < 50_000 for pair in unknown)
    assert Market(pairs).mid(0, 0.0) == Market(pairs).mid(0, 0.0)
    assert format_units(5, 3) == "0.005" and format_units(123456, 2) == "1234.56"
    assert format_qty(1200, 4) == "0.12" and format_qty(30000, 4) == "3"


async def test_cli_prints_urls_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "data_collector.simulator",
        "--pairs",
        "2",
        "--rate",
        "50",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        urls = {}
        while len(urls) < 2:
            line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
            name, _, url = line.strip().partition(": ")
            if url.startswith("ws://"):
                urls[name] = url
        client = await connect(urls["gateio"])
        gate_subscribe(client, "ETH_USDT")
        await client.until(is_update_for("ETH_USDT"))
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
