"""The contract every venue module fulfils: pure message builders and a pure frame parser.

A venue module does no I/O. The connection layer sends what ``subscribe_messages`` and
``ping_message`` build and hands every received frame to ``parse``; the manager routes what
``parse`` returns (a quote, or a control event) to the cache and the connection.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import msgspec

from data_collector.pairs import Pair


class QuoteUpdate(msgspec.Struct, gc=False):
    """One top-of-book update exactly as the venue wrote it.

    Prices and quantities keep the venue's decimal strings (stored verbatim); a side the venue
    left out (one-sided book) is ``None``. ``exchange_time_ms`` is 0 and ``sequence`` is -1
    when the venue did not send them.
    """

    symbol: str
    bid_price: str | None
    bid_qty: str | None
    ask_price: str | None
    ask_qty: str | None
    exchange_time_ms: int = 0
    sequence: int = -1


class SubscribeResult(msgspec.Struct, gc=False):
    """A subscribe acknowledgement: venue symbols accepted and rejected (with the reason)."""

    accepted: list[str]
    rejected: list[str]
    reason: str = ""


class Pong(msgspec.Struct, gc=False):
    """Reply to the application-level ping."""


class VenueError(msgspec.Struct, gc=False):
    """An error the venue reported that is not tied to a subscription."""

    message: str


class Upgrade(msgspec.Struct, gc=False):
    """The venue asks the client to close and reconnect (Gate ``"event":"upgrade"``)."""


class Malformed(msgspec.Struct, gc=False):
    """A frame that could not be decoded; counted and logged, never fatal."""

    reason: str


class Ignored(msgspec.Struct, gc=False):
    """A well-formed frame with nothing for us (e.g. an unsubscribe ack)."""


ParseResult = QuoteUpdate | SubscribeResult | Pong | VenueError | Upgrade | Malformed | Ignored

IGNORED = Ignored()
PONG = Pong()
UPGRADE = Upgrade()


class Venue(ABC):
    """A venue's protocol, free of I/O. One instance per venue, shared by all its connections."""

    #: lowercase venue name, as stored in ``book_ticker_snapshots.exchange``
    name: str
    #: the public WebSocket endpoint
    default_url: str
    #: most subscriptions one connection may hold (None: no documented cap)
    max_subscriptions_per_connection: int | None
    #: seconds between application-level pings
    ping_interval: float
    #: seconds a connection may live before the venue drops it (None: no documented limit)
    max_connection_lifetime: float | None

    @abstractmethod
    def symbol(self, pair: Pair) -> str:
        """The venue's symbol for ``pair`` (``BTCUSDT``, ``BTC_USDT``)."""

    @abstractmethod
    def subscribe_messages(self, symbols: Sequence[str], now: float) -> list[str]:
        """Text frames that subscribe to the book ticker of ``symbols``; ``now`` is Unix seconds."""

    @abstractmethod
    def unsubscribe_messages(self, symbols: Sequence[str], now: float) -> list[str]:
        """Text frames that undo ``subscribe_messages``."""

    @abstractmethod
    def ping_message(self, now: float) -> str:
        """The application-level keepalive text frame."""

    @abstractmethod
    def parse(self, data: bytes) -> ParseResult:
        """Decode one received frame (text or binary payload). Never raises."""
