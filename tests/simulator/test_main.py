"""``python -m data_collector.simulator`` (__main__.py) as a real subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from data_collector.simulator import PERSONALITIES
from tests.simulator.clients import connect, gate_subscribe, is_update_for


async def test_cli_prints_urls_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "data_collector.simulator",
        "--pairs",
        "2",
        "--rate",
        "50",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        urls = {}
        while len(urls) < len(PERSONALITIES):  # every simulated venue by default
            line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
            name, _, url = line.strip().partition(": ")
            if url.startswith("ws://"):
                urls[name] = url
        client = await connect(urls["gateio"])
        gate_subscribe(client, "ETH_USDT")
        await client.until(is_update_for("ETH_USDT"))
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
