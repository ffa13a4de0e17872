"""``venue_down`` / ``venue_up`` from the feeds' connection counts, checked once per tick.

A venue is down once it has had fewer connections up than it needs for ``down_after_s`` (a
reconnect within that is routine, not a page), or, before it was ever up, for
``never_up_after_s`` (connecting at start-up may take a while). It is up again when every
connection is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from data_collector.alerts.events import AlertSink, VenueDown, VenueUp
from data_collector.cache import Snapshot
from data_collector.scheduler import TickStats

DOWN_AFTER_S = 3.0
NEVER_UP_AFTER_S = 30.0


@dataclass
class _Venue:
    ever_up: bool = False
    #: since when it has had fewer connections up than expected (None: it has them all)
    short_since: float | None = None
    #: whether venue_down was published for the current outage
    reported: bool = False


class VenueWatch:
    def __init__(
        self,
        sink: AlertSink,
        connections: Callable[[], Mapping[str, tuple[int, int]]],
        lost_reason: Callable[[str], str | None],
        *,
        down_after_s: float = DOWN_AFTER_S,
        never_up_after_s: float = NEVER_UP_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._connections = connections
        self._lost_reason = lost_reason
        self.down_after_s = down_after_s
        self.never_up_after_s = never_up_after_s
        self._clock = clock
        self._venues: dict[str, _Venue] = {}

    def after_tick(self, _snap: Snapshot, _stats: TickStats) -> None:
        """A scheduler observer."""
        self.check()

    def check(self) -> None:
        now = self._clock()
        for venue, (up, expected) in self._connections().items():
            state = self._venues.setdefault(venue, _Venue())
            if up >= expected:  # no links at all (every pair rejected) is not an outage
                self._up(venue, state, now)
            else:
                self._short(venue, state, now, up, expected)

    def _up(self, venue: str, state: _Venue, now: float) -> None:
        state.ever_up = True
        if state.reported and state.short_since is not None:
            self._sink.publish(VenueUp(venue, now - state.short_since))
        state.short_since = None
        state.reported = False

    def _short(self, venue: str, state: _Venue, now: float, up: int, expected: int) -> None:
        if state.short_since is None:
            state.short_since = now
        grace = self.down_after_s if state.ever_up else self.never_up_after_s
        if state.reported or now - state.short_since < grace:
            return
        state.reported = True
        reason = self._lost_reason(venue) if state.ever_up else None
        reason = reason or ("never connected" if not state.ever_up else "connection lost")
        self._sink.publish(VenueDown(venue, reason, up, expected))
