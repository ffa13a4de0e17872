"""Per-session budgets on what a client may send, counted the way venues count them."""

from __future__ import annotations

from collections.abc import Iterable

from picows import WSMsgType

from data_collector.simulator.session import ClientSession


class MessageRateLimit:
    """At most ``limit`` client messages per ``window`` seconds on one session.

    Windows are fixed: the first message after a window has ended opens the next one. ``counts``
    names the frame types that count (MEXC: text frames; Binance: text, ping and pong frames).
    A :class:`~data_collector.simulator.server.VenueServer` checks its personality's
    ``inbound_limit`` on every such frame and closes a session that exceeds it with reason
    ``message_rate``. A personality may also keep narrower budgets of its own (say, subscribe
    requests per hour) and call :meth:`exceeded` itself; give each its own ``key``.
    """

    def __init__(
        self,
        limit: int,
        window: float = 1.0,
        *,
        counts: Iterable[WSMsgType] = (WSMsgType.TEXT,),
        key: str = "inbound_rate",
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"need limit >= 1 and window > 0, got {limit} per {window} s")
        self.limit = limit
        self.window = window
        self.counts = frozenset(counts)
        #: where the window lives in ``ClientSession.state``
        self.key = key

    def exceeded(self, session: ClientSession, now: float) -> bool:
        """Count one message received at monotonic ``now``; True once over the budget."""
        window: list[float] | None = session.state.get(self.key)
        if window is None or now - window[0] >= self.window:
            session.state[self.key] = [now, 1]
            return False
        window[1] += 1
        return window[1] > self.limit
