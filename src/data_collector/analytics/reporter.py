"""The log reporter: turns analytics records into the ``[ANALYTICS]`` log events.

Event names, levels and fields are a stated contract (users' scripts parse them): every
``*_pct`` field is a percentage, ``summary`` is the human line.
"""

from __future__ import annotations

from typing import Any

import structlog

from data_collector.analytics.formatting import format_money, format_pct, format_price, format_qty
from data_collector.analytics.records import (
    FeeMissing,
    MarketHealth,
    OpportunityClosed,
    OpportunityOpened,
    RecordConsumer,
    SpreadAlert,
    SpreadAnalysis,
    Summary,
    VolumeChange,
)

#: the logger name the analytics events have always carried
_LOGGER = "data_collector.analytics"


class LogReporter(RecordConsumer):
    """Logs every record; ``logger`` defaults to this module's structlog logger."""

    def __init__(self, logger: Any = None) -> None:
        self._log = logger if logger is not None else structlog.get_logger(_LOGGER)

    def opened(self, record: OpportunityOpened) -> None:
        r = record
        pair = r.pair
        self._log.warning(
            "arbitrage_alert",
            symbol=str(pair),
            buy_exchange=r.buy_exchange,
            sell_exchange=r.sell_exchange,
            buy_price=r.buy_price,
            sell_price=r.sell_price,
            opportunity=r.opportunity,
            gross_pct=r.gross_pct,
            net_pct=r.net_pct,
            size=r.size,
            profit=r.profit,
            buy_fee_pct=r.buy_fee_pct,
            sell_fee_pct=r.sell_fee_pct,
            summary=(
                f"[ANALYTICS] Arbitrage Alert: {pair} - buy {r.buy_exchange.upper()} "
                f"{format_price(r.buy_price)}, sell {r.sell_exchange.upper()} "
                f"{format_price(r.sell_price)} (Opportunity: "
                f"{format_money(r.opportunity, pair.quote)}, {r.gross_pct:.2f}% gross, "
                f"{r.net_pct:.2f}% net, size {format_qty(r.size)})"
            ),
        )

    def closed(self, record: OpportunityClosed) -> None:
        r = record
        duration = r.duration_s
        self._log.info(
            "arbitrage_closed",
            symbol=str(r.pair),
            buy_exchange=r.buy_exchange,
            sell_exchange=r.sell_exchange,
            duration_s=duration,
            peak_net_pct=r.peak_net_pct,
            ticks=r.ticks,
            summary=(
                f"[ANALYTICS] Arbitrage Closed: {r.pair} - buy {r.buy_exchange.upper()}, "
                f"sell {r.sell_exchange.upper()} after {duration:.1f}s "
                f"(peak {r.peak_net_pct:.2f}% net)"
            ),
        )

    def fee_missing(self, record: FeeMissing) -> None:
        self._log.warning(
            "analytics_fee_missing",
            exchange=record.exchange,
            summary=f"[ANALYTICS] No taker fee configured for {record.exchange.upper()}: using 0",
        )

    def summary(self, record: Summary) -> None:
        self._spread_analysis(record.spread_analysis)
        for alert in record.spread_alerts:
            self._spread_alert(alert)
        for change in record.volume_changes:
            self._volume_change(change)
        self._market_health(record.market_health)

    def _spread_analysis(self, r: SpreadAnalysis) -> None:
        widest = r.widest
        venues_text = ", ".join(
            f"{venue.upper()} {format_pct(avg)}" for venue, avg in r.avg_spread_pct.items()
        )
        self._log.info(
            "spread_analysis",
            pairs=r.pairs,
            avg_spread_pct=r.avg_spread_pct,
            max_spread=None
            if widest is None
            else {"symbol": str(widest.pair), "venue": widest.exchange, "pct": widest.spread_pct},
            avg_cross_venue_diff_pct=r.avg_cross_venue_diff_pct,
            spreads=r.spreads,
            summary=(
                f"[ANALYTICS] Spread Analysis: {r.pairs} pairs, "
                f"avg spread {venues_text}, "
                f"avg cross-venue diff {format_pct(r.avg_cross_venue_diff_pct)}"
            ),
        )

    def _spread_alert(self, r: SpreadAlert) -> None:
        self._log.warning(
            "spread_alert",
            symbol=str(r.pair),
            exchange=r.exchange,
            spread_pct=r.spread_pct,
            bid=r.bid,
            ask=r.ask,
            summary=(
                f"[ANALYTICS] Spread Alert: {r.pair} on {r.exchange.upper()} - spread "
                f"{r.spread_pct:.3f}% (bid {format_price(r.bid)}, ask {format_price(r.ask)})"
            ),
        )

    def _volume_change(self, r: VolumeChange) -> None:
        fields = {
            "symbol": str(r.pair),
            "exchange": r.exchange,
            "side": r.side,
            "notional_usd": r.notional_usd,
            "threshold_usd": r.threshold_usd,
        }
        where = f"{r.pair} on {r.exchange.upper()} - {r.side} notional ${r.notional_usd:,.2f}"
        if r.low:
            summary = f"[ANALYTICS] Volume Alert: {where} below ${r.threshold_usd:,.2f}"
            self._log.warning("volume_alert", **fields, summary=summary)
        else:
            self._log.info(
                "volume_recovered", **fields, summary=f"[ANALYTICS] Volume Recovered: {where}"
            )

    def _market_health(self, r: MarketHealth) -> None:
        self._log.info(
            "market_health",
            pairs_live=r.pairs_live,
            pairs_total=r.pairs_total,
            health_pct=r.health_pct,
            avg_spread_pct=r.avg_spread_pct,
            open_opportunities=r.open_opportunities,
            summary=(
                f"[ANALYTICS] Market Health: {r.pairs_live}/{r.pairs_total} pairs live on 2+ "
                f"venues ({r.health_pct:.1f}%), avg spread {format_pct(r.avg_spread_pct)}, "
                f"{r.open_opportunities} open opportunities"
            ),
        )
