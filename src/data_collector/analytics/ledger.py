"""The opportunity ledger: a subscriber that turns opportunity records into rows of
``arbitrage_opportunities`` and hands them to a sink (the ledger's table writer).

Each opportunity is written when it opens, again at every analytics summary while it stays
open (so a crash loses at most one analytics interval of its progress), and a last time when
it closes. The table's upsert keeps only the newest state of each (see :mod:`db.ledger`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from data_collector.analytics.records import (
    OpenOpportunity,
    OpportunityClosed,
    OpportunityOpened,
    RecordConsumer,
    Summary,
)
from db.ledger import LedgerRow

LedgerSink = Callable[[list[LedgerRow]], None]

#: significant digits kept of the computed profit (a float; its last digits are noise)
PROFIT_DIGITS = 12


def _profit(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.{PROFIT_DIGITS}g}")


def ledger_row(
    state: OpenOpportunity, *, closed_at: datetime | None = None, close_reason: str | None = None
) -> LedgerRow:
    """The row of an opportunity as of ``state``; closed when ``closed_at`` is given."""
    peak = state.peak
    return (
        state.pair.base,
        state.pair.quote,
        state.buy_exchange,
        state.sell_exchange,
        state.opened_at,
        closed_at,
        state.open_net_pct,
        peak.net_pct,
        peak.gross_pct,
        peak.buy_price,
        peak.sell_price,
        peak.size,
        _profit(peak.profit),
        peak.at,
        state.last_seen_at,
        state.ticks,
        close_reason,
    )


class OpportunityLedger(RecordConsumer):
    """Writes every opportunity's life into the ledger table through ``sink``."""

    def __init__(self, sink: LedgerSink) -> None:
        self._sink = sink

    def opened(self, record: OpportunityOpened) -> None:
        r = record
        if r.quote is None:  # only hand-built records lack it
            return
        state = OpenOpportunity(
            r.pair, r.buy_exchange, r.sell_exchange, r.opened_at, r.net_pct, r.quote, 1, r.opened_at
        )
        self._sink([ledger_row(state)])

    def closed(self, record: OpportunityClosed) -> None:
        r = record
        if r.peak is None or r.open_net_pct is None or r.last_seen_at is None:
            return
        state = OpenOpportunity(
            r.pair,
            r.buy_exchange,
            r.sell_exchange,
            r.opened_at,
            r.open_net_pct,
            r.peak,
            r.ticks,
            r.last_seen_at,
        )
        self._sink([ledger_row(state, closed_at=r.closed_at, close_reason=r.reason)])

    def summary(self, record: Summary) -> None:
        if record.open:
            self._sink([ledger_row(state) for state in record.open])
