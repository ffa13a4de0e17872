"""What a collector sends and shows besides its table: alerts and the live dashboard.

Both read the collector's memory only: the analytics' records, the feeds' connection counts,
the snapshot of each tick and the monitoring status; neither touches the database.
"""

from __future__ import annotations

from data_collector.alerts.delivery import DeliverySettings
from data_collector.alerts.service import Alerts
from data_collector.alerts.venues import VenueWatch
from data_collector.analytics.hub import Analytics
from data_collector.config import Config
from data_collector.dashboard.board import OpportunityBoard
from data_collector.dashboard.feed import DashboardFeed
from data_collector.dashboard.state import StateBuilder
from data_collector.manager import FeedManager
from data_collector.monitoring.sources import MonitoringSources
from data_collector.scheduler import SnapshotScheduler

#: how alerts are delivered (timeouts, retries, queue, digests); tests shorten them
DELIVERY = DeliverySettings()


def fees_of(config: Config) -> dict[str, float]:
    """Each configured venue's taker fee (a fraction; 0 when unknown)."""
    dc = config.data_collector
    return {name: config.exchanges[name].taker_fee or 0.0 for name in dc.exchanges}


def attach_alerts(
    config: Config, analytics: Analytics, manager: FeedManager, scheduler: SnapshotScheduler
) -> Alerts | None:
    """Alerts on the analytics' records and the venues' connections; None without targets.

    Another source of alert records hooks in with one call, ``alerts.publish(record)``
    (see :mod:`data_collector.alerts.events`).
    """
    if not config.alerts.targets:
        return None
    alerts = Alerts(config.alerts, settings=DELIVERY)
    analytics.subscribe(alerts)
    watch = VenueWatch(alerts, manager.connections, manager.lost_reason)
    scheduler.add_observer(watch.after_tick)
    return alerts


def build_dashboard(
    config: Config, analytics: Analytics, sources: MonitoringSources
) -> DashboardFeed:
    """The dashboard's feed; the caller adds it as a scheduler observer once it serves."""
    dc = config.data_collector
    board = OpportunityBoard()
    analytics.subscribe(board)
    builder = StateBuilder(
        board,
        fees_of(config),
        threshold=dc.analytics.arbitrage_threshold,
        stale_after_s=dc.connection.silence_timeout,
    )
    return DashboardFeed(builder, sources.read)
