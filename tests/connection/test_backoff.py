"""Reconnect pacing: capped exponential backoff with full jitter, the per-minute attempt cap,
a link's streak of failures, and a venue's connection-attempt budget shared by its links."""

from __future__ import annotations

import asyncio
import random

import pytest
from structlog.testing import capture_logs

from data_collector.connection.backoff import (
    STABLE_AFTER,
    AttemptLimiter,
    Backoff,
    ConnectGate,
    backoff_delay,
)
from data_collector.connection.settings import ConnectionSettings
from data_collector.venues.base import ConnectBudget


def test_backoff_has_full_jitter_within_capped_bounds() -> None:
    rng = random.Random(7)
    for attempt in range(12):
        ceiling = min(5.0, 0.1 * 2**attempt)
        samples = [backoff_delay(attempt, 0.1, 5.0, rng) for _ in range(400)]
        assert all(0.0 <= s <= ceiling for s in samples)
        # full jitter: spread over the whole [0, ceiling] range, not clustered at the top
        assert min(samples) < 0.1 * ceiling
        assert max(samples) > 0.9 * ceiling
    assert backoff_delay(100_000, 0.1, 5.0, rng) <= 5.0  # no float overflow


def test_attempt_limiter_slides_over_one_minute() -> None:
    lim = AttemptLimiter(3, window=60.0)
    for t in (0.0, 1.0, 2.0):
        assert lim.wait_time(t) == 0.0
        lim.record(t)
    assert lim.wait_time(10.0) == pytest.approx(50.0)  # oldest attempt leaves at t=60
    assert lim.wait_time(60.0) == 0.0
    lim.record(60.0)
    assert lim.wait_time(60.5) == pytest.approx(0.5)  # t=1 leaves at 61
    assert AttemptLimiter(0).limit == 1  # never unlimited


def test_streak_grows_the_ceiling_until_a_stable_connection_is_lost() -> None:
    settings = ConnectionSettings(reconnect_initial_delay=1.0, reconnect_max_delay=1000.0)
    # a generator whose uniform() always returns the top of the range shows the ceilings
    top = random.Random()
    top.uniform = lambda _a, b: b  # type: ignore[method-assign]
    backoff = Backoff("test-0", settings, top)
    assert [backoff.next_delay() for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    backoff.lost_after(STABLE_AFTER - 1.0)  # flapping: the streak goes on
    assert backoff.next_delay() == 16.0
    backoff.lost_after(STABLE_AFTER)
    assert backoff.next_delay() == 1.0


def test_throttle_records_attempts_and_logs_the_wait() -> None:
    backoff = Backoff("test-0", ConnectionSettings(max_reconnects_per_minute=2), random.Random())
    with capture_logs() as logs:
        assert backoff.throttle(0.0) == 0.0
        assert backoff.throttle(1.0) == 0.0
        assert backoff.throttle(2.0) == pytest.approx(58.0)  # not recorded: still two
        assert backoff.throttle(60.5) == 0.0
    throttled = [e for e in logs if e["event"] == "reconnect_throttled"]
    assert len(throttled) == 1
    assert throttled[0]["link"] == "test-0" and throttled[0]["limit"] == 2
    assert throttled[0]["wait"] == 58.0


async def test_connect_gate_lets_through_its_share_of_the_budget_per_window() -> None:
    """OKX's 3 attempts a second, scaled to 0.3 s: two go at once (80 %), the third waits for
    the window to slide past the first."""
    gate = ConnectGate(ConnectBudget(attempts=3, per_seconds=0.3))
    loop = asyncio.get_running_loop()
    start = loop.time()
    times: list[float] = []

    async def attempt() -> None:
        await gate.wait_turn()
        times.append(loop.time() - start)

    await asyncio.gather(*(attempt() for _ in range(3)))
    assert times[1] < 0.1 and times[2] >= 0.3
