"""Fault injection (faults.py) on both venues: exact quotes, holds, aborts, stalls, stale
sequences, garbage and planned-restart notices."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from picows import WSMsgType

from data_collector.simulator import Simulator
from tests.helpers import wait_until
from tests.simulator.clients import (
    BTC,
    ETH,
    Client,
    connect,
    drain,
    gate_subscribe,
    gate_update,
    is_push_for,
    is_update_for,
    mexc_channel,
    mexc_push,
    mexc_subscribe,
    quiet_until,
    wire_fields,
)


async def quoting_btc(sim: Simulator) -> tuple[Client, Client]:
    """A MEXC and a Gate client, each subscribed to BTC/USDT and past its first update."""
    m_client, g_client = await connect(sim.urls["mexc"]), await connect(sim.urls["gateio"])
    mexc_subscribe(m_client, mexc_channel(BTC))
    gate_subscribe(g_client, "BTC_USDT")
    await m_client.until(is_push_for("BTCUSDT"))
    await g_client.until(is_update_for("BTC_USDT"))
    return m_client, g_client


async def test_set_quote_exact_strings_and_hold(sim: Simulator) -> None:
    mexc, gate = sim.venues["mexc"], sim.venues["gateio"]
    m_client, g_client = await connect(sim.urls["mexc"]), await connect(sim.urls["gateio"])
    mexc_subscribe(m_client, mexc_channel(BTC), mexc_channel(ETH))
    gate_subscribe(g_client, "BTC_USDT", "ETH_USDT")
    await mexc.wait_for_subscriptions(2)
    await gate.wait_for_subscriptions(2)
    # a walked BTC push may still be on its way: the next one must be the exact quote
    await drain(mexc, m_client)
    await drain(gate, g_client)

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
    await wait_until(lambda: gate.sessions == [], what="sessions gone")

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

    stall_ends = time.monotonic() + 0.8
    gate.stall(0.8)
    await drain(gate, client)
    client.send_json({"time": int(time.time()), "channel": "spot.ping"})
    client.transport.send_ping(b"x")
    await quiet_until(client, stall_ends)
    msg_type, payload = await client.next(timeout=3)  # pushes resume after the stall
    assert msg_type == WSMsgType.TEXT and gate_update(payload) is not None
    assert gate.sessions[0].received[-1].endswith('"spot.ping"}')  # heard, not answered


async def test_out_of_order_sequences(sim: Simulator) -> None:
    mexc, gate = sim.venues["mexc"], sim.venues["gateio"]
    m_client, g_client = await quoting_btc(sim)

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
    m_client, g_client = await quoting_btc(sim)
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


async def test_restart_notice_then_close(sim: Simulator) -> None:
    gate = sim.venues["gateio"]
    notified = await connect(sim.urls["gateio"])
    await gate.wait_for_sessions(1)
    assert gate.send_restart_notice(close_after=0.2) == 1
    _, notice = await notified.until(lambda t, p: gate_update(p) is None)
    assert json.loads(notice)["event"] == "upgrade"

    later = await connect(sim.urls["gateio"])  # connected after the notice: left alone
    await notified.until(lambda t, p: t == WSMsgType.CLOSE)
    assert notified.close_reason == "restart"
    later.send_json({"time": int(time.time()), "channel": "spot.ping"})
    _, pong = await later.until(lambda t, p: gate_update(p) is None)
    assert json.loads(pong)["channel"] == "spot.pong" and later.close_frames == 0


async def test_a_venue_without_a_restart_notice_says_so(sim: Simulator) -> None:
    await connect(sim.urls["mexc"])
    await sim.venues["mexc"].wait_for_sessions(1)
    with pytest.raises(NotImplementedError, match="mexc has no planned-restart notice"):
        sim.venues["mexc"].send_restart_notice()
