"""The contract every venue module fulfils: pure message builders and a pure frame parser.

A venue module does no I/O. The connection layer sends what ``subscribe_messages`` and
``ping_message`` build, paced by the venue's :class:`ControlBudget`, and hands every received
frame to ``parse``; the manager routes what ``parse`` returns (a quote, or a control event) to
the cache and the connection. Everything the rest of the program needs to know about a venue
(name, display name, default URL and taker fee, keepalive style, caps, budgets, lifetime) is
declared on its :class:`Venue` class, and nowhere else.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import msgspec

from data_collector.pairs import Pair


class QuoteUpdate(msgspec.Struct, gc=False):
    """One top-of-book update exactly as the venue wrote it.

    Prices and quantities keep the venue's decimal strings (stored verbatim); a side the venue
    left out (one-sided book) is ``None``. ``exchange_time_ms`` is 0 and ``sequence`` is -1
    when the venue did not send them. ``sequence_restart`` marks an update whose sequence
    starts the venue's numbering afresh (Bybit ``u == 1`` after a service restart): it replaces
    the quote even though its sequence is lower than the last one.
    """

    symbol: str
    bid_price: str | None
    bid_qty: str | None
    ask_price: str | None
    ask_qty: str | None
    exchange_time_ms: int = 0
    sequence: int = -1
    sequence_restart: bool = False


class SubscribeResult(msgspec.Struct, gc=False):
    """A subscribe acknowledgement: venue symbols accepted and rejected (with the reason).

    One SubscribeResult answers one subscribe message (the manager counts them against the
    messages it sent), or one symbol of it where the venue answers each symbol on its own
    (``Venue.acks_each_symbol``: OKX, one ack or error per arg); an ack that names no symbol at
    all confirms its whole request.
    """

    accepted: list[str]
    rejected: list[str]
    reason: str = ""


class Pong(msgspec.Struct, gc=False):
    """Reply to the application-level ping."""


class VenueError(msgspec.Struct, gc=False):
    """An error the venue reported that is not tied to a subscription."""

    message: str


class RestartNotice(msgspec.Struct, gc=False):
    """The venue announces it will close this connection (Gate ``upgrade``, Binance
    ``serverShutdown``, OKX notice ``64008``): replace it make-before-break."""

    reason: str = "upgrade"


#: the name the first venue gave it; kept so older imports keep working
Upgrade = RestartNotice


class Malformed(msgspec.Struct, gc=False):
    """A frame that could not be decoded; counted and logged, never fatal."""

    reason: str


class Ignored(msgspec.Struct, gc=False):
    """A well-formed frame with nothing for us (e.g. an unsubscribe ack)."""


ParseResult = (
    QuoteUpdate | SubscribeResult | Pong | VenueError | RestartNotice | Malformed | Ignored
)

IGNORED = Ignored()
PONG = Pong()
UPGRADE = RestartNotice("upgrade")


class Keepalive(enum.Enum):
    """How a connection to the venue is kept alive and proven alive."""

    #: the client sends ``ping_message()`` every ``ping_interval`` seconds (MEXC, Gate, Bybit)
    PING_INTERVAL = "ping_interval"
    #: the client sends ``ping_message()`` whenever nothing arrived for ``ping_interval``
    #: seconds (OKX: the text ``ping``, answered by the text ``pong``)
    PING_WHEN_IDLE = "ping_when_idle"
    #: the server sends protocol ping frames and the client answers them with pong frames; there
    #: is no application ping, a dead connection is detected by silence (Binance)
    SERVER_PINGS = "server_pings"


class BudgetScope(enum.Enum):
    #: every message the client sends counts (JSON control messages, pings; pongs if said so)
    ALL_MESSAGES = "all_messages"
    #: only subscribe and unsubscribe requests count
    SUBSCRIPTIONS = "subscriptions"


class ControlBudget(msgspec.Struct, frozen=True, gc=False):
    """At most ``messages`` client messages in any window of ``per_seconds`` seconds, per
    connection. The connection layer paces its sends to stay inside it after every connect
    and reconnect; a venue that sees more closes the connection (Binance) or refuses."""

    messages: int
    per_seconds: float
    scope: BudgetScope = BudgetScope.ALL_MESSAGES
    #: protocol pong frames count too (Binance counts PING, PONG and JSON messages alike)
    counts_pongs: bool = False


class ConnectBudget(msgspec.Struct, frozen=True, gc=False):
    """At most ``attempts`` connection attempts in any window of ``per_seconds`` seconds from
    one IP: every link of the venue shares it (the venue counts per IP, not per connection)."""

    attempts: int
    per_seconds: float


class Venue(ABC):
    """A venue's protocol, free of I/O. One instance per venue, shared by all its connections.

    Subclasses declare every class attribute below; the registry, the configuration defaults
    and validation, the CLI help, the simulator demo and the connection layer read them.
    """

    #: lowercase venue name, as stored in ``book_ticker_snapshots.exchange`` and used in config
    name: ClassVar[str]
    #: how logs and reports name it (``MEXC``, ``Gate.io``, ``Binance``)
    display_name: ClassVar[str]
    #: the public WebSocket endpoint
    default_url: ClassVar[str]
    #: taker fee of the default (lowest) tier, as a fraction (0.001 = 0.1 %)
    default_taker_fee: ClassVar[float]
    #: where the protocol is documented (cited in the module and the README)
    docs_url: ClassVar[str]
    #: the book-ticker channel as the venue names it (README venue table)
    channel_name: ClassVar[str]
    #: most streams one connection may hold (None: no documented cap)
    max_subscriptions_per_connection: ClassVar[int | None]
    #: the venue answers each symbol of a subscribe request on its own (OKX: one ack or 60018
    #: per arg) rather than the request as a whole: the manager expects that many answers
    acks_each_symbol: ClassVar[bool] = False
    #: most symbols one subscribe message may carry (None: no documented cap); the venue's
    #: ``subscribe_messages`` splits requests accordingly
    max_symbols_per_request: ClassVar[int | None] = None
    #: pacing budget for the client's control messages (None: no documented limit)
    control_budget: ClassVar[ControlBudget | None] = None
    #: pacing budget for opening connections, shared by the venue's links (None: no limit)
    connect_budget: ClassVar[ConnectBudget | None] = None
    keepalive: ClassVar[Keepalive] = Keepalive.PING_INTERVAL
    #: seconds between application-level pings (or of idleness before one); unused for
    #: ``Keepalive.SERVER_PINGS``
    ping_interval: ClassVar[float]
    #: seconds a connection may live before the venue drops it (None: no documented limit)
    max_connection_lifetime: ClassVar[float | None]

    @abstractmethod
    def symbol(self, pair: Pair) -> str:
        """The venue's symbol for ``pair`` (``BTCUSDT``, ``BTC_USDT``, ``BTC-USDT``) as it
        appears in the venue's updates and acknowledgements."""

    @abstractmethod
    def subscribe_messages(self, symbols: Sequence[str], now: float) -> list[str]:
        """Text frames that subscribe to the book ticker of ``symbols``; ``now`` is Unix
        seconds. Each frame respects ``max_symbols_per_request``."""

    @abstractmethod
    def unsubscribe_messages(self, symbols: Sequence[str], now: float) -> list[str]:
        """Text frames that undo ``subscribe_messages``."""

    def ping_message(self, now: float) -> str | None:
        """The application-level keepalive text frame (None for ``Keepalive.SERVER_PINGS``)."""
        return None

    def url_warning(self, url: str) -> str | None:
        """Why ``url`` will probably not reach this venue (a retired endpoint), None when
        nothing is known against it; the configuration check logs it as a warning."""
        return None

    @abstractmethod
    def parse(self, data: bytes) -> ParseResult:
        """Decode one received frame (text or binary payload). Never raises."""
