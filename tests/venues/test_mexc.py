"""MEXC protocol module: message builders and the frame parser, against byte-exact fixtures."""

from __future__ import annotations

import base64
import json

import pytest

from data_collector.pairs import Pair
from data_collector.venues.base import (
    Ignored,
    Malformed,
    Pong,
    QuoteUpdate,
    SubscribeResult,
    VenueError,
)
from data_collector.venues.mexc import Mexc
from data_collector.venues.proto import mexc_push_pb2 as pb
from tests.venues import samples

CHANNEL = "spot@public.aggre.bookTicker.v3.api.pb@100ms@"
# The documented sample frame (135 bytes), verbatim.
SAMPLE_B64 = (
    "CjRzcG90QHB1YmxpYy5hZ2dyZS5ib29rVGlja2VyLnYzLmFwaS5wYkAxMDBtc0BCVENVU0RUGgdCVENVU0RUMKfT0vGLNN"
    "oTPgoIODA1MzUuODgSCDAuMzgwNDk3Ggg4MDUzNS44OSIKMC4zMzMzNjM1NioLODE3MjE2NzYyMTcwjtPS8Ys0"
)


def load(name: str) -> bytes:
    return samples.load("mexc", name)


@pytest.fixture
def mexc() -> Mexc:
    return Mexc()


def wire_field_numbers(frame: bytes) -> list[int]:
    """Top-level protobuf field numbers in wire order (varint and length-delimited only)."""

    def varint(pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = frame[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, pos

    fields, pos = [], 0
    while pos < len(frame):
        key, pos = varint(pos)
        fields.append(key >> 3)
        if key & 7 == 0:
            _, pos = varint(pos)
        elif key & 7 == 2:
            length, pos = varint(pos)
            pos += length
        else:
            raise AssertionError(f"unexpected wire type {key & 7}")
    return fields


# --- venue attributes and builders -------------------------------------------------------------


def test_attributes(mexc: Mexc) -> None:
    assert mexc.name == "mexc"
    assert mexc.default_url == "wss://wbs-api.mexc.com/ws"
    assert mexc.max_subscriptions_per_connection == 30
    assert mexc.ping_interval == 15.0
    assert mexc.max_connection_lifetime == 24 * 3600


def test_symbol(mexc: Mexc) -> None:
    assert mexc.symbol(Pair("BTC", "USDT")) == "BTCUSDT"
    assert mexc.symbol(Pair("1INCH", "USDC")) == "1INCHUSDC"


def test_subscribe_message_is_exact_json(mexc: Mexc) -> None:
    assert mexc.subscribe_messages(["BTCUSDT"], 1_700_000_000.5) == [
        '{"method":"SUBSCRIPTION","params":["spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT"]}'
    ]


def test_unsubscribe_message_is_exact_json(mexc: Mexc) -> None:
    assert mexc.unsubscribe_messages(["BTCUSDT", "ETHUSDT"], 0.0) == [
        '{"method":"UNSUBSCRIPTION","params":['
        '"spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT",'
        '"spot@public.aggre.bookTicker.v3.api.pb@100ms@ETHUSDT"]}'
    ]


@pytest.mark.parametrize("build", ["subscribe_messages", "unsubscribe_messages"])
def test_messages_chunk_at_30_channels(mexc: Mexc, build: str) -> None:
    symbols = [f"C{i}USDT" for i in range(65)]
    messages = getattr(mexc, build)(symbols, 0.0)
    params = [json.loads(m)["params"] for m in messages]
    assert [len(p) for p in params] == [30, 30, 5]
    assert [c for p in params for c in p] == [CHANNEL + s for s in symbols]
    assert getattr(mexc, build)(symbols[:30], 0.0) == messages[:1]
    assert getattr(mexc, build)([], 0.0) == []


def test_ping_message(mexc: Mexc) -> None:
    assert mexc.ping_message(123.0) == '{"method":"PING"}'


# --- protobuf pushes ---------------------------------------------------------------------------


def test_sample_frame_fixture_is_the_documented_bytes() -> None:
    frame = load("aggre_book_ticker_btcusdt.bin")
    assert len(frame) == 135
    assert frame == base64.b64decode(SAMPLE_B64)
    assert base64.b64encode(frame).decode() == SAMPLE_B64
    wrapper = pb.PushDataV3ApiWrapper.FromString(frame)
    body = wrapper.publicAggreBookTicker
    assert wrapper.channel == "spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT"
    assert wrapper.symbol == "BTCUSDT"
    assert wrapper.sendTime == 1789897517479
    assert not wrapper.HasField("createTime")
    assert not wrapper.HasField("symbolId")
    assert (body.bidPrice, body.bidQuantity) == ("80535.88", "0.380497")
    assert (body.askPrice, body.askQuantity) == ("80535.89", "0.33336356")
    assert body.version == "81721676217"
    assert body.lastOrderCreateTime == 1789897517454


def test_parse_sample_frame(mexc: Mexc) -> None:
    assert mexc.parse(load("aggre_book_ticker_btcusdt.bin")) == QuoteUpdate(
        symbol="BTCUSDT",
        bid_price="80535.88",
        bid_qty="0.380497",
        ask_price="80535.89",
        ask_qty="0.33336356",
        exchange_time_ms=1789897517479,
        sequence=81721676217,
    )


def test_parse_old_frame_without_version(mexc: Mexc) -> None:
    assert mexc.parse(load("aggre_book_ticker_old_no_version.bin")) == QuoteUpdate(
        symbol="ETHUSDT",
        bid_price="3612.45",
        bid_qty="1.2045",
        ask_price="3612.46",
        ask_qty="0.0821",
        exchange_time_ms=1754265600123,
        sequence=-1,
    )


def test_parse_one_sided_frame(mexc: Mexc) -> None:
    assert mexc.parse(load("aggre_book_ticker_one_sided_ask_only.bin")) == QuoteUpdate(
        symbol="NEWCOINUSDT",
        bid_price=None,
        bid_qty=None,
        ask_price="0.0004512",
        ask_qty="150000",
        exchange_time_ms=1789897600001,
        sequence=1024,
    )


def test_parse_frame_with_symbol_id_and_create_time(mexc: Mexc) -> None:
    assert mexc.parse(load("aggre_book_ticker_symbolid_createtime.bin")) == QuoteUpdate(
        symbol="SOLUSDT",  # from the channel: the frame has symbolId, not symbol
        bid_price="152.31",
        bid_qty="40.5",
        ask_price="152.32",
        ask_qty="12.25",
        exchange_time_ms=1789897700555,
        sequence=55501234,
    )


def test_parse_book_ticker_body_305(mexc: Mexc) -> None:
    assert mexc.parse(load("book_ticker_305_xrpusdt.bin")) == QuoteUpdate(
        symbol="XRPUSDT",
        bid_price="2.1034",
        bid_qty="5000.5",
        ask_price="2.1035",
        ask_qty="812",
        exchange_time_ms=1789897900200,
        sequence=-1,
    )


def test_parse_batch_takes_last_item_and_batch_version(mexc: Mexc) -> None:
    assert mexc.parse(load("book_ticker_batch_btcusdt.bin")) == QuoteUpdate(
        symbol="BTCUSDT",
        bid_price="80501.10",
        bid_qty="0.125",
        ask_price="80501.20",
        ask_qty="1.75",
        exchange_time_ms=1789897800100,
        sequence=81721680000,
    )


def _aggre(**body: object) -> pb.PublicAggreBookTickerV3Api:
    return pb.PublicAggreBookTickerV3Api(**body)


# The recipe of every generated .bin fixture (see tests/fixtures/README.md).
GENERATED = {
    "aggre_book_ticker_old_no_version.bin": pb.PushDataV3ApiWrapper(
        channel=CHANNEL + "ETHUSDT",
        symbol="ETHUSDT",
        sendTime=1754265600123,
        publicAggreBookTicker=_aggre(
            bidPrice="3612.45", bidQuantity="1.2045", askPrice="3612.46", askQuantity="0.0821"
        ),
    ),
    "aggre_book_ticker_one_sided_ask_only.bin": pb.PushDataV3ApiWrapper(
        channel=CHANNEL + "NEWCOINUSDT",
        symbol="NEWCOINUSDT",
        sendTime=1789897600001,
        publicAggreBookTicker=_aggre(
            askPrice="0.0004512",
            askQuantity="150000",
            version="1024",
            lastOrderCreateTime=1789897599990,
        ),
    ),
    "aggre_book_ticker_symbolid_createtime.bin": pb.PushDataV3ApiWrapper(
        channel=CHANNEL + "SOLUSDT",
        symbolId="a1b2c3d4e5f60718293a4b5c6d7e8f90",
        createTime=1789897700555,
        publicAggreBookTicker=_aggre(
            bidPrice="152.31",
            bidQuantity="40.5",
            askPrice="152.32",
            askQuantity="12.25",
            version="55501234",
            lastOrderCreateTime=1789897700550,
        ),
    ),
    "book_ticker_batch_btcusdt.bin": pb.PushDataV3ApiWrapper(
        channel="spot@public.bookTicker.batch.v3.api.pb@BTCUSDT",
        symbol="BTCUSDT",
        sendTime=1789897800100,
        publicBookTickerBatch=pb.PublicBookTickerBatchV3Api(
            items=[
                pb.PublicBookTickerV3Api(
                    bidPrice="80500.01", bidQuantity="0.5", askPrice="80500.02", askQuantity="0.25"
                ),
                pb.PublicBookTickerV3Api(
                    bidPrice="80501.10",
                    bidQuantity="0.125",
                    askPrice="80501.20",
                    askQuantity="1.75",
                ),
            ],
            version="81721680000",
            lastOrderCreateTime=1789897800090,
        ),
    ),
    "book_ticker_305_xrpusdt.bin": pb.PushDataV3ApiWrapper(
        channel="spot@public.bookTicker.v3.api.pb@XRPUSDT",
        symbol="XRPUSDT",
        sendTime=1789897900200,
        publicBookTicker=pb.PublicBookTickerV3Api(
            bidPrice="2.1034", bidQuantity="5000.5", askPrice="2.1035", askQuantity="812"
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_fixtures_match_their_recipe(name: str) -> None:
    assert load(name) == GENERATED[name].SerializeToString(deterministic=True)


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("aggre_book_ticker_btcusdt.bin", [1, 3, 6, 315]),
        ("aggre_book_ticker_old_no_version.bin", [1, 3, 6, 315]),
        ("aggre_book_ticker_one_sided_ask_only.bin", [1, 3, 6, 315]),
        ("aggre_book_ticker_symbolid_createtime.bin", [1, 4, 5, 315]),
        ("book_ticker_batch_btcusdt.bin", [1, 3, 6, 311]),
        ("book_ticker_305_xrpusdt.bin", [1, 3, 6, 305]),
    ],
)
def test_fixtures_carry_fields_in_live_order(name: str, fields: list[int]) -> None:
    assert wire_field_numbers(load(name)) == fields


def test_old_frame_body_lacks_fields_5_and_6() -> None:
    wrapper = pb.PushDataV3ApiWrapper.FromString(load("aggre_book_ticker_old_no_version.bin"))
    body = wrapper.publicAggreBookTicker.SerializeToString()
    assert wire_field_numbers(body) == [1, 2, 3, 4]


def test_one_sided_frame_has_no_bid_fields_on_the_wire() -> None:
    wrapper = pb.PushDataV3ApiWrapper.FromString(load("aggre_book_ticker_one_sided_ask_only.bin"))
    body = wrapper.publicAggreBookTicker.SerializeToString()
    assert wire_field_numbers(body) == [3, 4, 5, 6]


def test_reused_wrapper_does_not_leak_fields_between_frames(mexc: Mexc) -> None:
    mexc.parse(load("aggre_book_ticker_btcusdt.bin"))
    bare = pb.PushDataV3ApiWrapper(
        channel=CHANNEL + "DOGEUSDT", publicAggreBookTicker=_aggre(askPrice="0.1", askQuantity="9")
    ).SerializeToString()
    assert mexc.parse(bare) == QuoteUpdate("DOGEUSDT", None, None, "0.1", "9", 0, -1)


def test_send_time_wins_over_create_time(mexc: Mexc) -> None:
    frame = pb.PushDataV3ApiWrapper(
        channel=CHANNEL + "BTCUSDT",
        createTime=111,
        sendTime=222,
        publicAggreBookTicker=_aggre(bidPrice="1", bidQuantity="2", version="7"),
    ).SerializeToString()
    assert mexc.parse(frame) == QuoteUpdate("BTCUSDT", "1", "2", None, None, 222, 7)


@pytest.mark.parametrize("version", ["abc", "-5", "1.5", " 12", "١٢"])
def test_non_numeric_version_means_no_sequence(mexc: Mexc, version: str) -> None:
    frame = pb.PushDataV3ApiWrapper(
        channel=CHANNEL + "BTCUSDT", publicAggreBookTicker=_aggre(bidPrice="1", version=version)
    ).SerializeToString()
    update = mexc.parse(frame)
    assert isinstance(update, QuoteUpdate)
    assert update.sequence == -1


def test_version_beyond_int64_is_malformed(mexc: Mexc) -> None:
    for version in ["9223372036854775808", "1" * 5000]:
        frame = pb.PushDataV3ApiWrapper(
            channel=CHANNEL + "BTCUSDT", publicAggreBookTicker=_aggre(version=version)
        ).SerializeToString()
        assert isinstance(mexc.parse(frame), Malformed)
    frame = pb.PushDataV3ApiWrapper(
        channel=CHANNEL + "BTCUSDT", publicAggreBookTicker=_aggre(version="9223372036854775807")
    ).SerializeToString()
    assert mexc.parse(frame) == QuoteUpdate("BTCUSDT", None, None, None, None, 0, 2**63 - 1)


def test_push_without_symbol_or_channel_is_malformed(mexc: Mexc) -> None:
    frame = pb.PushDataV3ApiWrapper(publicAggreBookTicker=_aggre(bidPrice="1")).SerializeToString()
    assert isinstance(mexc.parse(frame), Malformed)


@pytest.mark.parametrize(
    "frame",
    [
        b"",  # an empty wrapper: no body
        pb.PushDataV3ApiWrapper(channel="spot@public.deals.v3.api.pb@BTCUSDT").SerializeToString(),
        # a body the reduced schema does not know (302, public deals): skipped as unknown
        b"\n\x01x" + b"\xf2\x12\x02\x0a\x00",
        pb.PushDataV3ApiWrapper(
            channel="spot@public.bookTicker.batch.v3.api.pb@BTCUSDT",
            publicBookTickerBatch=pb.PublicBookTickerBatchV3Api(version="5"),
        ).SerializeToString(),
    ],
)
def test_frames_without_a_book_ticker_are_ignored(mexc: Mexc, frame: bytes) -> None:
    assert mexc.parse(frame) == Ignored()


@pytest.mark.parametrize(
    "frame",
    [
        load("aggre_book_ticker_btcusdt.bin")[:-3],  # truncated
        b"\n\x05\xff\xfe\xfd\xfc\xfb",  # channel is not UTF-8
        b"\x0f\x00",  # wire type 7 does not exist
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # runaway varint
    ],
)
def test_broken_protobuf_is_malformed(mexc: Mexc, frame: bytes) -> None:
    result = mexc.parse(frame)
    assert isinstance(result, Malformed)
    assert result.reason


def test_parser_recovers_after_malformed_frame(mexc: Mexc) -> None:
    assert isinstance(mexc.parse(load("aggre_book_ticker_btcusdt.bin")[:50]), Malformed)
    assert mexc.parse(load("aggre_book_ticker_btcusdt.bin")).symbol == "BTCUSDT"


# --- JSON control frames -----------------------------------------------------------------------


def test_pong(mexc: Mexc) -> None:
    assert load("pong.json") == b'{"id":0,"code":0,"msg":"PONG"}'
    assert mexc.parse(load("pong.json")) == Pong()
    assert mexc.parse(b'{"id":0,"code":0,"msg":"pong"}') == Pong()


def test_subscribe_success(mexc: Mexc) -> None:
    assert load("ack_subscribe_success.json") == (
        b'{"id":0,"code":0,"msg":"spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT"}'
    )
    assert mexc.parse(load("ack_subscribe_success.json")) == SubscribeResult(
        accepted=["BTCUSDT"], rejected=[], reason=""
    )


def test_subscribe_success_several_channels(mexc: Mexc) -> None:
    assert mexc.parse(load("ack_subscribe_success_multi.json")) == SubscribeResult(
        accepted=["BTCUSDT", "ETHUSDT"], rejected=[], reason=""
    )


def test_ack_of_built_request_accepts_every_symbol(mexc: Mexc) -> None:
    symbols = [f"S{i}USDT" for i in range(30)]
    (request,) = mexc.subscribe_messages(symbols, 0.0)
    ack = json.dumps({"id": 0, "code": 0, "msg": ",".join(json.loads(request)["params"])})
    assert mexc.parse(ack.encode()) == SubscribeResult(accepted=symbols, rejected=[])


def test_subscribe_rejected(mexc: Mexc) -> None:
    text = load("ack_subscribe_rejected.json").decode()
    assert "Reason\uff1a Blocked! " in text  # the full-width colon and trailing space, verbatim
    assert mexc.parse(load("ack_subscribe_rejected.json")) == SubscribeResult(
        accepted=[], rejected=["BTCUSDT", "ETHUSDT"], reason="Blocked!"
    )


def test_subscribe_mixed(mexc: Mexc) -> None:
    assert mexc.parse(load("ack_subscribe_mixed.json")) == SubscribeResult(
        accepted=["BTCUSDT", "ETHUSDT"], rejected=["SOLUSDT"], reason="Blocked!"
    )


def test_rejection_with_escaped_or_ascii_colon(mexc: Mexc) -> None:
    escaped = load("ack_subscribe_rejected.json").decode().replace("\uff1a", "\\uff1a")
    assert "\uff1a" not in escaped
    ascii_colon = load("ack_subscribe_rejected.json").decode().replace("\uff1a", ":")
    expected = SubscribeResult(accepted=[], rejected=["BTCUSDT", "ETHUSDT"], reason="Blocked!")
    assert mexc.parse(escaped.encode()) == expected
    assert mexc.parse(ascii_colon.encode()) == expected


def test_nonzero_code_is_venue_error(mexc: Mexc) -> None:
    assert mexc.parse(b'{"id":0,"code":1,"msg":"Invalid params"}') == VenueError(
        "code 1: Invalid params"
    )
    assert mexc.parse(b'{"code":-1}') == VenueError("code -1")
    assert mexc.parse(b'{"code":2,"msg":"PONG"}') == VenueError("code 2: PONG")


def test_accepted_alone_is_all_accepted(mexc: Mexc) -> None:
    # ", " between channels, as other servers write it
    assert mexc.parse(load("ack_subscribe_success_bracketed.json")) == SubscribeResult(
        accepted=["BTCUSDT", "ETHUSDT"], rejected=[], reason=""
    )
    frame = b'{"code":0,"msg":"Subscribed successful! [a@BTCUSDT,b@ETHUSDT ,  c@SOLUSDT]."}'
    assert mexc.parse(frame) == SubscribeResult(["BTCUSDT", "ETHUSDT", "SOLUSDT"], [])


def test_ack_text_wins_over_nonzero_code(mexc: Mexc) -> None:
    assert mexc.parse(load("ack_subscribe_rejected_nonzero_code.json")) == SubscribeResult(
        accepted=[], rejected=["BTCUSDT"], reason="Blocked!"
    )
    frame = b'{"code":1,"msg":"Subscribed successful! [a@X1]. Not Subscribed successfully! [a@X2]"}'
    assert mexc.parse(frame) == SubscribeResult(["X1"], ["X2"], "")
    assert mexc.parse(b'{"code":5,"msg":"Subscribed successful! [a@X1]"}') == SubscribeResult(
        ["X1"], []
    )


def test_plain_channel_list_with_spaces_after_commas(mexc: Mexc) -> None:
    msg = f"{CHANNEL}BTCUSDT, {CHANNEL}ETHUSDT,{CHANNEL}SOLUSDT"
    frame = json.dumps({"id": 0, "code": 0, "msg": msg}).encode()
    assert mexc.parse(frame) == SubscribeResult(["BTCUSDT", "ETHUSDT", "SOLUSDT"], [])


# --- padded JSON text frames versus protobuf pushes that start with "\n" ----------------------


def test_control_frame_led_by_whitespace_or_bom(mexc: Mexc) -> None:
    assert load("pong_leading_newline.json")[:2] == b"\n{"
    assert mexc.parse(load("pong_leading_newline.json")) == Pong()
    assert load("ack_subscribe_success_bom_padded.json")[:5] == b"\xef\xbb\xbf\r\n"
    assert mexc.parse(load("ack_subscribe_success_bom_padded.json")) == SubscribeResult(
        accepted=["BTCUSDT"], rejected=[]
    )
    for pad in (b" ", b"\t", b"\r\n", b"\n\n  ", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n"):
        assert mexc.parse(pad + load("ack_subscribe_rejected.json")) == SubscribeResult(
            accepted=[], rejected=["BTCUSDT", "ETHUSDT"], reason="Blocked!"
        )


def test_padded_json_of_the_wrong_shape_is_malformed(mexc: Mexc) -> None:
    result = mexc.parse(b'\n {"code":"0","msg":"PONG"}')
    assert isinstance(result, Malformed)
    assert "Validation" in result.reason  # judged as JSON, not as protobuf


def test_sample_push_starts_with_newline_and_still_decodes(mexc: Mexc) -> None:
    frame = load("aggre_book_ticker_btcusdt.bin")
    assert frame[:1] == b"\n"
    assert mexc.parse(frame) == QuoteUpdate(
        "BTCUSDT", "80535.88", "0.380497", "80535.89", "0.33336356", 1789897517479, 81721676217
    )


@pytest.mark.parametrize(
    "channel",
    [
        "{" + "x" * 114 + "@BTCUSDT",  # length 123 = "{": the frame starts with b"\n{"
        "a" * 115 + "@BTCUSDT",  # length 123 again, without a brace after it
        "{}@BTCUSDT",  # length 10 = "\n": b"\n\n{}@..." is not JSON either
        " " * 2 + "@ABCDEFG",  # length 10, then whitespace, then "@"
        "s" * 24 + "@BTCUSDT",  # length 32 = " "
        "{" * 24 + "@BTCUSDT",  # length 32, then "{"
    ],
)
def test_push_whose_bytes_look_like_padded_json_is_protobuf(mexc: Mexc, channel: str) -> None:
    frame = pb.PushDataV3ApiWrapper(
        channel=channel, publicAggreBookTicker=_aggre(bidPrice="1", bidQuantity="2", version="3")
    ).SerializeToString()
    assert frame[:1] == b"\n" and frame[1:2] in (b"{", b"\n", b" ")
    symbol = channel.rpartition("@")[2]
    assert mexc.parse(frame) == QuoteUpdate(symbol, "1", "2", None, None, 0, 3)


@pytest.mark.parametrize(
    "frame",
    [
        b"{not json",
        b'{"id":0,"code":"0","msg":"PONG"}',
        b'{"id":0,"code":0,"msg":["PONG"]}',
        b'{"id":0,"code":0,"msg":"Something went wrong"}',
        b'{"id":0,"code":0,"msg":""}',
        b'{"id":0,"code":0}',
        b"{}",
    ],
)
def test_odd_control_frames_are_malformed(mexc: Mexc, frame: bytes) -> None:
    assert isinstance(mexc.parse(frame), Malformed)


def test_parsing_many_frames_does_not_grow_memory(mexc: Mexc) -> None:
    # Regression: a protobuf message reused with ParseFromString kept ~200 bytes per parse
    # (upb arena), i.e. ~40 MB over these 200,000 frames.
    import psutil

    frame = load("aggre_book_ticker_btcusdt.bin")
    for _ in range(20_000):  # warm up allocator pools
        mexc.parse(frame)
    before = psutil.Process().memory_info().rss
    for _ in range(200_000):
        mexc.parse(frame)
    grown = psutil.Process().memory_info().rss - before
    assert grown < 10 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB"
