"""The OKX personality (personalities/okx.py) against a plain picows client: one ack per arg,
60018 rejections, illegal requests, the 480-an-hour budget, text ping, idle closes, the 64008
restart notice, and the project's parser decoding what it pushes (an independent cross-check)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from picows import WSMsgType

from data_collector.simulator import Simulator, pairs_for
from data_collector.simulator.personalities.okx import OkxPersonality, conn_id
from data_collector.venues.base import (
    Malformed,
    Pong,
    QuoteUpdate,
    RestartNotice,
    SubscribeResult,
    VenueError,
)
from data_collector.venues.okx import Okx
from tests.simulator.clients import BTC, ETH, Client, connect, drain, serving

PARSER = Okx()
DOC_60018 = (
    "Wrong URL or channel:bbo-tbt,instId:{} doesn't exist. Please use the correct URL, "
    "channel and parameters referring to API document."
)


def okx_request(client: Client, op: str, *inst_ids: str, request_id: str | None = "1") -> None:
    request: dict[str, Any] = {} if request_id is None else {"id": request_id}
    request["op"] = op
    request["args"] = [{"channel": "bbo-tbt", "instId": i} for i in inst_ids]
    client.send_json(request)


def is_push(msg_type: WSMsgType, payload: bytes) -> bool:
    return msg_type == WSMsgType.TEXT and payload.startswith(b'{"arg":')


def is_reply(msg_type: WSMsgType, payload: bytes) -> bool:
    return msg_type == WSMsgType.TEXT and not payload.startswith(b'{"arg":')


def is_push_for(inst_id: str) -> Callable[[WSMsgType, bytes], bool]:
    def match(msg_type: WSMsgType, payload: bytes) -> bool:
        return is_push(msg_type, payload) and json.loads(payload)["arg"]["instId"] == inst_id

    return match


async def replies(client: Client, n: int) -> list[bytes]:
    return [(await client.until(is_reply))[1] for _ in range(n)]


@pytest_asyncio.fixture(loop_scope="function")
async def okx_sim() -> AsyncIterator[Simulator]:
    async with Simulator(pairs_for(5), rate_hz=20, seed=3, venues=("okx",)) as simulator:
        yield simulator


async def test_one_ack_per_arg_and_the_push_format(okx_sim: Simulator) -> None:
    venue = okx_sim.venues["okx"]
    assert venue.url.endswith("/ws/v5/public")
    client = await connect(okx_sim.urls["okx"])
    okx_request(client, "subscribe", "BTC-USDT", "ETH-USDT")
    acks = await replies(client, 2)
    cid = conn_id(venue.sessions[0])
    assert acks == [
        b'{"id":"1","event":"subscribe","arg":{"channel":"bbo-tbt","instId":"%s"},'
        b'"connId":"%s"}' % (inst.encode(), cid.encode())
        for inst in ("BTC-USDT", "ETH-USDT")
    ]
    assert [PARSER.parse(ack) for ack in acks] == [
        SubscribeResult(["BTC-USDT"], []),
        SubscribeResult(["ETH-USDT"], []),
    ]

    seen: dict[str, list[int]] = {"BTC-USDT": [], "ETH-USDT": []}
    while min(len(v) for v in seen.values()) < 5:
        _, payload = await client.until(is_push)
        frame = json.loads(payload)
        assert list(frame) == ["arg", "data"] and list(frame["arg"]) == ["channel", "instId"]
        (item,) = frame["data"]
        assert list(item) == ["asks", "bids", "ts", "seqId"]
        (ask,), (bid,) = item["asks"], item["bids"]
        for level in (ask, bid):
            assert len(level) == 4 and level[2] == "0" and all(isinstance(x, str) for x in level)
            assert int(level[3]) >= 1 and Decimal(level[1]) > 0
        assert Decimal(bid[0]) < Decimal(ask[0])
        assert isinstance(item["ts"], str) and isinstance(item["seqId"], int)
        inst = frame["arg"]["instId"]
        # the project's parser reads exactly what the oracle wrote
        assert PARSER.parse(payload) == QuoteUpdate(
            inst, bid[0], bid[1], ask[0], ask[1], int(item["ts"]), item["seqId"]
        )
        seen[inst].append(item["seqId"])
    for sequence in seen.values():
        assert all(a < b for a, b in itertools.pairwise(sequence))

    okx_request(client, "unsubscribe", "ETH-USDT", request_id=None)
    (ack,) = await replies(client, 1)
    expected = '{"event":"unsubscribe","arg":{"channel":"bbo-tbt","instId":"ETH-USDT"},'
    assert ack.decode() == expected + f'"connId":"{cid}"}}'
    await venue.wait_for_subscriptions(1)
    assert venue.sessions[0].subscriptions == {"BTC-USDT"}


async def test_unknown_and_rejected_instruments_get_60018(okx_sim: Simulator) -> None:
    venue = okx_sim.venues["okx"]
    client = await connect(okx_sim.urls["okx"])
    okx_request(client, "subscribe", "FOO-USDT", "BTC-USDT")
    error, ack = await replies(client, 2)
    cid = conn_id(venue.sessions[0])
    # the documented error, byte for byte (plus the echoed id)
    msg = DOC_60018.format("FOO-USDT")
    assert error.decode() == (
        f'{{"id":"1","event":"error","code":"60018","msg":"{msg}","connId":"{cid}"}}'
    )
    assert PARSER.parse(error) == SubscribeResult([], ["FOO-USDT"], msg)
    assert PARSER.parse(ack) == SubscribeResult(["BTC-USDT"], [])
    await client.until(is_push_for("BTC-USDT"))  # the valid arg was subscribed anyway

    venue.reject(ETH)
    okx_request(client, "subscribe", "ETH-USDT", request_id=None)
    (error,) = await replies(client, 1)
    assert json.loads(error) == {
        "event": "error",
        "code": "60018",
        "msg": DOC_60018.format("ETH-USDT"),
        "connId": cid,
    }
    client.send_json({"op": "subscribe", "args": [{"channel": "books5", "instId": "BTC-USDT"}]})
    (error,) = await replies(client, 1)
    assert PARSER.parse(error) == SubscribeResult(
        [], ["BTC-USDT"], DOC_60018.format("BTC-USDT").replace("bbo-tbt", "books5")
    )
    assert venue.sessions[0].subscriptions == {"BTC-USDT"}


@pytest.mark.parametrize(
    "request_text",
    [
        "not json",
        "PING",
        '["subscribe"]',
        '{"op":"login","args":[{}]}',
        '{"op":"subscribe","args":[]}',
        '{"op":"subscribe","args":{"channel":"bbo-tbt","instId":"BTC-USDT"}}',
        '{"id":"a-b","op":"subscribe","args":[{"channel":"bbo-tbt","instId":"BTC-USDT"}]}',
        '{"id":1,"op":"subscribe","args":[{"channel":"bbo-tbt","instId":"BTC-USDT"}]}',
        '{"id":"' + "9" * 33 + '","op":"subscribe","args":[{"channel":"bbo-tbt"}]}',
    ],
)
async def test_illegal_requests_get_60012(request_text: str) -> None:
    async with serving(OkxPersonality()) as venue:
        client = await connect(venue.url)
        client.transport.send(WSMsgType.TEXT, request_text.encode())
        (error,) = await replies(client, 1)
        frame = json.loads(error)
        assert frame == {
            "event": "error",
            "code": "60012",
            "msg": f"Illegal request: {request_text}",
            "connId": conn_id(venue.sessions[0]),
        }
        assert PARSER.parse(error) == VenueError(f"code 60012: Illegal request: {request_text}")
        assert venue.sessions[0].subscriptions == set() and venue.malformed_messages == 1


def args_of_size(total: int) -> list[dict[str, str]]:
    """bbo-tbt args for BTC-USDT then made-up instruments, ``total`` bytes compactly encoded."""

    def encoded(arg: dict[str, str]) -> int:
        return len(json.dumps(arg, separators=(",", ":")))

    args = [{"channel": "bbo-tbt", "instId": "BTC-USDT"}]
    size = 2 + encoded(args[0])  # the brackets and the first arg
    while True:
        arg = {"channel": "bbo-tbt", "instId": f"F{len(args):07d}"}
        if size + 1 + encoded(arg) > total:
            break
        args.append(arg)
        size += 1 + encoded(arg)
    args[-1] = {"channel": "bbo-tbt", "instId": args[-1]["instId"] + "X" * (total - size)}
    assert len(json.dumps(args, separators=(",", ":"))) == total
    return args


async def test_args_over_64_kb_are_refused_whole() -> None:
    async with serving(OkxPersonality()) as venue:
        client = await connect(venue.url)
        client.send_json({"op": "subscribe", "args": args_of_size(65537)})
        (error,) = await replies(client, 1)
        assert json.loads(error)["code"] == "60012"
        assert venue.sessions[0].subscriptions == set()

        at_cap = args_of_size(65536)
        client.send_json({"op": "subscribe", "args": at_cap})  # processed arg by arg
        ack, *errors = await replies(client, len(at_cap))
        assert PARSER.parse(ack) == SubscribeResult(["BTC-USDT"], [])
        assert {json.loads(e)["code"] for e in errors} == {"60018"}
        assert venue.sessions[0].subscriptions == {"BTC-USDT"}


async def test_text_ping_gets_text_pong() -> None:
    async with serving(OkxPersonality()) as venue:
        client = await connect(venue.url)
        client.transport.send(WSMsgType.TEXT, b"ping")
        msg_type, pong = await client.next()
        assert (msg_type, pong) == (WSMsgType.TEXT, b"pong")
        assert PARSER.parse(pong) == Pong()
        client.transport.send_ping(b"p")  # protocol pings are answered by the server too
        assert await client.until(lambda t, p: t == WSMsgType.PONG) == (WSMsgType.PONG, b"p")
        assert venue.sessions[0].received == ["ping"]


async def test_the_request_budget_closes_the_connection() -> None:
    assert OkxPersonality().request_budget.limit == 480
    assert OkxPersonality().request_budget.window == 3600.0
    async with serving(OkxPersonality(max_requests=3, budget_window=60.0)) as venue:
        client = await connect(venue.url)
        for op in ("subscribe", "unsubscribe", "subscribe"):  # both ops count
            okx_request(client, op, "BTC-USDT")
        acks = await replies(client, 3)
        assert [json.loads(a)["event"] for a in acks] == ["subscribe", "unsubscribe", "subscribe"]
        cid = conn_id(venue.sessions[0])
        for _ in range(3):  # pings and illegal requests do not count
            client.transport.send(WSMsgType.TEXT, b"ping")
        client.transport.send(WSMsgType.TEXT, b"{}")
        okx_request(client, "subscribe", "ETH-USDT", request_id="42")
        *others, error = await replies(client, 5)
        assert others[:3] == [b"pong"] * 3 and json.loads(others[3])["code"] == "60012"
        assert error.decode() == (
            '{"id":"42","event":"error","code":"60014","msg":"Requests too frequent.",'
            f'"connId":"{cid}"}}'
        )
        assert PARSER.parse(error) == VenueError("code 60014: Requests too frequent.")
        await client.until(lambda t, p: t == WSMsgType.CLOSE)
        assert client.close_reason == "subscribe_budget"
        await asyncio.wait_for(client.disconnected.wait(), 3)
        assert venue.subscription_count == 0


async def test_idle_connections_are_closed_and_pings_keep_them() -> None:
    personality = OkxPersonality(idle_timeout=0.4, no_subscription_timeout=0.4)
    assert (OkxPersonality().idle_timeout, OkxPersonality().no_subscription_timeout) == (30, 30)
    async with serving(personality) as venue:  # paused: no pushes at all
        lonely = await connect(venue.url)  # never subscribes
        await lonely.until(lambda t, p: t == WSMsgType.CLOSE)
        assert lonely.close_reason == "no_subscription"

        quiet, pinging = await connect(venue.url), await connect(venue.url)
        for client in (quiet, pinging):
            okx_request(client, "subscribe", "BTC-USDT")
            await replies(client, 1)
        while not quiet.disconnected.is_set():  # pinging outlives the idle timeout
            pinging.transport.send(WSMsgType.TEXT, b"ping")
            assert (await pinging.next()) == (WSMsgType.TEXT, b"pong")
            await asyncio.sleep(0.1)
        assert quiet.close_reason == "idle"
        assert not pinging.disconnected.is_set()


async def test_restart_notice_then_close(okx_sim: Simulator) -> None:
    venue = okx_sim.venues["okx"]
    client = await connect(okx_sim.urls["okx"])
    okx_request(client, "subscribe", "BTC-USDT")
    await client.until(is_push_for("BTC-USDT"))
    assert venue.send_restart_notice(close_after=0.3) == 1
    _, notice = await client.until(is_reply)
    assert notice.decode() == (
        '{"event":"notice","code":"64008","msg":"The connection will soon be closed for a '
        f'service upgrade. Please reconnect.","connId":"{conn_id(venue.sessions[0])}"}}'
    )
    assert PARSER.parse(notice) == RestartNotice("notice 64008")
    await client.until(is_push_for("BTC-USDT"))  # still served during the notice period
    await client.until(lambda t, p: t == WSMsgType.CLOSE)
    assert client.close_reason == "restart"


async def test_faults_reach_the_parser(okx_sim: Simulator) -> None:
    venue = okx_sim.venues["okx"]
    client = await connect(okx_sim.urls["okx"])
    okx_request(client, "subscribe", "BTC-USDT")
    await client.until(is_push_for("BTC-USDT"))

    venue.pause()
    await drain(venue, client)
    frames = venue.personality.garbage_frames()
    venue.send_garbage(len(frames))
    for _ in frames:
        _, payload = await client.next()
        assert isinstance(PARSER.parse(payload), Malformed), payload

    last = venue.last_sent(BTC)
    assert last is not None
    venue.send_out_of_order(BTC)
    _, payload = await client.next()
    stale = PARSER.parse(payload)
    assert isinstance(stale, QuoteUpdate) and stale.sequence < last["sequence"]

    venue.set_quote(BTC, None, None, "70000.5", "0.25")  # a one-sided book
    _, payload = await client.next()
    assert json.loads(payload)["data"][0]["bids"] == []
    assert PARSER.parse(payload) == QuoteUpdate(
        "BTC-USDT",
        None,
        None,
        "70000.5",
        "0.25",
        venue.last_sent(BTC)["time_ms"],  # type: ignore[index]
        venue.last_sent(BTC)["sequence"],  # type: ignore[index]
    )

    venue.stall(0.5)
    client.transport.send(WSMsgType.TEXT, b"ping")
    with pytest.raises(TimeoutError):
        await client.next(timeout=0.3)
    venue.resume()
    venue.disconnect_all()
    await asyncio.wait_for(client.disconnected.wait(), 3)
    assert client.close_frames == 0
