"""The MEXC personality (personalities/mexc.py) against a plain picows client: wire format,
the 30-subscription cap, pings, rejections and the venue's own timeouts."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from decimal import Decimal

from picows import WSMsgType

from data_collector.pairs import Pair
from data_collector.simulator import Simulator, pairs_for
from tests.simulator.clients import (
    BLOCKED,
    BTC,
    ETH,
    MEXC_SAMPLE,
    SOL,
    connect,
    is_text,
    mexc_channel,
    mexc_push,
    mexc_subscribe,
    wire_fields,
)


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
