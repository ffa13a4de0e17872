"""Gate.io protocol module: message builders and the frame parser, against byte-exact fixtures."""

from __future__ import annotations

import json

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
from tests.venues import samples

INT32_MAX = 2**31 - 1


def load(name: str) -> bytes:
    return samples.load("gateio", name)


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


def test_subscribe_error_rejects_only_the_pairs_in_the_message(gate: GateIO) -> None:
    # The newer reply echoes the whole request in ``payload``: accepted pairs must not be lost.
    assert gate.parse(load("subscribe_error_code2_with_payload.json")) == SubscribeResult(
        accepted=[], rejected=["GIBBERISH_USD"], reason="unknown currency pair GIBBERISH_USD"
    )


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (1, "bad request body FOO_USDT"),
        (3, "internal error for BTC_USDT"),
        (4, "auth failed"),
        (7, "unknown code ETH_USDT"),
    ],
)
def test_subscribe_error_other_codes_are_venue_errors(
    gate: GateIO, code: int, message: str
) -> None:
    frame = json.dumps(
        {
            "channel": "spot.book_ticker",
            "event": "subscribe",
            "payload": ["FOO_USDT", "BTC_USDT"],
            "error": {"code": code, "message": message},
        }
    ).encode()
    assert gate.parse(frame) == VenueError(f"code {code}: {message}")


def test_subscribe_server_error_fixture(gate: GateIO) -> None:
    assert gate.parse(load("subscribe_error_server_code3.json")) == VenueError(
        "code 3: server error while subscribing BTC_USDT"
    )


def subscribe_reply(error: object, payload: object = ("A_B",)) -> bytes:
    frame = {"channel": "spot.book_ticker", "event": "subscribe", "error": error}
    return json.dumps(frame | {"payload": payload}).encode()


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"code": 2, "message": "invalid argument"}, "code 2: invalid argument"),
        ({"code": 2, "message": "unknown pair btc_usdt"}, "code 2: unknown pair btc_usdt"),
        ({"code": 2}, "code 2"),
        ({"code": "2", "message": None}, "code 2"),
        ("invalid argument", "invalid argument"),
        (2, "code 2"),
        ({"code": "x9", "message": "odd A_B"}, "code x9: odd A_B"),
        ([1, 2], "code [1, 2]"),
    ],
)
def test_subscribe_error_naming_no_pair_is_venue_error(
    gate: GateIO, error: object, message: str
) -> None:
    assert gate.parse(subscribe_reply(error)) == VenueError(message)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("subscribe_error_as_string.json", "unknown currency pair FOO_USDT"),
        ("subscribe_error_string_code.json", "invalid argument: unknown currency pair FOO_USDT"),
    ],
)
def test_subscribe_error_odd_shapes_reject_by_message(gate: GateIO, name: str, reason: str) -> None:
    assert gate.parse(load(name)) == SubscribeResult(
        accepted=[], rejected=["FOO_USDT"], reason=reason
    )


@pytest.mark.parametrize(
    "error",
    [
        {"message": "unknown currency pair FOO_USDT"},  # no code: the message decides
        {"code": 2, "msg": "unknown currency pair FOO_USDT"},
        {"code": " 2 ", "message": "unknown currency pair FOO_USDT", "extra": [1]},
    ],
)
def test_subscribe_error_variants_reject_by_message(gate: GateIO, error: object) -> None:
    assert gate.parse(subscribe_reply(error, payload={"x": 1})) == SubscribeResult(
        accepted=[], rejected=["FOO_USDT"], reason="unknown currency pair FOO_USDT"
    )


def test_subscribe_success_with_odd_payload_still_acks(gate: GateIO) -> None:
    assert gate.parse(load("subscribe_success_payload_string.json")) == SubscribeResult(
        accepted=[], rejected=[]
    )
    assert gate.parse(subscribe_reply(None, [1, "BTC_USDT", None])) == SubscribeResult(
        accepted=["BTC_USDT"], rejected=[]
    )
    for empty in ("", {}, False):  # an empty error is no error
        assert gate.parse(subscribe_reply(empty, ["A_B"])) == SubscribeResult(["A_B"], [])


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            b'{"channel":"spot.book_ticker","event":"unsubscribe","payload":{"a":1},"result":"ok"}',
            Ignored(),
        ),
        (b'{"channel":"spot.tickers","event":"update","result":"x","payload":"y"}', Ignored()),
        (b'{"channel":5,"event":["update"],"error":null}', Ignored()),
        (b'{"channel":"spot.pong","event":null,"error":"x","result":[]}', Pong()),
        (b'{"channel":"","event":"upgrade","payload":{},"error":{"code":"1"}}', Upgrade()),
        (
            b'{"channel":"spot.book_ticker","event":"update","error":{"code":1,"message":"m"}}',
            VenueError("code 1: m"),
        ),
        (
            b'{"channel":"spot.tickers","event":"subscribe","error":{"code":"4","message":"no"}}',
            VenueError("code 4: no"),
        ),
    ],
)
def test_odd_control_shapes_are_classified_not_malformed(
    gate: GateIO, frame: bytes, expected: object
) -> None:
    assert gate.parse(frame) == expected


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
        assert gate.parse(frame) == VenueError("code 1: bad body")
    assert gate.parse(b'{"channel":"spot.ping","error":{"code":3}}') == VenueError("code 3")
    assert gate.parse(b'{"channel":"spot.ping","error":"boom"}') == VenueError("boom")


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
        b'{"channel":"spot.book_ticker","event":"update","error":null,"result":"x"}',
    ],
)
def test_bad_frames_are_malformed(gate: GateIO, frame: bytes) -> None:
    result = gate.parse(frame)
    assert isinstance(result, Malformed)
    assert result.reason.startswith("gateio: ")
