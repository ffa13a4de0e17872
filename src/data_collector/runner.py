"""The collector as a process: run a :class:`~data_collector.collector.Collector` until
SIGINT/SIGTERM, ``duration`` or a crashed essential task, and turn how it ended into the exit
code (1 when start-up failed, an essential task crashed or the writer had to drop rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

import structlog

from data_collector.collector import Collector
from data_collector.config import Config
from data_collector.lifecycle import run_on_uvloop
from data_collector.startup import StartupError
from data_collector.wording import plural

log = structlog.get_logger("data_collector.collector")

EXIT_STARTUP_FAILED = 1
#: an essential task crashed, or the writer had to drop rows: the run did not stop cleanly
EXIT_NOT_CLEAN = 1


def run_collector(
    config: Config, *, dry_run: bool = False, simulate: bool = False, duration: float | None = None
) -> int:
    """Blocking entry point for the CLI: runs under uvloop when available."""
    return run_on_uvloop(run_async(config, dry_run=dry_run, simulate=simulate, duration=duration))


async def run_async(
    config: Config,
    *,
    dry_run: bool = False,
    simulate: bool = False,
    duration: float | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (or ``duration``); returns the process exit code."""
    if not config.data_collector.enabled:
        log.warning("collector_disabled", summary="data_collector.enabled is false: nothing to do")
        return 0
    collector = Collector(config, dry_run=dry_run, simulate=simulate)
    return await run_until_stopped(collector, duration)


async def run_until_stopped(collector: Collector, duration: float | None = None) -> int:
    """Start ``collector``, run it until SIGINT/SIGTERM, ``duration`` or a crashed task, and
    shut it down; returns the process exit code."""
    loop = asyncio.get_running_loop()
    _signal_handlers(loop, collector.stop, install=True)
    try:
        if await collector.start():
            await collector.wait_stopped(duration)
    except StartupError as exc:
        log.error("startup_failed", error=str(exc), summary=f"Cannot start: {exc}")
        return EXIT_STARTUP_FAILED
    finally:
        await collector.close()
        _signal_handlers(loop, collector.stop, install=False)  # a signal during the flush: fine
    return _stopped(collector)


def _stopped(collector: Collector) -> int:
    """The last line, and the exit code: a run whose task crashed or that lost rows did not
    stop cleanly."""
    problems: list[str] = [str(f) for f in collector.failures]
    fields: dict[str, object] = {"rows_lost": 0}
    if collector.failures:
        fields["crashed_tasks"] = {f.task: f.error for f in collector.failures}
    lost = (
        (collector.writer, "rows_lost", "row"),
        (collector.ledger_writer, "opportunity_rows_lost", "opportunity ledger row"),
    )
    for writer, field, noun in lost:
        stats = writer.stats if writer is not None else None
        if stats is not None and stats.rows_dropped:
            why = "; ".join(f"{rows} {reason}" for reason, rows in stats.drop_reasons.items())
            fields[field] = stats.rows_dropped
            lost_rows = plural(stats.rows_dropped, noun)
            was = "was" if stats.rows_dropped == 1 else "were"
            problems.append(f"{lost_rows} {was} lost ({why})")
    if not problems:
        log.info("collector_stopped", **fields, summary="Collector stopped cleanly")
        return 0
    log.error("collector_stopped", **fields, summary=f"Collector stopped: {'; '.join(problems)}")
    return EXIT_NOT_CLEAN


def _signal_handlers(
    loop: asyncio.AbstractEventLoop, stop: Callable[[], None], *, install: bool
) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            if install:
                loop.add_signal_handler(sig, _on_signal, sig, stop)
            else:
                loop.remove_signal_handler(sig)


def _on_signal(sig: signal.Signals, stop: Callable[[], None]) -> None:
    stop()  # first: nothing (not even a failing log write) may keep the signal from acting
    log.info("signal_received", signal=sig.name, summary=f"{sig.name} received: stopping")


__all__ = [
    "EXIT_NOT_CLEAN",
    "EXIT_STARTUP_FAILED",
    "run_async",
    "run_collector",
    "run_until_stopped",
]
