"""Property tests: no input makes a venue parser raise, and valid frames round-trip exactly."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from data_collector.venues.mexc import Mexc
from data_collector.venues.proto import mexc_push_pb2 as pb

RESULT_TYPES = (QuoteUpdate, SubscribeResult, Pong, VenueError, Upgrade, Malformed, Ignored)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FRAMES = sorted(p.read_bytes() for p in FIXTURES.glob("*/*") if p.suffix in (".bin", ".json"))
INT64 = st.integers(-(2**63), 2**63 - 1)

MEXC = Mexc()
GATE = GateIO()
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(result: object) -> None:
    assert isinstance(result, RESULT_TYPES)
    if isinstance(result, QuoteUpdate):
        assert -(2**63) <= result.sequence < 2**63
        assert -(2**63) <= result.exchange_time_ms < 2**63


# --- arbitrary bytes ---------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    check(MEXC.parse(data))
    check(GATE.parse(data))
    check(MEXC.parse(b"{" + data))


@FAST
@given(st.sampled_from(FRAMES), st.data())
def test_mutated_fixtures_never_raise(frame: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(frame)))
    pos = data.draw(st.integers(0, len(frame) - 1))
    byte = data.draw(st.integers(0, 255))
    for mutated in (frame[:cut], frame[:pos] + bytes([byte]) + frame[pos + 1 :]):
        check(MEXC.parse(mutated))
        check(GATE.parse(mutated))


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


@FAST
@given(gate_frames)
def test_gate_json_shaped_frames_never_raise(frame: dict[str, object]) -> None:
    result = GATE.parse(json.dumps(frame).encode())
    check(result)
    # Only a book-ticker update can be malformed: any other JSON object is classified.
    if (frame.get("channel"), frame.get("event")) != ("spot.book_ticker", "update"):
        assert not isinstance(result, Malformed), result
    if isinstance(result, SubscribeResult):
        assert all(isinstance(s, str) for s in result.accepted + result.rejected)


@FAST
@given(mexc_frames)
def test_mexc_json_shaped_frames_never_raise(frame: dict[str, object]) -> None:
    result = MEXC.parse(json.dumps(frame, ensure_ascii=False).encode())
    check(result)
    if isinstance(result, SubscribeResult):
        assert all("@" not in s and "," not in s for s in result.accepted + result.rejected)


@FAST
@given(mexc_frames, st.sampled_from([b" ", b"\n", b"\r\n\t ", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n"]))
def test_mexc_padded_control_frames_parse_like_unpadded(
    frame: dict[str, object], pad: bytes
) -> None:
    data = json.dumps(frame, ensure_ascii=False).encode()
    plain, padded = MEXC.parse(data), MEXC.parse(pad + data)
    if isinstance(plain, Malformed):
        assert isinstance(padded, Malformed)
    else:
        assert padded == plain


# --- round trips of valid frames ---------------------------------------------------------------

# proto3 drops empty strings, which then read back as None
prices = st.text(min_size=1, max_size=20)
sides = st.none() | prices


@FAST
@given(
    symbol=st.from_regex(r"[A-Z0-9]{2,12}", fullmatch=True),
    bid=st.tuples(sides, sides),
    ask=st.tuples(sides, sides),
    send_time=st.none() | INT64,
    create_time=st.none() | INT64,
    version=st.none() | st.integers(0, 2**63 - 1),
    with_symbol=st.booleans(),
)
def test_mexc_push_round_trip(
    symbol: str,
    bid: tuple[str | None, str | None],
    ask: tuple[str | None, str | None],
    send_time: int | None,
    create_time: int | None,
    version: int | None,
    with_symbol: bool,
) -> None:
    wrapper = pb.PushDataV3ApiWrapper(
        channel="spot@public.aggre.bookTicker.v3.api.pb@100ms@" + symbol
    )
    if with_symbol:
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
    assert MEXC.parse(wrapper.SerializeToString()) == QuoteUpdate(
        symbol, *bid, *ask, time_ms, -1 if version is None else version
    )


@FAST
@given(
    symbol=st.from_regex(r"[A-Z0-9]{1,10}_[A-Z0-9]{1,10}", fullmatch=True),
    values=st.tuples(sides, sides, sides, sides),
    t=INT64,
    u=INT64,
)
def test_gate_update_round_trip(
    symbol: str, values: tuple[str | None, ...], t: int, u: int
) -> None:
    result = {"t": t, "u": u, "s": symbol}
    result |= {k: v for k, v in zip("bBaA", values, strict=True) if v is not None}
    frame = {"time": 1, "channel": "spot.book_ticker", "event": "update", "result": result}
    assert GATE.parse(json.dumps(frame).encode()) == QuoteUpdate(symbol, *values, t, u)
