"""The analytics of one collector: computes records and hands them to every subscriber.

The scheduler calls :meth:`Analytics.on_tick` with each snapshot (opportunities open and close
there); the analytics loop calls :meth:`Analytics.summarize` every analytics interval (the
summary also carries the opportunities still open); at shutdown the collector calls
:meth:`Analytics.close_open`. All take their time from the caller, never from the wall clock,
so a replay drives them the same way. Subscribers
(:class:`~data_collector.analytics.records.RecordConsumer`) get the records in the order they
happened; one that raises is logged and the others still get theirs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

import structlog

from data_collector.analytics.opportunities import OpportunityTracker
from data_collector.analytics.records import (
    SHUTDOWN,
    CloseReason,
    FeeMissing,
    OpportunityClosed,
    OpportunityOpened,
    RecordConsumer,
    Summary,
    TickRecord,
)
from data_collector.analytics.summaries import MarketSummaries
from data_collector.cache import Snapshot

log = structlog.get_logger(__name__)


class Analytics:
    """Opportunity tracking on every tick and market summaries on demand."""

    def __init__(
        self,
        *,
        fees: Mapping[str, float],
        arbitrage_threshold: float,
        volume_threshold: float,
        spread_alert_threshold: float,
    ) -> None:
        self.tracker = OpportunityTracker(fees=fees, arbitrage_threshold=arbitrage_threshold)
        self.summaries = MarketSummaries(
            volume_threshold=volume_threshold, spread_alert_threshold=spread_alert_threshold
        )
        self._consumers: list[RecordConsumer] = []

    def subscribe(self, consumer: RecordConsumer) -> None:
        self._consumers.append(consumer)

    def unsubscribe(self, consumer: RecordConsumer) -> None:
        self._consumers.remove(consumer)

    @property
    def open_opportunities(self) -> int:
        return self.tracker.open_count

    def on_tick(self, snap: Snapshot, tick_time: datetime) -> None:
        """Track opportunities on this snapshot; subscribers get what opened and closed."""
        for record in self.tracker.update(snap, tick_time):
            self._deliver(record)

    def summarize(self, snap: Snapshot) -> Summary:
        """Summarise the market on this snapshot; subscribers get the summary, with the
        opportunities open as of the latest tick."""
        summary = self.summaries.summarize(snap, self.tracker.open_count)
        summary = dataclasses.replace(summary, open=self.tracker.open_opportunities())
        self._deliver(summary)
        return summary

    def close_open(self, closed_at: datetime, reason: CloseReason = SHUTDOWN) -> None:
        """Close every open opportunity (at shutdown); subscribers get the closings."""
        for record in self.tracker.close_all(closed_at, reason):
            self._deliver(record)

    def _deliver(self, record: TickRecord | Summary) -> None:
        for consumer in self._consumers:
            try:
                match record:
                    case OpportunityOpened():
                        consumer.opened(record)
                    case OpportunityClosed():
                        consumer.closed(record)
                    case Summary():
                        consumer.summary(record)
                    case FeeMissing():
                        consumer.fee_missing(record)
            except Exception:  # one consumer's bug must not cost the others their records
                name = type(consumer).__name__
                log.exception(
                    "analytics_consumer_failed",
                    consumer=name,
                    summary=f"[ANALYTICS] {name} failed on a {type(record).__name__} record; "
                    "the other consumers still get it",
                )
