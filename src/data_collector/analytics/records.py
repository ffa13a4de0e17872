"""What the analytics find, as plain records, and the interface that receives them.

The tracker and the summaries compute these; consumers (the log reporter, the opportunity
ledger, later alert delivery and a dashboard) turn them into whatever they need. Every
``*_pct`` field is a percentage (1.5 = 1.5 %); prices are floats of the venues' strings, and
:class:`OpportunityQuote` also keeps the strings themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from data_collector.pairs import Pair

#: why an opportunity closed: the prices came together, a quote stopped being live (or left
#: the snapshot), or the collector shut down while it was open
CloseReason = Literal["converged", "stale", "shutdown"]
CONVERGED: Final = "converged"
STALE: Final = "stale"
SHUTDOWN: Final = "shutdown"


@dataclass(frozen=True, slots=True)
class OpportunityQuote:
    """Both legs of an opportunity on one tick, with the venues' exact decimal strings."""

    at: datetime
    #: the buy venue's ask, exactly as the venue wrote it
    buy_price: str
    #: the sell venue's bid, exactly as the venue wrote it
    sell_price: str
    #: the smaller of the two sizes, as its venue wrote it; None if unknown
    size: str | None
    gross_pct: float
    net_pct: float
    #: what buying and selling ``size`` earns in the pair's quote currency, net of both taker
    #: fees (each charged on its own leg, as :attr:`OpportunityOpened.net_profit`); None if
    #: the size is unknown
    profit: float | None


@dataclass(frozen=True, slots=True)
class OpportunityOpened:
    """Buying at one venue's ask and selling at another's bid clears the threshold, net of
    both taker fees, on this tick and did not on the previous one."""

    pair: Pair
    buy_exchange: str
    sell_exchange: str
    opened_at: datetime
    buy_price: float
    sell_price: float
    #: the smaller of the buy venue's ask size and the sell venue's bid size; None if unknown
    size: float | None
    gross_pct: float
    net_pct: float
    buy_fee_pct: float
    sell_fee_pct: float
    #: the same tick with exact strings (always set by the tracker)
    quote: OpportunityQuote | None = None

    @property
    def opportunity(self) -> float:
        """Per-unit price difference, before fees."""
        return self.sell_price - self.buy_price

    @property
    def profit(self) -> float | None:
        """Size times the per-unit difference, before fees; None when the size is unknown."""
        return None if self.size is None else self.size * self.opportunity

    @property
    def net_profit(self) -> float | None:
        """What buying and selling ``size`` earns in the quote currency, net of both taker fees
        (each charged on its own leg); None when the size is unknown."""
        if self.size is None:
            return None
        bought = self.buy_price * (1.0 + self.buy_fee_pct / 100.0)
        sold = self.sell_price * (1.0 - self.sell_fee_pct / 100.0)
        return self.size * (sold - bought)


@dataclass(frozen=True, slots=True)
class OpportunityClosed:
    """An open opportunity stopped qualifying, lost a live quote, or was closed at shutdown.

    The fields after ``ticks`` are always set by the tracker (the defaults only serve records
    built by hand).
    """

    pair: Pair
    buy_exchange: str
    sell_exchange: str
    opened_at: datetime
    closed_at: datetime
    #: the best net percentage seen while it was open
    peak_net_pct: float
    #: snapshot ticks it stayed open
    ticks: int
    reason: CloseReason = CONVERGED
    open_net_pct: float | None = None
    #: the tick of the best net percentage
    peak: OpportunityQuote | None = None
    #: the last tick it was seen open
    last_seen_at: datetime | None = None

    @property
    def duration_s(self) -> float:
        return (self.closed_at - self.opened_at).total_seconds()


@dataclass(frozen=True, slots=True)
class OpenOpportunity:
    """Where an opportunity that is still open stands, as of its last tick."""

    pair: Pair
    buy_exchange: str
    sell_exchange: str
    opened_at: datetime
    open_net_pct: float
    #: the tick of the best net percentage so far
    peak: OpportunityQuote
    ticks: int
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class FeeMissing:
    """A venue in the snapshot has no taker fee configured; 0 is used."""

    exchange: str


@dataclass(frozen=True, slots=True)
class WidestSpread:
    pair: Pair
    exchange: str
    spread_pct: float


@dataclass(frozen=True, slots=True)
class SpreadAnalysis:
    #: pairs with a usable quote on at least one venue
    pairs: int
    #: venue -> mean spread over its usable quotes (None when it has none)
    avg_spread_pct: dict[str, float | None]
    widest: WidestSpread | None
    #: mean over pairs on 2+ venues of (max mid - min mid) / mean mid
    avg_cross_venue_diff_pct: float | None
    #: symbol -> {venue: spread, ..., "diff_pct": cross-venue difference}; None where unknown
    spreads: dict[str, dict[str, float | None]]


@dataclass(frozen=True, slots=True)
class SpreadAlert:
    pair: Pair
    exchange: str
    spread_pct: float
    bid: float
    ask: float


@dataclass(frozen=True, slots=True)
class VolumeChange:
    """A side's top-of-book notional crossed the threshold (either way) since last summary."""

    pair: Pair
    exchange: str
    side: str  # "bid" or "ask"
    notional_usd: float
    threshold_usd: float
    #: True: it fell below the threshold; False: it recovered
    low: bool


@dataclass(frozen=True, slots=True)
class MarketHealth:
    #: pairs usable on two venues or more
    pairs_live: int
    pairs_total: int
    health_pct: float
    #: mean spread over every usable quote
    avg_spread_pct: float | None
    open_opportunities: int


@dataclass(frozen=True, slots=True)
class Summary:
    """One analytics interval's findings, in the order they are reported."""

    spread_analysis: SpreadAnalysis
    spread_alerts: tuple[SpreadAlert, ...]
    volume_changes: tuple[VolumeChange, ...]
    market_health: MarketHealth
    #: the opportunities open at the time of the summary
    open: tuple[OpenOpportunity, ...] = ()


#: what the per-tick tracker reports, in the order it happened
TickRecord = OpportunityOpened | OpportunityClosed | FeeMissing


class RecordConsumer:
    """Receives the analytics' records as they happen. Subclass it and override the kinds you
    need; the others are ignored. Called on the event loop: do not block."""

    def opened(self, record: OpportunityOpened) -> None:
        """An opportunity opened on a snapshot tick."""

    def closed(self, record: OpportunityClosed) -> None:
        """An opportunity closed on a snapshot tick."""

    def summary(self, record: Summary) -> None:
        """The market summary of one analytics interval."""

    def fee_missing(self, record: FeeMissing) -> None:
        """A venue without a configured taker fee appeared."""
