"""``/metrics`` in the Prometheus text format.

Counters and gauges are read from a :class:`CollectorStatus` at scrape time (a custom
prometheus collector), so the frame hot path pays nothing for them. The two histograms (quote
age, snapshot duration) are fed once per snapshot tick by :meth:`Metrics.after_tick`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector as PromCollector

from data_collector.cache import Snapshot
from data_collector.monitoring.sources import CollectorStatus
from data_collector.scheduler import TickStats

QUOTE_AGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SNAPSHOT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class QuoteAges:
    """Histogram of receive time minus exchange time, per venue.

    Fed once per tick with the quotes that changed since the previous tick (each quote's latest
    update), so it costs one vectorised pass per second instead of work per frame.
    """

    def __init__(self, venues: tuple[str, ...]) -> None:
        self.venues = venues
        self.bounds = np.array(QUOTE_AGE_BUCKETS)
        self.counts = np.zeros((len(venues), len(QUOTE_AGE_BUCKETS) + 1), dtype=np.int64)
        self.sums = np.zeros(len(venues))
        self._last_receive: np.ndarray | None = None

    def observe(self, snap: Snapshot) -> None:
        fresh = snap.receive_time_ns != (
            self._last_receive if self._last_receive is not None else 0
        )
        fresh &= snap.exchange_time_ms > 0
        self._last_receive = snap.receive_time_ns
        ages = snap.receive_time_ns / 1e9 - snap.exchange_time_ms / 1e3
        for v in range(len(self.venues)):
            venue_ages = np.maximum(ages[v][fresh[v]], 0.0)
            if venue_ages.size:
                idx = np.searchsorted(self.bounds, venue_ages, side="left")
                self.counts[v] += np.bincount(idx, minlength=self.counts.shape[1])
                self.sums[v] += float(venue_ages.sum())

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "collector_quote_age_seconds",
            "Receive time minus the venue's exchange time of quotes, sampled once per tick",
            labels=["exchange"],
        )
        for v, venue in enumerate(self.venues):
            cumulative = np.cumsum(self.counts[v]).tolist()
            buckets = [(_le(b), c) for b, c in zip(QUOTE_AGE_BUCKETS, cumulative, strict=False)]
            buckets.append(("+Inf", cumulative[-1]))
            family.add_metric([venue], buckets, float(self.sums[v]))
        return family


def _le(bound: float) -> str:
    return repr(float(bound))


def venue_families(status: CollectorStatus) -> Iterator[Any]:
    """Per-venue counters and the connections gauge."""
    yield _per_venue_counter("collector_frames", "WebSocket frames received", status, "frames")
    yield _per_venue_counter(
        "collector_parse_errors", "Frames that could not be decoded", status, "parse_errors"
    )
    yield _per_venue_counter(
        "collector_reconnects", "Reconnections after a lost connection", status, "reconnects"
    )
    yield _per_venue_counter(
        "collector_connection_attempts",
        "Connection attempts: first connects, reconnects and rotations, failed ones included",
        status,
        "connection_attempts",
    )
    yield _per_venue_counter(
        "collector_connection_failures",
        "Connection attempts that failed (refused, unreachable, handshake timed out)",
        status,
        "connection_failures",
    )
    yield _per_venue_counter(
        "collector_updates", "Quote updates accepted into the cache", status, "updates"
    )
    dropped = CounterMetricFamily(
        "collector_dropped_updates", "Updates not cached, by reason", labels=["exchange", "reason"]
    )
    for venue, v in status.venues.items():
        s = v.stats
        dropped.add_metric([venue, "out_of_order"], s.dropped_stale)
        dropped.add_metric([venue, "crossed"], s.dropped_crossed)
        dropped.add_metric([venue, "invalid"], s.dropped_invalid)
        dropped.add_metric([venue, "unknown_symbol"], s.dropped_unknown)
        dropped.add_metric([venue, "repeat"], s.repeats)
    yield dropped
    up = GaugeMetricFamily(
        "collector_connections_up", "Open venue connections", labels=["exchange"]
    )
    for venue, v in status.venues.items():
        up.add_metric([venue], v.connections_up)
    yield up
    silent = GaugeMetricFamily(
        "collector_pairs_silent",
        "Subscribed pairs without a quote for pair_silence_timeout while their connection "
        "delivers other pairs",
        labels=["exchange"],
    )
    for venue, v in status.venues.items():
        silent.add_metric([venue], len(v.silent_pairs))
    yield silent


def pipeline_families(status: CollectorStatus) -> Iterator[Any]:
    """Snapshot, writer and analytics counters."""
    yield CounterMetricFamily(
        "collector_snapshot_rows", "Rows captured by snapshots", value=status.rows
    )
    yield CounterMetricFamily(
        "collector_snapshots_missed", "Snapshot ticks missed", value=status.missed
    )
    yield CounterMetricFamily("collector_snapshots", "Snapshot ticks taken", value=status.ticks)
    db = status.database
    yield GaugeMetricFamily(
        "collector_writer_backlog_rows",
        "Rows waiting for PostgreSQL (memory and spill files)",
        value=db.backlog_rows if db else 0,
    )
    yield CounterMetricFamily(
        "collector_rows_spilled", "Rows spilled to disk", value=db.rows_spilled if db else 0
    )
    yield CounterMetricFamily(
        "collector_rows_written", "Rows written to PostgreSQL", value=db.rows_written if db else 0
    )
    yield GaugeMetricFamily(
        "collector_arbitrage_opportunities_open",
        "Arbitrage opportunities open now",
        value=status.open_opportunities,
    )


def alert_families(status: CollectorStatus) -> Iterator[Any]:
    """Alerts sent and given up on per target (named by scheme), dropped from full queues."""
    alerts = status.alerts
    yield CounterMetricFamily(
        "collector_alerts_dropped",
        "Alerts dropped, oldest first, because a target's queue was full",
        value=alerts.dropped if alerts else 0,
    )
    sent = CounterMetricFamily(
        "collector_alerts_sent", "Alerts delivered, by target scheme", labels=["target"]
    )
    failed = CounterMetricFamily(
        "collector_alerts_failed",
        "Alerts not delivered after every attempt, by target scheme",
        labels=["target"],
    )
    if alerts is not None:
        for label, count in alerts.sent.items():
            sent.add_metric([label], count)
        for label, count in alerts.failed.items():
            failed.add_metric([label], count)
    yield sent
    yield failed


def _per_venue_counter(name: str, doc: str, status: CollectorStatus, attr: str) -> Any:
    family = CounterMetricFamily(name, doc, labels=["exchange"])
    for venue, v in status.venues.items():
        family.add_metric([venue], getattr(v.stats, attr))
    return family


class _LiveFamilies(PromCollector):
    """Reads one status per scrape and yields every family but the snapshot histogram."""

    def __init__(self, read_status: Callable[[], CollectorStatus], ages: QuoteAges) -> None:
        self.read_status = read_status
        self.ages = ages

    def collect(self) -> Iterator[Any]:
        status = self.read_status()
        yield from venue_families(status)
        yield self.ages.family()
        yield from pipeline_families(status)
        yield from alert_families(status)


class Metrics:
    """The registry behind ``/metrics`` for one collector."""

    def __init__(self, read_status: Callable[[], CollectorStatus], venues: tuple[str, ...]):
        self.registry = CollectorRegistry(auto_describe=True)
        self.ages = QuoteAges(venues)
        self.registry.register(_LiveFamilies(read_status, self.ages))
        self.snapshot_seconds = Histogram(
            "collector_snapshot_duration_seconds",
            "Time to capture one snapshot and hand it to the writer and analytics",
            buckets=SNAPSHOT_BUCKETS,
            registry=self.registry,
        )

    def after_tick(self, snap: Snapshot, stats: TickStats) -> None:
        """A scheduler observer: feed the per-tick histograms."""
        self.snapshot_seconds.observe(stats.last_duration_s)
        self.ages.observe(snap)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
