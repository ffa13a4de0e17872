"""The collector end to end: simulator venues -> cache -> 1 s snapshots -> real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from data_collector.analytics.records import RecordConsumer, Summary
from data_collector.collector import Collector
from data_collector.lifecycle import TaskFailure
from data_collector.runner import run_until_stopped
from data_collector.simulator import Simulator, pairs_for
from data_collector.wording import plural
from tests.cli_process import free_port, get_health
from tests.helpers import (
    GATE_FEE,
    MEXC_FEE,
    REPO,
    Log,
    TickLog,
    events,
    fetch,
    make_config,
    running,
    wait_for_ticks,
    wait_until,
)
from tests.monitoring.helpers import get
from tests.pg import PgDatabase, PgProxy, admin

#: a dry run never connects to it
UNUSED_DSN = "postgresql://nobody@127.0.0.1:1/none"


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_every_pair_on_every_tick_aligned_and_exact(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    pairs = pairs_for(35)
    async with Simulator(pairs, rate_hz=4) as sim:
        held = pairs[3]
        sim.venues["mexc"].set_quote(
            held, "0.000000001234", "123456789.12345678", "0.000000001235", "7"
        )
        sim.venues["gateio"].set_quote(held, "0.00000000123", "5.10", "0.00000000124", "0.000001")
        config = make_config(tmp_path, sim, pairs, pg_database.dsn)
        ticks = TickLog()
        async with running(config) as collector:
            collector.scheduler.add_sink(ticks)
            await wait_until(collector.manager.flowing, 15, what="feeds flowing")
            assert collector.manager.connections()["mexc"] == (2, 2)  # 35 pairs > 30 per link
            await wait_until(
                lambda: sum(1 for c in ticks.rows.values() if sum(c.values()) == 70) >= 3,
                20,
                what="three complete ticks",
            )
    rows = await fetch(
        pg_database.dsn,
        "SELECT exchange, symbol_base, symbol_quote, timestamp, bid_price::text AS bp,"
        " bid_qty::text AS bq, ask_price::text AS ap, ask_qty::text AS aq, exchange_time"
        " FROM book_ticker_snapshots",
    )
    per_tick = Counter(r["timestamp"] for r in rows)
    assert per_tick == Counter({t: sum(c.values()) for t, c in ticks.rows.items()})
    full = sorted(t for t, n in per_tick.items() if n == 70)
    assert len(full) >= 3
    # Once every pair has quoted, every later tick holds every (venue, pair): no gaps.
    assert all(per_tick[t] == 70 for t in per_tick if t >= full[0])
    assert all(t.microsecond == 0 for t in per_tick)
    stamps = sorted(per_tick)
    assert all((b - a).total_seconds() == 1 for a, b in itertools.pairwise(stamps))
    assert {(r["exchange"], r["symbol_base"]) for r in rows if r["timestamp"] == full[-1]} == {
        (v, p.base) for v in ("mexc", "gateio") for p in pairs
    }
    exact = {
        r["exchange"]: (r["bp"], r["bq"], r["ap"], r["aq"])
        for r in rows
        if r["symbol_base"] == held.base
    }
    assert exact["mexc"] == ("0.000000001234", "123456789.12345678", "0.000000001235", "7")
    assert exact["gateio"] == ("0.00000000123", "5.10", "0.00000000124", "0.000001")
    assert all(r["exchange_time"] is not None for r in rows)


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_injected_gap_alerts_once_with_fees_and_closes_once(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    pairs = pairs_for(6)
    gap, near_miss = pairs[1], pairs[2]
    async with Simulator(pairs, rate_hz=4) as sim:
        config = make_config(tmp_path, sim, pairs, pg_database.dsn)
        with capture_logs() as logs:
            async with running(config) as collector:
                await wait_until(collector.manager.flowing, 15, what="feeds flowing")
                await wait_for_ticks(collector, 1)
                mexc, gate = sim.venues["mexc"], sim.venues["gateio"]
                # gap: buy MEXC at 100.00, sell Gate at 107.00 -> 7 % gross, 6.75 % net
                mexc.set_quote(gap, "99.99", "3", "100.00", "2.5")
                gate.set_quote(gap, "107.00", "1.5", "107.02", "4")
                # near miss: 5.1 % gross but 4.85 % net of fees: below the 5 % threshold
                mexc.set_quote(near_miss, "99.99", "3", "100.00", "2.5")
                gate.set_quote(near_miss, "105.10", "1.5", "105.12", "4")
                await wait_for_ticks(collector, 3)
                assert collector.analytics.open_opportunities == 1
                # close the gap: both venues quote the same market again
                gate.set_quote(gap, "99.98", "1.5", "100.01", "4")
                gate.set_quote(near_miss, "99.98", "1.5", "100.01", "4")
                await wait_for_ticks(collector, 2)
                assert collector.analytics.open_opportunities == 0
    alerts = [e for e in logs if e["event"] == "arbitrage_alert"]
    closed = [e for e in logs if e["event"] == "arbitrage_closed"]
    assert len(alerts) == 1 and len(closed) == 1, (alerts, closed)
    alert = alerts[0]
    assert alert["symbol"] == str(gap)
    assert (alert["buy_exchange"], alert["sell_exchange"]) == ("mexc", "gateio")
    assert (alert["buy_price"], alert["sell_price"]) == (100.0, 107.0)
    assert alert["gross_pct"] == pytest.approx(7.0)
    assert alert["net_pct"] == pytest.approx(7.0 - 100 * (MEXC_FEE + GATE_FEE))
    assert alert["size"] == pytest.approx(1.5)  # min(ask qty at MEXC, bid qty at Gate)
    assert alert["profit"] == pytest.approx(1.5 * 7.0)
    assert closed[0]["symbol"] == str(gap) and closed[0]["duration_s"] >= 2


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_quotes_of_a_dropped_connection_are_not_stored_until_refreshed(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    pairs = pairs_for(3)
    async with Simulator(pairs, rate_hz=4) as sim:
        config = make_config(tmp_path, sim, pairs, pg_database.dsn)
        ticks = TickLog()
        async with running(config) as collector:
            collector.scheduler.add_sink(ticks)
            await wait_until(collector.manager.flowing, 15, what="feeds flowing")
            await wait_for_ticks(collector, 1)
            gate = sim.venues["gateio"]
            gate.pause()  # after the reconnect Gate stays quiet: nothing refreshes its quotes
            gate.disconnect_all()
            await wait_until(lambda: collector.cache.stats["gateio"].reconnects >= 1, 10)
            await wait_until(lambda: collector.manager.connections()["gateio"][0] == 1, 10)
            gap_start = collector.scheduler.stats.ticks
            await wait_for_ticks(collector, 2)
            assert collector.scheduler.stats.ticks >= gap_start + 2
            gate.resume()
            await wait_until(lambda: bool(collector.cache.snapshot().usable[1].all()), 10)
            await wait_for_ticks(collector, 2)
    rows = await fetch(pg_database.dsn, "SELECT exchange, timestamp FROM book_ticker_snapshots")
    by_tick: dict[datetime, Counter[str]] = {}
    for r in rows:
        by_tick.setdefault(r["timestamp"], Counter())[r["exchange"]] += 1
    assert by_tick == {t: c for t, c in ticks.rows.items()}
    pattern = [c["gateio"] > 0 for _, c in sorted(by_tick.items()) if c["mexc"] == 3]
    # Gate rows, then at least two ticks without them (not live), then Gate rows again.
    text = "".join("G" if g else "-" for g in pattern)
    assert "G--" in text and text.rstrip("G") != text, text


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_database_down_for_ten_seconds_loses_no_tick(
    tmp_path: Path, pg_database: PgDatabase, pg_proxy: PgProxy
) -> None:
    pairs = pairs_for(4)
    async with Simulator(pairs, rate_hz=4) as sim:
        config = make_config(tmp_path, sim, pairs, pg_proxy.dsn(pg_database.name))
        ticks = TickLog()
        async with running(config) as collector:
            collector.scheduler.add_sink(ticks)
            await wait_until(collector.manager.flowing, 15, what="feeds flowing")
            await wait_for_ticks(collector, 2)
            pg_proxy.refuse()
            down_at = collector.scheduler.stats.ticks
            await wait_until(lambda: collector.scheduler.stats.ticks >= down_at + 10, 20)
            assert collector.writer is not None
            assert collector.writer.stats.backlog_rows > 0
            pg_proxy.resume()
            await wait_until(lambda: collector.writer.stats.backlog_rows == 0, 30, what="backlog")
            await wait_for_ticks(collector, 1)
    rows = await fetch(
        pg_database.dsn,
        "SELECT exchange, symbol_base, timestamp, count(*) AS n FROM book_ticker_snapshots"
        " GROUP BY 1, 2, 3",
    )
    assert all(r["n"] == 1 for r in rows)  # none twice
    stored = Counter()
    for r in rows:
        stored[r["timestamp"]] += 1
    assert stored == Counter({t: sum(c.values()) for t, c in ticks.rows.items()})
    assert len(stored) >= 13


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_sigterm_flushes_and_exits_zero(tmp_path: Path, pg_database: PgDatabase) -> None:
    pairs = pairs_for(3)
    async with Simulator(pairs, rate_hz=4) as sim:
        config_path = tmp_path / "config.yaml"
        make_config(tmp_path, sim, pairs, pg_database.dsn)  # writes config.yaml
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(REPO / "run.py"), "--config", str(config_path),
            "--log-format", "json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert proc.stdout is not None
        events: list[dict] = []
        try:
            async with asyncio.timeout(40):
                while sum(1 for e in events if e["event"] == "snapshot" and e["rows"] == 6) < 2:
                    line = await proc.stdout.readline()
                    assert line, "collector exited early"
                    events.append(json.loads(line))
            proc.send_signal(signal.SIGTERM)
            out, _err = await asyncio.wait_for(proc.communicate(), 10)
        finally:
            if proc.returncode is None:
                proc.kill()
    events += [json.loads(line) for line in out.splitlines() if line.strip()]
    assert proc.returncode == 0
    captured = sum(e["rows"] for e in events if e["event"] == "snapshot")
    (count,) = await fetch(pg_database.dsn, "SELECT count(*) FROM book_ticker_snapshots")
    assert count[0] == captured > 0
    assert any(e["event"] == "collector_stopped" for e in events)


async def test_dry_run_creates_nothing_in_the_database(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    pairs = pairs_for(2)
    async with Simulator(pairs, rate_hz=4) as sim:
        config = make_config(tmp_path, sim, pairs, pg_database.dsn)
        async with running(config, dry_run=True) as collector:
            await wait_until(collector.manager.flowing, 15, what="feeds flowing")
            await wait_until(lambda: collector.scheduler.stats.rows >= 4, 10)
            assert collector.writer is None and collector.ledger_writer is None
    tables = await fetch(
        pg_database.dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    )
    assert tables == []


async def _start_process(config_path: Path, *args: str, env: dict[str, str] | None = None):
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | (env or {})
    return await asyncio.create_subprocess_exec(
        sys.executable, str(REPO / "run.py"), "--config", str(config_path), "--log-format", "json",
        *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=full_env,
        cwd=config_path.parent,
    )  # fmt: skip


async def _read_until(proc: asyncio.subprocess.Process, event: str, timeout: float) -> list[dict]:
    assert proc.stdout is not None
    events: list[dict] = []
    async with asyncio.timeout(timeout):
        while not events or events[-1]["event"] != event:
            line = await proc.stdout.readline()
            assert line, f"collector exited before {event}: {events}"
            events.append(json.loads(line))
    return events


@pytest.mark.timeout(60)
async def test_sigterm_during_startup_exits_zero(
    tmp_path: Path, pg_database: PgDatabase, pg_proxy: PgProxy
) -> None:
    pg_proxy.blackhole()  # connecting hangs: start-up sits waiting for the database
    pairs = pairs_for(2)
    async with Simulator(pairs, rate_hz=4) as sim:
        make_config(tmp_path, sim, pairs, pg_proxy.dsn(pg_database.name))
        proc = await _start_process(tmp_path / "config.yaml")
        await _read_until(proc, "pairs_loaded", 20)
        proc.send_signal(signal.SIGTERM)
        out, _err = await asyncio.wait_for(proc.communicate(), 10)
    names = [json.loads(line)["event"] for line in out.splitlines() if line.strip()]
    assert proc.returncode == 0
    assert "startup_interrupted" in names and names[-1] == "collector_stopped"


@pytest.mark.timeout(60)
async def test_a_busy_monitoring_port_does_not_stop_the_collection(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        pairs = pairs_for(2)
        async with Simulator(pairs, rate_hz=4) as sim:
            config = make_config(
                tmp_path, sim, pairs, pg_database.dsn, monitoring_port=str(busy.getsockname()[1])
            )
            with capture_logs() as logs:
                async with running(config) as collector:
                    await wait_until(lambda: collector.scheduler.stats.rows >= 4, 15)
                    assert collector.monitoring is None
    assert any(e["event"] == "monitoring_unavailable" for e in logs)


@pytest.mark.slow
async def test_missing_migrations_stop_start_up_with_a_clear_line(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    pairs = pairs_for(1)
    async with Simulator(pairs, rate_hz=4) as sim:
        make_config(tmp_path, sim, pairs, pg_database.dsn)
        proc = await _start_process(
            tmp_path / "config.yaml", env={"CEX_MIGRATIONS_DIR": str(tmp_path / "nowhere")}
        )
        out, _err = await asyncio.wait_for(proc.communicate(), 30)
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert proc.returncode == 1
    [failed] = [e for e in events if e["event"] == "startup_failed"]
    assert "nowhere" in failed["error"] and "CEX_MIGRATIONS_DIR" in failed["error"]


# ------------------------------------------------- the database path: durable or refusing to run


@asynccontextmanager
async def _process(config_path: Path, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """A collector process, killed on the way out if the test left it running."""
    proc = await _start_process(config_path, *args)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _sigterm(proc: asyncio.subprocess.Process) -> list[dict]:
    """SIGTERM, then the events logged until the process exited."""
    proc.send_signal(signal.SIGTERM)
    out, _err = await asyncio.wait_for(proc.communicate(), 15)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


async def _run_process(config_path: Path, *args: str, timeout: float = 40) -> tuple[int, list]:
    proc = await _start_process(config_path, *args)
    out, _err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_a_data_dir_that_cannot_hold_spill_files_stops_start_up(
    tmp_path: Path, pg_database: PgDatabase, pg_proxy: PgProxy
) -> None:
    pg_proxy.refuse()  # the database is unreachable: everything would have to be spilled
    pairs = pairs_for(1)
    async with Simulator(pairs, rate_hz=4) as sim:
        make_config(tmp_path, sim, pairs, pg_proxy.dsn(pg_database.name))
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "spill").write_text("")  # the spill directory's place is taken
        code, events = await _run_process(tmp_path / "config.yaml")
    assert code == 1
    [failed] = [e for e in events if e["event"] == "startup_failed"]
    assert failed["error"].startswith(f"spill directory {tmp_path / 'data' / 'spill'}")
    assert "data_collector.data_dir" in failed["error"]
    assert not any(e["event"] == "collector_stopped" for e in events)


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_a_run_that_lost_rows_exits_one_and_says_how_many_and_why(
    tmp_path: Path, pg_database: PgDatabase, pg_proxy: PgProxy
) -> None:
    pg_proxy.refuse()
    pairs = pairs_for(2)
    async with Simulator(pairs, rate_hz=4) as sim:
        make_config(tmp_path, sim, pairs, pg_proxy.dsn(pg_database.name))
        async with _process(tmp_path / "config.yaml") as proc:
            events = await _read_until(proc, "writer_started", 20)
            spill_dir = Path(events[-1]["spill_dir"])
            while not any(e["event"] == "snapshot" and e["rows"] for e in events):
                events += await _read_until(proc, "snapshot", 20)
            spill_dir.rmdir()
            spill_dir.write_text("")  # the disk under the spill directory is gone
            events += await _sigterm(proc)
    assert proc.returncode == 1
    [stopped] = [e for e in events if e["event"] == "collector_stopped"]
    lost = sum(e["rows"] for e in events if e["event"] == "writer_dropped")
    assert stopped["level"] == "error" and stopped["rows_lost"] == lost > 0
    was = "was" if lost == 1 else "were"
    assert stopped["summary"].startswith(
        f"Collector stopped: {plural(lost, 'row')} {was} lost ({lost} "
    )
    assert f"spilling to {spill_dir} failed" in stopped["summary"]
    assert "cleanly" not in json.dumps(events)


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_a_frozen_database_shows_as_stalled_then_shutdown_says_the_outcome_once(
    tmp_path: Path, pg_database: PgDatabase, pg_proxy: PgProxy
) -> None:
    port = free_port()
    pairs = pairs_for(2)
    async with Simulator(pairs, rate_hz=4) as sim:
        dsn = pg_proxy.dsn(pg_database.name)
        make_config(tmp_path, sim, pairs, dsn, monitoring_port=str(port))
        async with _process(tmp_path / "config.yaml") as proc:
            await _read_until(proc, "monitoring_started", 20)

            async def health() -> dict:
                return await asyncio.to_thread(get_health, port) or {}

            async def written() -> bool:
                body = await health()
                return body.get("status") == "ok" and body["database"]["rows_written"] > 0

            await wait_until(written, 20, what="rows written, venues flowing")
            pg_proxy.blackhole()  # accepts connections, never answers

            async def stalled() -> bool:
                return (await health())["database"]["state"] == "stalled"

            await wait_until(stalled, 15, what="database stalled in /health")
            body = await health()
            events = await _sigterm(proc)
    assert body["status"] == "degraded" and body["reasons"] == [], body  # HTTP 200
    error = body["database"]["last_error"]
    assert body["degraded"] == [f"database stalled: {error}"]
    assert error.startswith("connecting to postgresql://")
    assert error.endswith("has not finished after 3.0 s")
    assert proc.returncode == 0  # spilled, not lost
    shutdown = events[next(i for i, e in enumerate(events) if e["event"] == "shutdown_started") :]
    loud = [e["event"] for e in shutdown if e["level"] in ("warning", "error")]
    assert loud == ["writer_closed"], loud
    assert shutdown[-1]["event"] == "collector_stopped" and shutdown[-1]["rows_lost"] == 0


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_spilled_rows_are_only_loaded_into_the_database_they_were_meant_for(
    tmp_path: Path, pg_database: PgDatabase, pg_proxy: PgProxy
) -> None:
    """Run 1 spills for database A (down); run 2 writes to database B and leaves A's files
    alone; --status lists them; run 3, against A again, loads them there."""
    other = f"{pg_database.name}_b"
    await admin(pg_database.server.admin_dsn, f'CREATE DATABASE "{other}"')
    db_a, db_b = pg_proxy.dsn(pg_database.name), pg_database.server.dsn(other)
    config = tmp_path / "config.yaml"
    count = "SELECT count(*) FROM book_ticker_snapshots"
    pairs = pairs_for(2)
    try:
        async with Simulator(pairs, rate_hz=4) as sim:
            pg_proxy.refuse()
            make_config(tmp_path, sim, pairs, db_a)
            code, run1 = await _run_process(config, "--duration", "3")
            spilled = sum(e["rows"] for e in run1 if e["event"] == "snapshot")
            [closed] = [
                e
                for e in run1
                if e["event"] == "writer_closed" and e["table"] == "book_ticker_snapshots"
            ]
            assert code == 0 and closed["rows_spilled"] == spilled > 0

            make_config(tmp_path, sim, pairs, db_b)
            code, run2 = await _run_process(config, "--duration", "2")
            assert code == 0
            written = sum(e["rows"] for e in run2 if e["event"] == "snapshot")
            assert (await fetch(db_b, count))[0][0] == written
            [kept] = [e for e in run2 if e["event"] == "spill_files_other_database"]
            assert kept["directory"] == closed["spill_dir"] and "Sup3r" not in kept["target"]
            assert not any(e["event"] == "writer_spill_loaded" for e in run2)

            proc = await _start_process(config, "--status")
            out, _err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0
            assert f"another database ({kept['target']}), book_ticker_snapshots: " in out.decode()
            assert f"rows in {closed['spill_dir']}; kept, not loaded" in out.decode()

            pg_proxy.resume()
            make_config(tmp_path, sim, pairs, db_a)
            code, run3 = await _run_process(config, "--duration", "2")
        assert code == 0
        loaded = sum(e["rows"] for e in run3 if e["event"] == "writer_spill_loaded")
        written = sum(e["rows"] for e in run3 if e["event"] == "snapshot")
        assert loaded == spilled
        assert (await fetch(pg_database.dsn, count))[0][0] == spilled + written
        assert not list(Path(closed["spill_dir"]).glob("*.csv"))
    finally:
        await admin(pg_database.server.admin_dsn, f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')


def read_cancelled_delivery(*_args: object) -> None:
    """What a consumer handing records to a delivery task does once that task was cancelled:
    reading its result raises CancelledError, which no ``except Exception`` guard catches."""
    delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    delivery.cancel()
    delivery.result()


class CancelledAlertDelivery(RecordConsumer):
    def summary(self, record: Summary) -> None:
        read_cancelled_delivery(record)


async def test_a_crashed_analytics_task_stops_the_collector_and_fails_health(
    tmp_path: Path, logs: Log
) -> None:
    pairs = pairs_for(2)
    async with Simulator(pairs, rate_hz=4) as sim:
        config = make_config(tmp_path, sim, pairs, UNUSED_DSN, analytics_interval="1")
        async with running(config, dry_run=True) as collector:
            collector.analytics.subscribe(CancelledAlertDelivery())
            # the crash asks the collector to stop, as SIGTERM would
            await asyncio.wait_for(collector.wait_stopped(), 10)
            assert collector.failures == [TaskFailure("analytics", "CancelledError")]
            assert collector.monitoring is not None
            code, _text, body = await get(f"{collector.monitoring.url}/health")
            assert code == 503 and body is not None
            assert "task analytics crashed: CancelledError" in body["reasons"]
            assert body["crashed_tasks"] == {"analytics": "CancelledError"}
    [crash] = events(logs, "task_crashed")
    assert (crash["log_level"], crash["task"], crash["error"]) == (
        "error",
        "analytics",
        "CancelledError",
    )
    assert crash["summary"] == "Task analytics crashed (CancelledError): stopping the collector"


async def test_a_run_whose_scheduler_crashed_exits_1_and_never_says_cleanly(
    tmp_path: Path, logs: Log
) -> None:
    pairs = pairs_for(2)
    async with Simulator(pairs, rate_hz=4) as sim:
        config = make_config(tmp_path, sim, pairs, UNUSED_DSN)
        collector = Collector(config, dry_run=True)
        run = asyncio.create_task(run_until_stopped(collector))
        await asyncio.wait_for(collector.started.wait(), 30)
        collector.scheduler.add_sink(read_cancelled_delivery)
        code = await asyncio.wait_for(run, 20)
    assert code == 1
    [crash] = events(logs, "task_crashed")
    assert (crash["task"], crash["error"]) == ("snapshot-scheduler", "CancelledError")
    [shutdown] = events(logs, "shutdown_started")
    assert shutdown["summary"] == "Shutting down: stopping feeds"  # a dry run has no writer
    [stopped] = events(logs, "collector_stopped")
    assert stopped["log_level"] == "error"
    assert stopped["crashed_tasks"] == {"snapshot-scheduler": "CancelledError"}
    assert stopped["summary"] == (
        "Collector stopped: task snapshot-scheduler crashed (CancelledError)"
    )


@pytest.mark.slow
async def test_a_crashed_writer_loop_stops_the_run_and_counts_what_it_could_not_keep(
    tmp_path: Path, pg_database: PgDatabase, pg_proxy: PgProxy, logs: Log, monkeypatch
) -> None:
    """The database is down, the buffer is full and writing a spill file runs out of memory:
    the spill loop dies. The run must not go on without it."""
    pairs = pairs_for(2)
    async with Simulator(pairs, rate_hz=4) as sim:
        dsn = pg_proxy.dsn(pg_database.name)
        config = make_config(tmp_path, sim, pairs, dsn, buffer_max_rows="4")  # one tick
        collector = Collector(config)
        run = asyncio.create_task(run_until_stopped(collector))
        await asyncio.wait_for(collector.started.wait(), 30)
        assert collector.writer is not None
        await wait_until(lambda: collector.writer.stats.rows_written > 0, 20, what="rows written")

        def out_of_memory(*_args: object) -> Path:
            raise MemoryError

        monkeypatch.setattr("db.spill.write_atomic", out_of_memory)
        pg_proxy.refuse()
        code = await asyncio.wait_for(run, 30)
    assert code == 1
    spiller = "spiller-book_ticker_snapshots"
    [crash] = events(logs, "task_crashed")
    assert (crash["task"], crash["error"], crash["essential"]) == (spiller, "MemoryError", True)
    [stopped] = events(logs, "collector_stopped")
    assert stopped["crashed_tasks"] == {spiller: "MemoryError"}
    lost = sum(e["rows"] for e in events(logs, "writer_dropped"))
    assert stopped["rows_lost"] == lost > 0  # rows it could neither write nor spill: counted
    assert stopped["summary"].startswith(
        f"Collector stopped: task {spiller} crashed (MemoryError); {plural(lost, 'row')} "
        f"{'was' if lost == 1 else 'were'} lost ("
    )
