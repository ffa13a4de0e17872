"""Bybit v5 spot personality: JSON in text frames, topic ``orderbook.1.<SYMBOL>`` snapshots.

Documented behaviour (https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook and
https://bybit-exchange.github.io/docs/v5/ws/connect):

- ``{"req_id":"1","op":"subscribe","args":[...]}`` gets ONE reply naming no topic:
  ``{"success":true,"ret_msg":"subscribe","conn_id":"...","req_id":"1","op":"subscribe"}``.
- A request with one bad arg is refused whole: a symbol the venue does not list (or one a test
  told it to :meth:`~data_collector.simulator.server.VenueServer.reject`) reads
  ``"ret_msg":"Invalid symbol :[orderbook.1.FOOUSDT]"``, a topic it does not serve reads
  ``"ret_msg":"error:handler not found,topic:orderbook.30.BTCUSDT"``.
- More than ``max_args`` (10) args in one request: refused whole with ``"ret_msg":"args size >10"``
  (the wording public client issues report; it names no topic).
- ``{"req_id":"2","op":"ping"}`` is answered ``{"success":true,"ret_msg":"pong","conn_id":"...",
  "op":"ping"}`` (the spot form: no ``req_id``).
- A book unchanged for ``repeat_interval`` (3 s) is pushed again with the same ``u``, every
  ``repeat_interval`` until it changes; ``ts`` is the time of the repeat.
- :meth:`BybitPersonality.restart_sequences` plays a service restart: the next snapshot of every
  pair carries ``u`` 1 and ``u`` counts up from there (connections stay open).
- A connection without ping-pong and without data for ``idle_timeout`` (10 min) is closed.

Assumptions where EXCHANGES.md is silent:

- Replies key order: ``success``, ``ret_msg``, ``conn_id``, ``req_id`` (echoed when the request
  had one, also on refusals), ``op``. ``conn_id`` is a UUID per connection.
- Checks run in this order, and the first failing one answers: args not a list of strings
  (``error:args must be a list of topics``), too many args, a topic not ``orderbook.1.<X>``
  (``handler not found`` naming the first), symbols not listed (``Invalid symbol :[...]``
  naming all of them, comma-separated), a topic this connection already holds
  (``error:already subscribed,topic:<first>``), and the 21,000-character cap on the args one
  connection holds (``args length >21000``, naming no topic).
- Unsubscribe is answered ``"success":true,"ret_msg":"unsubscribe"`` whatever it names; an
  unknown ``op`` gets ``error:invalid op``; a frame that is not a JSON object gets
  ``"ret_msg":"Failed to decode incoming data:<why>"`` with no ``op``; the connection stays open.
- A snapshot's ``cts`` is a few ms before its ``ts``; ``seq`` rises with ``u``. A side whose
  price is empty or None is an empty list; a missing size is sent as ``""``.
- There is no planned-restart notice on Bybit: ``send_restart_notice`` is not supported.
"""

from __future__ import annotations

import random
import time
import uuid
import zlib
from typing import Any

import msgspec
from picows import WSMsgType

from data_collector.pairs import Pair
from data_collector.simulator.personality import Personality, VenueControl
from data_collector.simulator.session import ClientSession, Quote, now_ms

PATH = "/v5/public/spot"
TOPIC_PREFIX = "orderbook.1."
MAX_ARGS = 10
MAX_ARGS_CHARS = 21_000
REPEAT_INTERVAL = 3.0
IDLE_TIMEOUT = 600.0

_encode_json = msgspec.json.encode
_decode_json = msgspec.json.decode
_CONN_ID = "bybit_conn_id"
_ARGS_CHARS = "bybit_args_chars"
_REPEATED = "bybit_repeated"
#: cross sequence ``seq`` = the book's sequence + this (Bybit's is a larger, venue-wide counter)
_SEQ_BASE = 7_961_000_000


def encode_snapshot(symbol: str, quote: Quote, u: int, ts: int) -> bytes:
    """One ``orderbook.1`` snapshot frame, keys in the documented order."""
    frame = {
        "topic": TOPIC_PREFIX + symbol,
        "ts": ts,
        "type": "snapshot",
        "data": {
            "s": symbol,
            "b": [[quote.bid, quote.bid_qty or ""]] if quote.bid else [],
            "a": [[quote.ask, quote.ask_qty or ""]] if quote.ask else [],
            "u": u,
            "seq": _SEQ_BASE + quote.sequence,
        },
        "cts": quote.time_ms - quote.sequence % 5,
    }
    return _encode_json(frame)


class _Book:
    """What the venue last published for one symbol, in its own numbering."""

    __slots__ = ("changed_at", "epoch", "offset", "quote", "sent_u")

    def __init__(self, quote: Quote, changed_at: float, epoch: int) -> None:
        self.quote = quote
        #: monotonic time the quote last changed (repeats are due ``repeat_interval`` after it)
        self.changed_at = changed_at
        #: wire ``u`` = the book's sequence - offset (a restart makes the next ``u`` 1)
        self.offset = 0
        self.epoch = epoch
        #: the ``u`` of the last snapshot sent
        self.sent_u = quote.sequence


class BybitPersonality(Personality):
    name = "bybit"
    path = PATH
    push_type = WSMsgType.TEXT

    def __init__(
        self,
        *,
        no_subscription_timeout: float | None = None,
        idle_timeout: float | None = IDLE_TIMEOUT,
        max_lifetime: float | None = None,
        repeat_interval: float | None = REPEAT_INTERVAL,
        max_args: int = MAX_ARGS,
        max_args_chars: int = MAX_ARGS_CHARS,
    ) -> None:
        super().__init__(
            no_subscription_timeout=no_subscription_timeout,
            idle_timeout=idle_timeout,
            max_lifetime=max_lifetime,
        )
        if repeat_interval is not None and repeat_interval <= 0:
            raise ValueError(f"repeat_interval must be > 0 or None, got {repeat_interval}")
        #: seconds an unchanged book waits before it is pushed again (None: never repeated)
        self.repeat_interval = repeat_interval
        self.max_args = max_args
        self.max_args_chars = max_args_chars
        self._books: dict[str, _Book] = {}
        self._epoch = 0

    # ------------------------------------------------------------------ numbering

    def symbol(self, pair: Pair) -> str:
        return f"{pair.base}{pair.quote}"

    def first_sequence(self, symbol: str, rng: random.Random) -> int:
        return 18_000_000 + zlib.crc32(symbol.encode()) % 1_000_000

    def next_sequence(self, sequence: int, rng: random.Random) -> int:
        return sequence + 1 + int(rng.random() * 8)  # u counts every book change, not ours

    def restart_sequences(self) -> None:
        """Play a service restart: every pair's next snapshot (a repeat included) has ``u`` 1,
        later ones count up from it."""
        self._epoch += 1

    def sent_sequence(self, symbol: str) -> int | None:
        """The ``u`` of the last snapshot of ``symbol`` sent, an out-of-order one included
        (None before the first)."""
        book = self._books.get(symbol)
        return None if book is None else book.sent_u

    def _wire_u(self, book: _Book, quote: Quote) -> int:
        """The ``u`` to send ``quote`` (the book's latest, or a stale one) with."""
        if book.epoch != self._epoch:
            book.epoch = self._epoch
            book.offset = quote.sequence - 1
        u = quote.sequence - book.offset
        book.sent_u = u
        return u

    # ------------------------------------------------------------------ pushes

    def encode_push(self, key: str, symbol: str, quote: Quote) -> bytes:
        book = self._books.get(symbol)
        if book is None:
            # numbered as of the venue's start: a restart since then makes its first ``u`` 1
            book = self._books[symbol] = _Book(quote, time.monotonic(), epoch=0)
        elif quote.sequence > book.quote.sequence:  # a change (a stale push is not the book)
            book.quote, book.changed_at = quote, time.monotonic()
        return encode_snapshot(symbol, quote, self._wire_u(book, quote), quote.time_ms)

    def expiry_reason(self, session: ClientSession, now: float) -> str:
        """Also sends the repeats that are due: the server's housekeeping pass (skipped while
        the venue stalls) is the one periodic call a personality gets for each session."""
        reason = super().expiry_reason(session, now)
        if not reason and self.repeat_interval is not None and not session.write_paused:
            self._send_repeats(session, now, self.repeat_interval)
        return reason

    def _send_repeats(self, session: ClientSession, now: float, interval: float) -> None:
        repeated: dict[str, tuple[float, int]] = session.state.setdefault(_REPEATED, {})
        for symbol in session.subscriptions:
            book = self._books.get(symbol)
            if book is None:
                continue
            due = int((now - book.changed_at) / interval)
            mark = (book.changed_at, due)
            if due < 1 or repeated.get(symbol) == mark:
                continue
            repeated[symbol] = mark
            u = self._wire_u(book, book.quote)
            session.send_frame(WSMsgType.TEXT, encode_snapshot(symbol, book.quote, u, now_ms()))
            session.last_push_at = now

    # ------------------------------------------------------------------ requests

    def on_text(self, server: VenueControl, session: ClientSession, text: str, now: float) -> None:
        try:
            message = _decode_json(text)
        except msgspec.DecodeError as exc:
            message, problem = None, str(exc)
        else:
            problem = "not a JSON object"
        if not isinstance(message, dict):
            server.count_malformed("not_json")
            self._reply(session, {}, False, f"Failed to decode incoming data:{problem}")
            return
        op = message.get("op")
        if op == "ping":
            self._reply(session, {"op": "ping"}, True, "pong")
        elif op == "subscribe":
            self._subscribe(server, session, message)
        elif op == "unsubscribe":
            self._unsubscribe(server, session, message)
        else:
            server.count_malformed("invalid_op")
            self._reply(session, message, False, "error:invalid op")

    def _reply(
        self, session: ClientSession, request: dict[str, Any], success: bool, ret_msg: str
    ) -> None:
        conn_id = session.state.get(_CONN_ID)
        if conn_id is None:
            conn_id = session.state[_CONN_ID] = str(uuid.uuid4())
        frame: dict[str, Any] = {"success": success, "ret_msg": ret_msg, "conn_id": conn_id}
        if "req_id" in request:
            frame["req_id"] = request["req_id"]
        if "op" in request:
            frame["op"] = request["op"]
        session.send_text(_encode_json(frame).decode())

    def _subscribe(
        self, server: VenueControl, session: ClientSession, request: dict[str, Any]
    ) -> None:
        args = request.get("args")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            self._reply(session, request, False, "error:args must be a list of topics")
            return
        topics = list(dict.fromkeys(args))
        problem = self._refusal(server, session, args, topics)
        if problem:
            self._reply(session, request, False, problem)
            return
        for topic in topics:
            idx = server.pair_index(topic[len(TOPIC_PREFIX) :])
            assert idx is not None  # checked by _refusal
            server.subscribe(session, idx, topic)
        session.state[_ARGS_CHARS] = _held_chars(session) + sum(map(len, topics))
        self._reply(session, request, True, "subscribe")

    def _refusal(
        self, server: VenueControl, session: ClientSession, args: list[str], topics: list[str]
    ) -> str:
        """Why the venue refuses this subscribe request ("" if it accepts it)."""
        if len(args) > self.max_args:
            return f"args size >{self.max_args}"
        for topic in topics:
            if not topic.startswith(TOPIC_PREFIX) or len(topic) == len(TOPIC_PREFIX):
                return f"error:handler not found,topic:{topic}"
        unknown = [topic for topic in topics if not _listed(server, topic)]
        if unknown:
            return f"Invalid symbol :[{','.join(unknown)}]"
        for topic in topics:
            idx = server.pair_index(topic[len(TOPIC_PREFIX) :])
            if idx is not None and topic in session.channels.get(idx, ()):
                return f"error:already subscribed,topic:{topic}"
        if _held_chars(session) + sum(map(len, topics)) > self.max_args_chars:
            return f"args length >{self.max_args_chars}"
        return ""

    def _unsubscribe(
        self, server: VenueControl, session: ClientSession, request: dict[str, Any]
    ) -> None:
        args = request.get("args")
        for topic in args if isinstance(args, list) else ():
            if not isinstance(topic, str) or not topic.startswith(TOPIC_PREFIX):
                continue
            idx = server.pair_index(topic[len(TOPIC_PREFIX) :])
            if idx is not None and topic in session.channels.get(idx, ()):
                server.unsubscribe(session, idx, topic)
                session.state[_ARGS_CHARS] = _held_chars(session) - len(topic)
        self._reply(session, request, True, "unsubscribe")

    def garbage_frames(self) -> list[tuple[WSMsgType, bytes]]:
        return [
            (WSMsgType.TEXT, b"not json"),
            (WSMsgType.TEXT, b'{"topic":"orderbook.1.BTCUSDT","ts":1,"type":"snapshot","data":'),
            (WSMsgType.TEXT, b'{"topic":"orderbook.1.BTCUSDT","type":"snapshot","data":{"u":"x"}}'),
            (WSMsgType.BINARY, b"\x00\xff\xfe"),
        ]


def _listed(server: VenueControl, topic: str) -> bool:
    idx = server.pair_index(topic[len(TOPIC_PREFIX) :])
    return idx is not None and not server.is_rejected(idx)


def _held_chars(session: ClientSession) -> int:
    """Characters of the args this connection holds (Bybit caps them at 21,000)."""
    held: int = session.state.get(_ARGS_CHARS, 0)
    return held


PERSONALITY = BybitPersonality
