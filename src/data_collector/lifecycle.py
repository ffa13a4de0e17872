"""Lifecycle helpers of the orchestrator: background tasks whose death is never silent, and
clean-ups that all run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("data_collector.collector")

Cleanup = Callable[[], Awaitable[None]]


def watched(coro: Awaitable[None], name: str) -> asyncio.Task[None]:
    """A task whose unexpected death is logged (``task_crashed``)."""
    task = asyncio.ensure_future(coro)
    task.set_name(name)
    task.add_done_callback(_log_crash)
    return task


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("task_crashed", task=task.get_name(), exc_info=exc)


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until every one has finished."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_cleanups(cleanups: list[Cleanup]) -> None:
    """Run clean-ups in reverse order of acquisition; one failing never blocks the rest."""
    for cleanup in reversed(cleanups):
        try:
            await cleanup()
        except Exception as exc:  # shutdown must go on whatever one step raised
            log.error("cleanup_failed", error=repr(exc))
    cleanups.clear()
