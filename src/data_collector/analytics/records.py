"""What the analytics find, as plain records, and the interface that receives them.

The tracker and the summaries compute these; consumers (the log reporter today, later an
opportunity ledger, alert delivery, a dashboard) turn them into whatever they need. Every
``*_pct`` field is a percentage (1.5 = 1.5 %); prices are floats of the venues' strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from data_collector.pairs import Pair


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
    """An open opportunity stopped qualifying (or its pair list changed)."""

    pair: Pair
    buy_exchange: str
    sell_exchange: str
    opened_at: datetime
    closed_at: datetime
    #: the best net percentage seen while it was open
    peak_net_pct: float
    #: snapshot ticks it stayed open
    ticks: int

    @property
    def duration_s(self) -> float:
        return (self.closed_at - self.opened_at).total_seconds()


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
