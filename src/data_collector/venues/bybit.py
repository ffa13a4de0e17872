"""Bybit v5 spot: JSON over WebSocket, topic ``orderbook.1.<SYMBOL>`` (the level-1 book).

Protocol: https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook (frames, the
3 s repeat of an unchanged snapshot with the same ``u``, ``u == 1`` after a service restart)
and https://bybit-exchange.github.io/docs/v5/ws/connect (subscribe and ping requests, at most
10 args per spot request, 21,000 characters of args per connection).

Pure (no I/O). Two pieces of state, both bounded: which symbols each pending subscribe request
carried (an ack names only its ``req_id``, never the topics), and the last book per symbol (a
``"type":"delta"`` frame is applied to it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

import msgspec

from data_collector.pairs import Pair
from data_collector.venues.base import (
    IGNORED,
    PONG,
    ConnectBudget,
    Malformed,
    ParseResult,
    QuoteUpdate,
    SubscribeResult,
    Venue,
    VenueError,
)

TOPIC_PREFIX = "orderbook.1."
ARGS_PER_REQUEST = 10
#: 200 topics of even 80-character symbols stay under the 21,000 characters of args a connection
#: may hold (a real symbol has at most ~20); see ``Bybit.max_subscriptions_per_connection``
TOPICS_PER_CONNECTION = 200
#: subscribe requests awaiting their ack; older ones (a connection lost before its acks) go
PENDING_REQUESTS_MAX = 4096
#: books kept for applying deltas; past this many symbols the memory is started afresh
BOOKS_MAX = 65536

# The cache stores times and sequences as int64: larger numbers are malformed, not a crash.
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
# A topic a refusal names: "Invalid symbol :[orderbook.1.FOOUSDT]",
# "error:handler not found,topic:orderbook.1.FOOUSDT".
_NAMED_SYMBOL_RE = re.compile(r"orderbook\.1\.([^\s,;\[\]{}()\"']+)")
_ALREADY_SUBSCRIBED = "already subscribed"


class _Level(msgspec.Struct, array_like=True, gc=False):
    """``["16493.50","0.006"]``: price and size, as written (an array-like struct decodes
    faster than a tuple; entries past the two are ignored)."""

    price: str
    size: str


_NO_LEVEL = _Level(None, None)  # type: ignore[arg-type]  # an empty side


class _Book(msgspec.Struct, gc=False):
    s: str
    b: list[_Level] = []
    a: list[_Level] = []
    u: _Int64 = -1


class _Snapshot(msgspec.Struct, gc=False):
    """Only a book snapshot decodes as this; anything else falls back to ``_Control``.

    ``type`` as a Literal makes msgspec refuse deltas and control frames itself; ``topic``,
    ``cts`` and ``data.seq`` are skipped unread.
    """

    type: Literal["snapshot"]
    data: _Book
    ts: _Int64 = 0


class _DeltaBook(msgspec.Struct, gc=False):
    s: str
    b: list[_Level] | None = None
    a: list[_Level] | None = None
    u: _Int64 = -1


class _Delta(msgspec.Struct, gc=False):
    type: Literal["delta"]
    data: _DeltaBook
    ts: _Int64 = 0


class _Control(msgspec.Struct, gc=False):
    """Any other frame, decoded leniently (``Any`` takes whatever JSON a key holds) so that an
    odd but valid shape is classified by what is clear in it rather than called Malformed."""

    op: Any = None
    success: Any = None
    ret_msg: Any = None
    req_id: Any = None
    topic: Any = None
    type: Any = None


_snapshot_decoder = msgspec.json.Decoder(_Snapshot)
_delta_decoder = msgspec.json.Decoder(_Delta)
_control_decoder = msgspec.json.Decoder(_Control)


class Bybit(Venue):
    """Bybit spot level-1 order book: a snapshot every 10 ms on change, repeated after 3 s."""

    name = "bybit"
    display_name = "Bybit"
    default_url = "wss://stream.bybit.com/v5/public/spot"
    default_taker_fee = 0.001
    docs_url = "https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook"
    channel_name = "orderbook.1.<SYMBOL>"
    #: Bybit caps a connection at 21,000 characters of args, not at a number of topics. 200
    #: topics fit that even for absurd symbol lengths, need 20 requests per (re)connect and
    #: keep one connection's share of a 10 ms push rate (and what one fault interrupts) moderate.
    max_subscriptions_per_connection = TOPICS_PER_CONNECTION
    max_symbols_per_request = ARGS_PER_REQUEST
    #: no documented pacing limit for requests; the args cap is honoured by the request size
    control_budget = None
    #: "do not open more than 500 connections in 5 minutes" per domain
    connect_budget = ConnectBudget(attempts=500, per_seconds=300.0)
    #: the documented period; the watchdog also pings at least every half ``silence_timeout``
    #: (15 s with the default 30)
    ping_interval = 20.0
    max_connection_lifetime = None

    def __init__(self) -> None:
        self._last_id = 0
        self._pending: dict[str, list[str]] = {}
        self._books: dict[str, QuoteUpdate] = {}

    def symbol(self, pair: Pair) -> str:
        return f"{pair.base}{pair.quote}"

    def subscribe_messages(self, symbols: Sequence[str], now: float) -> list[str]:
        return self._requests("subscribe", symbols)

    def unsubscribe_messages(self, symbols: Sequence[str], now: float) -> list[str]:
        return self._requests("unsubscribe", symbols)

    def ping_message(self, now: float) -> str:
        return f'{{"req_id":"{self._next_id()}","op":"ping"}}'

    def _next_id(self) -> str:
        self._last_id += 1
        return str(self._last_id)

    def _requests(self, op: str, symbols: Sequence[str]) -> list[str]:
        messages = []
        for start in range(0, len(symbols), ARGS_PER_REQUEST):
            chunk = list(symbols[start : start + ARGS_PER_REQUEST])
            req_id = self._next_id()
            if op == "subscribe":
                self._remember(req_id, chunk)
            args = [TOPIC_PREFIX + s for s in chunk]
            messages.append(
                msgspec.json.encode({"req_id": req_id, "op": op, "args": args}).decode()
            )
        return messages

    def _remember(self, req_id: str, symbols: list[str]) -> None:
        pending = self._pending
        if len(pending) >= PENDING_REQUESTS_MAX:
            del pending[next(iter(pending))]  # the oldest: its connection is long gone
        pending[req_id] = symbols

    def parse(self, data: bytes) -> ParseResult:
        try:
            msg = _snapshot_decoder.decode(data)
        except msgspec.DecodeError as exc:  # not a snapshot (or a bad one): the rare path
            return self._parse_other(data, exc)
        except Exception as exc:  # e.g. a non-buffer argument; never raise
            return _malformed(exc)
        book = msg.data
        symbol = book.s
        if not symbol:
            return Malformed("bybit: snapshot without symbol")
        b, a, u = book.b, book.a, book.u
        bid = b[0] if b else _NO_LEVEL
        ask = a[0] if a else _NO_LEVEL
        quote = QuoteUpdate(symbol, bid.price, bid.size, ask.price, ask.size, msg.ts, u, u == 1)
        books = self._books
        books[symbol] = quote
        if len(books) > BOOKS_MAX:  # bounded against a server inventing symbols
            books.clear()
        return quote

    # --- the rare path: deltas and control frames -----------------------------------------

    def _parse_other(self, data: bytes, snapshot_error: Exception) -> ParseResult:
        try:
            msg = _control_decoder.decode(data)
        except Exception as exc:
            return _malformed(exc)
        try:
            return self._classify(msg, data, snapshot_error)
        except Exception as exc:  # belt and braces: parse never raises
            return _malformed(exc)

    def _classify(self, msg: _Control, data: bytes, snapshot_error: Exception) -> ParseResult:
        op = msg.op if isinstance(msg.op, str) else ""
        ret_msg = msg.ret_msg if isinstance(msg.ret_msg, str) else ""
        if op == "subscribe":
            return self._subscribe_result(msg, ret_msg)
        if op in ("ping", "pong") and msg.success is not False:
            return PONG
        topic = msg.topic if isinstance(msg.topic, str) else ""
        if topic.startswith(TOPIC_PREFIX):
            if msg.type == "delta":
                return self._delta(data)
            if msg.type == "snapshot":
                return Malformed(f"bybit: bad snapshot: {snapshot_error}"[:300])
            return IGNORED
        if msg.success is False:
            return VenueError(f"{op or 'request'} refused: {ret_msg or 'no reason given'}")
        return IGNORED  # unsubscribe acks, other topics, unknown frames

    def _subscribe_result(self, msg: _Control, ret_msg: str) -> SubscribeResult | VenueError:
        """An ack names no topic: the request it answers (by ``req_id``) says which symbols it
        accepted. A refusal sinks the whole request; the symbols it names are the bad ones, the
        rest stay unaccepted so that the manager asks for them again."""
        req_id = msg.req_id
        key = req_id if isinstance(req_id, str) else str(req_id) if isinstance(req_id, int) else ""
        requested = self._pending.pop(key, [])
        named = list(dict.fromkeys(_NAMED_SYMBOL_RE.findall(ret_msg)))
        refused = msg.success is False or (msg.success is not True and bool(named))
        if not refused:
            return SubscribeResult(accepted=requested, rejected=[])
        if _ALREADY_SUBSCRIBED in ret_msg:  # a duplicate: the named topics are subscribed
            return SubscribeResult(accepted=named, rejected=[], reason=ret_msg)
        if named:
            return SubscribeResult(accepted=[], rejected=named, reason=ret_msg)
        return VenueError(f"subscribe refused: {ret_msg or 'no reason given'}")

    def _delta(self, data: bytes) -> ParseResult:
        """Apply a delta (a 2023 form) to the symbol's last book: a level of size 0 removes
        that price, a level present replaces the side's top, an absent or empty side stays."""
        try:
            msg = _delta_decoder.decode(data)
        except Exception as exc:
            return Malformed(f"bybit: bad delta: {exc}"[:300])
        book = msg.data
        base = self._books.get(book.s)
        if base is None:
            return IGNORED  # no snapshot to apply it to yet; the next snapshot brings the book
        bid_price, bid_qty = _apply_levels(base.bid_price, base.bid_qty, book.b)
        ask_price, ask_qty = _apply_levels(base.ask_price, base.ask_qty, book.a)
        u = book.u
        quote = QuoteUpdate(
            book.s, bid_price, bid_qty, ask_price, ask_qty, msg.ts, u, sequence_restart=u == 1
        )
        if u == 1 or u > base.sequence:  # a stale delta must not roll the book back
            self._books[book.s] = quote
        return quote


def _apply_levels(
    price: str | None, qty: str | None, levels: list[_Level] | None
) -> tuple[str | None, str | None]:
    for level in levels or ():
        if _is_zero(level.size):
            if price is not None and _same_price(level.price, price):
                price = qty = None
        else:
            price, qty = level.price, level.size
    return price, qty


def _is_zero(size: str) -> bool:
    """Raises ValueError when ``size`` is no decimal number (the delta is then malformed)."""
    try:
        return Decimal(size) == 0
    except InvalidOperation:
        raise ValueError(f"size is no number: {size[:40]!r}") from None


def _same_price(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return Decimal(a) == Decimal(b)
    except InvalidOperation:
        return False


def _malformed(exc: Exception) -> Malformed:
    return Malformed(f"bybit: {type(exc).__name__}: {exc}"[:300])


#: what the registry (``data_collector.venues``) finds in this module
VENUE = Bybit
