"""Pairs and the shared random walk (market.py, the package's pair list)."""

from __future__ import annotations

import random

import pytest

from data_collector.pairs import Pair
from data_collector.simulator import DEFAULT_PAIRS, pairs_for
from data_collector.simulator.market import Market, format_qty, format_units, start_price
from tests.simulator.clients import BTC, ETH, SOL


def test_pairs_and_market_are_deterministic() -> None:
    assert DEFAULT_PAIRS[:3] == [BTC, ETH, SOL]
    pairs = pairs_for(len(DEFAULT_PAIRS) + 2)
    assert pairs[-2:] == [Pair("T001", "USDT"), Pair("T002", "USDT")]
    assert len(set(pairs)) == len(pairs)
    assert start_price(BTC) == 80_000.0  # well-known pairs start at a realistic price
    unknown = [pair for pair in pairs if pair.base.startswith("T0")]
    assert all(0.5 <= start_price(pair) < 50_000 for pair in unknown)
    assert Market(pairs).mid(0, 0.0) == Market(pairs).mid(0, 0.0)
    assert format_units(5, 3) == "0.005" and format_units(123456, 2) == "1234.56"
    assert format_qty(1200, 4) == "0.12" and format_qty(30000, 4) == "3"


def test_a_virtual_clock_makes_the_walk_independent_of_time() -> None:
    pairs = pairs_for(3)
    runs = []
    for now in (5.0, 5000.0):
        market = Market(pairs, seed=4)
        market.use_virtual_clock(0.001)
        rng = random.Random(9)
        runs.append([market.quote(k % 3, rng, now=now + k) for k in range(50)])
    assert runs[0] == runs[1]
    assert len({quote[0] for quote in runs[0]}) > 3  # it still moves
    with pytest.raises(ValueError, match="step must be > 0"):
        Market(pairs).use_virtual_clock(0)
