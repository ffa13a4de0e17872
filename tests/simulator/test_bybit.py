"""The Bybit v5 spot personality against a plain picows client, and the project's Bybit parser
decoding what it pushes (two independent implementations of the protocol)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from data_collector.pairs import Pair
from data_collector.simulator import Simulator, VenueServer, pairs_for
from data_collector.simulator.personalities.bybit import BybitPersonality
from data_collector.venues.base import Malformed, Pong, QuoteUpdate, SubscribeResult, VenueError
from data_collector.venues.bybit import Bybit
from tests.helpers import wait_until
from tests.simulator.clients import (
    BTC,
    ETH,
    SOL,
    Client,
    bybit_subscribe,
    bybit_symbol,
    connect,
    drain,
    is_bybit_book,
    is_bybit_reply,
    is_bybit_snapshot,
    quiet_until,
    send_text,
    without_conn_id,
)


@pytest_asyncio.fixture(loop_scope="function")
async def bybit_sim(request: pytest.FixtureRequest) -> AsyncIterator[Simulator]:
    options: dict[str, Any] = getattr(request, "param", {})
    venue_options = {"bybit": options}
    async with Simulator(
        pairs_for(12), rate_hz=20, seed=7, venues=("bybit",), venue_options=venue_options
    ) as simulator:
        yield simulator


def with_options(**options: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("bybit_sim", [options], indirect=True)


def venue_of(sim: Simulator) -> VenueServer:
    return sim.venues["bybit"]


def personality_of(sim: Simulator) -> BybitPersonality:
    personality = venue_of(sim).personality
    assert isinstance(personality, BybitPersonality)
    return personality


async def subscribed_client(sim: Simulator, *pairs: Pair) -> Client:
    client = await connect(sim.urls["bybit"])
    bybit_subscribe(client, *(bybit_symbol(p) for p in pairs))
    await client.until(is_bybit_reply("subscribe"))
    return client


# --- the documented exchange -------------------------------------------------------------------


async def test_documented_subscribe_ack_and_snapshot(bybit_sim: Simulator) -> None:
    venue, parser = venue_of(bybit_sim), Bybit()
    venue.pause()  # the only snapshot is the one set below
    assert bybit_sim.urls["bybit"].endswith("/v5/public/spot")
    client = await connect(bybit_sim.urls["bybit"])
    request = parser.subscribe_messages(["BTCUSDT", "ETHUSDT"], time.time())
    assert request == [
        '{"req_id":"1","op":"subscribe","args":["orderbook.1.BTCUSDT","orderbook.1.ETHUSDT"]}'
    ]
    send_text(client, request[0])
    _, ack = await client.until(is_bybit_reply("subscribe"))
    assert without_conn_id(ack) == (
        b'{"success":true,"ret_msg":"subscribe","conn_id":"...","req_id":"1","op":"subscribe"}'
    )
    assert parser.parse(ack) == SubscribeResult(accepted=["BTCUSDT", "ETHUSDT"], rejected=[])
    assert venue.sessions[0].subscriptions == {"BTCUSDT", "ETHUSDT"}

    venue.set_quote(BTC, "16493.50", "0.006", "16611.00", "0.029")
    _, payload = await client.until(is_bybit_snapshot("BTCUSDT"))
    frame = json.loads(payload)
    assert list(frame) == ["topic", "ts", "type", "data", "cts"]
    assert list(frame["data"]) == ["s", "b", "a", "u", "seq"]
    assert frame["data"]["b"] == [["16493.50", "0.006"]]
    assert frame["data"]["a"] == [["16611.00", "0.029"]]
    sent = venue.last_sent(BTC)
    assert sent is not None
    assert parser.parse(payload) == QuoteUpdate(
        "BTCUSDT",
        "16493.50",
        "0.006",
        "16611.00",
        "0.029",
        exchange_time_ms=sent["time_ms"],
        sequence=personality_of(bybit_sim).sent_sequence("BTCUSDT") or -2,
    )
    assert frame["ts"] == sent["time_ms"] and frame["cts"] <= frame["ts"]


async def test_documented_ping_and_pong(bybit_sim: Simulator) -> None:
    parser = Bybit()
    client = await subscribed_client(bybit_sim, BTC)
    ping = parser.ping_message(time.time())
    assert ping == '{"req_id":"1","op":"ping"}'
    send_text(client, ping)
    _, pong = await client.until(is_bybit_reply("ping"))
    assert without_conn_id(pong) == b'{"success":true,"ret_msg":"pong","conn_id":"...","op":"ping"}'
    assert parser.parse(pong) == Pong()


async def test_one_connection_keeps_its_conn_id(bybit_sim: Simulator) -> None:
    client = await subscribed_client(bybit_sim, BTC)
    client.send_json({"req_id": "7", "op": "ping"})
    _, pong = await client.until(is_bybit_reply("ping"))
    bybit_subscribe(client, "ETHUSDT", req_id="8")
    _, ack = await client.until(is_bybit_reply("subscribe"))
    assert json.loads(pong)["conn_id"] == json.loads(ack)["conn_id"]
    other = await subscribed_client(bybit_sim, SOL)
    other.send_json({"op": "ping"})
    _, other_pong = await other.until(is_bybit_reply("ping"))
    assert json.loads(other_pong)["conn_id"] != json.loads(pong)["conn_id"]


async def test_one_sided_book(bybit_sim: Simulator) -> None:
    venue = venue_of(bybit_sim)
    venue.pause()  # the only snapshot is the one set below
    client = await subscribed_client(bybit_sim, ETH)
    venue.set_quote(ETH, None, None, "1812.5", "3")
    _, payload = await client.until(is_bybit_snapshot("ETHUSDT"))
    data = json.loads(payload)["data"]
    assert (data["b"], data["a"]) == ([], [["1812.5", "3"]])
    result = Bybit().parse(payload)
    assert isinstance(result, QuoteUpdate)
    assert (result.bid_price, result.ask_price, result.ask_qty) == (None, "1812.5", "3")


# --- limits and refusals -----------------------------------------------------------------------


async def test_more_than_ten_args_are_refused_whole(bybit_sim: Simulator) -> None:
    venue, parser = venue_of(bybit_sim), Bybit()
    client = await connect(bybit_sim.urls["bybit"])
    symbols = [bybit_symbol(p) for p in pairs_for(11)]
    bybit_subscribe(client, *symbols, req_id="5")
    _, reply = await client.until(is_bybit_reply("subscribe"))
    assert without_conn_id(reply) == (
        b'{"success":false,"ret_msg":"args size >10","conn_id":"...","req_id":"5","op":"subscribe"}'
    )
    assert isinstance(parser.parse(reply), VenueError)
    assert venue.subscription_count == 0
    # what the parser builds stays inside the cap, and the venue takes all of it
    for message in parser.subscribe_messages(symbols, time.time()):
        send_text(client, message)
    await venue.wait_for_subscriptions(11)


@pytest.mark.parametrize(
    ("args", "ret_msg"),
    [
        (
            ["orderbook.1.BTCUSDT", "orderbook.1.FOOUSDT"],
            "Invalid symbol :[orderbook.1.FOOUSDT]",
        ),
        (
            ["orderbook.1.FOOUSDT", "orderbook.1.ETHUSDT", "orderbook.1.BARUSDT"],
            "Invalid symbol :[orderbook.1.FOOUSDT,orderbook.1.BARUSDT]",
        ),
        (
            ["orderbook.1.BTCUSDT", "orderbook.30.ETHUSDT"],
            "error:handler not found,topic:orderbook.30.ETHUSDT",
        ),
        (["orderbook.1.btcusdt"], "Invalid symbol :[orderbook.1.btcusdt]"),
        (["orderbook.1."], "error:handler not found,topic:orderbook.1."),
    ],
)
async def test_a_bad_arg_refuses_the_whole_request(
    bybit_sim: Simulator, args: list[str], ret_msg: str
) -> None:
    client = await connect(bybit_sim.urls["bybit"])
    client.send_json({"req_id": "3", "op": "subscribe", "args": args})
    _, reply = await client.until(is_bybit_reply("subscribe"))
    expected = {"success": False, "ret_msg": ret_msg, "req_id": "3", "op": "subscribe"}
    assert {k: v for k, v in json.loads(reply).items() if k != "conn_id"} == expected
    assert venue_of(bybit_sim).subscription_count == 0


async def test_refusals_in_both_forms_reach_the_parser_as_rejections(
    bybit_sim: Simulator,
) -> None:
    venue, parser = venue_of(bybit_sim), Bybit()
    venue.reject(SOL)
    client = await connect(bybit_sim.urls["bybit"])
    for message in parser.subscribe_messages(["BTCUSDT", "SOLUSDT", "ETHUSDT"], time.time()):
        send_text(client, message)
    _, reply = await client.until(is_bybit_reply("subscribe"))
    assert parser.parse(reply) == SubscribeResult(
        accepted=[], rejected=["SOLUSDT"], reason="Invalid symbol :[orderbook.1.SOLUSDT]"
    )
    # the manager asks again for the rest: one request without the rejected symbol
    for message in parser.subscribe_messages(["BTCUSDT", "ETHUSDT"], time.time()):
        send_text(client, message)
    _, reply = await client.until(is_bybit_reply("subscribe"))
    assert parser.parse(reply) == SubscribeResult(accepted=["BTCUSDT", "ETHUSDT"], rejected=[])
    assert venue.sessions[0].subscriptions == {"BTCUSDT", "ETHUSDT"}

    client.send_json({"req_id": "x", "op": "subscribe", "args": ["orderbook.50.XRPUSDT"]})
    _, reply = await client.until(is_bybit_reply("subscribe"))
    assert isinstance(parser.parse(reply), VenueError)  # not our topic: no symbol of ours


async def test_a_topic_held_already_refuses_the_request(bybit_sim: Simulator) -> None:
    venue = venue_of(bybit_sim)
    client = await subscribed_client(bybit_sim, BTC)
    bybit_subscribe(client, "ETHUSDT", "BTCUSDT", req_id="2")
    _, reply = await client.until(is_bybit_reply("subscribe"))
    assert json.loads(reply)["ret_msg"] == "error:already subscribed,topic:orderbook.1.BTCUSDT"
    assert Bybit().parse(reply) == SubscribeResult(
        accepted=["BTCUSDT"], rejected=[], reason=json.loads(reply)["ret_msg"]
    )
    assert venue.sessions[0].subscriptions == {"BTCUSDT"}


@with_options(max_args_chars=60)
async def test_the_args_of_a_connection_are_capped_in_characters(bybit_sim: Simulator) -> None:
    venue = venue_of(bybit_sim)
    client = await subscribed_client(bybit_sim, BTC, ETH)  # 2 x 19 characters
    bybit_subscribe(client, "SOLUSDT", "XRPUSDT", req_id="2")  # 38 more: over 60
    _, reply = await client.until(is_bybit_reply("subscribe"))
    assert json.loads(reply)["ret_msg"] == "args length >60"
    assert venue.sessions[0].subscriptions == {"BTCUSDT", "ETHUSDT"}
    client.send_json({"req_id": "3", "op": "unsubscribe", "args": ["orderbook.1.ETHUSDT"]})
    _, reply = await client.until(is_bybit_reply("unsubscribe"))
    assert json.loads(reply)["success"] is True
    bybit_subscribe(client, "SOLUSDT", req_id="4")  # 19 + 19 <= 60 again
    _, reply = await client.until(is_bybit_reply("subscribe"))
    assert json.loads(reply)["success"] is True
    assert venue.sessions[0].subscriptions == {"BTCUSDT", "SOLUSDT"}


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ('{"req_id":"9","op":"nope"}', {"success": False, "ret_msg": "error:invalid op"}),
        ("hello", None),
        ("[1,2]", None),
        (
            '{"op":"subscribe","args":"orderbook.1.BTCUSDT"}',
            {"success": False, "ret_msg": "error:args must be a list of topics"},
        ),
    ],
)
async def test_odd_requests_are_answered_and_the_connection_stays(
    bybit_sim: Simulator, text: str, reply: dict[str, Any] | None
) -> None:
    client = await connect(bybit_sim.urls["bybit"])
    send_text(client, text)
    _, payload = await client.next()
    message = json.loads(payload)
    assert message["success"] is False
    if reply is None:  # not a JSON object: Bybit's decoder complains, naming no op
        assert message["ret_msg"].startswith("Failed to decode incoming data:")
        assert "op" not in message
    else:
        assert {k: message[k] for k in reply} == reply
    assert isinstance(Bybit().parse(payload), VenueError)
    client.send_json({"op": "ping"})
    await client.until(is_bybit_reply("ping"))


# --- repeats and restarts ----------------------------------------------------------------------


@with_options(repeat_interval=0.2)
async def test_an_unchanged_book_is_repeated_with_the_same_u(bybit_sim: Simulator) -> None:
    venue, parser = venue_of(bybit_sim), Bybit()
    client = await subscribed_client(bybit_sim, BTC)
    venue.set_quote(BTC, "100.5", "1", "100.6", "2")  # held: the walk leaves it alone
    _, first = await client.until(is_bybit_book(BTC, "100.5"))
    quotes = [parser.parse(first)]
    for _ in range(2):
        _, payload = await client.until(is_bybit_snapshot("BTCUSDT"), timeout=2)
        quotes.append(parser.parse(payload))
    assert all(isinstance(q, QuoteUpdate) for q in quotes)
    sequences = {q.sequence for q in quotes if isinstance(q, QuoteUpdate)}
    assert sequences == {personality_of(bybit_sim).sent_sequence("BTCUSDT")}
    prices = {(q.bid_price, q.ask_price) for q in quotes if isinstance(q, QuoteUpdate)}
    assert prices == {("100.5", "100.6")}
    times = [q.exchange_time_ms for q in quotes if isinstance(q, QuoteUpdate)]
    assert times[0] < times[1] < times[2]  # a repeat is stamped when it is sent
    # a change ends the repeats of the old book: the next u is higher
    venue.set_quote(BTC, "100.4", "1", "100.6", "2")
    _, payload = await client.until(is_bybit_book(BTC, "100.4"))
    changed = parser.parse(payload)
    assert isinstance(changed, QuoteUpdate) and changed.sequence > sequences.pop()
    assert changed.bid_price == "100.4"


@with_options(repeat_interval=0.1)
async def test_repeats_pause_during_a_stall(bybit_sim: Simulator) -> None:
    venue = venue_of(bybit_sim)
    client = await subscribed_client(bybit_sim, BTC)
    venue.set_quote(BTC, "100.5", "1", "100.6", "2")
    await client.until(is_bybit_book(BTC, "100.5"))
    stall_ends = time.monotonic() + 0.6
    venue.stall(0.6)
    await drain(venue, client)
    await quiet_until(client, stall_ends)
    await client.until(is_bybit_snapshot("BTCUSDT"), timeout=2)


async def test_a_service_restart_starts_u_at_one(bybit_sim: Simulator) -> None:
    venue, parser = venue_of(bybit_sim), Bybit()
    personality = personality_of(bybit_sim)
    client = await subscribed_client(bybit_sim, BTC)
    _, payload = await client.until(is_bybit_snapshot("BTCUSDT"))
    before = parser.parse(payload)
    assert isinstance(before, QuoteUpdate) and before.sequence > 1_000_000

    venue.pause()  # no snapshot numbered before the restart may still be on its way
    await drain(venue, client)
    personality.restart_sequences()
    # a pair never published before the restart starts at 1 too
    bybit_subscribe(client, bybit_symbol(ETH))
    await client.until(is_bybit_reply("subscribe"))
    venue.resume()
    first: dict[str, QuoteUpdate] = {}  # each pair's first snapshot after the restart
    later: list[QuoteUpdate] = []
    while len(first) < 2 or not later:
        result = parser.parse((await client.next())[1])
        assert isinstance(result, QuoteUpdate)
        if result.symbol in first:
            later.append(result)
        else:
            first[result.symbol] = result
    assert {(q.sequence, q.sequence_restart) for q in first.values()} == {(1, True)}
    assert all(1 < q.sequence < 1_000 and not q.sequence_restart for q in later)
    venue.pause()
    await drain(venue, client)
    sent = personality.sent_sequence(later[-1].symbol)
    assert sent is not None and later[-1].sequence <= sent < 1_000
    assert venue.sessions[0].subscriptions == {"BTCUSDT", "ETHUSDT"}  # nobody was disconnected


@with_options(repeat_interval=0.1)
async def test_a_restart_of_a_held_book_repeats_it_with_u_one(bybit_sim: Simulator) -> None:
    venue, parser = venue_of(bybit_sim), Bybit()
    client = await subscribed_client(bybit_sim, BTC)
    venue.set_quote(BTC, "100.5", "1", "100.6", "2")
    await client.until(is_bybit_book(BTC, "100.5"))
    personality_of(bybit_sim).restart_sequences()
    _, payload = await client.until(
        lambda t, p: is_bybit_book(BTC, "100.5")(t, p) and b'"u":1,' in p
    )
    repeat = parser.parse(payload)
    assert isinstance(repeat, QuoteUpdate) and repeat.sequence_restart
    assert (repeat.bid_price, repeat.ask_price) == ("100.5", "100.6")


# --- keepalive ---------------------------------------------------------------------------------


@with_options(idle_timeout=0.6, repeat_interval=None)
async def test_idle_connection_is_cut_and_pings_keep_it(bybit_sim: Simulator) -> None:
    venue = venue_of(bybit_sim)
    venue.pause()  # no data: only ping-pong can keep a connection
    kept, idle = await connect(bybit_sim.urls["bybit"]), await connect(bybit_sim.urls["bybit"])
    bybit_subscribe(kept, "BTCUSDT")
    bybit_subscribe(idle, "BTCUSDT")
    deadline = time.monotonic() + 1.4
    while time.monotonic() < deadline:
        kept.send_json({"req_id": "p", "op": "ping"})
        await kept.until(is_bybit_reply("ping"))
        await asyncio.sleep(0.1)
    assert idle.disconnected.is_set() and idle.close_reason == "idle"
    assert not kept.disconnected.is_set()
    await asyncio.wait_for(kept.disconnected.wait(), 2)  # it stopped pinging
    assert kept.close_reason == "idle"


# --- existing faults ---------------------------------------------------------------------------


@with_options(repeat_interval=None)  # nothing but the garbage may arrive
async def test_garbage_frames_are_malformed_for_the_parser(bybit_sim: Simulator) -> None:
    venue, parser = venue_of(bybit_sim), Bybit()
    client = await subscribed_client(bybit_sim, BTC)
    venue.pause()
    await drain(venue, client)
    count = len(venue.personality.garbage_frames())
    venue.send_garbage(count)
    results = [parser.parse((await client.next())[1]) for _ in range(count)]
    assert all(isinstance(r, Malformed) for r in results), results


@with_options(repeat_interval=None)  # no repeat may come before the stale push
async def test_out_of_order_push_carries_a_lower_u(bybit_sim: Simulator) -> None:
    venue, parser = venue_of(bybit_sim), Bybit()
    client = await subscribed_client(bybit_sim, BTC)
    _, payload = await client.until(is_bybit_snapshot("BTCUSDT"))
    venue.pause()
    await drain(venue, client)
    last = personality_of(bybit_sim).sent_sequence("BTCUSDT")
    assert last is not None
    venue.send_out_of_order(BTC)
    _, payload = await client.until(is_bybit_snapshot("BTCUSDT"))
    stale = parser.parse(payload)
    assert isinstance(stale, QuoteUpdate) and stale.sequence < last


async def test_disconnect_all_then_resubscribe(bybit_sim: Simulator) -> None:
    venue = venue_of(bybit_sim)
    client = await subscribed_client(bybit_sim, BTC)
    await client.until(is_bybit_snapshot("BTCUSDT"))
    venue.disconnect_all()
    await asyncio.wait_for(client.disconnected.wait(), 3)
    assert client.close_frames == 0
    await wait_until(lambda: venue.sessions == [], what="sessions gone")
    again = await subscribed_client(bybit_sim, BTC)
    await again.until(is_bybit_snapshot("BTCUSDT"))


async def test_the_parser_decodes_every_push(bybit_sim: Simulator) -> None:
    parser = Bybit()
    pairs = pairs_for(12)
    client = await connect(bybit_sim.urls["bybit"])
    for message in parser.subscribe_messages([bybit_symbol(p) for p in pairs], time.time()):
        send_text(client, message)
    results = []
    while len(results) < 60:
        _, payload = await client.next()
        results.append(parser.parse(payload))
    acks = [r for r in results if isinstance(r, SubscribeResult)]
    quotes = [r for r in results if isinstance(r, QuoteUpdate)]
    assert len(acks) == 2 and len(acks) + len(quotes) == len(results)
    assert sorted(s for a in acks for s in a.accepted) == sorted(bybit_symbol(p) for p in pairs)
    assert {q.symbol for q in quotes} <= {bybit_symbol(p) for p in pairs}
    for q in quotes:
        assert q.bid_price and q.ask_price and float(q.bid_price) < float(q.ask_price)
        assert q.sequence > 0 and q.exchange_time_ms > 0 and not q.sequence_restart
