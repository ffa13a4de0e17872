"""Helpers shared by test modules: polling with a deadline, picking captured log events, and a
whole collector run in the test's event loop against the simulator. Test modules import these
from here, never from one another or from conftest."""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from data_collector.analytics.records import (
    OpportunityClosed,
    OpportunityOpened,
    RecordConsumer,
    Summary,
)
from data_collector.cache import QuoteCache
from data_collector.collector import Collector
from data_collector.config import Config, load_config
from data_collector.connection import ConnectionSettings
from data_collector.manager import FeedManager
from data_collector.pairs import Pair
from data_collector.simulator import Simulator
from data_collector.venues import get_venue

REPO = Path(__file__).resolve().parents[1]
MEXC_FEE, GATE_FEE = 0.0005, 0.002

#: a DSN for dry runs: never used, and it would fail at once if anything tried it
NO_DB = "postgresql://nobody@127.0.0.1:1/none"

#: log events captured by structlog.testing.capture_logs (the ``logs`` fixture)
Log = list[dict[str, Any]]


async def wait_until(
    predicate: Callable[[], object | Awaitable[object]],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> None:
    """Poll ``predicate`` (sync or async) until it is truthy; fail the test after ``timeout``
    seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def events(logs: Log, name: str, **match: Any) -> Log:
    """The captured log events called ``name`` whose fields include ``match``."""
    return [e for e in logs if e["event"] == name and all(e.get(k) == v for k, v in match.items())]


#: the tests' taker fees where they differ from the venue modules' defaults
TEST_FEES = {"mexc": MEXC_FEE, "gateio": GATE_FEE}
DEFAULT_CONNECTION = (
    "{silence_timeout: 5, pong_timeout: 3, reconnect_initial_delay: 0.1, reconnect_max_delay: 0.5}"
)


def make_config(
    tmp_path: Path, sim: Simulator, pairs: list[Pair], dsn: str, **extra: str
) -> Config:
    """A collector config for every venue the simulator serves (written to
    ``tmp_path/config.yaml``). ``extra`` may set ``analytics_interval``, ``monitoring_port``,
    ``buffer_max_rows`` and, as YAML flow mappings, ``connection``, ``analytics`` and
    ``alerts``."""
    symbols = ", ".join(f'"{p}"' for p in pairs)
    exchanges = "\n".join(
        f'  {name}: {{websocket_url: "{url}"'
        + (f", taker_fee: {TEST_FEES[name]}" if name in TEST_FEES else "")
        + "}"
        for name, url in sim.urls.items()
    )
    text = f"""
data_collector:
  snapshot_interval: 1
  analytics_interval: {extra.get("analytics_interval", 10)}
  exchanges: [{", ".join(sim.urls)}]
  symbols: [{symbols}]
  data_dir: "{tmp_path / "data"}"
  connection: {extra.get("connection", DEFAULT_CONNECTION)}
  analytics: {extra.get("analytics", "{}")}
exchanges:
{exchanges}
database: {{dsn: "{dsn}", buffer_max_rows: {extra.get("buffer_max_rows", 0)}}}
monitoring: {{enabled: true, host: "127.0.0.1", port: {extra.get("monitoring_port", 0)}}}
alerts: {extra.get("alerts", "{}")}
"""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(path, env={})


async def plant_gap(sim: Simulator, pair: Pair, above: float = 1.08) -> str:
    """Hold Gate.io's bid for ``pair`` ``above`` times MEXC's last ask (1.08: about 7.75 % net
    of both default fees) until ``sim.venues["gateio"].release(pair)``; returns that bid.
    Waits for MEXC's first quote of ``pair`` (a flowing feed may not have sent it yet)."""
    mexc = sim.venues["mexc"]
    await wait_until(lambda: mexc.last_sent(pair) is not None, what=f"MEXC quoting {pair}")
    last = mexc.last_sent(pair)
    assert last is not None
    ask = float(last["ask"])
    bid = f"{ask * above:.6g}"
    sim.venues["gateio"].set_quote(pair, bid, "2.5", f"{ask * above * 1.001:.6g}", "3", hold=True)
    return bid


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


@asynccontextmanager
async def running(config: Config, *, dry_run: bool = False) -> AsyncIterator[Collector]:
    """Run a collector in this event loop; shut it down (as on SIGTERM) on exit."""
    collector = Collector(config, dry_run=dry_run)
    try:
        async with asyncio.timeout(30):
            assert await collector.start(), "collector did not start"
        yield collector
    finally:
        collector.stop()
        async with asyncio.timeout(15):
            await collector.close()


@asynccontextmanager
async def feeds(
    sim: Simulator, pairs: list[Pair], settings: ConnectionSettings
) -> AsyncIterator[FeedManager]:
    """A started FeedManager on a fresh QuoteCache (``manager.cache``) for every venue the
    running simulator serves; stopped on exit."""
    cache = QuoteCache(tuple(sim.venues), pairs)
    venues = {name: (get_venue(name), url) for name, url in sim.urls.items()}
    manager = FeedManager(cache, venues, pairs, settings)
    await manager.start()
    try:
        yield manager
    finally:
        await manager.stop()


async def wait_for_ticks(collector: Collector, n: int, timeout: float = 15) -> None:
    target = collector.scheduler.stats.ticks + n
    await wait_until(lambda: collector.scheduler.stats.ticks >= target, timeout, what=f"{n} ticks")


async def fetch(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


class KeepRecords(RecordConsumer):
    """An analytics subscriber that keeps every record it is given, in order (as a ledger or
    an alert sender would)."""

    def __init__(self) -> None:
        self.records: list[object] = []

    def opened(self, record: OpportunityOpened) -> None:
        self.records.append(record)

    def closed(self, record: OpportunityClosed) -> None:
        self.records.append(record)

    def summary(self, record: Summary) -> None:
        self.records.append(record)
