"""Property tests over every registered venue: no input makes a parser raise, and valid quote
frames round-trip exactly.

Each venue's knowledge lives in :data:`FUZZ`: frames shaped like its control messages (its keys,
any values) and valid quote frames with what they decode to. A registered venue without an
entry fails :func:`test_every_registered_venue_is_fuzzed`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_collector.venues import VENUES, get_venue
from data_collector.venues.base import (
    Ignored,
    Malformed,
    ParseResult,
    Pong,
    QuoteUpdate,
    SubscribeResult,
    Upgrade,
    VenueError,
)
from data_collector.venues.mexc import Mexc
from data_collector.venues.proto import mexc_push_pb2 as pb
from tests.venues import samples

RESULT_TYPES = (QuoteUpdate, SubscribeResult, Pong, VenueError, Upgrade, Malformed, Ignored)
FRAMES = samples.all_frames()
INT64 = st.integers(-(2**63), 2**63 - 1)
NAMES = sorted(VENUES)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(result: object) -> None:
    assert isinstance(result, RESULT_TYPES)
    if isinstance(result, QuoteUpdate):
        assert -(2**63) <= result.sequence < 2**63
        assert -(2**63) <= result.exchange_time_ms < 2**63


def no_extra_check(frame: bytes, result: ParseResult) -> None:
    """Nothing beyond :func:`check` is known of this venue's shaped frames."""


@dataclass(frozen=True)
class Fuzz:
    """What fuzzing knows of one venue's frames."""

    #: frames shaped like the venue's messages: its keys, plausible or arbitrary values
    shaped: st.SearchStrategy[bytes]
    #: valid quote frames and the update each must decode to, field for field
    quotes: st.SearchStrategy[tuple[bytes, QuoteUpdate]]
    #: a venue-specific property of the result of a shaped frame
    shaped_check: Callable[[bytes, ParseResult], None] = no_extra_check


# --- JSON-shaped input: right keys, any types --------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def keyed(keys: dict[str, st.SearchStrategy[object]]) -> st.SearchStrategy[dict[str, object]]:
    """Dicts holding a random subset of ``keys``, each with its plausible or an arbitrary value."""
    return st.fixed_dictionaries({}, optional={k: v | json_values for k, v in keys.items()})


# proto3 drops empty strings, which then read back as None
prices = st.text(min_size=1, max_size=20)
sides = st.none() | prices


# --- Gate.io ---------------------------------------------------------------------------------

gate_ticker = keyed(
    {
        "t": INT64,
        "u": INT64,
        "s": st.sampled_from(["BTC_USDT", "", "GIBBERISH_USD"]),
        "b": st.sampled_from(["19177.79", ""]),
        "B": st.just("0.1"),
        "a": st.just("19179.38"),
        "A": st.just(""),
    }
)
gate_frames = keyed(
    {
        "time": st.integers(0, 2**32),
        "time_ms": st.integers(0, 2**42),
        "id": st.integers(-(2**31), 2**31 - 1),
        "channel": st.sampled_from(["spot.book_ticker", "spot.pong", "spot.ping", "", "x"]),
        "event": st.sampled_from(["update", "subscribe", "unsubscribe", "upgrade", ""]),
        "error": st.none()
        | st.sampled_from(["", "unknown currency pair FOO_USDT", "boom"])
        | keyed(
            {
                "code": st.integers(0, 4) | st.sampled_from(["2", "x", " 3"]),
                "message": st.text(max_size=40) | st.just("unknown currency pair FOO_USDT"),
            }
        ),
        "result": gate_ticker | st.just({"status": "success"}),
        "payload": st.lists(st.sampled_from(["BTC_USDT", "ETH_USDT"]), max_size=3)
        | st.text(max_size=10),
    }
)


def check_classified(quote_frame: bool, result: ParseResult) -> None:
    """Only a quote frame can be malformed: any other JSON object is classified. A subscribe
    result names its symbols as strings."""
    if not quote_frame:
        assert not isinstance(result, Malformed), result
    if isinstance(result, SubscribeResult):
        assert all(isinstance(s, str) for s in result.accepted + result.rejected)


def gate_shaped_check(frame: bytes, result: ParseResult) -> None:
    msg = json.loads(frame)
    check_classified(
        (msg.get("channel"), msg.get("event")) == ("spot.book_ticker", "update"), result
    )


@st.composite
def gate_quotes(draw: st.DrawFn) -> tuple[bytes, QuoteUpdate]:
    symbol = draw(st.from_regex(r"[A-Z0-9]{1,10}_[A-Z0-9]{1,10}", fullmatch=True))
    values = draw(st.tuples(sides, sides, sides, sides))
    t, u = draw(INT64), draw(INT64)
    result = {"t": t, "u": u, "s": symbol}
    result |= {k: v for k, v in zip("bBaA", values, strict=True) if v is not None}
    frame = {"time": 1, "channel": "spot.book_ticker", "event": "update", "result": result}
    return json.dumps(frame).encode(), QuoteUpdate(symbol, *values, t, u)


# --- MEXC ------------------------------------------------------------------------------------

ack_parts = st.sampled_from(
    [
        "Subscribed successful! ",
        "Not Subscribed successfully! ",
        "[spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT,spot@x@ETHUSDT]",
        "[",
        "]",
        ".  Reason\uff1a Blocked! ",
        "Reason: ",
        ",",
        "@",
        "PONG",
    ]
)
mexc_frames = keyed(
    {
        "id": st.integers(-(2**31), 2**31),
        "code": st.integers(-2, 2),
        "msg": st.lists(ack_parts | st.text(max_size=10), max_size=6).map("".join),
    }
)


def mexc_shaped_check(frame: bytes, result: ParseResult) -> None:
    if isinstance(result, SubscribeResult):
        assert all("@" not in s and "," not in s for s in result.accepted + result.rejected)


@st.composite
def mexc_quotes(draw: st.DrawFn) -> tuple[bytes, QuoteUpdate]:
    symbol = draw(st.from_regex(r"[A-Z0-9]{2,12}", fullmatch=True))
    bid, ask = draw(st.tuples(sides, sides)), draw(st.tuples(sides, sides))
    send_time, create_time = draw(st.none() | INT64), draw(st.none() | INT64)
    version = draw(st.none() | st.integers(0, 2**63 - 1))
    wrapper = pb.PushDataV3ApiWrapper(
        channel="spot@public.aggre.bookTicker.v3.api.pb@100ms@" + symbol
    )
    if draw(st.booleans()):
        wrapper.symbol = symbol
    if send_time is not None:
        wrapper.sendTime = send_time
    if create_time is not None:
        wrapper.createTime = create_time
    body = wrapper.publicAggreBookTicker
    body.bidPrice, body.bidQuantity = bid[0] or "", bid[1] or ""
    body.askPrice, body.askQuantity = ask[0] or "", ask[1] or ""
    if version is not None:
        body.version = str(version)
    time_ms = send_time if send_time is not None else create_time or 0
    sequence = -1 if version is None else version
    return wrapper.SerializeToString(), QuoteUpdate(symbol, *bid, *ask, time_ms, sequence)


# --- Binance ---------------------------------------------------------------------------------

EMPTY_SIDE = "0.00000000"  # Binance's writing of an empty side
binance_ticker = keyed(
    {
        "u": INT64,
        "s": st.sampled_from(["BNBUSDT", ""]),
        "b": st.sampled_from(["25.35190000", EMPTY_SIDE, ""]),
        "B": st.sampled_from(["31.21000000", EMPTY_SIDE]),
        "a": st.just("25.36520000"),
        "A": st.sampled_from(["40.66000000", EMPTY_SIDE, ""]),
        "e": st.sampled_from(["serverShutdown", "trade"]),
        "E": INT64,
    }
)
binance_replies = keyed(
    {
        "result": st.none() | st.lists(st.just("btcusdt@bookTicker"), max_size=2),
        "id": st.none() | st.integers(0, 2**63) | st.text(max_size=36),
        "error": st.none()
        | keyed({"code": st.integers(0, 3), "msg": st.text(max_size=40)})
        | st.text(max_size=10),
        "code": st.integers(0, 3),
        "msg": st.text(max_size=40),
    }
)
binance_frames = (
    binance_ticker
    | binance_replies
    | keyed(
        {
            "stream": st.sampled_from(["bnbusdt@bookTicker", "!serverShutdown", "x@trade"]),
            "data": binance_ticker,
        }
    )
)


def binance_shaped_check(frame: bytes, result: ParseResult) -> None:
    # Binance refuses requests, never a symbol: no frame names a pair accepted or rejected.
    assert not (isinstance(result, SubscribeResult) and (result.accepted or result.rejected))
    if isinstance(result, QuoteUpdate):
        assert result.exchange_time_ms == 0  # spot book tickers carry no exchange time


@st.composite
def binance_quotes(draw: st.DrawFn) -> tuple[bytes, QuoteUpdate]:
    symbol = draw(st.from_regex(r"[A-Z0-9]{2,12}", fullmatch=True))
    bid_price, bid_qty, ask_price, ask_qty = draw(st.tuples(*[sides | st.just(EMPTY_SIDE)] * 4))
    u = draw(INT64)
    payload: dict[str, object] = {"u": u, "s": symbol}
    values = (bid_price, bid_qty, ask_price, ask_qty)
    payload |= {k: v for k, v in zip("bBaA", values, strict=True) if v is not None}
    if draw(st.booleans()):  # the combined-stream wrapping
        payload = {"stream": symbol.lower() + "@bookTicker", "data": payload}
    if bid_qty == EMPTY_SIDE:
        bid_price = bid_qty = None
    if ask_qty == EMPTY_SIDE:
        ask_price = ask_qty = None
    expected = QuoteUpdate(symbol, bid_price, bid_qty, ask_price, ask_qty, 0, u)
    return json.dumps(payload).encode(), expected


# --- OKX -------------------------------------------------------------------------------------

okx_level = st.lists(st.sampled_from(["111.06", "", "0", "2"]) | json_values, max_size=5)
okx_item = keyed(
    {
        "asks": st.lists(okx_level, max_size=2),
        "bids": st.lists(okx_level, max_size=2),
        "ts": st.integers(0, 2**45).map(str) | INT64,
        "seqId": INT64 | st.integers(0, 2**40).map(str),
    }
)
okx_frames = keyed(
    {
        "id": st.sampled_from(["1", "abc", ""]) | st.integers(),
        "event": st.sampled_from(["subscribe", "unsubscribe", "error", "notice", "login", ""]),
        "code": st.sampled_from(["60018", "64008", "60012", "0", 60018]),
        "msg": st.lists(
            st.sampled_from(["Wrong URL or channel:bbo-tbt,", "instId:FOO-USDT", " doesn't"])
            | st.text(max_size=10),
            max_size=4,
        ).map("".join),
        "arg": keyed(
            {
                "channel": st.sampled_from(["bbo-tbt", "books5", ""]),
                "instId": st.sampled_from(["BTC-USDT", ""]),
            }
        ),
        "data": st.lists(okx_item, max_size=2),
        "connId": st.just("a4d3ae55"),
    }
)


def okx_shaped_check(frame: bytes, result: ParseResult) -> None:
    # Only a bbo-tbt push, or an ack whose arg is odd, can be malformed: the rest is classified.
    msg = json.loads(frame)
    arg = msg.get("arg")
    is_push = msg.get("event") is None and isinstance(arg, dict) and arg.get("channel") == "bbo-tbt"
    if not is_push and msg.get("event") != "subscribe":
        assert not isinstance(result, Malformed), result
    if isinstance(result, SubscribeResult):
        assert all(isinstance(s, str) and s for s in result.accepted + result.rejected)


@st.composite
def okx_quotes(draw: st.DrawFn) -> tuple[bytes, QuoteUpdate]:
    inst_id = draw(st.from_regex(r"[A-Z0-9]{1,10}-[A-Z0-9]{1,10}", fullmatch=True))
    bid, ask = (
        draw(st.none() | st.tuples(prices, prices)),
        draw(st.none() | st.tuples(prices, prices)),
    )
    ts, seq, orders = draw(st.integers(0, 2**63 - 1)), draw(INT64), draw(st.integers(0, 10**6))

    def levels(side: tuple[str, str] | None) -> list[list[str]]:
        return [] if side is None else [[side[0], side[1], "0", str(orders)]]

    item = {"asks": levels(ask), "bids": levels(bid), "ts": str(ts), "seqId": seq}
    frame = {"arg": {"channel": "bbo-tbt", "instId": inst_id}, "data": [item]}
    expected = QuoteUpdate(inst_id, *(bid or (None, None)), *(ask or (None, None)), ts, seq)
    return json.dumps(frame).encode(), expected


# --- Bybit -----------------------------------------------------------------------------------

bybit_levels = st.lists(
    st.lists(st.sampled_from(["16493.50", "0", "0.000", "x", ""]) | json_values, max_size=3),
    max_size=3,
)
bybit_book = keyed(
    {
        "s": st.sampled_from(["BTCUSDT", "", "FOOUSDT"]),
        "b": bybit_levels,
        "a": bybit_levels,
        "u": st.sampled_from([1, 0, 18521288]) | INT64,
        "seq": INT64,
    }
)
bybit_frames = keyed(
    {
        "topic": st.sampled_from(["orderbook.1.BTCUSDT", "orderbook.50.BTCUSDT", "x", ""]),
        "type": st.sampled_from(["snapshot", "delta", ""]),
        "ts": INT64,
        "cts": INT64,
        "data": bybit_book,
        "op": st.sampled_from(["subscribe", "unsubscribe", "ping", "pong", ""]),
        "success": st.booleans(),
        "req_id": st.sampled_from(["1", "2", "999"]) | st.integers(0, 3),
        "ret_msg": st.sampled_from(
            [
                "subscribe",
                "pong",
                "Invalid symbol :[orderbook.1.FOOUSDT]",
                "error:handler not found,topic:orderbook.1.FOOUSDT",
                "error:already subscribed,topic:orderbook.1.BTCUSDT",
                "args size >10",
            ]
        )
        | st.text(max_size=40),
    }
)


def bybit_shaped_check(frame: bytes, result: ParseResult) -> None:
    check_classified(json.loads(frame).get("type") in ("snapshot", "delta"), result)


@st.composite
def bybit_quotes(draw: st.DrawFn) -> tuple[bytes, QuoteUpdate]:
    symbol = draw(st.from_regex(r"[A-Z0-9]{2,12}", fullmatch=True))
    bid, ask = (
        draw(st.none() | st.tuples(prices, prices)),
        draw(st.none() | st.tuples(prices, prices)),
    )
    ts, u = draw(INT64), draw(INT64)
    data = {"s": symbol, "b": [list(bid)] if bid else [], "a": [list(ask)] if ask else [], "u": u}
    frame = {"topic": f"orderbook.1.{symbol}", "ts": ts, "type": "snapshot", "data": data}
    no_side = (None, None)
    expected = QuoteUpdate(symbol, *(bid or no_side), *(ask or no_side), ts, u, u == 1)
    return json.dumps(frame).encode(), expected


FUZZ: dict[str, Fuzz] = {
    "binance": Fuzz(
        shaped=binance_frames.map(lambda f: json.dumps(f).encode()),
        quotes=binance_quotes(),
        shaped_check=binance_shaped_check,
    ),
    "bybit": Fuzz(
        shaped=bybit_frames.map(lambda f: json.dumps(f, ensure_ascii=False).encode()),
        quotes=bybit_quotes(),
        shaped_check=bybit_shaped_check,
    ),
    "gateio": Fuzz(
        shaped=gate_frames.map(lambda f: json.dumps(f).encode()),
        quotes=gate_quotes(),
        shaped_check=gate_shaped_check,
    ),
    "mexc": Fuzz(
        shaped=mexc_frames.map(lambda f: json.dumps(f, ensure_ascii=False).encode()),
        quotes=mexc_quotes(),
        shaped_check=mexc_shaped_check,
    ),
    "okx": Fuzz(
        shaped=okx_frames.map(lambda f: json.dumps(f, ensure_ascii=False).encode()),
        quotes=okx_quotes(),
        shaped_check=okx_shaped_check,
    ),
}


def test_every_registered_venue_is_fuzzed() -> None:
    missing = set(VENUES) - set(FUZZ)
    assert not missing, f"no fuzzing strategies for {sorted(missing)}: add them to FUZZ"


# --- every venue -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(name: str, data: bytes) -> None:
    venue = get_venue(name)
    check(venue.parse(data))
    check(venue.parse(b"{" + data))  # past a first-byte dispatch to the JSON path


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(frame=st.sampled_from(FRAMES), data=st.data())
def test_mutated_fixtures_never_raise(name: str, frame: bytes, data: st.DataObject) -> None:
    venue = get_venue(name)
    cut = data.draw(st.integers(0, len(frame)))
    pos = data.draw(st.integers(0, len(frame) - 1))
    byte = data.draw(st.integers(0, 255))
    for mutated in (frame[:cut], frame[:pos] + bytes([byte]) + frame[pos + 1 :]):
        check(venue.parse(mutated))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@FAST
@given(data=st.data())
def test_shaped_frames_never_raise(name: str, data: st.DataObject) -> None:
    fuzz = FUZZ[name]
    frame = data.draw(fuzz.shaped)
    result = get_venue(name).parse(frame)
    check(result)
    fuzz.shaped_check(frame, result)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@FAST
@given(data=st.data())
def test_quote_frames_round_trip(name: str, data: st.DataObject) -> None:
    frame, expected = data.draw(FUZZ[name].quotes)
    assert get_venue(name).parse(frame) == expected


# --- one venue's peculiarity -------------------------------------------------------------------


@FAST
@given(mexc_frames, st.sampled_from([b" ", b"\n", b"\r\n\t ", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n"]))
def test_mexc_padded_control_frames_parse_like_unpadded(
    frame: dict[str, object], pad: bytes
) -> None:
    mexc = Mexc()
    data = json.dumps(frame, ensure_ascii=False).encode()
    plain, padded = mexc.parse(data), mexc.parse(pad + data)
    if isinstance(plain, Malformed):
        assert isinstance(padded, Malformed)
    else:
        assert padded == plain
