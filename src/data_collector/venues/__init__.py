"""Venue registry: one pure protocol module per exchange, and the only list of them.

Configuration defaults and validation, the CLI help, ``--simulate`` and the README's venue
table all derive from :data:`VENUES`; adding a venue means adding its module here.
"""

from __future__ import annotations

from data_collector.venues.base import Venue
from data_collector.venues.binance import Binance
from data_collector.venues.bybit import Bybit
from data_collector.venues.gateio import GateIO
from data_collector.venues.mexc import Mexc
from data_collector.venues.okx import Okx

VENUES: dict[str, Venue] = {
    venue.name: venue for venue in (Mexc(), GateIO(), Binance(), Okx(), Bybit())
}


def get_venue(name: str) -> Venue:
    return VENUES[name]


def venue_names() -> tuple[str, ...]:
    """Every registered venue's config name, in registry order."""
    return tuple(VENUES)
