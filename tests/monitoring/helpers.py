"""Hand-built collector views for the monitoring tests: no PostgreSQL, venues or simulator."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp

from data_collector.cache import VenueStats
from data_collector.monitoring.sources import (
    CollectorStatus,
    DatabaseStatus,
    MonitoringSources,
    ServerCounters,
    VenueStatus,
    WriterCounters,
)
from data_collector.scheduler import TickStats

#: 2026-09-21T14:13:20Z, a whole second
NOW_NS = 1_790_000_000 * 10**9


class Clock:
    """A clock the test sets by hand (nanoseconds since the epoch)."""

    def __init__(self, now_ns: int = NOW_NS) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


def venue(
    up: int = 1,
    expected: int = 1,
    age_s: float | None = 0.5,
    silent: tuple[str, ...] = (),
    **counters: int,
) -> VenueStatus:
    """A venue's status whose last message came ``age_s`` before NOW_NS (None: never), with
    ``silent`` pairs."""
    last = 0 if age_s is None else NOW_NS - int(age_s * 1e9)
    return VenueStatus(up, expected, VenueStats(last_message_ns=last, **counters), silent)


def status(**overrides: Any) -> CollectorStatus:
    """A healthy collector at NOW_NS unless ``overrides`` say otherwise."""
    fields: dict[str, Any] = {
        "now_ns": NOW_NS,
        "venues": {"mexc": venue(), "gateio": venue()},
        "ticks": 10,
        "missed": 0,
        "rows": 40,
        "last_tick_time": datetime.fromtimestamp(NOW_NS / 1e9 - 1, UTC),
        "database": DatabaseStatus("up", 0, 40, 0, None),
        "open_opportunities": 0,
    }
    return CollectorStatus(**(fields | overrides))


def sources(
    stats: Mapping[str, VenueStats],
    connections: Mapping[str, tuple[int, int]],
    *,
    ticks: TickStats | None = None,
    database: WriterCounters | None = None,
    open_opportunities: int = 0,
    silent_pairs: Mapping[str, list[str]] | None = None,
    clock: Clock | None = None,
    crashed_tasks: Mapping[str, str] | None = None,
    database_server: ServerCounters | None = None,
) -> MonitoringSources:
    return MonitoringSources(
        venue_stats=stats,
        connections=lambda: connections,
        ticks=ticks if ticks is not None else TickStats(),
        database=lambda: database,
        open_opportunities=lambda: open_opportunities,
        silent_pairs=lambda: silent_pairs or {},
        clock_ns=clock if clock is not None else Clock(),
        crashed_tasks=lambda: crashed_tasks or {},
        database_server=lambda: database_server,
    )


async def get(url: str) -> tuple[int, str, dict | None]:
    """(HTTP status, body text, JSON body or None)."""
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        text = await resp.text()
        body = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, text, body


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample in exposition text."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)"
    match = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    assert match, f"{name} {labels} not in /metrics"
    return float(match.group(1))
