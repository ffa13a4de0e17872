"""Which alerts go out: the enabled events, ``min_net_pct`` and ``cooldown_s``.

An opening (an opportunity, a venue going down) starts a cooldown on its key: the same pair
and venue pair (or venue, or venue and pair) alerts again only ``cooldown_s`` later. Its
ending (the close, the venue back up) is sent only when the opening got through, so a reader
never sees a close without its open. Pure apart from the injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from data_collector.alerts.events import AlertRecord, VenueDown, VenueUp
from data_collector.alerts.messages import Alert
from data_collector.analytics.records import OpportunityClosed, OpportunityOpened

#: records that start something a later record ends, and those endings
_OPENINGS = (OpportunityOpened, VenueDown)
_ENDINGS = (OpportunityClosed, VenueUp)


class AlertPolicy:
    def __init__(
        self,
        events: Iterable[str],
        *,
        min_net_pct: float,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.events = frozenset(events)
        self.min_net_pct = min_net_pct
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._last: dict[tuple[str, ...], float] = {}
        #: keys whose opening got through and whose ending is still to come
        self._started: set[tuple[str, ...]] = set()

    def admit(self, record: AlertRecord, alert: Alert) -> bool:
        """Whether ``alert`` (the wording of ``record``) is to be sent now."""
        key = alert.key
        if isinstance(record, _ENDINGS):
            if key not in self._started:
                return False
            self._started.discard(key)
            return alert.event in self.events
        if isinstance(record, OpportunityOpened) and record.net_pct < self.min_net_pct:
            return False
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.cooldown_s:
            return False
        self._last[key] = now
        if isinstance(record, _OPENINGS):
            self._started.add(key)
        return alert.event in self.events
