"""Smoke tests of the benchmark harness (bench/): its arithmetic and one real tiny ingest run.

The full benchmark is ``python -m bench``; these only check that the harness measures what it
claims, in a few seconds.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from bench import ext_base, ext_naive, ingest
from bench.__main__ import summary_line, targets
from bench.latency import join
from data_collector.simulator import PERSONALITIES, Quote, pairs_for

SUMMARY_RE = re.compile(
    r"^ingest_ratio_vs_ccxt=(\S+) frames_per_cpu_s=(\S+) writer_vs_raw_copy=(\S+) "
    r"tick_jitter_p99_ms=(\S+)$"
)


def test_join_pairs_each_update_with_its_send() -> None:
    sends = {
        "idx": np.array([0, 1, 0, 1]),
        "seq": np.array([10, 10, 11, 12]),
        "ns": np.array([100, 200, 300, 400]),
    }
    cache = {
        "p": np.array([1, 0, 1, 0]),
        "seq": np.array([12, 11, 10, 99]),  # the last one was never sent: left out
        "recv": np.array([450, 320, 230, 999]),
        "done": np.array([460, 330, 240, 1000]),
    }
    j = join(sends, cache)
    assert j["send"].tolist() == [400, 300, 200]
    assert (j["done"] - j["send"]).tolist() == [60, 30, 40]


def test_summary_line_takes_the_weaker_venue_and_shows_missing_sides_as_nan() -> None:
    figures = {
        "1.ratio_gateio": 12.34,
        "1.ratio_mexc": 9.87,
        "1.ratio_binance": 11.0,
        "1.ratio_okx": 10.5,
        "1.ratio_bybit": 15.0,
        "1.ours_gateio": 250_000.4,
        "1.ours_mexc": 180_000.6,
        "1.ours_binance": 280_000.0,
        "1.ours_okx": 190_000.0,
        "1.ours_bybit": 200_000.0,
        "3.ratio_4000": 0.91,
        "3.ratio_20000": 1.05,
        "4.lateness_p99": 1.234,
    }
    match = SUMMARY_RE.match(summary_line(figures))
    assert match is not None
    assert match.groups() == ("9.9", "180001", "0.91", "1.23")
    figures["1.ratio_okx"] = math.nan  # ccxt unavailable
    assert summary_line(figures).startswith("ingest_ratio_vs_ccxt=nan ")


def test_targets_are_reported_met_missed_or_not_applicable() -> None:
    figures = {"1.ratio_gateio": 11.0, "1.ratio_mexc": 3.0, "1.ratio_bybit": 10.0}
    rows = {row[0]: row[2] for row in targets(figures)}
    assert rows["Gate: frames/CPU-s >= 10x ccxt"] == "met"
    assert rows["MEXC: frames/CPU-s >= 10x ccxt"] == "missed"
    assert rows["Bybit: frames/CPU-s >= 10x ccxt"] == "met"
    assert rows["OKX: frames/CPU-s >= 10x ccxt"] == "n/a"
    assert rows["scale: no missed snapshot"] == "n/a"


@pytest.mark.timeout(60)
async def test_ingest_run_of_this_project_decodes_every_frame(tmp_path: Path) -> None:
    settings = ingest.IngestSettings(pairs=12, warmup_frames=300, frames=3_000, reps=2)
    run = await ingest.run_client("gateio", "ours", settings, str(tmp_path))
    assert run.error == ""
    assert run.complete
    assert run.sent == 300 + 2 * 3_000
    assert run.decoded == run.sent
    assert run.quotes_match
    assert len(run.rates) == 2 and all(rate > 1_000 for rate in run.rates)
    assert len(run.digest) == 8


@pytest.mark.parametrize("venue", ["gateio", "binance", "okx", "bybit"])
def test_the_naive_client_reads_the_simulators_book_tickers(venue: str) -> None:
    """The naive floor (bench/ext_naive.py) finds symbol, bid and ask in each JSON venue's
    push as the simulator encodes it, and takes a subscribe ack for no quote."""
    personality = PERSONALITIES[venue]()
    pair = pairs_for(1)[0]
    symbol = personality.symbol(pair)
    quote = Quote(bid="1.5", bid_qty="2", ask="1.6", ask_qty="3", sequence=7, time_ms=1)
    key = "orderbook.1." + symbol if venue == "bybit" else ""
    found = ext_naive.book_ticker(venue, json.loads(personality.encode_push(key, symbol, quote)))
    assert found is not None and found[0] == symbol
    assert ext_naive.bid_ask(venue, found[1]) == {"bid": "1.5", "ask": "1.6"}
    assert ext_base.split_symbol(venue, symbol) == (pair.base, pair.quote)
    ack = {"event": "subscribe", "result": {"status": "success"}, "id": 1, "success": True}
    assert ext_naive.book_ticker(venue, ack) is None
