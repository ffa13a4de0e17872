"""The orchestrator: config -> database and migrations -> feeds -> scheduler, writer, analytics.

A :class:`Collector` has an explicit lifecycle: ``await start()`` builds and starts every part
(``started`` is set once it serves), ``stop()`` asks it to stop (also during start-up),
``await wait_stopped()`` waits for that, and ``await close()`` shuts it down: feeds stopped,
open opportunities closed (``shutdown``), the writers flushed (or what cannot be written
spilled), the database closed. An essential background task that crashes stops the collector
too (see :mod:`data_collector.lifecycle`). :mod:`data_collector.runner` runs that lifecycle as
a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from data_collector.alerts.service import Alerts
from data_collector.analytics.hub import Analytics
from data_collector.analytics.ledger import OpportunityLedger
from data_collector.analytics.reporter import LogReporter
from data_collector.cache import QuoteCache
from data_collector.config import Config
from data_collector.dashboard.routes import DashboardRoutes
from data_collector.demo import start_simulator
from data_collector.embedded_watch import ServerWatchStatus
from data_collector.feed_watch import FeedWatch, log_subscriptions
from data_collector.lifecycle import (
    Cleanup,
    TaskFailure,
    TaskSupervisor,
    run_cleanups,
)
from data_collector.manager import FeedManager, LinkFactory, live_link
from data_collector.monitoring.connections import ConnectionStatusLog
from data_collector.monitoring.health import HealthRules
from data_collector.monitoring.server import MonitoringServer
from data_collector.monitoring.sources import MonitoringSources
from data_collector.outlets import attach_alerts, build_dashboard, fees_of
from data_collector.pairs import Pair
from data_collector.recording.recorder import Recorder, start_recorder
from data_collector.scheduler import SnapshotScheduler, wall_clock_ticks
from data_collector.startup import (
    WRITER_CLOSE_TIMEOUT,
    Database,
    StartupError,
    start_database,
    writer_progress,
)
from data_collector.storage_job import (
    JOB_DUCKDB_MEMORY,
    JOB_DUCKDB_THREADS,
    StorageJob,
    maintenance_settings,
)
from data_collector.venues import get_venue
from data_collector.wording import plural

if TYPE_CHECKING:
    from db.writer import SnapshotWriter, TableWriter

log = structlog.get_logger("data_collector.collector")

SUBSCRIBE_REPORT_TIMEOUT = 30.0


class Collector:
    """Everything one running collector owns. The parts exist once :meth:`start` built them.
    ``clock``/``clock_ns`` are now to the scheduler and the status lines (a replay's: virtual);
    with ``record.enabled`` a :class:`Recorder` taps every link and notes every tick."""

    cache: QuoteCache
    manager: FeedManager
    feed_watch: FeedWatch
    scheduler: SnapshotScheduler
    analytics: Analytics
    #: what monitoring (and the connection status line) reads of this collector
    sources: MonitoringSources
    writer: SnapshotWriter | None = None
    #: the writer of the opportunity ledger (``arbitrage_opportunities``)
    ledger_writer: TableWriter | None = None
    #: the writers and the embedded server's watch; None in a dry run
    database: Database | None = None
    monitoring: MonitoringServer | None = None
    recorder: Recorder | None = None
    #: partitions, archive and retention after each midnight UTC (None in a dry run)
    storage: StorageJob | None = None
    #: None: no alert targets configured
    alerts: Alerts | None = None
    #: None: monitoring (which serves the dashboard) is disabled or could not listen
    dashboard: DashboardRoutes | None = None

    def __init__(self, config: Config, *, dry_run: bool = False, simulate: bool = False) -> None:
        self.config = config
        self.dry_run = dry_run
        self.simulate = simulate
        #: set once every part runs (after :meth:`start` returned True)
        self.started = asyncio.Event()
        self._stop = asyncio.Event()
        self._built = False
        self._tasks = TaskSupervisor(on_failure=lambda _failure: self.stop())
        self._cleanups: list[Cleanup] = []
        self.clock: Callable[[], float] = time.time
        self.clock_ns: Callable[[], int] = time.time_ns

    def stop(self) -> None:
        """Ask the collector to stop: :meth:`wait_stopped` returns, a start-up is abandoned."""
        self._stop.set()

    @property
    def failures(self) -> list[TaskFailure]:
        """Essential tasks that crashed (each also asked the collector to stop)."""
        return self._tasks.failures

    async def start(self) -> bool:
        """Start every part; False when :meth:`stop` came first. Raises :class:`StartupError`."""
        if not await _unless_stopped(self._build(), self._stop):
            log.info("startup_interrupted", summary="Stopped during start-up")
            return False
        await self._start_monitoring()
        for task in self.database.tasks if self.database is not None else ():
            self._tasks.adopt(task)  # the writer's loops, the server's watch: ended by close()
        if self.alerts is not None:
            self.alerts.start()
        await self.manager.start()
        self._start_tasks()
        self.started.set()
        return True

    def _start_tasks(self) -> None:
        """The loops that run as long as the collector (a replay runs its own instead)."""
        self._tasks.start(self.scheduler.run(), "snapshot-scheduler")
        self._tasks.start(self._analytics_loop(), "analytics")
        if self.storage is not None:
            self._tasks.start(self.storage.run(), "storage-maintenance", essential=False)
        self._tasks.start(self._report_subscriptions(), "subscribe-report", essential=False)
        self._tasks.start(self.feed_watch.run(), "feed-watch")

    async def wait_stopped(self, duration: float | None = None) -> None:
        """Return once :meth:`stop` was called, or after ``duration`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), duration)

    async def close(self) -> None:
        """Shut down what :meth:`start` started, then release what it acquired."""
        if self._built:
            self._built = False
            steps = "stopping feeds, flushing writer" if self.writer else "stopping feeds"
            log.info("shutdown_started", summary=f"Shutting down: {steps}")
            await self._tasks.cancel_all()  # first: no tick may reach the writers after this
            # what is still open ends here (on the collector's clock: a replay's is virtual);
            # its closing rows go out with the ledger's flush
            try:
                self.analytics.close_open(datetime.fromtimestamp(self.clock(), UTC))
            except Exception:  # the shutdown must go on
                log.exception(
                    "analytics_close_failed",
                    summary="[ANALYTICS] Closing the open opportunities failed; shutting down",
                )
            if self.dashboard is not None:
                self.dashboard.close()  # open streams must not hold the server's shutdown
            writers = [w for w in (self.writer, self.ledger_writer) if w is not None]
            # Feeds, monitoring and the writers wind down together, inside the 10 s budget.
            await asyncio.gather(
                self.manager.stop(),
                *([self.monitoring.stop()] if self.monitoring else []),
                *(w.close(WRITER_CLOSE_TIMEOUT) for w in writers),
                *([self.alerts.stop()] if self.alerts else []),
                return_exceptions=True,
            )
        await run_cleanups(self._cleanups)

    async def _build(self) -> None:
        config, dc = self.config, self.config.data_collector
        pairs = config.pairs
        loaded = plural(len(pairs), "trading pair")
        log.info("pairs_loaded", pairs=len(pairs), summary=f"Loaded {loaded}")
        urls = {name: config.exchanges[name].websocket_url for name in dc.exchanges}
        if self.simulate:
            urls = await start_simulator(pairs, dc.exchanges, self._cleanups)
        if not self.dry_run:
            self.database = await start_database(config, pairs, self._cleanups)
            self.writer, self.ledger_writer = self.database.writer, self.database.ledger
            settings = maintenance_settings(
                config, threads=JOB_DUCKDB_THREADS, memory=JOB_DUCKDB_MEMORY
            )
            self.storage = StorageJob(self.database.dsn, settings)
        self.recorder = await start_recorder(config.record, self._cleanups)
        self._assemble(pairs, urls)
        self._built = True

    def _assemble(self, pairs: list[Pair], urls: dict[str, str]) -> None:
        config, dc = self.config, self.config.data_collector
        self.cache = cache = QuoteCache(dc.exchanges, pairs)
        venues = {name: (get_venue(name), urls[name]) for name in dc.exchanges}
        links = self._link_factory()
        self.manager = FeedManager(cache, venues, pairs, dc.connection, links=links)
        self.feed_watch = FeedWatch(self.manager, dc.connection.pair_silence_timeout)
        self.analytics = Analytics(
            fees=fees_of(config),
            arbitrage_threshold=dc.analytics.arbitrage_threshold,
            volume_threshold=dc.analytics.volume_threshold,
            spread_alert_threshold=dc.analytics.spread_alert_threshold,
        )
        self.analytics.subscribe(LogReporter())
        if self.ledger_writer is not None:
            self.analytics.subscribe(OpportunityLedger(self.ledger_writer.submit))
        writer = self.writer
        self.scheduler = SnapshotScheduler(
            cache,
            dc.snapshot_interval,
            sinks=[writer.submit] if writer is not None else [],
            on_snapshot=[self.analytics.on_tick],
            dry_run=self.dry_run,
            writer_progress=writer_progress(writer) if writer is not None else None,
            clock=self.clock,
        )
        if self.recorder is not None:
            self.scheduler.add_observer(self.recorder.snapshot_observer(dc.snapshot_interval))
        self.sources = MonitoringSources(
            venue_stats=cache.stats,
            connections=self.manager.connections,
            ticks=self.scheduler.stats,
            database=lambda: writer.stats if writer is not None else None,
            database_server=self._server_status,
            open_opportunities=lambda: self.analytics.open_opportunities,
            silent_pairs=self.feed_watch.silent_pairs,
            clock_ns=self.clock_ns,
            crashed_tasks=lambda: {f.task: f.error for f in self.failures},
            alerts=lambda: self.alerts.counters() if self.alerts is not None else None,
        )
        self._connection_log = ConnectionStatusLog()
        self.alerts = attach_alerts(config, self.analytics, self.manager, self.scheduler)
        self.feed_watch.alerts = self.alerts  # pair_silent alerts
        if config.monitoring.enabled:
            rules = HealthRules(dc.connection.silence_timeout, dc.snapshot_interval)
            m = config.monitoring
            self.dashboard = DashboardRoutes(build_dashboard(config, self.analytics, self.sources))
            self.monitoring = MonitoringServer(
                self.sources, rules, m.host, m.port, extra_routes=self.dashboard.routes()
            )

    def _server_status(self) -> ServerWatchStatus | None:
        watch = self.database.watch if self.database is not None else None
        return watch.status() if watch is not None else None

    async def _start_monitoring(self) -> None:
        """Serve /metrics and /health; a busy port costs the endpoint, never the collection."""
        monitoring = self.monitoring
        if monitoring is None:
            return
        try:
            await monitoring.start()
        except OSError as exc:
            log.error(
                "monitoring_unavailable",
                host=monitoring.host,
                port=monitoring.port,
                error=str(exc),
                summary=f"Monitoring disabled: cannot listen on {monitoring.host}:"
                f"{monitoring.port} ({exc.strerror or exc}); set monitoring.port to a free port",
            )
            self.monitoring = None
            self.dashboard = None
            return
        self.scheduler.add_observer(monitoring.after_tick)
        if self.dashboard is not None:
            self.scheduler.add_observer(self.dashboard.feed.after_tick)
            url = f"{monitoring.url}/"
            log.info("dashboard_started", url=url, summary=f"Live dashboard on {url}")

    def _link_factory(self) -> LinkFactory:
        """Live links, tapped when recording (a replay builds its own)."""
        return self.recorder.link_factory if self.recorder is not None else live_link

    async def _analytics_loop(self) -> None:
        dc = self.config.data_collector
        # Half a snapshot interval off the snapshot boundaries, so the summary (and its burst of
        # log lines) never delays a snapshot tick.
        offset = dc.snapshot_interval / 2
        async for boundary, _missed in wall_clock_ticks(dc.analytics_interval, offset=offset):
            self.summarize()
            if self.recorder is not None:
                self.recorder.summarized(boundary, dc.analytics_interval)

    def summarize(self) -> None:
        """One analytics summary of the cache as it is now, and the connection status lines."""
        try:
            self.analytics.summarize(self.cache.snapshot())
            self._connection_log.report(self.sources.read())
        except Exception:  # one bad summary must not end the analytics
            log.exception(
                "analytics_failed",
                summary="[ANALYTICS] This summary failed; the next comes on schedule",
            )

    async def _report_subscriptions(self) -> None:
        """Log the start-up line once every requested channel is acknowledged (or rejected),
        or after SUBSCRIBE_REPORT_TIMEOUT with what is missing."""
        manager = self.manager
        expected = len(self.cache.venues) * len(self.cache.pairs)
        deadline = time.monotonic() + SUBSCRIBE_REPORT_TIMEOUT

        def rejected() -> int:
            return sum(len(v) for v in manager.rejected.values())

        while time.monotonic() < deadline:
            if manager.subscribed_channels() + rejected() >= expected:
                break
            await asyncio.sleep(0.05)
        log_subscriptions(manager, log)


async def _unless_stopped(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Await ``work`` unless ``stop`` is set first (then cancel it and return False)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


__all__ = ["Collector", "StartupError"]
