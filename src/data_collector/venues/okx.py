"""OKX v5 public WebSocket: JSON in text frames, channel ``bbo-tbt`` (tick-by-tick best bid/ask).

Protocol documentation:
https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-best-bid-offer-channel
(subscribe, acks, errors and the text ``ping``/``pong``:
https://www.okx.com/docs-v5/en/#overview-websocket). Pure: builds frames and decodes them.

- One ack per subscribed arg (``{"event":"subscribe","arg":{...}}``): each becomes a
  SubscribeResult naming that one instrument.
- An unknown instrument is refused with ``{"event":"error","code":"60018","msg":"...instId:X
  doesn't exist..."}``: the instrument is named only inside ``msg``.
- Notice ``64008`` announces a service upgrade: a RestartNotice (make-before-break).
- The keepalive is the text ``ping``, answered by the text ``pong`` (not JSON).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from data_collector.pairs import Pair
from data_collector.venues.base import (
    IGNORED,
    PONG,
    BudgetScope,
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

CHANNEL = "bbo-tbt"
#: the ``args`` of one request may total at most 64 KB (counted here as the encoded array)
MAX_ARGS_BYTES = 64 * 1024
#: one connection's share of pairs; see :attr:`Okx.max_subscriptions_per_connection`
PAIRS_PER_CONNECTION = 100
UNKNOWN_INSTRUMENT = "60018"
SERVICE_UPGRADE = "64008"
#: OKX's former WebSocket port, closed on 2026-10-31 (the default port 443 serves instead)
RETIRED_PORT = 8443

# The cache stores times and sequences as int64: larger numbers are malformed, not a crash.
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_INST_ID_RE = re.compile(r"instId\s*:\s*([A-Za-z0-9][A-Za-z0-9_-]*)")
_PONG = b"pong"


class _Level(msgspec.Struct, gc=False, array_like=True):
    """``[price, size, "0" (deprecated), orders]``: only the first two matter, the rest is
    skipped whatever its type."""

    price: str
    size: str


class _Arg(msgspec.Struct, gc=False):
    channel: Literal["bbo-tbt"]
    instId: str


class _Bbo(msgspec.Struct, gc=False):
    asks: list[_Level] = []
    bids: list[_Level] = []
    ts: _Int64 = 0
    seqId: _Int64 = -1


class _Update(msgspec.Struct, gc=False):
    """Only a ``bbo-tbt`` push decodes as this; anything else falls back to ``_Control``.

    The decoder is not strict, so ``ts`` (milliseconds as a *string*) decodes straight into
    an int64 without a Python-level conversion; a number is accepted as well.
    """

    arg: _Arg
    data: list[_Bbo]


class _Control(msgspec.Struct, gc=False):
    """Any other JSON frame, decoded leniently (``Any``: classified by what is clear in it)."""

    event: Any = None
    code: Any = None
    msg: Any = None
    arg: Any = None
    data: Any = None


_update_decoder = msgspec.json.Decoder(_Update, strict=False)
_control_decoder = msgspec.json.Decoder(_Control)


class Okx(Venue):
    """OKX spot best bid/ask, pushed tick by tick (every 10 ms at most) when it changes."""

    name = "okx"
    display_name = "OKX"
    default_url = "wss://ws.okx.com/ws/v5/public"
    default_taker_fee = 0.001
    docs_url = (
        "https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-best-bid-offer-channel"
    )
    channel_name = CHANNEL
    #: one ack (or one 60018 error) per arg of a subscribe request
    acks_each_symbol = True
    #: No documented stream cap. 100 bbo-tbt streams may push up to 10,000 frames/s at peak
    #: (one every 10 ms each), which one connection and one event-loop callback keep up with;
    #: a lost connection then drops at most 100 pairs; their request (~5 KB) stays far below
    #: the 64 KB args cap; 400 pairs need 4 connections, within 3 connection attempts/s/IP.
    max_subscriptions_per_connection = PAIRS_PER_CONNECTION
    #: the cap is in bytes (64 KB of args), not symbols: ``subscribe_messages`` splits by size
    max_symbols_per_request = None
    #: 480 subscribe/unsubscribe requests per hour per connection
    control_budget = ControlBudget(
        messages=480, per_seconds=3600.0, scope=BudgetScope.SUBSCRIPTIONS
    )
    #: 3 connection attempts per second per IP
    connect_budget = ConnectBudget(attempts=3, per_seconds=1.0)
    keepalive = Keepalive.PING_WHEN_IDLE
    #: OKX closes a connection after 30 s without data: ping after 20 s of silence leaves
    #: 10 s for the ping to land and the pong to return (the default ``pong_timeout``), so a
    #: dead connection is found by the 30 s mark at the latest. The watchdog pings at least
    #: every half ``silence_timeout`` as well: 15 s with the default 30.
    ping_interval = 20.0
    max_connection_lifetime = None

    def __init__(self) -> None:
        self._last_id = 0

    def symbol(self, pair: Pair) -> str:
        return f"{pair.base}-{pair.quote}"

    def subscribe_messages(self, symbols: Sequence[str], now: float) -> list[str]:
        return self._requests("subscribe", symbols)

    def unsubscribe_messages(self, symbols: Sequence[str], now: float) -> list[str]:
        return self._requests("unsubscribe", symbols)

    def ping_message(self, now: float) -> str:
        return "ping"

    def url_warning(self, url: str) -> str | None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:  # a malformed port: the connection attempt will say so
            return None
        host = parts.hostname or ""
        if port == RETIRED_PORT and (host == "okx.com" or host.endswith(".okx.com")):
            return (
                f"OKX stopped accepting connections on port {RETIRED_PORT} on 2026-10-31; "
                f"use the default port 443, e.g. {self.default_url}"
            )
        return None

    def _next_id(self) -> str:
        """Request ids: decimal strings counting up from 1 (OKX allows 32 alphanumerics)."""
        self._last_id += 1
        return str(self._last_id)

    def _requests(self, op: str, symbols: Sequence[str]) -> list[str]:
        return [
            f'{{"id":"{self._next_id()}","op":"{op}","args":[{",".join(args)}]}}'
            for args in _args_within_cap(symbols)
        ]

    def parse(self, data: bytes) -> ParseResult:
        try:
            u = _update_decoder.decode(data)
        except msgspec.DecodeError as exc:  # not a bbo-tbt push (or a bad one): the rare path
            return _parse_other(data, exc)
        except Exception as exc:  # e.g. a non-buffer argument; never raise
            return _malformed(exc)
        items = u.data
        if not items:  # nothing to quote: let the event (if any) classify the frame
            return _parse_other(data, ValueError("push without data"))
        b = items[-1]  # one item per push; were there more, the last is the newest
        # Unrolled on purpose: this is the hot path (no helper calls, no temporaries).
        bids = b.bids
        if bids:
            level = bids[0]
            bid_price, bid_qty = level.price or None, level.size or None
        else:
            bid_price = bid_qty = None
        asks = b.asks
        if asks:
            level = asks[0]
            ask_price, ask_qty = level.price or None, level.size or None
        else:
            ask_price = ask_qty = None
        return QuoteUpdate(u.arg.instId, bid_price, bid_qty, ask_price, ask_qty, b.ts, b.seqId)


def _args_within_cap(symbols: Sequence[str]) -> list[list[str]]:
    """Encoded args grouped so that each group's JSON array stays within ``MAX_ARGS_BYTES``.

    An arg too big on its own (no real instrument id is) still goes alone: the venue's error
    then tells the operator, instead of the pair being dropped here in silence.
    """
    groups: list[list[str]] = []
    group: list[str] = []
    size = 2  # the brackets
    for symbol in symbols:
        arg = msgspec.json.encode({"channel": CHANNEL, "instId": symbol}).decode()
        added = len(arg.encode()) + (1 if group else 0)  # the comma
        if group and size + added > MAX_ARGS_BYTES:
            groups.append(group)
            group, size, added = [], 2, added - 1
        group.append(arg)
        size += added
    if group:
        groups.append(group)
    return groups


def _malformed(exc: Exception) -> Malformed:
    return Malformed(f"okx: {type(exc).__name__}: {exc}"[:300])


def _parse_other(data: bytes, update_error: Exception) -> ParseResult:
    try:
        if bytes(data).strip() == _PONG:
            return PONG
        msg = _control_decoder.decode(data)
        return _classify(msg, update_error)
    except Exception as exc:  # not JSON, not an object, not UTF-8: parse never raises
        return _malformed(exc)


def _classify(msg: _Control, update_error: Exception) -> ParseResult:
    event = msg.event
    if event is None:
        if _is_bbo_arg(msg.arg) and msg.data is not None:  # the update decoder refused it
            return Malformed(f"okx: bad bbo-tbt push: {update_error}"[:300])
        return IGNORED  # a push of another channel
    code = _code(msg.code)
    text = msg.msg if isinstance(msg.msg, str) else ""
    if event == "subscribe":
        return _ack(msg.arg)
    if event == "error":
        return _error(code, text, msg.arg)
    if event == "notice":
        if code == SERVICE_UPGRADE:
            return RestartNotice(f"notice {SERVICE_UPGRADE}")
        return VenueError(_describe("notice", code, text))  # unknown notices are worth a log
    return IGNORED  # unsubscribe acks, login, channel-conn-count, newer events


def _is_bbo_arg(arg: Any) -> bool:
    return isinstance(arg, dict) and arg.get("channel") == CHANNEL


def _ack(arg: Any) -> ParseResult:
    """One ack per arg. An ack naming no instrument is counted as one answer without naming
    what it accepted; an ack for another channel is not ours to count (we subscribe to nothing
    else)."""
    if arg is None:
        return SubscribeResult(accepted=[], rejected=[])
    if not isinstance(arg, dict):
        return Malformed("okx: subscribe ack with a non-object arg")
    inst_id = arg.get("instId")
    if arg.get("channel", CHANNEL) != CHANNEL:
        return IGNORED
    if inst_id is None:
        return SubscribeResult(accepted=[], rejected=[])
    if not isinstance(inst_id, str) or not inst_id:
        return Malformed("okx: subscribe ack with a bad instId")
    return SubscribeResult(accepted=[inst_id], rejected=[])


def _error(code: str, text: str, arg: Any) -> SubscribeResult | VenueError:
    """``60018`` names the instrument it refused inside ``msg`` (or, were it given, in
    ``arg``); every other code, or a 60018 naming no instrument, is a venue error."""
    if code == UNKNOWN_INSTRUMENT:
        names = list(dict.fromkeys(_INST_ID_RE.findall(text)))
        inst_id = arg.get("instId") if isinstance(arg, dict) else None
        if not names and isinstance(inst_id, str) and inst_id:
            names = [inst_id]
        if names:
            return SubscribeResult(accepted=[], rejected=names, reason=text or f"code {code}")
    return VenueError(_describe("code", code, text))


def _code(code: Any) -> str:
    """The code as text (OKX sends a string; a number is read the same way)."""
    if code is None:
        return ""
    if isinstance(code, bool):
        return str(code).lower()
    return str(code).strip()[:40]


def _describe(kind: str, code: str, text: str) -> str:
    if not code:
        return text or "unspecified error"
    return f"{kind} {code}: {text}" if text else f"{kind} {code}"


#: what the registry (``data_collector.venues``) finds in this module
VENUE = Okx
