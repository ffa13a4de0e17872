"""Every registered venue end to end: the simulator speaking each venue's protocol (and
enforcing its limits the venue's way) -> the collector -> snapshots.

Two runs share their assertions to stay fast: one stores every tick in PostgreSQL with a
rejected pair on each venue, a silent pair, Bybit's repeats and restart, and planted gaps; the
other goes through planned restarts (OKX ``64008``, Binance ``serverShutdown``, Gate
``upgrade``), lifetime rotations and a reconnect, and checks that no second is missed and that
no venue's message limits are ever crossed."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from data_collector.collector import Collector
from data_collector.pairs import Pair
from data_collector.simulator import PERSONALITIES, Simulator, pairs_for
from data_collector.venues import VENUES
from tests.helpers import Log, events, make_config, running, wait_for_ticks, wait_until

#: every registered venue (a registry test makes sure each has a simulator personality)
NAMES = [name for name in VENUES if name in PERSONALITIES]
#: the venues that announce planned restarts, and the reason their notice parses to
NOTICES = {"binance": "serverShutdown", "okx": "notice 64008", "gateio": "upgrade"}
RESTARTING = [name for name in NOTICES if name in NAMES]
FAST = (
    "{silence_timeout: 5, pong_timeout: 3, reconnect_initial_delay: 0.1, "
    "reconnect_max_delay: 0.5, max_reconnects_per_minute: 100, subscribe_timeout: 5, "
    "pair_silence_timeout: 2%s}"
)
NO_DATABASE = "postgresql://unused@127.0.0.1:1/unused"


class TickLog:
    """A sink beside the writer: rows per venue of each tick, as the scheduler made them."""

    def __init__(self) -> None:
        self.rows: dict[datetime, Counter[str]] = {}

    def __call__(self, rows: list[tuple[Any, ...]]) -> None:
        for row in rows:
            self.rows.setdefault(row[7], Counter())[row[0]] += 1

    def complete(self, expected: dict[str, int]) -> list[datetime]:
        """Ticks on which every venue stored exactly its expected number of pairs."""
        return sorted(
            t for t, c in self.rows.items() if all(c[v] == n for v, n in expected.items())
        )

    def since(self, start: datetime) -> dict[datetime, Counter[str]]:
        return {t: c for t, c in sorted(self.rows.items()) if t >= start}


def _message_rate_closures(logs: Log) -> Log:
    return events(logs, "simulator_closing_session", reason="message_rate")


@pytest.mark.timeout(120)
async def test_planned_restarts_and_rotations_miss_no_second_within_every_budget(
    tmp_path: Path,
) -> None:
    pairs = pairs_for(12)
    options: dict[str, dict[str, Any]] = {}
    if "binance" in NAMES:  # server pings every 0.5 s: pongs count against 5 messages a second
        options["binance"] = {"ping_interval": 0.5, "pong_timeout": 3.0}
    async with Simulator(pairs, rate_hz=4, venues=NAMES, venue_options=options) as sim:
        # every connection is also replaced every 4 s, make-before-break
        connection = FAST % ", max_lifetime_override: 4"
        config = make_config(tmp_path, sim, pairs, NO_DATABASE, connection=connection)
        ticks = TickLog()
        full = {name: len(pairs) for name in NAMES}
        with capture_logs() as logs:
            async with running(config, dry_run=True) as collector:
                collector.scheduler.add_sink(ticks)
                await wait_until(collector.manager.flowing, 20, what="every venue flowing")
                await wait_until(lambda: len(ticks.complete(full)) >= 2, 10, what="full ticks")
                start = ticks.complete(full)[0]
                for name in RESTARTING:
                    assert sim.venues[name].send_restart_notice(close_after=1.5) >= 1
                await wait_until(
                    lambda: len(events(logs, "venue_restart_notice")) >= len(RESTARTING),
                    what="every notice heeded",
                )
                await wait_until(
                    lambda: sum(link.rotations for link in _links(collector)) >= 2 * len(NAMES),
                    20,
                    what="restart rotations and lifetime rotations on every venue",
                )
                await wait_for_ticks(collector, 2)
                window = ticks.since(start)
                await _reconnect_binance(sim, collector)
    missed = {t: dict(c) for t, c in window.items() if any(c[v] != n for v, n in full.items())}
    assert not missed, f"ticks missing quotes: {missed}"
    assert len(window) >= 5
    reasons = {e["exchange"]: e["reason"] for e in events(logs, "venue_restart_notice")}
    assert reasons == {name: NOTICES[name] for name in RESTARTING}
    assert _message_rate_closures(logs) == [], "a venue closed a connection over its budget"
    assert events(logs, "simulator_closing_session", reason="pong_timeout") == []


def _links(collector: Collector) -> list[Any]:
    return [f.link for vf in collector.manager.venue_feeds.values() for f in vf.links if f.link]


async def _reconnect_binance(sim: Simulator, collector: Collector) -> None:
    """Drop every Binance connection: the collector reconnects and re-subscribes, pongs and
    all, within the budget; its pings were answered all along."""
    if "binance" not in NAMES:
        return
    stats = collector.cache.stats["binance"]
    before = stats.reconnects
    sim.venues["binance"].disconnect_all()
    await wait_until(lambda: stats.reconnects > before, what="binance reconnected")
    await wait_until(collector.manager.flowing, 10, what="binance flowing again")
    answered = sum(
        f.link.pings_answered for f in collector.manager.venue_feeds["binance"].links if f.link
    )
    assert answered > 0


def _pair_of(pairs: list[Pair], symbol: str) -> Pair:
    return next(p for p in pairs if str(p) == symbol)
