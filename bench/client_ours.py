"""This project's feed stack (FeedManager + QuoteCache on uvloop) as a bench client process.

    python -m bench.client_ours --venue gateio --url ws://... --pairs 100 [--record]

With ``--record`` the cache notes (pair, sequence, wall-clock ns) right after each accepted
update, for the latency case; the extra cost is one ``time.time_ns`` and three list appends
per update. The ingest case runs without it. With ``--recording-dir DIR`` the links are tapped
by the collector's own recorder (``--record``), for the recording case.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.proto import cpu_seconds, emit, peak_rss_mb, serve, wait_for_count
from data_collector.cache import Outcome, QuoteCache
from data_collector.connection import ConnectionSettings
from data_collector.logsetup import configure_logging
from data_collector.manager import FeedManager, live_link
from data_collector.recording.recorder import Recorder
from data_collector.simulator import pairs_for
from data_collector.venues import get_venue
from data_collector.venues.base import QuoteUpdate


class RecordingCache(QuoteCache):
    """QuoteCache that stamps every accepted update after it is stored."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recording = False
        self.rec_p: list[int] = []
        self.rec_seq: list[int] = []
        self.rec_recv: list[int] = []
        self.rec_done: list[int] = []

    def apply(self, v: int, p: int, q: QuoteUpdate, receive_ns: int) -> Outcome:
        outcome = super().apply(v, p, q, receive_ns)
        if self.recording and outcome is Outcome.ACCEPTED:
            self.rec_done.append(time.time_ns())
            self.rec_p.append(p)
            self.rec_seq.append(q.sequence)
            self.rec_recv.append(receive_ns)
        return outcome


class OursClient:
    def __init__(self, args: argparse.Namespace) -> None:
        self.venue_name = args.venue
        self.pairs = pairs_for(args.pairs)
        cache_cls = RecordingCache if args.record else QuoteCache
        self.cache = cache_cls([args.venue], self.pairs)
        venue = get_venue(args.venue)
        self.recorder = Recorder(Path(args.recording_dir)) if args.recording_dir else None
        links = self.recorder.link_factory if self.recorder is not None else live_link
        self.manager = FeedManager(
            self.cache,
            {args.venue: (venue, args.url)},
            self.pairs,
            ConnectionSettings(),
            links=links,
        )
        self.stats = self.cache.stats[args.venue]
        self.cpu0 = 0.0
        self.count0 = 0
        self.t0 = 0.0

    async def handle(self, c: dict[str, Any]) -> dict[str, Any]:
        cmd = c["cmd"]
        if cmd == "wait_subscribed":
            deadline = time.monotonic() + float(c.get("timeout", 30))
            while self.manager.subscribed_channels() < len(self.pairs):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"subscribed {self.manager.subscribed_channels()}")
                await asyncio.sleep(0.01)
            return {"subscribed": self.manager.subscribed_channels()}
        if cmd == "arm":
            self.count0, self.cpu0, self.t0 = self.stats.updates, cpu_seconds(), time.perf_counter()
            return {}
        if cmd == "await":
            return await self._await(int(c["n"]), float(c.get("timeout", 60)))
        if cmd == "count":
            s = self.stats
            return {
                "updates": s.updates,
                "frames": s.frames,
                "parse_errors": s.parse_errors,
                "dropped": s.dropped_stale
                + s.dropped_crossed
                + s.dropped_invalid
                + s.dropped_unknown,
                "cpu": cpu_seconds(),
                "rss_mb": peak_rss_mb(),
            }
        if cmd == "sample":
            snap = self.cache.snapshot()
            out = {}
            for i in c["pairs"]:
                q = snap.quote(0, int(i))
                out[str(i)] = None if q is None else {"bid": q.bid_price, "ask": q.ask_price}
            return {"quotes": out}
        if cmd == "close_recording":
            assert self.recorder is not None
            await self.recorder.close()
            recorder = self.recorder
            return {"records": recorder.records_written, "bytes": recorder.bytes_written}
        if cmd == "record":
            assert isinstance(self.cache, RecordingCache)
            self.cache.recording = bool(c["on"])
            return {}
        if cmd == "dump":
            cache = self.cache
            assert isinstance(cache, RecordingCache)
            np.savez(
                c["path"],
                p=np.asarray(cache.rec_p, dtype=np.int64),
                seq=np.asarray(cache.rec_seq, dtype=np.int64),
                recv=np.asarray(cache.rec_recv, dtype=np.int64),
                done=np.asarray(cache.rec_done, dtype=np.int64),
            )
            return {"updates": len(cache.rec_done)}
        raise ValueError(f"unknown command {cmd!r}")

    async def _await(self, n: int, timeout: float) -> dict[str, Any]:
        """Wait until ``n`` more updates were decoded since ``arm``; CPU is read at the first
        look after the count is reached, so the idle wait after it costs nothing."""
        stats = self.stats
        await wait_for_count(lambda: stats.updates, self.count0 + n, timeout)
        cpu, wall = cpu_seconds() - self.cpu0, time.perf_counter() - self.t0
        got = stats.updates - self.count0
        return {"frames": got, "cpu": cpu, "wall": wall, "complete": got >= n}


async def main(args: argparse.Namespace) -> None:
    client = OursClient(args)
    if client.recorder is not None:
        await client.recorder.start()
    await client.manager.start()
    emit({"ready": True})
    try:
        await serve(client.handle)
    finally:
        await client.manager.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.client_ours")
    parser.add_argument("--venue", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--recording-dir", help="record the links' frames here (--record)")
    configure_logging("warning", "console", stream=sys.stderr)
    import uvloop

    uvloop.run(main(parser.parse_args()))
