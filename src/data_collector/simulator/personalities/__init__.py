"""The simulated venues: one module per venue, each ending with ``PERSONALITY = <its class>``.

Adding a venue is adding its module here; :data:`PERSONALITIES` finds it. Modules whose name
starts with an underscore are helpers shared by venues and are skipped.
"""

from __future__ import annotations

import importlib
import pkgutil

from data_collector.simulator.personality import Personality


def discover(package: str = __name__) -> dict[str, type[Personality]]:
    """Venue name -> personality class of every venue module in ``package``, by module name."""
    found: dict[str, type[Personality]] = {}
    modules = pkgutil.iter_modules(importlib.import_module(package).__path__)
    for info in sorted(modules, key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        personality = getattr(module, "PERSONALITY", None)
        if not (isinstance(personality, type) and issubclass(personality, Personality)):
            raise TypeError(f"{module.__name__} must define PERSONALITY = <a Personality class>")
        if personality.name in found:
            raise TypeError(f"two simulator personalities are named {personality.name!r}")
        found[personality.name] = personality
    return found


#: venue name -> personality class
PERSONALITIES: dict[str, type[Personality]] = discover()
