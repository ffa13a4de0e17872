"""Keeping a transport alive and proving it alive: the venue's keepalive style and the
watchdog of one transport.

A :class:`Keepalive` says when the next application ping is due and what it reads;
:func:`keepalive_for` builds the one a venue declares (``Venue.keepalive``). Venues keep
connections alive in three styles: a ping at a fixed interval whatever the traffic (MEXC,
Gate.io, Bybit: :class:`IntervalPing`), a ping whenever nothing arrived for a while (OKX's
text ``ping``: :class:`IdlePing`, due at ``max(last_ping, last_frame) + idle``), or no
application ping at all (Binance: :class:`NoPing`; the server sends protocol pings, which the
transport answers itself and counts as activity, and the watchdog watches for silence). Whatever
the style, the watchdog (:func:`watch`) declares a transport dead when

- no frame at all (the server's pings included) arrived for ``silence_timeout`` (``silence``),
- no frame followed the first unanswered ping within ``pong_timeout`` (``pong_timeout``; any
  frame counts as the answer: a venue busy pushing quotes may answer late),
- the transport carrying the pairs is still unconfirmed ``subscribe_timeout`` after its last
  subscribe request went out (``subscribe_timeout``: a connection without its subscription is
  as useless as a dead one; requests still waiting for the venue's message budget do not
  count against it).

Why not picows's own keepalive (``ws_connect(enable_auto_ping=True, ...)`` with
``WSListener.send_user_specific_ping`` / ``is_user_specific_pong``), checked against picows
2.3.1: it counts any received byte as activity and, when no pong comes within
``auto_ping_reply_timeout``, sends CLOSE 1001 and aborts the socket 10 ms later; the listener
only sees ``on_ws_disconnected`` (the reason is left in ``close_handshake.sent``). It cannot
keep today's behaviour: ``PING_PERIODICALLY`` pings every ``idle + reply`` seconds, not every
``idle`` (measured 0.30 s for 0.2 + 0.1), with one ping outstanding at a time, while Gate's
8 s interval with the 10 s ``pong_timeout`` keeps pinging while a pong is awaited; and it
asserts ``reply <= idle``, which that very pair breaks. It has no silence-only mode (it always
sends a ping before giving up, which Binance's message budget would pay for) and no subscribe
deadline, so this watchdog would stay anyway and a transport would run two liveness timers.
Its pings would also bypass the transport's pacer.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from data_collector.connection.pacer import MessageKind
from data_collector.connection.settings import ConnectionSettings
from data_collector.connection.transport import Transport
from data_collector.venues.base import Keepalive as KeepaliveStyle

log = structlog.get_logger(__name__)


class Keepalive(Protocol):
    """A venue's keepalive style (see the module documentation)."""

    def next_ping(self, last_ping: float, last_frame: float, max_gap: float) -> float:
        """Loop time at which the next application ping is due (``inf``: never).

        ``last_ping`` is when the previous ping was sent (the opening time before the first),
        ``last_frame`` when the last frame arrived; a style that pings at all pings at least
        every ``max_gap`` seconds, so that a quiet but healthy link answers before its silence
        deadline.
        """
        ...

    def ping_message(self, now: float) -> str:
        """The application ping as a text frame; ``now`` is Unix seconds."""
        ...


class IntervalPing:
    """An application ping every ``interval`` seconds, whatever the traffic (MEXC, Gate.io)."""

    def __init__(self, message: Callable[[float], str], interval: float) -> None:
        self._message = message
        self.interval = interval

    def next_ping(self, last_ping: float, last_frame: float, max_gap: float) -> float:
        return last_ping + min(self.interval, max_gap)

    def ping_message(self, now: float) -> str:
        return self._message(now)


class IdlePing(IntervalPing):
    """An application ping once nothing arrived for ``interval`` seconds (OKX)."""

    def next_ping(self, last_ping: float, last_frame: float, max_gap: float) -> float:
        return max(last_ping, last_frame) + min(self.interval, max_gap)


class NoPing:
    """No application ping: the server pings and the client answers (Binance)."""

    def next_ping(self, last_ping: float, last_frame: float, max_gap: float) -> float:
        return math.inf

    def ping_message(self, now: float) -> str:
        raise RuntimeError("a style without application pings has no ping message")


def keepalive_for(
    style: KeepaliveStyle, message: Callable[[float], str | None], interval: float
) -> Keepalive:
    """The :class:`Keepalive` of a venue's declared style, ping text and interval."""
    if style is KeepaliveStyle.SERVER_PINGS:
        return NoPing()

    def text(now: float) -> str:
        built = message(now)
        if built is None:
            raise RuntimeError(f"keepalive style {style.value} needs a ping message")
        return built

    if style is KeepaliveStyle.PING_WHEN_IDLE:
        return IdlePing(text, interval)
    return IntervalPing(text, interval)


#: while subscribe requests wait for the venue's budget, look again this often: the subscribe
#: deadline starts when the last of them goes out
_WAITING_POLL = 0.1


async def watch(
    conn: Transport,
    keepalive: Keepalive,
    settings: ConnectionSettings,
    carries_pairs: Callable[[Transport], bool],
) -> None:
    """Ping ``conn`` as ``keepalive`` says and abort it once it is silent, misses a pong, or
    (while ``carries_pairs(conn)``) stays unconfirmed past its ready deadline."""
    loop = asyncio.get_running_loop()
    s = settings
    max_gap = s.silence_timeout / 2.0
    last_ping = conn.opened_at
    while not conn.dead.done():
        now = loop.time()
        last = conn.last_frame
        if now - last >= s.silence_timeout:
            _timed_out(conn, "silence", now - last)
            return
        ready_deadline = math.inf
        if not conn.ready.done() and carries_pairs(conn):
            ready_deadline = conn.ready_deadline
            if now >= ready_deadline:
                _timed_out(conn, "subscribe_timeout", now - conn.opened_at)
                return
            if conn.subscriptions_waiting:
                ready_deadline = now + _WAITING_POLL
        pong_deadline = float("inf")
        if conn.ping_sent:
            if last >= conn.ping_sent:
                conn.ping_sent = 0.0  # answered (any frame counts)
            elif now - conn.ping_sent >= s.pong_timeout:
                _timed_out(conn, "pong_timeout", now - conn.ping_sent)
                return
            else:
                pong_deadline = conn.ping_sent + s.pong_timeout
        next_ping = keepalive.next_ping(last_ping, last, max_gap)
        if now >= next_ping:
            conn.send_control(keepalive.ping_message(time.time()), MessageKind.PING)
            if not conn.ping_sent:
                conn.ping_sent = now
                pong_deadline = now + s.pong_timeout
            last_ping = now
            next_ping = keepalive.next_ping(last_ping, last, max_gap)
        wake = min(next_ping, last + s.silence_timeout, pong_deadline, ready_deadline)
        await asyncio.sleep(max(wake - now, 0.005))


#: what each watchdog timeout means, for the log line
_TIMEOUTS = {
    "silence": "no frame",
    "subscribe_timeout": "no subscription confirmed",
    "pong_timeout": "no answer to a ping",
}


def _timed_out(conn: Transport, reason: str, seconds: float) -> None:
    log.warning(
        "connection_timeout",
        link=conn.owner.name,
        transport=conn.tid,
        reason=reason,
        seconds=round(seconds, 3),
        summary=f"{conn.owner.name}: {_TIMEOUTS.get(reason, reason)} for {seconds:.1f} s: "
        "dropping the connection",
    )
    conn.abort(reason)
