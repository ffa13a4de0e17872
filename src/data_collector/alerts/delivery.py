"""Delivery to one target: a bounded queue, one worker, a timeout per send, retries with
backoff, and bursts coalesced into digests.

Nothing here blocks the event loop: :meth:`TargetDelivery.enqueue` is an append, and the
worker awaits the target's sender thread. When the queue is full the oldest undelivered alert
is dropped and counted. At most ``handful`` messages go to a target per ``window_s``; what
queues up meanwhile goes out as one digest once the window allows (a batch that fits the room
left is sent alert by alert). Counters count alerts, so sent + failed + dropped + pending is
every alert the target was given.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from data_collector.alerts.messages import Alert, digest
from data_collector.alerts.sender import TargetSender
from data_collector.wording import plural

log = structlog.get_logger("data_collector.alerts")


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    #: one attempt to reach a target may take this long (its sockets are bounded by it too)
    send_timeout_s: float = 10.0
    #: attempts per message, waiting backoff_s, 2 * backoff_s, ... between them
    attempts: int = 3
    backoff_s: float = 2.0
    #: undelivered alerts held per target; beyond it the oldest are dropped
    queue_size: int = 100
    #: more messages than this to one target within window_s go out as one digest
    handful: int = 3
    window_s: float = 5.0


class TargetDelivery:
    """The queue and worker of one target."""

    def __init__(
        self,
        sender: TargetSender,
        *,
        label: str,
        shown: str,
        settings: DeliverySettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sender = sender
        #: the metric label (the scheme) and the way logs show the target (no secret)
        self.label = label
        self.shown = shown
        self.settings = settings
        self._clock = clock
        self.pending: deque[Alert] = deque()
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._wake = asyncio.Event()
        self._recent: deque[float] = deque()
        self._failing = False

    def enqueue(self, alert: Alert) -> None:
        if len(self.pending) >= self.settings.queue_size:
            self.pending.popleft()
            self.dropped += 1
        self.pending.append(alert)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.pending:
                room = await self._room()
                batch = list(self.pending)
                self.pending.clear()
                for message in batch if len(batch) <= room else [digest(batch)]:
                    await self._deliver(message)

    async def _room(self) -> int:
        """Wait until the window has room for a message; how many it has room for."""
        s = self.settings
        while True:
            now = self._clock()
            while self._recent and now - self._recent[0] >= s.window_s:
                self._recent.popleft()
            if len(self._recent) < s.handful:
                return s.handful - len(self._recent)
            await asyncio.sleep(self._recent[0] + s.window_s - now)

    async def _deliver(self, message: Alert) -> None:
        s = self.settings
        self._recent.append(self._clock())
        error: str | None = None
        for attempt in range(s.attempts):
            error = await self.sender.send(message)
            if error is None:
                self.sent += message.count
                self._succeeded(message)
                return
            if attempt + 1 < s.attempts:
                await asyncio.sleep(s.backoff_s * 2**attempt)
        self.failed += message.count
        self._failed(message, error or "unknown")

    def _succeeded(self, message: Alert) -> None:
        log.debug("alert_sent", target=self.shown, alert_event=message.event, count=message.count)
        if self._failing:
            self._failing = False
            log.info(
                "alert_target_recovered",
                target=self.shown,
                summary=f"[ALERTS] {self.shown} takes alerts again",
            )

    def _failed(self, message: Alert, error: str) -> None:
        first = not self._failing
        self._failing = True
        fields = {"target": self.shown, "alert_event": message.event, "count": message.count}
        if not first:  # said once per outage; the counter tells the rest
            log.debug("alert_not_delivered", **fields, error=error)
            return
        log.warning(
            "alert_target_failed",
            **fields,
            error=error,
            attempts=self.settings.attempts,
            summary=f"[ALERTS] Cannot deliver to {self.shown}: {error} "
            f"({plural(self.settings.attempts, 'attempt')}); will keep trying with the next alerts",
        )
