"""OKX v5 public personality: JSON in text frames, channel ``bbo-tbt``, text ``ping``/``pong``.

Protocol: https://www.okx.com/docs-v5/en/#overview-websocket and the ``bbo-tbt`` channel
(https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-best-bid-offer-channel).
The encoders are written here by hand, independent of the client's parser.

Limits enforced the way OKX does, and assumptions where EXCHANGES.md is silent:
- One ack per arg, in the order of the args: ``{"id":..,"event":"subscribe","arg":{"channel":
  "bbo-tbt","instId":..},"connId":..}`` (``id`` only when the request had one; ``arg`` is
  echoed as sent).
- An arg naming an unknown (or :meth:`~VenueServer.reject`-ed) instrument, or another channel,
  gets the documented 60018 error naming it inside ``msg``; the valid args of the same request
  are subscribed anyway, each acked. Errors carry the request ``id`` too, when it had one.
- At most ``max_requests`` (480) subscribe/unsubscribe requests per connection per
  ``budget_window`` (3600 s, fixed windows as in ``limits.MessageRateLimit``): the request over
  the budget gets error 60014 ``Requests too frequent.`` and the connection is closed (reason
  ``subscribe_budget``), so a client that overspends cannot go unnoticed.
- A request that is not a JSON object, has an unknown ``op``, an ``id`` that is not 1-32
  alphanumerics, ``args`` that are not a non-empty list, or ``args`` over 64 KB (counted
  re-encoded compactly) gets error 60012 ``Illegal request: <the request>``; nothing in it is
  subscribed. Only well-formed subscribe/unsubscribe requests count against the budget.
- Unsubscribing acks each arg with ``"event":"unsubscribe"`` (60018 for unknown instruments).
- The connection is closed after ``idle_timeout`` (30 s) without data either way and after
  ``no_subscription_timeout`` (30 s) without a subscription. The text ``ping`` (exactly) is
  answered by the text ``pong``.
- The planned-restart notice is the documented ``64008`` frame;
  ``send_restart_notice(close_after=s)`` closes the connection ``s`` seconds later (OKX
  announces 30-60 s ahead).
- A push: ``{"arg":{"channel":"bbo-tbt","instId":..},"data":[{"asks":[[price,size,"0",orders]],
  "bids":[[..]],"ts":"<ms>","seqId":n}]}``; ``ts`` is a string, ``seqId`` grows by 1 to 10; a
  side with neither price nor size is an empty list (a one-sided book), a missing half of a
  side is sent as ``""``.
"""

from __future__ import annotations

import os
import random
import re
import zlib
from typing import Any

import msgspec
from picows import WSMsgType

from data_collector.pairs import Pair
from data_collector.simulator.limits import MessageRateLimit
from data_collector.simulator.personality import Personality, VenueControl
from data_collector.simulator.session import ClientSession, Quote

CHANNEL = "bbo-tbt"
MAX_ARGS_BYTES = 64 * 1024
MAX_REQUESTS_PER_HOUR = 480
UPGRADE_MSG = "The connection will soon be closed for a service upgrade. Please reconnect."
TOO_FREQUENT_MSG = "Requests too frequent."
_ID_RE = re.compile(r"[A-Za-z0-9]{1,32}")
_GARBAGE_PUSH = b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":'

_encode_json = msgspec.json.encode
_decode_json = msgspec.json.decode


def unknown_instrument_msg(channel: Any, inst_id: Any) -> str:
    """The documented 60018 ``msg``, naming the channel and instrument as the client sent them."""
    return (
        f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist. "
        "Please use the correct URL, channel and parameters referring to API document."
    )


def error_message(code: str, msg: str, conn_id: str, request_id: str | None = None) -> str:
    frame: dict[str, Any] = {} if request_id is None else {"id": request_id}
    frame.update(event="error", code=code, msg=msg, connId=conn_id)
    return _encode_json(frame).decode()


def ack_message(event: str, arg: dict[str, Any], conn_id: str, request_id: str | None) -> str:
    frame: dict[str, Any] = {} if request_id is None else {"id": request_id}
    frame.update(event=event, arg=arg, connId=conn_id)
    return _encode_json(frame).decode()


def notice_message(conn_id: str) -> str:
    """The documented ``64008`` notice, key for key."""
    frame = {"event": "notice", "code": "64008", "msg": UPGRADE_MSG, "connId": conn_id}
    return _encode_json(frame).decode()


def _levels(price: str | None, size: str | None, sequence: int) -> list[list[str]]:
    if not price and not size:
        return []
    return [[price or "", size or "", "0", str(1 + sequence % 9)]]


def encode_push(symbol: str, quote: Quote) -> bytes:
    item = {
        "asks": _levels(quote.ask, quote.ask_qty, quote.sequence),
        "bids": _levels(quote.bid, quote.bid_qty, quote.sequence >> 3),
        "ts": str(quote.time_ms),
        "seqId": quote.sequence,
    }
    return _encode_json({"arg": {"channel": CHANNEL, "instId": symbol}, "data": [item]})


def conn_id(session: ClientSession) -> str:
    """The session's ``connId``: 8 hex digits, fixed for the connection's life."""
    value = session.state.get("okx_conn_id")
    if value is None:
        value = session.state["okx_conn_id"] = os.urandom(4).hex()
    return value


class OkxPersonality(Personality):
    name = "okx"
    path = "/ws/v5/public"
    push_type = WSMsgType.TEXT

    def __init__(
        self,
        *,
        no_subscription_timeout: float | None = 30.0,
        idle_timeout: float | None = 30.0,
        max_lifetime: float | None = None,
        max_requests: int = MAX_REQUESTS_PER_HOUR,
        budget_window: float = 3600.0,
        max_args_bytes: int = MAX_ARGS_BYTES,
    ) -> None:
        super().__init__(
            no_subscription_timeout=no_subscription_timeout,
            idle_timeout=idle_timeout,
            max_lifetime=max_lifetime,
        )
        #: subscribe/unsubscribe requests per connection (OKX: 480 an hour)
        self.request_budget = MessageRateLimit(max_requests, budget_window, key="okx_requests")
        self.max_args_bytes = max_args_bytes

    def symbol(self, pair: Pair) -> str:
        return f"{pair.base}-{pair.quote}"

    def first_sequence(self, symbol: str, rng: random.Random) -> int:
        return 300_000_000 + zlib.crc32(symbol.encode()) // 16

    def next_sequence(self, sequence: int, rng: random.Random) -> int:
        return sequence + 1 + int(rng.random() * 10)

    def encode_push(self, key: str, symbol: str, quote: Quote) -> bytes:
        return encode_push(symbol, quote)

    def restart_notice(self, session: ClientSession) -> str:
        return notice_message(conn_id(session))

    def on_text(self, server: VenueControl, session: ClientSession, text: str, now: float) -> None:
        if text == "ping":
            session.send_text("pong")
            return
        request = self._request(text)
        if request is None:
            server.count_malformed("illegal_request")
            session.send_text(error_message("60012", f"Illegal request: {text}", conn_id(session)))
            return
        if self.request_budget.exceeded(session, now):
            message = error_message("60014", TOO_FREQUENT_MSG, conn_id(session), request.get("id"))
            session.send_text(message)
            server.close_session(session, "subscribe_budget")
            return
        subscribe = request["op"] == "subscribe"
        for arg in request["args"]:
            self._apply(server, session, arg, subscribe, request.get("id"))

    def _request(self, text: str) -> dict[str, Any] | None:
        """The request if it is a well-formed subscribe/unsubscribe, else None."""
        try:
            request = _decode_json(text)
        except msgspec.DecodeError:
            return None
        if not isinstance(request, dict) or request.get("op") not in ("subscribe", "unsubscribe"):
            return None
        request_id = request.get("id")
        if request_id is not None and not (
            isinstance(request_id, str) and _ID_RE.fullmatch(request_id)
        ):
            return None
        args = request.get("args")
        if not isinstance(args, list) or not args:
            return None
        if len(_encode_json(args)) > self.max_args_bytes:
            return None
        return request

    @staticmethod
    def _apply(
        server: VenueControl,
        session: ClientSession,
        arg: Any,
        subscribe: bool,
        request_id: str | None,
    ) -> None:
        """(Un)subscribe one arg and answer it: its ack, or 60018."""
        ident = conn_id(session)
        if not isinstance(arg, dict):
            msg = f"Illegal request: {_encode_json(arg).decode()}"
            session.send_text(error_message("60012", msg, ident, request_id))
            return
        channel, inst_id = arg.get("channel"), arg.get("instId")
        idx = server.pair_index(inst_id) if isinstance(inst_id, str) else None
        if channel != CHANNEL or idx is None or (subscribe and server.is_rejected(idx)):
            msg = unknown_instrument_msg(channel, inst_id)
            session.send_text(error_message("60018", msg, ident, request_id))
            return
        if subscribe:
            server.subscribe(session, idx, "")
        else:
            server.unsubscribe(session, idx, "")
        event = "subscribe" if subscribe else "unsubscribe"
        session.send_text(ack_message(event, arg, ident, request_id))

    def garbage_frames(self) -> list[tuple[WSMsgType, bytes]]:
        return [
            (WSMsgType.TEXT, b"not json"),
            (WSMsgType.TEXT, _GARBAGE_PUSH + b'[{"asks":'),  # truncated
            (WSMsgType.TEXT, _GARBAGE_PUSH + b'[{"ts":"x"}]}'),  # ts is no number
            (WSMsgType.TEXT, b"[1,2,3]"),
        ]


PERSONALITY = OkxPersonality
