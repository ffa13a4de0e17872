"""The Gate.io personality (personalities/gateio.py) against a plain picows client: acks,
updates, error replies, the application ping and the upgrade notice."""

from __future__ import annotations

import itertools
import json
import time
from decimal import Decimal

from picows import WSMsgType

from data_collector.simulator import Simulator
from tests.simulator.clients import (
    ETH,
    connect,
    gate_subscribe,
    gate_update,
    is_text,
    is_update_for,
)


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
