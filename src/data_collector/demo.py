"""``--simulate``: the venues served by the built-in simulator, with a price gap now and then
so that arbitrage alerts can be seen."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from data_collector.lifecycle import Cleanup, cancel_all, watched
from data_collector.pairs import Pair

if TYPE_CHECKING:
    from data_collector.simulator import Simulator

log = structlog.get_logger("data_collector.collector")


async def start_simulator(
    pairs: list[Pair], exchanges: list[str], cleanups: list[Cleanup]
) -> dict[str, str]:
    """Serve ``exchanges`` locally; returns each venue's WebSocket URL."""
    from data_collector.simulator import Simulator

    sim = Simulator(pairs, venues=tuple(exchanges))
    await sim.start()
    cleanups.append(sim.stop)
    task = watched(demo_gaps(sim, pairs), "demo-gaps")
    cleanups.append(lambda: cancel_all([task]))
    log.info("simulator_started", urls=sim.urls, summary=f"Venue simulator serving {sim.urls}")
    return dict(sim.urls)


async def demo_gaps(
    sim: Simulator, pairs: list[Pair], every: float = 25.0, hold: float = 6.0
) -> None:
    """Open a cross-venue gap on one pair now and then, for ``hold`` seconds."""
    if not {"mexc", "gateio"} <= sim.venues.keys():
        return
    buy, sell = sim.venues["mexc"], sim.venues["gateio"]
    for i in range(1_000_000):
        await asyncio.sleep(every / 2 if i == 0 else every)
        pair = pairs[i % len(pairs)]
        last = buy.last_sent(pair)
        if last is None:
            continue
        bid = float(last["ask"]) * 1.07  # 7 % above MEXC's ask: 6.75 % net of both fees
        sell.set_quote(pair, f"{bid:.6g}", "2.5", f"{bid * 1.0002:.6g}", "3.1", hold=True)
        await asyncio.sleep(hold)
        sell.release(pair)
