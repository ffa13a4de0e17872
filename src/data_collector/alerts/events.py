"""The alert records that do not come from the analytics (those are
:class:`~data_collector.analytics.records.OpportunityOpened` and ``OpportunityClosed``).

A source of such events hands them to an :class:`AlertSink` with one call, e.g.
``alerts.publish(PairSilent("gateio", "BTC/USDT", 120.0))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from data_collector.analytics.records import OpportunityClosed, OpportunityOpened


@dataclass(frozen=True, slots=True)
class VenueDown:
    """A venue has had fewer connections up than it needs for a while."""

    exchange: str
    #: why its last connection was lost (the link's reason), or what is known instead
    reason: str
    connections_up: int
    connections_expected: int


@dataclass(frozen=True, slots=True)
class VenueUp:
    """Every connection of a venue reported down is up again."""

    exchange: str
    down_s: float


@dataclass(frozen=True, slots=True)
class PairSilent:
    """A pair sent no update on one venue for ``silent_s`` seconds while its connection was up."""

    exchange: str
    symbol: str
    silent_s: float


AlertRecord = OpportunityOpened | OpportunityClosed | VenueDown | VenueUp | PairSilent


class AlertSink(Protocol):
    """Takes alert records on the event loop; never blocks."""

    def publish(self, record: AlertRecord) -> None: ...
