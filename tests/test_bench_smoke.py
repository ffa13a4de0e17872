"""Smoke tests of the benchmark harness (bench/): its arithmetic and one real tiny ingest run.

The full benchmark is ``python -m bench``; these only check that the harness measures what it
claims, in a few seconds.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from bench import ingest, report_bench
from bench.__main__ import section_of, summary_line, targets, with_section
from bench.latency import join

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
        "1.ours_gateio": 250_000.4,
        "1.ours_mexc": 180_000.6,
        "3.ratio_4000": 0.91,
        "3.ratio_20000": 1.05,
        "4.lateness_p99": 1.234,
    }
    match = SUMMARY_RE.match(summary_line(figures))
    assert match is not None
    assert match.groups() == ("9.9", "180001", "0.91", "1.23")
    figures["1.ratio_mexc"] = math.nan  # ccxt unavailable
    assert summary_line(figures).startswith("ingest_ratio_vs_ccxt=nan ")


def test_targets_are_reported_met_missed_or_not_applicable() -> None:
    rows = {row[0]: row[2] for row in targets({"1.ratio_gateio": 11.0, "1.ratio_mexc": 3.0})}
    assert rows["Gate: frames/CPU-s >= 10x ccxt"] == "met"
    assert rows["MEXC: frames/CPU-s >= 10x ccxt"] == "missed"
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
