"""What the comparison clients share (run in ``bench/.venv-ccxt``; stdlib and bench.proto only).

The measurement commands (``arm``, ``await``, ``count``, ``sample``) and the helpers every
comparison client uses: the shard rule, symbol splitting and a counter of stored updates.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.proto import cpu_seconds, peak_rss_mb, wait_for_count

#: quote currencies the bench's pairs use, longest match first where it matters
QUOTES = ("USDT", "USDC", "BTC", "ETH")


def chunks(items: list[str], cap: int) -> list[list[str]]:
    """Fewest near-equal chunks of at most ``cap`` (the project's shard rule)."""
    count = max(1, -(-len(items) // cap))
    size, extra = divmod(len(items), count)
    out, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def split_symbol(venue: str, symbol: str) -> tuple[str, str]:
    """``BTC_USDT`` (Gate), ``BTC-USDT`` (OKX), ``BTCUSDT`` (the others) -> (base, quote)."""
    separator = {"gateio": "_", "okx": "-"}.get(venue)
    if separator is not None:
        base, _, quote = symbol.partition(separator)
        return base, quote
    for quote in QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"cannot split {symbol}")


class Counter:
    def __init__(self) -> None:
        self.updates = 0


class Base:
    """Shared measurement commands; subclasses fill ``counter`` and ``sample``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.venue = args.venue
        self.symbols: list[str] = args.symbols.split(",")
        self.counter = Counter()
        self.cpu0 = 0.0
        self.count0 = 0
        self.t0 = 0.0
        self.tasks: list[asyncio.Task[Any]] = []
        self.errors: list[str] = []

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def sample(self, symbol: str) -> dict[str, Any] | None:
        raise NotImplementedError

    async def handle(self, c: dict[str, Any]) -> dict[str, Any]:
        cmd = c["cmd"]
        if cmd == "arm":
            self.count0, self.cpu0 = self.counter.updates, cpu_seconds()
            self.t0 = time.perf_counter()
            return {}
        if cmd == "await":
            return await self._await(int(c["n"]), float(c.get("timeout", 60)))
        if cmd == "count":
            return {
                "updates": self.counter.updates,
                "cpu": cpu_seconds(),
                "rss_mb": peak_rss_mb(),
                "errors": self.errors[:5],
            }
        if cmd == "sample":
            return {"quotes": {s: self.sample(s) for s in c["symbols"]}}
        raise ValueError(f"unknown command {cmd!r}")

    async def _await(self, n: int, timeout: float) -> dict[str, Any]:
        counter = self.counter
        await wait_for_count(lambda: counter.updates, self.count0 + n, timeout)
        cpu, wall = cpu_seconds() - self.cpu0, time.perf_counter() - self.t0
        got = counter.updates - self.count0
        return {"frames": got, "cpu": cpu, "wall": wall, "complete": got >= n}

    def _keep(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        task.add_done_callback(self._note_failure)
        self.tasks.append(task)

    def _note_failure(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(repr(task.exception()))
