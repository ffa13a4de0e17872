"""The monitoring server: served from a hand-built view, and live in a running collector
against the simulator and real PostgreSQL."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from aiohttp import web

from data_collector.cache import VenueStats
from data_collector.monitoring.health import HealthRules, health
from data_collector.monitoring.server import MonitoringServer
from data_collector.scheduler import TickStats
from data_collector.simulator import Simulator, pairs_for
from tests.helpers import make_config, running, wait_for_ticks, wait_until
from tests.monitoring.helpers import Clock, get, sample, sources
from tests.pg import PgDatabase, PgProxy

REQUIRED_METRICS = (
    "collector_frames_total",
    "collector_parse_errors_total",
    "collector_dropped_updates_total",
    "collector_reconnects_total",
    "collector_connections_up",
    "collector_quote_age_seconds_bucket",
    "collector_snapshot_rows_total",
    "collector_snapshot_duration_seconds_bucket",
    "collector_snapshots_missed_total",
    "collector_writer_backlog_rows",
    "collector_rows_spilled_total",
    "collector_arbitrage_opportunities_open",
    "collector_alerts_dropped_total",
)


async def test_health_and_metrics_are_served_from_the_providers() -> None:
    ticks = TickStats()
    ticks.ticks = 4
    clock = Clock()
    view = sources({"mexc": VenueStats(frames=9)}, {"mexc": (1, 1)}, ticks=ticks, clock=clock)
    rules = HealthRules(silence_timeout=30.0, snapshot_interval=1.0)

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="dashboard")

    server = MonitoringServer(view, rules, "127.0.0.1", 0, extra_routes=[web.get("/", hello)])
    await server.start()
    try:
        assert server.port != 0
        status, _, body = await get(f"{server.url}/health")
        assert (status, body) == health(view.read(), rules)
        assert status == 503 and body["reasons"] == [
            "mexc: no message yet",
            "last snapshot none yet",
        ]
        status, text, _ = await get(f"{server.url}/metrics")
        assert status == 200
        for name in REQUIRED_METRICS:
            assert re.search(rf"^{name}[{{ ]", text, re.MULTILINE), name
        assert sample(text, "collector_frames_total", exchange="mexc") == 9
        assert sample(text, "collector_snapshots_total") == 4
        assert (await get(f"{server.url}/"))[:2] == (200, "dashboard")
    finally:
        await server.stop()


async def test_a_busy_port_raises_and_leaves_nothing_listening() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        view = sources({}, {})
        server = MonitoringServer(view, HealthRules(30.0, 1.0), "127.0.0.1", busy.getsockname()[1])
        with pytest.raises(OSError):
            await server.start()
        await server.stop()  # nothing left to clean up: a no-op


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_counters_move_and_health_follows_a_venue_outage(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    pairs = pairs_for(3)
    async with Simulator(pairs, rate_hz=5) as sim:
        config = make_config(tmp_path, sim, pairs, pg_database.dsn)
        async with running(config) as collector:
            assert collector.monitoring is not None
            base = collector.monitoring.url
            await wait_until(collector.manager.flowing, 15, what="feeds flowing")
            await wait_for_ticks(collector, 2)
            _, first, _ = await get(f"{base}/metrics")
            for name in REQUIRED_METRICS:
                assert re.search(rf"^{name}[{{ ]", first, re.MULTILINE), name

            async def frames_grew() -> bool:
                _, text, _ = await get(f"{base}/metrics")
                return all(
                    sample(text, "collector_frames_total", exchange=v)
                    > sample(first, "collector_frames_total", exchange=v)
                    for v in ("mexc", "gateio")
                )

            await wait_until(frames_grew, 10, what="frame counters to grow")
            assert sample(first, "collector_connections_up", exchange="mexc") == 1
            assert sample(first, "collector_snapshot_rows_total") >= 6
            assert sample(first, "collector_quote_age_seconds_count", exchange="gateio") > 0
            status, _, body = await get(f"{base}/health")
            assert status == 200 and body is not None and body["status"] == "ok", body

            gate = sim.venues["gateio"]
            await gate.stop()  # the venue goes away: connection refused until it is back

            async def unhealthy() -> bool:
                status, _, body = await get(f"{base}/health")
                return status == 503 and any("gateio" in r for r in body["reasons"])

            await wait_until(unhealthy, 15, what="/health 503 naming gateio")
            _, text, _ = await get(f"{base}/metrics")
            assert sample(text, "collector_connections_up", exchange="gateio") == 0
            assert sample(text, "collector_connections_up", exchange="mexc") == 1

            await gate.start()

            async def healthy() -> bool:
                status, _, _ = await get(f"{base}/health")
                return status == 200

            await wait_until(healthy, 20, what="/health back to 200")
            _, text, _ = await get(f"{base}/metrics")
            assert sample(text, "collector_reconnects_total", exchange="gateio") >= 1


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_database_outage_grows_the_backlog_and_shows_in_health(
    tmp_path: Path, pg_database: PgDatabase, pg_proxy: PgProxy
) -> None:
    pairs = pairs_for(2)
    async with Simulator(pairs, rate_hz=5) as sim:
        config = make_config(tmp_path, sim, pairs, pg_proxy.dsn(pg_database.name))
        async with running(config) as collector:
            assert collector.monitoring is not None
            base = collector.monitoring.url
            await wait_until(collector.manager.flowing, 15, what="feeds flowing")
            await wait_for_ticks(collector, 1)
            pg_proxy.refuse()

            async def backlog() -> float:
                _, text, _ = await get(f"{base}/metrics")
                return sample(text, "collector_writer_backlog_rows")

            async def backlog_at_least(n: float) -> bool:
                return await backlog() >= n

            await wait_until(lambda: backlog_at_least(4), 15, what="backlog to build")
            grown = await backlog()
            await wait_for_ticks(collector, 2)
            assert await backlog() > grown  # still growing while the database is down
            _, _, body = await get(f"{base}/health")
            assert body is not None
            assert body["database"]["state"] == "down"
            assert body["database"]["backlog_rows"] > 0
            pg_proxy.resume()

            async def drained() -> bool:
                return await backlog() == 0

            await wait_until(drained, 30, what="backlog to drain")
            _, _, body = await get(f"{base}/health")
            assert body is not None and body["database"]["state"] == "up"
