"""``--simulate``: the venues served by the built-in simulator, with a price gap now and then
so that arbitrage alerts can be seen."""

from __future__ import annotations

import asyncio
import itertools
import random
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
    log.info(
        "simulator_started",
        urls=sim.urls,
        summary=f"Venue simulator serving {', '.join(sim.urls)}; a planted price gap every "
        f"{DEMO_EVERY_S:g} s",
    )
    return dict(sim.urls)


#: the planted gap: the sell venue's bid this far above the buy venue's ask, more than any two
#: venues' taker fees together (each is below 0.1 by the config's rules, 0.2 % in practice)
DEMO_GAP = 0.07
#: seconds between two planted gaps
DEMO_EVERY_S = 25.0


async def demo_gaps(
    sim: Simulator,
    pairs: list[Pair],
    every: float = DEMO_EVERY_S,
    hold: float = 6.0,
    rng: random.Random | None = None,
) -> None:
    """Now and then, for ``hold`` seconds, quote one pair on a random venue well above its ask
    on another random venue: a cross-venue gap the analytics report."""
    names = sorted(sim.venues)
    if len(names) < 2 or not pairs:
        return
    rng = rng or random.Random()
    for i in itertools.count():
        await asyncio.sleep(every / 2 if i == 0 else every)
        pair = pairs[i % len(pairs)]
        buy_name, sell_name = rng.sample(names, 2)
        last = sim.venues[buy_name].last_sent(pair)
        if last is None or not last["ask"]:
            continue
        bid = float(last["ask"]) * (1 + DEMO_GAP)
        sell = sim.venues[sell_name]
        sell.set_quote(pair, f"{bid:.6g}", "2.5", f"{bid * 1.0002:.6g}", "3.1", hold=True)
        log.info(
            "demo_gap",
            symbol=str(pair),
            buy_exchange=buy_name,
            sell_exchange=sell_name,
            summary=f"Demo: {pair} quoted {DEMO_GAP:.0%} above {buy_name}'s ask on {sell_name}",
        )
        await asyncio.sleep(hold)
        sell.release(pair)
