"""``--status`` as a user runs it: the report alone on stdout, and what answers on the port."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from tests.cli_process import RUN_PY, cli_env, write_config


async def run_status(config: Path, *args: str) -> tuple[int, str, str]:
    """``run.py --status`` without blocking this loop (it may be serving the port)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, RUN_PY, "--config", str(config), "--status", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=config.parent, env=cli_env(),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@asynccontextmanager
async def other_program(status: int, body: str, content_type: str) -> AsyncIterator[int]:
    """Another program's web server on a free port, answering every /health like this."""

    async def answer(_request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type=content_type)

    app = web.Application()
    app.router.add_get("/health", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (404, "<html><body><h1>Grafana: page not found</h1></body></html>", "text/html"),
        (200, json.dumps({"status": "pass", "checks": {}}), "application/json"),
    ],
)
async def test_status_says_plainly_when_another_program_owns_the_monitoring_port(
    tmp_path: Path, status: int, body: str, content_type: str
) -> None:
    async with other_program(status, body, content_type) as port:
        config = write_config(tmp_path, f"monitoring: {{port: {port}}}\n")
        code, out, _err = await run_status(config)
    assert code == 0
    assert f"another program answers there (HTTP {status}, {content_type})" in out
    assert "Grafana" not in out and "checks" not in out  # its body is not ours to print


async def test_a_report_is_alone_on_stdout_and_its_log_lines_go_to_stderr(
    tmp_path: Path,
) -> None:
    # a config warning is a log line written while the report runs
    config = write_config(
        tmp_path,
        "data_collector: {analytics: {arbitrage_threshold: 0.6}}\nmonitoring: {port: 1}\n",
    )
    code, out, err = await run_status(config, "--log-format", "json")
    assert code == 0
    assert out.startswith("cex-arb-collector ") and "Running collector:" in out
    assert "config_warning" not in out and "hardly ever fire" not in out
    [warning] = [json.loads(line) for line in err.splitlines()]
    assert warning["event"] == "config_warning"
    assert warning["key"] == "data_collector.analytics.arbitrage_threshold"


async def test_a_report_that_cannot_be_written_exits_1_with_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, "monitoring: {port: 1}\n")
    with open("/dev/full", "wb") as full:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, RUN_PY, "--config", str(config), "--status",
            stdout=full, stderr=asyncio.subprocess.PIPE, cwd=tmp_path, env=cli_env(),
        )  # fmt: skip
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    [line] = err.decode().splitlines()
    assert line.endswith("Cannot write the report: No space left on device"), line
