"""``--status`` against a running collector and real PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from pathlib import Path

import pytest

from data_collector.simulator import Simulator, pairs_for
from tests.helpers import REPO, make_config, running, wait_until
from tests.pg import PgDatabase


@pytest.mark.slow
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
