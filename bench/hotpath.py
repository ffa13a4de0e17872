"""Where a frame's CPU goes on the hot path, per venue, in one process (no socket).

    python -m bench.hotpath [--venues okx,binance] [--frames 10000] [--rounds 21]

Each venue's frames are made the way a flood makes them (the simulator's deterministic market
and the venue personality's encoder), then fed again and again through three nested stages of
the collector's frame -> cache path:

- ``parse``: the venue module's ``parse`` alone;
- ``on_frame``: ``LinkFeed.on_frame``, i.e. parse + pair lookup + ``QuoteCache.apply`` + counters;
- ``transport``: ``Transport.on_ws_frame`` with picows frames, i.e. on_frame + the liveness stamp,
  the frame-type check, the payload copy and the receive stamp.

Venues and stages take turns block by block, so load from other processes weighs on all of
them alike; the low quantiles are the steadiest figures on shared cores. Case 1 of
``python -m bench`` measures the whole client over a socket; this shows which stage makes one
venue's frames dearer than another's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from picows import WSMsgType

# picows's own test helper: the only way to build a WSFrame without a socket
from picows.picows import _make_test_ws_frame

from data_collector.cache import QuoteCache
from data_collector.connection.tap import NO_TAP
from data_collector.connection.transport import Transport
from data_collector.feeds import LinkFeed, VenueFeed
from data_collector.simulator import Simulator, pairs_for
from data_collector.venues import VENUES, get_venue
from data_collector.venues.mexc import Mexc

STAGES = ("parse", "on_frame", "transport")
#: the subscription key a personality encodes a push for, where it is not "" (raw Binance)
PUSH_KEYS: dict[str, Callable[[str], str]] = {"mexc": Mexc.channel}


class _Owner:
    """The little a Transport needs of its link."""

    name = "hotpath"
    stray_frames = 0
    tap = NO_TAP
    pings_answered = 0


def flood_frames(venue: str, frames: int, pairs: int) -> tuple[WSMsgType, list[bytes]]:
    """``frames`` book-ticker frames of ``venue``, round-robin over ``pairs`` pairs, as the
    simulator's flood encodes them (same market walk, same encoder, rising sequences), and
    the WebSocket message type they travel in."""
    sim = Simulator(pairs_for(pairs), venues=(venue,), rate_hz=0)
    sim.market.use_virtual_clock(0.001)
    book = sim.venues[venue].book
    personality = book.personality
    key = PUSH_KEYS.get(venue, lambda _: "")
    stamp, now = int(time.time() * 1000), time.monotonic()
    out = []
    for k in range(frames):
        symbol = book.symbols[k % pairs]
        out.append(personality.encode_push(key(symbol), symbol, book.walk(k % pairs, stamp, now)))
    return personality.push_type, out


@dataclass
class VenueRun:
    venue: str
    frame_bytes: float
    #: per stage, ns per frame of each block
    ns: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    accepted: int = 0
    fed: int = 0


class _Rig:
    """One venue's frames wired to a fresh cache through a LinkFeed and a Transport."""

    def __init__(self, venue: str, frames: int, pairs: int) -> None:
        msg_type, self.raw = flood_frames(venue, frames, pairs)
        self.ws_frames = [_make_test_ws_frame(msg_type, f, True, False) for f in self.raw]
        self.cache = QuoteCache([venue], pairs_for(pairs))
        self.stats = self.cache.stats[venue]
        v = get_venue(venue)
        pair_of = {v.symbol(p): i for i, p in enumerate(self.cache.pairs)}
        venue_feed = VenueFeed(venue, v, "", 0, pair_of, self.stats)
        feed = LinkFeed(venue_feed, self.cache, list(pair_of), lambda _: None)
        transport = Transport(_Owner(), feed.on_frame, asyncio.get_running_loop().time)
        self.pairs = range(pairs)
        on_frame, on_ws_frame = feed.on_frame, transport.on_ws_frame
        self.stages: dict[str, tuple[Callable[[Any], object], Sequence[Any]]] = {
            "parse": (v.parse, self.raw),
            "on_frame": (lambda data: on_frame(None, 0, data, 1), self.raw),
            "transport": (lambda frame: on_ws_frame(None, frame), self.ws_frames),
        }

    def block(self, stage: str) -> float:
        """Feed every frame once through ``stage``; ns per frame."""
        fn, items = self.stages[stage]
        self.cache.reset_sequence(0, self.pairs)  # the same frames again must not be stale
        t0 = time.perf_counter_ns()
        for item in items:
            fn(item)
        return (time.perf_counter_ns() - t0) / len(items)


async def measure(venues: Sequence[str], frames: int, rounds: int, pairs: int) -> list[VenueRun]:
    rigs = {venue: _Rig(venue, frames, pairs) for venue in venues}
    runs = {v: VenueRun(v, sum(map(len, r.raw)) / len(r.raw)) for v, r in rigs.items()}
    order = [(v, s) for v in venues for s in STAGES]
    for i in range(rounds):
        shift = i % len(order)
        for venue, stage in order[shift:] + order[:shift]:
            runs[venue].ns[stage].append(rigs[venue].block(stage))
    for venue, rig in rigs.items():
        runs[venue].accepted = rig.stats.updates
        runs[venue].fed = rounds * frames * 2  # on_frame and transport reach the cache
    return list(runs.values())


def quantile(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(runs: list[VenueRun]) -> str:
    lines = [
        "ns per frame, p25 (median) over the blocks; the last two columns are what each "
        "stage adds to the one inside it",
        f"{'venue':8} {'bytes':>5} {'parse':>13} {'on_frame':>13} {'transport':>13}"
        f" {'+route/cache':>12} {'+transport':>10}",
    ]
    for r in runs:
        p25 = {s: quantile(r.ns[s], 0.25) for s in STAGES}
        med = {s: statistics.median(r.ns[s]) for s in STAGES}
        cells = " ".join(f"{p25[s]:6.0f} ({med[s]:4.0f})" for s in STAGES)
        lines.append(
            f"{r.venue:8} {r.frame_bytes:5.0f} {cells}"
            f" {p25['on_frame'] - p25['parse']:12.0f} {p25['transport'] - p25['on_frame']:10.0f}"
        )
    bad = [r.venue for r in runs if r.accepted != r.fed]
    if bad:
        lines.append(f"NOT every frame reached the cache: {', '.join(bad)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__)
    parser.add_argument("--venues", default=",".join(VENUES), help="comma-separated")
    parser.add_argument("--frames", type=int, default=10_000, help="frames per block")
    parser.add_argument("--rounds", type=int, default=21, help="blocks per venue and stage")
    parser.add_argument("--pairs", type=int, default=100)
    args = parser.parse_args(argv)
    venues = [v for v in args.venues.split(",") if v]
    runs = asyncio.run(measure(venues, args.frames, args.rounds, args.pairs))
    print(report(runs))
    return 0 if all(r.accepted == r.fed for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
