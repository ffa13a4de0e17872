"""MEXC spot v3: JSON control messages in text frames, protobuf book tickers in binary frames.

Protocol: MEXC's public API documentation,
https://mexcdevelop.github.io/apidocs/spot_v3_en/#websocket-market-streams, and the official
protobuf schema, https://github.com/mexcdevelop/websocket-proto. Pure: builds frames and
decodes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import msgspec

from data_collector.pairs import Pair
from data_collector.venues.base import (
    IGNORED,
    PONG,
    ControlBudget,
    Malformed,
    ParseResult,
    QuoteUpdate,
    SubscribeResult,
    Venue,
    VenueError,
)
from data_collector.venues.proto import mexc_push_pb2

CHANNEL_PREFIX = "spot@public.aggre.bookTicker.v3.api.pb@100ms@"
MAX_SUBSCRIPTIONS = 30

_INT64_MAX = 2**63 - 1

# Rejections keep "code":0; only the text tells. The colon before the reason is full-width.
_REJECTED_RE = re.compile(r"Not Subscribed successfully!\s*\[([^\]]*)\]")
_ACCEPTED_RE = re.compile(r"(?<!Not )Subscribed successful!\s*\[([^\]]*)\]")
_REASON_RE = re.compile(r"Reason\s*[:：]\s*(.*)", re.DOTALL)

# A JSON text frame may be padded with whitespace or led by a UTF-8 BOM (other servers do).
_BOM = b"\xef\xbb\xbf"
_PADDING_FIRST = frozenset((b" ", b"\t", b"\r", b"\n", b"\xef"))


class _Control(msgspec.Struct, gc=False):
    """A JSON control reply: ``{"id":0,"code":0,"msg":"..."}``; other keys are ignored."""

    code: int = 0
    msg: str = ""


_control_decoder = msgspec.json.Decoder(_Control)


def _channel_symbols(channels: str) -> list[str]:
    """``a@...@BTCUSDT,b@...@ETHUSDT`` -> ``["BTCUSDT", "ETHUSDT"]``."""
    return [c.strip().rpartition("@")[2] for c in channels.split(",") if c.strip()]


def _sequence(version: str) -> int:
    """``version`` as an int, -1 when absent or not a decimal number.

    Raises ValueError beyond int64: the cache stores sequences as int64.
    """
    if not (version and version.isascii() and version.isdigit()):
        return -1
    if len(version) > 19 or (value := int(version)) > _INT64_MAX:
        raise ValueError(f"version out of int64 range: {version[:40]!r}")
    return value


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Mexc(Venue):
    """MEXC spot: aggregated book ticker (``publicAggreBookTicker``, body 315) every 100 ms."""

    name = "mexc"
    display_name = "MEXC"
    default_url = "wss://wbs-api.mexc.com/ws"
    default_taker_fee = 0.0005
    docs_url = "https://mexcdevelop.github.io/apidocs/spot_v3_en/#websocket-market-streams"
    channel_name = "spot@public.aggre.bookTicker.v3.api.pb@100ms@<SYMBOL>"
    max_subscriptions_per_connection = MAX_SUBSCRIPTIONS
    #: "at most 100 client messages/s"; pings and subscribes are far below it
    control_budget = ControlBudget(messages=100, per_seconds=1.0)
    ping_interval = 15.0
    max_connection_lifetime = 24 * 3600.0

    # A fresh wrapper per push, never one reused with ParseFromString: with the upb backend a
    # reused message keeps ~200 bytes per parse in its arena until it is deleted
    # (protocolbuffers/protobuf#24257), which grew the collector by 120 MB a minute at
    # 10,000 frames/s. FromString costs ~0.08 us more.
    _from_string = staticmethod(mexc_push_pb2.PushDataV3ApiWrapper.FromString)

    def symbol(self, pair: Pair) -> str:
        return f"{pair.base}{pair.quote}"

    @staticmethod
    def channel(symbol: str) -> str:
        return CHANNEL_PREFIX + symbol

    def subscribe_messages(self, symbols: Sequence[str], now: float) -> list[str]:
        return self._requests("SUBSCRIPTION", symbols)

    def unsubscribe_messages(self, symbols: Sequence[str], now: float) -> list[str]:
        return self._requests("UNSUBSCRIPTION", symbols)

    def ping_message(self, now: float) -> str:
        return '{"method":"PING"}'

    def _requests(self, method: str, symbols: Sequence[str]) -> list[str]:
        return [
            msgspec.json.encode(
                {"method": method, "params": [CHANNEL_PREFIX + s for s in chunk]}
            ).decode()
            for chunk in _chunks(symbols, MAX_SUBSCRIPTIONS)
        ]

    def parse(self, data: bytes) -> ParseResult:
        try:
            if data[:1] == b"{":
                return _parse_control(_control_decoder.decode(data))
            return self._parse_push(data)
        except Exception as exc:  # never raise: a bad frame is counted, not fatal
            padded = _padded_control(data)
            return padded if padded is not None else _malformed(exc)

    def _parse_push(self, data: bytes) -> ParseResult:
        w = self._from_string(data)
        body = w.WhichOneof("body")
        if body == "publicAggreBookTicker":
            t = w.publicAggreBookTicker
            seq = _sequence(t.version)
        elif body == "publicBookTicker":
            t = w.publicBookTicker
            seq = -1
        elif body == "publicBookTickerBatch":
            batch = w.publicBookTickerBatch
            if not batch.items:
                return IGNORED
            t = batch.items[-1]
            seq = _sequence(batch.version)
        else:
            padded = _padded_control(data)
            return padded if padded is not None else IGNORED
        symbol = w.symbol or w.channel.rpartition("@")[2]
        if not symbol:
            return Malformed("mexc: push without symbol or channel")
        if w.HasField("sendTime"):
            ts = w.sendTime
        elif w.HasField("createTime"):
            ts = w.createTime
        else:
            ts = 0
        # proto3 omits empty strings: a missing side reads as "" and becomes None.
        return QuoteUpdate(
            symbol,
            t.bidPrice or None,
            t.bidQuantity or None,
            t.askPrice or None,
            t.askQuantity or None,
            ts,
            seq,
        )


def _malformed(exc: Exception) -> Malformed:
    return Malformed(f"mexc: {type(exc).__name__}: {exc}"[:300])


def _padded_control(data: bytes) -> ParseResult | None:
    """A control reply led by whitespace or a UTF-8 BOM, as other servers send; else None.

    Only asked once a frame failed as a push or carried no body, so the hot path pays nothing:
    every push starts with 0x0a (field 1's tag), which is also "\\n", so a frame counts as
    control only if, stripped, it starts with ``{`` and decodes as JSON. No valid JSON can carry
    a book-ticker body: each body tag's second byte is 0x13, a control character JSON forbids.
    """
    try:
        if data[:1] not in _PADDING_FIRST:
            return None
        text = (data[3:] if data[:3] == _BOM else data).lstrip(b" \t\r\n")
        if text[:1] != b"{":
            return None
        try:
            msgspec.json.decode(text)
        except (msgspec.DecodeError, RecursionError):
            return None  # not JSON: a push whose bytes merely look like padding
        return _parse_control(_control_decoder.decode(text))
    except Exception as exc:  # JSON, but not a control reply's shape
        return _malformed(exc)


def _parse_control(reply: _Control) -> ParseResult:
    """Recognise acks by their text first: a rejection may come with any ``code``."""
    msg = reply.msg
    ack = _bracketed_ack(msg)
    if ack is not None:
        return ack
    if reply.code != 0:
        return VenueError(f"code {reply.code}: {msg}" if msg else f"code {reply.code}")
    if msg.upper() == "PONG":
        return PONG
    return _plain_ack(msg)


def _bracketed_ack(msg: str) -> SubscribeResult | None:
    """``Subscribed successful! [..]`` and/or ``Not Subscribed successfully! [..]``, else None."""
    rejected = _REJECTED_RE.search(msg)
    accepted = _ACCEPTED_RE.search(msg)
    if rejected is None:
        if accepted is None:
            return None
        return SubscribeResult(accepted=_channel_symbols(accepted.group(1)), rejected=[])
    reason = _REASON_RE.search(msg, rejected.end())
    return SubscribeResult(
        accepted=_channel_symbols(accepted.group(1)) if accepted else [],
        rejected=_channel_symbols(rejected.group(1)),
        reason=reason.group(1).strip() if reason else "",
    )


def _plain_ack(msg: str) -> SubscribeResult | Malformed:
    """The documented success ack: the channels, comma-joined (``", "`` tolerated).

    An UNSUBSCRIPTION ack has the same text, so it also yields a SubscribeResult; the caller
    only acts on symbols it is waiting for.
    """
    channels = [c for c in (c.strip() for c in msg.split(",")) if c]
    if not channels or not all("@" in c and len(c.split()) == 1 for c in channels):
        return Malformed(f"mexc: unrecognised control message: {msg[:200]!r}")
    return SubscribeResult(accepted=[c.rpartition("@")[2] for c in channels], rejected=[])


#: what the registry (``data_collector.venues``) finds in this module
VENUE = Mexc
