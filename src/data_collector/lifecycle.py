"""Lifecycle helpers of the orchestrator: background tasks whose end is never silent, and
clean-ups that all run.

**Restart policy: none.** An essential task (a loop that must run as long as the collector:
the snapshot scheduler, the analytics loop) that ends for any reason but a cancellation asked
for from outside has failed: raised an exception, raised ``CancelledError`` itself (which would
otherwise make it look merely cancelled), or returned. The failure is logged as an error that
names the task and the exception, shown by ``/health``, and the collector is asked to stop: the
writer still flushes what was captured, and the run exits non-zero. Restarting it would hide a
deterministic bug (the same input crashes it again) behind a process that looks alive;
stopping hands the decision to the process supervisor (systemd, Kubernetes), which restarts
the whole process from a clean state and counts the restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("data_collector.collector")

Cleanup = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """An essential task that ended: its name and what ended it."""

    task: str
    #: "OverflowError: cannot convert float infinity to integer"
    error: str

    def __str__(self) -> str:
        return f"task {self.task} crashed ({self.error})"


class TaskSupervisor:
    """Starts background tasks and notices every one that ends on its own.

    ``on_failure`` is called (once per task) when an essential task fails; the failures are
    kept in :attr:`failures`. A task that is not essential (a one-shot start-up report) may
    return; if it raises, that is logged as an error and the collection goes on. A ``finite``
    essential task (a replay) ends by itself when its work is done: returning is no
    failure, raising is. Once
    :meth:`cancel_all` has begun the shutdown, an essential task may return too (a writer's
    loop ends when its owner closes it); raising is still a failure.
    """

    def __init__(self, on_failure: Callable[[TaskFailure], None]) -> None:
        self.failures: list[TaskFailure] = []
        self._on_failure = on_failure
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(
        self,
        coro: Coroutine[Any, Any, None],
        name: str,
        *,
        essential: bool = True,
        finite: bool = False,
    ) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self.adopt(task, essential=essential, finite=finite)
        self._tasks.append(task)
        return task

    def adopt(
        self, task: asyncio.Task[None], *, essential: bool = True, finite: bool = False
    ) -> None:
        """Watch a task another part started and ends itself (a writer's loops): its crash
        counts as one of ours, but :meth:`cancel_all` leaves it to its owner."""
        task.add_done_callback(lambda t: self._finished(t, essential, finite))

    async def cancel_all(self) -> None:
        """Begin the shutdown: cancel every task started here and wait until each has
        finished."""
        self._stopping = True
        tasks, self._tasks = self._tasks, []
        await cancel_all(tasks)

    def _finished(self, task: asyncio.Task[None], essential: bool, finite: bool) -> None:
        must_run_forever = essential and not finite and not self._stopping
        error = _ending(task, must_run_forever=must_run_forever)
        if error is None:
            return
        text = describe(error)
        if not essential:
            log.error(
                "task_crashed",
                task=task.get_name(),
                error=text,
                essential=False,
                exc_info=error if isinstance(error, BaseException) else None,
                summary=f"Task {task.get_name()} crashed ({text}); collection goes on",
            )
            return
        failure = TaskFailure(task.get_name(), text)
        self.failures.append(failure)
        log.error(
            "task_crashed",
            task=failure.task,
            error=failure.error,
            essential=True,
            exc_info=error if isinstance(error, BaseException) else None,
            summary=f"Task {failure.task} crashed ({failure.error}): stopping the collector",
        )
        self._on_failure(failure)


def watched(coro: Awaitable[None], name: str) -> asyncio.Task[None]:
    """A task that may end, whose crash is logged (``task_crashed``) but stops nothing."""
    task = asyncio.ensure_future(coro)
    task.set_name(name)
    task.add_done_callback(_log_crash)
    return task


def _log_crash(task: asyncio.Task[None]) -> None:
    error = _ending(task, must_run_forever=False)
    if isinstance(error, BaseException):
        log.error(
            "task_crashed",
            task=task.get_name(),
            error=describe(error),
            exc_info=error,
            summary=f"Task {task.get_name()} crashed ({describe(error)}); the collector goes on",
        )


def _ending(task: asyncio.Task[None], *, must_run_forever: bool) -> BaseException | str | None:
    """Why ``task`` ended, if that was a failure; None if it was cancelled from outside (or,
    for a task that need not run forever, returned)."""
    cancel_asked = task.cancelling() > 0  # task.cancel() was called: the shutdown, asyncio.run
    if task.cancelled():
        if cancel_asked:
            return None
        try:  # the coroutine raised CancelledError itself (a cancelled future's result)
            task.result()
        except asyncio.CancelledError as exc:
            # the task's own CancelledError, with its traceback, is the context
            return exc.__context__ if isinstance(exc.__context__, BaseException) else exc
        return None  # pragma: no cover - result() of a cancelled task always raises
    if (exc := task.exception()) is not None:
        return exc
    if must_run_forever and not cancel_asked:
        return "returned, but it must run as long as the collector"
    return None


def describe(error: BaseException | str) -> str:
    """``OverflowError: cannot convert ...``, or the exception's type alone when it has no
    message (``CancelledError``, ``TimeoutError``)."""
    if isinstance(error, str):
        return error
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


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
            log.error(
                "cleanup_failed",
                error=repr(exc),
                summary=f"A shutdown step failed ({exc!r}); the others still run",
            )
    cleanups.clear()


def run_on_uvloop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` to its end under uvloop when available; its result (the exit code)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported OS
        return asyncio.run(main)
    return uvloop.run(main)
