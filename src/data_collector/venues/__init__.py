"""Venue registry: one pure protocol module per exchange."""

from __future__ import annotations

from data_collector.venues.base import Venue
from data_collector.venues.gateio import GateIO
from data_collector.venues.mexc import Mexc

VENUES: dict[str, Venue] = {venue.name: venue for venue in (Mexc(), GateIO())}


def get_venue(name: str) -> Venue:
    return VENUES[name]
