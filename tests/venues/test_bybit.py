"""Bybit v5 spot protocol module: message builders and the frame parser, on byte-exact fixtures."""

from __future__ import annotations

import json

import pytest

from data_collector.pairs import Pair
from data_collector.venues import bybit as bybit_module
from data_collector.venues.base import (
    Ignored,
    Keepalive,
    Malformed,
    Pong,
    QuoteUpdate,
    SubscribeResult,
    VenueError,
)
from data_collector.venues.bybit import Bybit
from tests.venues import samples

ARGS_CHARS_PER_CONNECTION = 21_000  # EXCHANGES.md: the args of one connection, at most


def load(name: str) -> bytes:
    return samples.load("bybit", name)


@pytest.fixture
def bybit() -> Bybit:
    return Bybit()


def snapshot(data: dict[str, object], **outer: object) -> bytes:
    frame = {"topic": f"orderbook.1.{data.get('s')}", "ts": 5, "type": "snapshot", "data": data}
    return json.dumps(frame | outer).encode()


def delta(data: dict[str, object], ts: int = 9) -> bytes:
    frame = {"topic": f"orderbook.1.{data.get('s')}", "ts": ts, "type": "delta", "data": data}
    return json.dumps(frame).encode()


# --- venue attributes and builders -------------------------------------------------------------


def test_attributes(bybit: Bybit) -> None:
    assert bybit.name == "bybit"
    assert bybit.display_name == "Bybit"
    assert bybit.default_url == "wss://stream.bybit.com/v5/public/spot"
    assert bybit.default_taker_fee == 0.001
    assert bybit.docs_url == "https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook"
    assert bybit.channel_name == "orderbook.1.<SYMBOL>"
    assert bybit.max_symbols_per_request == 10
    assert bybit.control_budget is None
    assert bybit.keepalive is Keepalive.PING_INTERVAL
    assert bybit.ping_interval == 20.0
    assert bybit.max_connection_lifetime is None


def test_a_full_connection_stays_inside_the_args_character_cap(bybit: Bybit) -> None:
    cap = bybit.max_subscriptions_per_connection
    assert cap is not None
    long_symbols = [f"{i:03d}" + "X" * 77 for i in range(cap)]  # 80 characters each
    args = [a for m in bybit.subscribe_messages(long_symbols, 0.0) for a in json.loads(m)["args"]]
    assert len(args) == cap
    # however Bybit counts (the strings, or their JSON with quotes and commas), it fits
    assert len(json.dumps(args, separators=(",", ":"))) <= ARGS_CHARS_PER_CONNECTION


def test_symbol(bybit: Bybit) -> None:
    assert bybit.symbol(Pair("BTC", "USDT")) == "BTCUSDT"
    assert bybit.symbol(Pair("1INCH", "USDC")) == "1INCHUSDC"


def test_subscribe_message_is_the_documented_request(bybit: Bybit) -> None:
    assert bybit.subscribe_messages(["BTCUSDT", "ETHUSDT"], 1672304484.0) == [
        '{"req_id":"1","op":"subscribe","args":["orderbook.1.BTCUSDT","orderbook.1.ETHUSDT"]}'
    ]


def test_unsubscribe_message_is_exact_json(bybit: Bybit) -> None:
    assert bybit.unsubscribe_messages(("BTCUSDT",), 0.0) == [
        '{"req_id":"1","op":"unsubscribe","args":["orderbook.1.BTCUSDT"]}'
    ]


def test_ping_message_is_the_documented_request(bybit: Bybit) -> None:
    assert bybit.ping_message(0.0) == '{"req_id":"1","op":"ping"}'
    assert bybit.ping_message(0.0) == '{"req_id":"2","op":"ping"}'


def test_subscribe_splits_at_ten_args_with_distinct_ids(bybit: Bybit) -> None:
    symbols = [f"C{i}USDT" for i in range(25)]
    messages = [json.loads(m) for m in bybit.subscribe_messages(symbols, 0.0)]
    assert [len(m["args"]) for m in messages] == [10, 10, 5]
    assert [a for m in messages for a in m["args"]] == [f"orderbook.1.{s}" for s in symbols]
    assert [m["req_id"] for m in messages] == ["1", "2", "3"]
    assert {m["op"] for m in messages} == {"subscribe"}
    assert bybit.subscribe_messages([], 0.0) == []
    unsubscribe = [json.loads(m) for m in bybit.unsubscribe_messages(symbols, 0.0)]
    assert [len(m["args"]) for m in unsubscribe] == [10, 10, 5]
    assert [m["req_id"] for m in unsubscribe] == ["4", "5", "6"]


# --- fixtures: quotes --------------------------------------------------------------------------

DOCUMENTED = QuoteUpdate(
    symbol="BTCUSDT",
    bid_price="16493.50",
    bid_qty="0.006",
    ask_price="16611.00",
    ask_qty="0.029",
    exchange_time_ms=1672304484978,
    sequence=18521288,
    sequence_restart=False,
)


def test_documented_snapshot(bybit: Bybit) -> None:
    frame = load("snapshot_documented.json")
    assert frame == (
        b'{"topic":"orderbook.1.BTCUSDT","ts":1672304484978,"type":"snapshot","data":'
        b'{"s":"BTCUSDT","b":[["16493.50","0.006"]],"a":[["16611.00","0.029"]],"u":18521288,'
        b'"seq":7961638724},"cts":1672304484976}'
    )
    assert bybit.parse(frame) == DOCUMENTED


def test_repeated_snapshot_keeps_its_sequence(bybit: Bybit) -> None:
    first = bybit.parse(load("snapshot_documented.json"))
    repeat = bybit.parse(load("snapshot_repeat_same_u.json"))
    assert repeat == QuoteUpdate(
        "BTCUSDT", "16493.50", "0.006", "16611.00", "0.029", 1672304487978, 18521288, False
    )
    assert isinstance(first, QuoteUpdate) and isinstance(repeat, QuoteUpdate)
    assert repeat.sequence == first.sequence  # the cache counts it as a repeat


def test_sequence_one_marks_a_restart(bybit: Bybit) -> None:
    assert bybit.parse(load("snapshot_restart_u1.json")) == QuoteUpdate(
        symbol="BTCUSDT",
        bid_price="16501.00",
        bid_qty="0.120",
        ask_price="16502.50",
        ask_qty="0.033",
        exchange_time_ms=1672304612345,
        sequence=1,
        sequence_restart=True,
    )
    assert bybit.parse(snapshot({"s": "X", "u": 2})) == QuoteUpdate(
        "X", None, None, None, None, 5, 2, False
    )
    assert bybit.parse(snapshot({"s": "X", "u": 0})) == QuoteUpdate(
        "X", None, None, None, None, 5, 0, False
    )


def test_one_sided_snapshot(bybit: Bybit) -> None:
    assert bybit.parse(load("snapshot_one_sided_ask_only.json")) == QuoteUpdate(
        symbol="NEWCOINUSDT",
        bid_price=None,
        bid_qty=None,
        ask_price="0.01540",
        ask_qty="1200.5",
        exchange_time_ms=1672304500000,
        sequence=42,
    )


def test_empty_snapshot(bybit: Bybit) -> None:
    assert bybit.parse(load("snapshot_empty_book.json")) == QuoteUpdate(
        "NEWCOINUSDT", None, None, None, None, 1672304400000, 7
    )


def test_snapshot_defaults_and_key_order(bybit: Bybit) -> None:
    assert bybit.parse(b'{"type":"snapshot","data":{"s":"ABC"}}') == QuoteUpdate(
        "ABC", None, None, None, None, 0, -1
    )
    frame = (
        b'{"cts":1,"data":{"seq":3,"u":8,"a":[["2","3"],["2.5","1"]],"x":{"y":[null]},'
        b'"b":[["1","4"]],"s":"ABC"},"type":"snapshot","ts":77,"topic":"orderbook.1.ABC"}'
    )
    assert bybit.parse(frame) == QuoteUpdate("ABC", "1", "4", "2", "3", 77, 8)
    # a level with more entries than price and size keeps the two it needs
    frame = snapshot({"s": "ABC", "b": [["1", "4", "x"]], "u": 9})
    assert bybit.parse(frame) == QuoteUpdate("ABC", "1", "4", None, None, 5, 9)


# --- fixtures: deltas --------------------------------------------------------------------------


def test_delta_with_empty_bid_keeps_bids_and_replaces_the_ask(bybit: Bybit) -> None:
    bybit.parse(load("snapshot_documented.json"))
    assert bybit.parse(load("delta_2023_empty_bid.json")) == QuoteUpdate(
        symbol="BTCUSDT",
        bid_price="16493.50",
        bid_qty="0.006",
        ask_price="16610.50",
        ask_qty="0.450",
        exchange_time_ms=1672304485012,
        sequence=18521289,
    )


def test_delta_size_zero_removes_that_price(bybit: Bybit) -> None:
    bybit.parse(load("snapshot_documented.json"))
    assert bybit.parse(load("delta_remove_ask.json")) == QuoteUpdate(
        "BTCUSDT", "16493.50", "0.006", None, None, 1672304485050, 18521290
    )


def test_delta_removing_a_price_that_is_not_the_top_changes_nothing(bybit: Bybit) -> None:
    bybit.parse(load("snapshot_documented.json"))
    bybit.parse(load("delta_2023_empty_bid.json"))  # ask top is now 16610.50
    assert bybit.parse(load("delta_remove_ask.json")) == QuoteUpdate(
        "BTCUSDT", "16493.50", "0.006", "16610.50", "0.450", 1672304485050, 18521290
    )


def test_delta_applies_to_the_latest_book(bybit: Bybit) -> None:
    bybit.parse(snapshot({"s": "X", "b": [["1.0", "2"]], "a": [["3.0", "4"]], "u": 10}))
    assert bybit.parse(delta({"s": "X", "b": [["1.1", "5"]], "u": 11})) == QuoteUpdate(
        "X", "1.1", "5", "3.0", "4", 9, 11
    )
    # the removal compares prices as numbers; the bid from the delta above is the base now
    assert bybit.parse(delta({"s": "X", "b": [["1.10", "0.000"]], "u": 12})) == QuoteUpdate(
        "X", None, None, "3.0", "4", 9, 12
    )
    # removal then a new top in one delta; the other side absent
    assert bybit.parse(
        delta({"s": "X", "a": [["3.0", "0"], ["3.5", "1"]], "b": [], "u": 13})
    ) == QuoteUpdate("X", None, None, "3.5", "1", 9, 13)


def test_stale_delta_is_returned_but_does_not_become_the_book(bybit: Bybit) -> None:
    bybit.parse(snapshot({"s": "X", "b": [["1", "2"]], "a": [["3", "4"]], "u": 10}))
    stale = bybit.parse(delta({"s": "X", "b": [["0.5", "1"]], "u": 9}))
    assert stale == QuoteUpdate("X", "0.5", "1", "3", "4", 9, 9)  # the cache drops it
    assert bybit.parse(delta({"s": "X", "a": [["2.5", "1"]], "u": 11})) == QuoteUpdate(
        "X", "1", "2", "2.5", "1", 9, 11
    )


def test_delta_with_sequence_one_is_a_restart(bybit: Bybit) -> None:
    bybit.parse(snapshot({"s": "X", "b": [["1", "2"]], "a": [["3", "4"]], "u": 10}))
    assert bybit.parse(delta({"s": "X", "b": [["1.5", "2"]], "u": 1})) == QuoteUpdate(
        "X", "1.5", "2", "3", "4", 9, 1, True
    )
    assert bybit.parse(delta({"s": "X", "a": [["2", "2"]], "u": 2})) == QuoteUpdate(
        "X", "1.5", "2", "2", "2", 9, 2
    )


def test_delta_before_any_snapshot_is_ignored(bybit: Bybit) -> None:
    assert bybit.parse(load("delta_2023_empty_bid.json")) == Ignored()


@pytest.mark.parametrize(
    "data",
    [
        {"s": "X", "b": [["1", "not a size"]], "u": 11},
        {"s": "X", "b": [["1", 0]], "u": 11},
        {"s": "X", "b": [["1"]], "u": 11},
        {"s": "X", "u": 2**63},
        {"b": [], "u": 11},
    ],
)
def test_bad_delta_is_malformed(bybit: Bybit, data: dict[str, object]) -> None:
    bybit.parse(snapshot({"s": "X", "b": [["1", "2"]], "a": [["3", "4"]], "u": 10}))
    result = bybit.parse(delta(data))
    assert isinstance(result, Malformed), result
    assert result.reason.startswith("bybit: ")


def test_books_for_deltas_are_bounded(bybit: Bybit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bybit_module, "BOOKS_MAX", 3)
    for i in range(4):
        bybit.parse(snapshot({"s": f"S{i}", "b": [["1", "1"]], "u": 5}))
    assert bybit.parse(delta({"s": "S0", "a": [["2", "1"]], "u": 6})) == Ignored()
    bybit.parse(snapshot({"s": "S0", "b": [["1", "1"]], "u": 7}))
    assert isinstance(bybit.parse(delta({"s": "S0", "a": [["2", "1"]], "u": 8})), QuoteUpdate)


# --- fixtures: acknowledgements and pongs ------------------------------------------------------


def test_documented_ack_accepts_the_symbols_of_its_request(bybit: Bybit) -> None:
    bybit.subscribe_messages(["BTCUSDT", "ETHUSDT"], 0.0)  # req_id "1"
    assert bybit.parse(load("subscribe_ack_documented.json")) == SubscribeResult(
        accepted=["BTCUSDT", "ETHUSDT"], rejected=[], reason=""
    )
    # answered: a second ack for the same request confirms it without naming symbols again
    assert bybit.parse(load("subscribe_ack_documented.json")) == SubscribeResult([], [])


def test_ack_for_an_unknown_request_confirms_without_naming(bybit: Bybit) -> None:
    assert bybit.parse(load("subscribe_ack_documented.json")) == SubscribeResult([], [])


@pytest.mark.parametrize(
    ("name", "request_number", "reason"),
    [
        ("subscribe_rejected_invalid_symbol.json", 1, "Invalid symbol :[orderbook.1.FOOUSDT]"),
        (
            "subscribe_rejected_handler_not_found.json",
            2,
            "error:handler not found,topic:orderbook.1.FOOUSDT",
        ),
    ],
)
def test_refusal_rejects_the_named_symbol_and_accepts_nothing(
    bybit: Bybit, name: str, request_number: int, reason: str
) -> None:
    for _ in range(request_number):
        bybit.subscribe_messages(["BTCUSDT", "FOOUSDT", "ETHUSDT"], 0.0)
    assert bybit.parse(load(name)) == SubscribeResult(
        accepted=[], rejected=["FOOUSDT"], reason=reason
    )


def test_refusal_naming_no_topic_is_a_venue_error(bybit: Bybit) -> None:
    assert bybit.parse(load("subscribe_rejected_args_size.json")) == VenueError(
        "subscribe refused: args size >10"
    )


def test_already_subscribed_counts_as_accepted(bybit: Bybit) -> None:
    assert bybit.parse(load("subscribe_rejected_already_subscribed.json")) == SubscribeResult(
        accepted=["ETHUSDT"],
        rejected=[],
        reason="error:already subscribed,topic:orderbook.1.ETHUSDT",
    )


def test_re_ask_after_a_refusal_carries_only_the_refused_requests_others(bybit: Bybit) -> None:
    """What the manager does with the results: the symbols of the other requests were named
    accepted, so asking again for the unaccepted ones sends only the sunk request's rest."""
    symbols = [f"C{i}USDT" for i in range(25)]
    symbols[13] = "FOOUSDT"
    bybit.subscribe_messages(symbols, 0.0)  # req_ids "1", "2", "3"
    acks = [
        b'{"success":true,"ret_msg":"subscribe","conn_id":"c","req_id":"3","op":"subscribe"}',
        b'{"success":false,"ret_msg":"Invalid symbol :[orderbook.1.FOOUSDT]","conn_id":"c",'
        b'"req_id":"2","op":"subscribe"}',
        b'{"success":true,"ret_msg":"subscribe","conn_id":"c","req_id":"1","op":"subscribe"}',
    ]
    accepted: set[str] = set()
    rejected: list[str] = []
    for ack in acks:
        result = bybit.parse(ack)
        assert isinstance(result, SubscribeResult)
        accepted.update(result.accepted)
        rejected += result.rejected
    assert rejected == ["FOOUSDT"]
    assert accepted == set(symbols[:10] + symbols[20:])
    missing = [s for s in symbols if s not in accepted and s not in rejected]
    assert [json.loads(m) for m in bybit.subscribe_messages(missing, 0.0)] == [
        {
            "req_id": "4",
            "op": "subscribe",
            "args": [f"orderbook.1.{s}" for s in symbols[10:20] if s != "FOOUSDT"],
        }
    ]


def test_pending_requests_are_bounded(bybit: Bybit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bybit_module, "PENDING_REQUESTS_MAX", 2)
    for symbol in ("A", "B", "C"):
        bybit.subscribe_messages([symbol], 0.0)  # req_ids "1", "2", "3": "1" is forgotten
    ack = '{{"success":true,"ret_msg":"subscribe","req_id":"{}","op":"subscribe"}}'
    assert bybit.parse(ack.format(1).encode()) == SubscribeResult([], [])
    assert bybit.parse(ack.format(2).encode()) == SubscribeResult(["B"], [])
    assert bybit.parse(ack.format(3).encode()) == SubscribeResult(["C"], [])


def test_unsubscribe_ack_is_ignored(bybit: Bybit) -> None:
    assert bybit.parse(load("unsubscribe_ack.json")) == Ignored()


@pytest.mark.parametrize("name", ["pong_documented.json", "pong_linear_form.json"])
def test_pong(bybit: Bybit, name: str) -> None:
    assert bybit.parse(load(name)) == Pong()


# --- odd shapes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b'{"op":"subscribe","req_id":7,"ret_msg":null}', SubscribeResult([], [])),
        (
            b'{"op":"subscribe","ret_msg":"Invalid symbol :[orderbook.1.A, orderbook.1.B]"}',
            SubscribeResult([], ["A", "B"], "Invalid symbol :[orderbook.1.A, orderbook.1.B]"),
        ),
        (
            b'{"op":"subscribe","success":false,"ret_msg":"error:handler not found,'
            b'topic:orderbook.50.BTCUSDT"}',
            VenueError("subscribe refused: error:handler not found,topic:orderbook.50.BTCUSDT"),
        ),
        (b'{"op":"subscribe","success":false}', VenueError("subscribe refused: no reason given")),
        (b'{"op":"ping","success":false,"ret_msg":"x"}', VenueError("ping refused: x")),
        (
            b'{"success":false,"ret_msg":"error:invalid op"}',
            VenueError("request refused: error:invalid op"),
        ),
        (
            b'{"op":"unsubscribe","success":false,"ret_msg":"no"}',
            VenueError("unsubscribe refused: no"),
        ),
        (b'{"op":"auth","success":true}', Ignored()),
        (b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","data":[{"p":"1"}]}', Ignored()),
        (b'{"topic":"orderbook.1.X","type":"other","data":{}}', Ignored()),
        (b'{"topic":5,"type":"delta","op":["subscribe"],"success":"no"}', Ignored()),
        (b"{}", Ignored()),
    ],
)
def test_odd_control_shapes_are_classified(bybit: Bybit, frame: bytes, expected: object) -> None:
    assert bybit.parse(frame) == expected


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"not json",
        b"[]",
        b'"pong"',
        b'{"topic":"orderbook.1.BTCUSDT","type":"snapshot"',  # truncated
        b'{"op":"ping"}\xff',
        b'{"op":"\xff\xfe"}',  # not UTF-8
        snapshot({"b": [["1", "2"]], "u": 3}),  # no symbol
        snapshot({"s": "", "b": [["1", "2"]]}),
        snapshot({"s": "X", "b": [[16493.5, "0.006"]]}),  # a number where a string belongs
        snapshot({"s": "X", "b": [["1"]]}),
        snapshot({"s": "X", "b": None}),
        snapshot({"s": "X", "u": "18521288"}),
        snapshot({"s": "X", "u": 2**63}),  # beyond int64, the cache's storage type
        snapshot({"s": "X"}, ts=-(2**63) - 1),
        snapshot({"s": "X"}, ts="1672304484978"),
        b'{"topic":"orderbook.1.X","type":"snapshot","data":"x"}',
    ],
)
def test_bad_frames_are_malformed(bybit: Bybit, frame: bytes) -> None:
    result = bybit.parse(frame)
    assert isinstance(result, Malformed), result
    assert result.reason.startswith("bybit: ")


def test_non_bytes_input_is_malformed_not_raised(bybit: Bybit) -> None:
    assert isinstance(bybit.parse(None), Malformed)  # type: ignore[arg-type]
