"""Binance spot personality: JSON book tickers on ``<symbol>@bookTicker``, raw or combined.

Paths: ``/ws`` (raw payloads) and ``/stream`` (every event wrapped as
``{"stream":...,"data":...}``), both subscribed live with ``SUBSCRIBE``; ``/ws/<stream>`` and
``/stream?streams=<s1>/<s2>`` subscribe in the URL. Limits enforced the way Binance does: a
connection that sends more than 5 messages in a second (text, ping and pong frames alike) is
closed (``message_rate``); a connection gets a protocol ping every 20 s and is closed when one
stays unanswered for 60 s (``pong_timeout``); it lives 24 h (``lifetime``); it holds at most
1024 streams. ``send_restart_notice()`` sends ``serverShutdown`` (raw or combined, as the
session receives events).

Assumptions where EXCHANGES.md is silent:
- Any string is a stream name Binance accepts; only ``<lowercase symbol>@bookTicker`` of a pair
  the venue lists is ever quoted. An unknown symbol, an uppercase stream name, another stream
  type and a pair the test :meth:`~VenueServer.reject`-ed are accepted and stay silent.
- A SUBSCRIBE that would take the connection past 1024 streams is refused whole:
  ``{"error":{"code":2,"msg":"Invalid request: too many streams: ..."},"id":N}``; a URL naming
  more closes the connection (``too_many_streams``).
- ``id`` may be an int64, null or absent (read as null), or a string of up to 36 letters, digits
  and dashes (a UUID); anything else is code 2. Errors are wrapped in ``error`` unless the
  personality is built with ``legacy_errors=True`` (the older unwrapped form). Frames that are
  not JSON get code 3 with ``"id":null``.
- ``params`` that is not a list of strings is code 2. ``SET_PROPERTY ["combined", bool]`` and
  ``GET_PROPERTY ["combined"]`` switch and read the wrapping, as Binance documents.
- A side the test leaves out (None) is written as zeros (``"0.00000000"``), the way Binance's
  REST book ticker writes an empty side; an empty string is sent as ``""``.
"""

from __future__ import annotations

import random
import re
import zlib
from typing import Any
from urllib.parse import parse_qs

import msgspec
from picows import WSMsgType

from data_collector.pairs import Pair
from data_collector.simulator.keepalive import ServerPings
from data_collector.simulator.limits import MessageRateLimit
from data_collector.simulator.personality import Personality, VenueControl
from data_collector.simulator.session import ClientSession, Quote, now_ms

SUFFIX = "@bookTicker"
MAX_STREAMS = 1024
MAX_MESSAGES_PER_S = 5
PING_INTERVAL = 20.0
PONG_TIMEOUT = 60.0
EMPTY = "0.00000000"
METHODS = "SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY"

_INT64 = range(-(2**63), 2**63)
_STRING_ID = re.compile(r"[A-Za-z0-9-]{1,36}")
_LOWER_SYMBOL = re.compile(r"[a-z0-9]+")
_STATE = "binance"

_encode_json = msgspec.json.encode
_decode_json = msgspec.json.decode


class RequestError(Exception):
    """A request Binance answers with an error reply."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class _Streams:
    """One session's streams in subscription order, and how its events are wrapped."""

    __slots__ = ("combined", "names")

    def __init__(self, combined: bool) -> None:
        self.combined = combined
        self.names: dict[str, None] = {}


def encode_book_ticker(symbol: str, quote: Quote) -> bytes:
    """The raw payload, keys in the documented order ``u s b B a A``."""
    return _encode_json(
        {
            "u": quote.sequence,
            "s": symbol,
            "b": EMPTY if quote.bid is None else quote.bid,
            "B": EMPTY if quote.bid_qty is None else quote.bid_qty,
            "a": EMPTY if quote.ask is None else quote.ask,
            "A": EMPTY if quote.ask_qty is None else quote.ask_qty,
        }
    )


def wrap(stream: str, payload: bytes) -> bytes:
    """The combined-stream event around ``payload``."""
    return b'{"stream":' + _encode_json(stream) + b',"data":' + payload + b"}"


def stream_symbol(stream: str) -> str | None:
    """``btcusdt@bookTicker`` -> ``BTCUSDT``; None for a stream this venue never quotes."""
    if not stream.endswith(SUFFIX):
        return None
    name = stream[: -len(SUFFIX)]
    return name.upper() if _LOWER_SYMBOL.fullmatch(name) else None


def _streams(session: ClientSession) -> _Streams:
    state: _Streams | None = session.state.get(_STATE)
    if state is None:
        state = session.state[_STATE] = _Streams(session.path.startswith("/stream"))
    return state


def _valid_id(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return _STRING_ID.fullmatch(value) is not None
    return isinstance(value, int) and not isinstance(value, bool) and value in _INT64


def _string_list(params: object) -> list[str]:
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise RequestError(2, "Invalid request: params must be a list of stream names")
    return params


class BinancePersonality(Personality):
    name = "binance"
    path = "/ws"
    push_type = WSMsgType.TEXT

    def __init__(
        self,
        *,
        no_subscription_timeout: float | None = None,
        idle_timeout: float | None = None,
        max_lifetime: float | None = 24 * 3600.0,
        max_streams: int = MAX_STREAMS,
        max_messages_per_s: int = MAX_MESSAGES_PER_S,
        ping_interval: float = PING_INTERVAL,
        pong_timeout: float = PONG_TIMEOUT,
        legacy_errors: bool = False,
    ) -> None:
        super().__init__(
            no_subscription_timeout=no_subscription_timeout,
            idle_timeout=idle_timeout,
            max_lifetime=max_lifetime,
        )
        self.max_streams = max_streams
        self.legacy_errors = legacy_errors
        counted = (WSMsgType.TEXT, WSMsgType.PING, WSMsgType.PONG)
        self.inbound_limit = MessageRateLimit(max_messages_per_s, 1.0, counts=counted)
        self.server_pings = ServerPings(ping_interval, pong_timeout)

    # ---------------------------------------------------------------- identity

    def accepts_path(self, path: str) -> bool:
        return path.rstrip("/") in ("/ws", "/stream") or path.startswith("/ws/")

    def symbol(self, pair: Pair) -> str:
        return f"{pair.base}{pair.quote}"

    def first_sequence(self, symbol: str, rng: random.Random) -> int:
        return 400_000_000 + zlib.crc32(symbol.encode()) % 100_000_000

    def next_sequence(self, sequence: int, rng: random.Random) -> int:
        return sequence + 1 + int(rng.random() * 20)  # other book changes take ids in between

    # ------------------------------------------------------------------ frames

    def encode_push(self, key: str, symbol: str, quote: Quote) -> bytes:
        """``key`` is the stream name on a combined session, "" on a raw one."""
        payload = encode_book_ticker(symbol, quote)
        return wrap(key, payload) if key else payload

    def restart_notice(self, session: ClientSession) -> str:
        event = {"e": "serverShutdown", "E": now_ms()}
        if _streams(session).combined:
            return _encode_json({"stream": "!serverShutdown", "data": event}).decode()
        return _encode_json(event).decode()

    def garbage_frames(self) -> list[tuple[WSMsgType, bytes]]:
        return [
            (WSMsgType.TEXT, b"not json"),
            (WSMsgType.TEXT, b'{"u":400900217,"s":"BTCUSDT","b":"25.35'),  # truncated
            (WSMsgType.TEXT, b'{"u":"400900217","s":"BTCUSDT","b":1,"B":2}'),  # wrong types
            (WSMsgType.TEXT, b'{"stream":"btcusdt@bookTicker","data":[1,2,3]}'),
        ]

    # --------------------------------------------------------------- requests

    def on_connected(self, server: VenueControl, session: ClientSession) -> None:
        """Subscribe the streams the URL names (``/ws/<s>``, ``/stream?streams=<a>/<b>``)."""
        path, _, query = session.path.partition("?")
        if path.startswith("/ws/"):
            names = path[len("/ws/") :].split("/")
        else:
            names = "/".join(parse_qs(query).get("streams", [])).split("/")
        names = [n for n in names if n]
        if len(names) > self.max_streams:
            server.close_session(session, "too_many_streams")
            return
        for name in names:
            self._add(server, session, name)

    def on_text(self, server: VenueControl, session: ClientSession, text: str, now: float) -> None:
        try:
            message = _decode_json(text)
        except msgspec.DecodeError as exc:
            server.count_malformed("not_json")
            session.send_text(self._error(3, f"Invalid JSON: {exc}", None))
            return
        request_id = message.get("id") if isinstance(message, dict) else None
        try:
            if not isinstance(message, dict):
                raise RequestError(2, "Invalid request: expected a JSON object")
            if not _valid_id(request_id):
                request_id = None
                raise RequestError(2, "Invalid request: request ID must be an int64 or a string")
            result = self._handle(server, session, message)
        except RequestError as exc:
            server.count_malformed("invalid_request")
            session.send_text(self._error(exc.code, exc.msg, request_id))
            return
        session.send_text(_encode_json({"result": result, "id": request_id}).decode())

    def _handle(self, server: VenueControl, session: ClientSession, message: dict[str, Any]) -> Any:
        """The reply's ``result`` for one valid-looking request; RequestError otherwise."""
        method, params = message.get("method"), message.get("params")
        if method == "SUBSCRIBE":
            self._subscribe(server, session, _string_list(params))
        elif method == "UNSUBSCRIBE":
            for name in _string_list(params):
                self._remove(server, session, name)
        elif method == "LIST_SUBSCRIPTIONS":
            return list(_streams(session).names)
        elif method == "SET_PROPERTY":
            self._set_combined(server, session, params)
        elif method == "GET_PROPERTY":
            if params != ["combined"]:
                raise RequestError(0, "Unknown property")
            return _streams(session).combined
        elif method is None:
            raise RequestError(2, "Invalid request: missing field `method`")
        else:
            raise RequestError(
                2, f"Invalid request: unknown variant {method}, expected one of {METHODS}"
            )
        return None

    def _subscribe(self, server: VenueControl, session: ClientSession, names: list[str]) -> None:
        held = _streams(session).names
        new = [n for n in dict.fromkeys(names) if n not in held]
        if len(held) + len(new) > self.max_streams:
            raise RequestError(
                2,
                f"Invalid request: too many streams: a connection may listen to at most "
                f"{self.max_streams} streams",
            )
        for name in new:
            self._add(server, session, name)

    def _set_combined(self, server: VenueControl, session: ClientSession, params: object) -> None:
        if not isinstance(params, list) or len(params) != 2 or params[0] != "combined":
            raise RequestError(0, "Unknown property")
        if not isinstance(params[1], bool):
            raise RequestError(1, "Invalid value type: expected Boolean")
        state = _streams(session)
        names = list(state.names)
        for name in names:  # re-key every quoted stream for the new wrapping
            self._remove(server, session, name)
        state.combined = params[1]
        for name in names:
            self._add(server, session, name)

    def _add(self, server: VenueControl, session: ClientSession, name: str) -> None:
        state = _streams(session)
        state.names[name] = None
        idx = self._quoted(server, name)
        if idx is not None:
            server.subscribe(session, idx, name if state.combined else "")

    def _remove(self, server: VenueControl, session: ClientSession, name: str) -> None:
        state = _streams(session)
        if name not in state.names:
            return
        del state.names[name]
        symbol = stream_symbol(name)
        idx = server.pair_index(symbol) if symbol else None
        if idx is not None:  # a no-op for a stream that was never quoted
            server.unsubscribe(session, idx, name if state.combined else "")

    @staticmethod
    def _quoted(server: VenueControl, name: str) -> int | None:
        """The pair a stream is quoted for, None for one accepted and never quoted."""
        symbol = stream_symbol(name)
        idx = server.pair_index(symbol) if symbol else None
        return None if idx is None or server.is_rejected(idx) else idx

    def _error(self, code: int, msg: str, request_id: object) -> str:
        error = {"code": code, "msg": msg}
        frame = (
            error | {"id": request_id} if self.legacy_errors else {"error": error, "id": request_id}
        )
        return _encode_json(frame).decode()


PERSONALITY = BinancePersonality
