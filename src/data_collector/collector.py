"""The orchestrator: config -> database and migrations -> feeds -> scheduler, writer, analytics.

SIGINT/SIGTERM (from the very start) stop the feeds, flush the writer (or spill what cannot be
written), close the database and return exit code 0, or 1 if the writer had to drop rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg
import structlog

from data_collector.analytics import Analytics
from data_collector.cache import QuoteCache
from data_collector.config import Config
from data_collector.manager import FeedManager
from data_collector.monitoring import MonitoringServer
from data_collector.pairs import Pair
from data_collector.scheduler import SnapshotScheduler, wall_clock_ticks
from data_collector.venues import get_venue

if TYPE_CHECKING:
    from data_collector.simulator import Simulator
    from db.spill_targets import SpillTarget
    from db.writer import SnapshotWriter

log = structlog.get_logger("data_collector.collector")

#: rows kept in memory during an outage when database.buffer_max_rows is 0 (auto)
AUTO_BUFFER_SECONDS = 15 * 60
SUBSCRIBE_REPORT_TIMEOUT = 30.0
STARTUP_DB_TIMEOUT = 10.0
#: the writer's share of the shutdown budget (the process must exit within 10 s)
WRITER_CLOSE_TIMEOUT = 5.0
EXIT_STARTUP_FAILED = 1
EXIT_ROWS_LOST = 1

Cleanup = Callable[[], Awaitable[None]]


class StartupError(Exception):
    """A start-up step failed in a way the user must fix; the message says how."""


@dataclass
class Collector:
    """Everything one running collector owns; built by :func:`run_async`."""

    config: Config
    cache: QuoteCache
    manager: FeedManager
    scheduler: SnapshotScheduler
    analytics: Analytics
    writer: SnapshotWriter | None = None
    database_label: str = "none (dry run)"
    monitoring: MonitoringServer | None = None
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)


def run_collector(
    config: Config, *, dry_run: bool = False, simulate: bool = False, duration: float | None = None
) -> int:
    """Blocking entry point for the CLI: runs under uvloop when available."""
    main = run_async(config, dry_run=dry_run, simulate=simulate, duration=duration)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported OS
        return asyncio.run(main)
    return uvloop.run(main)


async def run_async(
    config: Config,
    *,
    dry_run: bool = False,
    simulate: bool = False,
    duration: float | None = None,
    started: asyncio.Event | None = None,
    collector_out: list[Collector] | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (or ``duration``); returns the process exit code."""
    if not config.data_collector.enabled:
        log.warning("collector_disabled", summary="data_collector.enabled is false: nothing to do")
        return 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    _signal_handlers(loop, stop, install=True)
    cleanups: list[Cleanup] = []
    collector: Collector | None = None
    try:
        collector = await _until_stopped(_start(config, dry_run, simulate, cleanups), stop)
        if collector is None:
            log.info("startup_interrupted", summary="Stopped during start-up")
        else:
            collector.stop_event = stop
            if collector_out is not None:
                collector_out.append(collector)
            await _run(collector, duration, started)
    except StartupError as exc:
        log.error("startup_failed", error=str(exc), summary=f"Cannot start: {exc}")
        return EXIT_STARTUP_FAILED
    finally:
        await _cleanup(cleanups)
        _signal_handlers(loop, stop, install=False)  # a second signal during the flush is fine
    return _stopped(collector.writer if collector is not None else None)


def _stopped(writer: SnapshotWriter | None) -> int:
    """The last line, and the exit code: a run that lost rows did not stop cleanly."""
    stats = writer.stats if writer is not None else None
    if stats is None or not stats.rows_dropped:
        log.info("collector_stopped", rows_lost=0, summary="Collector stopped cleanly")
        return 0
    why = "; ".join(f"{rows} {reason}" for reason, rows in stats.drop_reasons.items())
    log.error(
        "collector_stopped",
        rows_lost=stats.rows_dropped,
        summary=f"Collector stopped: {stats.rows_dropped} rows were lost ({why})",
    )
    return EXIT_ROWS_LOST


async def _until_stopped(work: Awaitable[Collector], stop: asyncio.Event) -> Collector | None:
    """Await ``work`` unless a stop signal comes first (then cancel it and return None)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def _start(
    config: Config, dry_run: bool, simulate: bool, cleanups: list[Cleanup]
) -> Collector:
    dc = config.data_collector
    pairs = config.pairs
    log.info("pairs_loaded", pairs=len(pairs), summary=f"Loaded {len(pairs)} trading pairs")
    urls = {name: config.exchanges[name].websocket_url for name in dc.exchanges}
    if simulate:
        urls = await _start_simulator(pairs, dc.exchanges, cleanups)
    writer, label = None, "none (dry run)"
    if not dry_run:
        writer, label = await _start_database(config, pairs, cleanups)
    return _assemble(config, pairs, urls, writer, label, dry_run)


def _assemble(
    config: Config,
    pairs: list[Pair],
    urls: dict[str, str],
    writer: SnapshotWriter | None,
    label: str,
    dry_run: bool,
) -> Collector:
    dc = config.data_collector
    cache = QuoteCache(dc.exchanges, pairs)
    venues = {name: (get_venue(name), urls[name]) for name in dc.exchanges}
    manager = FeedManager(cache, venues, pairs, dc.connection)
    a = dc.analytics
    analytics = Analytics(
        fees={name: config.exchanges[name].taker_fee or 0.0 for name in dc.exchanges},
        arbitrage_threshold=a.arbitrage_threshold,
        volume_threshold=a.volume_threshold,
        spread_alert_threshold=a.spread_alert_threshold,
    )
    sinks = [writer.submit] if writer is not None else []
    scheduler = SnapshotScheduler(
        cache, dc.snapshot_interval, sinks=sinks, on_snapshot=[analytics.on_tick], dry_run=dry_run
    )
    collector = Collector(config, cache, manager, scheduler, analytics, writer, label)
    if config.monitoring.enabled:
        monitoring = MonitoringServer(collector, config.monitoring.host, config.monitoring.port)
        scheduler.after_tick.append(monitoring.after_tick)
        collector.monitoring = monitoring
    return collector


async def _run(collector: Collector, duration: float | None, started: asyncio.Event | None) -> None:
    await _start_monitoring(collector)
    await collector.manager.start()
    tasks = [
        _watched(collector.scheduler.run(), "snapshot-scheduler"),
        _watched(_analytics_loop(collector), "analytics"),
        _watched(_report_subscriptions(collector), "subscribe-report"),
    ]
    if started is not None:
        started.set()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collector.stop_event.wait(), duration)
    finally:
        log.info("shutdown_started", summary="Shutting down: stopping feeds, flushing writer")
        for task in tasks:  # first: nothing may be submitted to the writer after this
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Feeds, monitoring and the writer wind down together, inside the 10 s budget.
        await asyncio.gather(
            collector.manager.stop(),
            *([collector.monitoring.stop()] if collector.monitoring else []),
            *([collector.writer.close(WRITER_CLOSE_TIMEOUT)] if collector.writer else []),
            return_exceptions=True,
        )


async def _start_monitoring(collector: Collector) -> None:
    """Serve /metrics and /health; a busy port costs the endpoint, never the collection."""
    monitoring = collector.monitoring
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
            summary=f"Monitoring disabled: cannot listen on {monitoring.host}:{monitoring.port} "
            f"({exc.strerror or exc}); set monitoring.port to a free port",
        )
        collector.scheduler.after_tick.remove(monitoring.after_tick)
        collector.monitoring = None


def _watched(coro: Awaitable[None], name: str) -> asyncio.Task[None]:
    """A task whose unexpected death is logged, never silent."""
    task = asyncio.ensure_future(coro)
    task.set_name(name)
    task.add_done_callback(_log_crash)
    return task


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("task_crashed", task=task.get_name(), exc_info=exc)


def _signal_handlers(
    loop: asyncio.AbstractEventLoop, stop: asyncio.Event, *, install: bool
) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            if install:
                loop.add_signal_handler(sig, _on_signal, sig, stop)
            else:
                loop.remove_signal_handler(sig)


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    log.info("signal_received", signal=sig.name)
    stop.set()


async def _analytics_loop(collector: Collector) -> None:
    dc = collector.config.data_collector
    # Half a snapshot interval off the snapshot boundaries, so the summary (and its burst of
    # log lines) never delays a snapshot tick.
    offset = dc.snapshot_interval / 2
    async for _boundary, _missed in wall_clock_ticks(dc.analytics_interval, offset=offset):
        try:
            collector.analytics.summarize(
                collector.cache.snapshot(),
                collector.cache.stats,
                collector.manager.connections(),
                time.time_ns(),
            )
        except Exception:  # one bad summary must not end the analytics
            log.exception("analytics_failed")


async def _report_subscriptions(collector: Collector) -> None:
    """Log the start-up line once every requested channel is acknowledged (or rejected)."""
    manager = collector.manager
    expected = len(collector.cache.venues) * len(collector.cache.pairs)
    deadline = time.monotonic() + SUBSCRIBE_REPORT_TIMEOUT

    def rejected() -> int:
        return sum(len(v) for v in manager.rejected.values())

    while time.monotonic() < deadline:
        if manager.subscribed_channels() + rejected() >= expected:
            break
        await asyncio.sleep(0.05)
    channels = manager.subscribed_channels()
    log.info(
        "subscriptions_ready",
        channels=channels,
        expected=expected,
        rejected=rejected(),
        summary=f"Subscribed to {channels} book ticker channels",
    )


async def _start_database(
    config: Config, pairs: list[Pair], cleanups: list[Cleanup]
) -> tuple[SnapshotWriter, str]:
    from db.dsn import redact_dsn
    from db.migrations import default_migrations_dir, migration_files
    from db.spill_targets import target_of_dsn, target_of_embedded

    try:
        migration_files()
    except FileNotFoundError:
        raise StartupError(
            f"no migrations at {default_migrations_dir()}: run from a source checkout "
            "(pip install -e .) or set CEX_MIGRATIONS_DIR to the folder with the *.sql files"
        ) from None
    dsn = config.database_dsn()
    if dsn is not None:
        label, target = redact_dsn(dsn), target_of_dsn(dsn)
    else:
        dsn, label = await _start_embedded(config, cleanups)
        target = target_of_embedded(config.embedded_pgdata)
    await _migrate(dsn, label)
    writer = await _start_writer(config, pairs, dsn, target)
    cleanups.append(lambda: writer.close(WRITER_CLOSE_TIMEOUT))  # no-op once _run closed it
    return writer, label


async def _start_writer(
    config: Config, pairs: list[Pair], dsn: str, target: SpillTarget
) -> SnapshotWriter:
    """The snapshot writer, spilling into ``target``'s own directory (see db.spill_targets).
    A spill directory that cannot be written stops the start-up: an outage would lose rows."""
    from db.spill import SpillDirectoryError
    from db.spill_targets import prepare_target, table_spill_dir
    from db.tables import SNAPSHOTS
    from db.writer import SnapshotWriter

    interval = config.data_collector.snapshot_interval
    rows_per_tick = len(pairs) * len(config.data_collector.exchanges)
    buffer_rows = config.database.buffer_max_rows or max(
        rows_per_tick * int(AUTO_BUFFER_SECONDS / interval), 10_000
    )
    root = config.data_dir / "spill"
    writer = SnapshotWriter(
        dsn,
        spill_dir=table_spill_dir(root, target, SNAPSHOTS.name),
        max_buffer_rows=buffer_rows,
        stall_after=3 * interval,
    )
    try:
        await asyncio.to_thread(prepare_target, root, target)
        await writer.start()
    except SpillDirectoryError as exc:
        raise StartupError(
            f"{exc}: rows could not be kept during a database outage; set "
            "data_collector.data_dir to a writable directory"
        ) from None
    return writer


async def _start_embedded(config: Config, cleanups: list[Cleanup]) -> tuple[str, str]:
    from db.embedded import EmbeddedPostgres

    pgdata = config.embedded_pgdata
    try:
        embedded = await asyncio.to_thread(EmbeddedPostgres.start, pgdata)
    except Exception as exc:
        raise StartupError(
            f"the embedded PostgreSQL in {pgdata} did not start ({exc}); configure "
            "database.dsn or database.host to use your own server"
        ) from exc
    cleanups.append(lambda: asyncio.to_thread(embedded.stop))
    return embedded.dsn, f"embedded PostgreSQL in {pgdata}"


async def _migrate(dsn: str, label: str) -> None:
    """Apply migrations now when PostgreSQL answers; otherwise start anyway: the writer
    buffers rows (then spills them) and applies the migrations itself once it is back."""
    from db.migrations import apply_migrations
    from db.pool import create_pool

    try:
        pool = await asyncio.wait_for(create_pool(dsn), STARTUP_DB_TIMEOUT)
        try:
            applied = await apply_migrations(pool)
        finally:
            await pool.close()
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning(
            "database_unreachable",
            database=label,
            error=type(exc).__name__,
            summary=f"PostgreSQL unreachable at start-up ({label}): snapshots are buffered "
            "and written once it is back",
        )
        return
    log.info(
        "database_connected",
        database=label,
        migrations_applied=applied,
        summary=f"Connected to PostgreSQL ({label})",
    )


async def _start_simulator(
    pairs: list[Pair], exchanges: list[str], cleanups: list[Cleanup]
) -> dict[str, str]:
    from data_collector.simulator import Simulator

    sim = Simulator(pairs, venues=tuple(exchanges))
    await sim.start()
    cleanups.append(sim.stop)
    task = _watched(_demo_gaps(sim, pairs), "demo-gaps")

    async def stop_gaps() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    cleanups.append(stop_gaps)
    log.info("simulator_started", urls=sim.urls, summary=f"Venue simulator serving {sim.urls}")
    return dict(sim.urls)


async def _demo_gaps(
    sim: Simulator, pairs: list[Pair], every: float = 25.0, hold: float = 6.0
) -> None:
    """--simulate: open a cross-venue gap on one pair now and then so alerts can be seen."""
    if not {"mexc", "gateio"} <= sim.venues.keys():
        return
    buy, sell = sim.venues["mexc"], sim.venues["gateio"]
    for i in range(1_000_000):
        await asyncio.sleep(every / 2 if i == 0 else every)
        pair = pairs[i % len(pairs)]
        last = buy.last_sent(pair)
        if last is None:
            continue
        bid = float(last["ask"]) * 1.07  # 7 % above MEXC's ask: 6.75 % net of both fees
        sell.set_quote(pair, f"{bid:.6g}", "2.5", f"{bid * 1.0002:.6g}", "3.1", hold=True)
        await asyncio.sleep(hold)
        sell.release(pair)


async def _cleanup(cleanups: list[Cleanup]) -> None:
    """Run clean-ups in reverse order of acquisition; one failing never blocks the rest."""
    for cleanup in reversed(cleanups):
        try:
            await cleanup()
        except Exception as exc:  # shutdown must go on whatever one step raised
            log.error("cleanup_failed", error=repr(exc))
    cleanups.clear()


__all__ = ["Collector", "StartupError", "run_async", "run_collector"]
