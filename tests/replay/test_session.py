"""Record a live run against the simulator, with faults (garbage frames, an out-of-order update,
a disconnect, a price gap), into PostgreSQL; replay it at full speed into fresh databases and
compare: the same rows, the same analytics, the same counters, every time; ``--from`` and
``--until`` cut exactly; a file cut short replays up to the cut."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import pytest_asyncio
import zstandard
from structlog.testing import capture_logs

from data_collector.analytics.records import (
    OpportunityOpened,
)
from data_collector.cache import VenueStats
from data_collector.collector import Collector
from data_collector.config import Config, load_config
from data_collector.pairs import Pair
from data_collector.recording.format import (
    BLOCK_HEAD,
    CLOCK_SNAPSHOT,
    ENDED,
    FRAME,
    RECORD_HEAD,
    SEGMENT,
    SEGMENT_HEAD,
    TICK,
    TICK_PAYLOAD,
    Record,
    decode_block_head,
    encode_block_head,
    iter_records,
)
from data_collector.recording.reader import read_records, venue_files
from data_collector.replay.options import resolve
from data_collector.replay.session import ReplayCollector
from data_collector.simulator import Simulator
from tests.helpers import KeepRecords, Log, events, fetch, wait_for_ticks, wait_until
from tests.pg import BackgroundLoop, PgDatabase, PgServer, fresh_database

PAIRS = [Pair("BTC", "USDT"), Pair("ETH", "USDT"), Pair("SOL", "USDT")]
ANALYTICS_EVENTS = frozenset(
    {
        "arbitrage_alert",
        "arbitrage_closed",
        "analytics_fee_missing",
        "spread_analysis",
        "spread_alert",
        "volume_alert",
        "volume_recovered",
        "volume_summary",
        "market_health",
    }
)
ROWS_SQL = """
SELECT exchange, symbol_base, symbol_quote, bid_price, bid_qty, ask_price, ask_qty, timestamp,
       exchange_time
FROM book_ticker_snapshots ORDER BY timestamp, exchange, symbol_base
"""
UNUSED_DSN = "postgresql://nobody@127.0.0.1:1/none"


@dataclass
class Run:
    """What a run (live or replayed) stored, logged and counted."""

    rows: list[tuple[Any, ...]]
    logs: Log
    records: list[object]
    stats: dict[str, VenueStats]

    @property
    def analytics(self) -> Log:
        return [e for e in self.logs if e["event"] in ANALYTICS_EVENTS]


@dataclass
class LiveRun(Run):
    recording: Path


def write_config(
    directory: Path,
    dsn: str,
    urls: dict[str, str] | None = None,
    fees: tuple[float, float] = (0.0005, 0.002),
    **analytics: float,
) -> Config:
    """The collector's config (a replay's when ``urls`` is None: it connects nowhere)."""
    urls = urls or {"mexc": "ws://unused", "gateio": "ws://unused"}
    symbols = ", ".join(f'"{p}"' for p in PAIRS)
    settings = ", ".join(f"{k}: {v}" for k, v in analytics.items())
    text = f"""
data_collector:
  snapshot_interval: 1
  analytics_interval: 2
  exchanges: ["mexc", "gateio"]
  symbols: [{symbols}]
  data_dir: "{directory / "data"}"
  analytics: {{{settings}}}
  connection: {{silence_timeout: 5, pong_timeout: 3, reconnect_initial_delay: 0.1,
               reconnect_max_delay: 0.3}}
exchanges:
  mexc: {{websocket_url: "{urls["mexc"]}", taker_fee: {fees[0]}}}
  gateio: {{websocket_url: "{urls["gateio"]}", taker_fee: {fees[1]}}}
database: {{dsn: "{dsn}"}}
monitoring: {{enabled: false}}
record: {{enabled: true, dir: "{directory / "rec"}"}}
"""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.yaml"
    path.write_text(text)
    return load_config(path, env={})


async def faults(sim: Simulator, collector: Collector) -> None:
    """Garbage, an out-of-order update, a cross-venue gap for two ticks, a disconnect."""
    mexc, gate = sim.venues["mexc"], sim.venues["gateio"]
    gate.send_garbage(2)
    mexc.send_garbage(1)
    gate.send_out_of_order(PAIRS[0])
    ask = mexc.last_sent(PAIRS[1])
    assert ask is not None
    bid = float(ask["ask"]) * 1.07
    gate.set_quote(PAIRS[1], f"{bid:.6g}", "2.5", f"{bid * 1.0002:.6g}", "3.1", hold=True)
    await wait_for_ticks(collector, 2)
    gate.release(PAIRS[1])
    stats = collector.cache.stats["mexc"]
    mexc.pause()  # after the reconnect no fresh quote comes for a tick: none is live
    mexc.disconnect_all()
    await wait_until(lambda: stats.reconnects >= 1, what="mexc reconnected")
    await wait_for_ticks(collector, 1)
    mexc.resume()
    await wait_until(collector.manager.flowing, what="flowing again")
    await wait_for_ticks(collector, 2)


@pytest_asyncio.fixture(scope="module")
async def live_run(
    tmp_path_factory: pytest.TempPathFactory, pg_server: PgServer, pg_loop: BackgroundLoop
) -> AsyncIterator[LiveRun]:
    base = tmp_path_factory.mktemp("live")
    with fresh_database(pg_server, pg_loop) as database:
        async with Simulator(PAIRS, rate_hz=100) as sim:
            config = write_config(base, database.dsn, sim.urls)
            collector = Collector(config)
            records = KeepRecords()
            with capture_logs() as logs:
                try:
                    async with asyncio.timeout(30):
                        assert await collector.start()
                    collector.analytics.subscribe(records)
                    assert await collector.manager.wait_until_flowing(15)
                    await wait_for_ticks(collector, 2)
                    await faults(sim, collector)
                finally:
                    collector.stop()
                    await collector.close()
        rows = [tuple(r) for r in await fetch(database.dsn, ROWS_SQL)]
    stats = {v: msgspec.structs.replace(s) for v, s in collector.cache.stats.items()}
    yield LiveRun(rows, logs, records.records, stats, base / "rec")


async def replay(
    config: Config,
    live: LiveRun,
    *,
    dry_run: bool = False,
    start: str | None = None,
    until: str | None = None,
) -> Run:
    """Replay ``live``'s recording at full speed with ``config``."""
    exchanges = config.data_collector.exchanges
    options = resolve(str(live.recording), exchanges, start=start, until=until, speed="max")
    collector = ReplayCollector(config, options, dry_run=dry_run)
    rows: list[tuple[Any, ...]] = []
    records = KeepRecords()
    with capture_logs() as logs:
        try:
            assert await collector.start()
            # before the replay task's first step: it runs once this coroutine yields
            collector.scheduler.add_sink(rows.extend)
            collector.analytics.subscribe(records)
            await asyncio.wait_for(collector.wait_stopped(), 30)
        finally:
            await collector.close()
    assert not collector.failures
    return Run(rows, logs, records.records, dict(collector.cache.stats))


async def stored(database: PgDatabase) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await fetch(database.dsn, ROWS_SQL)]


def as_stored(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows a scheduler sink got (exact strings), as the table gives them back, in its order."""
    out = [(*r[:3], *(Decimal(v) for v in r[3:7]), *r[7:]) for r in rows]
    return sorted(out, key=lambda r: (r[7], r[0], r[1]))


def feed_counters(stats: VenueStats) -> VenueStats:
    return msgspec.structs.replace(stats, connection_attempts=0, connection_failures=0)


def tick_of(row: tuple[Any, ...]) -> datetime:
    return row[7]


def boundary_of(row: tuple[Any, ...]) -> int:
    """The row's tick in ns since the epoch."""
    return int(tick_of(row).timestamp()) * 10**9


@pytest.mark.slow
async def test_the_live_run_had_its_faults(live_run: LiveRun) -> None:
    """The recording is worth replaying: each fault happened and was handled live."""
    gate, mexc = live_run.stats["gateio"], live_run.stats["mexc"]
    assert gate.parse_errors == 2 and mexc.parse_errors == 1
    assert gate.dropped_stale >= 1
    assert mexc.reconnects == 1
    assert any(e["event"] == "arbitrage_alert" for e in live_run.logs)
    assert events(live_run.logs, "quotes_not_live", exchange="mexc")
    per_tick = Counter(tick_of(r) for r in live_run.rows if r[0] == "mexc")
    ticks = {tick_of(r) for r in live_run.rows}
    assert len(ticks) >= 7
    assert any(per_tick[t] == 0 for t in ticks)  # a tick while mexc's quotes were not live


async def test_a_replay_stores_the_live_rows_and_logs_the_live_analytics(
    live_run: LiveRun, pg_database: PgDatabase, tmp_path: Path
) -> None:
    config = write_config(tmp_path, pg_database.dsn)
    replayed = await replay(config, live_run)
    assert await stored(pg_database) == live_run.rows
    assert replayed.analytics == live_run.analytics
    assert replayed.records == live_run.records
    # the same frames went through the same parsers and cache rules (a recording holds the
    # connections that opened, not every attempt: those two counters stay the live run's own)
    assert {v: feed_counters(s) for v, s in replayed.stats.items()} == {
        v: feed_counters(s) for v, s in live_run.stats.items()
    }
    assert not events(replayed.logs, "recording_failed")  # a replay records nothing
    assert not (tmp_path / "rec").exists()


async def test_two_replays_into_two_empty_databases_are_identical(
    live_run: LiveRun,
    pg_database: PgDatabase,
    pg_server: PgServer,
    pg_loop: BackgroundLoop,
    tmp_path: Path,
) -> None:
    first = await replay(write_config(tmp_path / "a", pg_database.dsn), live_run)
    with fresh_database(pg_server, pg_loop) as other:
        second = await replay(write_config(tmp_path / "b", other.dsn), live_run)
        assert await stored(other) == await stored(pg_database)
    assert len(first.rows) > 0 and first.rows == second.rows
    assert first.analytics == second.analytics and first.records == second.records


async def test_other_thresholds_and_fees_rerun_the_analysis_on_the_same_rows(
    live_run: LiveRun, tmp_path: Path
) -> None:
    (alert,) = events(live_run.logs, "arbitrage_alert")
    assert alert["net_pct"] == pytest.approx(6.75, abs=0.05)  # 7 % gross, 0.25 % in fees
    cheaper = write_config(tmp_path / "fees", UNUSED_DSN, fees=(0.0, 0.0))
    replayed = await replay(cheaper, live_run, dry_run=True)
    assert as_stored(replayed.rows) == live_run.rows
    (again,) = events(replayed.logs, "arbitrage_alert")
    assert again["net_pct"] == pytest.approx(alert["gross_pct"])  # no fees: net is gross
    stricter = write_config(tmp_path / "threshold", UNUSED_DSN, arbitrage_threshold=0.2)
    replayed = await replay(stricter, live_run, dry_run=True)
    assert as_stored(replayed.rows) == live_run.rows
    assert not events(replayed.logs, "arbitrage_alert")  # 6.75 % net is under 20 %


async def test_from_and_until_cut_exactly(live_run: LiveRun, tmp_path: Path) -> None:
    config = write_config(tmp_path, UNUSED_DSN)
    ticks = sorted({tick_of(r) for r in live_run.rows})
    start, last = ticks[1], ticks[4]
    cut = await replay(config, live_run, dry_run=True, start=start.isoformat(), until="+3s")
    assert {tick_of(r) for r in cut.rows} == set(ticks[1:5])
    assert as_stored(cut.rows) == [r for r in live_run.rows if start <= tick_of(r) <= last]
    # the analytics summarise at 0.5 s past every other second (analytics_interval 2)
    first, end = start.timestamp(), last.timestamp()
    summaries = [e for e in cut.logs if e["event"] == "market_health"]
    assert len(summaries) == sum(1 for s in range(int(first), int(end)) if s % 2 == 0)
    assert not any(isinstance(r, OpportunityOpened) and r.opened_at < start for r in cut.records)


async def test_a_file_cut_short_replays_up_to_the_cut_with_a_warning(
    live_run: LiveRun, tmp_path: Path
) -> None:
    copy = tmp_path / "rec"
    shutil.copytree(live_run.recording, copy)
    last = venue_files(copy, "mexc")[-1]
    data = last.path.read_bytes()
    last.path.write_bytes(data[: len(data) * 2 // 3])  # a crash mid-write
    kept = list(read_records("mexc", [last]))
    # where mexc's recording stops: its last record of any kind (a quiet venue, paused before
    # its disconnect, records ticks and connection events after its last frame)
    cut_ns = max(r.time_ns for r in kept if r.kind != ENDED)
    # when each tick was taken live, from the other venue's intact file
    taken = {
        TICK_PAYLOAD.unpack(r.payload)[0]: r.time_ns
        for r in read_records("gateio", venue_files(copy, "gateio"))
        if r.kind == TICK and r.flags == 0
    }
    cut_live = LiveRun(live_run.rows, [], [], {}, copy)
    replayed = await replay(write_config(tmp_path, UNUSED_DSN), cut_live, dry_run=True)

    def survives(row: tuple[Any, ...]) -> bool:
        return row[0] == "gateio" or taken[boundary_of(row)] <= cut_ns

    assert as_stored(replayed.rows) == [r for r in live_run.rows if survives(r)]
    assert any(not survives(r) for r in live_run.rows)  # the cut did cost mexc rows
    (warning,) = events(replayed.logs, "recording_truncated")
    assert warning["file"] == str(last.path)


def records_with_ends(raw: bytes) -> list[tuple[Record, int]]:
    """Each record of a raw stream with the offset just after it."""
    out, pos = [], 0
    for record in iter_records(raw):
        if record.kind == SEGMENT:
            pos += SEGMENT_HEAD.size + len(record.payload)
        else:
            pos += RECORD_HEAD.size + len(record.link.encode()) + len(record.payload)
        out.append((record, pos))
    return out


async def test_a_tick_recorded_just_before_the_recording_stops_reads_the_live_quotes(
    live_run: LiveRun, tmp_path: Path
) -> None:
    """The live run ticked, then mexc's recording stops before its next frame: the replay
    takes that tick with mexc's quotes as the live run did (the loss comes after the tick)."""
    copy = tmp_path / "rec"
    shutil.copytree(live_run.recording, copy)
    last = venue_files(copy, "mexc")[-1]
    data, raw, pos = last.path.read_bytes(), b"", 0
    while pos < len(data):
        compressed, size = decode_block_head(data[pos : pos + BLOCK_HEAD.size]) or (0, 0)
        start = pos + BLOCK_HEAD.size
        raw += zstandard.ZstdDecompressor().decompress(data[start : start + compressed], size)
        pos = start + compressed
    stored_ticks = {boundary_of(r) for r in live_run.rows if r[0] == "mexc"}
    entries = records_with_ends(raw)
    # a snapshot tick mexc's quotes were stored at, in the second half, a frame right after it
    tick, end = next(
        entries[i]
        for i in range(len(entries) // 2, len(entries) - 1)
        if entries[i][0].kind == TICK
        and entries[i][0].flags == CLOCK_SNAPSHOT
        and TICK_PAYLOAD.unpack(entries[i][0].payload)[0] in stored_ticks
        and entries[i + 1][0].kind == FRAME
    )
    compressed = zstandard.ZstdCompressor().compress(raw[:end])
    last.path.write_bytes(encode_block_head(len(compressed), end) + compressed)
    boundary_ns = TICK_PAYLOAD.unpack(tick.payload)[0]

    cut_live = LiveRun(live_run.rows, [], [], {}, copy)
    replayed = await replay(write_config(tmp_path, UNUSED_DSN), cut_live, dry_run=True)

    expected = [r for r in live_run.rows if r[0] == "gateio" or boundary_of(r) <= boundary_ns]
    assert as_stored(replayed.rows) == expected
    assert any(r[0] == "mexc" and boundary_of(r) == boundary_ns for r in expected)
    # mexc's last frame came before the tick: its frames alone do not tell where it stopped
    kept_frames = [r.time_ns for r, at in entries if at <= end and r.kind == FRAME]
    assert max(kept_frames) < tick.time_ns
