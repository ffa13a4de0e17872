"""Pacing one transport's control messages inside its venue's :class:`ControlBudget`.

Every control message a transport sends (subscribe requests, application pings, the pongs it
answers protocol pings with) passes a :class:`Pacer`. A message the budget counts goes out at
once while the sliding window has room, else it waits in a queue drained by a timer; a message
the budget does not count (OKX counts only subscriptions; most venues do not count pongs)
always goes out at once.

Headroom: the pacer allows :func:`usable_messages` of the budget, about 80 % (Binance's 5 a
second -> 4), because the venue counts arrivals, not sends: network jitter can bunch messages
sent just inside the window. Pongs jump the queue: a pong counted against the budget waits at
most one window (Binance: 1 s, against a minute of patience), never behind a burst of
subscribe requests. Order is otherwise kept, so the messages of one subscribe burst arrive in
the order they were built.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections import deque
from collections.abc import Callable

from data_collector.venues.base import BudgetScope, ControlBudget

#: share of a venue's budget the pacer uses (the rest absorbs jitter between send and arrival)
BUDGET_SHARE = 0.8
_TIMER_SLACK = 0.001


class MessageKind(enum.Enum):
    """What a control message is, which decides whether a budget counts it."""

    #: a subscribe or unsubscribe request
    SUBSCRIPTION = "subscription"
    #: an application-level ping (a text frame)
    PING = "ping"
    #: a protocol pong frame answering the server's ping
    PONG = "pong"


def usable_messages(budget: ControlBudget) -> int:
    """How many messages per window the pacer sends: ``BUDGET_SHARE`` of the budget, at
    least one."""
    return max(1, math.floor(budget.messages * BUDGET_SHARE))


def counts(budget: ControlBudget | None, kind: MessageKind) -> bool:
    """Whether ``budget`` counts a message of ``kind``."""
    if budget is None:
        return False
    if budget.scope is BudgetScope.SUBSCRIPTIONS:
        return kind is MessageKind.SUBSCRIPTION
    return kind is not MessageKind.PONG or budget.counts_pongs


Write = Callable[[MessageKind, bytes], None]


class Pacer:
    """The control-message budget of one transport (see the module documentation)."""

    def __init__(
        self,
        budget: ControlBudget | None,
        write: Write,
        clock: Callable[[], float],
    ) -> None:
        self._budget = budget
        self._write = write
        self._clock = clock
        self._limit = usable_messages(budget) if budget is not None else 0
        self._window = budget.per_seconds if budget is not None else 0.0
        self._counted = {kind: counts(budget, kind) for kind in MessageKind}
        #: send times of the counted messages within the current window
        self._sent: deque[float] = deque()
        self._queue: deque[tuple[MessageKind, bytes]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        #: counted messages sent so far (tests and diagnostics)
        self.sent_counted = 0

    def pending(self, kind: MessageKind) -> int:
        """Messages of ``kind`` waiting for room in the budget."""
        return sum(1 for k, _ in self._queue if k is kind)

    def send(self, kind: MessageKind, payload: bytes) -> None:
        """Send ``payload`` now if the budget allows, else queue it (pongs first)."""
        if self._closed:
            return
        if not self._counted[kind]:
            self._write(kind, payload)
            return
        if not self._queue and self._room(self._clock()):
            self._emit(kind, payload)
            return
        if kind is MessageKind.PONG:
            pongs = sum(1 for k, _ in self._queue if k is MessageKind.PONG)
            self._queue.insert(pongs, (kind, payload))
        else:
            self._queue.append((kind, payload))
        self._schedule()

    def close(self) -> None:
        """The transport is gone: drop what waits, stop the timer."""
        self._closed = True
        self._queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _room(self, now: float) -> bool:
        sent = self._sent
        while sent and now - sent[0] >= self._window:
            sent.popleft()
        return len(sent) < self._limit

    def _emit(self, kind: MessageKind, payload: bytes) -> None:
        self._sent.append(self._clock())
        self.sent_counted += 1
        self._write(kind, payload)

    def _schedule(self) -> None:
        if self._timer is not None or not self._queue:
            return
        loop = asyncio.get_running_loop()
        if len(self._sent) >= self._limit:
            # a hair after the oldest send leaves the window (a timer may fire a little early)
            at = self._sent[0] + self._window + _TIMER_SLACK
        else:
            at = self._clock()
        # the clock is the loop's own (Link passes loop.time), so its times schedule directly
        self._timer = loop.call_at(at, self._drain)

    def _drain(self) -> None:
        self._timer = None
        if self._closed:
            return
        while self._queue and self._room(self._clock()):
            kind, payload = self._queue.popleft()
            self._emit(kind, payload)
        self._schedule()
