"""The recorder: what its taps get is what the files hold; a directory it cannot create, a full
disk or a hung one stops the recording with one error line and never the collection."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from data_collector.collector import Collector
from data_collector.config import Config, load_config
from data_collector.recording import recorder as recorder_module
from data_collector.recording.files import HOUR_NS, hour_path
from data_collector.recording.format import (
    CLOCK_SNAPSHOT,
    CLOSED,
    ENDED,
    FLAG_BINARY,
    FLAG_STRAY,
    FRAME,
    LINK_STATE,
    OPENED,
    TICK,
    TICK_PAYLOAD,
)
from data_collector.recording.reader import read_records, venue_files
from data_collector.recording.recorder import Recorder
from data_collector.simulator import Simulator, pairs_for
from tests.helpers import Log, events, wait_until

PAIRS = pairs_for(2)


async def test_the_files_hold_every_call_of_the_taps_in_order(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, flush_every=0.01)
    await recorder.start()
    tap = recorder.tap("gateio", "gateio-0")
    tap.opened(4, False, False)
    sent = []
    for i in range(3000):  # several flushes while the taps keep appending
        tap.frame(4, b"frame %d" % i, time.time_ns(), i % 2 == 0)
        sent.append(b"frame %d" % i)
        if i % 500 == 0:
            await asyncio.sleep(0.02)
    tap.stray(3, b"late", time.time_ns(), False)
    recorder.tick(CLOCK_SNAPSHOT, 10**18, 10**9)
    tap.closed(4, "closed")
    await recorder.close()
    got = [
        r for r in read_records("gateio", venue_files(tmp_path, "gateio")) if r.kind != LINK_STATE
    ]
    frames = [r for r in got if r.kind == FRAME and not r.flags & FLAG_STRAY]
    assert [r.payload for r in frames] == sent
    assert [r.flags & FLAG_BINARY for r in frames[:4]] == [FLAG_BINARY, 0, FLAG_BINARY, 0]
    assert [r.kind for r in got[:1] + got[-4:]] == [OPENED, FRAME, TICK, CLOSED, ENDED]
    assert got[-4].flags == FLAG_STRAY and got[-4].transport == 3
    assert TICK_PAYLOAD.unpack(got[-3].payload) == (10**18, 10**9)
    assert recorder.records_written == 3004 and recorder.failed is None


def config_for(tmp_path: Path, sim: Simulator, record_dir: Path) -> Config:
    symbols = ", ".join(f'"{p}"' for p in PAIRS)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""
data_collector:
  exchanges: ["mexc", "gateio"]
  symbols: [{symbols}]
  data_dir: "{tmp_path / "data"}"
exchanges:
  mexc: {{websocket_url: "{sim.urls["mexc"]}"}}
  gateio: {{websocket_url: "{sim.urls["gateio"]}"}}
monitoring: {{enabled: false}}
record: {{enabled: true, dir: "{record_dir}"}}
"""
    )
    return load_config(path, env={})


async def collect_with(config: Config, logs: Log) -> None:
    """Run a dry-run collector; it must keep capturing rows whatever the recording does."""
    collector = Collector(config, dry_run=True)
    try:
        assert await collector.start()
        assert await collector.manager.wait_until_flowing(15)
        await wait_until(lambda: events(logs, "recording_failed"), what="recording_failed")
        rows = collector.scheduler.stats.rows
        # two more ticks' worth of rows (a pair may not have quoted yet on the first tick)
        target = rows + 2 * 2 * len(PAIRS)
        await wait_until(lambda: collector.scheduler.stats.rows >= target, what="rows captured")
    finally:
        collector.stop()
        await collector.close()
    assert not collector.failures


async def test_a_directory_that_cannot_be_created_costs_the_recording_only(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the recording's parent should be")
    async with Simulator(PAIRS, rate_hz=10) as sim:
        with capture_logs() as logs:
            await collect_with(config_for(tmp_path, sim, blocker / "rec"), logs)
    (failed,) = events(logs, "recording_failed")
    assert failed["log_level"] == "error" and str(blocker / "rec") in failed["error"]
    assert "collection goes on" in failed["summary"]


async def test_a_full_disk_costs_the_recording_only(tmp_path: Path) -> None:
    record_dir = tmp_path / "rec"
    hour = time.time_ns() // HOUR_NS
    for venue in ("mexc", "gateio"):
        for h in (hour, hour + 1):  # the run may cross an hour
            path = hour_path(record_dir, venue, h)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink("/dev/full", path)  # every write: ENOSPC, as on a full disk
    async with Simulator(PAIRS, rate_hz=10) as sim:
        with capture_logs() as logs:
            await collect_with(config_for(tmp_path, sim, record_dir), logs)
    (failed,) = events(logs, "recording_failed")
    assert "No space left on device" in failed["error"]
    (closed,) = events(logs, "recording_closed")
    assert closed["records"] == 0


@pytest.mark.slow
async def test_a_hung_disk_costs_the_recording_only_and_never_blocks_the_shutdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "MAX_PENDING", 20)
    monkeypatch.setattr(recorder_module, "CLOSE_TIMEOUT", 0.5)
    record_dir = tmp_path / "rec"
    hour = time.time_ns() // HOUR_NS
    fifos = []
    for venue in ("mexc", "gateio"):
        for h in (hour, hour + 1):
            path = hour_path(record_dir, venue, h)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(path)  # opening it blocks until a reader comes: a write that hangs
            fifos.append(path)
    try:
        async with Simulator(PAIRS, rate_hz=20) as sim:
            with capture_logs() as logs:
                started = time.monotonic()
                await collect_with(config_for(tmp_path, sim, record_dir), logs)
        assert time.monotonic() - started < 15
        (failed,) = events(logs, "recording_failed")
        assert "does not keep up" in failed["error"]
    finally:
        for path in fifos:  # release the worker thread
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            os.close(fd)
