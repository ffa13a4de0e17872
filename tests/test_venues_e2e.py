"""Every registered venue end to end: the simulator speaking each venue's protocol (and
enforcing its limits the venue's way) -> the collector -> snapshots.

Two runs share their assertions to stay fast: one stores every tick in PostgreSQL with a
rejected pair on each venue, a silent pair, Bybit's repeats and restart, and planted gaps; the
other goes through planned restarts (OKX ``64008``, Binance ``serverShutdown``, Gate
``upgrade``), lifetime rotations and a reconnect, and checks that no second is missed and that
no venue's message limits are ever crossed."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from data_collector.collector import Collector
from data_collector.pairs import Pair
from data_collector.simulator import PERSONALITIES, Simulator, pairs_for
from data_collector.venues import VENUES
from tests.helpers import (
    Log,
    TickLog,
    events,
    fetch,
    make_config,
    running,
    wait_for_ticks,
    wait_until,
)
from tests.pg import PgDatabase

#: every registered venue (a registry test makes sure each has a simulator personality)
NAMES = [name for name in VENUES if name in PERSONALITIES]
#: the venues that announce planned restarts, and the reason their notice parses to
NOTICES = {"binance": "serverShutdown", "okx": "notice 64008", "gateio": "upgrade"}
RESTARTING = [name for name in NOTICES if name in NAMES]
FAST = (
    "{silence_timeout: 5, pong_timeout: 3, reconnect_initial_delay: 0.1, "
    "reconnect_max_delay: 0.5, max_reconnects_per_minute: 100, subscribe_timeout: 5, "
    "pair_silence_timeout: 2%s}"
)
NO_DATABASE = "postgresql://unused@127.0.0.1:1/unused"


def _message_rate_closures(logs: Log) -> Log:
    return events(logs, "simulator_closing_session", reason="message_rate")


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_every_venue_on_every_tick_with_rejections_silence_repeats_and_gaps(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    pairs = pairs_for(35)
    rejected = {name: pairs[34 - i] for i, name in enumerate(NAMES)}  # one per venue
    scene = Scene(pairs)
    options = {"bybit": {"repeat_interval": 0.4}}  # Bybit's 3 s, sped up
    async with Simulator(pairs, rate_hz=2, venues=NAMES, venue_options=options) as sim:
        for name, pair in rejected.items():
            sim.venues[name].reject(pair)
        config = make_config(
            tmp_path,
            sim,
            pairs,
            pg_database.dsn,
            connection=FAST % "",
            analytics="{arbitrage_threshold: 0.001}",  # 0.1 % net of both fees
        )
        ticks = TickLog()
        expected = {name: len(pairs) - 1 for name in NAMES}  # all but the rejected pair
        with capture_logs() as logs:
            async with running(config) as collector:
                collector.scheduler.add_sink(ticks)
                await wait_until(collector.manager.flowing, 20, what="every venue flowing")
                await wait_until(lambda: len(ticks.complete(expected)) >= 2, 15, what="ticks")
                scene.plant(sim)
                await wait_until(
                    lambda: events(logs, "pair_silent", exchange="okx"), what="the silent pair"
                )
                await _bybit_restarts(sim, collector, scene)
                await wait_for_ticks(collector, 2)
                first, last = ticks.complete(expected)[0], max(ticks.rows)
                _bybit_requests_within_ten_args(sim, logs)
    rows = await fetch(
        pg_database.dsn,
        "SELECT exchange, symbol_base, timestamp, exchange_time, bid_price::text AS bp,"
        " ask_price::text AS ap FROM book_ticker_snapshots",
    )
    _every_tick_complete(rows, first, last, expected)
    _rejections_reported_once(logs, rejected, collector)
    okx_silent = collector.manager.venue_feeds["okx"].venue.symbol(scene.silent)
    assert len(events(logs, "pair_silent", exchange="okx", symbol=okx_silent)) == 1
    _gap_alerts(logs, scene)
    assert {r["exchange"] for r in rows} == set(NAMES)
    assert all((r["exchange_time"] is None) == (r["exchange"] == "binance") for r in rows)
    assert not {(r["exchange"], r["symbol_base"]) for r in rows} & {
        (name, pair.base) for name, pair in rejected.items()
    }
    stored = {
        r["exchange"]: (r["bp"], r["ap"])
        for r in rows
        if r["timestamp"] == last and r["symbol_base"] == scene.repeated.base
    }
    assert stored["bybit"] == ("20.00", "20.01")  # exactly as planted, through the restart


class Scene:
    """What the storage test plants: a pair OKX stops quoting, a pair Bybit stops changing
    (its repeats keep it alive), a 2 % gap from OKX to Bybit and a gap smaller than the two
    fees from Binance to OKX; every other venue quotes those two pairs wide apart."""

    def __init__(self, pairs: list[Pair]) -> None:
        self.silent, self.repeated, self.gap, self.near = pairs[20], pairs[21], pairs[22], pairs[23]

    def plant(self, sim: Simulator) -> None:
        sim.venues["okx"].set_quote(self.silent, "10.00", "5", "10.01", "5", hold=True)
        sim.venues["bybit"].set_quote(self.repeated, "20.00", "5", "20.01", "5", hold=True)
        books = {
            # buy OKX at 99.01, sell Bybit at 101.00: 2.01 % gross, 1.81 % net of 0.1 % + 0.1 %
            self.gap: {"okx": ("99.00", "99.01"), "bybit": ("101.00", "101.01")},
            # buy Binance at 100.00, sell OKX at 100.25: 0.25 % gross but 0.05 % net
            self.near: {"binance": ("99.99", "100.00"), "okx": ("100.25", "100.26")},
        }
        for pair, quoted in books.items():
            for name in NAMES:
                bid, ask = quoted.get(name, ("97.00", "103.00"))  # wide: no gap against it
                sim.venues[name].set_quote(pair, bid, "3", ask, "2", hold=True)


async def _bybit_restarts(sim: Simulator, collector: Collector, scene: Scene) -> None:
    """Bybit restarts its numbering at u = 1: every pair's quote still follows the venue (the
    restart replaces it although u went down), and the unchanged pair's repeats keep it
    alive, never reported silent."""
    cache, bybit = collector.cache, sim.venues["bybit"]
    v = cache.venue_index["bybit"]
    stats = cache.stats["bybit"]
    await wait_until(lambda: stats.repeats >= 3, what="Bybit's repeats of the unchanged pair")
    before = int(cache.sequence[v].max())
    assert before > 1000
    bybit.personality.restart_sequences()  # type: ignore[attr-defined]
    listed = [cache.pair_index[p] for p in cache.pairs if p is not scene.silent]
    await wait_until(
        lambda: int(cache.sequence[v, listed].max()) < 1000, what="every Bybit pair restarted"
    )
    p = cache.pair_index[scene.repeated]
    repeats = stats.repeats
    await wait_until(lambda: stats.repeats > repeats, what="repeats after the restart")
    quote = cache.snapshot().quote(v, p)
    assert quote is not None and (quote.bid_price, quote.ask_price) == ("20.00", "20.01")


def _bybit_requests_within_ten_args(sim: Simulator, logs: Log) -> None:
    """Every subscribe request Bybit got held at most 10 args, and the one its rejected pair
    sank was asked again without it."""
    requests = [
        json.loads(text)
        for session in sim.venues["bybit"].sessions
        for text in session.received
        if '"subscribe"' in text
    ]
    assert requests and all(len(r["args"]) <= 10 for r in requests)
    assert len(requests) == 4 + 1  # 35 pairs in requests of 10, one asked again
    assert len(events(logs, "resubscribing", exchange="bybit")) == 1


def _every_tick_complete(
    rows: list[Any], first: datetime, last: datetime, expected: dict[str, int]
) -> None:
    per_tick: dict[datetime, Counter[str]] = {}
    for r in rows:
        per_tick.setdefault(r["timestamp"], Counter())[r["exchange"]] += 1
    window = {t: c for t, c in per_tick.items() if first <= t <= last}
    assert len(window) == int((last - first).total_seconds()) + 1  # a row set every second
    assert len(window) >= 5
    short = {t: dict(c) for t, c in window.items() if dict(c) != expected}
    assert not short, f"ticks short of quotes: {short}"


def _rejections_reported_once(logs: Log, rejected: dict[str, Pair], collector: Collector) -> None:
    """Each venue's rejected pair is reported once: refused by the venue (subscription_rejected)
    or, Binance, accepted and never quoted (pair_silent)."""
    for name, pair in rejected.items():
        symbol = collector.manager.venue_feeds[name].venue.symbol(pair)
        event = "pair_silent" if name == "binance" else "subscription_rejected"
        reports = events(logs, event, exchange=name, symbol=symbol)
        assert len(reports) == 1, (name, event, reports)
    # every pair the scene holds still is silent where it is held, but never on Bybit, whose
    # repeats prove it alive
    assert events(logs, "pair_silent", exchange="bybit") == []


def _gap_alerts(logs: Log, scene: Scene) -> None:
    alerts = [
        e
        for e in events(logs, "arbitrage_alert")
        if e["symbol"] in (str(scene.gap), str(scene.near))
    ]
    assert [(e["symbol"], e["buy_exchange"], e["sell_exchange"]) for e in alerts] == [
        (str(scene.gap), "okx", "bybit")
    ]
    assert alerts[0]["gross_pct"] == pytest.approx(100 * (101.00 - 99.01) / 99.01)
    assert alerts[0]["net_pct"] == pytest.approx(alerts[0]["gross_pct"] - 0.2)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_planned_restarts_and_rotations_miss_no_second_within_every_budget(
    tmp_path: Path,
) -> None:
    pairs = pairs_for(12)
    options: dict[str, dict[str, Any]] = {}
    if "binance" in NAMES:  # server pings every 0.5 s: pongs count against 5 messages a second
        options["binance"] = {"ping_interval": 0.5, "pong_timeout": 3.0}
    async with Simulator(pairs, rate_hz=4, venues=NAMES, venue_options=options) as sim:
        # every connection is also replaced every 4 s, make-before-break
        connection = FAST % ", max_lifetime_override: 4"
        config = make_config(tmp_path, sim, pairs, NO_DATABASE, connection=connection)
        ticks = TickLog()
        full = {name: len(pairs) for name in NAMES}
        with capture_logs() as logs:
            async with running(config, dry_run=True) as collector:
                collector.scheduler.add_sink(ticks)
                await wait_until(collector.manager.flowing, 20, what="every venue flowing")
                await wait_until(lambda: len(ticks.complete(full)) >= 2, 10, what="full ticks")
                start = ticks.complete(full)[0]
                for name in RESTARTING:
                    assert sim.venues[name].send_restart_notice(close_after=1.5) >= 1
                await wait_until(
                    lambda: len(events(logs, "venue_restart_notice")) >= len(RESTARTING),
                    what="every notice heeded",
                )
                rotated = {link.name: link.rotations for link in _links(collector)}
                await wait_until(
                    lambda: all(link.rotations > rotated[link.name] for link in _links(collector)),
                    20,
                    what="a rotation (notice or lifetime) on every connection",
                )
                await wait_for_ticks(collector, 2)
                window = ticks.since(start)
                await _reconnect_binance(sim, collector)
    missed = {t: dict(c) for t, c in window.items() if any(c[v] != n for v, n in full.items())}
    assert not missed, f"ticks missing quotes: {missed}"
    assert len(window) >= 5
    reasons = {e["exchange"]: e["reason"] for e in events(logs, "venue_restart_notice")}
    assert reasons == {name: NOTICES[name] for name in RESTARTING}
    assert _message_rate_closures(logs) == [], "a venue closed a connection over its budget"
    assert events(logs, "simulator_closing_session", reason="pong_timeout") == []


def _links(collector: Collector) -> list[Any]:
    return [f.link for vf in collector.manager.venue_feeds.values() for f in vf.links if f.link]


async def _reconnect_binance(sim: Simulator, collector: Collector) -> None:
    """Drop every Binance connection: the collector reconnects and re-subscribes, pongs and
    all, within the budget; its pings were answered all along."""
    if "binance" not in NAMES:
        return
    stats = collector.cache.stats["binance"]
    before = stats.reconnects
    sim.venues["binance"].disconnect_all()
    await wait_until(lambda: stats.reconnects > before, what="binance reconnected")
    await wait_until(collector.manager.flowing, 10, what="binance flowing again")
    answered = sum(
        f.link.pings_answered for f in collector.manager.venue_feeds["binance"].links if f.link
    )
    assert answered > 0


def _pair_of(pairs: list[Pair], symbol: str) -> Pair:
    return next(p for p in pairs if str(p) == symbol)
