"""MEXC spot v3 personality: JSON control messages in text frames, protobuf pushes in binary.

Pushes are encoded by hand (a few bytes of protobuf wire format), which keeps the simulator
independent of the client package and pins the field order live frames have: wrapper fields 1
channel, 3 symbol, 6 sendTime, then the body (315 aggre book ticker with fields 1..6, or 311
batch book ticker). The tests check the bytes against the generated ``mexc_push_pb2``.

Assumptions where EXCHANGES.md says "unconfirmed": acks always carry ``"id":0`` (the request id
is never echoed); a subscription beyond the 30th gets the "Not Subscribed successfully! ...
Blocked!" reply; unknown methods and malformed JSON are ignored (counted, no reply).
"""

from __future__ import annotations

import random
import zlib

import msgspec
from picows import WSMsgType

from data_collector.pairs import Pair
from data_collector.simulator.limits import MessageRateLimit
from data_collector.simulator.personality import Personality, VenueControl
from data_collector.simulator.session import ClientSession, Quote

AGGRE_PREFIX = "spot@public.aggre.bookTicker.v3.api.pb@"
BATCH_PREFIX = "spot@public.bookTicker.batch.v3.api.pb@"
AGGRE_INTERVALS = frozenset({"100ms", "10ms"})
MAX_SUBSCRIPTIONS = 30
MAX_MESSAGES_PER_S = 100
PONG = '{"id":0,"code":0,"msg":"PONG"}'
# note the full-width colon and the trailing space: clients compare this text
_BLOCKED_TAIL = "].  Reason： Blocked! "

_encode_json = msgspec.json.encode
_decode_json = msgspec.json.decode

# protobuf tags: (field_number << 3) | wire_type, as varint bytes
_TAG_CHANNEL = b"\x0a"  # 1, length-delimited
_TAG_SYMBOL = b"\x1a"  # 3, length-delimited
_TAG_SEND_TIME = b"\x30"  # 6, varint
_TAG_AGGRE = b"\xda\x13"  # 315, length-delimited
_TAG_BATCH = b"\xba\x13"  # 311, length-delimited
_TAGS_1_TO_5 = (b"\x0a", b"\x12", b"\x1a", b"\x22", b"\x2a")
_TAG_F2, _TAG_F3_VARINT, _TAG_F6_VARINT = b"\x12", b"\x18", b"\x30"


_ONE_BYTE = [bytes((i,)) for i in range(128)]


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _ONE_BYTE[value]
    if value < 0:
        value += 1 << 64  # int64 two's complement, as protobuf does
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(tag: bytes, text: str | None) -> bytes:
    """A length-delimited string field; proto3 leaves empty strings out."""
    if not text:
        return b""
    data = text.encode()
    size = len(data)
    return tag + (_ONE_BYTE[size] if size < 128 else _varint(size)) + data


def _message(tag: bytes, body: bytes) -> bytes:
    size = len(body)
    return tag + (_ONE_BYTE[size] if size < 128 else _varint(size)) + body


def parse_channel(channel: str) -> str | None:
    """The symbol of a protobuf book-ticker channel, or None if we do not serve it."""
    if channel.startswith(AGGRE_PREFIX):
        interval, sep, symbol = channel[len(AGGRE_PREFIX) :].partition("@")
        return symbol if sep and interval in AGGRE_INTERVALS and symbol else None
    if channel.startswith(BATCH_PREFIX):
        return channel[len(BATCH_PREFIX) :] or None
    return None


def subscribe_reply_msg(accepted: list[str], rejected: list[str]) -> str:
    """The ``msg`` of a SUBSCRIPTION ack, in MEXC's exact wording."""
    if not rejected:
        return ",".join(accepted)
    failure = f"Not Subscribed successfully! [{','.join(rejected)}{_BLOCKED_TAIL}"
    if not accepted:
        return failure
    return f"Subscribed successful! [{','.join(accepted)}]. {failure}"


def _body(quote: Quote, batch: bool) -> bytes:
    version = str(quote.sequence)
    # lastOrderCreateTime: a few ms before the send time, derived so encoding stays pure
    order_time = _varint(quote.time_ms - quote.sequence % 25)
    sides = (
        _string(_TAGS_1_TO_5[0], quote.bid)
        + _string(_TAGS_1_TO_5[1], quote.bid_qty)
        + _string(_TAGS_1_TO_5[2], quote.ask)
        + _string(_TAGS_1_TO_5[3], quote.ask_qty)
    )
    if batch:
        body = _message(b"\x0a", sides) + _string(_TAG_F2, version) + _TAG_F3_VARINT + order_time
        return _message(_TAG_BATCH, body)
    body = sides + _string(_TAGS_1_TO_5[4], version) + _TAG_F6_VARINT + order_time
    return _message(_TAG_AGGRE, body)


def encode_book_ticker(channel: str, symbol: str, quote: Quote) -> bytes:
    """A complete ``PushDataV3ApiWrapper`` frame for ``quote``."""
    prefix = _string(_TAG_CHANNEL, channel) + _string(_TAG_SYMBOL, symbol) + _TAG_SEND_TIME
    return prefix + _varint(quote.time_ms) + _body(quote, channel.startswith(BATCH_PREFIX))


class MexcPersonality(Personality):
    name = "mexc"
    path = "/ws"
    push_type = WSMsgType.BINARY

    def __init__(
        self,
        *,
        no_subscription_timeout: float | None = 30.0,
        idle_timeout: float | None = 60.0,
        max_lifetime: float | None = 24 * 3600.0,
        max_subscriptions: int = MAX_SUBSCRIPTIONS,
        max_messages_per_s: int = MAX_MESSAGES_PER_S,
    ) -> None:
        super().__init__(
            no_subscription_timeout=no_subscription_timeout,
            idle_timeout=idle_timeout,
            max_lifetime=max_lifetime,
        )
        self.max_subscriptions = max_subscriptions
        self.max_messages_per_s = max_messages_per_s
        self.inbound_limit = MessageRateLimit(max_messages_per_s)  # client text frames
        # channel -> (wrapper fields 1 and 3 plus the sendTime tag, batch body?)
        self._prefixes: dict[str, tuple[bytes, bool]] = {}

    def symbol(self, pair: Pair) -> str:
        return f"{pair.base}{pair.quote}"

    def first_sequence(self, symbol: str, rng: random.Random) -> int:
        return 10_000_000_000 + zlib.crc32(symbol.encode()) * 10

    def next_sequence(self, sequence: int, rng: random.Random) -> int:
        return sequence + 1 + int(rng.random() * 40)

    def encode_push(self, key: str, symbol: str, quote: Quote) -> bytes:
        cached = self._prefixes.get(key)
        if cached is None:
            prefix = _string(_TAG_CHANNEL, key) + _string(_TAG_SYMBOL, symbol) + _TAG_SEND_TIME
            cached = self._prefixes[key] = (prefix, key.startswith(BATCH_PREFIX))
        return cached[0] + _varint(quote.time_ms) + _body(quote, cached[1])

    def on_text(self, server: VenueControl, session: ClientSession, text: str, now: float) -> None:
        try:
            message = _decode_json(text)
        except msgspec.DecodeError:
            server.count_malformed("not_json")
            return
        method = message.get("method") if isinstance(message, dict) else None
        params = message.get("params") if isinstance(message, dict) else None
        if method in ("PING", "ping"):
            session.send_text(PONG)
        elif method == "SUBSCRIPTION" and isinstance(params, list):
            self._subscribe(server, session, params)
        elif method == "UNSUBSCRIPTION" and isinstance(params, list):
            self._unsubscribe(server, session, params)
        else:
            server.count_malformed("unknown_request")

    def _subscribe(
        self, server: VenueControl, session: ClientSession, params: list[object]
    ) -> None:
        accepted: list[str] = []
        rejected: list[str] = []
        for channel in params:
            if not isinstance(channel, str):
                rejected.append(str(channel))
                continue
            symbol = parse_channel(channel)
            idx = server.pair_index(symbol) if symbol else None
            if idx is None or server.is_rejected(idx):
                rejected.append(channel)
                continue
            known = channel in session.channels.get(idx, ())
            if not known and session.channel_count >= self.max_subscriptions:
                rejected.append(channel)
                continue
            server.subscribe(session, idx, channel)
            accepted.append(channel)
        reply = {"id": 0, "code": 0, "msg": subscribe_reply_msg(accepted, rejected)}
        session.send_text(_encode_json(reply).decode())

    def _unsubscribe(
        self, server: VenueControl, session: ClientSession, params: list[object]
    ) -> None:
        channels = [channel for channel in params if isinstance(channel, str)]
        for channel in channels:
            symbol = parse_channel(channel)
            idx = server.pair_index(symbol) if symbol else None
            if idx is not None:
                server.unsubscribe(session, idx, channel)
        reply = {"id": 0, "code": 0, "msg": ",".join(channels)}
        session.send_text(_encode_json(reply).decode())

    def garbage_frames(self) -> list[tuple[WSMsgType, bytes]]:
        return [
            (WSMsgType.BINARY, b"\x0a\xff\xff\xff\xff\x0f"),  # channel longer than the frame
            (WSMsgType.BINARY, b"\xda\x13\x05\x0a\x03\x31"),  # body truncated
            (WSMsgType.TEXT, b'{"id":0,"code":0,"msg":'),  # truncated JSON
            (WSMsgType.BINARY, b"\xff\xfe\xfd\xfc"),  # unterminated varint
        ]


PERSONALITY = MexcPersonality
