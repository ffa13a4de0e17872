"""Gate.io spot v4 personality: JSON in text frames, ``spot.book_ticker`` channel.

Assumptions beyond EXCHANGES.md (documented so clients can be tested against them):
- A subscribe naming some unknown (or rejected) pairs gets ONE reply: an error frame
  ``{"code":2,"message":"unknown currency pair A,B"}`` naming all of them; the valid pairs of the
  same request are subscribed anyway, with no separate success ack.
- Requests whose ``time`` is not an integer within 60 s of server time, whose ``id`` is present
  but not an int32, or whose ``payload`` is not a list of strings get error code 2
  ("invalid argument: ..."); a frame that is not a JSON object gets code 1 ("bad request body").
- Replies echo the request ``id`` when the request had one and use server time.
- ``send_restart_notice()`` (alias ``send_upgrade()``) sends
  ``{"time":..,"time_ms":..,"channel":"","event":"upgrade","error":null,"result":null}``.
- In a push, ``t`` (book time) and the frame's ``time_ms`` are the same instant; a side whose
  value is None is left out of ``result``, an empty string is sent as ``""``.
"""

from __future__ import annotations

import random
import time
import zlib
from typing import Any

import msgspec
from picows import WSMsgType

from data_collector.pairs import Pair
from data_collector.simulator.personality import Personality, VenueControl
from data_collector.simulator.session import ClientSession, Quote, now_ms

CHANNEL = "spot.book_ticker"
MAX_CLOCK_SKEW = 60.0
_INT32 = range(-(2**31), 2**31)
_SUCCESS = {"status": "success"}

_encode_json = msgspec.json.encode
_decode_json = msgspec.json.decode


def _reply(
    request_id: Any,
    channel: str,
    event: str,
    error: dict[str, Any] | None,
    result: dict[str, Any] | None,
) -> str:
    stamp = now_ms()
    frame: dict[str, Any] = {"time": stamp // 1000, "time_ms": stamp}
    if request_id is not None:
        frame["id"] = request_id
    frame.update(channel=channel, event=event, error=error, result=result)
    return _encode_json(frame).decode()


def pong_message() -> str:
    """The documented ``spot.pong`` frame, key for key."""
    frame = {"time": int(time.time()), "channel": "spot.pong", "event": "", "error": None}
    frame["result"] = None
    return _encode_json(frame).decode()


def encode_update(symbol: str, quote: Quote) -> bytes:
    result: dict[str, Any] = {"t": quote.time_ms, "u": quote.sequence, "s": symbol}
    if quote.bid is not None:
        result["b"] = quote.bid
    if quote.bid_qty is not None:
        result["B"] = quote.bid_qty
    if quote.ask is not None:
        result["a"] = quote.ask
    if quote.ask_qty is not None:
        result["A"] = quote.ask_qty
    frame = {
        "time": quote.time_ms // 1000,
        "time_ms": quote.time_ms,
        "channel": CHANNEL,
        "event": "update",
        "result": result,
    }
    return _encode_json(frame)


class GatePersonality(Personality):
    name = "gateio"
    path = "/ws/v4/"
    push_type = WSMsgType.TEXT

    def __init__(
        self,
        *,
        no_subscription_timeout: float | None = None,
        idle_timeout: float | None = 60.0,
        max_lifetime: float | None = None,
        max_clock_skew: float = MAX_CLOCK_SKEW,
    ) -> None:
        super().__init__(
            no_subscription_timeout=no_subscription_timeout,
            idle_timeout=idle_timeout,
            max_lifetime=max_lifetime,
        )
        self.max_clock_skew = max_clock_skew

    def symbol(self, pair: Pair) -> str:
        return f"{pair.base}_{pair.quote}"

    def first_sequence(self, symbol: str, rng: random.Random) -> int:
        return 5_000_000_000 + zlib.crc32(symbol.encode())

    def next_sequence(self, sequence: int, rng: random.Random) -> int:
        return sequence + 1 + int(rng.random() * 25)  # Gate's `u` skips values

    def encode_push(self, key: str, symbol: str, quote: Quote) -> bytes:
        return encode_update(symbol, quote)

    def restart_notice(self, session: ClientSession) -> str:
        return _reply(None, "", "upgrade", None, None)

    def on_text(self, server: VenueControl, session: ClientSession, text: str, now: float) -> None:
        try:
            message = _decode_json(text)
        except msgspec.DecodeError:
            message = None
        if not isinstance(message, dict):
            server.count_malformed("bad_request_body")
            session.send_text(_reply(None, "", "", _error(1, "bad request body"), None))
            return
        channel, event = message.get("channel"), message.get("event")
        if channel == "spot.ping":
            session.send_text(pong_message())
            return
        request_id = message.get("id")
        channel_text = channel if isinstance(channel, str) else ""
        event_text = event if isinstance(event, str) else ""
        problem = self._validate(message)
        if problem:
            error = _error(2, problem)
            session.send_text(_reply(request_id, channel_text, event_text, error, None))
            return
        unknown = self._apply(server, session, message["payload"], event == "subscribe")
        if unknown:
            error = _error(2, f"unknown currency pair {','.join(unknown)}")
            session.send_text(_reply(request_id, CHANNEL, event_text, error, None))
        else:
            session.send_text(_reply(request_id, CHANNEL, event_text, None, _SUCCESS))

    def _validate(self, message: dict[str, Any]) -> str:
        """Why a book-ticker request is invalid ("" if it is fine)."""
        channel, event = message.get("channel"), message.get("event")
        if channel != CHANNEL:
            return f"invalid argument: unknown channel {channel}"
        if event not in ("subscribe", "unsubscribe"):
            return f"invalid argument: unknown event {event}"
        sent = message.get("time")
        if not _is_int(sent) or abs(sent - time.time()) > self.max_clock_skew:
            return f"invalid argument: time {sent} is not within {self.max_clock_skew:g} s"
        request_id = message.get("id")
        if request_id is not None and not (_is_int(request_id) and request_id in _INT32):
            return f"invalid argument: id {request_id} is not an int32"
        payload = message.get("payload")
        if not isinstance(payload, list) or not all(isinstance(p, str) for p in payload):
            return "invalid argument: payload must be a list of currency pairs"
        return ""

    @staticmethod
    def _apply(
        server: VenueControl, session: ClientSession, payload: list[str], subscribe: bool
    ) -> list[str]:
        """(Un)subscribe the known pairs of ``payload``; returns the unknown ones."""
        unknown: list[str] = []
        for symbol in payload:
            idx = server.pair_index(symbol)
            if idx is None or (subscribe and server.is_rejected(idx)):
                unknown.append(symbol)
            elif subscribe:
                server.subscribe(session, idx, "")
            else:
                server.unsubscribe(session, idx, "")
        return unknown

    def garbage_frames(self) -> list[tuple[WSMsgType, bytes]]:
        return [
            (WSMsgType.TEXT, b"not json"),
            (WSMsgType.TEXT, b'{"time":1,"channel":"spot.book_ticker","event":"update","result":'),
            (WSMsgType.TEXT, b'{"channel":"spot.book_ticker","event":"update","result":{"u":"x"}}'),
            (WSMsgType.TEXT, b"[1,2,3]"),
        ]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


PERSONALITY = GatePersonality
