"""Venue registry: one pure protocol module per exchange, found by name, and the only list of
them.

Every module of this package (``base`` and subpackages such as ``proto`` aside) is a venue and
ends with ``VENUE = <its Venue class>``; :data:`VENUES` holds one instance of each, in the
order of the module names. Configuration defaults and validation, the CLI help, ``--simulate``
and the connection layer's policies all derive from it, so adding a venue is adding its module
(with its simulator personality, fixtures and tests) and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil

from data_collector.venues.base import Venue

#: modules of this package that are not venues
NOT_VENUES = frozenset({"base"})


def discover(package: str = __name__) -> dict[str, Venue]:
    """Venue name -> instance of every venue module in ``package``, by module name."""
    found: dict[str, Venue] = {}
    modules = pkgutil.iter_modules(importlib.import_module(package).__path__)
    for info in sorted(modules, key=lambda m: m.name):
        if info.ispkg or info.name.startswith("_") or info.name in NOT_VENUES:
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        cls = getattr(module, "VENUE", None)
        if not (isinstance(cls, type) and issubclass(cls, Venue)):
            raise TypeError(f"{module.__name__} must define VENUE = <a Venue class>")
        venue = cls()
        if venue.name in found:
            raise TypeError(f"two venue modules are named {venue.name!r}")
        found[venue.name] = venue
    return found


VENUES: dict[str, Venue] = discover()


def get_venue(name: str) -> Venue:
    return VENUES[name]


def venue_names() -> tuple[str, ...]:
    """Every registered venue's config name, in registry order."""
    return tuple(VENUES)
