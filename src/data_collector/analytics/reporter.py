"""The log reporter: turns analytics records into the ``[ANALYTICS]`` log events.

Event names, levels and fields are a stated contract (users' scripts parse them): every
``*_pct`` field is a percentage, ``summary`` is the human line. Volume changes are one line
each up to :data:`VOLUME_LINES_MAX` per summary; above that, one ``volume_summary`` line gives
the counts and the lowest few, and carries every change in its ``changes`` field.
"""

from __future__ import annotations

from typing import Any

import structlog

from data_collector.analytics.formatting import (
    format_amount,
    format_money,
    format_pct,
    format_price,
    format_qty,
)
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
from data_collector.wording import plural

#: the logger name the analytics events have always carried
_LOGGER = "data_collector.analytics"
#: more volume changes than this in one summary are summarised in one line
VOLUME_LINES_MAX = 5
#: the lowest sides the summarised line names
VOLUME_WORST_SHOWN = 3


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
            net_profit=r.net_profit,
            buy_fee_pct=r.buy_fee_pct,
            sell_fee_pct=r.sell_fee_pct,
            summary=(
                f"[ANALYTICS] Arbitrage Alert: {pair} - buy {r.buy_exchange.upper()} "
                f"{format_price(r.buy_price)}, sell {r.sell_exchange.upper()} "
                f"{format_price(r.sell_price)} (gap {format_money(r.opportunity, pair.quote)} "
                f"per unit, {r.gross_pct:.2f}% gross, {r.net_pct:.2f}% net of fees); "
                + _profit_text(r)
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
        changes = record.volume_changes
        if len(changes) <= VOLUME_LINES_MAX:
            for change in changes:
                self._volume_change(change)
        else:
            self._volume_summary(changes)
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
                f"[ANALYTICS] Spread Analysis: {plural(r.pairs, 'pair')}, "
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
        fields = _volume_fields(r)
        del fields["low"]  # the event's name says it
        where = f"{r.pair} on {r.exchange.upper()} - {r.side} notional ${r.notional_usd:,.2f}"
        if r.low:
            summary = f"[ANALYTICS] Volume Alert: {where} below ${r.threshold_usd:,.2f}"
            self._log.warning("volume_alert", **fields, summary=summary)
        else:
            self._log.info(
                "volume_recovered", **fields, summary=f"[ANALYTICS] Volume Recovered: {where}"
            )

    def _volume_summary(self, changes: tuple[VolumeChange, ...]) -> None:
        low = sorted((c for c in changes if c.low), key=lambda c: c.notional_usd)
        recovered = len(changes) - len(low)
        threshold = changes[0].threshold_usd
        if low:
            text = f"{plural(len(low), 'book side')} fell below ${threshold:,.2f}"
            text += f", {recovered} recovered" if recovered else ""
        else:
            text = f"{plural(recovered, 'book side')} recovered above ${threshold:,.2f}"
        text = f"[ANALYTICS] Volume: {text}"
        worst = low[:VOLUME_WORST_SHOWN]
        if worst:
            text += "; lowest: " + ", ".join(
                f"{c.pair} on {c.exchange.upper()} {c.side} ${c.notional_usd:,.2f}" for c in worst
            )
        method = self._log.warning if low else self._log.info
        method(
            "volume_summary",
            alerts=len(low),
            recovered=recovered,
            threshold_usd=threshold,
            lowest=[_volume_fields(c) for c in worst],
            changes=[_volume_fields(c) for c in changes],
            summary=text,
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
                f"[ANALYTICS] Market Health: {r.pairs_live}/{plural(r.pairs_total, 'pair')} live "
                f"on 2+ venues ({r.health_pct:.1f}%), avg spread {format_pct(r.avg_spread_pct)}, "
                f"{plural(r.open_opportunities, 'open opportunity', 'open opportunities')}"
            ),
        )


def _volume_fields(r: VolumeChange) -> dict[str, Any]:
    return {
        "symbol": str(r.pair),
        "exchange": r.exchange,
        "side": r.side,
        "notional_usd": r.notional_usd,
        "threshold_usd": r.threshold_usd,
        "low": r.low,
    }


def _profit_text(r: OpportunityOpened) -> str:
    """``net profit $25.21 for 2.5 SOL``: the money, for the size both books hold."""
    if r.size is None:
        return "size unknown: no profit figure"
    return (
        f"net profit {format_amount(r.net_profit, r.pair.quote)} for "
        f"{format_qty(r.size)} {r.pair.base}"
    )
