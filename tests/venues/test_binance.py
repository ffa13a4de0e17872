"""Binance protocol module: message builders and the frame parser, against byte-exact fixtures."""

from __future__ import annotations

import json

import pytest

from data_collector.pairs import Pair
from data_collector.venues import VENUES
from data_collector.venues.base import (
    ControlBudget,
    Ignored,
    Keepalive,
    Malformed,
    QuoteUpdate,
    RestartNotice,
    SubscribeResult,
    VenueError,
)
from data_collector.venues.binance import Binance
from tests.venues import samples

INT32_MAX = 2**31 - 1
DOCUMENTED_PAYLOAD = (
    b'{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000",'
    b'"a":"25.36520000","A":"40.66000000"}'
)
DOCUMENTED_QUOTE = QuoteUpdate(
    symbol="BNBUSDT",
    bid_price="25.35190000",
    bid_qty="31.21000000",
    ask_price="25.36520000",
    ask_qty="40.66000000",
    exchange_time_ms=0,
    sequence=400900217,
)


def load(name: str) -> bytes:
    return samples.load("binance", name)


@pytest.fixture
def binance() -> Binance:
    return Binance()


# --- venue attributes and builders -------------------------------------------------------------


def test_attributes(binance: Binance) -> None:
    assert VENUES["binance"].__class__ is Binance
    assert binance.name == "binance"
    assert binance.display_name == "Binance"
    assert binance.default_url == "wss://stream.binance.com:9443/ws"
    assert binance.default_taker_fee == 0.001
    assert binance.docs_url == (
        "https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams"
    )
    assert binance.channel_name == "<symbol>@bookTicker"
    assert binance.max_subscriptions_per_connection == 200  # under the documented 1024
    assert binance.max_symbols_per_request is None
    assert binance.control_budget == ControlBudget(messages=5, per_seconds=1.0, counts_pongs=True)
    assert binance.keepalive is Keepalive.SERVER_PINGS
    assert binance.max_connection_lifetime == 24 * 3600


def test_no_application_ping(binance: Binance) -> None:
    assert binance.ping_message(1700000000.0) is None


def test_symbol_is_as_in_payloads_and_streams_are_lowercase(binance: Binance) -> None:
    assert binance.symbol(Pair("BTC", "USDT")) == "BTCUSDT"
    assert binance.symbol(Pair("1INCH", "USDC")) == "1INCHUSDC"
    assert binance.stream("BNBUSDT") == "bnbusdt@bookTicker"


def test_subscribe_message_is_the_documented_form(binance: Binance) -> None:
    assert binance.subscribe_messages(["BTCUSDT", "ETHUSDT"], 1700000000.5) == [
        '{"method":"SUBSCRIBE","params":["btcusdt@bookTicker","ethusdt@bookTicker"],"id":1}'
    ]


def test_unsubscribe_message_is_the_documented_form(binance: Binance) -> None:
    assert binance.unsubscribe_messages(("BTCUSDT",), 0.0) == [
        '{"method":"UNSUBSCRIBE","params":["btcusdt@bookTicker"],"id":1}'
    ]


def test_one_subscribe_carries_a_whole_connection(binance: Binance) -> None:
    """The 5 messages/s budget is why: every stream of a shard goes in one SUBSCRIBE."""
    symbols = [f"C{i}USDT" for i in range(binance.max_subscriptions_per_connection)]
    (message,) = binance.subscribe_messages(symbols, 0.0)
    assert json.loads(message)["params"] == [f"c{i}usdt@bookTicker" for i in range(200)]


def test_requests_split_only_past_1024_streams(binance: Binance) -> None:
    symbols = [f"C{i}USDT" for i in range(2100)]
    messages = [json.loads(m) for m in binance.subscribe_messages(symbols, 0.0)]
    assert [len(m["params"]) for m in messages] == [1024, 1024, 52]
    assert [p for m in messages for p in m["params"]] == [
        s.lower() + "@bookTicker" for s in symbols
    ]
    assert [m["id"] for m in messages] == [1, 2, 3]
    assert binance.subscribe_messages([], 0.0) == []


def test_request_ids_are_unsigned_and_wrap_in_int32(binance: Binance) -> None:
    binance._last_id = INT32_MAX - 2
    ids = [json.loads(binance.subscribe_messages(["BTCUSDT"], 0.0)[0])["id"] for _ in range(4)]
    assert ids == [INT32_MAX - 1, INT32_MAX, 1, 2]


# --- fixtures ----------------------------------------------------------------------------------


def test_documented_payload(binance: Binance) -> None:
    frame = load("book_ticker_documented.json")
    assert frame == DOCUMENTED_PAYLOAD
    assert binance.parse(frame) == DOCUMENTED_QUOTE


def test_combined_wrapping(binance: Binance) -> None:
    frame = load("book_ticker_combined.json")
    assert frame == b'{"stream":"bnbusdt@bookTicker","data":' + DOCUMENTED_PAYLOAD + b"}"
    assert binance.parse(frame) == DOCUMENTED_QUOTE


def test_combined_with_data_first(binance: Binance) -> None:
    assert binance.parse(load("book_ticker_combined_data_first.json")) == QuoteUpdate(
        symbol="BTCUSDT",
        bid_price="97351.00000000",
        bid_qty="3.19766000",
        ask_price="97351.01000000",
        ask_qty="0.00431000",
        exchange_time_ms=0,
        sequence=70114835041,
    )


def test_one_sided_books(binance: Binance) -> None:
    assert binance.parse(load("book_ticker_one_sided_no_asks.json")) == QuoteUpdate(
        symbol="NEWCOINUSDT",
        bid_price="0.00012000",
        bid_qty="150000.00000000",
        ask_price=None,
        ask_qty=None,
        exchange_time_ms=0,
        sequence=1024,
    )
    assert binance.parse(load("book_ticker_one_sided_no_bids.json")) == QuoteUpdate(
        symbol="NEWCOINUSDT",
        bid_price=None,
        bid_qty=None,
        ask_price="0.00013000",
        ask_qty="20000.00000000",
        exchange_time_ms=0,
        sequence=1025,
    )


def test_subscribe_success_confirms_the_whole_request(binance: Binance) -> None:
    assert binance.parse(load("subscribe_success.json")) == SubscribeResult(
        accepted=[], rejected=[], reason=""
    )


@pytest.mark.parametrize("name", ["list_subscriptions.json", "get_property_reply.json"])
def test_replies_to_requests_never_sent_are_ignored(binance: Binance, name: str) -> None:
    assert binance.parse(load(name)) == Ignored()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "error_invalid_request.json",
            "code 2: Invalid request: request ID must be an unsigned integer",
        ),
        ("error_unwrapped_old_form.json", "code 2: Invalid request: too many parameters"),
        ("error_invalid_json.json", "code 3: Invalid JSON: expected value at line 1 column 1"),
    ],
)
def test_errors_are_venue_errors_never_rejections(
    binance: Binance, name: str, message: str
) -> None:
    # An error refuses a request, never a symbol (Binance accepts unknown symbols): the pairs
    # stay wanted and the unacknowledged subscription is retried on a new connection.
    assert binance.parse(load(name)) == VenueError(message)


@pytest.mark.parametrize("name", ["server_shutdown_raw.json", "server_shutdown_combined.json"])
def test_server_shutdown_is_a_restart_notice(binance: Binance, name: str) -> None:
    assert binance.parse(load(name)) == RestartNotice(reason="serverShutdown")


def test_other_streams_are_ignored(binance: Binance) -> None:
    assert binance.parse(load("other_stream_trade.json")) == Ignored()


# --- variants ----------------------------------------------------------------------------------


def ticker(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def combined(payload: object, stream: str = "x@bookTicker") -> bytes:
    return json.dumps({"stream": stream, "data": payload}).encode()


def test_missing_or_empty_sides_are_none(binance: Binance) -> None:
    frame = ticker(u=6, s="XUSDT", b="", B="", a="1.5", A="2")
    assert binance.parse(frame) == QuoteUpdate("XUSDT", None, None, "1.5", "2", 0, 6)
    assert binance.parse(ticker(u=7, s="XUSDT", b="1", B="3")) == QuoteUpdate(
        "XUSDT", "1", "3", None, None, 0, 7
    )


def test_only_a_zero_quantity_empties_a_side(binance: Binance) -> None:
    # A zero price with a size is passed on as written: the cache refuses it, not the parser.
    frame = ticker(u=1, s="XUSDT", b="0.00000000", B="5.00000000", a="0.10000000", A="0.0")
    assert binance.parse(frame) == QuoteUpdate(
        "XUSDT", "0.00000000", "5.00000000", "0.10000000", "0.0", 0, 1
    )


def test_key_order_unknown_keys_and_padding_do_not_matter(binance: Binance) -> None:
    frame = b' {"A":"40.66000000","x":[1,{"y":null}],"a":"25.36520000","B":"31.21000000",'
    frame += b'"b":"25.35190000","s":"BNBUSDT","E":5,"u":400900217}\n'
    assert binance.parse(frame) == DOCUMENTED_QUOTE
    padded = b'{ "stream" : "bnbusdt@bookTicker", "data" : ' + DOCUMENTED_PAYLOAD + b" }"
    assert binance.parse(padded) == DOCUMENTED_QUOTE


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b'{"result":null}', SubscribeResult([], [])),
        (b'{"result":null,"id":"abc-123","error":null}', SubscribeResult([], [])),
        (b'{"result":[],"id":3}', Ignored()),
        (b'{"result":{"x":1},"id":3}', Ignored()),
        (b'{"error":"boom","id":1}', VenueError("boom")),
        (b'{"error":{"msg":"no code"},"id":1}', VenueError("no code")),
        (b'{"error":{"code":1},"id":1}', VenueError("code 1")),
        (b'{"error":{},"id":1}', VenueError("unspecified error")),
        (b'{"error":{"code":0,"msg":5},"result":null}', VenueError("code 0")),
        (b'{"code":"2","msg":"Invalid request: x"}', VenueError("code 2: Invalid request: x")),
        (
            b'{"stream":"!serverShutdown","data":{"e":"serverShutdown"}}',
            RestartNotice("serverShutdown"),
        ),
        (b'{"data":{"e":"serverShutdown"},"stream":7}', RestartNotice("serverShutdown")),
        (b'{"stream":"btcusdt@depth","data":[1,2]}', Ignored()),
        (b'{"e":"somethingNew","E":1}', Ignored()),
        (b'{"e":["serverShutdown"]}', Ignored()),
        (b'{"id":1}', Ignored()),
        (b"{}", Ignored()),
    ],
)
def test_odd_control_shapes_are_classified_not_malformed(
    binance: Binance, frame: bytes, expected: object
) -> None:
    assert binance.parse(frame) == expected


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"not json",
        b"[]",
        b'"x"',
        b"null",
        DOCUMENTED_PAYLOAD[:-1],  # truncated
        load("book_ticker_combined.json")[:-1],
        DOCUMENTED_PAYLOAD + b"\xff",
        b'{"s":"\xff\xfe","u":1}',  # not UTF-8
        ticker(u=1, b="1", B="2"),  # no symbol
        ticker(u=1, s="", b="1", B="2"),
        ticker(s="XUSDT", b="1", B="2"),  # no sequence
        ticker(u=1, s="XUSDT", b=25.3519, B="1"),  # a number where a string belongs
        ticker(u="400900217", s="XUSDT"),
        ticker(u=1.5, s="XUSDT"),
        ticker(u=2**63, s="XUSDT"),  # beyond int64, the cache's storage type
        ticker(u=-(2**63) - 1, s="XUSDT"),
        ticker(u=1, s=["XUSDT"]),
        combined({"u": 1, "s": "XUSDT", "b": 1}),
        combined({"u": 1}),
        combined(None),
        combined("x"),
    ],
)
def test_bad_frames_are_malformed(binance: Binance, frame: bytes) -> None:
    result = binance.parse(frame)
    assert isinstance(result, Malformed)
    assert result.reason.startswith("binance: ")
