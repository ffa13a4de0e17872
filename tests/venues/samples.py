"""The byte-exact venue frames in ``tests/fixtures/<venue>/``, for the venue tests."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
#: what a fixture file may hold: a binary (``.bin``) or a text (``.json``) frame
SUFFIXES = (".bin", ".json")


def load(venue: str, name: str) -> bytes:
    """One frame of ``venue``, exactly as stored."""
    return (FIXTURES / venue / name).read_bytes()


def frames(venue: str) -> dict[str, bytes]:
    """Every frame of ``venue`` by file name (empty when the venue has no fixture folder)."""
    folder = FIXTURES / venue
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in SUFFIXES}


def all_frames() -> list[bytes]:
    """Every frame of every venue, sorted: seeds for mutation fuzzing."""
    return sorted(p.read_bytes() for p in FIXTURES.glob("*/*") if p.suffix in SUFFIXES)
