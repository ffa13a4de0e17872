"""When a transport is rotated, from the venue's lifetime and the settings."""

from __future__ import annotations

from data_collector.connection.settings import ConnectionSettings, rotation_after


def test_rotation_after() -> None:
    s = ConnectionSettings(rotation_margin=600.0)
    assert rotation_after(86400.0, s) == 85800.0
    assert rotation_after(None, s) is None
    assert rotation_after(900.0, s) == 450.0  # margin beyond half the lifetime: half
    assert rotation_after(None, ConnectionSettings(max_lifetime_override=2.0)) == 2.0
