"""The report's statements against a real PostgreSQL holding a hand-built data set with known
answers (tests/report_data.py)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import msgspec
import pytest

from db.report_model import Coverage, Gap, ReportQuery
from db.report_queries import ReportUnavailable, fetch_report, read_report
from tests.report_data import (
    BTC_DIFF,
    ETH_DIFF,
    ETH_MEDIAN_SPREAD,
    ETH_P95_SPREAD,
    SINCE,
    T0,
    UNTIL,
    VENUES,
    fill_known_data,
)


def query(**changes: object) -> ReportQuery:
    fields: dict[str, object] = {"since": SINCE, "until": UNTIL, "venues": VENUES}
    return ReportQuery(**(fields | changes))  # type: ignore[arg-type]


def seconds(a: int, b: int) -> Gap:
    return Gap(T0 + timedelta(seconds=a), T0 + timedelta(seconds=b), float(b - a))


@pytest.fixture
async def known(pg_database):
    await fill_known_data(pg_database.dsn)
    return pg_database


async def test_opportunities_per_pair_and_venue_pair(known) -> None:
    report = await fetch_report(known.dsn, query())
    sol, eth, sol_back = report.opportunities
    assert (sol.symbol, sol.buy_exchange, sol.sell_exchange) == ("SOL/USDT", "mexc", "gateio")
    assert (sol.count, sol.open, sol.total_duration_s, sol.median_duration_s) == (3, 0, 16, 4)
    assert (sol.median_net_pct, sol.max_net_pct, sol.profit_quote) == (6.0, 7.0, 4.0)
    assert (sol.longest.opened_at, sol.longest.duration_s) == (T0 + timedelta(seconds=60), 10)
    assert sol.longest.max_net_pct == 5.0
    # opened before the window, closed inside it: counted, with its whole duration
    assert (eth.symbol, eth.count, eth.total_duration_s) == ("ETH/USDT", 1, 15)
    # still open: its duration so far
    assert (sol_back.buy_exchange, sol_back.open, sol_back.total_duration_s) == ("gateio", 1, 5)
    assert sol_back.profit_quote == 0.5
    assert report.has_data


async def test_coverage_per_venue_with_gaps(known) -> None:
    report = await fetch_report(known.dsn, query())
    assert report.window.seconds == 120 and report.rows == 110 + 120 + 100 + 97
    binance, gateio, mexc = report.coverage
    assert binance == Coverage("binance", None, 0, 120, 0.0, 0, [seconds(0, 120)])
    assert gateio == Coverage(
        "gateio", None, 100, 120, pytest.approx(100 / 1.2), 197, [seconds(100, 120)]
    )
    assert mexc == Coverage("mexc", None, 120, 120, 100.0, 230, [])
    assert report.coverage_by_pair is None


async def test_coverage_per_venue_and_pair(known) -> None:
    report = await fetch_report(known.dsn, query(per_pair=True))
    cells = {(c.exchange, c.symbol): c for c in report.coverage_by_pair or []}
    assert set(cells) == {(v, s) for v in VENUES for s in ("BTC/USDT", "ETH/USDT")}
    mexc_btc = cells["mexc", "BTC/USDT"]
    assert (mexc_btc.seconds_stored, mexc_btc.rows, mexc_btc.gaps) == (110, 110, [seconds(30, 40)])
    assert cells["mexc", "ETH/USDT"].gaps == [] and cells["mexc", "ETH/USDT"].pct == 100.0
    # gateio BTC has its venue's ticks: the venue's gaps; ETH's 3 s hole is too short to list
    assert cells["gateio", "BTC/USDT"].gaps == [seconds(100, 120)]
    gate_eth = cells["gateio", "ETH/USDT"]
    assert (gate_eth.seconds_stored, gate_eth.gaps) == (97, [seconds(100, 120)])
    assert cells["binance", "ETH/USDT"].gaps == [seconds(0, 120)]


async def test_spreads_and_mid_differences(known) -> None:
    report = await fetch_report(known.dsn, query())
    spreads = {(s.exchange, s.symbol): s for s in report.spreads}
    eth = spreads["mexc", "ETH/USDT"]
    assert (eth.samples, eth.median_pct, eth.p95_pct) == (
        120,
        pytest.approx(ETH_MEDIAN_SPREAD),
        pytest.approx(ETH_P95_SPREAD),
    )
    assert spreads["mexc", "BTC/USDT"].median_pct == pytest.approx(0.1)
    assert spreads["gateio", "BTC/USDT"].p95_pct == pytest.approx(0.1 / 100.05 * 100)
    assert report.sampling.every == 1 and report.sampling.rows == report.rows
    [diff] = report.mid_differences
    assert (diff.venue_a, diff.venue_b, diff.samples) == ("gateio", "mexc", 90 + 97)
    assert diff.median_pct == pytest.approx(ETH_DIFF)  # the lower 97 values are ETH's
    assert diff.median_abs_pct == pytest.approx(abs(ETH_DIFF))
    assert BTC_DIFF > ETH_DIFF


async def test_a_pair_filter_limits_every_section(known) -> None:
    report = await fetch_report(known.dsn, query(pairs=(("BTC", "USDT"),), per_pair=True))
    assert report.symbols == ["BTC/USDT"]
    assert report.rows == 110 + 100
    assert report.opportunities == []
    mexc = report.coverage[-1]
    assert (mexc.seconds_stored, mexc.gaps) == (110, [seconds(30, 40)])
    assert {s.symbol for s in report.spreads} == {"BTC/USDT"}
    assert report.mid_differences[0].median_pct == pytest.approx(BTC_DIFF)


async def test_above_the_row_budget_prices_come_from_a_fixed_sample(known) -> None:
    first = await fetch_report(known.dsn, query(sample_rows=100))
    again = await fetch_report(known.dsn, query(sample_rows=100))
    assert first.sampling.every == 5  # 427 rows / 100, rounded up
    assert 0 < first.sampling.rows < first.rows
    assert first.spreads == again.spreads and first.mid_differences == again.mid_differences
    # the coverage is never sampled
    assert first.coverage == (await fetch_report(known.dsn, query())).coverage


async def test_a_window_without_data(known) -> None:
    later = UNTIL + timedelta(hours=1)
    report = await fetch_report(known.dsn, query(since=later, until=later + timedelta(hours=1)))
    assert not report.has_data and report.rows == 0
    assert report.spreads == [] and report.opportunities == []
    assert [c.pct for c in report.coverage] == [0.0, 0.0, 0.0]


async def test_timeline_lists_each_opportunity_in_order(known) -> None:
    report = await fetch_report(known.dsn, query(timeline=True))
    assert [(e.symbol, e.opened_at) for e in report.timeline] == [
        ("ETH/USDT", T0 - timedelta(seconds=10)),
        ("SOL/USDT", T0 + timedelta(seconds=10)),
        ("SOL/USDT", T0 + timedelta(seconds=30)),
        ("SOL/USDT", T0 + timedelta(seconds=60)),
        ("SOL/USDT", T0 + timedelta(seconds=110)),
    ]
    assert report.timeline[-1].end == T0 + timedelta(seconds=115)  # open: its last tick


async def test_a_database_never_migrated_has_no_data(pg_database) -> None:
    report = await fetch_report(pg_database.dsn, query())
    assert not report.has_data and report.opportunities == []


async def test_an_unreachable_database_is_one_clear_error(pg_proxy, pg_database) -> None:
    pg_proxy.refuse()
    dsn = pg_proxy.dsn(pg_database.name, password="s3cret")
    with pytest.raises(ReportUnavailable) as caught:
        await read_report(dsn, query(), connect_timeout=1)
    assert "s3cret" not in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError | asyncpg.PostgresError | TimeoutError)


async def test_a_window_spanning_the_archive_reads_the_same(pg_database, tmp_path) -> None:
    """Days moved to the Parquet archive (and dropped from PostgreSQL) are read back: the
    report of a window spanning both tiers is the one from before the move."""
    from db.maintenance import MaintenanceSettings, run_maintenance
    from db.partitions import day_start
    from tests.storage_helpers import TODAY, three_homes

    since, until = day_start(TODAY) - timedelta(days=6), day_start(TODAY) + timedelta(days=1)
    archive = tmp_path / "archive"
    ask = query(since=since, until=until, venues=("gateio", "mexc", "okx"), per_pair=True)
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        await three_homes(conn, tmp_path)
    finally:
        await conn.close()
    before = await fetch_report(pg_database.dsn, ask)
    settings = MaintenanceSettings(archive_enabled=True, archive_dir=archive, retention_days=3)
    assert (await run_maintenance(pg_database.dsn, settings, TODAY)).ok
    live_only = await fetch_report(pg_database.dsn, ask)
    assert live_only.rows < before.rows  # days did leave PostgreSQL
    after = await fetch_report(
        pg_database.dsn, msgspec.structs.replace(ask, archive_dir=str(archive))
    )
    assert after.archived_rows == before.rows - live_only.rows > 0
    assert msgspec.structs.replace(after, archived_rows=0) == before
