"""Smoke tests of the benchmark harness (bench/): its arithmetic and one real tiny ingest run.

The full benchmark is ``python -m bench``; these only check that the harness measures what it
claims, in a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from datetime import timedelta
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from bench import ext_base, ext_naive, hotpath, ingest, report_bench
from bench.__main__ import make_plan, section_of, summary_line, targets, with_section
from bench.latency import join
from bench.proto import wait_for_count
from data_collector.simulator import PERSONALITIES, Quote, pairs_for

SUMMARY_RE = re.compile(
    r"^ingest_ratio_vs_ccxt=(\S+) frames_per_cpu_s=(\S+) writer_vs_raw_copy=(\S+) "
    r"tick_jitter_p99_ms=(\S+) five_venues_cpu_pct=(\S+) five_venues_rows_missing=(\S+)$"
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
        "6.cpu_pct": 12.345,
        "6.rows_missing": 0,
    }
    match = SUMMARY_RE.match(summary_line(figures))
    assert match is not None
    assert match.groups() == ("9.9", "180001", "0.91", "1.23", "12.3", "0")
    figures["1.ratio_okx"] = math.nan  # ccxt unavailable
    assert summary_line(figures).startswith("ingest_ratio_vs_ccxt=nan ")


def test_the_quick_plan_is_a_smaller_full_plan_with_all_five_venues() -> None:
    quick, full = make_plan(quick=True), make_plan(quick=False)
    assert quick.ingest.venues == full.ingest.venues == ingest.VENUES
    assert quick.ingest.frames * quick.ingest.reps < full.ingest.frames * full.ingest.reps
    assert [s.case for s in quick.scales] == [6] and [s.case for s in full.scales] == [5, 6]
    assert len(quick.scales[0].venues) == 5 and not quick.dashboard.pairs


def test_targets_are_reported_met_missed_or_not_applicable() -> None:
    figures = {"1.ratio_gateio": 11.0, "1.ratio_mexc": 3.0, "1.ratio_bybit": 10.0}
    figures |= {"6.missed": 0, "6.rows_missing": 12}
    rows = {row[0]: row[2] for row in targets(figures)}
    assert rows["Gate: frames/CPU-s >= 10x ccxt"] == "met"
    assert rows["MEXC: frames/CPU-s >= 10x ccxt"] == "missed"
    assert rows["Bybit: frames/CPU-s >= 10x ccxt"] == "met"
    assert rows["OKX: frames/CPU-s >= 10x ccxt"] == "n/a"
    assert rows["scale, 2 venues: no missed snapshot"] == "n/a"
    assert rows["scale, 5 venues: no missed snapshot"] == "met"
    assert rows["scale, 5 venues: every expected row in the table"] == "missed"


async def test_waiting_for_a_count_looks_rarely_and_returns_once_it_is_reached() -> None:
    counter = looks = 0

    def count() -> int:
        nonlocal looks
        looks += 1
        return counter

    async def feed() -> None:
        nonlocal counter
        for _ in range(100):
            counter += 50
            await asyncio.sleep(0.002)

    task = asyncio.create_task(feed())
    await wait_for_count(count, 5_000, timeout=30)
    assert counter == 5_000  # returned once reached, not before
    assert looks < 60  # a look every 2 ms would be 100 or more
    await task
    looks = 0
    await wait_for_count(count, 5_001, timeout=0.1)  # never reached: the timeout ends it
    assert 1 <= looks < 20


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


async def test_hotpath_feeds_every_venues_flood_frames_into_the_cache_at_every_stage() -> None:
    """bench.hotpath: each venue's flood frames (MEXC's binary protobuf ones too) reach the
    cache as accepted updates in every block of the stages that go that far."""
    runs = await hotpath.measure(list(PERSONALITIES), frames=150, rounds=2, pairs=7)
    assert [r.venue for r in runs] == list(PERSONALITIES)
    for r in runs:
        assert r.accepted == r.fed == 2 * 150 * 2, r.venue
        assert all(len(r.ns[stage]) == 2 for stage in hotpath.STAGES)
        assert all(ns > 0 for stage in hotpath.STAGES for ns in r.ns[stage])
        assert r.frame_bytes > 50
    assert "NOT every frame" not in hotpath.report(runs)


def test_the_report_case_owns_its_section_of_results() -> None:
    text = "# Benchmark results\n\n## 6. other\n\nbody\n"
    once = with_section(text, "## 9. report\n\nfirst")
    assert once.startswith(text.rstrip()) and "first" in section_of(once)
    storage = "\n<!-- storage:begin -->\n## 7.\n<!-- storage:end -->\n"
    twice = with_section(once + storage, "## 9. x")
    assert "first" not in twice and twice.count("<!-- report:begin -->") == 1
    assert "## 6. other" in twice and twice.endswith("<!-- storage:end -->\n")
    assert section_of("no markers") == ""


@pytest.mark.timeout(60)
async def test_the_report_case_fills_realistic_rows_and_explains_each_statement(
    pg_database,
) -> None:
    from db.migrations import apply_migrations
    from db.partitions import daily_name
    from db.report_model import ReportQuery
    from db.report_queries import fetch_report

    conn = await asyncpg.connect(pg_database.dsn)
    try:
        await apply_migrations(conn)
        indexes = "SELECT indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY 1"
        before = await conn.fetch(indexes, "book_ticker_snapshots")
        settings = report_bench.ReportSettings(pairs=3, hours=1, opportunities=10)
        filled = await report_bench.fill(pg_database.dsn, settings, lambda _message: None)
        assert filled["rows"] == 3 * 2 * 3600
        assert await conn.fetch(indexes, "book_ticker_snapshots") == before
        # the day has its own partition, and its indexes
        day = daily_name("book_ticker_snapshots", report_bench.DAY.date())
        assert len(await conn.fetch(indexes, day)) == len(before)
        assert await conn.fetchval(f"SELECT count(*) FROM {day}") == filled["rows"]
        assert await conn.fetchval(
            "SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid = $1::regclass", day
        )
        prices = await conn.fetch(
            "SELECT DISTINCT ON (symbol_base) symbol_base, bid_price::text AS bid,"
            " ask_price::text AS ask, bid_qty::text AS qty FROM book_ticker_snapshots"
        )
        assert {p["symbol_base"] for p in prices} == {"BTC", "ETH", "SOL"}
        for p in prices:  # the pair's own decimals, as a venue writes them
            decimals = len(p["bid"].split(".")[1])
            assert decimals >= 2 and len(p["ask"].split(".")[1]) == decimals
            assert 0 < float(p["bid"]) < float(p["ask"]) and len(p["qty"].split(".")[1]) == 3
        assert await conn.fetchval("SELECT count(*) FROM arbitrage_opportunities") == 10
    finally:
        await conn.close()
    trace: list = []
    query = ReportQuery(report_bench.DAY, report_bench.DAY + timedelta(hours=1))
    report = await fetch_report(pg_database.dsn, query, trace=trace)
    assert report.rows == 3 * 2 * 3600
    plans = await report_bench.explain(pg_database.dsn, trace)
    assert [name for name, _ms, _plan in plans] == [
        "venue_coverage", "spreads", "mid_differences", "opportunities",
    ]  # fmt: skip
    assert all("book_ticker_snapshots" in plan for _n, _ms, plan in plans[:3])


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


def test_the_recording_case_replaces_only_its_own_section(tmp_path: Path) -> None:
    from bench.common import CaseResult
    from bench.recording import TITLE, update_results

    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## 5. Scale\n\nkept\n")
    first = CaseResult(TITLE, "", ["venue", "cost"], [["gateio", "+5 %"]], ["a note"])
    update_results(first, path)
    second = CaseResult(TITLE, "", ["venue", "cost"], [["gateio", "+6 %"]], ["a note"])
    update_results(second, path)
    text = path.read_text()
    assert text.count(f"## {TITLE}") == 1 and "+6 %" in text and "+5 %" not in text
    assert text.startswith("# Benchmark results\n\n## 5. Scale\n\nkept\n")
    # a section after it (the storage case's, between markers) is left alone too
    path.write_text(
        text.replace(f"## {TITLE}", "<!-- x:begin -->\n## 7. X\n<!-- x:end -->\n## " + TITLE)
    )
    update_results(first, path)
    assert "<!-- x:begin -->\n## 7. X\n<!-- x:end -->\n" in path.read_text()
    assert "+5 %" in path.read_text() and "+6 %" not in path.read_text()
    assert "Measured by `python -m bench.recording` on " in text
