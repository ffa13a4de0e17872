"""The whole collector (``data_collector.collector.Collector``) as a bench child process.

    python -m bench.collector_proc --venue mexc=ws://... --venue gateio=ws://... --pairs 2000 \
        --dsn postgresql://... --data-dir /tmp/x --log-file /tmp/x/collector.log

Feeds, scheduler, writer (into PostgreSQL) and analytics run exactly as in production, on
uvloop, logging JSON lines at info level to ``--log-file``. The bench only adds a scheduler
observer that notes each tick's lateness, duration, rows and this process's CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from bench.proto import cpu_seconds, emit, peak_rss_mb, serve
from data_collector.cache import Snapshot
from data_collector.collector import Collector
from data_collector.config import (
    Config,
    DatabaseConfig,
    DataCollectorConfig,
    ExchangeConfig,
    MonitoringConfig,
    validate,
)
from data_collector.logsetup import configure_logging
from data_collector.scheduler import TickStats
from data_collector.simulator import pairs_for


def build_config(args: argparse.Namespace) -> Config:
    urls = dict(item.split("=", 1) for item in args.venue)
    config = Config(
        data_collector=DataCollectorConfig(
            snapshot_interval=1.0,
            analytics_interval=10.0,
            exchanges=list(urls),
            symbols=[str(p) for p in pairs_for(args.pairs)],
            data_dir=args.data_dir,
        ),
        # taker fees: each venue's default
        exchanges={name: ExchangeConfig(websocket_url=url) for name, url in urls.items()},
        database=DatabaseConfig(dsn=args.dsn),
        monitoring=MonitoringConfig(enabled=True, port=0),
    )
    validate(config)
    return config


_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_mb() -> float:
    """Current resident set size (Linux /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_MB


class Probe:
    """Per-tick samples, taken by an observer of the scheduler."""

    def __init__(self) -> None:
        self.ticks: list[dict[str, float]] = []
        self.recording = False

    def __call__(self, snap: Snapshot, stats: TickStats) -> None:
        if not self.recording or stats.last_tick_time is None:
            return
        self.ticks.append(
            {
                "boundary": stats.last_tick_time.timestamp(),
                "lateness_ms": stats.last_lateness_s * 1e3,
                "duration_ms": stats.last_duration_s * 1e3,
                "missed_total": stats.missed,
                "rows": stats.rows,
                "cpu": cpu_seconds(),
                "wall": time.time(),
                "rss_mb": rss_mb(),
            }
        )


class CollectorProc:
    def __init__(self, config: Config) -> None:
        self.collector = Collector(config)
        self.probe = Probe()
        self.closed = False
        self.mark: dict[str, Any] = {}

    async def start(self) -> None:
        try:
            started = await self.collector.start()
        except BaseException:  # surface the start-up error after releasing what it took
            await self.close()
            raise
        if not started:
            await self.close()
            raise RuntimeError("collector stopped during start-up")
        self.collector.scheduler.add_observer(self.probe)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.collector.stop()
            await asyncio.wait_for(self.collector.close(), 60)

    def _counters(self) -> dict[str, Any]:
        c = self.collector
        writer = c.writer.stats if c.writer is not None else None  # type: ignore[attr-defined]
        frames = {name: s.frames for name, s in c.cache.stats.items()}
        updates = {name: s.updates for name, s in c.cache.stats.items()}
        return {
            "cpu": cpu_seconds(),
            "wall": time.time(),
            "rows_written": writer.rows_written if writer else 0,
            "rows_dropped": writer.rows_dropped if writer else 0,
            "rows_spilled": writer.rows_spilled if writer else 0,
            "backlog_rows": writer.backlog_rows if writer else 0,
            "ticks": c.scheduler.stats.ticks,
            "missed": c.scheduler.stats.missed,
            "rows": c.scheduler.stats.rows,
            "frames": frames,
            "updates": updates,
            "parse_errors": sum(s.parse_errors for s in c.cache.stats.values()),
            "reconnects": sum(s.reconnects for s in c.cache.stats.values()),
        }

    async def handle(self, c: dict[str, Any]) -> dict[str, Any]:
        cmd = c["cmd"]
        if cmd == "status":
            col = self.collector
            return {
                "subscribed": col.manager.subscribed_channels(),
                "usable": int(col.cache.snapshot().usable.sum()),
                "flowing": col.manager.flowing(),
            }
        if cmd == "mark":
            self.probe.ticks.clear()
            self.probe.recording = True
            self.mark = self._counters()
            return self.mark
        if cmd == "report":
            self.probe.recording = False
            return {
                "start": self.mark,
                "end": self._counters(),
                "ticks": self.probe.ticks,
                "peak_rss_mb": peak_rss_mb(),
            }
        if cmd == "stop":
            await self.close()
            return {"end": self._counters()}
        raise ValueError(f"unknown command {cmd!r}")


async def main(args: argparse.Namespace) -> None:
    proc = CollectorProc(build_config(args))
    await proc.start()
    emit({"ready": True})
    try:
        await serve(proc.handle)
    finally:
        await proc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.collector_proc")
    parser.add_argument("--venue", action="append", required=True, help="NAME=URL, once per venue")
    parser.add_argument("--pairs", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--log-file", required=True)
    ns = parser.parse_args()
    log_stream = open(ns.log_file, "w", buffering=1 << 16)  # noqa: SIM115 - lives as long as the process
    configure_logging("info", "json", stream=log_stream)
    import uvloop

    uvloop.run(main(ns))
