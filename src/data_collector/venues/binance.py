"""Binance spot: JSON book tickers on ``<symbol>@bookTicker``, raw or combined-stream wrapped.

Protocol: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
Pure: builds the SUBSCRIBE/UNSUBSCRIBE frames and decodes received frames.

Streams are subscribed live on the configured URL, all of a connection's streams in one
``SUBSCRIBE``. ``/ws`` delivers raw payloads, ``/stream`` wraps each one as
``{"stream":...,"data":...}``; both parse alike, so either URL works. Binance sends no
exchange time on spot book tickers (``exchange_time_ms`` stays 0); ``u`` is the sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
from msgspec import UNSET

from data_collector.pairs import Pair
from data_collector.venues.base import (
    IGNORED,
    ConnectBudget,
    ControlBudget,
    Keepalive,
    Malformed,
    ParseResult,
    QuoteUpdate,
    RestartNotice,
    SubscribeResult,
    Venue,
    VenueError,
)

CHANNEL_SUFFIX = "@bookTicker"
#: Binance's documented cap: "a single connection can listen to a maximum of 1024 streams"
MAX_STREAMS = 1024
#: The shard the collector uses, well under the cap: a reconnect, a 24 h rotation or a
#: ``serverShutdown`` then moves (and re-subscribes) at most 200 pairs at once, one socket's
#: book tickers stay within what one reader keeps up with (the busiest pairs alone push hundreds
#: of updates a second, and a lost TCP segment stalls every stream behind it), and client
#: libraries settled on the same figure (the ``binance`` Node SDK warns above 200 topics per
#: connection). 1,000 pairs then need 5 connections, far from the 300 connection attempts per
#: 5 minutes Binance allows an IP.
STREAMS_PER_CONNECTION = 200

_ID_MAX = 2**31 - 1
_COMBINED_START = b'{"stream"'
_SHUTDOWN = RestartNotice("serverShutdown")

# The cache stores sequences as int64: larger numbers are malformed, not a crash.
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_TICKER_NAMES = {"bid_price": "b", "bid_qty": "B", "ask_price": "a", "ask_qty": "A"}
# An empty side: Binance's REST book ticker writes it as zero price and quantity with the
# usual 8 decimals, and the stream is taken to do the same. (A missing or "" side is None too;
# any other zero spelling reaches the cache, which refuses a zero price.) An exact comparison
# is the cheapest test to run on every frame.
_EMPTY_QTY = "0.00000000"


class _Ticker(msgspec.Struct, gc=False, rename=_TICKER_NAMES):
    """A raw book-ticker payload; ``u`` and ``s`` are required, so no control frame fits."""

    u: _Int64
    s: str
    bid_price: str = ""
    bid_qty: str = ""
    ask_price: str = ""
    ask_qty: str = ""


class _Combined(msgspec.Struct, gc=False):
    """A combined-stream event wrapping a book ticker."""

    stream: str
    data: _Ticker


class _Control(msgspec.Struct, gc=False):
    """Any other JSON object, decoded leniently: a key holds whatever JSON it holds, and an
    absent key stays UNSET (``"result":null`` is the success ack, a missing ``result`` is not).
    ``id``, ``E`` and unknown keys are skipped."""

    result: Any = UNSET
    error: Any = UNSET
    code: Any = UNSET
    msg: Any = UNSET
    e: Any = UNSET
    stream: Any = UNSET
    data: Any = UNSET
    u: Any = UNSET
    s: Any = UNSET


_raw_decoder = msgspec.json.Decoder(_Ticker)
_combined_decoder = msgspec.json.Decoder(_Combined)
_control_decoder = msgspec.json.Decoder(_Control)


class Binance(Venue):
    """Binance spot best bid/ask (``<symbol>@bookTicker``), pushed on every change."""

    name = "binance"
    display_name = "Binance"
    default_url = "wss://stream.binance.com:9443/ws"
    default_taker_fee = 0.001
    docs_url = "https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams"
    channel_name = "<symbol>@bookTicker"
    max_subscriptions_per_connection = STREAMS_PER_CONNECTION
    #: one SUBSCRIBE may list every stream of a connection; Binance documents no per-request cap
    max_symbols_per_request = None
    #: "at most 5 incoming messages per second", PING, PONG and JSON frames alike; a connection
    #: past it is closed and an IP closed repeatedly is banned
    control_budget = ControlBudget(messages=5, per_seconds=1.0, counts_pongs=True)
    #: at most 300 connection attempts per 5 minutes per IP
    connect_budget = ConnectBudget(attempts=300, per_seconds=300.0)
    #: the server pings every 20 s and wants a pong within a minute; no application ping
    keepalive = Keepalive.SERVER_PINGS
    #: the server's ping period: silence well beyond it means a dead connection
    ping_interval = 20.0
    max_connection_lifetime = 24 * 3600.0

    def __init__(self) -> None:
        self._last_id = 0

    def symbol(self, pair: Pair) -> str:
        return f"{pair.base}{pair.quote}"

    @staticmethod
    def stream(symbol: str) -> str:
        """``BTCUSDT`` -> ``btcusdt@bookTicker`` (stream names are lowercase)."""
        return symbol.lower() + CHANNEL_SUFFIX

    def subscribe_messages(self, symbols: Sequence[str], now: float) -> list[str]:
        return self._requests("SUBSCRIBE", symbols)

    def unsubscribe_messages(self, symbols: Sequence[str], now: float) -> list[str]:
        return self._requests("UNSUBSCRIBE", symbols)

    def _next_id(self) -> int:
        """Request ids count up from 1, unsigned, wrapping inside the int32 range."""
        self._last_id = self._last_id % _ID_MAX + 1
        return self._last_id

    def _requests(self, method: str, symbols: Sequence[str]) -> list[str]:
        """One frame for all ``symbols`` (split only past the 1024 streams a connection may
        hold, which no single request could ever be granted)."""
        return [
            msgspec.json.encode(
                {
                    "method": method,
                    "params": [self.stream(s) for s in symbols[start : start + MAX_STREAMS]],
                    "id": self._next_id(),
                }
            ).decode()
            for start in range(0, len(symbols), MAX_STREAMS)
        ]

    def parse(self, data: bytes) -> ParseResult:
        try:
            # Binance writes "stream" first in a combined event: try the likely form first.
            if data[:9] == _COMBINED_START:
                t = _combined_decoder.decode(data).data
            else:
                t = _raw_decoder.decode(data)
        except msgspec.DecodeError as exc:  # the other form, a control frame, or a bad frame
            return _parse_other(data, exc)
        except Exception as exc:  # e.g. a non-buffer argument; never raise
            return _malformed(exc)
        return _quote(t)


def _quote(t: _Ticker) -> QuoteUpdate | Malformed:
    if not t.s:
        return Malformed("binance: book ticker without symbol")
    bp, bq, ap, aq = t.bid_price, t.bid_qty, t.ask_price, t.ask_qty
    if bq == _EMPTY_QTY:
        bp = bq = ""
    if aq == _EMPTY_QTY:
        ap = aq = ""
    return QuoteUpdate(t.s, bp or None, bq or None, ap or None, aq or None, 0, t.u)


def _malformed(exc: Exception) -> Malformed:
    return Malformed(f"binance: {type(exc).__name__}: {exc}"[:300])


def _parse_other(data: bytes, fast_error: Exception) -> ParseResult:
    """The rare path: the book ticker in the form not tried first, or a control frame."""
    other = _raw_decoder if data[:9] == _COMBINED_START else _combined_decoder
    try:
        t = other.decode(data)
    except Exception:
        pass
    else:
        return _quote(t if isinstance(t, _Ticker) else t.data)
    try:
        msg = _control_decoder.decode(data)
    except Exception as exc:
        return _malformed(exc)
    try:
        return _classify(msg, fast_error)
    except Exception as exc:  # belt and braces: parse never raises
        return _malformed(exc)


def _classify(msg: _Control, fast_error: Exception) -> ParseResult:
    """Errors first, then replies, then events; a frame shaped like a book ticker that the
    decoders refused is Malformed, anything else is someone else's and Ignored."""
    if msg.error not in (UNSET, None):
        return VenueError(_describe(msg.error))
    if msg.code not in (UNSET, None):  # the older form, without the ``error`` wrapper
        return VenueError(_describe({"code": msg.code, "msg": msg.msg}))
    if msg.result is None:
        # SUBSCRIBE succeeded: Binance never refuses a single stream (an unknown symbol is
        # accepted and then stays silent). UNSUBSCRIBE's ack reads the same; the collector
        # never unsubscribes.
        return SubscribeResult(accepted=[], rejected=[])
    if msg.result is not UNSET:
        return IGNORED  # LIST_SUBSCRIPTIONS (a list) or GET_PROPERTY: never asked by us
    payload = msg.data if isinstance(msg.data, dict) else {}
    if msg.e == "serverShutdown" or payload.get("e") == "serverShutdown":
        return _SHUTDOWN
    stream = msg.stream if isinstance(msg.stream, str) else ""
    # A book ticker is the one payload without an event type ``e`` (trades, depth have one).
    raw_ticker = msg.e is UNSET and (msg.u is not UNSET or msg.s is not UNSET)
    wrapped_ticker = "e" not in payload and ("u" in payload or "s" in payload)
    if stream.endswith(CHANNEL_SUFFIX) or raw_ticker or wrapped_ticker:
        return Malformed(f"binance: bad book ticker: {fast_error}"[:300])
    return IGNORED  # other streams' events, unknown replies


def _describe(error: Any) -> str:
    """``code 2: Invalid request: ...`` from an error object of any JSON shape."""
    if not isinstance(error, dict):
        return str(error)[:300]
    code, text = error.get("code"), error.get("msg")
    text = text if isinstance(text, str) else ""
    if code is None:
        return text or "unspecified error"
    return f"code {code}: {text}"[:300] if text else f"code {code}"[:300]


#: what the registry (``data_collector.venues``) finds in this module
VENUE = Binance
