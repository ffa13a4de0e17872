"""What one venue says on the wire: the :class:`Personality` a venue module implements.

A personality is stateless apart from its settings; per-session state lives in
``ClientSession.state``. The server does everything venue-agnostic (connections, the push loop,
backpressure, faults, floods) and asks the personality for the venue's words. A new venue is one
module in ``simulator/personalities/`` that defines ``PERSONALITY = <its class>``.

Extension points beyond the abstract methods:

- ``inbound_limit``: a :class:`MessageRateLimit` the server applies to every client frame of the
  kinds it counts (MEXC: 100 text frames/s; Binance would count pings and pongs too).
- ``server_pings``: a :class:`ServerPings` for venues whose server sends the protocol pings and
  drops clients that do not pong (Binance). Application pings (MEXC, Gate, OKX's text ``ping``,
  Bybit) are text frames: answer them in :meth:`Personality.on_text`.
- :meth:`Personality.restart_notice`: the "reconnect, I am going away" message
  (Gate ``upgrade``; Binance ``serverShutdown``, OKX ``64008`` to come).
- :meth:`Personality.expiry_reason`: when the venue drops a session on its own.
- ``ClientSession.path``: the request target, for venues that serve several URL forms, and
  :meth:`Personality.on_connected` for venues that subscribe from the URL.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Protocol

from picows import WSMsgType

from data_collector.pairs import Pair
from data_collector.simulator.keepalive import ServerPings
from data_collector.simulator.limits import MessageRateLimit
from data_collector.simulator.session import ClientSession, Quote


class VenueControl(Protocol):
    """What a personality may ask of its server while it handles a client's message."""

    def pair_index(self, symbol: str) -> int | None:
        """The pair index of a venue symbol, None if the venue does not list it."""

    def symbol_of(self, idx: int) -> str: ...

    def is_rejected(self, idx: int) -> bool:
        """Whether a test told the venue to refuse subscriptions of this pair."""

    def subscribe(self, session: ClientSession, idx: int, key: str) -> None:
        """Push pair ``idx`` to ``session`` under ``key`` (the argument of ``encode_push``)."""

    def unsubscribe(self, session: ClientSession, idx: int, key: str) -> None: ...

    def close_session(self, session: ClientSession, reason: str) -> None: ...

    def count_malformed(self, reason: str) -> None:
        """Count (and log) a client message the venue could not make sense of."""


class Personality(ABC):
    """What one venue says on the wire."""

    #: venue name, the key in ``Simulator.venues`` and ``PERSONALITIES``
    name: str
    #: URL path clients connect to
    path: str
    #: WebSocket frame type of book-ticker pushes
    push_type: WSMsgType
    #: budget on client messages, enforced by the server (None: unlimited)
    inbound_limit: MessageRateLimit | None = None
    #: server-driven protocol keepalive (None: the venue sends no pings of its own)
    server_pings: ServerPings | None = None

    def __init__(
        self,
        *,
        no_subscription_timeout: float | None,
        idle_timeout: float | None,
        max_lifetime: float | None,
    ) -> None:
        #: close sessions holding no subscription for this long (None: never)
        self.no_subscription_timeout = no_subscription_timeout
        #: close sessions with no traffic in either direction for this long (None: never)
        self.idle_timeout = idle_timeout
        #: close sessions older than this (None: never)
        self.max_lifetime = max_lifetime

    def accepts_path(self, path: str) -> bool:
        """Whether a client may connect at ``path`` (the request path without query)."""
        return path.rstrip("/") == self.path.rstrip("/")

    @abstractmethod
    def symbol(self, pair: Pair) -> str:
        """The venue's symbol for ``pair``."""

    @abstractmethod
    def first_sequence(self, symbol: str, rng: random.Random) -> int:
        """Where the pair's update sequence starts."""

    @abstractmethod
    def next_sequence(self, sequence: int, rng: random.Random) -> int:
        """The sequence after ``sequence`` (strictly greater)."""

    @abstractmethod
    def encode_push(self, key: str, symbol: str, quote: Quote) -> bytes:
        """The payload of one book-ticker push for subscription ``key``."""

    @abstractmethod
    def on_text(self, server: VenueControl, session: ClientSession, text: str, now: float) -> None:
        """Handle one text frame from a client (subscribe, ping, ...)."""

    @abstractmethod
    def garbage_frames(self) -> list[tuple[WSMsgType, bytes]]:
        """Well-formed WebSocket frames whose content the venue's clients cannot decode."""

    def on_connected(self, server: VenueControl, session: ClientSession) -> None:
        """A client connected (``session.path`` is its request target); nothing by default.
        Binance subscribes the streams a ``/stream?streams=...`` URL names here."""
        return None

    def restart_notice(self, session: ClientSession) -> str:
        """The venue's "reconnect: this connection will close" notice for ``session``."""
        raise NotImplementedError(f"{self.name} has no planned-restart notice")

    def expiry_reason(self, session: ClientSession, now: float) -> str:
        """Why the venue would drop ``session`` at monotonic ``now`` ("" if it would not)."""
        since = session.unsubscribed_since
        no_sub = self.no_subscription_timeout
        if no_sub is not None and since is not None and now - since >= no_sub:
            return "no_subscription"
        last_traffic = max(session.last_client_at, session.last_push_at)
        if self.idle_timeout is not None and now - last_traffic >= self.idle_timeout:
            return "idle"
        if self.max_lifetime is not None and now - session.connected_at >= self.max_lifetime:
            return "lifetime"
        return ""
