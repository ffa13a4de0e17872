"""Server-driven protocol keepalive: the venue pings, the client must pong (Binance's way).

Venues whose keepalive is an application message the client sends (MEXC ``PING``, Gate
``spot.ping``, OKX's text ``ping``, Bybit's ``{"op":"ping"}``) answer it in their
``Personality.on_text``; protocol-level pings a client sends are answered by the server.
"""

from __future__ import annotations

from data_collector.simulator.session import ClientSession

_KEY = "server_pings"


class _PingsInFlight:
    __slots__ = ("next_at", "outstanding", "sent")

    def __init__(self, next_at: float) -> None:
        self.next_at = next_at
        #: payload -> monotonic send time of the pings not answered yet, oldest first
        self.outstanding: dict[bytes, float] = {}
        self.sent = 0


class ServerPings:
    """A ping frame to every session each ``interval`` seconds; a session that leaves a ping
    unanswered for ``pong_timeout`` seconds is closed. Only a pong echoing an outstanding ping's
    payload answers it (and every earlier one); unsolicited pongs keep nothing alive.

    A personality enables it by setting its ``server_pings``; the server then calls
    :meth:`check` on every housekeeping pass (not during a stall) and :meth:`on_pong` for every
    pong frame.
    """

    def __init__(self, interval: float, pong_timeout: float) -> None:
        if interval <= 0 or pong_timeout <= 0:
            raise ValueError(f"need interval and pong_timeout > 0, got {interval}, {pong_timeout}")
        self.interval = interval
        self.pong_timeout = pong_timeout

    def check(self, session: ClientSession, now: float) -> str:
        """Send the ping that is due; returns ``pong_timeout`` if the session should be closed
        ("" otherwise)."""
        pings = session.state.get(_KEY)
        if pings is None:
            pings = session.state[_KEY] = _PingsInFlight(session.connected_at + self.interval)
        if pings.outstanding and now - next(iter(pings.outstanding.values())) >= self.pong_timeout:
            return "pong_timeout"
        if now >= pings.next_at:
            pings.sent += 1
            payload = str(pings.sent).encode()
            session.send_ping(payload)
            pings.outstanding[payload] = now
            pings.next_at = now + self.interval
        return ""

    def on_pong(self, session: ClientSession, payload: bytes) -> None:
        pings = session.state.get(_KEY)
        if pings is None or payload not in pings.outstanding:
            return
        answered_at = pings.outstanding[payload]
        pings.outstanding = {p: t for p, t in pings.outstanding.items() if t > answered_at}

    @staticmethod
    def unanswered(session: ClientSession) -> list[bytes]:
        """Payloads of the pings sent to ``session`` and not answered yet, oldest first."""
        pings = session.state.get(_KEY)
        return [] if pings is None else list(pings.outstanding)

    @staticmethod
    def sent(session: ClientSession) -> int:
        """Pings sent to ``session`` so far."""
        pings = session.state.get(_KEY)
        return 0 if pings is None else pings.sent
