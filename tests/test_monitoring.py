"""/metrics and /health of a running collector, against the simulator and real PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from data_collector.simulator import Simulator, pairs_for
from tests.helpers import REPO, make_config, running, wait_for_ticks, wait_until
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
)


async def get(url: str) -> tuple[int, str, dict | None]:
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


@pytest.mark.timeout(90)
async def test_status_shows_rows_per_venue_and_the_running_collectors_health(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    with socket.socket() as probe:  # a free port for the collector's monitoring endpoint
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pairs = pairs_for(2)
    async with Simulator(pairs, rate_hz=5) as sim:
        config = make_config(tmp_path, sim, pairs, pg_database.dsn, monitoring_port=str(port))
        async with running(config) as collector:
            await wait_until(collector.manager.flowing, 15, what="feeds flowing")
            await wait_until(lambda: collector.writer.stats.rows_written >= 8, 15)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(REPO / "run.py"), "--config", str(tmp_path / "config.yaml"),
                "--status",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
            )  # fmt: skip
            out, err = await asyncio.wait_for(proc.communicate(), 30)
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    assert "reachable:   yes" in text
    assert re.search(r"^\s+mexc\s+\d+ rows, latest 20\d\d-", text, re.MULTILINE), text
    assert re.search(r"^\s+gateio\s+\d+ rows, latest 20\d\d-", text, re.MULTILINE), text
    assert f"http://127.0.0.1:{port}/health: HTTP 200" in text
    assert '"status": "ok"' in text
