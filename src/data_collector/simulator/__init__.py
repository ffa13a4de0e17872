"""Local stand-ins for the exchanges: WebSocket servers speaking MEXC spot v3 and Gate.io v4.

Used by the tests, the offline demo (``run.py --simulate``) and the benchmarks. Both venues quote
around one shared random-walk mid per pair (:class:`Market`), so there is never a cross-venue
arbitrage above 0.5% unless a test injects one with :meth:`VenueServer.set_quote`.

    async with Simulator(pairs_for(35), rate_hz=10) as sim:
        sim.urls  # {"mexc": "ws://127.0.0.1:<port>/ws", "gateio": "ws://127.0.0.1:<port>/ws/v4/"}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from data_collector.pairs import Pair
from data_collector.simulator.market import Market
from data_collector.simulator.personalities import PERSONALITIES
from data_collector.simulator.personality import Personality, VenueControl
from data_collector.simulator.server import VenueServer
from data_collector.simulator.session import ClientSession, Quote

__all__ = [
    "DEFAULT_PAIRS",
    "PERSONALITIES",
    "ClientSession",
    "Market",
    "Personality",
    "Quote",
    "Simulator",
    "VenueControl",
    "VenueServer",
    "pairs_for",
]

#: liquid USDT pairs listed on both MEXC and Gate.io, most liquid first
DEFAULT_PAIRS: list[Pair] = [
    Pair(base, "USDT")
    for base in (
        *("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "TRX", "LINK", "AVAX", "DOT"),
        *("LTC", "BCH", "TON", "SHIB", "UNI", "NEAR", "APT", "ARB", "OP", "ATOM"),
        *("FIL", "ETC", "XLM", "HBAR", "SUI", "PEPE", "INJ", "AAVE", "ICP", "SEI"),
        *("TIA", "WLD", "ALGO", "VET", "CRV", "SAND", "MANA", "AXS", "FET", "GRT"),
    )
]


def pairs_for(n: int) -> list[Pair]:
    """The first ``n`` of :data:`DEFAULT_PAIRS`, then synthetic ``T001/USDT``, ``T002/USDT``..."""
    if n < 0:
        raise ValueError(f"pair count must be >= 0, got {n}")
    pairs = DEFAULT_PAIRS[:n]
    pairs += [Pair(f"T{i:03d}", "USDT") for i in range(1, n - len(pairs) + 1)]
    return pairs


class Simulator:
    """Both simulated venues on loopback, sharing one :class:`Market`.

    ``venue_options`` passes keyword arguments to a venue's personality, e.g.
    ``{"mexc": {"no_subscription_timeout": 0.5, "idle_timeout": 1.0}}``.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        *,
        rate_hz: float = 5.0,
        seed: int = 1,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        venues: Sequence[str] = ("mexc", "gateio"),
        venue_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        unknown = set(venues) - PERSONALITIES.keys()
        if unknown:
            choices = list(PERSONALITIES)
            raise ValueError(f"unknown venue(s) {sorted(unknown)}; choose from {choices}")
        self.market = Market(pairs, seed=seed)
        ports = ports or {}
        options = venue_options or {}
        self.venues: dict[str, VenueServer] = {
            name: VenueServer(
                PERSONALITIES[name](**options.get(name, {})),
                self.market,
                host=host,
                port=ports.get(name, 0),
                rate_hz=rate_hz,
                seed=seed,
            )
            for name in venues
        }

    @property
    def urls(self) -> dict[str, str]:
        return {name: venue.url for name, venue in self.venues.items()}

    async def start(self) -> None:
        started: list[VenueServer] = []
        try:
            for venue in self.venues.values():
                await venue.start()
                started.append(venue)
        except BaseException:
            for venue in started:
                await venue.stop()
            raise

    async def stop(self) -> None:
        for venue in self.venues.values():
            await venue.stop()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
