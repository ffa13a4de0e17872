"""Prometheus ``/metrics`` and a JSON ``/health`` served by aiohttp in the collector's process.

Counters are read from the live objects at scrape time (a custom prometheus collector), so the
frame hot path pays nothing for them. Histograms are fed once per snapshot tick.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector as PromCollector

from data_collector.cache import Snapshot
from data_collector.scheduler import TickStats

if TYPE_CHECKING:
    from data_collector.collector import Collector

log = structlog.get_logger(__name__)

QUOTE_AGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SNAPSHOT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: /health: the last snapshot must be younger than this many intervals
HEALTH_SNAPSHOT_INTERVALS = 3


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

    def observe(self, snap: Snapshot, _stats: TickStats) -> None:
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


class LiveMetrics(PromCollector):
    """Reads the collector's counters and gauges at scrape time."""

    def __init__(self, collector: Collector, ages: QuoteAges) -> None:
        self.collector = collector
        self.ages = ages

    def collect(self) -> Iterator[Any]:
        c = self.collector
        stats = c.cache.stats
        yield _per_venue_counter("collector_frames", "WebSocket frames received", stats, "frames")
        yield _per_venue_counter(
            "collector_parse_errors", "Frames that could not be decoded", stats, "parse_errors"
        )
        yield _per_venue_counter(
            "collector_reconnects", "Reconnections after a lost connection", stats, "reconnects"
        )
        yield _per_venue_counter(
            "collector_updates", "Quote updates accepted into the cache", stats, "updates"
        )
        dropped = CounterMetricFamily(
            "collector_dropped_updates",
            "Updates not cached, by reason",
            labels=["exchange", "reason"],
        )
        for venue, s in stats.items():
            dropped.add_metric([venue, "out_of_order"], s.dropped_stale)
            dropped.add_metric([venue, "crossed"], s.dropped_crossed)
            dropped.add_metric([venue, "invalid"], s.dropped_invalid)
            dropped.add_metric([venue, "unknown_symbol"], s.dropped_unknown)
        yield dropped
        up = GaugeMetricFamily(
            "collector_connections_up", "Open venue connections", labels=["exchange"]
        )
        for venue, (n_up, _expected) in c.manager.connections().items():
            up.add_metric([venue], n_up)
        yield up
        yield self.ages.family()
        tick = c.scheduler.stats
        yield CounterMetricFamily(
            "collector_snapshot_rows", "Rows captured by snapshots", value=tick.rows
        )
        yield CounterMetricFamily(
            "collector_snapshots_missed", "Snapshot ticks missed", value=tick.missed
        )
        yield CounterMetricFamily("collector_snapshots", "Snapshot ticks taken", value=tick.ticks)
        writer = c.writer.stats if c.writer is not None else None
        yield GaugeMetricFamily(
            "collector_writer_backlog_rows",
            "Rows waiting for PostgreSQL (memory and spill files)",
            value=writer.backlog_rows if writer else 0,
        )
        yield CounterMetricFamily(
            "collector_rows_spilled",
            "Rows spilled to disk",
            value=writer.rows_spilled if writer else 0,
        )
        yield CounterMetricFamily(
            "collector_rows_written",
            "Rows written to PostgreSQL",
            value=writer.rows_written if writer else 0,
        )
        yield GaugeMetricFamily(
            "collector_arbitrage_opportunities_open",
            "Arbitrage opportunities open now",
            value=c.analytics.open_opportunities,
        )


def _per_venue_counter(name: str, doc: str, stats: dict[str, Any], attr: str) -> Any:
    family = CounterMetricFamily(name, doc, labels=["exchange"])
    for venue, s in stats.items():
        family.add_metric([venue], getattr(s, attr))
    return family


def health(collector: Collector, now_ns: int | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 200 when every venue flows and the last snapshot is recent
    (status "ok", or "degraded" with the reasons in ``degraded`` when the database is down
    or stalled); 503 otherwise."""
    now_ns = now_ns or time.time_ns()
    c = collector
    reasons: list[str] = []
    silence = c.config.data_collector.connection.silence_timeout
    venues: dict[str, Any] = {}
    for venue, (n_up, expected) in c.manager.connections().items():
        last = c.cache.stats[venue].last_message_ns
        age = (now_ns - last) / 1e9 if last else None
        venues[venue] = {
            "connections_up": n_up,
            "connections_expected": expected,
            "last_message_age_s": None if age is None else round(age, 3),
        }
        if n_up < expected:
            reasons.append(f"{venue}: {n_up}/{expected} connections up")
        if age is None or age > silence:
            reasons.append(f"{venue}: no message for {'ever' if age is None else f'{age:.1f}s'}")
    interval = c.config.data_collector.snapshot_interval
    last_tick = c.scheduler.stats.last_tick_time
    tick_age = None if last_tick is None else now_ns / 1e9 - last_tick.timestamp()
    if tick_age is None or tick_age > HEALTH_SNAPSHOT_INTERVALS * interval:
        shown = "none yet" if tick_age is None else f"{tick_age:.1f}s ago"
        reasons.append(f"last snapshot {shown}")
    database = _database_state(c)
    # nothing is lost while the writer buffers: degraded, not unhealthy
    degraded = (
        [f"database {database['state']}: {database['last_error']}"]
        if database["state"] in ("down", "stalled")
        else []
    )
    body: dict[str, Any] = {
        "status": "unhealthy" if reasons else "degraded" if degraded else "ok",
        "reasons": reasons,
        "degraded": degraded,
        "venues": venues,
        "last_snapshot": None if last_tick is None else last_tick.isoformat(),
        "last_snapshot_age_s": None if tick_age is None else round(tick_age, 3),
        "database": database,
        "open_opportunities": c.analytics.open_opportunities,
    }
    return (200 if not reasons else 503), body


def _database_state(c: Collector) -> dict[str, Any]:
    if c.writer is None:
        return {"state": "disabled (dry run)", "backlog_rows": 0}
    s = c.writer.stats
    return {
        "state": s.state,
        "backlog_rows": s.backlog_rows,
        "rows_written": s.rows_written,
        "rows_spilled": s.rows_spilled,
        "last_error": s.last_error,
    }


class MonitoringServer:
    """aiohttp app with /metrics and /health for one collector."""

    def __init__(self, collector: Collector, host: str, port: int) -> None:
        self.collector = collector
        self.host = host
        self.port = port
        self.registry = CollectorRegistry(auto_describe=True)
        self.ages = QuoteAges(collector.cache.venues)
        self.registry.register(LiveMetrics(collector, self.ages))
        self.snapshot_seconds = Histogram(
            "collector_snapshot_duration_seconds",
            "Time to capture one snapshot and hand it to the writer and analytics",
            buckets=SNAPSHOT_BUCKETS,
            registry=self.registry,
        )
        self._runner: web.AppRunner | None = None

    def after_tick(self, snap: Snapshot, stats: TickStats) -> None:
        self.snapshot_seconds.observe(stats.last_duration_s)
        self.ages.observe(snap, stats)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info(
            "monitoring_started",
            url=self.url,
            summary=f"Monitoring on {self.url}/metrics and {self.url}/health",
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health(self, _request: web.Request) -> web.Response:
        status, body = health(self.collector)
        return web.json_response(body, status=status)
