"""asyncpg connections and pools with the project's session settings."""

from __future__ import annotations

from typing import Any

import asyncpg

#: every session works in UTC, so a naive timestamp can never be read in local time
SERVER_SETTINGS = {"timezone": "UTC", "application_name": "cex-arb-collector"}


def server_settings(application_name: str | None = None) -> dict[str, str]:
    settings = dict(SERVER_SETTINGS)
    if application_name:
        settings["application_name"] = application_name
    return settings


async def connect(
    dsn: str,
    *,
    timeout: float = 5.0,
    command_timeout: float | None = None,
    application_name: str | None = None,
) -> asyncpg.Connection:
    """One connection; ``timeout`` bounds the connect, ``command_timeout`` each statement."""
    return await asyncpg.connect(
        dsn,
        timeout=timeout,
        command_timeout=command_timeout,
        server_settings=server_settings(application_name),
    )


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 4,
    timeout: float = 5.0,
    **kwargs: Any,
) -> asyncpg.Pool:
    """A pool whose connections each connect within ``timeout`` seconds.

    Extra keyword arguments go to :func:`asyncpg.create_pool` (e.g. ``command_timeout``).
    """
    kwargs.setdefault("server_settings", server_settings())
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, timeout=timeout, **kwargs
    )
    assert pool is not None
    return pool
