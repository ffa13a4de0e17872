"""Background tasks whose end is never silent: how each way of ending is told apart."""

from __future__ import annotations

import asyncio
import math

from data_collector.lifecycle import TaskFailure, TaskSupervisor, describe, watched
from tests.helpers import Log, events, wait_until


async def forever() -> None:
    await asyncio.Event().wait()


async def overflows() -> None:
    """What ``snapshot_interval: .inf`` did to the analytics loop's wall-clock arithmetic."""
    await asyncio.sleep(0)
    math.floor(math.inf / 1.0)


async def gets_a_cancelled_result() -> None:
    """A consumer reading a future some other part cancelled: CancelledError from inside."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.cancel()
    await asyncio.sleep(0)
    future.result()


async def returns() -> None:
    await asyncio.sleep(0)


async def test_an_essential_task_that_raises_is_a_failure_that_asks_to_stop(logs: Log) -> None:
    stopped: list[TaskFailure] = []
    tasks = TaskSupervisor(on_failure=stopped.append)
    tasks.start(overflows(), "analytics")
    await wait_until(lambda: stopped, 5, what="the failure")
    failure = TaskFailure("analytics", "OverflowError: cannot convert float infinity to integer")
    assert stopped == tasks.failures == [failure]
    assert str(failure) == (
        "task analytics crashed (OverflowError: cannot convert float infinity to integer)"
    )
    [line] = events(logs, "task_crashed")
    assert (line["log_level"], line["task"], line["essential"]) == ("error", "analytics", True)
    assert line["summary"] == (
        "Task analytics crashed (OverflowError: cannot convert float infinity to integer): "
        "stopping the collector"
    )
    assert isinstance(line["exc_info"], OverflowError)  # the traceback is logged too
    await tasks.cancel_all()


async def test_a_cancelled_error_raised_inside_is_a_crash_not_a_cancellation(logs: Log) -> None:
    stopped: list[TaskFailure] = []
    tasks = TaskSupervisor(on_failure=stopped.append)
    task = tasks.start(gets_a_cancelled_result(), "snapshot-scheduler")
    await wait_until(task.done, 5, what="the task to end")
    assert task.cancelled()  # asyncio itself calls it cancelled: that is what hid it
    assert stopped == [TaskFailure("snapshot-scheduler", "CancelledError")]
    [line] = events(logs, "task_crashed")
    assert isinstance(line["exc_info"], asyncio.CancelledError)
    assert line["exc_info"].__traceback__ is not None  # where it was raised, not where read


async def test_an_essential_loop_that_returns_has_failed(logs: Log) -> None:
    stopped: list[TaskFailure] = []
    tasks = TaskSupervisor(on_failure=stopped.append)
    tasks.start(returns(), "analytics")
    await wait_until(lambda: stopped, 5, what="the failure")
    assert stopped == [
        TaskFailure("analytics", "returned, but it must run as long as the collector")
    ]


async def test_cancelling_at_shutdown_and_one_shot_tasks_are_no_failure(logs: Log) -> None:
    stopped: list[TaskFailure] = []
    tasks = TaskSupervisor(on_failure=stopped.append)
    done = tasks.start(returns(), "subscribe-report", essential=False)
    tasks.start(forever(), "snapshot-scheduler")
    await wait_until(done.done, 5, what="the one-shot task")
    await tasks.cancel_all()
    assert stopped == tasks.failures == []
    assert events(logs, "task_crashed") == []


async def test_a_one_shot_task_that_raises_is_logged_and_stops_nothing(logs: Log) -> None:
    stopped: list[TaskFailure] = []
    tasks = TaskSupervisor(on_failure=stopped.append)
    task = tasks.start(overflows(), "subscribe-report", essential=False)
    await wait_until(task.done, 5, what="the task to end")
    assert stopped == tasks.failures == []
    [line] = events(logs, "task_crashed")
    assert (line["log_level"], line["essential"]) == ("error", False)
    assert line["summary"].endswith("; collection goes on")


async def test_an_adopted_task_crashes_as_ours_and_may_end_once_the_shutdown_began(
    logs: Log,
) -> None:
    stopped: list[TaskFailure] = []
    tasks = TaskSupervisor(on_failure=stopped.append)
    owned = asyncio.Event()

    async def writer_loop() -> None:  # ends when its owner closes it
        await owned.wait()

    tasks.adopt(asyncio.create_task(overflows(), name="writer-snapshots"))
    await wait_until(lambda: stopped, 5, what="the failure")
    assert [f.task for f in stopped] == ["writer-snapshots"]

    loop_task = asyncio.create_task(writer_loop(), name="spiller-snapshots")
    tasks.adopt(loop_task)
    await tasks.cancel_all()  # the shutdown: the adopted loop is left to its owner
    assert not loop_task.done()
    owned.set()
    await loop_task  # resumes after the supervisor's callback, registered first, has run
    assert len(tasks.failures) == 1


async def test_a_watched_task_logs_a_cancelled_error_of_its_own(logs: Log) -> None:
    task = watched(gets_a_cancelled_result(), "demo-gaps")
    await wait_until(task.done, 5, what="the task to end")
    [line] = events(logs, "task_crashed")
    assert (line["task"], line["error"]) == ("demo-gaps", "CancelledError")


def test_describe_names_the_type_and_the_message_if_any() -> None:
    assert describe(TimeoutError()) == "TimeoutError"
    assert describe(ValueError("bad value")) == "ValueError: bad value"
    assert describe("returned") == "returned"
