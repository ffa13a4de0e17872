"""Gate.io protocol module: message builders and the frame parser, against byte-exact fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_collector.pairs import Pair
from data_collector.venues.base import (
    Ignored,
    Malformed,
    Pong,
    QuoteUpdate,
    SubscribeResult,
    Upgrade,
    VenueError,
)
from data_collector.venues.gateio import GateIO

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gateio"
INT32_MAX = 2**31 - 1


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def gate() -> GateIO:
    return GateIO()


# --- venue attributes and builders -------------------------------------------------------------


def test_attributes(gate: GateIO) -> None:
    assert gate.name == "gateio"
    assert gate.default_url == "wss://api.gateio.ws/ws/v4/"
    assert gate.max_subscriptions_per_connection is None
    assert gate.ping_interval == 8.0
    assert gate.max_connection_lifetime is None


def test_symbol(gate: GateIO) -> None:
    assert gate.symbol(Pair("BTC", "USDT")) == "BTC_USDT"
    assert gate.symbol(Pair("1INCH", "USDC")) == "1INCH_USDC"


def test_subscribe_message_is_exact_json(gate: GateIO) -> None:
    assert gate.subscribe_messages(["BTC_USDT", "ETH_USDT"], 1611541000.987) == [
        '{"time":1611541000,"id":1,"channel":"spot.book_ticker","event":"subscribe",'
        '"payload":["BTC_USDT","ETH_USDT"]}'
    ]


def test_unsubscribe_message_is_exact_json(gate: GateIO) -> None:
    assert gate.unsubscribe_messages(("BTC_USDT",), 1611541005.0) == [
        '{"time":1611541005,"id":1,"channel":"spot.book_ticker","event":"unsubscribe",'
        '"payload":["BTC_USDT"]}'
    ]


def test_subscribe_chunks_at_100_pairs_with_distinct_ids(gate: GateIO) -> None:
    symbols = [f"C{i}_USDT" for i in range(250)]
    messages = [json.loads(m) for m in gate.subscribe_messages(symbols, 1700000000.0)]
    assert [len(m["payload"]) for m in messages] == [100, 100, 50]
    assert [s for m in messages for s in m["payload"]] == symbols
    assert all(m["time"] == 1700000000 and isinstance(m["time"], int) for m in messages)
    ids = [m["id"] for m in messages]
    assert len(set(ids)) == 3
    assert all(isinstance(i, int) and 1 <= i <= INT32_MAX for i in ids)
    assert gate.subscribe_messages([], 0.0) == []


def test_request_ids_stay_in_int32(gate: GateIO) -> None:
    gate._last_id = INT32_MAX - 2
    ids = [json.loads(gate.subscribe_messages(["BTC_USDT"], 0.0)[0])["id"] for _ in range(4)]
    assert ids == [INT32_MAX - 1, INT32_MAX, 1, 2]


def test_ping_message(gate: GateIO) -> None:
    assert gate.ping_message(1545404023.9) == '{"time":1545404023,"channel":"spot.ping"}'


# --- fixtures ----------------------------------------------------------------------------------


def test_real_2022_capture_without_time_ms(gate: GateIO) -> None:
    frame = load("update_2022_no_time_ms.json")
    assert frame == (
        b'{"time":1654029559,"channel":"spot.book_ticker","event":"update","result":'
        b'{"t":1654029559473,"u":6765708346,"s":"BTC_USDT","b":"31738.93","B":"2.3039",'
        b'"a":"31738.94","A":"0.335"}}'
    )
    assert gate.parse(frame) == QuoteUpdate(
        symbol="BTC_USDT",
        bid_price="31738.93",
        bid_qty="2.3039",
        ask_price="31738.94",
        ask_qty="0.335",
        exchange_time_ms=1654029559473,
        sequence=6765708346,
    )


def test_documented_update(gate: GateIO) -> None:
    assert gate.parse(load("update_documented.json")) == QuoteUpdate(
        symbol="BTC_USDT",
        bid_price="19177.79",
        bid_qty="0.0003341504",
        ask_price="19179.38",
        ask_qty="0.09",
        exchange_time_ms=1606293275123,
        sequence=48733182,
    )


def test_subscribe_success(gate: GateIO) -> None:
    assert gate.parse(load("subscribe_success.json")) == SubscribeResult(
        accepted=[], rejected=[], reason=""
    )


def test_subscribe_success_with_payload(gate: GateIO) -> None:
    assert gate.parse(load("subscribe_success_with_payload.json")) == SubscribeResult(
        accepted=["BTC_USDT", "ETH_USDT"], rejected=[], reason=""
    )


def test_subscribe_error(gate: GateIO) -> None:
    assert gate.parse(load("subscribe_error_unknown_pair.json")) == SubscribeResult(
        accepted=[], rejected=["GIBBERISH_USD"], reason="unknown currency pair GIBBERISH_USD"
    )


def test_pong(gate: GateIO) -> None:
    assert gate.parse(load("pong.json")) == Pong()


def test_upgrade(gate: GateIO) -> None:
    assert gate.parse(load("upgrade.json")) == Upgrade()


def test_unsubscribe_ack_is_ignored(gate: GateIO) -> None:
    assert gate.parse(load("unsubscribe_success.json")) == Ignored()


# --- variants ----------------------------------------------------------------------------------


def update(result: dict[str, object], **outer: object) -> bytes:
    frame = {"time": 1, "channel": "spot.book_ticker", "event": "update", "result": result}
    return json.dumps(frame | outer).encode()


def test_empty_or_missing_sides_are_none(gate: GateIO) -> None:
    frame = update({"t": 5, "u": 6, "s": "X_USDT", "b": "", "B": "", "a": "1.5", "A": "2"})
    assert gate.parse(frame) == QuoteUpdate("X_USDT", None, None, "1.5", "2", 5, 6)
    frame = update({"s": "X_USDT", "b": "1", "B": "3"})
    assert gate.parse(frame) == QuoteUpdate("X_USDT", "1", "3", None, None, 0, -1)


def test_key_order_and_unknown_keys_do_not_matter(gate: GateIO) -> None:
    frame = (
        b'{"result":{"A":"0.09","a":"19179.38","B":"1","b":"19177.79","s":"BTC_USDT",'
        b'"u":48733182,"t":1606293275123,"x":[1,{"y":null}]},"event":"update",'
        b'"conn_id":"c","channel":"spot.book_ticker","time":1606293275}'
    )
    assert gate.parse(frame) == QuoteUpdate(
        "BTC_USDT", "19177.79", "1", "19179.38", "0.09", 1606293275123, 48733182
    )


def test_subscribe_error_prefers_the_reply_payload(gate: GateIO) -> None:
    frame = json.dumps(
        {
            "channel": "spot.book_ticker",
            "event": "subscribe",
            "payload": ["FOO_USDT", "BAR_USDT"],
            "error": {"code": 2, "message": "unknown currency pair FOO_USDT"},
            "result": None,
        }
    ).encode()
    assert gate.parse(frame) == SubscribeResult(
        accepted=[], rejected=["FOO_USDT", "BAR_USDT"], reason="unknown currency pair FOO_USDT"
    )


def test_subscribe_error_names_every_pair_in_the_message(gate: GateIO) -> None:
    frame = json.dumps(
        {
            "channel": "spot.book_ticker",
            "event": "subscribe",
            "error": {"code": 2, "message": "unknown currency pairs FOO_USDT, BAR_BTC"},
        }
    ).encode()
    assert gate.parse(frame) == SubscribeResult(
        accepted=[],
        rejected=["FOO_USDT", "BAR_BTC"],
        reason="unknown currency pairs FOO_USDT, BAR_BTC",
    )


def test_errors_outside_subscribe_are_venue_errors(gate: GateIO) -> None:
    for event in ("unsubscribe", "", "update"):
        frame = json.dumps(
            {"channel": "spot.tickers", "event": event, "error": {"code": 1, "message": "bad body"}}
        ).encode()
        assert gate.parse(frame) == VenueError("bad body")
    assert gate.parse(b'{"channel":"spot.ping","error":{"code":3}}') == VenueError("code 3")


@pytest.mark.parametrize(
    "frame",
    [
        b'{"time":1,"channel":"spot.trades","event":"update","result":{"id":1}}',
        b'{"time":1,"channel":"spot.tickers","event":"subscribe","error":null}',
        b'{"time":1,"channel":"spot.book_ticker","event":"something_new"}',
        b"{}",
    ],
)
def test_frames_for_someone_else_are_ignored(gate: GateIO, frame: bytes) -> None:
    assert gate.parse(frame) == Ignored()


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"not json",
        b"[]",
        b'"spot.pong"',
        b'{"channel":"spot.book_ticker","event":"update"',  # truncated
        b'{"channel":"spot.book_ticker","event":"update","result":{"s":"A_B"}}\xff',
        b'{"channel":"\xff\xfe","event":"update"}',  # not UTF-8
        update({"t": 1, "u": 2, "b": "1"}),  # no symbol
        update({"s": "", "b": "1"}),
        update({"s": "A_B", "b": 19177.79}),  # a number where a string belongs
        update({"s": "A_B", "u": "48733182"}),
        update({"s": "A_B", "u": 2**63}),  # beyond int64, the cache's storage type
        update({"s": "A_B", "t": -(2**63) - 1}),
        update(None),  # type: ignore[arg-type]
        b'{"channel":"spot.book_ticker","event":"subscribe","error":"boom"}',
        b'{"channel":"spot.book_ticker","event":"subscribe","error":null,"payload":[1]}',
    ],
)
def test_bad_frames_are_malformed(gate: GateIO, frame: bytes) -> None:
    result = gate.parse(frame)
    assert isinstance(result, Malformed)
    assert result.reason.startswith("gateio: ")


def test_non_bytes_input_is_malformed_not_raised(gate: GateIO) -> None:
    assert isinstance(gate.parse(None), Malformed)  # type: ignore[arg-type]
