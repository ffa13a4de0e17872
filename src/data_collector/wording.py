"""Counts for humans: ``1 pair``, ``2 pairs``, ``1 entry``, ``3 entries``."""

from __future__ import annotations


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``count`` and ``noun``, singular for exactly one; the plural adds ``s`` unless given."""
    return f"{count} {noun_for(count, noun, plural_form)}"


def noun_for(count: int, noun: str, plural_form: str | None = None) -> str:
    """The noun alone, as :func:`plural` words it (for a count printed apart, in a column)."""
    if count == 1:
        return noun
    return plural_form if plural_form is not None else noun + "s"
