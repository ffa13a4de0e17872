"""Case 1: ingest throughput, frames decoded into the client's cache per CPU-second.

For each venue and each client (this project, ccxt.pro, the naive floor) a fresh simulator
process (deterministic: every one floods the same quotes, checked by a CRC) and a fresh client
process start and warm up, all before the first measurement. Then, venue by venue, the
clients take turns: each repetition arms one client (it notes its CPU time and update count),
floods ``frames`` pre-encoded frames as fast as the client reads them, and waits until the
client has decoded every one; the client reads its CPU time as soon as it sees the last one
in. The simulator's CPU never counts. Afterwards the client's total must equal the frames
sent and its cached last quotes must equal the simulator's.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

from bench.common import CCXT_PY, PROJECT_PY, REPO, CaseResult, median
from bench.proto import Child, ChildError
from data_collector.pairs import Pair
from data_collector.simulator import pairs_for
from data_collector.venues import get_venue

CLIENTS = ("ours", "ccxt", "naive")
#: every venue the case measures, in table order
VENUES = ("gateio", "mexc", "binance", "okx", "bybit")
#: how each client reads each venue's book tickers (the channel is the same for all three)
CHANNELS = {
    "gateio": "spot.book_ticker",
    "mexc": "aggre.bookTicker (protobuf)",
    "binance": "@bookTicker",
    "okx": "bbo-tbt",
    "bybit": "orderbook.1",
}
MEXC_SHARD = 30
#: contenders starting at the same time (each is two Python processes importing their stack)
STARTS_AT_ONCE = 4


def label(venue: str, kind: str, ccxt_version: str) -> str:
    if kind == "ours":
        decoder = "protobuf 7 upb" if venue == "mexc" else "msgspec"
        return f"this project (picows + {decoder}, FeedManager + QuoteCache)"
    if kind == "ccxt":
        method = "watch_ticker" if venue == "mexc" else "watch_bids_asks"
        extra = ", protobuf 5" if venue == "mexc" else ""
        return f"ccxt.pro {ccxt_version} {method} (aiohttp{extra})".replace("  ", " ")
    if venue == "mexc":
        return "naive floor: websockets + protobuf 5 MessageToDict"
    return "naive floor: websockets + json.loads"


@dataclass
class IngestSettings:
    pairs: int = 100
    warmup_frames: int = 5_000
    frames: int = 50_000
    reps: int = 7
    clients: tuple[str, ...] = CLIENTS
    venues: tuple[str, ...] = VENUES


@dataclass
class ClientRun:
    venue: str
    client: str
    rates: list[float] = field(default_factory=list)
    wall_rates: list[float] = field(default_factory=list)
    decoded: int = 0
    sent: int = 0
    complete: bool = True
    quotes_match: bool = False
    digest: str = ""
    rss_mb: float = float("nan")
    error: str = ""

    @property
    def rate(self) -> float:
        return median(self.rates) if self.rates else float("nan")


def venue_symbol(venue: str, pair: Pair) -> str:
    return get_venue(venue).symbol(pair)


def _same_price(ours: Any, sim: Any) -> bool:
    if ours is None or sim is None:
        return False
    if isinstance(ours, float):  # ccxt converts to float
        return math.isclose(ours, float(sim), rel_tol=0, abs_tol=0)
    return str(ours) == str(sim)


async def _spawn_client(kind: str, venue: str, url: str, s: IngestSettings, tmp: str) -> Child:
    err = f"{tmp}/client-{venue}-{kind}.err"
    if kind == "ours":
        argv = [PROJECT_PY, "-m", "bench.client_ours", "--venue", venue, "--url", url]
        argv += ["--pairs", str(s.pairs)]
    else:
        symbols = ",".join(venue_symbol(venue, p) for p in pairs_for(s.pairs))
        argv = [str(CCXT_PY), "-m", "bench.client_ext", "--kind", kind, "--venue", venue]
        argv += ["--url", url, "--symbols", symbols, "--shard", str(MEXC_SHARD)]
    child = await Child.spawn(f"{kind}/{venue}", argv, cwd=str(REPO), stderr_path=err)
    await child.recv(timeout=60)
    return child


class Contender:
    """One client process and the fresh deterministic simulator process it reads from."""

    def __init__(self, venue: str, kind: str, s: IngestSettings) -> None:
        self.venue, self.kind, self.s = venue, kind, s
        self.run = ClientRun(venue, kind)
        self.sim: Child | None = None
        self.client: Child | None = None

    async def start(self, tmp: str) -> None:
        venue, kind, s = self.venue, self.kind, self.s
        argv = [PROJECT_PY, "-m", "bench.simproc", "--venues", venue, "--pairs", str(s.pairs)]
        argv += ["--rate", "0", "--deterministic"]
        err = f"{tmp}/sim-{venue}-{kind}.err"
        self.sim = await Child.spawn(f"sim/{venue}", argv, cwd=str(REPO), stderr_path=err)
        url = (await self.sim.recv(timeout=30))["urls"][venue]
        self.client = await _spawn_client(kind, venue, url, s, tmp)
        await self.sim.request({"cmd": "wait_subs", "venue": venue, "n": s.pairs, "timeout": 30})
        if kind == "ours":
            await self.client.request({"cmd": "wait_subscribed", "timeout": 30})
        await self.flood(s.warmup_frames)

    async def flood(self, frames: int) -> dict[str, Any]:
        assert self.sim is not None and self.client is not None
        await self.client.request({"cmd": "arm"})
        request = {"cmd": "flood", "venue": self.venue, "frames": frames}
        sent = (await self.sim.request(request))["sent"]
        return await self.client.request({"cmd": "await", "n": sent, "timeout": 120}, timeout=150)

    async def measure(self) -> None:
        """One repetition: flood ``frames`` and note the client's rate."""
        result = await self.flood(self.s.frames)
        run = self.run
        run.complete &= bool(result["complete"])
        run.rates.append(result["frames"] / max(result["cpu"], 1e-9))
        run.wall_rates.append(result["frames"] / max(result["wall"], 1e-9))

    async def verify(self) -> None:
        assert self.sim is not None and self.client is not None
        await _verify(self.sim, self.client, self.venue, self.kind, self.s, self.run)

    def failed(self, exc: ChildError) -> None:
        self.run.error = str(exc).splitlines()[0][:200]

    async def close(self) -> None:
        for child in (self.client, self.sim):
            if child is not None:
                await child.close()


async def run_venues(
    venues: tuple[str, ...], kinds: tuple[str, ...], s: IngestSettings, tmp: str, log=None
) -> dict[tuple[str, str], ClientRun]:
    """Every client of every venue, each with its own simulator.

    All of them start (and warm up) first, a few at a time, so that no start-up runs during a
    measurement. Then venue by venue the clients are measured in turns: repetition ``i``
    floods each client once, in an order rotated by ``i``, so that whatever else the machine
    does at the time weighs on all of them alike.
    """
    groups = {venue: [Contender(venue, kind, s) for kind in kinds] for venue in venues}
    everyone = [c for group in groups.values() for c in group]
    gate = asyncio.Semaphore(STARTS_AT_ONCE)
    try:
        started = await asyncio.gather(*(_start(c, tmp, gate) for c in everyone))
        for venue, group in groups.items():
            if log is not None:
                log(f"case 1: {venue} / {', '.join(kinds)}, in turns")
            await _measure_in_turns([c for c in group if started[everyone.index(c)]], s)
            for c in group:
                if log is not None:
                    log(f"  {c.kind}: {c.run.rate:,.0f} frames/CPU-s {c.run.error}")
    finally:
        await asyncio.gather(*(c.close() for c in everyone))
    return {(c.venue, c.kind): c.run for c in everyone}


async def _measure_in_turns(live: list[Contender], s: IngestSettings) -> None:
    for rep in range(s.reps):
        shift = rep % max(len(live), 1)
        for c in live[shift:] + live[:shift]:
            await _guarded(c, c.measure(), live)
    for c in list(live):
        await _guarded(c, c.verify(), live)


async def _start(c: Contender, tmp: str, gate: asyncio.Semaphore) -> bool:
    """Start (and warm up) one contender; False, noted, when it fails."""
    async with gate:
        try:
            await c.start(tmp)
        except ChildError as exc:
            c.failed(exc)
            return False
    return True


async def _guarded(c: Contender, step: Any, live: list[Contender]) -> None:
    """Run one step; a client that fails is noted and leaves the rotation."""
    try:
        await step
    except ChildError as exc:
        c.failed(exc)
        live.remove(c)


async def run_client(venue: str, kind: str, s: IngestSettings, tmp: str) -> ClientRun:
    return (await run_venues((venue,), (kind,), s, tmp))[venue, kind]


async def _verify(
    sim: Child, client: Child, venue: str, kind: str, s: IngestSettings, run: ClientRun
) -> None:
    stats = await sim.request({"cmd": "stats", "venue": venue})
    count = await client.request({"cmd": "count"})
    run.sent, run.decoded, run.digest = stats["updates_sent"], count["updates"], stats["digest"]
    run.rss_mb = count.get("rss_mb", float("nan"))
    sample = sorted({0, 1, 2, s.pairs // 2, s.pairs - 1})
    sim_last = (await sim.request({"cmd": "last", "venue": venue, "pairs": sample}))["quotes"]
    pairs = pairs_for(s.pairs)
    if kind == "ours":
        mine = (await client.request({"cmd": "sample", "pairs": list(sample)}))["quotes"]
        keyed = {str(i): mine[str(i)] for i in sample}
    else:
        symbols = [venue_symbol(venue, pairs[i]) for i in sample]
        mine = (await client.request({"cmd": "sample", "symbols": symbols}))["quotes"]
        keyed = {str(i): mine[sym] for i, sym in zip(sample, symbols, strict=True)}
    run.quotes_match = all(
        keyed[k] is not None
        and _same_price(keyed[k]["bid"], sim_last[k]["bid"])
        and _same_price(keyed[k]["ask"], sim_last[k]["ask"])
        for k in keyed
    )


async def run_case(
    s: IngestSettings, tmp: str, ccxt_ok: bool, ccxt_reason: str, versions: dict[str, str], log
) -> CaseResult:
    kinds = tuple(k for k in s.clients if k == "ours" or ccxt_ok)
    log(f"case 1: starting {len(kinds)} clients and their simulators for each venue")
    runs = await run_venues(s.venues, kinds, s, tmp, log)
    for venue in s.venues:
        for kind in s.clients:
            if kind not in kinds:
                runs[venue, kind] = ClientRun(venue, kind, error=f"unavailable: {ccxt_reason}")
    return _table(s, runs, versions)


def _versus(r: ClientRun, ccxt: ClientRun | None) -> str:
    """Ratio of the medians, and the range of the ratios of the same turns."""
    if ccxt is None or not ccxt.rates:
        return "-"
    turns = [mine / theirs for mine, theirs in zip(r.rates, ccxt.rates, strict=False)]
    return f"{r.rate / ccxt.rate:.1f}x ({min(turns):.1f}–{max(turns):.1f})"


def _table(
    s: IngestSettings, runs: dict[tuple[str, str], ClientRun], versions: dict[str, str]
) -> CaseResult:
    rows: list[list[str]] = []
    figures: dict[str, float] = {}
    digests_equal = True
    for venue in s.venues:
        ours = runs.get((venue, "ours"))
        ccxt = runs.get((venue, "ccxt"))
        ratio = ours.rate / ccxt.rate if ours and ccxt and ccxt.rates else float("nan")
        figures[f"ratio_{venue}"] = ratio
        figures[f"ours_{venue}"] = ours.rate if ours else float("nan")
        digests = {r.digest for (v, _), r in runs.items() if v == venue and r.digest}
        digests_equal &= len(digests) <= 1
        for kind in s.clients:
            r = runs.get((venue, kind))
            if r is None:
                continue
            name = label(venue, kind, versions.get("ccxt", ""))
            if r.error:
                rows.append([venue, name, r.error, "", "", "", "", ""])
                continue
            spread = f"{min(r.rates):,.0f}–{max(r.rates):,.0f}"
            check = f"{r.decoded:,}/{r.sent:,}" + ("" if r.decoded == r.sent else " MISMATCH")
            vs = "1.0" if kind == "ccxt" else _versus(r, ccxt)
            rows.append(
                [
                    venue,
                    name,
                    f"{r.rate:,.0f}",
                    spread,
                    f"{median(r.wall_rates):,.0f}",
                    check,
                    "yes" if r.quotes_match else "NO",
                    vs,
                ]
            )
    channels = "; ".join(f"{v} {CHANNELS[v]}" for v in s.venues)
    notes = [
        f"{s.pairs} pairs; {s.reps} repetitions of {s.frames:,} frames after a "
        f"{s.warmup_frames:,}-frame warm-up; figures are medians over the repetitions "
        "(min–max shown). CPU is the client process's user+system time (getrusage), from "
        "arming to the moment its last update was decoded; the simulator runs in another "
        "process and its CPU never counts.",
        "In turns: the clients of a venue run side by side, each with its own simulator, and "
        "repetition i floods each of them once, in an order rotated by i, so that the load "
        "other processes put on the shared cores weighs on every client alike.",
        f"Same channel for every client of a venue ({channels}): ccxt's watch_bids_asks asks "
        "for exactly the streams the project subscribes. MEXC is the exception: ccxt 4.5's "
        "watch_bids_asks never resolves on MEXC's protobuf frames, so ccxt reads the same "
        "frames through watch_ticker.",
        "Connections follow each venue's rules for every client alike: MEXC pairs are split "
        "over connections of at most 30 subscriptions (ccxt keeps one connection per exchange "
        "instance, so it gets one instance per connection); Bybit is asked in requests of at "
        "most 10 topics (ccxt sends one watch_bids_asks call's topics in one request, so it "
        "gets one call per 10 symbols, on its one connection); ccxt connects to Binance at "
        "`<url>/<stream index>`, which the simulator serves like `/ws`.",
        "Same frames: each client gets a fresh deterministic simulator; the CRC32 of the "
        f"flooded quotes was {'identical' if digests_equal else 'NOT identical'} across "
        "the clients of each venue.",
        "The project's client needs the least CPU per frame, so each of its repetitions is "
        "over in a fraction of a CPU-second, and whatever else runs on the shared cores in "
        "that moment (cache evictions, a busy sibling thread) weighs more on it: its "
        "repetitions vary more than the slower clients'. The simulator writes floods corked "
        "(full TCP segments), so every client reads the frames in large batches whatever its "
        "speed.",
        "'vs ccxt': the ratio of the medians, then (in brackets) the lowest and highest ratio "
        "of the repetitions, each the client's rate over ccxt's in the same turn: how far one "
        "repetition on these shared cores can stray from the median.",
        "'decoded/sent' compares the client's update count with the simulator's frames sent "
        "since start; 'last quote ok' compares the client's cached bid/ask of 5 pairs with the "
        "last quote the simulator sent.",
    ]
    return CaseResult(
        title="1. Ingest throughput (frames decoded into the cache per CPU-second)",
        description="",
        headers=[
            "venue",
            "client",
            "frames/CPU-s",
            "min–max",
            "wall frames/s",
            "decoded/sent",
            "last quote ok",
            "vs ccxt",
        ],
        rows=rows,
        notes=notes,
        figures=figures,
    )
