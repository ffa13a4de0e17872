"""Shared random-walk prices that every simulated venue quotes around.

One mid price per pair, moved lazily by a multiplicative Brownian step scaled to the time since it
was last read, so the cost is paid per quote, not per pair per tick. Both venues read the same
mid, so cross-venue price differences stay tiny (well under 0.5%) unless a test injects a quote.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Sequence

from data_collector.pairs import Pair

MIN_START_PRICE = 0.5
MAX_START_PRICE = 50_000.0
#: relative standard deviation of the mid per sqrt(second)
DEFAULT_VOLATILITY = 2e-4


#: rough USDT prices of well-known bases, so the demo's numbers look like a real market
REFERENCE_PRICES = {
    "BTC": 80_000.0, "ETH": 3_000.0, "SOL": 150.0, "XRP": 2.2, "DOGE": 0.18, "ADA": 0.7,
    "TRX": 0.25, "LINK": 15.0, "AVAX": 25.0, "DOT": 5.0, "LTC": 90.0, "BCH": 450.0,
    "UNI": 8.0, "ATOM": 5.0, "ETC": 20.0, "FIL": 3.0, "NEAR": 3.0, "APT": 6.0, "ARB": 0.4,
    "OP": 0.8, "BNB": 600.0, "TON": 3.0, "SHIB": 0.000012, "PEPE": 0.00001,
}  # fmt: skip


def start_price(pair: Pair) -> float:
    """The reference price of a well-known USDT pair, else a deterministic log-uniform start
    price in [0.5, 50000) derived from the pair name."""
    if pair.quote == "USDT" and pair.base in REFERENCE_PRICES:
        return REFERENCE_PRICES[pair.base]
    digest = hashlib.blake2b(str(pair).encode(), digest_size=8).digest()
    unit = int.from_bytes(digest, "big") / 2**64
    low, high = math.log(MIN_START_PRICE), math.log(MAX_START_PRICE)
    return math.exp(low + unit * (high - low))


def price_decimals(price: float) -> int:
    """About seven significant digits, like real spot books (BTC 2 decimals, ~1.0 6 decimals)."""
    return min(8, max(0, 6 - math.floor(math.log10(price))))


def qty_decimals(price: float) -> int:
    """Expensive assets trade in finer quantity steps (BTC 6 decimals, ~1.0 2 decimals)."""
    return min(8, max(0, math.floor(math.log10(price)) + 2))


def format_units(units: int, decimals: int) -> str:
    """``units`` of ``10**-decimals`` as an exact decimal string (no float rounding artefacts)."""
    if decimals == 0:
        return str(units)
    digits = str(units).rjust(decimals + 1, "0")
    return f"{digits[:-decimals]}.{digits[-decimals:]}"


def format_qty(units: int, decimals: int) -> str:
    """Like :func:`format_units` but without trailing zeros, as venues print amounts."""
    text = format_units(units, decimals)
    return text.rstrip("0").rstrip(".") if decimals else text


class Market:
    """Mid prices of ``pairs`` plus the precision each pair is quoted with."""

    def __init__(
        self,
        pairs: Sequence[Pair],
        *,
        seed: int = 1,
        volatility: float = DEFAULT_VOLATILITY,
    ) -> None:
        self.pairs: list[Pair] = list(pairs)
        self.volatility = volatility
        self._rng = random.Random(seed)
        # log-normal notionals (median ~8,100 quote units, ~2 % under 1,000), drawn once:
        # rng.random() picks one
        self._notionals = [math.exp(self._rng.gauss(9.0, 1.0)) for _ in range(1024)]
        self._index = {pair: i for i, pair in enumerate(self.pairs)}
        self._mid = [start_price(pair) for pair in self.pairs]
        self._price_dec = [price_decimals(p) for p in self._mid]
        self._qty_dec = [qty_decimals(p) for p in self._mid]
        now = time.monotonic()
        self._updated = [now] * len(self.pairs)
        #: seconds the virtual clock advances per quote (0: the walk follows monotonic time)
        self._virtual_step = 0.0
        self._virtual_now = 0.0

    def __len__(self) -> int:
        return len(self.pairs)

    def index(self, pair: Pair) -> int:
        """Position of ``pair``; KeyError if the market does not list it."""
        return self._index[pair]

    def use_virtual_clock(self, step: float = 0.001) -> None:
        """Drive the walk by a clock that advances ``step`` seconds per quote instead of by
        monotonic time, so the same seed and the same requests give the same quotes in every
        run (the benchmarks compare clients on identical frames)."""
        if step <= 0:
            raise ValueError(f"virtual clock step must be > 0, got {step}")
        self._virtual_step, self._virtual_now = step, 0.0
        self._updated = [0.0] * len(self.pairs)

    def mid(self, idx: int, now: float | None = None) -> float:
        """The mid of pair ``idx`` at monotonic time ``now``, advancing the walk to it."""
        if self._virtual_step:
            self._virtual_now += self._virtual_step
            now = self._virtual_now
        elif now is None:
            now = time.monotonic()
        elapsed = now - self._updated[idx]
        if elapsed > 0.0:
            step = self._rng.gauss(0.0, self.volatility * math.sqrt(elapsed))
            self._mid[idx] *= math.exp(step)
            self._updated[idx] = now
        return self._mid[idx]

    def price_decimals(self, idx: int) -> int:
        return self._price_dec[idx]

    def qty_decimals(self, idx: int) -> int:
        return self._qty_dec[idx]

    def quote(
        self, idx: int, rng: random.Random, *, bias: float = 0.0, now: float | None = None
    ) -> tuple[str, str, str, str]:
        """A fresh (bid, bid_qty, ask, ask_qty) around the mid, shifted by relative ``bias``.

        The spread is 1-3 ticks (a few millionths of the price) and quantities are worth a
        log-normal notional around 1100 quote units, so every venue's book looks alive.
        """
        mid = self.mid(idx, now)
        pdec, qdec = self._price_dec[idx], self._qty_dec[idx]
        center = mid * (1.0 + bias) * 10**pdec
        draw = rng.random
        bid = max(1, math.floor(center - draw()))
        ask = bid + 1 + int(draw() * 3)
        qty_scale = 10**qdec / mid
        notionals = self._notionals
        bid_qty = max(1, int(notionals[int(draw() * 1024)] * qty_scale))
        ask_qty = max(1, int(notionals[int(draw() * 1024)] * qty_scale))
        return (
            format_units(bid, pdec),
            format_qty(bid_qty, qdec),
            format_units(ask, pdec),
            format_qty(ask_qty, qdec),
        )
