"""Counts for humans: ``1 pair``, ``2 pairs``, ``1 entry``, ``3 entries``."""

from __future__ import annotations


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``count`` and ``noun``, singular for exactly one; the plural adds ``s`` unless given."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {plural_form if plural_form is not None else noun + 's'}"
