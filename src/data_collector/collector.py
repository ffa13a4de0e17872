"""The orchestrator: config -> database and migrations -> feeds -> scheduler, writer, analytics.

SIGINT/SIGTERM stop the feeds, flush the writer (or spill what cannot be written), close the
database and return exit code 0.
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
from data_collector.connection import ConnectionSettings
from data_collector.manager import FeedManager
from data_collector.monitoring import MonitoringServer
from data_collector.pairs import Pair
from data_collector.scheduler import SnapshotScheduler, wall_clock_ticks
from data_collector.venues import get_venue

if TYPE_CHECKING:
    from db.writer import SnapshotWriter

log = structlog.get_logger("data_collector.collector")

#: rows kept in memory during an outage when database.buffer_max_rows is 0 (auto)
AUTO_BUFFER_SECONDS = 15 * 60
SUBSCRIBE_REPORT_TIMEOUT = 30.0
STARTUP_DB_TIMEOUT = 10.0


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
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def run_collector(
    config: Config, *, dry_run: bool = False, simulate: bool = False, duration: float | None = None
) -> int:
    """Blocking entry point for the CLI: runs under uvloop when available."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported OS
        return asyncio.run(run_async(config, dry_run=dry_run, simulate=simulate, duration=duration))
    return uvloop.run(run_async(config, dry_run=dry_run, simulate=simulate, duration=duration))


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
    dc = config.data_collector
    if not dc.enabled:
        log.warning("collector_disabled", summary="data_collector.enabled is false: nothing to do")
        return 0
    pairs = config.pairs
    log.info("pairs_loaded", pairs=len(pairs), summary=f"Loaded {len(pairs)} trading pairs")
    cleanups: list[Callable[[], Awaitable[None]]] = []
    try:
        urls = {name: config.exchanges[name].websocket_url for name in dc.exchanges}
        if simulate:
            urls = await _start_simulator(pairs, dc.exchanges, cleanups)
        writer, label = (None, "none (dry run)")
        if not dry_run:
            writer, label = await _start_database(config, pairs, cleanups)
        collector = _assemble(config, pairs, urls, writer, label, dry_run)
        collector.cleanups = cleanups
        if collector_out is not None:
            collector_out.append(collector)
        await _run(collector, duration, started)
    finally:
        await _cleanup(cleanups)
    log.info("collector_stopped", summary="Collector stopped cleanly")
    return 0


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
    settings = ConnectionSettings(**_fields(dc.connection))
    manager = FeedManager(cache, venues, pairs, settings)
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


def _fields(struct: object) -> dict[str, object]:
    import msgspec

    return msgspec.structs.asdict(struct)  # type: ignore[arg-type]


async def _run(collector: Collector, duration: float | None, started: asyncio.Event | None) -> None:
    loop = asyncio.get_running_loop()
    stop = collector.stop_event
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, _on_signal, sig, stop)
    if collector.monitoring is not None:
        await collector.monitoring.start()
    await collector.manager.start()
    tasks = [
        asyncio.create_task(collector.scheduler.run(), name="snapshot-scheduler"),
        asyncio.create_task(_analytics_loop(collector), name="analytics"),
        asyncio.create_task(_report_subscriptions(collector), name="subscribe-report"),
    ]
    if started is not None:
        started.set()
    try:
        if duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
        else:
            await stop.wait()
    finally:
        log.info("shutdown_started", summary="Shutting down: stopping feeds, flushing writer")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await collector.manager.stop()
        if collector.monitoring is not None:
            await collector.monitoring.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    log.info("signal_received", signal=sig.name)
    stop.set()


async def _analytics_loop(collector: Collector) -> None:
    interval = collector.config.data_collector.analytics_interval
    async for _boundary, _missed in wall_clock_ticks(interval):
        collector.analytics.summarize(
            collector.cache.snapshot(),
            collector.cache.stats,
            collector.manager.connections(),
            time.time_ns(),
        )


async def _report_subscriptions(collector: Collector) -> None:
    """Log the start-up line once every requested channel is acknowledged (or rejected)."""
    manager = collector.manager
    expected = len(collector.cache.venues) * len(collector.cache.pairs)
    deadline = time.monotonic() + SUBSCRIBE_REPORT_TIMEOUT
    while time.monotonic() < deadline:
        rejected = sum(len(v) for v in manager.rejected.values())
        if manager.subscribed_channels() + rejected >= expected:
            break
        await asyncio.sleep(0.05)
    channels = manager.subscribed_channels()
    log.info(
        "subscriptions_ready",
        channels=channels,
        expected=expected,
        rejected=sum(len(v) for v in manager.rejected.values()),
        summary=f"Subscribed to {channels} book ticker channels",
    )


async def _start_database(
    config: Config, pairs: list[Pair], cleanups: list[Callable[[], Awaitable[None]]]
) -> tuple[SnapshotWriter, str]:
    from db.dsn import build_dsn, redact_dsn
    from db.migrations import apply_migrations
    from db.pool import create_pool
    from db.writer import SnapshotWriter

    db = config.database
    if db.dsn:
        dsn, label = db.dsn, redact_dsn(db.dsn)
    elif db.host:
        dsn = build_dsn(db.host, db.port, db.database, db.user, db.password)
        label = redact_dsn(dsn)
    else:
        from db.embedded import EmbeddedPostgres

        pgdata = config.data_dir / "postgres"
        embedded = await asyncio.to_thread(EmbeddedPostgres.start, pgdata)
        cleanups.append(lambda: asyncio.to_thread(embedded.stop))
        dsn, label = embedded.dsn, f"embedded PostgreSQL in {pgdata}"
    try:
        pool = await asyncio.wait_for(create_pool(dsn), STARTUP_DB_TIMEOUT)
        try:
            applied = await apply_migrations(pool)
        finally:
            await pool.close()
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        # Start anyway: the writer buffers rows (then spills them) and applies the
        # migrations itself once PostgreSQL answers.
        log.warning(
            "database_unreachable",
            database=label,
            error=type(exc).__name__,
            summary=f"PostgreSQL unreachable at start-up ({label}): snapshots are buffered "
            "and written once it is back",
        )
    else:
        log.info(
            "database_connected",
            database=label,
            migrations_applied=applied,
            summary=f"Connected to PostgreSQL ({label})",
        )
    rows_per_tick = len(pairs) * len(config.data_collector.exchanges)
    buffer_rows = config.database.buffer_max_rows or max(
        rows_per_tick * int(AUTO_BUFFER_SECONDS / config.data_collector.snapshot_interval), 10_000
    )
    writer = SnapshotWriter(dsn, spill_dir=config.data_dir / "spill", max_buffer_rows=buffer_rows)
    await writer.start()
    cleanups.append(writer.close)
    return writer, label


async def _start_simulator(
    pairs: list[Pair], exchanges: list[str], cleanups: list[Callable[[], Awaitable[None]]]
) -> dict[str, str]:
    from data_collector.simulator import Simulator

    sim = Simulator(pairs, venues=tuple(exchanges))
    await sim.start()
    cleanups.append(sim.stop)
    task = asyncio.create_task(_demo_gaps(sim, pairs), name="demo-gaps")

    async def stop_gaps() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    cleanups.append(stop_gaps)
    log.info("simulator_started", urls=sim.urls, summary=f"Venue simulator serving {sim.urls}")
    return dict(sim.urls)


async def _demo_gaps(
    sim: object, pairs: list[Pair], every: float = 25.0, hold: float = 6.0
) -> None:
    """--simulate: open a cross-venue gap on one pair now and then so alerts can be seen."""
    venues = sim.venues  # type: ignore[attr-defined]
    if len(venues) < 2:
        return
    buy, sell = venues["mexc"], venues["gateio"]
    i = 0
    while True:
        await asyncio.sleep(every / 2 if i == 0 else every)
        pair = pairs[i % len(pairs)]
        i += 1
        last = buy.last_sent(pair)
        if last is None:
            continue
        ask = float(last["ask"])
        bid = ask * 1.07
        sell.set_quote(pair, f"{bid:.6g}", "2.5", f"{bid * 1.0002:.6g}", "3.1", hold=True)
        await asyncio.sleep(hold)
        sell.release(pair)


async def _cleanup(cleanups: list[Callable[[], Awaitable[None]]]) -> None:
    """Run clean-ups in reverse order of acquisition; one failing never blocks the rest."""
    for cleanup in reversed(cleanups):
        try:
            await cleanup()
        except Exception as exc:  # shutdown must go on whatever one step raised
            log.error("cleanup_failed", error=repr(exc))
    cleanups.clear()


__all__ = ["Collector", "run_async", "run_collector"]
