"""One daemon thread per target, running apprise's blocking calls off the event loop.

apprise 2.x also has ``async_notify``, but it prepares each call on the event loop and runs
the sends in one pool shared by the whole process, where a hung service holds a thread. Here
everything apprise does (loading its plugins, formatting, the HTTP or SMTP exchange) runs in
the target's own thread; the event loop only awaits a future, for at most the send timeout.
The thread is a daemon so that a send stuck past its socket timeouts never holds up the
process's exit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any

from data_collector.alerts.messages import Alert
from data_collector.alerts.targets import load_target

_STOP = object()


class TargetSender:
    """Sends to one target URL from its own thread; :meth:`send` is awaited on the loop."""

    def __init__(self, url: str, name: str, timeout_s: float) -> None:
        self._url = url
        self.timeout_s = timeout_s
        self._apprise: Any = None
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=f"alerts-{name}", daemon=True)
        self._thread.start()

    async def send(self, alert: Alert) -> str | None:
        """Deliver ``alert``; None on success, else why not (never the URL or its secret)."""
        future: concurrent.futures.Future[str | None] = concurrent.futures.Future()
        self._jobs.put((self._deliver, alert, future))
        try:
            # The socket timeouts bound the thread's work; this bounds the wait for it.
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s + 1.0)
        except TimeoutError:
            return f"no answer within {self.timeout_s:g}s"

    def close(self) -> None:
        self._jobs.put(_STOP)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not _STOP:
            run, alert, future = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(run(alert))
                except Exception as exc:  # a plugin bug: report its kind, never its text
                    future.set_result(f"apprise failed ({type(exc).__name__})")

    def _deliver(self, alert: Alert) -> str | None:
        if self._apprise is None:  # loaded here, in the thread: the first load takes ~0.4 s
            self._apprise = load_target(self._url, self.timeout_s)
            if self._apprise is None:
                return "apprise does not recognise the URL"
        ok = self._apprise.notify(body=alert.body, title=alert.title, notify_type=alert.kind)
        return None if ok else "the service refused the message or could not be reached"


SenderFactory = Callable[[str, str, float], TargetSender]
