"""OKX v5 protocol module: message builders and the frame parser, against byte-exact fixtures."""

from __future__ import annotations

import json

import pytest

from data_collector.pairs import Pair
from data_collector.venues import VENUES
from data_collector.venues.base import (
    BudgetScope,
    ControlBudget,
    Ignored,
    Keepalive,
    Malformed,
    Pong,
    QuoteUpdate,
    RestartNotice,
    SubscribeResult,
    VenueError,
)
from data_collector.venues.okx import MAX_ARGS_BYTES, Okx
from tests.venues import samples

DOC_60018 = (
    "Wrong URL or channel:bbo-tbt,instId:FOO-USDT doesn't exist. Please use the correct URL, "
    "channel and parameters referring to API document."
)


def load(name: str) -> bytes:
    return samples.load("okx", name)


@pytest.fixture
def okx() -> Okx:
    return Okx()


# --- venue attributes and builders -------------------------------------------------------------


def test_attributes(okx: Okx) -> None:
    assert VENUES["okx"].__class__ is Okx
    assert okx.name == "okx"
    assert okx.display_name == "OKX"
    assert okx.default_url == "wss://ws.okx.com/ws/v5/public"  # port 443: 8443 is retired
    assert okx.default_taker_fee == 0.001
    assert okx.docs_url.startswith("https://www.okx.com/docs-v5/en/#")
    assert okx.channel_name == "bbo-tbt"
    assert okx.max_subscriptions_per_connection == 100
    assert okx.max_symbols_per_request is None  # the cap is 64 KB of args, split by size
    assert okx.control_budget == ControlBudget(
        messages=480, per_seconds=3600.0, scope=BudgetScope.SUBSCRIPTIONS
    )
    assert okx.keepalive is Keepalive.PING_WHEN_IDLE
    assert 0 < okx.ping_interval < 30
    assert okx.max_connection_lifetime is None


def test_symbol(okx: Okx) -> None:
    assert okx.symbol(Pair("BTC", "USDT")) == "BTC-USDT"
    assert okx.symbol(Pair("1INCH", "USDC")) == "1INCH-USDC"


def test_subscribe_message_is_the_documented_request(okx: Okx) -> None:
    request = load("subscribe_request_documented.json").decode()
    assert okx.subscribe_messages(["BTC-USDT", "ETH-USDT"], 1670324386.8) == [request]


def test_unsubscribe_message_and_ids_count_up(okx: Okx) -> None:
    okx.subscribe_messages(["BTC-USDT"], 0.0)
    assert okx.unsubscribe_messages(("BTC-USDT",), 0.0) == [
        '{"id":"2","op":"unsubscribe","args":[{"channel":"bbo-tbt","instId":"BTC-USDT"}]}'
    ]
    assert okx.subscribe_messages([], 0.0) == []


def test_ping_is_the_bare_text(okx: Okx) -> None:
    assert okx.ping_message(1670324386.8) == "ping"


def args_bytes(message: str) -> int:
    """Bytes of the request's ``args`` array, encoded compactly as sent."""
    args = json.loads(message)["args"]
    return len(json.dumps(args, separators=(",", ":")).encode())


def test_requests_split_at_64_kb_of_args(okx: Okx) -> None:
    # 2,000 args of ~48 bytes: ~96 KB in all, so two requests, each as full as the cap allows
    symbols = [f"COIN{i:05d}-USDT" for i in range(2000)]
    messages = okx.subscribe_messages(symbols, 0.0)
    assert len(messages) == 2
    sizes = [args_bytes(m) for m in messages]
    assert all(size <= MAX_ARGS_BYTES for size in sizes)
    one_arg = len('{"channel":"bbo-tbt","instId":"COIN00000-USDT"}') + 1
    assert sizes[0] > MAX_ARGS_BYTES - one_arg  # the first request is full
    decoded = [json.loads(m) for m in messages]
    assert [a["instId"] for m in decoded for a in m["args"]] == symbols
    assert [m["id"] for m in decoded] == ["1", "2"]
    assert all(m["op"] == "subscribe" for m in decoded)


def test_split_lands_exactly_on_the_cap(okx: Okx) -> None:
    # 771 args of 84 bytes, 770 commas and the brackets: exactly 65,536 bytes
    symbol = "X" * (84 - len('{"channel":"bbo-tbt","instId":""}'))
    assert MAX_ARGS_BYTES == 2 + 771 * 84 + 770
    messages = okx.subscribe_messages([symbol] * 772, 0.0)
    assert [len(json.loads(m)["args"]) for m in messages] == [771, 1]
    assert args_bytes(messages[0]) == MAX_ARGS_BYTES


def test_an_oversized_arg_still_goes_alone(okx: Okx) -> None:
    huge = "H" * MAX_ARGS_BYTES
    messages = okx.subscribe_messages(["A-B", huge, "C-D"], 0.0)
    assert [[a["instId"] for a in json.loads(m)["args"]] for m in messages] == [
        ["A-B"],
        [huge],
        ["C-D"],
    ]


def test_symbols_are_json_escaped(okx: Okx) -> None:
    (message,) = okx.subscribe_messages(['A"B-\\C'], 0.0)
    assert json.loads(message)["args"] == [{"channel": "bbo-tbt", "instId": 'A"B-\\C'}]


# --- fixtures ----------------------------------------------------------------------------------


def test_documented_update(okx: Okx) -> None:
    assert okx.parse(load("bbo_tbt_documented.json")) == QuoteUpdate(
        symbol="BTC-USDT",
        bid_price="111.05",
        bid_qty="57745",
        ask_price="111.06",
        ask_qty="55154",
        exchange_time_ms=1670324386802,
        sequence=363996337,
        sequence_restart=False,
    )


def test_one_sided_books(okx: Okx) -> None:
    assert okx.parse(load("bbo_tbt_one_sided_ask_only.json")) == QuoteUpdate(
        "NEW-USDT", None, None, "0.0421", "1200.5", 1789897517479, 1024
    )
    assert okx.parse(load("bbo_tbt_one_sided_bid_only.json")) == QuoteUpdate(
        "OLD-USDT", "2.5", "0.001", None, None, 1789897517480, 1025
    )


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("subscribe_ack_documented.json", "BTC-USDT"),
        ("subscribe_ack_second_arg.json", "ETH-USDT"),
        ("subscribe_ack_without_id.json", "SOL-USDT"),
    ],
)
def test_one_ack_per_arg_names_its_instrument(okx: Okx, name: str, symbol: str) -> None:
    assert okx.parse(load(name)) == SubscribeResult(accepted=[symbol], rejected=[], reason="")


def test_unsubscribe_ack_is_ignored(okx: Okx) -> None:
    assert okx.parse(load("unsubscribe_ack.json")) == Ignored()


def test_documented_60018_rejects_the_instrument_in_msg(okx: Okx) -> None:
    assert okx.parse(load("error_60018_documented.json")) == SubscribeResult(
        accepted=[], rejected=["FOO-USDT"], reason=DOC_60018
    )


def test_60018_with_echoed_id(okx: Okx) -> None:
    assert okx.parse(load("error_60018_with_id.json")) == SubscribeResult(
        accepted=[],
        rejected=["GIBBERISH-USD"],
        reason=DOC_60018.replace("FOO-USDT", "GIBBERISH-USD"),
    )


def test_60018_names_the_instrument_in_arg_when_msg_does_not(okx: Okx) -> None:
    frame = b'{"event":"error","code":"60018","msg":"","arg":{"channel":"bbo-tbt","instId":"X-Y"}}'
    assert okx.parse(frame) == SubscribeResult(accepted=[], rejected=["X-Y"], reason="code 60018")


def test_60018_with_an_empty_instrument_rejects_nothing(okx: Okx) -> None:
    frame = b'{"event":"error","code":"60018","arg":{"channel":"bbo-tbt","instId":""}}'
    assert okx.parse(frame) == VenueError("code 60018")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "error_60012_illegal_request.json",
            'code 60012: Illegal request: {"op":"subscribe","args":[{"channel":"bbo-tbt",'
            '"instId":"BTC-USDT"}]}',
        ),
        ("error_60014_too_frequent.json", "code 60014: Requests too frequent."),
        ("error_63999_internal.json", "code 63999: Internal error in service."),
    ],
)
def test_other_error_codes_are_venue_errors(okx: Okx, name: str, message: str) -> None:
    assert okx.parse(load(name)) == VenueError(message)


def test_notice_64008_is_a_restart_notice(okx: Okx) -> None:
    assert okx.parse(load("notice_64008_documented.json")) == RestartNotice("notice 64008")


def test_pong(okx: Okx) -> None:
    assert load("pong.json") == b"pong"
    assert okx.parse(load("pong.json")) == Pong()


def test_documented_request_echoed_back_is_ignored(okx: Okx) -> None:
    assert okx.parse(load("subscribe_request_documented.json")) == Ignored()


# --- variants ----------------------------------------------------------------------------------


def push(item: object, inst_id: str = "BTC-USDT", channel: str = "bbo-tbt") -> bytes:
    return json.dumps({"arg": {"channel": channel, "instId": inst_id}, "data": [item]}).encode()


def test_levels_keep_decimal_strings_and_skip_the_tail(okx: Okx) -> None:
    item = {
        "bids": [["0.000012340", "1e5", 0, 7, "extra"], ["0.00001", "9"]],
        "asks": [["0.00001235", "100.000"]],
        "ts": 1670324386802,  # a number is read like the documented string
        "seqId": "42",
        "prevSeqId": 41,
    }
    assert okx.parse(push(item, "PEPE-USDT")) == QuoteUpdate(
        "PEPE-USDT", "0.000012340", "1e5", "0.00001235", "100.000", 1670324386802, 42
    )


def test_missing_fields_default(okx: Okx) -> None:
    assert okx.parse(push({"asks": [["1", "2", "0", "1"]]})) == QuoteUpdate(
        "BTC-USDT", None, None, "1", "2", 0, -1
    )
    assert okx.parse(push({"bids": [["", ""]], "asks": [["1", ""]]})) == QuoteUpdate(
        "BTC-USDT", None, None, "1", None, 0, -1
    )


def test_several_items_keep_the_last(okx: Okx) -> None:
    frame = {
        "arg": {"channel": "bbo-tbt", "instId": "BTC-USDT"},
        "data": [
            {"asks": [["2", "1"]], "bids": [["1", "1"]], "ts": "1", "seqId": 1},
            {"asks": [["3", "1"]], "bids": [["2", "1"]], "ts": "2", "seqId": 2},
        ],
    }
    assert okx.parse(json.dumps(frame).encode()) == QuoteUpdate(
        "BTC-USDT", "2", "1", "3", "1", 2, 2
    )


def test_key_order_and_unknown_keys_do_not_matter(okx: Okx) -> None:
    frame = (
        b'{"x":[1,{"y":null}],"data":[{"seqId":7,"ts":"9","bids":[["1","2","0","1"]],'
        b'"asks":[["3","4","0","1"]],"checksum":-5}],"arg":{"instId":"A-B","uid":"1",'
        b'"channel":"bbo-tbt"}}'
    )
    assert okx.parse(frame) == QuoteUpdate("A-B", "1", "2", "3", "4", 9, 7)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b" pong\n", Pong()),
        (push({"asks": [["1", "2"]]}, channel="books5"), Ignored()),
        (b'{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"last":"1"}]}', Ignored()),
        (b'{"event":"channel-conn-count","channel":"bbo-tbt","connCount":"2"}', Ignored()),
        (b'{"event":"login","code":"0","msg":""}', Ignored()),
        (b'{"event":"subscribe","arg":{"channel":"books5","instId":"BTC-USDT"}}', Ignored()),
        (b'{"event":"subscribe","connId":"a"}', SubscribeResult([], [])),
        (b'{"event":"subscribe","arg":{"channel":"bbo-tbt"}}', SubscribeResult([], [])),
        (b'{"event":"subscribe","arg":{"instId":"BTC-USDT"}}', SubscribeResult(["BTC-USDT"], [])),
        (b'{"event":"notice","code":64008,"msg":"x"}', RestartNotice("notice 64008")),
        (
            b'{"event":"notice","code":"64009","msg":"Something new."}',
            VenueError("notice 64009: Something new."),
        ),
        (b'{"event":"error","code":60014}', VenueError("code 60014")),
        (b'{"event":"error","msg":"boom"}', VenueError("boom")),
        (b'{"event":"error"}', VenueError("unspecified error")),
        (b'{"event":"error","code":true,"msg":5}', VenueError("code true")),
        (b'{"arg":{"channel":"bbo-tbt","instId":"A-B"}}', Ignored()),  # no data at all
        (b"{}", Ignored()),
    ],
)
def test_odd_control_shapes_are_classified(okx: Okx, frame: bytes, expected: object) -> None:
    assert okx.parse(frame) == expected


@pytest.mark.parametrize(
    ("msg", "arg", "rejected"),
    [
        ("Wrong URL or channel:bbo-tbt,instId:BAR-BTC doesn't exist.", None, ["BAR-BTC"]),
        ("channel:bbo-tbt,instId : A-B,instId:C-D, instId:A-B", None, ["A-B", "C-D"]),
        ("instId:X-Y.", None, ["X-Y"]),
        ("doesn't exist", {"channel": "bbo-tbt", "instId": "Q-R"}, ["Q-R"]),
    ],
)
def test_60018_variants(okx: Okx, msg: str, arg: object, rejected: list[str]) -> None:
    frame = {"event": "error", "code": "60018", "msg": msg}
    if arg is not None:
        frame["arg"] = arg
    assert okx.parse(json.dumps(frame).encode()) == SubscribeResult([], rejected, msg)


def test_60018_naming_no_instrument_is_a_venue_error(okx: Okx) -> None:
    frame = b'{"event":"error","code":"60018","msg":"Wrong URL or channel:bbo-tbt"}'
    assert okx.parse(frame) == VenueError("code 60018: Wrong URL or channel:bbo-tbt")


def test_the_instrument_named_by_another_code_is_not_rejected(okx: Okx) -> None:
    frame = b'{"event":"error","code":"60012","msg":"instId:FOO-USDT is bad"}'
    assert okx.parse(frame) == VenueError("code 60012: instId:FOO-USDT is bad")


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"ping",
        b"pongs",
        b"not json",
        b"[]",
        b'"pong"',
        b'{"arg":{"channel":"bbo-tbt","instId":"A-B"},"data":[{"asks":[]}]',  # truncated
        b'{"arg":{"channel":"bbo-tbt","instId":"\xff"},"data":[]}',  # not UTF-8
        push({"asks": [["1", "2"]]}) + b"\xff",
        b'{"arg":{"channel":"bbo-tbt","instId":"A-B"},"data":[]}',
        b'{"arg":{"channel":"bbo-tbt","instId":"A-B"},"data":{}}',
        b'{"arg":{"channel":"bbo-tbt"},"data":[{"asks":[["1","2"]]}]}',  # no instId
        b'{"arg":{"channel":"bbo-tbt","instId":5},"data":[{"asks":[["1","2"]]}]}',
        push({"asks": [["1"]]}),  # a level without its size
        push({"asks": [[1.5, "2"]]}),  # a number where a decimal string belongs
        push({"asks": "x"}),
        push({"ts": "12.5"}),
        push({"ts": "soon"}),
        push({"seqId": 2**63}),  # beyond int64, the cache's storage type
        push({"ts": str(-(2**63) - 1)}),
        push(None),
        b'{"event":"subscribe","arg":["bbo-tbt"]}',
        b'{"event":"subscribe","arg":{"channel":"bbo-tbt","instId":7}}',
        b'{"event":"subscribe","arg":{"channel":"bbo-tbt","instId":""}}',
    ],
)
def test_bad_frames_are_malformed(okx: Okx, frame: bytes) -> None:
    result = okx.parse(frame)
    assert isinstance(result, Malformed), result
    assert result.reason.startswith("okx: ")


def test_non_bytes_input_is_malformed_not_raised(okx: Okx) -> None:
    assert isinstance(okx.parse(None), Malformed)  # type: ignore[arg-type]
    assert isinstance(okx.parse(12), Malformed)  # type: ignore[arg-type]
    assert okx.parse(memoryview(b"pong")) == Pong()  # type: ignore[arg-type]
