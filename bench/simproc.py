"""The venue simulator as a bench child process (project venv), driven over bench.proto.

    python -m bench.simproc --venues gateio --pairs 100 --rate 0

Commands: ``wait_subs``, ``flood``, ``stats``, ``last``, ``set_rate``, ``bursts``,
``record_sends`` / ``dump_sends`` (send timestamps for the latency case). Runs on uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.proto import cpu_seconds, emit, serve
from data_collector.logsetup import configure_logging
from data_collector.pairs import Pair
from data_collector.simulator import ClientSession, Quote, Simulator, VenueServer, pairs_for

#: Bybit repeats an unchanged book every 3 s of wall time: frames no flood sent, at moments no
#: run can reproduce, so a deterministic simulator sends none
DETERMINISTIC_OPTIONS: dict[str, dict[str, Any]] = {"bybit": {"repeat_interval": None}}


class SendRecorder:
    """Notes (pair, sequence, wall-clock ns taken right before the send) of every book-ticker
    frame the venue writes to a client (a push skipped under backpressure is not noted)."""

    def __init__(self, server: VenueServer) -> None:
        self.server = server
        self.idx: list[int] = []
        self.seq: list[int] = []
        self.ns: list[int] = []

    def install(self) -> None:
        idx_, seq_, ns_, clock = self.idx.append, self.seq.append, self.ns.append, time.time_ns

        def before_send(session: ClientSession, idx: int, quote: Quote) -> None:
            ns_(clock())
            idx_(idx)
            seq_(quote.sequence)

        self.server.observe_pushes(before_send)

    def dump(self, path: str) -> int:
        np.savez(
            path,
            idx=np.asarray(self.idx, dtype=np.int64),
            seq=np.asarray(self.seq, dtype=np.int64),
            ns=np.asarray(self.ns, dtype=np.int64),
        )
        return len(self.ns)


def make_deterministic(sim: Simulator) -> dict[str, int]:
    """Make every flood produce the same quotes in every run with the same seed and commands.

    The market's random walk scales each step by the wall time since the pair's last quote;
    a virtual clock that advances 1 ms per quote removes that, so two simulator processes
    started alike send byte-identical frames apart from the send-time fields. Returns the
    running CRC32 of the flooded quotes per venue (proof that the clients got the same frames).
    """
    sim.market.use_virtual_clock(0.001)
    digests = {name: 0 for name in sim.venues}
    for name, venue in sim.venues.items():

        def fingerprint(batch: Sequence[tuple[int, Quote]], _name: str = name) -> None:
            text = "".join(
                f"{i}|{q.sequence}|{q.bid}|{q.bid_qty}|{q.ask}|{q.ask_qty};" for i, q in batch
            )
            digests[_name] = zlib.crc32(text.encode(), digests[_name])

        venue.observe_floods(fingerprint)
    return digests


class SimProc:
    def __init__(self, sim: Simulator, pairs: list[Pair], digests: dict[str, int]) -> None:
        self.sim = sim
        self.pairs = pairs
        self.digests = digests
        self.recorders: dict[str, SendRecorder] = {}
        self.burst_tasks: list[asyncio.Task[None]] = []

    async def handle(self, c: dict[str, Any]) -> dict[str, Any]:
        cmd = c["cmd"]
        venue = self.sim.venues[c["venue"]] if "venue" in c else None
        if cmd == "wait_subs":
            assert venue is not None
            await venue.wait_for_subscriptions(int(c["n"]), timeout=float(c.get("timeout", 30)))
            return {"subscriptions": venue.subscription_count, "sessions": len(venue.sessions)}
        if cmd == "flood":
            assert venue is not None
            t0, cpu0 = time.perf_counter(), cpu_seconds()
            sent = await venue.flood(int(c["frames"]))
            return {"sent": sent, "wall": time.perf_counter() - t0, "cpu": cpu_seconds() - cpu0}
        if cmd == "stats":
            assert venue is not None
            return {
                "updates_sent": venue.updates_sent,
                "sessions": len(venue.sessions),
                "subscriptions": venue.subscription_count,
                "skipped_backpressure": venue.skipped_backpressure,
                "cpu": cpu_seconds(),
                "digest": f"{self.digests.get(c['venue'], 0):08x}",
            }
        if cmd == "last":
            assert venue is not None
            return {"quotes": {str(i): venue.last_sent(self.pairs[i]) for i in c["pairs"]}}
        if cmd == "set_rate":
            for v in self._venues(c):
                v.rate_hz = float(c["rate"])
            return {}
        if cmd == "bursts":
            for v in self._venues(c):
                self.burst_tasks.append(asyncio.create_task(self._bursts(v, c)))
            return {}
        if cmd == "record_sends":
            assert venue is not None
            rec = self.recorders.setdefault(c["venue"], SendRecorder(venue))
            rec.install()
            return {}
        if cmd == "dump_sends":
            return {"frames": self.recorders[c["venue"]].dump(c["path"])}
        raise ValueError(f"unknown command {cmd!r}")

    def _venues(self, c: dict[str, Any]) -> list[VenueServer]:
        if "venue" in c:
            return [self.sim.venues[c["venue"]]]
        return list(self.sim.venues.values())

    @staticmethod
    async def _bursts(venue: VenueServer, c: dict[str, Any]) -> None:
        """Gate-like bursts: ``base`` Hz per pair, ``burst`` Hz for ``length`` s starting
        ``start`` s into every ``period`` s of the wall clock (so every run sees the same
        pattern)."""
        base, burst = float(c["base"]), float(c["burst"])
        period, length = float(c["period"]), float(c["length"])
        start = float(c.get("start", 0.0))
        while True:
            phase = (time.time() - start) % period
            in_burst = phase < length
            venue.rate_hz = burst if in_burst else base
            wait = (length - phase) if in_burst else (period - phase)
            await asyncio.sleep(max(wait, 0.001))

    async def close(self) -> None:
        for task in self.burst_tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self.burst_tasks, return_exceptions=True)


async def main(args: argparse.Namespace) -> None:
    pairs = pairs_for(args.pairs)
    options = DETERMINISTIC_OPTIONS if args.deterministic else {}
    sim = Simulator(
        pairs, rate_hz=args.rate, seed=args.seed, venues=tuple(args.venues), venue_options=options
    )
    digests = make_deterministic(sim) if args.deterministic else {}
    await sim.start()
    proc = SimProc(sim, pairs, digests)
    emit({"urls": sim.urls, "pid": os.getpid()})
    try:
        await serve(proc.handle)
    finally:
        await proc.close()
        await sim.stop()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.simproc")
    parser.add_argument("--venues", nargs="+", default=["mexc", "gateio"])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.0, help="per-pair updates/s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--deterministic", action="store_true", help="identical floods per run")
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="event loop (picows writes straight to the socket whenever nothing is queued, "
        "so a send stamp is the send() call with either)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    import sys

    import uvloop

    configure_logging("warning", "console", stream=sys.stderr)
    ns = parse_args()
    if ns.loop == "uvloop":
        uvloop.run(main(ns))
    else:
        asyncio.run(main(ns))
